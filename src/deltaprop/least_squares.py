r"""Levenberg–Marquardt for nonlinear least squares: Moré's trust region, by default.

We minimise the cost :math:`C(x) = \tfrac12 \lVert r(x) \rVert^2` of a residual vector
:math:`r : \mathbb{R}^n \to \mathbb{R}^m` with Jacobian :math:`J = \partial r / \partial x`
(m, n).  Linearising the residual, :math:`r(x + \delta) \approx r + J\delta`, gives the model

.. math::

    C(x + \delta) \approx m(\delta) = C(x) + g^\top \delta + \tfrac12 \delta^\top J^\top J \delta,
    \qquad g = J^\top r,

whose minimiser is the Gauss–Newton step :math:`J^\top J \delta = -g`.  :math:`J^\top J` is the
outer-product (Gauss–Newton) approximation to the Hessian of :math:`C`, exact when the residuals
vanish (PRML §5.4.2, eq. 5.84; Bishop & Bishop 2024 §8).  Far from a minimum the linearisation
is poor, and :math:`J^\top J` may be singular; Levenberg (1944) and Marquardt (1963) damp the
step, :math:`(J^\top J + \mu D^2)\delta = -g`.

*Trust region* (the default, ``method="trust-region"``; Moré 1977, MINPACK's ``lmder``).  The
damped step is the minimiser of :math:`m` over the scaled ball :math:`\lVert D\delta\rVert
\le \Delta`, μ being the multiplier of the constraint, so the method controls the radius Δ
rather than μ.  Each iteration

1. finds μ for the radius by Moré's safeguarded Newton iteration on
   :math:`\lVert D\delta(\mu)\rVert = \Delta` (to 10 %), or takes μ = 0 when the Gauss–Newton
   step lies inside; here from one thin SVD of :math:`J D^{-1}` per accepted point, so that
   every trial μ costs O(n) (:func:`deltaprop.linalg.svd_trust_region_step`);
2. evaluates the residual at :math:`x + \delta` and the ratio ρ of the actual to the predicted
   reduction :math:`m(0) - m(\delta)`; the step is accepted when ρ ≥ 10⁻⁴;
3. shrinks Δ (by a factor in [0.1, 0.5] from a quadratic interpolation of the cost along the
   step) when ρ ≤ ¼, sets Δ = 2‖Dδ‖ when ρ ≥ ¾ or μ = 0 (:func:`deltaprop.linalg.update_radius`).

The scaling D is MINPACK's: the running maximum of the column norms of J (``x_scale="jac"``),
which makes the iteration invariant to a rescaling of the variables; ``x_scale`` fixes
:math:`D = 1/x_\text{scale}` instead.  The first radius is :math:`\lVert D x_0\rVert`, capped at the
first step's length.

*Geodesic acceleration of a rejected step* (Transtrum & Sethna 2012).  A rejected trial
:math:`x + v` is not wasted: its residual gives the second directional derivative
:math:`r_{vv} \approx 2\,(r(x+v) - r - Jv)` (the finite difference of step 1 along v), the
acceleration :math:`a = -(J^\top J + \mu D^2)^{-1} J^\top r_{vv}` and the geodesic trial
:math:`x + v + a/2`, which follows the curved valley that defeated the straight step.  It is
tried once, when :math:`\lVert Da\rVert \le \lVert Dv\rVert` (Transtrum's acceptance rule with
α = 1), and replaces the rejected trial if it lowers the cost more; ρ is then measured against
the prediction for v.  On the NIST StRD and Moré–Garbow–Hillstrom problems (see
``python -m benchmarks least-squares``) this solves every run with fewer evaluations than
MINPACK; applied to every step, as Transtrum & Sethna do, it costs one more evaluation per
iteration and more evaluations in total.  ``geodesic=False`` switches it off.

*Multiplicative damping* (``method="multiplicative"``, the chapter's form; Marquardt 1963):
solve :math:`(J^\top J + \mu D)\delta = -g` by Cholesky, accept the step only if it lowers the
cost and multiply μ by ``mu_dec``; otherwise multiply μ by ``mu_inc`` and solve again.  D is
:func:`deltaprop.linalg.marquardt_diagonal` (``damping="marquardt"``) or the identity
(``"levenberg"``).

*Bounds* keep every iterate feasible: the variables at a bound whose gradient points outward are
held, the step is taken in the others and projected onto the box (or shortened to the box, if
that predicts more); the gradient test and ``optimality`` use the projected gradient
(Kanzow, Yamashita & Fukushima 2004).

*Robust losses* (``loss``, ``f_scale``) rescale residuals and Jacobian at each accepted point
so that the model above is the Gauss–Newton model of the robust cost
(:mod:`deltaprop.lsq_problem`; Triggs et al. 2000).

*Uncertainty.*  At the solution, :math:`\mathrm{Cov}(x) = s^2 (J^\top J)^{-1}` with
:math:`s^2 = 2C/(m - n)` (the residual variance; Bates & Watts 1988, §2.3), computed from the
SVD of the column-scaled J (a pseudo-inverse, with a warning, when :math:`J^\top J` is
singular); ``stderr`` is the square root of its diagonal.

References
----------
.. [1] Levenberg, K. (1944). A method for the solution of certain non-linear problems in least
   squares. Quarterly of Applied Mathematics 2(2), 164–168.
.. [2] Marquardt, D. W. (1963). An algorithm for least-squares estimation of nonlinear
   parameters. SIAM Journal on Applied Mathematics 11(2), 431–441.
.. [3] Moré, J. J. (1977). The Levenberg–Marquardt algorithm: implementation and theory. In
   Numerical Analysis, Lecture Notes in Mathematics 630, 105–116.
.. [4] Moré, J. J., Garbow, B. S. & Hillstrom, K. E. (1980). User guide for MINPACK-1.
   Argonne National Laboratory ANL-80-74.
.. [5] Transtrum, M. K. & Sethna, J. P. (2012). Improvements to the Levenberg–Marquardt
   algorithm for nonlinear least-squares minimization. arXiv:1201.5885.
.. [6] Kanzow, C., Yamashita, N. & Fukushima, M. (2004). Levenberg–Marquardt methods with strong
   local convergence properties for solving nonlinear equations with convex constraints.
   J. Comput. Appl. Math. 172(2), 375–397.
.. [7] Bates, D. M. & Watts, D. G. (1988). Nonlinear Regression Analysis and Its Applications,
   §2.3 (approximate inference regions).
.. [8] Bishop, C. M. & Bishop, H. (2024). Deep Learning: Foundations and Concepts, §8; Bishop,
   C. M. (2006). Pattern Recognition and Machine Learning, §5.4.2 (eq. 5.84).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning

from ._validation import check_positive_float, check_positive_int
from .linalg import marquardt_diagonal, solve_damped, update_mu, update_radius
from .lsq_problem import JAC_METHODS, ROBUST_LOSSES, Residuals, make_model

__all__ = [
    "DAMPINGS",
    "METHODS",
    "TERMINATION_MESSAGES",
    "LMResult",
    "inverse_gauss_newton",
    "levenberg_marquardt",
    "marquardt_diagonal",
    "solve_damped",
    "update_mu",
]

Array = np.ndarray
EPS = np.finfo(float).eps

METHODS = ("trust-region", "multiplicative")
DAMPINGS = ("marquardt", "levenberg")
#: The first radius is this times ‖D x0‖ (MINPACK's ``factor``, whose default is 100).  Measured
#: on the NIST StRD runs (also with randomly rescaled variables) and the Moré–Garbow–Hillstrom
#: problems from x0, 10 x0 and 100 x0: 100 loses BoxBOD from start 1 (as MINPACK does) and 10
#: costs 17 % more evaluations on NIST; 0.1 to 3 are within noise of each other (0.03 and 0.3
#: each lose one run), and 1 is kept.
INITIAL_RADIUS_FACTOR = 1.0
#: A trial is accepted when the actual reduction is at least this fraction of the predicted.
ACCEPT_RATIO = 1e-4
#: The geodesic correction a/2 of a rejected step v is tried when ‖Da‖ ≤ this × ‖Dv‖.
GEODESIC_RATIO = 1.0
#: A variable this close to a bound (relative to max(1, |bound|)) is put on it.
SNAP_TO_BOUND = 1e-12

TERMINATION_MESSAGES = {
    -2: "Stopped by callback: `callback` returned True or raised StopIteration.",
    -1: "No progress: `mu` exceeded `mu_max` without finding a step that lowers the cost.",
    0: "The maximum number of function evaluations `max_nfev` or iterations `max_iter` "
       "is exceeded.",
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
        The cost at `x`: ``0.5 * ||fun||**2``, or ``0.5 * sum(rho(fun**2))`` for a robust loss.
    fun : ndarray, shape (m,)
        Residuals at `x` (not scaled by the loss).
    jac : ndarray, sparse matrix or LinearOperator, shape (m, n)
        Jacobian at `x`, scaled by the loss as in ``scipy.optimize.least_squares``
        (``jac.T @ jac`` is the Gauss–Newton Hessian of the cost).
    grad : ndarray, shape (n,)
        Gradient of the cost.
    optimality : float
        Infinity norm of the projected gradient (the gradient without the components that
        point out of the box at an active bound).
    active_mask : ndarray of int, shape (n,)
        −1 / +1 where a variable is at its lower / upper bound, 0 elsewhere.
    covariance : ndarray, shape (n, n)
        :math:`s^2 (J^\\top J)^{-1}` at `x`, :math:`s^2 = 2\\,\\text{cost}/(m - n)`; a
        pseudo-inverse (and an ``OptimizeWarning``) when :math:`J^\\top J` is singular; inf
        when m ≤ n.
    stderr : ndarray, shape (n,)
        Standard errors of the estimates, ``sqrt(diag(covariance))``.
    mu : float
        Damping at termination.
    nit : int
        Number of trial steps (each rejected one counts; for the multiplicative method also the
        failed factorisations).
    nfev, njev : int
        Number of evaluations of `fun` and of the Jacobian (``scipy.optimize.least_squares``'s
        convention: the evaluations of `fun` made by a finite-difference Jacobian count in
        `njev` only).
    status : int
        Reason for termination, a key of :data:`TERMINATION_MESSAGES`.
    message : str
    success : bool
        ``status > 0``: one of the convergence tests was satisfied.
    """


