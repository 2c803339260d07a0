"""The NIST StRD nonlinear least-squares problems, with analytic Jacobians.

A test helper, not a test module. Each of the 27 certified problems of the NIST
Statistical Reference Datasets (StRD) is read from its ``.dat`` file in
``shared/data/nist-strd`` (a sibling of the repository root) and paired with a
hand-derived model ``f(x; b)`` and its Jacobian ``∂f/∂b``. Residuals are
``r = f(x; b) - y``; for Nelson the response is ``log(y)`` as certified.

References
----------
NIST/ITL StRD, Nonlinear Regression,
https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml
McCullough, B. D. (1998). Assessing the reliability of statistical software:
Part I. The American Statistician 52(4), 358-366 (the LRE measure).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nist-strd"

_PARAM_LINE = re.compile(r"^\s*b(\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_DATA_RANGE = re.compile(r"^\s*Data\s+\(lines\s+(\d+)\s+to\s+(\d+)\)")
_RSS_LINE = re.compile(r"^\s*Residual Sum of Squares:\s+(\S+)")

Model = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Problem:
    """One NIST StRD problem.

    Attributes
    ----------
    name : str
    x : ndarray, shape (m,) or (m, k)
        Predictor(s).
    y : ndarray, shape (m,)
        Response as fitted (``log(y)`` for Nelson).
    starts : ndarray, shape (2, n)
        NIST's start 1 and start 2.
    certified : ndarray, shape (n,)
        Certified parameter values.
    certified_sd : ndarray, shape (n,)
        Certified standard deviations of the parameters.
    certified_rss : float
        Certified residual sum of squares ``‖r‖²``.
    model : callable
        ``model(b, x) -> (f (m,), J (m, n))``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    starts: np.ndarray
    certified: np.ndarray
    certified_sd: np.ndarray
    certified_rss: float
    model: Model
    _last: list = field(default_factory=list, repr=False, compare=False)

    @property
    def n_params(self) -> int:
        return self.certified.size

    def residual(self, b: np.ndarray) -> np.ndarray:
        """``r = f(x; b) - y``, shape (m,)."""
        f, J = self.model(b, self.x)
        self._last[:] = [np.array(b), J]  # solvers usually ask for J next, at the same b
        return f - self.y

    def jacobian(self, b: np.ndarray) -> np.ndarray:
        """``∂r/∂b``, shape (m, n)."""
        if self._last and np.array_equal(self._last[0], b):
            return self._last[1].copy()
        return self.model(b, self.x)[1]


def lre(value: np.ndarray | float, certified: np.ndarray | float, digits: float = 11.0) -> float:
    """Minimum log relative error ``-log10(|v - c| / |c|)`` over entries, capped at `digits`."""
    value, certified = np.atleast_1d(value), np.atleast_1d(certified)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(value - certified) / np.abs(certified)
        out = np.where(err == 0, digits, -np.log10(err))
    out = np.where(np.isfinite(out), out, 0.0)
    return float(np.clip(out, 0.0, digits).min())


def rss_lre(rss: float, problem: Problem, digits: float = 11.0) -> float:
    """LRE of a residual sum of squares against the certified one, net of rounding.

    Evaluating ``‖f(x; b) - y‖²`` in double precision carries an absolute error of about
    ``2 ‖r‖ √m η + m η²`` with ``η = 4 eps max|y|`` (each residual is a difference of numbers
    of size ``|y|``). That error is subtracted before the relative error is taken, which only
    matters where the certified RSS is itself at rounding level (Lanczos1: 1.4e-25, whose
    RSS no double-precision fit reproduces beyond ~3 digits); elsewhere it is < 1e-14.
    """
    m = problem.y.size
    eta = 4 * np.finfo(float).eps * np.abs(problem.y).max()
    slack = 2 * np.sqrt(problem.certified_rss * m) * eta + m * eta**2
    err = max(abs(rss - problem.certified_rss) - slack, 0.0)
    return lre(problem.certified_rss + err, problem.certified_rss, digits)


# ----------------------------------------------------------------------------- models
# Each returns (f, J) with f = model(x; b) of shape (m,) and J = ∂f/∂b of shape (m, n).


def _exp_saturation(b, x):  # Misra1a, BoxBOD: b1 (1 - exp(-b2 x))
    e = np.exp(-b[1] * x)
    return b[0] * (1 - e), np.column_stack([1 - e, b[0] * x * e])


