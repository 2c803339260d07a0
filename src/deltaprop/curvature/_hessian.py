"""The exact Hessian, assembled layer pair by layer pair, and its diagonal.

Per sample, C_l = ∂²L/∂z_l² obeys the backward recursion (PRML §5.4.5 generalised to L layers)::

    C_L = ∂²L/∂z_L²  (the head's output Hessian),
    C_{l-1} = diag(h'_{l-1}) W_lᵀ C_l W_l diag(h'_{l-1}) + diag(h''_{l-1} ⊙ W_lᵀ δ_l).

Since ∂L/∂W_l[i, j] = δ_l[i] a_{l-1}[j] and parameters of layer m enter only through z_m, the
block of the Hessian between layer l and an earlier or equal layer m ≤ l is, summed over the
samples n (a column of ones appended to each a for the biases)::

    H[(l, i, j), (m, i', j')] = Σ_n (C_l T_{l,m})[i, i'] a_{l-1}[j] a_{m-1}[j']
                              + Σ_n δ_l[i] a_{m-1}[j'] (h'_{l-1} ⊙ T_{l-1,m})[j, i']

with T_{l,m} = ∂z_l/∂z_m = W_l diag(h'_{l-1}) ⋯ W_{m+1} diag(h'_m) (T_{l,l} = I; the second,
"bilinear", term vanishes for m = l).  Each sum is ONE matrix product over the samples, of
per-sample matrices already at hand (C_l T_{l,m}) with small per-sample outer products
(a ⊗ a, δ ⊗ a), taken for a panel of units i at a time.  The whole Hessian costs about 2 N P²
flops (the Gauss–Newton part alone N·K·P²) where P R-operator passes would cost ~16 N P².
"""

from __future__ import annotations

import numpy as np

from ..network import Network
from ._common import (
    PANEL_BYTES,
    Array,
    Pass,
    augment,
    backward_rows,
    check_choice,
    check_chunk_size,
    check_data,
    check_positive_int,
    chunk_scale,
    chunks,
    forward_pass,
    gn_factor,
    layer_offsets,
    layer_views,
    output_hessian,
    panel_chunk,
    rows_matmul,
)
from ._rop import hvp_rows

#: Columns of one block of Hutchinson probes.
PROBE_BLOCK = 64

DIAGONAL_METHODS = ("exact", "gauss-newton", "becker-lecun", "hutchinson")


def curvature_matrices(p: Pass) -> list[Array]:
    """C_l = ∂²L/∂z_l² per sample (N, n_l, n_l) for every layer, by the backward recursion."""
    C = output_hessian(p)
    out = [C]
    for ell in range(p.n_layers - 1, 0, -1):
        CW = rows_matmul(C, p.W[ell])  # C symmetric: (C W)ᵀ W = Wᵀ C W
        C = rows_matmul(CW.swapaxes(1, 2), p.W[ell])
        C *= p.dh[ell - 1][:, :, None]
        C *= p.dh[ell - 1][:, None, :]
        if p.hg[ell - 1] is not None:
            idx = np.arange(C.shape[1])
            C[:, idx, idx] += p.hg[ell - 1]
        out.append(C)
    return out[::-1]


