r"""Damped normal equations: the linear algebra shared by every Levenberg–Marquardt in deltaprop.

The general least-squares solver (:mod:`deltaprop.least_squares`), network training
(:mod:`deltaprop.lm_training`) and the dual Gauss–Newton step of :mod:`deltaprop.curvature` all
solve :math:`(J^\top J + \mu D)\,\delta = -g` and adapt :math:`\mu` from whether a trial step
lowers the cost.  This module holds that machinery once: the damped Cholesky solve, Marquardt's
scaling diagonal, the multiplicative update of :math:`\mu`, and the search that raises
:math:`\mu` until a step is accepted.  It depends on NumPy and SciPy only, so the core and
curvature layers may import it.

References
----------
Levenberg 1944; Marquardt 1963; Moré 1977, "The Levenberg–Marquardt algorithm: implementation
and theory"; Bishop & Bishop 2024 §8 (the outer-product approximation and the LM step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs

__all__ = [
    "DIAGONAL_FLOOR",
    "MU_MIN",
    "DampedSearch",
    "damped_step_search",
    "marquardt_diagonal",
    "solve_damped",
    "update_mu",
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
