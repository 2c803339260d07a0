"""Layers: the affine map z = W u + b and element-wise activations a = h(z).

Every layer follows one protocol, with each backward rule beside its forward (Bishop & Bishop
2024 §8.1.2, §8.1.5; PRML §5.4.6 for the R-operator).  A layer keeps no per-call state: what a
pass needs (its input u, z, a) lives in the network's forward record, so one layer object
serves any number of concurrent calls.

Dense (parameters θ = (W, b), a slice of the network's flat vector):

=====================================  ==========================================================
``forward(u)``                          z = u Wᵀ + b                         (N, n_out)
``vjp(G)``                              ∂(·)/∂u = G W for G (N, ..., n_out)   (N, ..., n_in)
``param_grad(u, G, out)``               Σ_n ∂(·)/∂θ: Gᵀu, Σ_n G  into out (..., P_l)
``param_rows(u, G, out)``               per-sample rows G_n ⊗ u_n, G_n  into out (N, m, P_l)
``tangent(u, V, u_dot)``                R{z} = u V_Wᵀ + V_b + R{u} Wᵀ for directions V (k, P_l)
``tangent_vjp(G, RG, V)``               R{G W} = G V_W + R{G} W                (N, k, n_in)
``tangent_param_grad(u, G, RG, u_dot)``  R{Σ Gᵀu} = Σ R{G}ᵀ u + Gᵀ R{u}; R{Σ G}
``features(u)``                          [u, 1]: ∂z_i/∂θ_(i, j) = features_j (the Hessian's blocks)
=====================================  ==========================================================

Activation wraps an activation object of :mod:`deltaprop.activations`, which owns h, h', h'',
its VJP/JVP and whether h'' ≡ 0.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int
from .activations import OutputFunction, get_output_activation
from .kernels import augment, matmul_add, rows_matmul

Array = np.ndarray

INITS = ("glorot", "he", "zeros")


class ParametricLayer:
    """The protocol of a layer with parameters (see the module table); Dense is the one built in.

    A subclass sets ``n_in``, ``n_out``, ``n_params`` and implements ``bind``, ``split``,
    ``forward``, ``vjp``, ``param_grad``, ``param_rows``, ``tangent``, ``tangent_vjp`` and
    ``tangent_param_grad``; :class:`~deltaprop.network.Network` then gives it gradients,
    Jacobians, Gauss–Newton products and Hessian–vector products.  The structured exact Hessian
    also needs ``features`` (z_i = Σ_j θ_(i, j) features_j with ``split``'s (W, b) layout).
    """

    n_in: int
    n_out: int
    n_params: int
    dtype: np.dtype

    def bind(self, params: Array) -> None:
        """Make the layer's parameters views into a flat vector of length ``n_params``."""
        raise NotImplementedError

    def split(self, rows: Array) -> tuple[Array, Array]:
        """Views of the last axis of ``rows`` (..., n_params) as (weights, biases)."""
        raise NotImplementedError

    def flat(self) -> Array:
        """The layer's current parameters as one vector in ``split``'s order (a copy)."""
        raise NotImplementedError


class Dense(ParametricLayer):
    """Fully connected layer Z = U Wᵀ + b for a batch of rows U (N, n_in).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    init : {"glorot", "he", "zeros"}
        Weight initialisation: Glorot/Xavier uniform U(±√(6/(n_in+n_out))) (for tanh and
        sigmoid units), He normal N(0, 2/n_in) (for relu units) or zeros. Biases start at 0.
    rng : numpy.random.Generator, optional
        Source of the initial weights.
    dtype : numpy dtype
        float64 or float32.

    Attributes
    ----------
    W : ndarray (n_out, n_in)
        Weights, a view into the network's flat parameter vector once the layer is in one.
    b : ndarray (n_out,)
        Biases, likewise a view.

    References
    ----------
    Bishop & Bishop 2024 §6.2 (eq. 6.19), §7.2.5 (initialisation), §8.1.2 (eq. 8.13–8.15);
    PRML §5.4.6 (R-operator); Glorot & Bengio 2010; He et al. 2015.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        init: str = "glorot",
        rng: np.random.Generator | None = None,
        dtype: np.dtype | type = np.float64,
    ):
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.n_params = self.n_out * self.n_in + self.n_out
        self.bind(np.zeros(self.n_params, dtype=dtype))
        self.initialise(init, np.random.default_rng() if rng is None else rng)
        self._ones = np.ones(0, dtype=dtype)

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    def bind(self, params: Array) -> None:
        """Make W and b views into a flat vector of length ``n_params`` (W row-major, then b)."""
        self.W, self.b = self.split(params)

    def flat(self) -> Array:
        """[W row-major, b] as one new vector."""
        return np.concatenate([self.W.ravel(), self.b])

    def split(self, rows: Array) -> tuple[Array, Array]:
        """Views of the last axis of ``rows`` (..., n_params) as (W (..., n_out, n_in), b)."""
        n_w = self.n_out * self.n_in
        if rows.ndim == 1:  # the hot path of every gradient: plain slices
            return rows[:n_w].reshape(self.n_out, self.n_in), rows[n_w:]
        if rows.ndim == 2:  # directions (k, P): the last axis is contiguous, so a view
            return rows[:, :n_w].reshape(rows.shape[0], self.n_out, self.n_in), rows[:, n_w:]
        lead = rows.shape[:-1]
        w = np.reshape(rows[..., :n_w], (*lead, self.n_out, self.n_in), copy=False)
        return w, rows[..., n_w:]

    def initialise(self, init: str, rng: np.random.Generator) -> None:
        """Draw W by the named scheme and set b to zero."""
        if init == "glorot":
            limit = np.sqrt(6.0 / (self.n_in + self.n_out))
            self.W[...] = rng.uniform(-limit, limit, size=self.W.shape)
        elif init == "he":
            self.W[...] = rng.normal(0.0, np.sqrt(2.0 / self.n_in), size=self.W.shape)
        elif init == "zeros":
            self.W[...] = 0
        else:
            known = ", ".join(repr(k) for k in INITS)
            raise ValueError(f"`init` must be one of {known}; got {init!r}.")
        self.b[...] = 0

    # ------------------------------------------------------------------ first order
    def forward(self, U: Array) -> Array:
        """Z = U Wᵀ + b (N, n_out)."""
        Z = U @ self.W.T
        Z += self.b
        return Z

    def vjp(self, G: Array) -> Array:
        """∂(·)/∂U = G W for G = ∂(·)/∂Z of shape (N, n_out) or (N, m, n_out) (eq. 8.13)."""
        return G @ self.W if G.ndim == 2 else rows_matmul(G, self.W)

    def param_grad(self, U: Array, G: Array, out: Array) -> None:
        """Write Σ_n ∂(·)/∂θ into ``out``: ∂W = Gᵀ U, ∂b = Σ_n G (eq. 8.14–8.15).

        G (N, n_out) with out (n_params,), or G (N, m, n_out) (m rows per sample, a batched VJP)
        with out (m, n_params).
        """
        if G.ndim == 2:  # the hot path of every gradient
            n_w = self.n_out * self.n_in
            np.matmul(G.T, U, out=out[:n_w].reshape(self.n_out, self.n_in))
            np.matmul(self._column_of_ones(G.shape[0]), G, out=out[n_w:])
            return
        w, b = self.split(out)
        n = G.shape[0]
        w[...] = (G.reshape(n, -1).T @ U).reshape(w.shape)
        b[...] = G.sum(axis=0)

    def param_rows(self, U: Array, G: Array, out: Array) -> None:
        """Per-sample parameter rows into out (N, m, n_params) from G (N, m, n_out):
        ∂/∂W[i, j] = G[n, r, i] U[n, j], ∂/∂b[i] = G[n, r, i] (Bishop & Bishop 2024 §8.1.5)."""
        w, b = self.split(out)
        np.multiply(G[:, :, :, None], U[:, None, None, :], out=w)
        b[...] = G

    def _column_of_ones(self, n: int) -> Array:
        """A vector of n ones: Σ_n G as 1ᵀG is a fast BLAS call for small batches."""
        ones = self._ones
        if ones.shape[0] != n:
            ones = np.ones(n, dtype=self.W.dtype)
            self._ones = ones
        return ones

    def features(self, U: Array) -> Array:
        """[U, 1] (N, n_in + 1): ∂z_i/∂W[i, j] = U[:, j] and ∂z_i/∂b[i] = 1."""
        return augment(U)

    # ------------------------------------------------------------------ R-operator
    def tangent(self, U: Array, V: Array, U_dot: Array | None) -> Array:
        """R{z} (N, k, n_out) for directions V (k, n_params) of this layer's parameters.

        R{z} = U V_Wᵀ + V_b + R{U} Wᵀ, with R{U} = ``U_dot`` (N, k, n_in) (None: the input does
        not depend on the parameters, e.g. the network's input).
        """
        VW, Vb = self.split(V)
        n, k = U.shape[0], V.shape[0]
        rz = U @ VW.transpose(2, 0, 1).reshape(self.n_in, k * self.n_out)
        if U_dot is not None:
            matmul_add(U_dot.reshape(n * k, self.n_in), self.W.T, rz.reshape(n * k, self.n_out))
        rz = rz.reshape(n, k, self.n_out)
        rz += Vb
        return rz

    def tangent_vjp(self, G: Array, RG: Array, V: Array) -> Array:
        """R{G W} = G V_W + R{G} W (N, k, n_in) for G (N, n_out), R{G} (N, k, n_out)."""
        n, k = RG.shape[:2]
        out = rows_matmul(RG, self.W)
        VW = self.split(V)[0].swapaxes(0, 1).reshape(self.n_out, k * self.n_in)
        matmul_add(G, VW, out.reshape(n, k * self.n_in))
        return out

    def tangent_param_grad(self, U: Array, G: Array, RG: Array, U_dot: Array | None,
                           out: Array) -> None:
        """R{Σ_n ∂(·)/∂θ} into out (k, n_params): R{∂W} = Σ_n R{G}ᵀ U + Gᵀ R{U}, R{∂b} = Σ R{G}."""
        w, b = self.split(out)
        n, k, n_out = RG.shape
        if k == 1:  # w[0] is contiguous: accumulate in place
            np.matmul(RG.reshape(n, n_out).T, U, out=w[0])
            if U_dot is not None:
                matmul_add(G.T, U_dot.reshape(n, -1), w[0])
        else:
            w[...] = (RG.reshape(n, k * n_out).T @ U).reshape(k, n_out, -1)
            if U_dot is not None:
                w += (G.T @ U_dot.reshape(n, -1)).reshape(n_out, k, -1).swapaxes(0, 1)
        b[...] = RG.sum(axis=0)

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


class Activation:
    """Parameter-free activation layer a = h(z): an element-wise activation or the softmax.

    Parameters
    ----------
    name : str
        One of ``deltaprop.activations.ACTIVATIONS`` or "softmax".

    Attributes
    ----------
    function : OutputFunction
        The activation object (h, h', h'', VJP, JVP; see :mod:`deltaprop.activations`).
    """

    def __init__(self, name: str):
        self.function: OutputFunction = get_output_activation(name, where="activation")
        self.name = self.function.name

    def forward(self, Z: Array) -> Array:
        """a = h(z)."""
        return self.function.f(Z)

    def vjp(self, Z: Array, A: Array, G: Array) -> Array:
        """∂(·)/∂z = ∂(·)/∂a ⊙ h'(z) (for softmax y ⊙ (g − Σ_k g_k y_k)), any rows per sample."""
        return self.function.vjp(Z, A, G)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"
