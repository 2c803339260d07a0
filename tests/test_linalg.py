"""Tests of deltaprop.linalg: damped solves, Marquardt's diagonal, μ updates, trust regions."""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop
from deltaprop.linalg import (
    damped_step_search,
    marquardt_diagonal,
    model_reduction,
    solve_damped,
    svd_trust_region_step,
    trust_region_step,
    update_mu,
    update_radius,
)


def _problem(rng: np.random.Generator, m: int = 12, n: int = 4):
    """J (m, n) with columns of very different scales, r (m,), and a scaling D (n,)."""
    J = rng.standard_normal((m, n)) * np.logspace(-2, 2, n)
    return J, rng.standard_normal(m), rng.uniform(0.5, 2.0, n) * np.logspace(-2, 2, n)


def _svd_step(J, r, D, radius, mu=0.0):
    U, s, Vt = np.linalg.svd(J / D, full_matrices=False)
    return svd_trust_region_step(U.T @ r, s, Vt, D, radius, mu)


# ----------------------------------------------------------------------------- damped solves


def test_solve_damped_solves_the_damped_normal_equations(rng: np.random.Generator) -> None:
    J, r = rng.standard_normal((10, 4)), rng.standard_normal(10)
    D, mu = rng.uniform(0.5, 2.0, 4), 0.3
    step, ok = solve_damped(J.T @ J, J.T @ r, mu, D)
    assert ok
    np.testing.assert_allclose((J.T @ J + mu * np.diag(D)) @ step, -J.T @ r, atol=1e-12)
    step32, ok = solve_damped((J.T @ J).astype(np.float32), (J.T @ r).astype(np.float32), mu, D)
    assert ok and step32.dtype == np.float32
    np.testing.assert_allclose(step32, step, rtol=1e-4, atol=1e-5)
    _, ok = solve_damped(np.full((2, 2), np.nan), np.ones(2), 1.0, np.ones(2))
    assert not ok


def test_solve_damped_work_buffer_gives_the_same_step(rng: np.random.Generator) -> None:
    J, r = rng.standard_normal((10, 4)), rng.standard_normal(10)
    JTJ, D = J.T @ J, rng.uniform(0.5, 2.0, 4)
    work = np.empty((4, 4), order="F")
    for mu in (0.3, 3.0):  # the buffer is reused: each solve starts from JTJ again
        step, ok = solve_damped(JTJ, J.T @ r, mu, D, work=work)
        assert ok
        np.testing.assert_array_equal(step, solve_damped(JTJ, J.T @ r, mu, D)[0])
    np.testing.assert_array_equal(solve_damped(JTJ, J.T @ r, 0.3, 1.0)[0],
                                  solve_damped(JTJ, J.T @ r, 0.3, np.ones(4))[0])
    with pytest.raises(ValueError, match="Fortran"):
        solve_damped(JTJ, J.T @ r, 0.3, D, work=np.empty((4, 4)))


def test_marquardt_diagonal_keeps_running_max_and_floor() -> None:
    D = marquardt_diagonal(np.array([4.0, 1.0, 0.0]))
    np.testing.assert_allclose(D, [4.0, 1.0, 4e-10])  # an always-zero column is floored
    D = marquardt_diagonal(np.array([2.0, 3.0, 0.0]), previous=D)
    np.testing.assert_allclose(D, [4.0, 3.0, 4e-10])  # a shrinking column keeps its damping
    np.testing.assert_array_equal(marquardt_diagonal(np.zeros(3)), np.ones(3))
    assert marquardt_diagonal(np.ones(2, dtype=np.float32)).dtype == np.float32


def test_update_mu() -> None:
    assert update_mu(1.0, True) == pytest.approx(0.1)
    assert update_mu(1.0, False) == pytest.approx(10.0)
    assert update_mu(1.0, True, mu_dec=0.5) == 0.5 and update_mu(1.0, False, mu_inc=3.0) == 3.0
    assert update_mu(1e-300, True) > 0  # never underflows to zero


