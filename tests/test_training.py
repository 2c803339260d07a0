"""train(): convergence, stopping rules, early stopping, faults, determinism, progress, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

import deltaprop
from deltaprop import STOP_REASONS
from deltaprop.optimizers import GD, Adam, EpochStep, Momentum, Optimizer, TrainingProblem
from deltaprop.training import History, train


# ---------------------------------------------------------------------- data and helpers
def noisy_sine(rng: np.random.Generator, n: int = 200, noise: float = 0.1):
    X = rng.uniform(-np.pi, np.pi, (n, 1))
    return X, np.sin(X) + noise * rng.standard_normal(X.shape)


def two_spirals(rng: np.random.Generator, n: int = 300, turns: float = 1.5, noise: float = 0.05):
    """Two interleaved spirals, labels 0 and 1 alternating, radius growing to 1."""
    t = np.sqrt(rng.uniform(0, 1, n)) * turns * 2 * np.pi
    labels = np.arange(n) % 2
    radius = t / (turns * 2 * np.pi)
    angle = t + np.pi * labels
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + noise * rng.standard_normal((n, 2)), labels


XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_T = np.array([0.0, 1.0, 1.0, 0.0])


class ParamsRecorder:
    """Callback keeping a copy of the parameters after every recorded epoch."""

    def __init__(self):
        self.params: dict[int, np.ndarray] = {}

    def __call__(self, epoch, history, net):
        self.params[epoch] = net.params.copy()


def regression(rng, n=50):
    X = rng.standard_normal((n, 2))
    return X, np.tanh(X @ np.array([1.0, -2.0])) + 0.05 * rng.standard_normal(n)


# ---------------------------------------------------------------------- convergence
def test_noisy_sine_adam_reaches_twice_the_noise_variance(rng):
    X, T = noisy_sine(rng, noise=0.1)
    net = deltaprop.mlp([1, 10, 1], activation="tanh", seed=0)
    history = train(net, X, T, Adam(lr=0.02), epochs=2000, seed=0)
    assert net.loss(X, T) == history.best_loss < 2 * 0.1**2


@pytest.mark.parametrize("optimizer", [GD(lr=0.5), Momentum(lr=0.2, beta=0.9)])
def test_xor(optimizer):
    net = deltaprop.mlp([2, 4, 1], seed=1)
    history = train(net, XOR_X, XOR_T, optimizer, epochs=5000, goal=1e-3)
    assert history.stop_reason == "goal reached"
    np.testing.assert_array_equal(net.forward(XOR_X).ravel() > 0.5, XOR_T > 0.5)


def test_two_spirals_adam_cross_entropy(rng):
    X, labels = two_spirals(rng)
    net = deltaprop.mlp([2, 20, 20, 2], output="softmax", loss="ce", seed=0)
    train(net, X, labels, Adam(lr=0.01), epochs=1500, seed=0)
    accuracy = np.mean(net.forward(X).argmax(axis=1) == labels)
    assert accuracy > 0.95


def test_minibatch_adam_reduces_the_loss(rng):
    X, T = noisy_sine(rng)
    net = deltaprop.mlp([1, 10, 1], seed=0)
    history = train(net, X, T, Adam(lr=0.01), epochs=100, batch_size=16, seed=0)
    assert history.best_loss < 0.2 * history.loss[0]


# ---------------------------------------------------------------------- early stopping and faults
def test_early_stopping_restores_params_of_best_epoch(rng):
    # Validating against half the training targets: the fit passes through them, then away.
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    recorder = ParamsRecorder()
    history = train(net, X, T, Adam(lr=0.05), validation=(X, 0.5 * T), patience=5,
                    callbacks=[recorder], seed=0)
    assert history.stop_reason == "validation stopped improving"
    assert 0 < history.best_epoch == history.n_epochs - 5
    assert history.best_val_loss == min(history.val_loss)
    np.testing.assert_array_equal(net.params, recorder.params[history.best_epoch])
    np.testing.assert_array_equal(net.params, history.best_params)


def test_without_validation_best_training_loss_is_kept(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    recorder = ParamsRecorder()
    history = train(net, X, T, GD(lr=3.0), epochs=30, callbacks=[recorder])  # oscillates
    assert history.best_loss == min(history.loss) < history.loss[-1]
    np.testing.assert_array_equal(net.params, recorder.params[history.best_epoch])


def test_huge_learning_rate_diverges_with_finite_best_params(rng):
    X, T = noisy_sine(rng, n=50)
    net = deltaprop.mlp([1, 10, 1], seed=0)
    history = train(net, X, T, GD(lr=1e6), epochs=1000)
    assert history.stop_reason == "diverged"
    assert not np.isfinite(history.loss[-1])
    assert np.isfinite(net.params).all()
    np.testing.assert_array_equal(net.params, history.best_params)
    assert net.loss(X, T) == history.best_loss


def test_interrupt_from_callback_restores_best_params(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    recorder = ParamsRecorder()

    def interrupt(epoch, history, net):
        if epoch == 7:
            raise KeyboardInterrupt

    history = train(net, X, T, GD(lr=3.0), callbacks=[recorder, interrupt])
    assert history.stop_reason == "interrupted"
    assert history.n_epochs == 7
    np.testing.assert_array_equal(net.params, recorder.params[history.best_epoch])


class Exploding(GD):
    """Writes garbage into the parameters mid-epoch, then raises ``error``."""

    def __init__(self, error: BaseException, at_epoch: int = 3):
        super().__init__(lr=0.1)
        self.error, self.at_epoch = error, at_epoch

    def run_epoch(self, problem, epoch):
        step = super().run_epoch(problem, epoch)
        if epoch == self.at_epoch:
            problem.net.params[:2] = np.nan
            raise self.error
        return step


def test_interrupt_mid_epoch_leaves_no_half_updated_weights(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    history = train(net, X, T, Exploding(KeyboardInterrupt()))
    assert history.stop_reason == "interrupted"
    assert history.n_epochs == 2
    np.testing.assert_array_equal(net.params, history.best_params)


def test_other_exceptions_propagate_with_best_params_restored(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    recorder = ParamsRecorder()
    with pytest.raises(RuntimeError, match="boom"):
        train(net, X, T, Exploding(RuntimeError("boom")), callbacks=[recorder])
    np.testing.assert_array_equal(net.params, recorder.params[2])


# ---------------------------------------------------------------------- every stop reason
def test_goal_reached(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 8, 1], seed=0)
    goal = 0.5 * net.loss(X, T)
    history = train(net, X, T, "adam", goal=goal)
    assert history.stop_reason == "goal reached"
    assert history.loss[-1] <= goal < min(history.loss[:-1])


def test_gradient_below_min_grad(rng):
    X = rng.standard_normal((30, 2))
    T = X @ np.array([1.0, -1.0]) + 0.5  # a linear net fits it exactly
    net = deltaprop.mlp([2, 1], seed=0)
    history = train(net, X, T, GD(lr=0.2), min_grad=1e-6, epochs=10_000)
    assert history.stop_reason == "gradient below min_grad"
    assert history.grad_norm[-1] < 1e-6 <= min(history.grad_norm[:-1])


def test_max_epochs(rng):
    X, T = regression(rng)
    history = train(deltaprop.mlp([2, 3, 1], seed=0), X, T, "gd", epochs=3)
    assert history.stop_reason == "max epochs"
    assert history.epoch == [0, 1, 2, 3]
    assert len(history) == 4


def test_max_time(rng):
    X, T = regression(rng)
    history = train(deltaprop.mlp([2, 3, 1], seed=0), X, T, "gd", max_time=0.05,
                    callbacks=[lambda epoch, history, net: time.sleep(0.01)])
    assert history.stop_reason == "max time"
    assert history.seconds[-1] >= 0.05 > history.seconds[-2]
    assert history.n_epochs < 1000


def test_callback_returning_true_stops(rng):
    X, T = regression(rng)
    history = train(deltaprop.mlp([2, 3, 1], seed=0), X, T,
                    callbacks=lambda epoch, history, net: epoch == 4)
    assert history.stop_reason == "callback"
    assert history.n_epochs == 4


class FakeLM(Optimizer):
    """A stand-in for Levenberg–Marquardt: reports loss, grad_norm, μ and extras itself."""

    stop_reasons = ("mu reached mu_max",)

    def reset(self, net):
        self.mu = 1e-3
        self.problem: TrainingProblem | None = None

    def run_epoch(self, problem, epoch):
        self.problem = problem
        loss, grad = problem.gradient()
        trial = problem.net.params - 0.1 * grad
        trial_loss = problem.loss(trial)
        self.mu *= 10
        if self.mu > 1.0:  # "mu reached mu_max": the epoch fails, params stay where they were
            return EpochStep(loss=loss, grad_norm=float(np.linalg.norm(grad)), step=self.mu,
                             stop_reason="mu reached mu_max")
        problem.net.params[:] = trial
        extras = {"gamma": float(epoch)} if epoch == 2 else {}
        return EpochStep(loss=trial_loss, step=self.mu, extras=extras)


def test_optimizer_stop_reason_and_the_lm_contract(rng):
    X, T = regression(rng)
    net = deltaprop.mlp([2, 3, 1], seed=0)
    lm = FakeLM()
    history = train(net, X, T, lm)
    assert history.stop_reason == "mu reached mu_max"
    assert history.n_epochs == 4
    np.testing.assert_allclose(history.step[1:], [1e-2, 1e-1, 1.0, 10.0])
    np.testing.assert_array_equal(history.extras["gamma"], [np.nan, np.nan, 2.0, np.nan, np.nan])
    assert history.loss[3] == history.loss[4]
    # Gradients: train's at epochs 0-3, each reused by the next epoch; none at epoch 4, whose
    # loss and grad_norm FakeLM reported.  Losses: one trial per epoch.
    assert lm.problem.n_gradient_calls == 4
    assert lm.problem.n_loss_calls == 4
    assert "mu reached mu_max" in STOP_REASONS and "mu reached mu_max" in lm.stop_reasons


def test_optimizer_breaking_the_contract_raises(rng):
    X, T = regression(rng)

    class Bad(FakeLM):
        def run_epoch(self, problem, epoch):
            return EpochStep(stop_reason="tired")

    with pytest.raises(ValueError, match="`optimizer` stopped with 'tired'"):
        train(deltaprop.mlp([2, 3, 1], seed=0), X, T, Bad())

    class Worse(FakeLM):
        def run_epoch(self, problem, epoch):
            return None

    with pytest.raises(ValueError, match="must return an EpochStep"):
        train(deltaprop.mlp([2, 3, 1], seed=0), X, T, Worse())


def test_full_batch_costs_one_gradient_per_epoch(rng):
    X, T = regression(rng)
    problems = []

    class Spy(GD):
        def run_epoch(self, problem, epoch):
            problems.append(problem)
            return super().run_epoch(problem, epoch)

    train(deltaprop.mlp([2, 3, 1], seed=0), X, T, Spy(lr=0.1), epochs=10)
    assert problems[-1].n_gradient_calls == 11  # epochs 0..10: train's pass, reused by GD
    assert problems[-1].n_loss_calls == 0


# ---------------------------------------------------------------------- determinism
def run_minibatch(X, T, seed):
    net = deltaprop.mlp([1, 10, 1], seed=0)
    history = train(net, X, T, "adam", epochs=20, batch_size=16, seed=seed,
                    validation=(X[:20], T[:20]), patience=100)
    return history, net.params.copy()


def test_same_seed_same_history_and_params(rng):
    X, T = noisy_sine(rng, n=100)
    (h1, p1), (h2, p2), (h3, p3) = (run_minibatch(X, T, s) for s in (7, 7, 8))
    d1, d2, d3 = h1.as_dict(), h2.as_dict(), h3.as_dict()
    for key in ("epoch", "loss", "val_loss", "grad_norm", "step", "best_params"):
        np.testing.assert_array_equal(d1[key], d2[key])
    assert (h1.best_epoch, h1.stop_reason) == (h2.best_epoch, h2.stop_reason)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(d1["loss"], d3["loss"])
    assert not np.array_equal(p1, p3)


# ---------------------------------------------------------------------- history and progress
def test_history_repr_and_dict(rng):
    X, T = regression(rng)
    history = train(deltaprop.mlp([2, 3, 1], seed=0), X, T, GD(lr=0.1), epochs=5,
                    validation=(X, T))
    text = repr(history)
    assert text.startswith("History(5 epochs, stop_reason='max epochs', optimizer=GD(lr=0.1))")
    assert "best epoch 5: loss=" in text and "val_loss=" in text
    d = history.as_dict()
    assert d["loss"].shape == (6,) and d["stop_reason"] == "max epochs"
    assert np.isnan(d["step"][0]) and np.all(d["step"][1:] == 0.1)
    assert isinstance(history, History) and np.all(np.diff(d["seconds"]) >= 0)


def test_progress_bar_on_stderr(rng, capsys):
    X, T = regression(rng)
    train(deltaprop.mlp([2, 3, 1], seed=0), X, T, epochs=5, validation=(X, T), progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err and "loss=" in err and "val_loss=" in err


def test_silent_by_default(rng, capsys):
    X, T = regression(rng)
    train(deltaprop.mlp([2, 3, 1], seed=0), X, T, epochs=5)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("kwargs", "name"), [
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.0}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"goal": -1.0}, "goal"),
    ({"min_grad": -1e-3}, "min_grad"),
    ({"patience": 0}, "patience"),
    ({"max_time": 0.0}, "max_time"),
    ({"seed": -3}, "seed"),
    ({"callbacks": [1]}, "callbacks"),
    ({"callbacks": "print"}, "callbacks"),
    ({"validation": np.zeros((3, 2))}, "validation"),
    ({"validation": (np.zeros((3, 3)), np.zeros(3))}, "X_val"),
    ({"validation": (np.zeros((3, 2)), np.zeros(4))}, "T_val"),
    ({"optimizer": "sgd"}, "optimizer"),
])
def test_bad_options(kwargs, name, rng):
    X, T = regression(rng, n=10)
    with pytest.raises(ValueError, match=f"`{name}"):
        train(deltaprop.mlp([2, 3, 1], seed=0), X, T, **kwargs)


def test_bad_data_and_network(rng):
    X, T = regression(rng, n=10)
    net = deltaprop.mlp([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="`X`"):
        train(net, X[:, :1], T)
    with pytest.raises(ValueError, match="`T`"):
        train(net, X, T[:5])
    with pytest.raises(ValueError, match="`lr`"):
        train(net, X, T, GD(lr=-0.1))
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="`net`"):
        train(net, X, T)


def test_unknown_optimizer_lists_names(rng):
    X, T = regression(rng, n=10)
    with pytest.raises(ValueError, match="'gd', 'momentum', 'nesterov', 'rmsprop', 'adam'"):
        train(deltaprop.mlp([2, 3, 1], seed=0), X, T, "newton")
