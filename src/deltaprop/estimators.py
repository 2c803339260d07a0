"""scikit-learn estimators: ``MLPRegressor`` and ``MLPClassifier`` trained by deltaprop.

Both follow scikit-learn's conventions (``fit``/``predict``/``score``, ``get_params``, fitted
attributes ending in ``_``, parameter validation at ``fit``) and pass its estimator checks, so
they drop into pipelines, ``cross_val_score`` and ``GridSearchCV``.  What they add is the
choice of solver: Levenberg–Marquardt (``"lm"``, MATLAB's ``trainlm``) by default, Bayesian
regularisation (``"trainbr"``), or the first-order family; :mod:`deltaprop.solvers` holds
the table of solvers (optimizer, batch, ``max_iter`` default).

``batch_size=None`` means the full batch for "lm", "trainbr" and "gd" and scikit-learn's
``"auto"``, min(200, n_samples), for "adam" and "sgd"; the LM solvers accept no other.

Scaling.  Inputs, and for regression the targets, are standardised column by column with the
mean and standard deviation of the training rows (constant columns get scale 1), and
predictions are mapped back.  The statistics are formed after scaling each column by a power
of two, so any finite data (even near 1.8e308) standardises without overflow and ordinary
data gives the same bits as the textbook formula.  The network, ``coefs_``, ``intercepts_``,
``loss_curve_`` and ``tol`` therefore all live in standardised units, which makes the
solvers' defaults work for any units of the data.  ``network_inputs`` and
``network_targets`` give the network's view of raw data.

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

Model files.  :func:`deltaprop.estimator_io.save_estimator` / ``load_estimator`` (also
``est.save(path)`` and ``MLPRegressor.load(path)``): no pickle, every field checked.

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
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .activations import ACTIVATIONS
from .network import TOPOLOGIES, Network, cascade, mlp
from .solvers import SOLVERS, Solver, get_solver
from .training import History, train

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

Array = np.ndarray
PathLike = str | os.PathLike

#: Scales below this (the smallest normal float64) are refused: dividing by them overflows.
MIN_SCALE = float(np.finfo(np.float64).tiny)


def _validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (≥ 1.6) or the older ``_validate_data`` method.

    Its finiteness check sums the data first, which overflows (inf − inf) for finite data
    near ±1.8e308; that warning is silenced, the element-wise check that follows decides.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if _sk_validate_data is not None:
            return _sk_validate_data(estimator, *args, **kwargs)
        return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def _standardisation(A: Array) -> tuple[Array, Array]:
    """Column means and standard deviations of A (N, d); constant columns get scale 1.

    A column is constant when its spread is within rounding of its mean (10 ε |mean|) or
    below the smallest normal number; data in tiny units (1e-20) is not constant.

    Each column is divided by the power of two 2**e just above its largest magnitude before
    the mean and the squares are formed, and the results are multiplied back.  Powers of two
    commute with rounding, so the numbers are those of ``A.mean(0)``, ``A.std(0)`` wherever
    these neither overflow nor meet subnormal numbers, and finite (at most the column's
    largest magnitude) for any finite A.
    """
    _, e = np.frexp(np.max(np.abs(A), axis=0))
    B = np.ldexp(A, -e)  # |B| < 1
    mean = np.ldexp(B.mean(axis=0), e)
    scale = np.ldexp(B.std(axis=0), e)
    constant = (scale <= 10 * np.finfo(np.float64).eps * np.abs(mean)) | (scale < MIN_SCALE)
    scale[constant] = 1.0
    return mean, scale


def _standardise(A: Array, mean: Array, scale: Array, name: str) -> Array:
    """(A − mean) / scale without intermediate overflow; ValueError where the result itself
    exceeds float64 (a value too many standard deviations from the training mean)."""
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (A - mean) / scale
        bad = ~np.isfinite(Z)
        if bad.any():  # A − mean overflowed: halving is exact for normal numbers
            halved = (A * 0.5 - mean * 0.5) / (scale * 0.5)
            Z[bad] = halved[bad]
            bad = ~np.isfinite(Z)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"`{name}` value {float(A[r, c])!r} at row {r}, column {c} lies beyond "
                         f"float64 range in training units (mean {mean[c]:.6g}, standard "
                         f"deviation {scale[c]:.6g}); it is too far outside the training data.")
    return Z


def _unstandardise(Z: Array, mean: Array, scale: Array) -> Array:
    """Z · scale + mean; ValueError where a prediction overflows float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        A = Z * scale + mean
    if not np.all(np.isfinite(A)):
        r, c = (int(i) for i in np.argwhere(~np.isfinite(A))[0])
        raise ValueError(f"the prediction for row {r}, output {c} overflows float64 (network "
                         f"output {Z[r, c]:.6g} times y_scale_ {scale[c]:.6g}).")
    return A


