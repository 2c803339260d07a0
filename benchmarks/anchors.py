"""PyTorch twins of deltaprop networks (same weights, same loss) for the anchors."""

from __future__ import annotations

import numpy as np

from .core import need

TORCH_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}


def torch_twin(net):
    """A ``torch.nn.Sequential`` with the same layers and weights as ``net``.

    The output activation is left out when the loss fuses it (softmax with "ce").

    Parameters
    ----------
    net : deltaprop.Network

    Returns
    -------
    torch.nn.Sequential
    """
    torch = need("torch")
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    modules = []
    for dense, act in zip(net.dense_layers, net.activations, strict=True):
        linear = torch.nn.Linear(dense.n_in, dense.n_out, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(dense.W.copy()))
            linear.bias.copy_(torch.from_numpy(dense.b.copy()))
        modules.append(linear)
        if act.name in TORCH_ACTIVATIONS:
            modules.append(getattr(torch.nn, TORCH_ACTIVATIONS[act.name])())
    return torch.nn.Sequential(*modules)


def torch_loss(loss: str):
    """The torch loss function matching deltaprop's "mse", "sse" or "ce" (on logits)."""
    torch = need("torch")
    functional = torch.nn.functional
    losses = {
        "mse": functional.mse_loss,
        "sse": lambda y, t: 0.5 * functional.mse_loss(y, t, reduction="sum"),
        "ce": functional.cross_entropy,
    }
    return losses[loss]


def flat_forward(model):
    """``f(w, X)``: the model's output as a function of ONE flat parameter vector ``w``.

    ``w`` is in ``torch.nn.Linear`` order, as deltaprop's ``params``; this is the form
    ``torch.func.jacrev`` and ``torch.func.hessian`` differentiate.
    """
    torch = need("torch")
    named = [(name, p.shape) for name, p in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def f(w, X):
        chunks = torch.split(w, sizes)
        params = {name: c.view(shape) for (name, shape), c in zip(named, chunks, strict=True)}
        return torch.func.functional_call(model, params, (X,))

    return f


def flat_params(model):
    """The model's parameters concatenated into one detached vector."""
    torch = need("torch")
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])
