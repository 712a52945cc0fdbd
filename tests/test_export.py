"""export_weights.py: training any Dense network, the export it writes, --from-model, --from-export, --zip, bad input.

Convolutional networks (--conv, --from-model of a Keras CNN): test_export_cnn.py.

Training runs go through the real CLI in a subprocess (TensorFlow's thread
settings must be made before it starts, once per process). They train one
epoch on a small MNIST-shaped file made from the committed test digits, so
the suite needs no download. The export format's checks are tested on their
own in test_export_format.py; the committed models in test_shipped_models.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import ROOT, SITE
from export_helpers import committed_testset, plain_forward, read_model
from pyscript_app.core import export_format as ef

import export_weights as ew

SCRIPT = ROOT / "export_weights.py"
SEED_MODEL = SITE / "models" / "seed"


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
def testset():
    return committed_testset()


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
    """One real (short) training run of the default network through the CLI, with the Keras model saved."""
    out = tmp_path_factory.mktemp("run_a")
    model = out / "model.keras"
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7,
                        "--out", out, "--save-model", model)
    assert result.returncode == 0, result.stderr
    return out, model, result


def test_help_explains_every_option():
    result = run_export("--help")
    assert result.returncode == 0
    for option in ("--epochs", "--batch-size", "--seed", "--out", "--data", "--from-model", "--hidden", "--activation",
                   "--id", "--title", "--description", "--zip", "--from-export", "--augment", "--conv", "--kernel",
                   "--padding", "--pool", "--conv-activation", "--lr-schedule"):
        assert option in result.stdout
    for activation in ("sigmoid", "tanh", "relu", "linear"):
        assert activation in result.stdout


def test_short_training_run_gives_complete_loadable_export(short_run, testset):
    out, _, result = short_run
    assert "data: --data" in result.stdout  # says which source it used
    assert "epoch 1/1: loss" in result.stdout  # per-epoch progress
    assert "test accuracy:" in result.stdout
    manifest, arrays = read_model(out / "models" / "seed")  # checks every sha256, shape, dtype, finiteness
    assert manifest["id"] == "seed"  # the default network is the seed model
    assert [(w.shape, a) for w, _, a in arrays] == [((784, 32), "sigmoid"), ((32, 32), "sigmoid"), ((32, 10), "softmax")]
    with np.load(out / "data" / "mnist_test.npz") as f:
        np.testing.assert_array_equal(f["images"], testset.images[3000:4000])
        np.testing.assert_array_equal(f["labels"], testset.labels[3000:4000])
    assert json.loads((out / "models" / "index.json").read_text()) == {"default": "seed", "models": ["seed"]}
    # no staging folders left behind
    assert sorted(p.name for p in out.iterdir()) == ["data", "model.keras", "models"]
    assert sorted(p.name for p in (out / "models").iterdir()) == ["index.json", "seed"]


def test_manifest_schema_checksums_and_facts(short_run, testset):
    out = short_run[0]
    model_dir = out / "models" / "seed"
    m = json.loads((model_dir / "manifest.json").read_text())
    assert m["format"] == "nn-visualizer-export" and m["format_version"] == 2
    assert m["input"]["normalization"]["scale"] == pytest.approx(1 / 255)
    assert m["classes"] == [str(d) for d in range(10)]
    assert [l["name"] for l in m["layers"]] == ["hidden_1", "hidden_2", "output"]
    assert [l["inputs"] for l in m["layers"]] == [784, 32, 32]
    for layer in m["layers"]:
        for part in ("weights", "bias"):
            spec = layer[part]
            data = (model_dir / spec["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == spec["sha256"]
            assert list(np.load(model_dir / spec["file"]).shape) == spec["shape"]
    test_npz = (out / "data" / "mnist_test.npz").read_bytes()
    assert "file" not in m["dataset"]  # the test set lives in data/
    assert m["dataset"]["sha256"] == hashlib.sha256(test_npz).hexdigest() and m["dataset"]["count"] == 1000
    data_manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert data_manifest["format"] == "nn-visualizer-data"
    assert data_manifest["test"]["file"] == "mnist_test.npz"
    assert data_manifest["test"]["sha256"] == m["dataset"]["sha256"] and data_manifest["test"]["count"] == 1000
    t = m["training"]
    for key in ("epochs", "batch_size", "seed", "tensorflow_version", "keras_version", "test_accuracy", "date", "data_source"):
        assert t[key] is not None, key
    assert (t["epochs"], t["batch_size"], t["seed"], t["train_count"]) == (1, 64, 7, 3000)
    # accuracy and activation_stats agree with an independent forward pass over the exported test set
    arrays = [(np.load(model_dir / l["weights"]["file"]), np.load(model_dir / l["bias"]["file"]), l["activation"])
              for l in m["layers"]]
    outputs = plain_forward(arrays, testset.images[3000:4000])
    correct = int((outputs[-1].argmax(1) == testset.labels[3000:4000]).sum())
    assert t["test_correct"] == correct and t["test_accuracy"] == pytest.approx(correct / 1000)
    for layer, a in zip(m["layers"][:-1], outputs[:-1]):
        assert layer["activation_stats"]["p99"] == pytest.approx(np.percentile(a, 99), abs=1e-5)
        assert layer["activation_stats"]["max"] == pytest.approx(a.max(), abs=1e-5)
    assert "activation_stats" not in m["layers"][-1]


def test_same_seed_gives_identical_weights(short_run, small_data, tmp_path):
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = tree_digest(short_run[0] / "models" / "seed"), tree_digest(tmp_path / "models" / "seed")
    first.pop("manifest.json"), second.pop("manifest.json")  # holds the date
    assert first == second


@pytest.mark.parametrize("options, shape", [
    (["--hidden", "16"], [(784, 16, "sigmoid"), (16, 10, "softmax")]),
    (["--hidden", "24,12", "--activation", "relu,tanh"], [(784, 24, "relu"), (24, 12, "tanh"), (12, 10, "softmax")]),
])
def test_other_shapes_train_and_export(small_data, tmp_path, testset, options, shape):
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 3, "--limit-train", 1000,
                        *options, "--id", "other", "--title", "Other", "--description", "A test network.", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    manifest, arrays = read_model(tmp_path / "models" / "other")
    assert [(w.shape[0], w.shape[1], a) for w, _, a in arrays] == shape
    assert (manifest["id"], manifest["title"], manifest["description"]) == ("other", "Other", "A test network.")
    assert [l["inputs"] for l in manifest["layers"]] == [s[0] for s in shape]
    # the numbers in the manifest are the exported weights' (an independent forward pass agrees)
    outputs = plain_forward(arrays, testset.images[3000:4000])
    assert manifest["training"]["test_correct"] == int((outputs[-1].argmax(1) == testset.labels[3000:4000]).sum())
    assert manifest["training"]["test_correct"] > 200  # one epoch on 1,000 digits learns something (chance: ~100)
    for layer, a in zip(manifest["layers"][:-1], outputs[:-1]):
        assert layer["activation_stats"]["max"] == pytest.approx(a.max(), abs=1e-5)


def test_the_default_id_says_the_shape(small_data, tmp_path):
    result = run_export("--data", small_data, "--epochs", 1, "--limit-train", 200, "--hidden", "20,10",
                        "--activation", "tanh", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "models" / "index.json").read_text()) == {"default": "net-20t-10t", "models": ["net-20t-10t"]}


@pytest.mark.parametrize("options, fragments", [
    (["--hidden", "8,8,8,8,8"], ["--hidden 8,8,8,8,8", "5 hidden layers", "1 to 4"]),
    (["--hidden", "600"], ["--hidden 600", "600 units", "1 to 512"]),
    (["--hidden", "0"], ["--hidden 0", "0 units"]),
    (["--hidden", "32,x"], ["--hidden 32,x", "comma-separated"]),
    (["--activation", "gelu"], ["--activation gelu", "'gelu'", "sigmoid, tanh, relu, linear"]),
    (["--hidden", "8,8", "--activation", "relu,tanh,relu"], ["3 activations for 2 hidden layers"]),
    (["--id", "Not An Id"], ["--id Not An Id"]),
])
def test_bad_network_options_are_refused(tmp_path, small_data, options, fragments):
    result = run_export("--data", small_data, *options, "--out", tmp_path)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_from_model_round_trip(short_run, small_data, tmp_path):
    out_a, model_path, _ = short_run
    result = run_export("--from-model", model_path, "--data", small_data, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    a, b = tree_digest(out_a / "models" / "seed"), tree_digest(tmp_path / "models" / "seed")
    a.pop("manifest.json"), b.pop("manifest.json")
    assert a == b
    m = json.loads((tmp_path / "models" / "seed" / "manifest.json").read_text())
    assert m["training"]["source"] == "from-model model.keras"


# --- --from-model with Keras models made in the test ---------------------------------------

KERAS_MODELS = r"""
import sys, numpy as np, keras
keras.utils.set_random_seed(5)
out = sys.argv[1]
L = keras.layers
models = {
    "relu": [keras.Input((28, 28)), L.Flatten(), L.Dense(40, activation="relu", name="wide"), L.Dropout(0.2),
             L.Dense(10, activation="softmax", name="out")],
    "tanh3": [keras.Input((784,)), L.Dense(24, activation="tanh"), L.Dense(16, activation="tanh"),
              L.Dense(12, activation="tanh"), L.Dense(10, activation="softmax")],
    "pooled": [keras.Input((784,)), L.Dense(16, activation="relu"), L.Reshape((4, 4, 1), name="to_image"),
               L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")],
    "five": [keras.Input((784,))] + [L.Dense(8, activation="relu", name=f"d{i}") for i in range(5)]
            + [L.Dense(10, activation="softmax")],
    "wide": [keras.Input((784,)), L.Dense(600, activation="relu", name="too_wide"), L.Dense(10, activation="softmax")],
    "sigout": [keras.Input((784,)), L.Dense(16, activation="relu"), L.Dense(10, activation="sigmoid", name="sig_out")],
    "gelu": [keras.Input((784,)), L.Dense(16, activation="gelu", name="gelu_layer"), L.Dense(10, activation="softmax")],
    "nohidden": [keras.Input((784,)), L.Dense(10, activation="softmax", name="only")],
    "unflat": [keras.Input((28, 28)), L.Dense(16, activation="relu", name="per_row"), L.Flatten(),
               L.Dense(10, activation="softmax")],
}
x = np.load(sys.argv[2])
for name, layers in models.items():
    m = keras.Sequential(layers)
    m.save(f"{out}/{name}.keras")
    if name in ("relu", "tanh3"):
        np.savez(f"{out}/{name}_weights.npz", *[w for l in m.layers for w in l.get_weights()])
        np.save(f"{out}/{name}_predictions.npy", m.predict(x.reshape(len(x), *m.input_shape[1:]).astype("float32") / 255, verbose=0))
"""


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory, testset):
    folder = tmp_path_factory.mktemp("keras_models")
    np.save(folder / "x.npy", testset.images[3000:4000])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", KERAS_MODELS, str(folder), str(folder / "x.npy")], check=True,
                   capture_output=True, env=env, timeout=300)
    return folder


@pytest.mark.parametrize("name, activations", [("relu", ["relu", "softmax"]), ("tanh3", ["tanh", "tanh", "tanh", "softmax"])])
def test_from_model_exports_any_dense_chain(keras_models, small_data, tmp_path, testset, name, activations):
    result = run_export("--from-model", keras_models / f"{name}.keras", "--data", small_data, "--id", name, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    manifest, arrays = read_model(tmp_path / "models" / name)
    assert [a for _, _, a in arrays] == activations
    with np.load(keras_models / f"{name}_weights.npz") as f:
        expected = [f[f"arr_{i}"] for i in range(len(f.files))]
    got = [x for w, b, _ in arrays for x in (w, b)]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    # the exported network computes what the Keras model computes
    probabilities = plain_forward(arrays, testset.images[3000:4000])[-1]
    assert np.abs(probabilities - np.load(keras_models / f"{name}_predictions.npy")).max() < 1e-5
    assert manifest["training"]["source"] == f"from-model {name}.keras"


@pytest.mark.parametrize("name, fragments", [
    ("pooled", ["pooled.keras", "'to_image'", "Reshape to (4, 4, 1)", "only a Reshape of the 784 pixels"]),
    ("five", ["five.keras", "'d4'", "hidden layer 5", "at most 4"]),
    ("wide", ["wide.keras", "'too_wide'", "600 units", "at most 512"]),
    ("sigout", ["sigout.keras", "'sig_out'", "output layer", "sigmoid", "softmax"]),
    ("gelu", ["gelu.keras", "'gelu_layer'", "'gelu'"]),
    ("nohidden", ["nohidden.keras", "'only'", "at least 1 hidden layer"]),
    ("unflat", ["unflat.keras", "'per_row'", "takes 28 inputs"]),
])
def test_from_model_refuses_what_the_format_cannot_hold(existing_export, keras_models, small_data, name, fragments):
    out, before = existing_export
    result = run_export("--from-model", keras_models / f"{name}.keras", "--data", small_data, "--out", out)
    assert_one_line_error(result, *fragments)
    assert tree_digest(out) == before


# --- --zip and --from-export ---------------------------------------------------------------


def test_zip_holds_the_export_at_its_root(short_run, small_data, tmp_path):
    _, model_path, _ = short_run
    zip_path = tmp_path / "seed.zip"
    result = run_export("--from-model", model_path, "--data", small_data, "--out", tmp_path / "site", "--zip", zip_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "site" / "models" / "seed"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert names[0] == "manifest.json"
        assert sorted(names) == sorted(p.name for p in folder.iterdir())
        for n in names:
            assert zf.read(n) == (folder / n).read_bytes(), n
    manifest, arrays = ef.load_export(ef.read_zip(zip_path.read_bytes(), "seed.zip"), "seed.zip")
    assert len(arrays) == 3


def random_export(sizes=(784, 12, 6, 10), activations=("relu", "tanh"), model_id="mine", seed=1):
    """A v2 export made with numpy alone, as the page's trainer would save it: {file: bytes}."""
    rng = np.random.default_rng(seed)
    arrays = [(rng.normal(0, 0.2, (i, o)).astype(np.float32), rng.normal(0, 0.2, o).astype(np.float32), a)
              for i, o, a in zip(sizes[:-1], sizes[1:], [*activations, "softmax"])]
    files = {}
    layers = ew.layer_entries(arrays, files)
    manifest = {"format": "nn-visualizer-export", "format_version": 2, "id": model_id, "title": "Mine",
                "description": "Trained in the page.",
                "input": {"size": 784, "image_shape": [28, 28], "dtype": "float32",
                          "normalization": {"scale": 1 / 255, "offset": 0.0}},
                "classes": [str(c) for c in range(10)], "layers": layers,
                "training": {"source": "trained in the page", "epochs": 2}}
    files["manifest.json"] = json.dumps(manifest).encode()
    return files, arrays


def test_from_export_of_a_zip(tmp_path, small_data, testset):
    files, arrays = random_export()
    (tmp_path / "mine.zip").write_bytes(ef.write_zip(files))
    result = run_export("--from-export", tmp_path / "mine.zip", "--data", small_data, "--out", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    manifest, got = read_model(tmp_path / "site" / "models" / "mine")
    for (w, b, a), (ew_, eb, ea) in zip(got, arrays):
        np.testing.assert_array_equal(w, ew_)
        np.testing.assert_array_equal(b, eb)
        assert a == ea
    assert (manifest["title"], manifest["description"]) == ("Mine", "Trained in the page.")
    assert manifest["training"]["source"] == "trained in the page" and manifest["training"]["epochs"] == 2
    assert manifest["training"]["exported_from"] == "from-export mine.zip"
    outputs = plain_forward(arrays, testset.images[3000:4000])
    assert manifest["training"]["test_correct"] == int((outputs[-1].argmax(1) == testset.labels[3000:4000]).sum())
    assert manifest["layers"][0]["activation_stats"]["p99"] == pytest.approx(np.percentile(outputs[0], 99), abs=1e-5)
    assert json.loads((tmp_path / "site" / "models" / "index.json").read_text()) == {"default": "mine", "models": ["mine"]}


def test_from_export_of_a_folder_with_another_id(tmp_path, small_data):
    files, _ = random_export(sizes=(784, 5, 10), activations=("linear",))
    (tmp_path / "src").mkdir()
    for name, data in files.items():
        (tmp_path / "src" / name).write_bytes(data)
    result = run_export("--from-export", tmp_path / "src", "--id", "other", "--data", small_data, "--out", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert read_model(tmp_path / "site" / "models" / "other")[0]["id"] == "other"


def _corrupt_sha(files):
    data = bytearray(files["hidden_1_bias.npy"])
    data[-1] ^= 0xFF
    files["hidden_1_bias.npy"] = bytes(data)


def _break_chain(files):
    m = json.loads(files["manifest.json"])
    m["layers"][1]["inputs"] = 11
    files["manifest.json"] = json.dumps(m).encode()


@pytest.mark.parametrize("breakage, fragments", [
    (lambda f: f.pop("output_weights.npy"), ["bad.zip", "output_weights.npy is missing from bad.zip"]),
    (_corrupt_sha, ["bad.zip", "hidden_1_bias.npy is corrupt"]),
    (_break_chain, ["bad.zip", "layers[1].inputs is 11"]),
])
def test_from_export_refuses_a_broken_export(existing_export, small_data, breakage, fragments):
    out, before = existing_export
    files, _ = random_export()
    breakage(files)
    bad = out.parent / "bad.zip"
    bad.write_bytes(ef.write_zip(files))
    result = run_export("--from-export", bad, "--data", small_data, "--out", out)
    assert_one_line_error(result, *fragments)
    assert tree_digest(out) == before


def test_from_export_refuses_a_file_that_is_not_a_zip(existing_export, small_data):
    out, before = existing_export
    bad = out.parent / "photo.zip"
    bad.write_bytes(b"\x89PNG not a zip")
    result = run_export("--from-export", bad, "--data", small_data, "--out", out)
    assert_one_line_error(result, "photo.zip is not a zip file")
    assert tree_digest(out) == before


# --- the site's index.json and data/manifest.json, in-process -------------------------------


def small_test(testset, n=200):
    return testset.images[:n], testset.labels[:n]


def test_index_json_keeps_order_and_default_and_adds_new_ids(tmp_path, testset):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "index.json").write_text(json.dumps({"default": "relu", "models": ["relu", "seed"]}))
    _, arrays = random_export()
    ew.export(tmp_path, {"id": "seed"}, arrays, small_test(testset), {"source": "test"})
    assert json.loads((tmp_path / "models" / "index.json").read_text()) == {"default": "relu", "models": ["relu", "seed"]}
    ew.export(tmp_path, {"id": "new-one"}, arrays, small_test(testset), {"source": "test"})
    assert json.loads((tmp_path / "models" / "index.json").read_text()) == {"default": "relu", "models": ["relu", "seed", "new-one"]}
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["index.json", "new-one", "seed"]


def test_index_json_that_is_not_json_is_refused_and_kept(tmp_path, testset):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "index.json").write_text("{broken")
    _, arrays = random_export()
    with pytest.raises(ew.UserError, match=r"index.json: cannot read it as JSON"):
        ew.export(tmp_path, {"id": "seed"}, arrays, small_test(testset), {"source": "test"})
    assert tree_digest(tmp_path) == {"models/index.json": hashlib.sha256(b"{broken").hexdigest()}


def test_data_manifest_keeps_its_other_entries_and_files(tmp_path, testset):
    (tmp_path / "data").mkdir()
    train = {"file": "mnist_train.npz", "sha256": "a" * 64, "count": 60000}
    (tmp_path / "data" / "manifest.json").write_text(json.dumps({"format": "nn-visualizer-data", "train": train}))
    (tmp_path / "data" / "mnist_train.npz").write_bytes(b"the training digits")
    _, arrays = random_export()
    ew.export(tmp_path, {"id": "seed"}, arrays, small_test(testset), {"source": "test"})
    data = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert data["train"] == train
    assert data["test"]["count"] == 200
    assert data["test"]["sha256"] == hashlib.sha256((tmp_path / "data" / "mnist_test.npz").read_bytes()).hexdigest()
    assert (tmp_path / "data" / "mnist_train.npz").read_bytes() == b"the training digits"


# --- bad input and failed exports leave the previous export untouched ------------------------


@pytest.fixture
def existing_export(tmp_path):
    """An --out folder that already holds the committed models and data."""
    import shutil

    out = tmp_path / "site"
    shutil.copytree(SITE / "models", out / "models")
    shutil.copytree(SITE / "data", out / "data")
    return out, tree_digest(out)


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


def test_zip_into_a_missing_folder_is_refused(existing_export, small_data):
    out, before = existing_export
    result = run_export("--data", small_data, "--out", out, "--zip", out / "no" / "such" / "m.zip")
    assert_one_line_error(result, "--zip", "does not exist")
    assert tree_digest(out) == before


def seed_arrays():
    return read_model(SEED_MODEL)[1]


def test_failed_export_leaves_previous_export_intact(existing_export, testset):
    out, before = existing_export
    arrays = seed_arrays()
    arrays[1] = (arrays[1][0], np.full(arrays[1][1].shape, np.nan, np.float32), arrays[1][2])  # a diverged training run
    with pytest.raises(ew.UserError, match="previous export is unchanged"):
        ew.export(out, {"id": "seed"}, arrays, (testset.images, testset.labels), {"source": "test"})
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "models"]


