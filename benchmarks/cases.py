"""Cases for the core and curvature: gradient, hvp, Hessian, parameter Jacobian, GFLOP/s.

Every case builds a deltaprop network, a PyTorch twin with the same weights (``anchors``),
checks that the two give the same numbers, then times them alternately (``timing``).
"""

from __future__ import annotations

import numpy as np

from .anchors import flat_forward, flat_params, torch_loss, torch_twin
from .core import Config, Row, case, check_close, need, ratio_row, timed_row
from .timing import Stats, peak_memory, time_pair

SMALL = {"sizes": [10, 32, 4], "activation": "tanh", "loss": "mse"}  # P = 484
BIG = {"sizes": [10, 64, 64, 4], "activation": "tanh", "loss": "mse"}  # P = 5,124
MNIST = {"sizes": [784, 128, 10], "activation": "relu", "output": "softmax", "loss": "ce"}


def small_problem(n_samples: int = 64, spec: dict | None = None, dtype=np.float64):
    """A seeded network and data set: (net, X (N, n_in), T (N, n_out))."""
    import deltaprop

    spec = SMALL if spec is None else spec
    net = deltaprop.mlp(**spec, seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_samples, net.n_inputs)).astype(dtype)
    T = rng.normal(size=(n_samples, net.n_outputs)).astype(dtype)
    return net, X, T


def mnist_problem(batch: int = 64):
    """784-128-10 relu/softmax/CE in float32 with integer labels: (net, X, labels)."""
    import deltaprop

    net = deltaprop.mlp(**MNIST, seed=0, dtype=np.float32)
    rng = np.random.default_rng(1)
    X = rng.random(size=(batch, 784), dtype=np.float32)
    return net, X, rng.integers(0, 10, size=batch)


def torch_gradient(net, X, T, loss: str):
    """Eager PyTorch ``loss.backward()`` on the twin of ``net``: (step, flat gradient)."""
    torch = need("torch")
    model, loss_fn = torch_twin(net), torch_loss(loss)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

    def step():
        model.zero_grad(set_to_none=True)
        loss_fn(model(Xt), Tt).backward()

    def grad():
        step()
        return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()

    return step, grad


def _gradient_row(cfg: Config, name: str, net, X, T, goal: float, rtol: float) -> Row:
    step, torch_grad = torch_gradient(net, X, T, net.loss_name)
    note = check_close(net.gradient(X, T)[1], torch_grad(), rtol, "gradients")
    what = f"gradient {'-'.join(map(str, net.sizes))}, N = {X.shape[0]}, {net.dtype}"
    return timed_row(cfg, name, what, lambda: net.gradient(X, T), step,
                     "torch eager loss.backward()", goal, note)


@case("gradient-small", "gradient 10-32-4 tanh MSE, N = 64, float64")
def gradient_small(cfg: Config) -> list[Row]:
    """Gradient of a small net (P = 484), where per-call overhead dominates."""
    net, X, T = small_problem(64)
    return [_gradient_row(cfg, "gradient-small", net, X, T, 0.15, 1e-12)]


@case("gradient-mnist", "gradient 784-128-10 relu CE, batch 64, float32")
def gradient_mnist(cfg: Config) -> list[Row]:
    """Gradient of a 784-128-10 net on a batch of 64 (labels as integers for both sides)."""
    net, X, labels = mnist_problem(64)
    torch = need("torch")
    step, torch_grad = torch_gradient(net, X, labels.astype(np.int64), "ce")
    del torch  # imported only to skip when absent
    note = check_close(net.gradient(X, labels)[1], torch_grad(), 1e-5, "gradients")
    what = "gradient 784-128-10 relu/softmax CE, batch 64, float32, integer labels"
    return [timed_row(cfg, "gradient-mnist", what, lambda: net.gradient(X, labels), step,
                      "torch eager loss.backward()", 0.75, note)]


def torch_hvp(net, X, T, V):
    """Double-backward Hessian-vector product on the twin: (op, flat result)."""
    torch = need("torch")
    model, loss_fn = torch_twin(net), torch_loss(net.loss_name)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    params = list(model.parameters())
    chunks = torch.split(torch.from_numpy(V), [p.numel() for p in params])
    vs = [v.view_as(p) for v, p in zip(chunks, params, strict=True)]

    def op():
        g = torch.autograd.grad(loss_fn(model(Xt), Tt), params, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, vs, strict=True))
        return torch.autograd.grad(dot, params)

    return op, lambda: torch.cat([h.reshape(-1) for h in op()]).numpy()


