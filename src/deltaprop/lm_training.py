r"""Levenberg–Marquardt training of networks (MATLAB's ``trainlm``) and Bayesian regularisation
(``trainbr``), as an optimizer for :func:`deltaprop.training.train`.

Each epoch linearises the network about the current weights w and takes ONE accepted step of

.. math::

    (G + \ell I + \mu D)\,\delta = -(g + \ell w), \qquad
    \Phi(w) = L(w) + \tfrac{\ell}{2}\lVert w\rVert^2,

with L the network's loss, g = ∇L and G its (generalised) Gauss–Newton matrix from
:func:`deltaprop.curvature.gauss_newton`: G = JᵀJ for "sse" (J = ∂y/∂w of the N·K residuals
y − t), (2/(N K)) JᵀJ for "mse", Σ_n J_nᵀ M_n J_n with the head's positive semi-definite output
matrix M_n for "bce"/"ce" (Schraudolph 2002; never the √loss trick, whose Jacobian is singular
where a loss term vanishes).  G and g are built once per epoch (chunked rank-k updates); a trial
step costs one Cholesky factorisation and ONE forward pass.  A trial that does not lower Φ is
rejected, μ is multiplied by ``mu_inc`` and the system re-solved with the same G; an accepted
step multiplies μ by ``mu_dec``.  When μ exceeds ``mu_max`` the epoch fails, the weights are left
where it started and training stops with "mu reached mu_max" (Hagan & Menhaj 1994).

When the number of residuals N·K is below P (more weights than data), the step is taken in the
dual ("J Jᵀ") form by the push-through identity, a Cholesky factorisation of size N·K:

.. math::

    \delta = -J^\top (J J^\top + \lambda I)^{-1}\bigl(r - \tfrac{\ell}{\lambda} J w\bigr)
             - \tfrac{\ell}{\lambda} w, \qquad \lambda = \ell + \mu,

with J, r the √M-scaled Jacobian and residuals of :func:`deltaprop.curvature.gauss_newton_dual`
(Jᵀ r = g; Levenberg damping; for Marquardt damping with ℓ = 0, J is scaled by D^{-1/2}).

*Weight decay* ``l2`` = ℓ is exact: Φ is the least-squares cost of the residuals augmented by
√ℓ w, so G + ℓI and g + ℓw are its Gauss–Newton matrix and gradient; all P parameters are
decayed (as in MacKay 1992 and ``trainbr``, unlike ``FirstOrderOptimizer.weight_decay``, which
spares the biases).  ``penalty`` reports (ℓ/2)‖w‖² so that ``train`` selects the best epoch by Φ.

*Bayesian regularisation* (``bayesian=True``; MacKay 1992, Foresee & Hagan 1997) minimises
F = β E_D + α E_W with E_D = ½ Σ r² over the m = N·K residuals (= L for "sse", N K L / 2 for
"mse") and E_W = ½‖w‖², i.e. Φ with ℓ = α c / β (c = 1 for "sse", 2/(N K) for "mse"), and after
every accepted step re-estimates

.. math::

    \gamma = P - \alpha\,\mathrm{tr}\,A^{-1}, \quad A = \beta J^\top J + \alpha I, \qquad
    \alpha \leftarrow \frac{\gamma}{\lVert w\rVert^2}, \qquad
    \beta \leftarrow \frac{m - \gamma}{\sum r^2},

with JᵀJ the Gauss–Newton matrix of the step (Foresee & Hagan's choice: no new Jacobian) and
E_D, E_W at the new weights.  tr A⁻¹ = ‖R⁻¹‖²_F from the Cholesky factor A = RᵀR (one
triangular inverse); in the dual form γ = m − α tr (β J Jᵀ + α I)⁻¹, as JᵀJ and J Jᵀ have the
same nonzero eigenvalues λ and both sums equal Σ βλ/(βλ + α).

The same factor gives, free, MacKay's log evidence of the new weights under the step's α, β
(History column ``log_evidence``; MacKay 1992, PRML eq. 5.175),

.. math::

    \ln p(D\mid\alpha,\beta) = -\beta E_D - \alpha E_W - \tfrac12\ln\det A
    + \tfrac{P}{2}\ln\alpha + \tfrac{m}{2}\ln\beta - \tfrac{m}{2}\ln 2\pi,

and ``train`` keeps the epoch of the HIGHEST evidence: ``epoch_score`` (the optimizer contract's
ranking hook) returns −ln p(D|α, β).  The re-estimation is a fixed-point iteration that can
settle in a poor local solution: on the diabetes data (P = 121, m = 353) the iterates pass a
nearly linear solution (γ ≈ 20, the highest evidence) and then drift, α nearly unchanged, into
one with γ ≈ 40–90 and an evidence lower by e^15–e^55 that predicts worse; MacKay ranks such
alternative solutions by their evidence.  Comparing L + (ℓ/2)‖w‖² across epochs, as without
Bayesian regularisation, would compare objectives with different ℓ.  The evidence of weights
short of the minimum of F is an underestimate (−F is lower there), so a transient state is
never favoured by it.

References
----------
Marquardt 1963, "An algorithm for least-squares estimation of nonlinear parameters", SIAM J.
Appl. Math. 11, 431–441.  Hagan & Menhaj 1994, "Training feedforward networks with the
Marquardt algorithm", IEEE Trans. Neural Netw. 5(6), 989–993 (``trainlm``).  MacKay 1992, "A
practical Bayesian framework for backpropagation networks", Neural Comput. 4(3), 448–472.
Foresee & Hagan 1997, "Gauss–Newton approximation to Bayesian learning", Proc. ICNN, 1930–1935
(``trainbr``).  Bishop 2006 (PRML) §5.4.2 (outer-product approximation), §5.7.3 (the
hyperparameters of a network; its linear-model form is §3.5.2, eq. 3.91–3.95).  Bishop & Bishop
2024 §8 (Jacobian, outer-product Hessian, Levenberg–Marquardt).
Schraudolph 2002, "Fast curvature matrix-vector products for second-order gradient descent",
Neural Comput. 14(7) (generalised Gauss–Newton).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs

from ._validation import check_choice, check_flag, check_positive_int
from .curvature import gauss_newton_dual, gauss_newton_upper
from .linalg import damped_step_search, marquardt_diagonal, solve_damped
from .network import Network
from .optimizers import EpochStep, Optimizer, TrainingProblem, check_real, register_optimizer

Array = np.ndarray

#: Damping matrices D: the identity (Levenberg 1944, MATLAB ``trainlm``) or Marquardt's diagonal.
DAMPINGS = ("levenberg", "marquardt")
#: Losses for which Bayesian regularisation is defined (a Gaussian likelihood).
BAYESIAN_LOSSES = ("sse", "mse")
#: ``History.stop_reason`` of Bayesian training stopped by ``evidence_patience``.
EVIDENCE_STOPPED = "evidence stopped improving"
#: ``History.stop_reason`` of an epoch whose μ exceeded ``mu_max``.
MU_MAX_REACHED = "mu reached mu_max"


# ---------------------------------------------------------------------- the linear systems
def _diagonal_view(A: Array) -> Array:
    """A writable view of the diagonal of a square Fortran-ordered matrix."""
    return A.reshape(-1, order="F")[:: A.shape[0] + 1]


def _gamma(A: Array, ell: float) -> tuple[float, float] | None:
    """(n − ℓ tr A⁻¹, ln det A) for A (n × n) symmetric positive definite; None if it is not
    numerically.

    tr A⁻¹ = ‖R⁻¹‖²_F from the Cholesky factor A = RᵀR (A⁻¹ = R⁻¹R⁻ᵀ): one factorisation and
    one triangular inverse, n³/3 flops each; ln det A = 2 Σ ln R_ii comes free.
    """
    potrf, trtri = get_lapack_funcs(("potrf", "trtri"), (A,))
    factor, info = potrf(A, lower=0, clean=1, overwrite_a=0)
    if info != 0:
        return None
    logdet = 2.0 * float(np.sum(np.log(np.diag(factor))))
    inverse, info = trtri(factor, lower=0, overwrite_c=1)
    if info != 0:
        return None
    return A.shape[0] - ell * float(np.vdot(inverse, inverse)), logdet


def _symmetric_f64(S: Array) -> Array:
    """A float64 Fortran-ordered copy of a symmetric matrix (its transpose, read contiguously)."""
    return np.array(S.T, dtype=np.float64, order="F")


class _Primal:
    """(G + ℓI + μD) δ = −(g + ℓw): one Cholesky factorisation of size P per μ, G built once.

    ``G`` is Fortran-ordered with G in its UPPER triangle (the lower one is never read: every
    factorisation is ``potrf(lower=0)``), as :func:`gauss_newton_upper` returns it.
    """

    def __init__(self, G: Array, g: Array, ell: float, w: Array, D: Array | None):
        self.A = np.asarray(G, dtype=np.float64, order="F")
        self.g = np.asarray(g, dtype=np.float64)
        if ell:
            _diagonal_view(self.A)[:] += ell
            self.g = self.g + ell * w
        self.ell, self.D = ell, D
        self._work = np.empty_like(self.A, order="F")

    def logdet(self, ell: float) -> float | None:
        """ln det (G + ℓI) for another ℓ > 0 (one more factorisation)."""
        A = self.A.copy(order="F")
        _diagonal_view(A)[:] += ell - self.ell
        out = _gamma(A, ell)
        return None if out is None else out[1]

    def solve(self, mu: float) -> Array | None:
        step, ok = solve_damped(self.A, self.g, mu, 1.0 if self.D is None else self.D,
                                work=self._work)
        return step if ok else None

    def gamma(self) -> tuple[float, float] | None:
        """P − ℓ tr (G + ℓI)⁻¹, which is P − α tr A⁻¹ for A = (β/c)(G + ℓI), ℓ = αc/β, and
        ln det (G + ℓI)."""
        return _gamma(self.A, self.ell)


class _Dual:
    """The same system by the push-through identity: one Cholesky of size m = N·K per μ.

    ``e`` = D⁻¹ for Marquardt damping (which then requires ℓ = 0), None for Levenberg.
    """

    def __init__(self, Js: Array, rs: Array, K: Array, ell: float, w: Array, e: Array | None):
        self.Js, self.rs, self.ell, self.w, self.e = Js, rs.astype(np.float64), ell, w, e
        self.K = _symmetric_f64(K if e is None else (Js * e) @ Js.T)
        self.Jw = Js @ w if ell else None
        self._work = np.empty_like(self.K, order="F")

    def logdet(self, ell: float) -> float | None:
        """ln det (JᵀJ + ℓI) for another ℓ > 0."""
        out = self._shifted(ell)
        return None if out is None else out[1]

    def solve(self, mu: float) -> Array | None:
        lam = self.ell + mu
        rhs = self.rs if self.Jw is None else self.rs - (self.ell / lam) * self.Jw
        minus_v, ok = solve_damped(self.K, rhs, lam, 1.0, work=self._work)
        if not ok:
            return None
        step = self.Js.T @ minus_v
        if self.e is not None:
            step *= self.e
        if self.Jw is not None:
            step -= (self.ell / lam) * self.w
        return step if np.isfinite(step).all() else None

    def gamma(self) -> tuple[float, float] | None:
        """P − ℓ tr (JᵀJ + ℓI)⁻¹ and ln det (JᵀJ + ℓI), see :meth:`_shifted`."""
        return self._shifted(self.ell)

    def _shifted(self, ell: float) -> tuple[float, float] | None:
        """m − ℓ tr (J Jᵀ + ℓI)⁻¹: equals P − ℓ tr (JᵀJ + ℓI)⁻¹, as JᵀJ and J Jᵀ have the same
        nonzero eigenvalues λ and both are Σ λ/(λ + ℓ); and ln det (JᵀJ + ℓI), which is
        ln det (J Jᵀ + ℓI) + (P − m) ln ℓ for the same reason (for ℓ > 0)."""
        A = self.K.copy(order="F")
        _diagonal_view(A)[:] += ell
        out = _gamma(A, ell)
        if out is None or not ell > 0:
            return out
        return out[0], out[1] + (self.w.size - A.shape[0]) * math.log(ell)


# ---------------------------------------------------------------------- Bayesian state
@dataclass
class Evidence:
    """MacKay's hyperparameters of Bayesian regularisation and the scale of the loss.

    Attributes
    ----------
    alpha, beta : float
        Precisions of the weight prior and of the noise: F = β E_D + α E_W.
    gamma : float
        Effective number of parameters γ (NaN before the first estimate).
    c : float
        Normalisation of the loss, L = c E_D (1 for "sse", 2/(N K) for "mse").
    m : int
        Number of residuals N·K.
    log_evidence : float
        MacKay's log evidence ln p(D | α, β) (NaN before the first estimate), see
        :meth:`evidence`.
    """

    alpha: float
    beta: float
    gamma: float
    c: float
    m: int
    log_evidence: float = math.nan

    @classmethod
    def start(cls, net: Network, n_samples: int) -> Evidence:
        """α = 0, β = 1 (Foresee & Hagan 1997): the first step is plain LM."""
        c = float(net.head.normalisation(n_samples, net.n_outputs))
        return cls(alpha=0.0, beta=1.0, gamma=math.nan, c=c, m=n_samples * net.n_outputs)

    @property
    def started(self) -> bool:
        """Whether γ has been estimated (and α > 0)."""
        return math.isfinite(self.gamma)

    @property
    def ell(self) -> float:
        """The weight decay ℓ = α c / β on the loss scale: F = (β/c)(L + (ℓ/2)‖w‖²)."""
        return self.alpha * self.c / self.beta

    def evidence(self, loss: float, w: Array, logdet: float | None) -> float:
        r"""MacKay's (Laplace, Gauss–Newton) log evidence at w for the current α, β.

        .. math::

            \ln p(D\mid\alpha,\beta) = -\beta E_D - \alpha E_W - \tfrac12 \ln\det A
            + \tfrac{P}{2}\ln\alpha + \tfrac{m}{2}\ln\beta - \tfrac{m}{2}\ln 2\pi,

        A = βJᵀJ + αI, ln det A = P ln(β/c) + ``logdet`` with ``logdet`` = ln det (G + ℓI), G
        = c JᵀJ the Gauss–Newton matrix on the loss scale (MacKay 1992; PRML eq. 5.175).
        NaN when α = 0 (an improper prior) or ``logdet`` is None.
        """
        if logdet is None or not (self.alpha > 0 and self.beta > 0):
            return math.nan
        P = w.size
        log_det_A = P * math.log(self.beta / self.c) + logdet
        return (-0.5 * self.alpha * float(w @ w) - self.beta * loss / self.c
                - 0.5 * log_det_A + 0.5 * P * math.log(self.alpha)
                + 0.5 * self.m * (math.log(self.beta) - math.log(2.0 * math.pi)))

    def update(self, gamma: float | None, loss: float, w: Array) -> None:
        """γ (kept in [0, m)), then α = γ/‖w‖² and β = (m − γ)/Σr² with Σr² = 2L/c at w.

        A γ that the factorisation could not give (None) keeps the previous one.
        """
        if gamma is not None and math.isfinite(gamma):
            self.gamma = min(max(gamma, 0.0), self.m * (1.0 - 1e-12))
        ww, sse = float(w @ w), 2.0 * loss / self.c
        if ww > 0 and sse > 0 and self.started:
            self.alpha = max(self.gamma, np.finfo(float).tiny) / ww
            self.beta = (self.m - self.gamma) / sse

    def first_estimate(self, loss: float, w: Array) -> None:
        """After the first step: γ = min(P, m)/2, as at α = 0 the trace formula degenerates
        (γ → rank JᵀJ, which is m when P ≥ m, so that β → 0)."""
        self.gamma = min(w.size, self.m) / 2.0
        self.update(None, loss, w)

    def extras(self) -> dict[str, float]:
        """The History columns ``gamma``, ``alpha``, ``beta``, ``log_evidence``."""
        return {"gamma": self.gamma, "alpha": self.alpha, "beta": self.beta,
                "log_evidence": self.log_evidence}


# ---------------------------------------------------------------------- the optimizer
class LevenbergMarquardt(Optimizer):
    r"""Levenberg–Marquardt training (``trainlm``), optionally with Bayesian regularisation.

    Registered as ``train(optimizer="lm")`` and, with ``bayesian=True``, "trainbr".

    Parameters
    ----------
    mu : float
        Initial damping μ > 0, on the scale of the network's loss (see Notes).
    mu_dec : float
        Factor in (0, 1) applied to μ after an accepted step.
    mu_inc : float
        Factor > 1 applied to μ after a rejected step or a failed factorisation.
    mu_max : float
        Bound > ``mu``: an epoch whose μ exceeds it fails and training stops with
        "mu reached mu_max", the weights left where the epoch started.
    chunk_size : int, optional
        Samples per block when accumulating G (default: blocks of a few MB); the trajectory
        does not depend on it beyond rounding.
    l2 : float
        Weight decay ℓ ≥ 0: minimise L + (ℓ/2)‖w‖² over all parameters, exactly.
    bayesian : bool
        Bayesian regularisation (``trainbr``): α, β and γ re-estimated after every accepted
        step.  Needs the loss "sse" or "mse" (a Gaussian likelihood) and ``l2`` = 0.
    damping : {"levenberg", "marquardt"}
        D = I, or Marquardt's scale-invariant diag(G) with MINPACK's running maximum and a
        relative floor (:func:`deltaprop.least_squares.marquardt_diagonal`).
    dual : bool, optional
        Solve in the dual (J Jᵀ) form.  None: exactly when N·n_out < P and the form applies
        (Levenberg damping, or Marquardt damping without ``l2`` and ``bayesian``).
    evidence_patience : int or None
        With ``bayesian=True``: stop with "evidence stopped improving" after this many
        epochs without a new highest log evidence (the epoch of the highest one is returned
        anyway); None never stops on it.  Default 6, MATLAB's ``max_fail`` and ``train``'s
        validation ``patience``: the evidence-based analogue of early stopping (see Notes).

    Attributes
    ----------
    mu_ : float
        The current damping.
    evidence_ : Evidence or None
        ``alpha``, ``beta``, ``gamma`` of Bayesian regularisation, once training started.

    Notes
    -----
    One epoch at weights w, with ℓ = ``l2`` (or αc/β when Bayesian), G and g = ∇L at w:

    .. math::

        (G + \ell I + \mu D)\,\delta = -(g + \ell w); \quad
        \Phi(w + \delta) < \Phi(w):\ w \leftarrow w + \delta,\ \mu \leftarrow \mu\,\mu_{dec};
        \quad \text{else } \mu \leftarrow \mu\,\mu_{inc} \text{ and solve again.}

    Bayesian regularisation, after each accepted step (MacKay 1992; PRML §5.7.3):

    .. math::

        \gamma = P - \alpha\,\mathrm{tr}(\beta J^\top J + \alpha I)^{-1}, \quad
        \alpha = \gamma / \lVert w\rVert^2, \quad \beta = (N K - \gamma) / \textstyle\sum r^2.

    It starts as Foresee & Hagan 1997 do, with α = 0, β = 1 (a plain LM first step).  At
    α = 0 the trace formula degenerates (γ → rank JᵀJ, which is N·K when P ≥ N·K, so β → 0),
    so the first estimate takes γ = min(P, N K)/2; the α, β it gives at the fitted weights
    are moderate and the later estimates forget it.  Starting instead from γ = P
    (MATLAB) makes α large on the untrained weights and can drive γ to 0.

    Default damping: Levenberg's D = I, as MATLAB's ``trainlm``.  On the 1-20-20-1 tanh sine
    problem of the tests it reaches MSE 0.011 in 3–12 epochs (6 seeds, 6.5 on average over
    20); Marquardt's diag(G), even with the running maximum and floor, takes 10–53: the
    columns of J of weights into saturated tanh units are tiny, so D damps those directions
    far less than the well-determined ones.  μ lives on the scale of G: for "mse" that is
    (2/(N K)) JᵀJ, so ``mu=2e-3`` retraces torch-levenberg-marquardt's default (μI added to
    JᵀJ/N) step for step; ``mu=1e-3`` needs as many epochs on average.

    History: ``step`` is the μ of the accepted step (of the last trial when the epoch fails);
    with ``bayesian=True`` the extras ``gamma``, ``alpha``, ``beta`` after re-estimation and
    ``log_evidence``, ln p(D|α, β) of the epoch's weights for the α, β of its step.
    ``penalty`` is (ℓ/2)‖w‖², so the best epoch is that of the lowest L + (ℓ/2)‖w‖²; with
    ``bayesian=True`` it is that of the highest log evidence (MacKay 1992: the evidence
    ranks alternative solutions), the fixed-point iteration being able to leave a solution of
    high evidence for a worse one (see the module docstring).

    *Evidence patience.*  Since ``train`` returns the epoch of the highest evidence, epochs
    after it only matter if they find a higher one.  On the diabetes data (5 folds × 2 seeds)
    a new highest evidence came every 1–2 epochs up to the best epoch (7–13), and none in the
    130–640 epochs that ``min_grad`` then needed while α, β drifted to the worse solution;
    ``evidence_patience`` = 6 returns the same epoch after ≈ 20 epochs instead.  Like
    validation patience it is a heuristic: a later, higher-evidence solution separated from
    the best by more than ``evidence_patience`` non-improving epochs would be missed (set None
    to train to the other stopping rules).  Epochs without a finite evidence (before the
    first estimate) do not count.

    References
    ----------
    Marquardt 1963; Hagan & Menhaj 1994 (``trainlm``); MacKay 1992; Foresee & Hagan 1997
    (``trainbr``); PRML §5.7.3; Bishop & Bishop 2024 §8.

    Examples
    --------
    >>> import numpy as np, deltaprop
    >>> from deltaprop.training import train
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> net = deltaprop.mlp([1, 8, 1], seed=0)
    >>> h = train(net, X, np.sin(3 * X), LevenbergMarquardt(), epochs=30)
    >>> bool(h.loss[-1] < 1e-4 * h.loss[0])
    True
    """

    def __init__(self, mu: float = 1e-3, mu_dec: float = 0.1, mu_inc: float = 10.0,
                 mu_max: float = 1e10, chunk_size: int | None = None, l2: float = 0.0,
                 bayesian: bool = False, damping: str = "levenberg",
                 dual: bool | None = None, evidence_patience: int | None = 6):
        self.mu = check_real(mu, "mu", 0.0, low_open=True)
        self.mu_dec = check_real(mu_dec, "mu_dec", 0.0, 1.0, low_open=True, high_open=True)
        self.mu_inc = check_real(mu_inc, "mu_inc", 1.0, low_open=True)
        self.mu_max = check_real(mu_max, "mu_max", self.mu, low_open=True)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size", allow_none=True)
        self.l2 = check_real(l2, "l2", 0.0)
        self.bayesian = check_flag(bayesian, "bayesian")
        self.damping = check_choice(damping, "damping", DAMPINGS)
        self.dual = None if dual is None else check_flag(dual, "dual")
        self.evidence_patience = check_positive_int(evidence_patience, "evidence_patience",
                                                    allow_none=True)
        if self.bayesian and self.l2:
            raise ValueError("`l2` must be 0 with `bayesian`=True: α is the weight decay then.")
        if self.dual and not self._dual_applies():
            raise ValueError("`dual`=True needs damping='levenberg', or 'marquardt' without "
                             "`l2` and `bayesian`.")
        self.mu_ = self.mu
        self.evidence_: Evidence | None = None
        self.stop_reasons = (MU_MAX_REACHED, EVIDENCE_STOPPED) if self.bayesian else (
            MU_MAX_REACHED,)
        self._D: Array | None = None
        self._n_params: int | None = None
        self._scored: tuple[Array, float, float] | None = None
        self._best_evidence = (-math.inf, 0)  # (highest log evidence, epochs since it)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (
            ("chunk_size", self.chunk_size), ("l2", self.l2), ("bayesian", self.bayesian),
            ("dual", self.dual)) if v)
        if self.bayesian and self.evidence_patience != 6:
            extra += f", evidence_patience={self.evidence_patience!r}"
        return (f"LevenbergMarquardt(mu={self.mu:g}, mu_dec={self.mu_dec:g}, "
                f"mu_inc={self.mu_inc:g}, mu_max={self.mu_max:g}, "
                f"damping={self.damping!r}{extra})")

    def _dual_applies(self) -> bool:
        return self.damping == "levenberg" or not (self.l2 or self.bayesian)

    # -- the Optimizer contract
    def reset(self, net: Network) -> None:
        """Fresh state: μ = ``mu``, no Marquardt diagonal, Bayesian α = 0, β = 1."""
        if self.bayesian and net.loss_name not in BAYESIAN_LOSSES:
            raise ValueError(
                f"`bayesian`=True needs the loss 'sse' or 'mse' (a Gaussian likelihood); the "
                f"network's loss is {net.loss_name!r}."
            )
        self.mu_, self._D, self.evidence_ = self.mu, None, None
        self._n_params = net.n_params
        self._scored: tuple[Array, float, float] | None = None
        self._best_evidence = (-math.inf, 0)

    def penalty(self, params: Array) -> tuple[float, Array | None]:
        """(ℓ/2)‖w‖² and ℓw: ℓ = ``l2``, or ℓ = αc/β with Bayesian regularisation (the MAP
        objective L + (ℓ/2)‖w‖² that the step minimises); (0, None) when ℓ = 0."""
        ell = self._ell()
        return (0.5 * ell * float(params @ params), ell * params) if ell else (0.0, None)

    def epoch_score(self, loss: float, params: Array) -> float | None:
        """Bayesian: −ln p(D | α, β) of the last accepted weights (``train`` keeps the epoch of
        the HIGHEST evidence, see the Notes of the class); +inf for other weights and before
        the first estimate (α = 0: an improper prior).  None (rank by the objective) otherwise.
        """
        if not self.bayesian:
            return None
        scored = self._scored
        if scored is not None and math.isfinite(scored[2]) and np.array_equal(scored[0], params):
            return -scored[2]
        return math.inf

    def run_epoch(self, problem: TrainingProblem, epoch: int) -> EpochStep:
        """One accepted step, or a failed epoch (weights unchanged) when μ exceeds mu_max."""
        if problem.batch_size < problem.n_samples:
            raise ValueError(
                f"`batch_size` must be None (full batch) for Levenberg–Marquardt; got "
                f"{problem.batch_size} for {problem.n_samples} samples."
            )
        if self._n_params != problem.net.n_params:
            self.reset(problem.net)
        if self.bayesian and self.evidence_ is None:
            self.evidence_ = Evidence.start(problem.net, problem.n_samples)
        w0 = problem.net.params.copy()
        system, loss0 = self._linearise(problem, w0)
        return self._search(problem, system, w0, loss0)

    # -- one epoch
    def _ell(self) -> float:
        return self.l2 if self.evidence_ is None else self.evidence_.ell

    def _use_dual(self, problem: TrainingProblem) -> bool:
        if self.dual is not None:
            return self.dual
        return problem.T.size < problem.net.n_params and self._dual_applies()

    def _linearise(self, problem: TrainingProblem, w: Array) -> tuple[_Primal | _Dual, float]:
        """The system at w (G and g built once per epoch) and the loss there."""
        net, ell = problem.net, self._ell()
        if self._use_dual(problem):
            d = gauss_newton_dual(net, problem.X, problem.T)
            e = None if self.damping == "levenberg" else 1.0 / self._diagonal(
                np.einsum("ij,ij->j", d.Js, d.Js))
            return _Dual(d.Js, d.rs, d.K, ell, w, e), float(d.loss)
        G, g = gauss_newton_upper(net, problem.X, problem.T, chunk_size=self.chunk_size)
        D = None if self.damping == "levenberg" else self._diagonal(np.diag(G).copy())
        return _Primal(G, g, ell, w, D), problem.loss()

    def _diagonal(self, diag_G: Array) -> Array:
        self._D = marquardt_diagonal(diag_G, self._D)
        return self._D

    def _search(self, problem: TrainingProblem, system: _Primal | _Dual, w0: Array,
                loss0: float) -> EpochStep:
        """Raise μ until a step lowers Φ = L + (ℓ/2)‖w‖²; accept it, or fail past mu_max."""
        ell = system.ell
        trial_loss = {}

        def objective(step: Array) -> float:
            trial = w0 + step.astype(w0.dtype, copy=False)
            trial_loss["value"] = loss = problem.loss(trial)
            return loss + 0.5 * ell * float(trial @ trial)

        found = damped_step_search(system.solve, objective, loss0 + 0.5 * ell * float(w0 @ w0),
                                   self.mu_, self.mu_dec, self.mu_inc, self.mu_max)
        if found.step is None:
            problem.net.params[:] = w0
            extras = {} if self.evidence_ is None else self.evidence_.extras()
            return EpochStep(loss=loss0, step=found.mu, extras=extras,
                             stop_reason=MU_MAX_REACHED)
        problem.net.params[:] = w0 + found.step.astype(w0.dtype, copy=False)
        self.mu_ = found.next_mu
        loss = trial_loss["value"]
        extras = self._reestimate(system, loss, problem.net.params)
        return EpochStep(loss=loss, step=found.mu, extras=extras,
                         stop_reason=self._evidence_stop())

    def _reestimate(self, system: _Primal | _Dual, loss: float, w: Array) -> dict[str, float]:
        """Bayesian: the log evidence of the new weights under the step's α, β; γ from the
        step's Gauss–Newton matrix, then α and β at the new weights."""
        ev = self.evidence_
        if ev is None:
            return {}
        if ev.started:
            out = system.gamma()
            ev.log_evidence = ev.evidence(loss, w, None if out is None else out[1])
            ev.update(None if out is None else out[0], loss, w)
        else:
            ev.first_estimate(loss, w)
            ev.log_evidence = ev.evidence(loss, w, system.logdet(ev.ell) if ev.ell > 0 else None)
        self._scored = (w.copy(), loss, ev.log_evidence)
        best, since = self._best_evidence
        if ev.log_evidence > best:  # False for NaN
            self._best_evidence = (ev.log_evidence, 0)
        elif math.isfinite(best):
            self._best_evidence = (best, since + 1)
        return ev.extras()

    def _evidence_stop(self) -> str | None:
        """EVIDENCE_STOPPED once ``evidence_patience`` epochs brought no higher evidence."""
        if self.evidence_ is None or self.evidence_patience is None \
                or self._best_evidence[1] < self.evidence_patience:
            return None
        return EVIDENCE_STOPPED


register_optimizer("lm", LevenbergMarquardt)
register_optimizer("trainbr", partial(LevenbergMarquardt, bayesian=True))
