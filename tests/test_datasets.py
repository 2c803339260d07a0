"""Built-in data sets: shapes, tasks, determinism, options and errors."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import datasets
from deltaprop.datasets import DEFAULT_DATASET, Dataset, list_datasets, load

NAMES = [row[0] for row in list_datasets()]
EXPECTED_SHAPES = {
    "diabetes": (442, 10),
    "breast_cancer": (569, 30),
    "wine": (178, 13),
    "digits": (1797, 64),
    "sine": (200, 1),
    "xor": (4, 2),
    "spirals": (200, 2),
}


def test_registry_lists_every_dataset_once():
    assert NAMES == list(EXPECTED_SHAPES)
    assert DEFAULT_DATASET == "diabetes"
    for name, task, shape, summary in list_datasets():
        assert task in datasets.TASKS
        assert shape == EXPECTED_SHAPES[name]
        assert isinstance(summary, str) and summary and "\n" not in summary


@pytest.mark.parametrize("name", NAMES)
def test_dataset_is_consistent(name):
    data = load(name)
    assert isinstance(data, Dataset) and data.name == name
    assert data.X.dtype == np.float64 and data.X.ndim == 2
    assert data.X.shape == EXPECTED_SHAPES[name]
    assert np.all(np.isfinite(data.X))
    assert data.y.shape == (data.n_samples,)
    assert len(data.feature_names) == data.n_features
    assert len(data.target_names) == 1
    assert len(data.description) > 80 and data.summary.endswith(".")
    if data.task == "classification":
        assert data.y.dtype == np.int64
        labels = np.unique(data.y)
        np.testing.assert_array_equal(labels, np.arange(len(data.class_names)))
    else:
        assert data.task == "regression"
        assert data.y.dtype == np.float64 and np.all(np.isfinite(data.y))
        assert data.class_names == ()


@pytest.mark.parametrize("name", NAMES)
def test_dataset_is_deterministic(name):
    first, second = load(name), load(name)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)


def test_class_counts_of_bundled_sets():
    assert load("breast_cancer").class_names == ("malignant", "benign")
    assert len(load("wine").class_names) == 3
    assert np.bincount(load("digits").y).size == 10


def test_diabetes_original_units_and_scaled_option():
    raw, scaled = load("diabetes"), load("diabetes", scaled=True)
    assert set(np.unique(raw.X[:, 1])) == {1.0, 2.0}  # sex coded 1/2
    np.testing.assert_allclose(scaled.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(raw.y, scaled.y)
    assert raw.target_names == ("progression",)


def test_sine_follows_its_formula():
    data = load("sine", n_samples=500, noise=0.0, seed=3)
    assert np.all(np.abs(data.X) <= 1.0)
    np.testing.assert_allclose(data.y, np.sin(3.0 * data.X[:, 0]), rtol=0, atol=1e-15)
    noisy = load("sine", n_samples=20_000, noise=0.1, seed=3)
    residual = noisy.y - np.sin(3.0 * noisy.X[:, 0])
    assert abs(residual.std() - 0.1) < 0.005


def test_seeds_change_generated_data():
    a, b = load("sine", seed=1), load("sine", seed=2)
    assert not np.array_equal(a.X, b.X)
    a, b = load("spirals", seed=1), load("spirals", seed=2)
    assert not np.array_equal(a.X, b.X)


def test_xor_is_the_truth_table():
    data = load("xor")
    np.testing.assert_array_equal(data.X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(data.y, [0, 1, 1, 0])
    repeated = load("xor", repeats=3, noise=0.1, seed=0)
    assert repeated.X.shape == (12, 2)
    np.testing.assert_array_equal(repeated.y, np.tile([0, 1, 1, 0], 3))
    assert np.max(np.abs(repeated.X - np.tile(data.X, (3, 1)))) > 0


def test_spirals_interleave_two_balanced_classes():
    data = load("spirals", n_samples=301, noise=0.0, seed=0)
    assert np.bincount(data.y).tolist() == [151, 150]
    radius = np.hypot(data.X[:, 0], data.X[:, 1])
    assert radius.max() == pytest.approx(1.0) and radius.min() == pytest.approx(0.05)
    even = load("spirals", n_samples=300, noise=0.0, seed=0)
    r = np.hypot(even.X[:, 0], even.X[:, 1])
    # Noise-free, class 1 is class 0 rotated by π: point i of one is minus point i of the other.
    pts0 = even.X[even.y == 0][np.argsort(r[even.y == 0])]
    pts1 = even.X[even.y == 1][np.argsort(r[even.y == 1])]
    np.testing.assert_allclose(pts1, -pts0, atol=1e-12)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'iris'.*'diabetes'.*'spirals'"):
        load("iris")
    with pytest.raises(ValueError, match="unknown dataset"):
        load(None)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("wine", {"seed": 1}, "does not take 'seed'; it takes no options"),
        ("sine", {"n_points": 3}, "does not take 'n_points'; it takes `n_samples`"),
        ("sine", {"n_samples": 0}, "`n_samples` must be an integer >= 1"),
        ("sine", {"n_samples": 2.5}, "`n_samples`"),
        ("sine", {"noise": -0.1}, "`noise` must be a finite number >= 0"),
        ("sine", {"noise": float("nan")}, "`noise`"),
        ("sine", {"seed": "a"}, "`seed` must be an integer or None"),
        ("xor", {"repeats": 0}, "`repeats` must be an integer >= 1"),
        ("spirals", {"n_samples": 1}, "`n_samples` must be an integer >= 2"),
        ("spirals", {"turns": -1}, "`turns`"),
    ],
)
def test_bad_options_name_the_parameter(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load(name, **kwargs)
