"""Timing and peak-memory measurement for side-by-side comparisons.

Timing: both callables are warmed up, each is given a loop count so that one sample lasts at
least ``min_time`` seconds, and the samples are then taken alternately (A B, B A, A B, ...), so
that slow drifts of a shared, noisy machine hit both sides alike.  Each sample is the mean time
per call over its loop; a side is summarised by the median of its samples and their min–max.

Peak memory: two fresh Python subprocesses build the same inputs and one of them then calls the
operation once; the reported figure is the difference of their peak resident set sizes
(``VmHWM`` of /proc/self/status, which unlike ``ru_maxrss`` is not inherited across exec from
a big parent).  The same method serves NumPy and
PyTorch alike (tracemalloc sees only allocations made through Python's
allocator hooks, i.e. NumPy's, and would miss PyTorch's), and it counts everything the
operation touched at its high-water mark, including temporaries freed before it returned.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stats:
    """Summary of repeated timings of one side of a comparison.

    Attributes
    ----------
    median, low, high : float
        Median, minimum and maximum seconds per call over the samples.
    samples : int
        Number of samples.
    loops : int
        Calls per sample.
    """

    median: float
    low: float
    high: float
    samples: int
    loops: int

    @classmethod
    def from_samples(cls, seconds: list[float], loops: int = 1) -> Stats:
        """Summarise per-call times ``seconds`` (one per sample)."""
        return cls(statistics.median(seconds), min(seconds), max(seconds), len(seconds), loops)


def _sample(fn: Callable[[], object], loops: int) -> float:
    """Mean seconds per call of ``fn`` over ``loops`` calls."""
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Smallest power-of-two-ish loop count whose run of ``fn`` lasts ``min_time`` seconds.

    Parameters
    ----------
    fn : callable
        The operation, already warmed up.
    min_time : float
        Target seconds per sample.

    Returns
    -------
    int
        Loop count (1 for operations slower than ``min_time``).
    """
    loops = 1
    while True:
        elapsed = _sample(fn, loops) * loops
        if elapsed >= min_time or loops >= 1 << 20:
            return loops
        loops *= 2 if elapsed == 0 else max(2, min(10, int(1.2 * min_time / elapsed) + 1))


def time_pair(
    fn_a: Callable[[], object],
    fn_b: Callable[[], object],
    repeat: int = 7,
    min_time: float = 0.05,
    warmup: int = 2,
    loops: tuple[int, int] | None = None,
) -> tuple[Stats, Stats]:
    """Time two operations alternately.

    Parameters
    ----------
    fn_a, fn_b : callable
        Zero-argument operations (deltaprop first, the anchor second, by convention).
    repeat : int
        Samples per side (the medians are over these).
    min_time : float
        Seconds each sample should last at least; the loop count is set per side.
    warmup : int
        Untimed calls of each side before calibrating.
    loops : (int, int), optional
        Calls per sample of each side; calibrated when omitted (for slow operations pass
        ``(1, 1)`` and ``warmup=0`` after a warm call of each, e.g. the agreement check).

    Returns
    -------
    (Stats, Stats)
        Seconds per call of ``fn_a`` and of ``fn_b``.
    """
    for _ in range(warmup):
        fn_a()
        fn_b()
    if loops is None:
        loops = (calibrate(fn_a, min_time), calibrate(fn_b, min_time))
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            samples[side].append(_sample((fn_a, fn_b)[side], loops[side]))
    return Stats.from_samples(samples[0], loops[0]), Stats.from_samples(samples[1], loops[1])


def time_runs(
    run_a: Callable[[], float | None],
    run_b: Callable[[], float | None],
    repeat: int = 5,
) -> tuple[Stats, Stats]:
    """Time whole runs (e.g. training to a target) alternately, one run per sample.

    Each callable performs a complete run from the same start and returns its own measured
    seconds (so that it can exclude its set-up), or None to be timed from outside.

    Returns
    -------
    (Stats, Stats)
        Seconds per run of ``run_a`` and of ``run_b``.
    """
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            start = time.perf_counter()
            seconds = (run_a, run_b)[side]()
            samples[side].append(time.perf_counter() - start if seconds is None else seconds)
    return Stats.from_samples(samples[0]), Stats.from_samples(samples[1])


def _child_peak(cmd: list[str], env: dict[str, str], timeout: float) -> int:
    """Peak resident set size (bytes) that a ``benchmarks._memory`` child prints."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                          env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return int(proc.stdout.strip().splitlines()[-1])


def peak_memory(case: str, side: str, threads: int = 1, timeout: float = 900.0) -> int:
    """Peak resident-memory growth (bytes) of one call of one side of a case.

    Two fresh subprocesses build the same inputs; one then calls the operation.  The result is
    the difference of their peak resident set sizes (``VmHWM``, see ``benchmarks._memory``).

    Parameters
    ----------
    case : str
        A key of ``benchmarks.cases.MEMORY_SETUPS``.
    side : {"ours", "anchor"}
    threads : int
        BLAS and torch threads in the children.
    timeout : float
        Seconds before a child is abandoned.

    Returns
    -------
    int
        Peak RSS with the call minus peak RSS without it, in bytes.
    """
    cmd = [sys.executable, "-m", "benchmarks._memory", case, side, str(threads)]
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    base = _child_peak([*cmd, "setup"], env, timeout)
    return _child_peak([*cmd, "run"], env, timeout) - base