@dataclass
class _Options:
    """Validated options of one solve."""

    method: str
    ftol: float
    xtol: float
    gtol: float
    max_nfev: float
    max_iter: float
    x_scale: Array | None  # 1 / D for a fixed scaling; None for MINPACK's running maximum
    lb: Array | None
    ub: Array | None
    geodesic: bool
    callback: Callable[[OptimizeResult, Array], bool] | None
    mu: float = 1e-3
    mu_dec: float = 0.1
    mu_inc: float = 10.0
    mu_max: float = 1e10

    def __post_init__(self) -> None:
        if self.lb is not None:
            self.snap_lb, self.snap_ub = (
                np.where(np.isfinite(b), SNAP_TO_BOUND * np.maximum(1.0, np.abs(b)), -1.0)
                for b in (self.lb, self.ub))


@dataclass
class _Point:
    """An accepted point: x, raw residuals f, cost, the (loss-scaled) Jacobian J, the loss's
    row weights w (None for plain least squares), and the Gauss–Newton model there."""

    x: Array
    f: Array
    cost: float
    J: Any
    w: Array | None
    model: Any


def _norm(v: Array) -> float:
    """Euclidean norm of a small vector (cheaper than numpy.linalg.norm per call)."""
    return math.sqrt(float(v @ v))


