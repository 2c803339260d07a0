"""Estimator model files: round trips, and every contradiction in the metadata refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deltaprop
from deltaprop.estimator_io import load_estimator, save_estimator
from deltaprop.estimators import MLPClassifier, MLPRegressor
from deltaprop.model_io import ModelFileError, save_model

FAST = {"hidden_layer_sizes": (8,), "solver": "adam", "learning_rate_init": 0.05,
        "max_iter": 40, "random_state": 0}


def _regression(rng, n=120, n_out=1):
    X = rng.uniform(-1, 1, (n, 3))
    Y = np.c_[np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] ** 2 - X[:, 1]][:, :n_out]
    return X, (Y[:, 0] if n_out == 1 else Y)


def _blobs(rng, n_per=30, labels=("a", "b", "c")):
    centres = np.array([[0, 0], [3, 0], [0, 3], [3, 3]])[: len(labels)]
    X = np.vstack([c + 0.6 * rng.normal(size=(n_per, 2)) for c in centres])
    return X, np.repeat(np.array(labels), n_per)


# ---------------------------------------------------------------------- round trips
def test_round_trip_regressor(rng, tmp_path):
    X, Y = _regression(rng, n_out=2)
    est = MLPRegressor(**FAST).fit(X, Y)
    path = tmp_path / "reg.npz"
    save_estimator(est, path, feature_names=["a", "b", "c"], target_names=["u", "v"],
                   extra={"note": "hi"})
    loaded, info = load_estimator(path)
    assert isinstance(loaded, MLPRegressor)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.get_params() == {**est.get_params(), "hidden_layer_sizes": [8]}
    assert (info["feature_names"], info["target_names"]) == (["a", "b", "c"], ["u", "v"])
    assert info["extra"] == {"note": "hi"} and info["task"] == "regression"
    assert info["training"]["stop_reason"] == est.stop_reason_
    assert loaded.loss_curve_ == est.loss_curve_ and loaded.n_iter_ == est.n_iter_


def test_round_trip_classifier_methods(rng, tmp_path):
    X, y = _blobs(rng)
    clf = MLPClassifier(**FAST).fit(X, y)
    clf.save(tmp_path / "clf.npz")
    loaded = MLPClassifier.load(tmp_path / "clf.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.classes_.tolist() == ["a", "b", "c"]
    with pytest.raises(ModelFileError, match="not a MLPRegressor"):
        MLPRegressor.load(tmp_path / "clf.npz")


def test_long_curves_are_thinned_in_model_files(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(deltaprop.estimator_io, "MAX_CURVE_POINTS", 11)
    X, y = _regression(rng)
    est = MLPRegressor(**{**FAST, "max_iter": 100}, early_stopping=True,
                       n_iter_no_change=1000).fit(X, y)
    save_estimator(est, tmp_path / "m.npz")
    loaded, info = load_estimator(tmp_path / "m.npz")
    assert info["training"]["curve_epochs"] == list(range(0, 101, 10))
    assert loaded.history_.epoch == list(range(0, 101, 10)) and loaded.n_iter_ == 100
    assert loaded.loss_curve_ == [est.loss_curve_[e - 1] for e in range(10, 101, 10)]
    assert loaded.validation_scores_ == [est.validation_scores_[e - 1]
                                         for e in range(10, 101, 10)]
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def _rewrite_metadata(src, dst, change):
    """Copy a model file, applying ``change`` to its metadata dict."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    document = json.loads(arrays["model"].tobytes())
    change(document["metadata"])
    arrays["model"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(x_scale=[1.0]), "x_scale"),
    (lambda m: m.update(x_scale=[0.0, 1.0, 1.0]), "x_scale.? must be positive"),
    (lambda m: m.update(classes=["a", "a", "b"]), "classes"),
    (lambda m: m.update(task="regression"), "task"),
    (lambda m: m.pop("training"), "training"),
    (lambda m: m["params"].update(solver="magic"), "params"),
    (lambda m: m.update(kind="something else"), "no estimator"),
])
def test_tampered_estimator_metadata_is_refused(rng, tmp_path, change, match):
    X, y = _blobs(rng)
    X = np.c_[X, X[:, 0]]
    src, dst = tmp_path / "good.npz", tmp_path / "bad.npz"
    MLPClassifier(**FAST).fit(X, y).save(src)
    _rewrite_metadata(src, dst, change)
    with pytest.raises(ModelFileError, match=match):
        load_estimator(dst)


def test_plain_network_file_is_not_an_estimator(tmp_path):
    save_model(tmp_path / "net.npz", deltaprop.mlp([2, 3, 1], seed=0))
    with pytest.raises(ModelFileError, match="no estimator"):
        load_estimator(tmp_path / "net.npz")


# ---------------------------------------------------------------------- issue 13: item 2
def test_a_model_of_huge_data_saves_and_loads(rng, tmp_path):
    """X·1e200 gave a model that could not be loaded ("x_scale ... None is not a number")."""
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X * 1e200, y * 1e300)
    est.save(tmp_path / "m.npz")
    loaded = MLPRegressor.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X * 1e200), est.predict(X * 1e200))


