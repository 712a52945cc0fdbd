"""The atlas's t-SNE maps (tools/atlas_maps.py's committed files) and the rule that places a digit on them.

The expected values come from scikit-learn (NearestNeighbors, trustworthiness)
and tests/reference.py's float64 forward pass, not from pyscript_app.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

import reference as ref
from conftest import ROOT, SITE
from pyscript_app.core import atlas

sys.path.insert(0, str(ROOT / "tools"))
import precache  # noqa: E402

INDEX = json.loads((SITE / "models" / "index.json").read_text())
# The shipped models whose t-SNE maps tools/atlas_maps.py wrote (a model without them is offered PCA only).
MODELS = [m for m in INDEX["models"] if (SITE / "models" / m / "atlas.json").exists()]


@pytest.fixture(scope="module")
def testset():
    with np.load(SITE / "data" / "mnist_test.npz") as data:
        return data["images"].reshape(len(data["images"]), -1), data["labels"].astype(int)


def acts_of(model_id, grey):
    """{layer name: float64 activations} of a shipped model over the test set (tests/reference.py)."""
    manifest, layers = ref.load_chain(SITE / "models" / model_id)
    norm = manifest["input"].get("normalization", {})
    x = grey.astype(np.float64) * norm.get("scale", 1 / 255) + norm.get("offset", 0.0)
    acts = ref.forward_chain(layers, x, peaks=True)  # a conv or pooling layer: each digit's map maxima
    return {s["name"]: a for s, a in zip(manifest["layers"], acts) if s["kind"] != "flatten"}


def tsne_maps(folder):
    """{name: float64 places} of the t-SNE file named by the folder's atlas.json, after checking its sha256."""
    entry = json.loads((folder / "atlas.json").read_text())["tsne"]
    data = (folder / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{folder.name}/{entry['file']}"
    with np.load(folder / entry["file"]) as arrays:
        assert all(arrays[k].dtype == np.float16 for k in arrays.files)
        return {k: arrays[k].astype(np.float64) for k in arrays.files}


def test_the_default_model_has_maps():
    assert INDEX["default"] in MODELS


@pytest.mark.parametrize("model_id", MODELS)
def test_every_shipped_model_has_a_checked_map_per_layer(model_id, testset):
    manifest = json.loads((SITE / "models" / model_id / "manifest.json").read_text())
    maps = tsne_maps(SITE / "models" / model_id)
    assert sorted(maps) == sorted(s["name"] for s in manifest["layers"] if s["kind"] != "flatten")
    for name, xy in maps.items():
        assert xy.shape == (len(testset[0]), 2), name
        assert np.abs(xy).max() <= 1.0 and np.isclose(np.abs(xy).max(), 1.0, atol=1e-3), name


@pytest.mark.parametrize("model_id", MODELS)
def test_the_last_hidden_layers_map_keeps_neighbourhoods(model_id, testset):
    """The committed map is a t-SNE of that layer: on 1,000 digits, its trustworthiness (scikit-learn, 10
    neighbours) is high, and far higher than the same places given to the digits in another order."""
    grey, _ = testset
    acts = acts_of(model_id, grey[:1000])
    last_hidden = list(acts)[-2]
    xy = tsne_maps(SITE / "models" / model_id)[last_hidden][:1000]
    score = trustworthiness(acts[last_hidden], xy, n_neighbors=10)
    shuffled = trustworthiness(acts[last_hidden], np.random.default_rng(0).permutation(xy), n_neighbors=10)
    assert score > 0.9 and shuffled < 0.6, (score, shuffled)


def test_the_input_map_keeps_neighbourhoods(testset):
    grey, _ = testset
    xy = tsne_maps(SITE / "data")["input"]
    assert xy.shape == (len(grey), 2)
    assert trustworthiness(grey[:1000].astype(np.float64), xy[:1000], n_neighbors=10) > 0.9


@pytest.mark.parametrize("digit", [0, 3, 1234, 9999])
def test_placement_is_the_mean_of_ten_nearest_digits(digit, testset):
    """atlas.place_by_neighbours equals scikit-learn's NearestNeighbors on the layer's full space."""
    grey, _ = testset
    model_id = INDEX["default"]
    acts = acts_of(model_id, grey)
    maps = tsne_maps(SITE / "models" / model_id)
    for layer in (list(acts)[0], list(acts)[-2]):
        space = acts[layer]
        near = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(space)
        rows = near.kneighbors(space[digit][None], return_distance=False)[0]
        expected = maps[layer][rows].mean(axis=0)
        np.testing.assert_allclose(atlas.place_by_neighbours(space, maps[layer], space[digit]), expected, atol=1e-12)
    # A drawn digit (not one of the test set): the same rule on the input's grey levels.
    drawn = np.clip(grey[digit].astype(np.float64) + 40 * np.sin(np.arange(grey.shape[1])), 0, 255)
    rows = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(grey.astype(np.float64)).kneighbors(
        drawn[None], return_distance=False)[0]
    xy = tsne_maps(SITE / "data")["input"]
    np.testing.assert_allclose(atlas.place_by_neighbours(grey, xy, drawn), xy[rows].mean(axis=0), atol=1e-12)


def test_read_tsne_arrays_names_what_is_wrong():
    good = {"a": np.zeros((5, 2), np.float16)}
    assert atlas.read_tsne_arrays(good, ["a"], 5)["a"].shape == (5, 2)
    with pytest.raises(ValueError, match="'b' is missing"):
        atlas.read_tsne_arrays(good, ["b"], 5)
    with pytest.raises(ValueError, match=r"\[4, 2\]"):
        atlas.read_tsne_arrays(good, ["a"], 4)
    with pytest.raises(ValueError, match="finite"):
        atlas.read_tsne_arrays({"a": np.full((5, 2), np.nan)}, ["a"], 5)


def test_the_maps_are_fetched_on_demand_only():
    """A first visit (the service worker's install) does not download any t-SNE map."""
    files = precache.atlas_map_files(SITE)
    assert {f"models/{m}/atlas_tsne.npz" for m in MODELS} | {"data/atlas_tsne_input.npz"} <= files
    assert files <= precache.on_demand_files(SITE)
