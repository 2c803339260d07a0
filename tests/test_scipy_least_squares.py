"""scipy's own tests of ``least_squares`` (scipy 1.17, optimize/tests/test_least_squares.py),
run against :func:`deltaprop.levenberg_marquardt` through a thin adapter.

Ported: the tests of ``method="lm"`` (``BaseMixin``), the bounds, sparse/operator and robust
loss tests of ``method="trf"`` (``BoundsMixin``, ``SparseMixin``, ``LossFunctionMixin``), and
the module-level tests.  The adapter only maps scipy's call onto ours: ``method`` ("lm", "trf"
or "dogbox") and ``tr_solver`` ("exact" or "lsmr") select nothing, since deltaprop has one
trust-region method whose subproblem is solved exactly (a thin SVD for a dense Jacobian, the
normal equations for a sparse or operator one).

Not applicable, and why:

* ``test_workers`` — no ``workers`` option (deltaprop evaluates serially).
* ``jac_sparsity`` (``test_numerical_jac``, ``test_wrong_jac_sparsity``, the ``jac_sparsity``
  half of ``test_with_bounds``), ``tr_options`` (``test_tr_options``,
  ``test_lsmr_regularization``), ``tr_solver`` validation (``test_exact_tr_solver``,
  ``test_wrong_parameters``, the ``tr_solver="exact"`` half of ``test_linear_operator``) — these
  options do not exist here.
* Restrictions of MINPACK that deltaprop does not have: ``TestLM.test_bounds_not_supported``,
  ``test_m_less_n_not_supported`` and the lm half of ``test_rosenbrock_cropped`` (run here with
  the trf assertion: the cost reaches 0), ``test_sparse_not_supported``,
  ``test_LinearOperator_not_supported``, ``test_loss``, ``test_jac_sparsity_not_supported``,
  ``test_callback_with_lm_method`` (callbacks are supported), ``test_small_tolerances_for_lm``
  (one tolerance may be 0), ``test_x_scale_jac_scale``'s ValueError for an operator (``"jac"``
  scaling works for operators: their column norms come from the normal equations).
* ``test_full_result`` for lm expects ``njev is None``; deltaprop counts Jacobian evaluations
  (asserted to be < 10 as for trf).
* ``test_gh_18793_and_19351`` checks trf's Coleman–Li scaled gradient; here: convergence, and
  the answer no further from the solution than the start (the original motivation).
* ``test_fp32_gh12991`` compares with COBYQA's minimum (7e-5 from the least-squares line in
  this float32 problem, outside the test's own 9e-5 of ours); here: with the line itself.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_equal
from scipy.optimize import Bounds, OptimizeResult
from scipy.sparse import issparse, lil_array
from scipy.sparse.linalg import aslinearoperator

from deltaprop import levenberg_marquardt

EPS = np.finfo(float).eps


def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf",
                  tr_solver=None, **kwargs):  # fmt: skip
    """``scipy.optimize.least_squares``'s call, solved by ``deltaprop.levenberg_marquardt``."""
    if method not in ("trf", "dogbox", "lm") or tr_solver not in (None, "exact", "lsmr"):
        raise ValueError(f"unknown method {method!r} or tr_solver {tr_solver!r}")
    return levenberg_marquardt(fun, x0, jac, bounds=bounds, **kwargs)


# ----------------------------------------------------------------------------- problems


def fun_trivial(x, a=0):
    return (x - a) ** 2 + 5.0


def jac_trivial(x, a=0.0):
    return 2 * (x - a)


def fun_2d_trivial(x):
    return np.array([x[0], x[1]])


def jac_2d_trivial(x):
    return np.identity(2)


def fun_rosenbrock(x):
    return np.array([10 * (x[1] - x[0] ** 2), (1 - x[0])])


class CountingRosenbrock:
    def __init__(self):
        self.nfev = 0

    def __call__(self, x, a=0):
        self.nfev += 1
        return fun_rosenbrock(x)


def jac_rosenbrock(x):
    return np.array([[-20 * x[0], 10], [-1, 0]])


def jac_rosenbrock_bad_dim(x):
    return np.array([[-20 * x[0], 10], [-1, 0], [0.0, 0.0]])


def fun_rosenbrock_cropped(x):
    return fun_rosenbrock(x)[0]


def jac_rosenbrock_cropped(x):
    return jac_rosenbrock(x)[0]


def fun_wrong_dimensions(x):  # for 1-D x, a 2-D result
    return np.array([x, x**2, x**3])


