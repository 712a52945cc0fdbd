"""End to end: a convolutional network's feature maps and a map pixel's receptive field in the real page.

The page shows tests/fake_exports.py's tiny-cnn (conftest's test site, ``#model=tiny-cnn``). Expected numbers
come from the export's files through tests/reference.py's plain loops, never from the page's own modules.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import reference as ref
from conftest import cnn_page_of
from test_render import decode_png
from pyscript_app.views.colours import DIVERGING_STOPS, SCALE_STOPS, colour

MODEL = "tiny-cnn"


@pytest.fixture(scope="module")
def cnn_view(browser, site_server, test_site):
    w, layers, images = cnn_page_of(browser, site_server, test_site, "#sample=11", MODEL)
    yield w, layers, images
    assert w.errors == [] and w.outside == []
    w.page.context.close()


def maps_of(layers, images, sample):
    x = images[sample].reshape(1, -1).astype(np.float64) / 255.0
    return [a[0] for a in ref.forward_layers(layers, x)]


def image_layers(layers):
    return [(pos, spec) for pos, (spec, _, _) in enumerate(layers) if spec["kind"] in ("conv2d", "maxpool2d")]


def test_each_channel_shows_the_peak_of_its_map_on_several_digits(cnn_view):
    w, layers, images = cnn_view
    page = w.page
    for sample in (11, 0, 4321):
        if sample != 11:
            page.evaluate(f"location.hash = '#model={MODEL}&sample={sample}'")
            page.wait_for_selector(f'#input-image[data-sample-index="{sample}"]')
        acts = maps_of(layers, images, sample)
        for pos, spec in image_layers(layers):
            section = page.locator(f'#layer-{spec["name"]}')
            assert section.get_attribute("data-kind") == spec["kind"]
            shown = np.array(page.eval_on_selector_all(f'#layer-{spec["name"]} .neuron', "ns => ns.map(n => +n.dataset.activation)"))
            assert shown.shape == (spec["output_shape"][2],)
            np.testing.assert_allclose(shown, acts[pos].max(axis=(0, 1)), atol=1e-5)
            # one map image per channel, of the map's height and width
            shapes = page.eval_on_selector_all(f'#layer-{spec["name"]} .fmap-img', "ns => ns.map(n => n.dataset.shape)")
            assert shapes == ["{},{}".format(*spec["output_shape"][:2])] * spec["output_shape"][2]
            # drawn from one image a layer (its sprite), each channel from its own part of it
            drawn = page.eval_on_selector_all(
                f'#layer-{spec["name"]} .fmap-img',
                "ns => ns.map(n => { const s = getComputedStyle(n); return [s.backgroundImage, s.backgroundPosition]; })")
            assert len({image for image, _ in drawn}) == 1 and drawn[0][0].startswith('url("data:image/png;base64,')
            assert len({at for _, at in drawn}) == spec["output_shape"][2]
    assert page.locator('#view [data-layer="flatten"]').count() == 0  # a flatten only reshapes: not drawn


def test_the_maps_pictures_follow_a_quick_run_of_clicks(cnn_view):
    """A click writes its values at once and the feature maps' pictures in the frame after: once the
    frames after a quick run of clicks are drawn, each layer's one picture holds the last digit's maps,
    tile by tile, on the colour scale its legend states (a pooling layer on its conv layer's)."""
    w, layers, images = cnn_view
    page = w.page
    page.evaluate("() => { for (let i = 0; i < 5; i++) document.getElementById('random-sample').click(); }")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(r))))")
    sample = int(page.get_attribute("#input-image", "data-sample-index"))
    acts = maps_of(layers, images, sample)
    keys = {k[0]: k[1:] for k in page.eval_on_selector_all(
        ".legend .scale-key", "ks => ks.map(k => [k.dataset.layer, k.dataset.scale, +k.dataset.low, +k.dataset.high])")}
    scale = None
    for pos, (spec, _, _) in enumerate(layers):
        if spec["name"] in keys:
            scale = keys[spec["name"]]
        if spec["kind"] not in ("conv2d", "maxpool2d"):
            continue
        kind, low, high = scale
        style = page.get_attribute(f'#layer-{spec["name"]} > .fmaps', "style")
        sprite = decode_png(re.search(r"background-image:url\(([^)]+)\)", style).group(1)).astype(int)
        h, wd, channels = spec["output_shape"]
        assert sprite.shape == (h, channels * (wd + 2), 3)
        stops = DIVERGING_STOPS if kind == "diverging" else SCALE_STOPS
        for c in range(channels):
            want = [colour((v - low) / (high - low), stops) for v in acts[pos][:, :, c].ravel().tolist()]
            tile = sprite[:, c * (wd + 2) + 1 : c * (wd + 2) + 1 + wd].reshape(-1, 3)
            np.testing.assert_allclose(tile, np.array(want), atol=1, err_msg=f'{spec["name"]} channel {c}, digit {sample}')