def _point(res: Residuals, x: Array, f: Array, cost: float, normal: bool) -> _Point | None:
    """The accepted point at x (the Jacobian evaluated), or None when J is not finite."""
    lin = res.linearise(x, f)
    if lin is None:
        return None
    f_mod, J, w = lin
    return _Point(x, f, cost, J, w, make_model(f_mod, J, normal))


# ----------------------------------------------------------------------------- trust region


def _scaling(D: Array | None, col_norms: Array, x_scale: Array | None) -> Array:
    """MINPACK's D: the running maximum of J's column norms (1 for an always-zero column)."""
    if x_scale is not None:
        return 1.0 / x_scale
    if D is None:
        return np.where(col_norms > 0, col_norms, 1.0)
    return np.maximum(D, col_norms)


def _free_variables(p: _Point, opts: _Options) -> Array | None:
    """Mask of the variables not held at a bound by an outward gradient (None: all free)."""
    if opts.lb is None:
        return None
    g = p.model.grad
    held = ((p.x <= opts.lb) & (g > 0)) | ((p.x >= opts.ub) & (g < 0))
    return ~held if held.any() else None


def _gradient_cosine(p: _Point, free: Array | None) -> float:
    """MINPACK's scale-free gradient measure max_j |J_jᵀ r| / (‖J_j‖ ‖r‖) (0 when r = 0).

    ‖r‖ is √(2 cost): for a robust loss, the scaled residuals of outliers are inflated by up
    to ε^-½ and would make every gradient look small."""
    f_norm = math.sqrt(2.0 * p.cost)
    c, g = p.model.col_norms, p.model.grad
    if f_norm == 0:
        return 0.0
    if free is None and c.all():
        return float((np.abs(g) / c).max()) / f_norm
    use = c > 0 if free is None else (c > 0) & free
    return float(np.max(np.abs(g[use]) / c[use], initial=0.0)) / f_norm


def _feasible_step(x: Array, p: Array, model, opts: _Options) -> Array:
    """The step projected onto the box, or shortened to it if that predicts more."""
    if opts.lb is None:
        return p
    projected = np.clip(x + p, opts.lb, opts.ub) - x
    if np.array_equal(projected, p):
        return p
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(p > 0, (opts.ub - x) / p, np.where(p < 0, (opts.lb - x) / p, np.inf))
    shortened = min(1.0, float(room.min())) * p
    return projected if model.predicted(projected)[0] >= model.predicted(shortened)[0] \
        else shortened


def _step_in_box(p: _Point, D: Array, radius: float, mu: float, opts: _Options):
    """The trust-region step with the variables it would push out of the box held.

    A variable at a bound whose step points outward is held at the bound and the subproblem
    is solved again in the others (at most n times), so that the projected step keeps the
    model's decrease."""
    tr = p.model.step(radius, mu)
    free = np.ones(p.x.size, dtype=bool) if p.model.free is None else p.model.free.copy()
    at_lower, at_upper = p.x <= opts.lb, p.x >= opts.ub
    for _ in range(p.x.size):
        out = (at_lower & (tr.step < 0)) | (at_upper & (tr.step > 0))
        if not out.any():
            break
        free &= ~out
        if not free.any():
            return tr._replace(step=np.zeros_like(tr.step), scaled_norm=0.0)
        p.model.factor(D, free)
        tr = p.model.step(radius, mu)
    return tr


def _move(x: Array, d: Array, opts: _Options) -> Array:
    """x + d, clipped to the box, and put on a bound it lies within rounding distance of."""
    if opts.lb is None:
        return x + d
    y = np.clip(x + d, opts.lb, opts.ub)
    near_lb = y - opts.lb <= opts.snap_lb  # snap_lb = -1 for an infinite bound
    near_ub = opts.ub - y <= opts.snap_ub
    return np.where(near_lb, opts.lb, np.where(near_ub, opts.ub, y))


@dataclass
class _Trial:
    """One evaluated trial step."""

    d: Array
    mu: float
    norm: float
    predicted: float
    slope: float
    x: Array
    f: Array
    cost: float


def _try(res: Residuals, p: _Point, D: Array, radius: float, mu: float,
         opts: _Options) -> _Trial:
    """Solve the trust-region subproblem, make the step feasible, evaluate the trial."""
    tr = p.model.step(radius, mu) if opts.lb is None else _step_in_box(p, D, radius, mu, opts)
    d = _feasible_step(p.x, tr.step, p.model, opts)
    norm = tr.scaled_norm if d is tr.step else _norm(D * d)
    predicted, slope = p.model.predicted(d)
    x = _move(p.x, d, opts)
    f = res(x)
    return _Trial(d, tr.mu, norm, predicted, slope, x, f, res.cost(f))


