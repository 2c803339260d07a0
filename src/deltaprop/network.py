"""Feed-forward networks on one flat parameter vector, trained by backpropagation.

Forward propagation (Bishop & Bishop 2024 §8.1.2, eq. 8.5–8.6) for layers l = 1..L::

    z_l = W_l a_{l-1} + b_l,    a_l = h_l(z_l),    a_0 = x,    y = a_L

and backpropagation of the errors δ_l = ∂L/∂z_l (eq. 8.12–8.13)::

    δ_L = ∂L/∂z_L                      (= c (y − t) for the canonical loss/output pairs)
    δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ h_l'(z_l)
    ∂L/∂W_l = Σ_n δ_l a_{l-1}ᵀ,        ∂L/∂b_l = Σ_n δ_l

All weights and biases live in ONE contiguous vector ``params`` (layer by layer, W row-major
then b: the order of ``torch.nn.Linear.parameters()``); each layer's W and b are views into it,
and gradients live in one flat vector ``grad`` the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ._validation import check_dtype, check_inputs, check_targets
from .activations import OUTPUT_ACTIVATIONS, get_activation
from .layers import Activation, Dense
from .losses import Head, make_head

Array = np.ndarray

#: Activations initialised with He's scheme; all others use Glorot's.
HE_ACTIVATIONS = ("relu", "leaky_relu", "elu")


def _split_layers(layers: Sequence[object]) -> tuple[list[Dense], list[Activation]]:
    """Group layers as Dense followed by an optional activation (identity when absent)."""
    dense: list[Dense] = []
    acts: list[Activation] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            if dense and len(acts) < len(dense):
                acts.append(Activation("identity"))
            if dense and dense[-1].n_out != layer.n_in:
                raise ValueError(
                    f"`layers[{i}]` expects {layer.n_in} inputs but the previous Dense layer "
                    f"has {dense[-1].n_out} outputs."
                )
            dense.append(layer)
        elif isinstance(layer, Activation):
            if len(acts) == len(dense):
                raise ValueError(f"`layers[{i}]` is an activation that follows no Dense layer.")
            acts.append(layer)
        else:
            raise ValueError(f"`layers[{i}]` must be a Dense or an Activation; got {layer!r}.")
    if not dense:
        raise ValueError("`layers` must contain at least one Dense layer.")
    if len(acts) < len(dense):
        acts.append(Activation("identity"))
    return dense, acts


class Network:
    """A feed-forward network with a loss, its parameters in one flat vector.

    Parameters
    ----------
    layers : sequence of Dense and Activation
        Each Dense may be followed by one activation (identity when omitted); hidden
        activations are element-wise, the output one element-wise or "softmax".
    loss : {"sse", "mse", "bce", "ce"}
        See ../shared/DESIGN.md; "bce" needs a sigmoid output, "ce" a softmax output.

    Attributes
    ----------
    params : ndarray (P,)
        All parameters; each Dense layer's W and b are views into it.
    grad : ndarray (P,)
        Gradient written by the last backward pass (same layout).
    dense_layers : list of Dense
    activations : list of Activation
        ``activations[l]`` follows ``dense_layers[l]``; the last one is the output activation.
    head : Head
        The output activation fused with the loss.

    Examples
    --------
    >>> import numpy as np, deltaprop
    >>> net = deltaprop.mlp([2, 3, 1], seed=0)
    >>> net.n_params
    13
    >>> loss, grad = net.gradient(np.zeros((4, 2)), np.ones((4, 1)))
    >>> grad.shape
    (13,)
    """

    def __init__(self, layers: Sequence[Dense | Activation], loss: str = "mse"):
        dense, acts = _split_layers(list(layers))
        dtypes = {layer.W.dtype for layer in dense}
        if len(dtypes) != 1:
            raise ValueError(f"`layers` mix dtypes {sorted(map(str, dtypes))}; use one dtype.")
        for i, act in enumerate(acts[:-1]):
            if act.fn is None:
                raise ValueError(f"hidden activation {i} is softmax; only the output may be.")
        self.dtype = check_dtype(dtypes.pop())
        self.dense_layers = dense
        self.activations = acts
        self.layers = list(layers)
        self.head: Head = make_head(loss, acts[-1].name, acts[-1].fn)
        self.loss_name = loss
        self.n_params = sum(layer.n_params for layer in dense)
        self.params = np.empty(self.n_params, dtype=self.dtype)
        self.grad = np.zeros(self.n_params, dtype=self.dtype)
        self._bind_layers()

    def _bind_layers(self) -> None:
        """Copy each layer's parameters into the flat vector and make them views of it."""
        offset = 0
        for layer in self.dense_layers:
            stop = offset + layer.n_params
            self.params[offset : offset + layer.W.size] = layer.W.ravel()
            self.params[offset + layer.W.size : stop] = layer.b
            layer.bind(self.params[offset:stop], self.grad[offset:stop])
            offset = stop

    # ------------------------------------------------------------------ description
    @property
    def n_inputs(self) -> int:
        """Width of the input layer."""
        return self.dense_layers[0].n_in

    @property
    def n_outputs(self) -> int:
        """Width of the output layer."""
        return self.dense_layers[-1].n_out

    @property
    def sizes(self) -> list[int]:
        """Layer widths [n_in, hidden..., n_out]."""
        return [self.n_inputs] + [layer.n_out for layer in self.dense_layers]

    @property
    def activation_names(self) -> list[str]:
        """Names of the activations after each Dense layer (the last is the output's)."""
        return [act.name for act in self.activations]

    def param_slices(self) -> list[tuple[slice, slice]]:
        """For each Dense layer, the slices of ``params`` holding its W and its b."""
        slices, offset = [], 0
        for layer in self.dense_layers:
            n_w = layer.W.size
            stop = offset + layer.n_params
            slices.append((slice(offset, offset + n_w), slice(offset + n_w, stop)))
            offset += layer.n_params
        return slices

    def describe_param(self, index: int) -> str:
        """Name parameter ``index`` of the flat vector, e.g. ``"layer 1 W[2, 0]"``."""
        for l, (w_slice, b_slice) in enumerate(self.param_slices()):
            layer = self.dense_layers[l]
            if w_slice.start <= index < w_slice.stop:
                i, j = divmod(index - w_slice.start, layer.n_in)
                return f"layer {l} W[{i}, {j}]"
            if b_slice.start <= index < b_slice.stop:
                return f"layer {l} b[{index - b_slice.start}]"
        raise IndexError(f"parameter index {index} out of range for P = {self.n_params}.")

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        acts = ", ".join(self.activation_names)
        return f"Network({sizes}, activations=[{acts}], loss={self.loss_name!r}, P={self.n_params})"

    def copy(self, dtype: np.dtype | type | None = None) -> Network:
        """A deep copy with its own parameter vector, optionally cast to another dtype."""
        dt = self.dtype if dtype is None else check_dtype(dtype)
        layers: list[Dense | Activation] = []
        for dense, act in zip(self.dense_layers, self.activations, strict=True):
            layers += [Dense(dense.n_in, dense.n_out, init="zeros", dtype=dt),
                       Activation(act.name)]
        clone = Network(layers, self.loss_name)
        clone.params[:] = self.params
        return clone

    # ------------------------------------------------------------------ validation
    def check_inputs(self, X: object, name: str = "X") -> Array:
        """Validate X (N, n_in) and return it as a contiguous array of the network's dtype."""
        return check_inputs(X, self.n_inputs, self.dtype, name)

    def check_targets(self, T: object, n_samples: int, name: str = "T") -> Array:
        """Validate targets for this network's loss and return them as (N, n_out)."""
        return check_targets(T, self.loss_name, self.n_outputs, n_samples, self.dtype, name)

    def _check_data(self, X: object, T: object) -> tuple[Array, Array]:
        X = self.check_inputs(X)
        return X, self.check_targets(T, X.shape[0])

    # ------------------------------------------------------------------ forward
    def forward_logits(self, X: Array) -> Array:
        """Forward pass up to the output pre-activation z_L (N, n_out), caching every layer.

        X must already be validated (see ``check_inputs``).
        """
        A = X
        for dense, act in zip(self.dense_layers[:-1], self.activations[:-1], strict=True):
            A = act.forward(dense.forward(A))
        return self.dense_layers[-1].forward(A)

    def _forward_head(self, X: Array) -> tuple[Array, Array]:
        z = self.forward_logits(X)
        y = self.activations[-1].forward(z)
        return z, y

    def forward(self, X: object) -> Array:
        """Network outputs y (N, n_out) after the output activation."""
        return self._forward_head(self.check_inputs(X))[1]

    def loss(self, X: object, T: object) -> float:
        """Loss L(X, T) as defined in ../shared/DESIGN.md."""
        X, T = self._check_data(X, T)
        z, y = self._forward_head(X)
        return self.head.value(z, y, T)

    # ------------------------------------------------------------------ backward
    def backward_from_logits(self, delta: Array, input_grad: bool = False) -> Array | None:
        """Backpropagate δ_L = ∂L/∂z_L (N, n_out) through the cached forward pass.

        Writes ∂L/∂params into ``self.grad`` and returns ∂L/∂X (N, n_in) if ``input_grad``.
        This is the vector–Jacobian product of the map params, X -> z_L.
        """
        G = delta
        for l in range(len(self.dense_layers) - 1, 0, -1):
            G = self.dense_layers[l].backward(G)
            G = self.activations[l - 1].backward(G)
        return self.dense_layers[0].backward(G, input_grad=input_grad)

    def backward(self, grad_output: Array) -> Array:
        """Vector–Jacobian product through the last forward pass.

        Parameters
        ----------
        grad_output : ndarray (N, n_out)
            Any upstream gradient ∂L/∂y with respect to the network outputs.

        Returns
        -------
        ndarray (N, n_in)
            ∂L/∂X; ∂L/∂params is written into ``self.grad``.
        """
        out = self.activations[-1]
        grad_output = np.asarray(grad_output, dtype=self.dtype)
        if out.A is None or grad_output.shape != out.A.shape:
            shape = None if out.A is None else out.A.shape
            raise ValueError(
                f"`grad_output` must match the last forward output of shape {shape}; got "
                f"{np.shape(grad_output)}."
            )
        return self.backward_from_logits(out.backward(grad_output), input_grad=True)

    def gradient(self, X: object, T: object) -> tuple[float, Array]:
        """Loss and its gradient with respect to ``params`` by backpropagation.

        Parameters
        ----------
        X : array_like (N, n_in)
        T : array_like (N, n_out), or (N,) for one output or integer labels with "ce"

        Returns
        -------
        loss : float
        grad : ndarray (P,)
            A new array in ``params`` order.

        References
        ----------
        Bishop & Bishop 2024 §8.1.2 (eq. 8.12–8.15).
        """
        X, T = self._check_data(X, T)
        z, y = self._forward_head(X)
        value, delta = self.head.value_and_delta(z, y, T)
        self.backward_from_logits(delta)
        return value, self.grad.copy()

    def input_gradient(self, X: object, T: object) -> Array:
        """∂L/∂X (N, n_in), by the same backward pass (Bishop & Bishop 2024 §8.1.5)."""
        X, T = self._check_data(X, T)
        z, y = self._forward_head(X)
        return self.backward_from_logits(self.head.delta(z, y, T), input_grad=True)


