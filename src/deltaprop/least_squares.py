r"""Levenberg–Marquardt for nonlinear least squares.

We minimise the cost :math:`C(x) = \tfrac12 \lVert r(x) \rVert^2` of a residual
vector :math:`r : \mathbb{R}^n \to \mathbb{R}^m` with Jacobian
:math:`J = \partial r / \partial x` of shape (m, n).

Linearising the residual about the current point, :math:`r(x + \delta) \approx
r + J\delta`, gives the quadratic model

.. math::

    C(x + \delta) \approx m(\delta) = C(x) + g^\top \delta + \tfrac12 \delta^\top J^\top J \delta,
    \qquad g = J^\top r,

whose minimiser is the Gauss–Newton step :math:`J^\top J \delta = -g`. The
matrix :math:`J^\top J` is the outer-product (Gauss–Newton) approximation to the
Hessian of :math:`C`, exact when the residuals vanish (PRML §5.4.2, eq. 5.84;
Bishop & Bishop 2024 §8). Far from a minimum the linearisation is poor and the
Gauss–Newton step may increase the cost, or :math:`J^\top J` may be singular.
Levenberg (1944) and Marquardt (1963) damp the step:

.. math::

    (J^\top J + \mu D)\, \delta = -J^\top r .

For :math:`\mu \to 0` this is Gauss–Newton (fast, quadratic-like convergence
near a small-residual minimum); for :math:`\mu \to \infty` it is a short step
:math:`-g / \mu` along the (scaled) negative gradient, which decreases the cost
for :math:`\mu` large enough. :math:`\mu` is adapted: a step that lowers the
cost is accepted and :math:`\mu` is decreased; one that does not is rejected,
:math:`\mu` is increased and the system is re-solved with the same :math:`J`.
The step is also the minimiser of the model within the trust region
:math:`\lVert D^{1/2}\delta\rVert \le \lVert D^{1/2}\delta(\mu)\rVert`
(Moré 1977), which is why the cost can always be decreased.

*Scaling.* With :math:`D = I` ("levenberg") the damping is isotropic and its
effect depends on the units of each parameter. Marquardt (1963) takes
:math:`D = \operatorname{diag}(J^\top J)`, which makes the step invariant to a
rescaling of the parameters. Pure :math:`\operatorname{diag}(J^\top J)` fails
where a column of :math:`J` vanishes (saturated tanh units, an exponential that
has decayed): the damping in that direction disappears. Following MINPACK
(Moré 1977; ``lmder`` with ``mode=1``) we keep the running maximum of each
diagonal entry over the iterations, and floor the result at a small fraction of
its largest entry; see :func:`marquardt_diagonal`. Scale invariance has a price
when a column is small only because of the current values of other parameters:
on NIST's BoxBOD from start 1 the scaled step sends a rate constant to a plateau
where the model no longer depends on it, as MINPACK's does; ``"levenberg"``
solves that problem and all other NIST StRD problems (see the tests).

References
----------
.. [1] Levenberg, K. (1944). A method for the solution of certain non-linear
   problems in least squares. Quarterly of Applied Mathematics 2(2), 164–168.
.. [2] Marquardt, D. W. (1963). An algorithm for least-squares estimation of
   nonlinear parameters. SIAM Journal on Applied Mathematics 11(2), 431–441.
.. [3] Moré, J. J. (1977). The Levenberg–Marquardt algorithm: implementation
   and theory. In Numerical Analysis, Lecture Notes in Mathematics 630, 105–116.
.. [4] Bishop, C. M. & Bishop, H. (2024). Deep Learning: Foundations and
   Concepts, §8 (backpropagation, Jacobian, outer-product approximation).
.. [5] Bishop, C. M. (2006). Pattern Recognition and Machine Learning, §5.4.2
   (outer-product approximation, eq. 5.84).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from .linalg import marquardt_diagonal, solve_damped, update_mu

__all__ = [
    "DAMPINGS",
    "TERMINATION_MESSAGES",
    "LMResult",
    "levenberg_marquardt",
    "marquardt_diagonal",
    "solve_damped",
    "update_mu",
]

DAMPINGS = ("marquardt", "levenberg")

TERMINATION_MESSAGES = {
    -2: "Stopped by callback: `callback` returned True or raised StopIteration.",
    -1: "No progress: `mu` exceeded `mu_max` without finding a step that lowers the cost.",
    0: "The maximum number of iterations `max_iter` is exceeded.",
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
}



class LMResult(OptimizeResult):
    """Result of :func:`levenberg_marquardt` (a :class:`scipy.optimize.OptimizeResult`).

    Attributes
    ----------
    x : ndarray, shape (n,)
        The best point found (the last accepted one).
    cost : float
        ``0.5 * ||fun||**2`` at `x`.
    fun : ndarray, shape (m,)
        Residuals at `x`.
    jac : ndarray, shape (m, n)
        Jacobian at `x`.
    grad : ndarray, shape (n,)
        Gradient of the cost, ``jac.T @ fun``.
    optimality : float
        ``||grad||_inf``.
    mu : float
        Damping parameter at termination.
    nit : int
        Number of iterations (damped solves; each rejected step counts).
    nfev, njev : int
        Number of evaluations of `fun` and `jac`.
    status : int
        Reason for termination, a key of :data:`TERMINATION_MESSAGES`.
    message : str
        ``TERMINATION_MESSAGES[status]``.
    success : bool
        ``status > 0``: one of the convergence tests was satisfied.
    """


def _gtol_test(JTJ: np.ndarray, JTr: np.ndarray, cost: float, gtol: float) -> bool:
    """MINPACK's scale-free gradient test: max_j |cos(r, J_j)| <= gtol (true when r = 0)."""
    if cost == 0:
        return True
    norms = np.sqrt(np.diag(JTJ)) * np.sqrt(2 * cost)
    cosines = np.abs(JTr[norms > 0]) / norms[norms > 0]
    return bool(cosines.max(initial=0.0) <= gtol)


