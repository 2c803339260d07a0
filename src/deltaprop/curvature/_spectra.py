"""Spectra of the Hessian without forming it: Lanczos eigenvalues and Hutchinson's trace."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import eigsh

from ..network import Network
from ._common import Array, check_choice, check_data, check_positive_int, loss_pass
from ._hessian import hessian, rademacher_blocks
from ._rop import hvp_rows, symmetric_operator

WHICH = ("LA", "SA", "LM", "SM", "BE")


def _select(w: Array, k: int, which: str) -> Array:
    """The k eigenvalues of ascending ``w`` that ``eigsh(which=...)`` returns, ascending."""
    if which == "LA":
        return w[-k:]
    if which == "SA":
        return w[:k]
    if which == "BE":
        high = (k + 1) // 2
        return np.concatenate([w[: k - high], w[w.size - high :]])
    order = np.argsort(np.abs(w), kind="stable")
    picked = order[-k:] if which == "LM" else order[:k]
    return np.sort(w[picked])


def hessian_eigenvalues(
    net: Network, X: object, T: object, k: int = 6, which: str = "LA", tol: float = 0.0
) -> Array:
    """k extreme eigenvalues of the Hessian of ``net.loss(X, T)`` by Lanczos iteration.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    k : int
        Number of eigenvalues, 1 ≤ k ≤ P.
    which : {"LA", "SA", "LM", "SM", "BE"}
        Largest or smallest algebraic, largest or smallest magnitude, or both ends
        (``scipy.sparse.linalg.eigsh``'s vocabulary).
    tol : float
        Relative accuracy for ``eigsh`` (0: machine precision).

    Returns
    -------
    ndarray (k,)
        Ascending, in the network's dtype.

    Notes
    -----
    ``eigsh`` (implicitly restarted Lanczos, ARPACK) on :func:`hessian_operator`: each iteration
    costs one Hessian–vector product (one forward and one backward R-pass); H is never formed.
    When P ≤ 2k + 1, where Lanczos cannot work, the eigenvalues of the dense :func:`hessian` are
    used instead.  "SM" converges slowly (no shift-invert on an operator).

    References
    ----------
    Lanczos 1950; Lehoucq, Sorensen & Yang 1998 (ARPACK); Pearlmutter 1994; PRML §5.4.6.
    """
    which = check_choice(which, "which", WHICH)
    X, T = check_data(net, X, T)
    n_params = net.n_params
    k = check_positive_int(k, "k")
    if k > n_params:
        raise ValueError(f"`k` must be at most P = {n_params} (the number of parameters); got {k}.")
    if n_params <= 2 * k + 1:
        return _select(np.linalg.eigvalsh(hessian(net, X, T)), k, which).astype(net.dtype)
    if which == "BE" and k == 1:  # ARPACK needs k ≥ 2; one from the high end, as it would
        which = "LA"
    op = symmetric_operator(hvp_rows, loss_pass(net, X, T), n_params, net.dtype)
    v0 = np.random.default_rng(0).uniform(-1, 1, size=n_params).astype(net.dtype)
    w = eigsh(op, k=k, which=which, v0=v0, tol=tol, return_eigenvectors=False)
    return np.sort(w).astype(net.dtype)


def hessian_trace(
    net: Network,
    X: object,
    T: object,
    n_samples: int = 100,
    seed: int | np.random.Generator | None = None,
) -> float:
    """Hutchinson's stochastic estimate of the trace of the Hessian of ``net.loss(X, T)``.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    T : array_like, targets
    n_samples : int
        Number of Rademacher probes v (entries ±1).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    float
        mean_v vᵀ H v, an unbiased estimate with variance 2 Σ_{p≠q} H_pq² / n_samples.

    Notes
    -----
    The probes go through the batched R-operator 64 at a time: ``n_samples`` Hessian–vector
    products, H never formed.  The exact trace is ``hessian_diagonal(net, X, T).sum()``, which
    for these networks costs about as much as a few probes.

    References
    ----------
    Hutchinson 1990; Avron & Toledo 2011; Yao et al. 2020 (PyHessian).
    """
    X, T = check_data(net, X, T)
    n_samples = check_positive_int(n_samples, "n_samples")
    p = loss_pass(net, X, T)
    total = 0.0
    for V in rademacher_blocks(net.n_params, n_samples, seed, net.dtype):
        total += float(np.vdot(V, hvp_rows(p, V)))
    return total / n_samples
