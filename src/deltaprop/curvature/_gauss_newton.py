"""The (generalised) Gauss–Newton matrix Σ_n J_nᵀ M_n J_n, primal and dual, and its inverse."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from ..linalg import solve_damped
from ..network import Network
from ._common import (
    Array,
    LossPass,
    batch_normalisation,
    check_chunk_size,
    check_data,
    check_positive_float,
    chunks,
    default_chunk,
    loss_pass,
)


def scaled_jacobian(p: LossPass) -> Array:
    """Rows S_n J_n of every sample of a pass, (N·K, P) n-major: J_n = ∂z_L/∂w, M_n = S_nᵀS_n."""
    n, k = p.z.shape
    out = np.empty((n, k, p.net.n_params), dtype=p.z.dtype)
    p.net.param_rows(p.record, p.backward_rows(p.gn_factor()), out)
    return out.reshape(n * k, -1)


def pass_gradient(p: LossPass) -> Array:
    """∂L/∂w (P,) from the errors δ_l of a pass with targets."""
    return p.net.param_grad(p.record, p.deltas)


@functools.lru_cache(maxsize=8)
def _strict_lower(n: int) -> tuple[Array, Array]:
    """``np.tril_indices(n, -1)``, cached (read-only): building them costs O(n²) each call."""
    idx = np.tril_indices(n, -1)
    for a in idx:
        a.flags.writeable = False
    return idx


def mirror_upper(G: Array, block: int = 1024) -> Array:
    """Copy the upper triangle of a square matrix into its lower triangle, in place."""
    n = G.shape[0]
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        diag = G[i0:i1, i0:i1]
        idx = _strict_lower(i1 - i0)
        diag[idx] = diag.T[idx]
        G[i1:, i0:i1] = G[i0:i1, i1:].T
    return G


def gauss_newton_upper(
    net: Network, X: Array, T: Array, chunk_size: int | None = None
) -> tuple[Array, Array]:
    """:func:`gauss_newton` without the mirroring: (G_F, g) with G_F Fortran-ordered (P, P)
    whose UPPER triangle (diagonal included) holds G and whose strict lower triangle is zero.

    For solvers that read one triangle only (LAPACK ``potrf(lower=0)``), e.g.
    Levenberg–Marquardt: skips the O(P²) copy of the upper into the lower triangle.  X and T
    must already be validated (:func:`check_data`).
    """
    chunk_size = check_chunk_size(chunk_size)
    (n, k), n_params = T.shape, net.n_params
    size = chunk_size or default_chunk(k, n_params, net.dtype.itemsize)
    syrk = get_blas_funcs("syrk", dtype=net.dtype)
    G = np.zeros((n_params, n_params), dtype=net.dtype, order="F")
    g = np.zeros(n_params, dtype=net.dtype)
    c = batch_normalisation(net, n)
    for rows in chunks(n, size):
        p = loss_pass(net, X[rows], T[rows], c, second_order=False)
        G = syrk(1.0, scaled_jacobian(p).T, beta=1.0, c=G, trans=0, lower=0, overwrite_c=1)
        g += pass_gradient(p)
    return G, g


def gauss_newton(
    net: Network, X: object, T: object, chunk_size: int | None = None
) -> tuple[Array, Array]:
    """Gauss–Newton (outer-product) matrix of ``net.loss`` and its gradient.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets as accepted by ``net.loss``
    chunk_size : int, optional
        Samples per block; default: blocks of S J of a few MB (at least 512 rows).

    Returns
    -------
    G : ndarray (P, P)
        G = Σ_n J_nᵀ M_n J_n, J_n = ∂z_L/∂w (n_out, P) the logits' Jacobian of sample n and
        M_n the head's Gauss–Newton output matrix: c I for "sse"/"mse" with an identity output
        (c = 1, 2/(N K)), so that G = JᵀJ exactly as in Levenberg–Marquardt for "sse";
        c h'(z)² on the diagonal for squared errors after an output activation h;
        y(1 − y)/N for "bce"; (diag y − y yᵀ)/N for "ce".  Symmetric positive semi-definite.
    g : ndarray (P,)
        The gradient of ``net.loss`` (as ``net.gradient``).

    Notes
    -----
    With M_n = S_nᵀ S_n (S = diag √m, or √c (diag √y − √y yᵀ) for softmax) the rows S_n J_n are
    backpropagated K per sample and accumulated by a symmetric rank-k update (BLAS ``syrk``)
    per chunk, so memory is O(P² + chunk·K·P), never the whole Jacobian.  Costs one forward and
    one batched backward pass of K rows per sample plus N·K·P² flops.

    References
    ----------
    Bishop & Bishop 2024 §8.1.6; PRML §5.4.2; Schraudolph 2002 (generalised
    Gauss–Newton); Marquardt 1963.
    """
    X, T = check_data(net, X, T)
    G, g = gauss_newton_upper(net, X, T, chunk_size)
    return mirror_upper(G).T, g


class GaussNewtonDual(NamedTuple):
    """The Gauss–Newton matrix in factored ("dual") form: G = Jsᵀ Js, g = Jsᵀ rs.

    Attributes
    ----------
    Js : ndarray (N·K, P)
        The √M-scaled Jacobian: rows S_n ∂z_L/∂w of each sample (n-major, then k), with
        M_n = S_nᵀ S_n the head's Gauss–Newton output matrix (see :func:`gauss_newton`).
        For "sse" with an identity output Js = ∂y/∂w.
    rs : ndarray (N·K,)
        Scaled residuals with Jsᵀ rs = g: rs = δ_L / √d element-wise, δ_L = ∂L/∂z_L and d the
        diagonal of M ("sse"/"mse"/"bce") or c·y for "ce" (the softmax factor above).  For
        "sse" with an identity output rs = y − t; for "mse" rs = √c (y − t), so ½‖rs‖² = L for
        both.  Where d = 0 (an output whose curvature underflows, e.g. a sigmoid saturated to
        y = 1.0 exactly) rs = 0: that output's gradient share is dropped from the dual step.
    K : ndarray (N·K, N·K)
        The Gram matrix Js Jsᵀ (symmetric positive semi-definite).
    g : ndarray (P,)
        The exact gradient of ``net.loss`` (equals Jsᵀ rs up to the rule for d = 0).
    loss : float
        ``net.loss(X, T)``.
    """

    Js: Array
    rs: Array
    K: Array
    g: Array
    loss: float

    def step(self, mu: float) -> Array:
        """The Levenberg–Marquardt step −(G + μI)⁻¹ g in the dual, −Jsᵀ (K + μI)⁻¹ rs (P,).

        Equal to the primal step by the push-through identity
        (JsᵀJs + μI)⁻¹ Jsᵀ = Jsᵀ (Js Jsᵀ + μI)⁻¹; costs a Cholesky factorisation of size N·K.
        ``mu`` must be positive.
        """
        mu = check_positive_float(mu, "mu")
        minus_v, ok = solve_damped(self.K, self.rs, mu, 1.0)  # −(K + μI)⁻¹ rs
        if not ok:
            raise np.linalg.LinAlgError(f"K + {mu:g} I is not numerically positive definite.")
        return self.Js.T @ minus_v


def gauss_newton_dual(net: Network, X: object, T: object) -> GaussNewtonDual:
    """The Gauss–Newton matrix in the dual (J Jᵀ) form, for N·n_out < P.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets

    Returns
    -------
    GaussNewtonDual
        ``(Js (N·K, P), rs (N·K,), K (N·K, N·K), g (P,), loss)`` with G = JsᵀJs the matrix of
        :func:`gauss_newton`, g = Jsᵀ rs its gradient and K = Js Jsᵀ.  The LM step
        δ = −(G + μI)⁻¹ g = −Jsᵀ (K + μI)⁻¹ rs is ``.step(mu)``; the Gauss–Newton model of the
        loss is L(w + δ) ≈ L − ½‖rs‖² + ½‖rs + Js δ‖² (= ½‖rs + Js δ‖² for "sse"/"mse" with an
        identity output).  Costs one forward pass, one backward pass of K rows per sample and
        (N K)² P flops for K: cheaper than the primal's N K P² when N·K < P.

    References
    ----------
    Bishop & Bishop 2024 §8.1.6; PRML §5.4.2–5.4.3; Schraudolph 2002; Marquardt 1963.
    """
    X, T = check_data(net, X, T)
    p = loss_pass(net, X, T, second_order=False)
    Js = scaled_jacobian(p)
    rs = net.head.scaled_residuals(p.z, p.y, p.deltas[-1], p.c)
    loss = net.record_loss(p.record, T, p.c)
    return GaussNewtonDual(Js, rs.ravel(), Js @ Js.T, pass_gradient(p), loss)


def inverse_hessian_outer(
    net: Network, X: object, T: object, alpha: float, chunk_size: int | None = None
) -> Array:
    """Inverse of the outer-product Hessian approximation by sequential updates.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    alpha : float
        Positive initial diagonal: the recursion starts from H⁻¹ = α⁻¹ I.
    chunk_size : int, optional
        Samples added per update (default 1: one sample's outer products at a time).

    Returns
    -------
    ndarray (P, P)
        (G + αI)⁻¹ with G the Gauss–Newton matrix of :func:`gauss_newton`; for "sse"
        (identity output) inv(JᵀJ + αI).

    Notes
    -----
    PRML eq. 5.89: adding the outer product b bᵀ of one pattern,
    H⁻¹ ← H⁻¹ − (H⁻¹ b)(bᵀ H⁻¹) / (1 + bᵀ H⁻¹ b).  Here the rows B of S_n J_n of each chunk
    (K per sample) are added at once by the Woodbury identity
    H⁻¹ ← H⁻¹ − U (I + B U)⁻¹ Uᵀ, U = H⁻¹ Bᵀ, which is eq. 5.89 for one row.  Costs
    4 N K P² flops and O(P²) memory.

    References
    ----------
    PRML §5.4.3 (eq. 5.87–5.89); Bishop & Bishop 2024 §8.1.6; Hassibi & Stork 1993.
    """
    alpha = check_positive_float(alpha, "alpha")
    X, T = check_data(net, X, T)
    per_update = check_chunk_size(chunk_size) or 1
    (n, k), n_params = T.shape, net.n_params
    size = max(1, default_chunk(k, n_params, net.dtype.itemsize) // per_update) * per_update
    H_inv = np.eye(n_params, dtype=net.dtype) / net.dtype.type(alpha)
    c = batch_normalisation(net, n)
    for rows in chunks(n, size):
        p = loss_pass(net, X[rows], None, c)
        block = scaled_jacobian(p).reshape(rows.stop - rows.start, k, n_params)
        for sub in chunks(block.shape[0], per_update):
            _woodbury_add(H_inv, block[sub].reshape(-1, n_params))
    H_inv += H_inv.T
    H_inv *= 0.5
    return H_inv


def _woodbury_add(H_inv: Array, B: Array) -> None:
    """H⁻¹ ← (H + BᵀB)⁻¹ in place, by the Woodbury identity."""
    U = H_inv @ B.T
    inner = B @ U
    inner[np.diag_indices_from(inner)] += 1
    H_inv -= U @ np.linalg.solve(inner, U.T)
