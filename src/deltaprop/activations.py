"""Element-wise activation functions with their first and second derivatives.

Each activation h maps a pre-activation z to a = h(z) (Bishop & Bishop 2024 §6.2, §8.1.2).
Backpropagation needs h'(z) (the δ recursion, §8.1.2 eq. 8.13) and the exact Hessian needs
h''(z) (§8.1.6, PRML §5.4.5).  Derivatives are written in terms of z and the cached output a
wherever that is cheaper (``1 - a**2`` for tanh), as scikit-learn's ``DERIVATIVES`` do.

Every activation is an object with one protocol (:class:`OutputFunction`): ``f``, the VJP and
JVP for upstream arrays with any rows per sample, the per-sample Jacobian, and whether h'' ≡ 0.
Element-wise ones also give h' and h'' (``df``, ``d2f``); softmax (an output activation only) is
the object :data:`SOFTMAX`.  The registry ``ACTIVATIONS`` (element-wise) is keyed by the names
accepted by :func:`deltaprop.mlp`; :func:`get_output_activation` adds "softmax".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

Array = np.ndarray

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


def per_sample(d: Array, G: Array) -> Array:
    """Broadcast a per-sample array d (N, K) against G (N, ..., K) (any axes between)."""
    if G.ndim == d.ndim:
        return d
    return d.reshape(d.shape[0], *(1,) * (G.ndim - d.ndim), d.shape[-1])


class OutputFunction:
    """The protocol every activation follows: h, its Jacobian products and its curvature.

    Attributes
    ----------
    name : str
        Registry name.
    elementwise : bool
        True when a_k depends on z_k only (every activation but softmax).
    zero_curvature : bool
        True when h'' ≡ 0 almost everywhere (identity, relu, leaky_relu): the second-order
        terms of the Hessian and the R-operator vanish for it and are skipped.
    """

    name: str
    elementwise: bool = True
    zero_curvature: bool = False

    # ``f(z) -> a``, a = h(z) for z (N, K): a method, or a field of the dataclass ElementWise.

    def linearise(self, z: Array, a: Array) -> Array:
        """The per-sample data of the Jacobian ∂a/∂z at z (N, K), for :meth:`apply`: h'(z) for
        an element-wise h, y for softmax.  Computed once per forward pass and reused."""
        raise NotImplementedError

    def apply(self, lin: Array, G: Array) -> Array:
        """(∂a/∂z)ᵀ G = (∂a/∂z) G (the Jacobian is symmetric) from ``linearise``'s data, for
        G (N, K) or (N, ..., K) with rows per sample."""
        raise NotImplementedError

    def vjp(self, z: Array, a: Array, G: Array) -> Array:
        """∂(·)/∂z from G = ∂(·)/∂a, for G (N, K) or (N, ..., K) with rows per sample."""
        return self.apply(self.linearise(z, a), G)

    def jvp(self, z: Array, a: Array, V: Array) -> Array:
        """R{a} = (∂a/∂z) V for tangents V (N, ..., K); the Jacobian is symmetric, so = vjp."""
        return self.vjp(z, a, V)

    def jacobian(self, z: Array, a: Array) -> Array:
        """∂a_k/∂z_m per sample (N, K, K), row k for output k."""
        raise NotImplementedError


@dataclass(frozen=True)
class ElementWise(OutputFunction):
    """An element-wise activation h with h, h' and h''.

    Attributes
    ----------
    name : str
        Registry name.
    f : callable
        ``f(z) -> a``, any shape.
    df : callable
        ``df(z, a) -> h'(z)``, same shape as z.
    d2f : callable
        ``d2f(z, a) -> h''(z)``, same shape as z.
    zero_curvature : bool
        h'' ≡ 0 (almost everywhere).
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array, Array], Array]
    d2f: Callable[[Array, Array], Array]
    zero_curvature: bool = False

    def linearise(self, z: Array, a: Array) -> Array:
        """h'(z) (N, K)."""
        return self.df(z, a)

    def apply(self, lin: Array, G: Array) -> Array:
        """G ⊙ h'(z), broadcast over the rows of each sample."""
        return G * lin if G.ndim == 2 else G * per_sample(lin, G)

    def jacobian(self, z: Array, a: Array) -> Array:
        """diag(h'(z)) per sample (N, K, K)."""
        n, k = z.shape
        J = np.zeros((n, k, k), dtype=z.dtype)
        J[:, np.arange(k), np.arange(k)] = self.df(z, a)
        return J