def _whole_rows(history: History, scores: list[float] | None) -> History:
    """``history`` cut to the rows that every column holds, and the validation ``scores``
    (``scores[e - 1]`` for epoch e) to match, NaN for an epoch whose score is missing: a
    KeyboardInterrupt inside ``train``'s bookkeeping can leave the last row half-written."""
    columns = [history.epoch, history.loss, history.val_loss, history.grad_norm,
               history.step, history.seconds, *history.extras.values()]
    n = min(len(column) for column in columns)
    for column in columns:
        del column[n:]
    if scores is not None:
        del scores[max(n - 1, 0):]
        scores.extend([np.nan] * (n - 1 - len(scores)))
    return history


def _checked_scaling(mean: object, scale: object, n: int, name: str) -> tuple[Array, Array]:
    """Means and scales (n,) that standardisation may use; ValueError naming what is wrong."""
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    for key, value in ((f"{name}_mean", mean), (f"{name}_scale", scale)):
        if value.shape != (n,) or not np.all(np.isfinite(value)):
            raise ValueError(f"`{key}` must hold {n} finite numbers; got shape {value.shape}.")
    if np.any(scale < MIN_SCALE):
        raise ValueError(f"`{name}_scale` must be positive normal numbers (>= {MIN_SCALE:.4g}); "
                         f"got {scale[np.argmax(scale < MIN_SCALE)]!r}.")
    return mean, scale


