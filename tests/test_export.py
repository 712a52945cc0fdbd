"""export_weights.py: training, the export it writes, --from-model, bad input, parity with Keras.

Training runs go through the real CLI in a subprocess (TensorFlow's thread
settings must be made before it starts, once per process). They train one
epoch on a small MNIST-shaped file made from the committed test digits, so
the suite needs no download.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SITE
from pyscript_app import network as nw

import export_weights as ew

SCRIPT = ROOT / "export_weights.py"


def run_export(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def tree_digest(folder):
    """sha256 of every file below folder, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, testset):
    """An mnist.npz (Keras layout) with 3,000 training and 1,000 test digits."""
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(
        path,
        x_train=testset.images[:3000], y_train=testset.labels[:3000],
        x_test=testset.images[3000:4000], y_test=testset.labels[3000:4000],
    )
    return path


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, small_data):
    """One real (short) training run through the CLI, with the Keras model saved."""
    out = tmp_path_factory.mktemp("run_a")
    model = out / "model.keras"
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7,
                        "--out", out, "--save-model", model)
    assert result.returncode == 0, result.stderr
    return out, model, result


def test_help_explains_every_option():
    result = run_export("--help")
    assert result.returncode == 0
    for option in ("--epochs", "--batch-size", "--seed", "--out", "--data", "--from-model"):
        assert option in result.stdout


def test_short_training_run_gives_complete_loadable_export(short_run, testset):
    out, _, result = short_run
    assert "data: --data" in result.stdout  # says which source it used
    assert "epoch 1/1: loss" in result.stdout  # per-epoch progress
    assert "test accuracy:" in result.stdout
    network, tests = nw.read_export_dir(out / "model")  # checks every sha256, shape, dtype
    assert [l.units for l in network.layers] == [32, 32, 10]
    assert len(tests) == 1000
    np.testing.assert_array_equal(tests.images, testset.images[3000:4000])
    # no staging folders left behind
    assert sorted(p.name for p in out.iterdir()) == ["data", "model", "model.keras"]


