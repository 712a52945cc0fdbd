"""End to end: a convolutional network's channel card, its knock-out and its lines in the real page.

The page shows tests/fake_exports.py's tiny-cnn (served by conftest's test site, opened with
``#model=tiny-cnn``). Expected numbers come from the export's .npy files and tests/reference.py's
plain loops, never from the page's own modules.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from conftest import cnn_page_of

MODEL = "tiny-cnn"


@pytest.fixture(scope="module")
def cnn_page(browser, site_server, test_site):
    w, layers, images = cnn_page_of(browser, site_server, test_site, "#sample=3", MODEL)
    yield w, layers, images
    assert w.errors == [] and w.outside == []
    w.page.context.close()


def neuron(layer, index):
    return f'#view .neuron[data-layer="{layer}"][data-index="{index}"]'


def expected(layers, images, sample, dead=None):
    x = images[sample].reshape(1, -1).astype(np.float64) / 255.0
    return [a[0] for a in ref.forward_layers(layers, x, dead, rounded=np.float32)]


def card_map(page):
    h, w = (int(v) for v in page.get_attribute("#neuron-card", "data-shape").split(","))
    return np.array([float(v) for v in page.get_attribute("#neuron-card", "data-map").split(",")]).reshape(h, w)


def shown(page, layer):
    return np.array(page.eval_on_selector_all(f'#view .neuron[data-layer="{layer}"]', "ns => ns.map(n => +n.dataset.activation)"))


def lines(page):
    page.wait_for_selector("#connections")
    return page.eval_on_selector_all("#connections line", "ls => ls.map(l => [l.dataset.from, l.dataset.to])")


def test_a_channel_card_its_map_and_its_knock_out(cnn_page):
    w, layers, images = cnn_page
    page = w.page
    plain = expected(layers, images, 3)
    # a conv channel's card: its map as the reference computes it, its kernels, its top digits
    page.click(neuron("conv_2", 3))
    page.wait_for_selector('#neuron-card[data-layer="conv_2"][data-index="3"]')
    assert "neuron=conv_2:3" in page.evaluate("location.hash")
    assert page.get_attribute("#neuron-card", "data-shape") == "13,13"
    np.testing.assert_allclose(card_map(page), plain[2][..., 3], atol=1e-5)
    assert float(page.get_attribute(neuron("conv_2", 3), "data-activation")) == pytest.approx(plain[2][..., 3].max(), abs=1e-5)
    assert page.eval_on_selector_all("#card-weights img.kernel", "ks => ks.length") == 4
    assert len(page.get_attribute("#card-top", "data-samples").split(",")) == 9
    page.wait_for_selector("#neuron-card #card-least", timeout=60_000)  # what it wants (page/why.py) fills its slot
    # the map's values: under the pointer, and under the arrow keys' cursor
    box = page.locator("#card-map").bounding_box()
    row, col = 4, 9
    page.mouse.move(box["x"] + (col + 0.5) * box["width"] / 13, box["y"] + (row + 0.5) * box["height"] / 13)
    page.wait_for_function(f"document.getElementById('card-map-frame').dataset.row === '{row}' && "
                           f"document.getElementById('card-map-frame').dataset.column === '{col}'")
    assert float(page.get_attribute("#card-map-readout", "data-value")) == pytest.approx(plain[2][row, col, 3], abs=1e-5)
    assert f"row {row}, column {col}" in page.get_attribute("#card-map", "title")
    page.focus("#card-map-frame")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"document.getElementById('card-map-frame').dataset.row === '{row + 1}'")
    assert float(page.get_attribute("#card-map-readout", "data-value")) == pytest.approx(plain[2][row + 1, col, 3], abs=1e-5)
    # a pool channel's card
    page.click(neuron("pool_2", 5))
    page.wait_for_selector('#neuron-card[data-layer="pool_2"][data-index="5"]')
    assert page.get_attribute("#neuron-card", "data-shape") == "6,6"
    np.testing.assert_allclose(card_map(page), plain[3][..., 5], atol=1e-5)
    # knock conv_2 channel 3 out: its map is 0, the output changes as the reference says
    page.click(neuron("conv_2", 3))
    page.wait_for_selector('#neuron-card[data-layer="conv_2"][data-index="3"]')
    before = shown(page, "output")
    np.testing.assert_allclose(before, plain[-1], atol=1e-6)
    page.click("#knockout-toggle")
    page.wait_for_selector(neuron("conv_2", 3) + '[data-knocked-out="true"]')
    assert "ko=conv_2:3" in page.evaluate("location.hash")
    assert float(page.get_attribute(neuron("conv_2", 3), "data-activation")) == 0.0
    page.wait_for_selector('#knockout-toggle[aria-pressed="true"]')
    assert not card_map(page).any()
    knocked = expected(layers, images, 3, {"conv_2": [3]})
    after = shown(page, "output")
    np.testing.assert_allclose(after, knocked[-1], atol=1e-6)
    assert np.abs(after - before).max() > 1e-6
    page.wait_for_function("document.getElementById('connections') && document.getElementById('connections').dataset.sample === '3'")
    drawn = lines(page)
    assert not [1 for a, _ in drawn if a == "conv_2:3"]  # a knocked-out channel sends nothing
    page.click("#reset-network")
    page.wait_for_function("!document.querySelector('#view [data-knocked-out]')")
    # by keyboard, as a neuron's card: Enter opens it with focus in it, Escape closes it, focus back on the channel
    page.focus(neuron("pool_1", 2))
    page.keyboard.press("Enter")
    page.wait_for_selector('#neuron-card[data-layer="pool_1"][data-index="2"]')
    page.wait_for_function("document.activeElement.id === 'neuron-card'")
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")
    assert page.evaluate("[document.activeElement.dataset.layer, document.activeElement.dataset.index]") == ["pool_1", "2"]
    # the dense layer after the flatten: its inputs by channel (summed over positions), a row opens that channel
    page.click(neuron("dense_1", 2))
    page.wait_for_selector('#neuron-card[data-layer="dense_1"][data-index="2"]')
    assert page.get_attribute("#neuron-card", "data-map") is None
    rows = page.eval_on_selector_all("#card-channel-contributions .contrib", "rs => rs.map(r => [r.dataset.layer, +r.dataset.index])")
    assert sorted(map(tuple, rows)) == [("pool_2", c) for c in range(6)]
    first = rows[0][1]
    page.click(f'#card-channel-contributions .contrib[data-index="{first}"]')
    page.wait_for_selector(f'#neuron-card[data-layer="pool_2"][data-index="{first}"]')
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")
    assert w.errors == []


def test_the_lines_join_pixels_channels_and_the_dense_layer(cnn_page):
    """Into the first conv from pixels, into a pool from the same channel, into the dense layer from the pool
    channels before the flatten (which is not drawn); every end is a drawn neuron or the input."""
    w, _, _ = cnn_page
    page = w.page
    page.evaluate("location.hash = '#model=tiny-cnn&sample=8'")
    page.wait_for_function("document.getElementById('connections') && document.getElementById('connections').dataset.sample === '8'")
    drawn = lines(page)
    assert "summed over the map" in page.inner_text("#connections-thickness")
    pairs = {(a.split(":")[0], b.split(":")[0]) for a, b in drawn}
    assert {("input", "conv_1"), ("conv_1", "pool_1"), ("pool_1", "conv_2"), ("conv_2", "pool_2"), ("pool_2", "dense_1"),
            ("dense_1", "output")} <= pairs
    assert not [p for p in pairs if "flatten" in p]
    assert all(a.split(":")[1] == b.split(":")[1] for a, b in drawn if b.startswith("pool_"))
    ends = {f"{layer}:{index}" for layer, index in page.eval_on_selector_all(
        "#view .neuron", "ns => ns.map(n => [n.dataset.layer, n.dataset.index])")}
    assert {b for _, b in drawn} <= ends and {a for a, _ in drawn if not a.startswith("input:")} <= ends
