"""Tests of deltaprop.curve_fit against scipy.optimize.curve_fit and NIST's certified values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.optimize import OptimizeWarning

from deltaprop import curve_fit
from nist_strd import load, lre


def decay(x, a, b, c):
    return a * np.exp(-b * x) + c


def decay_jac(x, a, b, c):
    e = np.exp(-b * x)
    return np.column_stack([e, -a * x * e, np.ones_like(x)])


@pytest.fixture
def data(rng: np.random.Generator):
    x = np.linspace(0, 4, 50)
    y = decay(x, 2.5, 1.3, 0.5) + 0.05 * rng.standard_normal(x.size)
    sigma = 0.02 + 0.05 * rng.uniform(size=x.size)
    return x, y, sigma


def _agree(ours, ref, rtol=1e-6):
    np.testing.assert_allclose(ours[0], ref[0], rtol=rtol)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("options", [
    {},
    {"p0": [1.0, 1.0, 1.0]},
    {"jac": decay_jac},
    {"jac": "3-point", "method": "trf"},  # scipy's lm takes no string jac
    {"absolute_sigma": True},
    {"bounds": ([0.0, 0.0, 0.0], [10.0, 10.0, 10.0])},
    {"bounds": ([0.0, 1.4, 0.0], [10.0, 10.0, 10.0])},  # b at its bound
    {"method": "trf"},
])  # fmt: skip
def test_matches_scipy_curve_fit(data, options: dict) -> None:
    x, y, sigma = data
    ref = optimize.curve_fit(decay, x, y, sigma=sigma, **options)
    _agree(curve_fit(decay, x, y, sigma=sigma, **options), ref)


def test_matches_scipy_without_sigma_and_with_a_covariance_matrix(data) -> None:
    x, y, sigma = data
    _agree(curve_fit(decay, x, y), optimize.curve_fit(decay, x, y))
    cov = np.diag(sigma**2) + 0.5 * np.outer(sigma, sigma) * np.exp(
        -np.abs(np.subtract.outer(x, x)))  # correlated errors, positive definite
    _agree(curve_fit(decay, x, y, sigma=cov), optimize.curve_fit(decay, x, y, sigma=cov))
    _agree(curve_fit(decay, x, y, sigma=cov, absolute_sigma=True),
           optimize.curve_fit(decay, x, y, sigma=cov, absolute_sigma=True))  # fmt: skip


def test_full_output_and_leastsq_options(data) -> None:
    x, y, _ = data
    popt, _, info, mesg, ier = curve_fit(decay, x, y, full_output=True)
    assert set(info) >= {"nfev", "fvec"} and info["fvec"].shape == y.shape
    assert ier in (1, 2, 3, 4) and isinstance(mesg, str)
    np.testing.assert_allclose(info["fvec"], decay(x, *popt) - y)
    with pytest.raises(RuntimeError, match="Optimal parameters not found"):
        curve_fit(decay, x, y, maxfev=2)  # leastsq's name for max_nfev
    popt2, _ = curve_fit(decay, x, y, diag=[1.0, 1.0, 1.0])  # leastsq's diag = 1 / x_scale
    np.testing.assert_allclose(popt2, popt, rtol=1e-6)


@pytest.mark.parametrize(("name", "model"), [
    ("Misra1a", lambda x, b1, b2: b1 * (1 - np.exp(-b2 * x))),
    ("Thurber", lambda x, *b: (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3)
                              / (1 + b[4] * x + b[5] * x**2 + b[6] * x**3)),
    ("Eckerle4", lambda x, b1, b2, b3: b1 / b2 * np.exp(-0.5 * ((x - b3) / b2) ** 2)),
])  # fmt: skip
def test_nist_certified_values_and_standard_deviations(name: str, model) -> None:
    p = load(name)
    for start in p.starts:
        popt, pcov = curve_fit(model, p.x, p.y, p0=start, ftol=1e-15, xtol=1e-15, gtol=1e-15)
        assert lre(popt, p.certified) >= 6
        assert lre(np.sqrt(np.diag(pcov)), p.certified_sd) >= 4


def test_default_p0_comes_from_the_signature_and_the_bounds(data) -> None:
    x, y, _ = data
    calls = []

    def model(x, a, b, c):
        calls.append((a, b, c))
        return decay(x, a, b, c)

    curve_fit(model, x, y)
    assert calls[0] == (1.0, 1.0, 1.0)
    calls.clear()
    curve_fit(model, x, y, bounds=([0.0, 0.5, -np.inf], [4.0, np.inf, 1.0]))
    assert calls[0] == (2.0, 1.5, 0.0)  # midpoint, lb + 1, ub - 1
    with pytest.raises(ValueError, match="Unable to determine number of fit parameters"):
        curve_fit(lambda *args: args[0], x, y)


def test_nan_policy_and_check_finite(data) -> None:
    x, y, sigma = data
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        curve_fit(decay, x, y_nan)
    popt, _ = curve_fit(decay, x, y_nan, sigma=sigma, nan_policy="omit")
    keep = np.arange(x.size) != 3
    ref, _ = curve_fit(decay, x[keep], y[keep], sigma=sigma[keep])
    np.testing.assert_allclose(popt, ref)
    with pytest.raises(ValueError, match="nan_policy"):
        curve_fit(decay, x, y, nan_policy="propagate")


def test_covariance_that_cannot_be_estimated_is_inf_with_a_warning() -> None:
    x = np.array([0.0, 1.0])
    with pytest.warns(OptimizeWarning, match="could not be estimated"):
        popt, pcov = curve_fit(lambda x, a, b: a + b * x, x, np.array([1.0, 3.0]))
    np.testing.assert_allclose(popt, [1.0, 2.0])
    assert np.all(np.isinf(pcov))


BAD = [
    ({"ydata": []}, ValueError, "`ydata` must not be empty"),
    ({"sigma": np.ones(3)}, ValueError, "`sigma` must have shape"),
    ({"sigma": -np.ones(50)}, ValueError, "`sigma` must be positive"),
    ({"sigma": -np.eye(50)}, ValueError, "`sigma` must be positive definite"),
    ({"f": lambda x, a, b, c: np.zeros(3)}, ValueError, "`f` must return an array"),
    ({"method": "lm", "bounds": (0.0, 10.0)}, ValueError, "Method 'lm' only works"),
    ({"args": (1,)}, ValueError, "'args' is not a supported"),
    ({"loss": "hinge"}, ValueError, "`loss`"),
    ({"p0": [1.0, 1.0, 1.0], "bounds": (2.0, 3.0)}, ValueError, "`p0` must be 3 values inside"),
    ({"bounds": ([0.0, 0.0], 5.0)}, ValueError, "`bounds` must be a pair"),
]


@pytest.mark.parametrize(("change", "error", "match"), BAD)
def test_bad_input_raises_a_clear_error(data, change: dict, error: type, match: str) -> None:
    x, y, _ = data
    call = {"f": decay, "xdata": x, "ydata": y} | change
    with pytest.raises(error, match=match):
        curve_fit(call.pop("f"), call.pop("xdata"), call.pop("ydata"), **call)
