"""export_weights.py for convolutional networks: --conv training, --from-model of Keras CNNs, refusals.

As in test_export.py, every run goes through the real CLI in a subprocess on a
small MNIST-shaped file made from the committed test digits. The Keras models
are made (random weights, random biases) in a subprocess too, which also
saves every layer's output for 200 test digits: the exported network's own
forward pass (the page's) must give each of them within 1e-5.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from conftest import ROOT
from export_helpers import committed_testset
from pyscript_app.core import network as nw

SCRIPT = ROOT / "export_weights.py"
PROBE = slice(3000, 3200)  # the test digits the Keras models' layer outputs are saved for


def run_export(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def npy_digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npy"))}


@pytest.fixture(scope="module")
def testset():
    return committed_testset()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, testset):
    """An mnist.npz (Keras layout): 3,000 training and 1,000 test digits."""
    path = tmp_path_factory.mktemp("cnn_data") / "mnist.npz"
    np.savez(path, x_train=testset.images[:3000], y_train=testset.labels[:3000],
             x_test=testset.images[3000:4000], y_test=testset.labels[3000:4000])
    return path


# --- Keras CNNs made in a subprocess ------------------------------------------------------------

KERAS_CNNS = r"""
import sys, numpy as np, keras
keras.utils.set_random_seed(9)
out = sys.argv[1]
L = keras.layers
ok = {
    # pixels in, reshaped; valid 3x3 relu, pool, same 5x5 tanh, pool (odd 13 -> 6), a hidden layer, Dropout skipped
    "cnn-a": [keras.Input((784,)), L.Reshape((28, 28, 1)), L.Conv2D(4, 3, activation="relu", name="first"),
              L.MaxPooling2D(), L.Conv2D(6, 5, padding="same", activation="tanh"), L.MaxPooling2D((2, 2)),
              L.Flatten(), L.Dense(12, activation="sigmoid"), L.Dropout(0.3), L.Dense(10, activation="softmax")],
    # an image input; same 5x5 linear, then valid 3x3 sigmoid without pooling between, one pool, no hidden layer
    "cnn-b": [keras.Input((28, 28, 1)), L.Conv2D(5, 5, padding="same"), L.Conv2D(3, 3, activation="sigmoid"),
              L.MaxPooling2D(pool_size=2, strides=2), L.Flatten(), L.Dense(10, activation="softmax")],
}
refused = {
    "strided": [keras.Input((28, 28, 1)), L.Conv2D(4, 3, strides=2, activation="relu", name="strided_conv"),
                L.Flatten(), L.Dense(10, activation="softmax")],
    "average": [keras.Input((28, 28, 1)), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2, name="avg_pool"),
                L.Flatten(), L.Dense(10, activation="softmax")],
    "rgb": [keras.Input((28, 28, 3)), L.Conv2D(4, 3, activation="relu", name="colour_conv"), L.Flatten(),
            L.Dense(10, activation="softmax")],
    "dilated": [keras.Input((28, 28, 1)), L.Conv2D(4, 3, dilation_rate=2, name="dilated_conv"), L.Flatten(),
                L.Dense(10, activation="softmax")],
    "pool3": [keras.Input((28, 28, 1)), L.Conv2D(4, 3), L.MaxPooling2D(3, name="big_pool"), L.Flatten(),
              L.Dense(10, activation="softmax")],
    "pool_stride1": [keras.Input((28, 28, 1)), L.Conv2D(4, 3), L.MaxPooling2D(2, strides=1, name="sliding_pool"),
                     L.Flatten(), L.Dense(10, activation="softmax")],
    "kernel7": [keras.Input((28, 28, 1)), L.Conv2D(4, 7, name="wide_kernel"), L.Flatten(), L.Dense(10, activation="softmax")],
    "filters65": [keras.Input((28, 28, 1)), L.Conv2D(65, 3, name="many_filters"), L.Flatten(),
                  L.Dense(10, activation="softmax")],
    "five_convs": [keras.Input((28, 28, 1))] + [L.Conv2D(2, 3, padding="same", name=f"c{i}") for i in range(5)]
                  + [L.Flatten(), L.Dense(10, activation="softmax")],
    "gelu": [keras.Input((28, 28, 1)), L.Conv2D(4, 3, activation="gelu", name="gelu_conv"), L.Flatten(),
             L.Dense(10, activation="softmax")],
}
rng = np.random.default_rng(3)
x = np.load(sys.argv[2]).astype("float32") / 255
for name, layers in ok.items():
    m = keras.Sequential(layers)
    for layer in m.layers:  # random biases too: an export that dropped them would not match
        w = layer.get_weights()
        if w:
            layer.set_weights([w[0], rng.normal(0, 0.2, w[1].shape).astype("float32")])
    m.save(f"{out}/{name}.keras")
    probe = keras.Model(m.inputs, [layer.output for layer in m.layers])
    outputs = probe.predict(x.reshape(len(x), *m.input_shape[1:]), verbose=0)
    np.savez(f"{out}/{name}_outputs.npz", **{f"{i:02d}_{type(l).__name__}": o for i, (l, o) in enumerate(zip(m.layers, outputs))})
