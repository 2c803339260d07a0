"""scikit-learn estimators: ``MLPRegressor`` and ``MLPClassifier`` trained by deltaprop.

Both follow scikit-learn's conventions (``fit``/``predict``/``score``, ``get_params``, fitted
attributes ending in ``_``, parameter validation at ``fit``) and pass its estimator checks, so
they drop into pipelines, ``cross_val_score`` and ``GridSearchCV``.  What they add is the
choice of solver: Levenberg–Marquardt (``"lm"``, MATLAB's ``trainlm``) by default, Bayesian
regularisation (``"trainbr"``), or the first-order family.

============  ============================================================================
solver        optimizer (``deltaprop.optimizers`` / ``deltaprop.lm_training``)
============  ============================================================================
``"lm"``      ``LevenbergMarquardt(l2=l2)``, full batch; default ``max_iter`` 1000
``"trainbr"`` ``LevenbergMarquardt(bayesian=True)``: α and β re-estimated (MacKay 1992);
              returns the epoch of highest log evidence and stops 6 epochs after it
              (``evidence_patience``); ``l2`` must stay 0; default ``max_iter`` 1000
``"adam"``    ``Adam(learning_rate_init, weight_decay=l2)``, minibatches; default 200
``"sgd"``     ``Momentum(learning_rate_init, beta=0.9, nesterov=True, weight_decay=l2)``,
              minibatches, as scikit-learn's ``sgd``; default 200
``"gd"``      ``GD(learning_rate_init, weight_decay=l2)``, full batch; default 1000
============  ============================================================================

``batch_size=None`` means the full batch for "lm", "trainbr" and "gd" and scikit-learn's
``"auto"``, min(200, n_samples), for "adam" and "sgd"; the LM solvers accept no other.

Scaling.  Inputs, and for regression the targets, are standardised column by column with the
mean and standard deviation of the training rows (constant columns get scale 1), and
predictions are mapped back.  The network, ``coefs_``, ``intercepts_``, ``loss_curve_`` and
``tol`` therefore all live in standardised units, which makes the solvers' defaults work for
any units of the data.

Losses.  Regression: identity output and "mse" (one output per target column).
Classification: softmax output and "ce" with one output per class, also for two classes
(``predict_proba`` then has two columns, as scikit-learn's).

Stopping.  ``max_iter`` epochs at most; ``tol`` is the ``min_grad`` rule: stop when the norm
of the full-batch gradient of the (standardised, penalised) loss drops below ``tol``;
with ``early_stopping`` a ``validation_fraction`` of the rows is held out (stratified for
classifiers) and training stops after ``n_iter_no_change`` epochs without a new lowest
validation loss, keeping the parameters of the best epoch.  ``fit(..., validation_data=(X, y))``
uses the given rows instead.  A KeyboardInterrupt during training stops it and keeps the best
parameters so far (``stop_reason_ == "interrupted"``).  No ConvergenceWarning is issued;
``stop_reason_`` says why training stopped.

Model files.  :func:`save_estimator` / :func:`load_estimator` (also ``est.save(path)`` and
``MLPRegressor.load(path)``) use :mod:`deltaprop.model_io`: no pickle, every field checked.

References
----------
Marquardt 1963; Hagan & Menhaj 1994 (LM for networks); MacKay 1992 and Foresee & Hagan 1997
(Bayesian regularisation); Bishop & Bishop 2024 §7.3, §9.3.2; scikit-learn's
``sklearn.neural_network`` for the interface.

Examples
--------
>>> import numpy as np
>>> from deltaprop.estimators import MLPRegressor
>>> X = np.linspace(-1, 1, 40).reshape(-1, 1)
>>> est = MLPRegressor(hidden_layer_sizes=(5,), solver="adam", learning_rate_init=0.05,
...                    max_iter=100, random_state=0).fit(X, X[:, 0] ** 2)
>>> est.predict(X[:3]).shape, est.n_iter_
((3,), 100)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .activations import ACTIVATIONS
from .model_io import ModelFileError, empty_network, load_model, metadata_array, save_model
from .network import Network, mlp
from .optimizers import GD, Adam, Momentum, Optimizer
from .training import History, train

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

Array = np.ndarray
PathLike = str | os.PathLike

#: Accepted values of ``solver``.
SOLVERS = ("lm", "trainbr", "adam", "sgd", "gd")
#: ``max_iter`` used when it is None (MATLAB's epochs for LM and GD, scikit-learn's otherwise).
DEFAULT_MAX_ITER = {"lm": 1000, "trainbr": 1000, "adam": 200, "sgd": 200, "gd": 1000}
#: Solvers that always use the full batch.
FULL_BATCH_SOLVERS = ("lm", "trainbr")
#: Model files keep at most this many points of the loss curves (evenly spread).
MAX_CURVE_POINTS = 10_001
#: The ``kind`` entry of the metadata that :func:`save_estimator` writes.
ESTIMATOR_KIND = "deltaprop-estimator"


def _validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (≥ 1.6) or the older ``_validate_data`` method."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def _standardisation(A: Array) -> tuple[Array, Array]:
    """Column means and standard deviations of A (N, d); constant columns get scale 1."""
    mean = A.mean(axis=0)
    scale = A.std(axis=0)
    tiny = scale <= 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
    scale[tiny] = 1.0
    return mean, scale


# ---------------------------------------------------------------------- networks and pickling
def _net_state(net: Network) -> dict[str, Any]:
    """A picklable description of ``net`` (layer views do not survive pickling)."""
    return {"sizes": net.sizes, "activations": net.activation_names, "loss": net.loss_name,
            "params": net.params.copy()}


def _net_from_state(state: Mapping[str, Any]) -> Network:
    net = empty_network(state["sizes"], state["activations"], state["loss"])
    net.params[:] = state["params"]
    return net


# ---------------------------------------------------------------------- the shared base
class _BaseMLP(BaseEstimator):
    """Parameters, fitting and persistence shared by the regressor and the classifier."""

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 (scikit-learn's idiom)
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "l2": [Interval(Real, 0, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: "regression" or "classification"; set by the subclasses.
    _task = ""

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (10,),
        *,
        activation: str = "tanh",
        solver: str = "lm",
        max_iter: int | None = None,
        tol: float = 1e-7,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 6,
        l2: float = 0.0,
        learning_rate_init: float = 1e-3,
        batch_size: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.l2 = l2
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    # -- hooks implemented by the subclasses
    def _check_y(self, X: object, y: object) -> tuple[Array, Array]:
        raise NotImplementedError

    def _fit_targets(self, y: Array) -> Array:
        """Learn the target encoding (classes or scaling) from the training rows; encode them."""
        raise NotImplementedError

    def _encode_targets(self, y: Array, name: str) -> Array:
        """Encode targets with the fitted encoding, as the network's training targets."""
        raise NotImplementedError

    def _head(self) -> tuple[int, str, str]:
        """(number of outputs, output activation, loss)."""
        raise NotImplementedError

    def _score_standardised(self, net: Network, X: Array, T: Array) -> float:
        raise NotImplementedError

    def _stratify(self, y: Array) -> Array | None:
        return None

    # -- parameters
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(np.ravel(sizes).tolist())
        for i, width in enumerate(sizes):
            if isinstance(width, bool) or not isinstance(width, Integral) or width < 1:
                raise ValueError(f"`hidden_layer_sizes[{i}]` must be a positive integer; "
                                 f"got {width!r} in {self.hidden_layer_sizes!r}.")
        return [int(w) for w in sizes]

    def _check_combinations(self) -> None:
        """Checks across parameters that ``_parameter_constraints`` cannot express."""
        if self.solver == "trainbr" and self.l2 != 0:
            raise ValueError(f"`l2` must be 0 with solver='trainbr', which estimates the weight "
                             f"penalty itself (MacKay 1992); got l2={self.l2!r}.")
        if self.solver in FULL_BATCH_SOLVERS and self.batch_size is not None:
            raise ValueError(f"`batch_size` must be None with solver={self.solver!r}, which uses "
                             f"the full batch; got batch_size={self.batch_size!r}.")
        for name in ("tol", "l2", "learning_rate_init"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"`{name}` must be finite; got {getattr(self, name)!r}.")

    def _optimizer(self) -> Optimizer:
        lr, l2 = float(self.learning_rate_init), float(self.l2)
        if self.solver in FULL_BATCH_SOLVERS:
            from .lm_training import LevenbergMarquardt  # written alongside; imported lazily

            if self.solver == "trainbr":
                return LevenbergMarquardt(bayesian=True)
            return LevenbergMarquardt(l2=l2)
        if self.solver == "adam":
            return Adam(lr=lr, weight_decay=l2)
        if self.solver == "sgd":
            return Momentum(lr=lr, beta=0.9, nesterov=True, weight_decay=l2)
        return GD(lr=lr, weight_decay=l2)

    def _batch_size(self, n_samples: int) -> int | None:
        if self.batch_size is not None:
            return int(self.batch_size)
        return min(200, n_samples) if self.solver in ("adam", "sgd") else None

    # -- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None = None) -> _BaseMLP:
        """Train the network on X and y.

        Parameters
        ----------
        X : array_like (n_samples, n_features)
        y : array_like (n_samples,) or (n_samples, n_targets)
            Targets (regression) or class labels (classification).
        validation_data : (X_val, y_val), optional
            Held-out rows for early stopping.  When given, they are used instead of splitting
            off ``validation_fraction`` of X, and early stopping applies whatever
            ``early_stopping`` says.

        Returns
        -------
        self

        Notes
        -----
        Ctrl-C (KeyboardInterrupt) during training ends it normally: the estimator keeps the
        best parameters seen so far and ``stop_reason_`` is "interrupted".
        """
        hidden = self._hidden_sizes()
        self._check_combinations()
        X, y = self._check_y(X, y)
        rng = check_random_state(self.random_state)
        seed_split, seed_net, seed_train = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        X_tr, y_tr, val = self._split(X, y, validation_data, seed_split)
        self.x_mean_, self.x_scale_ = _standardisation(X_tr)
        T_tr = self._fit_targets(y_tr)
        if val is not None:
            val = (self._standardise_inputs(val[0]), self._encode_targets(val[1], "y_val"))
        n_out, output, loss = self._head()
        net = mlp([X.shape[1], *hidden, n_out], activation=self.activation, output=output,
                  loss=loss, seed=seed_net)
        scores: list[float] | None = None if val is None else []
        history = self._train(net, self._standardise_inputs(X_tr), T_tr, val, seed_train, scores)
        self._set_fitted(net, history, scores)
        return self

    def _split(self, X: Array, y: Array, validation_data: object,
               seed: int) -> tuple[Array, Array, tuple[Array, Array] | None]:
        """Training rows and the validation rows (given, split off, or None)."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("`validation_data` must be a pair (X_val, y_val); got "
                                 f"{type(validation_data).__name__}.")
            X_val = _validate_data(self, validation_data[0], reset=False)
            return X, y, (X_val, np.asarray(validation_data[1]))
        if not self.early_stopping:
            return X, y, None
        try:
            parts = train_test_split(X, y, test_size=self.validation_fraction, random_state=seed,
                                     stratify=self._stratify(y))
        except ValueError as exc:
            raise ValueError(f"`early_stopping` cannot hold out validation_fraction="
                             f"{self.validation_fraction} of {X.shape[0]} samples: {exc}") from exc
        X_tr, X_val, y_tr, y_val = parts
        return X_tr, y_tr, (X_val, y_val)

    def _train(self, net: Network, X: Array, T: Array, val: tuple[Array, Array] | None,
               seed: int, scores: list[float] | None) -> History:
        callbacks: list[Callable[[int, History, Network], bool]] = []
        if val is not None and scores is not None:
            callbacks.append(self._score_callback(*val, scores))
        max_iter = DEFAULT_MAX_ITER[self.solver] if self.max_iter is None else self.max_iter
        return train(net, X, T, optimizer=self._optimizer(), epochs=int(max_iter),
                     batch_size=self._batch_size(X.shape[0]), validation=val,
                     min_grad=float(self.tol), patience=int(self.n_iter_no_change),
                     seed=seed, callbacks=callbacks, progress=bool(self.verbose))

    def _score_callback(self, X_val: Array, T_val: Array,
                        scores: list[float]) -> Callable[..., bool]:
        """A ``train`` callback appending the validation score of every epoch ≥ 1 to scores."""

        def record(epoch: int, history: History, net: Network) -> bool:
            if epoch > 0:
                scores.append(self._score_standardised(net, X_val, T_val))
            return False

        return record

    def _set_fitted(self, net: Network, history: History, scores: list[float] | None) -> None:
        self.net_ = net
        self.coefs_ = [np.array(layer.W.T) for layer in net.dense_layers]
        self.intercepts_ = [np.array(layer.b) for layer in net.dense_layers]
        self.n_layers_ = len(net.sizes)
        self.n_outputs_ = net.n_outputs
        self.out_activation_ = net.activation_names[-1]
        self.history_ = history
        self.n_iter_ = history.n_epochs
        self.loss_curve_ = list(history.loss[1:])
        self.best_epoch_ = history.best_epoch
        self.stop_reason_ = history.stop_reason
        self.validation_scores_ = scores
        self.best_validation_score_ = None
        scored = [e for e in history.epoch if e >= 1]  # the epochs of validation_scores_
        if scores and len(scores) == len(scored) and history.best_epoch in scored:
            self.best_validation_score_ = scores[scored.index(history.best_epoch)]

    # -- prediction
    def _standardise_inputs(self, X: Array) -> Array:
        """Validated raw inputs -> the network's (standardised) inputs."""
        return (X - self.x_mean_) / self.x_scale_

    def _forward(self, X: Any) -> Array:
        """Network outputs (standardised units) for raw inputs X."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        return self.net_.forward(self._standardise_inputs(X))

    # -- pickling: parameter views into one vector do not survive pickle, so store a recipe
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if isinstance(state.get("net_"), Network):
            state["net_"] = _net_state(state["net_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if isinstance(state.get("net_"), dict):
            state["net_"] = _net_from_state(state["net_"])
        super().__setstate__(state)

    # -- model files
    def save(self, path: PathLike, **names: Any) -> None:
        """Write the fitted estimator to a model file; see :func:`save_estimator`."""
        save_estimator(self, path, **names)

    @classmethod
    def load(cls, path: PathLike) -> _BaseMLP:
        """Read an estimator of this class from a model file; see :func:`load_estimator`."""
        estimator, _ = load_estimator(path)
        if not isinstance(estimator, cls):
            raise ModelFileError(path, f"holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator


# ---------------------------------------------------------------------- the regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by Levenberg–Marquardt (or another solver).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (10,)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : str, default "tanh"
        Hidden activation: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus",
        "elu".
    solver : {"lm", "trainbr", "adam", "sgd", "gd"}, default "lm"
        See the module docstring.
    max_iter : int, optional
        Maximum number of epochs; None means the solver's default (1000 for "lm", "trainbr"
        and "gd", 200 for "adam" and "sgd").
    tol : float, default 1e-7
        Stop when the full-batch gradient norm of the standardised loss is below ``tol``
        (MATLAB's ``min_grad``; 0 disables the rule).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows and stop when their loss has not improved
        for ``n_iter_no_change`` epochs, keeping the best epoch's parameters.
    validation_fraction : float, default 0.1
        In (0, 1).
    n_iter_no_change : int, default 6
        Patience of early stopping (MATLAB's ``max_fail``).
    l2 : float, default 0.0
        Weight decay λ ≥ 0: the loss minimised is mse + (λ/2)‖W‖² on the standardised data
        (weights only for the first-order solvers; as ``LevenbergMarquardt(l2=...)`` for "lm").
        Must be 0 for "trainbr".
    learning_rate_init : float, default 1e-3
        Learning rate of "adam", "sgd" and "gd".
    batch_size : int, optional
        Minibatch size for "adam", "sgd" and "gd"; None: min(200, n_samples) for "adam" and
        "sgd", the full batch for "gd".  Must be None for "lm" and "trainbr".
    random_state : int, RandomState or None
        Seeds the initial weights, the validation split and the minibatch order.
    verbose : bool, default False
        Show a progress bar (tqdm, on stderr).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a DataFrame with string column names.
    net_ : Network
        The trained network (standardised inputs and targets).
    coefs_, intercepts_ : list of ndarray
        ``coefs_[i]`` (n_in, n_out) = layer i's W transposed, ``intercepts_[i]`` its b
        (scikit-learn's layout), in standardised units.
    x_mean_, x_scale_ : ndarray (n_features,)
    y_mean_, y_scale_ : ndarray (n_outputs,)
    n_outputs_ : int
    n_layers_ : int
    out_activation_ : str
    loss_curve_ : list of float
        Training mse (standardised) after each epoch 1..n_iter_.
    validation_scores_ : list of float or None
        R² on the validation rows after each epoch (None without validation).
    best_validation_score_ : float or None
    best_epoch_ : int
    n_iter_ : int
        Epochs run.
    stop_reason_ : str
        One of ``deltaprop.training.STOP_REASONS``.
    history_ : History
        Everything ``train`` recorded (e.g. ``history_.extras["gamma"]`` for "trainbr").

    Examples
    --------
    >>> import numpy as np
    >>> from deltaprop.estimators import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (100, 2))
    >>> y = np.c_[X[:, 0] * X[:, 1], X[:, 0] ** 2]
    >>> est = MLPRegressor((8,), solver="adam", learning_rate_init=0.02, max_iter=300,
    ...                    random_state=0).fit(X, y)
    >>> est.predict(X).shape, est.score(X, y) > 0.9
    ((100, 2), True)
    """

    _task = "regression"

    def _check_y(self, X: object, y: object) -> tuple[Array, Array]:
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True,
                              dtype=np.float64)
        return X, np.asarray(y, dtype=np.float64)

    def _fit_targets(self, y: Array) -> Array:
        Y = y.reshape(y.shape[0], -1)
        self.y_mean_, self.y_scale_ = _standardisation(Y)
        self.target_1d_ = y.ndim == 1
        return (Y - self.y_mean_) / self.y_scale_

    def _encode_targets(self, y: Array, name: str) -> Array:
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if Y.shape[1] != self.y_mean_.shape[0]:
            raise ValueError(f"`{name}` has {Y.shape[1]} target columns; y has "
                             f"{self.y_mean_.shape[0]}.")
        return (Y - self.y_mean_) / self.y_scale_

    def _head(self) -> tuple[int, str, str]:
        return int(self.y_mean_.shape[0]), "identity", "mse"

    def _score_standardised(self, net: Network, X: Array, T: Array) -> float:
        return float(r2_score(T, net.forward(X)))

    def predict(self, X: Any) -> Array:
        """Predicted targets, (n_samples,) if y was 1-D at fit, else (n_samples, n_outputs)."""
        Y = self._forward(X) * self.y_scale_ + self.y_mean_
        return Y.ravel() if self.target_1d_ else Y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# ---------------------------------------------------------------------- the classifier
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier (softmax outputs, cross-entropy) trained by LM or others.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, max_iter, tol, early_stopping,
    validation_fraction, n_iter_no_change, l2, learning_rate_init, batch_size,
    random_state, verbose
        As for :class:`MLPRegressor`; the loss is the cross-entropy "ce" of a softmax
        output with one unit per class (two for a binary problem), the early-stopping split
        is stratified, and ``validation_scores_`` holds accuracies.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The sorted class labels; ``predict_proba``'s columns follow this order.
    n_features_in_, feature_names_in_, net_, coefs_, intercepts_, x_mean_, x_scale_,
    n_outputs_, n_layers_, out_activation_, loss_curve_, validation_scores_,
    best_validation_score_, best_epoch_, n_iter_, stop_reason_, history_
        As for :class:`MLPRegressor` (inputs only are standardised).

    Examples
    --------
    >>> import numpy as np
    >>> from deltaprop.estimators import MLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(90, 2)) + np.repeat([[0, 0], [4, 0], [0, 4]], 30, axis=0)
    >>> y = np.repeat(["a", "b", "c"], 30)
    >>> clf = MLPClassifier((5,), solver="adam", learning_rate_init=0.05, max_iter=100,
    ...                     random_state=0).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict_proba(X[:2]).shape, clf.score(X, y) > 0.9
    (['a', 'b', 'c'], (2, 3), True)
    """

    _task = "classification"

    def _check_y(self, X: object, y: object) -> tuple[Array, Array]:
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; got "
                             f"1 class ({self.classes_[0]!r}).")
        return X, y

    def _stratify(self, y: Array) -> Array | None:
        _, counts = np.unique(y, return_counts=True)
        return y if counts.min() >= 2 else None

    def _fit_targets(self, y: Array) -> Array:
        return self._encode_targets(y, "y")

    def _encode_targets(self, y: Array, name: str) -> Array:
        """Class labels -> indices into ``classes_`` (unknown labels raise ValueError)."""
        y = np.asarray(y).reshape(-1)
        try:
            index = np.minimum(np.searchsorted(self.classes_, y), self.classes_.shape[0] - 1)
            unknown = np.asarray(self.classes_[index] != y, dtype=bool).reshape(-1)
        except TypeError:
            index, unknown = np.zeros(y.shape[0], dtype=np.int64), np.ones(y.shape[0], bool)
        if np.any(unknown):
            bad = int(np.argmax(unknown))
            raise ValueError(f"`{name}` holds label {y[bad]!r} (row {bad}) that is not one of "
                             f"the classes {self.classes_.tolist()} seen in y.")
        return index.astype(np.int64)

    def _head(self) -> tuple[int, str, str]:
        return int(self.classes_.shape[0]), "softmax", "ce"

    def _score_standardised(self, net: Network, X: Array, T: Array) -> float:
        return float(accuracy_score(T, np.argmax(net.forward(X), axis=1)))

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        return self._forward(X)

    def predict(self, X: Any) -> Array:
        """The most probable class label of each row (n_samples,)."""
        proba = self._forward(X)
        return self.classes_[np.argmax(proba, axis=1)]


ESTIMATORS: dict[str, type[_BaseMLP]] = {"MLPRegressor": MLPRegressor,
                                         "MLPClassifier": MLPClassifier}


# ---------------------------------------------------------------------- model files
def _curve_rows(n: int) -> list[int]:
    """Rows of a History kept in a model file: all, or ≤ MAX_CURVE_POINTS evenly spread."""
    if n <= MAX_CURVE_POINTS:
        return list(range(n))
    rows = np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(int))
    return rows.tolist()


def _training_summary(est: _BaseMLP) -> dict[str, Any]:
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


def save_estimator(estimator: _BaseMLP, path: PathLike, *,
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
        Names of the input columns; default ``feature_names_in_`` or "x0", "x1", ...
    target_names : sequence of str, optional
        Names of the target columns (one for a classifier); default "y" or "y0", "y1", ...
    extra : mapping, optional
        Further JSON-able information to keep (e.g. metrics), returned by
        :func:`load_estimator` as ``info["extra"]``.

    Notes
    -----
    The metadata holds the estimator's class and parameters, the task, the scaling
    (``x_mean``, ``x_scale`` and for regression ``y_mean``, ``y_scale``), feature and
    target names, class labels, and a training summary (solver, epochs, stop reason, loss
    curves; γ, α, β for "trainbr").  Curves longer than ``MAX_CURVE_POINTS`` epochs are
    kept at evenly spread epochs (``curve_epochs``), so a loaded estimator's ``loss_curve_``
    is then shorter than ``n_iter_``.
    """
    check_is_fitted(estimator)
    params = estimator.get_params()
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    params["hidden_layer_sizes"] = estimator._hidden_sizes()
    d = int(estimator.n_features_in_)
    names = getattr(estimator, "feature_names_in_", None)
    features = list(feature_names if feature_names is not None else
                    (names.tolist() if names is not None else _default_names("x", d)))
    n_targets = 1 if estimator._task == "classification" else int(estimator.n_outputs_)
    targets = list(target_names) if target_names is not None else _default_names("y", n_targets)
    _check_names(features, d, "feature_names")
    _check_names(targets, n_targets, "target_names")
    meta: dict[str, Any] = {
        "kind": ESTIMATOR_KIND, "estimator": type(estimator).__name__,
        "task": estimator._task, "params": params, "feature_names": features,
        "feature_names_in": names is not None, "target_names": targets,
        "x_mean": estimator.x_mean_, "x_scale": estimator.x_scale_,
        "training": _training_summary(estimator), "extra": dict(extra or {}),
    }
    if estimator._task == "regression":
        meta.update(y_mean=estimator.y_mean_, y_scale=estimator.y_scale_,
                    target_1d=bool(estimator.target_1d_))
    else:
        meta["classes"] = estimator.classes_
    save_model(path, estimator.net_, meta)


