"""Feed-forward networks on one flat parameter vector, trained by backpropagation.

Forward propagation (Bishop & Bishop 2024 §8.1.2, eq. 8.5–8.6) for Dense layers l = 1..L::

    z_l = W_l u_l + b_l,    a_l = h_l(z_l),    y = a_L

where the input u_l of layer l is a_{l-1} (a_0 = x) for a multilayer perceptron ("mlp"), or the
concatenation [x, a_1, …, a_{l-1}] for a cascade-forward network ("cascade", MATLAB's
``cascadeforwardnet``).  Backpropagation of the errors δ_l = ∂L/∂z_l (eq. 8.12–8.13) runs over
the same graph in reverse (the chapter derives it for a GENERAL feed-forward topology)::

    δ_L = ∂L/∂z_L                      (= c (y − t) for the canonical loss/output pairs)
    ∂L/∂a_l = Σ_{k reads a_l} W_k[:, cols(a_l)]ᵀ δ_k,      δ_l = ∂L/∂a_l ⊙ h_l'(z_l)
    ∂L/∂W_l = Σ_n δ_l u_lᵀ,            ∂L/∂b_l = Σ_n δ_l

All weights and biases live in ONE contiguous vector ``params`` (layer by layer, W row-major
then b: the order of ``torch.nn.Linear.parameters()``); each layer's W and b are views into it.

Every pass is explicit: :meth:`Network.propagate` returns a :class:`ForwardRecord` of one
forward pass, and the backward primitives (:meth:`Network.backward_deltas`,
:meth:`Network.param_grad`, :meth:`Network.param_rows`, :meth:`Network.tangent`,
:meth:`Network.tangent_backward`) read it; nothing about a call is stored in the shared layer
objects, so concurrent calls on one network are safe.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_choice, check_dtype, check_inputs, check_targets
from .activations import OUTPUT_ACTIVATIONS, OutputFunction, get_activation
from .layers import Activation, Dense, ParametricLayer
from .losses import Head, make_head

Array = np.ndarray

#: Activations initialised with He's scheme; all others use Glorot's.
HE_ACTIVATIONS = ("relu", "leaky_relu", "elu")
#: Topologies: a chain of layers, or MATLAB's cascade-forward network.
TOPOLOGIES = ("mlp", "cascade")


def _split_layers(layers: Sequence[object]) -> tuple[list[Dense], list[Activation], list[int]]:
    """Group layers as parametric layers (Dense) each followed by an optional activation
    (identity when absent); also the position of each parametric layer in ``layers``."""
    dense: list[ParametricLayer] = []
    where: list[int] = []
    acts: list[Activation] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, ParametricLayer):
            if dense and len(acts) < len(dense):
                acts.append(Activation("identity"))
            dense.append(layer)
            where.append(i)
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
    return dense, acts, where


def _sources(topology: str, n_layers: int) -> list[tuple[int, ...]]:
    """For each Dense layer, the states its input concatenates (0 = x, s = a_s)."""
    if topology == "mlp":
        return [(l,) for l in range(n_layers)]
    return [tuple(range(l + 1)) for l in range(n_layers)]


def _check_widths(dense: list[Dense], sources: list[tuple[int, ...]],
                  where: list[int]) -> list[int]:
    """State widths [n_0, n_1, ...]; raise if a layer's n_in is not the width of its input."""
    widths = [dense[0].n_in]
    for l, layer in enumerate(dense):
        want = sum(widths[s] for s in sources[l])
        if layer.n_in != want:
            what = (f"the previous Dense layer has {want} outputs" if len(sources[l]) == 1
                    else f"the cascade's input [x, a_1, ..., a_{l}] has {want} columns")
            raise ValueError(f"`layers[{where[l]}]` expects {layer.n_in} inputs but {what}.")
        widths.append(layer.n_out)
    return widths