def jac_wrong_dimensions(x, a=0.0):
    return np.atleast_3d(jac_trivial(x, a=a))


def fun_bvp(x):
    n = int(np.sqrt(x.shape[0]))
    u = np.zeros((n + 2, n + 2))
    x = x.reshape((n, n))
    u[1:-1, 1:-1] = x
    y = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * x + x**3
    return y.ravel()


class BroydenTridiagonal:
    """Broyden's tridiagonal system, n = 100, with a sparse, operator or dense Jacobian."""

    def __init__(self, n=100, mode="sparse"):
        rng = np.random.default_rng(123440)
        self.n = n
        self.lb = np.linspace(-2, -1.5, n) + 0.1 * rng.standard_normal(n)
        self.ub = np.linspace(-0.8, 0.0, n) + 0.1 * rng.standard_normal(n)
        x0 = -np.ones(n) + 0.1 * rng.standard_normal(n)
        margin = 1e-10 * np.maximum(1.0, np.abs(self.lb))
        self.x0 = np.clip(x0, self.lb + margin, self.ub - margin)
        self.jac = {"sparse": self._jac, "operator": lambda x: aslinearoperator(self._jac(x)),
                    "dense": lambda x: self._jac(x).toarray()}[mode]  # fmt: skip

    def fun(self, x):
        f = (3 - x) * x + 1
        f[1:] -= x[:-1]
        f[:-1] -= 2 * x[1:]
        return f

    def _jac(self, x):
        J = lil_array((self.n, self.n))
        i = np.arange(self.n)
        J[i, i] = 3 - 2 * x
        i = np.arange(1, self.n)
        J[i, i - 1] = -1
        i = np.arange(self.n - 1)
        J[i, i + 1] = -2
        return J


class ExponentialFittingProblem:
    """y = a + exp(b x) + noise, with outliers."""

    def __init__(self, a, b, noise, n_outliers=1, x_range=(-1, 1), n_points=11, rng=None):
        rng = np.random.default_rng(rng)
        self.m, self.n = n_points, 2
        self.p0 = np.zeros(2)
        self.x = np.linspace(x_range[0], x_range[1], n_points)
        self.y = a + np.exp(b * self.x) + noise * rng.standard_normal(self.m)
        outliers = rng.integers(0, self.m, n_outliers)
        self.y[outliers] += 50 * noise * rng.random(n_outliers)
        self.p_opt = np.array([a, b])

    def fun(self, p):
        return p[0] + np.exp(p[1] * self.x) - self.y

    def jac(self, p):
        return np.column_stack([np.ones(self.m), self.x * np.exp(p[1] * self.x)])


def cubic_soft_l1(z):
    t = 1 + z
    return np.stack([3 * (t ** (1 / 3) - 1), t ** (-2 / 3), -2 / 3 * t ** (-5 / 3)])


LOSSES = ["linear", "soft_l1", "huber", "cauchy", "arctan", cubic_soft_l1]
JACS = ["2-point", "3-point", "cs"]


# ----------------------------------------------------------------------------- BaseMixin (lm)


def test_basic():
    res = least_squares(fun_trivial, 2.0, method="lm")
    assert_allclose(res.x, 0, atol=1e-4)
    assert_allclose(res.fun, fun_trivial(res.x))


@pytest.mark.parametrize("jac", [*JACS, jac_trivial])
def test_args_kwargs(jac):
    a = 3.0
    res = least_squares(fun_trivial, 2.0, jac, args=(a,), method="lm")
    res1 = least_squares(fun_trivial, 2.0, jac, kwargs={"a": a}, method="lm")
    assert_allclose(res.x, a, rtol=1e-4)
    assert_allclose(res1.x, a, rtol=1e-4)
    with pytest.raises(TypeError):
        least_squares(fun_trivial, 2.0, args=(3, 4), method="lm")
    with pytest.raises(TypeError):
        least_squares(fun_trivial, 2.0, kwargs={"kaboom": 3}, method="lm")


def test_jac_options():
    for jac in [*JACS, jac_trivial]:
        res = least_squares(fun_trivial, 2.0, jac, method="lm")
        assert_allclose(res.x, 0, atol=1e-4)
    with pytest.raises(ValueError):
        least_squares(fun_trivial, 2.0, jac="oops", method="lm")


