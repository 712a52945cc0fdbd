"""The card of a conv2d / maxpool2d channel, and a dense unit's card after a flatten (render_inside).

The network is tests/fake_exports.py's tiny-cnn (conv_1 4x3x3 valid relu -> pool_1 -> conv_2 6x5x5 same
tanh -> pool_2 -> flatten -> dense_1 12 sigmoid -> output). Expected numbers come from the export's .npy
files and tests/reference.py's plain loops; the HTML is read back with test_render_inside's parser and
PNGs with test_render's decoder.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

import reference as ref
from conftest import SITE
from pyscript_app.core import network as nw
from pyscript_app.views import render, render_inside as ri
from test_render import decode_png
from test_render_inside import Doc


@pytest.fixture(scope="module")
def cnn(fake_models):
    """(network, testset, folder, load_layers' layers) of tiny-cnn, with the committed test digits."""
    folder = fake_models / "tiny-cnn"
    network, testset = nw.read_export_dir(folder, SITE / "data")
    manifest, layers = ref.load_layers(folder)
    return network, testset, folder, layers


def plain(cnn, sample, dead=None):
    """Every layer's output for one test digit by the reference's loops (each rounded to float32, as shown)."""
    network, testset, _, layers = cnn
    x = testset.images[sample].reshape(1, -1).astype(np.float64) / 255.0
    return [a[0] for a in ref.forward_layers(layers, x, dead, rounded=np.float32)]


def card(cnn, sample, layer, index, knocked_out=None, top_digits=False):
    network, testset, _, _ = cnn
    view = render.view_for_sample(network, testset, sample, knocked_out, (layer, index))
    return Doc(ri.neuron_card(network, testset, view, layer, index, top_digits=top_digits))


def card_map(doc):
    box = doc.by_id("neuron-card")
    h, w = (int(v) for v in box["data-shape"].split(","))
    return np.array([float(v) for v in box["data-map"].split(",")]).reshape(h, w)


def view_map_rgb(cnn, sample, layer, index):
    """A channel's small map in the view, as its pixels: its tile of the layer's one image (the sprite on the
    layer's `.fmaps`: the maps side by side, each between 1-pixel gutters). The card's is the same picture."""
    network, testset, _, _ = cnn
    view = render.view_for_sample(network, testset, sample)
    doc = Doc(render.network_view(network, view))
    section = [i for i, (t, a) in enumerate(doc.items) if a.get("id") == f"layer-{layer}"][0]
    fmaps = next(a for t, a in doc.items[section:] if a.get("class") == "fmaps")
    image = decode_png(re.search(r"background-image:url\(([^)]+)\)", fmaps["style"]).group(1))
    w = int(network.layers[POSITION[layer]].output_shape[1])
    return image[:, index * (w + 2) + 1 : index * (w + 2) + 1 + w]


POSITION = {"conv_1": 0, "pool_1": 1, "conv_2": 2, "pool_2": 3}


@pytest.mark.parametrize("layer, index, sample", [("conv_1", 2, 3), ("conv_1", 0, 77), ("conv_2", 3, 3), ("conv_2", 5, 1234)])
def test_a_conv_channel_card_shows_its_map_kernels_and_bias(cnn, layer, index, sample):
    network, _, _, layers = cnn
    spec, w, b = layers[POSITION[layer]]
    doc = card(cnn, sample, layer, index)
    box = doc.by_id("neuron-card")
    assert (box["data-layer"], box["data-index"], box["data-kind"]) == (layer, str(index), "conv2d")
    expected = plain(cnn, sample)[POSITION[layer]][..., index]
    assert box["data-shape"] == f"{expected.shape[0]},{expected.shape[1]}" == ",".join(map(str, spec["output_shape"][:2]))
    np.testing.assert_allclose(card_map(doc), expected, atol=1e-5)
    assert float(doc.by_id("card-activation")["data-value"]) == pytest.approx(expected.max(), abs=1e-5)
    assert float(doc.by_id("card-bias")["data-value"]) == float(np.float32(b[index]))
    # one kernel image per input channel, its weights exactly the export's, the strongest in its sign's end colour
    kernels = doc.all("img", "kernel")
    assert len(kernels) == spec["input_shape"][2] == int(doc.by_id("card-weights")["data-count"])
    np.testing.assert_array_equal(np.array(json.loads(doc.by_id("card-weights")["data-weights"])).astype(np.float32),
                                  w[..., index].reshape(-1).astype(np.float32))  # as a dense card's: weights[..., unit]
    limit = float(doc.by_id("card-weights")["data-limit"])
    assert limit == pytest.approx(np.abs(w[:, :, :, index]).max(), rel=1e-6)
    for k, img in enumerate(kernels):
        assert int(img["data-input-channel"]) == k and img["alt"] and img["title"]
        got = np.array(json.loads(img["data-weights"]))
        np.testing.assert_array_equal(got.astype(np.float32).reshape(w.shape[:2]), w[:, :, k, index].astype(np.float32))
        rgb = decode_png(img["src"])
        assert rgb.shape == (*w.shape[:2], 3)
        if abs(w[:, :, k, index]).max() == limit:
            y, x = np.unravel_index(np.argmax(np.abs(w[:, :, k, index])), w.shape[:2])
            assert tuple(rgb[y, x]) == ri.DIVERGING_STOPS[-1 if w[y, x, k, index] > 0 else 0][1]
    assert doc.all("div", "dlegend")  # the kernels' scale has its key
    # the map, enlarged: an image of its shape, its largest value read out until the pointer moves
    image = doc.by_id("card-map")
    assert decode_png(image["src"]).shape == (*expected.shape, 3)
    np.testing.assert_array_equal(decode_png(image["src"]), view_map_rgb(cnn, sample, layer, index))
    frame = doc.by_id("card-map-frame")
    row, col = int(frame["data-row"]), int(frame["data-column"])
    assert card_map(doc)[row, col] == card_map(doc).max()
    assert frame["tabindex"] == "0" and "Arrow keys" in frame["aria-label"]
    assert f"row {row}, column {col}" in doc.text["card-map-readout"] and f"row {row}, column {col}" in image["title"]
    # hidden: it can be knocked out
    toggle = doc.by_id("knockout-toggle")
    assert (toggle["data-layer"], toggle["data-index"], toggle["aria-pressed"]) == (layer, str(index), "false")
    assert doc.by_id("card-close")["data-action"] == "close-card"
    assert f"channel {index}" in doc.by_id("card-title")["aria-label"]


def test_what_each_input_sends_into_a_conv_channel(cnn):
    """conv_2: each pool_1 channel summed over the map, strongest first, a row opens that channel; conv_1:
    an image of what each pixel sends (over every position that reads it). The reference's loops."""
    network, testset, _, layers = cnn
    acts = plain(cnn, 42)
    doc = card(cnn, 42, "conv_2", 1)
    expected = ref.incoming_signals(layers, 2, acts[1])[:, 1]
    rows = doc.all("button", "contrib")
    assert sorted(int(r["data-index"]) for r in rows) == list(range(4))
    assert all(r["data-layer"] == "pool_1" and r["data-action"] == "open-neuron" for r in rows)
    values = [float(r["data-value"]) for r in rows]
    np.testing.assert_allclose(values, expected[[int(r["data-index"]) for r in rows]], rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert [abs(v) for v in values] == sorted((abs(v) for v in values), reverse=True)
    doc = card(cnn, 42, "conv_1", 3)
    x = testset.images[42].reshape(1, -1).astype(np.float64) / 255.0
    pixels = ref.incoming_signals(layers, 0, x[0])[:, 3]
    got = np.array(json.loads(doc.by_id("card-pixel-contributions")["data-contributions"]))
    np.testing.assert_allclose(got, pixels, rtol=1e-5, atol=1e-6 * np.abs(pixels).max())


@pytest.mark.parametrize("layer, index, source", [("pool_1", 1, "conv_1"), ("pool_2", 4, "conv_2")])
def test_a_pool_channel_card(cnn, layer, index, source):
    network, _, _, layers = cnn
    acts = plain(cnn, 5)
    doc = card(cnn, 5, layer, index)
    box = doc.by_id("neuron-card")
    assert box["data-kind"] == "maxpool2d"
    expected = ref.maxpool2d(acts[POSITION[source]][None])[0][..., index]
    assert box["data-shape"] == f"{expected.shape[0]},{expected.shape[1]}"
    np.testing.assert_allclose(card_map(doc), expected, atol=1e-5)
    np.testing.assert_allclose(card_map(doc), acts[POSITION[layer]][..., index], atol=1e-5)
    np.testing.assert_array_equal(decode_png(doc.by_id("card-map")["src"]), view_map_rgb(cnn, 5, layer, index))
    assert not doc.all("img", "kernel") and "card-bias" not in doc.text
    text = doc.text["neuron-card"]
    assert f"largest value of each 2\u00d72 block of channel {index} of {network.layer(source).title}" in text
    back = doc.by_id("card-pool-source")
    assert (back["data-action"], back["data-layer"], back["data-index"]) == ("open-neuron", source, str(index))
    assert doc.by_id("knockout-toggle")["aria-pressed"] == "false"


def test_a_knocked_out_channel_card(cnn):
    """Its whole map is 0, the card says what its largest value would be; the next conv gets nothing from it."""
    ko = {"pool_1": [2]}
    doc = card(cnn, 9, "pool_1", 2, ko)
    assert not card_map(doc).any()
    assert float(doc.by_id("card-activation")["data-value"]) == 0.0
    assert doc.by_id("knockout-toggle")["aria-pressed"] == "true"
    would = plain(cnn, 9)[1][..., 2].max()
    assert f"would be {would:.4f}" in doc.text["neuron-card"]
    rows = {int(r["data-index"]): r for r in card(cnn, 9, "conv_2", 0, ko).all("button", "contrib")}
    assert float(rows[2]["data-value"]) == 0.0 and "dead" in rows[2]["class"]


def test_a_dense_card_after_the_flatten_names_channels_and_positions(cnn):
    """dense_1 reads the flatten's 6x6x6 values: each named by its pool_2 channel and position, a row opens
    that channel's card; the channels' sums (over their positions) come first."""
    network, _, _, layers = cnn
    ko = {"pool_2": [4]}
    acts = plain(cnn, 11, ko)
    doc = card(cnn, 11, "dense_1", 7, ko)
    _, w, b = layers[5]
    flat = acts[3].reshape(-1)
    h, wd, c = acts[3].shape
    rows = doc.all("button", "contrib")
    by_value = [r for r in rows if r["data-focus-key"].startswith("contrib-") and not r["data-focus-key"].startswith("contrib-channel")]
    assert len(by_value) == min(ri.TOP_FLAT_VALUES, h * wd * c) < h * wd * c  # the strongest, one by one
    sizes = np.abs(flat * w[:, 7])
    assert {int(r["data-focus-key"].split("-")[1]) for r in by_value} == set(np.argsort(-sizes, kind="stable")[: len(by_value)].tolist())
    np.testing.assert_allclose(json.loads(doc.by_id("card-contributions")["data-contributions"]), flat * w[:, 7], atol=1e-6)
    for r in by_value:
        k = int(r["data-focus-key"].split("-")[1])
        pos, ch = divmod(k, c)
        assert (r["data-layer"], int(r["data-index"])) == ("pool_2", ch)
        assert r["title"] == f"Pooling 2 channel {ch} at ({pos // wd}, {pos % wd})"
        assert float(r["data-value"]) == pytest.approx(flat[k] * w[k, 7], abs=1e-6)
        assert ("dead" in r["class"]) == (ch == 4)
    channels = [r for r in rows if r["data-focus-key"].startswith("contrib-channel-")]
    assert sorted(int(r["data-index"]) for r in channels) == list(range(c))
    expected = ref.incoming_signals(layers, 5, flat)[:, 7]
    for r in channels:
        assert float(r["data-value"]) == pytest.approx(expected[int(r["data-index"])], abs=1e-5)
    assert float(next(r for r in channels if r["data-index"] == "4")["data-value"]) == 0.0
    # its weights: one image a channel, each value where it reads on that channel's map
    weights = doc.by_id("card-weights")
    np.testing.assert_array_equal(np.array(json.loads(weights["data-weights"])).astype(np.float32), w[:, 7].astype(np.float32))
    images = doc.all("img", "kernel")
    assert len(images) == c == int(weights["data-count"])
    limit = np.abs(w[:, 7]).max()
    k = int(np.argmax(np.abs(w[:, 7])))
    pos, ch = divmod(k, c)
    assert tuple(decode_png(images[ch]["src"])[pos // wd, pos % wd]) == ri.DIVERGING_STOPS[-1 if w[k, 7] > 0 else 0][1]
    assert decode_png(images[0]["src"]).shape == (h, wd, 3) and limit > 0


@pytest.mark.parametrize("layer, index", [("conv_1", 1), ("pool_2", 3)])
def test_a_channel_card_lists_the_9_test_digits_whose_map_peaks_highest(cnn, layer, index):
    network, testset, _, layers = cnn
    doc = card(cnn, 0, layer, index, top_digits=True)
    top = [int(s) for s in doc.by_id("card-top")["data-samples"].split(",")]
    assert len(top) == 9 and [int(t["data-sample"]) for t in doc.all("button", "thumb")] == top
    x = testset.images.reshape(len(testset.images), -1).astype(np.float64) / 255.0
    peaks = ref.forward_layers(layers[: POSITION[layer] + 1], x)[-1][..., index].max(axis=(1, 2))
    ninth = np.sort(peaks)[::-1][8]
    assert all(peaks[i] >= ninth - 1e-5 for i in top)
    assert (np.diff(peaks[top]) <= 1e-5).all()  # highest first


def test_the_connections_key_says_what_a_channel_line_sums(cnn, seed_export):
    assert "summed over the map" in ri.thickness_text(cnn[0])
    assert "summed" not in ri.thickness_text(seed_export[0])  # a dense network: one activation x weight a line
    assert html.escape(ri.thickness_text(cnn[0])) in ri.connections_legend(cnn[0])


def test_a_flatten_value_s_card_points_to_its_channel(cnn):
    """Only an address can name a flatten value (#neuron=flatten:k): its card says which channel and position it is."""
    doc = card(cnn, 4, "flatten", 6 * 6 * 2 + 6 * 3 + 5)  # row 2, column 3, channel 5 of the 6x6x6 pool_2 image
    assert float(doc.by_id("card-activation")["data-value"]) == pytest.approx(plain(cnn, 4)[3][2, 3, 5], abs=1e-6)
    assert "channel 5 of Pooling 2 at row 2, column 3" in doc.text["neuron-card"]
    button = doc.by_id("card-flatten-source")
    assert (button["data-action"], button["data-layer"], button["data-index"]) == ("open-neuron", "pool_2", "5")