def test_interrupted_export_leaves_previous_export_intact(existing_export, testset, monkeypatch):
    out, before = existing_export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ew, "stage_data_dir", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ew.export(out, {"id": "seed"}, seed_arrays(), (testset.images, testset.labels), {"source": "test"})
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "models"]


def test_a_swap_that_fails_half_way_is_rolled_back(existing_export, testset, monkeypatch):
    """The model folder is already in place when moving data/ fails: both come back as they were."""
    from pathlib import Path

    out, before = existing_export
    real_rename, calls = Path.rename, []

    def rename(self, target):
        calls.append((self, target))
        if Path(target) == out / "data" and self.name == "data":  # the new data/ cannot be moved in
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    arrays = seed_arrays()
    arrays[2] = (arrays[2][0], arrays[2][1] + 1.0, "softmax")
    with pytest.raises(ew.UserError, match="could not swap the new export in .* previous export is unchanged"):
        ew.export(out, {"id": "seed"}, arrays, (testset.images, testset.labels), {"source": "test"})
    assert any(Path(t) == out / "models" / "seed" for _, t in calls)  # the model folder had been swapped in
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "models"]


def test_successful_export_replaces_previous(existing_export, testset):
    out, before = existing_export
    arrays = seed_arrays()
    arrays[-1] = (arrays[-1][0], arrays[-1][1] + 1.0, "softmax")  # softmax is shift-invariant: same predictions
    ew.export(out, {"id": "seed"}, arrays, (testset.images, testset.labels), {"source": "test"})
    after = tree_digest(out)
    assert after["models/seed/output_bias.npy"] != before["models/seed/output_bias.npy"]
    assert after["models/seed/hidden_1_weights.npy"] == before["models/seed/hidden_1_weights.npy"]
    others = {k: v for k, v in before.items() if not k.startswith("models/seed/")}
    assert {k: after[k] for k in others} == others  # the other models and the data are as they were
    assert sorted(p.name for p in out.iterdir()) == ["data", "models"]


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


