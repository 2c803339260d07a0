"""The first 20 Moré–Garbow–Hillstrom test problems, as least-squares residuals with Jacobians.

A test helper, not a test module. Each problem is written from Moré, Garbow & Hillstrom (1981),
"Testing unconstrained optimization software", ACM TOMS 7(1), 17–41, §3: the residuals
``f_i(x)`` of ``f(x) = Σ f_i(x)²``, the hand-derived Jacobian ``∂f_i/∂x_j``, the standard
start ``x0`` and the minima the paper reports (values of ``f = ‖r‖²``, i.e. twice a solver's
``cost``). Where the paper leaves ``m`` or ``n`` free we take: Jennrich–Sampson m = 10,
Gulf research m = 99 (t_i = i/100 must stay below 1), Box three-dimensional m = 10,
Brown–Dennis m = 20, Biggs EXP6 m = 13, Watson n = 6 — the values whose minima the paper lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Residual = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Problem:
    """One MGH problem.

    Attributes
    ----------
    number : int
        Its number in the paper (1–20).
    name : str
    residual : callable
        ``residual(x) -> f`` of shape (m,).
    jacobian : callable
        ``jacobian(x) -> J`` of shape (m, n).
    x0 : ndarray, shape (n,)
        The standard start.
    minima : tuple of float
        The values of ``f = ‖r‖²`` at the minima the paper reports (local ones included; some
        lie at infinity, where a solver can only approach them).
    """

    number: int
    name: str
    residual: Residual
    jacobian: Residual
    x0: np.ndarray
    minima: tuple[float, ...]

    def reached(self, cost: float, rtol: float = 1e-4, atol: float = 1e-10) -> bool:
        """Whether ``2 cost`` is one of the reported minima, to the paper's 6 digits."""
        f = 2.0 * cost
        return any(abs(f - f_star) <= rtol * f_star + atol for f_star in self.minima)


# ----------------------------------------------------------------------------- 1–7


def _rosenbrock():
    def r(x):
        return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])

    def j(x):
        return np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])

    return r, j, [-1.2, 1.0], (0.0,)


def _freudenstein_roth():
    def r(x):
        a, b = x
        return np.array([-13 + a + ((5 - b) * b - 2) * b, -29 + a + ((b + 1) * b - 14) * b])

    def j(x):
        b = x[1]
        return np.array([[1.0, 10 * b - 3 * b**2 - 2], [1.0, 3 * b**2 + 2 * b - 14]])

    return r, j, [0.5, -2.0], (0.0, 48.9842)


def _powell_badly_scaled():
    def r(x):
        return np.array([1e4 * x[0] * x[1] - 1, np.exp(-x[0]) + np.exp(-x[1]) - 1.0001])

    def j(x):
        return np.array([[1e4 * x[1], 1e4 * x[0]], [-np.exp(-x[0]), -np.exp(-x[1])]])

    return r, j, [0.0, 1.0], (0.0,)


def _brown_badly_scaled():
    def r(x):
        return np.array([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2])

    def j(x):
        return np.array([[1.0, 0.0], [0.0, 1.0], [x[1], x[0]]])

    return r, j, [1.0, 1.0], (0.0,)


def _beale():
    y, i = np.array([1.5, 2.25, 2.625]), np.arange(1, 4)

    def r(x):
        return y - x[0] * (1 - x[1] ** i)

    def j(x):
        return np.column_stack([-(1 - x[1] ** i), x[0] * i * x[1] ** (i - 1)])

    return r, j, [1.0, 1.0], (0.0,)


def _jennrich_sampson():
    i = np.arange(1, 11)

    def r(x):
        return 2 + 2 * i - (np.exp(i * x[0]) + np.exp(i * x[1]))

    def j(x):
        return np.column_stack([-i * np.exp(i * x[0]), -i * np.exp(i * x[1])])

    return r, j, [0.3, 0.4], (124.362,)


def _theta(x1: float, x2: float) -> float:
    """θ of the helical valley: arctan(x2/x1)/2π, plus ½ for x1 < 0 (±¼ on x1 = 0)."""
    if x1 == 0:
        return 0.25 * np.sign(x2)
    return np.arctan(x2 / x1) / (2 * np.pi) + (0.5 if x1 < 0 else 0.0)


def _helical_valley():
    def r(x):
        rho = np.hypot(x[0], x[1])
        return np.array([10 * (x[2] - 10 * _theta(x[0], x[1])), 10 * (rho - 1), x[2]])

    def j(x):
        rho2 = x[0] ** 2 + x[1] ** 2
        rho = np.sqrt(rho2)
        c = 100 / (2 * np.pi * rho2)
        return np.array([[c * x[1], -c * x[0], 10.0],
                         [10 * x[0] / rho, 10 * x[1] / rho, 0.0],
                         [0.0, 0.0, 1.0]])  # fmt: skip

    return r, j, [-1.0, 0.0, 0.0], (0.0,)


# ----------------------------------------------------------------------------- 8–14


