"""Curvature (issue 4): Jacobians, Gauss–Newton, R-operator, exact Hessian and approximations.

Every exact quantity is checked against central differences over random architectures
(hypothesis, every activation, every loss/output pair) and against the other exact routes to
it (hvp against the assembled Hessian, the dual Gauss–Newton against the primal, ...).  A
hand-worked Hessian of a two-weight linear chain fixes the layout by numbers.  PyTorch oracles
and validation errors live in test_curvature_oracle.py and test_curvature_validation.py.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings

from conftest import HEADS, KINK_MARGIN, TOPOLOGIES, build, built, preactivations, problems
from deltaprop import ACTIVATIONS, mlp
from deltaprop.curvature import (
    check_hessian,
    check_jacobian,
    gauss_newton,
    gauss_newton_dual,
    gauss_newton_operator,
    hessian,
    hessian_diagonal,
    hessian_eigenvalues,
    hessian_fd,
    hessian_operator,
    hessian_trace,
    hvp,
    inverse_hessian_outer,
    jacobian_inputs,
    jacobian_params,
    residual_jacobian,
    vjp_inputs,
)

ACTS = list(ACTIVATIONS)
#: Exact float64 routes agree to round-off; central differences (step u^{1/3}) to ~1e-9.
EXACT = 1e-10
FD_JACOBIAN = 1e-6
FD_HESSIAN = 1e-5


def normwise(actual, desired) -> float:
    """max |actual − desired| / max |desired| (0 when both vanish)."""
    scale = max(np.abs(desired).max(initial=0.0), np.abs(actual).max(initial=0.0))
    return float(np.abs(actual - desired).max(initial=0.0) / scale) if scale > 0 else 0.0


# ---------------------------------------------------------------------------- hand-worked
def test_hessian_of_a_linear_chain_by_hand():
    """y = w2 (w1 x + b1) + b2, sse, one sample x = 2, t = 0; params [w1, b1, w2, b2].

    With w1 = 3, b1 = 1, w2 = 0.5, b2 = 0: h = 7, y = 3.5, r = y − t = 3.5 and L = ½ r².
    ∂y/∂(w1, b1, w2, b2) = (w2 x, w2, h, 1) = (1, 0.5, 7, 1), so JᵀJ is its outer product;
    the only second derivatives of y are ∂²y/∂w1∂w2 = x = 2 and ∂²y/∂b1∂w2 = 1, each times r.
    """
    net = mlp([1, 1, 1], activation="identity", loss="sse")
    net.params[:] = [3.0, 1.0, 0.5, 0.0]
    X, T = np.array([[2.0]]), np.array([[0.0]])
    j = np.array([1.0, 0.5, 7.0, 1.0])
    expected = np.outer(j, j)
    expected[0, 2] += 3.5 * 2
    expected[2, 0] += 3.5 * 2
    expected[1, 2] += 3.5
    expected[2, 1] += 3.5
    np.testing.assert_allclose(hessian(net, X, T), expected, rtol=1e-14)
    np.testing.assert_allclose(gauss_newton(net, X, T)[0], np.outer(j, j), rtol=1e-14)
    np.testing.assert_allclose(jacobian_params(net, X)[0, 0], j, rtol=1e-14)
    np.testing.assert_allclose(hvp(net, X, T, np.eye(4)), expected, rtol=1e-14)


# ---------------------------------------------------------------------------- Jacobians
@settings(max_examples=40)
@given(problems())
def test_jacobians_match_central_differences(problem):
    net, X, _ = built(problem)
    for wrt in ("params", "inputs"):
        report = check_jacobian(net, X, wrt=wrt)
        assert report.max_rel_error < FD_JACOBIAN, report


@pytest.mark.parametrize(("sizes", "output"), [([2, 3, 4], "sigmoid"), ([5, 3, 2], "softmax"),
                                               ([1, 4, 3], "softmax"), ([3, 3, 3], "tanh"),
                                               ([2, 4], "softmax"), ([3, 2], "identity")])
def test_jacobian_inputs_forward_and_reverse_mode_agree_with_vjp(sizes, output, rng):
    """n_in < n_out takes forward mode, otherwise reverse mode; vjp_inputs is Jᵀ G."""
    loss = "ce" if output == "softmax" else "sse"
    net = mlp(sizes, activation="softplus", output=output, loss=loss, seed=1)
    X, G = rng.normal(size=(4, sizes[0])), rng.normal(size=(4, sizes[-1]))
    J = jacobian_inputs(net, X)
    assert J.shape == (4, sizes[-1], sizes[0])
    assert check_jacobian(net, X, wrt="inputs").max_rel_error < FD_JACOBIAN
    np.testing.assert_allclose(vjp_inputs(net, X, G), np.einsum("nk,nki->ni", G, J), atol=1e-14)


def test_jacobian_params_chunks_and_residual_jacobian(rng):
    net, X, T = build([3, 5, 2], "tanh", ("mse", "sigmoid", "real"), 7, seed=3)
    J = jacobian_params(net, X)
    assert normwise(jacobian_params(net, X, chunk_size=2), J) < 1e-14
    r, Jr = residual_jacobian(net, X, T)
    c = 2 / T.size
    np.testing.assert_allclose(r, np.sqrt(c) * (net.forward(X) - T).ravel(), rtol=1e-14)
    np.testing.assert_allclose(Jr, np.sqrt(c) * J.reshape(T.size, -1), rtol=1e-14)
    loss, grad = net.gradient(X, T)
    assert 0.5 * r @ r == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(Jr.T @ r, grad, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(Jr.T @ Jr, gauss_newton(net, X, T)[0], rtol=1e-12, atol=1e-16)


# ---------------------------------------------------------------------------- Hessian
@settings(max_examples=40)
@given(problems())
def test_hessian_matches_differences_and_hvp(problem):
    net, X, T = built(problem)
    report = check_hessian(net, X, T)
    assert report.max_rel_error < FD_HESSIAN, report
    H = report.analytic
    np.testing.assert_array_equal(H, H.T)
    V = np.random.default_rng(0).normal(size=(net.n_params, 3))
    assert normwise(hvp(net, X, T, V), H @ V) < EXACT
    assert normwise(hvp(net, X, T, V[:, 0]), H @ V[:, 0]) < EXACT
    assert normwise(hessian(net, X, T, chunk_size=1), H) < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
@pytest.mark.parametrize("activation", ACTS)
def test_hessian_every_activation_and_head(activation, head, topology):
    """The full grid on three Dense layers, whatever hypothesis draws."""
    for seed in range(20):
        net, X, T = build([3, 4, 3, 3], activation, head, 5, seed, topology=topology)
        if np.abs(preactivations(net, X)).min() > KINK_MARGIN:
            break
    H = hessian(net, X, T)
    assert normwise(H, hessian_fd(net, X, T)) < FD_HESSIAN
    np.testing.assert_allclose(hessian_diagonal(net, X, T), np.diag(H), rtol=1e-12, atol=1e-15)


def test_check_hessian_report_names_the_worst_entry():
    net, X, T = build([2, 3, 1], "tanh", ("sse", "identity", "real"), 4, seed=0)
    report = check_hessian(net, X, T)
    p, q = report.worst_index
    assert report.worst_entry == f"{net.describe_param(p)} × {net.describe_param(q)}"
    assert report.analytic.shape == report.numeric.shape == (net.n_params, net.n_params)
    assert repr(report).startswith("CurvatureCheck(max_rel_error=")
    jac = check_jacobian(net, X, wrt="inputs")
    assert jac.worst_entry.startswith("sample ") and ", input " in jac.worst_entry


def test_hessian_fd_is_symmetric():
    net, X, T = build([2, 3, 2], "sigmoid", ("bce", "sigmoid", "prob"), 3, seed=0)
    H = hessian_fd(net, X, T)
    np.testing.assert_array_equal(H, H.T)


# ---------------------------------------------------------------------------- Gauss–Newton
def _zero_residual(net, X, head):
    """Targets equal to the outputs (valid for every loss): then δ = 0 and H = G exactly."""
    return net.forward(X)


@settings(max_examples=40)
@given(problems())
def test_gauss_newton_gradient_chunks_and_zero_residual(problem):
    net, X, T = built(problem)
    G, g = gauss_newton(net, X, T)
    np.testing.assert_array_equal(G, G.T)
    assert normwise(g, net.gradient(X, T)[1]) < 1e-12
    G2, g2 = gauss_newton(net, X, T, chunk_size=2)
    assert normwise(G2, G) < 1e-12 and normwise(g2, g) < 1e-12
    V = np.random.default_rng(1).normal(size=(net.n_params, 2))
    assert normwise(gauss_newton_operator(net, X, T) @ V, G @ V) < EXACT
    np.testing.assert_allclose(hessian_diagonal(net, X, T, method="gauss-newton"), np.diag(G),
                               rtol=1e-12, atol=1e-15)
    if problem[2][0] in ("sse", "mse") or problem[2][1] in ("sigmoid", "softmax"):
        Y = net.forward(X)
        if problem[2][0] != "ce" or np.allclose(Y.sum(axis=1), 1, atol=1e-12):
            G0 = gauss_newton(net, X, Y)[0]
            assert normwise(hessian(net, X, Y), G0) < EXACT
            assert normwise(hessian_diagonal(net, X, Y, method="gauss-newton"), np.diag(G0)) < EXACT


def test_gauss_newton_of_sse_is_jtj():
    net, X, T = build([3, 4, 2], "tanh", ("sse", "identity", "real"), 6, seed=2)
    J = jacobian_params(net, X).reshape(-1, net.n_params)
    G, g = gauss_newton(net, X, T)
    np.testing.assert_allclose(G, J.T @ J, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, J.T @ (net.forward(X) - T).ravel(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
def test_gauss_newton_dual_gives_the_primal_step(head):
    net, X, T = build([2, 6, 3], "tanh", head, 4, seed=5)  # N·K = 12 < P = 39
    G, g = gauss_newton(net, X, T)
    dual = gauss_newton_dual(net, X, T)
    n_rows = X.shape[0] * net.n_outputs
    assert dual.Js.shape == (n_rows, net.n_params) and dual.K.shape == (n_rows, n_rows)
    np.testing.assert_allclose(dual.Js.T @ dual.Js, G, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dual.Js.T @ dual.rs, g, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dual.g, g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dual.K, dual.Js @ dual.Js.T, rtol=1e-12, atol=1e-15)
    assert dual.loss == pytest.approx(net.loss(X, T), rel=1e-14)
    for mu in (1e-3, 1.0):
        primal = -np.linalg.solve(G + mu * np.eye(net.n_params), g)
        assert normwise(dual.step(mu), primal) < 1e-8
    if head[0] in ("sse", "mse") and head[1] == "identity":
        assert 0.5 * dual.rs @ dual.rs == pytest.approx(dual.loss, rel=1e-14)
    if head[:2] == ("sse", "identity"):
        np.testing.assert_array_equal(dual.rs, (net.forward(X) - T).ravel())


@pytest.mark.parametrize("head", HEADS[:2] + HEADS[6:8], ids=lambda h: "-".join(h))
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_inverse_hessian_outer_is_the_damped_inverse(head, chunk_size):
    net, X, T = build([2, 3, 2], "tanh", head, 5, seed=4)
    alpha = 0.1
    got = inverse_hessian_outer(net, X, T, alpha, chunk_size=chunk_size)
    G = gauss_newton(net, X, T)[0]
    np.testing.assert_allclose(got, np.linalg.inv(G + alpha * np.eye(net.n_params)),
                               rtol=1e-9, atol=1e-12)
    if head[0] == "sse":  # PRML eq. 5.89 against inv(JᵀJ + αI)
        J = jacobian_params(net, X).reshape(-1, net.n_params)
        np.testing.assert_allclose(got, np.linalg.inv(J.T @ J + alpha * np.eye(net.n_params)),
                                   rtol=1e-9, atol=1e-12)


def test_gauss_newton_memory_stays_below_ten_percent_of_the_jacobian():
    """N = 200,000, P = 481: the full Jacobian would be N·P·8 = 770 MB; we may use 77 MB."""
    net = mlp([10, 40, 1], activation="tanh", loss="sse", seed=0)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(200_000, 10)), rng.normal(size=(200_000, 1))
    tracemalloc.start()
    try:
        G, g = gauss_newton(net, X, T)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert G.shape == (net.n_params, net.n_params)
    assert peak < 0.1 * X.shape[0] * net.n_params * 8, f"peak {peak / 2**20:.1f} MiB"
    np.testing.assert_allclose(g, net.gradient(X, T)[1], rtol=1e-9)


# ---------------------------------------------------------------------------- diagonals
@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
def test_becker_lecun_is_exact_for_a_single_layer(head):
    net, X, T = build([4, 3 if head[1] == "softmax" else 2], "tanh", head, 6, seed=7)
    np.testing.assert_allclose(hessian_diagonal(net, X, T, method="becker-lecun"),
                               np.diag(hessian(net, X, T)), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("sizes", "head", "exact_from"), [
    ([3, 4, 4, 2], ("sse", "identity", "real"), 16),  # C_2 = I and C_1 diagonal: layers 1, 2
    ([3, 4, 3], ("ce", "softmax", "labels"), 16),  # C_1 full (softmax): the output layer only
])
def test_becker_lecun_drops_off_diagonal_terms_of_deeper_nets(sizes, head, exact_from):
    """Exact where the per-sample curvature below is diagonal, approximate further down."""
    net, X, T = build(sizes, "tanh", head, 8, seed=7)
    exact = np.diag(hessian(net, X, T))
    approx = hessian_diagonal(net, X, T, method="becker-lecun")
    np.testing.assert_allclose(approx[exact_from:], exact[exact_from:], rtol=1e-12)
    assert normwise(approx[:exact_from], exact[:exact_from]) > 1e-3
    assert np.corrcoef(approx, exact)[0, 1] > 0.5  # still a sensible approximation


def test_hutchinson_diagonal_and_trace_converge():
    net, X, T = build([2, 3, 2], "tanh", ("sse", "identity", "real"), 5, seed=0)
    H = hessian(net, X, T)
    diag = hessian_diagonal(net, X, T, method="hutchinson", n_samples=4000, seed=0)
    assert normwise(diag, np.diag(H)) < 0.1
    trace = hessian_trace(net, X, T, n_samples=4000, seed=1)
    assert trace == pytest.approx(np.trace(H), rel=0.05)
    assert hessian_trace(net, X, T, n_samples=10, seed=3) == hessian_trace(net, X, T, 10, seed=3)


# ---------------------------------------------------------------------------- spectra
@pytest.mark.parametrize("which", ["LA", "SA", "LM", "SM", "BE"])
@pytest.mark.parametrize(("sizes", "k"), [([3, 6, 2], 3), ([2, 4, 1], 4), ([1, 1, 1], 1)])
def test_hessian_eigenvalues_match_dense(sizes, k, which):
    """P = 38 and 17 go through Lanczos; P = 4 ≤ 2k + 1 through the dense fallback."""
    net, X, T = build(sizes, "tanh", ("mse", "identity", "real"), 6, seed=1)
    w = np.linalg.eigvalsh(hessian(net, X, T))
    got = hessian_eigenvalues(net, X, T, k=k, which=which)
    if which == "LA":
        expected = w[-k:]
    elif which == "SA":
        expected = w[:k]
    elif which == "BE":
        expected = np.concatenate([w[: k // 2], w[w.size - (k + 1) // 2:]])
    else:
        order = np.argsort(np.abs(w))
        expected = np.sort(w[order[-k:] if which == "LM" else order[:k]])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10 * np.abs(w).max())


def test_operators_are_symmetric_snapshots(rng):
    net, X, T = build([2, 4, 3], "softplus", ("ce", "softmax", "labels"), 5, seed=0)
    H, G = hessian(net, X, T), gauss_newton(net, X, T)[0]
    op_h, op_g = hessian_operator(net, X, T), gauss_newton_operator(net, X, T)
    net.params[:] = 0  # the operators keep the parameters they were built at
    v, V = rng.normal(size=net.n_params), rng.normal(size=(net.n_params, 2))
    for op, M in ((op_h, H), (op_g, G)):
        assert op.shape == M.shape and op.dtype == np.float64
        assert normwise(op.matvec(v), M @ v) < EXACT
        assert normwise(op.rmatvec(v), M @ v) < EXACT
        assert normwise(op.matmat(V), M @ V) < EXACT
        assert normwise(op.T @ v, M @ v) < EXACT


# ---------------------------------------------------------------------------- float32
#: float32 against float64 on the same float32-representable weights and data: a search over
#: 540 nets (every head, smooth activations) saw at most 2e-6; 1e-4 still catches real errors.
FLOAT32 = 1e-4


@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
def test_float32_in_float32_out(head):
    net64, X, T = build([3, 4, 3, 2 if head[1] != "softmax" else 3], "tanh", head, 5, seed=0)
    net32 = net64.copy(np.float32)
    X64 = X.astype(np.float32).astype(np.float64)
    V = np.random.default_rng(0).normal(size=(net64.n_params, 2))
    cases = [
        (lambda n, x: jacobian_params(n, x)), (lambda n, x: jacobian_inputs(n, x)),
        (lambda n, x: hessian(n, x, T)), (lambda n, x: hvp(n, x, T, V)),
        (lambda n, x: gauss_newton(n, x, T)[0]), (lambda n, x: gauss_newton(n, x, T)[1]),
        (lambda n, x: hessian_diagonal(n, x, T)),
        (lambda n, x: hessian_diagonal(n, x, T, method="becker-lecun")),
        (lambda n, x: inverse_hessian_outer(n, x, T, 1.0)),
        (lambda n, x: gauss_newton_dual(n, x, T).Js),
        (lambda n, x: hessian_operator(n, x, T) @ V),
        (lambda n, x: hessian_eigenvalues(n, x, T, k=2)),
    ]
    for fn in cases:
        got, ref = fn(net32, X.astype(np.float32)), fn(net64, X64)
        assert got.dtype == np.float32
        assert normwise(got, ref) < FLOAT32


# ---------------------------------------------------------------------------- BLAS paths
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_add_accumulates_in_place(dtype, rng):
    """C += A @ B through BLAS gemm (β = 1) for C-, F- and non-contiguous operands."""
    from deltaprop.kernels import SMALL_GEMM, matmul_add

    A = rng.normal(size=(300, 40)).astype(dtype)
    B = rng.normal(size=(150, 40)).astype(dtype).T  # F-contiguous
    C = rng.normal(size=(300, 150)).astype(dtype)
    assert C.size >= SMALL_GEMM
    for left in (A, np.asfortranarray(A), A[:, ::1][::1]):
        expected = C + left @ B
        target = C.copy()
        matmul_add(left, B, target)
        np.testing.assert_allclose(target, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    strided = np.repeat(A, 2, axis=1)[:, ::2]  # neither C- nor F-contiguous
    target = C.copy()
    matmul_add(strided, B, target)
    np.testing.assert_allclose(target, C + A @ B, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_hvp_on_wide_layers_takes_the_blas_path(monkeypatch, rng):
    """Layers wide enough for in-place gemm: same H V as the plain numpy path."""
    from deltaprop import kernels

    net, X, T = build([3, 160, 150, 2], "tanh", ("mse", "identity", "real"), 220, seed=0)
    V = rng.normal(size=(net.n_params, 3))
    fast = hvp(net, X, T, V)
    monkeypatch.setattr(kernels, "SMALL_GEMM", 2**62)
    assert normwise(fast, hvp(net, X, T, V)) < 1e-12
    eps = 1e-5  # and a directional difference of gradients, error O(eps²)
    w0 = net.params.copy()
    net.params[:] = w0 + eps * V[:, 0]
    g_plus = net.gradient(X, T)[1]
    net.params[:] = w0 - eps * V[:, 0]
    g_minus = net.gradient(X, T)[1]
    net.params[:] = w0
    assert normwise(fast[:, 0], (g_plus - g_minus) / (2 * eps)) < 1e-6


# ---------------------------------------------------------------------- Gauss–Newton internals
@pytest.mark.parametrize("loss, output", [("mse", "identity"), ("ce", "softmax")])
def test_gauss_newton_upper_is_the_upper_triangle(loss, output):
    from deltaprop.curvature import gauss_newton_upper
    from deltaprop.curvature._common import check_data, loss_pass

    rng = np.random.default_rng(3)
    net = mlp([3, 7, 4], output=output, loss=loss, seed=1)
    X = rng.normal(size=(600, 3))
    T = rng.integers(0, 4, 600) if loss == "ce" else rng.normal(size=(600, 4))
    G, g = gauss_newton(net, X, T, chunk_size=250)
    U, u = gauss_newton_upper(net, *check_data(net, X, T), chunk_size=250)
    assert U.flags.f_contiguous and np.array_equal(u, g)
    assert np.array_equal(np.triu(U), np.triu(G)) and not np.tril(U, -1).any()
    # the first-order pass leaves out h''(z) but nothing else
    full = loss_pass(net, *check_data(net, X, T))
    first = loss_pass(net, *check_data(net, X, T), second_order=False)
    assert all(h is None for h in first.curvature)
    assert any(h is not None for h in full.curvature)
    assert all(np.array_equal(a, b) for a, b in zip(full.deltas, first.deltas, strict=True))