def test_nfev_options():
    for max_nfev in [None, 20]:
        res = least_squares(fun_trivial, 2.0, max_nfev=max_nfev, method="lm")
        assert_allclose(res.x, 0, atol=1e-4)


def test_x_scale_options():
    for x_scale in [1.0, np.array([0.5]), "jac"]:
        res = least_squares(fun_trivial, 2.0, x_scale=x_scale)
        assert_allclose(res.x, 0)
    for bad in ["auto", -1.0, 1.0 + 2.0j]:
        with pytest.raises(ValueError):
            least_squares(fun_trivial, 2.0, x_scale=bad, method="lm")


def test_diff_step():
    res1 = least_squares(fun_trivial, 2.0, diff_step=1e-1, method="lm")
    res3 = least_squares(fun_trivial, 2.0, diff_step=None, method="lm")
    assert_allclose(res1.x, 0, atol=1e-4)
    assert_allclose(res3.x, 0, atol=1e-4)


def test_incorrect_options_usage():
    with pytest.raises(TypeError):
        least_squares(fun_trivial, 2.0, method="lm", options={"no_such_option": 100})
    with pytest.raises(TypeError):
        least_squares(fun_trivial, 2.0, method="lm", options={"max_nfev": 100})


def test_full_result():
    res = least_squares(fun_trivial, 2.0, method="lm")
    assert_allclose(res.x, 0, atol=1e-4)
    assert_allclose(res.cost, 12.5)
    assert_allclose(res.fun, 5)
    assert_allclose(res.jac, 0, atol=1e-4)
    assert_allclose(res.grad, 0, atol=1e-2)
    assert_allclose(res.optimality, 0, atol=1e-2)
    assert_equal(res.active_mask, 0)
    assert res.nfev < 10 and res.njev < 10  # lm: njev is None in scipy
    assert res.status > 0 and res.success


def test_full_result_single_fev():  # trf's version (scipy skips it for lm)
    res = least_squares(fun_trivial, 2.0, max_nfev=1)
    assert_equal(res.x, np.array([2]))
    assert_equal(res.cost, 40.5)
    assert_equal(res.fun, np.array([9]))
    assert_equal(res.jac, np.array([[4]]))
    assert_equal(res.grad, np.array([36]))
    assert_equal(res.optimality, 36)
    assert_equal(res.active_mask, np.array([0]))
    assert_equal(res.nfev, 1)
    assert_equal(res.njev, 1)
    assert_equal(res.status, 0)
    assert_equal(res.success, 0)


def test_nfev():
    for i in range(1, 3):
        rng = np.random.default_rng(128908)
        x0 = rng.uniform(size=2) * 10
        counted = CountingRosenbrock()
        res = least_squares(counted, x0, jac=jac_rosenbrock, method="lm", max_nfev=i)
        assert res.nfev == counted.nfev


def test_rosenbrock():
    for jac, x_scale in product([*JACS, jac_rosenbrock], [1.0, np.array([1.0, 0.2]), "jac"]):
        res = least_squares(fun_rosenbrock, [-2, 1], jac, x_scale=x_scale, method="lm")
        assert_allclose(res.x, [1, 1])


def test_rosenbrock_cropped():  # m < n: trf's assertion (MINPACK refuses m < n)
    for jac, x_scale in product([*JACS, jac_rosenbrock_cropped],
                                [1.0, np.array([1.0, 0.2]), "jac"]):  # fmt: skip
        res = least_squares(fun_rosenbrock_cropped, [-2, 1], jac, x_scale=x_scale)
        assert_allclose(res.cost, 0, atol=1e-14)


def test_wrong_dimensions_and_inputs():
    with pytest.raises(ValueError):
        least_squares(fun_wrong_dimensions, 2.0, method="lm")
    with pytest.raises(ValueError):
        least_squares(fun_trivial, 2.0, jac_wrong_dimensions, method="lm")
    with pytest.raises(ValueError):
        least_squares(fun_rosenbrock, [1, 2], jac_rosenbrock_bad_dim, method="lm")
    for x0 in (np.ones(4).reshape(2, 2), 2.0 + 0.0j, [1.0, 2.0 + 0.0j]):
        with pytest.raises(ValueError):
            least_squares(fun_trivial, x0, method="lm")


def test_bvp():
    n = 10
    res = least_squares(fun_bvp, np.ones(n**2), ftol=1e-2, method="lm", max_nfev=5000)
    assert res.nfev < 5000
    assert res.cost < 0.5