class ForwardRecord:
    """One forward pass through a batch: what every backward rule reads.

    Attributes
    ----------
    inputs : list of ndarray
        ``inputs[l]`` = u_l (N, n_in_l), the input of Dense layer l (a view of x or a_{l-1}
        for "mlp", their concatenation for "cascade").
    z : list of ndarray
        Pre-activations z_l (N, n_l).
    a : list of ndarray
        Activations a_l (N, n_l); ``a[-1]`` is the network output y.
    """

    __slots__ = ("_local", "a", "inputs", "z")

    def __init__(self, inputs: list[Array], z: list[Array], a: list[Array]):
        self.inputs, self.z, self.a = inputs, z, a
        self._local: list[Array | None] | None = None

    def local(self, l: int, function: OutputFunction) -> Array:
        """``function.linearise`` of layer l's activation (h'(z_l), or y for softmax), computed
        on first use and kept: every backward and R-pass through this record shares it."""
        if self._local is None:
            self._local = [None] * len(self.z)
        lin = self._local[l]
        if lin is None:
            lin = self._local[l] = function.linearise(self.z[l], self.a[l])
        return lin

    @property
    def X(self) -> Array:
        """The network input x (N, n_in)."""
        return self.inputs[0]

    @property
    def output(self) -> Array:
        """y = a_L (N, n_out)."""
        return self.a[-1]

    @property
    def logits(self) -> Array:
        """z_L (N, n_out)."""
        return self.z[-1]

    @property
    def n_samples(self) -> int:
        return self.inputs[0].shape[0]


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that defines a network but its parameter values.

    Attributes
    ----------
    sizes : tuple of int
        [n_in, n_1, ..., n_out], the width of x and of every layer's output.
    activations : tuple of str
        One activation per Dense layer; the last is the output's.
    loss : str
    topology : {"mlp", "cascade"}
    dtype : str
        "float64" or "float32".
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    topology: str = "mlp"
    dtype: str = "float64"

    def build(self) -> Network:
        """An empty network (all parameters zero) of this spec."""
        n_layers = len(self.sizes) - 1
        if len(self.activations) != n_layers:
            raise ValueError(f"`activations` must name {n_layers} activations (one per layer); "
                             f"got {len(self.activations)}.")
        topology = check_choice(self.topology, "topology", TOPOLOGIES)
        sources = _sources(topology, n_layers)
        dt = check_dtype(self.dtype)
        layers: list[Dense | Activation] = []
        for l, name in enumerate(self.activations):
            n_in = sum(self.sizes[s] for s in sources[l])
            layers += [Dense(n_in, self.sizes[l + 1], init="zeros", dtype=dt), Activation(name)]
        return Network(layers, self.loss, topology=topology)


