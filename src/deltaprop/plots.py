"""Plots of training and of trained networks, as PNG files (MATLAB's fitting-app figures).

Every function builds a :class:`matplotlib.figure.Figure` drawn by the Agg canvas, returns it,
and writes a PNG when given a ``path`` (atomically: a complete new file or the old one).  No
pyplot is used: a user's interactive session, its backend and its list of open figures are
left alone, and nothing needs a display.

=======================  ===================================================================
function                 figure
=======================  ===================================================================
:func:`plot_loss`        training (and validation) loss per epoch, log scale, best epoch
:func:`plot_regression`  outputs against targets with the fitted line y = a·t + b and R
:func:`plot_confusion`   confusion matrix with counts, rows true classes, columns predicted
:func:`plot_eigenvalues` sorted Hessian eigenvalues on a symmetric log scale
=======================  ===================================================================

Examples
--------
>>> from deltaprop.plots import plot_regression
>>> fig = plot_regression([1.0, 2.0, 3.0], [1.1, 1.9, 3.2])
>>> fig.axes[0].get_title()
'R = 0.9907'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .outputs import OutputError, write_atomically

Array = np.ndarray
PathLike = str | os.PathLike

_BLUE, _ORANGE, _RED, _GREEN = "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c"


def _new_figure(width: float = 6.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    """Write ``fig`` as a PNG to ``path`` when given (atomically); return it."""
    if path is not None:
        try:
            write_atomically(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
        except OutputError as exc:
            raise ValueError(f"cannot write plot {os.fspath(path)!r}: {exc.problem}") from exc
    return fig


def _float_values(values: Any, name: str) -> Array:
    """A 1-D float array, None becoming NaN."""
    if values is None:
        return np.empty(0)
    items = [np.nan if v is None else v for v in np.ravel(np.asarray(values, dtype=object))]
    try:
        return np.asarray(items, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must hold numbers; got {values!r}.") from exc


# ---------------------------------------------------------------------------- loss
def _get(history: Any, key: str) -> Any:
    if isinstance(history, Mapping):
        return history.get(key)
    return getattr(history, key, None)


def plot_loss(history: Any, path: PathLike | None = None, title: str | None = None) -> Figure:
    """Training and validation loss per epoch on a log scale, the best epoch marked.

    Parameters
    ----------
    history : object or mapping
        Anything with ``loss`` (per epoch) and optionally ``val_loss`` (None, or per epoch
        with None/NaN where not measured), ``epoch`` (the x values; default 0, 1, ...) and
        ``best_epoch`` (an x value), as attributes or keys: a training History or a dict.
    path : str or path-like, optional
        Where to write the PNG.
    title : str, optional
        Default: the best (validation) loss and its epoch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    loss = _float_values(_get(history, "loss"), "history.loss")
    if loss.size == 0:
        raise ValueError("`history.loss` is empty; there is no loss curve to plot.")
    val = _float_values(_get(history, "val_loss"), "history.val_loss")
    epochs = _float_values(_get(history, "epoch"), "history.epoch")
    if epochs.size != loss.size:
        epochs = np.arange(loss.size, dtype=np.float64)
    fig = _new_figure()
    ax = fig.add_subplot()
    curves = [("training", loss, _BLUE)]
    if val.size == loss.size and np.any(np.isfinite(val)):
        curves.append(("validation", val, _GREEN))
    positive = False
    for label, values, colour in curves:
        shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        positive |= bool(np.any(np.isfinite(shown)))
        ax.plot(epochs, shown, color=colour, label=label)
    if positive:
        ax.set_yscale("log")
    default = _mark_best(ax, _get(history, "best_epoch"), epochs, curves[-1])
    ax.set(xlabel="epoch", ylabel="loss", title=title or default)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _finish(fig, path)


