"""Built-in data sets: scikit-learn's bundled ones and small generated problems.

Every loader returns a :class:`Dataset` whose ``X`` is a float64 array (N, d) and whose ``y``
is (N,) float64 targets for regression or (N,) int64 class labels 0..C-1 for classification.
Nothing is downloaded: the scikit-learn sets ship with scikit-learn, the rest are generated
from a seeded :func:`numpy.random.default_rng`, so the same arguments give the same arrays.

=============  ==============  =========  ==================================================
name           task            shape      source
=============  ==============  =========  ==================================================
diabetes       regression      442 x 10   Efron et al. 2004 (``sklearn.datasets``)
breast_cancer  classification  569 x 30   Wisconsin diagnostic data (``sklearn.datasets``)
wine           classification  178 x 13   UCI wine cultivars (``sklearn.datasets``)
digits         classification  1797 x 64  8 x 8 handwritten digits (``sklearn.datasets``)
sine           regression      200 x 1    y = sin(3x) + noise·ε, x ~ U[-1, 1]
xor            classification  4 x 2      the four XOR points, optionally repeated, jittered
spirals        classification  200 x 2    two interleaved spirals (Lang & Witbrock 1988)
=============  ==============  =========  ==================================================

Examples
--------
>>> from deltaprop import datasets
>>> data = datasets.load("sine", n_samples=50, noise=0.0, seed=1)
>>> data.X.shape, data.y.shape, data.task
((50, 1), (50,), 'regression')
>>> datasets.load(datasets.DEFAULT_DATASET).X.shape
(442, 10)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn import datasets as _sk

Array = np.ndarray

#: The data set ``deltaprop train`` uses when given no ``--data``/``--dataset``.
DEFAULT_DATASET = "diabetes"

TASKS = ("regression", "classification")


@dataclass(frozen=True)
class Dataset:
    """A small data set held in memory.

    Attributes
    ----------
    name : str
        Registry name, as accepted by :func:`load`.
    X : ndarray (N, d), float64
        Inputs, one sample per row.
    y : ndarray (N,)
        Targets: float64 values for regression, int64 labels 0..C-1 for classification.
    task : {"regression", "classification"}
    description : str
        One paragraph: what the samples and the target are, and the source.
    feature_names : tuple of str
        Names of the d input columns.
    target_names : tuple of str
        Names of the target columns (one name for a 1-D ``y``).
    class_names : tuple of str
        For classification, the name of label i at index i; empty for regression.
    """

    name: str
    X: Array
    y: Array
    task: str
    description: str
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    class_names: tuple[str, ...] = field(default=())

    @property
    def n_samples(self) -> int:
        """Number of rows N."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input columns d."""
        return int(self.X.shape[1])

    @property
    def summary(self) -> str:
        """The first sentence of the description."""
        return self.description.split(". ")[0].rstrip(".") + "."


#: name -> (loader, one-line summary), in the order of the module's table.
_REGISTRY: dict[str, tuple[Callable[..., Dataset], str]] = {}


def _register(
    name: str, summary: str
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    def decorate(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        _REGISTRY[name] = (loader, summary)
        return loader

    return decorate


# ---------------------------------------------------------------------------- validation
def _check_n_samples(n_samples: object, minimum: int = 1) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ValueError(f"`n_samples` must be an integer >= {minimum}; got {n_samples!r}.")
    if n_samples < minimum:
        raise ValueError(f"`n_samples` must be an integer >= {minimum}; got {n_samples}.")
    return int(n_samples)


def _check_noise(noise: object) -> float:
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)):
        raise ValueError(f"`noise` must be a finite number >= 0; got {noise!r}.")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"`noise` must be a finite number >= 0; got {noise!r}.")
    return float(noise)


def _rng(seed: object) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an integer or None; got {seed!r}.")
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- scikit-learn
def _from_sklearn(name: str, bunch: object, task: str, description: str,
                  target_name: str) -> Dataset:
    X = np.ascontiguousarray(bunch.data, dtype=np.float64)
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        classes = tuple(str(c) for c in bunch.target_names)
    else:
        y = np.asarray(bunch.target, dtype=np.float64)
        classes = ()
    features = tuple(str(f) for f in bunch.feature_names)
    return Dataset(name, X, y, task, description, features, (target_name,), classes)


