"""Model files of the estimators: a fitted MLPRegressor or MLPClassifier, checked both ways.

The file is a :mod:`deltaprop.model_io` model file (no pickle, bounded memory) whose metadata
holds everything the estimator needs besides the network:

===================  ==========================================================================
metadata key         content
===================  ==========================================================================
``kind``             ``"deltaprop-estimator"``
``estimator``        ``"MLPRegressor"`` or ``"MLPClassifier"``
``task``             ``"regression"`` or ``"classification"``
``params``           the constructor parameters (``get_params()``; ``random_state`` an int or
                     null, ``hidden_layer_sizes`` a list)
``feature_names``    n_features distinct strings; ``feature_names_in`` (bool) says whether
                     they are the estimator's ``feature_names_in_``
``target_names``     distinct strings: one per output (regression) or one (classification)
``x_mean``           n_features finite numbers; ``x_scale`` n_features normal positive numbers
``y_mean``           regression only: n_outputs numbers; ``y_scale`` n_outputs normal positive
                     numbers; ``target_1d`` (bool) whether ``predict`` returns 1-D
``classes``          classification only: n_outputs sorted distinct labels of one type
``training``         the summary below
``extra``            a JSON object that the caller stored (e.g. the command's metrics)
===================  ==========================================================================

The training summary holds ``solver``, ``n_iter``, ``stop_reason``, ``best_epoch``,
``best_loss``, ``best_val_loss``, ``seconds``, ``optimizer``, the curves ``curve_epochs``
(0 to n_iter, at most ``MAX_CURVE_POINTS`` evenly spread), ``loss_curve``,
``val_loss_curve`` and ``validation_scores``, and the optimizer's last columns (γ, α, β for
"trainbr"), each checked for type and consistency.

:func:`load_estimator` checks every entry and its agreement with the network (hidden sizes,
activation, head, widths) and raises :class:`~deltaprop.model_io.ModelFileError` naming the
first problem; :func:`save_estimator` runs the same checks before writing, so it never
writes a file that would not load back.

Examples
--------
>>> import os, tempfile, numpy as np
>>> from deltaprop.estimators import MLPRegressor
>>> from deltaprop.estimator_io import save_estimator, load_estimator
>>> X = np.linspace(-1, 1, 30).reshape(-1, 1)
>>> est = MLPRegressor((3,), solver="adam", max_iter=5, random_state=0).fit(X, X[:, 0])
>>> path = os.path.join(tempfile.mkdtemp(), "est.npz")
>>> save_estimator(est, path, feature_names=["x"], target_names=["y"])
>>> loaded, info = load_estimator(path)
>>> bool(np.array_equal(loaded.predict(X), est.predict(X))), info["feature_names"]
(True, ['x'])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import pairwise
from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .estimators import ESTIMATORS, BaseMLP
from .model_io import ModelFileError, load_model, metadata_array, save_model, to_jsonable
from .network import Network
from .solvers import SOLVERS
from .training import History

PathLike = str | os.PathLike

#: Model files keep at most this many points of the loss curves (evenly spread).
MAX_CURVE_POINTS = 10_001
#: The ``kind`` entry of the metadata that :func:`save_estimator` writes.
ESTIMATOR_KIND = "deltaprop-estimator"

_COMMON_KEYS = ("kind", "estimator", "task", "params", "feature_names", "feature_names_in",
                "target_names", "x_mean", "x_scale", "training", "extra")
_TASK_KEYS = {"regression": ("y_mean", "y_scale", "target_1d"),
              "classification": ("classes",)}
_SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "solver": (str,), "n_iter": (int,), "stop_reason": (str,), "best_epoch": (int,),
    "best_loss": (Real, type(None)), "best_val_loss": (Real, type(None)),
    "seconds": (Real, type(None)), "optimizer": (str,), "curve_epochs": (list,),
    "loss_curve": (list,), "val_loss_curve": (list,), "validation_scores": (list, type(None)),
}


# ---------------------------------------------------------------------- saving
def _curve_rows(n: int) -> list[int]:
    """Rows of a History kept in a model file: all, or ≤ MAX_CURVE_POINTS evenly spread."""
    if n <= MAX_CURVE_POINTS:
        return list(range(n))
    rows = np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(int))
    return rows.tolist()


def _training_summary(est: BaseMLP) -> dict[str, Any]:
    h = est.history_
    rows = _curve_rows(len(h.epoch))
    scores = est.validation_scores_
    summary = {"solver": est.solver, "n_iter": int(est.n_iter_), "stop_reason": est.stop_reason_,
               "best_epoch": int(est.best_epoch_), "best_loss": h.best_loss,
               "best_val_loss": h.best_val_loss, "seconds": h.seconds[-1] if h.seconds else 0.0,
               "optimizer": h.optimizer, "curve_epochs": [h.epoch[i] for i in rows],
               "loss_curve": [h.loss[i] for i in rows],
               "val_loss_curve": [h.val_loss[i] for i in rows],
               "validation_scores": None if scores is None else
               [scores[h.epoch[i] - 1] for i in rows if h.epoch[i] >= 1]}
    best_row = h.epoch.index(h.best_epoch) if h.best_epoch in h.epoch else len(h.epoch) - 1
    for key, column in h.extras.items():  # γ, α, β of the returned (best) weights
        summary[key] = column[best_row] if len(column) > best_row else None
    return summary


def _default_names(prefix: str, n: int) -> list[str]:
    return [prefix] if n == 1 and prefix == "y" else [f"{prefix}{i}" for i in range(n)]


def _metadata(estimator: BaseMLP, feature_names: Sequence[str] | None,
              target_names: Sequence[str] | None, extra: Mapping[str, Any] | None) -> dict:
    """The metadata of ``estimator``'s model file (before conversion to JSON)."""
    params = estimator.get_params()
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    params["hidden_layer_sizes"] = estimator.net_.sizes[1:-1]
    names = getattr(estimator, "feature_names_in_", None)
    n_targets = 1 if estimator.task == "classification" else int(estimator.n_outputs_)
    meta: dict[str, Any] = {
        "kind": ESTIMATOR_KIND, "estimator": type(estimator).__name__,
        "task": estimator.task, "params": params,
        "feature_names": list(feature_names if feature_names is not None else
                              names.tolist() if names is not None else
                              _default_names("x", int(estimator.n_features_in_))),
        "feature_names_in": names is not None,
        "target_names": list(target_names) if target_names is not None else
        _default_names("y", n_targets),
        "x_mean": estimator.x_mean_, "x_scale": estimator.x_scale_,
        "training": _training_summary(estimator), "extra": extra if extra is not None else {},
    }
    if estimator.task == "regression":
        meta.update(y_mean=estimator.y_mean_, y_scale=estimator.y_scale_,
                    target_1d=bool(estimator.target_1d_))
    else:
        meta["classes"] = estimator.classes_
    return meta


