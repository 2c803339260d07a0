"""The ``deltaprop`` command: train, predict, evaluate and inspect networks on CSV files.

::

    deltaprop train                               # diabetes, LM, 70/15/15 split, progress bar
    deltaprop train --data FILE.csv --target COL [--target COL2 ...] [--task auto]
                    [--hidden 10,10] [--activation tanh] [--topology mlp|cascade]
                    [--solver lm] [--epochs N]
                    [--val-split 0.15] [--test-split 0.15] [--seed 0] [--out model.npz]
                    [--plot PREFIX] [--json] [--quiet]
    deltaprop train --dataset NAME ...            # a built-in data set (see `deltaprop datasets`)
    deltaprop predict --model M --data FILE.csv [--out preds.csv]
    deltaprop evaluate --model M --data FILE.csv [--json]
    deltaprop inspect --model M [--data FILE.csv] [--plot PREFIX] [--json]
    deltaprop datasets [--json]

CSV files have a header row; the feature columns must hold finite numbers
(:mod:`deltaprop.tabular` reads them).  For ``train`` every column that is not a ``--target``
is a feature; ``predict``, ``evaluate`` and ``inspect`` pick the model's feature columns by
name and ignore the others.  Class labels are kept exactly (integers as int64, never through
a float).

Task detection (``--task auto``): a single target column whose values are not all numbers
holds class labels (classification); a numeric one is classification when its values are
integers with between 2 and 20 distinct values and at least 5 rows per value on average
(N ≥ 5k); anything else is regression.  The choice is printed; ``--task`` overrides it.

Outputs.  ``--out`` and ``--plot`` files are checked before any work (writable, not a
folder, not one of the command's inputs, even through links) and written atomically: a
complete new file or the old one, never a truncated file or a leftover temporary one.

Terminal text.  Strings read from files (names, labels, a model's training summary) are
printed with control characters escaped (:mod:`deltaprop.terminal`); predictions written to
a terminal likewise, predictions written to a file or a pipe exactly.

Exit status: 0 success; 2 a usage error or bad input, including a model or data set too big
for memory (one line ``deltaprop: error: ...`` on stderr naming the file, line and column
where known); 130 interrupted by Ctrl-C (SIGINT) and 143 by SIGTERM (with ``--out``,
``train`` first saves the best model so far and says so); 1 an internal error (one line; set
``DELTAPROP_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn, TextIO

import numpy as np

from . import __version__
from .estimator_io import load_estimator, save_estimator
from .estimators import MLPClassifier, MLPRegressor
from .model_io import ModelFileError, to_jsonable
from .network import TOPOLOGIES
from .outputs import OutputError, check_writable, same_file, write_atomically
from .solvers import SOLVER_TABLE, SOLVERS, get_solver
from .tabular import LabelRangeError, Table, TableError, label_column, numeric_matrix, read_csv
from .terminal import json_text, printable

Array = np.ndarray

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
#: 128 + the signal's number, as a shell reports a process ended by it.
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
HIDDEN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "softplus", "elu", "identity")
#: Auto task rule: at most this many distinct integer labels, and N >= ROWS_PER_CLASS * k.
MAX_AUTO_CLASSES, ROWS_PER_CLASS = 20, 5
#: inspect: the whole Hessian spectrum up to this many parameters, else the ends by Lanczos.
DENSE_SPECTRUM_MAX, SPECTRUM_ENDS = 2000, 6


class CliError(Exception):
    """A user error: reported as one line ``deltaprop: error: ...``, exit status 2."""


#: Errors reported as one line with exit status 2.
USER_ERRORS = (CliError, ModelFileError, TableError, OutputError)


# ---------------------------------------------------------------------------- signals
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised as Python raises KeyboardInterrupt for Ctrl-C, so training
    stops as for Ctrl-C and keeps its best parameters."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Signals:
    """SIGINT and SIGTERM while the command runs.

    The first signal raises :class:`Interrupted` where the program is, unless
    :meth:`deferred` is active (saving the trained model, writing plots, printing the
    report): then it is only noted, and the command ends with 130 or 143 once that work is
    done.  Later signals are only noted, so they cannot cut short the save of the model the
    first one asked for.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if not self._deferring:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle both signals (in the main thread only) and restore the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Note a first signal instead of raising it while the block runs."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False


def _signal_exit(signum: int) -> tuple[str, int]:
    """("interrupted", 130) for SIGINT, ("terminated", 143) for SIGTERM."""
    if signum == signal.SIGTERM:
        return "terminated", EXIT_TERMINATED
    return "interrupted", EXIT_INTERRUPTED