def _mark_best(ax: Any, best: Any, epochs: Array, curve: tuple[str, Array, str]) -> str:
    """Mark ``best`` (an epoch value) on ``curve``; return a title describing it."""
    label, values, _ = curve
    if best is None:
        return "Loss per epoch"
    hits = np.flatnonzero(epochs == float(best))
    ax.axvline(float(best), color=_ORANGE, linestyle=":", label=f"best epoch {best}")
    if hits.size and np.isfinite(values[hits[0]]):
        value = values[hits[0]]
        if value > 0:
            ax.plot([float(best)], [value], "o", color=_ORANGE, fillstyle="none", markersize=10)
        return f"Best {label} loss {value:.4g} at epoch {best}"
    return f"Best epoch {best}"


# ---------------------------------------------------------------------------- regression
def _paired(y_true: Any, y_pred: Any) -> tuple[Array, Array]:
    t = np.asarray(y_true, dtype=np.float64)
    y = np.asarray(y_pred, dtype=np.float64)
    if t.shape != y.shape and t.size == y.size and t.squeeze().shape == y.squeeze().shape:
        t, y = t.reshape(-1), y.reshape(-1)
    if t.shape != y.shape:
        raise ValueError(f"`y_true` {t.shape} and `y_pred` {y.shape} must have the same shape.")
    if t.size == 0:
        raise ValueError("`y_true` and `y_pred` are empty; nothing to plot.")
    for name, arr in (("y_true", t), ("y_pred", y)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` holds NaN or infinite values.")
    return t.reshape(-1), y.reshape(-1)


def regression_line(y_true: Any, y_pred: Any) -> tuple[float, float, float]:
    """Least-squares line y_pred ≈ a·y_true + b and Pearson's R, as MATLAB's plotregression.

    Returns
    -------
    a, b : float
        Slope and intercept (a = 0 and b = mean(y_pred) for constant targets).
    r : float
        Correlation coefficient; NaN when either variable is constant.
    """
    t, y = _paired(y_true, y_pred)
    dt, dy = t - t.mean(), y - y.mean()
    stt, syy, sty = float(dt @ dt), float(dy @ dy), float(dt @ dy)
    a = sty / stt if stt > 0 else 0.0
    b = float(y.mean()) - a * float(t.mean())
    r = sty / np.sqrt(stt * syy) if stt > 0 and syy > 0 else float("nan")
    return a, b, float(np.clip(r, -1.0, 1.0))


def plot_regression(
    y_true: Any, y_pred: Any, path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Outputs against targets with the fitted line and R (MATLAB's regression plot).

    Parameters
    ----------
    y_true, y_pred : array_like (N,) or (N, K)
        Targets and network outputs; several outputs are pooled into one panel, as
        MATLAB's ``plotregression`` does for a matrix.
    path : str or path-like, optional
        Where to write the PNG.
    title : str, optional
        Prefixed to "R = ...", e.g. "Test" gives "Test: R = 0.9812".

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, y = _paired(y_true, y_pred)
    a, b, r = regression_line(t, y)
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    low, high = float(min(t.min(), y.min())), float(max(t.max(), y.max()))
    pad = 0.05 * (high - low) or 1.0
    grid = np.array([low - pad, high + pad])
    ax.plot(t, y, "o", color="black", fillstyle="none", markersize=4, label="data")
    ax.plot(grid, a * grid + b, color=_BLUE, label="fit")
    ax.plot(grid, grid, ":", color="gray", label="Y = T")
    ax.set(xlim=tuple(grid), ylim=tuple(grid), xlabel="Target",
           ylabel=f"Output ≈ {a:.2g}·Target {'−' if b < 0 else '+'} {abs(b):.2g}")
    heading = f"R = {r:.4f}"
    ax.set_title(f"{title}: {heading}" if title else heading)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return _finish(fig, path)


# ---------------------------------------------------------------------------- confusion
def confusion_matrix(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None
) -> tuple[Array, list[Any]]:
    """Counts C[i, j] of samples of class ``labels[i]`` predicted as ``labels[j]``.

    Parameters
    ----------
    y_true, y_pred : array_like (N,)
        Class labels (numbers or strings).
    labels : sequence, optional
        Class order; default the sorted labels present in either array.

    Returns
    -------
    counts : ndarray (C, C) of int64
    labels : list
    """
    t, p = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"`y_true` ({t.size}) and `y_pred` ({p.size}) must hold the same, "
                         "non-zero number of labels.")
    if labels is None:
        labels = np.unique(np.concatenate([t, p])).tolist()
    labels = list(np.asarray(labels).tolist())
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"`labels` has repeated entries: {labels!r}.")
    unknown = sorted({str(v) for v in [*t.tolist(), *p.tolist()] if v not in index})
    if unknown:
        raise ValueError(f"labels {unknown} of `y_true`/`y_pred` are not in `labels` {labels!r}.")
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, ([index[v] for v in t.tolist()], [index[v] for v in p.tolist()]), 1)
    return counts, labels


def plot_confusion(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[Any] | None = None,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Confusion matrix with counts: rows are true classes, columns predicted ones.

    Parameters
    ----------
    y_true, y_pred : array_like (N,)
        Class labels (numbers or strings).
    labels : sequence, optional
        Class order and tick labels; default the sorted labels present.
    path : str or path-like, optional
        Where to write the PNG.
    title : str, optional
        Prefixed to "accuracy ...".

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts, labels = confusion_matrix(y_true, y_pred, labels)
    n = len(labels)
    size = min(3.0 + 0.5 * n, 12.0)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    fig.colorbar(image, ax=ax, shrink=0.8)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                dark = counts[i, j] > 0.5 * counts.max()
                ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                        color="white" if dark else "black", fontsize=9 if n <= 12 else 6)
    names = [str(label) for label in labels]
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(n), names)
    accuracy = np.trace(counts) / counts.sum()
    heading = f"accuracy {100 * accuracy:.1f}% (N = {int(counts.sum())})"
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"{title}: {heading}" if title else heading[0].upper() + heading[1:])
    return _finish(fig, path)


# ---------------------------------------------------------------------------- eigenvalues
def plot_eigenvalues(
    eigenvalues: Any, path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Hessian eigenvalues sorted from largest to smallest on a symmetric log scale.

    Negative eigenvalues (directions of negative curvature: a saddle, not a minimum) are
    drawn in red below the zero line, positive ones in blue above it.

    Parameters
    ----------
    eigenvalues : array_like (P,)
        Finite real eigenvalues, in any order.
    path : str or path-like, optional
        Where to write the PNG.
    title : str, optional
        Default: the counts of positive and negative eigenvalues and λ_max / λ_min⁺.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lam = np.sort(_float_values(eigenvalues, "eigenvalues"))[::-1]
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        raise ValueError("`eigenvalues` must be a non-empty array of finite numbers.")
    magnitude = np.abs(lam)
    nonzero = magnitude[magnitude > 0]
    linthresh = max(float(nonzero.min()), float(nonzero.max()) * 1e-6) if nonzero.size else 1.0
    index = np.arange(1, lam.size + 1)
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    ax.axhline(0.0, color="gray", linewidth=0.8)
    for mask, colour, label in ((lam >= 0, _BLUE, "λ ≥ 0"), (lam < 0, _RED, "λ < 0")):
        if np.any(mask):
            ax.vlines(index[mask], 0.0, lam[mask], color=colour, linewidth=1.0, alpha=0.6)
            ax.plot(index[mask], lam[mask], "o", color=colour, markersize=3, label=label)
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.set(xlabel="index (largest first)", ylabel="eigenvalue", title=title or _eig_title(lam))
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _finish(fig, path)


def _eig_title(lam: Array) -> str:
    positive, negative = lam[lam > 0], lam[lam < 0]
    heading = f"{lam.size} eigenvalues: {positive.size} positive, {negative.size} negative"
    if positive.size:
        heading += f"; λmax/λmin⁺ = {positive.max() / positive.min():.3g}"
    return heading