def test_damped_step_search_raises_mu_until_the_cost_falls() -> None:
    # cost(x) = (x - 3)^2 from x = 0 with a "Gauss-Newton" step 100 times too long: the step
    # -g / (1 + mu) with g = -6 * 100 is accepted once mu has reduced it below 6.
    steps = {}

    def solve(mu):
        steps[mu] = 600.0 / (1.0 + mu)
        return np.array([steps[mu]])

    found = damped_step_search(solve, lambda s: (s[0] - 3.0) ** 2, 9.0, mu=1.0)
    # mu = 1, 10: steps 300 and 54.5 overshoot; mu = 100: 5.94, cost 8.65 < 9
    assert found.mu == 100.0 and found.next_mu == pytest.approx(10.0)
    assert found.n_trials == 3 and found.value == pytest.approx((600 / 101 - 3) ** 2)
    failed = damped_step_search(lambda mu: None, lambda s: 0.0, 9.0, mu=1.0, mu_max=100.0)
    assert failed.step is None and failed.value == 9.0 and failed.n_trials == 0


# ----------------------------------------------------------------------------- trust region


@pytest.mark.parametrize("radius", [1e3, 1.0, 1e-2, 1e-5])
def test_trust_region_steps_solve_the_damped_system_for_the_radius(
        rng: np.random.Generator, radius: float) -> None:  # fmt: skip
    J, r, D = _problem(rng)
    A, g = J.T @ J, J.T @ r
    for tr in (_svd_step(J, r, D, radius), trust_region_step(A, g, D, radius)):
        np.testing.assert_allclose((A + tr.mu * np.diag(D**2)) @ tr.step, -g,
                                   rtol=1e-8, atol=1e-10 * np.abs(g).max())  # fmt: skip
        assert tr.scaled_norm == pytest.approx(np.linalg.norm(D * tr.step))
        if tr.mu > 0:  # on the boundary, to Moré's 10 %
            assert abs(tr.scaled_norm - radius) <= 0.1 * radius
        else:  # the Gauss-Newton step, inside
            assert tr.scaled_norm <= 1.1 * radius
            np.testing.assert_allclose(tr.step, np.linalg.lstsq(J, -r, rcond=None)[0], rtol=1e-8)
    assert _svd_step(J, r, D, 1e-2).mu == pytest.approx(trust_region_step(A, g, D, 1e-2).mu,
                                                        rel=1e-6)  # fmt: skip


def test_trust_region_step_minimises_the_model_over_its_ball(rng: np.random.Generator) -> None:
    J, r, D = _problem(rng)
    tr = _svd_step(J, r, D, 0.05)
    assert tr.mu > 0

    def model(step):
        return 0.5 * np.sum((r + J @ step) ** 2)

    best = model(tr.step)
    for _ in range(200):  # random points of the same scaled norm are never better
        q = rng.standard_normal(J.shape[1])
        other = q / np.linalg.norm(q) * tr.scaled_norm / D
        assert model(other) >= best - 1e-12 * abs(best)


def test_trust_region_steps_with_a_rank_deficient_jacobian(rng: np.random.Generator) -> None:
    J, r, D = _problem(rng, n=3)
    J = np.column_stack([J, J[:, 0]])  # column 3 duplicates column 0: JᵀJ is singular
    D = np.append(D, D[0])
    wide = _svd_step(J, r, D, 1e6)  # the minimum-norm Gauss-Newton step
    assert wide.mu == 0.0
    np.testing.assert_allclose(D * wide.step, np.linalg.pinv(J / D) @ -r, rtol=1e-8)
    small = trust_region_step(J.T @ J, J.T @ r, D, 1e-3)  # no Cholesky at mu = 0: mu > 0
    assert small.mu > 0 and abs(small.scaled_norm - 1e-3) <= 1e-4
    assert abs(_svd_step(J, r, D, 1e-3).scaled_norm - 1e-3) <= 1e-4