def _step_test(step, x, JTJ, mu, D, cost, cost_new, ftol, xtol) -> int | None:
    """MINPACK's ftol and xtol tests on one trial step; the status they give, or None.

    ftol: both the actual and the predicted relative reductions of the cost are <= ftol (and
    the actual is at most twice the predicted). xtol: ||D^½ step|| <= xtol ||D^½ x||.
    """
    step_D_step = float(step @ (D * step))
    predicted = (0.5 * float(step @ (JTJ @ step)) + mu * step_D_step) / cost
    actual = (cost - cost_new) / cost  # -inf for a non-finite trial
    f_ok = abs(actual) <= ftol and predicted <= ftol and actual <= 2 * predicted
    x_ok = step_D_step <= xtol**2 * float(x @ (D * x))
    return (None, 3, 2, 4)[2 * f_ok + x_ok]


def _residuals(fun: Callable, x: np.ndarray, args: tuple) -> tuple[np.ndarray | None, float]:
    """``(r, cost)`` at a trial point; ``(None, inf)`` when either is not finite (a rejection)."""
    with np.errstate(all="ignore"):
        r = np.asarray(fun(x, *args), dtype=float)
        cost = 0.5 * float(r @ r) if np.all(np.isfinite(r)) else np.inf
    return (r, cost) if np.isfinite(cost) else (None, np.inf)


