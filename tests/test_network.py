"""The pure-numpy core: loading an export, its checks, and the forward pass."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from conftest import SHIPPED, SITE
from pyscript_app.core import activations as act
from pyscript_app.core import network as nw
import reference


def shape_of(spec: dict) -> tuple:
    """A layer's output shape as the manifest states it: units, or (height, width, channels) of an image."""
    return tuple(spec["output_shape"]) if "output_shape" in spec else (spec["units"],)


def test_forward_matches_plain_numpy_reference(network, testset, manifest, model_dir):
    x = testset.images[:2000].reshape(2000, -1).astype(np.float64) / 255.0
    expected = reference.forward_layers(reference.load_layers(model_dir)[1], x)
    got = network.forward(network.normalize(testset.images[:2000]))
    assert [g.shape for g in got] == [(2000, *shape_of(spec)) for spec in manifest["layers"]]
    for g, e in zip(got, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, atol=1e-5 * max(1.0, float(np.abs(e).max())))  # float32 vs float64


def test_single_sample_and_batch_agree(network, testset):
    batch = network.forward(network.normalize(testset.images[:5]))
    for i in range(5):
        one = network.forward(network.normalize(testset.images[i]))
        for b, o in zip(batch, one):
            assert o.shape == b.shape[1:]
            np.testing.assert_allclose(o, b[i], atol=1e-6)
        # a slice of one digit is a batch of one, image-shaped or flat
        for sliced in (testset.images[i : i + 1], testset.images[i : i + 1].reshape(1, -1)):
            assert network.normalize(sliced).shape == (1, network.input_size)
            for b, o in zip(batch, network.forward(network.normalize(sliced))):
                assert o.shape == (1, *b.shape[1:])
                np.testing.assert_allclose(o[0], b[i], atol=1e-6)


def test_a_forward_pass_up_to_a_layer_is_the_whole_pass_cut_there(network, testset):
    x = network.normalize(testset.images[:8])
    whole = network.forward(x, keep=True)
    for pos, layer in enumerate(network.layers):
        cut = network.forward(x, keep=True, upto=layer.name)
        assert len(cut) == pos + 1
        for c, w in zip(cut, whole):
            np.testing.assert_array_equal(c, w)
    with pytest.raises(KeyError, match="no layer named"):
        network.forward(x, upto="no-such-layer")


def test_softmax_rows_sum_to_one_and_hidden_layers_in_their_range(network, testset):
    acts = network.forward(network.normalize(testset.images))
    np.testing.assert_allclose(acts[-1].sum(axis=1), 1.0, atol=1e-5)
    for layer, a in zip(network.layers[:-1], acts[:-1]):
        if not hasattr(layer, "activation"):  # pooling and flatten pass on values of the layer before
            continue
        spec = act.get(layer.activation)
        assert spec.low is None or a.min() >= spec.low
        assert spec.high is None or a.max() <= spec.high


def test_sigmoid_is_stable_for_extreme_inputs():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = nw.sigmoid(z)
    np.testing.assert_allclose(s, [0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-30.0)), 1.0], rtol=1e-6)


def test_normalisation_is_the_manifests(network, manifest):
    pixels = (np.arange(network.input_size) % 256).astype(np.uint8).reshape(network.image_shape)
    x = network.normalize(pixels)
    assert x.shape == (network.input_size,) and x.dtype == np.float32
    scale = manifest["input"]["normalization"]["scale"]
    np.testing.assert_allclose(x, pixels.reshape(-1) * scale, rtol=1e-6)
    assert x.max() <= 1.0 and x.min() >= 0.0


def test_layers_come_from_the_manifest(network, manifest):
    assert [l.name for l in network.layers] == [s["name"] for s in manifest["layers"]]
    assert [l.output_shape for l in network.layers] == [shape_of(s) for s in manifest["layers"]]
    assert [getattr(l, "activation", None) for l in network.layers] == [s.get("activation") for s in manifest["layers"]]
    assert network.class_labels == manifest["classes"]
    assert network.output_layer is network.layers[-1] and network.output_layer.is_output
    assert not any(layer.is_output for layer in network.hidden_layers)


def test_the_seed_model_is_the_one_the_readme_describes(seed_export):
    network, _ = seed_export
    assert [l.units for l in network.layers] == [32, 32, 10]
    assert [l.activation for l in network.layers] == ["sigmoid", "sigmoid", "softmax"]