@case("hvp-small", "hvp 10-32-4 tanh MSE, N = 64, one direction")
def hvp_small(cfg: Config) -> list[Row]:
    """Exact Hessian-vector product (R-operator) against torch's double backward."""
    hvp = need("deltaprop.curvature", "hvp")
    net, X, T = small_problem(64)
    V = np.random.default_rng(2).normal(size=net.n_params)
    op, result = torch_hvp(net, X, T, V)
    note = check_close(hvp(net, X, T, V), result(), 1e-10, "H v")
    return [timed_row(cfg, "hvp-small", "hvp 10-32-4 tanh MSE, N = 64, P = 484, V (P,)",
                      lambda: hvp(net, X, T, V), op, "torch double backward", 0.25, note)]


def torch_hessian(net, X, T):
    """``torch.func.hessian`` of the loss as a function of the flat parameter vector."""
    torch = need("torch")
    model, loss_fn = torch_twin(net), torch_loss(net.loss_name)
    f, w = flat_forward(model), flat_params(model)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    hess = torch.func.hessian(lambda v: loss_fn(f(v, Xt), Tt))
    return lambda: hess(w)


def hessian_setup(name: str, side: str, n_samples: int | None = None):
    """Zero-argument operation of case ``name`` for ``side`` ("ours" or "anchor")."""
    spec, default_n = HESSIAN_SIZES[name]
    net, X, T = small_problem(default_n if n_samples is None else n_samples, spec)
    if side == "anchor":
        return torch_hessian(net, X, T)
    hessian = need("deltaprop.curvature", "hessian")
    return lambda: hessian(net, X, T)


HESSIAN_SIZES = {"hessian-500": (SMALL, 256), "hessian-5000": (BIG, 256)}
QUICK_N = 16  # samples of the P ≈ 5,000 Hessian under --quick
MEMORY_SETUPS = {name: (lambda side, n=name: hessian_setup(n, side)) for name in HESSIAN_SIZES}


def _hessian_rows(cfg: Config, name: str, goal: float, memory_goal: float | None) -> list[Row]:
    need("deltaprop.curvature", "hessian")
    spec, n_samples = HESSIAN_SIZES[name]
    P = sum(a * b + b for a, b in zip(spec["sizes"][:-1], spec["sizes"][1:], strict=True))
    n_samples = QUICK_N if cfg.quick and P > 1000 else n_samples
    ours, anchor = (hessian_setup(name, side, n_samples) for side in ("ours", "anchor"))
    note = check_close(ours(), anchor().numpy(), 1e-9, "Hessians")
    what = f"exact Hessian {'-'.join(map(str, spec['sizes']))} tanh MSE, P = {P:,}, N = {n_samples}"
    if P > 1000:  # seconds to a minute per call: the check was the warm-up, one call a sample
        pair = time_pair(ours, anchor, repeat=5 if not cfg.quick else 3, warmup=0, loops=(1, 1))
    else:
        pair = time_pair(ours, anchor, repeat=cfg.repeat, min_time=cfg.min_time)
    rows = [ratio_row(name, what, pair, "torch.func.hessian", goal, note)]
    if memory_goal is not None:
        rows.append(_memory_row(cfg, name, what, memory_goal))
    return rows


def _memory_row(cfg: Config, name: str, what: str, goal: float) -> Row:
    if cfg.quick:
        return Row(name, f"peak memory, {what}", note="not measured in --quick",
                   status="skipped")
    ours = peak_memory(name, "ours", cfg.threads)
    anchor = peak_memory(name, "anchor", cfg.threads)
    return Row(name, f"peak memory, {what}", f"{ours / 2**20:,.0f} MiB",
               f"{anchor / 2**20:,.0f} MiB", "torch.func.hessian", f"≤ {goal:g}",
               ours / anchor, ours / anchor <= goal,
               "peak-RSS growth during one call, fresh subprocess each")


@case("hessian-500", "exact Hessian, P ≈ 500")
def hessian_500(cfg: Config) -> list[Row]:
    """Exact Hessian of the small net (P = 484) over N = 256 samples."""
    return _hessian_rows(cfg, "hessian-500", 0.15, None)


@case("hessian-5000", "exact Hessian, P ≈ 5,000, time and peak memory")
def hessian_5000(cfg: Config) -> list[Row]:
    """Exact Hessian of 10-64-64-4 (P = 5,124) over N = 256 samples, time and memory."""
    return _hessian_rows(cfg, "hessian-5000", 0.05, 0.1)


