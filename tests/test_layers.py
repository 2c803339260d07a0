"""Layers: every method of the layer protocol against central differences.

Dense: forward (z = u Wᵀ + b), the VJP for ANY upstream gradient (any rows per sample), the
parameter gradient summed and per sample, and the R-operator pieces (forward tangent, and the
directional derivatives of the VJP and of the parameter gradient).  Activations: VJP, JVP and
Jacobian, softmax included, as objects.
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop.activations import ACTIVATIONS, SOFTMAX, ElementWise, Softmax
from deltaprop.gradcheck import central_differences
from deltaprop.layers import INITS, Activation, Dense

EPS = 1e-6  # central differences in float64: error ≈ 1e-10 relative for smooth maps
TOL = {"rtol": 1e-8, "atol": 1e-9}


def _numeric_vjp(fun, x: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Central differences of x -> ⟨G, fun(x)⟩ with respect to every entry of x."""
    numeric = central_differences(lambda v: np.vdot(G, fun(v.reshape(x.shape))), x.ravel(), EPS)
    return numeric.reshape(x.shape)


def _directional(fun, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(fun(x + ε v) − fun(x − ε v)) / 2ε: the derivative of fun at x along v."""
    return central_differences(fun, x, EPS, v[None, :])[0]


def _dense(rng, n_in=3, n_out=2) -> Dense:
    layer = Dense(n_in, n_out, rng=rng)
    layer.b[:] = rng.normal(size=n_out)
    return layer


# ---------------------------------------------------------------------------- Dense
def test_dense_forward_is_affine(rng):
    layer = _dense(rng)
    U = rng.normal(size=(4, 3))
    Z = layer.forward(U)
    assert Z.shape == (4, 2)
    np.testing.assert_allclose(Z, U @ layer.W.T + layer.b, rtol=1e-15)
    np.testing.assert_allclose(Z[1], [layer.W[k] @ U[1] + layer.b[k] for k in range(2)])


@pytest.mark.parametrize("rows", [None, 3])
def test_dense_vjp_and_parameter_gradient_for_any_upstream_gradient(rows, rng):
    """∂⟨G, z⟩/∂u = G W, ∂/∂W = Gᵀ u, ∂/∂b = Σ_n G (eq. 8.13–8.15), also with m rows."""
    layer = _dense(rng)
    U = rng.normal(size=(5, 3))
    shape = (5, 2) if rows is None else (5, rows, 2)
    G = rng.normal(size=shape)
    W0, b0 = layer.W.copy(), layer.b.copy()

    def z_of(w, b, u):
        return u @ w.T + b

    dU = layer.vjp(G)
    assert dU.shape == (*G.shape[:-1], 3)
    for r in range(1 if rows is None else rows):
        Gr, dUr = (G, dU) if rows is None else (G[:, r], dU[:, r])
        np.testing.assert_allclose(dUr, _numeric_vjp(lambda u: u @ W0.T + b0, U, Gr), **TOL)
    out = np.empty(layer.n_params if rows is None else (rows, layer.n_params))
    layer.param_grad(U, G, out)
    w, b = layer.split(out)
    if rows is None:
        np.testing.assert_allclose(w, _numeric_vjp(lambda x: z_of(x, b0, U), W0, G), **TOL)
        np.testing.assert_allclose(b, _numeric_vjp(lambda x: z_of(W0, x, U), b0, G), **TOL)
    for r in range(1 if rows is None else rows):
        Gr = G if rows is None else G[:, r]
        np.testing.assert_allclose(w if rows is None else w[r], Gr.T @ U, rtol=1e-13)
        np.testing.assert_allclose(b if rows is None else b[r], Gr.sum(axis=0), rtol=1e-13)


def test_dense_parameter_rows_sum_to_the_parameter_gradient(rng):
    layer = _dense(rng, 4, 3)
    U, G = rng.normal(size=(6, 4)), rng.normal(size=(6, 2, 3))
    rows = np.empty((6, 2, layer.n_params))
    layer.param_rows(U, G, rows)
    summed = np.empty((2, layer.n_params))
    layer.param_grad(U, G, summed)
    np.testing.assert_allclose(rows.sum(axis=0), summed, rtol=1e-13)
    w, b = layer.split(rows)
    np.testing.assert_allclose(w[2, 1], np.outer(G[2, 1], U[2]), rtol=1e-15)
    np.testing.assert_array_equal(b[2, 1], G[2, 1])


def test_dense_r_operator_pieces_are_directional_derivatives(rng):
    """tangent = d z along (V, u̇); tangent_vjp = d(G W); tangent_param_grad = d(Gᵀ u, Σ G)."""
    layer = _dense(rng)
    n, k = 5, 2
    U, U_dot = rng.normal(size=(n, 3)), rng.normal(size=(n, k, 3))
    G, RG = rng.normal(size=(n, 2)), rng.normal(size=(n, k, 2))
    V = rng.normal(size=(k, layer.n_params))
    theta0 = np.concatenate([layer.W.ravel(), layer.b])
    probe = Dense(3, 2)

    def at(theta):
        probe.bind(theta.copy())
        return probe

    rz = layer.tangent(U, V, U_dot)
    rvjp = layer.tangent_vjp(G, RG, V)
    rgrad = np.empty((k, layer.n_params))
    layer.tangent_param_grad(U, G, RG, U_dot, rgrad)
    assert rz.shape == (n, k, 2) and rvjp.shape == (n, k, 3)
    for j in range(k):
        # all of θ, u and G move together along (V_j, u̇_j, Ġ_j)
        x0 = np.concatenate([theta0, U.ravel(), G.ravel()])
        v = np.concatenate([V[j], U_dot[:, j].ravel(), RG[:, j].ravel()])

        def parts(x):
            theta, u, g = np.split(x, [theta0.size, theta0.size + U.size])
            return at(theta), u.reshape(U.shape), g.reshape(G.shape)

        def forward(x):
            lay, u, _ = parts(x)
            return lay.forward(u)

        def vjp(x):
            lay, _, g = parts(x)
            return lay.vjp(g)

        def grad(x):
            lay, u, g = parts(x)
            out = np.empty(lay.n_params)
            lay.param_grad(u, g, out)
            return out

        np.testing.assert_allclose(rz[:, j], _directional(forward, x0, v), **TOL)
        np.testing.assert_allclose(rvjp[:, j], _directional(vjp, x0, v), **TOL)
        np.testing.assert_allclose(rgrad[j], _directional(grad, x0, v), **TOL)
    # an input that does not depend on the parameters (the network's x): U_dot None
    np.testing.assert_allclose(layer.tangent(U, V, None),
                               layer.tangent(U, V, np.zeros((n, k, 3))), rtol=1e-15)


def test_dense_bias_gradient_when_the_batch_size_changes(rng):
    """Σ_n G must follow N from call to call (the bias gradient may use cached buffers)."""
    for dtype in (np.float64, np.float32):
        layer = Dense(3, 2, rng=rng, dtype=dtype)
        for n in (3, 5, 1, 3):
            U = rng.normal(size=(n, 3)).astype(dtype)
            G = rng.normal(size=(n, 2)).astype(dtype)
            out = np.empty(layer.n_params, dtype=dtype)
            layer.param_grad(U, G, out)
            w, b = layer.split(out)
            np.testing.assert_allclose(b, G.sum(axis=0), rtol=1e-5)
            np.testing.assert_allclose(w, G.T @ U, rtol=1e-5)
            assert out.dtype == dtype


def test_dense_parameters_are_views_of_flat_vectors(rng):
    layer = Dense(3, 2, rng=rng)
    params = np.arange(8.0)
    layer.bind(params)
    assert np.shares_memory(layer.W, params) and np.shares_memory(layer.b, params)
    np.testing.assert_array_equal(layer.W, [[0, 1, 2], [3, 4, 5]])  # row-major, then b
    np.testing.assert_array_equal(layer.b, [6, 7])
    params[7] = -1.0
    assert layer.b[1] == -1.0
    grad = np.zeros(8)
    layer.param_grad(np.ones((1, 3)), np.ones((1, 2)), grad)
    np.testing.assert_array_equal(grad, [1, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(layer.features(np.full((2, 3), 4.0)), [[4, 4, 4, 1]] * 2)


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
    assert layer.W.dtype == layer.b.dtype == np.float32
    U = rng.normal(size=(4, 3)).astype(np.float32)
    assert layer.forward(U).dtype == np.float32
    assert layer.vjp(np.ones((4, 2), np.float32)).dtype == np.float32


# ---------------------------------------------------------------------------- Activation
@pytest.mark.parametrize("name", [*ACTIVATIONS, "softmax"])
@pytest.mark.parametrize("rows", [None, 2])
def test_activation_vjp_and_jvp_for_any_rows(name, rows, rng):
    layer = Activation(name)
    Z = rng.normal(size=(4, 3))
    Z[np.abs(Z) < 0.05] = 0.5  # keep away from the relu-family kink at 0
    A = layer.forward(Z)
    shape = (4, 3) if rows is None else (4, rows, 3)
    G = rng.normal(size=shape)

    def a_of(z):
        a = Activation(name).forward(z)
        return a if rows is None else np.broadcast_to(a[:, None, :], shape)

    if rows is None:
        numeric = _numeric_vjp(a_of, Z, G)
        np.testing.assert_allclose(layer.vjp(Z, A, G), numeric, rtol=1e-7, atol=1e-10)
    for r in range(1 if rows is None else rows):
        Gr = G if rows is None else G[:, r]
        got_vjp = layer.vjp(Z, A, G) if rows is None else layer.vjp(Z, A, G)[:, r]
        got_jvp = (layer.function.jvp(Z, A, G) if rows is None
                   else layer.function.jvp(Z, A, G)[:, r])
        along = _directional(lambda z: Activation(name).forward(z.reshape(Z.shape)).ravel(),
                             Z.ravel(), Gr.ravel()).reshape(Z.shape)
        J = layer.function.jacobian(Z, A)
        np.testing.assert_allclose(got_jvp, along, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(got_jvp, np.einsum("nkm,nm->nk", J, Gr), rtol=1e-12)
        np.testing.assert_allclose(got_vjp, np.einsum("nkm,nk->nm", J, Gr), rtol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_zero_curvature_flag_says_whether_h2_vanishes(name, rng):
    act = ACTIVATIONS[name]
    z = rng.normal(size=50)
    z[np.abs(z) < 0.05] = 0.5
    assert act.zero_curvature == (not np.any(act.d2f(z, act.f(z))))
    assert act.elementwise and isinstance(act, ElementWise)


def test_softmax_is_an_object_with_the_protocol(rng):
    Z = rng.normal(size=(3, 4))
    layer = Activation("softmax")
    A = layer.forward(Z)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-15)
    assert layer.function is SOFTMAX and isinstance(SOFTMAX, Softmax)
    assert not SOFTMAX.elementwise and not SOFTMAX.zero_curvature
    J = SOFTMAX.jacobian(Z, A)
    np.testing.assert_allclose(J, J.transpose(0, 2, 1), rtol=1e-15)  # symmetric: vjp = jvp


def test_activation_unknown_name():
    with pytest.raises(ValueError, match=r"must be one of 'identity'.*'softmax'; got 'gelu'"):
        Activation("gelu")


def test_activation_repr():
    assert repr(Activation("tanh")) == "Activation('tanh')"