def _bard():
    y = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34,
                  2.10, 4.39])  # fmt: skip
    u = np.arange(1.0, 16.0)
    v = 16 - u
    w = np.minimum(u, v)

    def r(x):
        return y - (x[0] + u / (v * x[1] + w * x[2]))

    def j(x):
        d2 = (v * x[1] + w * x[2]) ** 2
        return np.column_stack([-np.ones_like(u), u * v / d2, u * w / d2])

    return r, j, [1.0, 1.0, 1.0], (8.21487e-3, 17.4286)


def _gaussian():
    y = np.array([0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521,
                  0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009])  # fmt: skip
    t = (8 - np.arange(1, 16)) / 2

    def r(x):
        return x[0] * np.exp(-x[1] * (t - x[2]) ** 2 / 2) - y

    def j(x):
        d = t - x[2]
        g = np.exp(-x[1] * d**2 / 2)
        return np.column_stack([g, -x[0] * g * d**2 / 2, x[0] * g * x[1] * d])

    return r, j, [0.4, 1.0, 0.0], (1.12793e-8,)


def _meyer():
    y = np.array([34780.0, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030, 6005,
                  5147, 4427, 3820, 3307, 2872])  # fmt: skip
    t = 45 + 5 * np.arange(1, 17.0)

    def r(x):
        return x[0] * np.exp(x[1] / (t + x[2])) - y

    def j(x):
        d = t + x[2]
        e = np.exp(x[1] / d)
        return np.column_stack([e, x[0] * e / d, -x[0] * x[1] * e / d**2])

    return r, j, [0.02, 4000.0, 250.0], (87.9458,)


def _gulf():
    t = np.arange(1, 100) / 100
    y = 25 + (-50 * np.log(t)) ** (2 / 3)

    def r(x):
        return np.exp(-np.abs(y - x[1]) ** x[2] / x[0]) - t

    def j(x):
        a = np.abs(y - x[1])
        p = a ** x[2]
        e = np.exp(-p / x[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            d2 = np.where(a > 0, e * x[2] * p / (x[0] * (y - x[1])), 0.0)
            d3 = np.where(a > 0, -e * p * np.log(a) / x[0], 0.0)
        return np.column_stack([e * p / x[0] ** 2, d2, d3])

    return r, j, [5.0, 2.5, 0.15], (0.0,)


def _box_3d():
    t = 0.1 * np.arange(1, 11)
    c = np.exp(-t) - np.exp(-10 * t)

    def r(x):
        return np.exp(-t * x[0]) - np.exp(-t * x[1]) - x[2] * c

    def j(x):
        return np.column_stack([-t * np.exp(-t * x[0]), t * np.exp(-t * x[1]), -c])

    return r, j, [0.0, 10.0, 20.0], (0.0,)


def _powell_singular():
    s5, s10 = np.sqrt(5.0), np.sqrt(10.0)

    def r(x):
        return np.array([x[0] + 10 * x[1], s5 * (x[2] - x[3]), (x[1] - 2 * x[2]) ** 2,
                         s10 * (x[0] - x[3]) ** 2])  # fmt: skip

    def j(x):
        a, b = 2 * (x[1] - 2 * x[2]), 2 * s10 * (x[0] - x[3])
        return np.array([[1.0, 10, 0, 0], [0, 0, s5, -s5], [0, a, -2 * a, 0], [b, 0, 0, -b]])

    return r, j, [3.0, -1.0, 0.0, 1.0], (0.0,)


def _wood():
    s90, s10 = np.sqrt(90.0), np.sqrt(10.0)

    def r(x):
        return np.array([10 * (x[1] - x[0] ** 2), 1 - x[0], s90 * (x[3] - x[2] ** 2), 1 - x[2],
                         s10 * (x[1] + x[3] - 2), (x[1] - x[3]) / s10])  # fmt: skip

    def j(x):
        return np.array([[-20 * x[0], 10, 0, 0], [-1, 0, 0, 0], [0, 0, -2 * s90 * x[2], s90],
                         [0, 0, -1, 0], [0, s10, 0, s10], [0, 1 / s10, 0, -1 / s10]],
                        dtype=float)  # fmt: skip

    return r, j, [-3.0, -1.0, -3.0, -1.0], (0.0,)


# ----------------------------------------------------------------------------- 15–20


def _kowalik_osborne():
    y = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323,
                  0.0235, 0.0246])  # fmt: skip
    u = np.array([4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])

    def r(x):
        return y - x[0] * (u**2 + u * x[1]) / (u**2 + u * x[2] + x[3])

    def j(x):
        num, den = u**2 + u * x[1], u**2 + u * x[2] + x[3]
        q = x[0] * num / den**2
        return np.column_stack([-num / den, -x[0] * u / den, q * u, q])

    return r, j, [0.25, 0.39, 0.415, 0.39], (3.07505e-4, 1.02734e-3)


def _brown_dennis():
    t = np.arange(1, 21) / 5

    def r(x):
        a = x[0] + t * x[1] - np.exp(t)
        b = x[2] + x[3] * np.sin(t) - np.cos(t)
        return a**2 + b**2

    def j(x):
        a = x[0] + t * x[1] - np.exp(t)
        b = x[2] + x[3] * np.sin(t) - np.cos(t)
        return np.column_stack([2 * a, 2 * a * t, 2 * b, 2 * b * np.sin(t)])

    return r, j, [25.0, 5.0, -5.0, -1.0], (85822.2,)


