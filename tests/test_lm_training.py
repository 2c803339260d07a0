"""Levenberg–Marquardt training (trainlm) and Bayesian regularisation (trainbr)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

import deltaprop
from deltaprop import lm_training
from deltaprop.curvature import residual_jacobian
from deltaprop.lm_training import LevenbergMarquardt
from deltaprop.optimizers import Adam, TrainingProblem
from deltaprop.training import train

GOAL = 0.011  # MSE goal on the sine problem: the noise variance is 0.01


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread: LM is BLAS-3 bound, and threads spinning on busy cores cost 10-50×."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def sine():
    """y = sin(3x) + 0.1 ε, x ~ U[-1, 1], N = 2000."""
    data = deltaprop.datasets.sine(2000, 0.1, seed=0)
    return data.X, data.y


def noisy_sine(n: int, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    return x, np.sin(3 * x) + noise * rng.standard_normal((n, 1))


def small_regression(rng: np.random.Generator, n: int = 40, n_out: int = 2):
    X = rng.uniform(-1, 1, (n, 2))
    T = np.column_stack([np.sin(2 * X[:, 0]) * X[:, 1], np.cos(X[:, 0] + X[:, 1])])[:, :n_out]
    return X, T


def relative_gap(a: list[float], b: list[float]) -> float:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b) / np.abs(b)))


# ---------------------------------------------------------------------- the sine benchmark
def test_sine_reaches_goal_within_30_epochs(sine):
    X, y = sine
    net = deltaprop.mlp([1, 20, 20, 1], seed=0)
    h = train(net, X, y, "lm", epochs=30, goal=GOAL)
    assert h.stop_reason == "goal reached"
    assert h.n_epochs <= 30 and h.loss[-1] <= GOAL
    assert h.optimizer.startswith("LevenbergMarquardt(")
    # no accepted step raises the loss
    assert np.all(np.diff(h.loss) <= 0)


def test_sine_fewer_epochs_and_less_time_than_adam(sine):
    X, y = sine
    base = deltaprop.mlp([1, 20, 20, 1], seed=0)
    start = time.perf_counter()  # single-threaded (fixture), as the probe measures
    h_lm = train(base.copy(), X, y, LevenbergMarquardt(), epochs=30, goal=GOAL)
    t_lm = time.perf_counter() - start
    start = time.perf_counter()
    h_adam = train(base.copy(), X, y, Adam(lr=1e-3), epochs=3000, goal=GOAL, max_time=5.0)
    t_adam = time.perf_counter() - start
    assert h_lm.stop_reason == "goal reached"
    adam_epochs = h_adam.n_epochs if h_adam.stop_reason == "goal reached" else math.inf
    assert h_lm.n_epochs < adam_epochs
    assert t_lm < t_adam, (t_lm, t_adam)


def test_history_records_mu(sine):
    X, y = sine
    h = train(deltaprop.mlp([1, 20, 20, 1], seed=1), X, y, "lm", epochs=8)
    mu = np.asarray(h.step[1:])
    assert math.isnan(h.step[0]) and np.all(mu > 0) and mu[0] == 1e-3
    # each epoch starts from the previous accepted μ times mu_dec, raised by mu_inc if rejected
    k = np.log10(mu[1:] / (mu[:-1] * 0.1))
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert np.all(np.round(k) >= 0)


def test_chunked_and_unchunked_trajectories_agree(sine):
    X, y = sine
    net = deltaprop.mlp([1, 20, 20, 1], seed=2)
    h1 = train(net.copy(), X, y, LevenbergMarquardt(chunk_size=100), epochs=10)
    h2 = train(net.copy(), X, y, LevenbergMarquardt(), epochs=10)
    # the sums of JᵀJ differ in order only; μ down to 1e-5 lets that rounding grow to ~1e-11
    assert relative_gap(h1.loss, h2.loss) < 1e-9
    assert relative_gap(h1.step[1:], h2.step[1:]) == 0


# ---------------------------------------------------------------------- the dual form
@pytest.mark.parametrize("options", [
    {}, {"l2": 1e-3}, {"damping": "marquardt"}, {"bayesian": True},
])
def test_dual_and_primal_trajectories_agree(rng, options):
    X, T = small_regression(rng, n=20)  # N·K = 40 < P = 77
    net = deltaprop.mlp([2, 15, 2], loss="sse", seed=1)
    assert T.size < net.n_params
    h_dual = train(net.copy(), X, T, LevenbergMarquardt(dual=True, **options), epochs=12)
    h_primal = train(net.copy(), X, T, LevenbergMarquardt(dual=False, **options), epochs=12)
    # the loss falls to ~1e-12 (interpolation): compare on the scale of the initial loss
    gap = np.abs(np.subtract(h_dual.loss, h_primal.loss)) / h_primal.loss[0]
    assert gap.max() < 1e-10
    assert h_dual.step == h_primal.step
    for key in h_primal.extras:
        assert relative_gap(h_dual.extras[key][1:], h_primal.extras[key][1:]) < 1e-7


def test_dual_form_is_chosen_when_there_are_fewer_residuals_than_weights(rng, monkeypatch):
    calls = []
    dual = lm_training.gauss_newton_dual
    monkeypatch.setattr(lm_training, "gauss_newton_dual", lambda *a: calls.append(1) or dual(*a))
    X, T = small_regression(rng, n=20)
    train(deltaprop.mlp([2, 15, 2], seed=1), X, T, "lm", epochs=2)  # 40 < 77
    assert len(calls) == 2
    train(deltaprop.mlp([2, 3, 2], seed=1), X, T, "lm", epochs=2)  # 40 > 17
    train(deltaprop.mlp([2, 15, 2], seed=1), X, T,
          LevenbergMarquardt(damping="marquardt", l2=1e-3), epochs=2)  # form does not apply
    assert len(calls) == 2


# ---------------------------------------------------------------------- losses and outputs
def test_multi_output_network_trains(rng):
    X, T = small_regression(rng, n=200)
    net = deltaprop.mlp([2, 10, 2], seed=0)
    h = train(net, X, T, "lm", epochs=30)
    assert np.all(np.diff(h.loss) <= 0)
    assert h.loss[-1] < 1e-3 * h.loss[0]


@pytest.mark.parametrize("loss, output", [("bce", "sigmoid"), ("ce", "softmax")])
def test_cross_entropy_networks_train_with_generalised_gauss_newton(rng, loss, output):
    X = rng.normal(size=(150, 2))
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    if loss == "bce":
        net, T = deltaprop.mlp([2, 8, 1], output="sigmoid", loss="bce", seed=0), labels
    else:
        net, T = deltaprop.mlp([2, 8, 2], output="softmax", loss="ce", seed=0), labels
    assert net.activation_names[-1] == output
    h = train(net, X, T, "lm", epochs=25)
    assert np.all(np.diff(h.loss) <= 0)
    assert h.loss[-1] < 0.2 * h.loss[0]
    accuracy = np.mean((net.forward(X)[:, 0] > 0.5) == labels) if loss == "bce" else \
        np.mean(net.forward(X).argmax(axis=1) == labels)
    assert accuracy > 0.95


def test_float32_network_trains(sine):
    X, y = sine
    net = deltaprop.mlp([1, 10, 1], seed=0, dtype=np.float32)
    h = train(net, X[:300], y[:300], "lm", epochs=15)
    assert net.params.dtype == np.float32
    assert np.all(np.diff(h.loss) <= 0) and h.loss[-1] < 0.05


# ---------------------------------------------------------------------- weight decay
def test_l2_matches_least_squares_on_augmented_residuals(rng):
    X, T = rng.uniform(-1, 1, (25, 1)), rng.normal(size=(25, 1))
    net = deltaprop.mlp([1, 3, 1], loss="sse", seed=4)
    l2, w0 = 0.05, net.params.copy()

    def residuals(w):
        net.params[:] = w
        r, _ = residual_jacobian(net, X, T)
        return np.concatenate([r, math.sqrt(l2) * w])

    def jacobian(w):
        net.params[:] = w
        _, J = residual_jacobian(net, X, T)
        return np.vstack([J, math.sqrt(l2) * np.eye(w.size)])

    ref = least_squares(residuals, w0, jacobian, method="lm", xtol=1e-15, ftol=1e-15,
                        gtol=1e-15)
    net.params[:] = w0
    h = train(net, X, T, LevenbergMarquardt(l2=l2), epochs=200, min_grad=1e-10)
    assert h.grad_norm[-1] < 1e-6  # ‖∇(L + l2/2 ‖w‖²)‖
    assert h.best_loss + 0.5 * l2 * float(net.params @ net.params) == pytest.approx(
        ref.cost, rel=1e-10)
    # one hidden unit is decayed to ~1e-6, where Φ is nearly flat: compare to 1e-5 there
    np.testing.assert_allclose(net.params, ref.x, rtol=1e-6, atol=1e-5)


def test_l2_reports_its_penalty(rng):
    opt = LevenbergMarquardt(l2=0.5)
    w = rng.normal(size=7)
    value, grad = opt.penalty(w)
    assert value == pytest.approx(0.25 * w @ w) and np.allclose(grad, 0.5 * w)
    assert LevenbergMarquardt().penalty(w) == (0.0, None)


# ---------------------------------------------------------------------- Bayesian regularisation
def test_bayesian_regularisation_generalises_better_than_plain_lm():
    X_test = np.linspace(-1, 1, 400)[:, None]
    errors = {"lm": [], "br": []}
    for seed in range(3):
        X, T = noisy_sine(30, seed, noise=0.2)
        base = deltaprop.mlp([1, 20, 1], loss="sse", seed=seed)
        for key, opt in (("lm", LevenbergMarquardt()), ("br", LevenbergMarquardt(bayesian=True))):
            net = base.copy()
            h = train(net, X, T, opt, epochs=150, min_grad=0)
            errors[key].append(np.mean((net.forward(X_test) - np.sin(3 * X_test)) ** 2))
            if key == "br":
                gamma = np.asarray(h.extras["gamma"])
                assert set(h.extras) == {"gamma", "alpha", "beta", "log_evidence"}
                assert math.isnan(gamma[0]) and np.all(np.isfinite(gamma[1:]))
                # the returned epoch is that of the highest log evidence
                log_evidence = np.asarray(h.extras["log_evidence"])
                assert np.all(np.isfinite(log_evidence[1:]))
                assert h.best_epoch == 1 + int(np.argmax(log_evidence[1:]))
                assert np.all(np.asarray(h.extras["alpha"][1:]) > 0)
                assert np.all(np.asarray(h.extras["beta"][1:]) > 0)
                assert 1 < gamma[-1] < net.n_params
    assert np.mean(errors["br"]) < 0.5 * np.mean(errors["lm"]), errors
    assert all(b < a for a, b in zip(errors["lm"], errors["br"], strict=True)), errors


@pytest.mark.parametrize("sizes, loss", [([1, 5, 1], "mse"), ([1, 20, 1], "sse")])
def test_bayesian_reestimation_follows_mackay(sizes, loss):
    X, T = noisy_sine(30, 1, noise=0.1)  # m = 30: P = 16 (primal), P = 61 (dual)
    net = deltaprop.mlp(sizes, loss=loss, seed=0)
    problem = TrainingProblem(net, X, T)
    opt = LevenbergMarquardt(bayesian=True)
    opt.reset(net)

    def sum_of_squares() -> float:
        return float(np.sum((net.forward(X) - T) ** 2))

    # epoch 1: α = 0, β = 1 (Foresee & Hagan); then γ = min(P, m)/2 starts the estimates
    assert opt.run_epoch(problem, 1).stop_reason is None
    ev, w = opt.evidence_, net.params
    gamma = min(net.n_params, 30) / 2
    assert ev.m == 30 and ev.c == (1.0 if loss == "sse" else 2 / 30)
    assert ev.gamma == gamma and ev.alpha == pytest.approx(gamma / (w @ w))
    assert ev.beta == pytest.approx((30 - gamma) / sum_of_squares())
    for epoch in (2, 3):
        ell = ev.alpha * ev.c / ev.beta
        alpha, beta = ev.alpha, ev.beta
        G = deltaprop.curvature.gauss_newton(net, X, T)[0]  # loss scale: G = c JᵀJ
        step = opt.run_epoch(problem, epoch)
        assert step.stop_reason is None
        # MacKay's log evidence at the new weights for the step's α, β, A = βJᵀJ + αI
        lam_A = beta * np.clip(np.linalg.eigvalsh(G), 0, None) / ev.c + alpha
        log_evidence = (-0.5 * beta * sum_of_squares() - 0.5 * alpha * (w @ w)
                        - 0.5 * np.sum(np.log(lam_A)) + 0.5 * w.size * np.log(alpha)
                        + 15 * np.log(beta) - 15 * np.log(2 * np.pi))
        assert ev.log_evidence == pytest.approx(log_evidence, rel=1e-6)
        # γ = P − α tr(βJᵀJ + αI)⁻¹ = Σ λ/(λ + ℓ) over the eigenvalues λ of G
        lam = np.linalg.eigvalsh(G)
        assert ev.gamma == pytest.approx(np.sum(lam / (lam + ell)), rel=1e-8)
        assert ev.alpha == pytest.approx(ev.gamma / (w @ w))
        assert ev.beta == pytest.approx((30 - ev.gamma) / sum_of_squares())
        assert step.extras == {"gamma": ev.gamma, "alpha": ev.alpha, "beta": ev.beta,
                               "log_evidence": ev.log_evidence}
    ell = ev.alpha * ev.c / ev.beta
    value, grad = opt.penalty(w)
    assert value == pytest.approx(0.5 * ell * (w @ w))
    np.testing.assert_allclose(grad, ell * w)
    # train ranks the epochs by the evidence through the contract's ranking hook
    assert opt.epoch_score(problem.loss(), w) == -ev.log_evidence
    assert opt.epoch_score(problem.loss(), w + 1.0) == math.inf  # not the scored weights
    assert LevenbergMarquardt().epoch_score(1.0, w) is None


# ---------------------------------------------------------------------- failures
def test_mu_max_stops_and_restores_the_parameters():
    X = np.linspace(-1, 1, 11)[:, None]
    net = deltaprop.mlp([1, 3, 1], seed=0)
    net.params[:] = 0.0  # y = 0 and t = x odd: a stationary point with g = 0, L > 0
    problem = TrainingProblem(net, X, X)
    loss0 = problem.loss()
    opt = LevenbergMarquardt(mu_max=1e3)
    opt.reset(net)
    calls = problem.n_loss_calls
    step = opt.run_epoch(problem, 1)
    assert step.stop_reason == "mu reached mu_max" and step.step > 1e3
    assert np.all(net.params == 0.0) and step.loss == loss0 > 0
    # L at the start (not cached here: no gradient yet), then μ = 1e-3, ..., 1e3: one each
    assert problem.n_loss_calls - calls == 1 + 7
    h = train(net, X, X, LevenbergMarquardt(mu_max=1e3), epochs=5, min_grad=0)
    assert h.stop_reason == "mu reached mu_max" and h.n_epochs == 1
    assert h.step[1] > 1e3 and h.loss[1] == loss0
    assert np.all(net.params == 0.0)


def test_mu_max_after_convergence(rng):
    X = rng.normal(size=(30, 2))
    net = deltaprop.mlp([2, 1], activation="identity", loss="sse", seed=0)  # linear model
    T = X @ np.array([[1.5], [-2.0]]) + 0.3 + 0.01 * rng.normal(size=(30, 1))
    h = train(net, X, T, "lm", epochs=100, min_grad=0)
    assert h.stop_reason == "mu reached mu_max"
    assert np.all(np.diff(h.loss) <= 0)
    np.testing.assert_array_equal(net.params, h.best_params)


@pytest.mark.parametrize("dual", [False, True])
def test_singular_gauss_newton_matrix_is_survived_by_raising_mu(dual):
    X = np.repeat(np.linspace(-1, 1, 6)[:, None], 2, axis=0)  # duplicated rows: J Jᵀ singular
    T = np.sin(3 * X)
    net = deltaprop.mlp([1, 6, 1], loss="sse", seed=0)
    W1, b1 = net.dense_layers[0].W, net.dense_layers[0].b
    W1[3:], b1[3:] = W1[:3], b1[:3]  # duplicated hidden units: JᵀJ singular
    h = train(net, X, T, LevenbergMarquardt(mu=1e-300, dual=dual), epochs=10)
    assert h.stop_reason in ("max epochs", "mu reached mu_max")
    assert h.n_epochs >= 3 and np.all(np.isfinite(h.loss))
    assert h.loss[-1] < 0.1 * h.loss[0]


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("options, name", [
    ({"mu": 0.0}, "mu"), ({"mu": -1.0}, "mu"), ({"mu": math.inf}, "mu"),
    ({"mu_inc": 1.0}, "mu_inc"), ({"mu_inc": 0.5}, "mu_inc"),
    ({"mu_dec": 0.0}, "mu_dec"), ({"mu_dec": 1.0}, "mu_dec"), ({"mu_dec": 2.0}, "mu_dec"),
    ({"mu_max": 1e-3}, "mu_max"), ({"mu": 1.0, "mu_max": 0.5}, "mu_max"),
    ({"chunk_size": 0}, "chunk_size"), ({"chunk_size": 2.5}, "chunk_size"),
    ({"l2": -1e-3}, "l2"), ({"bayesian": "yes"}, "bayesian"),
    ({"damping": "fletcher"}, "damping"), ({"bayesian": True, "l2": 0.1}, "l2"),
    ({"dual": True, "damping": "marquardt", "l2": 0.1}, "dual"), ({"dual": 1}, "dual"),
])
def test_bad_options_raise_value_error_naming_them(options, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        LevenbergMarquardt(**options)


def _train_br(X, T, seed, **options):
    net = deltaprop.mlp([1, 20, 1], loss="sse", seed=seed)
    h = train(net, X, T, LevenbergMarquardt(bayesian=True, **options), epochs=150, min_grad=0)
    return h, net.params.copy()


def test_evidence_patience_stops_and_returns_the_same_epoch():
    reason = lm_training.EVIDENCE_STOPPED
    assert reason in deltaprop.STOP_REASONS
    for seed in range(3):
        X, T = noisy_sine(30, seed, noise=0.2)
        full, w_full = _train_br(X, T, seed, evidence_patience=None)
        h, w = _train_br(X, T, seed, evidence_patience=6)
        assert full.stop_reason == "max epochs"
        log_evidence = np.asarray(h.extras["log_evidence"])
        best = 1 + int(np.argmax(log_evidence[1:]))
        assert h.stop_reason == reason  # 6 epochs after the last new highest evidence
        assert h.n_epochs == best + 6 and h.n_epochs < full.n_epochs
        # the trajectory is the same up to the stop, and so is the returned epoch when the
        # full run found no higher evidence later
        n = len(h.loss)
        assert np.array_equal(full.loss[:n], h.loss) and h.best_epoch == best
        if full.best_epoch == h.best_epoch:
            assert np.array_equal(w, w_full)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "6"])
def test_evidence_patience_is_validated(value):
    with pytest.raises(ValueError, match="`evidence_patience`"):
        LevenbergMarquardt(bayesian=True, evidence_patience=value)


@pytest.mark.parametrize("loss, output", [("ce", "softmax"), ("bce", "sigmoid")])
def test_bayesian_needs_a_least_squares_loss(rng, loss, output):
    net = deltaprop.mlp([2, 3, 2], output=output, loss=loss, seed=0)
    X, labels = rng.normal(size=(10, 2)), rng.integers(0, 2, 10)
    T = labels if loss == "ce" else np.eye(2)[labels]
    with pytest.raises(ValueError, match="`bayesian`"):
        train(net, X, T, LevenbergMarquardt(bayesian=True), epochs=2)


def test_minibatches_are_rejected(rng):
    X, T = small_regression(rng)
    with pytest.raises(ValueError, match="`batch_size`"):
        train(deltaprop.mlp([2, 3, 2], seed=0), X, T, "lm", batch_size=8)


def test_repr_and_registry():
    opt = deltaprop.get_optimizer("lm")
    assert isinstance(opt, LevenbergMarquardt)
    assert repr(opt) == ("LevenbergMarquardt(mu=0.001, mu_dec=0.1, mu_inc=10, mu_max=1e+10, "
                         "damping='levenberg')")
    assert "bayesian=True" in repr(LevenbergMarquardt(bayesian=True))


# ---------------------------------------------------------------------- cascade networks
@pytest.mark.parametrize("dual", [False, True])
def test_lm_and_trainbr_train_a_cascade_network(dual):
    """Every LM path works on the cascade topology: primal, dual, Bayesian."""
    X, T = noisy_sine(40, 0, noise=0.05)
    net = deltaprop.cascade([1, 6, 4, 1], loss="sse", seed=1)
    start = net.loss(X, T)
    h = train(net, X, T, LevenbergMarquardt(dual=dual), epochs=60, min_grad=0)
    assert h.loss[-1] < 0.05 * start and np.all(np.isfinite(h.loss))
    assert net.topology == "cascade"
    net = deltaprop.cascade([1, 6, 4, 1], loss="sse", seed=1)
    h = train(net, X, T, "trainbr", epochs=60, min_grad=0)
    assert h.stop_reason in ("evidence stopped improving", "max epochs", "mu reached mu_max")
    assert np.isfinite(h.extras["log_evidence"][h.best_epoch])
    assert 0 < h.extras["gamma"][h.best_epoch] < net.n_params
    assert net.loss(X, T) < 0.1 * start
