"""Network: gradients by backpropagation, the flat parameter layout, dtypes, a worked example.

Gradients are checked by central differences (Bishop & Bishop 2024 §8.1.4) over random
architectures with hypothesis, against a hand-worked two-layer example (§8.1.3), and against
PyTorch (``oracle``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import deltaprop
from conftest import HEADS, KINK_MARGIN, KINKED, build, built, preactivations, problems
from deltaprop import ACTIVATIONS, Activation, Dense, Network, check_gradient, mlp
from deltaprop.gradcheck import central_differences

ACTS = list(ACTIVATIONS)
#: float64: backprop is exact up to round-off (~1e-15) and central differences with the
#: default step u^{1/3} are good to ~1e-10, so 1e-6 leaves a wide margin.
TOL64 = 1e-6
#: float32: the analytic gradient is computed in float32 (u ≈ 6e-8), while the reference
#: differences are taken in float64 on a float64 copy of the same float32-representable weights
#: and data, so the check measures float32 round-off alone. It is amplified where the float32
#: gradient is a small difference of large numbers: δ = c(y − t) with y ≈ t, and h' = 1 − a²
#: of a saturated tanh/sigmoid unit (1 − a² ≈ 1e-3 keeps only ~4 digits). A wide search
#: (1 500 examples) saw at most 7.6e-5; typical errors are ~1e-6. 1e-4 still catches any real
#: mistake (errors O(1)).
TOL32 = 1e-4


def assert_normwise_close(actual, desired, tol=TOL64):
    """max |actual − desired| ≤ tol · max |desired| (the normwise error check_gradient reports)."""
    err = np.abs(actual - desired).max() / np.abs(desired).max()
    assert err < tol, f"normwise relative error {err:.3g} ≥ {tol:g}"


def randomise_biases(net: Network, rng: np.random.Generator) -> None:
    """Biases start at zero; give them values so their gradients (and kinks) are exercised."""
    for _, b_slice in net.param_slices():
        net.params[b_slice] = rng.normal(scale=0.5, size=b_slice.stop - b_slice.start)


def _problems():
    return problems(max_width=12, max_in=5, max_n=8)


# ---------------------------------------------------------------------------- gradient checks
@settings(max_examples=120)
@given(_problems())
def test_gradient_matches_central_differences_float64(problem):
    net, X, T = built(problem)
    report = check_gradient(net, X, T)
    assert report.max_rel_error < TOL64, report


@settings(max_examples=60)
@given(_problems())
def test_gradient_matches_central_differences_float32(problem):
    net, X, T = built(problem, dtype=np.float32)
    report = check_gradient(net, X, T)
    assert report.analytic.dtype == np.float32
    assert report.max_rel_error < TOL32, report


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
@pytest.mark.parametrize("activation", ACTS)
def test_gradient_every_activation_and_head(activation, head, topology):
    """The full grid, so every pair is covered whatever hypothesis draws (two hidden layers)."""
    for seed in range(10):
        net, X, T = build([3, 5, 4, 3], activation, head, 6, seed, topology=topology)
        hidden = preactivations(net, X, hidden_only=True)
        if activation not in KINKED or np.abs(hidden).min() > KINK_MARGIN:
            break
    else:
        pytest.fail("no seed keeps the pre-activations away from the kink")
    report = check_gradient(net, X, T)
    assert report.max_rel_error < TOL64, report


@pytest.mark.parametrize("topology", ["mlp", "cascade"])
@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid"])
def test_input_gradient_matches_central_differences(activation, head, topology):
    net, X, T = build([3, 4, 3], activation, head, 5, seed=1, topology=topology)
    got = net.input_gradient(X, T)
    assert got.shape == X.shape
    numeric = central_differences(lambda x: net.loss(x.reshape(X.shape), T), X.ravel(), 1e-6)
    assert_normwise_close(got, numeric.reshape(X.shape))


@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh", "softplus", "softmax"])
def test_backward_is_a_vjp_for_any_upstream_gradient(output, rng):
    """net.backward(G) = Gᵀ ∂y/∂(params, X): compare with differences of ⟨G, forward(X)⟩."""
    net = mlp([3, 4, 2], activation="tanh", output=output,
              loss="ce" if output == "softmax" else "sse", seed=2)
    randomise_biases(net, rng)
    X, G = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    ref, eps = net.copy(), 1e-6

    def inner(w, x):
        ref.params[:] = w
        return float(np.vdot(G, ref.forward(x)))

    w0 = net.params.copy()
    num_w = central_differences(lambda w: inner(w, X), w0, eps)
    num_x = central_differences(lambda x: inner(w0, x.reshape(X.shape)), X.ravel(), eps)
    num_x = num_x.reshape(X.shape)

    net.forward(X)
    dX = net.backward(G)
    assert_normwise_close(net.grad, num_w)
    assert_normwise_close(dX, num_x)


def test_backward_with_loss_delta_reproduces_gradient(rng):
    """With G = ∂L/∂y the VJP is the loss gradient (non-canonical output: sse after tanh)."""
    net = mlp([2, 3, 2], output="tanh", loss="sse", seed=0)
    X, T = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    _, grad = net.gradient(X, T)
    y = net.forward(X)
    dX = net.backward(y - T)  # ∂(½Σ(y−t)²)/∂y
    np.testing.assert_allclose(net.grad, grad, rtol=1e-13)
    np.testing.assert_allclose(dX, net.input_gradient(X, T), rtol=1e-13)


# ---------------------------------------------------------------------------- worked example
def test_hand_worked_two_layer_tanh_example():
    """Bishop & Bishop 2024 §8.1.3 (PRML §5.3.2): tanh hidden units, linear output, E = ½Σ(y−t)².

    Network 2-2-1, one sample x = (1, 0.5), target t = 1. Parameters in the documented order
    (W1 row-major, b1, W2, b2):
        W1 = [[0.5, -0.5], [0.25, 1.0]], b1 = [0.25, -0.5], W2 = [[1.0, -2.0]], b2 = [0.5]

    Forward:
        z1 = 0.5·1 − 0.5·0.5 + 0.25  = 0.5      a1 = tanh(0.5)  = 0.46211716
        z2 = 0.25·1 + 1.0·0.5 − 0.5  = 0.25     a2 = tanh(0.25) = 0.24491866
        y  = 1.0·a1 − 2.0·a2 + 0.5   = 0.46211716 − 0.48983732 + 0.5 = 0.47227983
        E  = ½ (y − t)² = ½ (−0.52772017)² = 0.13924429

    Backward:
        δ_k = y − t = −0.52772017
        δ_1 = (1 − a1²) w_11 δ_k = 0.78644773 ·  1.0 · (−0.52772017) = −0.41502433
        δ_2 = (1 − a2²) w_12 δ_k = 0.94001485 · −2.0 · (−0.52772017) =  0.99212959

    Gradient (∂E/∂w_ji = δ_j x_i, ∂E/∂b_j = δ_j, ∂E/∂w_kj = δ_k a_j, ∂E/∂b_k = δ_k):
        W1: [[δ1·1, δ1·0.5], [δ2·1, δ2·0.5]] = [[−0.41502433, −0.20751216],
                                                [ 0.99212959,  0.49606479]]
        b1: [−0.41502433, 0.99212959]
        W2: [δk·a1, δk·a2] = [−0.24386854, −0.12924852]
        b2: −0.52772017
    """
    net = mlp([2, 2, 1], activation="tanh", output="identity", loss="sse", seed=0)
    net.params[:] = [0.5, -0.5, 0.25, 1.0, 0.25, -0.5, 1.0, -2.0, 0.5]
    X, T = np.array([[1.0, 0.5]]), np.array([[1.0]])

    np.testing.assert_allclose(net.forward(X), [[0.47227983]], atol=1e-8)
    np.testing.assert_allclose(net.forward_record(X).a[0], [[0.46211716, 0.24491866]], atol=1e-8)
    loss, grad = net.gradient(X, T)
    assert loss == pytest.approx(0.13924429, abs=1e-8)
    expected = [
        -0.41502433, -0.20751216, 0.99212959, 0.49606479,  # W1
        -0.41502433, 0.99212959,  # b1
        -0.24386854, -0.12924852,  # W2
        -0.52772017,  # b2
    ]
    np.testing.assert_allclose(grad, expected, atol=1e-8)
    # the δ's themselves, from the backward pass of δ_L = y − t through the forward record
    record = net.forward_record(X)
    deltas, _ = net.backward_deltas(record, record.output - T)
    np.testing.assert_allclose(deltas[1], [[-0.52772017]], atol=1e-8)
    np.testing.assert_allclose(deltas[0], [[-0.41502433, 0.99212959]], atol=1e-8)


# ---------------------------------------------------------------------------- layout
def test_parameters_are_views_of_the_flat_vector():
    net = mlp([3, 4, 2], seed=0)
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2 == net.params.size
    assert net.params.ndim == 1 and net.params.flags.c_contiguous
    offset = 0
    for layer in net.dense_layers:
        assert np.shares_memory(layer.W, net.params) and np.shares_memory(layer.b, net.params)
        np.testing.assert_array_equal(net.params[offset:offset + layer.W.size], layer.W.ravel())
        offset += layer.W.size
        np.testing.assert_array_equal(net.params[offset:offset + layer.b.size], layer.b)
        offset += layer.b.size
    assert offset == net.n_params


def test_changing_params_changes_forward(rng):
    net = mlp([3, 4, 2], seed=0)
    X = rng.normal(size=(5, 3))
    y0 = net.forward(X).copy()
    net.params[:] = rng.normal(size=net.n_params)
    y1 = net.forward(X).copy()
    assert not np.allclose(y0, y1)
    W1, b1 = net.dense_layers[0].W, net.dense_layers[0].b
    W2, b2 = net.dense_layers[1].W, net.dense_layers[1].b
    np.testing.assert_allclose(y1, np.tanh(X @ W1.T + b1) @ W2.T + b2, rtol=1e-14)
    net.params[-1] += 1.0  # the last output bias
    np.testing.assert_allclose(net.forward(X)[:, 1], y1[:, 1] + 1.0, rtol=1e-14)
    net.params *= 0  # in-place arithmetic keeps the views
    np.testing.assert_array_equal(net.forward(X), 0)


def test_layer_edits_show_in_params():
    net = mlp([2, 3, 1], seed=0)
    net.dense_layers[1].W[0, 2] = 7.0
    assert net.params[2 * 3 + 3 + 2] == 7.0
    assert net.describe_param(2 * 3 + 3 + 2) == "layer 1 W[0, 2]"


def test_describe_param_and_slices():
    net = mlp([2, 3, 2], seed=0)  # W1 6, b1 3, W2 6, b2 2: P = 17
    names = [net.describe_param(p) for p in range(net.n_params)]
    assert names[:7] == ["layer 0 W[0, 0]", "layer 0 W[0, 1]", "layer 0 W[1, 0]",
                         "layer 0 W[1, 1]", "layer 0 W[2, 0]", "layer 0 W[2, 1]", "layer 0 b[0]"]
    assert names[8:] == ["layer 0 b[2]", "layer 1 W[0, 0]", "layer 1 W[0, 1]", "layer 1 W[0, 2]",
                         "layer 1 W[1, 0]", "layer 1 W[1, 1]", "layer 1 W[1, 2]", "layer 1 b[0]",
                         "layer 1 b[1]"]
    assert net.param_slices() == [(slice(0, 6), slice(6, 9)), (slice(9, 15), slice(15, 17))]
    for bad in (-1, 17, 100):
        with pytest.raises(IndexError, match=rf"parameter index {bad} out of range for P = 17"):
            net.describe_param(bad)


def test_copy_is_deep(rng):
    net = mlp([2, 3, 3], activation="relu", output="softmax", loss="ce", seed=0)
    randomise_biases(net, rng)
    X, T = rng.normal(size=(4, 2)), rng.integers(0, 3, size=4)
    clone = net.copy()
    assert repr(clone) == repr(net)
    assert not np.shares_memory(clone.params, net.params)
    assert not np.shares_memory(clone.grad, net.grad)
    np.testing.assert_array_equal(clone.params, net.params)
    assert clone.loss(X, T) == net.loss(X, T)
    grad = net.gradient(X, T)[1]
    np.testing.assert_array_equal(clone.gradient(X, T)[1], grad)
    net.forward(X)
    net.backward(np.ones((4, 3)))
    kept = net.grad.copy()
    clone.params += 1.0
    clone.forward(X)
    clone.backward(np.ones((4, 3)))
    assert not np.allclose(clone.forward(X), net.forward(X))
    np.testing.assert_array_equal(net.grad, kept)  # the clone's backward left net.grad alone
    np.testing.assert_array_equal(net.gradient(X, T)[1], grad)
    assert clone.dense_layers[0] is not net.dense_layers[0]


def test_copy_to_another_dtype():
    net = mlp([2, 3, 1], seed=0)
    single = net.copy(np.float32)
    assert single.dtype == np.float32 and single.params.dtype == np.float32
    np.testing.assert_allclose(single.params, net.params, rtol=1e-7)
    assert net.dtype == np.float64
    back = single.copy(dtype="float64")
    np.testing.assert_array_equal(back.params, single.params)


def test_network_from_layers_keeps_their_weights(rng):
    d1, d2 = Dense(2, 3, rng=rng), Dense(3, 1, rng=rng)
    d1.b[:] = [1.0, 2.0, 3.0]
    W1, W2 = d1.W.copy(), d2.W.copy()
    net = Network([d1, Activation("sigmoid"), d2], loss="sse")  # output activation omitted
    np.testing.assert_array_equal(net.params, np.concatenate([W1.ravel(), [1, 2, 3],
                                                              W2.ravel(), [0.0]]))
    assert np.shares_memory(d1.W, net.params)
    assert net.activation_names == ["sigmoid", "identity"]
    assert net.sizes == [2, 3, 1] and net.n_inputs == 2 and net.n_outputs == 1
    assert repr(net) == "Network(2-3-1, activations=[sigmoid, identity], loss='sse', P=13)"
    assert net.layers[0] is d1


def test_mlp_architecture_and_initialisation():
    net = mlp([4, 50, 30, 2], activation="relu", output="sigmoid", loss="bce", seed=3)
    assert net.activation_names == ["relu", "relu", "sigmoid"]
    assert net.head.loss == "bce" and net.loss_name == "bce"
    W0, W2 = net.dense_layers[0].W, net.dense_layers[2].W
    # He N(0, 2/n_in) for relu hidden layers, Glorot U(±√(6/(n_in+n_out))) for the output
    assert np.abs(W2).max() <= np.sqrt(6 / 32)
    assert np.abs(W0).max() > np.sqrt(6 / 54)  # a normal sample exceeds the Glorot bound
    for layer in net.dense_layers:
        np.testing.assert_array_equal(layer.b, 0)
    tanh = mlp([4, 50, 2], seed=3)
    assert np.abs(tanh.dense_layers[0].W).max() <= np.sqrt(6 / 54)
    assert repr(mlp([1, 10, 1], seed=0)) == (
        "Network(1-10-1, activations=[tanh, identity], loss='mse', P=31)")


def test_mlp_seed():
    a, b = mlp([2, 5, 1], seed=7), mlp([2, 5, 1], seed=7)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, mlp([2, 5, 1], seed=8).params)
    g = mlp([2, 5, 1], seed=np.random.default_rng(7))
    np.testing.assert_array_equal(g.params, a.params)


def test_gradient_returns_a_new_array_and_matches_loss(rng):
    net = mlp([2, 3, 1], seed=0)
    X, T = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    loss, g1 = net.gradient(X, T)
    assert isinstance(loss, float) and loss == net.loss(X, T)
    assert g1.shape == (net.n_params,) and not np.shares_memory(g1, net.grad)
    g1_copy = g1.copy()
    _, g2 = net.gradient(2 * X, T)
    np.testing.assert_array_equal(g1, g1_copy)  # a later call does not overwrite g1
    assert not np.array_equal(g1, g2) and not np.shares_memory(g1, g2)
    X_before = X.copy()
    net.gradient(X, T)
    net.input_gradient(X, T)
    np.testing.assert_array_equal(X, X_before)  # inputs are never written


@pytest.mark.parametrize(("loss", "c"), [("sse", 1.0), ("mse", 2 / (5 * 2))])
def test_output_delta_is_normalised_residual(loss, c, rng):
    """For identity output: ∂L/∂b_L = Σ_n c (y_n − t_n)."""
    net = mlp([3, 4, 2], loss=loss, seed=0)
    X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    _, grad = net.gradient(X, T)
    np.testing.assert_allclose(grad[-2:], c * (net.forward(X) - T).sum(axis=0), rtol=1e-13)


# ---------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("head", HEADS, ids=lambda h: "-".join(h))
@pytest.mark.parametrize("activation", ACTS)
def test_float32_end_to_end(activation, head):
    net, X, T = build([3, 4, 3], activation, head, 5, seed=0, dtype=np.float32)
    X64 = X.astype(np.float64)  # float64 data is converted, not allowed to upcast
    assert net.dtype == np.float32
    assert net.params.dtype == net.grad.dtype == np.float32
    for layer in net.dense_layers:
        assert layer.W.dtype == layer.b.dtype == np.float32
    assert net.forward(X64).dtype == np.float32
    loss, grad = net.gradient(X64, T)
    assert isinstance(loss, float) and np.isfinite(loss)
    assert grad.dtype == np.float32 and net.grad.dtype == np.float32
    assert net.input_gradient(X64, T).dtype == np.float32
    assert net.backward(np.ones((5, 3), np.float32)).dtype == np.float32
    record = net.forward_record(X64)
    for z, a in zip(record.z, record.a, strict=True):
        assert z.dtype == a.dtype == np.float32
    net.params -= np.float32(0.1) * grad
    assert net.params.dtype == np.float32


def test_float32_agrees_with_float64(rng):
    net64 = mlp([3, 6, 2], activation="softplus", seed=0)
    net32 = net64.copy(np.float32)
    X, T = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    np.testing.assert_allclose(net32.forward(X), net64.forward(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net32.gradient(X, T)[1], net64.gradient(X, T)[1],
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("seed", range(5))
def test_xor_by_plain_gradient_descent(seed):
    """w ← w − η ∇L on XOR with a 2-4-1 tanh network and sum-of-squares error."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    T = np.array([[0.0], [1.0], [1.0], [0.0]])
    net = mlp([2, 4, 1], activation="tanh", loss="sse", seed=seed)
    lr = 0.2
    loss = net.loss(X, T)
    for _ in range(1000):
        loss, grad = net.gradient(X, T)
        if loss < 0.01:
            break
        net.params -= lr * grad
    assert loss < 0.01
    np.testing.assert_array_equal(np.round(net.forward(X)), T)


