"""Losses fused with the output activation ("heads"), as defined in ../shared/DESIGN.md.

A head takes the output pre-activations Z = z_L (N, K) and targets T (N, K) and returns the loss
L and the output error δ_L = ∂L/∂z_L (Bishop & Bishop 2024 §8.1.2 eq. 8.12).  For the
canonical pairs (squared error with an identity output, binary cross-entropy with a sigmoid
output, cross-entropy with a softmax output) δ_L = c (y − t), c the loss's normalisation, never
a product of two unstable factors (§5.4.3, §6.4).  Cross-entropies are computed from the
logits, so they stay finite for |z| up to 1e3 and beyond.

Every loss is c times a sum over samples, so a batch split into chunks gives the whole batch's
loss, δ_L and curvature when each chunk is given the whole batch's ``c`` (argument ``c`` of the
methods below; by default the normalisation of the rows passed).

A head owns everything the curvature code needs at the output, so that code never asks which
loss it is: ``output_jacobian`` (∂y/∂z per sample), ``hess_z`` / ``output_hessian`` (the exact
∂²L/∂z_L², PRML §5.4.5–5.4.6), ``gn_z`` / ``gn_factor`` (the generalised Gauss–Newton output
matrix M = SᵀS, Schraudolph 2002) and ``scaled_residuals`` (rs with Sᵀ rs = δ_L).  Directions
and rows are laid out (N, m, K): sample, row, output.

========  ======================  ==========================================  =============
name      output activation       L                                           c
========  ======================  ==========================================  =============
"sse"     any element-wise        ½ Σ (y − t)²                                1
"mse"     any element-wise        Σ (y − t)² / (N K)                          2 / (N K)
"bce"     sigmoid                 Σ softplus(z) − t z  over N                 1 / N
"ce"      softmax                 −Σ t log softmax(z)  over N                 1 / N
========  ======================  ==========================================  =============
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .activations import SOFTMAX, ElementWise, OutputFunction, get_output_activation, log_softmax
from .activations import per_sample as _per_sample

Array = np.ndarray



class Head:
    """Output activation fused with a loss.

    Subclasses implement the value, δ_L and the output curvature for a batch.  ``c`` is the
    loss's normalisation (see the module notes); None means that of the rows passed.

    Attributes
    ----------
    loss : str
        The loss name.
    function : OutputFunction
        The output activation h (y = h(z)).
    """

    loss: str
    function: OutputFunction

    @property
    def activation(self) -> str:
        """Name of the output activation."""
        return self.function.name

    def output(self, z: Array) -> Array:
        """Network output y = h(z) (N, K)."""
        raise NotImplementedError

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        """The factor c with δ_L = c (y − t) for a canonical pair."""
        raise NotImplementedError

    def _c(self, z: Array, c: float | None) -> float:
        return self.normalisation(*z.shape) if c is None else c

    def value(self, z: Array, y: Array, t: Array, c: float | None = None) -> float:
        """Loss L for output pre-activations z, outputs y and targets t, all (N, K)."""
        raise NotImplementedError

    def delta(self, z: Array, y: Array, t: Array, c: float | None = None) -> Array:
        """Output error δ_L = ∂L/∂z (N, K), a new array."""
        raise NotImplementedError

    def value_and_delta(self, z: Array, y: Array, t: Array,
                        c: float | None = None) -> tuple[float, Array]:
        """Loss and δ_L together (one pass over the residual where the head allows)."""
        return self.value(z, y, t, c), self.delta(z, y, t, c)

    def hess_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        """Exact (∂²L/∂z∂z) v per sample, for v (N, K) or (N, m, K) -> same shape."""
        raise NotImplementedError

    def gn_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        """Gauss–Newton output matrix M times v per sample (same shapes as ``hess_z``)."""
        raise NotImplementedError

    def gn_diagonal(self, z: Array, y: Array, c: float | None = None) -> Array | None:
        """M as a diagonal (N, K) when it is diagonal, else None (softmax)."""
        raise NotImplementedError

    def gn_factor(self, z: Array, y: Array, c: float | None = None) -> Array:
        """Rows of S_n with M_n = S_nᵀ S_n (N, K, K); S = diag √m for a diagonal M."""
        d = self.gn_diagonal(z, y, c)
        n, k = z.shape
        S = np.zeros((n, k, k), dtype=z.dtype)
        idx = np.arange(k)
        S[:, idx, idx] = np.sqrt(d)
        return S

    def scaled_residuals(self, z: Array, y: Array, delta: Array,
                         c: float | None = None) -> Array:
        """rs (N, K) with Sᵀ rs = δ_L: rs = δ_L / √d for a diagonal M (0 where d = 0)."""
        d = self.gn_diagonal(z, y, c)
        rs = np.zeros_like(d)
        np.divide(delta, np.sqrt(d), out=rs, where=d > 0)
        return rs

    def output_hessian(self, z: Array, y: Array, t: Array, c: float | None = None) -> Array:
        """Exact ∂²L/∂z_L² per sample (N, K, K)."""
        n, k = z.shape
        eye = np.broadcast_to(np.eye(k, dtype=z.dtype), (n, k, k))
        return np.ascontiguousarray(self.hess_z(z, y, t, eye, c))

    def output_jacobian(self, z: Array, y: Array) -> Array:
        """∂y_k/∂z_m per sample (N, K, K), row k for output k."""
        return self.function.jacobian(z, y)


class SquaredErrorHead(Head):
    """Sum ("sse") or mean ("mse") of squared errors after any element-wise output h.

    L = (c/2) Σ (y − t)², δ_L = c (y − t) h'(z); for the identity output δ_L = c (y − t).
    """

    def __init__(self, loss: str, activation: ElementWise):
        self.loss = loss
        self.function = activation
        self._canonical = activation.name == "identity"

    def output(self, z: Array) -> Array:
        return self.function.f(z)

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        return 1.0 if self.loss == "sse" else 2.0 / (n_samples * n_outputs)

    def value(self, z: Array, y: Array, t: Array, c: float | None = None) -> float:
        r = y - t
        return float(0.5 * self._c(z, c) * np.vdot(r, r))

    def delta(self, z: Array, y: Array, t: Array, c: float | None = None) -> Array:
        return self._delta_from(z, y, y - t, self._c(z, c))

    def value_and_delta(self, z: Array, y: Array, t: Array,
                        c: float | None = None) -> tuple[float, Array]:
        if c is None:
            c = self.normalisation(*z.shape)
        r = y - t
        value = float(0.5 * c * np.vdot(r, r))
        return value, self._delta_from(z, y, r, c)

    def _delta_from(self, z: Array, y: Array, r: Array, c: float) -> Array:
        """δ_L = c r h'(z) from the residual r = y − t, overwriting r."""
        r *= c
        if not self._canonical:
            r *= self.function.df(z, y)
        return r

    def hess_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        c = self._c(z, c)
        if self._canonical:
            return c * v
        d1 = self.function.df(z, y)
        m = c * (d1 * d1 + (y - t) * self.function.d2f(z, y))
        return _per_sample(m, v) * v

    def gn_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        return _per_sample(self.gn_diagonal(z, y, c), v) * v

    def gn_diagonal(self, z: Array, y: Array, c: float | None = None) -> Array:
        c = self._c(z, c)
        if self._canonical:
            return np.full_like(z, c)
        d1 = self.function.df(z, y)
        return c * d1 * d1