# ---------------------------------------------------------------------------- arguments
class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors raise CliError (one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of positive integers such as 10 or 10,10")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer in [0, 2**32)")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, 1)")
    return value


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a network on a CSV file or a built-in data set",
                       description="Train a network; with no options, on the diabetes data "
                                   "with Levenberg-Marquardt.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="FILE.csv", help="CSV file with a header row")
    source.add_argument("--dataset", metavar="NAME",
                        help="built-in data set (default: diabetes; see 'deltaprop datasets')")
    p.add_argument("--target", metavar="COL", action="append",
                   help="target column of --data (repeat for several outputs)")
    p.add_argument("--task", choices=("auto", "regression", "classification"), default="auto",
                   help="auto: classification for text labels or 2-20 distinct integers with "
                        ">= 5 rows each on average, else regression")
    p.add_argument("--hidden", type=_hidden, default=(10,), metavar="10,10",
                   help="hidden layer widths (default 10)")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh")
    p.add_argument("--topology", choices=TOPOLOGIES, default="mlp",
                   help="mlp: each layer reads the previous one; cascade: each layer reads the "
                        "inputs and every earlier layer (MATLAB's cascadeforwardnet)")
    p.add_argument("--solver", choices=SOLVERS, default="lm",
                   help="; ".join(f"{s.name}: {s.summary}" for s in SOLVER_TABLE.values()))
    p.add_argument("--epochs", type=_positive_int, metavar="N",
                   help="maximum epochs (default: " + ", ".join(
                       f"{s.default_max_iter} for {s.name}" for s in SOLVER_TABLE.values()) + ")")
    p.add_argument("--val-split", type=_fraction, default=0.15, metavar="F",
                   help="fraction of rows for validation and early stopping (0: none); " +
                        ", ".join(s.name for s in SOLVER_TABLE.values()
                                  if not s.stops_on_validation) +
                        " only report on them, stopping by their own rule")
    p.add_argument("--test-split", type=_fraction, default=0.15, metavar="F",
                   help="fraction of rows held out for testing (0: none)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split and the weights")
    p.add_argument("--out", metavar="model.npz", help="write the trained model here")
    p.add_argument("--plot", metavar="PREFIX",
                   help="write PREFIX_loss.png and PREFIX_regression.png or _confusion.png")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(run=cmd_train)


