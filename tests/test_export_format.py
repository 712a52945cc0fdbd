"""pyscript_app/core/export_format.py: the v2 manifest's rules, the checking loader, zips (no TensorFlow).

The export here is made in the test with numpy (784 -> 16 relu -> 8 tanh -> 10
softmax), its manifest written out by hand from docs/manifest.md, so the
checks are tested against the documented format, not against the exporter.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from pyscript_app.core import export_format as ef
from pyscript_app.core import network as nw


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def make_export(sizes=(784, 16, 8, 10), activations=("relu", "tanh"), seed=0):
    """(manifest, {file: bytes}, [(w, b)]) of a random network."""
    rng = np.random.default_rng(seed)
    files, arrays, layers = {}, [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        name = "output" if last else f"hidden_{i + 1}"
        w = rng.normal(0, 0.1, (n_in, n_out)).astype(np.float32)
        b = rng.normal(0, 0.1, n_out).astype(np.float32)
        arrays.append((w, b))
        entry = {"name": name, "title": name, "kind": "dense", "inputs": n_in, "units": n_out,
                 "activation": "softmax" if last else activations[i]}
        for part, a in (("weights", w), ("bias", b)):
            data = npy(a)
            files[f"{name}_{part}.npy"] = data
            entry[part] = {"file": f"{name}_{part}.npy", "shape": list(a.shape), "dtype": "float32",
                           "sha256": hashlib.sha256(data).hexdigest()}
        if not last:
            entry["activation_stats"] = {"p99": 0.9, "max": 1.0, "over": "MNIST test set"}
        layers.append(entry)
    manifest = {
        "format": "nn-visualizer-export", "format_version": 2, "id": "tiny", "title": "Tiny", "description": "a test",
        "input": {"size": sizes[0], "image_shape": [28, 28], "dtype": "float32",
                  "normalization": {"scale": 1 / 255, "offset": 0.0, "formula": "x = pixel / 255"}},
        "classes": [str(c) for c in range(sizes[-1])],
        "layers": layers,
        "dataset": {"name": "MNIST test set", "sha256": "0" * 64, "count": 10000},
        "training": {"source": "a test", "test_accuracy": 0.5},
    }
    files["manifest.json"] = json.dumps(manifest).encode()
    return manifest, files, arrays


@pytest.fixture
def good():
    return make_export()


def test_a_valid_manifest_passes_and_its_arrays_load(good):
    manifest, files, arrays = good
    assert ef.validate_manifest(copy.deepcopy(manifest)) == manifest
    assert ef.files_of(manifest) == ["hidden_1_weights.npy", "hidden_1_bias.npy", "hidden_2_weights.npy",
                                     "hidden_2_bias.npy", "output_weights.npy", "output_bias.npy"]
    loaded = ef.load_arrays(manifest, files, "tiny.zip")
    assert len(loaded) == 3
    for (w, b), (ew, eb) in zip(loaded, arrays):
        assert w.dtype == np.float32 and b.dtype == np.float32
        np.testing.assert_array_equal(w, ew)
        np.testing.assert_array_equal(b, eb)


def test_one_hidden_layer_and_four_hidden_layers_of_512_pass():
    ef.validate_manifest(make_export((784, 1, 10), ("linear",))[0])
    ef.validate_manifest(make_export((784, 512, 512, 512, 512, 10), ("sigmoid", "tanh", "relu", "linear"))[0])


def test_the_errors_are_network_export_errors(good):
    manifest = copy.deepcopy(good[0])
    del manifest["layers"]
    with pytest.raises(nw.ExportError):
        ef.validate_manifest(manifest)
    assert issubclass(nw.ExportError, ValueError)


def set_path(obj, path, value):
    *head, last = path
    for key in head:
        obj = obj[key]
    if value is DELETE:
        del obj[last]
    else:
        obj[last] = value


DELETE = object()

# (path in the manifest, new value, the message's fragment after "manifest.json: ")
BAD = [
    (("format",), "something-else", "format must be \"nn-visualizer-export\""),
    (("format_version",), 1, "format_version is 1; this code reads version 2"),
    (("format_version",), "2", "format_version is \"2\""),
    (("format_version",), True, "format_version is true"),
    (("id",), "Has Space", "id must match"),
    (("id",), 7, "id must be a string, got 7"),
    (("title",), ["x"], "title must be a string"),
    (("input",), DELETE, "input is missing"),
    (("input",), [], "input must be an object, got []"),
    (("input", "size"), DELETE, "input.size is missing"),
    (("input", "size"), "784", "input.size must be an integer, got \"784\""),
    (("input", "size"), 784.0, "input.size must be an integer, got 784.0"),
    (("input", "image_shape"), 28, "input.image_shape must be a list of 2 integers, got 28"),
    (("input", "image_shape"), [28, 27], "input.image_shape [28, 27] does not hold input.size = 784"),
    (("input", "dtype"), "float64", "input.dtype must be \"float32\""),
    (("input", "normalization"), DELETE, "input.normalization is missing"),
    (("input", "normalization", "scale"), "1/255", "input.normalization.scale must be a finite number"),
    (("input", "normalization", "offset"), None, "input.normalization.offset must be a finite number, got null"),
    (("classes",), DELETE, "classes is missing"),
    (("classes",), "0123456789", "classes must be a list of at least 2 non-empty strings"),
    (("classes",), list(range(10)), "classes must be a list of at least 2 non-empty strings"),
    (("classes",), ["0"] * 10, "classes must not repeat a label"),
    (("layers",), DELETE, "layers is missing"),
    (("layers",), {"a": 1}, "layers must be a list"),
    (("layers", 0), "hidden", "layers[0] must be an object, got \"hidden\""),
    (("layers", 0, "name"), DELETE, "layers[0].name is missing"),
    (("layers", 0, "name"), 3, "layers[0].name must be a string, got 3"),
    (("layers", 0, "name"), 'hidden"1', "layers[0].name must match"),
    (("layers", 0, "name"), "<b>", "layers[0].name must match"),
    (("layers", 1, "name"), "hidden_1", "layers[1].name \"hidden_1\" is used by an earlier layer"),
    (("layers", 0, "title"), 5, "layers[0].title must be a string, got 5"),
    (("layers", 1, "kind"), "lstm", "layers[1].kind must be \"dense\", \"conv2d\", \"maxpool2d\" or \"flatten\""),
    (("layers", 1, "kind"), DELETE, "layers[1].kind is missing"),
    (("layers", 0, "units"), 0, "layers[0].units must be from 1 to 512, got 0"),
    (("layers", 0, "units"), 2000, "layers[0].units must be from 1 to 512, got 2000"),
    (("layers", 0, "units"), "16", "layers[0].units must be an integer, got \"16\""),
    (("layers", 0, "units"), 16.5, "layers[0].units must be an integer, got 16.5"),
    (("layers", 0, "units"), DELETE, "layers[0].units is missing"),
    (("layers", 1, "inputs"), 15, "layers[1].inputs is 15 but layers[0].units is 16: the layers do not connect"),
    (("layers", 0, "inputs"), 783, "layers[0].inputs is 783 but input.size is 784"),
    (("layers", 0, "inputs"), DELETE, "layers[0].inputs is missing"),
    (("layers", 0, "activation"), "softmax", "layers[0].activation must be one of sigmoid, tanh, relu, linear"),
    (("layers", 0, "activation"), "gelu", "layers[0].activation must be one of"),
    (("layers", 0, "activation"), None, "layers[0].activation must be one of"),
    (("layers", 2, "activation"), "sigmoid", "layers[2].activation must be \"softmax\" for the output layer"),
    (("layers", 0, "weights"), "hidden_1_weights.npy", "layers[0].weights must be an object, got \"hidden_1_weights.npy\""),
    (("layers", 0, "weights"), DELETE, "layers[0].weights is missing"),
    (("layers", 0, "bias"), DELETE, "layers[0].bias is missing"),
    (("layers", 1, "weights", "shape"), 5, "layers[1].weights.shape must be a list of 2 integers, got 5"),
    (("layers", 1, "weights", "shape"), [16, "8"], "layers[1].weights.shape must be a list of 2 integers"),
    (("layers", 1, "weights", "shape"), [8, 16], "layers[1].weights.shape must be [16, 8]"),
    (("layers", 1, "bias", "shape"), [8, 1], "layers[1].bias.shape must be a list of 1 integer, got [8, 1]"),
    (("layers", 1, "bias", "shape"), [9], "layers[1].bias.shape must be [8]"),
    (("layers", 0, "weights", "file"), "../../x.npy", "layers[0].weights.file must be a plain file name"),
    (("layers", 0, "weights", "file"), "../../x", "layers[0].weights.file must be a plain file name"),
    (("layers", 0, "weights", "file"), "a/b.npy", "layers[0].weights.file must be a plain file name"),
    (("layers", 0, "weights", "file"), "a\\b.npy", "layers[0].weights.file must be a plain file name"),
    (("layers", 0, "weights", "file"), ".hidden.npy", "layers[0].weights.file must be a plain file name"),
    (("layers", 0, "weights", "file"), "weights.txt", "layers[0].weights.file must be a plain file name ending in .npy"),
    (("layers", 0, "weights", "file"), 12, "layers[0].weights.file must be a string, got 12"),
    (("layers", 0, "bias", "file"), "hidden_1_weights.npy", "layers[0].bias.file \"hidden_1_weights.npy\" is named by another entry"),
    (("layers", 0, "weights", "dtype"), "float64", "layers[0].weights.dtype must be \"float32\""),
    (("layers", 0, "weights", "sha256"), "abc", "layers[0].weights.sha256 must be 64 lowercase hexadecimal digits"),
    (("layers", 0, "weights", "sha256"), DELETE, "layers[0].weights.sha256 is missing"),
    (("layers", 0, "activation_stats"), 3, "layers[0].activation_stats must be an object, got 3"),
    (("layers", 0, "activation_stats", "p99"), "high", "layers[0].activation_stats.p99 must be a finite number"),
    (("layers", 0, "activation_stats", "max"), float("nan"), "layers[0].activation_stats.max must be a finite number, got NaN"),
    (("layers", 0, "activation_stats", "p99"), 2.0, "layers[0].activation_stats.p99 is 2.0, above"),
    (("dataset",), "mnist", "dataset must be an object"),
    (("dataset", "count"), -1, "dataset.count must be at least 1, got -1"),
    (("training",), [], "training must be an object"),
    (("training", "test_accuracy"), 96.5, "training.test_accuracy must be a number from 0 to 1"),
]


@pytest.mark.parametrize("path, value, fragment", BAD, ids=[f"{'.'.join(map(str, p))}={v!r:.20}" for p, v, _ in BAD])
def test_a_malformed_manifest_is_refused_naming_the_file_and_field(good, path, value, fragment):
    manifest = copy.deepcopy(good[0])
    set_path(manifest, path, value)
    with pytest.raises(nw.ExportError) as err:
        ef.validate_manifest(manifest, "model.json")
    assert str(err.value).startswith("model.json: "), str(err.value)
    assert fragment in str(err.value), str(err.value)


def test_the_output_layer_needs_one_unit_per_class():
    manifest = make_export((784, 16, 9))[0]
    manifest["classes"] = [str(c) for c in range(10)]
    with pytest.raises(nw.ExportError, match=r"manifest.json: layers\[1\].units is 9 but there are 10 classes"):
        ef.validate_manifest(manifest)


def test_five_hidden_layers_are_refused():
    manifest = make_export((784, 8, 8, 8, 8, 8, 10), ("relu",) * 5)[0]
    with pytest.raises(nw.ExportError, match=r"manifest.json: layers must hold 1 to 4 hidden layers .* got 6 entries"):
        ef.validate_manifest(manifest)


def test_no_hidden_layer_is_refused():
    manifest = make_export((784, 10), ())[0]
    with pytest.raises(nw.ExportError, match=r"layers must hold 1 to 4 hidden layers .* got 1 entries"):
        ef.validate_manifest(manifest)


def test_not_an_object_and_not_json():
    with pytest.raises(nw.ExportError, match=r"manifest.json must hold a JSON object, got \[1, 2\]"):
        ef.validate_manifest([1, 2])
    with pytest.raises(nw.ExportError, match=r"manifest.json is not valid JSON"):
        ef.parse_manifest(b"{not json")
    with pytest.raises(nw.ExportError, match=r"manifest.json is not valid JSON"):
        ef.parse_manifest(b"\xff\xfe\x00")


# --- the checking loader -------------------------------------------------------------------


def test_a_missing_file_is_named_with_its_container(good):
    manifest, files, _ = good
    del files["hidden_2_bias.npy"]
    with pytest.raises(nw.ExportError, match=r"^hidden_2_bias.npy is missing from model.zip"):
        ef.load_arrays(manifest, files, "model.zip")


def test_a_changed_file_fails_its_sha256(good):
    manifest, files, _ = good
    data = bytearray(files["output_weights.npy"])
    data[-1] ^= 1
    files["output_weights.npy"] = bytes(data)
    with pytest.raises(nw.ExportError, match=r"model.zip: output_weights.npy is corrupt: its sha256 does not match"):
        ef.load_arrays(manifest, files, "model.zip")


def _replace(manifest, files, layer, part, array_bytes):
    spec = manifest["layers"][layer][part]
    files[spec["file"]] = array_bytes
    spec["sha256"] = hashlib.sha256(array_bytes).hexdigest()


def test_an_unreadable_npy_is_refused(good):
    manifest, files, _ = good
    _replace(manifest, files, 0, "bias", b"not an npy file at all")
    with pytest.raises(nw.ExportError, match=r"model.zip: hidden_1_bias.npy is not a readable .npy file"):
        ef.load_arrays(manifest, files, "model.zip")


def test_a_pickled_npy_is_refused(good):
    manifest, files, _ = good
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _replace(manifest, files, 0, "bias", buf.getvalue())
    with pytest.raises(nw.ExportError, match=r"hidden_1_bias.npy is not a readable .npy file"):
        ef.load_arrays(manifest, files, "model.zip")


def test_a_wrong_shape_in_the_file_is_refused(good):
    manifest, files, _ = good
    _replace(manifest, files, 1, "bias", npy(np.zeros(9, np.float32)))
    with pytest.raises(nw.ExportError, match=r"model.zip: hidden_2_bias.npy has shape \[9\], manifest.json's layers\[1\].bias.shape says \[8\]"):
        ef.load_arrays(manifest, files, "model.zip")


def test_a_wrong_dtype_in_the_file_is_refused(good):
    manifest, files, _ = good
    _replace(manifest, files, 1, "bias", npy(np.zeros(8, np.float64)))
    with pytest.raises(nw.ExportError, match=r"hidden_2_bias.npy has dtype float64, manifest.json's layers\[1\].bias.dtype says float32"):
        ef.load_arrays(manifest, files, "model.zip")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(good, bad):
    manifest, files, _ = good
    b = np.zeros(8, np.float32)
    b[3] = bad
    _replace(manifest, files, 1, "bias", npy(b))
    with pytest.raises(nw.ExportError, match=r"model.zip: hidden_2_bias.npy contains NaN or infinite values"):
        ef.load_arrays(manifest, files, "model.zip")


def test_load_arrays_checks_the_manifest_first(good):
    manifest, files, _ = good
    manifest["layers"][1]["inputs"] = 3
    with pytest.raises(nw.ExportError, match=r"layers\[1\].inputs is 3"):
        ef.load_arrays(manifest, files, "model.zip")


def test_load_export_reads_the_manifest_from_the_files(good):
    manifest, files, arrays = good
    got_manifest, got = ef.load_export(files, "tiny.zip")
    assert got_manifest == manifest
    np.testing.assert_array_equal(got[2][0], arrays[2][0])
    del files["manifest.json"]
    with pytest.raises(nw.ExportError, match=r"manifest.json is missing from tiny.zip"):
        ef.load_export(files, "tiny.zip")


# --- zips --------------------------------------------------------------------------------


def test_write_zip_then_read_zip_round_trips(good):
    manifest, files, arrays = good
    data = ef.write_zip(files)
    assert ef.write_zip(files) == data  # the same files give the same bytes
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    assert names[0] == "manifest.json" and sorted(names) == sorted(files)
    back = ef.read_zip(data, "tiny.zip")
    assert back == files
    got = ef.load_arrays(ef.parse_manifest(back["manifest.json"]), back, "tiny.zip")
    np.testing.assert_array_equal(got[0][0], arrays[0][0])


def zip_of(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_zip_of_one_folder_is_read_as_its_root(good):
    files = good[1]
    data = zip_of({f"seed/{name}": b for name, b in files.items()} | {"__MACOSX/seed/._manifest.json": b"x"})
    assert ef.read_zip(data, "seed.zip") == files


def test_not_a_zip():
    with pytest.raises(nw.ExportError, match=r"^photo.png is not a zip file"):
        ef.read_zip(b"\x89PNG\r\n\x1a\n not a zip", "photo.png")


def test_a_zip_without_a_manifest():
    with pytest.raises(nw.ExportError, match=r"^manifest.json is missing from other.zip"):
        ef.read_zip(zip_of({"readme.txt": b"hello"}), "other.zip")


@pytest.mark.parametrize("path", ["../../x", "a/b/c.npy", "/etc/x.npy"])
def test_a_zip_entry_that_is_a_path_is_refused(good, path):
    entries = dict(good[1]) | {path: b"x"}
    with pytest.raises(nw.ExportError, match=r"model.zip: .* is not a plain file name"):
        ef.read_zip(zip_of(entries), "model.zip")


def test_read_folder(tmp_path, good):
    for name, data in good[1].items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sub").mkdir()
    assert ef.read_folder(tmp_path) == good[1]
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(nw.ExportError, match=r"manifest.json is missing from"):
        ef.read_folder(tmp_path)
