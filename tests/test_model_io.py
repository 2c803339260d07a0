"""Model files: exact round trips, atomic writes, and refusal of every malformed file."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import deltaprop
from deltaprop.layers import Activation, Dense
from deltaprop.model_io import (
    FORMAT_VERSION,
    ModelFileError,
    load_model,
    metadata_array,
    save_model,
    to_jsonable,
)

ARCHITECTURES = [
    # sizes, hidden activation, output, loss, dtype
    ([2, 3, 1], "tanh", "identity", "mse", np.float64),
    ([3, 5, 4, 2], "relu", "identity", "sse", np.float32),
    ([4, 6, 1], "sigmoid", "sigmoid", "bce", np.float64),
    ([4, 5, 3], "elu", "softmax", "ce", np.float32),
    ([2, 1], "tanh", "identity", "mse", np.float64),
    ([3, 7, 7, 7, 2], "leaky_relu", "identity", "mse", np.float64),
    ([2, 4, 2], "softplus", "softmax", "ce", np.float64),
]


def _net(sizes=(3, 4, 2), dtype=np.float64, seed=0):
    return deltaprop.mlp(list(sizes), activation="tanh", seed=seed, dtype=dtype)


@pytest.fixture
def saved(tmp_path):
    """A good model file (3-4-2 tanh, mse) and its network."""
    net = _net()
    path = tmp_path / "model.npz"
    save_model(path, net, {"task": "regression"})
    return path, net


def _parts(path):
    """The JSON document and the arrays of a model file."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return json.loads(arrays.pop("model").tobytes()), arrays


def _craft(path, document, arrays):
    """Write an .npz holding ``document`` (a dict, or raw bytes) as the 'model' array."""
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with open(path, "wb") as fh:
        np.savez(fh, model=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return path


# ---------------------------------------------------------------------------- round trip
@pytest.mark.parametrize(("sizes", "activation", "output", "loss", "dtype"), ARCHITECTURES)
def test_round_trip_is_bit_identical(tmp_path, rng, sizes, activation, output, loss, dtype):
    net = deltaprop.mlp(sizes, activation=activation, output=output, loss=loss, seed=1,
                        dtype=dtype)
    net.params[:] = rng.standard_normal(net.n_params).astype(dtype)
    path = tmp_path / "m.npz"
    save_model(path, net, {"note": "hi"})
    loaded, meta = load_model(path)
    assert loaded.dtype == net.dtype and repr(loaded) == repr(net)
    assert loaded.params.tobytes() == net.params.tobytes()
    X = rng.standard_normal((9, sizes[0]))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    assert meta == {"note": "hi"}


def test_round_trip_of_mixed_hidden_activations(tmp_path, rng):
    layers = [Dense(2, 3, rng=rng), Activation("relu"), Dense(3, 4, rng=rng),
              Activation("sigmoid"), Dense(4, 1, rng=rng)]
    net = deltaprop.Network(layers, "sse")
    save_model(tmp_path / "m.npz", net)
    loaded, meta = load_model(str(tmp_path / "m.npz"))
    assert loaded.activation_names == ["relu", "sigmoid", "identity"] and meta == {}
    np.testing.assert_array_equal(loaded.params, net.params)


def test_metadata_with_numpy_values_round_trips(tmp_path):
    metadata = {
        "x_mean": np.array([1.5, -2.0]), "x_scale": np.float32(0.5), "classes": np.array([3, 7]),
        "names": ("a", "b"), "summary": {"epochs": np.int64(12), "val": [0.1, np.nan, None]},
        "grid": np.arange(6.0).reshape(2, 3),
    }
    save_model(tmp_path / "m.npz", _net(), metadata)
    _, meta = load_model(tmp_path / "m.npz")
    assert meta == to_jsonable(metadata)
    assert meta["summary"] == {"epochs": 12, "val": [0.1, None, None]}
    np.testing.assert_array_equal(metadata_array(meta, "x_mean", shape=(2,)), [1.5, -2.0])
    np.testing.assert_array_equal(metadata_array(meta, "grid", shape=(None, 3)),
                                  np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(metadata_array(meta, "classes", dtype=np.int64), [3, 7])
    assert metadata_array(meta, "names", dtype=str).tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("key", "kwargs", "match"),
    [
        ("missing", {}, "metadata has no 'missing' entry"),
        ("x_mean", {"shape": (3,)}, r"has shape \(2,\); expected \(3,\)"),
        ("with_null", {}, "not an array of float64"),
        ("x_mean", {"dtype": np.int64}, "not an array of int64"),
        ("ragged", {}, "not an array of float64"),
        ("names", {}, "not an array of float64"),
    ],
)
def test_metadata_array_refuses_bad_entries(key, kwargs, match):
    meta = {"x_mean": [1.5, 2.0], "with_null": [1.0, None], "ragged": [[1.0], [1.0, 2.0]],
            "names": ["a"]}
    with pytest.raises(ModelFileError, match=match) as info:
        metadata_array(meta, key, path="m.npz", **kwargs)
    assert str(info.value).startswith("m.npz: ")


def test_to_jsonable_names_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match=r"`metadata\['a'\]\[1\]` holds object"):
        to_jsonable({"a": [1, object()]})
    with pytest.raises(ValueError, match="key 3 that is not a string"):
        to_jsonable({3: 1})
    with pytest.raises(ValueError, match="JSON cannot store"):
        save_model(tmp_path / "m.npz", _net(), {"f": lambda: 0})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- writing
