"""Curvature: Jacobians and Hessians by backpropagation (Bishop & Bishop 2024 §8.1.5–8.1.6).

Everything here is built from the network's one primitive, the backward pass of per-sample
errors δ_l = ∂(·)/∂z_l, and from that pass differentiated once more:

* Jacobians (§8.1.5, PRML §5.3.4): backpropagating the K rows ∂y_k/∂z_L of every sample at
  once gives per-sample errors δ_l[n, k, :]; then ∂y_nk/∂W_l[i, j] = δ_l[n, k, i] a_{l-1}[n, j].
* Gauss–Newton (PRML §5.4.2, Schraudolph 2002): G = Σ_n J_nᵀ M_n J_n with J_n = ∂z_L/∂w and
  M_n the output Hessian of the loss (positive semi-definite for the four heads), accumulated
  by symmetric rank-k updates of the rows S_n J_n (M_n = S_nᵀ S_n), in the primal (P × P) or
  dual (N K × N K) form that the Levenberg–Marquardt step needs.
* Hessian–vector products (PRML §5.4.6, Pearlmutter 1994): the R-operator, a forward and a
  backward R-pass carrying k directions together.
* The exact Hessian (§8.1.6, PRML §5.4.5): the per-sample curvature C_l = ∂²L/∂z_l² is
  backpropagated to every layer and each block of layer pairs is one matrix product over the
  samples (about 2 N P² flops).
* Approximations (PRML §5.4.1–5.4.4): the diagonal (Becker & Le Cun 1989), the outer product and
  its sequential inverse (eq. 5.89), finite differences; spectra by Lanczos and Hutchinson
  (1990) on the R-operator without forming H.

Shapes: N samples, K = n_out outputs, P = ``net.n_params`` parameters in ``net.params`` order.

Examples
--------
>>> import numpy as np, deltaprop
>>> from deltaprop.curvature import gauss_newton, hessian, hvp, jacobian_params
>>> net = deltaprop.mlp([3, 4, 2], loss="sse", seed=0)
>>> rng = np.random.default_rng(0)
>>> X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
>>> net.n_params, jacobian_params(net, X).shape
(26, (5, 2, 26))
>>> H = hessian(net, X, T)
>>> H.shape, bool(np.allclose(H, H.T))
((26, 26), True)
>>> V = rng.normal(size=(26, 3))
>>> bool(np.allclose(hvp(net, X, T, V), H @ V))
True
>>> G, g = gauss_newton(net, X, T)
>>> G.shape, g.shape
((26, 26), (26,))

References
----------
Bishop & Bishop 2024, *Deep Learning*, §8.1.5–8.1.6; Bishop 2006 (PRML) §5.3.4, §5.4.1–5.4.6;
Pearlmutter 1994; Becker & Le Cun 1989; Hutchinson 1990; Schraudolph 2002.
"""

from ._checks import CurvatureCheck, check_hessian, check_jacobian, hessian_fd
from ._gauss_newton import (
    GaussNewtonDual,
    gauss_newton,
    gauss_newton_dual,
    gauss_newton_upper,
    inverse_hessian_outer,
)
from ._hessian import hessian, hessian_diagonal
from ._jacobians import jacobian_inputs, jacobian_params, residual_jacobian, vjp_inputs
from ._rop import gauss_newton_operator, hessian_operator, hvp
from ._spectra import hessian_eigenvalues, hessian_trace

__all__ = [
    "CurvatureCheck",
    "GaussNewtonDual",
    "check_hessian",
    "check_jacobian",
    "gauss_newton",
    "gauss_newton_dual",
    "gauss_newton_operator",
    "gauss_newton_upper",
    "hessian",
    "hessian_diagonal",
    "hessian_eigenvalues",
    "hessian_fd",
    "hessian_operator",
    "hessian_trace",
    "hvp",
    "inverse_hessian_outer",
    "jacobian_inputs",
    "jacobian_params",
    "residual_jacobian",
    "vjp_inputs",
]