def _linearise(J: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J^T J, J^T r)``."""
    return J.T @ J, J.T @ r


class _Iterate:
    """The accepted point and everything derived from it: x, r, J, JᵀJ, Jᵀr, D, cost."""

    def __init__(self, x, r, J, damping, previous_D=None):
        self.x, self.r, self.J = x, r, J
        self.JTJ, self.JTr = _linearise(J, r)
        self.cost = 0.5 * float(r @ r)
        if damping == "levenberg":
            self.D = np.ones_like(x)
        else:
            self.D = marquardt_diagonal(np.diag(self.JTJ), previous_D)


def _result(it: _Iterate, mu: float, status: int, counts: dict[str, int]) -> LMResult:
    return LMResult(
        x=it.x, cost=it.cost, fun=it.r, jac=it.J, grad=it.JTr,
        optimality=float(np.abs(it.JTr).max(initial=0.0)), mu=mu, status=status,
        message=TERMINATION_MESSAGES[status], success=status > 0, **counts,
    )  # fmt: skip


def _notify(callback: Callable | None, it: _Iterate, mu: float, nit: int) -> bool:
    """Call ``callback(intermediate_result)``; True when it asks to stop."""
    if callback is None:
        return False
    info = OptimizeResult(x=it.x.copy(), cost=it.cost, fun=it.r, grad=it.JTr, mu=mu, nit=nit)
    try:
        return bool(callback(info))
    except StopIteration:
        return True


# ----------------------------------------------------------------------------- validation


def _check_options(mu, mu_dec, mu_inc, mu_max, damping, max_iter, tols, callback) -> None:
    """Raise ValueError (TypeError for a non-callable `callback`) naming the bad option."""
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"`mu` must be a finite number > 0, got {mu!r}.")
    if not 0 < mu_dec < 1:
        raise ValueError(f"`mu_dec` must be in (0, 1), got {mu_dec!r}.")
    if not (np.isfinite(mu_inc) and mu_inc > 1):
        raise ValueError(f"`mu_inc` must be a finite number > 1, got {mu_inc!r}.")
    if not mu_max > mu:
        raise ValueError(f"`mu_max` must be > `mu` = {mu!r}, got {mu_max!r}.")
    if damping not in DAMPINGS:
        raise ValueError(f"`damping` must be 'marquardt' or 'levenberg', got {damping!r}.")
    if max_iter is not None and not (isinstance(max_iter, int | np.integer) and max_iter >= 1):
        raise ValueError(f"`max_iter` must be an integer >= 1 or None, got {max_iter!r}.")
    for name, tol in tols.items():
        if not tol >= 0:
            raise ValueError(f"`{name}` must be >= 0, got {tol!r}.")
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None, got {type(callback).__name__}.")


def _check_start(fun, jac, x0, args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate `x0` and the first calls of `fun` and `jac`; return (x, r, J) as float64."""
    for name, f in (("fun", fun), ("jac", jac)):
        if not callable(f):
            raise TypeError(f"`{name}` must be callable, got {type(f).__name__}.")
    x = np.array(x0, dtype=float)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"`x0` must be a non-empty 1-D array of finite values, got {x0!r}.")
    r = np.asarray(fun(x.copy(), *args), dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"`fun` must return a non-empty 1-D array, got shape {r.shape}.")
    if not np.all(np.isfinite(r)):
        raise ValueError("`fun` returned non-finite residuals at `x0`.")
    J = np.asarray(jac(x.copy(), *args), dtype=float)
    if J.shape != (r.size, x.size):
        raise ValueError(
            f"`jac` must return an array of shape (m, n) = {(r.size, x.size)}, got {J.shape}."
        )
    if not np.all(np.isfinite(J)):
        raise ValueError("`jac` returned non-finite values at `x0`.")
    return x, r, J


# ----------------------------------------------------------------------------- driver


def _jacobian(jac: Callable, x: np.ndarray, args: tuple) -> np.ndarray | None:
    """``jac(x, *args)`` as float64, or None when it is not finite."""
    with np.errstate(all="ignore"):
        J = np.asarray(jac(x, *args), dtype=float)
    return J if np.all(np.isfinite(J)) else None