def test_path_is_kept_exactly_and_no_temp_file_remains(tmp_path):
    path = tmp_path / "model.bin"
    save_model(path, _net())
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert load_model(path)[0].sizes == [3, 4, 2]


def test_save_replaces_an_existing_model(saved):
    path, _ = saved
    other = _net((3, 8, 2), seed=5)
    save_model(path, other)
    assert load_model(path)[0].params.tobytes() == other.params.tobytes()


def test_interrupted_save_leaves_the_old_file_and_no_debris(saved, monkeypatch):
    path, _ = saved
    before = path.read_bytes()

    def crash(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, _net(seed=9))
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.npz"]


def test_save_refuses_bad_targets_and_bad_networks(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        save_model(tmp_path, _net())
    with pytest.raises(ModelFileError, match=r"folder .* does not exist"):
        save_model(tmp_path / "nope" / "m.npz", _net())
    net = _net()
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        save_model(tmp_path / "m.npz", net)
    with pytest.raises(ValueError, match="`net` must be a deltaprop Network"):
        save_model(tmp_path / "m.npz", "net")
    with pytest.raises(ValueError, match="`metadata` must be a dict"):
        save_model(tmp_path / "m.npz", _net(), [1, 2])
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- refusals
def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_directory_empty_and_foreign_files(tmp_path):
    _refused(tmp_path / "absent.npz", "no such file")
    _refused(tmp_path, "is a directory")
    (tmp_path / "empty.npz").write_bytes(b"")
    _refused(tmp_path / "empty.npz", "is empty")
    (tmp_path / "text.npz").write_text("a,b\n1,2\n")
    _refused(tmp_path / "text.npz", r"not an \.npz archive")
    np.save(tmp_path / "array.npy", np.zeros(3))
    _refused(tmp_path / "array.npy", r"not an \.npz archive")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(saved, fraction):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    _refused(path, "truncated or corrupt")


def test_flipped_bytes_in_the_json(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    start = data.index(b'"deltaprop-model"')
    data[start + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    _refused(path, "truncated or corrupt|bad JSON")


def test_flipped_bytes_in_the_weights(saved):
    path, net = saved
    data = bytearray(path.read_bytes())
    start = data.index(net.dense_layers[0].W.tobytes())
    data[start] ^= 0x01
    path.write_bytes(bytes(data))
    _refused(path, "truncated or corrupt")  # the zip's CRC-32 catches it


def _evil_marker(marker: str) -> None:
    Path(marker).write_text("unpickled!")


class Evil:
    """Unpickling this object writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_evil_marker, (self.marker,))


def test_the_evil_payload_works_when_unpickled(tmp_path):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()


@pytest.mark.parametrize("key", ["W0", "extra", "model"])
def test_pickled_object_array_is_refused_without_unpickling(saved, tmp_path, key):
    path, _ = saved
    document, arrays = _parts(path)
    marker = tmp_path / "marker"
    arrays[key] = np.array([Evil(marker), 1], dtype=object)
    evil = tmp_path / "evil.npz"
    if key == "model":
        with open(evil, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        _craft(evil, document, arrays)
    _refused(evil, "holds a pickled object.*refusing to load")
    assert not marker.exists()


def test_raw_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(Evil(marker)))
    _refused(path, "not an .npz archive")
    assert not marker.exists()


def test_member_that_is_not_an_array(saved):
    path, _ = saved
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("readme.txt", "hello")
    _refused(path, "'readme.txt', which is not an array")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"{not json", "bad JSON"),
        (b"\xff\xfe{}", "bad JSON"),
        (b"[1, 2]", "is a list, not an object"),
        (b'{"format": "deltaprop-model", "format_version": NaN}', "NaN is not allowed"),
        (b'{"format": "deltaprop-model", "format": "x"}', "duplicate key 'format'"),
    ],
)
def test_bad_json(saved, tmp_path, raw, match):
    _, arrays = _parts(saved[0])
    _refused(_craft(tmp_path / "bad.npz", raw, arrays), match)


def test_missing_json_and_json_of_wrong_dtype(saved, tmp_path):
    document, arrays = _parts(saved[0])
    bare = tmp_path / "bare.npz"
    with open(bare, "wb") as fh:
        np.savez(fh, **arrays)
    _refused(bare, "has no 'model' JSON document")
    wide = tmp_path / "wide.npz"
    with open(wide, "wb") as fh:
        np.savez(fh, model=np.frombuffer(json.dumps(document).encode(), np.uint8).astype(int),
                 **arrays)
    _refused(wide, "must be uint8 bytes")


def _edit(doc, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[key]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("format", "keras-model", "not a deltaprop model: format 'keras-model'"),
        ("format_version", 3, "made by format version 3; this deltaprop reads versions 1, 2"),
        ("format_version", 1, "architecture has unexpected 'topology'"),
        ("format_version", "1", "format_version must be an integer"),
        ("format_version", True, "format_version must be an integer"),
        ("metadata", KeyError, "lacks 'metadata'"),
        ("extra", 1, "unexpected 'extra'"),
        ("metadata", [1], "metadata must be a JSON object"),
        ("architecture", "3-4-2", "architecture must be a JSON object"),
        ("architecture.loss", KeyError, "architecture lacks 'loss'"),
        ("architecture.color", "red", "architecture has unexpected 'color'"),
        ("architecture.sizes", [3, 5, 2], r"'W0' is float64 \(4, 3\); .* says float64 \(5, 3\)"),
        ("architecture.sizes", [3, 4, 2, 2], "hidden_activations must be 2"),
        ("architecture.sizes", [3, -4, 2], "sizes must be"),
        ("architecture.sizes", [3, True, 2], "sizes must be"),
        ("architecture.sizes", [3, 10**9, 2], "sizes must be"),
        ("architecture.hidden_activations", ["gelu"], "hidden_activations must be 1 of"),
        ("architecture.output_activation", "swish", "output_activation 'swish' is unknown"),
        ("architecture.loss", "ce", "inconsistent.*needs `output=\"softmax\"`"),
        ("architecture.loss", "hinge", "loss 'hinge' is unknown"),
        ("architecture.dtype", "float16", "dtype must be one of"),
        ("architecture.dtype", "float32", r"array 'W0' is float64 \(4, 3\); .* says float32"),
        ("architecture.topology", "graph", "topology must be one of"),
        ("architecture.topology", KeyError, "architecture lacks 'topology'"),
        ("architecture.topology", "cascade", r"'W1' is float64 \(2, 4\); .* says float64 \(2, 7\)"),
    ],
)
def test_tampered_json(saved, tmp_path, field, value, match):
    document, arrays = _parts(saved[0])
    _edit(document, field, value)
    _refused(_craft(tmp_path / "tampered.npz", document, arrays), match)


def test_current_version_constant():
    assert FORMAT_VERSION == 2  # 2 added the architecture's `topology` (version 1 is still read)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.update(W0=a["W0"].T.copy()), r"array 'W0' is float64 \(3, 4\)"),
        (lambda a: a.update(b1=a["b1"].astype(np.float32)), r"array 'b1' is float32 \(2,\)"),
        (lambda a: a.update(W1=a["W1"].astype(np.int64)), "array 'W1' is int64"),
        (lambda a: a.update(b0=np.full(4, np.inf)), "array 'b0' holds non-finite values"),
        (lambda a: a.update(W1=np.full((2, 4), np.nan)), "array 'W1' holds non-finite values"),
        (lambda a: a.pop("b1"), "lacks arrays 'b1'"),
        (lambda a: a.update(W2=np.zeros((1, 2))), "unexpected arrays 'W2'"),
        (lambda a: a.update(extra=np.zeros(3)), "unexpected arrays 'extra'"),
    ],
)
def test_bad_arrays(saved, tmp_path, change, match):
    document, arrays = _parts(saved[0])
    change(arrays)
    _refused(_craft(tmp_path / "bad.npz", document, arrays), match)


def test_a_valid_hand_crafted_file_loads(saved, tmp_path):
    """The helpers above write files that load, so the refusals are the edits' doing."""
    document, arrays = _parts(saved[0])
    net, _ = load_model(_craft(tmp_path / "same.npz", document, arrays))
    assert net.params.tobytes() == saved[1].params.tobytes()


# ---------------------------------------------------------------------------- bombs (issue 13)
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_members_are_refused(saved, tmp_path, method):
    """A 1.26 MB deflate member expanded to 4 GB; deltaprop never writes compressed ones."""
    packed = tmp_path / "packed.npz"
    with zipfile.ZipFile(packed, "w", compression=method) as zf:
        for name, data in _members(saved[0]).items():
            zf.writestr(name, data)
    _refused(packed, "member .* is compressed .*refuses to expand it")


def _npy_header(shape, dtype="<f8"):
    """The bytes of a version 1.0 .npy header for ``shape``."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def test_a_header_claiming_a_huge_array_is_refused_before_allocating(saved, tmp_path):
    """A 1.4 KB file whose header claims (10**7, 10**7) asked for 728 TiB."""
    document, _ = _parts(saved[0])
    document["architecture"].update(sizes=[10**7, 10**7], hidden_activations=[])
    raw = json.dumps(document).encode()
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("model.npy", _npy_header((len(raw),), "|u1") + raw)
        zf.writestr("W0.npy", _npy_header((10**7, 10**7)) + b"\0" * 64)
        zf.writestr("b0.npy", _npy_header((10**7,)) + b"\0" * 64)
    assert bomb.stat().st_size < 2000
    _refused(bomb, r"array 'W0' claims float64 \(10000000, 10000000\) \(800000000000000 bytes\) "
                   "but its member holds 64 bytes")


def test_declared_sizes_larger_than_the_file_are_refused(saved, tmp_path):
    """The central directory's uncompressed size of a member, inflated past the file's size."""
    data = bytearray(saved[0].read_bytes())
    with zipfile.ZipFile(saved[0]) as zf:
        info = zf.getinfo("W0.npy")
    entry = data.index(b"W0.npy", data.index(b"PK\x01\x02")) - 46  # its central header
    assert data[entry:entry + 4] == b"PK\x01\x02"
    assert int.from_bytes(data[entry + 24:entry + 28], "little") == info.file_size
    data[entry + 24:entry + 28] = (2**31).to_bytes(4, "little")  # uncompressed size
    inflated = tmp_path / "inflated.npz"
    inflated.write_bytes(bytes(data))
    _refused(inflated, "members declare .* bytes but the file holds")


def test_the_json_document_is_capped(saved, monkeypatch):
    monkeypatch.setattr(deltaprop.model_io, "MAX_DOCUMENT_BYTES", 100)
    _refused(saved[0], "its JSON document holds .* bytes, more than the 100")
    with pytest.raises(ValueError, match="more than the 100 a model file may hold"):
        save_model(saved[0].with_name("big.npz"), _net(), {"note": "x" * 100})
    assert not saved[0].with_name("big.npz").exists()


def test_duplicate_member_names_are_refused(saved, tmp_path):
    twice = tmp_path / "twice.npz"
    members = _members(saved[0])
    with pytest.warns(UserWarning, match="Duplicate name"), \
            zipfile.ZipFile(twice, "w") as zf:
        for name, data in [*members.items(), ("W0.npy", members["W0.npy"])]:
            zf.writestr(name, data)
    _refused(twice, "two members named 'W0.npy'")


def test_version_1_files_are_read_as_mlp(saved, tmp_path):
    """Files written before the cascade topology have no `topology`: they are mlps."""
    document, arrays = _parts(saved[0])
    document["format_version"] = 1
    del document["architecture"]["topology"]
    net, _ = load_model(_craft(tmp_path / "v1.npz", document, arrays))
    assert net.topology == "mlp"
    np.testing.assert_array_equal(net.params, load_model(saved[0])[0].params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cascade_round_trip(tmp_path, dtype):
    net = deltaprop.cascade([3, 4, 5, 2], activation="elu", output="softmax", loss="ce",
                            seed=2, dtype=dtype)
    path = tmp_path / "cascade.npz"
    save_model(path, net, {"note": "cascade"})
    loaded, meta = load_model(path)
    assert loaded.topology == "cascade" and repr(loaded) == repr(net)
    assert loaded.dtype == dtype and meta == {"note": "cascade"}
    np.testing.assert_array_equal(loaded.params, net.params)
