"""Shared machinery of the curvature package: validation, sample chunks and cached passes.

A :class:`Pass` holds one forward pass through a batch (the inputs a_{l-1} of every Dense
layer, h'(z) of every hidden layer, z_L and y) and, when targets are given, the backward errors
δ_l = ∂L/∂z_l and the hidden curvature weights h''(z_l) ⊙ ∂L/∂a_l.  Every second-order routine
of the package (Jacobians, Gauss–Newton, R-operator, structural Hessian) reads from it.

Batched quantities use the layout (N, m, width): sample, then one of m rows or directions, then
the layer's units, so that a product with a weight matrix is ONE matrix product of shape
(N·m, width) @ (width, width').
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from .._validation import (  # noqa: F401  (re-exported for the curvature modules)
    as_float_array,
    check_choice,
    check_finite,
    check_positive_float,
    check_positive_int,
)
from ..losses import Head
from ..network import Network

Array = np.ndarray

#: Target size of one block of per-sample rows (Jacobian rows of a chunk of samples).
BLOCK_BYTES = 4 * 2**20
#: Fewest rows of one Gauss–Newton block, so that each rank-k update is BLAS-3 efficient.
MIN_BLOCK_ROWS = 512
#: Target size of the per-sample curvature matrices and Hessian panels of one chunk.
PANEL_BYTES = 32 * 2**20


# ---------------------------------------------------------------------- validation
def check_chunk_size(chunk_size: object) -> int | None:
    """None, or a positive integer number of samples per chunk."""
    return check_positive_int(chunk_size, "chunk_size", allow_none=True)


def check_data(net: Network, X: object, T: object) -> tuple[Array, Array]:
    """Validated inputs (N, n_in) and targets (N, n_out) in the network's dtype."""
    return net._check_data(X, T)


def check_directions(V: object, n_params: int, dtype: np.dtype, name: str = "V") -> Array:
    """Directions V (P,) or (P, k) -> contiguous (k, P) rows in ``dtype``."""
    arr = as_float_array(V, name, dtype)
    if arr.ndim not in (1, 2) or arr.shape[0] != n_params:
        raise ValueError(
            f"`{name}` must have shape (P,) or (P, k) with P = {n_params} (the number of "
            f"parameters); got shape {arr.shape}."
        )
    check_finite(arr, name)
    return np.ascontiguousarray(arr.reshape(n_params, -1).T)