def _geodesic(res: Residuals, p: _Point, t: _Trial, D: Array, opts: _Options) -> _Trial:
    """Retry a rejected step with its geodesic acceleration: x + v + a/2 (Transtrum 2012)."""
    if not math.isfinite(t.cost) or res.nfev >= opts.max_nfev:
        return t
    df = t.f - p.f if p.w is None else p.w * (t.f - p.f)
    a = p.model.correction(2.0 * (df - p.model.times(t.d)), t.mu)
    if not _norm(D * a) <= GEODESIC_RATIO * t.norm:
        return t
    x = _move(p.x, t.d + 0.5 * a, opts)
    f = res(x)
    cost = res.cost(f)
    return _Trial(t.d, t.mu, t.norm, t.predicted, t.slope, x, f, cost) if cost < t.cost else t


def _converged(actual: float, predicted: float, ratio: float, radius: float, xnorm: float,
               gnorm: float, opts: _Options) -> int | None:
    """MINPACK's ftol and xtol tests after a trial (then the same tests at machine precision)."""
    f_ok = abs(actual) <= opts.ftol and predicted <= opts.ftol and ratio <= 2
    x_ok = radius <= opts.xtol * xnorm
    if f_ok or x_ok:
        return 4 if f_ok and x_ok else (2 if f_ok else 3)
    if abs(actual) <= EPS and predicted <= EPS and ratio <= 2:
        return 2
    if radius <= EPS * xnorm:
        return 3
    return 1 if gnorm <= EPS else None


class _Counter:
    """Iteration state shared by the drivers: trial count and the callback."""

    def __init__(self, res: Residuals, opts: _Options):
        self.res, self.opts, self.nit = res, opts, 0

    def exhausted(self) -> bool:
        return self.res.nfev >= self.opts.max_nfev or self.nit >= self.opts.max_iter

    def stop_requested(self, p: _Point, mu: float) -> bool:
        """Call the callback after an accepted step; True when it asks to stop."""
        if self.opts.callback is None:
            return False
        info = OptimizeResult(x=p.x.copy(), cost=p.cost, fun=p.f, grad=p.model.grad, mu=mu,
                              nit=self.nit, nfev=self.res.nfev, njev=self.res.njev)
        return self.opts.callback(info, p.x.copy())


def _ratio(p: _Point, t: _Trial) -> float:
    """Actual over predicted reduction (0 for a step that predicts nothing)."""
    return (p.cost - t.cost) / t.predicted if t.predicted > 0 else 0.0


def _step(res: Residuals, p: _Point, D: Array, radius: float, mu: float, first: bool,
          opts: _Options) -> tuple[_Point | None, float, float, float, float, float]:
    """One trial: ``(new point or None, radius, mu, actual, predicted, ratio)``, the
    reductions relative to the cost at p."""
    t = _try(res, p, D, radius, mu, opts)
    if first:
        radius = min(radius, t.norm)
    ratio = _ratio(p, t)
    if ratio < ACCEPT_RATIO and opts.geodesic:
        t = _geodesic(res, p, t, D, opts)
        ratio = _ratio(p, t)
    new = _point(res, t.x, t.f, t.cost, False) if ratio >= ACCEPT_RATIO else None
    if new is None and ratio >= ACCEPT_RATIO:  # a non-finite Jacobian rejects the step
        ratio = -math.inf
    actual = (p.cost - t.cost) / p.cost
    radius, mu = update_radius(radius, t.mu, ratio, t.norm, actual, t.slope / p.cost)
    return new, radius, mu, actual, t.predicted / p.cost, ratio


def _trust_region(res: Residuals, p: _Point, opts: _Options) -> tuple[_Point, int, float, int]:
    """Moré's trust-region Levenberg–Marquardt from the accepted point p:
    ``(last accepted point, status, mu, nit)``."""
    count, D, radius, mu, first = _Counter(res, opts), None, 0.0, 0.0, True
    while True:
        D = _scaling(D, p.model.col_norms, opts.x_scale)
        if first:
            radius = INITIAL_RADIUS_FACTOR * (_norm(D * p.x) or 1.0)
        free = _free_variables(p, opts)
        gnorm = _gradient_cosine(p, free)
        if gnorm <= opts.gtol:
            return p, 1, mu, count.nit
        p.model.factor(D, free)
        while True:
            if count.exhausted():
                return p, 0, mu, count.nit
            count.nit += 1
            new, radius, mu, actual, predicted, ratio = _step(res, p, D, radius, mu, first, opts)
            first = False
            p = p if new is None else new
            xnorm = _norm(D * p.x)
            status = _converged(actual, predicted, ratio, radius, xnorm, gnorm, opts)
            if new is not None and count.stop_requested(p, mu) and status is None:
                status = -2
            if status is not None:
                return p, status, mu, count.nit
            if new is not None:
                break


# ----------------------------------------------------------------------------- multiplicative


def _damping_diagonal(p: _Point, previous: Array | None, opts: _Options) -> Array:
    """D of (JᵀJ + μD)δ = −g: Marquardt's diagonal, or 1/x_scale² for a fixed scaling."""
    if opts.x_scale is not None:
        return 1.0 / opts.x_scale**2
    return marquardt_diagonal(np.diag(p.model.A), previous)


def _step_test(step: Array, p: _Point, mu: float, D: Array, cost_new: float,
               opts: _Options) -> int | None:
    """The ftol and xtol tests of the multiplicative method on one trial step.

    ftol: both the actual and the predicted relative reductions of the cost are ≤ ftol (and
    the actual is at most twice the predicted); xtol: ‖D^½ step‖ ≤ xtol ‖D^½ x‖.
    """
    step_D_step = float(step @ (D * step))
    predicted = (0.5 * float(step @ (p.model.A @ step)) + mu * step_D_step) / p.cost
    actual = (p.cost - cost_new) / p.cost  # -inf for a non-finite trial
    f_ok = abs(actual) <= opts.ftol and predicted <= opts.ftol and actual <= 2 * predicted
    x_ok = step_D_step <= opts.xtol**2 * float(p.x @ (D * p.x))
    return (None, 3, 2, 4)[2 * f_ok + x_ok]


