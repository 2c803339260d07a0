"""Optimizers for ``train``: the gradient-descent family, and the contract that LM plugs into.

The training loop (``deltaprop.training.train``, Bishop & Bishop 2024 §8.1) owns the data, the
stopping rules and the History; an optimizer owns only its update rule and its state.  The two
meet through three small objects defined here.

The contract
------------
``TrainingProblem`` (built by ``train``; also usable directly)
    ``net``, ``X`` (N, n_in) and ``T`` (N, n_out): the network and the validated training data.
    ``n_samples``, ``batch_size`` (≤ N; N means full batch), ``shuffle``, ``rng``.
    ``loss(params=None) -> float``: the full-batch loss at ``params`` (P,) or, if None, at
    ``net.params``; ``net.params`` is left unchanged.  One forward pass (free when cached).
    ``gradient() -> (loss, grad)``: the full-batch loss and its gradient (P,) (a new array) at
    ``net.params``.  One forward + backward pass, cached: a second call at unchanged parameters
    is free.  ``train`` calls it after every epoch, so an optimizer that calls it at the start
    of the next epoch gets it for free.
    ``batches()``: yields the row indices of each minibatch of one epoch (reshuffled from
    ``rng`` when ``shuffle``), or a single ``None`` meaning "all rows" for full batch.
    ``batch_gradient(idx) -> (loss, grad)``: ``gradient()`` for ``idx=None``; otherwise the loss
    of the rows ``idx`` and its gradient, scaled by N/len(idx) for the summed loss "sse" so that
    it estimates the full-batch gradient without bias for every loss.
    ``n_loss_calls``, ``n_gradient_calls``: counters of uncached forward and forward+backward
    passes (any batch size).

``Optimizer`` (subclass it)
    ``reset(net)``: allocate fresh state for ``net`` (P = ``net.n_params``, ``net.dtype``).
    ``train`` calls it once before epoch 0 is recorded.
    ``penalty(params) -> (value, grad or None)``: optional; a regulariser the optimizer adds to
    the loss (weight decay).  The default is (0.0, None).  ``train`` minimises loss + penalty:
    it picks the best epoch (without validation data) by it and measures ``grad_norm`` on its
    gradient, but records and compares with ``goal`` the loss alone.
    ``epoch_score(loss, params) -> float or None``: optional ranking hook; a score (lower is
    better) by which ``train`` picks the best epoch without validation data instead of
    loss + penalty, e.g. −ln(evidence) for Bayesian regularisation.  The default None keeps
    loss + penalty.
    ``stop_reasons``: the tuple of ``EpochStep.stop_reason`` values this optimizer may return
    (default empty); ``train`` accepts no other.
    ``run_epoch(problem, epoch) -> EpochStep``: run epoch ``epoch`` (1, 2, ...), updating
    ``problem.net.params`` IN PLACE (assign into it, never rebind it: layers hold views).
    On return ``net.params`` holds the parameters the epoch ends on.  If the epoch fails (no
    acceptable step), restore the parameters it started from and set ``stop_reason``.
    Non-finite parameters are allowed on return: ``train`` detects them ("diverged") and
    restores the best parameters itself.  Raise nothing for numerical trouble.

``EpochStep`` (returned by ``run_epoch``)
    ``loss``: the full-batch training loss at the returned ``net.params`` if the optimizer
    computed it exactly (e.g. LM's accepted trial step), else None; ``train`` then computes it.
    ``grad_norm``: ‖∇(L + penalty)‖₂ at the returned ``net.params`` if known, else None
    (``train`` then calls ``problem.gradient()``, one forward + backward pass, cached for the
    next epoch).
    ``step``: the learning rate used, or the damping μ for LM (History's ``step`` column).
    ``extras``: further per-epoch numbers, e.g. ``{"gamma": ..., "alpha": ..., "beta": ...}``
    for Bayesian regularisation; History records each key as a column (NaN where missing).
    ``stop_reason``: None to go on, or one of the optimizer's ``stop_reasons`` (e.g.
    ``"mu reached mu_max"``); ``train`` records the epoch, then stops, restoring the best
    parameters.

A full-batch optimizer (LM) works on ``problem.X``/``problem.T`` (e.g. with
``deltaprop.jacobian_params`` or ``deltaprop.gauss_newton``) and ignores ``batches()``; it may
reject ``problem.batch_size < problem.n_samples`` in ``run_epoch`` with a ValueError naming
``batch_size``.  A typical LM epoch: ``loss, grad = problem.gradient()`` (free), solve for a step,
``trial_loss = problem.loss(trial)`` until one is accepted, then ``net.params[:] = trial`` and
``return EpochStep(loss=trial_loss, step=mu)``.

Register a new optimizer name with :func:`register_optimizer` (the registry ``OPTIMIZERS`` is
open: ``deltaprop.lm_training`` registers "lm" and "trainbr" itself, so this module imports
nothing above it).

First-order optimizers subclass ``FirstOrderOptimizer``: its ``run_epoch`` loops over
``problem.batches()``, adds the L2 weight-decay term to each minibatch gradient and calls
``update(params, grad, lr)``, which changes ``params`` in place.

References
----------
Bishop & Bishop 2024, *Deep Learning: Foundations and Concepts*, §7.2–7.3 (gradient descent,
momentum, RMSprop, Adam), §8.1 (the training loop), §9.2 (weight decay).
Kingma & Ba 2015, "Adam: a method for stochastic optimization", ICLR.
Sutskever, Martens, Dahl & Hinton 2013, "On the importance of initialization and momentum in
deep learning", ICML (Nesterov momentum in the form used here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from numbers import Real

import numpy as np

from ._validation import check_positive_int
from .network import Network

Array = np.ndarray
Schedule = Callable[[int], float]


# ---------------------------------------------------------------------- small validators
def check_real(value: object, name: str, low: float, high: float = math.inf,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as float if it is a real number in the stated interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"`{name}` must be a real number in {lo}{low}, {high}{hi}; got {value!r}.")
    return float(value)


def _check_lr(lr: object) -> float | Schedule:
    """A learning rate is a positive number or a callable schedule epoch -> rate."""
    if callable(lr):
        return lr
    if not isinstance(lr, Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(
            f"`lr` must be a positive number or a callable schedule (epoch -> rate); got {lr!r}."
        )
    return float(lr)


# ---------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class StepDecay:
    """Learning rate dropped by a factor every few epochs: η(e) = η₀ · drop^⌊(e − 1)/every⌋.

    Parameters
    ----------
    lr0 : float
        Rate of epochs 1..every (> 0).
    drop : float
        Factor in (0, 1].
    every : int
        Epochs between drops (≥ 1).

    Examples
    --------
    >>> s = StepDecay(0.1, drop=0.5, every=10)
    >>> s(1), s(10), s(11), s(21)
    (0.1, 0.1, 0.05, 0.025)
    """

    lr0: float
    drop: float
    every: int

    def __post_init__(self) -> None:
        check_real(self.lr0, "lr0", 0.0, low_open=True)
        check_real(self.drop, "drop", 0.0, 1.0, low_open=True)
        check_positive_int(self.every, "every")

    def __call__(self, epoch: int) -> float:
        return self.lr0 * self.drop ** ((epoch - 1) // self.every)


@dataclass(frozen=True)
class ExponentialDecay:
    """Learning rate decayed geometrically: η(e) = η₀ · γ^(e − 1).

    Parameters
    ----------
    lr0 : float
        Rate of epoch 1 (> 0).
    gamma : float
        Factor per epoch in (0, 1].

    Examples
    --------
    >>> s = ExponentialDecay(1.0, gamma=0.5)
    >>> s(1), s(2), s(4)
    (1.0, 0.5, 0.125)
    """

    lr0: float
    gamma: float

    def __post_init__(self) -> None:
        check_real(self.lr0, "lr0", 0.0, low_open=True)
        check_real(self.gamma, "gamma", 0.0, 1.0, low_open=True)

    def __call__(self, epoch: int) -> float:
        return self.lr0 * self.gamma ** (epoch - 1)


@dataclass(frozen=True)
class CosineDecay:
    """Cosine annealing from η₀ at epoch 1 to η_min at epoch ``epochs + 1`` and after.

    .. math:: \\eta(e) = \\eta_{\\min} + \\tfrac12(\\eta_0 - \\eta_{\\min})
              \\bigl(1 + \\cos(\\pi \\min(e - 1, E) / E)\\bigr)

    Parameters
    ----------
    lr0 : float
        Rate of epoch 1 (> 0).
    epochs : int
        Length E of the decay (≥ 1).
    lr_min : float
        Final rate, 0 ≤ lr_min ≤ lr0.

    Examples
    --------
    >>> s = CosineDecay(1.0, epochs=4)
    >>> s(1), s(3), s(5), s(9)
    (1.0, 0.5, 0.0, 0.0)

    References
    ----------
    Loshchilov & Hutter 2017, "SGDR: stochastic gradient descent with warm restarts", ICLR.
    """

    lr0: float
    epochs: int
    lr_min: float = 0.0

    def __post_init__(self) -> None:
        check_real(self.lr0, "lr0", 0.0, low_open=True)
        check_positive_int(self.epochs, "epochs")
        check_real(self.lr_min, "lr_min", 0.0, float(self.lr0))

    def __call__(self, epoch: int) -> float:
        frac = min(epoch - 1, self.epochs) / self.epochs
        return self.lr_min + 0.5 * (self.lr0 - self.lr_min) * (1.0 + math.cos(math.pi * frac))


# ---------------------------------------------------------------------- the problem
def _check_batch_size(batch_size: object, n_samples: int) -> int:
    """None -> N; a positive integer, clipped to N."""
    if batch_size is None:
        return n_samples
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer or None (full batch); got {batch_size!r}."
        )
    return min(int(batch_size), n_samples)


def _check_seed(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ValueError(
            f"`seed` must be None, a non-negative integer or a numpy Generator; got {seed!r}."
        )
    return np.random.default_rng(seed)


class TrainingProblem:
    """The data an optimizer trains ``net`` on: full-batch and minibatch losses and gradients.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like (N, n_out), or (N,) for one output or integer labels with "ce"
    batch_size : int, optional
        Rows per minibatch; None (or ≥ N) means full batch.  Values above N are clipped to N.
    shuffle : bool
        Draw a new row order from ``rng`` for every epoch of minibatches.
    seed : int or numpy.random.Generator, optional
        Seed of the shuffling generator ``rng``.

    Notes
    -----
    See the module docstring for the contract.  The gradient of ``gradient()`` is cached
    against a copy of the parameters it was computed at, so asking again at unchanged
    parameters costs O(P), not a forward + backward pass.
    """

    def __init__(self, net: Network, X: object, T: object, *, batch_size: int | None = None,
                 shuffle: bool = True, seed: int | np.random.Generator | None = None):
        if not isinstance(net, Network):
            raise ValueError(f"`net` must be a deltaprop Network; got {type(net).__name__}.")
        self.net = net
        self.X = net.check_inputs(X, "X")
        self.T = net.check_targets(T, self.X.shape[0], "T")
        self.n_samples = self.X.shape[0]
        self.batch_size = _check_batch_size(batch_size, self.n_samples)
        self.shuffle = bool(shuffle)
        self.rng = _check_seed(seed)
        self.n_loss_calls = 0
        self.n_gradient_calls = 0
        self._cache: tuple[Array, float, Array] | None = None
        self._sse = net.loss_name == "sse"

    # -- the two passes, on validated arrays
    def _value(self, X: Array, T: Array) -> float:
        self.n_loss_calls += 1
        return self.net.record_loss(self.net.propagate(X), T)

    def _value_and_grad(self, X: Array, T: Array) -> tuple[float, Array]:
        self.n_gradient_calls += 1
        return self.net.record_gradient(self.net.propagate(X), T)

    def _cached(self, params: Array) -> tuple[float, Array] | None:
        if self._cache is not None and np.array_equal(self._cache[0], params):
            return self._cache[1], self._cache[2]
        return None

    # -- the public contract
    def loss(self, params: Array | None = None) -> float:
        """Full-batch loss at ``params`` (P,), or at ``net.params`` if None; params unchanged."""
        if params is None:
            hit = self._cached(self.net.params)
            return hit[0] if hit is not None else self._value(self.X, self.T)
        params = np.asarray(params)
        if params.shape != (self.net.n_params,):
            raise ValueError(
                f"`params` must have shape ({self.net.n_params},); got {params.shape}."
            )
        hit = self._cached(params)
        if hit is not None:
            return hit[0]
        saved = self.net.params.copy()
        try:
            self.net.params[:] = params
            return self._value(self.X, self.T)
        finally:
            self.net.params[:] = saved

    def gradient(self) -> tuple[float, Array]:
        """Full-batch loss and gradient (P,) at ``net.params`` (cached; the array is new)."""
        hit = self._cached(self.net.params)
        if hit is None:
            loss, grad = self._value_and_grad(self.X, self.T)
            self._cache = (self.net.params.copy(), loss, grad)
            hit = (loss, grad)
        return hit[0], hit[1].copy()

    def batches(self) -> Iterator[Array | None]:
        """Row indices of each minibatch of one epoch; a single None for full batch."""
        if self.batch_size >= self.n_samples:
            yield None
            return
        n = self.n_samples
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            yield order[start : start + self.batch_size]

    def batch_gradient(self, idx: Array | None) -> tuple[float, Array]:
        """Loss and gradient on rows ``idx`` (all rows if None), scaled to estimate the full batch.

        For the summed loss "sse" both are multiplied by N / len(idx); the mean losses need no
        scaling.
        """
        if idx is None:
            return self.gradient()
        loss, grad = self._value_and_grad(self.X[idx], self.T[idx])
        if self._sse:
            scale = self.n_samples / len(idx)
            loss, grad = loss * scale, grad * scale
        return loss, grad


# ---------------------------------------------------------------------- the interface
@dataclass
class EpochStep:
    """What an optimizer reports about one epoch (see the module docstring).

    Attributes
    ----------
    loss : float or None
        Full-batch training loss at the parameters the epoch ends on, if known exactly.
    grad_norm : float or None
        Euclidean norm of the full-batch gradient there, if known.
    step : float
        Learning rate used, or the damping μ for Levenberg–Marquardt (NaN if neither).
    extras : dict of str to float
        Further per-epoch numbers; History records each key as a column.
    stop_reason : str or None
        One of the optimizer's ``stop_reasons``, to stop after this epoch.
    """

    loss: float | None = None
    grad_norm: float | None = None
    step: float = math.nan
    extras: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None


class Optimizer:
    """Base class of the optimizers that ``train`` drives (see the module docstring)."""

    #: The ``EpochStep.stop_reason`` values this optimizer may return.
    stop_reasons: tuple[str, ...] = ()

    def reset(self, net: Network) -> None:
        """Allocate fresh state for ``net``; called by ``train`` before epoch 1."""
        raise NotImplementedError

    def run_epoch(self, problem: TrainingProblem, epoch: int) -> EpochStep:
        """Run epoch ``epoch`` (1-based), updating ``problem.net.params`` in place."""
        raise NotImplementedError

    def penalty(self, params: Array) -> tuple[float, Array | None]:
        """A regulariser this optimizer adds to the loss: (value, gradient (P,)), or (0, None)."""
        return 0.0, None

    def epoch_score(self, loss: float, params: Array) -> float | None:
        """Score (lower is better) that ranks epochs without validation data; None: rank by
        loss + penalty."""
        return None


class FirstOrderOptimizer(Optimizer):
    """An optimizer that steps along (a function of) minibatch gradients.

    Parameters
    ----------
    lr : float or callable
        Learning rate η > 0, or a schedule ``lr(epoch) -> rate`` (epoch 1, 2, ...), e.g.
        ``StepDecay``, ``ExponentialDecay``, ``CosineDecay``.
    weight_decay : float
        L2 coefficient λ ≥ 0: each gradient becomes ∇L + λ w over the weights W (biases are
        not decayed, Bishop & Bishop 2024 §9.2.1), i.e. L + (λ/2)‖W‖² is minimised (see
        ``penalty``).

    Notes
    -----
    Subclasses implement ``_reset_state(n_params, dtype)`` and ``update(params, grad, lr)``.
    """

    def __init__(self, lr: float | Schedule, weight_decay: float = 0.0):
        self.lr = _check_lr(lr)
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        self._decay_mask: Array | None = None

    def learning_rate(self, epoch: int) -> float:
        """η of epoch ``epoch``; a schedule's value must be finite and ≥ 0."""
        if not callable(self.lr):
            return self.lr
        value = self.lr(epoch)
        if not isinstance(value, Real) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"`lr` schedule returned {value!r} at epoch {epoch}; rates must be finite "
                "and ≥ 0."
            )
        return float(value)

    def reset(self, net: Network) -> None:
        mask = np.zeros(net.n_params, dtype=net.dtype)
        for w_slice, _ in net.param_slices():
            mask[w_slice] = 1
        self._decay_mask = mask
        self._reset_state(net.n_params, net.dtype)

    def _reset_state(self, n_params: int, dtype: np.dtype) -> None:
        raise NotImplementedError

    def update(self, params: Array, grad: Array, lr: float) -> None:
        """Change ``params`` (P,) in place by one step from ``grad`` (P,) with rate ``lr``."""
        raise NotImplementedError

    def penalty(self, params: Array) -> tuple[float, Array | None]:
        """(λ/2)‖W‖² and its gradient λ m ⊙ w (m: 1 on weights, 0 on biases); (0, None) if λ = 0."""
        if not self.weight_decay or self._decay_mask is None:
            return 0.0, None
        decayed = self._decay_mask * params
        return 0.5 * self.weight_decay * float(decayed @ decayed), self.weight_decay * decayed

    def run_epoch(self, problem: TrainingProblem, epoch: int) -> EpochStep:
        if self._decay_mask is None or self._decay_mask.shape[0] != problem.net.n_params:
            self.reset(problem.net)
        lr = self.learning_rate(epoch)
        params = problem.net.params
        for idx in problem.batches():
            _, grad = problem.batch_gradient(idx)
            decay = self.penalty(params)[1]
            if decay is not None:
                grad += decay
            self.update(params, grad, lr)
        return EpochStep(step=lr)

    def _hyper(self) -> str:
        return ""

    def __repr__(self) -> str:
        lr = self.lr if callable(self.lr) else f"{self.lr:g}"
        hyper = self._hyper()
        wd = f", weight_decay={self.weight_decay:g}" if self.weight_decay else ""
        return f"{type(self).__name__}(lr={lr}{', ' + hyper if hyper else ''}{wd})"