def _add_pair(H: Array, p: Pass, ell: int, m: int, CT: Array, hT: Array | None,
              offsets: list[int]) -> None:
    """Add the Hessian block between layer l and an earlier layer m of one chunk into H.

    First term: Σ_n CT[n, i, i'] (a_{l-1}[n, j] a_{m-1}[n, j']), one product CTᵀ (a ⊗ a) over
    the samples; bilinear term: Σ_n (δ_l[n, i] a_{m-1}[n, j']) hT[n, j, i'], one product too,
    or, for m = l − 1 (``hT`` None, h'_{l-1} ⊙ T_{l-1,l-1} diagonal), :func:`_add_adjacent`.
    """
    a_l, a_m = augment(p.A[ell]), augment(p.A[m])
    n, n_out, n_m = CT.shape
    k_l, k_m = a_l.shape[1], a_m.shape[1]
    outer = (a_l[:, :, None] * a_m[:, None, :]).reshape(n, k_l * k_m)
    rows, cols = (offsets[ell], p.W[ell].shape), (offsets[m], p.W[m].shape)
    panel = max(1, PANEL_BYTES // (H.itemsize * n_m * k_l * k_m))
    for units in chunks(n_out, panel):
        size = units.stop - units.start
        R = CT[:, units, :].reshape(n, -1).T @ outer
        _scatter_add(H, R.reshape(size, n_m, k_l, k_m).transpose(0, 2, 1, 3), (*rows, units), cols)
        if hT is None:
            continue
        left = (p.delta[ell][:, units, None] * a_m[:, None, :]).reshape(n, -1)
        R = (left.T @ hT.reshape(n, -1)).reshape(size, k_m, k_l - 1, n_m).transpose(0, 2, 3, 1)
        _scatter_add(H, R, (*rows, units), cols)


def _add_adjacent(H: Array, p: Pass, ell: int, offsets: list[int]) -> None:
    """Bilinear term between layers l and m = l − 1: non-zero only where j (an input of layer l)
    is the unit i' of layer m, Σ_n δ_l[n, i] h'_{m}[n, j] [a_{m-1}[n, j'], 1] (P_l·(n_{m-1} + 1)
    entries)."""
    m = ell - 1
    (n_out, n_in), (_, in_m) = p.W[ell].shape, p.W[m].shape
    n = p.A[0].shape[0]
    left = (p.delta[ell][:, :, None] * p.dh[m][:, None, :]).reshape(n, n_out * n_in)
    E = (left.T @ augment(p.A[m])).reshape(n_out, n_in, in_m + 1)
    rows = offsets[ell] + np.arange(n_out * n_in).reshape(n_out, n_in, 1)
    cols = offsets[m] + np.arange(n_in * in_m).reshape(1, n_in, in_m)
    H[rows, cols] += E[:, :, :-1]
    H[rows[:, :, 0], offsets[m] + n_in * in_m + np.arange(n_in)] += E[:, :, -1]


def _add_diagonal(H: Array, p: Pass, ell: int, C: Array, off: int) -> None:
    """Add (at least) the lower triangle of layer l's own block of one chunk into H.

    W rows of a panel of units i against the W columns of the units up to the panel's end:
    Σ_n C_l[n, i, i'] a[n, j] a[n, j'] (T_{l,l} = I, no bilinear term); then the bias rows
    against every column of the layer, Σ_n C_l[n, i, i'] [a[n, j'], 1].
    """
    A = p.A[ell]
    n, n_out, _ = C.shape
    n_in = A.shape[1]
    outer = (A[:, :, None] * A[:, None, :]).reshape(n, n_in * n_in)
    panel = max(1, PANEL_BYTES // (H.itemsize * n_out * n_in * n_in))
    for units in chunks(n_out, panel):
        size, stop = units.stop - units.start, units.stop
        R = C[:, units, :stop].reshape(n, -1).T @ outer
        block = H[off + units.start * n_in : off + stop * n_in, off : off + stop * n_in]
        np.reshape(block, (size, n_in, stop, n_in), copy=False)[...] += (
            R.reshape(size, stop, n_in, n_in).transpose(0, 2, 1, 3))
    n_w = n_out * n_in
    S = (C.reshape(n, -1).T @ augment(A)).reshape(n_out, n_out, n_in + 1)
    bias = slice(off + n_w, off + n_w + n_out)
    H[bias, off : off + n_w] += S[:, :, :-1].reshape(n_out, n_w)
    H[bias, bias] += S[:, :, -1]


def _scatter_add(H: Array, R: Array, rows: tuple, cols: tuple) -> None:
    """Add R[i, j, i', j'] (j, j' over the layer inputs, then the bias if present) into H.

    ``rows`` = (offset, (n_out, n_in), units) of layer l, ``cols`` = (offset, (n_out, n_in)) of
    layer m; R has n_in_l + 1 rows j when it includes the bias rows, n_in_l when not.
    """
    (off_l, (n_l, in_l), units), (off_m, (n_m, in_m)) = rows, cols
    size = units.stop - units.start
    rw = slice(off_l + units.start * in_l, off_l + units.stop * in_l)
    cw, cb = slice(off_m, off_m + n_m * in_m), slice(off_m + n_m * in_m, off_m + n_m * (in_m + 1))
    np.reshape(H[rw, cw], (size, in_l, n_m, in_m), copy=False)[...] += R[:, :in_l, :, :-1]
    np.reshape(H[rw, cb], (size, in_l, n_m), copy=False)[...] += R[:, :in_l, :, -1]
    if R.shape[1] > in_l:
        rb = slice(off_l + n_l * in_l + units.start, off_l + n_l * in_l + units.stop)
        np.reshape(H[rb, cw], (size, n_m, in_m), copy=False)[...] += R[:, in_l, :, :-1]
        H[rb, cb] += R[:, in_l, :, -1]


def _add_chunk(H: Array, p: Pass, offsets: list[int]) -> None:
    """Add one chunk's Hessian blocks (l, m ≤ l) into the lower block triangle of H."""
    C = curvature_matrices(p)
    for ell in range(p.n_layers):
        _add_diagonal(H, p, ell, C[ell], offsets[ell])
        CT, hT = C[ell], None
        for m in range(ell - 1, -1, -1):
            CT = rows_matmul(CT, p.W[m + 1]) * p.dh[m][:, None, :]
            if m == ell - 1:  # h'_{l-1} ⊙ T_{l-1,l-1} is diagonal: a sparse bilinear term
                _add_adjacent(H, p, ell, offsets)
            else:  # h'_{l-1} ⊙ T_{l-1,m} = h'_{l-1} ⊙ (W_{l-1} diag h'_{l-2} ⋯ W_{m+1}) diag h'_m
                W = p.W[m + 1]
                hT = p.dh[ell - 1][:, :, None] * W if hT is None else rows_matmul(hT, W)
                hT *= p.dh[m][:, None, :]
            _add_pair(H, p, ell, m, CT, hT, offsets)


def _symmetrise(H: Array, offsets: list[int]) -> None:
    """Complete H from its lower triangle, in place (layer block by layer block)."""
    for ell in range(len(offsets) - 1):
        rows = slice(offsets[ell], offsets[ell + 1])
        for m in range(ell + 1):
            _mirror(H, rows, slice(offsets[m], offsets[m + 1]))


def _mirror(H: Array, rows: slice, cols: slice, tile: int = 256) -> None:
    """H[cols, rows] = H[rows, cols]ᵀ tile by tile (in cache); a diagonal block's lower half."""
    diagonal = rows == cols
    for i0 in range(rows.start, rows.stop, tile):
        r = slice(i0, min(rows.stop, i0 + tile))
        for j0 in range(cols.start, i0 + 1 if diagonal else cols.stop, tile):
            if diagonal and j0 == i0:
                square = H[r, r]
                upper = np.triu_indices(square.shape[0], 1)
                square[upper] = square.T[upper]
            else:
                c = slice(j0, min(cols.stop, j0 + tile))
                H[c, r] = H[r, c].T


def hessian(net: Network, X: object, T: object, chunk_size: int | None = None) -> Array:
    """The exact Hessian of ``net.loss(X, T)`` with respect to the parameters.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    chunk_size : int, optional
        Samples per pass; default: as many as keep the per-sample curvature matrices near
        32 MB.

    Returns
    -------
    ndarray (P, P)
        Symmetric; in ``net.params`` order and the network's dtype.

    Notes
    -----
    Structural evaluation (module notes): the per-sample output curvature is backpropagated to
    every layer (C_l, the chapter's exact evaluation generalised to L layers), and each block of
    layer pairs is one matrix product over the samples (only the lower half of each layer's own
    block).  Costs one forward and one backward pass, N Σ_l n_l² n_{l-1} flops for the C_l, and
    at most 2 N P² flops with O(P² + panel) memory: no P R-operator passes and no P×P
    temporaries besides H itself.

    References
    ----------
    Bishop & Bishop 2024 §8.1.6; PRML §5.4.5 (exact evaluation), §5.4.6; Bishop 1992.
    """
    X, T = check_data(net, X, T)
    chunk_size = check_chunk_size(chunk_size) or panel_chunk(net)
    n, k = T.shape
    H = np.zeros((net.n_params, net.n_params), dtype=net.dtype)
    offsets = layer_offsets([d.W for d in net.dense_layers])
    for rows in chunks(n, chunk_size):
        scale = chunk_scale(net.head, n, rows.stop - rows.start, k)
        _add_chunk(H, forward_pass(net, X[rows], T[rows], scale), offsets)
    _symmetrise(H, offsets)
    return H


# ---------------------------------------------------------------------- diagonal
def _diagonal_from(p: Pass, curv: list[Array], out: Array) -> None:
    """Add Σ_n c_l[n, i] a_{l-1}[n, j]² (the diagonal for per-unit curvatures c_l) into out."""
    for (w_view, b_view), c, A in zip(layer_views(out, p.W), curv, p.A, strict=True):
        w_view += c.T @ (A * A)
        b_view += c.sum(axis=0)


def _exact_curvatures(p: Pass) -> list[Array]:
    return [np.diagonal(C, axis1=1, axis2=2) for C in curvature_matrices(p)]


def _gauss_newton_curvatures(p: Pass) -> list[Array]:
    return [np.einsum("nrk,nrk->nk", D, D) for D in backward_rows(p, gn_factor(p))]


def _becker_lecun_curvatures(p: Pass) -> list[Array]:
    """PRML §5.4.1: c_{l-1} = h'² ⊙ (c_l W_l∘W_l) + h'' ⊙ W_lᵀ δ_l, off-diagonals dropped."""
    c = np.diagonal(output_hessian(p), axis1=1, axis2=2)
    out = [c]
    for ell in range(p.n_layers - 1, 0, -1):
        c = (c @ (p.W[ell] * p.W[ell])) * (p.dh[ell - 1] * p.dh[ell - 1])
        if p.hg[ell - 1] is not None:
            c += p.hg[ell - 1]
        out.append(c)
    return out[::-1]


CURVATURES = {
    "exact": _exact_curvatures,
    "gauss-newton": _gauss_newton_curvatures,
    "becker-lecun": _becker_lecun_curvatures,
}


def hessian_diagonal(
    net: Network,
    X: object,
    T: object,
    method: str = "exact",
    n_samples: int = 100,
    seed: int | np.random.Generator | None = None,
    chunk_size: int | None = None,
) -> Array:
    """The diagonal of the Hessian of ``net.loss(X, T)``, exactly or approximately.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    method : {"exact", "gauss-newton", "becker-lecun", "hutchinson"}
        "exact": H_pp, without forming H; "gauss-newton": the diagonal of the Gauss–Newton
        matrix of :func:`gauss_newton`; "becker-lecun": Becker & Le Cun's approximation, which
        drops the off-diagonal terms of the backward recursion of second derivatives (exact
        where the per-sample curvature above stays diagonal: a single-layer network, and the
        last two layers when the output Hessian is diagonal, i.e. every loss but "ce");
        "hutchinson": the unbiased estimate mean(v ⊙ H v) over ``n_samples`` Rademacher
        probes v.
    n_samples : int
        Probes for "hutchinson".
    seed : int or numpy.random.Generator, optional
        Source of the Rademacher probes.
    chunk_size : int, optional
        Samples per pass for the other methods.

    Returns
    -------
    ndarray (P,)

    Notes
    -----
    With per-sample curvature c_l[n, i] of unit i of layer l, the diagonal entry of W_l[i, j]
    is Σ_n c_l[n, i] a_{l-1}[n, j]² (and Σ_n c_l[n, i] for b_l[i]).  "exact" takes c_l from the
    diagonals of the full per-sample C_l (cost N Σ n_l² n_{l-1}); "gauss-newton" from K
    backpropagated rows of S_n J_n (K backward passes); "becker-lecun" from a recursion on the
    diagonals only (one backward pass, PRML eq. 5.81); "hutchinson" costs ``n_samples``
    R-operator columns.

    References
    ----------
    Becker & Le Cun 1989; PRML §5.4.1, §5.4.2; Hutchinson 1990; Bishop & Bishop
    2024 §8.1.6.
    """
    method = check_choice(method, "method", DIAGONAL_METHODS)
    X, T = check_data(net, X, T)
    chunk_size = check_chunk_size(chunk_size) or panel_chunk(net)
    if method == "hutchinson":
        n_samples = check_positive_int(n_samples, "n_samples")
        return _hutchinson_diagonal(forward_pass(net, X, T), net.n_params, n_samples, seed)
    (n, k), out = T.shape, np.zeros(net.n_params, dtype=net.dtype)
    for rows in chunks(n, chunk_size):
        scale = chunk_scale(net.head, n, rows.stop - rows.start, k)
        p = forward_pass(net, X[rows], T[rows], scale)
        _diagonal_from(p, CURVATURES[method](p), out)
    return out


def rademacher_blocks(n_params: int, n_samples: int, seed, dtype):
    """Blocks of at most PROBE_BLOCK Rademacher probes as rows (k, P)."""
    rng = np.random.default_rng(seed)
    for probes in chunks(n_samples, PROBE_BLOCK):
        size = (probes.stop - probes.start, n_params)
        yield (2 * rng.integers(0, 2, size=size) - 1).astype(dtype)


def _hutchinson_diagonal(p: Pass, n_params: int, n_samples: int, seed) -> Array:
    total = np.zeros(n_params, dtype=p.z.dtype)
    for V in rademacher_blocks(n_params, n_samples, seed, p.z.dtype):
        total += np.einsum("kp,kp->p", V, hvp_rows(p, V))
    return total / n_samples
