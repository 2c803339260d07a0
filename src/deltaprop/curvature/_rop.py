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
from ._common import Array, LossPass, check_data, check_directions, loss_pass


def hvp_rows(p: LossPass, V: Array) -> Array:
    """H V for directions V (k, P) as rows (k, P), through a pass with targets."""
    out = np.empty_like(V)
    if V.shape[0] == 0:
        return out
    net = p.net
    tangents = net.tangent(p.record, V)
    RD = np.ascontiguousarray(net.head.hess_z(p.z, p.y, p.t, tangents[0][-1], p.c))
    return net.tangent_backward(p.record, p.deltas, p.curvature, tangents, RD, V, out)


def gnvp_rows(p: LossPass, V: Array) -> Array:
    """G V for directions V (k, P) as rows (k, P): J v by the forward R-pass, then Jᵀ M (J v)."""
    out = np.empty_like(V)
    if V.shape[0] == 0:
        return out
    net = p.net
    RZ = net.tangent(p.record, V)[0]
    MJv = np.ascontiguousarray(net.head.gn_z(p.z, p.y, p.t, RZ[-1], p.c))
    return net.param_grad(p.record, p.backward_rows(MJv), out)


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
    HV = hvp_rows(loss_pass(net, X, T), rows)
    return HV[0] if np.ndim(V) == 1 else np.ascontiguousarray(HV.T)


def symmetric_operator(rows_fn, p: LossPass, n_params: int, dtype: np.dtype) -> LinearOperator:
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
    return symmetric_operator(hvp_rows, loss_pass(net.copy(), X, T), net.n_params, net.dtype)


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
    return symmetric_operator(gnvp_rows, loss_pass(net.copy(), X, T), net.n_params, net.dtype)
