r"""``curve_fit``: nonlinear regression with the semantics of ``scipy.optimize.curve_fit``.

Fits ``ydata ≈ f(xdata, *p)`` by :func:`deltaprop.levenberg_marquardt` on the weighted
residuals :math:`r = L^{-1}(f(x, p) - y)`, where :math:`L = \mathrm{diag}(\sigma)` for standard
deviations σ or the Cholesky factor :math:`L L^\top = \Sigma` of a covariance matrix, and returns
the estimate with its covariance

.. math::

    \mathrm{Cov}(\hat p) = s^2 (J^\top J)^{-1}, \qquad s^2 = \frac{\lVert r\rVert^2}{m - n}

(``absolute_sigma=False``: σ are relative weights and the residual variance s² sets the scale;
``absolute_sigma=True``: σ are absolute, :math:`\mathrm{Cov} = (J^\top J)^{-1}`).  Code written
for scipy switches by changing one import: ``from deltaprop import curve_fit``.

References
----------
Bates, D. M. & Watts, D. G. (1988). Nonlinear Regression Analysis and Its Applications, §2.3.
NIST/SEMATECH e-Handbook of Statistical Methods, §4.4.3 (weighted nonlinear least squares).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import Bounds, OptimizeWarning

from .least_squares import inverse_gauss_newton, levenberg_marquardt

__all__ = ["curve_fit"]

Array = np.ndarray

#: scipy's method names, all served by the trust-region Levenberg–Marquardt.
SCIPY_METHODS = ("lm", "trf", "dogbox")


def _n_params(f: Callable, p0: object) -> int:
    if p0 is not None:
        return np.atleast_1d(p0).size
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        raise ValueError("Unable to determine number of fit parameters: give `p0`.")
    return len(positional) - 1


def _bounds(bounds: object, n: int) -> tuple[Array, Array]:
    try:
        lb, ub = (bounds.lb, bounds.ub) if isinstance(bounds, Bounds) else bounds
        return (np.broadcast_to(np.asarray(lb, dtype=float), (n,)).copy(),
                np.broadcast_to(np.asarray(ub, dtype=float), (n,)).copy())  # fmt: skip
    except (TypeError, ValueError):
        raise ValueError(f"`bounds` must be a pair (lb, ub) of scalars or arrays of the "
                         f"{n} parameters, or a scipy.optimize.Bounds; got {bounds!r}.") from None


def _feasible_start(lb: Array, ub: Array) -> Array:
    """scipy's default p0 with bounds: the midpoint, a unit inside a one-sided bound, else 1."""
    p0 = np.ones_like(lb)
    both = np.isfinite(lb) & np.isfinite(ub)
    p0[both] = 0.5 * (lb[both] + ub[both])
    lower_only = np.isfinite(lb) & ~np.isfinite(ub)
    p0[lower_only] = lb[lower_only] + 1
    upper_only = ~np.isfinite(lb) & np.isfinite(ub)
    p0[upper_only] = ub[upper_only] - 1
    return p0


def _data(xdata: object, ydata: object, check_finite: bool) -> tuple[object, Array]:
    as_array = np.asarray_chkfinite if check_finite else np.asarray
    try:
        y = as_array(ydata, dtype=float)
        x = as_array(xdata, dtype=float) if isinstance(xdata, (list, tuple, np.ndarray)) \
            else xdata
    except ValueError as exc:
        raise ValueError(f"`xdata` and `ydata` must be finite ({exc}); "
                         "use nan_policy='omit' to drop rows with NaN.") from None
    if y.size == 0:
        raise ValueError("`ydata` must not be empty.")
    return x, y


def _omit_nan(x: object, y: Array, sigma: object) -> tuple[object, Array, object]:
    """Drop the data points where x or y is NaN (and the matching entries of sigma)."""
    bad = np.isnan(y)
    if isinstance(x, np.ndarray):
        bad = bad | np.isnan(x).any(axis=tuple(range(x.ndim - 1)))
        x = x[..., ~bad]
    if sigma is not None:
        sigma = np.asarray(sigma)
        sigma = sigma[~bad] if sigma.ndim == 1 else sigma[np.ix_(~bad, ~bad)]
    return x, y[~bad], sigma