def test_error_raised_when_all_tolerances_below_eps():
    with pytest.raises(ValueError):
        least_squares(fun_trivial, 2.0, method="lm", ftol=None, xtol=None, gtol=None)


def test_convergence_with_only_one_tolerance_enabled():  # trf's (scipy skips it for lm)
    for ftol, xtol, gtol in [(1e-8, None, None), (None, 1e-8, None), (None, None, 1e-8)]:
        res = least_squares(fun_rosenbrock, [-2, 1], jac=jac_rosenbrock, ftol=ftol, gtol=gtol,
                            xtol=xtol)  # fmt: skip
        assert_allclose(res.x, [1, 1])


# ----------------------------------------------------------------------------- BoundsMixin


def test_bounds_inconsistent_infeasible_wrong():
    for bounds in [(10.0, 0.0), (3.0, 4), (1.0, 2, 3), (1.0, [2.0, 3.0])]:
        with pytest.raises(ValueError):
            least_squares(fun_trivial, 2.0, bounds=bounds)
    with pytest.raises(ValueError):  # a 1-D array is not broadcast
        least_squares(fun_rosenbrock, [1.0, 2.0], bounds=([0.0], [3.0, 4.0]))


@pytest.mark.parametrize("jac", [*JACS, jac_trivial])
def test_in_bounds(jac):
    res = least_squares(fun_trivial, 2.0, jac=jac, bounds=(-1.0, 3.0))
    assert_allclose(res.x, 0.0, atol=1e-4)
    assert_equal(res.active_mask, [0])
    assert -1 <= res.x[0] <= 3
    res = least_squares(fun_trivial, 2.0, jac=jac, bounds=(0.5, 3.0))
    assert_allclose(res.x, 0.5, atol=1e-4)
    assert_equal(res.active_mask, [-1])
    assert 0.5 <= res.x[0] <= 3


@pytest.mark.parametrize("jac", [*JACS, jac_2d_trivial])
@pytest.mark.parametrize("make", [lambda lb, ub: (lb, ub), Bounds])
def test_bounds_shape(jac, make):
    x0 = [1.0, 1.0]
    res = least_squares(fun_2d_trivial, x0, jac=jac)
    assert_allclose(res.x, [0.0, 0.0])
    res = least_squares(fun_2d_trivial, x0, jac=jac, bounds=make(0.5, [2.0, 2.0]))
    assert_allclose(res.x, [0.5, 0.5])
    res = least_squares(fun_2d_trivial, x0, jac=jac, bounds=make([0.3, 0.2], 3.0))
    assert_allclose(res.x, [0.3, 0.2])
    res = least_squares(fun_2d_trivial, x0, jac=jac, bounds=make([-1, 0.5], [1.0, 3.0]))
    assert_allclose(res.x, [0.0, 0.5], atol=1e-5)


def test_bounds_instances():
    assert_allclose(least_squares(fun_trivial, 0.5, bounds=Bounds()).x, 0.0, atol=1e-4)
    assert_allclose(least_squares(fun_trivial, 3.0, bounds=Bounds(lb=1.0)).x, 1.0, atol=1e-4)
    assert_allclose(least_squares(fun_trivial, 0.5, bounds=Bounds(lb=-1.0, ub=1.0)).x, 0.0,
                    atol=1e-4)  # fmt: skip
    assert_allclose(least_squares(fun_trivial, -3.0, bounds=Bounds(ub=-1.0)).x, -1.0, atol=1e-4)
    res = least_squares(fun_2d_trivial, [0.5, 0.5], bounds=Bounds(lb=[-1.0, -1.0], ub=1.0))
    assert_allclose(res.x, [0.0, 0.0], atol=1e-5)
    res = least_squares(fun_2d_trivial, [0.5, 0.5], bounds=Bounds(lb=[0.1, 0.1]))
    assert_allclose(res.x, [0.1, 0.1], atol=1e-5)


def test_rosenbrock_bounds():
    problems = [
        ([-2.0, 1.0], ([-np.inf, -1.5], np.inf)),
        ([2.0, 2.0], ([-np.inf, 1.5], np.inf)),
        ([-2.0, 2.0], ([-np.inf, 1.5], np.inf)),
        ([0.0, 2.0], ([-np.inf, 1.5], [1.0, np.inf])),
        ([2.0, 2.0], ([1.0, 1.5], [3.0, 3.0])),
        ([-1.2, 1.0], ([-50.0, 0.0], [0.5, 100])),
    ]
    for (x0, bounds), jac, x_scale in product(problems, [*JACS, jac_rosenbrock],
                                              [1.0, [1.0, 0.5], "jac"]):  # fmt: skip
        res = least_squares(fun_rosenbrock, x0, jac, bounds, x_scale=x_scale)
        assert_allclose(res.optimality, 0.0, atol=1e-5)