def save_estimator(estimator: BaseMLP, path: PathLike, *,
                   feature_names: Sequence[str] | None = None,
                   target_names: Sequence[str] | None = None,
                   extra: Mapping[str, Any] | None = None) -> None:
    """Write a fitted MLPRegressor or MLPClassifier to a safe model file (no pickle).

    Parameters
    ----------
    estimator : MLPRegressor or MLPClassifier
        Fitted.
    path : str or path-like
        Written atomically by :func:`deltaprop.model_io.save_model`.
    feature_names : sequence of str, optional
        Distinct names of the input columns; default ``feature_names_in_`` or "x0", "x1", ...
    target_names : sequence of str, optional
        Distinct names of the target columns (one for a classifier); default "y" or "y0",
        "y1", ...
    extra : mapping, optional
        Further JSON-able information to keep (e.g. metrics), returned by
        :func:`load_estimator` as ``info["extra"]``.

    Raises
    ------
    ValueError
        For names or ``extra`` that cannot be stored.
    ModelFileError
        If the file cannot be written, or if the estimator would not load back (e.g. its
        fitted attributes were changed into something inconsistent); nothing is written then.

    Notes
    -----
    The metadata is described in the module docstring.  Curves longer than
    ``MAX_CURVE_POINTS`` epochs are kept at evenly spread epochs (``curve_epochs``), so a
    loaded estimator's ``loss_curve_`` is then shorter than ``n_iter_``.
    """
    check_is_fitted(estimator)
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"`extra` must be a mapping; got {type(extra).__name__}.")
    meta = to_jsonable(_metadata(estimator, feature_names, target_names, extra))
    for key, where in (("feature_names", "feature_names"), ("target_names", "target_names")):
        if not isinstance(meta[key], list) or not all(isinstance(s, str) for s in meta[key]):
            raise ValueError(f"`{where}` must be a sequence of strings.")
    try:
        _estimator_from_metadata(estimator.net_, meta, path)
    except ModelFileError as exc:
        raise ModelFileError(path, f"refusing to save an estimator that would not load back: "
                                   f"{exc.problem}") from exc
    save_model(path, estimator.net_, meta)