def _transform(sigma: object, m: int) -> Callable[[Array], Array] | None:
    """r ↦ L⁻¹ r for standard deviations (L = diag σ) or a covariance (L Lᵀ = Σ)."""
    if sigma is None:
        return None
    sigma = np.asarray(sigma, dtype=float)
    if sigma.size == 1 or sigma.shape == (m,):
        if not np.all(sigma > 0):
            raise ValueError("`sigma` must be positive.")
        w = 1.0 / sigma
        return lambda r: (w * r.T).T
    if sigma.shape == (m, m):
        try:
            L = cholesky(sigma, lower=True)
        except LinAlgError:
            raise ValueError("`sigma` must be positive definite.") from None
        return lambda r: solve_triangular(L, r, lower=True)
    raise ValueError(f"`sigma` must have shape ({m},) or ({m}, {m}), got {sigma.shape}.")


def _method(method: object, lb: Array, ub: Array) -> str | None:
    bounded = bool(np.any(np.isfinite(lb) | np.isfinite(ub)))
    if method == "lm" and bounded:
        raise ValueError("Method 'lm' only works for unconstrained problems. Use 'trf' or "
                         "'dogbox' instead (all three run deltaprop's trust region).")
    return None if method is None or method in SCIPY_METHODS else method


def _leastsq_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Rename scipy.optimize.leastsq's options (maxfev, diag) to least_squares'."""
    if "args" in kwargs:
        raise ValueError("'args' is not a supported keyword argument.")
    if "maxfev" in kwargs:
        kwargs.setdefault("max_nfev", kwargs.pop("maxfev"))
    if "diag" in kwargs:
        kwargs.setdefault("x_scale", 1.0 / np.asarray(kwargs.pop("diag"), dtype=float))
    return kwargs


def _covariance(res, absolute_sigma: bool) -> Array:
    """scipy's pcov: (JᵀJ)⁻¹ (times s² unless absolute_sigma); inf with a warning if unknown."""
    m, n = res.fun.size, res.x.size
    if not absolute_sigma and m > n:
        return res.covariance
    if absolute_sigma:
        return inverse_gauss_newton(res.jac)[0]
    warnings.warn("Covariance of the parameters could not be estimated (m <= n).",
                  OptimizeWarning, stacklevel=3)
    return np.full((n, n), np.inf)


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: Any = None,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: tuple[Any, Any] | Bounds = (-np.inf, np.inf),
    method: str | None = None,
    jac: Callable[..., Any] | str | None = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, dict, str, int]:
    r"""Fit ``f(xdata, *p)`` to ``ydata`` by Levenberg–Marquardt (``scipy.optimize.curve_fit``).

    Parameters
    ----------
    f : callable
        The model ``f(x, p1, p2, ...)``, returning an array of the shape of `ydata`.
    xdata : array_like or object
        The independent variable, passed to `f` unchanged (converted to float when it is a
        list, tuple or array).
    ydata : array_like, shape (m,)
        The dependent data.
    p0 : array_like, shape (n,), optional
        Starting values; default all ones (inside `bounds`: the midpoint, or one unit inside a
        one-sided bound), n taken from the signature of `f`.
    sigma : array_like, shape (m,) or (m, m), optional
        Standard deviations of `ydata`, or their covariance matrix.
    absolute_sigma : bool, default False
        True: `sigma` is absolute and ``pcov = (JᵀJ)⁻¹``; False: relative, and ``pcov`` is scaled
        by the residual variance ``s² = ‖r‖²/(m − n)``.
    check_finite : bool, optional
        Raise ValueError for NaN or inf in the data (default True unless `nan_policy` is set).
    bounds : (lb, ub) or scipy.optimize.Bounds, default (-inf, inf)
        Box constraints on the parameters.
    method : {"lm", "trf", "dogbox", "trust-region", "multiplicative"}, optional
        scipy's names all run the default trust-region method ("lm" refuses bounds, as scipy's).
    jac : callable or {"2-point", "3-point", "cs"}, optional
        ``jac(x, *p)`` → ∂f/∂p of shape (m, n); default finite differences ("2-point").
    full_output : bool, default False
        Also return ``infodict`` (``nfev``, ``njev``, ``fvec``), ``mesg`` and ``ier``.
    nan_policy : {"raise", "omit"}, optional
        "omit" drops the data points with NaN in `xdata` or `ydata`.
    **kwargs
        Passed to :func:`deltaprop.levenberg_marquardt` (``ftol``, ``xtol``, ``gtol``,
        ``max_nfev`` or leastsq's ``maxfev``, ``loss``, ``f_scale``, ``x_scale`` or leastsq's
        ``diag``, ...).

    Returns
    -------
    popt : ndarray, shape (n,)
        The estimate.
    pcov : ndarray, shape (n, n)
        Its estimated covariance; inf (with an ``OptimizeWarning``) when it cannot be estimated.

    Raises
    ------
    ValueError
        For non-finite or empty data, a `sigma` of the wrong shape or not positive (definite), a
        model output whose shape differs from `ydata`, or invalid solver options.
    RuntimeError
        When the solver stops without satisfying a convergence test ("Optimal parameters not
        found").

    Examples
    --------
    >>> import numpy as np
    >>> from deltaprop import curve_fit
    >>> x = np.linspace(0, 4, 50)
    >>> y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(7 * x)   # a small systematic error
    >>> popt, pcov = curve_fit(lambda x, a, b, c: a * np.exp(-b * x) + c, x, y)
    >>> np.round(popt, 3), pcov.shape
    (array([2.505, 1.305, 0.502]), (3, 3))
    """
    n = _n_params(f, p0)
    lb, ub = _bounds(bounds, n)
    p0 = _feasible_start(lb, ub) if p0 is None else np.atleast_1d(np.asarray(p0, dtype=float))
    if p0.shape != (n,) or np.any(p0 < lb) or np.any(p0 > ub):
        raise ValueError(f"`p0` must be {n} values inside `bounds`, got {p0!r}.")
    lm_method = _method(method, lb, ub)
    if nan_policy not in (None, "raise", "omit"):
        raise ValueError(f"`nan_policy` must be 'raise', 'omit' or None, got {nan_policy!r}.")
    check = (nan_policy is None) if check_finite is None else bool(check_finite)
    xdata, ydata = _data(xdata, ydata, check or nan_policy == "raise")
    if nan_policy == "omit":
        xdata, ydata, sigma = _omit_nan(xdata, ydata, sigma)
    transform = _transform(sigma, ydata.size)
    fun, jacobian = _residual_functions(f, jac, xdata, ydata, transform)
    options = _leastsq_options(dict(kwargs))
    if lm_method is not None:
        options["method"] = lm_method
    res = levenberg_marquardt(fun, p0, jacobian, bounds=(lb, ub), **options)
    if not res.success:
        raise RuntimeError(f"Optimal parameters not found: {res.message}")
    pcov = _covariance(res, absolute_sigma)
    if full_output:
        info = {"nfev": res.nfev, "njev": res.njev, "fvec": res.fun}
        return res.x, pcov, info, res.message, res.status
    return res.x, pcov


def _residual_functions(f, jac, xdata, ydata, transform):
    """The weighted residual L⁻¹(f(x, p) − y) and its Jacobian (or a difference scheme)."""
    shape = ydata.shape

    def fun(p: Array) -> Array:
        model = np.asarray(f(xdata, *p))
        if model.shape != shape:
            raise ValueError(f"`f` must return an array of the shape of `ydata` {shape}, "
                             f"got shape {model.shape}.")
        r = (model - ydata).ravel()
        return r if transform is None else transform(r)

    if not callable(jac):
        return fun, ("2-point" if jac is None else jac)

    def jacobian(p: Array) -> Array:
        J = np.asarray(jac(xdata, *p), dtype=float).reshape(ydata.size, p.size)
        return J if transform is None else transform(J)

    return fun, jacobian