@case("jacobian-params", "jacobian_params, N = 256, P ≈ 500")
def jacobian_params_case(cfg: Config) -> list[Row]:
    """Per-sample output Jacobian (N, K, P) against ``torch.func.jacrev`` of the flat params."""
    jacobian_params = need("deltaprop.curvature", "jacobian_params")
    torch = need("torch")
    net, X, _ = small_problem(256)
    model = torch_twin(net)
    f, w, Xt = flat_forward(model), flat_params(model), torch.from_numpy(X)
    jac = torch.func.jacrev(lambda v: f(v, Xt))
    note = check_close(jacobian_params(net, X), jac(w).numpy(), 1e-12, "Jacobians")
    return [timed_row(cfg, "jacobian-params", "jacobian_params 10-32-4 tanh, N = 256, P = 484",
                      lambda: jacobian_params(net, X), lambda: jac(w), "torch.func.jacrev",
                      0.10, note)]


def _gflops_row(name: str, what: str, flops: float, ours: Stats, ref: Stats, note: str) -> Row:
    """Achieved GFLOP/s of ours against numpy's matmul on the same shapes, as a percentage."""
    ours_rate, ref_rate = flops / ours.median / 1e9, flops / ref.median / 1e9
    return Row(name, what, ours, ref, "numpy matmul, same shapes", "",
               ours_rate / ref_rate, None,
               f"{ours_rate:.1f} vs {ref_rate:.1f} GFLOP/s = {100 * ours_rate / ref_rate:.0f} % "
               f"of numpy's; {note}")


@case("gflops-gauss-newton", "GFLOP/s of the JᵀJ accumulation (gauss_newton)")
def gflops_gauss_newton(cfg: Config) -> list[Row]:
    """gauss_newton on 8-32-32-1 sse, N = 4000, against numpy's ``J.T @ J`` on J (N, P).

    Flops counted: N·P·(P+1), the symmetric product's (numpy recognises ``J.T @ J`` and calls
    BLAS syrk, which does the same work), so the percentage compares times directly.
    """
    gauss_newton = need("deltaprop.curvature", "gauss_newton")
    net, X, T = small_problem(1000 if cfg.quick else 4000, {"sizes": [8, 32, 32, 1],
                                                            "activation": "tanh",
                                                            "loss": "sse"})
    J = np.random.default_rng(3).normal(size=(X.shape[0], net.n_params))
    pair = time_pair(lambda: gauss_newton(net, X, T), lambda: J.T @ J, repeat=cfg.repeat,
                     min_time=cfg.min_time)
    flops = X.shape[0] * net.n_params * (net.n_params + 1)
    what = f"gauss_newton 8-32-32-1 sse, N = {X.shape[0]}, P = {net.n_params} (whole call)"
    return [_gflops_row("gflops-gauss-newton", what, flops, *pair,
                        "ours includes forming J by backprop")]


def _mnist_matmuls(net, X):
    """The five products of one 784-128-10 gradient, on fresh arrays of the same shapes."""
    rng = np.random.default_rng(4)
    W1, W2 = net.dense_layers[0].W.copy(), net.dense_layers[1].W.copy()
    A1 = rng.random(size=(X.shape[0], W1.shape[0]), dtype=np.float32)
    G2 = rng.random(size=(X.shape[0], W2.shape[0]), dtype=np.float32)

    def run():
        X @ W1.T, A1 @ W2.T, G2.T @ A1, G2 @ W2, A1.T @ X

    return run


@case("gflops-gradient-784", "GFLOP/s of the 784-128-10 gradient")
def gflops_gradient(cfg: Config) -> list[Row]:
    """The 784-net gradient against numpy running only its five matmuls (the practical limit)."""
    net, X, labels = mnist_problem(64)
    n, (n0, n1, n2) = X.shape[0], net.sizes
    flops = 2 * n * (2 * (n0 * n1 + n1 * n2) + n1 * n2)
    pair = time_pair(lambda: net.gradient(X, labels), _mnist_matmuls(net, X),
                     repeat=cfg.repeat, min_time=cfg.min_time)
    return [_gflops_row("gflops-gradient-784", "gradient 784-128-10, batch 64, float32", flops,
                        *pair, "numpy side = the 5 matmuls alone, no element-wise work")]
