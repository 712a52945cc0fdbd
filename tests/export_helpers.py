"""Helpers of the export tests: the committed test digits, reading an export, an independent forward pass.

The forward pass writes each activation out here, float64 throughout: tests
compare the exporter's numbers and Keras' outputs with it, never the code
under test with itself.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pyscript_app.core import export_format as ef

SITE = Path(__file__).resolve().parent.parent / "site"


def committed_testset() -> SimpleNamespace:
    """The committed test digits (site/data/mnist_test.npz), read with numpy alone: .images, .labels."""
    with np.load(SITE / "data" / "mnist_test.npz") as f:
        return SimpleNamespace(images=f["images"], labels=f["labels"])


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


PLAIN = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "linear": lambda z: z,
    "softmax": _softmax,
}


def plain_forward(arrays, images):
    """Every layer's activations (float64) for uint8 images (n, 28, 28); arrays are (weights, bias, activation)."""
    a = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
    out = []
    for w, b, activation in arrays:
        a = PLAIN[activation](a @ w.astype(np.float64) + b.astype(np.float64))
        out.append(a)
    return out


def read_model(folder):
    """(manifest, [(weights, bias, activation)]) of an export folder, checked by export_format."""
    manifest, arrays = ef.load_export(ef.read_folder(folder), str(folder))
    return manifest, [(w, b, l["activation"]) for (w, b), l in zip(arrays, manifest["layers"])]
