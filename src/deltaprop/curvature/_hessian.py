"""The exact Hessian, assembled layer pair by layer pair, and its diagonal.

The network is a feed-forward graph: Dense layer l reads u_l, the concatenation of some earlier
states (x and hidden activations a_r; a chain reads a_{l-1} only).  With D_s the local output
curvature of layer s — ∂²L/∂z_L² (the head's output Hessian) for the output layer and
diag(h_s''(z_s) ⊙ ∂L/∂a_s) for a hidden one — and T_{s,m} = ∂z_s/∂z_m the total derivative
along every path (T_{m,m} = I), the per-sample curvature coupling layers l and m is::

    K_{l,m} = Σ_s T_{s,l}ᵀ D_s T_{s,m},   computed backward from the output as
    K_{s,m} = D_s T_{s,m} + diag(h_s') Σ_{c reads a_s} W_{c,s}ᵀ K_{c,m},
    T_{s,m} = Σ_{r hidden, read by s} W_{s,r} diag(h_r') T_{r,m}          (forward from m)

(PRML §5.4.5 generalised to L layers and to any feed-forward graph, Bishop & Bishop 2024
§8.1.2).  Since ∂z_l/∂W_l[i, j] = e_i u_l[j], the block of the Hessian between an earlier or
equal layer m ≤ l and layer l is, summed over the samples n (a column of ones appended to each
u for the biases: the layer's ``features``)::

    H[(l, i, j), (m, i', j')] = Σ_n K_{l,m}[i, i'] u_l[j] u_m[j']
                              + Σ_n δ_l[i] u_m[j'] (∂u_l[j]/∂z_m[i'])

The second, "bilinear", term comes from z_l = W_l u_l being a product of two things that depend
on the parameters; ∂u_l[j]/∂z_m = h_r'[k] T_{r,m}[k, :] where column j holds unit k of a_r, and
is diagonal (sparse) for r = m.  Each sum is ONE matrix product over the samples, of per-sample
matrices already at hand with small per-sample outer products, taken for a panel of units i at
a time.  The whole Hessian costs about 2 N P² flops where P R-operator passes would cost ~16 N P².
"""

from __future__ import annotations

import numpy as np

from ..kernels import rows_matmul
from ..layers import Dense
from ..network import Network
from ._common import (
    PANEL_BYTES,
    Array,
    LossPass,
    batch_normalisation,
    check_choice,
    check_chunk_size,
    check_data,
    check_positive_int,
    chunks,
    loss_pass,
    panel_chunk,
)
from ._rop import hvp_rows

#: Columns of one block of Hutchinson probes.
PROBE_BLOCK = 64

DIAGONAL_METHODS = ("exact", "gauss-newton", "becker-lecun", "hutchinson")


# ---------------------------------------------------------------------- the graph
def _check_dense(net: Network) -> None:
    """The structured Hessian assembles blocks of Dense layers' (W, b) layout."""
    others = sorted({type(layer).__name__ for layer in net.dense_layers
                     if not isinstance(layer, Dense)})
    if others:
        raise NotImplementedError(
            f"the structured `hessian` assembles Dense layers only; this network has {others}: "
            "use `hessian_operator` (or `hvp` with the identity) instead.")


class _Graph:
    """The network's graph as the Hessian walks it: for each layer the hidden layers it reads
    and the layers that read it, with the weight blocks W_{s,r} (n_s, n_r) and their
    transposes, built once per call."""

    def __init__(self, net: Network):
        self.sources: list[list[tuple[int, slice]]] = []
        for s in range(net.n_layers):
            cols, start = [], 0
            for state in net.sources[s]:
                width = net.widths[state]
                if state > 0:
                    cols.append((state - 1, slice(start, start + width)))
                start += width
            self.sources.append(cols)
        self.consumers: list[list[tuple[int, slice]]] = [
            [(c, cols) for c in range(r + 1, net.n_layers)
             for q, cols in self.sources[c] if q == r] for r in range(net.n_layers)]
        self.W = {(s, r): net.dense_layers[s].W[:, cols]
                  for s in range(net.n_layers) for r, cols in self.sources[s]}
        self.WT = {key: np.ascontiguousarray(W.T) for key, W in self.W.items()}


