"""End to end: the atlas's t-SNE map in the real page (the default model), against scikit-learn's NearestNeighbors
on tests/reference.py's float64 activations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import reference as ref
from conftest import DEFAULT_MODEL, SITE, watch
from test_atlas_page import READY_MS, current, ready


@pytest.fixture(scope="module")
def acts():
    manifest, layers = ref.load(SITE / "models" / DEFAULT_MODEL)
    with np.load(SITE / "data" / "mnist_test.npz") as data:
        grey = data["images"].reshape(len(data["images"]), -1).astype(np.float64)
    norm = manifest.get("normalization", {})
    x = grey * norm.get("scale", 1 / 255) + norm.get("offset", 0.0)
    out = {"input": grey, **{s["name"]: a for s, a in zip(manifest["layers"], ref.forward(layers, x))}}
    return out, [s["name"] for s in manifest["layers"]]


def maps(folder):
    entry = json.loads((folder / "atlas.json").read_text())["tsne"]
    with np.load(folder / entry["file"]) as arrays:
        return {k: arrays[k].astype(np.float64) for k in arrays.files}


def placed(space, xy, digit):
    """The placement rule, computed independently: the mean place of the 10 nearest test digits."""
    rows = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(space).kneighbors(
        space[digit][None], return_distance=False)[0]
    return xy[rows].mean(axis=0)


def tsne_ready(page, layer):
    page.wait_for_function(f"(() => {{ const a = document.getElementById('atlas'); return a.dataset.state === 'ready' "
                           f"&& a.dataset.method === 'tsne' && a.dataset.layer === {json.dumps(layer)}; }})()",
                           timeout=READY_MS)


def test_choosing_tsne_fetches_the_map_and_places_the_digit_by_its_neighbours(browser, site_server, acts):
    out, names = acts
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    w = watch(context, site_server.url)
    fetched = []
    context.on("request", lambda r: fetched.append(r.url))
    page = w.page
    assert w.goto("#mode=atlas&sample=3") == "ready", page.inner_text("#status")
    last_hidden = names[-2]
    ready(page, last_hidden)
    assert page.get_attribute("#atlas", "data-method") == "pca"
    assert page.is_hidden("#atlas-method-note")
    assert not any("atlas_tsne" in u for u in fetched)  # not at start-up
    page.select_option("#atlas-method", "tsne")
    tsne_ready(page, last_hidden)
    assert any(u.endswith(f"models/{DEFAULT_MODEL}/atlas_tsne.npz") for u in fetched)
    assert int(page.get_attribute("#atlas", "data-points")) == len(out["input"])
    model_maps = maps(SITE / "models" / DEFAULT_MODEL)
    np.testing.assert_allclose(current(page), placed(out[last_hidden], model_maps[last_hidden], 3), atol=1e-9)
    assert "t-SNE" in page.inner_text("#atlas-summary")
    page.select_option("#atlas-layer", "input")
    tsne_ready(page, "input")
    input_map = maps(SITE / "data")["input"]
    np.testing.assert_allclose(current(page), placed(out["input"], input_map, 3), atol=1e-9)
    page.select_option("#atlas-method", "pca")
    ready(page, "input")
    page.wait_for_function("document.getElementById('atlas').dataset.method === 'pca'")
    assert w.errors == [] and w.outside == []
    context.close()


def test_a_corrupt_map_is_reported_and_the_pca_map_stays(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    w = watch(context, site_server.url)
    context.route(f"**/models/{DEFAULT_MODEL}/atlas_tsne.npz",
                  lambda r: r.fulfill(status=200, body=b"not the map", content_type="application/octet-stream"))
    page = w.page
    assert w.goto("#mode=atlas&sample=3") == "ready", page.inner_text("#status")
    page.wait_for_function("document.getElementById('atlas').dataset.state === 'ready'", timeout=READY_MS)
    page.select_option("#atlas-method", "tsne")
    page.wait_for_function("document.getElementById('atlas-status').textContent.includes('could not be loaded')",
                           timeout=READY_MS)
    assert "atlas_tsne.npz is corrupt" in page.inner_text("#atlas-status")
    assert page.get_attribute("#atlas", "data-method") == "pca"
    assert page.input_value("#atlas-method") == "pca"
    assert w.errors == [] and w.outside == []
    context.close()
