"""Helpers of the export tests: the committed test digits, reading an export, an independent forward pass.

The forward pass is tests/reference.py's (each activation written out there,
float64 throughout): tests compare the exporter's numbers and Keras' outputs
with it, never the code under test with itself.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

import reference as ref
from pyscript_app.core import export_format as ef

SITE = Path(__file__).resolve().parent.parent / "site"


def committed_testset() -> SimpleNamespace:
    """The committed test digits (site/data/mnist_test.npz), read with numpy alone: .images, .labels."""
    with np.load(SITE / "data" / "mnist_test.npz") as f:
        return SimpleNamespace(images=f["images"], labels=f["labels"])


def plain_forward(arrays, images):
    """Every layer's activations (float64) for uint8 images (n, 28, 28); arrays are (weights, bias, activation).

    The independent forward pass of tests/reference.py, on pixel / 255."""
    x = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
    return ref.forward([(w.astype(np.float64), b.astype(np.float64), a) for w, b, a in arrays], x)


def read_model(folder):
    """(manifest, [(weights, bias, activation)]) of an export folder, checked by export_format."""
    manifest, arrays = ef.load_export(ef.read_folder(folder), str(folder))
    return manifest, [(w, b, l["activation"]) for (w, b), l in zip(arrays, manifest["layers"])]
