"""Levenberg–Marquardt runs of deltaprop and torch-levenberg-marquardt, for ``cases_lm``.

The ``lm-sine`` and ``lm-epoch`` cases of ``python -m benchmarks`` time these: a whole run of
``deltaprop.training.train(net, X, y, LevenbergMarquardt(), goal=GOAL)`` against
``LevenbergMarquardtModule(model, MSELoss()).training_step`` repeated until its loss ≤ GOAL
(the torch model is :func:`benchmarks.anchors.torch_twin` of the same initial network,
float64, full batch), and the seconds of one epoch of each.  deltaprop's epoch includes the
loss and gradient that ``train`` evaluates after it.  (This began as the LM engineer's
standalone probe; its driver duplicated those two cases and is gone.)
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch_levenberg_marquardt.loss import MSELoss
from torch_levenberg_marquardt.training import LevenbergMarquardtModule

from deltaprop.lm_training import LevenbergMarquardt
from deltaprop.network import Network
from deltaprop.optimizers import TrainingProblem
from deltaprop.training import train

GOAL = 0.011


def time_deltaprop(net: Network, X: np.ndarray, y: np.ndarray,
                   max_epochs: int = 200) -> tuple[float, int, float]:
    """Seconds and epochs of ``train(..., LevenbergMarquardt(), goal=GOAL)``, final loss."""
    start = time.perf_counter()
    h = train(net, X, y, LevenbergMarquardt(), epochs=max_epochs, goal=GOAL)
    return time.perf_counter() - start, h.n_epochs, h.loss[-1]


def time_torch(model: torch.nn.Module, X: np.ndarray, y: np.ndarray, solve_method: str,
               max_epochs: int = 200) -> tuple[float, int, float]:
    """Seconds and epochs of torch-levenberg-marquardt's ``training_step`` until loss ≤ GOAL."""
    inputs = torch.from_numpy(X)
    targets = torch.from_numpy(y.reshape(len(y), -1))
    start = time.perf_counter()
    module = LevenbergMarquardtModule(model, loss_fn=MSELoss(), solve_method=solve_method)
    loss, epoch = float("inf"), 0
    while loss > GOAL and epoch < max_epochs:
        _, loss_t, stop, _ = module.training_step(inputs, targets)
        loss, epoch = float(loss_t), epoch + 1
        if stop:
            break
    return time.perf_counter() - start, epoch, loss


def epoch_seconds_deltaprop(net, X, y, epochs: int) -> float:
    """Median seconds of ``run_epoch`` plus the loss/gradient that ``train`` adds per epoch."""
    problem = TrainingProblem(net, X, y)
    opt = LevenbergMarquardt()
    opt.reset(net)
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        opt.run_epoch(problem, epoch)
        problem.gradient()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def epoch_seconds_torch(model, X, y, epochs: int, solve_method: str) -> float:
    """Median seconds of one ``training_step``."""
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    module = LevenbergMarquardtModule(model, loss_fn=MSELoss(), solve_method=solve_method)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        module.training_step(inputs, targets)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])
