"""Layers: the affine map z = W a + b and element-wise activations a = h(z).

Each layer's ``backward(grad_out)`` takes ANY upstream gradient ∂L/∂(output) and returns the
gradient with respect to its input; a Dense layer also writes its parameter gradient.  A
network's backward pass is therefore a vector–Jacobian product, and Jacobians, Gauss–Newton
products and the Levenberg–Marquardt step are compositions of it (Bishop & Bishop 2024 §8.1.2,
§8.1.5).  Each backward rule sits beside its forward.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int
from .activations import ElementWise, get_activation, softmax

Array = np.ndarray

INITS = ("glorot", "he", "zeros")


class Dense:
    """Fully connected layer Z = A Wᵀ + b for a batch of rows A (N, n_in).

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
    gW, gb : ndarray
        Gradients of the last ``backward``, views into the flat gradient vector.

    References
    ----------
    Bishop & Bishop 2024 §6.2 (eq. 6.19), §7.2.5 (initialisation); Glorot & Bengio 2010;
    He et al. 2015.
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
        params = np.zeros(self.n_params, dtype=dtype)
        self.bind(params, np.zeros_like(params))
        self.initialise(init, np.random.default_rng() if rng is None else rng)
        self.A: Array | None = None
        self._ones = np.ones(0, dtype=dtype)

    def bind(self, params: Array, grad: Array) -> None:
        """Make W, b (and gW, gb) views into slices of flat vectors of length ``n_params``."""
        n_w = self.n_out * self.n_in
        self.W = params[:n_w].reshape(self.n_out, self.n_in)
        self.b = params[n_w:]
        self.gW = grad[:n_w].reshape(self.n_out, self.n_in)
        self.gb = grad[n_w:]

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

    def forward(self, A: Array) -> Array:
        """Z = A Wᵀ + b (N, n_out); caches A for ``backward``."""
        self.A = A
        Z = A @ self.W.T
        Z += self.b
        return Z

    def backward(self, G: Array, input_grad: bool = True) -> Array | None:
        """Write ∂L/∂W = Gᵀ A and ∂L/∂b = Σ_n G; return G W (N, n_in) if ``input_grad``.

        G is ∂L/∂Z (N, n_out), i.e. the δ of this layer (eq. 8.13–8.15).
        """
        np.matmul(G.T, self.A, out=self.gW)
        np.matmul(self._column_of_ones(G.shape[0]), G, out=self.gb)
        return G @ self.W if input_grad else None

    def _column_of_ones(self, n: int) -> Array:
        """A cached vector of n ones: Σ_n G as 1ᵀG is a fast BLAS call for small batches."""
        if self._ones.shape[0] != n:
            self._ones = np.ones(n, dtype=self.W.dtype)
        return self._ones

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


class Activation:
    """Parameter-free element-wise activation layer a = h(z), or a row-wise softmax.

    Parameters
    ----------
    name : str
        One of ``deltaprop.activations.ACTIVATIONS`` or "softmax".
    """

    def __init__(self, name: str):
        self.name = name
        self.fn: ElementWise | None = None if name == "softmax" else get_activation(name)
        self.Z: Array | None = None
        self.A: Array | None = None

    def forward(self, Z: Array) -> Array:
        """a = h(z); caches z and a."""
        self.Z = Z
        self.A = softmax(Z) if self.fn is None else self.fn.f(Z)
        return self.A

    def backward(self, G: Array) -> Array:
        """∂L/∂z = ∂L/∂a ⊙ h'(z); for softmax y ⊙ (g − Σ_k g_k y_k)."""
        if self.fn is None:
            return self.A * (G - (G * self.A).sum(axis=1, keepdims=True))
        return G * self.fn.df(self.Z, self.A)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"
