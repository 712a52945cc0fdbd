"""pyscript_app.render_inside: the neuron card, connection lines, knock-outs and the error explorer.

The expected side reads the export's .npy files with np.load and computes
with plain numpy; the HTML is read back with an independent parser, and
PNGs with the hand decoder of test_render.py.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import SITE, pinned_to_default
from pyscript_app.views import render, render_inside as ri
from test_render import decode_png

import reference as ref

MODEL = SITE / "models" / "seed"


class Doc(HTMLParser):
    """Every element's tag and attributes, and the text inside each element with an id."""

    def __init__(self, text):
        super().__init__()
        self.items, self.text, self.open = [], {}, []
        self.feed(text)

    VOID = ("img", "input", "br")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.items.append((tag, attrs))
        if tag not in self.VOID:
            self.open.append(attrs.get("id"))
            if attrs.get("id"):
                self.text[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.open.pop()

    def handle_data(self, data):
        for ident in filter(None, self.open):
            self.text[ident] += data

    def by_id(self, ident):
        return next(a for _, a in self.items if a.get("id") == ident)

    def all(self, tag=None, cls=None):
        return [a for t, a in self.items if (tag is None or t == tag) and (cls is None or cls in (a.get("class") or "").split())]



# every model goes through the same functions in tests/test_any_model.py.
network, testset, manifest = pinned_to_default()

@pytest.fixture(scope="module")
def plain():
    manifest = json.loads((MODEL / "manifest.json").read_text())
    W = [np.load(MODEL / spec["weights"]["file"]) for spec in manifest["layers"]]
    b = [np.load(MODEL / spec["bias"]["file"]) for spec in manifest["layers"]]
    with np.load(SITE / "data" / "mnist_test.npz") as npz:
        images, labels = npz["images"], npz["labels"]
    layers = list(zip(W, b, [spec["activation"] for spec in manifest["layers"]]))
    return {"W": W, "b": b, "layers": layers, "images": images, "labels": labels, "manifest": manifest}


def plain_pass(plain, pixels, dead=None):
    """[(net input, activation)] per layer for one image by tests/reference.py's float64 pass;
    ``dead`` = {layer position: units} knocked out (their values 0, so the next layer gets nothing from them)."""
    x = pixels.reshape(1, -1).astype(np.float64) / 255.0
    return [(z[0], a[0]) for z, a in ref.forward(plain["layers"], x, dead, pre=True)]


# ---------------------------------------------------------------------------
# PNG and the diverging scale


def test_rgb_png_round_trip():
    rng = np.random.default_rng(5)
    for shape in ((28, 28, 3), (3, 7, 3), (1, 1, 3)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        url = render.png_data_url(img)
        np.testing.assert_array_equal(decode_png(url), img)
    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(render.png_data_url(grey)), grey)  # still greyscale
    with pytest.raises(ValueError, match="RGB"):
        render.png_data_url(np.zeros((4, 4, 4), dtype=np.uint8))


def test_diverging_scale_is_centred_symmetric_and_clipped():
    end_neg, mid, end_pos = ri.DIVERGING_STOPS[0][1], ri.DIVERGING_STOPS[3][1], ri.DIVERGING_STOPS[-1][1]
    assert ri.diverging_rgb(-2.0, 2.0).tolist() == list(end_neg)
    assert ri.diverging_rgb(0.0, 2.0).tolist() == list(mid) == [247, 247, 247]
    assert ri.diverging_rgb(2.0, 2.0).tolist() == list(end_pos)
    assert ri.diverging_rgb(50.0, 2.0).tolist() == list(end_pos) and ri.diverging_rgb(-50.0, 2.0).tolist() == list(end_neg)
    assert ri.diverging_hex(0.0, 1.0) == "#f7f7f7"
    values = np.linspace(-1, 1, 41)
    rgb = ri.diverging_rgb(values, 1.0).astype(int)
    assert rgb.shape == (41, 3) and rgb.dtype == int
    neg, pos = rgb[values < 0], rgb[values > 0]
    assert (neg[:, 2] > neg[:, 0]).all()  # negative: blue
    assert (pos[:, 0] > pos[:, 2]).all()  # positive: red
    light = rgb @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(light[:21]) > 0).all() and (np.diff(light[20:]) < 0).all()  # lightest at 0, darker with |value|
    with pytest.raises(ValueError):
        ri.diverging_rgb(1.0, 0.0)


def test_signed_uses_a_real_minus_sign():
    assert ri.signed(1.234) == "+1.23" and ri.signed(-1.234) == "\u22121.23" and ri.signed(0.0001) == "0.00"


# ---------------------------------------------------------------------------
# the neuron card


