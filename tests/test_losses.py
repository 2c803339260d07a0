"""Loss heads: value, δ = ∂L/∂z, output curvature, stability from the logits (DESIGN.md table)."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop.activations import ACTIVATIONS, softmax
from deltaprop.gradcheck import central_differences
from deltaprop.losses import LOSSES, Head, make_head
from deltaprop.network import mlp

N, K = 4, 3
EPS = 1e-6  # central differences in float64 of smooth functions: error ≈ 1e-10 relative
#: Overflow, invalid and divide raise; underflow to 0 is harmless (numpy ignores it by default).
RAISE = {"all": "raise", "under": "ignore"}

#: (loss, output activation); the first four and the last two are canonical pairs.
PAIRS = [
    ("sse", "identity"),
    ("mse", "identity"),
    ("sse", "sigmoid"),
    ("mse", "tanh"),
    ("sse", "softplus"),
    ("bce", "sigmoid"),
    ("ce", "softmax"),
]
CANONICAL = [("sse", "identity"), ("mse", "identity"), ("bce", "sigmoid"), ("ce", "softmax")]


def head_for(loss: str, output: str) -> Head:
    return make_head(loss, output)


def targets(loss: str, rng: np.random.Generator, n: int = N, k: int = K) -> np.ndarray:
    if loss == "bce":
        return rng.uniform(0, 1, size=(n, k))
    if loss == "ce":
        return np.eye(k)[rng.integers(0, k, size=n)]
    return rng.normal(size=(n, k))


def value_at(head: Head, z: np.ndarray, t: np.ndarray) -> float:
    return head.value(z, head.output(z), t)


def test_registry():
    assert LOSSES == ("sse", "mse", "bce", "ce")


@pytest.mark.parametrize(("loss", "output"), PAIRS)
def test_delta_matches_central_differences_of_value(loss, output, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    numeric = central_differences(lambda x: value_at(head, x.reshape(z.shape), t), z.ravel(), EPS)
    numeric = numeric.reshape(z.shape)
    y = head.output(z)
    y_before = y.copy()
    np.testing.assert_allclose(head.delta(z, y, t), numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(y, y_before)  # delta does not write into y


@pytest.mark.parametrize(("loss", "output"), PAIRS)
def test_value_and_delta_agrees_with_value_and_delta(loss, output, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    y = head.output(z)
    y_before = y.copy()
    value, delta = head.value_and_delta(z, y, t)
    assert isinstance(value, float)
    assert value == pytest.approx(head.value(z, y, t), rel=1e-14)
    np.testing.assert_allclose(delta, head.delta(z, y, t), rtol=1e-14)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize(("loss", "output"), PAIRS)
@pytest.mark.parametrize("n_dirs", [None, 2])
def test_hess_z_matches_differences_of_delta(loss, output, n_dirs, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    shape = (N, K) if n_dirs is None else (N, n_dirs, K)  # rows per sample: (N, m, K)
    v = rng.normal(size=shape)

    def delta(zz):
        return head.delta(zz.reshape(z.shape), head.output(zz.reshape(z.shape)), t).ravel()

    vs = [v] if n_dirs is None else [v[:, j] for j in range(n_dirs)]
    numeric = central_differences(delta, z.ravel(), EPS, np.stack([u.ravel() for u in vs]))
    numeric = numeric.reshape(len(vs), N, K)
    numeric = numeric[0] if n_dirs is None else numeric.transpose(1, 0, 2)
    got = head.hess_z(z, head.output(z), t, v)
    assert got.shape == shape
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("loss", "output"), CANONICAL)
def test_gauss_newton_equals_hessian_for_canonical_pairs(loss, output, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    y = head.output(z)
    for v in (rng.normal(size=(N, K)), rng.normal(size=(N, 3, K))):
        np.testing.assert_allclose(head.gn_z(z, y, t, v), head.hess_z(z, y, t, v), rtol=1e-14)


@pytest.mark.parametrize(("loss", "output"), [("sse", "sigmoid"), ("mse", "tanh")])
def test_gauss_newton_of_noncanonical_pair(loss, output, rng):
    """M = c h'(z)²: the Hessian without the residual term, so equal to it where y = t."""
    head, act = head_for(loss, output), ACTIVATIONS[output]
    z, v = rng.normal(size=(N, K)), rng.normal(size=(N, K))
    y = head.output(z)
    c = head.normalisation(N, K)
    np.testing.assert_allclose(head.gn_z(z, y, rng.normal(size=(N, K)), v),
                               c * act.df(z, y) ** 2 * v, rtol=1e-14)
    t = y.copy()  # zero residual: the exact Hessian (checked above) reduces to M

    def delta(zz):
        return head.delta(zz, head.output(zz), t)

    numeric = (delta(z + EPS * v) - delta(z - EPS * v)) / (2 * EPS)
    np.testing.assert_allclose(head.gn_z(z, y, t, v), numeric, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize(("loss", "output"), PAIRS)
def test_gn_diagonal(loss, output, rng):
    head = head_for(loss, output)
    z, t, v = rng.normal(size=(N, K)), targets(loss, rng), rng.normal(size=(N, K))
    y = head.output(z)
    d = head.gn_diagonal(z, y)
    if loss == "ce":
        assert d is None  # softmax couples the outputs
    else:
        assert d.shape == (N, K)
        np.testing.assert_allclose(head.gn_z(z, y, t, v), d * v, rtol=1e-14)


@pytest.mark.parametrize(
    ("loss", "output", "c"),
    [("sse", "identity", 1.0), ("mse", "identity", 2.0 / (N * K)),
     ("bce", "sigmoid", 1.0 / N), ("ce", "softmax", 1.0 / N)],
)
def test_canonical_delta_is_normalised_residual(loss, output, c, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    y = head.output(z)
    assert head.normalisation(N, K) == pytest.approx(c, rel=1e-15)
    np.testing.assert_allclose(head.delta(z, y, t), c * (y - t), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize(("loss", "output"), PAIRS)
def test_values_match_definitions(loss, output, rng):
    head = head_for(loss, output)
    z, t = rng.normal(size=(N, K)), targets(loss, rng)
    y = head.output(z)
    expected = {  # the naive formulas, fine for moderate z
        "sse": lambda: 0.5 * np.sum((y - t) ** 2),
        "mse": lambda: np.sum((y - t) ** 2) / (N * K),
        "bce": lambda: -np.sum(t * np.log(y) + (1 - t) * np.log(1 - y)) / N,
        "ce": lambda: -np.sum(t * np.log(y)) / N,
    }[loss]()
    got = head.value(z, y, t)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)
    assert head.loss == loss and head.activation == output


def test_bce_stable_from_logits():
    head = head_for("bce", "sigmoid")
    z = np.array([[1e3, -1e3, 1e3, -1e3, 0.0, 40.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    with np.errstate(**RAISE):
        y = head.output(z)
        value = head.value(z, y, t)
        delta = head.delta(z, y, t)
        hess = head.hess_z(z, y, t, np.ones_like(z))
    # Correct limits: −log σ(1e3) = 0, −log(1 − σ(1e3)) = 1e3, −log σ(0) = log 2,
    # −log(1 − σ(40)) = softplus(40) = 40 + log1p(e^-40).
    assert value == pytest.approx(0 + 0 + 1e3 + 1e3 + np.log(2) + 40 + np.log1p(np.exp(-40)),
                                  rel=1e-15)
    np.testing.assert_allclose(delta, [[0, 0, 1, -1, -0.5, 1 / (1 + np.exp(-40))]],
                               atol=1e-16)
    assert np.all(np.isfinite(hess)) and np.all(hess >= 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_network_with_huge_logits(dtype):
    """Logits of ±1e3 through a whole network: finite loss and gradient, no warnings."""
    net = mlp([1, 1], output="sigmoid", loss="bce", dtype=dtype)
    net.params[:] = [1e3, 0.0]
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    T = np.array([1.0, 0.0, 0.0, 1.0])
    with np.errstate(**RAISE):
        loss, grad = net.gradient(X, T)
    assert loss == pytest.approx(2e3 / 4, rel=1e-6)
    # δ = (y − t)/N = [0, 0, 1, −1]/4; ∂L/∂w = Σ δ x = (1 + 1)/4, ∂L/∂b = 0.
    np.testing.assert_allclose(grad, [0.5, 0.0], atol=1e-7)
    assert grad.dtype == dtype


def test_ce_stable_from_logits():
    head = head_for("ce", "softmax")
    z = np.array([[1e3, 0.0, -1e3]] * 3)
    t = np.eye(3)
    with np.errstate(**RAISE):
        y = head.output(z)
        value = head.value(z, y, t)
        delta = head.delta(z, y, t)
    # −log softmax(z)_k = lse(z) − z_k = 1e3 − z_k: 0, 1e3, 2e3 for the three rows.
    assert value == pytest.approx((0 + 1e3 + 2e3) / 3, rel=1e-15)
    np.testing.assert_allclose(delta, (np.array([[1.0, 0, 0]] * 3) - t) / 3, atol=1e-300)


def test_ce_network_with_huge_logits():
    net = mlp([1, 3], output="softmax", loss="ce")
    net.params[:] = [1e3, 0.0, -1e3, 0.0, 0.0, 0.0]
    X = np.array([[1.0], [1.0], [1.0]])
    with np.errstate(**RAISE):
        loss, grad = net.gradient(X, np.array([0, 1, 2]))
    assert loss == pytest.approx(1e3, rel=1e-15)
    assert np.all(np.isfinite(grad))


def test_ce_accepts_soft_targets(rng):
    head = head_for("ce", "softmax")
    z = rng.normal(size=(N, K))
    t = softmax(rng.normal(size=(N, K)))
    y = head.output(z)
    np.testing.assert_allclose(head.delta(z, y, t), (y - t) / N, rtol=1e-14)


@pytest.mark.parametrize(
    ("loss", "output", "match"),
    [
        ("hinge", "identity", r"`loss` must be one of 'sse', 'mse', 'bce', 'ce'; got 'hinge'"),
        ("bce", "identity", r'`loss="bce"` needs `output="sigmoid"`; got output=\'identity\''),
        ("bce", "softmax", r'`loss="bce"` needs `output="sigmoid"`'),
        ("ce", "sigmoid", r'`loss="ce"` needs `output="softmax"`; got output=\'sigmoid\''),
        ("mse", "softmax", r'`output="softmax"` needs `loss="ce"`; got loss=\'mse\''),
        ("sse", "softmax", r'`output="softmax"` needs `loss="ce"`; got loss=\'sse\''),
    ],
)
def test_make_head_rejects_bad_pairs(loss, output, match):
    with pytest.raises(ValueError, match=match):
        head_for(loss, output)


def test_base_head_is_abstract():
    head, z = Head(), np.zeros((1, 1))
    for call in (lambda: head.output(z), lambda: head.normalisation(1, 1),
                 lambda: head.value(z, z, z), lambda: head.delta(z, z, z),
                 lambda: head.hess_z(z, z, z, z), lambda: head.gn_z(z, z, z, z),
                 lambda: head.gn_diagonal(z, z), lambda: head.gn_factor(z, z),
                 lambda: head.output_hessian(z, z, z)):
        with pytest.raises(NotImplementedError):
            call()


@pytest.mark.oracle
def test_values_and_deltas_match_torch(torch, rng):
    F = torch.nn.functional
    z = rng.normal(size=(N, K))
    labels = rng.integers(0, K, size=N)
    cases = {
        ("sse", "identity"): lambda zt, t: 0.5 * ((zt - t) ** 2).sum(),
        ("mse", "identity"): lambda zt, t: F.mse_loss(zt, t),
        ("mse", "tanh"): lambda zt, t: F.mse_loss(torch.tanh(zt), t),
        ("bce", "sigmoid"): lambda zt, t: F.binary_cross_entropy_with_logits(
            zt, t, reduction="sum") / N,
        ("ce", "softmax"): lambda zt, t: F.cross_entropy(zt, torch.tensor(labels)),
    }
    for (loss, output), torch_loss in cases.items():
        head = head_for(loss, output)
        t = np.eye(K)[labels] if loss == "ce" else targets(loss, rng)
        zt = torch.tensor(z, requires_grad=True)
        value = torch_loss(zt, torch.tensor(t))
        (dz,) = torch.autograd.grad(value, zt)
        y = head.output(z)
        assert head.value(z, y, t) == pytest.approx(value.item(), rel=1e-13), loss
        np.testing.assert_allclose(head.delta(z, y, t), dz.numpy(), rtol=1e-12, atol=1e-16)