class GD(FirstOrderOptimizer):
    """Gradient descent, the chapter's rule (minibatch SGD when ``batch_size`` < N).

    Parameters
    ----------
    lr : float or callable
        Learning rate η or a schedule (see ``FirstOrderOptimizer``).
    weight_decay : float
        L2 coefficient λ ≥ 0 on the weights.

    Notes
    -----
    .. math:: w \\leftarrow w - \\eta \\nabla L(w)

    References
    ----------
    Bishop & Bishop 2024 §7.2 (eq. 7.17), §7.2.3 (minibatches).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([1.0, -2.0])
    >>> GD(lr=0.1).update(w, np.array([0.5, 0.25]), 0.1)
    >>> w
    array([ 0.95 , -2.025])
    """

    def __init__(self, lr: float | Schedule = 0.01, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)

    def _reset_state(self, n_params: int, dtype: np.dtype) -> None:
        pass

    def update(self, params: Array, grad: Array, lr: float) -> None:
        params -= lr * grad


class Momentum(FirstOrderOptimizer):
    """Gradient descent with (heavy-ball or Nesterov) momentum.

    Parameters
    ----------
    lr : float or callable
        Learning rate η or a schedule.
    beta : float
        Momentum coefficient μ in [0, 1).
    nesterov : bool
        Use Nesterov's accelerated gradient.
    weight_decay : float
        L2 coefficient λ ≥ 0 on the weights.

    Notes
    -----
    Heavy ball (Bishop & Bishop 2024 eq. 7.31), with velocity v starting at 0:

    .. math:: v \\leftarrow \\beta v - \\eta \\nabla L(w), \\qquad w \\leftarrow w + v

    Nesterov (eq. 7.34) evaluates the gradient at the look-ahead point w + βv.  With the change
    of variables w̃ = w + βv (Sutskever et al. 2013) it needs only the gradient at the current
    point:

    .. math:: v \\leftarrow \\beta v - \\eta \\nabla L(w), \\qquad
              w \\leftarrow w + \\beta v - \\eta \\nabla L(w)

    References
    ----------
    Bishop & Bishop 2024 §7.3.1; Sutskever et al. 2013.
    """

    def __init__(self, lr: float | Schedule = 0.01, beta: float = 0.9, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta = check_real(beta, "beta", 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)
        self.velocity: Array | None = None

    def _reset_state(self, n_params: int, dtype: np.dtype) -> None:
        self.velocity = np.zeros(n_params, dtype=dtype)

    def update(self, params: Array, grad: Array, lr: float) -> None:
        if self.velocity is None or self.velocity.shape != params.shape:
            self._reset_state(params.shape[0], params.dtype)
        v = self.velocity
        v *= self.beta
        v -= lr * grad
        if self.nesterov:
            params += self.beta * v - lr * grad
        else:
            params += v

    def _hyper(self) -> str:
        return f"beta={self.beta:g}" + (", nesterov=True" if self.nesterov else "")


class RMSprop(FirstOrderOptimizer):
    """RMSprop: gradient descent scaled by a running root mean square of the gradient.

    Parameters
    ----------
    lr : float or callable
        Learning rate η or a schedule.
    rho : float
        Decay ρ of the running average of squared gradients, in [0, 1).
    eps : float
        ε > 0 added to the root mean square.
    weight_decay : float
        L2 coefficient λ ≥ 0 on the weights.

    Notes
    -----
    With r starting at 0 and g = ∇L(w), element-wise (Bishop & Bishop 2024 eq. 7.40–7.41):

    .. math:: r \\leftarrow \\rho r + (1 - \\rho) g^2, \\qquad
              w \\leftarrow w - \\frac{\\eta}{\\sqrt{r} + \\epsilon} g

    References
    ----------
    Bishop & Bishop 2024 §7.3.2; Tieleman & Hinton 2012 (Coursera lecture 6.5).
    """

    def __init__(self, lr: float | Schedule = 0.001, rho: float = 0.9, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.rho = check_real(rho, "rho", 0.0, 1.0, high_open=True)
        self.eps = check_real(eps, "eps", 0.0, low_open=True)
        self.r: Array | None = None

    def _reset_state(self, n_params: int, dtype: np.dtype) -> None:
        self.r = np.zeros(n_params, dtype=dtype)

    def update(self, params: Array, grad: Array, lr: float) -> None:
        if self.r is None or self.r.shape != params.shape:
            self._reset_state(params.shape[0], params.dtype)
        self.r *= self.rho
        self.r += (1.0 - self.rho) * grad * grad
        params -= lr * grad / (np.sqrt(self.r) + self.eps)

    def _hyper(self) -> str:
        return f"rho={self.rho:g}, eps={self.eps:g}"


class Adam(FirstOrderOptimizer):
    """Adam: momentum on the gradient and on its square, with bias correction.

    Parameters
    ----------
    lr : float or callable
        Learning rate η or a schedule.
    beta1, beta2 : float
        Decays of the first and second moment estimates, in [0, 1).
    eps : float
        ε > 0 added to the root of the second moment.
    weight_decay : float
        L2 coefficient λ ≥ 0 on the weights, added to the gradient (coupled L2, not AdamW).

    Notes
    -----
    With s = r = 0 initially, g = ∇L(w) and t the number of updates (minibatches) since
    ``reset``, including this one (attribute ``t``)
    (Bishop & Bishop 2024 eq. 7.42–7.46; Kingma & Ba 2015, Algorithm 1):

    .. math::
        s \\leftarrow \\beta_1 s + (1 - \\beta_1) g, \\quad
        r \\leftarrow \\beta_2 r + (1 - \\beta_2) g^2, \\quad
        \\hat s = \\frac{s}{1 - \\beta_1^t}, \\quad \\hat r = \\frac{r}{1 - \\beta_2^t}, \\quad
        w \\leftarrow w - \\frac{\\eta \\hat s}{\\sqrt{\\hat r} + \\epsilon}

    References
    ----------
    Bishop & Bishop 2024 §7.3.3; Kingma & Ba 2015.
    """

    def __init__(self, lr: float | Schedule = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = check_real(beta1, "beta1", 0.0, 1.0, high_open=True)
        self.beta2 = check_real(beta2, "beta2", 0.0, 1.0, high_open=True)
        self.eps = check_real(eps, "eps", 0.0, low_open=True)
        self.s: Array | None = None
        self.r: Array | None = None
        self.t = 0

    def _reset_state(self, n_params: int, dtype: np.dtype) -> None:
        self.s = np.zeros(n_params, dtype=dtype)
        self.r = np.zeros(n_params, dtype=dtype)
        self.t = 0

    def update(self, params: Array, grad: Array, lr: float) -> None:
        if self.s is None or self.s.shape != params.shape:
            self._reset_state(params.shape[0], params.dtype)
        self.t += 1
        t = self.t
        self.s *= self.beta1
        self.s += (1.0 - self.beta1) * grad
        self.r *= self.beta2
        self.r += (1.0 - self.beta2) * grad * grad
        s_hat = self.s / (1.0 - self.beta1**t)
        r_hat = self.r / (1.0 - self.beta2**t)
        params -= lr * s_hat / (np.sqrt(r_hat) + self.eps)

    def _hyper(self) -> str:
        return f"beta1={self.beta1:g}, beta2={self.beta2:g}, eps={self.eps:g}"


# ---------------------------------------------------------------------- the registry
#: Names accepted by ``train(optimizer=...)``, each mapped to a factory called with no
#: arguments (default hyperparameters).  Open: add names with :func:`register_optimizer`.
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "gd": GD,
    "momentum": Momentum,
    "nesterov": partial(Momentum, nesterov=True),
    "rmsprop": RMSprop,
    "adam": Adam,
}


def register_optimizer(name: str, factory: Callable[[], Optimizer]) -> None:
    """Make ``train(optimizer=name)`` use ``factory()`` (default hyperparameters).

    Raises
    ------
    ValueError
        If ``name`` is not a non-empty string or ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string; got {name!r}.")
    if not callable(factory):
        raise ValueError(f"`factory` must be callable; got {factory!r}.")
    OPTIMIZERS[name] = factory


def get_optimizer(optimizer: str | Optimizer) -> Optimizer:
    """Resolve an optimizer name (default hyperparameters) or pass an Optimizer through.

    Parameters
    ----------
    optimizer : str or Optimizer
        A name of ``OPTIMIZERS`` ("gd", "momentum", "nesterov", "rmsprop", "adam", and "lm",
        "trainbr" once :mod:`deltaprop.lm_training` is imported, as ``import deltaprop``
        does), or an ``Optimizer`` instance (returned as is).

    Examples
    --------
    >>> get_optimizer("nesterov")
    Momentum(lr=0.01, beta=0.9, nesterov=True)
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]()
    known = ", ".join(repr(k) for k in OPTIMIZERS)
    raise ValueError(f"`optimizer` must be one of {known} or an Optimizer; got {optimizer!r}.")
