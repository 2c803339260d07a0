"""The case registry, result rows and the helpers every case uses.

A case is a small function ``fn(cfg) -> list[Row]`` registered with :func:`case`.  It builds
its inputs, checks that deltaprop and the anchor agree (to a stated tolerance) and only then
times them.  A missing anchor or a deltaprop piece that has not landed yet raises
:class:`Skip`; the harness turns it into a "skipped" row with the reason, never a number.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .timing import Stats, time_pair


@dataclass(frozen=True)
class Config:
    """Options of one harness run.

    Attributes
    ----------
    repeat : int
        Timing samples per side.
    quick : bool
        Smoke-test mode: shorter samples and smaller problems.
    threads : int
        BLAS and torch threads.
    """

    repeat: int = 7
    quick: bool = False
    threads: int = 1

    @property
    def min_time(self) -> float:
        """Seconds each timing sample lasts at least."""
        return 0.005 if self.quick else 0.1


@dataclass
class Row:
    """One line of the results table.

    Attributes
    ----------
    case : str
        Registry name of the case that produced the row.
    what : str
        The measured operation and its sizes.
    ours, anchor : Stats or str or None
        Timings (or a count, as text) of deltaprop and of the anchor.
    anchor_name : str
    goal : str
        The goal as text, e.g. "≤ 0.15".
    ratio : float or None
        deltaprop / anchor (time or memory).
    met : bool or None
    note : str
        Agreement tolerance, sizes, or the reason for a skip.
    status : {"ok", "skipped", "error"}
    """

    case: str
    what: str
    ours: Stats | str | None = None
    anchor: Stats | str | None = None
    anchor_name: str = ""
    goal: str = ""
    ratio: float | None = None
    met: bool | None = None
    note: str = ""
    status: str = "ok"


class Skip(Exception):
    """Raised by a case whose anchor or deltaprop code is not available."""


class Disagree(Exception):
    """Raised when deltaprop and the anchor disagree beyond the stated tolerance."""


@dataclass(frozen=True)
class Case:
    """A registered benchmark case."""

    name: str
    what: str
    fn: Callable[[Config], list[Row]] = field(repr=False)


CASES: list[Case] = []


def case(name: str, what: str) -> Callable:
    """Register ``fn(cfg) -> list[Row]`` as case ``name`` (decorator)."""

    def register(fn: Callable[[Config], list[Row]]) -> Callable[[Config], list[Row]]:
        CASES.append(Case(name, what, fn))
        return fn

    return register


def need(module: str, attr: str | None = None):
    """Import ``module`` (and return ``module.attr`` if given), or raise :class:`Skip`.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. "torch" or "deltaprop.curvature".
    attr : str, optional
        An attribute that must exist in the module.
    """
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"`{module}` is not available ({exc.__class__.__name__}: {exc})") from None
    if attr is None:
        return mod
    if not hasattr(mod, attr):
        raise Skip(f"`{module}.{attr}` does not exist yet")
    return getattr(mod, attr)


def check_close(ours: object, ref: object, rtol: float, what: str) -> str:
    """Check max |ours − ref| ≤ rtol · max |ref|; return the statement for the table.

    Raises
    ------
    Disagree
        With the measured error, if the check fails.
    """
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        raise Disagree(f"{what}: shapes differ, {a.shape} vs {b.shape}")
    err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))
    if not err <= rtol:
        raise Disagree(f"{what}: max rel. error {err:.1e} > {rtol:.0e}")
    return f"{what} agree: max|Δ|/max|ref| = {err:.0e} ≤ {rtol:.0e}"


def ratio_row(case_name: str, what: str, pair: tuple[Stats, Stats], anchor_name: str,
              goal: float, note: str = "") -> Row:
    """A row for a time ratio with goal ``ratio ≤ goal``."""
    ours, anchor = pair
    ratio = ours.median / anchor.median
    return Row(case_name, what, ours, anchor, anchor_name, f"≤ {goal:g}", ratio,
               ratio <= goal, note)


def timed_row(cfg: Config, case_name: str, what: str, ours: Callable, anchor: Callable,
              anchor_name: str, goal: float, note: str = "") -> Row:
    """Time ``ours`` against ``anchor`` alternately and build the ratio row."""
    pair = time_pair(ours, anchor, repeat=cfg.repeat, min_time=cfg.min_time)
    return ratio_row(case_name, what, pair, anchor_name, goal, note)


def run_case(c: Case, cfg: Config) -> list[Row]:
    """Run one case; a skip or a disagreement becomes a row that says so."""
    try:
        return c.fn(cfg)
    except Skip as exc:
        return [Row(c.name, c.what, note=str(exc), status="skipped")]
    except Disagree as exc:
        return [Row(c.name, c.what, note=f"NOT TIMED, results disagree: {exc}", status="error")]
    except Exception as exc:  # report any failure of a case, keep the others
        msg = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:200]
        return [Row(c.name, c.what, note=f"error: {msg}", status="error")]
