"""Losses fused with the output activation ("heads"), as defined in ../shared/DESIGN.md.

A head takes the output pre-activations Z = z_L (N, K) and targets T (N, K) and returns the loss
L and the output error δ_L = ∂L/∂z_L (Bishop & Bishop 2024 §8.1.2 eq. 8.12).  For the
canonical pairs (squared error with an identity output, binary cross-entropy with a sigmoid
output, cross-entropy with a softmax output) δ_L = c (y − t), c the loss's normalisation, never
a product of two unstable factors (§5.4.3, §6.4).  Cross-entropies are computed from the
logits, so they stay finite for |z| up to 1e3 and beyond.

Heads also provide the output curvature that the curvature module needs:
``hess_z`` (exact ∂²L/∂z_L² times a direction, PRML §5.4.5–5.4.6) and ``gn_z`` (the
generalised Gauss–Newton output matrix M times a direction, Schraudolph 2002).

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

import numpy as np

from .activations import ElementWise, log_softmax, softmax

Array = np.ndarray

LOSSES = ("sse", "mse", "bce", "ce")


class Head:
    """Output activation fused with a loss.

    Subclasses implement the value, δ_L and the output curvature for a batch.
    """

    loss: str
    activation: str

    def output(self, z: Array) -> Array:
        """Network output y = h(z) (N, K)."""
        raise NotImplementedError

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        """The factor c with δ_L = c (y − t) for a canonical pair."""
        raise NotImplementedError

    def value(self, z: Array, y: Array, t: Array) -> float:
        """Loss L for output pre-activations z, outputs y and targets t, all (N, K)."""
        raise NotImplementedError

    def delta(self, z: Array, y: Array, t: Array) -> Array:
        """Output error δ_L = ∂L/∂z (N, K)."""
        raise NotImplementedError

    def value_and_delta(self, z: Array, y: Array, t: Array) -> tuple[float, Array]:
        """Loss and δ_L together (one pass over the residual where the head allows)."""
        return self.value(z, y, t), self.delta(z, y, t)

    def hess_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        """Exact (∂²L/∂z∂z) v, per sample, for v (N, K) or (N, K, k) -> same shape."""
        raise NotImplementedError

    def gn_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        """Gauss–Newton output matrix M times v, per sample (same shapes as ``hess_z``)."""
        raise NotImplementedError

    def gn_diagonal(self, z: Array, y: Array) -> Array | None:
        """M as a diagonal (N, K) when it is diagonal, else None (softmax)."""
        raise NotImplementedError


def _expand(d: Array, v: Array) -> Array:
    """Broadcast a per-sample diagonal d (N, K) against v (N, K) or (N, K, k)."""
    return d if v.ndim == 2 else d[:, :, None]


class SquaredErrorHead(Head):
    """Sum ("sse") or mean ("mse") of squared errors after any element-wise output h.

    L = (c/2) Σ (y − t)², δ_L = c (y − t) h'(z); for the identity output δ_L = c (y − t).
    """

    def __init__(self, loss: str, activation: ElementWise):
        self.loss = loss
        self.activation = activation.name
        self._act = activation
        self._canonical = activation.name == "identity"

    def output(self, z: Array) -> Array:
        return self._act.f(z)

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        return 1.0 if self.loss == "sse" else 2.0 / (n_samples * n_outputs)

    def value(self, z: Array, y: Array, t: Array) -> float:
        r = y - t
        c = self.normalisation(*z.shape)
        return float(0.5 * c * np.vdot(r, r))

    def delta(self, z: Array, y: Array, t: Array) -> Array:
        return self._delta_from(z, y, y - t, self.normalisation(*z.shape))

    def value_and_delta(self, z: Array, y: Array, t: Array) -> tuple[float, Array]:
        c = self.normalisation(*z.shape)
        r = y - t
        value = float(0.5 * c * np.vdot(r, r))
        return value, self._delta_from(z, y, r, c)

    def _delta_from(self, z: Array, y: Array, r: Array, c: float) -> Array:
        """δ_L = c r h'(z) from the residual r = y − t, overwriting r."""
        r *= c
        if not self._canonical:
            r *= self._act.df(z, y)
        return r

    def hess_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        c = self.normalisation(*z.shape)
        if self._canonical:
            return c * v
        d1 = self._act.df(z, y)
        m = c * (d1 * d1 + (y - t) * self._act.d2f(z, y))
        return _expand(m, v) * v

    def gn_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        return _expand(self.gn_diagonal(z, y), v) * v

    def gn_diagonal(self, z: Array, y: Array) -> Array:
        c = self.normalisation(*z.shape)
        if self._canonical:
            return np.full_like(z, c)
        d1 = self._act.df(z, y)
        return c * d1 * d1