def _multiplicative(res: Residuals, p: _Point, opts: _Options) -> tuple[_Point, int, float, int]:
    """Marquardt's multiplicative damping: raise μ until a step lowers the cost."""
    count, mu = _Counter(res, opts), opts.mu
    D = _damping_diagonal(p, None, opts)
    status = 1 if _gradient_cosine(p, None) <= opts.gtol else None
    while status is None:
        if count.exhausted():
            return p, 0, mu, count.nit
        count.nit += 1
        step, ok = solve_damped(p.model.A, p.model.grad, mu, D)
        new = None
        if ok:
            f = res(p.x + step)
            cost = res.cost(f)
            status = _step_test(step, p, mu, D, cost, opts)
            new = _point(res, p.x + step, f, cost, True) if cost < p.cost else None
        mu = update_mu(mu, new is not None, opts.mu_dec, opts.mu_inc)
        if new is not None:
            p, D = new, _damping_diagonal(new, D, opts)
            if status is None and _gradient_cosine(p, None) <= opts.gtol:
                status = 1
            if count.stop_requested(p, mu) and status is None:
                status = -2
        elif status is None and mu > opts.mu_max:
            status = -1
    return p, status, mu, count.nit


# ----------------------------------------------------------------------------- results


def inverse_gauss_newton(jac: Any) -> tuple[np.ndarray, int]:
    r"""The (pseudo-)inverse of :math:`J^\top J` and the rank of J.

    Computed from the columns of J scaled to unit norm (so that the result does not depend on
    the units of the parameters): the thin SVD of a dense J, the eigendecomposition of
    :math:`J^\top J` for a sparse or ``LinearOperator`` J.  Singular values below
    ``eps max(m, n)`` times the largest (eigenvalues below ``eps n`` times the largest) count as
    zero, as in ``scipy.optimize.curve_fit``.

    Parameters
    ----------
    jac : ndarray, sparse matrix or LinearOperator, shape (m, n)
        The Jacobian J (``LMResult.jac``).

    Returns
    -------
    inverse : ndarray, shape (n, n)
        :math:`(J^\top J)^{-1}`, or its Moore–Penrose pseudo-inverse when J has rank < n.
    rank : int
        The numerical rank of J.
    """
    if isinstance(jac, np.ndarray):
        c = np.sqrt(np.einsum("ij,ij->j", jac, jac))
        c = np.where(c > 0, c, 1.0)
        _, s, Vt = np.linalg.svd(jac / c, full_matrices=False)
        keep = s > EPS * max(jac.shape) * s.max(initial=0.0)
        inv = (Vt[keep].T / s[keep] ** 2) @ Vt[keep]
    else:
        A = make_model(np.zeros(jac.shape[0]), jac, True).A
        c = np.sqrt(np.maximum(np.diag(A), 0.0))
        c = np.where(c > 0, c, 1.0)
        w, V = np.linalg.eigh(A / np.outer(c, c))
        keep = w > EPS * A.shape[0] * max(w.max(initial=0.0), 0.0)
        inv = (V[:, keep] / w[keep]) @ V[:, keep].T
    return inv / np.outer(c, c), int(keep.sum())


def _covariance(p: _Point) -> Array:
    """s²(JᵀJ)⁻¹ with s² = 2 cost / (m − n); inf when m ≤ n."""
    m, n = p.f.size, p.x.size
    if m <= n:
        return np.full((n, n), np.inf)
    inv, rank = inverse_gauss_newton(p.J)
    if rank < n:
        warnings.warn(f"JᵀJ is singular at the solution (rank {rank} < n = {n}): the "
                      "covariance is s² times its pseudo-inverse.", OptimizeWarning,
                      stacklevel=4)  # fmt: skip
    return inv * (2.0 * p.cost / (m - n))


def _active_mask(x: Array, opts: _Options) -> Array:
    """−1 / +1 at a lower / upper bound (within 1e-10 relative), 0 elsewhere."""
    mask = np.zeros(x.size, dtype=int)
    if opts.lb is not None:
        finite_lb, finite_ub = np.isfinite(opts.lb), np.isfinite(opts.ub)
        lb, ub = np.where(finite_lb, opts.lb, 0.0), np.where(finite_ub, opts.ub, 0.0)
        mask[finite_lb & (x - lb <= 1e-10 * np.maximum(1.0, np.abs(lb)))] = -1
        mask[finite_ub & (ub - x <= 1e-10 * np.maximum(1.0, np.abs(ub)))] = 1
    return mask


def _result(p: _Point, status: int, mu: float, nit: int, res: Residuals,
            opts: _Options) -> LMResult:
    free = _free_variables(p, opts)
    projected = p.model.grad if free is None else np.where(free, p.model.grad, 0.0)
    cov = _covariance(p)
    return LMResult(
        x=p.x, cost=p.cost, fun=p.f, jac=p.J, grad=p.model.grad,
        optimality=float(np.abs(projected).max(initial=0.0)),
        active_mask=_active_mask(p.x, opts), covariance=cov,
        stderr=np.sqrt(np.diag(cov)), mu=mu, nit=nit, nfev=res.nfev, njev=res.njev,
        status=status, message=TERMINATION_MESSAGES[status], success=status > 0,
    )  # fmt: skip