# ---------------------------------------------------------------------------- oracle
def _torch_model(torch, net: Network):
    """torch.nn.Sequential with the same layers, loaded by slicing net.params in order."""
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid,
            "softplus": torch.nn.Softplus, "elu": torch.nn.ELU, "identity": torch.nn.Identity,
            "leaky_relu": lambda: torch.nn.LeakyReLU(0.01)}
    modules = []
    for dense, act in zip(net.dense_layers, net.activations, strict=True):
        modules.append(torch.nn.Linear(dense.n_in, dense.n_out, dtype=torch.float64))
        if act is not net.activations[-1]:
            modules.append(acts[act.name]())
    model = torch.nn.Sequential(*modules)
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(net.params[offset:offset + p.numel()].reshape(p.shape)))
            offset += p.numel()
    assert offset == net.n_params
    return model


def _torch_grad(torch, model) -> np.ndarray:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()


@pytest.mark.oracle
@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "softplus", "elu"])
def test_parameter_order_and_gradient_match_torch(torch, activation, rng):
    net = mlp([3, 5, 4, 2], activation=activation, loss="mse", seed=0)
    randomise_biases(net, rng)
    X, T = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    model = _torch_model(torch, net)
    Xt = torch.from_numpy(X).requires_grad_(True)
    yt = model(Xt)
    lt = torch.nn.functional.mse_loss(yt, torch.from_numpy(T))
    lt.backward()
    np.testing.assert_allclose(net.forward(X), yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    loss, grad = net.gradient(X, T)
    assert loss == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(grad, _torch_grad(torch, model), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.input_gradient(X, T), Xt.grad.numpy(), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.oracle
def test_classification_heads_match_torch(torch, rng):
    F = torch.nn.functional
    X = rng.normal(size=(6, 3))
    labels = rng.integers(0, 4, size=6)
    probs = rng.uniform(size=(6, 4))
    cases = [
        ("softmax", "ce", labels, lambda y, z: F.cross_entropy(z, torch.from_numpy(labels))),
        # torch averages bce over N·K; deltaprop's bce is a sum over outputs averaged over N
        ("sigmoid", "bce", probs,
         lambda y, z: 4 * F.binary_cross_entropy_with_logits(z, torch.from_numpy(probs))),
    ]
    for output, loss, T, torch_loss in cases:
        net = mlp([3, 5, 4], activation="tanh", output=output, loss=loss, seed=1)
        randomise_biases(net, rng)
        model = _torch_model(torch, net)
        z = model(torch.from_numpy(X))
        lt = torch_loss(None, z)
        lt.backward()
        value, grad = net.gradient(X, T)
        assert value == pytest.approx(lt.item(), rel=1e-13), loss
        np.testing.assert_allclose(grad, _torch_grad(torch, model), rtol=1e-12, atol=1e-15)
        expected_y = torch.softmax(z, 1) if output == "softmax" else torch.sigmoid(z)
        np.testing.assert_allclose(net.forward(X), expected_y.detach().numpy(), rtol=1e-13)


def test_public_names():
    assert deltaprop.Network is Network and deltaprop.mlp is mlp
    for name in deltaprop.__all__:
        assert hasattr(deltaprop, name)


# ---------------------------------------------------------------------------- cascade topology
def test_cascade_layout_and_forward_by_hand(rng):
    """Layer l reads [x, a_1, ..., a_{l-1}]: W_l is (n_l, n_0 + ... + n_{l-1}), same order."""
    net = deltaprop.cascade([2, 3, 4, 1], activation="tanh", seed=0)
    assert [layer.W.shape for layer in net.dense_layers] == [(3, 2), (4, 5), (1, 9)]
    assert net.n_params == 3 * 2 + 3 + 4 * 5 + 4 + 9 + 1 == net.params.size
    assert net.sizes == [2, 3, 4, 1] and net.topology == "cascade"
    randomise_biases(net, rng)
    X = rng.normal(size=(6, 2))
    W = [layer.W for layer in net.dense_layers]
    b = [layer.b for layer in net.dense_layers]
    a1 = np.tanh(X @ W[0].T + b[0])
    a2 = np.tanh(np.hstack([X, a1]) @ W[1].T + b[1])
    y = np.hstack([X, a1, a2]) @ W[2].T + b[2]
    np.testing.assert_allclose(net.forward(X), y, rtol=1e-14)
    assert net.describe_param(3 * 2 + 3 + 5 * 1 + 2) == "layer 1 W[1, 2]"


def test_cascade_with_one_layer_is_an_mlp(rng):
    a, b = deltaprop.cascade([3, 2], seed=4), mlp([3, 2], seed=4)
    X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.gradient(X, T)[1], b.gradient(X, T)[1])


def test_cascade_rejects_layers_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"`layers\[2\]` expects 3 inputs but the cascade's "
                                         r"input \[x, a_1, ..., a_1\] has 5 columns"):
        Network([Dense(2, 3), Activation("tanh"), Dense(3, 1)], topology="cascade")
    with pytest.raises(ValueError, match="`topology` must be one of 'mlp', 'cascade'"):
        Network([Dense(2, 3)], topology="graph")