class Softmax(OutputFunction):
    """Row-wise softmax y = exp(z) / Σ exp(z), an output activation (never hidden).

    Its Jacobian is diag(y) − y yᵀ per sample (symmetric), so the VJP and the JVP are both
    y ⊙ (g − Σ_k g_k y_k) (Bishop & Bishop 2024 §5.4.4, §8.1.5).
    """

    name = "softmax"
    elementwise = False
    zero_curvature = False

    def f(self, z: Array) -> Array:
        return softmax(z)

    def linearise(self, z: Array, a: Array) -> Array:
        """y (N, K): the Jacobian diag(y) − y yᵀ is built from it."""
        return a

    def apply(self, lin: Array, G: Array) -> Array:
        y = per_sample(lin, G)
        return y * (G - (G * y).sum(axis=-1, keepdims=True))

    def jacobian(self, z: Array, a: Array) -> Array:
        k = a.shape[1]
        J = -a[:, :, None] * a[:, None, :]
        J[:, np.arange(k), np.arange(k)] += a
        return J

    def __repr__(self) -> str:
        return "Softmax()"


def _identity(z: Array) -> Array:
    return z


def _ones(z: Array, a: Array) -> Array:
    return np.ones_like(z)


def _zeros(z: Array, a: Array) -> Array:
    return np.zeros_like(z)


def _sigmoid(z: Array) -> Array:
    return expit(z)


def _sigmoid_d(z: Array, a: Array) -> Array:
    return a * (1 - a)


def _sigmoid_d2(z: Array, a: Array) -> Array:
    return a * (1 - a) * (1 - 2 * a)


def _tanh_d(z: Array, a: Array) -> Array:
    return 1 - a * a


def _tanh_d2(z: Array, a: Array) -> Array:
    return -2 * a * (1 - a * a)


def _relu(z: Array) -> Array:
    return np.maximum(z, 0)


def _relu_d(z: Array, a: Array) -> Array:
    return (z > 0).astype(z.dtype)


def _leaky_relu(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def _leaky_relu_d(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1, LEAKY_RELU_SLOPE).astype(z.dtype)


def _softplus(z: Array) -> Array:
    return np.logaddexp(0, z).astype(z.dtype, copy=False)


def _softplus_d(z: Array, a: Array) -> Array:
    return expit(z)


def _softplus_d2(z: Array, a: Array) -> Array:
    s = expit(z)
    return s * (1 - s)


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _elu_d(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1, a + ELU_ALPHA).astype(z.dtype)


def _elu_d2(z: Array, a: Array) -> Array:
    return np.where(z > 0, 0, a + ELU_ALPHA).astype(z.dtype)


ACTIVATIONS: dict[str, ElementWise] = {
    act.name: act
    for act in (
        ElementWise("identity", _identity, _ones, _zeros, zero_curvature=True),
        ElementWise("sigmoid", _sigmoid, _sigmoid_d, _sigmoid_d2),
        ElementWise("tanh", np.tanh, _tanh_d, _tanh_d2),
        ElementWise("relu", _relu, _relu_d, _zeros, zero_curvature=True),
        ElementWise("leaky_relu", _leaky_relu, _leaky_relu_d, _zeros, zero_curvature=True),
        ElementWise("softplus", _softplus, _softplus_d, _softplus_d2),
        ElementWise("elu", _elu, _elu_d, _elu_d2),
    )
}

#: The softmax output activation (one instance: it has no parameters).
SOFTMAX = Softmax()

#: Output activations accepted by :func:`deltaprop.mlp`: the element-wise ones and softmax.
OUTPUT_ACTIVATIONS = (*ACTIVATIONS, "softmax")


def get_output_activation(name: str, *, where: str = "output") -> OutputFunction:
    """Look up an output activation (element-wise or "softmax") by name.

    Raises
    ------
    ValueError
        If the name is unknown; the message lists the known names.
    """
    if name == "softmax":
        return SOFTMAX
    if isinstance(name, str) and name in ACTIVATIONS:
        return ACTIVATIONS[name]
    known = ", ".join(repr(k) for k in OUTPUT_ACTIVATIONS)
    raise ValueError(f"`{where}` must be one of {known}; got {name!r}.")


def get_activation(name: str, *, where: str = "activation") -> ElementWise:
    """Look up an element-wise activation by name.

    Raises
    ------
    ValueError
        If the name is unknown; the message lists the known names.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"`{where}` must be one of {known}; got {name!r}.") from None


def softmax(z: Array) -> Array:
    """Row-wise softmax of z (N, K), stable for any finite z (log-sum-exp shift)."""
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    e /= e.sum(axis=1, keepdims=True)
    return e


def log_softmax(z: Array) -> Array:
    """Row-wise log-softmax of z (N, K) by the log-sum-exp shift."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