def _misra1b(b, x):  # b1 (1 - (1 + b2 x / 2)^-2)
    u = 1 + b[1] * x / 2
    return b[0] * (1 - u**-2), np.column_stack([1 - u**-2, b[0] * x * u**-3])


def _misra1c(b, x):  # b1 (1 - (1 + 2 b2 x)^-1/2)
    u = 1 + 2 * b[1] * x
    return b[0] * (1 - u**-0.5), np.column_stack([1 - u**-0.5, b[0] * x * u**-1.5])


def _misra1d(b, x):  # b1 b2 x / (1 + b2 x)
    u = 1 + b[1] * x
    return b[0] * b[1] * x / u, np.column_stack([b[1] * x / u, b[0] * x / u**2])


def _chwirut(b, x):  # exp(-b1 x) / (b2 + b3 x)
    e, d = np.exp(-b[0] * x), b[1] + b[2] * x
    return e / d, np.column_stack([-x * e / d, -e / d**2, -x * e / d**2])


def _danwood(b, x):  # b1 x^b2
    p = x ** b[1]
    return b[0] * p, np.column_stack([p, b[0] * p * np.log(x)])


def _lanczos(b, x):  # sum_k b_{2k-1} exp(-b_{2k} x)
    f, cols = np.zeros_like(x), []
    for a, k in zip(b[0::2], b[1::2], strict=True):
        e = np.exp(-k * x)
        f = f + a * e
        cols += [e, -a * x * e]
    return f, np.column_stack(cols)


def _gaussian(a, c, w, x):
    """``a exp(-(x - c)² / w²)`` and its derivatives in (a, c, w)."""
    g = np.exp(-((x - c) ** 2) / w**2)
    return a * g, [g, a * g * 2 * (x - c) / w**2, a * g * 2 * (x - c) ** 2 / w**3]


def _gauss(b, x):  # b1 exp(-b2 x) + two Gaussian peaks (b3, b4, b5) and (b6, b7, b8)
    e = np.exp(-b[1] * x)
    g1, d1 = _gaussian(b[2], b[3], b[4], x)
    g2, d2 = _gaussian(b[5], b[6], b[7], x)
    return b[0] * e + g1 + g2, np.column_stack([e, -b[0] * x * e, *d1, *d2])


def _rational(n_num: int) -> Model:
    """``(b1 + b2 x + ...) / (1 + b_{k+1} x + ...)`` with `n_num` numerator terms."""

    def model(b, x):
        powers = np.column_stack([x**k for k in range(b.size - n_num + 1)])
        num, den = powers[:, :n_num] @ b[:n_num], 1 + powers[:, 1:] @ b[n_num:]
        d_num = powers[:, :n_num] / den[:, None]
        d_den = -(num / den**2)[:, None] * powers[:, 1:]
        return num / den, np.column_stack([d_num, d_den])

    return model


def _nelson(b, x):  # log y = b1 - b2 x1 exp(-b3 x2)
    x1, x2 = x[:, 0], x[:, 1]
    e = np.exp(-b[2] * x2)
    jac = np.column_stack([np.ones_like(x1), -x1 * e, b[1] * x1 * x2 * e])
    return b[0] - b[1] * x1 * e, jac


def _mgh17(b, x):  # b1 + b2 exp(-x b4) + b3 exp(-x b5)
    e4, e5 = np.exp(-x * b[3]), np.exp(-x * b[4])
    jac = np.column_stack([np.ones_like(x), e4, e5, -x * b[1] * e4, -x * b[2] * e5])
    return b[0] + b[1] * e4 + b[2] * e5, jac


def _eckerle4(b, x):  # (b1 / b2) exp(-(x - b3)² / (2 b2²))
    z = (x - b[2]) / b[1]
    g = np.exp(-0.5 * z**2)
    f = b[0] * g / b[1]
    return f, np.column_stack([g / b[1], f * (z**2 - 1) / b[1], f * z / b[1]])


def _rat42(b, x):  # b1 / (1 + exp(b2 - b3 x))
    e = np.exp(b[1] - b[2] * x)
    u = 1 + e
    return b[0] / u, np.column_stack([1 / u, -b[0] * e / u**2, b[0] * x * e / u**2])


def _rat43(b, x):  # b1 / (1 + exp(b2 - b3 x))^(1/b4)
    e = np.exp(b[1] - b[2] * x)
    u = 1 + e
    p = u ** (-1 / b[3])
    f = b[0] * p
    dfdu = -f / (b[3] * u)
    return f, np.column_stack([p, dfdu * e, -dfdu * x * e, f * np.log(u) / b[3] ** 2])


