"""Validation at the public door: shapes, dtypes and finiteness of inputs and targets.

Every check raises ``ValueError`` naming the argument and, for non-finite values, the first bad
row and column.  Nothing is broadcast silently.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def check_dtype(dtype: object) -> np.dtype:
    """Return ``numpy.dtype(dtype)`` if it is float64 or float32, else raise ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:
        raise ValueError(f"`dtype` must be numpy.float64 or numpy.float32; got {dtype!r}.")
    return dt


def check_positive_int(value: object, name: str, allow_none: bool = False) -> int | None:
    """A positive integer (or None when ``allow_none``), else ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        alternative = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be a positive integer{alternative}; got {value!r}.")
    return int(value)


def check_positive_float(value: object, name: str) -> float:
    """A positive finite number, else ValueError naming ``name``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive number; got {value!r}.")
    return float(value)


def check_choice(value: object, name: str, known: tuple[str, ...]) -> str:
    """One of ``known``, else ValueError listing them."""
    if not isinstance(value, str) or value not in known:
        names = ", ".join(repr(k) for k in known)
        raise ValueError(f"`{name}` must be one of {names}; got {value!r}.")
    return value


def check_flag(value: object, name: str) -> bool:
    """True or False (Python or NumPy booleans), else ValueError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def as_float_array(value: object, name: str, dtype: np.dtype) -> Array:
    """Convert to a float array of ``dtype``; non-numeric content raises ValueError."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers; got an array of dtype {arr.dtype}.")
    return _cast(arr, name, dtype)


def _cast(arr: Array, name: str, dtype: np.dtype) -> Array:
    """``arr`` as a C-ordered array of ``dtype``; ValueError naming the first finite value
    that the cast would turn into infinity (e.g. 1e39 for float32), instead of calling it
    non-finite later."""
    if (arr.dtype == dtype or arr.dtype.kind != "f"
            or arr.dtype.itemsize <= np.dtype(dtype).itemsize):
        return np.asarray(arr, dtype=dtype, order="C")  # no narrowing: the common case
    with np.errstate(over="ignore"):
        out = np.asarray(arr, dtype=dtype, order="C")
    lost = np.isfinite(arr) & ~np.isfinite(out)
    if lost.any():
        bad = np.argwhere(lost)[0]
        where = f"row {bad[0]}" + (f", column {bad[1]}" if arr.ndim > 1 else "")
        raise ValueError(f"`{name}` value {float(arr[tuple(bad)])!r} at {where} is beyond "
                         f"the range of {np.dtype(dtype).name} (largest "
                         f"{float(np.finfo(dtype).max):.4g}); use a float64 network or "
                         "rescale the data.")
    return out


def check_finite(arr: Array, name: str) -> None:
    """Raise ValueError naming the first non-finite entry (row, column) of ``arr``."""
    if arr.dtype.kind in "biu":
        return
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = f"row {bad[0]}" + (f", column {bad[1]}" if arr.ndim > 1 else "")
        raise ValueError(f"`{name}` has a non-finite value ({arr[tuple(bad)]}) at {where}.")


def check_inputs(X: object, n_in: int, dtype: np.dtype, name: str = "X") -> Array:
    """Validate an input batch: 2-D (N, n_in), N ≥ 1, finite; returned as ``dtype``.

    Parameters
    ----------
    X : array_like (N, n_in)
    n_in : int
        The network's input width.
    dtype : numpy dtype
        The network's dtype; X is converted to it.
    """
    arr = as_float_array(X, name, dtype)
    if arr.ndim != 2:
        hint = " Use X.reshape(-1, 1) for a single feature." if arr.ndim == 1 else ""
        raise ValueError(
            f"`{name}` must be 2-D (n_samples, n_features); got shape {arr.shape}.{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` has no rows (shape {arr.shape}).")
    if arr.shape[1] != n_in:
        raise ValueError(
            f"`{name}` has {arr.shape[1]} columns but the network has {n_in} inputs."
        )
    check_finite(arr, name)
    return arr


def _labels_to_one_hot(T: Array, n_out: int, name: str, dtype: np.dtype) -> Array:
    """Integer class labels (N,) -> one-hot (N, n_out); labels must lie in [0, n_out)."""
    if T.dtype.kind == "f":
        check_finite(T, name)
        if not np.all(T == np.round(T)):
            bad = int(np.argmax(T != np.round(T)))
            raise ValueError(f"`{name}` holds a non-integer class label {T[bad]} at row {bad}.")
    out_of_range = (T < 0) | (T >= n_out)
    if out_of_range.any():
        bad = int(np.argmax(out_of_range))
        raise ValueError(
            f"`{name}` holds class label {T[bad]:g} at row {bad}; labels must lie in "
            f"0..{n_out - 1} for a network with {n_out} outputs."
        )
    labels = T.astype(np.int64)
    one_hot = np.zeros((labels.shape[0], n_out), dtype=dtype)
    one_hot[np.arange(labels.shape[0]), labels] = 1
    return one_hot


def check_targets(T: object, loss: str, n_out: int, n_samples: int, dtype: np.dtype,
                  name: str = "T") -> Array:
    """Validate targets for a loss and return them as (N, n_out) in ``dtype``.

    Accepted forms: (N, n_out) for every loss; (N,) when n_out == 1; (N,) integer class labels
    for "ce" (converted to one-hot).  "bce" targets lie in [0, 1]; "ce" target rows are
    non-negative and sum to one.
    """
    arr = np.asarray(T)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers; got an array of dtype {arr.dtype}.")
    if arr.ndim == 0 or arr.shape[0] != n_samples:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
        raise ValueError(f"`{name}` has {got} but X has {n_samples} rows.")
    if loss == "ce" and arr.ndim == 1:
        return _labels_to_one_hot(arr, n_out, name, dtype)
    if arr.ndim == 1 and n_out == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_out:
        raise ValueError(
            f"`{name}` must have shape ({n_samples}, {n_out}) for a network with {n_out} "
            f"outputs; got shape {arr.shape}."
        )
    arr = _cast(arr, name, dtype)
    check_finite(arr, name)
    _check_target_range(arr, loss, name)
    return arr


def _check_target_range(arr: Array, loss: str, name: str) -> None:
    if loss in ("bce", "ce") and ((arr < 0) | (arr > 1)).any():
        bad = np.argwhere((arr < 0) | (arr > 1))[0]
        raise ValueError(
            f"`{name}` for loss {loss!r} must lie in [0, 1]; got {arr[tuple(bad)]} at row "
            f"{bad[0]}, column {bad[1]}."
        )
    if loss == "ce":
        sums = arr.sum(axis=1)
        tol = 1e-6 if arr.dtype == np.float64 else 1e-4
        off = np.abs(sums - 1) > tol
        if off.any():
            bad = int(np.argmax(off))
            raise ValueError(
                f"`{name}` rows for loss 'ce' must sum to 1 (one-hot or probabilities); row "
                f"{bad} sums to {sums[bad]}. Pass integer labels as a 1-D array."
            )