@pytest.mark.oracle
@pytest.mark.parametrize(("output", "loss"), [("identity", "mse"), ("softmax", "ce"),
                                              ("sigmoid", "bce")])
def test_cascade_parameter_order_and_gradient_match_torch(torch, output, loss, rng):
    """The twin in PyTorch: torch.nn.Linear per layer on torch.cat([x, a_1, ...])."""
    net = deltaprop.cascade([3, 4, 5, 3], activation="tanh", output=output, loss=loss, seed=2)
    randomise_biases(net, rng)
    X = rng.normal(size=(6, 3))
    T = rng.integers(0, 3, 6) if loss == "ce" else rng.uniform(size=(6, 3))
    linears = [torch.nn.Linear(d.n_in, d.n_out) for d in net.dense_layers]
    with torch.no_grad():
        for lin, d in zip(linears, net.dense_layers, strict=True):
            lin.weight.copy_(torch.from_numpy(d.W))
            lin.bias.copy_(torch.from_numpy(d.b))
    Xt = torch.tensor(X, requires_grad=True)
    states = [Xt]
    for i, lin in enumerate(linears):
        z = lin(torch.cat(states, dim=1))
        states.append(torch.tanh(z) if i < len(linears) - 1 else z)
    z = states[-1]
    F = torch.nn.functional
    if loss == "ce":
        lt = F.cross_entropy(z, torch.from_numpy(T))
    elif loss == "bce":
        lt = F.binary_cross_entropy_with_logits(z, torch.from_numpy(T), reduction="sum") / 6
    else:
        lt = F.mse_loss(z, torch.from_numpy(T))
    lt.backward()
    flat = torch.cat([p.grad.reshape(-1) for lin in linears for p in lin.parameters()]).numpy()
    loss_value, grad = net.gradient(X, T)
    assert loss_value == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(grad, flat, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.input_gradient(X, T), Xt.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- copies, pickles
@pytest.mark.parametrize("topology", ["mlp", "cascade"])
def test_pickle_and_deepcopy_keep_params_live(topology, rng):
    import copy
    import pickle

    net, X, _ = build([3, 4, 2], "tanh", ("mse", "identity", "real"), 5, seed=1,
                      topology=topology)
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), copy.copy(net)):
        assert repr(clone) == repr(net) and clone.topology == topology
        np.testing.assert_array_equal(clone.params, net.params)
        assert not np.shares_memory(clone.params, net.params)
        for layer in clone.dense_layers:
            assert np.shares_memory(layer.W, clone.params)
        y = clone.forward(X).copy()
        clone.params[-1] += 1.0  # a change of the flat vector shows in the forward pass
        np.testing.assert_allclose(clone.forward(X)[:, -1], y[:, -1] + 1.0, rtol=1e-14)
        clone.dense_layers[0].W[0, 0] += 2.0  # and a change of a layer in the flat vector
        assert clone.params[0] == net.params[0] + 2.0
    spec = net.spec()
    assert spec.build().spec() == spec and spec.topology == topology


# ---------------------------------------------------------------------------- threads
@pytest.mark.parametrize("topology", ["mlp", "cascade"])
def test_concurrent_calls_on_one_network_are_correct(topology):
    """Four threads call gradient, loss and hvp on ONE network with different batch sizes."""
    from concurrent.futures import ThreadPoolExecutor

    net, _, _ = build([4, 16, 8, 2], "tanh", ("mse", "identity", "real"), 1, seed=0,
                      topology=topology)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(n, 4)), rng.normal(size=(n, 2))) for n in (3, 17, 64, 200)]
    V = rng.normal(size=net.n_params)
    expected = [(net.gradient(X, T), net.loss(X, T), deltaprop.hvp(net, X, T, V))
                for X, T in batches]

    def work(i):
        X, T = batches[i % 4]
        return i % 4, net.gradient(X, T), net.loss(X, T), deltaprop.hvp(net, X, T, V)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(200)))
    for i, (loss, grad), value, hv in results:
        (loss0, grad0), value0, hv0 = expected[i]
        assert loss == loss0 and value == value0
        np.testing.assert_array_equal(grad, grad0)
        np.testing.assert_array_equal(hv, hv0)
