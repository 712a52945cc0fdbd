"""The export format, version 2: read, check and write one network's export.

An export is ``manifest.json`` plus one ``.npy`` file per weight matrix and
bias vector, as a folder or as a ``.zip`` of those files (see
docs/manifest.md). This module is the one place that knows the format's
rules; the exporter, the tests and the page all check exports with it.

Pure stdlib (json, zipfile, hashlib, re) and numpy: it runs unchanged in
CPython and in the browser (Pyodide). Every refusal is a
``ExportError`` whose message names the file and the field, meant to
be shown to a user as it is.

API:

* :func:`parse_manifest` -- bytes or text of a manifest -> the checked manifest
* :func:`validate_manifest` -- a parsed manifest (dict) -> the same dict, checked
* :func:`files_of` -- a checked manifest -> the names of its ``.npy`` files
* :func:`load_arrays` -- a checked manifest + ``{name: bytes}`` -> ``[(weights, bias), ...]``
* :func:`load_export` -- ``{name: bytes}`` (manifest included) -> ``(manifest, arrays)``
* :func:`read_zip` / :func:`read_folder` -- an export's files as ``{name: bytes}``
* :func:`write_zip` -- ``{name: bytes}`` -> the bytes of a zip (the same files give the same bytes)
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from pyscript_app.core import layers as layer_kinds

FORMAT = "nn-visualizer-export"
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
MAX_HIDDEN_LAYERS = 4
MAX_UNITS = layer_kinds.MAX_UNITS
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
DTYPE = "float32"
# What a zip may hold: an export is a few small files (the largest network the
# format allows has under 5 MB of weights), so anything far bigger is refused
# before it is decompressed.
MAX_ZIP_ENTRIES = 64
MAX_ENTRY_BYTES = 32 << 20
MAX_TOTAL_BYTES = 64 << 20


class ExportError(ValueError):
    """An export (manifest, weights or data) is missing, broken or inconsistent.

    The message names the file and what is wrong with it; it is meant to be
    shown to a user as it is.
    """


def _error(message: str) -> Exception:
    return ExportError(message)


def _shown(value) -> str:
    """A field's value as it appears in a message: JSON, cut short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def is_plain_file_name(name) -> bool:
    """A file name with no folder in it: no ``/``, ``\\`` or ``..``, no leading dot."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 100
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and not name.startswith(".")
        and name.isprintable()
    )


class _Checker:
    """Field checks for one manifest; every message starts with the file's name."""

    def __init__(self, name: str):
        self.name = name

    shown = staticmethod(_shown)

    def fail(self, field: str, problem: str):
        raise _error(f"{self.name}: {field} {problem}")

    def get(self, obj: dict, key: str, field: str):
        if key not in obj:
            self.fail(field, "is missing")
        return obj[key]

    def dict(self, obj, field: str) -> dict:
        if not isinstance(obj, dict):
            self.fail(field, f"must be an object, got {_shown(obj)}")
        return obj

    def string(self, obj, field: str) -> str:
        if not isinstance(obj, str):
            self.fail(field, f"must be a string, got {_shown(obj)}")
        return obj

    def integer(self, obj, field: str, low: int, high: int | None = None) -> int:
        if not _is_int(obj):
            self.fail(field, f"must be an integer, got {_shown(obj)}")
        if obj < low or (high is not None and obj > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.fail(field, f"must be {bounds}, got {obj}")
        return obj

    def number(self, obj, field: str) -> float:
        if not _is_number(obj):
            self.fail(field, f"must be a finite number, got {_shown(obj)}")
        return float(obj)

    def int_list(self, obj, field: str, length: int) -> list:
        if not isinstance(obj, list) or len(obj) != length or not all(_is_int(v) for v in obj):
            what = "integer" if length == 1 else "integers"
            self.fail(field, f"must be a list of {length} {what}, got {_shown(obj)}")
        return obj


def parse_manifest(data: bytes | str, name: str = MANIFEST_NAME) -> dict:
    """Parse a manifest's JSON and check it (:func:`validate_manifest`)."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _error(f"{name} is not valid JSON ({exc})") from None
    return validate_manifest(manifest, name)


def validate_manifest(manifest: dict, name: str = MANIFEST_NAME) -> dict:
    """Check a parsed manifest against the rules of docs/manifest.md; return it.

    Raises ``ExportError`` naming ``name`` and the first field that is
    wrong, e.g. ``manifest.json: layers[1].weights.shape must be a list of 2
    integers, got 5``.
    """
    c = _Checker(name)
    if not isinstance(manifest, dict):
        raise _error(f"{name} must hold a JSON object, got {_shown(manifest)}")
    if manifest.get("format") != FORMAT:
        c.fail("format", f"must be {_shown(FORMAT)}, got {_shown(manifest.get('format'))}: not an nn-visualizer export")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or not _is_int(version):
        c.fail("format_version", f"is {_shown(version)}; this code reads version {FORMAT_VERSION}")
    if "id" in manifest:
        model_id = c.string(manifest["id"], "id")
        if not ID_PATTERN.fullmatch(model_id):
            c.fail("id", f"must match {ID_PATTERN.pattern}, got {_shown(model_id)}")
    for key in ("title", "description"):
        if key in manifest:
            c.string(manifest[key], key)

    inp = c.dict(c.get(manifest, "input", "input"), "input")
    size = c.integer(c.get(inp, "size", "input.size"), "input.size", 1)
    shape = c.int_list(c.get(inp, "image_shape", "input.image_shape"), "input.image_shape", 2)
    if shape[0] < 1 or shape[1] < 1 or shape[0] * shape[1] != size:
        c.fail("input.image_shape", f"{_shown(shape)} does not hold input.size = {size} pixels")
    if c.get(inp, "dtype", "input.dtype") != DTYPE:
        c.fail("input.dtype", f"must be {_shown(DTYPE)}, got {_shown(inp['dtype'])}")
    norm = c.dict(c.get(inp, "normalization", "input.normalization"), "input.normalization")
    c.number(c.get(norm, "scale", "input.normalization.scale"), "input.normalization.scale")
    c.number(c.get(norm, "offset", "input.normalization.offset"), "input.normalization.offset")

    classes = c.get(manifest, "classes", "classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(v, str) and v for v in classes):
        c.fail("classes", f"must be a list of at least 2 non-empty strings, got {_shown(classes)}")
    if len(set(classes)) != len(classes):
        c.fail("classes", f"must not repeat a label, got {_shown(classes)}")

    layers = c.get(manifest, "layers", "layers")
    if not isinstance(layers, list):
        c.fail("layers", f"must be a list, got {_shown(layers)}")
    kinds = [layer.get("kind") if isinstance(layer, dict) else None for layer in layers]
    if all(k == "dense" for k in kinds) and not 2 <= len(layers) <= MAX_HIDDEN_LAYERS + 1:
        c.fail("layers", f"must hold 1 to {MAX_HIDDEN_LAYERS} hidden layers and the output layer "
                         f"({MAX_HIDDEN_LAYERS + 1} entries at most), got {len(layers)} entries")
    for kind, most in layer_kinds.MAX_COUNT.items():
        if kinds.count(kind) > most:
            what = "hidden layers and the output layer" if kind == "dense" else "of them"
            c.fail("layers", f"holds {kinds.count(kind)} {kind} layers; {most} {what} at most")
    names, files = set(), set()
    in_shape, in_field = (size,), "input.size"
    for i, layer in enumerate(layers):
        f = f"layers[{i}]"
        c.dict(layer, f)
        lname = c.string(c.get(layer, "name", f"{f}.name"), f"{f}.name")
        if not NAME_PATTERN.fullmatch(lname):
            c.fail(f"{f}.name", f"must match {NAME_PATTERN.pattern} (letters, digits, _ and -), got {_shown(lname)}")
        if lname in names:
            c.fail(f"{f}.name", f"{_shown(lname)} is used by an earlier layer; names must be unique")
        names.add(lname)
        if "title" in layer:
            c.string(layer["title"], f"{f}.title")
        kind = c.get(layer, "kind", f"{f}.kind")
        if kind not in layer_kinds.KINDS:
            known = [f'"{k}"' for k in layer_kinds.KINDS]
            one_of = known[0] if len(known) == 1 else ", ".join(known[:-1]) + " or " + known[-1]
            c.fail(f"{f}.kind", f"must be {one_of} (the kinds of layer supported), got {_shown(kind)}")
        shape, shape_field, arrays = layer_kinds.KINDS[kind].check(
            layer, c, f, in_shape, in_field, last=i == len(layers) - 1, classes=classes)
        for part, expected in arrays.items():
            pf = f"{f}.{part}"
            spec = c.dict(c.get(layer, part, pf), pf)
            file = c.string(c.get(spec, "file", f"{pf}.file"), f"{pf}.file")
            if not is_plain_file_name(file) or not file.endswith(".npy"):
                c.fail(f"{pf}.file", f"must be a plain file name ending in .npy (no folders), got {_shown(file)}")
            if file in files or file == MANIFEST_NAME:
                c.fail(f"{pf}.file", f"{_shown(file)} is named by another entry; every array needs its own file")
            files.add(file)
            got = c.int_list(c.get(spec, "shape", f"{pf}.shape"), f"{pf}.shape", len(expected))
            if got != expected:
                c.fail(f"{pf}.shape", f"must be {_shown(expected)} (from {f}'s other fields), got {_shown(got)}")
            if c.get(spec, "dtype", f"{pf}.dtype") != DTYPE:
                c.fail(f"{pf}.dtype", f"must be {_shown(DTYPE)}, got {_shown(spec['dtype'])}")
            digest = c.string(c.get(spec, "sha256", f"{pf}.sha256"), f"{pf}.sha256")
            if not SHA256_PATTERN.fullmatch(digest):
                c.fail(f"{pf}.sha256", f"must be 64 lowercase hexadecimal digits, got {_shown(digest)}")
        if "activation_stats" in layer:
            sf = f"{f}.activation_stats"
            stats = c.dict(layer["activation_stats"], sf)
            p99 = c.number(c.get(stats, "p99", f"{sf}.p99"), f"{sf}.p99")
            top = c.number(c.get(stats, "max", f"{sf}.max"), f"{sf}.max")
            if p99 > top:
                c.fail(f"{sf}.p99", f"is {p99}, above {sf}.max = {top}")
        in_shape, in_field = shape, shape_field

    if "dataset" in manifest:
        ds = c.dict(manifest["dataset"], "dataset")
        if "sha256" in ds and not (isinstance(ds["sha256"], str) and SHA256_PATTERN.fullmatch(ds["sha256"])):
            c.fail("dataset.sha256", f"must be 64 lowercase hexadecimal digits, got {_shown(ds['sha256'])}")
        if "count" in ds:
            c.integer(ds["count"], "dataset.count", 1)
    if "training" in manifest:
        training = c.dict(manifest["training"], "training")
        accuracy = training.get("test_accuracy")
        if accuracy is not None and not (_is_number(accuracy) and 0 <= accuracy <= 1):
            c.fail("training.test_accuracy", f"must be a number from 0 to 1 (or null), got {_shown(accuracy)}")
    return manifest


def files_of(manifest: dict) -> list[str]:
    """The ``.npy`` files a checked manifest names, layer by layer (in each kind's order: weights, then bias)."""
    return [layer[part]["file"] for layer in manifest["layers"] for part in layer_kinds.KINDS[layer["kind"]].parts]


def sha256(data: bytes) -> str:
    """The sha256 of ``data`` as 64 lowercase hexadecimal digits (what a manifest records)."""
    return hashlib.sha256(data).hexdigest()


def load_arrays(manifest: dict, files: Mapping[str, bytes], name: str = "the export") -> list[tuple[np.ndarray, ...]]:
    """Check every array file of a manifest and return one tuple per layer: its arrays in its kind's
    ``parts`` order (``(weights, bias)`` for a dense layer).

    ``files`` maps file names to their bytes; ``name`` is what holds them (a
    zip's name, a folder) and appears in the messages: presence, sha256,
    .npy readability, shape, dtype float32 and finite values are checked.
    The manifest itself is checked first (:func:`validate_manifest`).
    """
    validate_manifest(manifest)
    arrays = []
    for i, layer in enumerate(manifest["layers"]):
        pair = []
        for part in layer_kinds.KINDS[layer["kind"]].parts:
            spec, field = layer[part], f"layers[{i}].{part}"
            file = spec["file"]
            data = files.get(file)
            if data is None:
                raise _error(f"{file} is missing from {name} ({MANIFEST_NAME} names it in {field}.file)")
            if sha256(data) != spec["sha256"]:
                raise _error(f"{name}: {file} is corrupt: its sha256 does not match {MANIFEST_NAME}'s {field}.sha256")
            try:
                array = np.load(io.BytesIO(data), allow_pickle=False)
            except Exception as exc:  # numpy raises several kinds for a broken file
                raise _error(f"{name}: {file} is not a readable .npy file ({type(exc).__name__}: {exc})") from None
            if not isinstance(array, np.ndarray):
                raise _error(f"{name}: {file} is not a single .npy array")
            if list(array.shape) != spec["shape"]:
                raise _error(f"{name}: {file} has shape {list(array.shape)}, {MANIFEST_NAME}'s {field}.shape says {spec['shape']}")
            if str(array.dtype) != spec["dtype"]:
                raise _error(f"{name}: {file} has dtype {array.dtype}, {MANIFEST_NAME}'s {field}.dtype says {spec['dtype']}")
            if not np.isfinite(array).all():
                raise _error(f"{name}: {file} contains NaN or infinite values")
            pair.append(array)
        arrays.append(tuple(pair))
    return arrays


def load_export(files: Mapping[str, bytes], name: str = "the export") -> tuple[dict, list[tuple[np.ndarray, ...]]]:
    """An export's files (``{name: bytes}``, manifest.json included) -> ``(manifest, arrays)``, all checked."""
    data = files.get(MANIFEST_NAME)
    if data is None:
        raise _error(f"{MANIFEST_NAME} is missing from {name}")
    manifest = parse_manifest(data, MANIFEST_NAME if name == "the export" else f"{name}: {MANIFEST_NAME}")
    return manifest, load_arrays(manifest, files, name)


def read_zip(data: bytes, name: str = "model.zip") -> dict[str, bytes]:
    """The files of an export zip as ``{file name: bytes}``.

    The files lie at the zip's root; a zip whose files all lie in one folder
    (what "compress this folder" makes) is read as if they were at the root.
    Sub-folders, file names that are paths and oversized entries are refused.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _error(f"{name} is not a zip file ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        infos = [i for i in infos if not i.filename.rsplit("/", 1)[-1].startswith(".")]  # .DS_Store and the like
        if len(infos) > MAX_ZIP_ENTRIES:
            raise _error(f"{name} holds {len(infos)} files; an export has a manifest and two files per layer")
        paths = [i.filename for i in infos]
        folders = {p.split("/", 1)[0] for p in paths if "/" in p}
        strip = ""
        if len(folders) == 1 and all("/" in p for p in paths):
            strip = folders.pop() + "/"
        out: dict[str, bytes] = {}
        total = 0
        for info in infos:
            file = info.filename[len(strip):]
            if not is_plain_file_name(file):
                raise _error(f"{name}: {info.filename!r} is not a plain file name; an export's files lie at the zip's root")
            if file in out:
                raise _error(f"{name}: {file} appears twice")
            total += info.file_size
            if info.file_size > MAX_ENTRY_BYTES or total > MAX_TOTAL_BYTES:
                raise _error(f"{name}: {file} is {info.file_size} bytes uncompressed, too large for an export")
            try:
                out[file] = zf.read(info)
            except Exception as exc:  # CRC errors, unsupported compression, truncated data
                raise _error(f"{name}: {file} cannot be read from the zip ({type(exc).__name__}: {exc})") from None
    if MANIFEST_NAME not in out:
        raise _error(f"{MANIFEST_NAME} is missing from {name}")
    return out


def read_folder(folder: str | Path) -> dict[str, bytes]:
    """The files of an export folder (its plain files, not sub-folders) as ``{file name: bytes}``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _error(f"{folder} is not a folder")
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and is_plain_file_name(p.name)}
    if MANIFEST_NAME not in files:
        raise _error(f"{MANIFEST_NAME} is missing from {folder}")
    return files


def write_zip(files: Mapping[str, bytes]) -> bytes:
    """An export zip of ``files`` (``{file name: bytes}``): manifest.json first, all at the root.

    Fixed timestamps and order: the same files always give the same bytes.
    """
    buf = io.BytesIO()
    order = sorted(files, key=lambda f: (f != MANIFEST_NAME, list(files).index(f)))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in order:
            if not is_plain_file_name(file):
                raise _error(f"write_zip: {file!r} is not a plain file name")
            info = zipfile.ZipInfo(file, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, bytes(files[file]))
    return buf.getvalue()