# ---------------------------------------------------------------------- loading
def load_estimator(path: PathLike) -> tuple[BaseMLP, dict[str, Any]]:
    """Read an estimator written by :func:`save_estimator`, checking every field.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator : MLPRegressor or MLPClassifier
        Fitted; predictions are identical to those of the saved estimator.
    info : dict
        ``task``, ``feature_names``, ``target_names``, ``classes`` (list, classification),
        ``training`` (summary), ``extra`` (what the caller stored), ``params``.

    Raises
    ------
    ModelFileError
        For anything :func:`deltaprop.model_io.load_model` refuses, a model file that holds
        no estimator, or metadata that is malformed or disagrees with the network.
    """
    net, meta = load_model(path)
    estimator = _estimator_from_metadata(net, meta, path)
    info = {key: meta.get(key) for key in ("task", "feature_names", "target_names", "classes",
                                           "training", "extra", "params")}
    return estimator, info


def _entry(meta: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
           path: PathLike) -> Any:
    """``meta[key]`` if present and of type ``kind`` (booleans are not numbers here)."""
    value, kinds = meta.get(key), kind if isinstance(kind, tuple) else (kind,)
    if key not in meta or not isinstance(value, kinds) or (
            isinstance(value, bool) and bool not in kinds):
        raise ModelFileError(path, f"metadata entry {key!r} is missing or of the wrong type.")
    return value


def _estimator_from_metadata(net: Network, meta: Mapping[str, Any],
                             path: PathLike) -> BaseMLP:
    """The estimator that ``net`` and ``meta`` describe; ModelFileError for any problem."""
    if meta.get("kind") != ESTIMATOR_KIND or meta.get("estimator") not in ESTIMATORS:
        raise ModelFileError(path, "holds a deltaprop network but no estimator (metadata kind "
                                   f"{meta.get('kind')!r}); load it with deltaprop.load_model.")
    cls = ESTIMATORS[meta["estimator"]]
    task = _entry(meta, "task", str, path)
    if task != cls.task:
        raise ModelFileError(path, f"metadata task {task!r} does not match {cls.__name__}.")
    _check_metadata_keys(meta, task, path)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    features = _names(meta, "feature_names", n_in, path)
    _names(meta, "target_names", n_out if task == "regression" else 1, path)
    _entry(meta, "extra", dict, path)
    training = _entry(meta, "training", dict, path)
    _check_summary(training, meta, path)
    targets = {key: meta[key] for key in _TASK_KEYS[task]}
    for key in ("y_mean", "y_scale"):
        if key in targets:
            targets[key] = metadata_array(meta, key, shape=(n_out,), path=path)
    try:
        return cls.from_network(
            net, params=_entry(meta, "params", dict, path),
            x_mean=metadata_array(meta, "x_mean", shape=(n_in,), path=path),
            x_scale=metadata_array(meta, "x_scale", shape=(n_in,), path=path),
            targets=targets, history=_history_from_summary(training, net),
            validation_scores=_numbers(training["validation_scores"]),
            feature_names_in=features if _entry(meta, "feature_names_in", bool, path) else None)
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(path, f"metadata does not describe a valid {cls.__name__} for its "
                                   f"network: {exc}") from exc


