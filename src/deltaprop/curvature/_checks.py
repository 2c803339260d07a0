"""Second derivatives by central differences, and checks of the analytic ones against them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import central_differences, compare, difference_step
from ..network import Network
from ._common import Array, check_choice, check_positive_float
from ._hessian import hessian
from ._jacobians import jacobian_inputs, jacobian_params


@dataclass
class CurvatureCheck:
    """Report of :func:`check_hessian` and :func:`check_jacobian` (sibling of GradientCheck).

    Attributes
    ----------
    max_abs_error : float
        Largest |analytic − numeric| entry.
    max_rel_error : float
        ``max_abs_error / max(‖analytic‖_∞, ‖numeric‖_∞)`` (normwise).
    worst_index : tuple of int
        Index of the largest absolute error in the compared arrays.
    worst_entry : str
        Its meaning, e.g. ``"layer 0 W[1, 0] × layer 1 b[0]"`` or
        ``"sample 2, output 0, input 1"``.
    eps : float
        The difference step used.
    analytic, numeric : ndarray
        The two arrays compared (numeric always float64).
    """

    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    worst_entry: str
    eps: float
    analytic: Array = field(repr=False)
    numeric: Array = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"CurvatureCheck(max_rel_error={self.max_rel_error:.3g}, "
            f"max_abs_error={self.max_abs_error:.3g}, worst={self.worst_entry!r}, "
            f"eps={self.eps:.3g})"
        )


def _step(eps: float | None, values: Array) -> float:
    """The difference step: ``eps`` (default u^{1/3}) times max(1, ‖values‖_∞)."""
    return difference_step(None if eps is None else check_positive_float(eps, "eps"), values)


def _hessian_fd64(net: Network, X: object, T: object, eps: float | None) -> tuple[Array, float]:
    ref = net.copy(dtype=np.float64)
    step = _step(eps, ref.params)
    X64, T64 = ref.check_data(X, T)

    def grad_at(w: Array) -> Array:
        ref.params[:] = w
        return ref.record_gradient(ref.propagate(X64), T64)[1]

    H = central_differences(grad_at, ref.params.copy(), step)
    H += H.T
    H *= 0.5
    return H, step


def hessian_fd(net: Network, X: object, T: object, eps: float | None = None) -> Array:
    """The Hessian of ``net.loss`` by central differences of backpropagated gradients.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    eps : float, optional
        Step; default u^{1/3} ≈ 6.1e-6, scaled by max(1, ‖w‖_∞).

    Returns
    -------
    ndarray (P, P)
        Symmetrised (H + Hᵀ)/2, in the network's dtype (computed on a float64 copy).

    Notes
    -----
    Row p is (∇L(w + ε e_p) − ∇L(w − ε e_p)) / (2ε), error O(ε²); costs 2P gradients.
    A reference for tests, not for speed.

    References
    ----------
    PRML §5.4.4; Bishop & Bishop 2024 §8.1.4.
    """
    return _hessian_fd64(net, X, T, eps)[0].astype(net.dtype)


def check_hessian(net: Network, X: object, T: object, eps: float | None = None) -> CurvatureCheck:
    """Compare :func:`hessian` with central differences of gradients (:func:`hessian_fd`).

    Returns
    -------
    CurvatureCheck
        ``worst_entry`` names the two parameters of the worst entry.

    Examples
    --------
    >>> import numpy as np, deltaprop
    >>> net = deltaprop.mlp([2, 3, 1], seed=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 2))
    >>> check_hessian(net, X, np.ones((5, 1))).max_rel_error < 1e-6
    True
    """
    numeric, step = _hessian_fd64(net, X, T, eps)
    analytic = hessian(net, X, T)
    max_abs, rel, worst = compare(analytic, numeric)
    p, q = np.unravel_index(worst, analytic.shape)
    entry = f"{net.describe_param(int(p))} × {net.describe_param(int(q))}"
    return CurvatureCheck(max_abs, rel, (int(p), int(q)), entry, step, analytic, numeric)


def _jacobian_fd_params(ref: Network, X64: Array, step: float) -> Array:
    def outputs_at(w: Array) -> Array:
        ref.params[:] = w
        return ref.propagate(X64).output

    w0 = ref.params.copy()
    J = central_differences(outputs_at, w0, step)  # (P, N, n_out)
    ref.params[:] = w0
    return np.ascontiguousarray(J.transpose(1, 2, 0))


def _jacobian_fd_inputs(ref: Network, X64: Array, step: float) -> Array:
    out = np.empty((X64.shape[0], ref.n_outputs, X64.shape[1]))
    for i in range(X64.shape[1]):  # sample n's outputs depend on x_n only: all rows at once
        e = np.zeros_like(X64)
        e[:, i] = step
        out[:, :, i] = (ref.forward(X64 + e) - ref.forward(X64 - e)) / (2 * step)
    return out


def check_jacobian(
    net: Network, X: object, wrt: str = "params", eps: float | None = None
) -> CurvatureCheck:
    """Compare :func:`jacobian_params` or :func:`jacobian_inputs` with central differences.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    wrt : {"params", "inputs"}
    eps : float, optional
        Step; default u^{1/3}, scaled by max(1, ‖w‖_∞) (or ‖X‖_∞ for inputs).

    Returns
    -------
    CurvatureCheck
        Arrays of shape (N, n_out, P) or (N, n_out, n_in).  Costs 2P forward passes (2 n_in for
        inputs).

    References
    ----------
    Bishop & Bishop 2024 §8.1.4–8.1.5.
    """
    wrt = check_choice(wrt, "wrt", ("params", "inputs"))
    ref = net.copy(dtype=np.float64)
    X64 = ref.check_inputs(X)
    if wrt == "params":
        step = _step(eps, ref.params)
        analytic, numeric = jacobian_params(net, X), _jacobian_fd_params(ref, X64, step)
    else:
        step = _step(eps, X64)
        analytic, numeric = jacobian_inputs(net, X), _jacobian_fd_inputs(ref, X64, step)
    max_abs, rel, worst = compare(analytic, numeric)
    n, k, i = (int(v) for v in np.unravel_index(worst, analytic.shape))
    what = net.describe_param(i) if wrt == "params" else f"input {i}"
    return CurvatureCheck(max_abs, rel, (n, k, i), f"sample {n}, output {k}, {what}", step,
                          analytic, numeric)
