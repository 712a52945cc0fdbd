"""End to end: the atlas in the real page, against a CPython computation that shares no code with it.

One page (the default model) is shared by the tests of this module, which
run in order. The expected numbers: tests/reference.py's float64 forward pass
over the test set, numpy's SVD and scikit-learn's KNeighborsClassifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

import reference as ref
from conftest import DEFAULT_MODEL, SITE, watch
from test_draw import draw

READY_MS = 120_000  # a map is computed in idle time (slow on a loaded machine)
SIZE, MARGIN = 480, 0.05  # the atlas canvas's side and margin (views/atlas.py), to find a dot on screen


@pytest.fixture(scope="module")
def acts():
    """{layer name: activations (n, width) float64} of the default model over the test set, and "input"."""
    manifest, layers = ref.load(SITE / "models" / DEFAULT_MODEL)
    with np.load(SITE / "data" / "mnist_test.npz") as data:
        images, labels = data["images"], data["labels"]
    norm = manifest.get("normalization", {})
    x = images.reshape(len(images), -1).astype(np.float64) * norm.get("scale", 1 / 255) + norm.get("offset", 0.0)
    out = {"input": x, **{s["name"]: a for s, a in zip(manifest["layers"], ref.forward(layers, x))}}
    return out, labels.astype(int), [s["name"] for s in manifest["layers"]]


@pytest.fixture(scope="module")
def w(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    watched = watch(context, site_server.url)
    assert watched.goto("#mode=atlas&sample=3") == "ready", watched.page.inner_text("#status")
    yield watched
    assert watched.errors == [] and watched.outside == []
    context.close()


def ready(page, layer):
    page.wait_for_function(f"(() => {{ const a = document.getElementById('atlas'); return !a.hidden && "
                           f"a.dataset.state === 'ready' && a.dataset.layer === {json.dumps(layer)}; }})()", timeout=READY_MS)


def numbers(page, selector, name):
    return np.array([float(v) for v in page.get_attribute(selector, name).split(",")])


def page_pca(page):
    mean = numbers(page, "#atlas", "data-mean")
    return mean, numbers(page, "#atlas", "data-axes").reshape(2, mean.size)


def current(page):
    return np.array([float(page.get_attribute("#atlas-current", f"data-{c}")) for c in "xy"])


def map_places(page, x):
    """Each digit's place: in the atlas's coordinates (its activations x projected on #atlas's PCA), and on
    the canvas, in its pixels (the map's y is up, the canvas's down)."""
    mean, axes = page_pca(page)
    xy = (x - mean) @ axes.T
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    scale = SIZE * (1 - 2 * MARGIN) / (hi - lo).max()
    return xy, (xy - (lo + hi) / 2) * scale * [1, -1] + SIZE / 2


def check_pca(page, x):
    """#atlas's mean and axes are x's PCA (numpy SVD) within 1e-6, each axis up to its sign."""
    mean, axes = page_pca(page)
    assert np.abs(mean - x.mean(axis=0)).max() < 1e-6
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    for got, want in zip(axes, vt[:2]):
        assert min(np.abs(got - want).max(), np.abs(got + want).max()) < 1e-6
    return mean, axes


def test_address_opens_the_atlas_and_its_map_is_the_pca(w, acts):
    page = w.page
    out, labels, names = acts
    last_hidden = names[-2]
    ready(page, last_hidden)  # the last hidden layer first
    assert page.get_attribute("#atlas", "data-method") == "pca"
    assert int(page.get_attribute("#atlas", "data-points")) == len(labels)
    assert page.get_attribute("#atlas-toggle", "aria-expanded") == "true"
    options = page.eval_on_selector_all("#atlas-layer option", "os => os.map(o => o.value)")
    assert options == ["input", *names]
    mean, axes = check_pca(page, out[last_hidden])
    # the digit shown: its activations minus the mean, dotted with each axis
    np.testing.assert_allclose(current(page), (out[last_hidden][3] - mean) @ axes.T, atol=1e-6)
    # the separability is scikit-learn's 5-nearest-neighbour vote: the first 2,000 digits vote for the next 500
    knn = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(out[last_hidden][:2000], labels[:2000])
    expected = np.mean(knn.predict(out[last_hidden][2000:2500]) == labels[2000:2500])
    assert float(page.get_attribute("#atlas-separability", "data-value")) == pytest.approx(expected, abs=1e-12)
    summary = page.inner_text("#atlas-summary")
    assert "nearest-neighbour" in summary and "centre" in summary


def test_clicking_a_dot_loads_its_digit_and_the_dot_follows(w, acts):
    page = w.page
    out, labels, names = acts
    xy, canvas = map_places(page, out[names[-2]])
    target = 1234
    page.locator("#atlas-canvas").scroll_into_view_if_needed()
    box = page.locator("#atlas-canvas").bounding_box()
    page.mouse.click(box["x"] + canvas[target, 0] * box["width"] / SIZE, box["y"] + canvas[target, 1] * box["height"] / SIZE)
    picked = int(np.argmin(np.sum((canvas - canvas[target]) ** 2, axis=1)))  # the dot nearest the click
    page.wait_for_function(f"document.getElementById('atlas-current').dataset.sample === '{picked}'")
    assert f"sample={picked}" in page.evaluate("location.hash") and "mode=atlas" in page.evaluate("location.hash")
    np.testing.assert_allclose(current(page), xy[picked], atol=1e-6)
    assert page.get_attribute("#input-image", "data-sample-index") == str(picked)


TIP_SHOWN = "(() => { const t = document.getElementById('atlas-tip'); return getComputedStyle(t).display !== 'none' && t.getBoundingClientRect().width > 0 && t.textContent; })()"


def test_hovering_a_dot_shows_its_digit_and_nothing_else_stays_on_the_map(w, acts):
    """No empty tip box on the map before a dot is hovered or after the mouse leaves it; over a dot, the
    tip names that dot's digit."""
    page = w.page
    out, labels, names = acts
    ready(page, names[-2])
    _, canvas = map_places(page, out[names[-2]])
    page.locator("#atlas-canvas").scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    assert not page.evaluate(TIP_SHOWN)
    assert page.evaluate("[...document.querySelectorAll('[hidden]')].filter((e) => getComputedStyle(e).display !== 'none').map((e) => e.id)") == []
    box = page.locator("#atlas-canvas").bounding_box()
    target = 4321
    page.mouse.move(box["x"] + canvas[target, 0] * box["width"] / SIZE, box["y"] + canvas[target, 1] * box["height"] / SIZE)
    picked = int(np.argmin(np.sum((canvas - canvas[target]) ** 2, axis=1)))
    page.wait_for_function(TIP_SHOWN)
    assert page.inner_text("#atlas-tip").strip() == f"test digit {picked}, a {labels[picked]}"
    page.mouse.move(0, 0)
    page.wait_for_function(f"!{TIP_SHOWN}")


def test_layer_picker_and_step_button(w, acts):
    page = w.page
    out, labels, names = acts
    page.select_option("#atlas-layer", "input")
    ready(page, "input")
    mean, axes = check_pca(page, out["input"])
    sample = int(page.get_attribute("#atlas-current", "data-sample"))
    np.testing.assert_allclose(current(page), (out["input"][sample] - mean) @ axes.T, atol=1e-6)
    page.click("#atlas-step")
    ready(page, names[0])
    check_pca(page, out[names[0]])


def test_keyboard_box_lists_digits_and_one_loads(w, acts):
    page = w.page
    out, labels, names = acts
    page.focus("#atlas-map")
    for key in ("ArrowLeft", "+", "+", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#atlas-found-list")
    listed = [int(s) for s in page.get_attribute("#atlas-found-list", "data-samples").split(",")]
    assert int(page.get_attribute("#atlas-found", "data-count")) >= len(listed) > 0
    page.focus(f'#atlas-found-list [data-sample="{listed[-1]}"]')
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.getElementById('atlas-current').dataset.sample === '{listed[-1]}'")


def test_explorer_cell_highlights_its_digits(w, acts):
    page = w.page
    out, labels, names = acts
    page.click("#errors-toggle")
    cell = page.locator('#confusion-matrix .cell[data-true="4"][data-predicted="9"]')
    count = int(cell.get_attribute("data-count") or cell.inner_text())
    cell.click()
    page.wait_for_function(f"document.getElementById('atlas').dataset.highlighted === '{count}'")
    page.click("#errors-toggle")


def test_the_dot_follows_strokes_in_draw_mode_and_the_toggle_closes(w, acts):
    page = w.page
    out, labels, names = acts
    page.select_option("#atlas-layer", names[-2])
    ready(page, names[-2])
    page.click("#draw-toggle")
    page.wait_for_selector("#draw-panel:not([hidden])")
    assert page.is_visible("#atlas")  # the atlas stays open while drawing
    before = current(page)
    draw(page, [[(0.5, 0.2), (0.5, 0.8)]])
    page.wait_for_function("document.getElementById('atlas-current').dataset.sample === ''")
    mean, axes = page_pca(page)
    shown = np.array(page.eval_on_selector_all(f'#view .neuron[data-layer="{names[-2]}"]',
                                               "ns => ns.map(n => +n.dataset.activation)"))
    np.testing.assert_allclose(current(page), (shown - mean) @ axes.T, atol=1e-5)
    assert not np.allclose(current(page), before)
    page.click("#clear-pad")  # no digit, no dot; the next drawing has one again
    page.wait_for_selector("#atlas-current", state="hidden")
    draw(page, [[(0.5, 0.2), (0.5, 0.8)]])
    page.wait_for_selector("#atlas-current", state="visible")
    page.click("#atlas-toggle")
    assert page.is_hidden("#atlas")
    page.click("#draw-toggle")  # back to test digits: the atlas stays closed, the address says so
    page.wait_for_selector("#draw-panel", state="hidden")
    assert "mode=" not in page.evaluate("location.hash") and page.is_hidden("#atlas")
    page.click("#atlas-toggle")
    page.wait_for_function("location.hash.includes('mode=atlas')")
    ready(page, names[-2])


def test_train_mode_map_is_live_on_a_fixed_subset(w, acts):
    """In Train mode the atlas shows the first 2,000 test digits through the network being trained, and its
    map is redrawn as it learns; each live map is still a PCA: the current dot is its projection."""
    page = w.page
    page.evaluate("location.hash = '#mode=train'")
    page.wait_for_function("['ready', 'error'].includes(document.getElementById('train-data')?.dataset.state)",
                           timeout=READY_MS)
    assert page.get_attribute("#train-data", "data-state") == "ready"
    if page.is_hidden("#atlas"):
        page.click("#atlas-toggle")
    page.click("#train-start")
    page.wait_for_function("+(document.getElementById('atlas').dataset.liveRefreshes || 0) >= 3", timeout=READY_MS)
    page.click("#train-pause")
    data = page.evaluate("Object.assign({}, document.getElementById('atlas').dataset)")
    assert data["live"] == "true" and data["points"] == "2000" and data["method"] == "pca"
    mean, axes = page_pca(page)
    assert np.all(np.isfinite(mean)) and np.allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert "live" in page.inner_text("#atlas-status")
    assert 0.0 <= float(page.get_attribute("#atlas-separability", "data-value")) <= 1.0  # measured, or the last one