def _column_pass(p: LossPass, m: int, graph: _Graph
                 ) -> tuple[list[Array | None], list[Array | None]]:
    """Per-sample T_{s,m}ᵀ and K_{s,m}ᵀ (N, n_m, n_s) for s ≥ m (None below m).

    Transposed so that every product with a weight matrix is one matrix product over all
    samples; T_{m,m} = I is left implicit (None).
    """
    n_layers = p.n_layers
    TT: list[Array | None] = [None] * n_layers
    for s in range(m + 1, n_layers):
        for r, _ in graph.sources[s]:
            if r < m:
                continue
            if r == m:
                term = p.slope(m)[:, :, None] * graph.WT[s, r]
            else:
                term = rows_matmul(TT[r] * p.slope(r)[:, None, :], graph.WT[s, r])
            TT[s] = term if TT[s] is None else TT[s] + term
    KT: list[Array | None] = [None] * n_layers
    for s in range(n_layers - 1, m - 1, -1):
        carried = None
        for c, _ in graph.consumers[s]:
            term = rows_matmul(KT[c], graph.W[c, s])
            carried = term if carried is None else carried + term
        if carried is not None:
            carried *= p.slope(s)[:, None, :]
        KT[s] = _add_local_curvature(p, s, TT[s], carried)
    return TT, KT


def _add_local_curvature(p: LossPass, s: int, TT_s: Array | None,
                         carried: Array | None) -> Array:
    """K_{s,m}ᵀ = (D_s T_{s,m})ᵀ + ``carried`` (N, n_m, n_s): layer s's own curvature — the
    output Hessian for the output layer (applied by the head to the rows of T_{s,m}ᵀ, as it is
    symmetric), diag(h_s'' ⊙ ∂L/∂a_s) for a hidden one — added to what its readers carry."""
    if s == p.n_layers - 1:  # the output layer has no readers
        if TT_s is None:
            return p.output_hessian()
        return p.net.head.hess_z(p.z, p.y, p.t, TT_s, p.c)
    hg = p.curvature[s]
    if hg is not None:
        if TT_s is None:  # s = m: T = I
            idx = np.arange(hg.shape[1])
            carried[:, idx, idx] += hg
        else:
            carried += TT_s * hg[:, None, :]
    return carried


