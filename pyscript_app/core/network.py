"""The network: read an export (manifest + .npy files) and run the forward pass.

Pure numpy. This module runs unchanged in CPython (pytest, the build, the
benchmark) and in the browser (Pyodide), so it must never import anything
from the browser. Files are handed in as bytes: the caller decides how to
read them (from disk here, over HTTP in the page).

The manifest (``models/<id>/manifest.json``, format version 2, see
docs/manifest.md and export_format.py) is the one contract between
``export_weights.py`` and the page; everything about the architecture is read
from it, nothing is hard-coded here.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from pyscript_app.core import activations as act
from pyscript_app.core import export_format as fmt
from pyscript_app.core import layers as layers_mod


ExportError = fmt.ExportError


FORMAT, FORMAT_VERSION, MANIFEST_NAME = fmt.FORMAT, fmt.FORMAT_VERSION, fmt.MANIFEST_NAME
DATA_FORMAT = "nn-visualizer-data"


# activations: see activations.py (function, derivative, range of each)

sigmoid, softmax, relu, linear = act.sigmoid, act.softmax, act.relu, act.linear
ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {n: a.function for n, a in act.REGISTRY.items()}
ACTIVATIONS = tuple(act.REGISTRY)


# ---------------------------------------------------------------------------
# the model: a list of layers (layers.py)

Layer = layers_mod.Dense  # the one kind of layer the page draws with weights today


@dataclass(eq=False)
class Network:
    manifest: dict
    layers: list[layers_mod.Layer]
    normalization: dict = field(default_factory=dict)
    #: bumped whenever the weights change (weights_changed): caches of results keep the
    #: version they were computed for and are dropped when it differs
    version: int = 0

    def __post_init__(self):
        Network._versions += 1
        self.version = Network._versions

    _versions = 0  # one counter for every network, so two networks never share a version

    def weights_changed(self) -> None:
        """Call after editing any layer's weights or bias in place: every cache then recomputes."""
        for layer in self.layers:
            layer.__post_init__()
        Network._versions += 1
        self.version = Network._versions

    @property
    def id(self) -> str | None:
        return self.manifest.get("id")

    @property
    def title(self) -> str:
        return self.manifest.get("title") or self.manifest.get("id") or "Network"

    @property
    def output_layer(self) -> Layer:
        """The output layer: the last one (softmax over the manifest's classes)."""
        return self.layers[-1]

    @property
    def hidden_layers(self) -> list[Layer]:
        return self.layers[:-1]

    @property
    def input_size(self) -> int:
        return int(self.manifest["input"]["size"])

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.manifest["input"]["image_shape"])  # type: ignore[return-value]

    @property
    def class_labels(self) -> list[str]:
        return list(self.output_layer.labels or ())

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 grey levels (0 = background) -> the network's float32 input.

        Accepts one image (image_shape or flat) or a batch of them.
        """
        return normalize(pixels, self.normalization, self.input_size)

    def forward(
        self,
        x: np.ndarray,
        knocked_out: Mapping[str, object] | None = None,
        keep: bool = False,
        upto: str | None = None,
    ) -> list[np.ndarray]:
        """Every layer's activations for already-normalised input ``x``.

        ``x`` is (input_size,) or (n, input_size) float32; the result has one float32 array
        per layer, shaped like its ``output_shape`` ((units,) for a dense or flatten layer,
        (height, width, channels) for a conv2d or maxpool2d one), with a leading n for a batch.
        ``knocked_out`` maps a layer name to the indices of units whose
        activation is forced to zero (a "knock-out"), before the next layer.
        ``keep``: the layers keep what :meth:`backward` needs.
        ``upto``: a layer's name: the layers after it are not run (the result ends with it).
        """
        a = np.asarray(x, dtype=np.float32)
        single = a.ndim == 1
        if single:
            a = a[None, :]
        if a.shape[-1] != self.input_size:
            raise ValueError(f"input has {a.shape[-1]} values, the network takes {self.input_size}")
        chain = self.layers if upto is None else self.layers[: self.layers.index(self.layer(upto)) + 1]
        out = layers_mod.forward_all(chain, a, keep=keep, float32=True, knocked_out=knocked_out)
        return [o[0] for o in out] if single else out

    def predict(self, x: np.ndarray, knocked_out=None) -> np.ndarray:
        return self.forward(x, knocked_out)[-1].argmax(axis=-1)

    def backward(
        self,
        grad: np.ndarray,
        at_net_input: bool = False,
        knocked_out: Mapping[str, object] | None = None,
        upto: str | None = None,
        parameters: bool = True,
    ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
        """(every layer's parameter gradients, the gradient w.r.t. the input (n, input_size)) after
        ``forward(x, keep=True)``.

        ``grad`` (n, units) is the gradient w.r.t. the output of the last
        layer, or of layer ``upto`` (a name: the layers after it are left
        out and get no gradients, ``()``); with ``at_net_input`` it is the
        gradient w.r.t. that layer's net input instead. Float64 throughout.
        Pass the ``knocked_out`` of the forward pass: a knocked-out unit
        passes no gradient back.
        """
        end = len(self.layers) if upto is None else self.layers.index(self.layer(upto)) + 1
        chain = self.layers[:end]
        g_in = layers_mod.backward_all(chain, np.asarray(grad, dtype=np.float64), at_net_input=at_net_input,
                                       knocked_out=knocked_out, parameters=parameters)
        grads = [layer.grads if parameters and i < end else () for i, layer in enumerate(self.layers)]
        return grads, g_in.reshape(g_in.shape[0], self.input_size)

    def input_gradient(
        self,
        x: np.ndarray,
        target: int | None = None,
        minus: int | None = None,
        layer: str | None = None,
        unit: int | None = None,
        knocked_out: Mapping[str, object] | None = None,
    ) -> np.ndarray:
        """The gradient w.r.t. the input ``x`` (normalised, as for :meth:`forward`), float64, shaped like ``x``, of:

        * ``input_gradient(x, k)``: class ``k``'s log-probability (``k`` may be one class per row of a batch),
        * ``input_gradient(x, k, minus=j)``: log p(k) - log p(j),
        * ``input_gradient(x, layer=name, unit=u)``: unit ``u``'s activation in layer ``name``
          (in a conv2d or maxpool2d layer: channel ``u``, the sum of its feature map).

        Knock-outs (``knocked_out``, as for :meth:`forward`) hold in both passes.
        """
        a = np.asarray(x, dtype=np.float32)
        single = a.ndim == 1
        acts = self.forward(a[None, :] if single else a, knocked_out=knocked_out, keep=True, upto=layer)
        n = acts[0].shape[0]
        if layer is not None:
            if unit is None or target is not None:
                raise ValueError("input_gradient: give layer= and unit= together, without a class")
            index = self.layers.index(self.layer(layer))
            grad = np.zeros(acts[index].shape)
            grad[..., unit] = 1.0  # a channel of a conv2d or maxpool2d layer: the sum of its map
            _, g = self.backward(grad, knocked_out=knocked_out, upto=layer, parameters=False)
        else:
            if target is None:
                raise ValueError("input_gradient: give a class (target=) or a layer and a unit")
            # d log p_k / d z = one_hot(k) - p at the output layer's net input z; the p cancel in a difference
            rows = np.arange(n)
            if minus is None:
                grad = -self.output_layer.last_output
            else:
                grad = np.zeros((n, self.output_layer.units))
                grad[rows, minus] -= 1.0
            grad[rows, target] += 1.0
            _, g = self.backward(grad, at_net_input=True, knocked_out=knocked_out, parameters=False)
        return g[0] if single else g


def normalize(pixels: np.ndarray, normalization: dict, input_size: int) -> np.ndarray:
    """One image (flat, or in its image shape such as 28x28) gives (input_size,); a batch, even a batch of
    one (a leading axis of 1, as a slice ``images[i : i + 1]`` gives), gives (n, input_size)."""
    scale = float(normalization.get("scale", 1.0 / 255.0))
    offset = float(normalization.get("offset", 0.0))
    p = np.asarray(pixels)
    single = p.size == input_size and (p.ndim == 1 or p.shape[0] != 1)
    flat = p.reshape(input_size) if single else p.reshape(-1, input_size)
    return (flat.astype(np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)


# ---------------------------------------------------------------------------
# reading an export


sha256 = fmt.sha256


def parse_manifest(text: str | bytes, name: str = MANIFEST_NAME) -> dict:
    """Parse and check a manifest (export_format.validate_manifest); raise ExportError if it is off."""
    return fmt.parse_manifest(text, name)


def model_files(manifest: dict) -> list[str]:
    """Names (in the manifest's folder) of every weight and bias file."""
    return fmt.files_of(manifest)


def build_network(manifest: dict, files: Mapping[str, bytes], name: str = MANIFEST_NAME) -> Network:
    """Make the Network from a manifest and the bytes of its files (``files``: name -> bytes).

    The manifest is checked first (every field, the layer chain), then every
    file (presence, sha256, shape, dtype, finite values).
    """
    fmt.validate_manifest(manifest, name)
    arrays = fmt.load_arrays(manifest, files, _holder(name))
    specs = manifest["layers"]
    layers = [
        layers_mod.kind(spec["kind"]).from_entry(
            spec, arrays[i], labels=list(manifest["classes"]) if i == len(specs) - 1 else None)
        for i, spec in enumerate(specs)
    ]
    return Network(manifest=manifest, layers=layers, normalization=manifest["input"].get("normalization", {}))


def _holder(manifest_name: str) -> str:
    """What holds an export's files, from its manifest's name: "seed/manifest.json" -> "seed/",
    "my.zip: manifest.json" -> "my.zip", "manifest.json" -> "the export"."""
    if manifest_name.endswith(": " + MANIFEST_NAME):
        return manifest_name[: -len(MANIFEST_NAME) - 2]
    if manifest_name.endswith("/" + MANIFEST_NAME):
        return manifest_name[: -len(MANIFEST_NAME)]
    return "the export"


@dataclass
class TestSet:
    images: np.ndarray  # (n, rows, columns) uint8, 0 = background
    labels: np.ndarray  # (n,) uint8

    __test__ = False  # not a pytest test class, despite the name

    def __len__(self) -> int:
        return int(self.labels.shape[0])


DATA_MANIFEST = "data/manifest.json"


def parse_data_manifest(text: str | bytes, name: str = DATA_MANIFEST) -> dict:
    """Check data/manifest.json: its ``test`` entry names the test set file, sha256 and count."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != DATA_FORMAT:
        raise ExportError(f"{name} is not a data manifest (format is not {DATA_FORMAT!r})")
    test = data.get("test")
    if not isinstance(test, dict):
        raise ExportError(f"{name} lacks the 'test' entry")
    if not fmt.is_plain_file_name(test.get("file")) or not str(test.get("file")).endswith(".npz"):
        raise ExportError(f"{name}: test.file must be a plain file name ending in .npz, got {test.get('file')!r}")
    if not isinstance(test.get("sha256"), str):
        raise ExportError(f"{name}: test.sha256 must be a string")
    if not isinstance(test.get("count"), int) or test["count"] < 1:
        raise ExportError(f"{name}: test.count must be a positive integer")
    return data


def testset_file(data_manifest: dict) -> str:
    """The test set's file name (in the data folder)."""
    return data_manifest["test"]["file"]


def build_testset(data_manifest: dict, data: bytes) -> TestSet:
    """Check and open the test set (an .npz with ``images`` and ``labels``) named by data/manifest.json."""
    spec = data_manifest["test"]
    name = spec["file"]
    if data is None:
        raise ExportError(f"{name} is missing")
    if sha256(data) != spec["sha256"]:
        raise ExportError(f"{name} is corrupt: its sha256 does not match {DATA_MANIFEST}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except Exception as exc:
        raise ExportError(f"{name} is not a readable .npz test set ({exc})") from None
    n = int(spec["count"])
    if images.ndim != 3 or images.shape[0] != n or images.dtype != np.uint8:
        raise ExportError(f"{name}: images are {images.dtype}{list(images.shape)}, expected uint8 [{n}, rows, columns]")
    if labels.shape != (n,):
        raise ExportError(f"{name}: labels have shape {list(labels.shape)}, expected [{n}]")
    return TestSet(images=images, labels=labels)


def check_fits(network: Network, testset: TestSet, name: str = MANIFEST_NAME) -> None:
    """Refuse a network that cannot read the test set (another image size, labels beyond its classes)."""
    shape = list(testset.images.shape[1:])
    if list(network.image_shape) != shape:
        raise ExportError(f"{name}: input.image_shape is {list(network.image_shape)}, the test digits are {shape}")
    top = int(testset.labels.max()) if len(testset) else 0
    if top >= len(network.class_labels):
        raise ExportError(f"{name}: classes names {len(network.class_labels)} classes, the test labels go up to {top}")


def read_model_dir(model_dir: str | Path) -> Network:
    """CPython convenience: the export in ``model_dir`` (site/models/<id>), from disk."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_NAME
    try:
        manifest = parse_manifest(manifest_path.read_bytes(), f"{model_dir.name}/{MANIFEST_NAME}")
    except FileNotFoundError:
        raise ExportError(f"{manifest_path.name} is missing in {model_dir.name}/") from None
    files = {f: (model_dir / f).read_bytes() for f in model_files(manifest) if (model_dir / f).is_file()}
    return build_network(manifest, files, f"{model_dir.name}/{MANIFEST_NAME}")


def read_testset_dir(data_dir: str | Path) -> TestSet:
    """CPython convenience: the test set named by ``data_dir``/manifest.json."""
    data_dir = Path(data_dir)
    try:
        data_manifest = parse_data_manifest((data_dir / "manifest.json").read_bytes())
    except FileNotFoundError:
        raise ExportError(f"{DATA_MANIFEST} is missing") from None
    path = data_dir / testset_file(data_manifest)
    return build_testset(data_manifest, path.read_bytes() if path.is_file() else None)  # type: ignore[arg-type]


def read_models_index(site: str | Path) -> dict:
    """site/models/index.json: {"default": id, "models": [ids]}, checked."""
    path = Path(site) / "models" / "index.json"
    try:
        index = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ExportError("models/index.json is missing") from None
    except ValueError as exc:
        raise ExportError(f"models/index.json is not valid JSON ({exc})") from None
    return check_models_index(index)


def check_models_index(index) -> dict:
    name = "models/index.json"
    if not isinstance(index, dict) or not isinstance(index.get("models"), list) or not index["models"]:
        raise ExportError(f"{name}: models must be a non-empty list of model ids")
    for mid in index["models"]:
        if not isinstance(mid, str) or not fmt.ID_PATTERN.fullmatch(mid):
            raise ExportError(f"{name}: model id {mid!r} must match [a-z0-9][a-z0-9-]{{0,31}}")
    if index.get("default") not in index["models"]:
        raise ExportError(f"{name}: default {index.get('default')!r} is not one of the models")
    return index


def read_export_dir(model_dir: str | Path, data_dir: str | Path | None = None) -> tuple[Network, TestSet]:
    """CPython convenience: (network, test set) of site/models/<id> and site/data (the default data folder)."""
    model_dir = Path(model_dir)
    network = read_model_dir(model_dir)
    testset = read_testset_dir(data_dir if data_dir is not None else model_dir.parent.parent / "data")
    check_fits(network, testset)
    return network, testset


def read_site(site: str | Path, model_id: str | None = None) -> tuple[Network, TestSet]:
    """CPython convenience: (network, test set) of one model of a site (default: index.json's default)."""
    site = Path(site)
    model_id = model_id or read_models_index(site)["default"]
    return read_export_dir(site / "models" / model_id, site / "data")