def test_trust_region_step_float32_and_work_buffer(rng: np.random.Generator) -> None:
    J, r, D = _problem(rng)
    A, g = J.T @ J, J.T @ r
    ref = trust_region_step(A, g, D, 0.1)
    work = np.empty((4, 4), dtype=np.float32, order="F")
    tr = trust_region_step(A.astype(np.float32), g.astype(np.float32), D, 0.1, work=work)
    assert tr.step.dtype == np.float32
    np.testing.assert_allclose(tr.step, ref.step, rtol=2e-3)
    upper = np.triu(A)  # only the upper triangle is read
    np.testing.assert_array_equal(trust_region_step(upper, g, D, 0.1).step, ref.step)


def test_model_reduction_is_the_decrease_of_the_linearised_cost(rng: np.random.Generator) -> None:
    J, r, _ = _problem(rng)
    step = rng.standard_normal(J.shape[1])
    expected = 0.5 * r @ r - 0.5 * np.sum((r + J @ step) ** 2)
    assert model_reduction(np.triu(J.T @ J), J.T @ r, step) == pytest.approx(expected)


def test_update_radius_follows_minpack() -> None:
    # rho >= 3/4, or a Gauss-Newton step (mu = 0): radius = 2 ||D step||, mu halved
    assert update_radius(1.0, 0.4, 0.9, 0.8, 0.5, -1.0) == (1.6, 0.2)
    assert update_radius(1.0, 0.0, 0.5, 0.3, 0.5, -1.0) == (0.6, 0.0)
    # 1/4 < rho < 3/4 with mu > 0: unchanged
    assert update_radius(1.0, 0.4, 0.5, 0.8, 0.5, -1.0) == (1.0, 0.4)
    # rho <= 1/4 and the cost fell: halve min(radius, 10 ||D step||), double mu
    assert update_radius(1.0, 0.4, 0.1, 0.05, 0.01, -1.0) == (0.25, 0.8)
    # the cost rose: t from the quadratic through C, C' and C(1): 0.5 * -1 / (-1 - 1) = 0.25
    radius, mu = update_radius(1.0, 0.4, -0.5, 0.8, -1.0, -1.0)
    assert radius == pytest.approx(0.25) and mu == pytest.approx(1.6)
    # ... clipped at 0.1, and 0.1 for a 100-fold growth or a non-finite trial
    assert update_radius(1.0, 0.4, -50.0, 0.8, -50.0, -0.1)[0] == pytest.approx(0.1)
    assert update_radius(1.0, 0.4, -np.inf, 0.8, -np.inf, -1.0)[0] == pytest.approx(0.1)


def test_trust_region_step_on_a_network_gauss_newton_matrix(rng: np.random.Generator) -> None:
    # What network LM has: G = JᵀJ (P × P, Fortran order, upper triangle) and g for "sse",
    # and a trial loss. The predicted reduction matches the loss's to second order.
    net = deltaprop.mlp([2, 6, 1], loss="sse", seed=0)
    X, T = rng.uniform(-1, 1, (40, 2)), rng.uniform(-1, 1, (40, 1))
    G, g = deltaprop.gauss_newton(net, X, T)
    upper = np.asfortranarray(np.triu(G))
    D = np.sqrt(marquardt_diagonal(np.diag(G)))
    w0, loss0 = net.params.copy(), net.loss(X, T)
    for radius in (1e-1, 1e-3):
        tr = trust_region_step(upper, g, D, radius, work=np.empty_like(upper, order="F"))
        np.testing.assert_allclose((G + tr.mu * np.diag(D**2)) @ tr.step, -g, atol=1e-10)
        predicted = model_reduction(upper, g, tr.step)
        net.params[:] = w0 + tr.step
        actual = loss0 - net.loss(X, T)
        net.params[:] = w0
        assert predicted > 0 and abs(actual - predicted) <= 0.3 * predicted
        radius_next, _ = update_radius(radius, tr.mu, actual / predicted, tr.scaled_norm,
                                       actual / loss0, float(g @ tr.step) / loss0)  # fmt: skip
        assert radius_next >= radius  # a good model keeps or grows the region