class _MeanLogitHead(Head):
    """Cross-entropies from the logits: normalisation 1/N and δ_L = (y − t)/N."""

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        return 1.0 / n_samples

    def output(self, z: Array) -> Array:
        return self.function.f(z)

    def delta(self, z: Array, y: Array, t: Array, c: float | None = None) -> Array:
        d = y - t
        d *= self._c(z, c)
        return d


class BinaryCrossEntropyHead(_MeanLogitHead):
    """Sigmoid outputs with binary cross-entropy, from the logits.

    L = (1/N) Σ_nk softplus(z) − t z, δ_L = (y − t)/N, ∂²L/∂z² = y (1 − y)/N (diagonal).
    """

    loss = "bce"

    def __init__(self, activation: ElementWise):
        self.function = activation

    def value(self, z: Array, y: Array, t: Array, c: float | None = None) -> float:
        softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
        return float((softplus.sum() - np.vdot(t, z)) * self._c(z, c))

    def gn_diagonal(self, z: Array, y: Array, c: float | None = None) -> Array:
        return y * (1 - y) * self._c(z, c)

    def hess_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        return _per_sample(self.gn_diagonal(z, y, c), v) * v

    gn_z = hess_z


class CrossEntropyHead(_MeanLogitHead):
    """Softmax outputs with cross-entropy, from the logits (log-sum-exp).

    L = −(1/N) Σ_n Σ_k t log softmax(z), δ_L = (y − t)/N, and for target rows that sum to one
    ∂²L/∂z_n² = (diag(y_n) − y_n y_nᵀ)/N: c times the softmax Jacobian, so the output Hessian
    and the Gauss–Newton matrix are the softmax's own product (``SOFTMAX.jvp``).
    """

    loss = "ce"
    function = SOFTMAX

    def value(self, z: Array, y: Array, t: Array, c: float | None = None) -> float:
        return float(-np.vdot(t, log_softmax(z)) * self._c(z, c))

    def hess_z(self, z: Array, y: Array, t: Array, v: Array, c: float | None = None) -> Array:
        return self._c(z, c) * SOFTMAX.jvp(z, y, v)

    gn_z = hess_z

    def gn_diagonal(self, z: Array, y: Array, c: float | None = None) -> None:
        return None

    def gn_factor(self, z: Array, y: Array, c: float | None = None) -> Array:
        """S = √c (diag √y − √y yᵀ): row r is √(c y_r) (e_r − y), and SᵀS = c (diag y − y yᵀ)."""
        k = z.shape[1]
        root = np.sqrt(self._c(z, c) * y)
        S = -root[:, :, None] * y[:, None, :]
        S[:, np.arange(k), np.arange(k)] += root
        return S

    def scaled_residuals(self, z: Array, y: Array, delta: Array,
                         c: float | None = None) -> Array:
        """rs = δ/√(c y): Sᵀ rs = δ_L because Σ_k δ_nk = 0 (0 where y underflows)."""
        d = y * self._c(z, c)
        rs = np.zeros_like(d)
        np.divide(delta, np.sqrt(d), out=rs, where=d > 0)
        return rs


