"""``python -m benchmarks``: run the cases against their anchors and write RESULTS.md.

Options: ``--threads N`` (default 1), ``--repeat N`` (≥ 5, default 7), ``--quick`` (short
samples, small problems: a smoke test), ``--only NAME,...``, ``--list``,
``--out benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cases, cases_lm, cases_lsq  # noqa: F401 - importing registers the cases
from .core import CASES, Config, Row, run_case
from .gaps import gaps_section
from .report import render, table_line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (default 1)")
    parser.add_argument("--repeat", type=int, default=7, help="timing samples per side (≥ 5)")
    parser.add_argument("--quick", action="store_true", help="smoke test: short, small")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args(argv)
    if args.repeat < 5 and not args.quick:
        parser.error("`--repeat` must be at least 5 (medians of ≥ 5 samples).")
    if args.threads < 1:
        parser.error("`--threads` must be a positive integer.")
    return args


def select(only: str) -> list:
    """The registered cases named in ``only`` (all when empty), in registry order."""
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - {c.name for c in CASES})
    if unknown:
        known = ", ".join(c.name for c in CASES)
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; known: {known}")
    return [c for c in CASES if not names or c.name in names]


def limit_threads(threads: int):
    """Limit BLAS (threadpoolctl) and torch (if installed) to ``threads`` threads.

    numpy and scipy.linalg are imported first: they load two different OpenBLAS libraries,
    and threadpoolctl limits only the libraries already loaded.  (An unlimited scipy OpenBLAS
    made a 1377 × 1377 Cholesky factorisation 50× slower on a busy 2-core machine.)
    """
    import numpy  # noqa: F401 - load the BLAS libraries so that the limit reaches them
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return threadpool_limits(threads)


def main(argv: list[str] | None = None) -> list[Row]:
    """Run the selected cases, print each row as it comes, write the report; return the rows."""
    args = parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name:24s} {c.what}")
        return []
    cfg = Config(repeat=max(args.repeat, 3) if args.quick else args.repeat, quick=args.quick,
                 threads=args.threads)
    shown = list(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    with limit_threads(args.threads):
        for c in select(args.only):
            for row in run_case(c, cfg):
                print(table_line(row), flush=True)
                rows.append(row)
    text = render(rows, "python -m benchmarks " + " ".join(shown), args.threads,
                  gaps_section(rows))
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
