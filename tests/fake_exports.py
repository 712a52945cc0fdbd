"""Small exports made in the tests without TensorFlow: numpy random weights written as v2 files.

They run through the same tests as the committed models, so that any size,
layer count or activation written into the code fails a test.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

# id -> hidden layers as (units, activation); every one ends in a 10-way softmax over 784 pixels
SHAPES = {
    "tiny-deep": [(16, "relu"), (8, "tanh")],
    "tiny-one": [(40, "linear")],
}
CLASSES = [str(d) for d in range(10)]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def export_files(model_id: str, hidden, seed: int = 0, input_size: int = 784, image_shape=(28, 28),
                 classes=CLASSES, stats: bool = False, title: str | None = None) -> dict[str, bytes]:
    """{file name: bytes} of an export: manifest.json plus one .npy per weight matrix and bias."""
    rng = np.random.default_rng(seed)
    sizes = [input_size] + [u for u, _ in hidden] + [len(classes)]
    activations = [a for _, a in hidden] + ["softmax"]
    names = [f"hidden_{i + 1}" for i in range(len(hidden))] + ["output"]
    files, layers = {}, []
    for i, (name, activation) in enumerate(zip(names, activations)):
        fan_in, units = sizes[i], sizes[i + 1]
        w = (rng.standard_normal((fan_in, units)) * (3.0 / np.sqrt(fan_in))).astype(np.float32)
        b = (rng.standard_normal(units) * 0.1).astype(np.float32)
        spec = {"name": name, "title": "Output layer" if name == "output" else f"Hidden layer {i + 1}",
                "kind": "dense", "inputs": fan_in, "units": units, "activation": activation}
        for part, array in (("weights", w), ("bias", b)):
            data = npy(array)
            fname = f"{name}_{part}.npy"
            files[fname] = data
            spec[part] = {"file": fname, "shape": list(array.shape), "dtype": "float32",
                          "sha256": hashlib.sha256(data).hexdigest()}
        if stats and name != "output":
            spec["activation_stats"] = {"p99": 1.0, "max": 2.0, "over": "made up for a test"}
        layers.append(spec)
    manifest = {
        "format": "nn-visualizer-export", "format_version": 2, "id": model_id,
        "title": title or f"Test network {model_id}",
        "description": "random weights, made by the tests",
        "input": {"size": input_size, "image_shape": list(image_shape), "dtype": "float32",
                  "normalization": {"scale": 1 / 255, "offset": 0.0, "formula": "x = pixel / 255"}},
        "classes": list(classes), "layers": layers,
        "dataset": {"name": "MNIST test set", "count": 10000},
        "training": {"source": "random weights (tests/fake_exports.py)", "seed": seed},
    }
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    return files


def write_export(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_models(models_dir: Path) -> list[str]:
    """Write every SHAPES export into models_dir/<id>/; returns the ids."""
    for i, (model_id, hidden) in enumerate(SHAPES.items()):
        write_export(models_dir / model_id, export_files(model_id, hidden, seed=i + 1))
    return list(SHAPES)