def _check_names(names: list[Any], n: int, what: str) -> None:
    if len(names) != n or not all(isinstance(s, str) for s in names):
        raise ValueError(f"`{what}` must be {n} strings; got {names!r}.")


def _meta_entry(meta: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
                path: PathLike) -> Any:
    if key not in meta or not isinstance(meta[key], kind):
        raise ModelFileError(path, f"metadata entry {key!r} is missing or of the wrong type.")
    return meta[key]


def load_estimator(path: PathLike) -> tuple[_BaseMLP, dict[str, Any]]:
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
        no estimator, or metadata that does not match the network.
    """
    net, meta = load_model(path)
    if meta.get("kind") != ESTIMATOR_KIND or meta.get("estimator") not in ESTIMATORS:
        raise ModelFileError(path, "holds a deltaprop network but no estimator (metadata kind "
                                   f"{meta.get('kind')!r}); load it with deltaprop.load_model.")
    cls = ESTIMATORS[meta["estimator"]]
    params = _meta_entry(meta, "params", dict, path)
    try:
        estimator = cls(**params)
        estimator._validate_params()
        estimator._hidden_sizes()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"metadata 'params' are not valid for {cls.__name__}: {exc}"
                             ) from exc
    _restore_fitted(estimator, net, meta, path)
    info = {key: meta.get(key) for key in ("task", "feature_names", "target_names", "classes",
                                           "training", "extra", "params")}
    return estimator, info


def _restore_fitted(est: _BaseMLP, net: Network, meta: Mapping[str, Any],
                    path: PathLike) -> None:
    """Set the fitted attributes of ``est`` from a loaded network and metadata."""
    d, n_out = net.n_inputs, net.n_outputs
    if est._task != _meta_entry(meta, "task", str, path):
        raise ModelFileError(path, f"metadata task {meta['task']!r} does not match "
                                   f"{type(est).__name__}.")
    want = ("softmax", "ce") if est._task == "classification" else ("identity", "mse")
    if (net.activation_names[-1], net.loss_name) != want:
        raise ModelFileError(path, f"the network's output/loss {net.activation_names[-1]}/"
                                   f"{net.loss_name} does not fit a {type(est).__name__}.")
    features = metadata_array(meta, "feature_names", dtype=str, shape=(d,), path=path)
    metadata_array(meta, "target_names", dtype=str, shape=(None,), path=path)
    est.x_mean_ = metadata_array(meta, "x_mean", shape=(d,), path=path)
    est.x_scale_ = metadata_array(meta, "x_scale", shape=(d,), path=path)
    if np.any(est.x_scale_ <= 0):
        raise ModelFileError(path, "metadata 'x_scale' must be positive.")
    if _meta_entry(meta, "feature_names_in", bool, path):
        est.feature_names_in_ = features.astype(object)
    if est._task == "regression":
        _restore_regression(est, meta, n_out, path)
    else:
        _restore_classes(est, meta, n_out, path)
    training = _meta_entry(meta, "training", dict, path)
    scores = training.get("validation_scores")
    if scores is not None and (not isinstance(scores, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores)):
        raise ModelFileError(path, "metadata 'training' validation_scores are malformed.")
    est.n_features_in_ = d
    est._set_fitted(net, _history_from_summary(training, net, path), scores)


def _restore_regression(est: _BaseMLP, meta: Mapping[str, Any], n_out: int,
                        path: PathLike) -> None:
    est.y_mean_ = metadata_array(meta, "y_mean", shape=(n_out,), path=path)
    est.y_scale_ = metadata_array(meta, "y_scale", shape=(n_out,), path=path)
    if np.any(est.y_scale_ <= 0):
        raise ModelFileError(path, "metadata 'y_scale' must be positive.")
    est.target_1d_ = _meta_entry(meta, "target_1d", bool, path)
    if est.target_1d_ and n_out != 1:
        raise ModelFileError(path, f"metadata says 1-D targets but the network has {n_out} "
                                   "outputs.")


def _restore_classes(est: _BaseMLP, meta: Mapping[str, Any], n_out: int,
                     path: PathLike) -> None:
    raw = _meta_entry(meta, "classes", list, path)
    kinds = {type(c) for c in raw}
    if len(raw) != n_out or len(kinds) != 1 or not kinds <= {int, float, str, bool}:
        raise ModelFileError(path, f"metadata 'classes' must be {n_out} labels of one type "
                                   f"(numbers or strings); got {raw!r}.")
    classes = np.asarray(raw)
    if np.unique(classes).shape[0] != n_out or np.any(classes[:-1] > classes[1:]):
        raise ModelFileError(path, "metadata 'classes' must be sorted and distinct.")
    est.classes_ = classes


def _history_from_summary(training: Mapping[str, Any], net: Network, path: PathLike) -> History:
    """A History carrying the saved summary (loss curves, stop reason, best epoch)."""
    loss, val = training.get("loss_curve"), training.get("val_loss_curve")
    epochs = training.get("curve_epochs")
    ok = (isinstance(loss, list) and isinstance(val, list) and isinstance(epochs, list)
          and len(loss) == len(val) == len(epochs) >= 1
          and all(v is None or isinstance(v, (int, float)) for v in [*loss, *val])
          and all(isinstance(e, int) for e in epochs) and epochs == sorted(set(epochs))
          and isinstance(training.get("stop_reason"), str)
          and isinstance(training.get("best_epoch"), int))
    if not ok:
        raise ModelFileError(path, "metadata 'training' summary is malformed.")
    n = len(loss)
    as_float = [np.nan if v is None else float(v) for v in loss]
    history = History(epoch=list(epochs), loss=as_float,
                      val_loss=[np.nan if v is None else float(v) for v in val],
                      grad_norm=[np.nan] * n, step=[np.nan] * n, seconds=[np.nan] * n,
                      best_epoch=int(training["best_epoch"]), best_params=net.params.copy(),
                      stop_reason=training["stop_reason"],
                      optimizer=str(training.get("optimizer", "")))
    if history.best_epoch in epochs:
        history.best_loss = as_float[epochs.index(history.best_epoch)]
    return history