@pytest.mark.parametrize("attribute, value", [("x_scale_", np.inf), ("x_scale_", 1e-320),
                                              ("x_mean_", np.nan), ("y_scale_", 0.0)])
def test_save_refuses_what_would_not_load_back(rng, tmp_path, attribute, value):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    getattr(est, attribute)[0] = value
    with pytest.raises(ModelFileError, match="refusing to save an estimator that would not "
                                             "load back"):
        est.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_duplicate_names(rng, tmp_path):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    with pytest.raises(ModelFileError, match="'a' twice"):
        save_estimator(est, tmp_path / "m.npz", feature_names=["a", "b", "a"])
    with pytest.raises(ValueError, match="`extra` must be a mapping"):
        save_estimator(est, tmp_path / "m.npz", extra=[1, 2])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- issue 13: item 6
def _training(m, **changes):
    m["training"].update(changes)


@pytest.mark.parametrize("change, match", [
    (lambda m: m["params"].update(hidden_layer_sizes=[9]), "hidden_layer_sizes"),
    (lambda m: m["params"].update(activation="relu"), "activation"),
    (lambda m: m.update(feature_names=["a", "a", "b"]), "'a' twice"),
    (lambda m: m.update(feature_names=["a", "b"]), "feature_names"),
    (lambda m: m.update(target_names=[]), "target_names"),
    (lambda m: m.update(target_names=[7]), "target_names"),
    (lambda m: m.update(extra=[1]), "'extra'"),
    (lambda m: m.update(extra="text"), "'extra'"),
    (lambda m: _training(m, gamma="abc"), "'gamma' must be a number"),
    (lambda m: _training(m, seconds="soon"), "'seconds'"),
    (lambda m: _training(m, solver="magic"), "solver 'magic'"),
    (lambda m: _training(m, n_iter=True), "'n_iter'"),
    (lambda m: _training(m, best_epoch=10**6), "malformed"),
    (lambda m: _training(m, curve_epochs=[0, 2, 1]), "malformed"),
    (lambda m: _training(m, validation_scores=[0.5]), "malformed"),
    (lambda m: _training(m, optimizer=3), "'optimizer'"),
    (lambda m: m.update(x_scale=[1e-320, 1.0, 1.0]), "x_scale"),
    (lambda m: m.update(x_mean=[1e308, "1", 0.0]), "x_mean"),
    (lambda m: m.update(classes=["a", "b", 3]), "classes"),
    (lambda m: m.update(classes=[1, 2, 2**70]), "classes"),
    (lambda m: m.update(classes=["a", "b"]), "classes"),
    (lambda m: m.update(feature_names_in=1), "feature_names_in"),
    (lambda m: m.update(colour="red"), "unexpected 'colour'"),
    (lambda m: m.pop("extra"), "lacks 'extra'"),
])
def test_metadata_that_contradicts_the_network_is_refused(rng, tmp_path, change, match):
    """Each of these was accepted and crashed inspect/evaluate/predict later (exit 1)."""
    X, y = _blobs(rng)
    X = np.c_[X, X[:, 0]]
    src, dst = tmp_path / "good.npz", tmp_path / "bad.npz"
    MLPClassifier(**FAST, early_stopping=True).fit(X, y).save(src)
    _rewrite_metadata(src, dst, change)
    with pytest.raises(ModelFileError, match=match):
        load_estimator(dst)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(target_1d="yes"), "target_1d"),
    (lambda m: m.update(y_scale=[-1.0]), "y_scale"),
    (lambda m: m.update(target_names=["u", "v"]), "target_names"),
    (lambda m: m.update(classes=[0, 1]), "unexpected 'classes'"),
])
def test_regression_metadata_is_checked(rng, tmp_path, change, match):
    X, y = _regression(rng)
    src, dst = tmp_path / "good.npz", tmp_path / "bad.npz"
    MLPRegressor(**FAST).fit(X, y).save(src)
    _rewrite_metadata(src, dst, change)
    with pytest.raises(ModelFileError, match=match):
        load_estimator(dst)


def test_the_unchanged_copy_loads(rng, tmp_path):
    """The rewriting helper itself keeps a model loadable: the refusals are the edits'."""
    X, y = _blobs(rng)
    src, dst = tmp_path / "good.npz", tmp_path / "same.npz"
    MLPClassifier(**FAST, early_stopping=True).fit(X, y).save(src)
    _rewrite_metadata(src, dst, lambda m: None)
    load_estimator(dst)


# ---------------------------------------------------------------------- issue 13: item 7
def test_integer_labels_beyond_2_53_round_trip_exactly(rng, tmp_path):
    X, _ = _blobs(rng, labels=("a", "b"))
    big = np.int64(9007199254740993)
    y = np.repeat(np.array([big, big - 1]), 30)
    clf = MLPClassifier(**FAST).fit(X, y)
    assert clf.classes_.tolist() == [9007199254740992, 9007199254740993]
    clf.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz")
    assert loaded.classes_.dtype == np.int64
    assert loaded.classes_.tolist() == [9007199254740992, 9007199254740993]
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