def levenberg_marquardt(
    fun: Callable[..., np.ndarray],
    x0: Sequence[float] | np.ndarray,
    jac: Callable[..., np.ndarray],
    *,
    args: tuple[Any, ...] = (),
    mu: float = 1e-3,
    mu_dec: float = 0.1,
    mu_inc: float = 10.0,
    mu_max: float = 1e10,
    damping: str = "marquardt",
    max_iter: int | None = None,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    callback: Callable[[OptimizeResult], bool | None] | None = None,
) -> LMResult:
    r"""Minimise :math:`\tfrac12\lVert r(x)\rVert^2` by Levenberg–Marquardt.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> r``, residuals of shape (m,) for `x` of shape (n,).
    x0 : array_like, shape (n,)
        Starting point (finite).
    jac : callable
        ``jac(x, *args) -> J``, the Jacobian ``∂r/∂x`` of shape (m, n).
    args : tuple, optional
        Extra arguments for `fun` and `jac`.
    mu : float, default 1e-3
        Initial damping (relative to ``diag(JᵀJ)`` for ``damping="marquardt"``).
    mu_dec : float in (0, 1), default 0.1
        Factor applied to `mu` after an accepted step.
    mu_inc : float > 1, default 10
        Factor applied to `mu` after a rejected step or a failed factorisation.
    mu_max : float > mu, default 1e10
        Stop with status -1 when `mu` exceeds it (no step lowers the cost).
    damping : {"marquardt", "levenberg"}, default "marquardt"
        ``D`` in the damped system: :func:`marquardt_diagonal` or the identity.
    max_iter : int, optional
        Maximum number of iterations (damped solves, accepted or not); default ``100 (n + 1)``.
    ftol, xtol, gtol : float >= 0, default 1e-8
        Convergence tolerances of MINPACK's tests, see Notes.
    callback : callable, optional
        ``callback(intermediate_result)`` after each accepted step, with an
        :class:`~scipy.optimize.OptimizeResult` holding ``x, cost, fun, grad, mu, nit``.
        Returning True (or raising StopIteration) stops with status -2.

    Returns
    -------
    LMResult
        ``x, cost, fun, jac, grad, optimality, mu, nit, nfev, njev, status, message, success``;
        `x` is the best point found. ``status`` is a key of :data:`TERMINATION_MESSAGES`.

    Raises
    ------
    ValueError
        For an invalid option, an `x0` that is not a finite 1-D array, or `fun` / `jac`
        returning a wrong shape or non-finite values at `x0`.

    Notes
    -----
    Each iteration solves :math:`(J^\top J + \mu D)\delta = -J^\top r` by Cholesky
    (:func:`solve_damped`). The trial point is accepted only if it strictly lowers the
    cost; then `mu` is multiplied by `mu_dec` and `jac` is evaluated there. Otherwise
    (including non-finite residuals or a failed factorisation) `mu` is multiplied by
    `mu_inc` and the system is re-solved with the same :math:`J^\top J` and :math:`J^\top r`.
    With :math:`\rho` the actual and :math:`\pi = (\tfrac12\delta^\top J^\top J\delta +
    \mu\,\delta^\top D\delta)/C` the predicted relative reduction of the cost (Moré 1977):

    * ``ftol``: :math:`|\rho| \le` ftol and :math:`\pi \le` ftol and :math:`\rho \le 2\pi`;
    * ``xtol``: :math:`\lVert D^{1/2}\delta\rVert \le \text{xtol}\,\lVert D^{1/2}x\rVert`;
    * ``gtol``: :math:`\max_j |J_j^\top r| / (\lVert J_j\rVert\,\lVert r\rVert) \le` gtol, the
      cosine between the residual and each column of :math:`J` (scale-free, as MINPACK).

    ftol and xtol are tested on every trial step, accepted or not, gtol at each new point.

    References
    ----------
    Marquardt (1963); Moré (1977); Bishop & Bishop (2024), §8; PRML §5.4.2, eq. 5.84.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 1, 20)
    >>> y = 2.0 * np.exp(-1.5 * t)
    >>> fun = lambda b: b[0] * np.exp(-b[1] * t) - y
    >>> jac = lambda b: np.column_stack([np.exp(-b[1] * t), -b[0] * t * np.exp(-b[1] * t)])
    >>> res = levenberg_marquardt(fun, [1.0, 1.0], jac)
    >>> res.success, np.round(res.x, 6)
    (True, array([2. , 1.5]))
    """
    tols = {"ftol": ftol, "xtol": xtol, "gtol": gtol}
    _check_options(mu, mu_dec, mu_inc, mu_max, damping, max_iter, tols, callback)
    args = tuple(args)
    x, r, J = _check_start(fun, jac, x0, args)
    max_iter = 100 * (x.size + 1) if max_iter is None else int(max_iter)
    it = _Iterate(x, r, J, damping)
    counts = {"nit": 0, "nfev": 1, "njev": 1}
    status = 1 if _gtol_test(it.JTJ, it.JTr, it.cost, gtol) else None
    while status is None and counts["nit"] < max_iter:
        counts["nit"] += 1
        step, ok = solve_damped(it.JTJ, it.JTr, mu, it.D)
        if ok:
            x_new = it.x + step
            r_new, cost_new = _residuals(fun, x_new, args)
            counts["nfev"] += 1
            status = _step_test(step, it.x, it.JTJ, mu, it.D, it.cost, cost_new, ftol, xtol)
            J_new = _jacobian(jac, x_new, args) if cost_new < it.cost else None
            counts["njev"] += cost_new < it.cost
            ok = J_new is not None
        mu = update_mu(mu, ok, mu_dec, mu_inc)
        if ok:
            it = _Iterate(x_new, r_new, J_new, damping, it.D)
            if status is None and _gtol_test(it.JTJ, it.JTr, it.cost, gtol):
                status = 1
            if _notify(callback, it, mu, counts["nit"]) and status is None:
                status = -2
        elif status is None and mu > mu_max:
            status = -1
    return _result(it, mu, 0 if status is None else status, counts)
