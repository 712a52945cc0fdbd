"""The models committed in site/models: what make build must produce, Keras parity, drawn digits.

Every model listed in site/models/index.json is checked: its export loads
through export_format's checks, a Keras model built from its manifest with
its .npy files agrees per layer with a plain numpy forward pass on all
10,000 test digits, and its reading of digits drawn on the pad is measured
the way tests/test_drawn_robustness.py measures the seed model (print the
table with -s; the README's Retraining section quotes it).
"""

from __future__ import annotations

import hashlib
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import SITE
from drawn_digits import rasterize, redraw, variants
from export_helpers import committed_testset, plain_forward, read_model
from pyscript_app.core.preprocess import preprocess

MODELS = SITE / "models"
INDEX = json.loads((MODELS / "index.json").read_text())


@pytest.fixture(scope="session")
def testset():
    return committed_testset()


@pytest.fixture(scope="session", params=INDEX["models"])
def model(request):
    manifest, arrays = read_model(MODELS / request.param)
    return SimpleNamespace(id=request.param, manifest=manifest, arrays=arrays)


def test_the_three_models_and_the_default():
    assert INDEX == {"default": "seed", "models": ["seed", "relu", "deep"]}
    assert sorted(p.name for p in MODELS.iterdir()) == ["deep", "index.json", "relu", "seed"]


def shape(model_id):
    return [(w.shape[1], a) for w, _, a in read_model(MODELS / model_id)[1]]


def test_each_model_has_its_shape():
    assert shape("seed") == [(32, "sigmoid"), (32, "sigmoid"), (10, "softmax")]
    assert shape("relu") == [(128, "relu"), (64, "relu"), (10, "softmax")]
    assert shape("deep") == [(64, "tanh"), (32, "tanh"), (16, "tanh"), (10, "softmax")]


def test_each_model_is_a_complete_v2_export_measured_on_the_committed_test_set(model, testset):
    m = model.manifest
    assert m["id"] == model.id and m["format_version"] == 2 and m["title"] and m["description"]
    test_npz = (SITE / "data" / "mnist_test.npz").read_bytes()
    assert m["dataset"] == {"name": "MNIST test set", "sha256": hashlib.sha256(test_npz).hexdigest(), "count": 10000}
    t = m["training"]
    assert t["source"] == "trained by export_weights.py" and t["augmentation"]["copies"] == 2
    assert (t["epochs"], t["batch_size"], t["seed"]) == (30, 128, 42)
    outputs = plain_forward(model.arrays, testset.images)
    correct = int((outputs[-1].argmax(1) == testset.labels).sum())
    assert t["test_correct"] == correct
    for layer, a in zip(m["layers"][:-1], outputs[:-1]):
        assert layer["activation_stats"]["p99"] == pytest.approx(np.percentile(a, 99), abs=1e-5)
        assert layer["activation_stats"]["max"] == pytest.approx(a.max(), abs=1e-5)
    assert correct >= 9600, f"{model.id}: {correct / 100:.2f} % of the test digits"


