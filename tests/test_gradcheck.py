"""The central-difference checker itself (Bishop & Bishop 2024 §8.1.4): it passes correct
gradients, catches and locates wrong ones, and leaves the network untouched.

(Gradient checks over random architectures live in test_network.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import GradientCheck, check_gradient, mlp
from deltaprop.gradcheck import DEFAULT_EPS, central_differences, compare


@pytest.fixture
def problem(rng):
    net = mlp([3, 4, 2], activation="tanh", seed=0)
    net.params[:] = rng.normal(scale=0.8, size=net.n_params)
    return net, rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


def test_default_eps_is_cube_root_of_machine_epsilon():
    assert DEFAULT_EPS == pytest.approx(np.finfo(np.float64).eps ** (1 / 3), rel=1e-15)
    assert 6e-6 < DEFAULT_EPS < 6.1e-6


def test_report_for_a_correct_gradient(problem):
    net, X, T = problem
    params = net.params.copy()
    report = check_gradient(net, X, T)
    assert isinstance(report, GradientCheck)
    assert report.max_rel_error < 1e-8 and report.max_abs_error < 1e-8
    np.testing.assert_array_equal(report.analytic, net.gradient(X, T)[1])
    assert report.numeric.shape == (net.n_params,)
    diff = np.abs(report.analytic - report.numeric)
    assert report.worst_index == int(np.argmax(diff))
    assert report.max_abs_error == diff.max()
    assert report.max_rel_error == pytest.approx(
        diff.max() / max(np.abs(report.analytic).max(), np.abs(report.numeric).max()))
    assert report.worst_param == net.describe_param(report.worst_index)
    assert report.eps == pytest.approx(DEFAULT_EPS * max(1.0, np.abs(params).max()))
    np.testing.assert_array_equal(net.params, params)  # the network is left as it was


def test_step_is_scaled_by_the_largest_weight(problem):
    net, X, T = problem
    net.params[:] *= 0.1  # all |w| < 1: the step is eps itself
    assert check_gradient(net, X, T, eps=1e-5).eps == 1e-5
    net.params[3] = 4.0
    assert check_gradient(net, X, T, eps=1e-5).eps == pytest.approx(4e-5)


@pytest.mark.parametrize("index", [0, 7, 16, 21])
def test_a_wrong_gradient_is_caught_and_located(problem, index):
    net, X, T = problem
    true_gradient = net.gradient

    def wrong_gradient(X_, T_):
        loss, grad = true_gradient(X_, T_)
        grad[index] += 0.05
        return loss, grad

    net.gradient = wrong_gradient  # shadow the method on this instance only
    report = check_gradient(net, X, T)
    assert report.worst_index == index
    assert report.worst_param == net.describe_param(index)
    assert report.max_abs_error == pytest.approx(0.05, rel=1e-6)
    assert report.max_rel_error > 1e-3
    directional = check_gradient(net, X, T, directions=4)
    assert directional.max_rel_error > 1e-3


def test_worst_param_names_a_layer(problem):
    net, X, T = problem
    true_gradient = net.gradient

    def wrong_gradient(X_, T_):
        loss, grad = true_gradient(X_, T_)
        grad[-1] = 10.0
        return loss, grad

    net.gradient = wrong_gradient
    assert check_gradient(net, X, T).worst_param == "layer 1 b[1]"


def test_random_directions(problem):
    net, X, T = problem
    report = check_gradient(net, X, T, directions=6, seed=3)
    assert report.analytic.shape == report.numeric.shape == (6,)
    assert report.max_rel_error < 1e-8
    assert report.worst_param == f"direction {report.worst_index}"
    # the directions are unit vectors drawn from the seed: gᵀv for those v
    V = np.random.default_rng(3).normal(size=(6, net.n_params))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    np.testing.assert_allclose(report.analytic, V @ net.gradient(X, T)[1], rtol=1e-13)
    again = check_gradient(net, X, T, directions=6, seed=3)
    np.testing.assert_array_equal(again.numeric, report.numeric)


def test_float32_network_is_checked_on_a_float64_copy(rng):
    net = mlp([2, 5, 1], activation="sigmoid", dtype=np.float32, seed=0)
    X = rng.normal(size=(4, 2)).astype(np.float32)
    T = rng.normal(size=(4, 1)).astype(np.float32)
    params = net.params.copy()
    report = check_gradient(net, X, T)
    assert report.analytic.dtype == np.float32
    assert report.numeric.dtype == np.float64
    assert report.max_rel_error < 1e-4  # float32 round-off only (see TOL32 in test_network)
    assert net.dtype == np.float32 and net.params.dtype == np.float32
    np.testing.assert_array_equal(net.params, params)


def test_integer_labels_and_every_head(rng):
    X = rng.normal(size=(6, 2))
    cases = [("identity", "sse", rng.normal(size=(6, 3))),
             ("sigmoid", "bce", rng.uniform(size=(6, 3))),
             ("softmax", "ce", rng.integers(0, 3, size=6))]
    for output, loss, T in cases:
        net = mlp([2, 4, 3], output=output, loss=loss, seed=1)
        assert check_gradient(net, X, T).max_rel_error < 1e-7, loss


def test_repr(problem):
    net, X, T = problem
    text = repr(check_gradient(net, X, T))
    assert text.startswith("GradientCheck(max_rel_error=")
    assert "worst='layer " in text and "eps=" in text
    assert "analytic" not in text  # arrays are kept out of the repr


# ---------------------------------------------------------------------------- helpers
def test_compare():
    max_abs, rel, worst = compare(np.array([1.0, -4.0, 2.0]), np.array([1.0, -3.5, 2.1]))
    assert (max_abs, worst) == (0.5, 1)
    assert rel == pytest.approx(0.5 / 4.0)
    assert compare(np.zeros(3), np.zeros(3)) == (0.0, 0.0, 0)
    assert compare(np.zeros(2), np.array([0.0, 1e-3]))[1] == pytest.approx(1.0)
    assert compare(np.array([]), np.array([])) == (0.0, 0.0, 0)
    assert compare(np.array([1.0], np.float32), np.array([1.0]))[0] == 0.0


def test_central_differences_of_a_quadratic_are_exact():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])

    def fun(x):
        return 0.5 * x @ A @ x

    x = np.array([0.3, -0.7])
    x_before = x.copy()
    np.testing.assert_allclose(central_differences(fun, x, 1e-3), A @ x, rtol=1e-10)
    V = np.array([[1.0, 0.0], [0.6, 0.8]])
    np.testing.assert_allclose(central_differences(fun, x, 1e-3, V), V @ (A @ x), rtol=1e-10)
    np.testing.assert_array_equal(x, x_before)


def test_central_differences_error_is_second_order():
    x = np.array([0.7])
    def sin(v):
        return float(np.sin(v[0]))

    errors = [abs(central_differences(sin, x, h)[0] - np.cos(0.7)) for h in (1e-2, 1e-3)]
    assert errors[0] / errors[1] == pytest.approx(100, rel=0.01)  # O(ε²) truncation