# ----------------------------------------------------------------------------- validation


def _check_x0(x0: object) -> Array:
    if np.iscomplexobj(x0):
        raise ValueError("`x0` must be real, got a complex value.")
    try:
        x = np.atleast_1d(np.array(x0, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"`x0` must be a real number or a 1-D array, got {x0!r}.") from None
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"`x0` must be a non-empty 1-D array of finite values, got {x0!r}.")
    return x


def _check_bounds(bounds: object, x: Array) -> tuple[Array | None, Array | None]:
    """(lb, ub) broadcast to x's shape, or (None, None) when unbounded."""
    if isinstance(bounds, Bounds):
        bounds = (bounds.lb, bounds.ub)
    if not isinstance(bounds, Sequence) or len(bounds) != 2:
        raise ValueError("`bounds` must be a pair (lb, ub) or a scipy.optimize.Bounds.")
    lb, ub = (np.asarray(b, dtype=float) for b in bounds)
    lb, ub = (np.full(x.shape, b) if b.ndim == 0 else b for b in (lb, ub))
    if lb.shape != x.shape or ub.shape != x.shape:
        raise ValueError(f"`bounds` must be scalars or arrays of the shape of `x0` {x.shape}, "
                         f"got shapes {lb.shape} and {ub.shape}.")
    if np.any(lb >= ub):
        raise ValueError("`bounds`: each lower bound must be strictly less than its upper bound.")
    if np.any(x < lb) or np.any(x > ub):
        raise ValueError("`x0` is infeasible: it lies outside `bounds`.")
    if np.all(np.isneginf(lb)) and np.all(np.isposinf(ub)):
        return None, None
    return lb, ub


def _is_jac(x_scale: object) -> bool:
    return isinstance(x_scale, str) and x_scale == "jac"


def _check_x_scale(x_scale: object, damping: str | None, x: Array) -> Array | None:
    """1/D as an array for a fixed scaling, None for MINPACK's Jacobian scaling."""
    if damping is not None:
        implied = "jac" if damping == "marquardt" else 1.0
        same = _is_jac(x_scale) if implied == "jac" else (
            not isinstance(x_scale, str) and bool(np.all(np.asarray(x_scale) == 1.0)))
        if x_scale is not None and not same:
            raise ValueError(f"`damping={damping!r}` means x_scale={implied!r}; "
                             f"got `x_scale` = {x_scale!r} as well.")
        x_scale = implied
    if x_scale is None or _is_jac(x_scale):
        return None
    if isinstance(x_scale, str) or np.iscomplexobj(x_scale):
        raise ValueError(f"`x_scale` must be 'jac' or positive numbers, got {x_scale!r}.")
    scale = np.asarray(x_scale, dtype=float)
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)) or scale.ndim > 1:
        raise ValueError(f"`x_scale` must be 'jac' or positive numbers, got {x_scale!r}.")
    if scale.ndim == 1 and scale.shape != x.shape:
        raise ValueError(f"`x_scale` must have the shape of `x0` {x.shape}, got {scale.shape}.")
    return np.broadcast_to(scale, x.shape).copy()


def _check_tolerances(ftol: object, xtol: object, gtol: object) -> tuple[float, float, float]:
    tols = {"ftol": ftol, "xtol": xtol, "gtol": gtol}
    for name, tol in tols.items():
        tols[name] = 0.0 if tol is None else tol
        if isinstance(tols[name], bool) or not isinstance(tols[name], (int, float, np.number)) \
                or not tols[name] >= 0:
            raise ValueError(f"`{name}` must be a number >= 0 or None, got {tol!r}.")
    if all(t < EPS for t in tols.values()):
        raise ValueError(f"At least one of `ftol`, `xtol`, `gtol` must be >= machine epsilon "
                         f"({EPS:.1e}).")
    return float(tols["ftol"]), float(tols["xtol"]), float(tols["gtol"])


def _check_loss(loss: object, f_scale: object) -> tuple[Callable | None, float]:
    if not callable(loss) and loss not in ROBUST_LOSSES:
        known = ", ".join(repr(k) for k in ROBUST_LOSSES)
        raise ValueError(f"`loss` must be one of {known} or a callable, got {loss!r}.")
    return (loss if callable(loss) else ROBUST_LOSSES[loss]), check_positive_float(f_scale,
                                                                                "f_scale")


def _check_limit(value: object, name: str) -> float:
    """A positive integer limit, or inf for None."""
    limit = check_positive_int(value, name, allow_none=True)
    return math.inf if limit is None else limit


def _check_jac(jac: object) -> None:
    if not callable(jac) and not (isinstance(jac, str) and jac in JAC_METHODS):
        raise ValueError(f"`jac` must be '2-point', '3-point', 'cs' or a callable, got {jac!r}.")


def _check_diff_step(diff_step: object, x: Array) -> Array | None:
    if diff_step is None:
        return None
    step = np.broadcast_to(np.asarray(diff_step, dtype=float), x.shape)
    if not np.all(np.isfinite(step)) or np.any(step == 0):
        raise ValueError(f"`diff_step` must be nonzero finite numbers, got {diff_step!r}.")
    return step.copy()


def _check_method(method: object, multiplicative: dict[str, object]) -> str:
    """The method; None means "multiplicative" when one of its options is given."""
    given = [name for name, value in multiplicative.items() if value is not None]
    if method is None:
        return "multiplicative" if given else "trust-region"
    if method not in METHODS:
        raise ValueError(f"`method` must be 'trust-region' or 'multiplicative', got {method!r}.")
    if method == "trust-region" and given:
        raise ValueError(f"`{given[0]}` applies to method='multiplicative' only.")
    return method