def _squared_error(loss: str, function: OutputFunction) -> Head:
    if function.name == "softmax":
        raise ValueError(f'`output="softmax"` needs `loss="ce"`; got loss={loss!r}.')
    return SquaredErrorHead(loss, function)


def _binary_cross_entropy(loss: str, function: OutputFunction) -> Head:
    if function.name != "sigmoid":
        raise ValueError(f'`loss="bce"` needs `output="sigmoid"`; got output={function.name!r}.')
    return BinaryCrossEntropyHead(function)


def _cross_entropy(loss: str, function: OutputFunction) -> Head:
    if function.name != "softmax":
        raise ValueError(f'`loss="ce"` needs `output="softmax"`; got output={function.name!r}.')
    return CrossEntropyHead()


#: The heads by loss name: each factory takes (loss name, output activation) and raises a
#: ValueError for an output it does not pair with.  A new loss is a Head subclass plus one entry.
HEADS: dict[str, Callable[[str, OutputFunction], Head]] = {
    "sse": _squared_error,
    "mse": _squared_error,
    "bce": _binary_cross_entropy,
    "ce": _cross_entropy,
}


def make_head(loss: str, output: str | OutputFunction) -> Head:
    """Build the head for a loss name and an output activation.

    Parameters
    ----------
    loss : {"sse", "mse", "bce", "ce"}
        A key of :data:`HEADS`.
    output : str or OutputFunction
        Output activation: "softmax" or an element-wise activation (name or object).

    Raises
    ------
    ValueError
        For an unknown loss, "bce" without a sigmoid output, "ce" without a softmax output,
        or a softmax output with any loss but "ce".
    """
    if not isinstance(loss, str) or loss not in HEADS:
        known = ", ".join(repr(k) for k in HEADS)
        raise ValueError(f"`loss` must be one of {known}; got {loss!r}.")
    function = output if isinstance(output, OutputFunction) else get_output_activation(output)
    return HEADS[loss](loss, function)


#: The loss names :func:`deltaprop.mlp` accepts (DESIGN.md's table).
LOSSES = tuple(HEADS)
