"""Jacobians of the network outputs by backpropagation (Bishop & Bishop 2024 §8.1.5)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_finite
from ..kernels import rows_matmul
from ..layers import Dense
from ..network import Network
from ._common import (
    Array,
    check_chunk_size,
    check_data,
    chunks,
    default_chunk,
)


def jacobian_inputs(net: Network, X: object) -> Array:
    """Jacobian of the outputs with respect to the inputs, ∂y_nk/∂x_ni.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)

    Returns
    -------
    ndarray (N, n_out, n_in)
        In the network's dtype.

    Notes
    -----
    Reverse mode (the chapter's backpropagation of the Jacobian): the K rows ∂y_k/∂z_L of
    every sample are backpropagated together, costing one forward pass and one batched backward
    pass of K rows.  When n_in < n_out, forward mode pushes the n_in unit tangents through the
    layers instead (n_in rows).  Either way no Python loop runs over samples or outputs.

    References
    ----------
    Bishop & Bishop 2024 §8.1.5; PRML §5.3.4.
    """
    X = net.check_inputs(X)
    record = net.propagate(X)
    Jy = net.head.output_jacobian(record.logits, record.output)  # (N, K, K)
    if X.shape[1] < net.n_outputs and net.topology == "mlp" and all(
            isinstance(layer, Dense) for layer in net.dense_layers):
        return np.matmul(Jy, _forward_tangents(net, record).transpose(0, 2, 1))
    return net.backward_deltas(record, Jy, input_grad=True)[1][0]


def _forward_tangents(net: Network, record) -> Array:
    """∂z_L/∂x of a chain by forward mode: tangents (N, n_in, n_L), one per input unit."""
    W = [layer.W for layer in net.dense_layers]
    n = record.n_samples
    tangent = np.broadcast_to(W[0].T, (n, *W[0].T.shape))
    for l in range(1, net.n_layers):
        slope = net.activations[l - 1].function.df(record.z[l - 1], record.a[l - 1])
        tangent = rows_matmul(tangent * slope[:, None, :], W[l].T)
    return tangent


def vjp_inputs(net: Network, X: object, G: object) -> Array:
    """Vector–Jacobian product Jᵀ·G with respect to the inputs, in one backward pass.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    G : array_like (N, n_out)
        Upstream gradients ∂L/∂y_n, one row per sample.

    Returns
    -------
    ndarray (N, n_in)
        Σ_k G_nk ∂y_nk/∂x_n (the chapter's Jᵀ ∂L/∂y).  Costs one forward and one backward pass.

    References
    ----------
    Bishop & Bishop 2024 §8.1.5.
    """
    X = net.check_inputs(X)
    G = as_float_array(G, "G", net.dtype)
    if G.shape != (X.shape[0], net.n_outputs):
        raise ValueError(
            f"`G` must have shape ({X.shape[0]}, {net.n_outputs}) (one row of ∂L/∂y per sample); "
            f"got shape {G.shape}."
        )
    check_finite(G, "G")
    return net.vjp(net.propagate(X), G)[1]


def jacobian_params(net: Network, X: object, chunk_size: int | None = None) -> Array:
    """Per-sample Jacobian of the outputs with respect to every parameter, ∂y_nk/∂w_p.

    Parameters
    ----------
    net : Network
    X : array_like (N, n_in)
    chunk_size : int, optional
        Samples per forward/backward pass; default: blocks of a few MB.

    Returns
    -------
    ndarray (N, n_out, P)
        Parameters in ``net.params`` order; y after the output activation (for softmax the
        Jacobian includes the softmax's).

    Notes
    -----
    For each sample the K rows ∂y_k/∂z_L are backpropagated together to per-sample errors
    δ_l[n, k, :]; then ∂y_nk/∂W_l[i, j] = δ_l[n, k, i] a_{l-1}[n, j] and ∂y_nk/∂b_l[i] =
    δ_l[n, k, i].  Cost: one forward pass and one batched backward pass of K rows, plus
    writing the N·K·P entries; never N separate passes.

    References
    ----------
    Bishop & Bishop 2024 §8.1.5; PRML §5.3.4.
    """
    X = net.check_inputs(X)
    chunk_size = check_chunk_size(chunk_size)
    n, k = X.shape[0], net.n_outputs
    size = chunk_size or default_chunk(k, net.n_params, net.dtype.itemsize)
    out = np.empty((n, k, net.n_params), dtype=net.dtype)
    for rows in chunks(n, size):
        record = net.propagate(X[rows])
        Jy = net.head.output_jacobian(record.logits, record.output)
        net.param_rows(record, net.backward_deltas(record, Jy)[0], out[rows])
    return out


def residual_jacobian(net: Network, X: object, T: object) -> tuple[Array, Array]:
    """Residuals and their Jacobian for the least-squares losses ("sse", "mse").

    Parameters
    ----------
    net : Network
        With loss "sse" or "mse" (any element-wise output activation).
    X : array_like (N, n_in)
    T : array_like, targets

    Returns
    -------
    r : ndarray (N·n_out,)
        r = √c (y − t) flattened n-major then k, with c = 1 for "sse" and 2/(N K) for "mse",
        so that L = ½ ‖r‖².  For "sse" r = y − t exactly (../shared/DESIGN.md).
    J : ndarray (N·n_out, P)
        ∂r/∂w = √c ∂y/∂w; JᵀJ is the Gauss–Newton matrix of :func:`gauss_newton` and Jᵀr the
        gradient.  Costs as :func:`jacobian_params`.

    Raises
    ------
    ValueError
        For "bce" and "ce", which are not sums of squares (use :func:`gauss_newton_dual`).
    """
    if net.loss_name not in ("sse", "mse"):
        raise ValueError(
            f"`residual_jacobian` needs loss 'sse' or 'mse'; this network has loss "
            f"{net.loss_name!r} (use `gauss_newton_dual` for its scaled residuals)."
        )
    X, T = check_data(net, X, T)
    root_c = np.sqrt(net.head.normalisation(*T.shape))
    J = jacobian_params(net, X).reshape(T.size, net.n_params)
    r = (net.propagate(X).output - T).ravel()  # X already validated
    if root_c != 1.0:
        r *= root_c
        J *= root_c
    return r, J
