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
# id -> a convolutional chain: ("conv", filters, kernel, padding, activation), ("pool",), then dense (units, activation)
CNN_SHAPES = {
    "tiny-cnn": [("conv", 4, 3, "valid", "relu"), ("pool",), ("conv", 6, 5, "same", "tanh"), ("pool",), (12, "sigmoid")],
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
    files["manifest.json"] = manifest_bytes(model_id, layers, seed, input_size, image_shape, classes, title)
    return files


def manifest_bytes(model_id, layers, seed, input_size=784, image_shape=(28, 28), classes=CLASSES, title=None) -> bytes:
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
    return json.dumps(manifest, indent=2).encode()


def _npy_entry(files: dict, spec: dict, name: str, part: str, array: np.ndarray) -> None:
    data = npy(array)
    files[f"{name}_{part}.npy"] = data
    spec[part] = {"file": f"{name}_{part}.npy", "shape": list(array.shape), "dtype": "float32",
                  "sha256": hashlib.sha256(data).hexdigest()}


def cnn_export_files(model_id: str, chain, seed: int = 0, classes=CLASSES) -> dict[str, bytes]:
    """{file name: bytes} of a convolutional export over 28x28 digits, written here by hand (not by the
    product's writer): conv2d / maxpool2d layers, a flatten, dense layers and the softmax output."""
    rng = np.random.default_rng(seed)
    files, layers = {}, []
    shape = [28, 28, 1]
    convs = pools = denses = 0
    for step in [*chain, (len(classes), "softmax")]:
        if step[0] == "conv":
            _, filters, k, padding, activation = step
            convs += 1
            name = f"conv_{convs}"
            h, w, cin = shape
            out = [h, w, filters] if padding == "same" else [h - k + 1, w - k + 1, filters]
            spec = {"name": name, "title": f"Convolution {convs}", "kind": "conv2d", "input_shape": shape,
                    "output_shape": out, "filters": filters, "kernel": [k, k], "stride": 1, "padding": padding,
                    "activation": activation}
            _npy_entry(files, spec, name, "weights",
                       (rng.standard_normal((k, k, cin, filters)) * (2.0 / np.sqrt(k * k * cin))).astype(np.float32))
            _npy_entry(files, spec, name, "bias", (rng.standard_normal(filters) * 0.1).astype(np.float32))
        elif step[0] == "pool":
            pools += 1
            out = [shape[0] // 2, shape[1] // 2, shape[2]]
            spec = {"name": f"pool_{pools}", "title": f"Pooling {pools}", "kind": "maxpool2d",
                    "input_shape": shape, "output_shape": out, "pool": [2, 2]}
        else:
            if len(shape) == 3:
                flat = [int(np.prod(shape))]
                layers.append({"name": "flatten", "title": "Flatten", "kind": "flatten",
                               "input_shape": shape, "output_shape": flat})
                shape = flat
            units, activation = step
            last = activation == "softmax"
            denses += 1
            name = "output" if last else f"dense_{denses}"
            spec = {"name": name, "title": "Output layer" if last else f"Dense layer {denses}", "kind": "dense",
                    "inputs": shape[0], "units": units, "activation": activation}
            _npy_entry(files, spec, name, "weights",
                       (rng.standard_normal((shape[0], units)) * (3.0 / np.sqrt(shape[0]))).astype(np.float32))
            _npy_entry(files, spec, name, "bias", (rng.standard_normal(units) * 0.1).astype(np.float32))
            out = [units]
        layers.append(spec)
        shape = out
    files["manifest.json"] = manifest_bytes(model_id, layers, seed, classes=classes)
    return files


def write_export(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_models(models_dir: Path) -> list[str]:
    """Write every SHAPES and CNN_SHAPES export into models_dir/<id>/; returns the ids."""
    for i, (model_id, hidden) in enumerate(SHAPES.items()):
        write_export(models_dir / model_id, export_files(model_id, hidden, seed=i + 1))
    for i, (model_id, chain) in enumerate(CNN_SHAPES.items()):
        write_export(models_dir / model_id, cnn_export_files(model_id, chain, seed=i + 11))
    return [*SHAPES, *CNN_SHAPES]