def test_the_data_manifest_describes_the_committed_test_set():
    data = json.loads((SITE / "data" / "manifest.json").read_text())
    test_npz = (SITE / "data" / "mnist_test.npz").read_bytes()
    assert data["format"] == "nn-visualizer-data"
    assert data["test"]["file"] == "mnist_test.npz" and data["test"]["count"] == 10000
    assert data["test"]["sha256"] == hashlib.sha256(test_npz).hexdigest()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_model_matches_keras_per_layer(model, testset, dtype):
    """The .npy files in a Keras model built from the manifest, against the plain numpy pass, all 10,000 digits.

    In float64 every layer agrees within 1e-5. In float32 (how Keras trained
    the model) the sums are rounded to float32: unbounded ReLU activations
    reach about 30, where float32 steps are 2e-6, so there the bound is 1e-5
    of the layer's largest activation (1e-5 itself for layers within [-1, 1]).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")  # listed in requirements-train.txt: absent only if install broke
    layers = model.manifest["layers"]
    keras_model = keras.Sequential(
        [keras.Input((model.manifest["input"]["size"],), dtype=dtype)]
        + [keras.layers.Dense(l["units"], activation=l["activation"], dtype=dtype) for l in layers]
    )
    folder = MODELS / model.id
    for dense, l in zip(keras_model.layers, layers):
        dense.set_weights([np.load(folder / l["weights"]["file"]).astype(dtype), np.load(folder / l["bias"]["file"]).astype(dtype)])
    x = testset.images.reshape(len(testset.images), -1).astype(dtype) / 255.0
    probe = keras.Model(keras_model.inputs, [l.output for l in keras_model.layers])
    expected = probe.predict(x, batch_size=2000, verbose=0)
    got = plain_forward(model.arrays, testset.images)
    assert len(got) == len(expected) == len(layers)
    for l, g, e in zip(layers, got, expected):
        assert e.dtype == dtype
        bound = 1e-5 * (1.0 if dtype == "float64" else max(1.0, float(np.abs(e).max())))
        assert np.abs(g - e).max() < bound, (l["name"], np.abs(g - e).max(), bound)
    np.testing.assert_array_equal(got[-1].argmax(1), expected[-1].argmax(1))


# --- drawn digits -------------------------------------------------------------------------

BANDS = {"small": (0.2, 0.35), "medium to large": (0.35, 0.95)}
REDRAWN = 600


@pytest.fixture(scope="session")
def drawings(testset):
    """The same drawings for every model: MNIST test digits redrawn on the pad, and varied polyline digits."""
    rng = np.random.default_rng(2024)
    out = {}
    for band, height in BANDS.items():
        indices = rng.choice(len(testset.labels), size=REDRAWN, replace=False)
        pads = [redraw(testset.images[i], rng, height=height) for i in indices]
        out[band] = (np.array([preprocess(p).centred for p in pads]), testset.labels[indices])
    drawn = list(variants(300, seed=11))
    out["polyline"] = (np.array([preprocess(rasterize(s)).centred for _, s in drawn]), np.array([d for d, _ in drawn]))
    return out


@pytest.fixture(scope="session")
def drawn_rates(drawings, testset):
    """{model id: {"clean": rate, band: rate, ...}}, printed as the README's table."""
    rates = {}
    for model_id in INDEX["models"]:
        arrays = read_model(MODELS / model_id)[1]
        rates[model_id] = {"clean": float((plain_forward(arrays, testset.images)[-1].argmax(1) == testset.labels).mean())}
        for name, (images, labels) in drawings.items():
            rates[model_id][name] = float((plain_forward(arrays, images)[-1].argmax(1) == labels).mean())
    print(f"\n| model | shape | clean test | redrawn small ({REDRAWN}) | redrawn medium to large ({REDRAWN}) | polyline drawings (300) |")
    for model_id, r in rates.items():
        text = " -> ".join(f"{w.shape[1]} {a}" for w, _, a in read_model(MODELS / model_id)[1][:-1])
        print(f"| {model_id} | {text} | {r['clean']:.2%} | {r['small']:.1%} | {r['medium to large']:.1%} | {r['polyline']:.1%} |")
    return rates


def test_every_model_reads_drawn_digits(drawn_rates):
    for model_id, r in drawn_rates.items():
        assert r["small"] >= 0.8 and r["medium to large"] >= 0.92 and r["polyline"] >= 0.9, (model_id, r)


def test_the_relu_model_reads_drawn_digits_clearly_better_than_the_seed(drawn_rates):
    seed, relu = drawn_rates["seed"], drawn_rates["relu"]
    # small drawings (the fat strokes) are where the seed network is weakest
    assert relu["small"] >= seed["small"] + 0.03, (seed, relu)
    assert relu["medium to large"] >= seed["medium to large"], (seed, relu)
