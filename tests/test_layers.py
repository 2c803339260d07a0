"""Layers: Dense (Z = A Wᵀ + b) and Activation; backward is a VJP for ANY upstream gradient."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop.activations import ACTIVATIONS
from deltaprop.layers import INITS, Activation, Dense

EPS = 1e-6  # central differences in float64: error ≈ 1e-10 relative for smooth maps


def _numeric_vjp(fun, x: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Central differences of x -> ⟨G, fun(x)⟩ with respect to every entry of x."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = EPS
        out[idx] = (np.vdot(G, fun(x + e)) - np.vdot(G, fun(x - e))) / (2 * EPS)
    return out


# ---------------------------------------------------------------------------- Dense
def test_dense_forward_is_affine(rng):
    layer = Dense(3, 2, rng=rng)
    layer.b[:] = [0.5, -1.0]
    A = rng.normal(size=(4, 3))
    Z = layer.forward(A)
    assert Z.shape == (4, 2)
    np.testing.assert_allclose(Z, A @ layer.W.T + layer.b, rtol=1e-15)
    np.testing.assert_allclose(Z[1], [layer.W[k] @ A[1] + layer.b[k] for k in range(2)])
    assert layer.A is A


def test_dense_backward_is_a_vjp_for_any_upstream_gradient(rng):
    layer = Dense(3, 2, rng=rng)
    layer.b[:] = rng.normal(size=2)
    A, G = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    W0, b0 = layer.W.copy(), layer.b.copy()

    layer.forward(A)
    dA = layer.backward(G)
    tol = {"rtol": 1e-8, "atol": 1e-9}
    np.testing.assert_allclose(dA, _numeric_vjp(lambda a: a @ W0.T + b0, A, G), **tol)
    np.testing.assert_allclose(layer.gW, _numeric_vjp(lambda w: A @ w.T + b0, W0, G), **tol)
    np.testing.assert_allclose(layer.gb, _numeric_vjp(lambda b: A @ W0.T + b, b0, G), **tol)
    # the closed forms of eq. 8.13–8.15
    np.testing.assert_allclose(layer.gW, G.T @ A, rtol=1e-14)
    np.testing.assert_allclose(layer.gb, G.sum(axis=0), rtol=1e-14)


def test_dense_backward_without_input_gradient(rng):
    layer = Dense(2, 3, rng=rng)
    A, G = rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    layer.forward(A)
    assert layer.backward(G, input_grad=False) is None
    np.testing.assert_allclose(layer.gW, G.T @ A, rtol=1e-14)
    np.testing.assert_allclose(layer.gb, G.sum(axis=0), rtol=1e-14)


def test_dense_bias_gradient_when_the_batch_size_changes(rng):
    """Σ_n G must follow N from call to call (the bias gradient may use cached buffers)."""
    for dtype in (np.float64, np.float32):
        layer = Dense(3, 2, rng=rng, dtype=dtype)
        for n in (3, 5, 1, 3):
            A = rng.normal(size=(n, 3)).astype(dtype)
            G = rng.normal(size=(n, 2)).astype(dtype)
            layer.forward(A)
            layer.backward(G)
            np.testing.assert_allclose(layer.gb, G.sum(axis=0), rtol=1e-5)
            np.testing.assert_allclose(layer.gW, G.T @ A, rtol=1e-5)
            assert layer.gb.dtype == dtype


def test_dense_parameters_are_views_of_flat_vectors(rng):
    layer = Dense(3, 2, rng=rng)
    params, grad = np.arange(8.0), np.zeros(8)
    layer.bind(params, grad)
    assert np.shares_memory(layer.W, params) and np.shares_memory(layer.b, params)
    assert np.shares_memory(layer.gW, grad) and np.shares_memory(layer.gb, grad)
    np.testing.assert_array_equal(layer.W, [[0, 1, 2], [3, 4, 5]])  # row-major, then b
    np.testing.assert_array_equal(layer.b, [6, 7])
    params[7] = -1.0
    assert layer.b[1] == -1.0
    layer.forward(np.ones((1, 3)))
    layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(grad, [1, 1, 1, 1, 1, 1, 1, 1])


def test_dense_sizes(rng):
    layer = Dense(4, 3, rng=rng)
    assert (layer.n_in, layer.n_out, layer.n_params) == (4, 3, 15)
    assert layer.W.shape == (3, 4) and layer.b.shape == (3,)
    assert repr(layer) == "Dense(4, 3)"


def test_glorot_initialisation():
    n_in, n_out = 300, 200
    layer = Dense(n_in, n_out, init="glorot", rng=np.random.default_rng(1))
    limit = np.sqrt(6 / (n_in + n_out))
    assert np.abs(layer.W).max() <= limit
    assert np.abs(layer.W).max() > 0.99 * limit
    # U(−l, l) has variance l²/3 = 2/(n_in + n_out); 60 000 draws: ~0.6 % standard error
    assert layer.W.var() == pytest.approx(2 / (n_in + n_out), rel=0.03)
    np.testing.assert_array_equal(layer.b, 0)


def test_he_initialisation():
    n_in, n_out = 300, 200
    layer = Dense(n_in, n_out, init="he", rng=np.random.default_rng(1))
    assert layer.W.mean() == pytest.approx(0, abs=0.01)
    assert layer.W.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.03)
    np.testing.assert_array_equal(layer.b, 0)


def test_zeros_initialisation_and_default_init():
    np.testing.assert_array_equal(Dense(3, 2, init="zeros").W, 0)
    assert INITS == ("glorot", "he", "zeros")
    a = Dense(3, 2, rng=np.random.default_rng(5))
    b = Dense(3, 2, init="glorot", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.W, b.W)  # glorot is the default, seeded reproducibly


def test_initialisation_without_rng_is_random():
    assert not np.array_equal(Dense(5, 5).W, Dense(5, 5).W)


def test_unknown_init_lists_known():
    with pytest.raises(ValueError, match=r"`init` must be one of 'glorot', 'he', 'zeros'; "
                                         r"got 'xavier'"):
        Dense(2, 2, init="xavier")


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
@pytest.mark.parametrize("which", ["n_in", "n_out"])
def test_dense_rejects_bad_widths(which, bad):
    kwargs = {"n_in": 2, "n_out": 2, which: bad}
    with pytest.raises(ValueError, match=rf"`{which}` must be a positive integer; got"):
        Dense(**kwargs)


def test_dense_accepts_numpy_integers():
    assert Dense(np.int64(2), np.int32(3)).n_params == 9


def test_dense_float32(rng):
    layer = Dense(3, 2, rng=rng, dtype=np.float32)
    assert layer.W.dtype == layer.b.dtype == layer.gW.dtype == np.float32
    A = rng.normal(size=(4, 3)).astype(np.float32)
    assert layer.forward(A).dtype == np.float32
    assert layer.backward(np.ones((4, 2), np.float32)).dtype == np.float32
    assert layer.gW.dtype == np.float32


# ---------------------------------------------------------------------------- Activation
@pytest.mark.parametrize("name", [*ACTIVATIONS, "softmax"])
def test_activation_backward_is_a_vjp(name, rng):
    layer = Activation(name)
    Z = rng.normal(size=(4, 3))
    Z[np.abs(Z) < 0.05] = 0.5  # keep away from the relu-family kink at 0
    G = rng.normal(size=(4, 3))
    A = layer.forward(Z)
    assert layer.Z is Z and layer.A is A
    numeric = _numeric_vjp(lambda z: Activation(name).forward(z).copy(), Z, G)
    np.testing.assert_allclose(layer.backward(G), numeric, rtol=1e-7, atol=1e-10)


def test_softmax_activation_forward(rng):
    Z = rng.normal(size=(3, 4))
    A = Activation("softmax").forward(Z)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-15)
    assert Activation("softmax").fn is None


def test_activation_unknown_name():
    with pytest.raises(ValueError, match=r"must be one of 'identity'.*'elu'; got 'gelu'"):
        Activation("gelu")


def test_activation_repr():
    assert repr(Activation("tanh")) == "Activation('tanh')"