# --- --augment (drawing-like training digits) ----------------------------------------------


def test_augmented_run_is_recorded_in_the_manifest(small_data, tmp_path):
    result = run_export("--data", small_data, "--epochs", 1, "--batch-size", 64, "--seed", 7, "--limit-train", 400,
                        "--augment", "--augment-copies", 1, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "augment: copy 1/1 of 400 digits" in result.stdout
    training = json.loads((tmp_path / "models" / "seed" / "manifest.json").read_text())["training"]
    aug = training["augmentation"]
    assert training["train_count"] == 800 and aug["clean_count"] == 400 and aug["copies"] == 1 and aug["seed"] == 7
    for key in ("thickness", "rotate_degrees", "shear", "x_scale"):
        assert aug[key] == ew.AUGMENT[key]


def test_zip_elsewhere_and_no_partial_files_left(tmp_path, testset):
    _, arrays = random_export()
    (tmp_path / "site").mkdir()
    (tmp_path / "zips").mkdir()
    zip_path = tmp_path / "zips" / "mine.zip"
    zip_path.write_bytes(b"an older zip")
    ew.export(tmp_path / "site", {"id": "mine"}, arrays, small_test(testset), {"source": "test"}, zip_path=zip_path)
    assert [p.name for p in (tmp_path / "zips").iterdir()] == ["mine.zip"]
    files = ef.read_zip(zip_path.read_bytes(), "mine.zip")
    assert files == {p.name: p.read_bytes() for p in (tmp_path / "site" / "models" / "mine").iterdir()}
