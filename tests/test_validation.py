"""Bad input → ValueError naming what and where (issue 2, point 7); never a silent broadcast.

The helpers of ``deltaprop._validation`` are tested directly and through every public door
(``mlp``, ``Network``, ``forward``, ``loss``, ``gradient``, ``input_gradient``, ``backward``,
``check_gradient``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import deltaprop
from deltaprop import Activation, Dense, Network, check_gradient, mlp
from deltaprop._validation import (
    as_float_array,
    check_dtype,
    check_finite,
    check_inputs,
    check_targets,
)

KNOWN_ACTS = r"'identity', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'softplus', 'elu'"


@pytest.fixture
def net():
    return mlp([2, 3, 2], seed=0)


@pytest.fixture
def clf():
    return mlp([2, 3, 3], output="softmax", loss="ce", seed=0)


def _doors(network):
    """Every public method that takes (X, T)."""
    return [network.loss, network.gradient, network.input_gradient,
            lambda X, T: check_gradient(network, X, T)]


# ---------------------------------------------------------------------------- dtype
@pytest.mark.parametrize("dtype", [np.float64, np.float32, "float32", np.dtype("float64")])
def test_check_dtype_accepts_float64_and_float32(dtype):
    assert check_dtype(dtype) == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.int64, int, np.complex128, object, "float",
                                   np.longdouble])
def test_check_dtype_rejects(dtype):
    if np.dtype(np.longdouble) == np.float64 and dtype is np.longdouble:
        pytest.skip("longdouble is float64 on this platform")
    if dtype == "float":  # numpy reads "float" as float64: accepted
        assert check_dtype(dtype) == np.float64
        return
    with pytest.raises(ValueError, match=r"`dtype` must be numpy.float64 or numpy.float32; got"):
        check_dtype(dtype)


@pytest.mark.parametrize("dtype", ["nonsense", [1, 2]])
def test_check_dtype_rejects_unreadable_specs(dtype):
    with pytest.raises(ValueError, match=r"`dtype` must be numpy.float64 or numpy.float32; got"):
        check_dtype(dtype)
    with pytest.raises(ValueError, match=r"`dtype` must be numpy.float64 or numpy.float32; got"):
        mlp([2, 1], dtype=dtype)


def test_mlp_rejects_bad_dtype():
    with pytest.raises(ValueError, match=r"`dtype` must be numpy.float64 or numpy.float32"):
        mlp([2, 1], dtype=np.float16)


# ---------------------------------------------------------------------------- X
@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros(2), r"`X` must be 2-D \(n_samples, n_features\); got shape \(2,\)\. "
                      r"Use X.reshape\(-1, 1\)"),
        (np.zeros((1, 2, 1)), r"`X` must be 2-D .*got shape \(1, 2, 1\)\.$"),
        (np.zeros((0, 2)), r"`X` has no rows \(shape \(0, 2\)\)"),
        (np.zeros((4, 3)), r"`X` has 3 columns but the network has 2 inputs"),
        (np.zeros((4, 1)), r"`X` has 1 columns but the network has 2 inputs"),
        (np.array([["a", "b"]]), r"`X` must hold real numbers; got an array of dtype <U1"),
        (np.zeros((1, 2), complex), r"`X` must hold real numbers; got an array of dtype complex"),
        (np.array([[1, None]], dtype=object), r"`X` must hold real numbers.*object"),
    ],
)
def test_bad_X_shape_or_kind(net, X, match):
    for door in [net.forward, *(lambda X, f=f: f(X, np.zeros((4, 2))) for f in _doors(net))]:
        with pytest.raises(ValueError, match=match):
            door(X)


def test_scalar_X_reports_its_shape(net):
    with pytest.raises(ValueError, match=r"`X` must be 2-D .*got shape \(\)\.$"):
        net.forward(1.0)


@pytest.mark.parametrize(
    ("row", "col", "value", "shown"),
    [(0, 0, np.nan, "nan"), (2, 1, np.inf, "inf"), (3, 0, -np.inf, "-inf")],
)
def test_non_finite_X_names_first_bad_row_and_column(net, row, col, value, shown):
    X = np.ones((4, 2))
    X[row, col] = value
    X[3, 1] = np.nan  # a later bad entry is not the one reported (unless it is the first)
    for door in _doors(net):
        with pytest.raises(ValueError, match=rf"`X` has a non-finite value \({shown}\) at "
                                             rf"row {row}, column {col}\."):
            door(X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=rf"row {row}, column {col}"):
        net.forward(X)


def test_check_inputs_converts_and_keeps_valid_input():
    X = [[1, 2], [3, 4]]
    out = check_inputs(X, 2, np.dtype(np.float32))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, X)
    Xf = np.asfortranarray(np.ones((3, 2)))
    assert check_inputs(Xf, 2, np.dtype(np.float64)).flags.c_contiguous
    assert check_inputs(np.array([[True, False]]), 2, np.dtype(np.float64)).dtype == np.float64
    with pytest.raises(ValueError, match=r"`Z` must be 2-D"):
        check_inputs(np.zeros(3), 3, np.dtype(np.float64), name="Z")


def test_as_float_array_and_check_finite():
    assert as_float_array([1, 2], "v", np.dtype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"`v` must hold real numbers"):
        as_float_array(["x"], "v", np.dtype(np.float64))
    check_finite(np.array([1, 2]), "ints")  # integers are always finite
    with pytest.raises(ValueError, match=r"`v` has a non-finite value \(nan\) at row 2\.$"):
        check_finite(np.array([0.0, 1.0, np.nan, np.nan]), "v")


# ---------------------------------------------------------------------------- T (regression)
@pytest.mark.parametrize(
    ("T", "match"),
    [
        (np.zeros((3, 2)), r"`T` has 3 rows but X has 4 rows"),
        (np.zeros((5,)), r"`T` has 5 rows but X has 4 rows"),
        (0.0, r"`T` has a scalar but X has 4 rows"),
        (np.zeros((4, 3)), r"`T` must have shape \(4, 2\) for a network with 2 outputs; "
                           r"got shape \(4, 3\)"),
        (np.zeros((4, 1)), r"`T` must have shape \(4, 2\).*got shape \(4, 1\)"),
        (np.zeros(4), r"`T` must have shape \(4, 2\).*got shape \(4,\)"),  # no broadcast
        (np.zeros((4, 2, 1)), r"`T` must have shape \(4, 2\).*got shape \(4, 2, 1\)"),
        (np.full((4, 2), "a"), r"`T` must hold real numbers; got an array of dtype <U1"),
    ],
)
def test_bad_T_shape(net, T, match):
    for door in _doors(net):
        with pytest.raises(ValueError, match=match):
            door(np.zeros((4, 2)), T)


def test_one_dimensional_T_is_accepted_for_one_output():
    reg = mlp([2, 3, 1], seed=0)
    X, t = np.ones((4, 2)), np.arange(4.0)
    assert reg.loss(X, t) == reg.loss(X, t.reshape(-1, 1))
    np.testing.assert_array_equal(reg.gradient(X, t)[1], reg.gradient(X, t.reshape(-1, 1))[1])


def test_non_finite_T_names_first_bad_row_and_column(net):
    T = np.zeros((4, 2))
    T[1, 1], T[2, 0] = np.inf, np.nan
    for door in _doors(net):
        with pytest.raises(ValueError, match=r"`T` has a non-finite value \(inf\) at row 1, "
                                             r"column 1\."):
            door(np.zeros((4, 2)), T)
    reg = mlp([2, 1], seed=0)
    with pytest.raises(ValueError, match=r"`T` has a non-finite value \(nan\) at row 3, column 0"):
        reg.loss(np.zeros((4, 2)), np.array([0, 0, 0, np.nan]))


# ---------------------------------------------------------------------------- T (classification)
@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 1, 3], r"`T` holds class label 3 at row 2; labels must lie in 0\.\.2 for a network "
                    r"with 3 outputs"),
        ([0, -1, 2], r"`T` holds class label -1 at row 1; labels must lie in 0\.\.2"),
        ([0.0, 1.5, 2.0], r"`T` holds a non-integer class label 1\.5 at row 1"),
        ([np.nan, 1.0, 2.0], r"`T` has a non-finite value \(nan\) at row 0\."),
        ([0.0, 1.0, 3.0], r"`T` holds class label 3 at row 2"),
    ],
)
def test_bad_class_labels(clf, labels, match):
    for door in _doors(clf):
        with pytest.raises(ValueError, match=match):
            door(np.zeros((3, 2)), np.array(labels))


def test_huge_float_class_label_is_a_clean_value_error(clf):
    with pytest.raises(ValueError, match=r"`T` holds class label .* at row 1"):
        clf.loss(np.zeros((2, 2)), np.array([0.0, 1e20]))


def test_class_labels_in_every_integer_form_agree(clf):
    X = np.random.default_rng(0).normal(size=(3, 2))
    one_hot = np.eye(3)[[2, 0, 1]]
    expected = clf.loss(X, one_hot)
    for labels in ([2, 0, 1], np.array([2, 0, 1], np.uint8), np.array([2.0, 0.0, 1.0])):
        assert clf.loss(X, labels) == expected
    assert check_targets(np.array([True, False]), "ce", 2, 2,
                         np.dtype(np.float64)).tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    ("loss", "output", "T", "match"),
    [
        ("bce", "sigmoid", [[1.5, 0.0]], r"`T` for loss 'bce' must lie in \[0, 1\]; got 1\.5 at "
                                         r"row 0, column 0"),
        ("bce", "sigmoid", [[0.0, -0.1]], r"got -0\.1 at row 0, column 1"),
        ("ce", "softmax", [[0.5, 0.6]], r"`T` rows for loss 'ce' must sum to 1 .*row 0 sums to "
                                        r"1\.1"),
        ("ce", "softmax", [[1.5, -0.5]], r"`T` for loss 'ce' must lie in \[0, 1\]; got 1\.5"),
        ("bce", "sigmoid", [0.0, 1.0], r"`T` must have shape \(2, 2\).*got shape \(2,\)"),
    ],
)
def test_target_ranges(loss, output, T, match):
    network = mlp([2, 2], output=output, loss=loss, seed=0)
    T = np.array(T)
    X = np.zeros((T.shape[0], 2))
    with pytest.raises(ValueError, match=match):
        network.loss(X, T)


def test_mse_targets_are_not_range_checked():
    network = mlp([2, 2], output="sigmoid", loss="mse", seed=0)
    assert np.isfinite(network.loss(np.zeros((1, 2)), [[5.0, -5.0]]))


def test_ce_probability_rows_tolerance_depends_on_dtype():
    T = np.array([[0.5, 0.5 + 1e-5]])
    with pytest.raises(ValueError, match="must sum to 1"):
        check_targets(T, "ce", 2, 1, np.dtype(np.float64))
    out = check_targets(T, "ce", 2, 1, np.dtype(np.float32))  # float32 rounding allowed
    assert out.dtype == np.float32


# ---------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    ("sizes", "match"),
    [
        ([3], r"`sizes` needs at least two entries \[n_in, \.\.\., n_out\]; got \[3\]"),
        ([], r"`sizes` needs at least two entries"),
        ([2, 0, 1], r"`sizes\[1\]` must be a positive integer; got 0"),
        ([2, 3, -1], r"`sizes\[2\]` must be a positive integer; got -1"),
        ([2.0, 3, 1], r"`sizes\[0\]` must be a positive integer; got 2\.0"),
        ([2, "3", 1], r"`sizes\[1\]` must be a positive integer; got '3'"),
        ([2, True, 1], r"`sizes\[1\]` must be a positive integer; got True"),
        (3, r"`sizes` must be a sequence of layer widths; got 3"),
        ("23", r"`sizes` must be a sequence of layer widths; got '23'"),
    ],
)
def test_bad_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        mlp(sizes)


def test_sizes_accept_tuples_and_numpy_integers():
    assert mlp((2, np.int64(3), 1), seed=0).sizes == [2, 3, 1]


@pytest.mark.parametrize("name", ["swish", "softmax", "Tanh", None])
def test_unknown_hidden_activation_lists_known(name):
    with pytest.raises(ValueError, match=rf"`activation` must be one of {KNOWN_ACTS}; got"):
        mlp([2, 3, 1], activation=name)


def test_unknown_output_activation_lists_known():
    with pytest.raises(ValueError, match=rf"`output` must be one of {KNOWN_ACTS}, 'softmax'; "
                                         r"got 'linear'"):
        mlp([2, 1], output="linear")


def test_unknown_loss_lists_known():
    with pytest.raises(ValueError, match=r"`loss` must be one of 'sse', 'mse', 'bce', 'ce'; "
                                         r"got 'l1'"):
        mlp([2, 1], loss="l1")


@pytest.mark.parametrize(
    ("output", "loss", "match"),
    [
        ("identity", "bce", r'`loss="bce"` needs `output="sigmoid"`; got output=\'identity\''),
        ("softmax", "bce", r'`loss="bce"` needs `output="sigmoid"`; got output=\'softmax\''),
        ("identity", "ce", r'`loss="ce"` needs `output="softmax"`; got output=\'identity\''),
        ("sigmoid", "ce", r'`loss="ce"` needs `output="softmax"`; got output=\'sigmoid\''),
        ("softmax", "mse", r'`output="softmax"` needs `loss="ce"`; got loss=\'mse\''),
        ("softmax", "sse", r'`output="softmax"` needs `loss="ce"`; got loss=\'sse\''),
    ],
)
def test_loss_output_mismatch(output, loss, match):
    with pytest.raises(ValueError, match=match):
        mlp([2, 3, 2], output=output, loss=loss)
    with pytest.raises(ValueError, match=match):
        Network([Dense(2, 2), Activation(output)], loss)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (lambda: [Dense(2, 3), Activation("tanh"), Dense(4, 1)],
         r"`layers\[2\]` expects 4 inputs but the previous Dense layer has 3 outputs"),
        (lambda: [Dense(2, 3), Dense(2, 1)],
         r"`layers\[1\]` expects 2 inputs but the previous Dense layer has 3 outputs"),
        (lambda: [Activation("tanh"), Dense(2, 1)],
         r"`layers\[0\]` is an activation that follows no Dense layer"),
        (lambda: [Dense(2, 3), Activation("tanh"), Activation("tanh"), Dense(3, 1)],
         r"`layers\[2\]` is an activation that follows no Dense layer"),
        (lambda: [Dense(2, 1), "tanh"], r"`layers\[1\]` must be a Dense or an Activation; "
                                        r"got 'tanh'"),
        (lambda: [], r"`layers` must contain at least one Dense layer"),
        (lambda: [Dense(2, 3), Activation("softmax"), Dense(3, 1)],
         r"hidden activation 0 is softmax; only the output may be"),
        (lambda: [Dense(2, 3, dtype=np.float32), Dense(3, 1)],
         r"`layers` mix dtypes \['float32', 'float64'\]; use one dtype"),
        (lambda: [Dense(2, 1, dtype=np.float16)], r"`dtype` must be numpy.float64 or"),
    ],
)
def test_network_from_mismatched_layers(layers, match):
    with pytest.raises(ValueError, match=match):
        Network(layers(), "mse")


def test_backward_grad_output_shape(net):
    with pytest.raises(ValueError, match=r"`grad_output` must match the last forward output of "
                                         r"shape None; got \(4, 2\)"):
        mlp([2, 2], seed=0).backward(np.ones((4, 2)))  # no forward pass yet
    net.forward(np.ones((4, 2)))
    for G in (np.ones((4, 1)), np.ones((2,)), np.ones((3, 2)), np.ones((4, 2, 1))):
        msg = f"`grad_output` must match the last forward output of shape (4, 2); got {G.shape}."
        with pytest.raises(ValueError, match=re.escape(msg)):
            net.backward(G)


def test_backward_accepts_array_like(net):
    net.forward(np.ones((1, 2)))
    np.testing.assert_array_equal(net.backward([[1.0, 0.0]]), net.backward(np.array([[1.0, 0.0]])))


def test_check_gradient_rejects_bad_options(net):
    X, T = np.ones((2, 2)), np.zeros((2, 2))
    for eps in (0.0, -1e-6, np.nan, np.inf):
        with pytest.raises(ValueError, match=r"`eps` must be a positive number; got"):
            check_gradient(net, X, T, eps=eps)
    for directions in (0, -3, True):
        with pytest.raises(ValueError, match=r"`directions` must be a positive integer; got"):
            check_gradient(net, X, T, directions=directions)


def test_validation_errors_are_value_errors_only():
    """No TypeError/IndexError escapes from the public door for the usual mistakes."""
    network = deltaprop.mlp([2, 1], seed=0)
    for X, T in [(None, [0.0]), ([[1.0, 2.0]], None), ([[1.0, 2.0]], "a"), ({}, [0.0])]:
        with pytest.raises(ValueError):
            network.loss(X, T)


def test_finite_data_beyond_float32_is_not_called_non_finite():
    """A float32 network given 1e39 said "non-finite value (inf)" (issue 13, item 2)."""
    network = deltaprop.mlp([2, 1], seed=0, dtype=np.float32)
    message = r"value 1e\+39 at row 1, column 0 is beyond the range of float32"
    with pytest.raises(ValueError, match="`X` " + message):
        network.forward([[1.0, 2.0], [1e39, 0.0]])
    with pytest.raises(ValueError, match="`T` " + message):
        network.loss([[1.0, 2.0], [3.0, 4.0]], [[0.0], [1e39]])
    with pytest.raises(ValueError, match="non-finite value"):
        network.forward([[1.0, 2.0], [np.inf, 0.0]])
