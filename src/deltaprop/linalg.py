r"""Damped normal equations and trust-region steps: the linear algebra shared by every
Levenberg–Marquardt in deltaprop.

The general least-squares solver (:mod:`deltaprop.least_squares`), network training
(:mod:`deltaprop.lm_training`) and the dual Gauss–Newton step of :mod:`deltaprop.curvature` all
solve

.. math::

    (J^\top J + \mu\, D^2)\,\delta = -g, \qquad g = J^\top r,

for a damping :math:`\mu \ge 0` and a positive scaling diagonal :math:`D`.  Two ways of choosing
:math:`\mu` live here:

* *multiplicative* (Marquardt 1963): :math:`\mu` is multiplied by a constant after each
  rejected or accepted step (:func:`solve_damped`, :func:`update_mu`,
  :func:`damped_step_search`; :func:`marquardt_diagonal` is Marquardt's :math:`D^2`);
* *trust region* (Moré 1977, MINPACK's ``lmder``): the step is the minimiser of the
  Gauss–Newton model :math:`m(\delta) = \tfrac12\lVert r + J\delta\rVert^2` subject to
  :math:`\lVert D\delta\rVert \le \Delta`; :math:`\mu` is the Lagrange multiplier of that
  constraint, found for the radius :math:`\Delta` by Moré's safeguarded Newton iteration on
  :math:`\varphi(\mu) = \lVert D\delta(\mu)\rVert - \Delta`, and :math:`\Delta` follows the
  ratio of the actual to the predicted reduction of the cost (:func:`update_radius`).
  :func:`trust_region_step` works from the normal equations (a symmetric
  :math:`A = J^\top J`, only its upper triangle read, one Cholesky factorisation per trial
  :math:`\mu`: what network training has); :func:`svd_trust_region_step` works from a thin SVD
  of :math:`J D^{-1}` (no squared condition number, every :math:`\mu` for O(n) work: what the
  general solver uses for a dense J).  :func:`model_reduction` is the predicted reduction
  for a step.

A network trainer that has only :math:`A`, :math:`g` and a trial loss uses them as::

    tr = trust_region_step(A, g, scale, radius, mu, work=buffer)
    actual = loss - trial_loss(tr.step)
    predicted = model_reduction(A, g, tr.step)
    radius, mu = update_radius(radius, tr.mu, actual / predicted, tr.scaled_norm,
                               actual / loss, float(g @ tr.step) / loss)

(accept the step when ``actual / predicted >= 1e-4``).  This module depends on NumPy and SciPy
only, so the core and curvature layers may import it.

References
----------
Levenberg 1944; Marquardt 1963; Moré 1977, "The Levenberg–Marquardt algorithm: implementation
and theory", Lecture Notes in Mathematics 630, 105–116 (§3–5: the scaled trust region, the
iteration for μ, the radius update); Moré, Garbow & Hillstrom 1980, "User guide for MINPACK-1",
ANL-80-74 (``lmder``, ``lmpar``); Bishop & Bishop 2024 §8 (the outer-product approximation and
the LM step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.linalg.blas import get_blas_funcs
from scipy.linalg.lapack import get_lapack_funcs

__all__ = [
    "DIAGONAL_FLOOR",
    "MU_MIN",
    "DampedSearch",
    "TrustRegionStep",
    "damped_step_search",
    "marquardt_diagonal",
    "model_reduction",
    "solve_damped",
    "svd_trust_region_step",
    "trust_region_step",
    "update_mu",
    "update_radius",
]

#: Floor of the Marquardt diagonal, relative to its largest entry.
DIAGONAL_FLOOR = 1e-10
#: Smallest damping that :func:`update_mu` returns.
MU_MIN = 1e-300

Array = np.ndarray


def solve_damped(
    JTJ: np.ndarray,
    JTr: np.ndarray,
    mu: float,
    D: np.ndarray | float,
    *,
    work: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    r"""Solve the damped normal equations :math:`(J^\top J + \mu\,\mathrm{diag}(D))\,\delta = -g`.

    Parameters
    ----------
    JTJ : ndarray, shape (n, n)
        Symmetric positive semi-definite :math:`J^\top J` (float64 or float32); not modified.
        Only its upper triangle is read. It may have been accumulated over chunks of rows.
    JTr : ndarray, shape (n,)
        Gradient :math:`g = J^\top r` of the cost :math:`\tfrac12\lVert r\rVert^2`.
    mu : float
        Damping parameter, >= 0 (0 gives the Gauss–Newton step, if it exists).
    D : ndarray, shape (n,), or float
        Damping diagonal: ones (or the scalar 1) for Levenberg, :func:`marquardt_diagonal`
        for Marquardt.
    work : ndarray, shape (n, n), optional
        A Fortran-ordered buffer of the dtype of the result, overwritten with the Cholesky
        factor. Passing the same buffer to repeated solves (a rejected step re-solves with a
        larger `mu`) saves an allocation and a copy per call; `JTJ` Fortran-ordered too saves
        a transposing copy.

    Returns
    -------
    step : ndarray, shape (n,)
        The step :math:`\delta`, in the dtype of ``JTJ`` and ``JTr``; zeros when not `ok`.
    ok : bool
        False when the Cholesky factorisation failed (the damped matrix is not numerically
        positive definite) or the step is not finite; the caller should then raise `mu`.

    References
    ----------
    Marquardt (1963); Moré (1977).
    """
    dtype = np.result_type(JTJ, JTr)
    if work is None:
        A = np.array(JTJ, dtype=dtype, order="F")
    elif not work.flags.f_contiguous:
        raise ValueError("`work` must be a Fortran-ordered (n, n) array.")
    else:
        A = work
        np.copyto(A, JTJ)
    A.reshape(-1, order="F")[:: A.shape[0] + 1] += mu * np.asarray(D, dtype=dtype)
    potrf, potrs = get_lapack_funcs(("potrf", "potrs"), (A,))
    factor, info = potrf(A, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        x, info = potrs(factor, np.asarray(JTr, dtype=dtype), lower=0)
    if info != 0 or not np.all(np.isfinite(x)):
        return np.zeros(A.shape[0], dtype=dtype), False
    return -x, True


def marquardt_diagonal(diag_JTJ: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    r"""Marquardt's scale-invariant damping diagonal, kept from collapsing.

    .. math::

        D_j = \max\bigl(d_j,\; \epsilon \max_k d_k\bigr),\quad
        d_j = \max\bigl((J^\top J)_{jj},\; D^{\text{previous}}_j\bigr),
        \quad \epsilon = \texttt{DIAGONAL\_FLOOR} = 10^{-10}.

    The running maximum is MINPACK's choice (Moré 1977; in ``lmder`` with ``mode=1``,
    ``diag`` holds the largest column norms of :math:`J` seen so far), so that a column
    of :math:`J` that becomes small (a saturated unit) keeps the damping it had. The
    relative floor keeps :math:`D` positive for a column that was always zero. When
    every entry is zero, :math:`D = 1` (Levenberg).

    Parameters
    ----------
    diag_JTJ : ndarray, shape (n,)
        Diagonal of :math:`J^\top J`, i.e. the squared column norms of :math:`J`.
    previous : ndarray, shape (n,), optional
        The diagonal returned at the previous accepted point.

    Returns
    -------
    D : ndarray, shape (n,)
        Positive damping diagonal, in the float dtype of the inputs (float32 or float64).

    References
    ----------
    Marquardt (1963); Moré (1977), the scaling matrix :math:`D_k`.
    """
    d = np.abs(np.asarray(diag_JTJ))
    if previous is not None:
        d = np.maximum(d, previous)
    top = d.max(initial=0.0)
    if not np.isfinite(top) or top == 0:
        return np.ones_like(d)
    return np.maximum(d, DIAGONAL_FLOOR * top)


def update_mu(mu: float, accepted: bool, mu_dec: float = 0.1, mu_inc: float = 10.0) -> float:
    """Marquardt's multiplicative update of the damping parameter.

    Parameters
    ----------
    mu : float
        Current damping, > 0.
    accepted : bool
        Whether the step lowered the cost.
    mu_dec, mu_inc : float
        Factors in (0, 1) and > 1.

    Returns
    -------
    float
        ``max(mu * mu_dec, MU_MIN)`` after an accepted step, ``mu * mu_inc`` after a rejected
        one. The floor ``MU_MIN = 1e-300`` keeps `mu` positive, so that a later rejection can
        raise it again.

    References
    ----------
    Marquardt (1963), whose factor ν = 10 gives the defaults.
    """
    return max(mu * mu_dec, MU_MIN) if accepted else mu * mu_inc


class DampedSearch(NamedTuple):
    """Outcome of :func:`damped_step_search`.

    Attributes
    ----------
    step : ndarray (n,) or None
        The accepted step, None when every μ up to ``mu_max`` was rejected.
    value : float
        The cost at the accepted point (the starting cost when none was accepted).
    mu : float
        The damping the accepted step was solved with (the first μ above ``mu_max`` when none).
    next_mu : float
        The damping to start the next search from.
    n_trials : int
        Number of trial costs evaluated.
    """

    step: Array | None
    value: float
    mu: float
    next_mu: float
    n_trials: int


def damped_step_search(
    solve: Callable[[float], Array | None],
    cost: Callable[[Array], float],
    value0: float,
    mu: float,
    mu_dec: float = 0.1,
    mu_inc: float = 10.0,
    mu_max: float = 1e10,
) -> DampedSearch:
    """Raise μ until a damped step strictly lowers the cost (Marquardt 1963).

    Parameters
    ----------
    solve : callable
        ``solve(mu) -> step`` (n,), or None when the damped system could not be solved.
    cost : callable
        ``cost(step) -> float``: the cost at the trial point; non-finite counts as a rejection.
    value0 : float
        The cost at the current point.
    mu : float
        Damping of the first trial (> 0).
    mu_dec, mu_inc, mu_max : float
        :func:`update_mu`'s factors; the search gives up once μ exceeds ``mu_max``.

    Returns
    -------
    DampedSearch
        The accepted step and its cost, the μ it used and the μ for the next search.

    Notes
    -----
    Each rejection (a failed solve, a non-finite or a higher cost) multiplies μ by ``mu_inc``
    and solves again with the same linearisation; the first acceptance multiplies it by
    ``mu_dec``.  Serves network training (one search per epoch) and the multiplicative mode of
    the general solver.
    """
    n_trials = 0
    while mu <= mu_max:
        step = solve(mu)
        if step is not None:
            value = cost(step)
            n_trials += 1
            if value < value0:  # False for NaN
                return DampedSearch(step, value, mu, update_mu(mu, True, mu_dec, mu_inc),
                                    n_trials)
        mu = update_mu(mu, False, mu_dec, mu_inc)
    return DampedSearch(None, value0, mu, mu, n_trials)


# ----------------------------------------------------------------------------- trust region

#: Relative accuracy of the radius that Moré's iteration accepts: |‖Dδ‖ − Δ| ≤ 0.1 Δ.
RADIUS_RTOL = 0.1
#: Most trial values of μ per trust-region step (MINPACK's ``lmpar``).
MAX_MU_TRIALS = 10
_TINY = np.finfo(np.float64).tiny
_EPS64 = np.finfo(np.float64).eps


class TrustRegionStep(NamedTuple):
    """Outcome of :func:`trust_region_step` and :func:`svd_trust_region_step`.

    Attributes
    ----------
    step : ndarray, shape (n,)
        δ with :math:`(J^\\top J + \\mu D^2)\\delta = -g`.
    mu : float
        The damping μ ≥ 0 (0: the Gauss–Newton step, which lies inside the region).
    scaled_norm : float
        :math:`\\lVert D\\delta\\rVert`, within 10 % of the radius when ``mu > 0``.
    n_trials : int
        Values of μ tried (Cholesky factorisations for :func:`trust_region_step`).
    """

    step: Array
    mu: float
    scaled_norm: float
    n_trials: int


def _find_mu(norm_at, radius: float, mu: float, lower: float, upper: float) -> tuple[float, int]:
    """Moré's safeguarded Newton iteration for ‖Dδ(μ)‖ = Δ (MINPACK ``lmpar``).

    ``norm_at(mu) -> (‖Dδ‖, d‖Dδ‖/dμ)``, or None where δ(μ) cannot be computed (μ too small
    for a numerically positive definite system).  Newton's method is applied to
    1/‖Dδ(μ)‖ − 1/Δ, which is nearly linear in μ (Moré 1977, §5); ``[lower, upper]`` brackets
    the root and shrinks as the iteration goes.  Returns the last μ evaluated and the number
    of trials.
    """
    previous = -math.inf
    for trial in range(1, MAX_MU_TRIALS + 1):
        if mu <= 0:
            mu = max(_TINY, 0.001 * upper)
        got = norm_at(mu)
        if got is None:
            lower, mu = mu, 10.0 * mu
            continue
        norm, slope = got
        phi = norm - radius
        stalled = lower == 0 and previous < 0 and phi <= previous  # MINPACK's rank-deficient exit
        if abs(phi) <= RADIUS_RTOL * radius or stalled or trial == MAX_MU_TRIALS or slope >= 0:
            return mu, trial
        if phi > 0:
            lower = max(lower, mu)
        else:
            upper = min(upper, mu)
        previous = phi
        mu = max(lower, mu - (phi / slope) * (norm / radius))
    return mu, MAX_MU_TRIALS


def svd_trust_region_step(
    uf: np.ndarray,
    s: np.ndarray,
    Vt: np.ndarray,
    scale: np.ndarray,
    radius: float,
    mu: float = 0.0,
) -> TrustRegionStep:
    r"""The trust-region Levenberg–Marquardt step from a thin SVD of :math:`J D^{-1}`.

    Minimises :math:`\lVert r + J\delta\rVert` subject to :math:`\lVert D\delta\rVert \le
    \Delta` (to 10 % in the radius) given :math:`J D^{-1} = U\,\mathrm{diag}(s)\,V^\top`:

    .. math::

        D\delta(\mu) = -V\,\frac{s\odot U^\top r}{s^2 + \mu}, \qquad
        \lVert D\delta(\mu)\rVert^2 = \sum_i \frac{s_i^2 (U^\top r)_i^2}{(s_i^2+\mu)^2},

    so each trial μ of Moré's iteration costs O(n).  Singular values below
    ``n eps s[0]`` count as zero (the Gauss–Newton step is then the minimum-norm one).

    Parameters
    ----------
    uf : ndarray, shape (k,)
        :math:`U^\top r`, k = min(m, n).
    s : ndarray, shape (k,)
        Singular values of :math:`J D^{-1}`, descending.
    Vt : ndarray, shape (k, n)
        :math:`V^\top`.
    scale : ndarray, shape (n,)
        The positive diagonal D.
    radius : float
        Trust-region radius Δ > 0.
    mu : float, default 0
        Starting guess for μ (the previous step's), used when the region is active.

    Returns
    -------
    TrustRegionStep
        δ in the original variables, μ, ‖Dδ‖ and the number of μ tried.

    References
    ----------
    Moré (1977), §3 and §5 (the iteration for μ and its bounds); MINPACK ``lmpar``.
    """
    threshold = _EPS64 * Vt.shape[1] * (s[0] if s.size else 0.0)
    if s.size and s[-1] > threshold:
        full_rank, w = True, uf / s
    else:  # the minimum-norm Gauss–Newton step
        full_rank = False
        w = np.where(s > threshold, uf, 0.0) / np.where(s > threshold, s, 1.0)
    gn_norm = math.sqrt(w @ w)
    if gn_norm <= (1 + RADIUS_RTOL) * radius:
        return TrustRegionStep(-(w @ Vt) / scale, 0.0, gn_norm, 0)
    s2, suf = s * s, s * uf
    g_norm = math.sqrt(suf @ suf)  # ‖D⁻¹ g‖
    upper = g_norm / radius
    lower = 0.0
    if full_rank:  # Newton's step on 1/‖Dδ‖ from μ = 0 is a lower bound (Moré 1977, §5)
        lower = (gn_norm - radius) / radius * gn_norm**2 / float(w @ (w / s2))
    mu = min(max(mu, lower), upper) or g_norm / gn_norm

    def norm_at(mu: float) -> tuple[float, float]:
        den = s2 + mu
        q = suf / den
        norm = math.sqrt(q @ q)
        return norm, -float(q @ (q / den)) / norm if norm > 0 else 0.0

    mu, trials = _find_mu(norm_at, radius, mu, lower, upper)
    q = suf / (s2 + mu)
    return TrustRegionStep(-(q @ Vt) / scale, mu, math.sqrt(q @ q), trials)


def _damped_factor(A: Array, d2: Array, mu: float, work: Array | None) -> Array | None:
    """Upper Cholesky factor of A + μ diag(d2) (A's upper triangle read), or None."""
    if work is None:
        F = np.array(A, order="F")
    else:
        F = work
        np.copyto(F, A)
    F.reshape(-1, order="F")[:: F.shape[0] + 1] += mu * d2
    potrf, = get_lapack_funcs(("potrf",), (F,))
    factor, info = potrf(F, lower=0, clean=0, overwrite_a=1)
    return factor if info == 0 else None


def trust_region_step(
    A: np.ndarray,
    g: np.ndarray,
    scale: np.ndarray,
    radius: float,
    mu: float = 0.0,
    *,
    work: np.ndarray | None = None,
) -> TrustRegionStep:
    r"""The trust-region Levenberg–Marquardt step from the normal equations.

    Minimises the model :math:`g^\top\delta + \tfrac12\delta^\top A\delta` subject to
    :math:`\lVert D\delta\rVert \le \Delta` (to 10 % in the radius), with
    :math:`\delta(\mu) = -(A + \mu D^2)^{-1} g` and Moré's iteration for μ: each trial is one
    Cholesky factorisation :math:`A + \mu D^2 = R^\top R`, and

    .. math::

        \frac{d}{d\mu}\lVert D\delta\rVert = -\frac{\lVert R^{-\top} D^2\delta\rVert^2}
        {\lVert D\delta\rVert}.

    Parameters
    ----------
    A : ndarray, shape (n, n)
        Symmetric positive semi-definite :math:`J^\top J` (float64 or float32); only its upper
        triangle is read, and it is not modified.  Fortran order saves a transposing copy.
    g : ndarray, shape (n,)
        Gradient :math:`J^\top r` of the cost :math:`\tfrac12\lVert r\rVert^2`.
    scale : ndarray, shape (n,)
        The positive diagonal D (e.g. the square root of :func:`marquardt_diagonal`).
    radius : float
        Trust-region radius Δ > 0.
    mu : float, default 0
        Starting guess for μ (the previous step's).
    work : ndarray, shape (n, n), optional
        Fortran-ordered buffer for the factor, as in :func:`solve_damped`.

    Returns
    -------
    TrustRegionStep
        δ (in the dtype of ``A`` and ``g``), μ, ‖Dδ‖ and the number of factorisations.  When
        :math:`A` is singular the Gauss–Newton step is skipped and μ starts above 0.

    References
    ----------
    Moré (1977), §3–5; MINPACK ``lmpar`` (which works from a QR factorisation of J instead).
    """
    dtype = np.result_type(A, g)
    g = np.asarray(g, dtype=dtype)
    d2 = np.asarray(scale, dtype=dtype) ** 2
    potrs, trtrs = get_lapack_funcs(("potrs", "trtrs"), (np.empty((1, 1), dtype),))
    last = {}

    def solve(mu: float) -> tuple[float, float] | None:
        R = _damped_factor(A, d2, mu, work)
        if R is None:
            return None
        x, info = potrs(R, g, lower=0)
        if info != 0 or not np.all(np.isfinite(x)):
            return None
        Dd = np.sqrt(d2) * x
        norm = math.sqrt(float(Dd @ Dd))
        last.update(mu=mu, step=-x, norm=norm)
        if norm == 0:
            return 0.0, 0.0
        y, _ = trtrs(R, d2 * x / norm, lower=0, trans=1)
        return norm, -norm * float(y @ y)

    gn = solve(0.0)
    if gn is not None and gn[0] <= (1 + RADIUS_RTOL) * radius:
        return TrustRegionStep(last["step"], 0.0, last["norm"], 1)
    g_norm = float(np.linalg.norm(g / np.sqrt(d2)))
    upper = g_norm / radius
    lower = 0.0 if gn is None or gn[1] == 0 else (gn[0] - radius) / radius * gn[0] / -gn[1]
    mu = min(max(mu, lower), upper) or (0.0 if gn is None else g_norm / gn[0])
    mu, trials = _find_mu(solve, radius, mu, lower, upper)
    if last.get("mu") != mu and solve(mu) is None:  # the last trial μ was not solvable
        raise np.linalg.LinAlgError("A + mu D^2 is not positive definite for any trial mu.")
    return TrustRegionStep(last["step"], mu, last["norm"], trials + 1)


def model_reduction(A: np.ndarray, g: np.ndarray, step: np.ndarray) -> float:
    r"""Reduction :math:`-g^\top\delta - \tfrac12\delta^\top A\delta` of the Gauss–Newton model.

    The predicted decrease of :math:`\tfrac12\lVert r\rVert^2` for the step δ; A is read from
    its upper triangle only (BLAS ``symv``).

    Parameters
    ----------
    A : ndarray, shape (n, n)
        :math:`J^\top J` (upper triangle).
    g : ndarray, shape (n,)
        :math:`J^\top r`.
    step : ndarray, shape (n,)
        δ.

    Returns
    -------
    float
    """
    symv, = get_blas_funcs(("symv",), (A,))
    Ad = symv(1.0, A, np.asarray(step, dtype=A.dtype), lower=0)
    return -float(g @ step) - 0.5 * float(step @ Ad)


def update_radius(
    radius: float,
    mu: float,
    ratio: float,
    step_norm: float,
    actual: float,
    slope: float,
) -> tuple[float, float]:
    r"""MINPACK's update of the trust-region radius Δ (and of the next starting μ).

    Parameters
    ----------
    radius : float
        Δ of the step just tried.
    mu : float
        Its μ.
    ratio : float
        Actual over predicted reduction of the cost (−inf for a non-finite trial).
    step_norm : float
        :math:`\lVert D\delta\rVert` of the step tried.
    actual : float
        Actual relative reduction :math:`(C - C_\text{new})/C`; ≤ −99 when the cost grew
        100-fold or more (or the trial was not finite).
    slope : float
        Relative directional derivative :math:`g^\top\delta / C`.

    Returns
    -------
    radius, mu : float
        The next radius and starting μ.

    Notes
    -----
    For ρ = ``ratio`` ≤ ¼ the radius shrinks by the factor t that minimises the quadratic
    through the cost at both ends of the step and the slope at its start, clipped to
    [0.1, 0.5] (0.1 for a 100-fold growth); μ grows by 1/t.  For ρ ≥ ¾, or a Gauss–Newton
    step (μ = 0), Δ becomes 2‖Dδ‖ and μ is halved; otherwise both stay (Moré 1977, §4).
    """
    if ratio <= 0.25:
        t = 0.5 if actual >= 0 else 0.5 * slope / (slope + actual)
        if actual <= -99 or not t >= 0.1:
            t = 0.1
        t = min(t, 0.5)
        return t * min(radius, 10.0 * step_norm), mu / t
    if mu == 0 or ratio >= 0.75:
        return 2.0 * step_norm, 0.5 * mu
    return radius, mu