def _check_metadata_keys(meta: Mapping[str, Any], task: str, path: PathLike) -> None:
    wanted = (*_COMMON_KEYS, *_TASK_KEYS[task])
    missing = [k for k in wanted if k not in meta]
    extra = sorted(set(meta) - set(wanted))
    if missing:
        raise ModelFileError(path, f"metadata lacks {', '.join(map(repr, missing))}.")
    if extra:
        raise ModelFileError(path, f"metadata has unexpected {', '.join(map(repr, extra))}.")


def _names(meta: Mapping[str, Any], key: str, n: int, path: PathLike) -> list[str]:
    """``meta[key]``: ``n`` distinct strings."""
    names = metadata_array(meta, key, dtype=str, shape=(n,), path=path).tolist()
    if len(set(names)) != n:
        twice = next(s for i, s in enumerate(names) if s in names[:i])
        raise ModelFileError(path, f"metadata {key!r} names {twice!r} twice.")
    return names


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_summary(training: Mapping[str, Any], meta: Mapping[str, Any],
                   path: PathLike) -> None:
    """The training summary's entries: types, and curves that agree with each other."""
    for key, kinds in _SUMMARY_TYPES.items():
        _entry(training, key, kinds, path)
    for key, value in training.items():
        if key not in _SUMMARY_TYPES and value is not None and not _is_number(value):
            raise ModelFileError(path, f"metadata 'training' entry {key!r} must be a number "
                                       f"or null; got {type(value).__name__}.")
    if training["solver"] not in SOLVERS:
        raise ModelFileError(path, f"metadata 'training' solver {training['solver']!r} is "
                                   "unknown.")
    _check_curves(training, path)


def _check_curves(training: Mapping[str, Any], path: PathLike) -> None:
    epochs, n_iter = training["curve_epochs"], training["n_iter"]
    loss, val, scores = training["loss_curve"], training["val_loss_curve"], \
        training["validation_scores"]
    ok = (len(loss) == len(val) == len(epochs) >= 1
          and all(v is None or _is_number(v) for v in [*loss, *val])
          and all(isinstance(e, int) and not isinstance(e, bool) for e in epochs)
          and epochs[0] == 0 and epochs[-1] == n_iter
          and all(a < b for a, b in pairwise(epochs))
          and 0 <= training["best_epoch"] <= n_iter
          and (scores is None or (len(scores) == len(epochs) - 1
                                  and all(v is None or _is_number(v) for v in scores))))
    if not ok:
        raise ModelFileError(path, "metadata 'training' summary is malformed (curves, epochs "
                                   "or validation scores that disagree).")


def _numbers(values: list[Any] | None) -> list[float] | None:
    """A JSON list of numbers and nulls as floats, null becoming NaN."""
    return None if values is None else [np.nan if v is None else float(v) for v in values]


def _history_from_summary(training: Mapping[str, Any], net: Network) -> History:
    """A History carrying the saved summary (loss curves, stop reason, best epoch)."""
    epochs = list(training["curve_epochs"])
    n = len(epochs)
    loss = _numbers(training["loss_curve"])
    history = History(epoch=epochs, loss=loss, val_loss=_numbers(training["val_loss_curve"]),
                      grad_norm=[np.nan] * n, step=[np.nan] * n, seconds=[np.nan] * n,
                      best_epoch=int(training["best_epoch"]), best_params=net.params.copy(),
                      stop_reason=training["stop_reason"], optimizer=training["optimizer"])
    if history.best_epoch in epochs:
        history.best_loss = loss[epochs.index(history.best_epoch)]
    return history
