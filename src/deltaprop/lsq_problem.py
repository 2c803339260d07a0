r"""The least-squares problem as :func:`deltaprop.levenberg_marquardt` sees it.

Three pieces sit between the user's ``fun``/``jac`` and the iteration:

* :class:`Residuals` calls ``fun`` and ``jac`` with the extra arguments, counts the
  evaluations, estimates the Jacobian by finite differences (``"2-point"``, ``"3-point"``,
  complex step ``"cs"``) when ``jac`` is not a callable, and applies a robust loss;
* the robust losses :data:`ROBUST_LOSSES` :math:`\rho(z)` of :math:`z = (f/s)^2`, with the
  scaling of residuals and Jacobian that turns a robust cost
  :math:`C = \tfrac{s^2}{2}\sum_i\rho(f_i^2/s^2)` into an ordinary least-squares model
  (Triggs et al. 2000, §4.3; the scheme of ``scipy.optimize.least_squares``):

  .. math::

      \tilde J = \sqrt{\rho' + 2\rho'' f^2}\,J, \qquad
      \tilde f = \frac{\rho'}{\sqrt{\rho' + 2\rho'' f^2}}\,f, \qquad
      \tilde J^\top\tilde f = \nabla C,

  with the square root's argument floored at machine epsilon;
* the Gauss–Newton model at an accepted point: :class:`DenseModel` (a thin SVD of
  :math:`\tilde J D^{-1}`, for a dense J) and :class:`NormalModel` (the normal equations
  :math:`A = \tilde J^\top\tilde J`, for a sparse or ``LinearOperator`` J and for the
  multiplicative method).  Both give the trust-region step, the predicted reduction of the cost
  and the geodesic-acceleration correction of a step.

References
----------
Triggs, McLauchlan, Hartley & Fitzgibbon (2000), "Bundle adjustment — a modern synthesis",
§4.3 (robust cost functions).  Squire & Trapp (1998), "Using complex variables to estimate
derivatives of real functions", SIAM Review 40(1) (complex step).  Transtrum & Sethna (2012),
"Improvements to the Levenberg–Marquardt algorithm for nonlinear least-squares minimization",
arXiv:1201.5885 (geodesic acceleration).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs
from scipy.sparse import diags, issparse
from scipy.sparse.linalg import LinearOperator

from .linalg import TrustRegionStep, solve_damped, svd_trust_region_step, trust_region_step

__all__ = [
    "JAC_METHODS",
    "ROBUST_LOSSES",
    "DenseModel",
    "NormalModel",
    "Residuals",
    "make_model",
]

Array = np.ndarray
EPS = np.finfo(float).eps

#: Finite-difference schemes accepted for ``jac``.
JAC_METHODS = ("2-point", "3-point", "cs")


# ----------------------------------------------------------------------------- robust losses
# Each maps z = (f / f_scale)² (m,) to rho (3, m): ρ(z), ρ'(z), ρ''(z).


def _soft_l1(z: Array) -> Array:
    t = 1 + z
    return np.stack([2 * (np.sqrt(t) - 1), t**-0.5, -0.5 * t**-1.5])


def _huber(z: Array) -> Array:
    inlier = z <= 1
    root = np.sqrt(np.where(inlier, 1.0, z))
    return np.stack([np.where(inlier, z, 2 * root - 1), np.where(inlier, 1.0, 1 / root),
                     np.where(inlier, 0.0, -0.5 / (root * root * root))])  # fmt: skip


def _cauchy(z: Array) -> Array:
    t = 1 + z
    return np.stack([np.log1p(z), 1 / t, -1 / (t * t)])


def _arctan(z: Array) -> Array:
    t = 1 + z * z
    return np.stack([np.arctan(z), 1 / t, -2 * z / (t * t)])


#: The robust losses ρ(z) of ``loss``; "linear" (ρ = z) is plain least squares.
ROBUST_LOSSES: dict[str, Callable[[Array], Array] | None] = {
    "linear": None,
    "soft_l1": _soft_l1,
    "huber": _huber,
    "cauchy": _cauchy,
    "arctan": _arctan,
}


# ----------------------------------------------------------------------------- evaluations


class Residuals:
    """``fun`` and its Jacobian, with extra arguments, evaluation counts and a robust loss.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args, **kwargs) -> f`` (m,).
    jac : callable or {"2-point", "3-point", "cs"}
        ``jac(x, *args, **kwargs) -> J`` (m, n): an array, a sparse matrix or a
        ``LinearOperator``; or a finite-difference scheme.
    args, kwargs
        Extra arguments of ``fun`` and ``jac``.
    loss : callable or None
        ``loss(z) -> rho`` (3, m) (see :data:`ROBUST_LOSSES`); None for plain least squares.
    f_scale : float
        Soft margin s between inlier and outlier residuals.
    diff_step : ndarray or None
        Relative finite-difference step; None for the scheme's default (√ε, or ε^⅓ for
        "3-point", ε of the residuals' dtype).
    lb, ub : ndarray, shape (n,)
        Bounds that the difference steps respect (±inf where there is none).

    Attributes
    ----------
    nfev, njev : int
        Evaluations of ``fun`` and of the Jacobian; the evaluations of ``fun`` that a
        finite-difference Jacobian makes count in ``njev`` only (scipy's convention).
    """

    def __init__(self, fun, jac, args, kwargs, loss, f_scale, diff_step, lb, ub):
        self.fun, self.jac, self.args, self.kwargs = fun, jac, args, kwargs
        self.loss, self.f_scale, self.diff_step = loss, f_scale, diff_step
        self.lb, self.ub = lb, ub
        self.nfev = self.njev = 0
        self.shape: tuple[int, ...] | None = None
        self.jac_shape: tuple[int, int] = (-1, lb.size)
        self.f_eps = EPS

    def __call__(self, x: Array) -> Array:
        """Residuals f(x) (m,) as float64; non-finite values are left for the caller."""
        self.nfev += 1
        return self._evaluate(x)

    def _evaluate(self, x: Array) -> Array:
        f = np.asarray(self.fun(x, *self.args, **self.kwargs))
        if f.shape != self.shape:
            f = f.reshape(1) if f.ndim == 0 and self.shape == (1,) else self._first_residuals(f)
        if f.dtype.kind not in "fiub":
            raise ValueError(f"`fun` must return real residuals, got dtype {f.dtype} "
                             "(split a complex residual into its real and imaginary parts).")
        return f if f.dtype == np.float64 else f.astype(np.float64)

    def _first_residuals(self, f: Array) -> Array:
        if self.shape is not None or f.ndim > 1:
            expected = "shape (m,)" if self.shape is None else f"shape {self.shape}"
            raise ValueError(f"`fun` must return a 1-D array of {expected}, got shape {f.shape}.")
        f = np.atleast_1d(f)
        self.shape = f.shape
        self.jac_shape = (f.size, self.lb.size)
        if f.dtype.kind == "f":
            self.f_eps = float(np.finfo(f.dtype).eps)
        return f

    def cost(self, f: Array) -> float:
        """The cost ½ Σ ρ(f²/s²) s², or inf when it is not finite."""
        if self.loss is None:
            c = 0.5 * float(f @ f)
        else:
            with np.errstate(all="ignore"):
                c = 0.5 * self.f_scale**2 * float(np.sum(self.loss((f / self.f_scale) ** 2)[0]))
        return c if math.isfinite(c) else math.inf

    def linearise(self, x: Array, f: Array) -> tuple[Array, object, Array | None] | None:
        """``(f̃, J̃, w)`` at x (robust scaling w, None for plain least squares), or None when
        the Jacobian is not finite."""
        J = self.jacobian(x, f)
        if J is None:
            return None
        if self.loss is None:
            return f, J, None
        rho = self.loss((f / self.f_scale) ** 2)
        w = rho[1] + 2 * rho[2] * (f / self.f_scale) ** 2
        w = np.sqrt(np.maximum(w, EPS))
        return f * (rho[1] / w), _scale_rows(J, w), w

    def jacobian(self, x: Array, f: Array) -> object | None:
        """J at x (array, sparse matrix or LinearOperator), or None when it is not finite."""
        self.njev += 1
        if not callable(self.jac):
            return self._differences(x, f)
        J = self.jac(x, *self.args, **self.kwargs)
        if type(J) is np.ndarray and J.dtype == np.float64 and J.shape == self.jac_shape:
            return J if np.isfinite(J).all() else None  # the common case, checked cheaply
        if isinstance(J, LinearOperator):
            return self._checked_shape(J)
        if issparse(J):
            J = self._checked_shape(J.tocsr())
            return J if np.all(np.isfinite(J.data)) else None
        J = np.atleast_2d(np.asarray(J))
        if J.dtype.kind not in "fiub":
            raise ValueError(f"`jac` must return a real matrix, got dtype {J.dtype}.")
        J = self._checked_shape(J.astype(np.float64, copy=False))
        return J if np.isfinite(J).all() else None

    def _checked_shape(self, J):
        if J.shape != self.jac_shape:
            raise ValueError(f"`jac` must return a matrix of shape (m, n) = {self.jac_shape}, "
                             f"got shape {J.shape}.")
        return J

    def _differences(self, x: Array, f: Array) -> Array | None:
        """Finite-difference (or complex-step) Jacobian, one column per variable."""
        scheme = self.jac
        rel = self.diff_step
        if rel is None:
            rel = self.f_eps ** (1 / 3 if scheme == "3-point" else 0.5)
        h = rel * np.where(x >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(x))
        J = np.empty((f.size, x.size))
        for j in range(x.size):
            J[:, j] = self._column(x, f, j, float(h[j]), scheme)
        return J if np.all(np.isfinite(J)) else None

    def _column(self, x: Array, f: Array, j: int, h: float, scheme: str) -> Array:
        """Column j of the difference Jacobian, with steps kept inside the bounds."""
        if scheme == "cs":
            xc = x.astype(complex)
            xc[j] += 1j * h
            return np.atleast_1d(np.asarray(self.fun(xc, *self.args, **self.kwargs))).imag / h
        inside = lambda step: self.lb[j] <= x[j] + step <= self.ub[j]  # noqa: E731
        if scheme == "2-point":
            h = h if inside(h) or not inside(-h) else -h
            fh, step = self._shifted(x, j, h)
            return (fh - f) / step
        if inside(h) and inside(-h):  # central
            (fp, sp), (fm, sm) = self._shifted(x, j, h), self._shifted(x, j, -h)
            return (fp - fm) / (sp - sm)
        h = h if inside(2 * h) else -h  # one-sided, second order
        (f1, s1), (f2, _) = self._shifted(x, j, h), self._shifted(x, j, 2 * h)
        return (-3 * f + 4 * f1 - f2) / (2 * s1)

    def _shifted(self, x: Array, j: int, h: float) -> tuple[Array, float]:
        """f(x + h e_j) and the step actually taken (representable)."""
        xh = x.copy()
        xh[j] = x[j] + h
        return self._evaluate(xh), float(xh[j] - x[j])


def _scale_rows(J, w: Array):
    """diag(w) J for an array, a sparse matrix or a LinearOperator."""
    if isinstance(J, LinearOperator):
        return LinearOperator(J.shape, matvec=lambda v: w * (J @ v),
                              rmatvec=lambda u: J.T @ (w * u), dtype=float)  # fmt: skip
    if issparse(J):
        return (diags(w) @ J).tocsr()
    return w[:, None] * J


# ----------------------------------------------------------------------------- models


class DenseModel:
    """The Gauss–Newton model of one accepted point from a thin SVD of :math:`J D^{-1}`.

    Parameters
    ----------
    f : ndarray, shape (m,)
        (Scaled) residuals f̃.
    J : ndarray, shape (m, n)
        (Scaled) Jacobian J̃.

    Attributes
    ----------
    grad : ndarray, shape (n,)
        :math:`\\tilde J^\\top\\tilde f`, the gradient of the cost.
    col_norms : ndarray, shape (n,)
        Euclidean norms of the columns of J̃.
    """

    def __init__(self, f: Array, J: Array):
        self.f, self.J = f, J
        self.grad = J.T @ f
        self.col_norms = np.sqrt(np.einsum("ij,ij->j", J, J))
        self._last: tuple[Array, Array] | None = None  # (d, J̃ d) of the last prediction

    def factor(self, scale: Array, free: Array | None) -> None:
        """Take the SVD of the free columns of J̃ diag(scale)⁻¹."""
        self.scale, self.free = scale, free
        Js = self.J / scale if free is None else self.J[:, free] / scale[free]
        self.U, self.s, self.Vt = _thin_svd(Js)
        self.uf = self.f @ self.U

    def step(self, radius: float, mu: float) -> TrustRegionStep:
        """Moré's trust-region step (zero on the variables held at a bound)."""
        scale = self.scale if self.free is None else self.scale[self.free]
        tr = svd_trust_region_step(self.uf, self.s, self.Vt, scale, radius, mu)
        return tr if self.free is None else tr._replace(step=_spread(tr.step, self.free))

    def predicted(self, d: Array) -> tuple[float, float]:
        """(reduction −gᵀd − ½‖J̃d‖² of the model, directional derivative gᵀd)."""
        Jd = self.J @ d
        self._last = (d, Jd)
        slope = float(self.grad @ d)
        return -slope - 0.5 * float(Jd @ Jd), slope

    def times(self, d: Array) -> Array:
        """J̃ d (kept from :meth:`predicted` for the same step)."""
        last = self._last
        return last[1] if last is not None and last[0] is d else self.J @ d

    def correction(self, r_vv: Array, mu: float) -> Array:
        """−(J̃ᵀJ̃ + μD²)⁻¹ J̃ᵀ r_vv: the geodesic acceleration for the second derivative r_vv."""
        q = -((self.s / (self.s * self.s + mu)) * (r_vv @ self.U)) @ self.Vt
        if self.free is None:
            return q / self.scale
        return _spread(q / self.scale[self.free], self.free)


class NormalModel:
    """The Gauss–Newton model of one accepted point from :math:`A = \\tilde J^\\top\\tilde J`.

    For a sparse or ``LinearOperator`` Jacobian (A is formed dense, n × n: 2n products with J
    for an operator) and for the multiplicative method.

    Parameters
    ----------
    f : ndarray, shape (m,)
        (Scaled) residuals.
    J : ndarray, sparse matrix or LinearOperator, shape (m, n)
        (Scaled) Jacobian.
    """

    def __init__(self, f: Array, J):
        self.f, self.J = f, J
        self.A = _normal_matrix(J)
        self.grad = np.asarray(J.T @ f, dtype=float).ravel()
        self.col_norms = np.sqrt(np.maximum(np.diag(self.A), 0.0))

    def factor(self, scale: Array, free: Array | None) -> None:
        """Keep the free rows and columns of A (Fortran order) and a factorisation buffer."""
        self.scale, self.free = scale, free
        A = self.A if free is None else self.A[np.ix_(free, free)]
        self.A_free = np.asfortranarray(A)
        self.work = np.empty_like(self.A_free, order="F")

    def step(self, radius: float, mu: float) -> TrustRegionStep:
        """Moré's trust-region step by Cholesky factorisations (zero on held variables)."""
        if self.free is None:
            return trust_region_step(self.A_free, self.grad, self.scale, radius, mu,
                                     work=self.work)  # fmt: skip
        tr = trust_region_step(self.A_free, self.grad[self.free], self.scale[self.free],
                               radius, mu, work=self.work)  # fmt: skip
        return tr._replace(step=_spread(tr.step, self.free))

    def predicted(self, d: Array) -> tuple[float, float]:
        """(reduction −gᵀd − ½ dᵀAd of the model, directional derivative gᵀd)."""
        slope = float(self.grad @ d)
        return -slope - 0.5 * float(d @ (self.A @ d)), slope

    def times(self, d: Array) -> Array:
        """J̃ d."""
        return np.asarray(self.J @ d, dtype=float).ravel()

    def correction(self, r_vv: Array, mu: float) -> Array:
        """−(J̃ᵀJ̃ + μD²)⁻¹ J̃ᵀ r_vv by one damped Cholesky solve (zeros if it fails)."""
        b = np.asarray(self.J.T @ r_vv, dtype=float).ravel()
        free = slice(None) if self.free is None else self.free
        a, _ = solve_damped(self.A_free, b[free], mu, self.scale[free] ** 2, work=self.work)
        return a if self.free is None else _spread(a, self.free)


_GESDD = get_lapack_funcs("gesdd", (np.empty(1),))


def _thin_svd(A: Array) -> tuple[Array, Array, Array]:
    """U, s, Vᵀ of A (m, n), thin; LAPACK ``gesdd`` called directly (``numpy.linalg.svd``
    costs 40 µs more per call on the small matrices of curve fitting)."""
    U, s, Vt, info = _GESDD(A, compute_uv=1, full_matrices=0)
    if info != 0:  # did not converge: fall back to numpy's driver (raises LinAlgError)
        return np.linalg.svd(A, full_matrices=False)
    return U, s, Vt


def _spread(values: Array, free: Array) -> Array:
    """A full-length vector with ``values`` on the free variables and zeros elsewhere."""
    out = np.zeros(free.size)
    out[free] = values
    return out


def _normal_matrix(J) -> Array:
    """JᵀJ as a dense (n, n) array."""
    if isinstance(J, LinearOperator):
        n = J.shape[1]
        A = np.empty((n, n))
        e = np.zeros(n)
        for j in range(n):
            e[j] = 1.0
            A[:, j] = np.asarray(J.rmatvec(J.matvec(e)), dtype=float).ravel()
            e[j] = 0.0
        return 0.5 * (A + A.T)
    if issparse(J):
        return np.asarray((J.T @ J).toarray(), dtype=float)
    return J.T @ J


def make_model(f: Array, J, normal: bool) -> DenseModel | NormalModel:
    """:class:`NormalModel` for a sparse or operator J or when ``normal``, else
    :class:`DenseModel`."""
    if normal or issparse(J) or isinstance(J, LinearOperator):
        return NormalModel(f, J)
    return DenseModel(f, J)
