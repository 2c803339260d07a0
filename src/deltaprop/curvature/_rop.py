"""Pearlmutter's R-operator: exact Hessian–vector products, batched over directions.

For a direction v in parameter space (V_l, v_l the parts for layer l) write R{·} = ∂(·)/∂w · v.
The forward R-pass (PRML §5.4.6, eq. 5.98ff)::

    R{z_l} = V_l a_{l-1} + v_l + W_l R{a_{l-1}},      R{a_l} = h'(z_l) ⊙ R{z_l},   R{a_0} = 0

the output R{δ_L} = (∂²L/∂z_L²) R{z_L} (the head's ``hess_z``), and the backward R-pass::

    R{δ_{l-1}} = h''(z_{l-1}) ⊙ R{z_{l-1}} ⊙ (W_lᵀ δ_l) + h'(z_{l-1}) ⊙ (V_lᵀ δ_l + W_lᵀ R{δ_l})
    R{∂L/∂W_l} = Σ_n R{δ_l} a_{l-1}ᵀ + δ_l R{a_{l-1}}ᵀ,     R{∂L/∂b_l} = Σ_n R{δ_l}

give H v = R{∇L}.  k directions travel together as arrays (N, k, width), so each step is one
matrix product.  The Gauss–Newton product G v uses the same forward R-pass, the output matrix M
instead of ∂²L/∂z_L², and a plain batched backward pass (Schraudolph 2002).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ..network import Network
from ._common import (
    Array,
    Pass,
    backward_rows,
    check_data,
    check_directions,
    forward_pass,
    layer_views,
    matmul_add,
    rows_matmul,
    sum_rows,
)


def _r_forward(p: Pass, VW: list[Array], Vb: list[Array]) -> tuple[list[Array], list[Array]]:
    """R{z_l} (N, k, n_l) of every layer and R{a_l} of every hidden layer."""
    n, k = p.z.shape[0], Vb[0].shape[0]
    RZ: list[Array] = []
    RA: list[Array] = []
    for ell, (W, V, v) in enumerate(zip(p.W, VW, Vb, strict=True)):
        n_out, n_in = W.shape
        rz = p.A[ell] @ V.transpose(2, 0, 1).reshape(n_in, k * n_out)
        if ell > 0:
            matmul_add(RA[-1].reshape(n * k, n_in), W.T, rz.reshape(n * k, n_out))
        rz = rz.reshape(n, k, n_out)
        rz += v
        RZ.append(rz)
        if ell < p.n_layers - 1:
            RA.append(rz * p.dh[ell][:, None, :])
    return RZ, RA


def _r_backward(p: Pass, R: tuple[list[Array], list[Array]], VW: list[Array], RD: Array,
                out: Array) -> None:
    """Backward R-pass from R{δ_L} (N, k, K), writing R{∇L} into out (k, P).

    Overwrites the R{z_l} of ``R`` (they are not needed afterwards).
    """
    (RZ, RA), (n, k) = R, RD.shape[:2]
    views = layer_views(out, p.W)
    for ell in range(p.n_layers - 1, -1, -1):
        (w_view, b_view), A, W = views[ell], p.A[ell], p.W[ell]
        n_out, n_in = W.shape
        _weight_rows(RD, A, None if ell == 0 else (p.delta[ell], RA[ell - 1]), w_view)
        b_view[...] = RD.sum(axis=0)
        if ell == 0:
            return
        RG = rows_matmul(RD, W)
        VW_l = VW[ell].swapaxes(0, 1).reshape(n_out, k * n_in)
        matmul_add(p.delta[ell], VW_l, RG.reshape(n, k * n_in))
        RG *= p.dh[ell - 1][:, None, :]
        if p.hg[ell - 1] is not None:
            rz = RZ[ell - 1]
            rz *= p.hg[ell - 1][:, None, :]
            RG += rz
        RD = RG


def _weight_rows(RD: Array, A: Array, extra: tuple[Array, Array] | None, w_view: Array) -> None:
    """R{∂L/∂W_l} = Σ_n R{δ_l} a_{l-1}ᵀ (+ δ_l R{a_{l-1}}ᵀ) into w_view (k, n_out, n_in)."""
    n, k, n_out = RD.shape
    if k == 1:  # w_view[0] is contiguous: accumulate in place
        np.matmul(RD.reshape(n, n_out).T, A, out=w_view[0])
        if extra is not None:
            matmul_add(extra[0].T, extra[1].reshape(n, -1), w_view[0])
        return
    w_view[...] = (RD.reshape(n, k * n_out).T @ A).reshape(k, n_out, -1)
    if extra is not None:
        delta, RA = extra
        w_view += (delta.T @ RA.reshape(n, -1)).reshape(n_out, k, -1).swapaxes(0, 1)


def _split(p: Pass, V: Array) -> tuple[list[Array], list[Array]]:
    """Per-layer parts (k, n_l, n_in) and (k, n_l) of directions V (k, P)."""
    views = layer_views(V, p.W)
    return [w for w, _ in views], [b for _, b in views]


def hvp_rows(p: Pass, V: Array) -> Array:
    """H V for directions V (k, P) as rows (k, P), through a pass with targets."""
    out = np.empty_like(V)
    if V.shape[0] == 0:
        return out
    VW, Vb = _split(p, V)
    R = _r_forward(p, VW, Vb)
    RD = p.head.hess_z(p.z, p.y, p.t, R[0][-1].transpose(0, 2, 1)).transpose(0, 2, 1)
    RD = np.ascontiguousarray(RD * p.scale if p.scale != 1.0 else RD)
    _r_backward(p, R, VW, RD, out)
    return out


def gnvp_rows(p: Pass, V: Array) -> Array:
    """G V for directions V (k, P) as rows (k, P): J v by the forward R-pass, then Jᵀ M (J v)."""
    out = np.empty_like(V)
    if V.shape[0] == 0:
        return out
    RZ = _r_forward(p, *_split(p, V))[0]
    MJv = p.head.gn_z(p.z, p.y, p.t, RZ[-1].transpose(0, 2, 1)).transpose(0, 2, 1)
    MJv = np.ascontiguousarray(MJv * p.scale if p.scale != 1.0 else MJv)
    sum_rows(p, backward_rows(p, MJv), out)
    return out


def hvp(net: Network, X: object, T: object, V: object) -> Array:
    """Exact Hessian–vector products H V by Pearlmutter's R-operator.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    V : array_like (P,) or (P, k)
        Directions in parameter space (``net.params`` order).

    Returns
    -------
    ndarray, the shape of V
        H V with H = ∂²L/∂w∂w the exact Hessian of ``net.loss(X, T)``.

    Notes
    -----
    One forward and one backward pass (for z_l, a_l, δ_l), then one forward R-pass and one
    backward R-pass carrying the k directions together (see the module notes): about 8 matrix
    products per layer for k = 1 against 3 for a gradient (2–2.7 gradients in time), and 6 more
    per layer for each further column.

    References
    ----------
    Pearlmutter 1994; PRML §5.4.6 (eq. 5.98ff); Bishop & Bishop 2024 §8.1.6.
    """
    X, T = check_data(net, X, T)
    rows = check_directions(V, net.n_params, net.dtype)
    HV = hvp_rows(forward_pass(net, X, T), rows)
    return HV[0] if np.ndim(V) == 1 else np.ascontiguousarray(HV.T)


def symmetric_operator(rows_fn, p: Pass, n_params: int, dtype: np.dtype) -> LinearOperator:
    """A symmetric LinearOperator whose products run ``rows_fn(p, V (k, P))``."""

    def matmat(M: Array) -> Array:
        rows = np.ascontiguousarray(np.asarray(M, dtype=dtype).reshape(n_params, -1).T)
        return np.ascontiguousarray(rows_fn(p, rows).T)

    def matvec(v: Array) -> Array:
        return matmat(v)[:, 0]

    return LinearOperator((n_params, n_params), matvec=matvec, rmatvec=matvec,
                          matmat=matmat, rmatmat=matmat, dtype=dtype)


def hessian_operator(net: Network, X: object, T: object) -> LinearOperator:
    """The Hessian of ``net.loss(X, T)`` as a symmetric ``scipy.sparse.linalg.LinearOperator``.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets

    Returns
    -------
    LinearOperator (P, P)
        ``matvec``/``matmat`` run the batched R-operator of :func:`hvp` on a forward pass
        cached now (the parameters are copied: later changes to ``net.params`` do not affect
        it).  Each product of k columns costs one forward and one backward R-pass (about 6
        matrix products per layer and column); no P×P matrix is ever formed.

    References
    ----------
    Pearlmutter 1994; PRML §5.4.6.
    """
    X, T = check_data(net, X, T)
    return symmetric_operator(hvp_rows, forward_pass(net, X, T), net.n_params, net.dtype)


def gauss_newton_operator(net: Network, X: object, T: object) -> LinearOperator:
    """The Gauss–Newton matrix of :func:`gauss_newton` as a symmetric LinearOperator.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets

    Returns
    -------
    LinearOperator (P, P)
        G v = Σ_n J_nᵀ M_n (J_n v): J v by the forward R-pass, then one batched backward pass
        (Schraudolph 2002), on a forward pass cached now.  Cost per product: about 4 matrix
        products per layer and column; no P×P matrix is formed.

    References
    ----------
    Schraudolph 2002; PRML §5.4.2, §5.4.6.
    """
    X, T = check_data(net, X, T)
    return symmetric_operator(gnvp_rows, forward_pass(net, X, T), net.n_params, net.dtype)
