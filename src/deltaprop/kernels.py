"""Small array kernels shared by the layers and the curvature code.

Batched quantities use the layout (N, m, width): sample, then one of m rows or directions, then
the layer's units, so that a product with a weight matrix is ONE matrix product of shape
(N·m, width) @ (width, width').
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import get_blas_funcs

Array = np.ndarray

#: BLAS gemm by dtype, for :func:`matmul_add`.
GEMM = {np.dtype(t): get_blas_funcs("gemm", dtype=t) for t in (np.float64, np.float32)}
#: Below this many entries of C, ``C += A @ B`` is cheaper than calling BLAS directly.
SMALL_GEMM = 2**15


def rows_matmul(D: Array, W: Array) -> Array:
    """(..., n) @ (n, m) as one matrix product over all leading axes -> (..., m)."""
    if D.ndim == 2:
        return D @ W
    flat = np.ascontiguousarray(D).reshape(-1, D.shape[-1]) @ W
    return flat.reshape(*D.shape[:-1], W.shape[1])


def _blas_operand(M: Array) -> tuple[Array, int]:
    """(F-contiguous array, trans flag) whose BLAS op(·) is Mᵀ, without copying when possible."""
    if M.flags.c_contiguous:
        return M.T, 0
    if M.flags.f_contiguous:
        return M, 1
    return np.ascontiguousarray(M).T, 0


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


def augment(A: Array) -> Array:
    """[A, 1] (N, n + 1): the input of a layer with a column of ones for the bias."""
    out = np.empty((A.shape[0], A.shape[1] + 1), dtype=A.dtype)
    out[:, :-1] = A
    out[:, -1] = 1
    return out


def chunks(n_samples: int, chunk_size: int):
    """Consecutive slices of at most ``chunk_size`` samples."""
    for start in range(0, n_samples, chunk_size):
        yield slice(start, min(n_samples, start + chunk_size))