def _add_model_commands(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with a model on a CSV file")
    p.add_argument("--model", required=True, metavar="M")
    p.add_argument("--data", required=True, metavar="FILE.csv")
    p.add_argument("--out", metavar="preds.csv", help="write here instead of stdout")
    p.set_defaults(run=cmd_predict)
    p = sub.add_parser("evaluate", help="metrics of a model on a CSV file with targets")
    p.add_argument("--model", required=True, metavar="M")
    p.add_argument("--data", required=True, metavar="FILE.csv")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)
    p = sub.add_parser("inspect", help="architecture, training summary and curvature")
    p.add_argument("--model", required=True, metavar="M")
    p.add_argument("--data", metavar="FILE.csv",
                   help="also loss, gradient norm and Hessian eigenvalues on this data")
    p.add_argument("--plot", metavar="PREFIX", help="with --data: PREFIX_eigenvalues.png")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_inspect)
    p = sub.add_parser("datasets", help="list the built-in data sets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_datasets)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``deltaprop`` command."""
    parser = _Parser(prog="deltaprop", description="Backpropagation done exactly: train, "
                     "predict with, evaluate and inspect feed-forward networks.",
                     epilog="Exit status: 0 ok, 2 bad usage or input, 130 interrupted "
                            "(Ctrl-C), 143 terminated (SIGTERM), 1 internal error.")
    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_model_commands(sub)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and cross-check the arguments (CliError for anything wrong)."""
    args = build_parser().parse_args(argv)
    if args.command is None:
        raise CliError("choose a command: train, predict, evaluate, inspect or datasets "
                       "(see 'deltaprop --help')")
    if args.command == "train":
        _check_train_args(args)
    return args


def _check_train_args(args: argparse.Namespace) -> None:
    if args.val_split + args.test_split >= 1:
        raise CliError(f"--val-split {args.val_split:g} and --test-split {args.test_split:g} "
                       "leave no training rows; their sum must be below 1")
    if args.data is not None and not args.target:
        raise CliError("--data needs at least one --target COL naming the target column")
    if args.data is None and args.target:
        raise CliError("--target applies to --data only; a built-in data set has its target")
    outputs = [("--out", args.out)] if args.out is not None else []
    if args.plot is not None:
        outputs += [("--plot", f"{args.plot}_{kind}.png")
                    for kind in ("loss", "regression", "confusion")]
    _check_outputs(outputs, [("--data", args.data)] if args.data is not None else [])


def _check_outputs(outputs: Sequence[tuple[str, str]],
                   inputs: Sequence[tuple[str, str]]) -> None:
    """Before any work: every output writable, none naming an input or another output
    (compared after resolving links, so a symbolic or hard link to an input counts)."""
    for i, (option, path) in enumerate(outputs):
        for other, source in inputs:
            if same_file(path, source):
                raise CliError(f"{option} {path}: is the same file as {other} {source}; "
                               "refusing to overwrite an input")
        for other, earlier in outputs[:i]:
            if same_file(path, earlier):
                raise CliError(f"{option} {path}: is the same file as {other} {earlier}")
        try:
            check_writable(path)
        except OutputError as exc:
            raise CliError(f"{option} {exc}") from exc


# ---------------------------------------------------------------------------- the data
@dataclass
class Data:
    """Inputs and targets of one training run, with names."""

    source: str
    X: Array
    y: Array
    task: str
    task_note: str
    feature_names: list[str]
    target_names: list[str]
    class_names: list[str] | None = None


def _auto_task(y: Array, n_targets: int) -> tuple[str, str]:
    """The task the target column(s) suggest, and why (see the module docstring)."""
    if n_targets > 1:
        return "regression", f"auto: {n_targets} target columns"
    if y.dtype.kind not in "iuf":
        return "classification", "auto: the target holds text labels"
    k = np.unique(y).shape[0]
    if y.dtype.kind in "iu" and 2 <= k <= MAX_AUTO_CLASSES and y.shape[0] >= ROWS_PER_CLASS * k:
        return "classification", f"auto: the target holds {k} distinct integers"
    return "regression", "auto: the target holds numbers"


def _csv_targets(table: Table, targets: list[str], task: str) -> tuple[Array, str, str]:
    for name in targets:
        table.column_index(name)
    if len(set(targets)) != len(targets):
        raise CliError("--target names a column twice")
    if task == "classification" and len(targets) > 1:
        raise CliError("--task classification takes exactly one --target column")
    if task == "auto" and len(targets) > 1:
        task, note = "regression", f"auto: {len(targets)} target columns"
    elif task == "auto":
        try:
            task, note = _auto_task(label_column(table, targets[0]), 1)
        except LabelRangeError:  # integers beyond int64 are numbers, not labels
            task, note = "regression", "auto: the target holds numbers"
    else:
        note = "chosen with --task"
    if task == "classification":
        return label_column(table, targets[0]), task, note
    y = numeric_matrix(table, targets)
    return (y[:, 0] if len(targets) == 1 else y), task, note


def load_train_data(args: argparse.Namespace) -> Data:
    """The training data from --data (CSV) or --dataset (built-in)."""
    if args.data is None:
        return _builtin_data(args.dataset, args.task)
    table = read_csv(args.data)
    y, task, note = _csv_targets(table, list(args.target), args.task)
    features = [h for h in table.header if h not in args.target]
    if not features:
        raise CliError(f"{args.data}: has no feature columns besides the target(s)")
    X = numeric_matrix(table, features)
    return Data(args.data, X, y, task, note, features, list(args.target))


def _builtin_data(name: str | None, task: str) -> Data:
    from . import datasets

    name = datasets.DEFAULT_DATASET if name is None else name
    try:
        ds = datasets.load(name)
    except ValueError as exc:
        raise CliError(f"--dataset: {exc}") from None
    if task not in ("auto", ds.task):
        raise CliError(f"--task {task}: data set {name!r} is a {ds.task} problem")
    classes = list(ds.class_names) if ds.task == "classification" else None
    return Data(name, ds.X, ds.y, ds.task, "the built-in data set's task", list(ds.feature_names),
                list(ds.target_names), classes)


def _split_indices(data: Data, val: float, test: float,
                   seed: int) -> dict[str, Array]:
    """Row indices of the train/validation/test parts (stratified for classification)."""
    from sklearn.model_selection import train_test_split

    n = data.X.shape[0]
    n_test = max(1, round(test * n)) if test > 0 else 0
    n_val = max(1, round(val * n)) if val > 0 else 0
    if n - n_test - n_val < 1:
        raise CliError(f"{data.source}: {n} rows are too few for --val-split {val:g} and "
                       f"--test-split {test:g}")
    parts, rest = {}, np.arange(n)
    for name, size in (("test", n_test), ("validation", n_val)):
        if size == 0:
            parts[name] = rest[:0]
            continue
        strat = data.y[rest] if data.task == "classification" else None
        try:
            rest, parts[name] = train_test_split(rest, test_size=size, random_state=seed,
                                                 stratify=strat)
        except ValueError:
            rest, parts[name] = train_test_split(rest, test_size=size, random_state=seed)
    return {"train": np.sort(rest), "validation": np.sort(parts["validation"]),
            "test": np.sort(parts["test"])}


def _check_classes(data: Data, train_rows: Array) -> None:
    labels = np.unique(data.y)
    if labels.shape[0] < 2:
        raise CliError(f"{data.source}: the target has 1 class ({labels.tolist()[0]!r}); "
                       "classification needs at least 2")
    missing = np.setdiff1d(labels, data.y[train_rows])
    if missing.size:
        raise CliError(f"{data.source}: class {missing.tolist()[0]!r} has too few rows to "
                       "appear in the training split; add rows or lower "
                       "--val-split/--test-split")


# ---------------------------------------------------------------------------- metrics
def metrics(task: str, y: Array, pred: Array) -> dict[str, Any]:
    """Rows, MSE and R² (regression, uniform average over outputs) or accuracy.

    R² is None for fewer than 2 rows or a constant target column (undefined there).  Both
    are computed on y and pred divided by a power of two near their largest magnitude (the
    same numbers, as powers of two commute with rounding), so data near 1e300 gives its R²
    and an MSE that is infinite only when the true MSE exceeds float64.
    """
    from sklearn.metrics import accuracy_score, mean_squared_error, r2_score

    n = int(y.shape[0])
    if n == 0:
        return {"rows": 0}
    if task == "classification":
        return {"rows": n, "accuracy": float(accuracy_score(y, pred))}
    Y, P = y.reshape(n, -1), pred.reshape(n, -1)
    _, e = np.frexp(max(np.max(np.abs(Y)), np.max(np.abs(P))))
    Y, P = np.ldexp(Y, -e), np.ldexp(P, -e)
    with np.errstate(over="ignore"):
        mse = float(np.ldexp(mean_squared_error(Y.ravel(), P.ravel()), 2 * e))
    r2 = None
    if n > 1:  # force_finite=False: a constant column gives nan or -inf, reported as None
        per_output = r2_score(Y, P, multioutput="raw_values", force_finite=False)
        r2 = float(np.mean(per_output)) if np.all(np.isfinite(per_output)) else None
    return {"rows": n, "mse": mse, "r2": r2}


def _format_metrics(task: str, table: dict[str, dict[str, Any]]) -> list[str]:
    cols = ("accuracy",) if task == "classification" else ("mse", "r2")
    titles = {"accuracy": "accuracy", "mse": "MSE", "r2": "R²"}
    lines = [f"{'':<12}{'rows':>6}" + "".join(f"{titles[c]:>14}" for c in cols)]
    for name, row in table.items():
        cells = []
        for c in cols:
            value = row.get(c)
            cells.append("-" if value is None else f"{value:.6g}" if c == "mse" else f"{value:.4f}")
        lines.append(f"{name:<12}{row['rows']:>6}" + "".join(f"{v:>14}" for v in cells))
    return lines


def _print_json(document: dict[str, Any]) -> None:
    print(json_text(to_jsonable(document)))


def _emit(*lines: str) -> None:
    """Print text lines for a person, strings from files escaped (:func:`printable`; a
    newline inside a name shows as ``\x0a``)."""
    for line in lines:
        print(printable(line))


def _predict(est: Any, X: Array, source: str) -> Array:
    """``est.predict(X)``, its ValueErrors (e.g. an overflowing prediction) as CliError."""
    try:
        return est.predict(X)
    except ValueError as exc:
        raise CliError(f"{source}: cannot predict: {exc}") from exc


def _memory_error(source: str, exc: BaseException) -> CliError:
    detail = str(exc) or "an allocation failed"
    return CliError(f"{source}: not enough memory ({detail}); use smaller --hidden layers, "
                    "fewer rows, or --solver adam, sgd or gd, which store no Jacobian or "
                    "Gauss-Newton matrix")


# ---------------------------------------------------------------------------- train
def _make_estimator(args: argparse.Namespace, task: str) -> MLPRegressor | MLPClassifier:
    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=args.hidden, activation=args.activation,
               topology=args.topology, solver=args.solver, max_iter=args.epochs,
               random_state=args.seed, verbose=not args.quiet)


def _fit(args: argparse.Namespace, data: Data,
         parts: dict[str, Array]) -> MLPRegressor | MLPClassifier:
    est = _make_estimator(args, data.task)
    tr, va = parts["train"], parts["validation"]
    # A solver that picks its own epoch (trainbr, by the evidence) only reports on the
    # validation rows, as MATLAB's trainbr does; every other solver stops early on them.
    stops_on_validation = va.size and get_solver(args.solver).stops_on_validation
    validation = (data.X[va], data.y[va]) if stops_on_validation else None
    try:
        est.fit(data.X[tr], data.y[tr], validation_data=validation)
    except MemoryError as exc:
        raise _memory_error(data.source, exc) from exc
    except ValueError as exc:
        raise CliError(f"{data.source}: training failed: {exc}") from exc
    return est


def _train_report(args: argparse.Namespace, data: Data, est: Any,
                  scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    h = est.history_
    return {
        "command": "train", "data": data.source, "task": data.task, "task_rule": data.task_note,
        "features": data.feature_names, "targets": data.target_names,
        "classes": est.classes_.tolist() if data.task == "classification" else None,
        "architecture": {"sizes": est.net_.sizes, "activation": args.activation,
                         "topology": args.topology, "parameters": est.net_.n_params},
        "solver": args.solver, "seed": args.seed, "stop_reason": est.stop_reason_,
        "epochs": est.n_iter_, "best_epoch": est.best_epoch_,
        "seconds": h.seconds[-1] if h.seconds else 0.0, "metrics": scores,
        "model": None, "plots": [], "interrupted": est.stop_reason_ == "interrupted",
    }


def _write_train_plots(prefix: str, data: Data, est: Any, parts: dict[str, Array]) -> list[str]:
    from . import plots

    rows = parts["test"] if parts["test"].size else parts["train"]
    title = "Test" if parts["test"].size else "Training"
    loss_path = f"{prefix}_loss.png"
    try:
        plots.plot_loss(est.history_, loss_path)
        if data.task == "classification":
            other = f"{prefix}_confusion.png"
            plots.plot_confusion(data.y[rows], est.predict(data.X[rows]),
                                 labels=est.classes_.tolist(), path=other, title=title)
        else:
            other = f"{prefix}_regression.png"
            plots.plot_regression(data.y[rows], est.predict(data.X[rows]), other, title=title)
    except ValueError as exc:
        raise CliError(f"--plot: {exc}") from exc
    return [loss_path, other]


def _save_trained(path: str, data: Data, est: Any, report: dict[str, Any]) -> None:
    extra = {"source": data.source, "task_rule": data.task_note, "seed": report["seed"],
             "metrics": report["metrics"], "class_names": data.class_names,
             "split": {k: v["rows"] for k, v in report["metrics"].items()}}
    try:
        save_estimator(est, path, feature_names=data.feature_names,
                       target_names=data.target_names, extra=extra)
    except ModelFileError as exc:
        raise CliError(f"--out {exc}") from exc
    except ValueError as exc:  # names or metadata that a model file cannot hold
        raise CliError(f"--out {path}: {exc}") from exc


def _print_train_text(report: dict[str, Any], data: Data) -> None:
    sizes = "-".join(map(str, report["architecture"]["sizes"]))
    _emit(f"{report['task']} on {data.source} ({report['task_rule']}): {sizes} network, "
          f"{report['architecture']['parameters']} parameters, solver {report['solver']}",
          f"stop reason: {report['stop_reason']} (best epoch {report['best_epoch']} of "
          f"{report['epochs']}, {report['seconds']:.2f} s)",
          *_format_metrics(report["task"], report["metrics"]))
    if report["model"]:
        _emit(f"model saved to {report['model']}")
    for path in report["plots"]:
        _emit(f"plot written to {path}")


def _report_training(args: argparse.Namespace, data: Data, est: Any,
                     parts: dict[str, Array]) -> dict[str, Any]:
    """Metrics per split, the model file and plots on request, the report printed."""
    scores = {name: metrics(data.task, data.y[idx], _predict(est, data.X[idx], data.source))
              for name, idx in parts.items() if idx.size}
    report = _train_report(args, data, est, scores)
    if args.out is not None:
        _save_trained(args.out, data, est, report)
        report["model"] = args.out
    if args.plot is not None:
        report["plots"] = _write_train_plots(args.plot, data, est, parts)
    if args.json:
        _print_json(report)
    else:
        _print_train_text(report, data)
    return report


def cmd_train(args: argparse.Namespace) -> int:
    """``deltaprop train``: fit, report metrics per split, save and plot on request.

    SIGINT or SIGTERM during training ends it as Ctrl-C does (the best parameters kept);
    the model is then saved and reported as usual, and the status is 130 or 143.
    """
    signals: Signals = args.signals
    data = load_train_data(args)
    parts = _split_indices(data, args.val_split, args.test_split, args.seed)
    if data.task == "classification":
        _check_classes(data, parts["train"])
    est = _fit(args, data, parts)
    with signals.deferred():
        _report_training(args, data, est, parts)
    if est.stop_reason_ != "interrupted" and signals.received is None:
        return EXIT_OK
    word, status = _signal_exit(signals.received or signal.SIGINT)
    saved = (f"saved the best model so far (epoch {est.best_epoch_}) to {args.out}"
             if args.out else "nothing saved (no --out given)")
    print(printable(f"deltaprop: {word}: {saved}"), file=sys.stderr)
    return status


# ---------------------------------------------------------------------------- model commands
def _model_targets(est: Any, info: dict[str, Any], table: Table) -> Array:
    """The model's target column(s) of ``table``, as the estimator's fit would take them."""
    names = info["target_names"]
    if info["task"] == "regression":
        y = numeric_matrix(table, names)
        return y[:, 0] if est.target_1d_ else y
    c, classes = table.column_index(names[0]), est.classes_
    labels = label_column(table, names[0])
    if classes.dtype.kind in "iuf":
        known = np.isin(labels, classes) if labels.dtype.kind in "iuf" else \
            np.zeros(labels.shape[0], dtype=bool)
    else:
        labels = np.array([row[c] for row in table.rows])
        known = np.isin(labels, classes)
    if not known.all():
        r = int(np.argmin(known))
        raise CliError(f"{table.path}: line {table.lines[r]}, column {names[0]!r}: label "
                       f"{table.rows[r][c]!r} is not one of the model's classes "
                       f"{', '.join(map(str, classes.tolist()))}")
    return labels


def _predictions_csv(info: dict[str, Any], pred: Array, escape: bool) -> str:
    """The predictions as CSV text: a header of target names, one row per input row.

    With ``escape`` (output to a terminal) strings are shown escaped (:func:`printable`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if info["task"] == "classification":
        rows = [[str(v)] for v in pred.tolist()]
    else:
        rows = [[repr(float(v)) for v in np.atleast_1d(row)]
                for row in pred.reshape(pred.shape[0], -1)]
    show = printable if escape else str
    writer.writerow([show(name) for name in info["target_names"]])
    writer.writerows([[show(cell) for cell in row] for row in rows])
    return out.getvalue()


def cmd_predict(args: argparse.Namespace) -> int:
    """``deltaprop predict``: one CSV row of predictions per input row."""
    outputs = [("--out", args.out)] if args.out is not None else []
    _check_outputs(outputs, [("--model", args.model), ("--data", args.data)])
    est, info = load_estimator(args.model)
    table = read_csv(args.data)
    pred = _predict(est, numeric_matrix(table, info["feature_names"]), args.data)
    if args.out is None:
        sys.stdout.write(_predictions_csv(info, pred, escape=sys.stdout.isatty()))
        return EXIT_OK
    data = _predictions_csv(info, pred, escape=False).encode("utf-8")
    try:
        write_atomically(args.out, lambda fh: fh.write(data))
    except OutputError as exc:
        raise CliError(f"--out {exc}") from exc
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``deltaprop evaluate``: metrics of the model on a CSV file holding the targets."""
    est, info = load_estimator(args.model)
    table = read_csv(args.data)
    X = numeric_matrix(table, info["feature_names"])
    y = _model_targets(est, info, table)
    result = metrics(info["task"], y, _predict(est, X, args.data))
    if args.json:
        _print_json({"command": "evaluate", "model": args.model, "data": args.data,
                     "task": info["task"], "metrics": result})
    else:
        _emit(f"{info['task']} model {args.model} on {args.data}:",
              *_format_metrics(info["task"], {"data": result}))
    return EXIT_OK


# ---------------------------------------------------------------------------- inspect
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _saved_metrics(info: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The metrics ``train`` stored in the model (``extra["metrics"]``), checked."""
    raw = info["extra"].get("metrics")
    if raw is None:
        return None
    cols = ("accuracy",) if info["task"] == "classification" else ("mse", "r2")
    ok = isinstance(raw, dict) and all(
        isinstance(row, dict) and isinstance(row.get("rows"), int) and _is_number(row["rows"])
        and all(row.get(c) is None or _is_number(row[c]) for c in cols)
        for row in raw.values())
    if not ok:
        raise CliError(f"{path}: the metrics stored in the model (metadata 'extra' "
                       "'metrics') are malformed")
    return raw


def _summary(est: Any, info: dict[str, Any], path: str) -> dict[str, Any]:
    net, training = est.net_, info["training"]
    return {
        "command": "inspect", "model": path, "task": info["task"],
        "features": info["feature_names"], "targets": info["target_names"],
        "classes": info["classes"],
        "architecture": {"sizes": net.sizes, "activations": net.activation_names,
                         "topology": net.topology,
                         "loss": net.loss_name, "dtype": str(np.dtype(net.dtype))},
        "parameters": net.n_params,
        "training": {k: training.get(k) for k in ("solver", "n_iter", "stop_reason",
                                                  "best_epoch", "best_loss", "best_val_loss",
                                                  "seconds", "gamma", "alpha", "beta")
                     if k in training},
        "metrics": _saved_metrics(info, path),
    }


def hessian_spectrum(net: Any, X: Array, T: Array) -> tuple[Array, bool]:
    """Hessian eigenvalues (ascending) and whether they are all of them.

    For P ≤ ``DENSE_SPECTRUM_MAX`` the whole spectrum (dense eigenvalues, exact); otherwise
    the ``SPECTRUM_ENDS`` smallest and largest by Lanczos (``hessian_eigenvalues``, "BE").
    """
    from .curvature import hessian_eigenvalues

    if net.n_params <= DENSE_SPECTRUM_MAX:
        return np.sort(hessian_eigenvalues(net, X, T, k=net.n_params, which="LA")), True
    lam = hessian_eigenvalues(net, X, T, k=2 * SPECTRUM_ENDS, which="BE")
    return np.sort(lam), False


def curvature_report(net: Any, X: Array, T: Array, lam: Array, complete: bool,
                     k: int = 6) -> dict[str, Any]:
    """Loss, gradient norm, top ``k`` Hessian eigenvalues and a condition estimate.

    ``lam`` are eigenvalues from :func:`hessian_spectrum`.  The condition estimate is
    λ_max / λ_min when λ_min > 0 (the spectral condition number of a positive definite
    Hessian, exact when ``complete``); it is None for an indefinite Hessian (a saddle point,
    or training not converged).
    """
    loss, grad = net.gradient(X, T)
    lam_min, lam_max = float(lam[0]), float(lam[-1])
    return {"rows": int(X.shape[0]), "loss": float(loss),
            "gradient_norm": float(np.linalg.norm(grad)),
            "top_eigenvalues": lam[::-1][:k].tolist(), "smallest_eigenvalue": lam_min,
            "condition_estimate": lam_max / lam_min if lam_min > 0 else None,
            "negative_eigenvalues": int(np.sum(lam < 0)) if complete else None,
            "complete_spectrum": complete}


def _standardised(est: Any, info: dict[str, Any], table: Table) -> tuple[Array, Array]:
    """The model's inputs and training targets on ``table``, in the network's units."""
    X = numeric_matrix(table, info["feature_names"])
    y = _model_targets(est, info, table)
    try:
        return est.network_inputs(X), est.network_targets(y)
    except ValueError as exc:
        raise CliError(f"{table.path}: {exc}") from exc


def _curvature(est: Any, X: Array, T: Array, source: str) -> tuple[Array, dict[str, Any]]:
    """The Hessian spectrum and :func:`curvature_report`; too big for memory -> CliError."""
    try:
        lam, complete = hessian_spectrum(est.net_, X, T)
        return lam, curvature_report(est.net_, X, T, lam, complete)
    except MemoryError as exc:
        raise CliError(f"{source}: not enough memory for the Hessian spectrum "
                       f"({str(exc) or 'an allocation failed'}); use fewer rows") from exc
    except ValueError as exc:
        raise CliError(f"{source}: cannot compute the curvature: {exc}") from exc


def _print_inspect_text(s: dict[str, Any]) -> None:
    arch, names, t = s["architecture"], s["features"], s["training"]
    more = f", ... ({len(names) - 12} more)" if len(names) > 12 else ""
    classes = f"; classes: {', '.join(map(str, s['classes']))}" if s["classes"] else ""
    _emit(f"model: {s['model']} ({s['task']})",
          f"architecture: {'-'.join(map(str, arch['sizes']))} {arch['topology']}, activations "
          f"{', '.join(arch['activations'])}, loss {arch['loss']}, {arch['dtype']}",
          f"parameters: {s['parameters']}",
          f"features ({len(names)}): {', '.join(names[:12])}{more}",
          f"targets: {', '.join(s['targets'])}{classes}",
          f"training: solver {t.get('solver')}, {t.get('n_iter')} epochs, stop reason "
          f"{t.get('stop_reason')!r}, best epoch {t.get('best_epoch')}")
    if t.get("gamma") is not None:
        _emit(f"  effective number of parameters gamma = {t['gamma']:.4g} of {s['parameters']}")
    if s.get("metrics"):
        _emit(*_format_metrics(s["task"], s["metrics"]))
    c = s.get("curvature")
    if c:
        cond = "n/a (indefinite)" if c["condition_estimate"] is None else \
            f"{c['condition_estimate']:.4g}"
        neg = "" if c["negative_eigenvalues"] is None else \
            f" ({c['negative_eigenvalues']} negative)"
        _emit(f"on {s['data']} ({c['rows']} rows, standardised): loss {c['loss']:.6g}, "
              f"gradient norm {c['gradient_norm']:.3g}",
              "  top Hessian eigenvalues: " + ", ".join(f"{v:.4g}" for v in c["top_eigenvalues"]),
              f"  smallest eigenvalue: {c['smallest_eigenvalue']:.4g}{neg}; condition estimate "
              f"lambda_max/lambda_min: {cond}")


def cmd_inspect(args: argparse.Namespace) -> int:
    """``deltaprop inspect``: what the model is, how it was trained, and its curvature."""
    if args.plot is not None and args.data is None:
        raise CliError("--plot needs --data (the eigenvalues are computed on the data)")
    outputs = [("--plot", f"{args.plot}_eigenvalues.png")] if args.plot is not None else []
    inputs = [("--model", args.model)] + ([("--data", args.data)] if args.data else [])
    _check_outputs(outputs, inputs)
    est, info = load_estimator(args.model)
    summary = _summary(est, info, args.model)
    if args.data is not None:
        X, T = _standardised(est, info, read_csv(args.data))
        lam, summary["curvature"] = _curvature(est, X, T, args.data)
        summary["data"] = args.data
        if args.plot is not None:
            summary["plots"] = [_plot_spectrum(lam, args.plot)]
    if args.json:
        _print_json(summary)
    else:
        _print_inspect_text(summary)
    return EXIT_OK


def _plot_spectrum(lam: Array, prefix: str) -> str:
    from . import plots

    path = f"{prefix}_eigenvalues.png"
    try:
        plots.plot_eigenvalues(lam, path)
    except ValueError as exc:
        raise CliError(f"--plot: {exc}") from exc
    return path


# ---------------------------------------------------------------------------- datasets
def cmd_datasets(args: argparse.Namespace) -> int:
    """``deltaprop datasets``: the built-in data sets."""
    from .datasets import DEFAULT_DATASET, list_datasets

    rows = list_datasets()
    if args.json:
        _print_json({"command": "datasets", "default": DEFAULT_DATASET, "datasets": [
            {"name": n, "task": t, "shape": list(s), "summary": d} for n, t, s, d in rows]})
        return EXIT_OK
    _emit(*[f"{'*' if name == DEFAULT_DATASET else ' '} {name:<14}{task:<16}{shape[0]:>5} x "
            f"{shape[1]:<4} {summary}" for name, task, shape, summary in rows],
          "(* the default of 'deltaprop train')")
    return EXIT_OK


# ---------------------------------------------------------------------------- main
def _fail(message: str) -> None:
    """One line on stderr: ``deltaprop: MESSAGE``, whitespace collapsed, controls escaped."""
    print(printable("deltaprop: " + " ".join(message.split())), file=sys.stderr)


def _one_line_warning(message: Any, category: type, filename: str, lineno: int,
                      file: TextIO | None = None, line: str | None = None) -> None:
    _fail(f"warning: {message}")


def _run(argv: Sequence[str] | None, signals: Signals) -> int:
    args = parse_args(argv)
    args.signals = signals
    handler: Callable[[argparse.Namespace], int] = args.run
    return handler(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``deltaprop`` command with ``argv`` (default ``sys.argv[1:]``); return the status.

    ``--help`` and ``--version`` raise SystemExit(0) as argparse does.  SIGINT and SIGTERM
    are handled as :class:`Signals` describes while it runs (in the main thread).
    """
    signals = Signals()
    try:
        with warnings.catch_warnings(), signals.installed():
            warnings.showwarning = _one_line_warning
            return _run(argv, signals)
    except USER_ERRORS as exc:
        _fail(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        word, status = _signal_exit(getattr(exc, "signum", signal.SIGINT))
        _fail(word)
        return status
    except MemoryError as exc:
        _fail(f"error: not enough memory ({str(exc) or 'an allocation failed'}); use a smaller "
              "network or fewer rows")
        return EXIT_USAGE
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:
        if os.environ.get("DELTAPROP_DEBUG"):
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (set DELTAPROP_DEBUG=1 for the "
              "traceback; please report it)")
        return EXIT_INTERNAL
