"""Shared machinery of the curvature package: validation, sample chunks and loss passes.

Every routine of the package is a composition of the network's protocol (see
:mod:`deltaprop.network` and :mod:`deltaprop.layers`): :meth:`Network.propagate` (a forward
record), :meth:`Network.backward_deltas` (the backward pass of any upstream rows),
:meth:`Network.param_grad` / :meth:`Network.param_rows` (parameter gradients summed or per
sample), :meth:`Network.tangent` / :meth:`Network.tangent_backward` (the R-operator), and the
head's output matrices.  A :class:`LossPass` bundles one forward record with the backward errors
of the loss and the hidden curvature weights, which the second-order routines all read.

Batched quantities use the layout (N, m, width): sample, then one of m rows or directions, then
the layer's units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import (  # noqa: F401  (re-exported for the curvature modules)
    as_float_array,
    check_choice,
    check_finite,
    check_positive_float,
    check_positive_int,
)
from ..kernels import chunks  # noqa: F401  (re-exported)
from ..network import ForwardRecord, Network

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
    return net.check_data(X, T)


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
    """Samples per chunk so that the per-sample curvature matrices fill about PANEL_BYTES."""
    units = sum(net.sizes[1:])
    per_sample = 3 * units * max(net.sizes[1:]) * net.dtype.itemsize
    return max(1, PANEL_BYTES // per_sample)


# ---------------------------------------------------------------------- loss passes
@dataclass
class LossPass:
    """One forward record and, with targets, the backward pass of the loss through it.

    Attributes
    ----------
    net : Network
    record : ForwardRecord
    t : ndarray (N, K) or None
        Targets.
    c : float
        The loss normalisation used for δ_L and the output curvature (that of the whole batch
        when this pass is one chunk of it).
    deltas : list of ndarray
        δ_l = ∂L/∂z_l (N, n_l), when targets are given.
    curvature : list of ndarray or None
        h_l''(z_l) ⊙ ∂L/∂a_l (N, n_l) of every hidden layer l (None for the output layer and
        where h'' ≡ 0), when targets are given and second order was asked for.
    """

    net: Network
    record: ForwardRecord
    t: Array | None
    c: float
    deltas: list[Array] = field(default_factory=list)
    curvature: list[Array | None] = field(default_factory=list)

    @property
    def z(self) -> Array:
        return self.record.logits

    @property
    def y(self) -> Array:
        return self.record.output

    @property
    def n_layers(self) -> int:
        return self.net.n_layers

    def slope(self, l: int) -> Array:
        """h_l'(z_l) (N, n_l) of hidden layer l, computed once per record."""
        return self.record.local(l, self.net.activations[l].function)

    def output_hessian(self) -> Array:
        """Exact ∂²L/∂z_L² per sample (N, K, K)."""
        return self.net.head.output_hessian(self.z, self.y, self.t, self.c)

    def gn_factor(self) -> Array:
        """Rows S_n with M_n = S_nᵀ S_n, the head's Gauss–Newton output matrix (N, K, K)."""
        return self.net.head.gn_factor(self.z, self.y, self.c)

    def backward_rows(self, D: Array) -> list[Array]:
        """Backpropagate m rows per sample, D (N, m, K) of ∂(·)/∂z_L: δ_l (N, m, n_l) of each
        layer (one backward pass of m rows)."""
        return self.net.backward_deltas(self.record, D)[0]


def loss_pass(net: Network, X: Array, T: Array | None = None, c: float | None = None,
              second_order: bool = True) -> LossPass:
    """Forward pass on validated X and, with targets T, the backward pass of the loss.

    ``c`` is the loss normalisation (default: that of the rows of X); ``second_order=False``
    skips the hidden curvature weights (for the Gauss–Newton routines, which use first
    derivatives only).  Costs one forward pass (and one backward pass with T).
    """
    record = net.propagate(X)
    if c is None:
        c = net.head.normalisation(X.shape[0], net.n_outputs)
    p = LossPass(net, record, T, c)
    if T is not None:
        delta = net.head.delta(record.logits, record.output, T, c)
        p.deltas, state_grads = net.backward_deltas(record, delta)
        p.curvature = [None] * net.n_layers
        for l in range(net.n_layers - 1):
            function = net.activations[l].function
            if second_order and not function.zero_curvature:
                hg = function.d2f(record.z[l], record.a[l])  # a new array: scaled in place
                hg *= state_grads[l + 1]
                p.curvature[l] = hg
    return p


def batch_normalisation(net: Network, n_samples: int) -> float:
    """The loss normalisation c of a batch of ``n_samples`` rows (for its chunks)."""
    return net.head.normalisation(n_samples, net.n_outputs)