def _osborne_1():
    y = np.array([0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751,
                  0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490,
                  0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411,
                  0.406])  # fmt: skip
    t = 10.0 * np.arange(33)

    def r(x):
        return y - (x[0] + x[1] * np.exp(-t * x[3]) + x[2] * np.exp(-t * x[4]))

    def j(x):
        e4, e5 = np.exp(-t * x[3]), np.exp(-t * x[4])
        return np.column_stack([-np.ones_like(t), -e4, -e5, t * x[1] * e4, t * x[2] * e5])

    return r, j, [0.5, 1.5, -1.0, 0.01, 0.02], (5.46489e-5,)


def _biggs_exp6():
    t = 0.1 * np.arange(1, 14)
    y = np.exp(-t) - 5 * np.exp(-10 * t) + 3 * np.exp(-4 * t)

    def r(x):
        return (x[2] * np.exp(-t * x[0]) - x[3] * np.exp(-t * x[1]) + x[5] * np.exp(-t * x[4])
                - y)  # fmt: skip

    def j(x):
        e1, e2, e5 = np.exp(-t * x[0]), np.exp(-t * x[1]), np.exp(-t * x[4])
        return np.column_stack([-t * x[2] * e1, t * x[3] * e2, e1, -e2, -t * x[5] * e5, e5])

    return r, j, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0], (5.65565e-3, 0.0)


_OSBORNE_2_Y = np.array([
    1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679, 0.608,
    0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644, 0.624, 0.661,
    0.612, 0.558, 0.533, 0.495, 0.500, 0.423, 0.395, 0.375, 0.372, 0.391, 0.396, 0.405, 0.428,
    0.429, 0.523, 0.562, 0.607, 0.653, 0.672, 0.708, 0.633, 0.668, 0.645, 0.632, 0.591, 0.559,
    0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581, 0.428, 0.292, 0.162, 0.098, 0.054])


def _osborne_2():
    y, t = _OSBORNE_2_Y, np.arange(65) / 10

    def parts(x):
        e = np.exp(-t * x[4])
        d = t[:, None] - x[8:11]  # (65, 3): t - x9, t - x10, t - x11
        g = np.exp(-(d**2) * x[5:8])
        return e, d, g

    def r(x):
        e, _, g = parts(x)
        return y - (x[0] * e + g @ x[1:4])

    def j(x):
        e, d, g = parts(x)
        amp = x[1:4] * g
        return np.column_stack([-e, -g, t * x[0] * e, d**2 * amp, -2 * x[5:8] * d * amp])

    return r, j, [1.3, 0.65, 0.65, 0.7, 0.6, 3, 5, 7, 2, 4.5, 5.5], (4.01377e-2,)


def _watson(n: int = 6):
    t = np.arange(1, 30) / 29
    k = np.arange(n)
    powers = t[:, None] ** k  # t^(j-1) for j = 1..n

    def parts(x):
        d_powers = np.zeros_like(powers)
        d_powers[:, 1:] = k[1:] * powers[:, :-1]  # (j-1) t^(j-2)
        return d_powers, powers @ x

    def r(x):
        d_powers, s2 = parts(x)
        return np.concatenate([d_powers @ x - s2**2 - 1, [x[0], x[1] - x[0] ** 2 - 1]])

    def j(x):
        d_powers, s2 = parts(x)
        extra = np.zeros((2, n))
        extra[0, 0], extra[1, 0], extra[1, 1] = 1.0, -2 * x[0], 1.0
        return np.vstack([d_powers - 2 * s2[:, None] * powers, extra])

    return r, j, np.zeros(n), (2.28767e-3,)


_BUILDERS = [
    ("Rosenbrock", _rosenbrock),
    ("Freudenstein and Roth", _freudenstein_roth),
    ("Powell badly scaled", _powell_badly_scaled),
    ("Brown badly scaled", _brown_badly_scaled),
    ("Beale", _beale),
    ("Jennrich and Sampson", _jennrich_sampson),
    ("Helical valley", _helical_valley),
    ("Bard", _bard),
    ("Gaussian", _gaussian),
    ("Meyer", _meyer),
    ("Gulf research and development", _gulf),
    ("Box three-dimensional", _box_3d),
    ("Powell singular", _powell_singular),
    ("Wood", _wood),
    ("Kowalik and Osborne", _kowalik_osborne),
    ("Brown and Dennis", _brown_dennis),
    ("Osborne 1", _osborne_1),
    ("Biggs EXP6", _biggs_exp6),
    ("Osborne 2", _osborne_2),
    ("Watson", _watson),
]


def problems() -> list[Problem]:
    """The 20 problems, in the paper's order."""
    out = []
    for number, (name, build) in enumerate(_BUILDERS, 1):
        r, j, x0, minima = build()
        out.append(Problem(number, name, r, j, np.asarray(x0, dtype=float), minima))
    return out
