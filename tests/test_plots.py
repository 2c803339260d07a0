"""Plots: valid PNG files, the right content, and pyplot's state left alone."""

from __future__ import annotations

import re
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from deltaprop.plots import (
    confusion_matrix,
    plot_confusion,
    plot_eigenvalues,
    plot_loss,
    plot_regression,
    regression_line,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def pyplot_untouched():
    """No test may open a pyplot figure or switch its backend."""
    plt = pytest.importorskip("matplotlib.pyplot")
    before, backend = plt.get_fignums(), plt.get_backend()
    yield
    assert plt.get_fignums() == before
    assert plt.get_backend() == backend


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.01  # something is drawn


def _history():
    return SimpleNamespace(
        epoch=[0, 1, 2, 3, 4, 5],
        loss=[1.0, 0.5, 0.2, 0.1, 0.05, 0.04],
        val_loss=[None, 0.6, 0.3, float("nan"), 0.25, 0.35],
        best_epoch=4,
    )


# ---------------------------------------------------------------------------- loss
def test_loss_plot_from_a_history_object(tmp_path):
    fig = plot_loss(_history(), path=tmp_path / "loss.png")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "Best validation loss 0.25 at epoch 4"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training", "validation", "best epoch 4"]
    _assert_png(tmp_path / "loss.png")


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [3.0, 2.0, 1.0]},
        {"loss": [3.0, 2.0, 1.0], "val_loss": None, "best_epoch": 2},
        {"loss": [3.0, 2.0, 1.0], "val_loss": [None, None, None], "best_epoch": 7},
        {"loss": [1.0, 0.0, 0.0], "epoch": [1, 2, 3], "best_epoch": 2},
        {"loss": [0.0, 0.0]},
        SimpleNamespace(loss=np.array([2.0, 1.0]), val_loss=np.array([3.0, 1.5]),
                        best_epoch=np.int64(1)),
    ],
)
def test_loss_plot_accepts_partial_histories(tmp_path, history):
    fig = plot_loss(history, path=str(tmp_path / "loss.png"))
    assert fig.axes[0].get_xlabel() == "epoch"
    _assert_png(tmp_path / "loss.png")


def test_loss_plot_titles():
    assert plot_loss({"loss": [1.0]}).axes[0].get_title() == "Loss per epoch"
    fig = plot_loss({"loss": [2.0, 1.0], "best_epoch": 1}, title="Adam")
    assert fig.axes[0].get_title() == "Adam"
    fig = plot_loss({"loss": [2.0, 1.0], "best_epoch": 1})
    assert fig.axes[0].get_title() == "Best training loss 1 at epoch 1"


def test_loss_plot_refuses_empty_or_non_numeric():
    with pytest.raises(ValueError, match=r"`history\.loss` is empty"):
        plot_loss({"val_loss": [1.0]})
    with pytest.raises(ValueError, match=r"`history\.loss` must hold numbers"):
        plot_loss({"loss": ["a"]})


# ---------------------------------------------------------------------------- regression
def test_regression_line_and_r(rng):
    t = rng.standard_normal(50)
    y = 2.0 * t + 0.5 + 0.3 * rng.standard_normal(50)
    a, b, r = regression_line(t, y)
    slope, intercept = np.polyfit(t, y, 1)
    assert a == pytest.approx(slope) and b == pytest.approx(intercept)
    assert r == pytest.approx(np.corrcoef(t, y)[0, 1])
    assert regression_line([1, 2, 3], [3, 5, 7]) == pytest.approx((2.0, 1.0, 1.0))
    a, b, r = regression_line([1.0, 1.0], [2.0, 4.0])
    assert (a, b) == (0.0, 3.0) and np.isnan(r)


def test_regression_plot(tmp_path, rng):
    t = rng.standard_normal(80)
    y = t + 0.1 * rng.standard_normal(80)
    fig = plot_regression(t, y[:, None], path=tmp_path / "reg.png", title="Test")
    r = np.corrcoef(t, y)[0, 1]
    assert fig.axes[0].get_title() == f"Test: R = {r:.4f}"
    assert fig.axes[0].get_xlabel() == "Target"
    _assert_png(tmp_path / "reg.png")


def test_regression_plot_pools_several_outputs(tmp_path, rng):
    T = rng.standard_normal((30, 3))
    fig = plot_regression(T, T + 0.01, path=tmp_path / "reg.png")
    assert fig.axes[0].get_title() == "R = 1.0000"
    assert fig.axes[0].lines[0].get_xdata().size == 90
    _assert_png(tmp_path / "reg.png")


def test_regression_plot_of_constant_targets_warns_nothing():
    assert plot_regression([1.0, 1.0, 1.0], [0.5, 1.0, 1.5]).axes[0].get_title() == "R = nan"


