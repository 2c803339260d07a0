"""Safe model files: parameter arrays and one JSON document in a NumPy ``.npz`` archive.

A model file never holds a pickle, so loading one never runs code.  The archive (written by
:func:`numpy.savez`, uncompressed) contains exactly

==========  =====================  ========================================================
key         dtype, shape           content
==========  =====================  ========================================================
``model``   uint8 (n_bytes,)       the UTF-8 bytes of one JSON document (below)
``W0``      float (n_1, n_in_0)    weights of Dense layer 0 (rows: outputs, columns: inputs;
                                   n_in_l = n_l for "mlp", n_0 + ... + n_l for "cascade")
``b0``      float (n_1,)           biases of Dense layer 0
...         ...                    ``W{l}``, ``b{l}`` for every Dense layer l = 0..L-1
==========  =====================  ========================================================

and the JSON document is an object with exactly these keys::

    {"format": "deltaprop-model",
     "format_version": 2,
     "architecture": {"sizes": [n_0, ..., n_L],
                      "hidden_activations": ["tanh", ...],      # L - 1 names
                      "output_activation": "identity",
                      "loss": "mse",
                      "topology": "mlp",                        # or "cascade"
                      "dtype": "float64"},                      # or "float32"
     "metadata": {...}}                                         # the caller's, any JSON object

Version 1 files (written before the cascade topology existed) have no ``topology`` and are
read as "mlp".  The float arrays have the architecture's dtype exactly and finite values.
Loading needs memory bounded by the file's size: compressed members are refused (deltaprop
never writes them, and a 1 MB deflate member can expand to gigabytes), every member's declared
size must match its ``.npy`` header's shape and fit in the file, the JSON document may hold at
most ``MAX_DOCUMENT_BYTES``, and only then are arrays read.  The JSON is strict (no NaN or
Infinity): :func:`to_jsonable` turns numpy arrays and scalars into lists and numbers and
non-finite floats into ``null``; :func:`metadata_array` reads such a list back as a checked
array.  Loading (:func:`load_model`) uses ``numpy.load(..., allow_pickle=False)`` and checks
every key, type, shape and value; anything else raises :class:`ModelFileError` naming the file.
Saving (:func:`save_model`) writes through :func:`deltaprop.outputs.write_atomically`: a
temporary file in the target's folder renamed over the target, so an interrupted save never
leaves a half-written model, and the temporary file is removed on every failure.

Examples
--------
>>> import os, tempfile, numpy as np, deltaprop
>>> from deltaprop.model_io import save_model, load_model
>>> net = deltaprop.mlp([2, 3, 1], seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> save_model(path, net, {"feature_names": ["a", "b"], "x_mean": np.zeros(2)})
>>> net2, meta = load_model(path)
>>> bool(np.array_equal(net2.params, net.params)), meta["x_mean"]
(True, [0.0, 0.0])
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from .layers import Dense
from .losses import LOSSES, make_head
from .network import TOPOLOGIES, Network, NetworkSpec
from .outputs import OutputError, write_atomically

Array = np.ndarray
PathLike = str | os.PathLike

FORMAT_NAME = "deltaprop-model"
FORMAT_VERSION = 2
#: Versions this deltaprop reads: 1 (no ``topology``: an mlp) and 2.
READ_VERSIONS = (1, 2)
JSON_KEY = "model"
DTYPES = ("float64", "float32")

_TOP_KEYS = ("format", "format_version", "architecture", "metadata")
_ARCH_KEYS = ("sizes", "hidden_activations", "output_activation", "loss", "topology", "dtype")
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_WIDTH = 10**7
#: The largest JSON document a model file may hold, in bytes.  An estimator's loss curves of
#: 10 001 epochs take under 1 MB and the names and scaling of 100 000 features about 6 MB;
#: parsing the largest document allowed takes at most a few hundred MB of Python objects.
MAX_DOCUMENT_BYTES = 16 * 2**20
_COMPRESSION_NAMES = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                      zipfile.ZIP_LZMA: "lzma"}


class ModelFileError(ValueError):
    """A model file that cannot be written, or read back as a deltaprop model."""

    def __init__(self, path: PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# ---------------------------------------------------------------------------- JSON helpers
def to_jsonable(value: Any, where: str = "metadata") -> Any:
    """Convert nested metadata to plain JSON types.

    dicts (string keys) and lists/tuples are converted recursively, numpy arrays via
    ``tolist()``, numpy scalars to Python numbers, non-finite floats to ``None``.

    Raises
    ------
    ValueError
        Naming the offending entry (e.g. ``metadata['scaler'][2]``) for anything else.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"`{where}` has a key {key!r} that is not a string.")
            out[key] = to_jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"`{where}` holds {type(value).__name__} {value!r}, which JSON cannot store.")