def _mgh09(b, x):  # b1 (x² + x b2) / (x² + x b3 + b4)
    num, den = x**2 + x * b[1], x**2 + x * b[2] + b[3]
    f = b[0] * num / den
    return f, np.column_stack([num / den, b[0] * x / den, -f * x / den, -f / den])


def _mgh10(b, x):  # b1 exp(b2 / (x + b3))
    u = x + b[2]
    e = np.exp(b[1] / u)
    f = b[0] * e
    return f, np.column_stack([e, f / u, -f * b[1] / u**2])


def _bennett5(b, x):  # b1 (b2 + x)^(-1/b3)
    u = b[1] + x
    p = u ** (-1 / b[2])
    f = b[0] * p
    return f, np.column_stack([p, -f / (b[2] * u), f * np.log(u) / b[2] ** 2])


def _enso(b, x):  # annual cycle plus two cycles of periods b4 and b7
    w = 2 * np.pi * x / 12
    cols = [np.ones_like(x), np.cos(w), np.sin(w)]
    f = b[0] + b[1] * cols[1] + b[2] * cols[2]
    for period, c, s in (b[3:6], b[6:9]):
        t = 2 * np.pi * x / period
        f = f + c * np.cos(t) + s * np.sin(t)
        d_period = (c * np.sin(t) - s * np.cos(t)) * t / period
        cols += [d_period, np.cos(t), np.sin(t)]
    return f, np.column_stack(cols)


def _roszman1(b, x):  # b1 - b2 x - arctan(b3 / (x - b4)) / pi
    u = x - b[3]
    q = np.pi * (u**2 + b[2] ** 2)
    f = b[0] - b[1] * x - np.arctan(b[2] / u) / np.pi
    return f, np.column_stack([np.ones_like(x), -x, -u / q, -b[2] / q])


MODELS: dict[str, Model] = {
    "Bennett5": _bennett5,
    "BoxBOD": _exp_saturation,
    "Chwirut1": _chwirut,
    "Chwirut2": _chwirut,
    "DanWood": _danwood,
    "ENSO": _enso,
    "Eckerle4": _eckerle4,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "Gauss3": _gauss,
    "Hahn1": _rational(4),
    "Kirby2": _rational(3),
    "Lanczos1": _lanczos,
    "Lanczos2": _lanczos,
    "Lanczos3": _lanczos,
    "MGH09": _mgh09,
    "MGH10": _mgh10,
    "MGH17": _mgh17,
    "Misra1a": _exp_saturation,
    "Misra1b": _misra1b,
    "Misra1c": _misra1c,
    "Misra1d": _misra1d,
    "Nelson": _nelson,
    "Rat42": _rat42,
    "Rat43": _rat43,
    "Roszman1": _roszman1,
    "Thurber": _rational(4),
}

NAMES: tuple[str, ...] = tuple(MODELS)

# ----------------------------------------------------------------------------- parsing


def _parse_header(lines: list[str]) -> tuple[np.ndarray, np.ndarray, float, slice]:
    """Starts (2, n), certified (2, n) = values and sds, RSS, and the data line slice."""
    rows = [m.groups() for m in map(_PARAM_LINE.match, lines) if m]
    table = np.array([[float(v) for v in row[1:]] for row in rows]).T
    rss = next(float(m.group(1)) for m in map(_RSS_LINE.match, lines) if m)
    first, last = next(map(int, m.groups()) for m in map(_DATA_RANGE.match, lines) if m)
    return table[:2], table[2:], rss, slice(first - 1, last)


@cache
def load(name: str) -> Problem:
    """Read the NIST StRD problem `name` (e.g. ``"MGH09"``) from ``shared/data/nist-strd``."""
    lines = (DATA_DIR / f"{name}.dat").read_text().splitlines()
    starts, certified, rss, rows = _parse_header(lines)
    columns = lines[rows.start - 1].split()[1:]  # the "Data:  y  x" line names the columns
    data = np.loadtxt(lines[rows], ndmin=2)
    y = data[:, columns.index("y")]
    x = data[:, [i for i, c in enumerate(columns) if c != "y"]]
    x = x[:, 0] if x.shape[1] == 1 else x
    if name == "Nelson":
        y = np.log(y)
    return Problem(name, x, y, starts, certified[0], certified[1], rss, MODELS[name])


def load_all() -> list[Problem]:
    """All 27 problems, in alphabetical order."""
    return [load(name) for name in NAMES]
