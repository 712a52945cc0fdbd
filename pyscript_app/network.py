"""The network: read an export (manifest + .npy files) and run the forward pass.

Pure numpy. This module runs unchanged in CPython (pytest, the build, the
benchmark) and in the browser (Pyodide), so it must never import anything
from the browser. Files are handed in as bytes: the caller decides how to
read them (from disk here, over HTTP in the page).

The manifest (``model/manifest.json``) is the one contract between
``export_weights.py`` and the page; everything about the architecture is read
from it, nothing is hard-coded here.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from pyscript_app import activations as act

FORMAT = "nn-visualizer-export"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class ExportError(ValueError):
    """An export (manifest, weights or data) is missing, broken or inconsistent.

    The message names the file and what is wrong with it; it is meant to be
    shown to a user as it is.
    """


# activations: see activations.py (function, derivative, range of each)

sigmoid, softmax, relu, linear = act.sigmoid, act.softmax, act.relu, act.linear
ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {n: a.function for n, a in act.REGISTRY.items()}
ACTIVATIONS = tuple(act.REGISTRY)


# ---------------------------------------------------------------------------
# the model


@dataclass
class Layer:
    name: str
    title: str
    activation: str
    weights: np.ndarray  # (inputs, units) float32
    bias: np.ndarray  # (units,) float32
    grid: dict  # how the page lays the units out: {"rows": r, "columns": c}
    labels: list[str] | None = None  # names of the units (output classes)

    def __post_init__(self):
        # The arithmetic runs in float64: float32 sums depend on the order the
        # BLAS of each numpy build adds in (the browser's numpy and CPython's
        # differ by up to ~2e-6), float64 ones agree to the last float32 bit.
        self._w64 = self.weights.astype(np.float64)
        self._b64 = self.bias.astype(np.float64)

    @property
    def units(self) -> int:
        return int(self.bias.shape[0])

    def pre_activation(self, x: np.ndarray) -> np.ndarray:
        """Weighted input sums (float64) for input ``x`` (n, fan_in) or (fan_in,)."""
        return np.asarray(x, dtype=np.float64) @ self._w64 + self._b64

    def activate(self, z: np.ndarray) -> np.ndarray:
        return ACTIVATION_FUNCTIONS[self.activation](z)


@dataclass
class Network:
    manifest: dict
    layers: list[Layer]
    normalization: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return int(self.layers[0].weights.shape[0])

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.manifest["input"]["image_shape"])  # type: ignore[return-value]

    @property
    def class_labels(self) -> list[str]:
        return self.layers[-1].labels or [str(i) for i in range(self.layers[-1].units)]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 grey levels (0 = background) -> the network's float32 input.

        Accepts one image (28, 28) / (784,) or a batch (n, 28, 28) / (n, 784).
        """
        return normalize(pixels, self.normalization, self.input_size)

    def forward(
        self,
        x: np.ndarray,
        knocked_out: Mapping[str, object] | None = None,
    ) -> list[np.ndarray]:
        """Every layer's activations for already-normalised input ``x``.

        ``x`` is (784,) or (n, 784) float32; the result has one float32 array
        per layer, shaped (units,) or (n, units) like the input.
        ``knocked_out`` maps a layer name to the indices of units whose
        activation is forced to zero (a "knock-out"), before the next layer.
        """
        a = np.asarray(x, dtype=np.float32)
        single = a.ndim == 1
        if single:
            a = a[None, :]
        if a.shape[-1] != self.input_size:
            raise ValueError(f"input has {a.shape[-1]} values, the network takes {self.input_size}")
        out = []
        for layer in self.layers:
            a = layer.activate(layer.pre_activation(a)).astype(np.float32)
            dead = (knocked_out or {}).get(layer.name)
            if dead is not None and len(dead):  # type: ignore[arg-type]
                a = a.copy()
                a[:, np.asarray(list(dead), dtype=np.intp)] = 0.0  # type: ignore[arg-type]
            out.append(a[0] if single else a)
        return out

    def predict(self, x: np.ndarray, knocked_out=None) -> np.ndarray:
        return self.forward(x, knocked_out)[-1].argmax(axis=-1)