def metadata_array(
    metadata: Mapping[str, Any],
    key: str,
    *,
    dtype: type | np.dtype = np.float64,
    shape: tuple[int | None, ...] | None = None,
    path: PathLike = "<metadata>",
) -> Array:
    """Read ``metadata[key]`` (a nested list written by :func:`to_jsonable`) as a checked array.

    Parameters
    ----------
    metadata : mapping
        The metadata returned by :func:`load_model`.
    key : str
    dtype : numpy dtype
        A float dtype (values must be finite numbers), an integer dtype, or ``str``.
    shape : tuple of (int or None), optional
        Expected shape; None entries match any length.
    path : path-like
        The model file, named in errors.

    Raises
    ------
    ModelFileError
        If the key is missing or the value has the wrong type, shape or non-finite values.
    """
    if key not in metadata:
        raise ModelFileError(path, f"metadata has no {key!r} entry.")
    dt = np.dtype(dtype)
    raw = metadata[key]
    try:
        if dt.kind in "fiu":
            _check_numbers(raw, dt.kind == "f")
        elif dt.kind == "U":
            _check_strings(raw)
        arr = np.array(raw, dtype=dt)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(path, f"metadata {key!r} is not an array of {dt.name}: {exc}") from exc
    if dt.kind == "f" and not np.all(np.isfinite(arr)):
        raise ModelFileError(path, f"metadata {key!r} holds non-finite values.")
    if shape is not None and (arr.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(arr.shape, shape, strict=True))):
        raise ModelFileError(path, f"metadata {key!r} has shape {arr.shape}; expected {shape}.")
    return arr


def _check_numbers(raw: Any, allow_float: bool) -> None:
    """Raise TypeError unless ``raw`` is a (nested list of) int, or float when allowed."""
    if isinstance(raw, list):
        for item in raw:
            _check_numbers(item, allow_float)
    elif isinstance(raw, bool) or not isinstance(raw, (int, float) if allow_float else int):
        raise TypeError(f"{raw!r} is not a number of that kind")


def _check_strings(raw: Any) -> None:
    if isinstance(raw, list):
        for item in raw:
            _check_strings(item)
    elif not isinstance(raw, str):
        raise TypeError(f"{raw!r} is not a string")