class Network:
    """A feed-forward network with a loss, its parameters in one flat vector.

    Parameters
    ----------
    layers : sequence of Dense and Activation
        Each Dense may be followed by one activation (identity when omitted); hidden
        activations are element-wise, the output one element-wise or "softmax".
    loss : {"sse", "mse", "bce", "ce"}
        See ../shared/DESIGN.md; "bce" needs a sigmoid output, "ce" a softmax output.
    topology : {"mlp", "cascade"}
        "mlp": Dense layer l reads a_{l-1}; "cascade": it reads [x, a_1, ..., a_{l-1}]
        (so its n_in is n_0 + n_1 + ... + n_{l-1}).

    Attributes
    ----------
    params : ndarray (P,)
        All parameters; each Dense layer's W and b are views into it.
    grad : ndarray (P,)
        The parameter gradient of the last :meth:`backward` call (a convenience of that
        single-threaded API; :meth:`gradient` returns its own array and leaves it alone).
    dense_layers : list of Dense
    activations : list of Activation
        ``activations[l]`` follows ``dense_layers[l]``; the last one is the output activation.
    head : Head
        The output activation fused with the loss.
    sources : list of tuple of int
        For each Dense layer, the states its input concatenates (0 = x, s = a_s).

    Notes
    -----
    Every method but :meth:`backward` is reentrant: concurrent calls on one network (threads)
    give the same results as sequential ones, as long as nobody changes ``params`` meanwhile.

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

    def __init__(self, layers: Sequence[Dense | Activation], loss: str = "mse",
                 topology: str = "mlp"):
        dense, acts, where = _split_layers(list(layers))
        self.topology = check_choice(topology, "topology", TOPOLOGIES)
        self.sources = _sources(self.topology, len(dense))
        self.widths = _check_widths(dense, self.sources, where)
        dtypes = {np.dtype(layer.dtype) for layer in dense}
        if len(dtypes) != 1:
            raise ValueError(f"`layers` mix dtypes {sorted(map(str, dtypes))}; use one dtype.")
        for i, act in enumerate(acts[:-1]):
            if not act.function.elementwise:
                raise ValueError(f"hidden activation {i} is {act.name}; only the output may be.")
        self.dtype = check_dtype(dtypes.pop())
        self.dense_layers = dense
        self.activations = acts
        self.layers = list(layers)
        self.head: Head = make_head(loss, acts[-1].function)
        self.loss_name = loss
        self.n_params = sum(layer.n_params for layer in dense)
        self.offsets = list(itertools.accumulate([0] + [d.n_params for d in dense]))
        self.params = np.empty(self.n_params, dtype=self.dtype)
        self.grad = np.zeros(self.n_params, dtype=self.dtype)
        self._columns = self._source_columns()
        self._plan = [(layer, act.function, src)
                      for layer, act, src in zip(dense, acts, self.sources, strict=True)]
        self._last: ForwardRecord | None = None
        self._bind_layers()

    def _bind_layers(self) -> None:
        """Copy each layer's parameters into the flat vector and make them views of it."""
        for layer, start, stop in zip(self.dense_layers, self.offsets, self.offsets[1:],
                                      strict=False):
            self.params[start:stop] = layer.flat()
            layer.bind(self.params[start:stop])

    def _source_columns(self) -> list[list[tuple[int, slice | None]]]:
        """For each layer, (state, columns of its input holding that state); None = all."""
        out = []
        for src in self.sources:
            if len(src) == 1:
                out.append([(src[0], None)])
                continue
            starts = list(itertools.accumulate([0] + [self.widths[s] for s in src]))
            out.append([(s, slice(a, b)) for s, a, b in zip(src, starts, starts[1:],
                                                            strict=False)])
        return out

    # ------------------------------------------------------------------ description
    @property
    def n_layers(self) -> int:
        """Number of Dense layers L."""
        return len(self.dense_layers)

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
        """Widths [n_in, n_1, ..., n_out] of x and of every layer's output."""
        return list(self.widths)

    @property
    def activation_names(self) -> list[str]:
        """Names of the activations after each Dense layer (the last is the output's)."""
        return [act.name for act in self.activations]

    def spec(self) -> NetworkSpec:
        """The :class:`NetworkSpec` of this network (everything but the parameter values)."""
        return NetworkSpec(tuple(self.sizes), tuple(self.activation_names), self.loss_name,
                           self.topology, self.dtype.name)

    def param_slices(self) -> list[tuple[slice, slice]]:
        """For each layer, the slices of ``params`` holding its weights (W) and its biases."""
        slices = []
        for layer, start, stop in zip(self.dense_layers, self.offsets, self.offsets[1:],
                                      strict=False):
            n_w = layer.split(np.empty(layer.n_params))[0].size
            slices.append((slice(start, start + n_w), slice(start + n_w, stop)))
        return slices

    def layer_params(self, rows: Array, l: int) -> Array:
        """The columns of ``rows`` (..., P) that belong to Dense layer l (a view)."""
        return rows[..., self.offsets[l] : self.offsets[l + 1]]

    def describe_param(self, index: int) -> str:
        """Name parameter ``index`` of the flat vector, e.g. ``"layer 1 W[2, 0]"``."""
        for l, (w_slice, b_slice) in enumerate(self.param_slices()):
            layer = self.dense_layers[l]
            if w_slice.start <= index < w_slice.stop:
                shape = layer.split(np.empty(layer.n_params))[0].shape
                where = np.unravel_index(index - w_slice.start, shape)
                return f"layer {l} W[{', '.join(str(int(i)) for i in where)}]"
            if b_slice.start <= index < b_slice.stop:
                return f"layer {l} b[{index - b_slice.start}]"
        raise IndexError(f"parameter index {index} out of range for P = {self.n_params}.")

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        acts = ", ".join(self.activation_names)
        kind = "" if self.topology == "mlp" else ", topology='cascade'"
        return (f"Network({sizes}, activations=[{acts}], loss={self.loss_name!r}{kind}, "
                f"P={self.n_params})")

    # ------------------------------------------------------------------ copies
    def copy(self, dtype: np.dtype | type | None = None) -> Network:
        """A deep copy with its own parameter vector, optionally cast to another dtype.

        Built from :meth:`spec` (one builder for copies, model files and the estimators) when
        every layer is a Dense layer; a network with other layer types copies its layers.
        """
        dt = self.dtype if dtype is None else check_dtype(dtype)
        if not self._all_dense():
            if dt != self.dtype:
                raise ValueError("`dtype` can change only for networks of Dense layers.")
            clone = Network([copy.deepcopy(layer) for layer in self.layers], self.loss_name,
                            self.topology)
        else:
            spec = self.spec()
            clone = NetworkSpec(spec.sizes, spec.activations, spec.loss, spec.topology,
                                dt.name).build()
        clone.params[:] = self.params
        return clone

    def _all_dense(self) -> bool:
        return all(type(layer) is Dense for layer in self.dense_layers)

    def __deepcopy__(self, memo: dict) -> Network:
        return self.copy()

    def __copy__(self) -> Network:
        return self.copy()

    def __getstate__(self) -> dict[str, Any]:
        if not self._all_dense():  # other layer types pickle themselves
            return {"layers": self.layers, "loss": self.loss_name, "topology": self.topology,
                    "params": self.params.copy()}
        return {"spec": self.spec(), "params": self.params.copy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        built = (state["spec"].build() if "spec" in state
                 else Network(state["layers"], state["loss"], state["topology"]))
        self.__dict__.update(built.__dict__)
        self.params[:] = state["params"]

    # ------------------------------------------------------------------ validation
    def check_inputs(self, X: object, name: str = "X") -> Array:
        """Validate X (N, n_in) and return it as a contiguous array of the network's dtype."""
        return check_inputs(X, self.n_inputs, self.dtype, name)

    def check_targets(self, T: object, n_samples: int, name: str = "T") -> Array:
        """Validate targets for this network's loss and return them as (N, n_out)."""
        return check_targets(T, self.loss_name, self.n_outputs, n_samples, self.dtype, name)

    def check_data(self, X: object, T: object) -> tuple[Array, Array]:
        """Validated inputs (N, n_in) and targets (N, n_out) in the network's dtype."""
        X = self.check_inputs(X)
        return X, self.check_targets(T, X.shape[0])

    # ------------------------------------------------------------------ forward
    def propagate(self, X: Array) -> ForwardRecord:
        """Forward pass on VALIDATED X (see ``check_inputs``): the record of every layer."""
        states, inputs, zs = [X], [], []
        for layer, function, src in self._plan:
            U = states[src[0]] if len(src) == 1 else np.concatenate(
                [states[s] for s in src], axis=1)
            z = layer.forward(U)
            inputs.append(U)
            zs.append(z)
            states.append(function.f(z))
        return ForwardRecord(inputs, zs, states[1:])

    def forward_record(self, X: object) -> ForwardRecord:
        """Validate X and run the forward pass, returning its record."""
        return self.propagate(self.check_inputs(X))

    def forward(self, X: object) -> Array:
        """Network outputs y (N, n_out) after the output activation.

        Also kept as the pass that the single-threaded :meth:`backward` differentiates.
        """
        record = self.propagate(self.check_inputs(X))
        self._last = record
        return record.output

    def loss(self, X: object, T: object) -> float:
        """Loss L(X, T) as defined in ../shared/DESIGN.md."""
        X, T = self.check_data(X, T)
        return self.record_loss(self.propagate(X), T)

    def record_loss(self, record: ForwardRecord, T: Array, c: float | None = None) -> float:
        """The loss of a forward record against validated targets T (normalisation ``c``)."""
        return self.head.value(record.logits, record.output, T, c)

    # ------------------------------------------------------------------ backward
    def backward_deltas(self, record: ForwardRecord, D: Array, input_grad: bool = False,
                        param_out: Array | None = None,
                        ) -> tuple[list[Array], list[Array | None]]:
        """Backpropagate D = ∂(·)/∂z_L through the graph of a forward record (eq. 8.13).

        Parameters
        ----------
        record : ForwardRecord
        D : ndarray (N, n_out) or (N, m, n_out)
            Any upstream gradient at the output pre-activation; m rows per sample travel
            together (one matrix product per layer for all of them).
        input_grad : bool
            Also return ∂(·)/∂x.
        param_out : ndarray (P,) or (m, P), optional
            If given, Σ_n ∂(·)/∂params is written into it as each δ_l becomes available
            (eq. 8.14–8.15): the backward pass and the parameter gradient in one loop.

        Returns
        -------
        deltas : list of ndarray
            δ_l = ∂(·)/∂z_l of every layer, shaped like D with n_l units.
        state_grads : list of ndarray or None
            ``state_grads[s]`` = ∂(·)/∂a_s for the hidden states s = 1..L−1 (index 0: ∂/∂x,
            None unless ``input_grad``).
        """
        n_layers, inputs = len(self._plan), record.inputs
        offsets = self.offsets
        deltas: list[Array] = [D] * n_layers
        grads: list[Array | None] = [None] * n_layers
        for l in range(n_layers - 1, -1, -1):
            layer, function, _ = self._plan[l]
            if l < n_layers - 1:
                deltas[l] = function.apply(record.local(l, function), grads[l + 1])
            if param_out is not None:
                layer.param_grad(inputs[l], deltas[l], param_out[..., offsets[l] : offsets[l + 1]]
                                 if param_out.ndim > 1 else param_out[offsets[l] : offsets[l + 1]])
            if l > 0 or input_grad:
                G = layer.vjp(deltas[l])
                columns = self._columns[l]
                if len(columns) == 1 and grads[columns[0][0]] is None:  # a chain: no copy
                    grads[columns[0][0]] = G
                else:
                    self._distribute(l, G, grads, input_grad)
        return deltas, grads

    def _distribute(self, l: int, G: Array, grads: list[Array | None],
                    input_grad: bool) -> None:
        """Add layer l's input gradient G = ∂/∂u_l to the gradients of the states it reads."""
        for s, cols in self._columns[l]:
            if s == 0 and not input_grad:
                continue
            piece = G if cols is None else G[..., cols]
            grads[s] = piece if grads[s] is None else grads[s] + piece

    def param_grad(self, record: ForwardRecord, deltas: list[Array],
                   out: Array | None = None) -> Array:
        """Σ_n ∂(·)/∂params from the errors δ_l of :meth:`backward_deltas`.

        Returns (P,) for deltas (N, n_l), or (m, P) for m rows per sample: the batched VJP.
        """
        if out is None:
            out = np.empty((*deltas[-1].shape[1:-1], self.n_params), dtype=self.dtype)
        for l, layer in enumerate(self.dense_layers):
            layer.param_grad(record.inputs[l], deltas[l], self.layer_params(out, l))
        return out

    def param_rows(self, record: ForwardRecord, deltas: list[Array], out: Array) -> Array:
        """Per-sample parameter rows into out (N, m, P) from errors δ_l (N, m, n_l)."""
        for l, layer in enumerate(self.dense_layers):
            layer.param_rows(record.inputs[l], deltas[l], self.layer_params(out, l))
        return out

    def vjp(self, record: ForwardRecord, G: Array) -> tuple[Array, Array]:
        """Vector–Jacobian product of y = f(params, x) for an upstream G = ∂(·)/∂y (N, n_out).

        Returns (∂(·)/∂params (P,), ∂(·)/∂x (N, n_in)); one backward pass.
        """
        function = self.activations[-1].function
        D = function.apply(record.local(self.n_layers - 1, function), G)
        grad = np.empty(self.n_params, dtype=self.dtype)
        return grad, self.backward_deltas(record, D, input_grad=True, param_out=grad)[1][0]

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
        X, T = self.check_data(X, T)
        record = self.propagate(X)
        return self.record_gradient(record, T)

    def record_gradient(self, record: ForwardRecord, T: Array, c: float | None = None,
                        ) -> tuple[float, Array]:
        """Loss and gradient of a forward record against validated T (normalisation ``c``)."""
        value, delta = self.head.value_and_delta(record.z[-1], record.a[-1], T, c)
        grad = np.empty(self.n_params, dtype=self.dtype)
        self.backward_deltas(record, delta, param_out=grad)
        return value, grad

    def input_gradient(self, X: object, T: object) -> Array:
        """∂L/∂X (N, n_in), by the same backward pass (Bishop & Bishop 2024 §8.1.5)."""
        X, T = self.check_data(X, T)
        record = self.propagate(X)
        delta = self.head.delta(record.logits, record.output, T)
        return self.backward_deltas(record, delta, input_grad=True)[1][0]

    def backward(self, grad_output: Array) -> Array:
        """Vector–Jacobian product through the last :meth:`forward` call.

        Parameters
        ----------
        grad_output : ndarray (N, n_out)
            Any upstream gradient ∂L/∂y with respect to the network outputs.

        Returns
        -------
        ndarray (N, n_in)
            ∂L/∂X; ∂L/∂params is written into ``self.grad``.

        Notes
        -----
        A convenience for interactive use, NOT thread-safe: it differentiates the pass of the
        last ``forward`` call made on this network from any thread.  Concurrent code uses
        :meth:`forward_record` and :meth:`vjp`, which keep each call's state apart.
        """
        record = self._last
        grad_output = np.asarray(grad_output, dtype=self.dtype)
        if record is None or grad_output.shape != record.output.shape:
            shape = None if record is None else record.output.shape
            raise ValueError(
                f"`grad_output` must match the last forward output of shape {shape}; got "
                f"{np.shape(grad_output)}."
            )
        grad, dX = self.vjp(record, grad_output)
        self.grad[:] = grad
        return dX

    # ------------------------------------------------------------------ R-operator
    def tangent(self, record: ForwardRecord, V: Array) -> tuple[list[Array], list[Array | None]]:
        """Forward R-pass for directions V (k, P) (PRML §5.4.6, eq. 5.98ff).

        Returns R{z_l} (N, k, n_l) of every layer and R{a_s} (N, k, n_s) of every hidden state
        (index s; index 0, the input x, is None).
        """
        RZ: list[Array] = []
        RA: list[Array | None] = [None] * self.n_layers
        for l, layer in enumerate(self.dense_layers):
            U_dot = self._input_tangent(l, RA, V.shape[0], record.n_samples)
            rz = layer.tangent(record.inputs[l], self.layer_params(V, l), U_dot)
            RZ.append(rz)
            if l < self.n_layers - 1:
                function = self.activations[l].function
                RA[l + 1] = function.apply(record.local(l, function), rz)
        return RZ, RA

    def _input_tangent(self, l: int, RA: list[Array | None], k: int, n: int) -> Array | None:
        """R{u_l} (N, k, n_in_l) from the tangents of the states it reads (None: only x)."""
        parts = self._columns[l]
        if len(parts) == 1:
            return RA[parts[0][0]]
        blocks = [RA[s] if RA[s] is not None
                  else np.zeros((n, k, self.widths[s]), dtype=self.dtype) for s, _ in parts]
        return np.concatenate(blocks, axis=2)

    def tangent_backward(self, record: ForwardRecord, deltas: list[Array],
                         curvature: list[Array | None], tangents: tuple[list, list],
                         RD: Array, V: Array, out: Array) -> Array:
        """Backward R-pass from R{δ_L} (N, k, n_out), writing R{∂(·)/∂params} into out (k, P).

        Overwrites the R{z_l} of ``tangents`` (they are not needed afterwards).

        ``deltas`` are the δ_l of the loss; ``curvature[l]`` = h_l''(z_l) ⊙ ∂L/∂a_l for the
        hidden layers (None where h'' ≡ 0); ``tangents`` = :meth:`tangent`'s output.  Per hidden
        layer R{δ_l} = h' ⊙ R{∂L/∂a_l} + h'' ⊙ ∂L/∂a_l ⊙ R{z_l} (PRML §5.4.6).
        """
        RZ, RA = tangents
        Rgrads: list[Array | None] = [None] * self.n_layers
        for l in range(self.n_layers - 1, -1, -1):
            if l < self.n_layers - 1:
                function = self.activations[l].function
                RD = function.apply(record.local(l, function), Rgrads[l + 1])
                if curvature[l] is not None:  # R{z_l} is not needed after this: reuse it
                    RZ[l] *= curvature[l][:, None, :]
                    RD += RZ[l]
            layer, V_l = self.dense_layers[l], self.layer_params(V, l)
            U_dot = self._input_tangent(l, RA, V.shape[0], record.n_samples)
            layer.tangent_param_grad(record.inputs[l], deltas[l], RD, U_dot,
                                     self.layer_params(out, l))
            if l > 0:
                self._distribute(l, layer.tangent_vjp(deltas[l], RD, V_l), Rgrads, False)
        return out


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


def _build(topology: str, sizes: Sequence[int], activation: str, output: str, loss: str,
           seed: int | np.random.Generator | None, dtype: np.dtype | type) -> Network:
    """Validate the builder arguments and draw the initial weights layer by layer."""
    widths = _check_sizes(sizes)
    get_activation(activation, where="activation")
    if output not in OUTPUT_ACTIVATIONS:
        known = ", ".join(repr(k) for k in OUTPUT_ACTIVATIONS)
        raise ValueError(f"`output` must be one of {known}; got {output!r}.")
    dt = check_dtype(dtype)
    rng = np.random.default_rng(seed)
    init = "he" if activation in HE_ACTIVATIONS else "glorot"
    sources = _sources(topology, len(widths) - 1)
    layers: list[Dense | Activation] = []
    for l, n_out in enumerate(widths[1:]):
        last = l == len(widths) - 2
        n_in = sum(widths[s] for s in sources[l])
        layers.append(Dense(n_in, n_out, init="glorot" if last else init, rng=rng, dtype=dt))
        layers.append(Activation(output if last else activation))
    return Network(layers, loss, topology=topology)


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
    return _build("mlp", sizes, activation, output, loss, seed, dtype)


def cascade(
    sizes: Sequence[int],
    activation: str = "tanh",
    output: str = "identity",
    loss: str = "mse",
    seed: int | np.random.Generator | None = None,
    dtype: np.dtype | type = np.float64,
) -> Network:
    """Build a cascade-forward network (MATLAB's ``cascadeforwardnet``).

    Dense layer l (l = 1..L) reads the concatenation [x, a_1, …, a_{l−1}], in that order, so
    W_l has shape (n_l, n_0 + n_1 + … + n_{l−1}); the output layer sees the input directly as
    well as every hidden layer.  Arguments as for :func:`mlp`; the parameter order is the same
    (layer by layer, W row-major then b).

    References
    ----------
    Bishop & Bishop 2024 §8.1.2 (backpropagation for a general feed-forward topology);
    Fahlman & Lebiere 1990 (cascade architectures); MATLAB ``cascadeforwardnet``.

    Examples
    --------
    >>> import deltaprop
    >>> net = deltaprop.cascade([2, 5, 3, 1], seed=0)
    >>> net
    Network(2-5-3-1, activations=[tanh, tanh, identity], loss='mse', topology='cascade', P=50)
    >>> [layer.W.shape for layer in net.dense_layers]
    [(5, 2), (3, 7), (1, 10)]
    """
    return _build("cascade", sizes, activation, output, loss, seed, dtype)