def test_hovering_a_map_pixel_outlines_its_receptive_field_and_shows_its_sum(cnn_view):
    w, layers, images = cnn_view
    page = w.page
    sample = int(page.get_attribute("#input-image", "data-sample-index"))
    acts = maps_of(layers, images, sample)
    for pos, spec in image_layers(layers):
        h, wd, channels = spec["output_shape"]
        channel = channels - 1
        img = page.locator(f'#layer-{spec["name"]} .neuron[data-index="{channel}"] .fmap-img')
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        for row, col in ((0, 0), (h - 1, wd - 1), (h // 2, wd // 3)):
            page.mouse.move(box["x"] + (col + 0.5) * box["width"] / wd, box["y"] + (row + 0.5) * box["height"] / h)
            page.wait_for_function(
                "([l, r, c]) => { const k = document.getElementById('kernel-view');"
                " return k && k.dataset.layer === l && +k.dataset.row === r && +k.dataset.col === c; }",
                arg=[spec["name"], row, col])
            got = tuple(int(v) for v in page.get_attribute("#receptive-field", "data-box").split(","))
            assert got == ref.receptive_box(layers, pos, row, col), (spec["name"], row, col)
            assert page.is_visible("#receptive-field")
            value = float(page.get_attribute("#kernel-view", "data-value"))
            assert value == pytest.approx(float(acts[pos][row, col, channel]), abs=1e-5)
    # the outline sits over the digit, in proportion: its box's pixels on the 28x28 image
    frame = page.locator("#receptive-field").bounding_box()
    digit = page.locator("#input-image").bounding_box()
    top, left, bottom, right = (int(v) for v in page.get_attribute("#receptive-field", "data-box").split(","))
    assert frame["x"] == pytest.approx(digit["x"] + left * digit["width"] / 28, abs=3)
    assert frame["width"] == pytest.approx((right - left + 1) * digit["width"] / 28, abs=3)
    # leaving the maps takes both away
    page.mouse.move(5, 5)
    page.wait_for_function("!document.getElementById('kernel-view')")
    assert not page.is_visible("#receptive-field")
    assert page.get_attribute("#receptive-field", "data-box") is None


def test_a_focused_channel_shows_the_field_of_its_peak(cnn_view):
    w, layers, images = cnn_view
    page = w.page
    sample = int(page.get_attribute("#input-image", "data-sample-index"))
    acts = maps_of(layers, images, sample)
    pos, spec = image_layers(layers)[0]
    page.focus(f'#layer-{spec["name"]} .neuron[data-index="0"]')
    page.wait_for_selector("#kernel-view")
    row, col = (int(page.get_attribute("#kernel-view", f"data-{k}")) for k in ("row", "col"))
    channel_map = acts[pos][:, :, 0]
    assert channel_map[row, col] == pytest.approx(channel_map.max(), abs=1e-6)
    assert tuple(int(v) for v in page.get_attribute("#receptive-field", "data-box").split(",")) == \
        ref.receptive_box(layers, pos, row, col)
    page.keyboard.press("ArrowDown")  # to the next channel: its own peak
    page.wait_for_function("document.getElementById('kernel-view')?.dataset.index === '1'")
