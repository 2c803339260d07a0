"""Curvature against PyTorch's generic autodiff (torch.func.hessian, jacrev): the oracle tests.

The same network is rebuilt in torch from ``net.params`` in the documented order (layer by
layer, W row-major then b), so Jacobian columns and Hessian rows line up parameter for
parameter.
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import cascade, mlp
from deltaprop.curvature import (
    gauss_newton,
    hessian,
    hvp,
    jacobian_inputs,
    jacobian_params,
)

pytestmark = [
    pytest.mark.oracle,
    # torch.func.hessian (forward-over-reverse) imports torch's jvp decompositions, which call
    # the deprecated torch.jit.script once: torch's own warning, not ours.
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

CASES = [  # (hidden activation, output, loss)
    ("tanh", "identity", "mse"),
    ("softplus", "sigmoid", "sse"),
    ("elu", "sigmoid", "bce"),
    ("sigmoid", "softmax", "ce"),
    ("leaky_relu", "tanh", "mse"),
]


def torch_activations(torch):
    F = torch.nn.functional
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus, "elu": F.elu,
            "relu": torch.relu, "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
            "identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=-1)}


def _torch_functions(torch, net, X, T):
    """(logits(w, x), outputs(w, x), loss(w)) in torch, with w the flat parameter vector; the
    same graph as ``net`` (a chain, or the cascade's concatenated inputs)."""
    F = torch.nn.functional
    acts = torch_activations(torch)
    shapes = [(d.n_out, d.n_in) for d in net.dense_layers]
    names = [a.name for a in net.activations]

    def logits(w, x):
        off, states = 0, [x]
        for i, (n_out, n_in) in enumerate(shapes):
            W = w[off : off + n_out * n_in].reshape(n_out, n_in)
            b = w[off + n_out * n_in : off + n_out * (n_in + 1)]
            off += n_out * (n_in + 1)
            u = states[-1] if net.topology == "mlp" else torch.cat(states, dim=-1)
            z = u @ W.T + b
            states.append(acts[names[i]](z) if i < len(shapes) - 1 else z)
        return states[-1]

    def outputs(w, x):
        return acts[names[-1]](logits(w, x))

    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    n, k = T.shape

    def loss(w):
        if net.loss_name == "ce":
            return -(Tt * torch.log_softmax(logits(w, Xt), dim=-1)).sum() / n
        if net.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(logits(w, Xt), Tt, reduction="sum") / n
        sq = ((outputs(w, Xt) - Tt) ** 2).sum()
        return sq / 2 if net.loss_name == "sse" else sq / (n * k)

    return logits, outputs, loss


def _problem(rng, activation, output, loss, topology):
    build = mlp if topology == "mlp" else cascade
    net = build([3, 5, 4, 3], activation=activation, output=output, loss=loss, seed=1)
    net.params[:] += rng.normal(scale=0.1, size=net.n_params)
    X = rng.normal(size=(6, 3))
    if loss == "ce":
        T = np.eye(3)[rng.integers(0, 3, size=6)]
    elif loss == "bce":
        T = rng.uniform(size=(6, 3))
    else:
        T = rng.normal(size=(6, 3))
    return net, X, T


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
@pytest.mark.parametrize(("activation", "output", "loss"), CASES)
def test_hessian_and_hvp_match_torch_func_hessian(torch, activation, output, loss, topology,
                                                  rng):
    net, X, T = _problem(rng, activation, output, loss, topology)
    _, _, loss_fn = _torch_functions(torch, net, X, T)
    w = torch.from_numpy(net.params.copy())
    expected = torch.func.hessian(loss_fn)(w).numpy()
    H = hessian(net, X, T)
    np.testing.assert_allclose(H, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
    V = rng.normal(size=(net.n_params, 2))
    np.testing.assert_allclose(hvp(net, X, T, V), expected @ V, rtol=1e-10,
                               atol=1e-12 * np.abs(expected @ V).max())


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
@pytest.mark.parametrize(("activation", "output", "loss"), CASES)
def test_jacobians_match_torch_func_jacrev(torch, activation, output, loss, topology, rng):
    net, X, T = _problem(rng, activation, output, loss, topology)
    _, outputs, _ = _torch_functions(torch, net, X, T)
    w, x = torch.from_numpy(net.params.copy()), torch.from_numpy(X)
    per_sample_params = torch.func.vmap(torch.func.jacrev(outputs, argnums=0), in_dims=(None, 0))
    per_sample_inputs = torch.func.vmap(torch.func.jacrev(outputs, argnums=1), in_dims=(None, 0))
    np.testing.assert_allclose(jacobian_params(net, X), per_sample_params(w, x).numpy(),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jacobian_inputs(net, X), per_sample_inputs(w, x).numpy(),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
@pytest.mark.parametrize(("activation", "output", "loss"), CASES)
def test_gauss_newton_matches_torch_jacobian_products(torch, activation, output, loss, topology,
                                                      rng):
    """G = Σ_n J_nᵀ M_n J_n, J_n = ∂z_L/∂w by torch.func.jacrev; M_n the generalised
    Gauss–Newton output matrix from torch: ∂²ℓ/∂z² for the canonical cross-entropies,
    c (∂y/∂z)ᵀ(∂y/∂z) for squared errors (Schraudolph 2002)."""
    net, X, T = _problem(rng, activation, output, loss, topology)
    logits, _, loss_fn = _torch_functions(torch, net, X, T)
    w, x = torch.from_numpy(net.params.copy()), torch.from_numpy(X)
    J = torch.func.vmap(torch.func.jacrev(logits, argnums=0), in_dims=(None, 0))(w, x).numpy()
    z = logits(w, x).detach()
    n, k = T.shape
    if loss in ("bce", "ce"):
        def sample_loss(zn, tn):
            if loss == "ce":
                return -(tn * torch.log_softmax(zn, dim=-1)).sum() / n
            return torch.nn.functional.binary_cross_entropy_with_logits(zn, tn,
                                                                        reduction="sum") / n
        M = torch.func.vmap(torch.func.hessian(sample_loss))(z, torch.from_numpy(T)).numpy()
    else:
        act = torch_activations(torch)[output]
        Jy = torch.func.vmap(torch.func.jacrev(act))(z).numpy()
        c = 1.0 if loss == "sse" else 2.0 / (n * k)
        M = c * np.einsum("nkm,nkq->nmq", Jy, Jy)
    expected = np.einsum("nkp,nkm,nmq->pq", J, M, J)
    G, g = gauss_newton(net, X, T)
    np.testing.assert_allclose(G, expected, rtol=1e-10, atol=1e-13 * np.abs(expected).max())
    np.testing.assert_allclose(g, torch.func.grad(loss_fn)(w).numpy(), rtol=1e-10, atol=1e-14)
