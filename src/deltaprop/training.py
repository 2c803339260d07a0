"""The training loop: epochs of an optimizer, stopping rules, early stopping and a History.

``train`` repeats "forward, backward, update" (Bishop & Bishop 2024 §8.1) until one stopping
rule fires, always hands back the best parameters it saw, and never leaves NaN or half-updated
weights in ``net.params``.  The optimizer is any ``deltaprop.optimizers.Optimizer``; the
contract between the two is described in that module.

Epoch 0 is the initial state: History's first row holds the loss, validation loss and gradient
norm of the untrained network, so ``best_epoch == 0`` means "training never improved on the
start".  Epoch e ≥ 1 is recorded after the optimizer's e-th epoch, so a run that stops after E
epochs has E + 1 rows.

Stopping rules, checked after each recorded epoch (epoch 0 included) in this order:

==================================  ========================================================
stop_reason                          when
==================================  ========================================================
"diverged"                           a non-finite loss, validation loss, gradient norm or
                                     parameter
(the optimizer's reason)             ``EpochStep.stop_reason``, one of the optimizer's
                                     ``stop_reasons``, e.g. "mu reached mu_max" (LM)
"goal reached"                       training loss ≤ ``goal``
"gradient below min_grad"            full-batch gradient norm < ``min_grad``
"validation stopped improving"       no new best validation loss for ``patience`` epochs
"callback"                           a callback returned True
"max epochs"                         ``epochs`` epochs done
"max time"                           ``max_time`` seconds elapsed
"interrupted"                        KeyboardInterrupt inside ``train`` (also from a callback)
==================================  ========================================================

References
----------
Bishop & Bishop 2024 §8.1 (the loop), §9.3.2 (early stopping); Prechelt 1998, "Early stopping —
but when?", in *Neural Networks: Tricks of the Trade*, LNCS 1524; MATLAB Deep Learning Toolbox,
``trainlm``/``traingd`` (``max_fail``, ``goal``, ``min_grad``, ``time``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ._validation import check_positive_int
from .network import Network
from .optimizers import (
    OPTIMIZERS,
    EpochStep,
    Optimizer,
    TrainingProblem,
    check_real,
    get_optimizer,
)

Array = np.ndarray
Callback = Callable[[int, "History", Network], Any]

#: The loop's own stop reasons; an optimizer adds its ``stop_reasons``.
LOOP_STOP_REASONS = (
    "goal reached",
    "gradient below min_grad",
    "validation stopped improving",
    "max epochs",
    "max time",
    "diverged",
    "interrupted",
    "callback",
)


def stop_reasons() -> tuple[str, ...]:
    """Every value ``History.stop_reason`` can take: the loop's and those of every optimizer
    registered in ``OPTIMIZERS`` (``deltaprop.STOP_REASONS`` is this at import time)."""
    reasons = list(LOOP_STOP_REASONS)
    for factory in OPTIMIZERS.values():
        reasons += [r for r in factory().stop_reasons if r not in reasons]
    return tuple(reasons)


@dataclass(eq=False)
class History:
    """What happened during ``train``: one row per epoch, epoch 0 being the initial state.

    Attributes
    ----------
    epoch : list of int
        0, 1, ..., n_epochs.
    loss : list of float
        Full-batch training loss at the end of each epoch (the unpenalised ``net.loss``).
    val_loss : list of float
        Validation loss, NaN without validation data.
    grad_norm : list of float
        Euclidean norm of the full-batch gradient at the end of each epoch (of the loss plus
        the optimizer's penalty, e.g. weight decay).
    step : list of float
        Learning rate used in the epoch, or the damping μ for Levenberg–Marquardt (NaN at 0).
    seconds : list of float
        Wall-clock seconds since ``train`` started, at the end of each epoch.
    extras : dict of str to list of float
        Further columns reported by the optimizer (``EpochStep.extras``), NaN where missing.
    best_epoch : int
        Epoch with the lowest validation loss (with validation data), else the lowest training
        objective (the loss plus the optimizer's penalty; the loss when there is none), or the
        lowest ``epoch_score`` of an optimizer that ranks epochs itself (trainbr: the highest
        evidence).
    best_loss, best_val_loss : float
        Training and validation loss at ``best_epoch``.
    best_params : ndarray (P,)
        Parameters at ``best_epoch``; ``train`` leaves ``net.params`` equal to them.
    stop_reason : str
        One of ``LOOP_STOP_REASONS`` or of the optimizer's ``stop_reasons``.
    optimizer : str
        The optimizer's repr.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    step: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    best_loss: float = math.nan
    best_val_loss: float = math.nan
    best_params: Array | None = None
    stop_reason: str | None = None
    optimizer: str = ""

    @property
    def n_epochs(self) -> int:
        """Number of optimizer epochs run (the last recorded epoch)."""
        return self.epoch[-1] if self.epoch else 0

    def __len__(self) -> int:
        return len(self.epoch)

    def _append(self, epoch: int, loss: float, val_loss: float, grad_norm: float,
                step: float, seconds: float, extras: dict[str, float]) -> None:
        n = len(self.epoch)
        self.epoch.append(epoch)
        self.loss.append(float(loss))
        self.val_loss.append(float(val_loss))
        self.grad_norm.append(float(grad_norm))
        self.step.append(float(step))
        self.seconds.append(float(seconds))
        for key in extras:
            self.extras.setdefault(key, [math.nan] * n)
        for key, column in self.extras.items():
            column.append(float(extras.get(key, math.nan)))

    def as_dict(self) -> dict[str, Any]:
        """Per-epoch columns as arrays (extras included) plus the summary fields."""
        columns = {name: np.asarray(getattr(self, name)) for name in
                   ("epoch", "loss", "val_loss", "grad_norm", "step", "seconds")}
        columns.update({key: np.asarray(col) for key, col in self.extras.items()})
        return {**columns, "best_epoch": self.best_epoch, "best_loss": self.best_loss,
                "best_val_loss": self.best_val_loss, "best_params": self.best_params,
                "stop_reason": self.stop_reason, "optimizer": self.optimizer}

    def _describe(self, label: str, i: int) -> str:
        text = f"  {label} epoch {self.epoch[i]}: loss={self.loss[i]:.6g}"
        if not math.isnan(self.val_loss[i]):
            text += f", val_loss={self.val_loss[i]:.6g}"
        return text

    def __repr__(self) -> str:
        head = (f"History({self.n_epochs} epochs, stop_reason={self.stop_reason!r}, "
                f"optimizer={self.optimizer})")
        if not self.epoch:
            return head
        best = self.epoch.index(self.best_epoch) if self.best_epoch in self.epoch else 0
        return "\n".join([head, self._describe("best", best), self._describe("last", -1)])


# ---------------------------------------------------------------------- validation
@dataclass(frozen=True)
class _Rules:
    epochs: int
    goal: float
    min_grad: float
    patience: int
    max_time: float | None


def _check_rules(epochs: object, goal: object, min_grad: object, patience: object,
                 max_time: object) -> _Rules:
    if max_time is not None:
        max_time = check_real(max_time, "max_time", 0.0, low_open=True)
    return _Rules(
        epochs=check_positive_int(epochs, "epochs"),
        goal=check_real(goal, "goal", 0.0),
        min_grad=check_real(min_grad, "min_grad", 0.0),
        patience=check_positive_int(patience, "patience"),
        max_time=max_time,
    )


def _check_validation(net: Network, validation: object) -> tuple[Array, Array] | None:
    if validation is None:
        return None
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError(
            f"`validation` must be a pair (X_val, T_val) or None; got {type(validation).__name__}."
        )
    X_val = net.check_inputs(validation[0], "X_val")
    return X_val, net.check_targets(validation[1], X_val.shape[0], "T_val")


def _check_callbacks(callbacks: object) -> list[Callback]:
    if callable(callbacks):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise ValueError(f"`callbacks` must be a sequence of callables; got {callbacks!r}.")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise ValueError(
                f"`callbacks[{i}]` must be callable (epoch, history, net); got {cb!r}."
            )
    return callbacks


# ---------------------------------------------------------------------- the loop
class _Trainer:
    """State of one ``train`` call; each method is one step of the loop's bookkeeping."""

    def __init__(self, optimizer: Optimizer, problem: TrainingProblem,
                 validation: tuple[Array, Array] | None, rules: _Rules,
                 callbacks: list[Callback], progress: bool):
        self.optimizer = optimizer
        self.problem = problem
        self.net = problem.net
        self.validation = validation
        self.rules = rules
        self.callbacks = callbacks
        self.progress = bool(progress)
        self.bar: tqdm | None = None
        self.history = History(best_params=self.net.params.copy(), optimizer=repr(optimizer))
        self.best_score = math.inf
        self.start = time.perf_counter()

    def run(self) -> History:
        reason: str | None = None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self._progress():
            try:
                self.optimizer.reset(self.net)
                reason = self._record(0, EpochStep())
                epoch = 0
                while reason is None:
                    epoch += 1
                    reason = self._record(epoch, self._run_epoch(epoch))
            except KeyboardInterrupt:
                reason = "interrupted"
            finally:
                self.net.params[:] = self.history.best_params
        self.history.stop_reason = reason
        return self.history

    def _run_epoch(self, epoch: int) -> EpochStep:
        step = self.optimizer.run_epoch(self.problem, epoch)
        if not isinstance(step, EpochStep):
            raise ValueError(
                f"`optimizer`.run_epoch must return an EpochStep; got {type(step).__name__}."
            )
        declared = self.optimizer.stop_reasons
        if step.stop_reason is not None and step.stop_reason not in declared:
            raise ValueError(
                f"`optimizer` stopped with {step.stop_reason!r}, which is not one of its "
                f"declared `stop_reasons` {declared!r}."
            )
        return step

    def _record(self, epoch: int, step: EpochStep) -> str | None:
        """Evaluate the state after ``epoch``, add its row, and say whether to stop."""
        loss, objective, grad_norm = self._evaluate(step)
        val_loss = self._validation_loss()
        seconds = time.perf_counter() - self.start
        self.history._append(epoch, loss, val_loss, grad_norm, step.step, seconds, step.extras)
        finite = (math.isfinite(objective) and math.isfinite(grad_norm)
                  and (self.validation is None or math.isfinite(val_loss))
                  and bool(np.isfinite(self.net.params).all()))
        if finite:
            score = self.optimizer.epoch_score(loss, self.net.params)
            self._update_best(epoch, objective if score is None else score, val_loss)
        self._update_bar(epoch, loss, val_loss)
        by_callback = any([bool(cb(epoch, self.history, self.net)) for cb in self.callbacks])
        return self._stop_reason(epoch, step, finite, by_callback)

    def _evaluate(self, step: EpochStep) -> tuple[float, float, float]:
        """Loss, objective (loss + penalty) and its gradient norm at ``net.params``."""
        penalty, penalty_grad = self.optimizer.penalty(self.net.params)
        if step.loss is not None and step.grad_norm is not None:
            return float(step.loss), float(step.loss) + penalty, float(step.grad_norm)
        loss, grad = self.problem.gradient()
        if penalty_grad is not None:
            grad += penalty_grad
        loss = loss if step.loss is None else float(step.loss)
        grad_norm = np.linalg.norm(grad) if step.grad_norm is None else step.grad_norm
        return loss, loss + penalty, float(grad_norm)

    def _validation_loss(self) -> float:
        if self.validation is None:
            return math.nan
        X_val, T_val = self.validation
        return self.net.record_loss(self.net.propagate(X_val), T_val)

    def _update_best(self, epoch: int, objective: float, val_loss: float) -> None:
        """A new best: the lowest validation loss, or without validation the lowest objective
        (or the optimizer's ``epoch_score``)."""
        h = self.history
        new = val_loss if self.validation is not None else objective
        if epoch == 0 or new < self.best_score:
            self.best_score = new
            h.best_epoch, h.best_loss, h.best_val_loss = epoch, h.loss[-1], val_loss
            h.best_params = self.net.params.copy()

    def _stop_reason(self, epoch: int, step: EpochStep, finite: bool,
                     by_callback: bool) -> str | None:
        h, rules = self.history, self.rules
        checks = [
            (not finite, "diverged"),
            (step.stop_reason is not None, step.stop_reason),
            (h.loss[-1] <= rules.goal, "goal reached"),
            (h.grad_norm[-1] < rules.min_grad, "gradient below min_grad"),
            (self.validation is not None and epoch - h.best_epoch >= rules.patience,
             "validation stopped improving"),
            (by_callback, "callback"),
            (epoch >= rules.epochs, "max epochs"),
            (rules.max_time is not None and h.seconds[-1] >= rules.max_time, "max time"),
        ]
        return next((reason for fired, reason in checks if fired), None)

    @contextlib.contextmanager
    def _progress(self) -> Iterator[None]:
        if not self.progress:
            yield
            return
        self.bar = tqdm(total=self.rules.epochs, desc="train", unit="epoch")
        try:
            yield
        finally:
            self.bar.close()

    def _update_bar(self, epoch: int, loss: float, val_loss: float) -> None:
        if self.bar is None:
            return
        postfix = {"loss": f"{loss:.4g}"}
        if self.validation is not None:
            postfix["val_loss"] = f"{val_loss:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        if epoch > 0:
            self.bar.update(1)


def train(
    net: Network,
    X: object,
    T: object,
    optimizer: str | Optimizer = "adam",
    *,
    epochs: int = 1000,
    batch_size: int | None = None,
    validation: tuple[object, object] | None = None,
    goal: float = 0.0,
    min_grad: float = 1e-7,
    patience: int = 6,
    max_time: float | None = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    callbacks: Iterable[Callback] | Callback = (),
    progress: bool = False,
) -> History:
    """Train ``net`` in place until a stopping rule fires; return the History.

    Parameters
    ----------
    net : Network
        Trained in place; on return ``net.params`` equals ``history.best_params``.
    X : array_like (N, n_in)
    T : array_like (N, n_out), or (N,) for one output or integer labels with "ce"
    optimizer : str or Optimizer
        "gd", "momentum", "nesterov", "rmsprop", "adam", "lm" (default hyperparameters), or an
        optimizer object such as ``Adam(lr=1e-2)``.  Its state is reset at the start.
    epochs : int
        Maximum number of epochs (≥ 1).
    batch_size : int, optional
        Rows per minibatch; None means full batch; values above N are clipped to N.
    validation : (X_val, T_val), optional
        Held-out data for early stopping; the best parameters are then those of the lowest
        validation loss, otherwise those of the lowest training loss.
    goal : float
        Stop when the training loss ≤ goal (≥ 0).
    min_grad : float
        Stop when the full-batch gradient norm < min_grad (≥ 0; 0 disables the rule).
    patience : int
        Stop when the validation loss has not reached a new minimum for this many consecutive
        epochs (MATLAB's ``max_fail``; ≥ 1; unused without validation data).
    max_time : float, optional
        Stop after this many seconds (> 0), checked at the end of each epoch.
    shuffle : bool
        Reshuffle the rows every epoch when using minibatches.
    seed : int or numpy.random.Generator, optional
        Seed of the shuffling; the same seed gives a bit-identical History (but ``seconds``) and
        parameters.
    callbacks : sequence of callables
        Each is called as ``callback(epoch, history, net)`` after every recorded epoch (epoch 0
        included); a truthy return stops training with "callback".  A KeyboardInterrupt raised
        in one stops it with "interrupted".
    progress : bool
        Show a tqdm bar on stderr with the epoch, loss and validation loss.

    Returns
    -------
    History
        Per-epoch rows from epoch 0 (the initial state), the best epoch and parameters, and
        ``stop_reason`` (one of ``LOOP_STOP_REASONS`` or of the optimizer's ``stop_reasons``;
        see the module docstring for the rules).

    Notes
    -----
    The cost per epoch is the optimizer's plus one full-batch forward + backward pass for the
    recorded loss and gradient norm (shared with full-batch optimizers, which reuse it) and one
    forward pass over the validation data.  The parameters are restored to ``best_params`` on
    every exit, also when an exception propagates; floating-point warnings are silenced while
    training, as divergence is reported through ``stop_reason`` instead.

    References
    ----------
    Bishop & Bishop 2024 §8.1, §9.3.2; Prechelt 1998.

    Examples
    --------
    >>> import numpy as np, deltaprop
    >>> from deltaprop.training import train
    >>> X = np.linspace(-1, 1, 20).reshape(-1, 1)
    >>> net = deltaprop.mlp([1, 5, 1], seed=0)
    >>> history = train(net, X, X**2, "adam", epochs=50, seed=0)
    >>> history.stop_reason, len(history.loss)
    ('max epochs', 51)
    """
    opt = get_optimizer(optimizer)
    problem = TrainingProblem(net, X, T, batch_size=batch_size, shuffle=shuffle, seed=seed)
    data_val = _check_validation(net, validation)
    rules = _check_rules(epochs, goal, min_grad, patience, max_time)
    cbs = _check_callbacks(callbacks)
    if not np.isfinite(net.params).all():
        raise ValueError("`net` has non-finite parameters; re-initialise it before training.")
    return _Trainer(opt, problem, data_val, rules, cbs, progress).run()
