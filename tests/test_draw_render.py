"""What the page shows for a drawn digit (pyscript_app/views/render.py, the "Draw" section).

The drawings come from tests/drawn_digits.py (strokes painted like the canvas
paints them); every number is checked against an independent computation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import pinned_to_default
from drawn_digits import TEMPLATES, rasterize, transform
from pyscript_app.views import render, render_draw
from pyscript_app.core.preprocess import preprocess
from test_render import Elements, decode_png

import reference as ref


def plain_forward(network, pixels):
    """Every layer's activations from the weights by tests/reference.py's float64 pass, on x = pixel / 255."""
    x = np.asarray(pixels, dtype=np.float64).reshape(1, -1) / 255.0
    return [a[0] for a in ref.forward([(l.weights, l.bias, l.activation) for l in network.layers], x)]



# every model goes through the same functions in tests/test_any_model.py.
network, testset, manifest = pinned_to_default()

@pytest.fixture(scope="module")
def drawn_seven():
    pad = rasterize(TEMPLATES[7][1], size=280)
    return pad, preprocess(pad)


def test_pixels_json_lists_every_grey_level_row_by_row():
    pixels = np.arange(784, dtype=np.int64).reshape(28, 28) % 256
    text = render_draw.pixels_json(pixels)
    assert " " not in text and json.loads(text) == [int(v) for v in pixels.ravel()]


def test_drawing_view_shows_the_forward_pass_of_the_model_input(network, drawn_seven):
    _, pre = drawn_seven
    doc = Elements(render.network_view(network, render.view_for_drawing(network, pre.centred)))
    expected = np.concatenate(plain_forward(network, pre.centred))
    got = np.array([float(n["data-activation"]) for n in doc.neurons()])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert doc.by_id("prediction")["data-digit"] == str(int(np.argmax(expected[-10:])))
    assert doc.by_id("true-label")["data-digit"] == ""
    image = doc.by_id("input-image")
    assert image["data-sample-index"] == ""
    np.testing.assert_array_equal(decode_png(image["src"]), pre.centred)


def test_drawing_view_applies_knock_outs(network, drawn_seven):
    _, pre = drawn_seven
    view = render.view_for_drawing(network, pre.centred, knocked_out={"hidden_1": [0, 5]})
    dead = [n for n in Elements(render.network_view(network, view)).neurons() if n.get("data-knocked-out")]
    assert [(n["data-layer"], n["data-index"], float(n["data-activation"])) for n in dead] == [
        ("hidden_1", "0", 0.0), ("hidden_1", "5", 0.0)]


def test_inspector_shows_each_step_and_the_exact_model_input(network, drawn_seven):
    pad, pre = drawn_seven
    doc = Elements(render_draw.inspector(pad, pre, network.normalization))
    model_input = doc.by_id("model-input")
    pixels = np.array(json.loads(model_input["data-pixels"]), dtype=np.uint8)
    assert pixels.shape == (784,)
    np.testing.assert_array_equal(pixels.reshape(28, 28), pre.centred)
    np.testing.assert_array_equal(decode_png(model_input["src"]), pre.centred)
    assert "0..255" in model_input["title"] and network.normalization["formula"] in model_input["title"]
    images = [a for t, a in doc.items if t == "img"]
    assert len(images) == 4  # pad -> crop -> 20x20 -> 28x28
    np.testing.assert_array_equal(decode_png(images[2]["src"]), pre.resized)
    top, left, bottom, right = pre.bbox
    text = render_draw.inspector(pad, pre)
    assert f"{right - left}&times;{bottom - top}" in text  # the crop's size in pad pixels


def test_pad_thumbnail_is_the_area_average_of_the_pad():
    # a 224-px pad to 112 px: every thumbnail pixel is the mean of a 2x2 block
    pad = rasterize(transform(TEMPLATES[3][0], scale=0.8, shift=(0.05, -0.03)), size=224)
    pre = preprocess(pad)
    thumb, box = render_draw.pad_thumbnail(pre, pad.shape, size=112)
    ink = pad[..., 3].astype(np.float64)
    ink[ink < 16] = 0  # the noise threshold: faint ink is paper (as in the crop)
    expected = ink.reshape(112, 2, 112, 2).mean(axis=(1, 3))
    assert np.abs(thumb.astype(float) - expected).max() <= 0.5 + 1e-9
    top, left, bottom, right = pre.bbox
    assert box == (top // 2, left // 2, -(-bottom // 2), -(-right // 2))


def test_inspector_marks_the_crop_on_the_pad(drawn_seven):
    pad, pre = drawn_seven
    top, left, bottom, right = pre.bbox
    style = render_draw.percent_box(pre.bbox, pad.shape)
    assert style == (f"top:{100 * top / 280:.3f}%;left:{100 * left / 280:.3f}%;"
                     f"height:{100 * (bottom - top) / 280:.3f}%;width:{100 * (right - left) / 280:.3f}%")
    assert style in render_draw.inspector(pad, pre)


def test_empty_pad_is_a_draw_a_digit_state_not_a_prediction(network):
    html = render_draw.empty_drawing_view(network)
    doc = Elements(html)
    assert doc.neurons() == []  # no activations shown for nothing
    assert doc.by_id("prediction")["data-digit"] == "" and doc.by_id("true-label")["data-digit"] == ""
    assert doc.by_id("input-image")["data-sample-index"] == ""
    assert "Draw a digit" in html
    for layer in network.layers:  # the layers are there, waiting
        assert f'id="layer-{layer.name}"' in html
    assert html.count("<span></span>") == sum(l.units for l in network.layers if not l.labels)
    empty = render_draw.inspector(np.zeros((280, 280, 4), np.uint8), None)
    assert 'id="model-input"' not in empty and "Nothing drawn yet" in empty


def test_model_facts_mention_augmentation_only_when_trained_with_it(manifest):
    plain = {**manifest, "training": {**manifest["training"], "augmentation": None}}
    assert "varied" not in render.model_facts(plain)
    augmented = {**manifest, "training": {**manifest["training"], "augmentation": {"copies": 2}}}
    assert "plus 2 drawing-like varied copies" in render.model_facts(augmented)


def test_pad_reading_names_the_predicted_digit(network, drawn_seven):
    _, pre = drawn_seven
    view = render.view_for_drawing(network, pre.centred)
    probs = plain_forward(network, pre.centred)[-1]
    assert render_draw.pad_reading(network, view) == f"reads <b>{int(np.argmax(probs))}</b> <small>{probs.max() * 100:.1f}%</small>"
    assert render_draw.pad_reading(network, None) == ""
