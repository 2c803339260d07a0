"""Cases for Levenberg–Marquardt: training against torch-levenberg-marquardt, the trainbr
estimator against scikit-learn, and the NIST StRD problems against scipy.

The LM training runs use ``benchmarks/lm_probe.py`` (the LM engineer's probe): same data,
same initial weights for both libraries, ``train(..., LevenbergMarquardt(), goal=0.011)``
against ``LevenbergMarquardtModule.training_step`` repeated until its loss ≤ 0.011.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np

from .anchors import torch_twin
from .core import Config, Disagree, Row, case, need, ratio_row
from .timing import REPO_ROOT, Stats, time_runs

GOAL_MSE = 0.011


def _probe():
    """``benchmarks.lm_probe`` (needs torch, tlm and ``deltaprop.lm_training``), or Skip."""
    need("torch")
    need("torch_levenberg_marquardt")
    need("deltaprop.lm_training", "LevenbergMarquardt")
    return need("benchmarks.lm_probe")


def _sine():
    import deltaprop

    data = deltaprop.datasets.sine(2000, 0.1, seed=0)
    return data.X, data.y


#: Seeds of the initial weights of the lm-sine case (``deltaprop.mlp(..., seed=s)``).
SINE_SEEDS = (0, 1, 2, 3, 4)


def _gmean(values) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _across_seeds(per_seed: list[float]) -> Stats:
    """A side summarised over seeds: geometric mean of the per-seed medians, their min–max."""
    return Stats(_gmean(per_seed), min(per_seed), max(per_seed), len(per_seed), 1)


def _time_three(runs, repeat: int) -> list[float]:
    """Median seconds of each of several whole runs, sampled in rotating order."""
    samples: list[list[float]] = [[] for _ in runs]
    for i in range(repeat):
        for j in range(len(runs)):
            side = (i + j) % len(runs)
            samples[side].append(runs[side]())
    return [statistics.median(s) for s in samples]


@case("lm-sine", "LM 1-20-20-1 sine N = 2000, time to MSE ≤ 0.011 (5 seeds)")
def lm_sine(cfg: Config) -> list[Row]:
    """Time to the goal from the same initial weights per seed, against tlm's default (QR)
    and Cholesky; the geometric mean over seeds of the per-seed time ratios, and the time per
    epoch separately (the epoch counts of the two libraries differ chaotically per seed)."""
    probe = _probe()
    import deltaprop

    X, y = _sine()
    seeds = SINE_SEEDS[:2] if cfg.quick else SINE_SEEDS
    repeat = max(3, cfg.repeat - 2) if cfg.quick else cfg.repeat
    methods = ("qr", "cholesky")
    times: dict[str, list[float]] = {k: [] for k in ("ours", *methods)}
    epochs: dict[str, list[int]] = {k: [] for k in times}
    for seed in seeds:
        base = deltaprop.mlp([1, 20, 20, 1], seed=seed)
        runs = {"ours": lambda b=base: probe.time_deltaprop(b.copy(), X, y)}
        for m in methods:
            runs[m] = lambda b=base, m=m: probe.time_torch(torch_twin(b), X, y, m)
        for name, run in runs.items():
            _, ep, loss = run()
            if loss > GOAL_MSE:
                raise Disagree(f"seed {seed}: {name} did not reach MSE ≤ {GOAL_MSE} "
                               f"({loss:.4g} after {ep} epochs)")
            epochs[name].append(ep)
        medians = _time_three([lambda r=r: r()[0] for r in runs.values()], repeat)
        for name, t in zip(runs, medians, strict=True):
            times[name].append(t)
    per_epoch = {k: [t / e for t, e in zip(times[k], epochs[k], strict=True)] for k in times}
    what = f"LM 1-20-20-1 tanh, sine N = 2000, to MSE ≤ {GOAL_MSE}, {len(seeds)} seeds"
    seed_text = f"seeds {seeds[0]}–{seeds[-1]}, same initial weights per seed, float64"
    rows = []
    for method, goal in zip(methods, (0.5, 0.8), strict=True):
        name = f"tlm {method}" + (" (default)" if method == "qr" else "")
        ratio = _gmean(np.divide(times["ours"], times[method]))
        note = (f"geometric mean of per-seed time ratios; time = geometric mean of per-seed "
                f"medians (min–max over seeds); epochs ours "
                f"{','.join(map(str, epochs['ours']))} vs "
                f"{','.join(map(str, epochs[method]))}; {seed_text}")
        rows.append(Row("lm-sine", what, _across_seeds(times["ours"]),
                        _across_seeds(times[method]), name, f"≤ {goal:g}", ratio,
                        ratio <= goal, note))
    for method in methods:
        ratio = _gmean(np.divide(per_epoch["ours"], per_epoch[method]))
        rows.append(Row("lm-sine", "LM 1-20-20-1 sine: time per epoch of the runs above",
                        _across_seeds(per_epoch["ours"]), _across_seeds(per_epoch[method]),
                        f"tlm {method}", "–", ratio, None,
                        "run time / epochs, geometric mean over the seeds; ours includes the "
                        "loss and gradient that train evaluates per epoch"))
    return rows


@case("lm-epoch", "LM epoch 8-32-32-1, N = 4000")
def lm_epoch(cfg: Config) -> list[Row]:
    """Seconds per epoch (median over epochs 2..8 of a run; runs alternated)."""
    probe = _probe()
    import deltaprop

    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 8))
    y = np.sin(X.sum(axis=1)) + 0.1 * rng.standard_normal(4000)
    base = deltaprop.mlp([8, 32, 32, 1], seed=0)
    epochs = 4 if cfg.quick else 8
    pair = time_runs(lambda: probe.epoch_seconds_deltaprop(base.copy(), X, y, epochs),
                     lambda: probe.epoch_seconds_torch(torch_twin(base), X, y, epochs, "qr"),
                     repeat=cfg.repeat)
    return [ratio_row("lm-epoch", f"LM epoch 8-32-32-1 tanh, N = 4000, P = {base.n_params}",
                      pair, "tlm default (qr)", 0.6,
                      f"median over epochs 2..{epochs} of each run; ours = run_epoch + gradient")]


def _diabetes_cv(estimator, cv) -> tuple[float, float]:
    """(mean R² over the folds, total fit seconds) of one 5-fold cross-validation."""
    from sklearn.model_selection import cross_validate

    X, y = need("sklearn.datasets").load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cross_validate(estimator, X, y, cv=cv, scoring="r2")
    return float(np.mean(res["test_score"])), float(np.sum(res["fit_time"]))


def _sklearn_lbfgs():
    """scikit-learn's MLPRegressor(lbfgs), standardised like deltaprop's estimator."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPRegressor(hidden_layer_sizes=(10,), activation="tanh", solver="lbfgs",
                       random_state=0)
    return make_pipeline(StandardScaler(),
                         TransformedTargetRegressor(mlp, transformer=StandardScaler()))