def normalize(pixels: np.ndarray, normalization: dict, input_size: int = 784) -> np.ndarray:
    scale = float(normalization.get("scale", 1.0 / 255.0))
    offset = float(normalization.get("offset", 0.0))
    p = np.asarray(pixels)
    flat = p.reshape(-1, input_size) if p.size != input_size else p.reshape(input_size)
    return (flat.astype(np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)


# ---------------------------------------------------------------------------
# reading an export


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_manifest(text: str | bytes) -> dict:
    """Parse and check the manifest's structure; raise ExportError if it is off."""
    try:
        manifest = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{MANIFEST_NAME} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{MANIFEST_NAME} is not an nn-visualizer export manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ExportError(
            f"{MANIFEST_NAME} has format_version {version!r}; this code reads version {FORMAT_VERSION}"
        )
    for key in ("input", "layers", "dataset", "training"):
        if key not in manifest:
            raise ExportError(f"{MANIFEST_NAME} lacks the {key!r} section")
    layers = manifest["layers"]
    if not isinstance(layers, list) or not layers:
        raise ExportError(f"{MANIFEST_NAME} lists no layers")
    for i, layer in enumerate(layers):
        for key in ("name", "activation", "units", "weights", "bias"):
            if key not in layer:
                raise ExportError(f"{MANIFEST_NAME}: layer {i} lacks {key!r}")
        if layer["activation"] not in ACTIVATION_FUNCTIONS:
            raise ExportError(
                f"{MANIFEST_NAME}: layer {layer['name']!r} has unknown activation {layer['activation']!r}"
            )
    return manifest


def model_files(manifest: dict) -> list[str]:
    """Paths (relative to the manifest's folder) of every weight and bias file."""
    return [layer[part]["file"] for layer in manifest["layers"] for part in ("weights", "bias")]


def dataset_files(manifest: dict) -> list[str]:
    """Paths (relative to the manifest's folder) of the bundled test set files."""
    return [manifest["dataset"]["file"]]


def load_array(name: str, data: bytes, spec: Mapping) -> np.ndarray:
    """Check one file against its manifest entry and return the array it holds."""
    if data is None:
        raise ExportError(f"{name} is missing")
    expected = spec.get("sha256")
    if expected and sha256(data) != expected:
        raise ExportError(f"{name} is corrupt: its sha256 does not match the manifest")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises several kinds for a broken file
        raise ExportError(f"{name} is not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise ExportError(f"{name} is not a single .npy array")
    shape = tuple(spec["shape"])
    if array.shape != shape:
        raise ExportError(f"{name} has shape {array.shape}, the manifest says {shape}")
    if str(array.dtype) != spec["dtype"]:
        raise ExportError(f"{name} has dtype {array.dtype}, the manifest says {spec['dtype']}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ExportError(f"{name} contains NaN or infinite values")
    return array


def build_network(manifest: dict, files: Mapping[str, bytes]) -> Network:
    """Make the Network from a parsed manifest and the bytes of its files.

    ``files`` maps the paths of :func:`model_files` to their contents.
    """
    layers = []
    fan_in = int(manifest["input"]["size"])
    for spec in manifest["layers"]:
        w_spec, b_spec = spec["weights"], spec["bias"]
        weights = load_array(w_spec["file"], files.get(w_spec["file"]), w_spec)  # type: ignore[arg-type]
        bias = load_array(b_spec["file"], files.get(b_spec["file"]), b_spec)  # type: ignore[arg-type]
        if weights.shape != (fan_in, spec["units"]) or bias.shape != (spec["units"],):
            raise ExportError(
                f"layer {spec['name']!r}: weights {weights.shape} and bias {bias.shape} do not "
                f"connect {fan_in} inputs to {spec['units']} units"
            )
        layers.append(
            Layer(
                name=spec["name"],
                title=spec.get("title", spec["name"]),
                activation=spec["activation"],
                weights=weights,
                bias=bias,
                grid=dict(spec.get("grid") or {"rows": spec["units"], "columns": 1}),
                labels=spec.get("labels"),
            )
        )
        fan_in = spec["units"]
    return Network(manifest=manifest, layers=layers, normalization=manifest["input"]["normalization"])


@dataclass
class TestSet:
    images: np.ndarray  # (n, 28, 28) uint8, 0 = background
    labels: np.ndarray  # (n,) uint8

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def build_testset(manifest: dict, data: bytes) -> TestSet:
    """Check and open the bundled test set (an .npz with ``images`` and ``labels``)."""
    spec = manifest["dataset"]
    name = spec["file"]
    if data is None:
        raise ExportError(f"{name} is missing")
    if sha256(data) != spec["sha256"]:
        raise ExportError(f"{name} is corrupt: its sha256 does not match the manifest")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except Exception as exc:
        raise ExportError(f"{name} is not a readable .npz test set ({exc})") from None
    n = int(spec["count"])
    if images.shape != (n, *manifest["input"]["image_shape"]) or images.dtype != np.uint8:
        raise ExportError(f"{name}: images are {images.dtype}{images.shape}, expected uint8 ({n}, 28, 28)")
    if labels.shape != (n,):
        raise ExportError(f"{name}: labels have shape {labels.shape}, expected ({n},)")
    return TestSet(images=images, labels=labels)


def read_export_dir(model_dir: str | Path) -> tuple[Network, TestSet]:
    """CPython convenience: load the export in ``model_dir`` (site/model) from disk."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_NAME
    try:
        manifest = parse_manifest(manifest_path.read_bytes())
    except FileNotFoundError:
        raise ExportError(f"{manifest_path} is missing") from None

    def read(rel: str) -> bytes | None:
        path = model_dir / Path(posixpath.normpath(rel))
        return path.read_bytes() if path.is_file() else None

    network = build_network(manifest, {f: read(f) for f in model_files(manifest)})  # type: ignore[misc]
    testset = build_testset(manifest, read(dataset_files(manifest)[0]))  # type: ignore[arg-type]
    return network, testset