# ----------------------------------------------------------------------------- SparseMixin


def test_sparse_equivalence_and_solver_selection():
    sparse, dense = BroydenTridiagonal(mode="sparse"), BroydenTridiagonal(mode="dense")
    res_sparse = least_squares(sparse.fun, sparse.x0, jac=sparse.jac)
    res_dense = least_squares(dense.fun, dense.x0, jac=sparse.jac)
    assert_equal(res_sparse.nfev, res_dense.nfev)
    assert_allclose(res_sparse.x, res_dense.x, atol=1e-20)
    assert_allclose(res_sparse.cost, 0, atol=1e-20)
    res_dense = least_squares(dense.fun, dense.x0, jac=dense.jac)
    assert_allclose(res_dense.cost, 0, atol=1e-20)
    assert issparse(res_sparse.jac) and isinstance(res_dense.jac, np.ndarray)


def test_sparse_with_bounds():  # the jac_sparsity=None half
    p = BroydenTridiagonal()
    for jac in [p.jac, *JACS]:
        for bounds in [(p.lb, np.inf), (-np.inf, p.ub), (p.lb, p.ub)]:
            res = least_squares(p.fun, p.x0, jac, bounds=bounds)
            assert_allclose(res.optimality, 0, atol=1e-10)


def test_linear_operator_and_jac_scaling():
    p = BroydenTridiagonal(mode="operator")
    assert_allclose(least_squares(p.fun, p.x0, p.jac).cost, 0.0, atol=1e-20)
    assert_allclose(least_squares(p.fun, p.x0, p.jac, x_scale="jac").cost, 0.0, atol=1e-20)
    p = BroydenTridiagonal()
    assert_allclose(least_squares(p.fun, p.x0, p.jac, x_scale="jac").cost, 0.0, atol=1e-20)


# ----------------------------------------------------------------------------- LossFunctionMixin


def test_loss_options_and_fun():
    for loss in LOSSES:
        res = least_squares(fun_trivial, 2.0, loss=loss)
        assert_allclose(res.x, 0, atol=1e-15)
        assert_equal(res.fun, fun_trivial(res.x))  # the residuals, not scaled by the loss
    with pytest.raises(ValueError):
        least_squares(fun_trivial, 2.0, loss="hinge")


def test_loss_grad():  # the true gradient of the cost; max_nfev=1 stays at x0
    x = np.array([2.0])
    f = x**2 + 5
    expected = {"linear": 2 * x * f, "huber": 2 * x, "soft_l1": 2 * x * f / (1 + f**2) ** 0.5,
                "cauchy": 2 * x * f / (1 + f**2), "arctan": 2 * x * f / (1 + f**4),
                cubic_soft_l1: 2 * x * f / (1 + f**2) ** (2 / 3)}  # fmt: skip
    for loss, grad in expected.items():
        res = least_squares(fun_trivial, x, jac_trivial, loss=loss, max_nfev=1)
        assert_allclose(res.grad, grad)


def test_loss_jac():  # jac.T @ jac is the Gauss-Newton Hessian of the cost, EPS-floored
    x, f = 2.0, 2.0**2 + 5

    def jac(loss, f_scale=1.0):
        return least_squares(fun_trivial, x, jac_trivial, loss=loss, f_scale=f_scale,
                             max_nfev=1).jac  # fmt: skip

    assert_equal(jac("linear"), 2 * x)
    assert_equal(jac("huber"), 2 * x * EPS**0.5)
    assert_equal(jac("huber", 10), 2 * x)
    assert_allclose(jac("soft_l1"), 2 * x * (1 + f**2) ** -0.75)
    assert_allclose(jac("cauchy"), 2 * x * EPS**0.5)
    fs = f / 10
    assert_allclose(jac("cauchy", 10), 2 * x * (1 - fs**2) ** 0.5 / (1 + fs**2))
    assert_allclose(jac("arctan"), 2 * x * EPS**0.5)
    fs = f / 20
    assert_allclose(jac("arctan", 20.0), 2 * x * (1 - 3 * fs**4) ** 0.5 / (1 + fs**4))
    assert_allclose(jac(cubic_soft_l1), 2 * x * EPS**0.5)
    fs = f / 6
    assert_allclose(jac(cubic_soft_l1, 6), 2 * x * (1 - fs**2 / 3) ** 0.5 * (1 + fs**2) ** (-5 / 6))