class _MeanLogitHead(Head):
    """Cross-entropies from the logits: normalisation 1/N and δ_L = (y − t)/N."""

    def normalisation(self, n_samples: int, n_outputs: int) -> float:
        return 1.0 / n_samples

    def delta(self, z: Array, y: Array, t: Array) -> Array:
        d = y - t
        d *= 1.0 / z.shape[0]
        return d


class BinaryCrossEntropyHead(_MeanLogitHead):
    """Sigmoid outputs with binary cross-entropy, from the logits.

    L = (1/N) Σ_nk softplus(z) − t z, δ_L = (y − t)/N, ∂²L/∂z² = y (1 − y)/N (diagonal).
    """

    loss = "bce"
    activation = "sigmoid"

    def __init__(self, activation: ElementWise):
        self._act = activation

    def output(self, z: Array) -> Array:
        return self._act.f(z)

    def value(self, z: Array, y: Array, t: Array) -> float:
        softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
        return float((softplus.sum() - np.vdot(t, z)) / z.shape[0])

    def gn_diagonal(self, z: Array, y: Array) -> Array:
        return y * (1 - y) / z.shape[0]

    def hess_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        return _expand(self.gn_diagonal(z, y), v) * v

    gn_z = hess_z


class CrossEntropyHead(_MeanLogitHead):
    """Softmax outputs with cross-entropy, from the logits (log-sum-exp).

    L = −(1/N) Σ_n Σ_k t log softmax(z), δ_L = (y − t)/N,
    ∂²L/∂z_n² = (diag(y_n) − y_n y_nᵀ)/N for target rows that sum to one.
    """

    loss = "ce"
    activation = "softmax"

    def output(self, z: Array) -> Array:
        return softmax(z)

    def value(self, z: Array, y: Array, t: Array) -> float:
        return float(-np.vdot(t, log_softmax(z)) / z.shape[0])

    def hess_z(self, z: Array, y: Array, t: Array, v: Array) -> Array:
        yy = _expand(y, v)
        return (yy * v - yy * (yy * v).sum(axis=1, keepdims=True)) / z.shape[0]

    gn_z = hess_z

    def gn_diagonal(self, z: Array, y: Array) -> None:
        return None


def make_head(loss: str, output: str, activation: ElementWise | None) -> Head:
    """Build the head for a loss name and an output activation name.

    Parameters
    ----------
    loss : {"sse", "mse", "bce", "ce"}
    output : str
        Output activation name; "softmax" or an element-wise activation.
    activation : ElementWise or None
        The element-wise output activation (None for softmax).

    Raises
    ------
    ValueError
        For an unknown loss, "bce" without a sigmoid output, "ce" without a softmax output,
        or a softmax output with any loss but "ce".
    """
    if loss not in LOSSES:
        known = ", ".join(repr(k) for k in LOSSES)
        raise ValueError(f"`loss` must be one of {known}; got {loss!r}.")
    if loss == "bce":
        if output != "sigmoid":
            raise ValueError(f'`loss="bce"` needs `output="sigmoid"`; got output={output!r}.')
        return BinaryCrossEntropyHead(activation)
    if loss == "ce":
        if output != "softmax":
            raise ValueError(f'`loss="ce"` needs `output="softmax"`; got output={output!r}.')
        return CrossEntropyHead()
    if output == "softmax":
        raise ValueError(f'`output="softmax"` needs `loss="ce"`; got loss={loss!r}.')
    return SquaredErrorHead(loss, activation)
