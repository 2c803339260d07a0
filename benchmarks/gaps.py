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
Was 9.9× (≈ 217 epochs per fit, stopped by ``tol`` = 1e-7 on the gradient norm, although the
returned epoch of highest log evidence is typically 7–13). Now ``LevenbergMarquardt`` stops
Bayesian training after ``evidence_patience`` = 6 epochs without a new highest evidence
(stop reason "evidence stopped improving"; needs that reason in
``deltaprop.training.STOP_REASONS``, else the rule is inert): 13–19 epochs per fit, the same
returned epochs and R². Per epoch: ``gauss_newton`` no longer mirrors G (LM reads the upper
triangle only) nor computes h''(z). The γ estimate (a separate Cholesky of A = G + ℓI and a
triangular inverse) stays: the step factorises A + μI, and reusing it would be inexact.""",
    "hessian-5000": """
Profile (pyinstrument, 10-64-64-4, N = 256, one thread, ≈ 0.40 s per call when measured
alone): 58 % in ``_add_diagonal`` (the 64×64-unit hidden layer's own block: GEMMs of
(≤ 1024 × 256) · (256 × 4096) at ≈ 47 GFLOP/s, i.e. at numpy's own limit, plus ≈ 25 % for
the strided transpose-add into H), 25 % ``_add_pair`` (half GEMM, half ``_scatter_add``), 9 %
``_symmetrise`` and 4 % the C_l recursion. No waste beyond the 23 % of the diagonal block's
panels that compute both halves of their own square; what is left would need the (j, j')
symmetry of a ⊗ a (half the GEMM flops, a scattered write). Against torch's ≈ 12 s this is
≈ 0.033; the row's median is inflated by run-to-run noise (H is 210 MB of fresh pages per
call, after torch's 4 GB), as its min–max shows.""",
    "lm-sine": """
Now measured over 5 seeds (geometric mean of per-seed time ratios): the epoch counts to
MSE ≤ 0.011 of the two libraries differ chaotically per seed (one seed was 9 vs 6 epochs,
20-seed means are 6.5 vs 6.35). Per epoch (≈ 17 ms) 60 % is the ``syrk`` of JᵀJ
(2000 × 481, ≈ 10 ms at 46 GFLOP/s, numpy's limit), ≈ 1.3 ms forming J, ≈ 1.5 ms per
Cholesky trial; skipping the mirror of G and h''(z) in ``gauss_newton`` saved ≈ 1.5 ms.""",
    "least-squares": """
Lanczos1's standard deviations (certified from an RSS of 1.43e-25) reach 2.96–3.41 digits, not 3
on both starts. The deficit is in s² = RSS/(m − n), not in (JᵀJ)⁻¹ (Lanczos2 and 3, the same
model, reproduce theirs to 9–10 digits): each of the 24 residuals (≈ 8e-14) is a difference of
numbers near 1 and carries a rounding error of ≈ 2e-16 from the data alone (y parsed to float64)
and as much from evaluating the model, ≈ 0.5 % of the residual, so the RSS found by any
double-precision fit is off by ≈ 0.1–0.2 % (ours 1.4279e-25 and 1.4297e-25; MINPACK's run gives
3.02 and 3.06 digits). Extended-precision residuals would be needed for more.""",
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
