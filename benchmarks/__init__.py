"""Benchmarks of deltaprop against the tools users would pick instead (issue 7).

Run ``python -m benchmarks`` from the repository root; it writes ``benchmarks/RESULTS.md``.
See ``benchmarks/README.md`` for what each case measures and how it is timed.
"""