@case("trainbr-diabetes", "MLPRegressor(solver='trainbr') on diabetes, 5-fold")
def trainbr_diabetes(cfg: Config) -> list[Row]:
    """Cross-validated R² and fit time, hidden (10,) tanh for both; lbfgs with its defaults."""
    ours_cls = need("deltaprop.estimators", "MLPRegressor")
    need("sklearn")
    from sklearn.model_selection import KFold

    cv = KFold(5, shuffle=True, random_state=0)
    ours = ours_cls(hidden_layer_sizes=(10,), solver="trainbr", random_state=0)
    r2 = (_diabetes_cv(ours, cv)[0], _diabetes_cv(_sklearn_lbfgs(), cv)[0])
    pair = time_runs(lambda: _diabetes_cv(ours, cv)[1],
                     lambda: _diabetes_cv(_sklearn_lbfgs(), cv)[1],
                     repeat=max(3, cfg.repeat - 2) if cfg.quick else cfg.repeat)
    what = "MLPRegressor hidden (10,) tanh, diabetes, 5-fold (KFold shuffle, seed 0)"
    r2_row = Row("trainbr-diabetes", f"mean R², {what}", f"{r2[0]:.4f}", f"{r2[1]:.4f}",
                 "sklearn MLPRegressor(lbfgs)", "higher", None, r2[0] > r2[1],
                 "both standardise X and y")
    time_row = ratio_row("trainbr-diabetes", f"fit time (5 fits), {what}", pair,
                         "sklearn MLPRegressor(lbfgs)", 1.0)
    return [r2_row, time_row]


def _nist():
    """The tests' NIST StRD module (tests/nist_strd.py)."""
    tests = str(REPO_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return need("nist_strd")


#: The tests' options (tests/test_least_squares.py): ftol off, stop on the step or gradient.
NIST_OPTIONS = {"ftol": 0.0, "xtol": 1e-12, "gtol": 1e-12, "max_iter": 200_000}
SCIPY_OPTIONS = {"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15, "max_nfev": 100_000}
DIGITS = 6


def _nist_passes(solve) -> tuple[int, float, list[str]]:
    """(runs solved to ≥ 6 digits, seconds, failed runs) of ``solve(problem, x0)`` → (x, cost)."""
    nist = _nist()
    passed, failed, seconds = 0, [], 0.0
    for p in nist.load_all():
        for start, x0 in enumerate(p.starts, 1):
            t0 = time.perf_counter()
            x, cost = solve(p, x0)
            seconds += time.perf_counter() - t0
            ok = nist.lre(x, p.certified) >= DIGITS and nist.rss_lre(2 * cost, p) >= DIGITS
            passed += ok
            if not ok:
                failed.append(f"{p.name}/{start}")
    return passed, seconds, failed


def _ours_nist(damping: str):
    lm = need("deltaprop.least_squares", "levenberg_marquardt")

    def solve(p, x0):
        res = lm(p.residual, x0, p.jacobian, damping=damping, **NIST_OPTIONS)
        return res.x, res.cost

    return solve


def _scipy_nist(method: str):
    from scipy.optimize import least_squares

    def solve(p, x0):
        with np.errstate(all="ignore"):
            res = least_squares(p.residual, x0, p.jacobian, method=method, **SCIPY_OPTIONS)
        return res.x, res.cost

    return solve


@case("nist-strd", "NIST StRD: runs solved to ≥ 6 digits (of 54)")
def nist_strd(cfg: Config) -> list[Row]:
    """All 27 problems from both starts; one pass each (a count, not a timing)."""
    _nist()
    anchors = {m: _nist_passes(_scipy_nist(m)) for m in ("lm", "trf")}
    anchor_text = ", ".join(f"{m} {n}/54" for m, (n, _, _) in anchors.items())
    rows = []
    for damping in ("levenberg", "marquardt"):
        n, seconds, failed = _nist_passes(_ours_nist(damping))
        note = (f"one pass: ours {seconds:.2f} s; scipy "
                + ", ".join(f"{m} {s:.2f} s" for m, (_, s, _) in anchors.items())
                + (f"; ours failed {', '.join(failed)}" if failed else "")
                + "".join(f"; scipy {m} failed {', '.join(f)}" for m, (_, _, f) in anchors.items()
                          if f))
        rows.append(Row("nist-strd", f"NIST StRD runs solved, damping={damping!r}", f"{n}/54",
                        anchor_text, "scipy least_squares lm / trf", "54/54", None, n == 54,
                        note))
    return rows