# ---------------------------------------------------------------------------- saving
def save_model(path: PathLike, net: Network, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a network and metadata to a model file, atomically.

    Parameters
    ----------
    path : str or path-like
        The file to write, used exactly as given (no ``.npz`` is appended); an existing
        file is replaced only once the new one is complete.
    net : Network
        Its parameters must be finite.
    metadata : mapping, optional
        Anything :func:`to_jsonable` accepts (scaling, names, class labels, training
        summary...); numpy arrays are stored as nested lists.

    Raises
    ------
    ValueError
        If ``net`` is not a Network, holds non-finite parameters, or ``metadata`` cannot be
        stored as JSON or takes more than ``MAX_DOCUMENT_BYTES`` as JSON.
    ModelFileError
        If the file cannot be written (a directory, a missing folder, no permission...).
    """
    if not isinstance(net, Network):
        raise ValueError(f"`net` must be a deltaprop Network; got {type(net).__name__}.")
    others = {type(layer).__name__ for layer in net.dense_layers if type(layer) is not Dense}
    if others:
        raise ValueError(f"model files hold Dense layers only; `net` has {sorted(others)}.")
    if not np.all(np.isfinite(net.params)):
        raise ValueError("`net.params` holds non-finite values; refusing to save the model.")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValueError(f"`metadata` must be a dict; got {type(metadata).__name__}.")
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": architecture(net),
        "metadata": to_jsonable(dict(metadata or {})),
    }
    raw = json.dumps(document, allow_nan=False, ensure_ascii=False).encode("utf-8")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"`metadata` takes {len(raw)} bytes as JSON, more than the "
                         f"{MAX_DOCUMENT_BYTES} a model file may hold; refusing to save a "
                         "model that would not load back.")
    arrays = {JSON_KEY: np.frombuffer(raw, dtype=np.uint8)}
    for i, layer in enumerate(net.dense_layers):
        arrays[f"W{i}"] = np.array(layer.W, dtype=net.dtype)
        arrays[f"b{i}"] = np.array(layer.b, dtype=net.dtype)
    _write_atomically(path, arrays)


def architecture(net: Network) -> dict[str, Any]:
    """The ``architecture`` entry of a model file for ``net`` (sizes, activations, loss, dtype)."""
    names = net.activation_names
    return {
        "sizes": [int(s) for s in net.sizes],
        "hidden_activations": list(names[:-1]),
        "output_activation": names[-1],
        "loss": net.loss_name,
        "topology": net.topology,
        "dtype": np.dtype(net.dtype).name,
    }


def _write_atomically(path: PathLike, arrays: dict[str, Array]) -> None:
    """``numpy.savez`` (uncompressed) into ``path`` through a temporary file and a rename."""

    def write(fh: Any) -> None:
        np.savez(fh, **arrays)

    try:
        write_atomically(path, write)
    except OutputError as exc:
        raise ModelFileError(path, exc.problem) from exc


# ---------------------------------------------------------------------------- loading
def load_model(path: PathLike) -> tuple[Network, dict[str, Any]]:
    """Read a model file written by :func:`save_model`, checking everything in it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    net : Network
        Parameters bit-identical to the saved ones, in the saved dtype.
    metadata : dict
        The caller's metadata as stored (arrays come back as lists; see
        :func:`metadata_array`).

    Raises
    ------
    ModelFileError
        With the file name and the problem: missing, a directory, empty, not an ``.npz``
        archive, truncated or corrupt, holding a pickled object, lacking the JSON document
        or holding bad JSON, another format or format version, a bad architecture, missing,
        extra, misshapen, wrongly typed or non-finite arrays.
    """
    p = _check_file(path)
    headers = _scan_headers(p)
    with _open_npz(p) as npz:
        document = _read_document(p, npz, headers)
        arch = _check_document(p, document)
        expected = _expected_arrays(arch)
        _compare_headers(p, headers, expected)
        arrays = {key: _read_array(p, npz, key) for key in expected}
    return _build(p, arch, arrays), document["metadata"]


def _check_file(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a file name; got {type(path).__name__}.")
    p = os.fspath(path)
    if not os.path.lexists(p):
        raise ModelFileError(p, "no such file.")
    if os.path.isdir(p):
        raise ModelFileError(p, "is a directory, not a model file.")
    if not os.path.isfile(p):
        raise ModelFileError(p, "is not a regular file.")
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise ModelFileError(p, f"cannot read: {exc.strerror or exc}.") from exc
    if not head:
        raise ModelFileError(p, "is empty.")
    if head != _ZIP_MAGIC:
        raise ModelFileError(p, "is not a deltaprop model file (not an .npz archive).")
    return p


#: What reading a damaged archive raises (NotImplementedError: unknown compression,
#: RuntimeError: an encrypted member).
_CORRUPT = (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, ValueError,
            NotImplementedError, RuntimeError)


def _scan_headers(p: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every member from its .npy header, reading no array data.

    Refuses compressed members, and members whose declared sizes do not fit in the file or
    disagree with their headers, so reading the arrays later allocates at most the file's size.
    """
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            _check_members(p, infos, os.path.getsize(p))
            for info in infos:
                if info.filename[:-4] in headers:
                    raise ModelFileError(p, f"holds two members named {info.filename!r}.")
                headers[info.filename[:-4]] = _member_header(p, zf, info)
    except _CORRUPT as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(p, f"is truncated or corrupt ({exc}).") from exc
    pickled = sorted(key for key, (_, dtype) in headers.items() if dtype.hasobject)
    if pickled:
        raise ModelFileError(p, f"holds a pickled object (array {pickled[0]!r}); refusing to load.")
    return headers


