"""MLPRegressor / MLPClassifier: scikit-learn's own checks, model selection, files, LM."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from deltaprop.estimators import MLPClassifier, MLPRegressor, _standardisation
from deltaprop.solvers import DEFAULT_MAX_ITER

# Small, fast instances: the checks test the estimator protocol, not the optimizer.
FAST = {"hidden_layer_sizes": (8,), "solver": "adam", "learning_rate_init": 0.05,
        "max_iter": 40, "random_state": 0}


def _expected_failed_checks(estimator) -> dict[str, str]:
    """Checks allowed to fail, with the reason; none are needed."""
    return {}


# ---------------------------------------------------------------------- scikit-learn's checks
@parametrize_with_checks([MLPRegressor(**FAST), MLPClassifier(**FAST)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@parametrize_with_checks([MLPRegressor((5,), max_iter=15, random_state=0),
                          MLPClassifier((5,), max_iter=15, random_state=0),
                          MLPRegressor((4, 3), topology="cascade", max_iter=15, random_state=0)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_with_lm(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- data
def _regression(rng, n=120, n_out=1):
    X = rng.uniform(-1, 1, (n, 3))
    Y = np.c_[np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] ** 2 - X[:, 1]][:, :n_out]
    return X, (Y[:, 0] if n_out == 1 else Y)


def _blobs(rng, n_per=30, labels=("a", "b", "c")):
    centres = np.array([[0, 0], [3, 0], [0, 3], [3, 3]])[: len(labels)]
    X = np.vstack([c + 0.6 * rng.normal(size=(n_per, 2)) for c in centres])
    return X, np.repeat(np.array(labels), n_per)


# ---------------------------------------------------------------------- behaviour
def test_defaults_follow_the_issue():
    est = MLPRegressor()
    assert est.get_params()["hidden_layer_sizes"] == (10,)
    assert (est.solver, est.activation, est.max_iter, est.early_stopping) == \
        ("lm", "tanh", None, False)
    assert DEFAULT_MAX_ITER == {"lm": 1000, "trainbr": 1000, "adam": 200, "sgd": 200,
                                "gd": 1000}


@pytest.mark.parametrize("solver", ["adam", "sgd", "gd"])
def test_first_order_solvers_fit(rng, solver):
    X, y = _regression(rng)
    lr = {"adam": 0.03, "sgd": 0.05, "gd": 0.3}[solver]
    est = MLPRegressor((8,), solver=solver, learning_rate_init=lr, max_iter=300,
                       random_state=0).fit(X, y)
    assert est.score(X, y) > 0.8
    assert est.n_iter_ == len(est.loss_curve_) == 300
    assert est.stop_reason_ == "max epochs"
    assert est.validation_scores_ is None and est.best_validation_score_ is None


def test_multi_output_regression(rng):
    X, Y = _regression(rng, n_out=2)
    est = MLPRegressor((10,), **{k: v for k, v in FAST.items() if k != "hidden_layer_sizes"})
    est.set_params(max_iter=300).fit(X, Y)
    assert est.predict(X).shape == (120, 2) and est.n_outputs_ == 2
    assert est.score(X, Y) > 0.9
    single = clone(est).fit(X, Y[:, :1])
    assert single.predict(X).shape == (120, 1)
    assert clone(est).fit(X, Y[:, 0]).predict(X).shape == (120,)


def test_standardisation_makes_units_irrelevant(rng):
    """Fitting on X·1000 + 5 and y·1e-3 gives the same network and rescaled predictions."""
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    scaled = MLPRegressor(**FAST).fit(1000 * X + 5, 1e-3 * y)
    np.testing.assert_allclose(scaled.net_.params, est.net_.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaled.predict(1000 * X + 5), 1e-3 * est.predict(X),
                               rtol=1e-6, atol=1e-9)


def test_constant_column_gets_scale_one(rng):
    X, y = _regression(rng)
    X[:, 1] = 7.0
    est = MLPRegressor(**FAST).fit(X, y)
    assert est.x_scale_[1] == 1.0 and est.x_mean_[1] == 7.0
    assert np.all(np.isfinite(est.predict(X)))


def test_multiclass_with_string_labels(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(**{**FAST, "max_iter": 100}).fit(X, y)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    proba = clf.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.9
    assert (clf.out_activation_, clf.net_.loss_name) == ("softmax", "ce")


def test_binary_classification_has_two_softmax_outputs(rng):
    X, y = _blobs(rng, labels=(3, 7))
    clf = MLPClassifier(**FAST).fit(X, y)
    assert clf.predict_proba(X).shape == (60, 2) and clf.n_outputs_ == 2
    assert set(clf.predict(X)) <= {3, 7}


def test_one_class_is_refused(rng):
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        MLPClassifier(**FAST).fit(rng.normal(size=(10, 2)), np.ones(10))


def test_early_stopping_records_validation_scores(rng):
    X, y = _regression(rng, n=200)
    est = MLPRegressor(**{**FAST, "max_iter": 500}, early_stopping=True,
                       validation_fraction=0.2, n_iter_no_change=5).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.stop_reason_ in ("validation stopped improving", "max epochs")
    assert est.best_validation_score_ == est.validation_scores_[est.best_epoch_ - 1]
    np.testing.assert_array_equal(est.net_.params, est.history_.best_params)


def test_validation_data_replaces_the_split(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(**FAST).fit(X[::2], y[::2], validation_data=(X[1::2], y[1::2]))
    assert len(clf.validation_scores_) == clf.n_iter_
    with pytest.raises(ValueError, match="not one of the classes"):
        MLPClassifier(**FAST).fit(X[::2], y[::2], validation_data=(X[:3], ["a", "zz", "b"]))


def test_same_random_state_same_model(rng):
    X, y = _regression(rng)
    a = MLPRegressor(**FAST).fit(X, y)
    b = MLPRegressor(**FAST).fit(X, y)
    c = MLPRegressor(**{**FAST, "random_state": 1}).fit(X, y)
    np.testing.assert_array_equal(a.net_.params, b.net_.params)
    assert not np.array_equal(a.net_.params, c.net_.params)


@pytest.mark.parametrize("params, match", [
    ({"hidden_layer_sizes": (3, 0)}, r"hidden_layer_sizes\[1\]"),
    ({"solver": "trainbr", "l2": 0.1}, "`l2` must be 0 with solver='trainbr'"),
    ({"solver": "lm", "batch_size": 16}, "`batch_size` must be None with solver='lm'"),
    ({"tol": float("nan")}, "'tol' parameter"),
])
def test_bad_parameters_are_named(rng, params, match):
    X, y = _regression(rng)
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**{**FAST, **params}).fit(X, y)


def test_invalid_parameter_values_name_the_parameter(rng):
    X, y = _regression(rng)
    with pytest.raises(InvalidParameterError, match="'solver' parameter"):
        MLPRegressor(solver="lbfgs").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'activation' parameter"):
        MLPClassifier(activation="softmax").fit(X, y > 0)


def test_grid_search_over_hidden_layer_sizes(rng):
    X, y = _regression(rng)
    grid = GridSearchCV(MLPRegressor(**FAST), {"hidden_layer_sizes": [(2,), (8,), (8, 8)]},
                        cv=3)
    grid.fit(X, y)
    assert grid.best_params_["hidden_layer_sizes"] in [(2,), (8,), (8, 8)]
    assert len(grid.cv_results_["mean_test_score"]) == 3
    assert grid.best_estimator_.get_params()["hidden_layer_sizes"] == \
        grid.best_params_["hidden_layer_sizes"]
    assert grid.score(X, y) > 0.5


def test_pickle_and_deepcopy_keep_a_working_network(rng):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        # The layers must still be views of the flat parameter vector.
        other.net_.params[:] = 0.0
        np.testing.assert_array_equal(other.net_.dense_layers[0].W, 0.0)


# ---------------------------------------------------------------------- overflow
@pytest.mark.parametrize("factor", [1e200, 1e300, 1.7e308])
def test_huge_inputs_standardise_without_overflow(rng, factor):
    """X·1e200 gave x_scale_ = inf, dropped every feature and 'trained' (issue 13, item 2)."""
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    huge = MLPRegressor(**FAST).fit(X * factor, y)
    assert np.all(np.isfinite(huge.x_scale_)) and np.all(huge.x_scale_ > 0)
    assert huge.n_iter_ == est.n_iter_
    np.testing.assert_allclose(huge.net_.params, est.net_.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(huge.predict(X * factor), est.predict(X), rtol=1e-6, atol=1e-9)


def test_huge_targets_predict_finite_numbers(rng):
    """y·1e300 predicted ±inf."""
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    huge = MLPRegressor(**FAST).fit(X, y * 1e300)
    pred = huge.predict(X)
    assert np.all(np.isfinite(pred))
    np.testing.assert_allclose(pred, est.predict(X) * 1e300, rtol=1e-6)


def test_data_near_the_float64_limit_with_both_signs(rng):
    X = np.array([[1.7e308], [-1.7e308], [0.0], [1e308]])
    est = MLPRegressor((2,), solver="adam", max_iter=3, random_state=0).fit(X, [1.0, 2, 3, 4])
    assert np.all(np.isfinite(est.x_scale_)) and np.all(np.isfinite(est.predict(X)))


def test_standardisation_gives_the_textbook_bits_on_ordinary_data(rng):
    for scale in (1.0, 1e3, 1e-3, 7.3, 1e100):
        A = rng.normal(size=(200, 4)) * scale + 3 * scale
        mean, std = _standardisation(A)
        np.testing.assert_array_equal(mean, A.mean(axis=0))
        np.testing.assert_array_equal(std, A.std(axis=0))


def test_a_prediction_beyond_float64_is_an_error_not_inf(rng):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y * 1e300)
    est.y_scale_[:] = 1e308
    est.intercepts_[-1][:] = 100.0  # the network's output, far beyond the training range
    with pytest.raises(ValueError, match="prediction for row 0, output 0 overflows float64"):
        est.predict(X)


@pytest.mark.parametrize("factor", [1e-20, 1e-300])
def test_tiny_units_are_not_constant_columns(rng, factor):
    """Spreads below 2.2e-15 were taken for constant columns and left unscaled."""
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    tiny = MLPRegressor(**FAST).fit(X * factor, y * factor)
    np.testing.assert_allclose(tiny.x_scale_, est.x_scale_ * factor, rtol=1e-12)
    np.testing.assert_allclose(tiny.net_.params, est.net_.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(tiny.predict(X * factor), est.predict(X) * factor, rtol=1e-6)


def test_inputs_too_far_from_the_training_data_are_named(rng):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X * 1e-300, y)
    with pytest.raises(ValueError, match=r"`X` value 1e\+300 at row 0, column 0 lies beyond"):
        est.predict(np.full((1, 3), 1e300))


# ---------------------------------------------------------------------- public methods
def test_coefs_and_intercepts_are_views_of_the_network(rng):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    assert [c.shape for c in est.coefs_] == [(3, 8), (8, 1)]
    np.testing.assert_array_equal(est.coefs_[0], est.net_.dense_layers[0].W.T)
    before = est.predict(X)
    est.coefs_[1][:] = 0.0
    est.intercepts_[1][:] = 0.0
    np.testing.assert_allclose(est.predict(X), est.y_mean_[0])
    assert not np.allclose(before, est.predict(X))
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        other.coefs_[0][:] = 1.0
        np.testing.assert_array_equal(other.net_.dense_layers[0].W, 1.0)
        assert not np.array_equal(est.net_.dense_layers[0].W, 1.0)


def test_network_inputs_and_targets(rng):
    X, Y = _regression(rng, n_out=2)
    est = MLPRegressor(**FAST).fit(X, Y)
    np.testing.assert_allclose(est.network_inputs(X), (X - est.x_mean_) / est.x_scale_)
    np.testing.assert_allclose(est.network_targets(Y), (Y - est.y_mean_) / est.y_scale_)
    with pytest.raises(ValueError, match="`y_val` has 1 target columns; y has 2"):
        est.network_targets(Y[:, 0], "y_val")
    Xb, yb = _blobs(rng)
    clf = MLPClassifier(**FAST).fit(Xb, yb)
    assert clf.network_targets(["c", "a"]).tolist() == [2, 0]


def test_from_network_checks_what_the_network_says(rng):
    X, y = _regression(rng)
    est = MLPRegressor(**FAST).fit(X, y)
    kw = {"params": est.get_params(), "x_mean": est.x_mean_, "x_scale": est.x_scale_,
          "targets": {"y_mean": est.y_mean_, "y_scale": est.y_scale_, "target_1d": True},
          "history": est.history_}
    same = MLPRegressor.from_network(est.net_, **kw)
    np.testing.assert_array_equal(same.predict(X), est.predict(X))
    bad = [({"params": {**kw["params"], "hidden_layer_sizes": (9,)}}, "hidden_layer_sizes"),
           ({"params": {**kw["params"], "activation": "relu"}}, "activation"),
           ({"params": {**kw["params"], "colour": 1}}, "params"),
           ({"x_scale": np.r_[est.x_scale_[:2], 1e-320]}, "x_scale"),
           ({"targets": {**kw["targets"], "target_1d": "yes"}}, "target_1d")]
    for change, match in bad:
        with pytest.raises(ValueError, match=match):
            MLPRegressor.from_network(est.net_, **{**kw, **change})
    with pytest.raises(ValueError, match="does not fit a MLPClassifier"):
        MLPClassifier.from_network(est.net_, **kw)


# ---------------------------------------------------------------------- Levenberg–Marquardt
def test_lm_fits_a_sine_quickly(rng):
    X = rng.uniform(-1, 1, (200, 1))
    y = np.sin(3 * X[:, 0]) + 0.05 * rng.normal(size=200)
    est = MLPRegressor((10,), solver="lm", max_iter=100, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.98


def test_lm_classifier(rng):
    X, y = _blobs(rng, labels=("x", "y", "z", "w"))
    clf = MLPClassifier((5,), solver="lm", max_iter=50, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_trainbr_records_the_effective_number_of_parameters(rng):
    X, y = _regression(rng)
    est = MLPRegressor((10,), solver="trainbr", max_iter=100, random_state=0).fit(X, y)
    gamma = est.history_.extras["gamma"][-1]
    assert 0 < gamma < est.net_.n_params
    assert {"alpha", "beta"} <= set(est.history_.extras)


def test_trainbr_on_diabetes_beats_sklearn_lbfgs():
    """5-fold CV on diabetes: trainbr reaches ridge regression's R² (≥ 0.46) and beats
    scikit-learn's MLPRegressor(lbfgs) (default sizes, inside a StandardScaler pipeline,
    converged: max_iter=2000 raises no ConvergenceWarning) on the same folds.

    One BLAS thread: ~10 s in all, and several times slower with threads on a busy machine.
    """
    X, y = load_diabetes(return_X_y=True)
    folds = KFold(5, shuffle=True, random_state=0)
    sk = make_pipeline(StandardScaler(),
                       SkMLPRegressor(solver="lbfgs", max_iter=2000, random_state=0))
    with threadpool_limits(limits=1):
        ours = cross_val_score(MLPRegressor(solver="trainbr", random_state=0), X, y, cv=folds)
        theirs = cross_val_score(sk, X, y, cv=folds)
    print(f"trainbr R² {ours.mean():.3f} {np.round(ours, 3)}; "
          f"sklearn lbfgs R² {theirs.mean():.3f} {np.round(theirs, 3)}")
    assert ours.mean() >= 0.46
    assert ours.mean() > theirs.mean()


def test_a_half_written_last_epoch_is_dropped(rng, monkeypatch, tmp_path):
    """Ctrl-C inside train's bookkeeping can leave History columns of unequal length (and a
    validation score short); the estimator keeps the complete rows, so it can be saved."""
    import deltaprop.estimators as module

    real_train = module.train

    def ragged_train(*args, callbacks, **kwargs):
        history = real_train(*args, callbacks=callbacks, **kwargs)
        history.epoch.append(history.epoch[-1] + 1)  # the next row, cut after its epoch
        return history

    def unscored_train(*args, callbacks, **kwargs):  # cut before the last epoch's score
        return real_train(*args, callbacks=[lambda e, h, n: e < 40 and callbacks[0](e, h, n)],
                          **kwargs)

    X, y = _regression(rng)
    for fake in (ragged_train, unscored_train):
        monkeypatch.setattr(module, "train", fake)
        est = MLPRegressor(**FAST, early_stopping=True, n_iter_no_change=1000).fit(X, y)
        h = est.history_
        assert len(h.epoch) == len(h.loss) == len(h.seconds) == 41 and est.n_iter_ == 40
        assert len(est.validation_scores_) == 40 == len(est.loss_curve_)
        assert np.isnan(est.validation_scores_[-1]) == (fake is unscored_train)
        est.save(tmp_path / "m.npz")  # a summary that loads back
        assert MLPRegressor.load(tmp_path / "m.npz").n_iter_ == 40


@pytest.mark.parametrize("solver", ["lm", "trainbr", "adam"])
def test_cascade_topology_fits_pickles_and_saves(rng, solver, tmp_path):
    import pickle

    from deltaprop.estimator_io import load_estimator

    X, y = _regression(rng)
    est = MLPRegressor((6, 4), topology="cascade", solver=solver, learning_rate_init=0.05,
                       max_iter=300 if solver == "adam" else 60, random_state=0).fit(X, y)
    assert est.net_.topology == "cascade" and est.get_params()["topology"] == "cascade"
    assert [W.shape for W in est.coefs_] == [(3, 6), (9, 4), (13, 1)]  # [x], [x, a1], [x, a1, a2]
    assert est.score(X, y) > 0.5
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))
    est.save(tmp_path / "cascade.npz")
    loaded, _ = load_estimator(tmp_path / "cascade.npz")
    assert loaded.topology == "cascade"
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    with pytest.raises(ValueError, match="topology"):
        MLPRegressor(topology="graph").fit(X, y)
