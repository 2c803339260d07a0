"""Tests of deltaprop.lsq_problem: robust losses, finite-difference Jacobians and the models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import aslinearoperator

from deltaprop.gradcheck import central_differences
from deltaprop.lsq_problem import ROBUST_LOSSES, DenseModel, NormalModel, Residuals

LOSSES = [name for name, rho in ROBUST_LOSSES.items() if rho is not None]


def _osborne1():
    """MGH problem 17 (Osborne 1) near its start: residuals and analytic Jacobian."""
    t = 10.0 * np.arange(33)
    y = np.linspace(0.844, 0.406, 33)

    def fun(x):
        return y - (x[0] + x[1] * np.exp(-t * x[3]) + x[2] * np.exp(-t * x[4]))

    def jac(x):
        e4, e5 = np.exp(-t * x[3]), np.exp(-t * x[4])
        return np.column_stack([-np.ones_like(t), -e4, -e5, t * x[1] * e4, t * x[2] * e5])

    return fun, jac, np.array([0.5, 1.5, -1.0, 0.01, 0.02])


def _residuals(fun, jac, n, loss=None, f_scale=1.0, lb=None, ub=None):
    lb = np.full(n, -np.inf) if lb is None else lb
    ub = np.full(n, np.inf) if ub is None else ub
    return Residuals(fun, jac, (), {}, loss, f_scale, None, lb, ub)


# ----------------------------------------------------------------------------- robust losses


@pytest.mark.parametrize("name", LOSSES)
def test_robust_loss_derivatives_match_central_differences(name: str) -> None:
    rho = ROBUST_LOSSES[name]
    for z in (0.01, 0.3, 0.9, 1.7, 4.0, 50.0):  # both sides of huber's kink at z = 1
        values = rho(np.array([z]))
        d1 = central_differences(lambda v: rho(v)[0], np.array([z]), 1e-6 * z)[0]
        d2 = central_differences(lambda v: rho(v)[1], np.array([z]), 1e-6 * z)[0]
        np.testing.assert_allclose(values[1], d1, rtol=1e-6)
        np.testing.assert_allclose(values[2], d2, rtol=1e-5, atol=1e-12)
    small = rho(np.array([1e-8]))  # every loss is z + O(z²) near 0
    np.testing.assert_allclose(small[:2, 0], [1e-8, 1.0], rtol=1e-7)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("f_scale", [1.0, 0.05])
def test_scaled_residuals_give_the_gradient_of_the_robust_cost(name: str, f_scale: float) -> None:
    fun, jac, x = _osborne1()
    res = _residuals(fun, jac, 5, ROBUST_LOSSES[name], f_scale)
    f_mod, J_mod, w = res.linearise(x, res(x))
    numeric = central_differences(lambda v: res.cost(fun(v)), x, 1e-7)
    np.testing.assert_allclose(J_mod.T @ f_mod, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(J_mod, w[:, None] * jac(x))


# ----------------------------------------------------------------------------- differences


# Truncation errors for x4, x5 ~ 0.01 with t up to 320: (t h)/2, (t h)²/6 with h = ε^½, ε^⅓
@pytest.mark.parametrize(("scheme", "rtol"), [("2-point", 1e-5), ("3-point", 2e-6),
                                              ("cs", 1e-10)])  # fmt: skip
def test_difference_jacobians_match_the_analytic_one(scheme: str, rtol: float) -> None:
    fun, jac, x = _osborne1()
    res = _residuals(fun, scheme, 5)
    f = res(x)
    J = res.jacobian(x, f)
    np.testing.assert_allclose(J, jac(x), rtol=rtol, atol=rtol * np.abs(jac(x)).max())
    assert res.nfev == 1 and res.njev == 1  # difference quotients do not count in nfev


@pytest.mark.parametrize("scheme", ["2-point", "3-point"])
def test_difference_steps_stay_inside_the_bounds(scheme: str) -> None:
    fun, jac, x = _osborne1()
    lb = x - np.array([1.0, 1.0, 1.0, 1e-12, 1.0])
    ub = x + np.array([1.0, 1e-12, 1.0, 1.0, 1.0])
    seen = []

    def recording(v):
        seen.append(v.copy())
        return fun(v)

    res = _residuals(recording, scheme, 5, lb=lb, ub=ub)
    J = res.jacobian(x, res(x))
    assert all(np.all(v >= lb) and np.all(v <= ub) for v in seen)
    np.testing.assert_allclose(J, jac(x), rtol=1e-5, atol=1e-5 * np.abs(jac(x)).max())


def test_residuals_reject_complex_and_reshaped_output() -> None:
    res = _residuals(lambda x: np.array([1.0 + 1.0j, 2.0]), "2-point", 1)
    with pytest.raises(ValueError, match="`fun` must return real residuals"):
        res(np.zeros(1))
    shapes = iter([(2,), (3,)])
    res = _residuals(lambda x: np.zeros(next(shapes)), "2-point", 1)
    res(np.zeros(1))
    with pytest.raises(ValueError, match=r"`fun` must return a 1-D array of shape \(2,\)"):
        res(np.zeros(1))
    res = _residuals(lambda x: np.zeros(2), lambda x: np.full((2, 1), np.nan), 1)
    f = res(np.zeros(1))
    assert res.jacobian(np.zeros(1), f) is None  # a rejection, not an error


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("kind", ["dense", "sparse", "operator"])
def test_normal_and_dense_models_agree(rng: np.random.Generator, kind: str) -> None:
    J = rng.standard_normal((15, 4)) * [1.0, 10.0, 0.1, 1.0]
    f, D = rng.standard_normal(15), np.array([1.0, 10.0, 0.1, 1.0])
    free = np.array([True, True, False, True])
    other = {"dense": J, "sparse": csr_matrix(J), "operator": aslinearoperator(J)}[kind]
    dense, normal = DenseModel(f, J), NormalModel(f, other)
    np.testing.assert_allclose(normal.grad, dense.grad)
    np.testing.assert_allclose(normal.col_norms, dense.col_norms)
    for mask in (None, free):
        dense.factor(D, mask)
        normal.factor(D, mask)
        a, b = dense.step(0.2, 0.0), normal.step(0.2, 0.0)
        np.testing.assert_allclose(a.step, b.step, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(dense.predicted(a.step), normal.predicted(a.step))
        r_vv = rng.standard_normal(15)
        np.testing.assert_allclose(dense.correction(r_vv, a.mu), normal.correction(r_vv, a.mu),
                                   rtol=1e-8, atol=1e-12)  # fmt: skip
        if mask is not None:
            assert a.step[2] == 0 and b.step[2] == 0
    expected = 0.5 * f @ f - 0.5 * np.sum((f + J @ a.step) ** 2)
    assert dense.predicted(a.step)[0] == pytest.approx(expected)


def test_geodesic_correction_solves_the_damped_system(rng: np.random.Generator) -> None:
    J, f = rng.standard_normal((15, 4)), rng.standard_normal(15)
    D, mu, r_vv = rng.uniform(0.5, 2.0, 4), 0.7, rng.standard_normal(15)
    model = DenseModel(f, J)
    model.factor(D, None)
    a = model.correction(r_vv, mu)
    np.testing.assert_allclose((J.T @ J + mu * np.diag(D**2)) @ a, -J.T @ r_vv, atol=1e-12)