@pytest.mark.parametrize("index,unit", [(0, 3), (17, 30)])
def test_first_layer_card_shows_the_exported_weights_and_this_digit(network, testset, plain, index, unit):
    view = render.view_for_sample(network, testset, index, None, ("hidden_1", unit))
    doc = Doc(ri.neuron_card(network, testset, view, "hidden_1", unit))
    card = doc.by_id("neuron-card")
    assert (card["data-layer"], card["data-index"]) == ("hidden_1", str(unit))
    column = plain["W"][0][:, unit]
    weights_img = doc.by_id("card-weights")
    got = np.array(json.loads(weights_img["data-weights"]))
    assert got.shape == (784,)
    np.testing.assert_array_equal(got.astype(np.float32), column)  # exact
    # the image: 28x28 RGB, the strongest weight in the end colour of its sign, pixels row-major
    rgb = decode_png(weights_img["src"])
    assert rgb.shape == (28, 28, 3)
    k = int(np.argmax(np.abs(column)))
    end = ri.DIVERGING_STOPS[-1 if column[k] > 0 else 0][1]
    assert tuple(rgb[k // 28, k % 28]) == end
    # this digit times the weights
    x = plain["images"][index].reshape(-1).astype(np.float64) / 255.0
    contrib = np.array(json.loads(doc.by_id("card-pixel-contributions")["data-contributions"]))
    np.testing.assert_allclose(contrib, x * column, atol=1e-7)
    background = int(np.flatnonzero(x == 0)[0])
    assert tuple(decode_png(doc.by_id("card-pixel-contributions")["src"])[background // 28, background % 28]) == (247, 247, 247)
    # bias, net input, activation
    (z, a), *_ = plain_pass(plain, plain["images"][index])
    assert float(doc.by_id("card-bias")["data-value"]) == float(plain["b"][0][unit])
    assert float(doc.by_id("card-net-input")["data-value"]) == pytest.approx(z[unit], abs=1e-5)
    assert float(doc.by_id("card-activation")["data-value"]) == pytest.approx(a[unit], abs=1e-6)
    # the 9 test digits with the highest net input
    all_z = plain["images"].reshape(len(plain["images"]), -1).astype(np.float64) / 255.0 @ column + plain["b"][0][unit]
    expected = np.argsort(-all_z, kind="stable")[:9]
    assert [int(s) for s in doc.by_id("card-top")["data-samples"].split(",")] == expected.tolist()
    thumbs = doc.all("button", "thumb")
    assert [int(t["data-sample"]) for t in thumbs] == expected.tolist()
    assert all(t["data-action"] == "sample" for t in thumbs)
    # hidden: it can be knocked out; focusable card with a close button
    toggle = doc.by_id("knockout-toggle")
    assert toggle["aria-pressed"] == "false" and (toggle["data-layer"], toggle["data-index"]) == ("hidden_1", str(unit))
    assert card["tabindex"] == "-1" and doc.by_id("card-close")["data-action"] == "close-card"
    assert f"neuron {unit}" in doc.by_id("card-title")["aria-label"]


def test_second_layer_card_lists_sorted_contributions(network, testset, plain):
    unit, index = 5, 42
    view = render.view_for_sample(network, testset, index, None, ("hidden_2", unit))
    doc = Doc(ri.neuron_card(network, testset, view, "hidden_2", unit))
    column = plain["W"][1][:, unit]
    np.testing.assert_array_equal(np.array(json.loads(doc.by_id("card-weights")["data-weights"])).astype(np.float32), column)
    assert len(doc.all("rect")) == 32
    (_, a1), (z2, _), _ = plain_pass(plain, plain["images"][index])
    expected = a1 * column
    rows = doc.all("button", "contrib")
    assert len(rows) == 32
    values = [float(r["data-value"]) for r in rows]
    sources = [int(r["data-index"]) for r in rows]
    assert sorted(sources) == list(range(32))
    np.testing.assert_allclose(values, expected[sources], atol=1e-6)
    assert all(abs(p) >= abs(q) for p, q in zip(values, values[1:]))  # strongest first
    assert sum(values) + float(plain["b"][1][unit]) == pytest.approx(z2[unit], abs=1e-5)
    assert all(r["data-layer"] == "hidden_1" and r["data-action"] == "open-neuron" for r in rows)


def test_output_card_names_its_digit_and_cannot_be_knocked_out(network, testset, plain):
    view = render.view_for_sample(network, testset, 0, None, ("output", 7))
    html = ri.neuron_card(network, testset, view, "output", 7)
    doc = Doc(html)
    assert "stands for the digit" in html and "<b>7</b>" in html
    assert not [a for _, a in doc.items if a.get("id") == "knockout-toggle"]
    np.testing.assert_array_equal(np.array(json.loads(doc.by_id("card-weights")["data-weights"])).astype(np.float32), plain["W"][2][:, 7])
    probs = plain_pass(plain, plain["images"][0])[-1][1]
    assert float(doc.by_id("card-activation")["data-value"]) == pytest.approx(probs[7], abs=1e-6)


def test_card_of_a_knocked_out_neuron_and_of_its_listeners(network, testset, plain):
    ko = {"hidden_1": [3, 9]}
    view = render.view_for_sample(network, testset, 0, ko, ("hidden_1", 3))
    doc = Doc(ri.neuron_card(network, testset, view, "hidden_1", 3))
    assert doc.by_id("knockout-toggle")["aria-pressed"] == "true"
    assert float(doc.by_id("card-activation")["data-value"]) == 0.0
    # a second-layer neuron gets nothing from the knocked-out ones
    view = render.view_for_sample(network, testset, 0, ko, ("hidden_2", 0))
    rows = {int(r["data-index"]): r for r in Doc(ri.neuron_card(network, testset, view, "hidden_2", 0)).all("button", "contrib")}
    assert float(rows[3]["data-value"]) == 0.0 and "dead" in rows[3]["class"]
    (_, a1), *_ = plain_pass(plain, plain["images"][0])
    assert float(rows[4]["data-value"]) == pytest.approx(a1[4] * plain["W"][1][4, 0], abs=1e-6)


def test_knockout_summary(network):
    assert ri.knockout_summary(network, {}) == ""
    text = ri.knockout_summary(network, {"hidden_2": [9, 1], "hidden_1": [3]})
    assert text == "3 knocked out: Hidden layer 1 #3; Hidden layer 2 #1, #9"


# ---------------------------------------------------------------------------
# the error explorer


def plain_confusion(plain, dead=None):
    """The confusion matrix of tests/reference.py's pass in float32 (as the page's, so that near ties fall alike)."""
    x = plain["images"].reshape(len(plain["images"]), -1).astype(np.float32) / np.float32(255)
    z = ref.forward(plain["layers"], x, dead, pre=True, dtype=np.float32)[-1][0]
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (plain["labels"], z.argmax(axis=1)), 1)
    return cm


def test_confusion_table_has_one_named_cell_per_pair(network, plain):
    cm = plain_confusion(plain)
    doc = Doc(ri.confusion_html(network, cm, selected=(4, 9), compute_ms=12.5))
    table = doc.by_id("confusion-matrix")
    assert table["data-compute-ms"] == "12.500"
    cells = doc.all("button", "cell")
    assert len(cells) == 100
    for c in cells:
        t, p, n = int(c["data-true"]), int(c["data-predicted"]), int(c["data-count"])
        assert n == cm[t, p]
        assert c["aria-label"] == f"true {t}, predicted {p}: {n} digit{'' if n == 1 else 's'}"
        assert ("diag" in c["class"]) == (t == p)
    assert [c["tabindex"] for c in cells].count("0") == 1  # one tab stop; arrow keys move inside
    pressed = [c for c in cells if c["aria-pressed"] == "true"]
    assert [(c["data-true"], c["data-predicted"], c["tabindex"]) for c in pressed] == [("4", "9", "0")]


def test_accuracy_is_exact_and_knockouts_show_the_change(network, plain):
    cm = plain_confusion(plain)
    doc = Doc(ri.accuracy_html(network, cm, cm, {}))
    assert float(doc.by_id("accuracy")["data-value"]) == plain["manifest"]["training"]["test_accuracy"]
    assert not [a for _, a in doc.items if a.get("id") == "accuracy-change"]
    knocked = plain_confusion(plain, {0: [0, 1, 2, 3, 4, 5]})
    doc = Doc(ri.accuracy_html(network, knocked, cm, {"hidden_1": [0, 1, 2, 3, 4, 5]}))
    acc = np.trace(knocked) / 10_000
    assert float(doc.by_id("accuracy")["data-value"]) == acc
    assert float(doc.by_id("accuracy-change")["data-value"]) == pytest.approx(acc - np.trace(cm) / 10_000, abs=1e-12)
    assert "6 knocked out" in doc.text["accuracy-change"]


def test_cell_digits_are_capped_and_each_loads_its_digit(network, testset):
    members = np.arange(250) * 3
    doc = Doc(ri.cell_digits_html(network, testset, 4, 9, members, current=6))
    thumbs = doc.all("button", "cthumb")
    assert [int(t["data-sample"]) for t in thumbs] == (np.arange(100) * 3).tolist()
    assert re.search(r"Showing 100 of 250", doc.text["cell-note"])
    assert [t["data-sample"] for t in thumbs if t.get("aria-current") == "true"] == ["6"]
    box = doc.by_id("cell-digits")
    assert (box["data-true"], box["data-predicted"], box["data-count"]) == ("4", "9", "250")
    few = Doc(ri.cell_digits_html(network, testset, 1, 1, [5, 8], current=None))
    assert len(few.all("button", "cthumb")) == 2 and "cell-note" not in few.text
    assert "No test digit" in ri.cell_digits_html(network, testset, 2, 3, [], current=None)