def _check_multiplicative(mu, mu_dec, mu_inc, mu_max) -> dict[str, float]:
    """Marquardt's μ options (defaults 1e-3, 0.1, 10, 1e10), checked."""
    mu = 1e-3 if mu is None else mu
    mu_dec = 0.1 if mu_dec is None else mu_dec
    mu_inc = 10.0 if mu_inc is None else mu_inc
    mu_max = 1e10 if mu_max is None else mu_max
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"`mu` must be a finite number > 0, got {mu!r}.")
    if not 0 < mu_dec < 1:
        raise ValueError(f"`mu_dec` must be in (0, 1), got {mu_dec!r}.")
    if not (np.isfinite(mu_inc) and mu_inc > 1):
        raise ValueError(f"`mu_inc` must be a finite number > 1, got {mu_inc!r}.")
    if not mu_max > mu:
        raise ValueError(f"`mu_max` must be > `mu` = {mu!r}, got {mu_max!r}.")
    return {"mu": float(mu), "mu_dec": float(mu_dec), "mu_inc": float(mu_inc),
            "mu_max": float(mu_max)}


def _wrap_callback(callback: object) -> Callable[[OptimizeResult, Array], bool] | None:
    """scipy's convention: ``callback(intermediate_result)`` when the one parameter has that
    name, else ``callback(x)``; True or StopIteration asks to stop."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"`callback` must be callable or None, got {type(callback).__name__}.")
    try:
        names = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        names = []
    wants_result = names == ["intermediate_result"]

    def call(info: OptimizeResult, x: Array) -> bool:
        try:
            return bool(callback(info) if wants_result else callback(x))
        except StopIteration:
            return True

    return call


def _check_start(res: Residuals, x: Array, normal: bool) -> _Point:
    """The first evaluations of `fun` and `jac` at x0, checked."""
    f = res(x.copy())
    if f.size == 0:
        raise ValueError("`fun` must return at least one residual.")
    if not np.all(np.isfinite(f)):
        raise ValueError("`fun` returned non-finite residuals at `x0`.")
    if res.loss is not None:
        rho = np.asarray(res.loss(f**2))
        if rho.shape != (3, f.size):
            raise ValueError(f"`loss` must return an array of shape (3, m) = (3, {f.size}), "
                             f"got shape {rho.shape}.")
    p = _point(res, x, f, res.cost(f), normal)
    if p is None:
        raise ValueError("`jac` returned non-finite values at `x0`.")
    return p


# ----------------------------------------------------------------------------- public


def levenberg_marquardt(
    fun: Callable[..., np.ndarray],
    x0: float | Sequence[float] | np.ndarray,
    jac: Callable[..., Any] | str = "2-point",
    *,
    bounds: tuple[Any, Any] | Bounds = (-np.inf, np.inf),
    method: str | None = None,
    ftol: float | None = 1e-8,
    xtol: float | None = 1e-8,
    gtol: float | None = 1e-8,
    x_scale: str | float | Sequence[float] | np.ndarray | None = None,
    loss: str | Callable[[np.ndarray], np.ndarray] = "linear",
    f_scale: float = 1.0,
    diff_step: float | Sequence[float] | None = None,
    max_nfev: int | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
    geodesic: bool = True,
    damping: str | None = None,
    mu: float | None = None,
    mu_dec: float | None = None,
    mu_inc: float | None = None,
    mu_max: float | None = None,
    max_iter: int | None = None,
) -> LMResult:
    r"""Minimise :math:`\tfrac12\lVert r(x)\rVert^2` (or a robust cost) by Levenberg–Marquardt.

    The interface of ``scipy.optimize.least_squares``; the algorithm is Moré's trust-region
    Levenberg–Marquardt (MINPACK's ``lmder``) with a geodesic correction of rejected steps,
    bounds and robust losses (see the module docstring).

    Parameters
    ----------
    fun : callable
        ``fun(x, *args, **kwargs) -> r``, real residuals of shape (m,) (a scalar counts as
        m = 1) for `x` of shape (n,).
    x0 : float or array_like, shape (n,)
        Starting point (finite, inside `bounds`).
    jac : callable or {"2-point", "3-point", "cs"}, default "2-point"
        ``jac(x, *args, **kwargs) -> J`` (m, n): an array, a ``scipy.sparse`` matrix or a
        ``LinearOperator`` (the last two through the n × n normal equations); or a
        finite-difference scheme (forward, central, complex step).
    bounds : (lb, ub) or scipy.optimize.Bounds, default (-inf, inf)
        Box constraints, scalars or arrays of shape (n,); every iterate is feasible.
    method : {"trust-region", "multiplicative"}, optional
        Default "trust-region"; "multiplicative" (Marquardt's μ ← μ·``mu_inc`` / μ·``mu_dec``)
        is the default when one of `mu`, `mu_dec`, `mu_inc`, `mu_max` is given.
    ftol, xtol, gtol : float or None, default 1e-8
        Tolerances with ``scipy.optimize.least_squares``'s (MINPACK's) meaning: stop when the
        actual and predicted relative reductions of the cost are ≤ `ftol`; when the radius is
        ≤ `xtol` ‖D x‖; when max_j |J_jᵀ r| / (‖J_j‖ ‖r‖) ≤ `gtol`.  None or 0 disables a
        test (at least one must be ≥ machine epsilon); the tests are also applied at machine
        precision, where no further progress is possible.
    x_scale : "jac" or array_like, default "jac"
        Characteristic scale of each variable: D = 1 / `x_scale`; "jac" is MINPACK's running
        maximum of the column norms of J (scale invariant).
    loss : {"linear", "soft_l1", "huber", "cauchy", "arctan"} or callable, default "linear"
        Robust loss ρ(z) of z = (r / `f_scale`)²; a callable returns ρ, ρ', ρ'' as (3, m).
    f_scale : float, default 1
        Soft margin between inlier and outlier residuals.
    diff_step : float or array_like, optional
        Relative finite-difference step (default √ε, or ε^⅓ for "3-point").
    max_nfev : int, optional
        Trial steps stop once `fun` has been evaluated this often (not counting the evaluations
        of a finite-difference Jacobian); default 100 n, no limit when only `max_iter` is
        given.
    args, kwargs
        Extra arguments of `fun` and `jac`.
    callback : callable, optional
        Called after each accepted step as ``callback(intermediate_result)`` (an
        ``OptimizeResult`` with ``x, cost, fun, grad, mu, nit, nfev, njev``) when its one
        parameter is named ``intermediate_result``, else as ``callback(x)``.  Returning True or
        raising StopIteration stops with status -2.
    geodesic : bool, default True
        Retry a rejected step with its geodesic acceleration (trust-region method).
    damping : {"marquardt", "levenberg"}, optional
        Older spelling of the scaling: ``x_scale="jac"`` / ``x_scale=1``; for the
        multiplicative method, Marquardt's diagonal or the identity (its default "marquardt").
    mu, mu_dec, mu_inc, mu_max : float, optional
        Multiplicative method: initial damping (1e-3), factors after an accepted (0.1) and a
        rejected (10) step, and the damping at which it gives up with status -1 (1e10).
    max_iter : int, optional
        Maximum number of trial steps.

    Returns
    -------
    LMResult
        ``x, cost, fun, jac, grad, optimality, active_mask, covariance, stderr, mu, nit, nfev,
        njev, status, message, success`` (``scipy.optimize.least_squares``'s vocabulary plus
        `covariance` and `stderr`).

    Raises
    ------
    ValueError
        For an invalid option; an `x0` that is not a finite real scalar or 1-D array, or that
        lies outside `bounds`; `fun` or `jac` returning a wrong shape, complex or non-finite
        values at `x0`; or multiplicative options with ``method="trust-region"``.
    TypeError
        For a `fun` or `callback` that is not callable.

    Warns
    -----
    scipy.optimize.OptimizeWarning
        When JᵀJ is singular at the solution (the covariance is then a pseudo-inverse).

    Notes
    -----
    Defaults (the first radius ‖D x0‖, the geodesic correction with ‖Da‖ ≤ ‖Dv‖, Jacobian
    scaling) were chosen on the 27 NIST StRD problems from both starts, the 20
    Moré–Garbow–Hillstrom problems from x0, 10 x0 and 100 x0, and the NIST problems with
    randomly rescaled variables; ``python -m benchmarks least-squares`` reports the counts.

    References
    ----------
    Moré (1977); Moré, Garbow & Hillstrom (1980); Transtrum & Sethna (2012); Marquardt (1963);
    Bishop & Bishop (2024), §8; PRML §5.4.2, eq. 5.84.

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
    opts, res, x = _prepare(locals())
    p = _check_start(res, x, opts.method == "multiplicative")
    driver = _trust_region if opts.method == "trust-region" else _multiplicative
    with np.errstate(all="ignore"):  # trial points may overflow; finiteness is checked
        p, status, mu, nit = driver(res, p, opts)
    return _result(p, status, mu, nit, res, opts)


def _prepare(a: dict[str, Any]) -> tuple[_Options, Residuals, Array]:
    """Validate the arguments of :func:`levenberg_marquardt` (its ``locals()``)."""
    if not callable(a["fun"]):
        raise TypeError(f"`fun` must be callable, got {type(a['fun']).__name__}.")
    _check_jac(a["jac"])
    x = _check_x0(a["x0"])
    lb, ub = _check_bounds(a["bounds"], x)
    names = ("mu", "mu_dec", "mu_inc", "mu_max")
    method = _check_method(a["method"], {k: a[k] for k in names})
    damping = a["damping"]
    if damping is not None and damping not in DAMPINGS:
        raise ValueError(f"`damping` must be 'marquardt' or 'levenberg', got {damping!r}.")
    mult = _check_multiplicative(*(a[k] for k in names))
    if method == "multiplicative" and lb is not None:
        raise ValueError("`bounds` need method='trust-region'.")
    loss, f_scale = _check_loss(a["loss"], a["f_scale"])
    ftol, xtol, gtol = _check_tolerances(a["ftol"], a["xtol"], a["gtol"])
    max_iter = _check_limit(a["max_iter"], "max_iter")
    max_nfev = _check_limit(a["max_nfev"], "max_nfev")
    if a["max_nfev"] is None and a["max_iter"] is None:
        max_nfev = 100 * x.size
    kwargs = {} if a["kwargs"] is None else dict(a["kwargs"])
    res = Residuals(a["fun"], a["jac"], tuple(a["args"]), kwargs, loss, f_scale,
                    _check_diff_step(a["diff_step"], x),
                    np.full(x.shape, -np.inf) if lb is None else lb,
                    np.full(x.shape, np.inf) if ub is None else ub)  # fmt: skip
    opts = _Options(method, ftol, xtol, gtol, max_nfev, max_iter,
                    _check_x_scale(a["x_scale"], damping, x), lb, ub,
                    bool(a["geodesic"]), _wrap_callback(a["callback"]), **mult)  # fmt: skip
    return opts, res, x
