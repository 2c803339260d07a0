"""Probe: deltaprop's Levenberg–Marquardt against torch-levenberg-marquardt, one thread.

Run ``python benchmarks/lm_probe.py [--seeds 5] [--repeats 3]``.  Two measurements:

1. Time to reach MSE ≤ 0.011 on y = sin(3x) + 0.1 ε, x ~ U[-1, 1], N = 2000
   (``deltaprop.datasets.sine(2000, 0.1, seed=0)``), a 1-20-20-1 tanh network, the SAME initial
   weights for both libraries (deltaprop's Glorot init copied into ``torch.nn.Linear``), float64,
   full batch: ``deltaprop.training.train(net, X, y, LevenbergMarquardt(), goal=0.011)`` against
   ``LevenbergMarquardtModule(model, MSELoss())`` with its defaults (QR solve) and with
   ``solve_method="cholesky"``, ``training_step`` repeated until its loss ≤ 0.011.
2. Seconds per epoch on 8-32-32-1 (P = 1377) with N = 4000 (x ~ N(0, I), t = sin(Σx) + 0.1 ε),
   median over epochs 2..E of a fixed number of epochs, against the default and Cholesky.
   deltaprop's epoch includes the loss and gradient that ``train`` evaluates after it.

Everything runs under ``threadpoolctl.threadpool_limits(1)`` and ``torch.set_num_threads(1)``;
the runs of the libraries are interleaved and each number is the median of ``--repeats``.
Ratios < 1 mean deltaprop is faster.  The goals of issue 5 are ≤ 0.5× (default), ≤ 0.8×
(Cholesky) and ≤ 0.6× per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch_levenberg_marquardt.loss import MSELoss
from torch_levenberg_marquardt.training import LevenbergMarquardtModule

import deltaprop
from deltaprop.lm_training import LevenbergMarquardt
from deltaprop.optimizers import TrainingProblem
from deltaprop.training import train

GOAL = 0.011


def torch_net(net: deltaprop.Network) -> torch.nn.Sequential:
    """A float64 torch copy of a tanh/identity MLP with the same weights."""
    layers: list[torch.nn.Module] = []
    for i, dense in enumerate(net.dense_layers):
        lin = torch.nn.Linear(dense.n_in, dense.n_out, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(dense.W.copy()))
            lin.bias.copy_(torch.from_numpy(dense.b.copy()))
        layers.append(lin)
        if i < len(net.dense_layers) - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def time_deltaprop(net: deltaprop.Network, X: np.ndarray, y: np.ndarray,
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


def time_to_goal(seeds: int, repeats: int) -> None:
    data = deltaprop.datasets.sine(2000, 0.1, seed=0)
    X, y = data.X, data.y
    print("1) 1-20-20-1 tanh, sine N=2000: seconds (epochs) to MSE <= 0.011, one thread")
    print(f"{'seed':>4} {'deltaprop':>16} {'torch qr':>16} {'torch chol':>16} "
          f"{'/qr':>6} {'/chol':>6}")
    ratios_qr, ratios_chol, per_epoch_chol = [], [], []
    for seed in range(seeds):
        base = deltaprop.mlp([1, 20, 20, 1], seed=seed)
        runs: dict[str, list[tuple[float, int, float]]] = {"dp": [], "qr": [], "chol": []}
        for _ in range(repeats):
            runs["dp"].append(time_deltaprop(base.copy(), X, y))
            runs["qr"].append(time_torch(torch_net(base), X, y, "qr"))
            runs["chol"].append(time_torch(torch_net(base), X, y, "cholesky"))
        med = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        ep = {k: v[0][1] for k, v in runs.items()}
        ratios_qr.append(med["dp"] / med["qr"])
        ratios_chol.append(med["dp"] / med["chol"])
        per_epoch_chol.append(med["dp"] / ep["dp"] / (med["chol"] / ep["chol"]))
        print(f"{seed:>4} {med['dp']:>10.3f} ({ep['dp']:>3}) {med['qr']:>10.3f} ({ep['qr']:>3})"
              f" {med['chol']:>10.3f} ({ep['chol']:>3}) {ratios_qr[-1]:>6.2f} "
              f"{ratios_chol[-1]:>6.2f}")
    print(f"geometric mean ratio: vs default (qr) {_gmean(ratios_qr):.2f}, "
          f"vs cholesky {_gmean(ratios_chol):.2f}; per epoch vs cholesky "
          f"{_gmean(per_epoch_chol):.2f}")


def per_epoch(epochs: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 8))
    y = np.sin(X.sum(axis=1)) + 0.1 * rng.standard_normal(4000)
    base = deltaprop.mlp([8, 32, 32, 1], seed=0)
    dp, tq, tc = [], [], []
    for _ in range(repeats):
        dp.append(_epoch_times_deltaprop(base.copy(), X, y, epochs))
        tq.append(_epoch_times_torch(torch_net(base), X, y, epochs, "qr"))
        tc.append(_epoch_times_torch(torch_net(base), X, y, epochs, "cholesky"))
    a, b, c = statistics.median(dp), statistics.median(tq), statistics.median(tc)
    print(f"2) 8-32-32-1 (P={base.n_params}), N=4000: seconds per epoch, one thread: "
          f"deltaprop {a:.4f}, torch default {b:.4f} (ratio {a / b:.2f}), "
          f"torch cholesky {c:.4f} (ratio {a / c:.2f})")


def _epoch_times_deltaprop(net, X, y, epochs: int) -> float:
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


def _epoch_times_torch(model, X, y, epochs: int, solve_method: str) -> float:
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    module = LevenbergMarquardtModule(model, loss_fn=MSELoss(), solve_method=solve_method)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        module.training_step(inputs, targets)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _gmean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        time_to_goal(args.seeds, args.repeats)
        per_epoch(args.epochs, args.repeats)


if __name__ == "__main__":
    main()