@_register("diabetes", "disease progression of diabetes patients from 10 baseline variables")
def diabetes(scaled: bool = False) -> Dataset:
    """Diabetes progression (regression, 442 x 10), scikit-learn's ``load_diabetes``.

    Parameters
    ----------
    scaled : bool
        False (default): the original units (age in years, sex coded 1/2, BMI, blood
        pressure, six serum measurements). True: scikit-learn's centred columns with unit
        sum of squares.
    """
    description = (
        "Disease progression one year after baseline for 442 diabetes patients, from ten "
        "baseline variables: age, sex, body mass index, average blood pressure and six blood "
        "serum measurements (s1-s6). The target is a quantitative measure between 25 and 346. "
        "Efron, Hastie, Johnstone & Tibshirani (2004), 'Least Angle Regression'; bundled "
        "with scikit-learn."
    )
    bunch = _sk.load_diabetes(scaled=bool(scaled))
    return _from_sklearn("diabetes", bunch, "regression", description, "progression")


@_register("breast_cancer", "malignant or benign tumour from 30 cell-nucleus features")
def breast_cancer() -> Dataset:
    """Breast cancer diagnosis (2 classes, 569 x 30), scikit-learn's ``load_breast_cancer``."""
    description = (
        "Breast cancer diagnosis, malignant (0) or benign (1), for 569 tumours from 30 "
        "features of cell nuclei computed from digitised images of fine needle aspirates "
        "(mean, standard error and worst value of ten measurements). Wisconsin Diagnostic "
        "Breast Cancer data (Street, Wolberg & Mangasarian 1993); bundled with scikit-learn."
    )
    bunch = _sk.load_breast_cancer()
    return _from_sklearn("breast_cancer", bunch, "classification", description, "diagnosis")


@_register("wine", "cultivar of Italian wines from 13 chemical measurements")
def wine() -> Dataset:
    """Wine cultivars (3 classes, 178 x 13), scikit-learn's ``load_wine``."""
    description = (
        "Cultivar (three classes) of 178 Italian wines from 13 results of chemical analysis "
        "such as alcohol, malic acid, flavanoids and proline. UCI Wine data (Forina et al.); "
        "bundled with scikit-learn."
    )
    bunch = _sk.load_wine()
    return _from_sklearn("wine", bunch, "classification", description, "cultivar")


@_register("digits", "handwritten digits 0-9 from 8 x 8 pixel images")
def digits() -> Dataset:
    """Handwritten digits (10 classes, 1797 x 64), scikit-learn's ``load_digits``."""
    description = (
        "Handwritten digits 0-9 as 8 x 8 images, 1797 samples with 64 pixel features "
        "holding ink counts 0-16, row by row. UCI Optical Recognition of Handwritten Digits "
        "test set (Alpaydin & Kaynak 1998); bundled with scikit-learn."
    )
    bunch = _sk.load_digits()
    return _from_sklearn("digits", bunch, "classification", description, "digit")


# ---------------------------------------------------------------------------- generated
@_register("sine", "noisy sine y = sin(3x) + noise·ε on x in [-1, 1]")
def sine(n_samples: int = 200, noise: float = 0.1, seed: int | None = 0) -> Dataset:
    """Noisy sine (regression): y = sin(3x) + noise·ε, x ~ U[-1, 1], ε ~ N(0, 1).

    Parameters
    ----------
    n_samples : int
        Number of points N (drawn in random order, not sorted).
    noise : float
        Standard deviation of the additive Gaussian noise; the best achievable mean squared
        error is ``noise**2``.
    seed : int or None
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    Dataset
        X (N, 1), y (N,).
    """
    n = _check_n_samples(n_samples)
    sigma = _check_noise(noise)
    rng = _rng(seed)
    x = rng.uniform(-1.0, 1.0, size=n)
    y = np.sin(3.0 * x) + sigma * rng.standard_normal(n)
    description = (
        f"Noisy sine: {n} points x drawn uniformly from [-1, 1] with target "
        f"y = sin(3x) + {sigma:g}·ε, ε standard normal (seed {seed}). Almost one period of "
        "the sine, the usual first test of a 1-hidden-layer regression network; the noise "
        "variance is the lowest reachable mean squared error."
    )
    return Dataset("sine", x[:, None].copy(), y, "regression", description, ("x",), ("y",))