@pytest.mark.parametrize(
    ("t", "y", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "must have the same shape"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "`y_true` holds NaN"),
        ([1.0, 2.0], [1.0, np.inf], "`y_pred` holds NaN or infinite"),
    ],
)
def test_regression_plot_refuses_bad_input(t, y, match):
    with pytest.raises(ValueError, match=match):
        plot_regression(t, y)


# ---------------------------------------------------------------------------- confusion
def test_confusion_matrix_counts():
    counts, labels = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0])
    assert labels == [0, 1, 2]
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    counts, labels = confusion_matrix(["b", "a"], ["a", "a"], labels=["b", "a", "c"])
    np.testing.assert_array_equal(counts, [[0, 1, 0], [0, 1, 0], [0, 0, 0]])


def test_confusion_plot(tmp_path):
    y_true = ["cat", "dog", "dog", "bird", "cat"]
    y_pred = ["cat", "dog", "cat", "bird", "cat"]
    fig = plot_confusion(y_true, y_pred, path=tmp_path / "conf.png")
    ax = fig.axes[0]
    assert ax.get_title() == "Accuracy 80.0% (N = 5)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bird", "cat", "dog"]
    # Cell texts, row by row: bird, cat, dog (true) against bird, cat, dog (predicted).
    assert [t.get_text() for t in ax.texts] == ["1", "0", "0", "0", "2", "0", "0", "1", "1"]
    _assert_png(tmp_path / "conf.png")


def test_confusion_plot_of_ten_classes(tmp_path, rng):
    y = rng.integers(0, 10, 300)
    fig = plot_confusion(y, np.where(rng.random(300) < 0.8, y, 0), labels=range(10),
                         path=tmp_path / "conf.png", title="digits")
    assert fig.axes[0].get_title().startswith("digits: accuracy")
    _assert_png(tmp_path / "conf.png")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 1], "y_pred": [0]}, "same, non-zero number"),
        ({"y_true": [], "y_pred": []}, "same, non-zero number"),
        ({"y_true": [0, 5], "y_pred": [0, 1], "labels": [0, 1]}, r"labels \['5'\]"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "labels": [0, 1, 1]}, "repeated"),
    ],
)
def test_confusion_refuses_bad_labels(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_confusion(**kwargs)


# ---------------------------------------------------------------------------- eigenvalues
def test_eigenvalue_plot_shows_negative_ones(tmp_path, rng):
    lam = np.concatenate([10.0 ** rng.uniform(-8, 4, 30), [-2.0, -1e-3], [0.0]])
    fig = plot_eigenvalues(rng.permutation(lam), path=tmp_path / "eig.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    assert ax.get_title().startswith("33 eigenvalues: 30 positive, 2 negative; λmax/λmin⁺ = ")
    positive, negative = ax.lines[1], ax.lines[2]  # lines[0] is the zero line
    assert np.all(np.diff(positive.get_ydata()) <= 0) and positive.get_ydata().size == 31
    np.testing.assert_array_equal(negative.get_ydata(), [-1e-3, -2.0])
    _assert_png(tmp_path / "eig.png")


@pytest.mark.parametrize("lam", [[0.0, 0.0], [-1.0], [5.0]])
def test_eigenvalue_plot_edge_cases(lam):
    assert isinstance(plot_eigenvalues(lam, title="H"), Figure)


@pytest.mark.parametrize("lam", [[], [1.0, np.nan], [np.inf]])
def test_eigenvalue_plot_refuses_bad_input(lam):
    with pytest.raises(ValueError, match="`eigenvalues` must be a non-empty array of finite"):
        plot_eigenvalues(lam)


def test_unwritable_path_names_the_file(tmp_path):
    path = tmp_path / "missing" / "loss.png"
    with pytest.raises(ValueError, match=re.escape(f"cannot write plot '{path}'")):
        plot_loss({"loss": [1.0]}, path=path)


def test_png_is_written_whatever_the_suffix(tmp_path):
    plot_eigenvalues([1.0, -1.0], path=tmp_path / "eig.pdf")
    assert (tmp_path / "eig.pdf").read_bytes()[:8] == PNG_SIGNATURE


def test_loss_plot_of_a_real_training_history(tmp_path):
    training = pytest.importorskip("deltaprop.training")
    import deltaprop
    from deltaprop.datasets import load

    data = load("sine", n_samples=60)
    net = deltaprop.mlp([1, 5, 1], seed=0)
    history = training.train(net, data.X[:40], data.y[:40], epochs=15, seed=0,
                             validation=(data.X[40:], data.y[40:]))
    fig = plot_loss(history, path=tmp_path / "loss.png")
    assert fig.axes[0].get_title().endswith(f"at epoch {history.best_epoch}")
    _assert_png(tmp_path / "loss.png")