def _check_sizes(sizes: object) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ValueError(f"`sizes` must be a sequence of layer widths; got {sizes!r}.")
    if len(sizes) < 2:
        raise ValueError(
            f"`sizes` needs at least two entries [n_in, ..., n_out]; got {list(sizes)}."
        )
    for i, width in enumerate(sizes):
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"`sizes[{i}]` must be a positive integer; got {width!r}.")
    return [int(w) for w in sizes]


def mlp(
    sizes: Sequence[int],
    activation: str = "tanh",
    output: str = "identity",
    loss: str = "mse",
    seed: int | np.random.Generator | None = None,
    dtype: np.dtype | type = np.float64,
) -> Network:
    """Build a multilayer perceptron.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths [n_in, hidden..., n_out], at least two entries, all positive.
    activation : str
        Hidden activation: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus",
        "elu".  Weights use He initialisation for relu, leaky_relu and elu, Glorot otherwise.
    output : str
        Output activation: "identity", "sigmoid", "softmax" (or any hidden activation).
    loss : {"sse", "mse", "bce", "ce"}
    seed : int or numpy.random.Generator, optional
        Seed of the initial weights.
    dtype : numpy.float64 or numpy.float32

    Returns
    -------
    Network

    Examples
    --------
    >>> import deltaprop
    >>> deltaprop.mlp([1, 10, 1], seed=0)
    Network(1-10-1, activations=[tanh, identity], loss='mse', P=31)
    """
    widths = _check_sizes(sizes)
    get_activation(activation, where="activation")
    if output not in OUTPUT_ACTIVATIONS:
        known = ", ".join(repr(k) for k in OUTPUT_ACTIVATIONS)
        raise ValueError(f"`output` must be one of {known}; got {output!r}.")
    dt = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    init = "he" if activation in HE_ACTIVATIONS else "glorot"
    layers: list[Dense | Activation] = []
    for l, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        last = l == len(widths) - 2
        layers.append(Dense(n_in, n_out, init="glorot" if last else init, rng=rng, dtype=dt))
        layers.append(Activation(output if last else activation))
    return Network(layers, loss)
