#!/usr/bin/env python3
"""The atlas's t-SNE maps of the shipped models, computed at build time (scikit-learn).

For every model of site/models/index.json and each of its layers, and once
for the input pixels, scikit-learn's TSNE (2-D, perplexity 30, init "pca",
random_state 0) of the 10,000 test digits' activations (pyscript_app's
Network.forward), each map moved and scaled (one factor for both axes) into
[-1, 1] and stored as float16:

* site/models/<id>/atlas_tsne.npz: one (digits, 2) array per layer name;
* site/data/atlas_tsne_input.npz: the input pixels' map, as ``input`` (the
  grey levels: the same for every network).

Beside each file, ``atlas.json`` in the same folder records its name and
sha256 ({"tsne": {"file": ..., "sha256": ...}}); tools/build_site.py copies
these entries into the page's #atlas-files block, and the page checks a file
against it when t-SNE is first chosen. Run after the exports:
``python tools/atlas_maps.py --site site``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyscript_app.core import atlas  # noqa: E402
from pyscript_app.core import network as nw  # noqa: E402

SIDE_FILE = "atlas.json"
MODEL_FILE = "atlas_tsne.npz"
INPUT_FILE = "atlas_tsne_input.npz"
PERPLEXITY = 30
RANDOM_STATE = 0
BLOCK = 1000  # test digits per forward pass


def tsne(x: np.ndarray) -> np.ndarray:
    """The 2-D t-SNE map of the rows of ``x``, scaled into [-1, 1] (float16)."""
    from sklearn.manifold import TSNE

    xy = TSNE(n_components=2, perplexity=PERPLEXITY, init="pca", random_state=RANDOM_STATE).fit_transform(
        np.asarray(x, dtype=np.float32))
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    half = float(np.max(hi - lo)) / 2 or 1.0
    return ((xy - (lo + hi) / 2) / half).astype(np.float16)


def write_maps(folder: Path, name: str, maps: dict) -> dict:
    """``folder/name`` (an npz of ``maps``) and ``folder/atlas.json`` (its sha256); returns the side entry."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps)
    data = buffer.getvalue()
    (folder / name).write_bytes(data)
    entry = {"tsne": {"file": name, "sha256": hashlib.sha256(data).hexdigest()}}
    (folder / SIDE_FILE).write_text(json.dumps(entry, indent=2) + "\n")
    print(f"{folder.name}/{name}: {len(data):,} bytes")
    return entry


def timed_tsne(what: str, x) -> np.ndarray:
    t0 = time.perf_counter()
    xy = tsne(x)
    print(f"{what}: {x.shape[1]} dims, t-SNE of {len(x):,} digits in {time.perf_counter() - t0:.1f} s", flush=True)
    return xy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default=str(ROOT / "site"))
    parser.add_argument("--models", help="comma-separated model ids (default: every model of the index)")
    parser.add_argument("--no-input", action="store_true", help="skip the input pixels' map")
    args = parser.parse_args(argv)
    site = Path(args.site)
    testset = nw.read_testset_dir(site / "data")
    grey = np.asarray(testset.images).reshape(len(testset), -1)
    if not args.no_input:
        write_maps(site / "data", INPUT_FILE, {"input": timed_tsne("input", grey)})
    ids = args.models.split(",") if args.models else nw.read_models_index(site)["models"]
    for model_id in ids:
        network = nw.read_model_dir(site / "models" / model_id)
        spaces = {layer.name: [] for layer in atlas.layers(network)}
        for start in range(0, len(grey), BLOCK):  # in blocks: a convolution's maps of 10,000 digits are large
            out = network.forward(network.normalize(grey[start : start + BLOCK]))
            for layer, a in zip(network.layers, out):
                if layer.name in spaces:
                    spaces[layer.name].append(atlas.layer_space(layer, a).reshape(len(a), -1))
        maps = {name: timed_tsne(f"{model_id} {name}", np.concatenate(parts)) for name, parts in spaces.items()}
        write_maps(site / "models" / model_id, MODEL_FILE, maps)


if __name__ == "__main__":
    main()