def test_loss_robustness():
    for noise in [0.1, 1.0]:
        p = ExponentialFittingProblem(1, 0.1, noise, rng=12220903)
        for jac in [*JACS, p.jac]:
            res_lsq = least_squares(p.fun, p.p0, jac=jac)
            assert_allclose(res_lsq.optimality, 0, atol=1e-2)
            for loss in LOSSES[1:]:
                res = least_squares(p.fun, p.p0, jac=jac, loss=loss, f_scale=noise)
                assert_allclose(res.optimality, 0, atol=1e-2)
                assert np.linalg.norm(res.x - p.p_opt) < np.linalg.norm(res_lsq.x - p.p_opt)


# ----------------------------------------------------------------------------- module level


def test_callback():
    results = []

    def with_result(intermediate_result: OptimizeResult):
        results.append(intermediate_result)

    def with_x(x):
        results.append(OptimizeResult(nit=1, x=x))
        return False

    def with_result_stop(intermediate_result: OptimizeResult):
        results.append(intermediate_result)
        raise StopIteration

    def with_x_stop(x):
        results.append(OptimizeResult(nit=1, x=x))
        raise StopIteration

    calls = [lambda cb: least_squares(fun_trivial, 5.0, callback=cb),
             lambda cb: least_squares(fun_trivial, 5.0, bounds=(-8.0, 8.0), callback=cb),
             lambda cb: least_squares(fun_trivial, 5.0, method="dogbox", callback=cb)]
    for callback, call in product([with_result, with_x], calls):
        results.clear()
        res = call(callback)
        assert len(results) > 0 and results[-1].nit > 0 and res.status != -2
        assert_allclose(results[-1].x, res.x)
    for callback, call in product([with_result_stop, with_x_stop], calls):
        results.clear()
        res = call(callback)
        assert len(results) > 0 and results[-1].nit == 1 and res.status == -2


def test_fp32_gh12991():
    rng = np.random.default_rng(1978)
    x = np.linspace(0, 1, 100, dtype=np.float32)
    y = rng.random(size=100, dtype=np.float32)

    def err(p, x, y):
        return ((p[0] + p[1] * x).astype(np.float32) - y).astype(np.float32)

    res = least_squares(err, [-1.0, -1.0], args=(x, y))
    assert res.nfev > 2  # the float32 difference step is not lost in rounding
    # scipy compares with COBYQA's minimum of the float32 MSE (itself 7e-5 from the least-squares
    # line); we compare with the line, computed in float64.
    exact = np.polynomial.polynomial.polyfit(x.astype(float), y.astype(float), 1)
    assert_allclose(res.x, exact, atol=9e-5)


def test_gh_18793_and_19351():
    answer, x0 = 1e-12, 1.1e-12
    res = least_squares(lambda x: (x - answer) ** 2, x0=x0, gtol=1e-15, bounds=(0, np.inf))
    assert res.success
    assert abs(res.x[0] - answer) <= abs(x0 - answer)


def test_gh_19103():  # a start on the boundary
    ydata = np.array([0.0] * 66 + [
        1., 0., 0., 0., 0., 0., 1., 1., 0., 0., 1., 1., 1., 1., 0., 0., 0., 1., 0., 0., 2., 1.,
        0., 3., 1., 6., 5., 0., 0., 2., 8., 4., 4., 6., 9., 7., 2., 7., 8., 2., 13., 9., 8., 11.,
        10., 13., 14., 19., 11., 15., 18., 26., 19., 32., 29., 28., 36., 32., 35., 36., 43., 52.,
        32., 58., 56., 52., 67., 53., 72., 88., 77., 95., 94., 84., 86., 101., 107., 108., 118.,
        96., 115., 138., 137.])  # fmt: skip
    xdata = np.arange(0, ydata.size) * 0.1

    def exponential_wrapped(params):
        A, B, x0 = params
        return A * np.exp(B * (xdata - x0)) - ydata

    res = least_squares(exponential_wrapped, [0.01, 1.0, 5.0],
                        bounds=((0.01, 0, 0), (np.inf, 10, 20.9)))  # fmt: skip
    assert res.success
