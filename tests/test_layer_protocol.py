"""The layer protocol is real: a new layer type written here, in one class, gets gradients,
Jacobians, Gauss–Newton and Hessian–vector products from the network without any change to
deltaprop (docs/design.md, "Adding a layer type").

``Scale`` is a diagonal affine layer z = w ⊙ u + b (n_out = n_in): not a Dense layer, so the
network can only work through the protocol's methods.
"""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop
from deltaprop import Activation, Dense, Network
from deltaprop.activations import per_sample
from deltaprop.curvature import (
    check_jacobian,
    gauss_newton,
    gauss_newton_operator,
    hessian,
    hessian_diagonal,
    hessian_fd,
    hessian_operator,
    hvp,
)
from deltaprop.gradcheck import check_gradient
from deltaprop.layers import ParametricLayer


class Scale(ParametricLayer):
    """z = w ⊙ u + b: parameters [w (n,), b (n,)]."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n_in = self.n_out = n
        self.n_params = 2 * n
        self.dtype = np.dtype(np.float64)
        self.bind(np.concatenate([rng.uniform(0.5, 1.5, n), rng.normal(size=n)]))

    def bind(self, params):
        self.w, self.b = self.split(params)

    def split(self, rows):
        return rows[..., : self.n_in], rows[..., self.n_in :]

    def flat(self):
        return np.concatenate([self.w, self.b])

    def forward(self, U):
        return U * self.w + self.b

    def vjp(self, G):
        return G * self.w

    def param_grad(self, U, G, out):
        w, b = self.split(out)
        w[...] = (G * per_sample(U, G)).sum(axis=0)
        b[...] = G.sum(axis=0)

    def param_rows(self, U, G, out):
        w, b = self.split(out)
        w[...] = G * U[:, None, :]
        b[...] = G

    def tangent(self, U, V, U_dot):
        Vw, Vb = self.split(V)
        rz = U[:, None, :] * Vw + Vb
        return rz if U_dot is None else rz + U_dot * self.w

    def tangent_vjp(self, G, RG, V):
        return G[:, None, :] * self.split(V)[0] + RG * self.w

    def tangent_param_grad(self, U, G, RG, U_dot, out):
        w, b = self.split(out)
        w[...] = (RG * U[:, None, :]).sum(axis=0)
        if U_dot is not None:
            w += (G[:, None, :] * U_dot).sum(axis=0)
        b[...] = RG.sum(axis=0)


def _network(rng, topology="mlp"):
    width = 4 if topology == "mlp" else 3 + 4  # the cascade's Scale reads [x, a_1]
    last = width if topology == "mlp" else 3 + 4 + width
    layers = [Dense(3, 4, rng=rng), Activation("tanh"), Scale(width, rng),
              Activation("softplus"), Dense(last, 2, rng=rng)]
    net = Network(layers, loss="sse", topology=topology)
    X, T = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    return net, X, T


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
def test_a_new_layer_type_gets_every_first_and_second_order_product(topology, rng):
    net, X, T = _network(rng, topology)
    width = 4 if topology == "mlp" else 7
    last = width if topology == "mlp" else 7 + width
    assert net.n_params == 3 * 4 + 4 + 2 * width + last * 2 + 2
    assert net.describe_param(16) == "layer 1 W[0]"  # the Scale layer's first weight
    assert check_gradient(net, X, T).max_rel_error < 1e-8
    for wrt in ("params", "inputs"):
        assert check_jacobian(net, X, wrt=wrt).max_rel_error < 1e-7
    H = hessian_fd(net, X, T)
    V = rng.normal(size=(net.n_params, 3))
    np.testing.assert_allclose(hvp(net, X, T, V), H @ V, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hessian_operator(net, X, T) @ V, H @ V, rtol=1e-6, atol=1e-7)
    G, g = gauss_newton(net, X, T)
    np.testing.assert_allclose(g, net.gradient(X, T)[1], rtol=1e-12)
    np.testing.assert_allclose(gauss_newton_operator(net, X, T) @ V, G @ V, rtol=1e-10)
    # copies and pickles keep the one-vector invariant for it too
    import pickle

    for clone in (net.copy(), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(clone.gradient(X, T)[1], net.gradient(X, T)[1])
        clone.params[16] += 1.0
        assert clone.dense_layers[1].w[0] == net.dense_layers[1].w[0] + 1.0
    # Levenberg–Marquardt trains it like any network
    start = net.loss(X, T)
    history = deltaprop.train(net, X, T, "lm", epochs=20)
    assert history.loss[-1] < 0.5 * start


def test_the_structured_hessian_names_what_it_cannot_assemble(rng):
    net, X, T = _network(rng)
    with pytest.raises(NotImplementedError, match=r"Dense layers only.*\['Scale'\].*"
                                                  r"hessian_operator"):
        hessian(net, X, T)
    with pytest.raises(NotImplementedError, match="Dense layers only"):
        hessian_diagonal(net, X, T)
    assert hessian_diagonal(net, X, T, method="hutchinson", n_samples=4, seed=0).shape == (
        net.n_params,)
    with pytest.raises(ValueError, match="model files hold Dense layers only"):
        deltaprop.save_model("unused.npz", net)