for name, layers in refused.items():
    keras.Sequential(layers).save(f"{out}/{name}.keras")
"""


@pytest.fixture(scope="module")
def keras_cnns(tmp_path_factory, testset):
    folder = tmp_path_factory.mktemp("keras_cnns")
    np.save(folder / "x.npy", testset.images[PROBE])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", KERAS_CNNS, str(folder), str(folder / "x.npy")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


@pytest.mark.parametrize("name, kinds", [
    ("cnn-a", ["conv2d", "maxpool2d", "conv2d", "maxpool2d", "flatten", "dense", "dense"]),
    ("cnn-b", ["conv2d", "conv2d", "maxpool2d", "flatten", "dense"]),
])
def test_from_model_exports_a_keras_cnn_that_computes_what_keras_computes(keras_cnns, small_data, tmp_path, testset,
                                                                          name, kinds):
    result = run_export("--from-model", keras_cnns / f"{name}.keras", "--data", small_data, "--id", name, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    network = nw.read_model_dir(tmp_path / "models" / name)  # through the page's loader and its checks
    assert [layer.kind for layer in network.layers] == kinds
    got = network.forward(network.normalize(testset.images[PROBE]))
    with np.load(keras_cnns / f"{name}_outputs.npz") as f:
        expected = [f[k] for k in sorted(f.files) if not k.endswith(("Reshape", "Dropout"))]
    assert len(got) == len(expected) == len(kinds)
    for layer, g, e in zip(network.layers, got, expected):
        assert g.shape == e.shape, (layer.name, g.shape, e.shape)
        assert np.abs(g - e).max() < 1e-5, (layer.name, np.abs(g - e).max())
    # the manifest's accuracy is the exported weights' on the run's test digits, by the tests' own forward pass
    manifest = json.loads((tmp_path / "models" / name / "manifest.json").read_text())
    _, plain = ref.load_layers(tmp_path / "models" / name)
    probabilities = ref.forward_layers(plain, testset.images[3000:4000].reshape(1000, -1) / 255.0)[-1]
    assert manifest["training"]["test_correct"] == int((probabilities.argmax(1) == testset.labels[3000:4000]).sum())
    assert manifest["training"]["source"] == f"from-model {name}.keras"
    assert manifest["description"].startswith("28x28x1 -> conv ")


@pytest.mark.parametrize("name, fragments", [
    ("strided", ["strided.keras", "'strided_conv'", "strides (2, 2)", "only stride 1"]),
    ("average", ["average.keras", "'avg_pool'", "AveragePooling2D", "max pooling"]),
    ("rgb", ["rgb.keras", "'colour_conv'", "3 channels", "one channel"]),
    ("dilated", ["dilated.keras", "'dilated_conv'", "dilation"]),
    ("pool3", ["pool3.keras", "'big_pool'", "3x3", "only 2x2"]),
    ("pool_stride1", ["pool_stride1.keras", "'sliding_pool'", "strides (1, 1)"]),
    ("kernel7", ["kernel7.keras", "'wide_kernel'", "7x7", "3x3 and 5x5"]),
    ("filters65", ["filters65.keras", "'many_filters'", "65 filters", "at most 64"]),
    ("five_convs", ["five_convs.keras", "'c4'", "conv layer 5", "at most 4"]),
    ("gelu", ["gelu.keras", "'gelu_conv'", "'gelu'"]),
])
def test_from_model_refuses_a_cnn_the_page_cannot_run(keras_cnns, small_data, tmp_path, name, fragments):
    result = run_export("--from-model", keras_cnns / f"{name}.keras", "--data", small_data, "--out", tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "models").exists()


# --- training a CNN with --conv -----------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory, small_data):
    out = tmp_path_factory.mktemp("conv_run")
    result = run_export("--data", small_data, "--conv", "4,8", "--kernel", "5,3", "--padding", "same,valid",
                        "--hidden", "16", "--activation", "relu", "--limit-train", 400, "--epochs", 1, "--batch-size", 32,
                        "--seed", 5, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_a_short_conv_training_run_gives_a_loadable_export(conv_run, testset):
    out, result = conv_run
    assert "epoch 1/1: loss" in result.stdout and "parameters" in result.stdout
    model_id = "cnn-4c5sp-8c3p-16r"  # the default id says the shape
    assert json.loads((out / "models" / "index.json").read_text()) == {"default": model_id, "models": [model_id]}
    network = nw.read_model_dir(out / "models" / model_id)
    assert [(layer.name, layer.kind, layer.output_shape) for layer in network.layers] == [
        ("conv_1", "conv2d", (28, 28, 4)), ("pool_1", "maxpool2d", (14, 14, 4)),
        ("conv_2", "conv2d", (12, 12, 8)), ("pool_2", "maxpool2d", (6, 6, 8)),
        ("flatten", "flatten", (288,)), ("hidden_1", "dense", (16,)), ("output", "dense", (10,))]
    assert network.layer("conv_1").weights.shape == (5, 5, 1, 4) and network.layer("conv_2").weights.shape == (3, 3, 4, 8)
    manifest = network.manifest
    t = manifest["training"]
    assert (t["epochs"], t["batch_size"], t["seed"], t["train_count"]) == (1, 32, 5, 400)
    assert t["parameters"] == 4 * 25 + 4 + 8 * 36 + 8 + 288 * 16 + 16 + 16 * 10 + 10
    # the accuracy and activation scales in the manifest: the tests' own forward pass agrees
    _, plain = ref.load_layers(out / "models" / model_id)
    outputs = ref.forward_layers(plain, testset.images[3000:4000].reshape(1000, -1) / 255.0)
    correct = int((outputs[-1].argmax(1) == testset.labels[3000:4000]).sum())
    assert t["test_correct"] == correct and correct > 150  # one epoch on 400 digits learns something (chance: ~100)
    for entry, a in zip(manifest["layers"][:-1], outputs[:-1]):
        assert entry["activation_stats"]["max"] == pytest.approx(a.max(), abs=1e-5)


def test_the_same_seed_trains_the_same_cnn(conv_run, small_data, tmp_path):
    result = run_export("--data", small_data, "--conv", "4,8", "--kernel", "5,3", "--padding", "same,valid",
                        "--hidden", "16", "--activation", "relu", "--limit-train", 400, "--epochs", 1, "--batch-size", 32,
                        "--seed", 5, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    model_id = "cnn-4c5sp-8c3p-16r"
    assert npy_digests(tmp_path / "models" / model_id) == npy_digests(conv_run[0] / "models" / model_id)


@pytest.mark.parametrize("options, fragments", [
    (["--conv", "8,8,8,8,8"], ["--conv 8,8,8,8,8", "5 conv layers", "1 to 4"]),
    (["--conv", "65"], ["--conv 65", "65 filters", "1 to 64"]),
    (["--conv", "8,x"], ["--conv 8,x", "comma-separated"]),
    (["--conv", "8", "--kernel", "7"], ["--kernel 7", "'7'", "3 (3x3) or 5 (5x5)"]),
    (["--conv", "8,8", "--kernel", "3,5,3"], ["--kernel 3,5,3", "3 values for 2 conv layers"]),
    (["--conv", "8", "--padding", "full"], ["--padding full", "'full'", "valid or same"]),
    (["--conv", "8", "--pool", "maybe"], ["--pool maybe", "on or off"]),
    (["--conv", "8", "--conv-activation", "gelu"], ["--conv-activation gelu", "'gelu'"]),
    (["--conv", "4,4,4,4", "--kernel", "5"], ["--conv 4,4,4,4", "conv layer 3", "leaves no image"]),
])
def test_bad_conv_options_are_refused(tmp_path, small_data, options, fragments):
    result = run_export("--data", small_data, *options, "--out", tmp_path)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_from_export_takes_a_cnn_export_as_it_is(conv_run, small_data, tmp_path):
    source = conv_run[0] / "models" / "cnn-4c5sp-8c3p-16r"
    result = run_export("--from-export", source, "--data", small_data, "--id", "again", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert npy_digests(tmp_path / "models" / "again") == npy_digests(source)
    before, after = (json.loads((folder / "manifest.json").read_text()) for folder in (source, tmp_path / "models" / "again"))
    assert after["layers"] == before["layers"] and after["training"]["test_correct"] == before["training"]["test_correct"]
