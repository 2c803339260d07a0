"""Numerical differentiation: check backpropagated gradients by central differences.

Central differences (Bishop & Bishop 2024 §8.1.4, eq. 8.25)::

    ∂L/∂w_p ≈ (L(w + ε e_p) − L(w − ε e_p)) / (2ε)

have truncation error O(ε²) and round-off error O(u/ε) (u the unit round-off), so the best
ε is about u^{1/3} (≈ 6e-6 in float64).  The differences are always taken in float64 on a
float64 copy of the network, so a float32 network is checked against an accurate reference.
Each check costs 2P forward passes (or 2k for k random directions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .network import Network

Array = np.ndarray

#: The default step: cube root of float64's machine epsilon.
DEFAULT_EPS = float(np.finfo(np.float64).eps ** (1 / 3))


@dataclass
class GradientCheck:
    """Report of :func:`check_gradient`.

    Attributes
    ----------
    max_abs_error : float
        max_p |analytic_p − numeric_p|.
    max_rel_error : float
        ``max_abs_error / max(‖analytic‖_∞, ‖numeric‖_∞)`` (normwise, so zero components do
        not divide by zero).
    worst_index : int
        Parameter (or direction) index of the largest absolute error.
    worst_param : str
        Its location, e.g. ``"layer 1 W[2, 0]"`` (or ``"direction 3"``).
    eps : float
        The step used.
    analytic, numeric : ndarray
        The two gradients (or directional derivatives) compared.
    """

    max_abs_error: float
    max_rel_error: float
    worst_index: int
    worst_param: str
    eps: float
    analytic: Array = field(repr=False)
    numeric: Array = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"GradientCheck(max_rel_error={self.max_rel_error:.3g}, "
            f"max_abs_error={self.max_abs_error:.3g}, worst={self.worst_param!r}, "
            f"eps={self.eps:.3g})"
        )


def compare(analytic: Array, numeric: Array) -> tuple[float, float, int]:
    """Max absolute error, normwise relative error and the worst index of two arrays."""
    diff = np.abs(np.asarray(analytic, dtype=np.float64) - numeric)
    worst = int(np.argmax(diff)) if diff.size else 0
    max_abs = float(diff.flat[worst]) if diff.size else 0.0
    scale = max(float(np.max(np.abs(analytic), initial=0)),
                float(np.max(np.abs(numeric), initial=0)))
    rel = max_abs / scale if scale > 0 else max_abs
    return max_abs, rel, worst


def difference_step(eps: float | None, values: Array) -> float:
    """The difference step: ``eps`` (default u^{1/3}) times max(1, ‖values‖_∞)."""
    base = DEFAULT_EPS if eps is None else float(eps)
    return base * max(1.0, float(np.abs(values).max(initial=0.0)))


def central_differences(fun, x: Array, eps: float, directions: Array | None = None) -> Array:
    """Central differences of a function ``fun`` at x (P,).

    Returns (P, *shape) for a ``fun`` with values of shape ``shape`` (P for a scalar): row p is
    the partial derivative along e_p.  With ``directions`` (k, P), returns the k directional
    derivatives instead of the P partials.  ``fun`` must accept a new x each call.
    """
    steps = np.eye(x.size) if directions is None else directions
    return np.array([(fun(x + eps * step) - fun(x - eps * step)) / (2 * eps) for step in steps],
                    dtype=np.float64)


def check_gradient(
    net: Network,
    X: object,
    T: object,
    eps: float | None = None,
    directions: int | None = None,
    seed: int | None = 0,
) -> GradientCheck:
    """Compare ``net.gradient`` with central differences of ``net.loss``.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets as accepted by ``net.loss``
    eps : float, optional
        Difference step; default u^{1/3} ≈ 6.1e-6 (scaled by max(1, ‖w‖_∞) internally).
    directions : int, optional
        Check this many random unit directions (gᵀv against the difference along v) instead
        of all P parameters: cheap for large networks.
    seed : int, optional
        Seed of the random directions.

    Returns
    -------
    GradientCheck

    Examples
    --------
    >>> import numpy as np, deltaprop
    >>> net = deltaprop.mlp([2, 4, 1], seed=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 2))
    >>> check_gradient(net, X, np.ones((5, 1))).max_rel_error < 1e-8
    True
    """
    if eps is not None and not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"`eps` must be a positive number; got {eps!r}.")
    if directions is not None and (isinstance(directions, bool) or int(directions) < 1):
        raise ValueError(f"`directions` must be a positive integer; got {directions!r}.")
    _, analytic = net.gradient(X, T)
    ref = net.copy(dtype=np.float64)
    X64, T64 = ref.check_data(X, T)
    w0 = ref.params.copy()
    step = difference_step(eps, w0)

    def loss_at(w: Array) -> float:
        ref.params[:] = w
        return ref.record_loss(ref.propagate(X64), T64)

    V = None
    if directions is not None:
        V = np.random.default_rng(seed).normal(size=(int(directions), net.n_params))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        analytic = V @ analytic.astype(np.float64)
    numeric = central_differences(loss_at, w0, step, V)
    max_abs, rel, worst = compare(analytic, numeric)
    where = net.describe_param(worst) if V is None else f"direction {worst}"
    return GradientCheck(max_abs, rel, worst, where, step, np.asarray(analytic), numeric)
