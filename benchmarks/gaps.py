"""Recorded analyses of the goals that are missed (profiles and causes), by case name.

``RESULTS.md`` is generated; the analyses live here so that a re-run keeps them, and a row that
misses its goal without an analysis is flagged as such.
"""

from __future__ import annotations

from .core import Row

#: case name -> Markdown paragraph: remaining gap and its cause, from a profile.
ANALYSES: dict[str, str] = {
    "gradient-small": """
Per-call overhead of NumPy, not arithmetic. A profile of one call (about 31 µs, single thread,
min of 5×20,000 calls) splits into validation 4.6 µs (``np.isfinite(..).all()`` 1.6 µs per
array; labels/targets 2.2 µs), forward 12.1 µs (``A @ W.T`` 2.6 µs, ``Z += b`` 1.7 µs,
``np.tanh`` on 64×32 float64 3.9 µs: NumPy's float64 tanh runs at 1.8 ns/element here, not
vectorised), head 2.1 µs, backward 10.6 µs (five matmuls of 1–2 µs each, ``G * (1 - a*a)``
2.6 µs). About 27 NumPy calls at 1–2 µs each are the floor; the goal (≈ 26 µs against torch's
≈ 175 µs) would need fewer calls, not faster ones. Tried and rejected: fused in-place
derivatives (saves one allocation, < 0.5 µs, but changes the result dtype of
``Network.backward`` for a float64 ``grad_output`` on a float32 network), ``(W @ A.T).T``
(slower for these shapes),
sum-based finiteness checks (slower than ``isfinite`` on this CPU).""",
    "gradient-mnist": """
OpenBLAS sgemm against torch's MKL. In a profile (about 400–430 µs per call) the two large
products take 300 µs: ``X @ W1.T`` (64×784 · 784×128) 172–185 µs and ``G1.T @ X`` 130–140 µs;
torch's MKL does the first in 150 µs. The rest is element-wise work and validation (≈ 80 µs,
of which ``isfinite`` over the 50,176 inputs 5 µs, labels to one-hot 5 µs, the CE head 12 µs).
Computing the first product as ``(W1 @ X.T).T`` (OpenBLAS's "TN" kernel with m = 64) takes
151–157 µs alone, but end to end it saved only 13 µs (3 %: 407 → 394 µs) because the hidden
activations become Fortran-ordered, and it is slower for N ≥ n_out and for float64; not
adopted. Remaining gap ≈ 10 % of the goal, set by the BLAS.""",
    "trainbr-diabetes": """
Not the core: a pyinstrument profile of one fit (217 epochs, stopped by ``tol`` = 1e-7 on the
gradient norm) spends 55 % in ``curvature.gauss_newton`` (of it ``mirror_upper`` recomputes
``np.tril_indices(P)`` on every call, ≈ 10 % of the fit; cacheable), 14 % in the γ estimate
(trace of A⁻¹ each accepted step), 10 % in Cholesky solves, and < 10 % in forward/backward
passes. scikit-learn's lbfgs stops after ≤ 200 cheap iterations. Owners: lm_training /
estimators (fewer epochs, e.g. a looser default ``tol`` for trainbr, and a cached index).""",
    "nist-strd": """
``damping="marquardt"`` (the default) loses BoxBOD from start 1 exactly as MINPACK does (see
tests/test_least_squares.py: the scale-invariant step sends b2 to ≈ 115, where the model is
flat in b2); ``damping="levenberg"`` solves 54/54.""",
}


def gaps_section(rows: list[Row]) -> str:
    """The "Gaps" section: one paragraph per case that missed a goal."""
    missed = sorted({row.case for row in rows if row.met is False or row.status == "error"})
    if not missed:
        return "## Gaps\n\nEvery measured goal is met.\n"
    parts = ["## Gaps", ""]
    for name in missed:
        text = ANALYSES.get(name, "Not analysed yet: profile with pyinstrument "
                                  f"(`python -m benchmarks --only {name}`).")
        parts += [f"### {name}", "", text.strip(), ""]
    return "\n".join(parts)
