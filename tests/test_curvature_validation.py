"""Curvature: every bad argument raises ValueError naming it (and the allowed values)."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import mlp
from deltaprop.curvature import (
    check_hessian,
    check_jacobian,
    gauss_newton,
    gauss_newton_dual,
    gauss_newton_operator,
    hessian,
    hessian_diagonal,
    hessian_eigenvalues,
    hessian_fd,
    hessian_operator,
    hessian_trace,
    hvp,
    inverse_hessian_outer,
    jacobian_inputs,
    jacobian_params,
    residual_jacobian,
    vjp_inputs,
)


@pytest.fixture
def problem():
    net = mlp([2, 3, 2], seed=0)  # P = 17
    rng = np.random.default_rng(0)
    return net, rng.normal(size=(4, 2)), rng.normal(size=(4, 2))


#: Every door that takes (net, X, T).
DATA_DOORS = [
    hessian, gauss_newton, gauss_newton_dual, hessian_diagonal, hessian_fd, check_hessian,
    hessian_operator, gauss_newton_operator, hessian_eigenvalues, hessian_trace,
    residual_jacobian, lambda net, X, T: hvp(net, X, T, np.zeros(17)),
    lambda net, X, T: inverse_hessian_outer(net, X, T, 1.0),
]


@pytest.mark.parametrize("door", DATA_DOORS)
def test_inputs_and_targets_are_validated_at_every_door(door, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match="`X` has 3 columns but the network has 2 inputs"):
        door(net, np.zeros((4, 3)), T)
    with pytest.raises(ValueError, match=r"`T` has 3 rows but X has 4 rows"):
        door(net, X, T[:3])
    with pytest.raises(ValueError, match=r"`T` has a non-finite value"):
        door(net, X, np.where(T > 0, np.nan, T))


@pytest.mark.parametrize("door", [jacobian_inputs, jacobian_params, check_jacobian])
def test_jacobian_doors_validate_X(door, problem):
    net, _, _ = problem
    with pytest.raises(ValueError, match=r"`X` must be 2-D"):
        door(net, np.zeros(2))


@pytest.mark.parametrize("V", [np.zeros(16), np.zeros((18, 2)), np.zeros((17, 2, 1)), 3.0])
def test_hvp_rejects_directions_of_the_wrong_shape(V, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`V` must have shape \(P,\) or \(P, k\) with P = 17"):
        hvp(net, X, T, V)


def test_hvp_rejects_non_finite_or_non_numeric_directions(problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`V` has a non-finite value"):
        hvp(net, X, T, np.full(17, np.inf))
    with pytest.raises(ValueError, match=r"`V` must hold real numbers"):
        hvp(net, X, T, np.array(["a"] * 17))


def test_hvp_accepts_zero_columns_and_lists(problem):
    net, X, T = problem
    assert hvp(net, X, T, np.zeros((17, 0))).shape == (17, 0)
    assert hvp(net, X, T, [0.0] * 17).shape == (17,)


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, True, "2"])
@pytest.mark.parametrize("door", [gauss_newton, hessian, hessian_diagonal,
                                  lambda net, X, T, chunk_size: jacobian_params(net, X, chunk_size),
                                  lambda net, X, T, chunk_size:
                                  inverse_hessian_outer(net, X, T, 1.0, chunk_size)])
def test_chunk_size_must_be_a_positive_integer(door, chunk_size, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`chunk_size` must be a positive integer or None; got"):
        door(net, X, T, chunk_size=chunk_size)


def test_unknown_method_names_list_the_known_ones(problem):
    net, X, T = problem
    known = r"'exact', 'gauss-newton', 'becker-lecun', 'hutchinson'; got 'lecun'"
    with pytest.raises(ValueError, match=rf"`method` must be one of {known}"):
        hessian_diagonal(net, X, T, method="lecun")
    with pytest.raises(ValueError, match=r"`wrt` must be one of 'params', 'inputs'; got 'x'"):
        check_jacobian(net, X, wrt="x")
    with pytest.raises(ValueError, match=r"`which` must be one of 'LA', 'SA', 'LM', 'SM', 'BE'"):
        hessian_eigenvalues(net, X, T, which="la")


@pytest.mark.parametrize("n_samples", [0, -3, 2.0, None])
def test_n_samples_must_be_a_positive_integer(n_samples, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`n_samples` must be a positive integer"):
        hessian_trace(net, X, T, n_samples=n_samples)
    with pytest.raises(ValueError, match=r"`n_samples` must be a positive integer"):
        hessian_diagonal(net, X, T, method="hutchinson", n_samples=n_samples)


@pytest.mark.parametrize("k", [0, 18, 2.5])
def test_eigenvalue_count_must_fit_P(k, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`k` must be"):
        hessian_eigenvalues(net, X, T, k=k)
    if k == 18:
        with pytest.raises(ValueError, match=r"at most P = 17 \(the number of parameters\)"):
            hessian_eigenvalues(net, X, T, k=k)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan, "1", True])
def test_positive_numbers(bad, problem):
    net, X, T = problem
    with pytest.raises(ValueError, match=r"`alpha` must be a positive number"):
        inverse_hessian_outer(net, X, T, bad)
    with pytest.raises(ValueError, match=r"`eps` must be a positive number"):
        hessian_fd(net, X, T, eps=bad)
    with pytest.raises(ValueError, match=r"`eps` must be a positive number"):
        check_jacobian(net, X, eps=bad)
    with pytest.raises(ValueError, match=r"`mu` must be a positive number"):
        gauss_newton_dual(net, X, T).step(bad)


def test_vjp_inputs_validates_G(problem):
    net, X, _ = problem
    with pytest.raises(ValueError, match=r"`G` must have shape \(4, 2\) .*got shape \(4, 3\)"):
        vjp_inputs(net, X, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"`G` has a non-finite value"):
        vjp_inputs(net, X, np.full((4, 2), np.nan))


@pytest.mark.parametrize(("loss", "output"), [("bce", "sigmoid"), ("ce", "softmax")])
def test_residual_jacobian_needs_a_least_squares_loss(loss, output):
    net = mlp([2, 3, 2], output=output, loss=loss, seed=0)
    with pytest.raises(ValueError, match=rf"needs loss 'sse' or 'mse'.*loss '{loss}'"):
        residual_jacobian(net, np.zeros((2, 2)), np.array([[0.0, 1.0], [1.0, 0.0]]))
