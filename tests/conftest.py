"""Shared fixtures: a seeded generator, hypothesis settings, optional PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples every run, so CI never flakes.
settings.register_profile(
    "deltaprop",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("deltaprop")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (seed 0)."""
    return np.random.default_rng(0)


@pytest.fixture
def torch():
    """PyTorch, or skip the test (oracle tests; ``pip install torch==2.13.0``)."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    return torch


# ---------------------------------------------------------------------------- shared builders
# Imported by the test modules (``from conftest import ...``): one set of random problems for
# every derivative test, over both topologies, every activation and every loss/output pair.

#: relu and leaky_relu have a jump in h', elu one in h''. Central differences that straddle
#: such a kink measure a secant, not the derivative, so examples whose pre-activations come
#: within KINK_MARGIN of 0 are discarded (the step perturbs them by ~1e-5 at most).
KINKED = ("relu", "leaky_relu", "elu")
KINK_MARGIN = 1e-3
#: (loss, output, target form): every loss, squared errors also after non-canonical outputs.
HEADS = [
    ("sse", "identity", "real"),
    ("mse", "identity", "real"),
    ("sse", "sigmoid", "real"),
    ("mse", "sigmoid", "real"),
    ("sse", "tanh", "real"),
    ("mse", "tanh", "real"),
    ("sse", "softplus", "real"),
    ("mse", "elu", "real"),
    ("bce", "sigmoid", "prob"),
    ("ce", "softmax", "one_hot"),
    ("ce", "softmax", "labels"),
]
TOPOLOGIES = ("mlp", "cascade")


def make_targets(rng: np.random.Generator, form: str, n: int, k: int) -> np.ndarray:
    """Targets of a form: "real" (normal), "prob" (uniform), "one_hot" or integer "labels"."""
    if form == "real":
        return rng.normal(size=(n, k))
    if form == "prob":
        return rng.uniform(0, 1, size=(n, k))
    labels = rng.integers(0, k, size=n)
    return labels if form == "labels" else np.eye(k)[labels]


def build(sizes, activation, head, n, seed, dtype=np.float64, topology="mlp"):
    """A network (non-zero biases, so their derivatives and kinks are exercised), X and T."""
    import deltaprop

    loss, output, form = head
    rng = np.random.default_rng(seed)
    builder = deltaprop.mlp if topology == "mlp" else deltaprop.cascade
    net = builder(sizes, activation=activation, output=output, loss=loss, seed=rng, dtype=dtype)
    for _, b_slice in net.param_slices():
        net.params[b_slice] = rng.normal(scale=0.5, size=b_slice.stop - b_slice.start)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    T = make_targets(rng, form, n, sizes[-1])
    return net, X, T if form == "labels" else T.astype(dtype)


def preactivations(net, X, hidden_only: bool = False) -> np.ndarray:
    """Every pre-activation of a forward pass (hidden ones only if asked), flattened."""
    z = net.forward_record(X).z
    return np.concatenate([zl.ravel() for zl in (z[:-1] if hidden_only else z)])


def away_from_kinks(net, X, activation, output="identity") -> None:
    """Discard (hypothesis ``assume``) examples with a kinked pre-activation near 0."""
    from hypothesis import assume

    if activation in KINKED:
        assume(np.abs(preactivations(net.copy(np.float64), X, hidden_only=True)).min()
               > KINK_MARGIN)
    if output in KINKED:
        assume(np.abs(net.copy(np.float64).forward_record(X).logits).min() > KINK_MARGIN)


def problems(max_width=6, max_in=4, max_n=6, topologies=TOPOLOGIES):
    """Hypothesis strategy: (sizes, activation, head, n_samples, seed, topology), 2–4 layers."""
    from hypothesis import strategies as st

    import deltaprop

    @st.composite
    def draw_problem(draw):
        hidden = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=3))
        head = draw(st.sampled_from(HEADS))
        n_out = draw(st.integers(2 if head[1] == "softmax" else 1, 4))
        sizes = [draw(st.integers(1, max_in)), *hidden, n_out]
        return (sizes, draw(st.sampled_from(list(deltaprop.ACTIVATIONS))), head,
                draw(st.integers(1, max_n)), draw(st.integers(0, 2**32 - 1)),
                draw(st.sampled_from(topologies)))

    return draw_problem()


def built(problem, dtype=np.float64):
    """``build`` for a drawn problem, discarding examples near a kink."""
    sizes, activation, head, n, seed, topology = problem
    net, X, T = build(sizes, activation, head, n, seed, dtype, topology)
    away_from_kinks(net, X, activation, head[1])
    return net, X, T