def _check_members(p: str, infos: list[zipfile.ZipInfo], archive_bytes: int) -> None:
    """Only stored (uncompressed) .npy members whose declared sizes fit in the archive."""
    declared = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(p, f"holds {info.filename!r}, which is not an array.")
        if info.compress_type != zipfile.ZIP_STORED:
            method = _COMPRESSION_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise ModelFileError(p, f"member {info.filename!r} is compressed ({method}); "
                                    "deltaprop writes uncompressed members only, so it refuses "
                                    "to expand it.")
        declared += info.file_size
    if declared > archive_bytes:
        raise ModelFileError(p, f"its members declare {declared} bytes but the file holds "
                                f"{archive_bytes}; refusing to load.")


def _member_header(p: str, zf: zipfile.ZipFile,
                   info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a member's .npy header, checked against the member's size."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(fh)
        data_bytes = info.file_size - fh.tell()
    claimed = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and claimed != data_bytes:
        raise ModelFileError(p, f"array {info.filename[:-4]!r} claims {dtype} {shape} "
                                f"({claimed} bytes) but its member holds {data_bytes} bytes; "
                                "refusing to load.")
    return shape, dtype


def _open_npz(p: str) -> Any:
    try:
        return np.load(p, allow_pickle=False)
    except _CORRUPT as exc:
        raise ModelFileError(p, f"is truncated or corrupt ({exc}).") from exc


def _read_array(p: str, npz: Any, key: str) -> Array:
    try:
        arr = npz[key]
    except ValueError as exc:
        if "pickle" in str(exc) or "bject arrays" in str(exc):
            raise ModelFileError(p, "holds a pickled object; refusing to load.") from exc
        raise ModelFileError(p, f"array {key!r} is corrupt ({exc}).") from exc
    except _CORRUPT as exc:
        raise ModelFileError(p, f"is truncated or corrupt ({exc}).") from exc
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ModelFileError(p, f"array {key!r} holds non-finite values.")
    return arr


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a model file")


def _read_document(p: str, npz: Any, headers: dict) -> dict[str, Any]:
    """Decode and parse the JSON document (the ``model`` array of UTF-8 bytes)."""
    if JSON_KEY not in headers:
        raise ModelFileError(p, f"has no {JSON_KEY!r} JSON document; not a deltaprop model file.")
    shape, dtype = headers[JSON_KEY]
    if dtype != np.uint8 or len(shape) != 1:
        raise ModelFileError(
            p, f"array {JSON_KEY!r} must be uint8 bytes of shape (n,); got {dtype} {shape}."
        )
    if shape[0] > MAX_DOCUMENT_BYTES:
        raise ModelFileError(p, f"its JSON document holds {shape[0]} bytes, more than the "
                                f"{MAX_DOCUMENT_BYTES} a model file may; refusing to load.")
    raw = _read_array(p, npz, JSON_KEY)
    try:
        document = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=_no_duplicates,
                              parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(p, f"holds bad JSON in {JSON_KEY!r} ({exc}).") from exc
    if not isinstance(document, dict):
        raise ModelFileError(p, f"the JSON document is a {type(document).__name__}, not an object.")
    return document


def _check_keys(p: str, where: str, found: Mapping[str, Any], wanted: Sequence[str]) -> None:
    missing = [k for k in wanted if k not in found]
    extra = sorted(set(found) - set(wanted))
    if missing:
        raise ModelFileError(p, f"{where} lacks {', '.join(map(repr, missing))}.")
    if extra:
        raise ModelFileError(p, f"{where} has unexpected {', '.join(map(repr, extra))}.")


def _check_document(p: str, document: dict[str, Any]) -> dict[str, Any]:
    """Check the JSON document's format, version and keys; return its architecture."""
    if document.get("format") != FORMAT_NAME:
        raise ModelFileError(
            p, f"is not a deltaprop model: format {document.get('format')!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(p, f"format_version must be an integer; got {version!r}.")
    if version not in READ_VERSIONS:
        raise ModelFileError(
            p, f"made by format version {version}; this deltaprop reads versions "
               f"{', '.join(map(str, READ_VERSIONS))}."
        )
    _check_keys(p, "the JSON document", document, _TOP_KEYS)
    if not isinstance(document["metadata"], dict):
        raise ModelFileError(p, "metadata must be a JSON object.")
    arch = document["architecture"]
    if not isinstance(arch, dict):
        raise ModelFileError(p, "architecture must be a JSON object.")
    if version == 1:  # before the cascade topology: every network was an mlp
        _check_keys(p, "architecture", arch, [k for k in _ARCH_KEYS if k != "topology"])
        arch = {**arch, "topology": "mlp"}
    _check_keys(p, "architecture", arch, _ARCH_KEYS)
    _check_architecture(p, arch)
    return arch


def _check_architecture(p: str, arch: dict[str, Any]) -> None:
    sizes = arch["sizes"]
    if (not isinstance(sizes, list) or len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= _MAX_WIDTH
            for s in sizes)):
        raise ModelFileError(p, f"architecture sizes must be >= 2 widths in [1, {_MAX_WIDTH}]; "
                                f"got {sizes!r}.")
    hidden = arch["hidden_activations"]
    if (not isinstance(hidden, list) or len(hidden) != len(sizes) - 2
            or any(not isinstance(a, str) or a not in ACTIVATIONS for a in hidden)):
        raise ModelFileError(p, f"architecture hidden_activations must be {len(sizes) - 2} of "
                                f"{', '.join(ACTIVATIONS)}; got {hidden!r}.")
    output, loss, dtype = arch["output_activation"], arch["loss"], arch["dtype"]
    if not isinstance(output, str) or output not in OUTPUT_ACTIVATIONS:
        raise ModelFileError(p, f"architecture output_activation {output!r} is unknown.")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ModelFileError(p, f"architecture loss {loss!r} is unknown.")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ModelFileError(p, f"architecture dtype must be one of {DTYPES}; got {dtype!r}.")
    if not isinstance(arch["topology"], str) or arch["topology"] not in TOPOLOGIES:
        raise ModelFileError(p, f"architecture topology must be one of {TOPOLOGIES}; got "
                                f"{arch['topology']!r}.")
    try:
        make_head(loss, output)
    except ValueError as exc:
        raise ModelFileError(p, f"architecture is inconsistent: {exc}") from exc


def _expected_arrays(arch: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    sizes, dtype = arch["sizes"], np.dtype(arch["dtype"])
    cascade = arch["topology"] == "cascade"
    expected = {JSON_KEY: None}
    for i, n_out in enumerate(sizes[1:]):
        n_in = sum(sizes[: i + 1]) if cascade else sizes[i]
        expected[f"W{i}"] = ((n_out, n_in), dtype)
        expected[f"b{i}"] = ((n_out,), dtype)
    return expected


def _compare_headers(p: str, headers: dict, expected: dict) -> None:
    """Every expected array present with its shape and dtype, nothing else."""
    missing = [key for key in expected if key not in headers]
    extra = sorted(set(headers) - set(expected))
    if missing:
        raise ModelFileError(p, f"lacks arrays {', '.join(map(repr, missing))} that its "
                                "architecture needs.")
    if extra:
        raise ModelFileError(p, f"holds unexpected arrays {', '.join(map(repr, extra))}.")
    for key, want in expected.items():
        if want is not None and headers[key] != want:
            (shape, dtype), (got_shape, got_dtype) = want, headers[key]
            raise ModelFileError(p, f"array {key!r} is {got_dtype} {got_shape}; its architecture "
                                    f"says {dtype} {shape}.")


def spec_of(arch: Mapping[str, Any]) -> NetworkSpec:
    """The :class:`~deltaprop.network.NetworkSpec` of a (checked) architecture entry."""
    return NetworkSpec(tuple(arch["sizes"]),
                       (*arch["hidden_activations"], arch["output_activation"]), arch["loss"],
                       arch["topology"], arch["dtype"])


def _build(p: str, arch: dict[str, Any], arrays: dict[str, Array]) -> Network:
    try:
        net = spec_of(arch).build()
    except ValueError as exc:
        raise ModelFileError(p, f"architecture is inconsistent: {exc}") from exc
    for i, layer in enumerate(net.dense_layers):
        layer.W[...] = arrays[f"W{i}"]
        layer.b[...] = arrays[f"b{i}"]
    return net