# ---------------------------------------------------------------------- chunks
def default_chunk(rows_per_sample: int, width: int, itemsize: int) -> int:
    """Samples per chunk so that one block of rows (rows_per_sample·chunk, width) is a few MB."""
    rows = max(MIN_BLOCK_ROWS, BLOCK_BYTES // max(1, width * itemsize))
    return max(1, rows // max(1, rows_per_sample))


def panel_chunk(net: Network) -> int:
    """Samples per chunk so that the per-sample curvature matrices C_l fill about PANEL_BYTES."""
    per_sample = 3 * sum(w * w for w in net.sizes[1:]) * net.dtype.itemsize
    return max(1, PANEL_BYTES // per_sample)


def chunks(n_samples: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk_size`` samples."""
    for start in range(0, n_samples, chunk_size):
        yield slice(start, min(n_samples, start + chunk_size))


def chunk_scale(head: Head, n_total: int, n_chunk: int, n_out: int) -> float:
    """Factor turning a chunk's normalisation c(n_chunk) into the whole batch's c(n_total).

    The heads normalise by the batch they see (1/N for the cross-entropies, 2/(N K) for "mse"),
    and δ_L, the output Hessian and the Gauss–Newton matrix are linear in that factor.
    """
    return head.normalisation(n_total, n_out) / head.normalisation(n_chunk, n_out)


# ---------------------------------------------------------------------- cached passes
#: Activations with h'' = 0 (almost everywhere): their curvature terms are skipped.
PIECEWISE_LINEAR = ("identity", "relu", "leaky_relu")


@dataclass
class Pass:
    """One forward pass (and optionally its backward errors) through a batch.

    Attributes
    ----------
    A : list of ndarray
        ``A[l]`` = a_{l-1} (N, n_{l-1}), the input of Dense layer l (``A[0]`` is X).
    W : list of ndarray
        Copies of the weight matrices W_l (n_l, n_{l-1}).
    dh : list of ndarray
        h_l'(z_l) (N, n_l) of every hidden layer (L − 1 entries).
    z, y : ndarray (N, K)
        Output pre-activations z_L and outputs y.
    head : Head
    t : ndarray (N, K) or None
        Targets.
    scale : float
        Factor applied to the head's δ_L and output curvature (see :func:`chunk_scale`).
    delta : list of ndarray
        δ_l = ∂L/∂z_l (N, n_l), when targets are given.
    hg : list of ndarray or None
        h_l''(z_l) ⊙ ∂L/∂a_l (N, n_l) of every hidden layer when targets are given; None for
        a piecewise-linear activation (h'' = 0).
    """

    A: list[Array]
    W: list[Array]
    dh: list[Array]
    z: Array
    y: Array
    head: Head
    t: Array | None = None
    scale: float = 1.0
    delta: list[Array] = field(default_factory=list)
    hg: list[Array | None] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.W)


def forward_pass(net: Network, X: Array, T: Array | None = None, scale: float = 1.0,
                 second_order: bool = True) -> Pass:
    """Run the forward pass on validated X and cache what the curvature routines need.

    With targets T (N, K), also backpropagate δ_l and the hidden curvature weights (scaled by
    ``scale``).  Costs one forward pass (and one backward pass with T).  ``second_order=False``
    skips h''(z) and the curvature weights (``hg`` all None): for the Gauss–Newton routines,
    which use first derivatives only.
    """
    z, y = net._forward_head(X)
    hidden = net.activations[:-1]
    p = Pass(
        A=[dense.A for dense in net.dense_layers],
        W=[dense.W.copy() for dense in net.dense_layers],
        dh=[act.fn.df(act.Z, act.A) for act in hidden],
        z=z, y=y, head=net.head, t=T, scale=scale,
    )
    if T is not None:
        d2h = [None if not second_order or act.name in PIECEWISE_LINEAR
               else act.fn.d2f(act.Z, act.A) for act in hidden]
        _backward_errors(p, d2h)
    return p


def _backward_errors(p: Pass, d2h: list[Array | None]) -> None:
    """δ_L from the head, then δ_{l-1} = (δ_l W_l) ⊙ h'(z_{l-1}) and hg_{l-1} = h'' ⊙ δ_l W_l."""
    delta = p.head.delta(p.z, p.y, p.t)
    if p.scale != 1.0:
        delta *= p.scale
    deltas, hgs = [delta], []
    for ell in range(p.n_layers - 1, 0, -1):
        g = delta @ p.W[ell]
        hg = d2h[ell - 1]
        if hg is not None:
            hg *= g
        hgs.append(hg)
        g *= p.dh[ell - 1]
        delta = g
        deltas.append(delta)
    p.delta, p.hg = deltas[::-1], hgs[::-1]


def rows_matmul(D: Array, W: Array) -> Array:
    """(..., n) @ (n, m) as one matrix product over all leading axes -> (..., m)."""
    flat = np.ascontiguousarray(D).reshape(-1, D.shape[-1]) @ W
    return flat.reshape(*D.shape[:-1], W.shape[1])


def _blas_operand(M: Array) -> tuple[Array, int]:
    """(F-contiguous array, trans flag) whose BLAS op(·) is Mᵀ, without copying when possible."""
    if M.flags.c_contiguous:
        return M.T, 0
    if M.flags.f_contiguous:
        return M, 1
    return np.ascontiguousarray(M).T, 0


#: BLAS gemm by dtype, for :func:`matmul_add`.
GEMM = {np.dtype(t): get_blas_funcs("gemm", dtype=t) for t in (np.float64, np.float32)}
#: Below this many entries of C, ``C += A @ B`` is cheaper than calling BLAS directly.
SMALL_GEMM = 2**15


def matmul_add(A: Array, B: Array, C: Array) -> None:
    """C += A @ B in place, without a temporary (BLAS gemm with β = 1); C is C-contiguous 2-D."""
    if C.size < SMALL_GEMM:
        C += A @ B
        return
    b, trans_b = _blas_operand(A)
    a, trans_a = _blas_operand(B)
    out = GEMM[C.dtype](1.0, a, b, beta=1.0, c=C.T, trans_a=trans_a, trans_b=trans_b,
                        overwrite_c=1)
    if not np.may_share_memory(out, C):  # f2py had to copy C: store the result back
        C[...] = out.T


def backward_rows(p: Pass, D: Array) -> list[Array]:
    """Backpropagate m rows per sample, D (N, m, K) of ∂(·)/∂z_L, to every layer.

    Returns ``[D_0, ..., D_{L-1}]`` with D_l (N, m, n_l) = ∂(·)/∂z_l per sample and row.
    Costs one backward pass of m rows (no parameter gradients).
    """
    out = [D]
    for ell in range(p.n_layers - 1, 0, -1):
        D = rows_matmul(D, p.W[ell])
        D *= p.dh[ell - 1][:, None, :]
        out.append(D)
    return out[::-1]


def layer_views(rows: Array, W: list[Array]) -> list[tuple[Array, Array]]:
    """Split the last axis of ``rows`` (..., P) into per-layer views (W (..., n_l, n_in), b)."""
    views, offset = [], 0
    lead = rows.shape[:-1]
    for w in W:
        n_out, n_in = w.shape
        stop = offset + w.size
        w_view = np.reshape(rows[..., offset:stop], (*lead, n_out, n_in), copy=False)
        views.append((w_view, rows[..., stop : stop + n_out]))
        offset = stop + n_out
    return views


def write_rows(p: Pass, Ds: list[Array], out: Array) -> None:
    """Per-sample parameter rows into out (N, m, P): ∂/∂W_l[i, j] = D_l[n,r,i] a_{l-1}[n,j]."""
    for (w_view, b_view), D, A in zip(layer_views(out, p.W), Ds, p.A, strict=True):
        np.multiply(D[:, :, :, None], A[:, None, None, :], out=w_view)
        b_view[...] = D


def sum_rows(p: Pass, Ds: list[Array], out: Array) -> None:
    """Sum over samples of the parameter rows into out (m, P): the batched VJP."""
    n = Ds[0].shape[0]
    for (w_view, b_view), D, A in zip(layer_views(out, p.W), Ds, p.A, strict=True):
        flat = D.reshape(n, -1).T @ A
        w_view[...] = flat.reshape(w_view.shape)
        b_view[...] = D.sum(axis=0)


# ---------------------------------------------------------------------- output matrices
def output_jacobian(p: Pass, net: Network) -> Array:
    """∂y_k/∂z_m per sample (N, K, K), row k for output k."""
    n, k = p.z.shape
    out_fn = net.activations[-1].fn
    if out_fn is None:  # softmax: y_k (e_k − y)
        J = -p.y[:, :, None] * p.y[:, None, :]
        J[:, np.arange(k), np.arange(k)] += p.y
        return J
    J = np.zeros((n, k, k), dtype=p.z.dtype)
    J[:, np.arange(k), np.arange(k)] = out_fn.df(p.z, p.y)
    return J


def gn_factor(p: Pass) -> Array:
    """Rows of S_n with M_n = S_nᵀ S_n, the head's Gauss–Newton output matrix (N, K, K).

    Diagonal M: S = diag(√m).  Softmax M = c (diag y − y yᵀ): S = √c (diag √y − √y yᵀ), whose
    row r is √(c y_r) (e_r − y).
    """
    n, k = p.z.shape
    d = p.head.gn_diagonal(p.z, p.y)
    S = np.zeros((n, k, k), dtype=p.z.dtype)
    idx = np.arange(k)
    if d is not None:
        S[:, idx, idx] = np.sqrt(d * p.scale)
        return S
    c = p.head.normalisation(n, k) * p.scale
    root = np.sqrt(c * p.y)
    S -= root[:, :, None] * p.y[:, None, :]
    S[:, idx, idx] += root
    return S


def output_hessian(p: Pass) -> Array:
    """Exact ∂²L/∂z_L² per sample (N, K, K), scaled like δ_L."""
    n, k = p.z.shape
    eye = np.broadcast_to(np.eye(k, dtype=p.z.dtype), (n, k, k))
    C = p.head.hess_z(p.z, p.y, p.t, eye)
    return C * p.scale if p.scale != 1.0 else np.ascontiguousarray(C)


def augment(A: Array) -> Array:
    """[A, 1] (N, n + 1): the input of a layer with a column of ones for the bias."""
    out = np.empty((A.shape[0], A.shape[1] + 1), dtype=A.dtype)
    out[:, :-1] = A
    out[:, -1] = 1
    return out


def layer_offsets(W: list[Array]) -> list[int]:
    """Start of each layer's parameters in the flat vector (and P at the end)."""
    offsets = [0]
    for w in W:
        offsets.append(offsets[-1] + w.size + w.shape[0])
    return offsets