def test_testset_is_the_full_mnist_test_set(testset):
    assert testset.images.shape == (10000, 28, 28) and testset.images.dtype == np.uint8
    # The official MNIST test set has these label counts.
    assert np.bincount(testset.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_manifest_accuracy_is_what_the_weights_give(model_id):
    network, testset = nw.read_site(SITE, model_id)
    manifest = network.manifest
    pred = network.predict(network.normalize(testset.images))
    assert (pred == testset.labels).mean() == pytest.approx(manifest["training"]["test_accuracy"], abs=1e-6)
    if model_id == "seed":
        assert manifest["training"]["test_accuracy"] >= 0.96


# --- broken exports give clear errors --------------------------------------------------


@pytest.fixture
def export_copy(tmp_path):
    shutil.copytree(SITE / "models" / "seed", tmp_path / "models" / "seed")
    shutil.copytree(SITE / "data", tmp_path / "data")
    return tmp_path / "models" / "seed"


def _rewrite_manifest(model_dir, change):
    path = model_dir / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def test_missing_weight_file_is_named(export_copy):
    (export_copy / "hidden_2_weights.npy").unlink()
    with pytest.raises(nw.ExportError, match=r"hidden_2_weights\.npy is missing"):
        nw.read_export_dir(export_copy)


def test_corrupt_weight_file_fails_its_checksum(export_copy):
    path = export_copy / "hidden_1_weights.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(nw.ExportError, match=r"hidden_1_weights\.npy is corrupt: its sha256"):
        nw.read_export_dir(export_copy)


def _replace_array(model_dir, name, array):
    buf = io.BytesIO()
    np.save(buf, array)
    (model_dir / name).write_bytes(buf.getvalue())

    def fix(m):
        for layer in m["layers"]:
            for part in ("weights", "bias"):
                if layer[part]["file"] == name:
                    layer[part]["sha256"] = nw.sha256(buf.getvalue())

    _rewrite_manifest(model_dir, fix)


def test_wrong_shape_is_reported(export_copy):
    _replace_array(export_copy, "output_bias.npy", np.zeros(11, np.float32))
    with pytest.raises(nw.ExportError, match=r"seed/: output_bias\.npy has shape \[11\], manifest\.json's layers\[2\]\.bias\.shape says \[10\]"):
        nw.read_export_dir(export_copy)


def test_wrong_dtype_is_reported(export_copy):
    _replace_array(export_copy, "output_bias.npy", np.zeros(10, np.float64))
    with pytest.raises(nw.ExportError, match=r"output_bias\.npy has dtype float64"):
        nw.read_export_dir(export_copy)


def test_non_finite_weights_are_refused(export_copy):
    w = np.load(export_copy / "hidden_2_bias.npy")
    w[3] = np.nan
    _replace_array(export_copy, "hidden_2_bias.npy", w)
    with pytest.raises(nw.ExportError, match=r"hidden_2_bias\.npy contains NaN"):
        nw.read_export_dir(export_copy)


def test_not_an_npy_file(export_copy):
    _replace_array(export_copy, "output_bias.npy", np.zeros(10, np.float32))
    (export_copy / "output_bias.npy").write_bytes(b"<html>404</html>")

    def fix(m):
        m["layers"][2]["bias"]["sha256"] = nw.sha256(b"<html>404</html>")

    _rewrite_manifest(export_copy, fix)
    with pytest.raises(nw.ExportError, match=r"output_bias\.npy is not a readable \.npy file"):
        nw.read_export_dir(export_copy)


def test_corrupt_testset_is_named(export_copy):
    (export_copy.parent.parent / "data" / "mnist_test.npz").write_bytes(b"junk")
    with pytest.raises(nw.ExportError, match=r"mnist_test\.npz is corrupt"):
        nw.read_export_dir(export_copy)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something else"}', "not an nn-visualizer export"),
        ('{"format": "nn-visualizer-export", "format_version": 99}', "format_version is 99"),
    ],
)
def test_bad_manifest(text, message):
    with pytest.raises(nw.ExportError, match=message):
        nw.parse_manifest(text)


def test_unknown_activation_is_refused(manifest):
    m = json.loads(json.dumps(manifest))
    m["layers"][0]["activation"] = "swish"
    with pytest.raises(nw.ExportError, match=r'layers\[0\]\.activation must be one of sigmoid, tanh, relu, linear for a hidden layer, got "swish"'):
        nw.parse_manifest(json.dumps(m))


def _seed_manifest():
    return json.loads((SITE / "models" / "seed" / "manifest.json").read_text())


def _five_hidden(m):
    m["layers"][1:1] = [json.loads(json.dumps(m["layers"][1])) for _ in range(3)]
    for i, layer in enumerate(m["layers"]):
        layer["name"] = f"l{i}"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["layers"][0].update(weights="w.npy"), r'layers\[0\]\.weights must be an object, got "w\.npy"'),
        (lambda m: m["layers"][0]["weights"].update(shape=784), r"layers\[0\]\.weights\.shape must be a list of 2 integers, got 784"),
        (lambda m: m["layers"][0]["weights"].update(file="../../x.npy"), r'layers\[0\]\.weights\.file must be a plain file name .*"\.\./\.\./x\.npy"'),
        (lambda m: m["layers"][1].update(inputs=31), r"layers\[1\]\.inputs is 31 but layers\[0\]\.units is 32: the layers do not connect"),
        (lambda m: m["layers"].pop(), r'layers\[1\]\.activation must be "softmax" for the output layer'),
        (lambda m: m["layers"][0].update(name='a"b'), r"layers\[0\]\.name must match"),
        (lambda m: m["layers"][0].update(units=2000), r"layers\[0\]\.units must be from 1 to 512, got 2000"),
        (_five_hidden, r"layers must hold 1 to 4 hidden layers .* got 6 entries"),
        (lambda m: m.update(classes=["a", "b"]), r"layers\[2\]\.units is 10 but there are 2 classes"),
        (lambda m: m.pop("classes"), r"classes is missing"),
        (lambda m: m["layers"][0].update(activation_stats={"p99": "x", "max": 1}), r"layers\[0\]\.activation_stats\.p99 must be a finite number"),
    ],
)
def test_every_malformed_manifest_names_the_file_and_field(change, message):
    m = _seed_manifest()
    change(m)
    with pytest.raises(nw.ExportError, match=r"^manifest\.json: " + message):
        nw.parse_manifest(json.dumps(m))


def test_changed_weights_get_a_new_version(tmp_path):
    network, _ = nw.read_site(SITE)
    before = network.version
    network.layers[0].weights[0, 0] += 1
    network.weights_changed()
    assert network.version != before
