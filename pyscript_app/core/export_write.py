"""Write an export: manifest + one ``.npy`` file per array, with their sha256, and a zip when asked.

The one writer of the format that export_format.py reads and checks (see
docs/manifest.md): ``export_weights.py`` (the build) and Train mode's "save"
(``train.Trainer.to_export``) both write through it, so the same weights
give the same files. Also the one writer of the test set's ``.npz``.

Pure numpy and stdlib: runs unchanged in CPython and in the browser.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Mapping, Sequence

import numpy as np

from pyscript_app.core import export_format as fmt
from pyscript_app.core import layers as layer_kinds

DTYPE = fmt.DTYPE


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` bytes of ``array`` (C order, no pickles): the same array always gives the same bytes."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def layer_entries(layers: Sequence[layer_kinds.Layer]) -> tuple[list[dict], dict[str, bytes]]:
    """(the manifest's ``layers``, {file name: .npy bytes}) of these layers; each array is ``<name>_<part>.npy``."""
    entries, files = [], {}
    for layer in layers:
        entry = layer.entry()
        for part, array in zip(layer.parts, layer.params()):
            array = np.asarray(array, dtype=np.float32)
            file = f"{layer.name}_{part}.npy"
            files[file] = data = npy_bytes(array)
            entry[part] = {"file": file, "shape": list(array.shape), "dtype": DTYPE, "sha256": fmt.sha256(data)}
        entries.append(entry)
    return entries, files


def build(layers: Sequence[layer_kinds.Layer], *, model_id: str, title: str, description: str, input_spec: dict,
          classes: Sequence[str], training: dict, dataset: dict | None = None) -> tuple[dict, dict[str, bytes]]:
    """(manifest, {file name: .npy bytes}) of an export of ``layers``, checked by export_format's loader.

    ``dataset`` names the test set the figures in ``training`` were measured on.
    """
    entries, files = layer_entries(layers)
    manifest = {
        "format": fmt.FORMAT,
        "format_version": fmt.FORMAT_VERSION,
        "id": model_id,
        "title": title,
        "description": description,
        "input": dict(input_spec),
        "classes": list(classes),
        "layers": entries,
    }
    if dataset:
        manifest["dataset"] = dict(dataset)
    manifest["training"] = training
    fmt.load_arrays(manifest, files, "the new export")  # read back through the format's own checks
    return manifest, files


def manifest_bytes(manifest: dict) -> bytes:
    """manifest.json's bytes: indented JSON and a final newline."""
    return (json.dumps(manifest, indent=2) + "\n").encode()


def export_files(manifest: dict, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """Every file of the export, manifest.json first: {file name: bytes}."""
    return {fmt.MANIFEST_NAME: manifest_bytes(manifest), **files}


def zip_bytes(manifest: dict, files: Mapping[str, bytes]) -> bytes:
    """The export as one zip (the same files always give the same bytes)."""
    return fmt.write_zip(export_files(manifest, files))


def activation_stats(outputs: Sequence[np.ndarray], over: str) -> list[dict]:
    """Each layer's ``activation_stats`` (99th percentile and maximum) from its outputs over a test set."""
    return [{"p99": round(float(np.percentile(a, 99)), 6), "max": round(float(a.max()), 6), "over": over}
            for a in outputs]


# -- the test set ---------------------------------------------------------------------------

TESTSET_ARRAYS = ("images", "labels")  # the .npz's members: uint8 (n, rows, columns), uint8 (n,)


def testset_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The test set's ``.npz`` (deflated, fixed timestamps: the same digits give the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in zip(TESTSET_ARRAYS, (images, labels)):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()