def _add_pair(H: Array, p: LossPass, ell: int, m: int, CT: Array,
              bilinear: tuple[int, Array] | None) -> None:
    """Add the Hessian block between layer l and an earlier layer m of one chunk into H.

    First term: Σ_n CT[n, i, i'] (f_l[n, j] f_m[n, j']) with f the layers' features [u, 1], one
    product CTᵀ (f_l ⊗ f_m) over the samples; dense bilinear term: Σ_n (δ_l[n, i] f_m[n, j'])
    B[n, j, i'] for B = ∂u_l/∂z_m over a range of columns j (``bilinear`` = (first column, B)),
    one product too.  The sparse bilinear term of a source r = m is :func:`_add_adjacent`'s.
    """
    net = p.net
    layer_l, layer_m = net.dense_layers[ell], net.dense_layers[m]
    f_l = layer_l.features(p.record.inputs[ell])
    f_m = layer_m.features(p.record.inputs[m])
    n, n_out, n_m = CT.shape
    k_l, k_m = f_l.shape[1], f_m.shape[1]
    outer = (f_l[:, :, None] * f_m[:, None, :]).reshape(n, k_l * k_m)
    rows, cols = (net.offsets[ell], layer_l.W.shape), (net.offsets[m], layer_m.W.shape)
    panel = max(1, PANEL_BYTES // (H.itemsize * n_m * k_l * k_m))
    for units in chunks(n_out, panel):
        size = units.stop - units.start
        R = CT[:, units, :].reshape(n, -1).T @ outer
        _scatter_add(H, R.reshape(size, n_m, k_l, k_m).transpose(0, 2, 1, 3), (*rows, units), cols)
        if bilinear is None:
            continue
        first, B = bilinear
        left = (p.deltas[ell][:, units, None] * f_m[:, None, :]).reshape(n, -1)
        R = (left.T @ B.reshape(n, -1)).reshape(size, k_m, B.shape[1], n_m).transpose(0, 2, 3, 1)
        _scatter_add(H, R, (*rows, units), cols, first)


def _add_adjacent(H: Array, p: LossPass, ell: int, m: int, first: int) -> None:
    """Bilinear term of layer l reading hidden layer m directly (columns ``first`` onward of
    u_l): ∂u_l[first + k]/∂z_m = h_m'[k] e_k, so only W_l[i, first + k] × θ_m[k, ·] is non-zero,
    Σ_n δ_l[n, i] h'_m[n, k] f_m[n, j'] (P_l·(n_{m-1} + 1) entries)."""
    net = p.net
    (n_out, n_in), (n_m, in_m) = net.dense_layers[ell].W.shape, net.dense_layers[m].W.shape
    off_l, off_m = net.offsets[ell], net.offsets[m]
    n = p.z.shape[0]
    left = (p.deltas[ell][:, :, None] * p.slope(m)[:, None, :]).reshape(n, n_out * n_m)
    f_m = net.dense_layers[m].features(p.record.inputs[m])
    E = (left.T @ f_m).reshape(n_out, n_m, in_m + 1)
    rows = off_l + (np.arange(n_out)[:, None] * n_in + first + np.arange(n_m))[:, :, None]
    cols = off_m + np.arange(n_m * in_m).reshape(1, n_m, in_m)
    H[rows, cols] += E[:, :, :-1]
    H[rows[:, :, 0], off_m + n_m * in_m + np.arange(n_m)] += E[:, :, -1]


def _add_diagonal(H: Array, p: LossPass, ell: int, C: Array) -> None:
    """Add (at least) the lower triangle of layer l's own block of one chunk into H.

    W rows of a panel of units i against the W columns of the units up to the panel's end:
    Σ_n C_l[n, i, i'] u[n, j] u[n, j'] (T_{l,l} = I, no bilinear term); then the bias rows
    against every column of the layer, Σ_n C_l[n, i, i'] [u[n, j'], 1].
    """
    layer, off = p.net.dense_layers[ell], p.net.offsets[ell]
    A = p.record.inputs[ell]
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
    S = (C.reshape(n, -1).T @ layer.features(A)).reshape(n_out, n_out, n_in + 1)
    bias = slice(off + n_w, off + n_w + n_out)
    H[bias, off : off + n_w] += S[:, :, :-1].reshape(n_out, n_w)
    H[bias, bias] += S[:, :, -1]


def _scatter_add(H: Array, R: Array, rows: tuple, cols: tuple, first: int = 0) -> None:
    """Add R[i, j, i', j'] (j over the inputs of layer l from column ``first``, then the bias
    if present; j' over the inputs of layer m, then its bias) into H.

    ``rows`` = (offset, (n_out, n_in), units) of layer l, ``cols`` = (offset, (n_out, n_in)) of
    layer m; R has more rows j than input columns from ``first`` on when it includes the bias.
    """
    (off_l, (n_l, in_l), units), (off_m, (n_m, in_m)) = rows, cols
    size = units.stop - units.start
    n_w = min(R.shape[1], in_l - first)
    rw = slice(off_l + units.start * in_l, off_l + units.stop * in_l)
    cw, cb = slice(off_m, off_m + n_m * in_m), slice(off_m + n_m * in_m, off_m + n_m * (in_m + 1))
    js = slice(first, first + n_w)
    np.reshape(H[rw, cw], (size, in_l, n_m, in_m), copy=False)[:, js] += R[:, :n_w, :, :-1]
    np.reshape(H[rw, cb], (size, in_l, n_m), copy=False)[:, js] += R[:, :n_w, :, -1]
    if R.shape[1] > n_w:
        rb = slice(off_l + n_l * in_l + units.start, off_l + n_l * in_l + units.stop)
        np.reshape(H[rb, cw], (size, n_m, in_m), copy=False)[...] += R[:, n_w, :, :-1]
        H[rb, cb] += R[:, n_w, :, -1]


def _add_chunk(H: Array, p: LossPass, graph: _Graph) -> None:
    """Add one chunk's Hessian blocks (l, m ≤ l) into the lower block triangle of H."""
    for m in range(p.n_layers):
        TT, KT = _column_pass(p, m, graph)
        _add_diagonal(H, p, m, KT[m])  # K_{m,m} is symmetric per sample
        for ell in range(m + 1, p.n_layers):
            CT = np.ascontiguousarray(KT[ell].swapaxes(1, 2))  # K_{l,m} (N, n_l, n_m)
            _add_pair(H, p, ell, m, CT, _bilinear_dense(p, ell, m, TT, graph))
            for r, cols in graph.sources[ell]:
                if r == m:
                    _add_adjacent(H, p, ell, m, cols.start)


def _bilinear_dense(p: LossPass, ell: int, m: int, TT: list[Array | None], graph: _Graph,
                    ) -> tuple[int, Array] | None:
    """(first column, ∂u_l[j]/∂z_m (N, n_cols, n_m)) over the columns of u_l that hold hidden
    layers r > m, which are contiguous (the later states of u_l, for the chain and the
    cascade alike); None if there are none."""
    parts = [(r, cols) for r, cols in graph.sources[ell] if r > m]
    if not parts:
        return None
    blocks = [(TT[r] * p.slope(r)[:, None, :]).swapaxes(1, 2) for r, _ in parts]
    B = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    return parts[0][1].start, np.ascontiguousarray(B)


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
    _check_dense(net)
    chunk_size = check_chunk_size(chunk_size) or panel_chunk(net)
    n = T.shape[0]
    H = np.zeros((net.n_params, net.n_params), dtype=net.dtype)
    c, graph = batch_normalisation(net, n), _Graph(net)
    for rows in chunks(n, chunk_size):
        _add_chunk(H, loss_pass(net, X[rows], T[rows], c), graph)
    _symmetrise(H, net.offsets)
    return H


# ---------------------------------------------------------------------- diagonal
def _diagonal_from(p: LossPass, curv: list[Array], out: Array) -> None:
    """Add Σ_n c_l[n, i] u_l[n, j]² (the diagonal for per-unit curvatures c_l) into out."""
    net = p.net
    for l, (layer, c) in enumerate(zip(net.dense_layers, curv, strict=True)):
        w_view, b_view = layer.split(net.layer_params(out, l))
        U = p.record.inputs[l]
        w_view += c.T @ (U * U)
        b_view += c.sum(axis=0)


def _exact_curvatures(p: LossPass) -> list[Array]:
    graph = _Graph(p.net)
    return [np.diagonal(_column_pass(p, m, graph)[1][m], axis1=1, axis2=2)
            for m in range(p.n_layers)]


def _gauss_newton_curvatures(p: LossPass) -> list[Array]:
    return [np.einsum("nrk,nrk->nk", D, D) for D in p.backward_rows(p.gn_factor())]


def _becker_lecun_curvatures(p: LossPass) -> list[Array]:
    """PRML §5.4.1: c_r = h_r'² ⊙ Σ_c (c_c W_{c,r}∘W_{c,r}) + h_r'' ⊙ ∂L/∂a_r, off-diagonals
    dropped (c over the layers reading a_r)."""
    graph = _Graph(p.net)
    out: list[Array] = [np.empty(0)] * p.n_layers
    out[-1] = np.diagonal(p.output_hessian(), axis1=1, axis2=2)
    for r in range(p.n_layers - 2, -1, -1):
        c = sum(out[k] @ (graph.W[k, r] * graph.W[k, r]) for k, _ in graph.consumers[r])
        slope = p.slope(r)
        c = c * (slope * slope)
        if p.curvature[r] is not None:
            c += p.curvature[r]
        out[r] = c
    return out


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
        return _hutchinson_diagonal(loss_pass(net, X, T), net.n_params, n_samples, seed)
    _check_dense(net)
    n, out = T.shape[0], np.zeros(net.n_params, dtype=net.dtype)
    c = batch_normalisation(net, n)
    for rows in chunks(n, chunk_size):
        p = loss_pass(net, X[rows], T[rows], c)
        _diagonal_from(p, CURVATURES[method](p), out)
    return out


def rademacher_blocks(n_params: int, n_samples: int, seed, dtype):
    """Blocks of at most PROBE_BLOCK Rademacher probes as rows (k, P)."""
    rng = np.random.default_rng(seed)
    for probes in chunks(n_samples, PROBE_BLOCK):
        size = (probes.stop - probes.start, n_params)
        yield (2 * rng.integers(0, 2, size=size) - 1).astype(dtype)


def _hutchinson_diagonal(p: LossPass, n_params: int, n_samples: int, seed) -> Array:
    total = np.zeros(n_params, dtype=p.z.dtype)
    for V in rademacher_blocks(n_params, n_samples, seed, p.z.dtype):
        total += np.einsum("kp,kp->p", V, hvp_rows(p, V))
    return total / n_samples