@_register("xor", "the four XOR points, optionally repeated and jittered")
def xor(repeats: int = 1, noise: float = 0.0, seed: int | None = 0) -> Dataset:
    """XOR (2 classes): (0,0)→0, (0,1)→1, (1,0)→1, (1,1)→0.

    Parameters
    ----------
    repeats : int
        Number of copies of the four points (N = 4·repeats, in that order, tiled).
    noise : float
        Standard deviation of Gaussian jitter added to the inputs (0: the exact points).
    seed : int or None
        Seed of the jitter.

    Returns
    -------
    Dataset
        X (4·repeats, 2), y (4·repeats,) int64.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"`repeats` must be an integer >= 1; got {repeats!r}.")
    sigma = _check_noise(noise)
    rng = _rng(seed)
    X = np.tile(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), (int(repeats), 1))
    y = np.tile(np.array([0, 1, 1, 0], dtype=np.int64), int(repeats))
    if sigma > 0:
        X = X + sigma * rng.standard_normal(X.shape)
    description = (
        f"XOR: the four corners of the unit square labelled x1 XOR x2, repeated {int(repeats)} "
        f"time(s), inputs jittered by Gaussian noise of standard deviation {sigma:g}. The "
        "smallest problem a single-layer perceptron cannot solve (Minsky & Papert 1969) and "
        "a 2-2-1 network can (Rumelhart, Hinton & Williams 1986)."
    )
    return Dataset("xor", X, y, "classification", description, ("x1", "x2"), ("xor",),
                   ("0", "1"))


@_register("spirals", "two interleaved spirals, one per class")
def spirals(
    n_samples: int = 200, noise: float = 0.05, seed: int | None = 0, turns: float = 1.5
) -> Dataset:
    """Two interleaved spirals (2 classes), after Lang & Witbrock (1988).

    Point i of class 0 sits at radius r = t and angle θ = 2π·turns·t, t evenly spaced in
    [0.05, 1]; class 1 is class 0 rotated by π. Gaussian noise is added to both coordinates
    and the rows are shuffled.

    Parameters
    ----------
    n_samples : int
        Total number of points (at least 2); class 0 gets the extra one when odd.
    noise : float
        Standard deviation of the noise; arms lie 1/(2·turns) apart radially.
    seed : int or None
        Seed of the noise and the shuffle.
    turns : float
        Number of turns of each spiral.

    Returns
    -------
    Dataset
        X (N, 2), y (N,) int64.
    """
    n = _check_n_samples(n_samples, minimum=2)
    sigma = _check_noise(noise)
    if isinstance(turns, bool) or not isinstance(turns, (int, float)) or not 0 < turns < 1e3:
        raise ValueError(f"`turns` must be a number in (0, 1000); got {turns!r}.")
    rng = _rng(seed)
    sizes = ((n + 1) // 2, n // 2)
    parts = []
    for label, size in enumerate(sizes):
        t = np.linspace(0.05, 1.0, size)
        theta = 2.0 * np.pi * turns * t + np.pi * label
        parts.append(np.column_stack([t * np.cos(theta), t * np.sin(theta)]))
    X = np.vstack(parts) + sigma * rng.standard_normal((n, 2))
    y = np.repeat(np.arange(2, dtype=np.int64), sizes)
    order = rng.permutation(n)
    description = (
        f"Two interleaved spirals of {float(turns):g} turns each, {n} points in all, one class "
        f"per spiral, coordinates jittered by Gaussian noise of standard deviation {sigma:g} "
        f"(seed {seed}). A classic hard problem for backpropagation (Lang & Witbrock 1988): "
        "no linear or shallow boundary separates the classes."
    )
    return Dataset("spirals", X[order], y[order], "classification", description,
                   ("x1", "x2"), ("spiral",), ("0", "1"))


# ---------------------------------------------------------------------------- registry
def _check_name(name: object) -> Callable[..., Dataset]:
    if not isinstance(name, str) or name not in _REGISTRY:
        known = ", ".join(repr(k) for k in _REGISTRY)
        raise ValueError(f"unknown dataset {name!r}; known datasets are {known}.")
    return _REGISTRY[name][0]


def load(name: str, **kwargs: object) -> Dataset:
    """Load a built-in data set by name.

    Parameters
    ----------
    name : str
        One of the names listed by :func:`list_datasets`.
    **kwargs
        Options of that data set's loader (e.g. ``n_samples``, ``noise``, ``seed``).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones), an option the loader does
        not take (the message lists those it does), or a bad option value.
    """
    loader = _check_name(name)
    accepted = list(inspect.signature(loader).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        takes = ", ".join(f"`{a}`" for a in accepted) if accepted else "no options"
        raise ValueError(
            f"dataset {name!r} does not take {', '.join(map(repr, unknown))}; it takes {takes}."
        )
    return loader(**kwargs)


def list_datasets() -> list[tuple[str, str, tuple[int, int], str]]:
    """The built-in data sets with their default sizes.

    Returns
    -------
    list of (name, task, shape, summary)
        ``shape`` is X's (n_samples, n_features) with the default options; ``summary`` a
        one-line description.

    Examples
    --------
    >>> from deltaprop.datasets import list_datasets
    >>> list_datasets()[0][:3]
    ('diabetes', 'regression', (442, 10))
    """
    rows = []
    for name, (loader, summary) in _REGISTRY.items():
        data = loader()
        rows.append((name, data.task, (data.n_samples, data.n_features), summary))
    return rows