# ---------------------------------------------------------------------- the shared base
class BaseMLP(BaseEstimator):
    """Parameters, fitting and persistence shared by the regressor and the classifier.

    Not used directly: a subclass sets ``task`` and ``head`` and the target encoding
    (``network_targets``, the scaling or the classes).  Public methods besides
    scikit-learn's: ``network_inputs`` / ``network_targets`` (raw data as the fitted network
    sees it), ``from_network`` (a fitted estimator around a trained network, as model files
    use), ``save`` / ``load``.
    """

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 (scikit-learn's idiom)
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "topology": [StrOptions(set(TOPOLOGIES))],
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
    task: ClassVar[str] = ""
    #: The network's output activation and loss; set by the subclasses.
    head: ClassVar[tuple[str, str]] = ("", "")

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (10,),
        *,
        activation: str = "tanh",
        topology: str = "mlp",
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
        self.topology = topology
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

    def network_targets(self, y: Any, name: str = "y") -> Array:
        """Targets y as the fitted network trains on them.

        Regression: standardised (n_samples, n_outputs); classification: indices into
        ``classes_`` (n_samples,).  ``name`` is used in error messages.
        """
        raise NotImplementedError

    def _restore_targets(self, n_outputs: int, targets: Mapping[str, Any]) -> None:
        """Set the fitted target encoding from ``targets``; ValueError if it is inconsistent."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        """Width of the output layer for the fitted target encoding."""
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

    def _solver(self) -> Solver:
        return get_solver(self.solver)

    def _check_combinations(self) -> None:
        """Checks across parameters that ``_parameter_constraints`` cannot express."""
        solver = self._solver()
        if not solver.takes_l2 and self.l2 != 0:
            raise ValueError(f"`l2` must be 0 with solver={self.solver!r}, which estimates the "
                             f"weight penalty itself (MacKay 1992); got l2={self.l2!r}.")
        if solver.full_batch and self.batch_size is not None:
            raise ValueError(f"`batch_size` must be None with solver={self.solver!r}, which uses "
                             f"the full batch; got batch_size={self.batch_size!r}.")
        for name in ("tol", "l2", "learning_rate_init"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"`{name}` must be finite; got {getattr(self, name)!r}.")

    # -- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, validation_data: tuple[Any, Any] | None = None) -> BaseMLP:
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
            val = (_standardise(val[0], self.x_mean_, self.x_scale_, "X_val"),
                   self.network_targets(val[1], "y_val"))
        output, loss = self.head
        build = cascade if self.topology == "cascade" else mlp
        net = build([X.shape[1], *hidden, self._n_outputs()], activation=self.activation,
                  output=output, loss=loss, seed=seed_net)
        scores: list[float] | None = None if val is None else []
        X_tr = _standardise(X_tr, self.x_mean_, self.x_scale_, "X")
        history = self._train(net, X_tr, T_tr, val, seed_train, scores)
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
        solver = self._solver()
        max_iter = solver.default_max_iter if self.max_iter is None else self.max_iter
        optimizer = solver.optimizer(float(self.learning_rate_init), float(self.l2))
        history = train(net, X, T, optimizer=optimizer, epochs=int(max_iter),
                        batch_size=solver.batch_size(X.shape[0], self.batch_size),
                        validation=val, min_grad=float(self.tol),
                        patience=int(self.n_iter_no_change), seed=seed, callbacks=callbacks,
                        progress=bool(self.verbose))
        return _whole_rows(history, scores)

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
        self._set_parameter_views()
        self.n_layers_ = len(net.sizes)
        self.n_outputs_ = net.sizes[-1]
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

    def _set_parameter_views(self) -> None:
        """``coefs_[i]`` = W_i.T and ``intercepts_[i]`` = b_i as views of ``net_.params``."""
        self.coefs_ = [layer.W.T for layer in self.net_.dense_layers]
        self.intercepts_ = [layer.b for layer in self.net_.dense_layers]

    # -- restoring a fitted estimator
    @classmethod
    def from_network(cls, net: Network, *, params: Mapping[str, Any], x_mean: object,
                     x_scale: object, targets: Mapping[str, Any], history: History,
                     validation_scores: Sequence[float] | None = None,
                     feature_names_in: Sequence[str] | None = None) -> BaseMLP:
        """A fitted estimator around a trained network, as ``fit`` would have left it.

        Parameters
        ----------
        net : Network
            float64, with this estimator's head (identity/mse or softmax/ce), hidden layers
            of ``params["hidden_layer_sizes"]`` and ``params["activation"]``.
        params : mapping
            Constructor parameters (as ``get_params()``).
        x_mean, x_scale : array_like (n_features,)
            Input standardisation; scales must be normal positive numbers.
        targets : mapping
            Regression: ``y_mean``, ``y_scale`` (n_outputs,) and ``target_1d`` (bool);
            classification: ``classes`` (n_outputs,) sorted distinct labels.
        history : History
            What ``history_`` will be; ``n_iter_``, ``loss_curve_``, ``best_epoch_`` and
            ``stop_reason_`` come from it.
        validation_scores : sequence of float, optional
        feature_names_in : sequence of str, optional
            Distinct column names (``feature_names_in_``).

        Raises
        ------
        ValueError
            Naming whatever disagrees with the network or is not a valid value.
        """
        try:
            est = cls(**params)
            est._validate_params()
            est._check_combinations()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`params` are not valid for {cls.__name__}: {exc}") from exc
        est._check_network(net)
        n_in = net.sizes[0]
        est.x_mean_, est.x_scale_ = _checked_scaling(x_mean, x_scale, n_in, "x")
        est._restore_targets(net.sizes[-1], targets)
        if feature_names_in is not None:
            est.feature_names_in_ = _checked_names(feature_names_in, n_in, "feature_names_in")
        est.n_features_in_ = n_in
        scores = None if validation_scores is None else [float(v) for v in validation_scores]
        est._set_fitted(net, history, scores)
        return est

    def _check_network(self, net: Network) -> None:
        """ValueError unless ``net`` is what ``fit`` with these parameters builds."""
        if not isinstance(net, Network) or np.dtype(net.dtype) != np.float64:
            raise ValueError(f"{type(self).__name__} needs a float64 deltaprop Network.")
        names = net.activation_names
        if (names[-1], net.loss_name) != self.head:
            raise ValueError(f"the network's output/loss {names[-1]}/{net.loss_name} does not "
                             f"fit a {type(self).__name__} ({'/'.join(self.head)}).")
        if net.topology != self.topology:
            raise ValueError(f"`topology` {self.topology!r} disagrees with the network's "
                             f"{net.topology!r}.")
        if net.sizes[1:-1] != self._hidden_sizes():
            raise ValueError(f"`hidden_layer_sizes` {self._hidden_sizes()} disagrees with the "
                             f"network's hidden layers {net.sizes[1:-1]}.")
        if any(name != self.activation for name in names[:-1]):
            raise ValueError(f"`activation` {self.activation!r} disagrees with the network's "
                             f"hidden activations {names[:-1]}.")

    # -- the network's view of the data
    def network_inputs(self, X: Any) -> Array:
        """Raw inputs X (n_samples, n_features) as the fitted network takes them: validated
        and standardised with ``x_mean_`` and ``x_scale_``."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        return _standardise(X, self.x_mean_, self.x_scale_, "X")

    def _forward(self, X: Any) -> Array:
        """Network outputs (standardised units) for raw inputs X."""
        Z = self.network_inputs(X)
        return self.net_.forward(Z)

    # -- pickling: parameter views into one vector do not survive pickle, so store a recipe
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if isinstance(state.get("net_"), Network):  # the views are rebuilt on unpickling
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(dict(state))
        if isinstance(getattr(self, "net_", None), Network):
            self._set_parameter_views()

    # -- model files
    def save(self, path: PathLike, **names: Any) -> None:
        """Write the fitted estimator to a model file; see
        :func:`deltaprop.estimator_io.save_estimator`."""
        from .estimator_io import save_estimator

        save_estimator(self, path, **names)

    @classmethod
    def load(cls, path: PathLike) -> BaseMLP:
        """Read an estimator of this class from a model file; see
        :func:`deltaprop.estimator_io.load_estimator`."""
        from .estimator_io import load_estimator
        from .model_io import ModelFileError

        estimator, _ = load_estimator(path)
        if not isinstance(estimator, cls):
            raise ModelFileError(path, f"holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator


def _checked_names(names: Sequence[str], n: int, what: str) -> Array:
    """``n`` distinct strings as an object array; ValueError otherwise."""
    names = list(names)
    if len(names) != n or not all(isinstance(s, str) for s in names):
        raise ValueError(f"`{what}` must be {n} strings; got {len(names)} items.")
    if len(set(names)) != n:
        twice = next(s for i, s in enumerate(names) if s in names[:i])
        raise ValueError(f"`{what}` names {twice!r} twice.")
    return np.asarray(names, dtype=object)


# ---------------------------------------------------------------------- the regressor
class MLPRegressor(RegressorMixin, BaseMLP):
    """Multilayer perceptron regressor trained by Levenberg–Marquardt (or another solver).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (10,)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : str, default "tanh"
        Hidden activation: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus",
        "elu".
    topology : {"mlp", "cascade"}, default "mlp"
        "mlp": each layer reads the previous one; "cascade": MATLAB's cascade-forward network,
        each layer (the output included) reads the inputs and every earlier hidden layer
        (:func:`deltaprop.cascade`).
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
        (scikit-learn's layout), in standardised units.  They are views of
        ``net_.params``: changing them in place changes ``predict``, as in scikit-learn.
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

    task = "regression"
    head = ("identity", "mse")

    def _check_y(self, X: object, y: object) -> tuple[Array, Array]:
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True,
                              dtype=np.float64)
        return X, np.asarray(y, dtype=np.float64)

    def _fit_targets(self, y: Array) -> Array:
        Y = y.reshape(y.shape[0], -1)
        self.y_mean_, self.y_scale_ = _standardisation(Y)
        self.target_1d_ = y.ndim == 1
        return _standardise(Y, self.y_mean_, self.y_scale_, "y")

    def network_targets(self, y: Any, name: str = "y") -> Array:
        Y = np.asarray(y, dtype=np.float64)
        Y = Y.reshape(Y.shape[0] if Y.ndim else 1, -1)
        if Y.shape[1] != self.y_mean_.shape[0]:
            raise ValueError(f"`{name}` has {Y.shape[1]} target columns; y has "
                             f"{self.y_mean_.shape[0]}.")
        if not np.all(np.isfinite(Y)):
            r, c = (int(i) for i in np.argwhere(~np.isfinite(Y))[0])
            raise ValueError(f"`{name}` has a non-finite value ({Y[r, c]}) at row {r}, "
                             f"column {c}.")
        return _standardise(Y, self.y_mean_, self.y_scale_, name)

    def _restore_targets(self, n_outputs: int, targets: Mapping[str, Any]) -> None:
        self.y_mean_, self.y_scale_ = _checked_scaling(targets.get("y_mean"),
                                                       targets.get("y_scale"), n_outputs, "y")
        target_1d = targets.get("target_1d")
        if not isinstance(target_1d, (bool, np.bool_)):
            raise ValueError(f"`target_1d` must be True or False; got {target_1d!r}.")
        if target_1d and n_outputs != 1:
            raise ValueError(f"`target_1d` is True but the network has {n_outputs} outputs.")
        self.target_1d_ = bool(target_1d)

    def _n_outputs(self) -> int:
        return int(self.y_mean_.shape[0])

    def _score_standardised(self, net: Network, X: Array, T: Array) -> float:
        return float(r2_score(T, net.forward(X)))

    def predict(self, X: Any) -> Array:
        """Predicted targets, (n_samples,) if y was 1-D at fit, else (n_samples, n_outputs)."""
        Y = _unstandardise(self._forward(X), self.y_mean_, self.y_scale_)
        return Y.ravel() if self.target_1d_ else Y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# ---------------------------------------------------------------------- the classifier
class MLPClassifier(ClassifierMixin, BaseMLP):
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

    task = "classification"
    head = ("softmax", "ce")

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
        return self.network_targets(y, "y")

    def network_targets(self, y: Any, name: str = "y") -> Array:
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

    def _restore_targets(self, n_outputs: int, targets: Mapping[str, Any]) -> None:
        self.classes_ = _checked_classes(targets.get("classes"), n_outputs)

    def _n_outputs(self) -> int:
        return int(self.classes_.shape[0])

    def _score_standardised(self, net: Network, X: Array, T: Array) -> float:
        return float(accuracy_score(T, np.argmax(net.forward(X), axis=1)))

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        return self._forward(X)

    def predict(self, X: Any) -> Array:
        """The most probable class label of each row (n_samples,)."""
        proba = self._forward(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _checked_classes(raw: object, n: int) -> Array:
    """``n`` ≥ 2 sorted, distinct class labels of one type (int64, finite float, str or
    bool) as an array; ValueError otherwise (integers beyond int64 included)."""
    labels = raw.tolist() if isinstance(raw, np.ndarray) else raw
    kinds = {type(c) for c in labels} if isinstance(labels, (list, tuple)) else set()
    if len(kinds) != 1 or not kinds <= {int, float, str, bool} or len(labels) != n or n < 2:
        raise ValueError(f"`classes` must be {n} labels of one type (integers, numbers, "
                         f"strings or booleans); got {type(raw).__name__} of "
                         f"{len(labels) if isinstance(labels, (list, tuple)) else '?'} items "
                         f"of types {sorted(k.__name__ for k in kinds)}.")
    dtype = {int: np.int64, float: np.float64, str: None, bool: np.bool_}[kinds.pop()]
    try:
        classes = np.asarray(labels, dtype=dtype)
    except OverflowError as exc:
        raise ValueError("`classes` holds an integer beyond the 64-bit range.") from exc
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes)):
        raise ValueError("`classes` holds a non-finite number.")
    if not np.all(classes[:-1] < classes[1:]):
        raise ValueError("`classes` must be sorted and distinct.")
    return classes


ESTIMATORS: dict[str, type[BaseMLP]] = {"MLPRegressor": MLPRegressor,
                                         "MLPClassifier": MLPClassifier}
