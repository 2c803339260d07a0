"""Optimizers: schedules, first updates by hand, weight decay, registry, TrainingProblem."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deltaprop
from deltaprop.optimizers import (
    GD,
    OPTIMIZERS,
    Adam,
    CosineDecay,
    EpochStep,
    ExponentialDecay,
    FirstOrderOptimizer,
    Momentum,
    Optimizer,
    RMSprop,
    StepDecay,
    TrainingProblem,
    get_optimizer,
)
from deltaprop.training import train


def tiny_problem(loss: str = "sse") -> TrainingProblem:
    """A 2-2-1 tanh network on 4 rows: small enough to check every update by hand."""
    net = deltaprop.mlp([2, 2, 1], loss=loss, seed=3)
    X = np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7], [0.0, 1.0]])
    T = np.array([0.3, -0.2, 0.8, 0.1])
    return TrainingProblem(net, X, T)


def first_steps(opt: Optimizer, n_epochs: int = 2, loss: str = "sse"):
    """Run ``n_epochs`` full-batch epochs; return the parameters after each and the gradients."""
    problem = tiny_problem(loss)
    opt.reset(problem.net)
    params, grads = [problem.net.params.copy()], []
    for epoch in range(1, n_epochs + 1):
        grads.append(problem.gradient()[1])
        opt.run_epoch(problem, epoch)
        params.append(problem.net.params.copy())
    return params, grads


# ---------------------------------------------------------------------- schedules
def test_step_decay_values():
    s = StepDecay(0.1, drop=0.5, every=3)
    assert [s(e) for e in range(1, 8)] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]


def test_exponential_decay_values():
    s = ExponentialDecay(2.0, gamma=0.9)
    np.testing.assert_allclose([s(e) for e in (1, 2, 11)], [2.0, 1.8, 2.0 * 0.9**10])


def test_cosine_decay_values():
    s = CosineDecay(1.0, epochs=4, lr_min=0.2)
    # η(e) = 0.2 + 0.4 (1 + cos(π (e-1)/4)): 1, 0.2 + 0.4(1 + √½), 0.6, ..., 0.2 from e = 5 on.
    expected = [1.0, 0.2 + 0.4 * (1 + math.sqrt(0.5)), 0.6, 0.2 + 0.4 * (1 - math.sqrt(0.5)),
                0.2, 0.2]
    np.testing.assert_allclose([s(e) for e in range(1, 7)], expected, atol=1e-15)


@pytest.mark.parametrize(("factory", "name"), [
    (lambda: StepDecay(-0.1, 0.5, 2), "lr0"),
    (lambda: StepDecay(0.1, 1.5, 2), "drop"),
    (lambda: StepDecay(0.1, 0.5, 0), "every"),
    (lambda: ExponentialDecay(0.1, 0.0), "gamma"),
    (lambda: CosineDecay(0.1, 0), "epochs"),
    (lambda: CosineDecay(0.1, 10, lr_min=0.2), "lr_min"),
])
def test_schedule_bad_arguments(factory, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        factory()


def test_schedule_drives_learning_rate():
    params, grads = first_steps(GD(lr=StepDecay(0.1, drop=0.5, every=1)), n_epochs=2)
    np.testing.assert_allclose(params[1], params[0] - 0.1 * grads[0], rtol=1e-13)
    np.testing.assert_allclose(params[2], params[1] - 0.05 * grads[1], rtol=1e-13)


def test_schedule_returning_negative_rate_raises():
    opt = GD(lr=lambda epoch: -1.0)
    with pytest.raises(ValueError, match=r"`lr` schedule returned -1\.0 at epoch 1"):
        opt.learning_rate(1)


# ---------------------------------------------------------------------- first updates by hand
def test_update_by_hand_on_two_numbers():
    g = np.array([0.5, 0.25])
    w = np.array([1.0, -2.0])
    GD().update(w, g, 0.1)  # w − 0.1 g
    np.testing.assert_allclose(w, [0.95, -2.025])
    w = np.array([1.0, -2.0])
    RMSprop(rho=0.9, eps=1e-12).update(w, g, 0.1)  # r = 0.1 g²: the step is 0.1 sign(g)/√0.1
    np.testing.assert_allclose(w, [1.0 - math.sqrt(0.1), -2.0 - math.sqrt(0.1)])
    w = np.array([1.0, -2.0])
    Adam(eps=1e-12).update(w, g, 0.1)  # ŝ = g, r̂ = g²: the first step is 0.1 sign(g)
    np.testing.assert_allclose(w, [0.9, -2.1])


def test_gd_first_updates():
    params, grads = first_steps(GD(lr=0.1))
    for k in range(2):
        np.testing.assert_allclose(params[k + 1], params[k] - 0.1 * grads[k], rtol=1e-13)


def test_momentum_first_updates():
    params, grads = first_steps(Momentum(lr=0.1, beta=0.8))
    v1 = -0.1 * grads[0]
    v2 = 0.8 * v1 - 0.1 * grads[1]
    np.testing.assert_allclose(params[1], params[0] + v1, rtol=1e-13)
    np.testing.assert_allclose(params[2], params[1] + v2, rtol=1e-13)


def test_nesterov_first_updates():
    params, grads = first_steps(Momentum(lr=0.1, beta=0.8, nesterov=True))
    v1 = -0.1 * grads[0]
    v2 = 0.8 * v1 - 0.1 * grads[1]
    # w ← w + βv − ηg after v ← βv − ηg; the first step is −η(1 + β) g.
    np.testing.assert_allclose(params[1], params[0] - 0.1 * 1.8 * grads[0], rtol=1e-13)
    np.testing.assert_allclose(params[2], params[1] + 0.8 * v2 - 0.1 * grads[1], rtol=1e-13)


def test_rmsprop_first_updates():
    params, grads = first_steps(RMSprop(lr=0.01, rho=0.9, eps=1e-8))
    r1 = 0.1 * grads[0] ** 2
    r2 = 0.9 * r1 + 0.1 * grads[1] ** 2
    np.testing.assert_allclose(params[1], params[0] - 0.01 * grads[0] / (np.sqrt(r1) + 1e-8))
    np.testing.assert_allclose(params[2], params[1] - 0.01 * grads[1] / (np.sqrt(r2) + 1e-8))


def test_adam_first_updates():
    params, grads = first_steps(Adam(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8))
    s1, r1 = 0.1 * grads[0], 0.01 * grads[0] ** 2
    s2, r2 = 0.9 * s1 + 0.1 * grads[1], 0.99 * r1 + 0.01 * grads[1] ** 2
    step1 = (s1 / 0.1) / (np.sqrt(r1 / 0.01) + 1e-8)
    step2 = (s2 / (1 - 0.9**2)) / (np.sqrt(r2 / (1 - 0.99**2)) + 1e-8)
    np.testing.assert_allclose(params[1], params[0] - 0.01 * step1, rtol=1e-12)
    np.testing.assert_allclose(params[2], params[1] - 0.01 * step2, rtol=1e-12)


def test_reset_clears_state():
    opt = Adam(lr=0.01)
    a, _ = first_steps(opt, n_epochs=1)
    b, _ = first_steps(opt, n_epochs=1)  # first_steps calls reset: the same first step again
    np.testing.assert_array_equal(a[1], b[1])
    assert opt.t == 1


# ---------------------------------------------------------------------- weight decay
def test_weight_decay_first_step_decays_weights_not_biases():
    lam, lr = 0.5, 0.1
    params, grads = first_steps(GD(lr=lr, weight_decay=lam), n_epochs=1)
    net = tiny_problem().net
    mask = np.zeros(net.n_params)
    for w_slice, _ in net.param_slices():
        mask[w_slice] = 1
    expected = params[0] - lr * (grads[0] + lam * mask * params[0])
    np.testing.assert_allclose(params[1], expected, rtol=1e-13)


def test_weight_decay_trains_to_the_ridge_solution(rng):
    # Linear net, "mse": minimise (1/N)‖Xw + b − t‖² + (λ/2)‖w‖² (b not decayed).  With centred
    # Xc, tc the minimiser is w = (2/N XcᵀXc + λI)⁻¹ (2/N) Xcᵀtc, shorter than least squares.
    X = rng.standard_normal((40, 3))
    T = X @ np.array([2.0, -1.0, 0.5]) + 1.0 + 0.1 * rng.standard_normal(40)
    Xc, tc, lam = X - X.mean(0), T - T.mean(), 1.0
    ridge = np.linalg.solve(2 / 40 * Xc.T @ Xc + lam * np.eye(3), 2 / 40 * Xc.T @ tc)
    net = deltaprop.mlp([3, 1], seed=0)
    train(net, X, T, GD(lr=0.1, weight_decay=lam), epochs=300, min_grad=0.0, seed=0)
    np.testing.assert_allclose(net.dense_layers[0].W[0], ridge, rtol=1e-8)
    assert np.linalg.norm(ridge) < 0.75 * np.linalg.norm(np.linalg.lstsq(Xc, tc, rcond=None)[0])


# ---------------------------------------------------------------------- validation and registry
@pytest.mark.parametrize(("factory", "name"), [
    (lambda: GD(lr=-0.1), "lr"),
    (lambda: GD(lr=0.0), "lr"),
    (lambda: Adam(lr=float("nan")), "lr"),
    (lambda: GD(lr=True), "lr"),
    (lambda: GD(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: Momentum(beta=1.0), "beta"),
    (lambda: RMSprop(rho=-0.1), "rho"),
    (lambda: RMSprop(eps=0.0), "eps"),
    (lambda: Adam(beta1=1.0), "beta1"),
    (lambda: Adam(beta2=2.0), "beta2"),
])
def test_bad_hyperparameters(factory, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        factory()


def test_registry_names():
    first_order = ("gd", "momentum", "nesterov", "rmsprop", "adam")
    assert set(OPTIMIZERS) == {*first_order, "lm", "trainbr"}  # LM registers itself
    for name in first_order:
        assert isinstance(get_optimizer(name), FirstOrderOptimizer)
    assert get_optimizer("trainbr").bayesian and not get_optimizer("lm").bayesian
    nesterov = get_optimizer("nesterov")
    assert isinstance(nesterov, Momentum) and nesterov.nesterov
    assert repr(nesterov) == "Momentum(lr=0.01, beta=0.9, nesterov=True)"
    adam = Adam(lr=0.1)
    assert get_optimizer(adam) is adam


def test_unknown_optimizer_lists_known_names():
    with pytest.raises(ValueError, match="`optimizer` must be one of 'gd', 'momentum', "
                                         "'nesterov', 'rmsprop', 'adam', 'lm'"):
        get_optimizer("sgd")


def test_registry_is_open(monkeypatch):
    """A new optimizer registers by name and declares its own stop reasons."""
    import deltaprop
    from deltaprop.optimizers import register_optimizer

    class Halving(Optimizer):
        stop_reasons = ("tired",)

        def reset(self, net):
            pass

        def run_epoch(self, problem, epoch):
            problem.net.params *= 0.5
            return EpochStep(stop_reason="tired" if epoch == 3 else None)

    monkeypatch.setitem(OPTIMIZERS, "halving", Halving)  # restored after the test
    register_optimizer("halving", Halving)
    assert isinstance(get_optimizer("halving"), Halving)
    net = deltaprop.mlp([1, 2, 1], seed=0)
    history = deltaprop.train(net, np.zeros((4, 1)), np.ones((4, 1)), "halving", epochs=10)
    assert history.stop_reason == "tired" and history.n_epochs == 3
    for name, factory in ((None, Halving), ("x", 3)):
        with pytest.raises(ValueError, match="`name`" if name is None else "`factory`"):
            register_optimizer(name, factory)


# ---------------------------------------------------------------------- the problem
def test_problem_gradient_matches_network_and_is_cached():
    problem = tiny_problem("mse")
    loss, grad = problem.net.gradient(problem.X, problem.T)
    loss2, grad2 = problem.gradient()
    assert loss2 == loss
    np.testing.assert_array_equal(grad2, grad)
    grad2 += 1  # the caller owns the returned array
    problem.gradient()
    problem.loss()
    assert (problem.n_gradient_calls, problem.n_loss_calls) == (1, 0)
    np.testing.assert_array_equal(problem.gradient()[1], grad)


def test_problem_loss_at_other_params_leaves_params_unchanged():
    problem = tiny_problem()
    before = problem.net.params.copy()
    trial = before + 0.1
    loss = problem.loss(trial)
    np.testing.assert_array_equal(problem.net.params, before)
    problem.net.params[:] = trial
    assert problem.loss() == loss
    with pytest.raises(ValueError, match="`params` must have shape"):
        problem.loss(trial[:-1])


@pytest.mark.parametrize("loss", ["mse", "sse"])
def test_minibatch_gradients_average_to_the_full_gradient(loss, rng):
    net = deltaprop.mlp([3, 4, 2], loss=loss, seed=0)
    X, T = rng.standard_normal((60, 3)), rng.standard_normal((60, 2))
    problem = TrainingProblem(net, X, T, batch_size=20, seed=1)
    batches = list(problem.batches())
    assert len(batches) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(60))
    mean = np.mean([problem.batch_gradient(idx)[1] for idx in batches], axis=0)
    np.testing.assert_allclose(mean, problem.gradient()[1], rtol=1e-12, atol=1e-15)


def test_batches_unshuffled_and_full():
    net = deltaprop.mlp([1, 1], seed=0)
    X = np.arange(5.0).reshape(-1, 1)
    batches = list(TrainingProblem(net, X, X, batch_size=2, shuffle=False).batches())
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    full = TrainingProblem(net, X, X, batch_size=50)
    assert full.batch_size == 5
    assert list(full.batches()) == [None]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"seed": "a"}, "seed"),
])
def test_problem_bad_arguments(kwargs, name):
    net = deltaprop.mlp([1, 1], seed=0)
    X = np.zeros((4, 1))
    with pytest.raises(ValueError, match=f"`{name}`"):
        TrainingProblem(net, X, X, **kwargs)


def test_base_classes_are_abstract():
    problem = tiny_problem()
    with pytest.raises(NotImplementedError):
        Optimizer().reset(problem.net)
    with pytest.raises(NotImplementedError):
        Optimizer().run_epoch(problem, 1)
    assert EpochStep().stop_reason is None