def test_manifest_schema_and_checksums(short_run):
    model_dir = short_run[0] / "model"
    m = json.loads((model_dir / "manifest.json").read_text())
    assert m["format"] == "nn-visualizer-export" and m["format_version"] == 1
    assert m["input"]["normalization"]["scale"] == pytest.approx(1 / 255)
    assert [l["name"] for l in m["layers"]] == ["hidden_1", "hidden_2", "output"]
    assert [l["activation"] for l in m["layers"]] == ["sigmoid", "sigmoid", "softmax"]
    for layer in m["layers"]:
        for part in ("weights", "bias"):
            spec = layer[part]
            data = (model_dir / spec["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == spec["sha256"]
            assert list(np.load(model_dir / spec["file"]).shape) == spec["shape"]
    data = (model_dir / m["dataset"]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == m["dataset"]["sha256"]
    t = m["training"]
    for key in ("epochs", "batch_size", "seed", "tensorflow_version", "keras_version", "test_accuracy", "date", "data_source"):
        assert t[key] is not None, key
    assert (t["epochs"], t["batch_size"], t["seed"], t["train_count"]) == (1, 64, 7, 3000)


def test_same_seed_gives_identical_weights(short_run, small_data, tmp_path):
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = tree_digest(short_run[0] / "model"), tree_digest(tmp_path / "model")
    first.pop("manifest.json"), second.pop("manifest.json")  # holds the date
    assert first == second


def test_from_model_round_trip(short_run, small_data, tmp_path):
    out_a, model_path, _ = short_run
    result = run_export("--from-model", model_path, "--data", small_data, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    a, b = tree_digest(out_a / "model"), tree_digest(tmp_path / "model")
    a.pop("manifest.json"), b.pop("manifest.json")
    assert a == b
    m = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert m["training"]["source"] == "from-model model.keras"


@pytest.fixture
def existing_export(tmp_path):
    """An --out folder that already holds the committed export."""
    import shutil

    shutil.copytree(SITE / "model", tmp_path / "model")
    shutil.copytree(SITE / "data", tmp_path / "data")
    return tmp_path, tree_digest(tmp_path)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_data_file(existing_export):
    out, before = existing_export
    result = run_export("--data", out / "nope.npz", "--out", out)
    assert_one_line_error(result, "nope.npz", "no such file")
    assert tree_digest(out) == before


def test_corrupt_data_file(existing_export):
    out, before = existing_export
    bad = out / "mnist.pkl.gz"
    bad.write_bytes(b"\x1f\x8b this is not gzip")
    result = run_export("--data", bad, "--out", out)
    assert_one_line_error(result, "mnist.pkl.gz", "cannot read it")
    before["mnist.pkl.gz"] = hashlib.sha256(bad.read_bytes()).hexdigest()
    assert tree_digest(out) == before


def test_npz_without_mnist_layout(existing_export):
    out, before = existing_export
    bad = out / "other.npz"
    np.savez(bad, a=np.zeros(3))
    result = run_export("--data", bad, "--out", out)
    assert_one_line_error(result, "other.npz", "mnist.npz layout")


def test_from_model_with_wrong_layers(existing_export, small_data, tmp_path_factory):
    out, before = existing_export
    wrong = tmp_path_factory.mktemp("wrong") / "relu.keras"
    code = (
        "import keras; m = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation='relu'),"
        " keras.layers.Dense(10, activation='softmax')]); m.save(r'%s')" % wrong
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    result = run_export("--from-model", wrong, "--data", small_data, "--out", out)
    assert_one_line_error(result, "relu.keras", "expected Dense")
    assert tree_digest(out) == before


def test_from_model_not_a_model(existing_export, small_data):
    out, before = existing_export
    junk = out / "junk.keras"
    junk.write_text("not a model")
    result = run_export("--from-model", junk, "--data", small_data, "--out", out)
    assert_one_line_error(result, "junk.keras", "cannot load it")
    before["junk.keras"] = hashlib.sha256(b"not a model").hexdigest()
    assert tree_digest(out) == before


def test_unwritable_out(tmp_path, small_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_export("--data", small_data, "--out", blocker / "site")
    assert_one_line_error(result, "--out", "not writable")


def _arrays(network):
    return [(l.weights, l.bias, l.activation) for l in network.layers]


def test_failed_export_leaves_previous_export_intact(existing_export, network, testset):
    out, before = existing_export
    arrays = _arrays(network)
    arrays[1] = (arrays[1][0], np.full(32, np.nan, np.float32), "sigmoid")  # a diverged training run
    with pytest.raises(ew.UserError, match="previous export is unchanged"):
        ew.export(out, arrays, (testset.images, testset.labels), {"source": "test"})
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "model"]


def test_interrupted_export_leaves_previous_export_intact(existing_export, network, testset, monkeypatch):
    out, before = existing_export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ew, "save_testset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ew.export(out, _arrays(network), (testset.images, testset.labels), {"source": "test"})
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "model"]


def test_successful_export_replaces_previous(existing_export, network, testset):
    out, before = existing_export
    arrays = _arrays(network)
    arrays[2] = (arrays[2][0], arrays[2][1] + 1.0, "softmax")  # softmax is shift-invariant: same predictions
    ew.export(out, arrays, (testset.images, testset.labels), {"source": "test"})
    after = tree_digest(out)
    assert after["model/output_bias.npy"] != before["model/output_bias.npy"]
    assert after["model/hidden_1_weights.npy"] == before["model/hidden_1_weights.npy"]
    assert sorted(p.name for p in out.iterdir()) == ["data", "model"]


def test_pkl_gz_layout_is_read(tmp_path, testset):
    """The classic mnist.pkl.gz (floats = byte / 256, train + valid) converts back to exact bytes."""
    import gzip
    import pickle

    imgs, labels = testset.images[:30], testset.labels[:30].astype(np.int64)
    flat = (imgs.reshape(30, -1) / 256.0).astype(np.float32)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((flat[:10], labels[:10]), (flat[10:20], labels[10:20]), (flat[20:], labels[20:])), f)
    (xtr, ytr), (xte, yte) = ew.load_data_file(path)
    np.testing.assert_array_equal(xtr, imgs[:20])
    np.testing.assert_array_equal(ytr, labels[:20])
    np.testing.assert_array_equal(xte, imgs[20:])


# --- parity with Keras on the committed export -------------------------------------------


def test_committed_export_matches_keras_per_layer(network, testset):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")  # listed in requirements.txt: absent only if install broke
    model = keras.Sequential(
        [keras.Input((784,))]
        + [keras.layers.Dense(l.units, activation=l.activation) for l in network.layers]
    )
    for dense, layer in zip(model.layers, network.layers):
        dense.set_weights([layer.weights, layer.bias])
    x = testset.images.reshape(len(testset), -1).astype(np.float32) / np.float32(255.0)
    probe = keras.Model(model.inputs, [l.output for l in model.layers])
    expected = probe.predict(x, batch_size=2000, verbose=0)
    got = network.forward(network.normalize(testset.images))
    for name, g, e in zip(["hidden_1", "hidden_2", "output"], got, expected):
        assert np.abs(g - e).max() < 1e-5, name
    np.testing.assert_array_equal(got[-1].argmax(1), expected[-1].argmax(1))


# --- --augment (drawing-like training digits) ----------------------------------------------


def test_augmented_run_is_recorded_in_the_manifest(small_data, tmp_path):
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7, "--limit-train", 400,
                        "--augment", "--augment-copies", 1, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "augment: copy 1/1 of 400 digits" in result.stdout
    training = json.loads((tmp_path / "model" / "manifest.json").read_text())["training"]
    aug = training["augmentation"]
    assert training["train_count"] == 800 and aug["clean_count"] == 400 and aug["copies"] == 1 and aug["seed"] == 7
    for key in ("thickness", "rotate_degrees", "shear", "x_scale"):
        assert aug[key] == ew.AUGMENT[key]
