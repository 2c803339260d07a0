"""Element-wise activations: h, h' and h'' against central differences, stability, softmax."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop.activations import (
    ACTIVATIONS,
    ELU_ALPHA,
    LEAKY_RELU_SLOPE,
    OUTPUT_ACTIVATIONS,
    get_activation,
    log_softmax,
    softmax,
)
from deltaprop.gradcheck import central_differences

NAMES = list(ACTIVATIONS)
#: Activations whose h' (relu, leaky_relu) or h'' (elu) jumps at z = 0.
KINKED = ("relu", "leaky_relu", "elu")
#: Floating-point traps: overflow, invalid and divide raise; underflow to 0 is harmless (and
#: ignored by numpy's default settings too).
RAISE = {"all": "raise", "under": "ignore"}
EPS = 1e-6  # central differences of smooth f in float64: error O(EPS²·f''') + O(u/EPS) ≈ 1e-10


def _points(rng: np.random.Generator) -> np.ndarray:
    """Points on (-6, 6) kept at least 0.05 from 0 (the kink of relu-type units)."""
    z = rng.uniform(-6, 6, size=200)
    z = z[np.abs(z) > 0.05]
    return np.concatenate([z, [-3.0, -0.5, 0.5, 3.0]])


def _central(f, z: np.ndarray, eps: float = EPS) -> np.ndarray:
    """h' element-wise: for an element-wise f, the derivative along all-ones is diag(f')."""
    return central_differences(f, z, eps, np.ones((1, z.size)))[0]


def test_registry_names():
    assert NAMES == ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu"]
    assert OUTPUT_ACTIVATIONS == (*NAMES, "softmax")
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert get_activation(name) is act


@pytest.mark.parametrize("name", NAMES)
def test_first_derivative_matches_central_differences(name, rng):
    act = ACTIVATIONS[name]
    z = _points(rng)
    np.testing.assert_allclose(act.df(z, act.f(z)), _central(act.f, z), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_matches_central_differences(name, rng):
    act = ACTIVATIONS[name]
    z = _points(rng)

    def df(x):
        return act.df(x, act.f(x))

    np.testing.assert_allclose(act.d2f(z, act.f(z)), _central(df, z), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(
    ("name", "z", "expected"),
    [
        ("identity", [-2.0, 0.0, 3.0], [-2.0, 0.0, 3.0]),
        ("sigmoid", [0.0, np.log(3.0)], [0.5, 0.75]),
        ("tanh", [0.0, 0.5], [0.0, 0.46211715726000974]),
        ("relu", [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0]),
        ("leaky_relu", [-2.0, 0.0, 3.0], [-2.0 * LEAKY_RELU_SLOPE, 0.0, 3.0]),
        ("softplus", [0.0, np.log(np.e - 1)], [np.log(2.0), 1.0]),
        ("elu", [-np.log(2.0), 0.0, 3.0], [-0.5 * ELU_ALPHA, 0.0, 3.0]),
    ],
)
def test_values(name, z, expected):
    np.testing.assert_allclose(ACTIVATIONS[name].f(np.array(z)), expected, rtol=1e-14, atol=1e-15)


def test_constants_are_the_documented_ones():
    assert LEAKY_RELU_SLOPE == 0.01
    assert ELU_ALPHA == 1.0


@pytest.mark.parametrize(
    ("name", "left", "right"),
    [("relu", 0.0, 1.0), ("leaky_relu", 0.01, 1.0), ("elu", 1.0, 1.0)],
)
def test_one_sided_derivatives_at_the_kink(name, left, right):
    act = ACTIVATIONS[name]
    z = np.array([-1e-9, 1e-9])
    np.testing.assert_allclose(act.df(z, act.f(z)), [left, right], rtol=1e-8)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(name, dtype, rng):
    act = ACTIVATIONS[name]
    z = rng.normal(size=(3, 4)).astype(dtype)
    a = act.f(z)
    for out in (a, act.df(z, a), act.d2f(z, a)):
        assert out.dtype == dtype
        assert out.shape == z.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_finite_without_warnings(name, dtype):
    act = ACTIVATIONS[name]
    z = np.array([-1e3, -50.0, 0.0, 50.0, 1e3], dtype=dtype)
    with np.errstate(**RAISE):
        a = act.f(z)
        outs = (a, act.df(z, a), act.d2f(z, a))
    for out in outs:
        assert np.all(np.isfinite(out))


def test_limits_at_extreme_inputs():
    z = np.array([-1e3, 1e3])
    np.testing.assert_array_equal(ACTIVATIONS["sigmoid"].f(z), [0.0, 1.0])
    np.testing.assert_array_equal(ACTIVATIONS["tanh"].f(z), [-1.0, 1.0])
    np.testing.assert_array_equal(ACTIVATIONS["softplus"].f(z), [0.0, 1e3])
    np.testing.assert_array_equal(ACTIVATIONS["elu"].f(z), [-ELU_ALPHA, 1e3])
    sp = ACTIVATIONS["softplus"]
    np.testing.assert_array_equal(sp.df(z, sp.f(z)), [0.0, 1.0])


def test_get_activation_unknown_lists_known_names():
    with pytest.raises(ValueError, match=r"`hidden` must be one of 'identity', 'sigmoid'.*'elu'; "
                                         r"got 'swish'"):
        get_activation("swish", where="hidden")
    with pytest.raises(ValueError, match=r"`activation` must be one of .*got \['tanh'\]"):
        get_activation(["tanh"])  # unhashable: still a ValueError, not a TypeError
    with pytest.raises(ValueError, match="got 'softmax'"):
        get_activation("softmax")  # softmax is an output, not an element-wise activation


# ---------------------------------------------------------------------------- softmax
def test_softmax_rows_sum_to_one_and_match_definition(rng):
    z = rng.normal(size=(5, 4))
    y = softmax(z)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    np.testing.assert_allclose(log_softmax(z), np.log(expected), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)


def test_softmax_is_shift_invariant_and_stable_for_large_logits():
    z = np.array([[1e3, 0.0, -1e3], [1e3, 1e3, 1e3], [-1e3, -1e3 + 1.0, -1e3]])
    with np.errstate(**RAISE):
        y = softmax(z)
        ly = log_softmax(z)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(y[2], softmax(np.array([[0.0, 1.0, 0.0]]))[0], rtol=1e-14)
    np.testing.assert_allclose(ly[0], [0.0, -1e3, -2e3], rtol=1e-15)
    assert np.all(np.isfinite(ly))


def test_softmax_keeps_float32():
    z = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    assert softmax(z).dtype == np.float32
    assert log_softmax(z).dtype == np.float32


# ---------------------------------------------------------------------------- oracle
@pytest.mark.oracle
@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_torch_autograd(name, torch, rng):
    """h, h' and h'' against PyTorch's functional activations and double backward."""
    fns = {
        "identity": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
        "softplus": torch.nn.functional.softplus,
        "elu": lambda t: torch.nn.functional.elu(t, 1.0),
    }
    z = _points(rng)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    at = fns[name](zt)
    (d1,) = torch.autograd.grad(at.sum(), zt, create_graph=True)
    d2 = torch.autograd.grad(d1.sum(), zt, allow_unused=True)[0] if d1.requires_grad else None
    act = ACTIVATIONS[name]
    a = act.f(z)
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.df(z, a), d1.detach().numpy(), rtol=1e-13, atol=1e-15)
    d2 = np.zeros_like(z) if d2 is None else d2.numpy()
    np.testing.assert_allclose(act.d2f(z, a), d2, rtol=1e-12, atol=1e-15)
