"""The export format (manifest version 2, docs/manifest.md): check a manifest, load its arrays, zip it.

Pure Python + numpy, no browser imports: the page, the build and the tests
use the same checks. Every refusal is a ``network.ExportError``-compatible
``ExportError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import numpy as np

from . import activations as act

FORMAT = "nn-visualizer-export"
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
MAX_UNITS = 512
MAX_HIDDEN = 4
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")
MODEL_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class ExportError(ValueError):
    """An export (manifest, weights or data) is missing, broken or inconsistent.

    The message names the file and what is wrong with it; it is meant to be
    shown to a user as it is.
    """


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain_file(value, where: str, name: str, ext: str = ".npy") -> str:
    if not isinstance(value, str) or not value:
        raise ExportError(f"{name}: {where} must be a file name (a string)")
    if "/" in value or "\\" in value or ".." in value or value.startswith(".") or not value.endswith(ext):
        raise ExportError(f"{name}: {where} {value!r} is not a plain {ext} file name in the export's folder")
    return value


def _array_spec(spec, where: str, shape: list[int], name: str) -> None:
    if not isinstance(spec, dict):
        raise ExportError(f"{name}: {where} must be an object with file, shape, dtype and sha256")
    _plain_file(spec.get("file"), f"{where}.file", name)
    got = spec.get("shape")
    if not isinstance(got, list) or not all(_is_int(s) for s in got):
        raise ExportError(f"{name}: {where}.shape must be a list of integers, got {got!r}")
    if got != shape:
        raise ExportError(f"{name}: {where}.shape is {got}, the layer needs {shape}")
    if spec.get("dtype") != "float32":
        raise ExportError(f"{name}: {where}.dtype must be 'float32', got {spec.get('dtype')!r}")
    sha = spec.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ExportError(f"{name}: {where}.sha256 must be 64 lowercase hex digits")


def validate_manifest(manifest, name: str = MANIFEST_NAME) -> dict:
    """Check a parsed manifest against every rule of the format; return it unchanged."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{name} is not an nn-visualizer export manifest (format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{name}: format_version is {manifest.get('format_version')!r}; this page reads version {FORMAT_VERSION}"
        )
    for key in ("input", "classes", "layers"):
        if key not in manifest:
            raise ExportError(f"{name}: the {key!r} field is missing")
    mid = manifest.get("id")
    if mid is not None and (not isinstance(mid, str) or not MODEL_ID.fullmatch(mid)):
        raise ExportError(f"{name}: id {mid!r} must match [a-z0-9][a-z0-9-]{{0,31}}")
    for key in ("title", "description"):
        if key in manifest and not isinstance(manifest[key], str):
            raise ExportError(f"{name}: {key} must be a string")
    inp = manifest["input"]
    if not isinstance(inp, dict):
        raise ExportError(f"{name}: input must be an object")
    size, shape = inp.get("size"), inp.get("image_shape")
    if not _is_int(size) or size < 1:
        raise ExportError(f"{name}: input.size must be a positive integer, got {size!r}")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(s) and s > 0 for s in shape)):
        raise ExportError(f"{name}: input.image_shape must be [rows, columns], got {shape!r}")
    if shape[0] * shape[1] != size:
        raise ExportError(f"{name}: input.image_shape {shape} does not hold input.size {size} pixels")
    norm = inp.get("normalization", {})
    if not isinstance(norm, dict) or not all(
        isinstance(norm.get(k, 0.0), (int, float)) and not isinstance(norm.get(k, 0.0), bool) for k in ("scale", "offset")
    ):
        raise ExportError(f"{name}: input.normalization must be an object with numeric scale and offset")
    classes = manifest["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise ExportError(f"{name}: classes must be a non-empty list of strings")
    layers = manifest["layers"]
    if not isinstance(layers, list):
        raise ExportError(f"{name}: layers must be a list")
    if not 2 <= len(layers) <= MAX_HIDDEN + 1:
        raise ExportError(
            f"{name}: layers has {len(layers)} entries ({len(layers) - 1} hidden); "
            f"the page shows 1 to {MAX_HIDDEN} hidden layers plus the output layer"
        )
    fan_in, seen = size, set()
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise ExportError(f"{name}: {where} must be an object")
        lname = layer.get("name")
        if not isinstance(lname, str) or not NAME.fullmatch(lname):
            raise ExportError(f"{name}: {where}.name {lname!r} must match [A-Za-z_][A-Za-z0-9_-]{{0,31}}")
        if lname in seen:
            raise ExportError(f"{name}: {where}.name {lname!r} is used twice")
        seen.add(lname)
        where = f"layers[{i}] ({lname})"
        if "title" in layer and not isinstance(layer["title"], str):
            raise ExportError(f"{name}: {where}.title must be a string")
        if layer.get("kind", "dense") != "dense":
            raise ExportError(f"{name}: {where}.kind is {layer.get('kind')!r}; only 'dense' layers are supported")
        units = layer.get("units")
        if not _is_int(units) or not 1 <= units <= MAX_UNITS:
            raise ExportError(f"{name}: {where}.units must be an integer from 1 to {MAX_UNITS}, got {units!r}")
        inputs = layer.get("inputs", fan_in)
        if inputs != fan_in:
            source = "input.size" if i == 0 else f"layers[{i - 1}].units"
            raise ExportError(f"{name}: {where}.inputs is {inputs!r} but {source} is {fan_in}: the layer chain is broken")
        activation = layer.get("activation")
        last = i == len(layers) - 1
        if last:
            if activation != act.OUTPUT:
                raise ExportError(f"{name}: {where}.activation is {activation!r}; the output layer must be {act.OUTPUT!r}")
            if units != len(classes):
                raise ExportError(
                    f"{name}: {where}.units is {units} but classes names {len(classes)}: the chain must end in the classes"
                )
        elif activation not in act.HIDDEN:
            raise ExportError(
                f"{name}: {where}.activation {activation!r} is not a hidden activation ({', '.join(act.HIDDEN)})"
            )
        _array_spec(layer.get("weights"), f"{where}.weights", [fan_in, units], name)
        _array_spec(layer.get("bias"), f"{where}.bias", [units], name)
        stats = layer.get("activation_stats")
        if stats is not None:
            if not isinstance(stats, dict) or not all(
                isinstance(stats.get(k), (int, float)) and not isinstance(stats.get(k), bool) and np.isfinite(stats.get(k))
                for k in ("p99", "max") if k in stats
            ) or "p99" not in stats:
                raise ExportError(f"{name}: {where}.activation_stats must hold finite numbers p99 and max")
        fan_in = units
    training = manifest.get("training", {})
    if not isinstance(training, dict):
        raise ExportError(f"{name}: training must be an object")
    acc = training.get("test_accuracy")
    if acc is not None and not (isinstance(acc, (int, float)) and not isinstance(acc, bool) and 0 <= acc <= 1):
        raise ExportError(f"{name}: training.test_accuracy must be a number from 0 to 1")
    return manifest


def parse_manifest(data, name: str = MANIFEST_NAME) -> dict:
    """The bytes (or text) of a manifest -> the checked manifest."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{name} is not valid JSON ({exc})") from None
    return validate_manifest(manifest, name)


def files_of(manifest: dict) -> list[str]:
    """The names of every weight and bias file of a (checked) manifest, in layer order."""
    return [layer[part]["file"] for layer in manifest["layers"] for part in ("weights", "bias")]


def _load_one(fname: str, data, spec: dict) -> np.ndarray:
    if data is None:
        raise ExportError(f"{fname} is missing (named in the manifest)")
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ExportError(f"{fname} is corrupt: its sha256 does not match the manifest")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises several kinds for a broken file
        raise ExportError(f"{fname} is not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise ExportError(f"{fname} is not a single .npy array")
    if list(array.shape) != spec["shape"]:
        raise ExportError(f"{fname} has shape {list(array.shape)}, the manifest says {spec['shape']}")
    if str(array.dtype) != spec["dtype"]:
        raise ExportError(f"{fname} has dtype {array.dtype}, the manifest says {spec['dtype']}")
    if not np.isfinite(array).all():
        raise ExportError(f"{fname} contains NaN or infinite values")
    return array


def load_arrays(manifest: dict, files, name: str = MANIFEST_NAME) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weights, bias) of every layer, each file checked against the (checked) manifest."""
    out = []
    for layer in manifest["layers"]:
        w, b = layer["weights"], layer["bias"]
        out.append((_load_one(w["file"], files.get(w["file"]), w), _load_one(b["file"], files.get(b["file"]), b)))
    return out


MAX_ZIP_ENTRIES = 64
MAX_ZIP_BYTES = 64 * 1024 * 1024


def read_zip(data: bytes, name: str = "the zip") -> dict[str, bytes]:
    """An export's .zip (its files at the top, or in one folder) -> {file name: bytes}."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExportError(f"{name} is not a readable .zip file ({exc})") from None
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise ExportError(f"{name} is too large to be an export ({len(infos)} files)")
    files: dict[str, bytes] = {}
    for info in infos:
        base = info.filename.rsplit("/", 1)[-1]
        if not base or base.startswith("."):
            continue
        try:
            files[base] = archive.read(info)
        except Exception as exc:
            raise ExportError(f"{name}: {info.filename} cannot be read ({exc})") from None
    if MANIFEST_NAME not in files:
        raise ExportError(f"{name} is not an export: it holds no {MANIFEST_NAME}")
    return files


def write_zip(files: dict[str, bytes]) -> bytes:
    """{file name: bytes} -> the bytes of a .zip holding them at the top (reproducible)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for fname in sorted(files):
            info = zipfile.ZipInfo(fname, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[fname])
    return buffer.getvalue()
