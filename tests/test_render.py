"""pyscript_app.views.render: what the page draws."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import SITE
from pyscript_app.core import network as nw
from pyscript_app.views import render


class Elements(HTMLParser):
    """Collect every element's tag and attributes (an independent reading of the HTML)."""

    def __init__(self, text):
        super().__init__()
        self.items = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, dict(attrs)))

    def by_id(self, ident):
        return next(a for t, a in self.items if a.get("id") == ident)

    def neurons(self):
        return [a for t, a in self.items if "neuron" in (a.get("class") or "").split()]


def decode_png(url):
    """Decode an 8-bit greyscale (h, w) or RGB (h, w, 3) PNG data URL by hand."""
    data = base64.b64decode(url.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", None, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (0, 2)
            channels = 3 if colour_type == 2 else 1
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    rows = [raw[r * stride : (r + 1) * stride] for r in range(height)]
    assert all(row[0] == 0 for row in rows)  # filter type None
    image = np.array([list(row[1:]) for row in rows], dtype=np.uint8)
    return image.reshape(height, width, 3) if channels == 3 else image


def test_png_round_trip(testset):
    for i in (0, 1, 9999):
        np.testing.assert_array_equal(decode_png(render.png_data_url(testset.images[i])), testset.images[i])


def test_colour_scale_ends_and_is_monotonic_in_brightness():
    assert render.hex_colour(0) == "#440154" and render.hex_colour(1) == "#fde725"
    assert render.hex_colour(-3) == render.hex_colour(0) and render.hex_colour(7) == render.hex_colour(1)
    lum = [sum(np.array(render.colour(v)) * (0.299, 0.587, 0.114)) for v in np.linspace(0, 1, 21)]
    assert all(b >= a for a, b in zip(lum, lum[1:]))
    assert render.text_colour(0) == "#fff" and render.text_colour(1) == "#000"


def test_view_has_one_element_per_neuron_with_exact_values(network, testset):
    view = render.view_for_sample(network, testset, 42)
    doc = Elements(render.network_view(network, view))
    neurons = doc.neurons()
    drawn = [layer for layer in network.layers if layer.kind != "flatten"]  # a flatten only reshapes
    assert [(n["data-layer"], int(n["data-index"])) for n in neurons] == [
        (layer.name, i) for layer in drawn for i in range(layer.units)
    ]
    expected = network.forward(network.normalize(testset.images[42]))
    # a dense unit shows its activation; a conv or pooling channel the maximum of its feature map
    flat = np.concatenate([a.max(axis=(0, 1)) if a.ndim == 3 else a
                           for layer, a in zip(network.layers, expected) if layer.kind != "flatten"])
    got = np.array([float(n["data-activation"]) for n in neurons])
    np.testing.assert_array_equal(got.astype(np.float32), flat)  # exact, not rounded
    img = doc.by_id("input-image")
    assert img["data-sample-index"] == "42"
    np.testing.assert_array_equal(decode_png(img["src"]), testset.images[42])
    assert doc.by_id("prediction")["data-digit"] == str(int(np.argmax(expected[-1])))
    assert doc.by_id("true-label")["data-digit"] == str(int(testset.labels[42]))


def test_each_hidden_layer_is_a_grid_derived_from_its_width(network, testset):
    html = render.network_view(network, render.view_for_sample(network, testset, 0))
    for layer in network.layers[:-1]:
        if layer.kind == "flatten":  # not drawn: it only reshapes the maps before it
            assert f'id="layer-{layer.name}"' not in html
            continue
        assert f'id="layer-{layer.name}"' in html
        rows, cols = (int(v) for v in re.search(rf'id="layer-{layer.name}".*?--rows:(\d+);--cols:(\d+)', html).groups())
        assert rows * cols >= layer.units > rows * (cols - 1)  # every unit has a cell, no empty column
    assert network.layers[0].title in html and network.layers[-1].title in html


@pytest.mark.parametrize("units", [1, 2, 10, 16, 17, 31, 32, 33, 64, 65, 100, 128, 129, 256, 300, 512])
def test_grids_hold_every_width_from_1_to_512_and_stay_small(units):
    g = render.grid_for(units)
    assert g.rows * g.columns >= units > g.rows * (g.columns - 1)
    assert g.rows * (g.cell + 3) <= 480  # the height of four laptop panels side by side
    assert g.columns * (max(g.cell, 26 * 1.7 if g.text else 0) + 3) <= 240
    if units == 32:
        assert (g.rows, g.columns, g.text) == (16, 2, True)


@pytest.mark.parametrize(
    "activation, stats, expected",
    [("sigmoid", None, ("viridis", 0.0, 1.0)), ("tanh", None, ("diverging", -1.0, 1.0)),
     ("relu", {"p99": 3.5, "max": 9.0}, ("viridis", 0.0, 3.5)), ("linear", {"p99": 2.0, "max": 4.0}, ("diverging", -2.0, 2.0)),
     ("softmax", None, ("viridis", 0.0, 1.0))],
)
def test_colour_scales_follow_the_activation_range(activation, stats, expected):
    layer = nw.Layer("h", "H", activation, np.zeros((2, 3), np.float32), np.zeros(3, np.float32), stats=stats)
    scale = render.scale_for(layer)
    assert (scale.kind, scale.low, scale.high) == expected
    # the ends of the scale get the ends of the ramp; beyond them, the same colour as the end
    assert render.cell_colours(expected[2], scale)[0] == render.hex_colour(1.0, scale.stops)
    assert render.cell_colours(expected[2] * 10, scale) == render.cell_colours(expected[2], scale)
    assert render.cell_colours(expected[1], scale)[0] == render.hex_colour(0.0, scale.stops)


def test_output_writes_probabilities_and_marks_the_best(network, testset):
    view = render.view_for_sample(network, testset, 3)
    html = render.output_layer(network.layers[-1], view.activations[-1], view)
    for p in view.activations[-1]:
        assert f"{p * 100:.1f}%" in html
    assert html.count("digit-label best") == 1


def test_wrong_prediction_is_marked_wrong(network, testset):
    pred = network.predict(network.normalize(testset.images))
    wrong = int(np.flatnonzero(pred != testset.labels)[0])
    html = render.input_panel(network, render.view_for_sample(network, testset, wrong))
    assert "wrong" in html and "verdict wrong" in html


def test_drawn_digit_has_no_label(network, testset):
    pixels = testset.images[5]
    view = render.View(pixels, network.forward(network.normalize(pixels)))
    doc = Elements(render.input_panel(network, view))
    assert doc.by_id("true-label")["data-digit"] == ""
    assert doc.by_id("input-image")["data-sample-index"] == ""


def test_knocked_out_and_selected_neurons_are_marked(network, testset):
    first, second = network.layers[0].name, network.layers[1].name
    pick = min(5, network.layers[1].units - 1)
    view = render.view_for_sample(network, testset, 0, knocked_out={first: [3]}, selected=(second, pick))
    doc = Elements(render.network_view(network, view))
    dead = [n for n in doc.neurons() if n.get("data-knocked-out") == "true"]
    assert [(n["data-layer"], n["data-index"]) for n in dead] == [(first, "3")]
    assert float(dead[0]["data-activation"]) == 0.0
    assert "knocked out" in dead[0]["aria-label"]
    chosen = [n for n in doc.neurons() if n.get("aria-pressed") == "true"]
    assert [(n["data-layer"], n["data-index"]) for n in chosen] == [(second, str(pick))]


def shown_size(entry: dict) -> str:
    """How the model's line names a layer: "32 sigmoid", "8@26×26 relu" (conv: channels@map size), "pool 13×13"."""
    if entry["kind"] == "conv2d":
        h, w, c = entry["output_shape"]
        return f'{c}@{h}\u00d7{w} {entry["activation"]}'
    if entry["kind"] == "maxpool2d":
        return "pool {}\u00d7{}".format(*entry["output_shape"][:2])
    return f'{entry["units"]} {entry["activation"]}'


def test_model_facts_come_from_the_manifest(manifest):
    text = render.model_facts(manifest)
    if "test_accuracy" in manifest["training"]:
        assert f"{manifest['training']['test_accuracy']:.2%}" in text
    sizes = [str(manifest["input"]["size"])] + [shown_size(l) for l in manifest["layers"] if l["kind"] != "flatten"]
    assert text.startswith(" &rarr; ".join(sizes))


def test_the_model_card_states_shape_activations_and_accuracy(manifest):
    doc = render.model_card(manifest["id"], manifest)
    assert f'data-model="{manifest["id"]}"' in doc and manifest["title"] in doc
    weighted = [l for l in manifest["layers"] if l["kind"] in ("dense", "conv2d")]  # pooling and flatten: no weights
    assert " \u2192 ".join([str(manifest["input"]["size"])] + [shown_size(l).split(" ")[0] for l in weighted]) in doc
    assert ", ".join(l["activation"] for l in weighted) in doc
    acc = manifest["training"].get("test_accuracy")
    assert (f"test accuracy {acc:.2%}" if acc is not None else "test accuracy not stated") in doc


def test_prerendered_first_view_is_the_live_forward_pass(seed_export):
    """site/index.html (written by `make site`) shows test digit 0 of the default model with its real activations."""
    network, testset = seed_export
    doc = Elements((SITE / "index.html").read_text())
    assert doc.by_id("input-image")["data-sample-index"] == "0"
    expected = np.concatenate(network.forward(network.normalize(testset.images[0])))
    got = np.array([float(n["data-activation"]) for n in doc.neurons()], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)


def test_prerendered_first_view_is_what_the_live_code_renders(seed_export):
    """index.html's view is render.network_view of test digit 0, byte for byte (the page then updates it in place)."""
    network, testset = seed_export
    assert render.network_view(network, render.view_for_sample(network, testset, 0)) in (SITE / "index.html").read_text()


def test_view_patch_describes_every_neuron_element_of_the_whole_render(network, testset):
    """The in-place update writes, for each layer, exactly the elements (tags, child counts, all
    attributes, text) that network_view draws inside the layer's grid or bars, in document order,
    but for the attributes its place sets, which it keeps (alike in every view: checked here against
    another digit's render); a map layer's `.fmaps` container first gets the attributes (its sprite)
    it has in the whole render."""
    first = network.layers[0]
    view = render.view_for_sample(network, testset, 77, knocked_out={first.name: [min(5, first.units - 1)]}, selected=("output", 3))
    whole = render.network_view(network, view)
    other = Elements(render.network_view(network, render.view_for_sample(network, testset, 3))).neurons()
    caption, image, verdict, *ops = json.loads(render.view_patch(network, view))
    # the input panel's changing parts, as the whole render has them (its notes are left as they are)
    doc = Elements(whole)
    assert caption == ["#input-caption", [["span", 0, doc.by_id("input-caption"), "MNIST test digit #77"]]]
    assert '<span id="input-caption">MNIST test digit #77</span>' in whole
    assert image == ["#input-image", [["img", 0, doc.by_id("input-image"), None]]]
    assert image[1][0][2]["data-sample-index"] == "77"
    assert verdict[0] == "#verdict" and verdict[1].startswith('<p class="verdict') and verdict[1] in whole
    drawn = [layer for layer in network.layers if layer.kind != "flatten"]
    layers = []
    for layer in drawn:
        container = "bars" if layer.is_output else "fmaps" if layer.kind in ("conv2d", "maxpool2d") else "grid"
        if container == "fmaps":
            selector, rows = ops.pop(0)
            assert selector == f"#layer-{layer.name} > .fmaps"
            opening = re.search(rf'id="layer-{layer.name}".*?(<div class="fmaps"[^>]*>)', whole).group(1)
            assert [(tag, attrs) for tag, _, attrs, _ in rows] == Elements(opening).items
            assert [children for _, children, _, _ in rows] == [layer.units] and rows[0][3] is None
        layers.append(ops.pop(0))
        selector, rows, kept = layers[-1]
        assert selector == f"#layer-{layer.name} > .{container} *"
        assert kept == ["type", "data-layer", "data-index", "tabindex"]
        inner = re.search(rf'id="layer-{layer.name}".*?<div class="{container}[^"]*"[^>]*>(.*?)</div></section>', whole).group(1)
        items = Elements(inner).items
        assert [(tag, attrs) for tag, _, attrs, _ in rows] == [(tag, without(attrs, kept)) for tag, attrs in items]
        assert "".join(text or "" for *_, text in rows) == re.sub(r"<[^>]+>", "", inner)
    assert ops == []
    neurons = [attrs for _, rows, _ in layers for _, _, attrs, _ in rows if "neuron" in attrs.get("class", "").split()]
    drawn = Elements(whole).neurons()
    # every other attribute, data-activation and aria-label included
    assert neurons == [without(attrs, kept) for attrs in drawn]
    # the kept ones are the same in another view: only the place sets them
    assert [only(attrs, kept) for attrs in drawn] == [only(attrs, kept) for attrs in other]
    assert all(attrs["data-index"] == str(i) and attrs["type"] == "button"
               for layer in drawn_names(network) for i, attrs in enumerate(a for a in drawn if a["data-layer"] == layer))


def without(attrs: dict, names) -> dict:
    return {k: v for k, v in attrs.items() if k not in names}


def only(attrs: dict, names) -> dict:
    return {k: v for k, v in attrs.items() if k in names}


def drawn_names(network) -> list[str]:
    return [layer.name for layer in network.layers if layer.kind != "flatten"]


def test_the_maps_patch_is_the_part_of_the_view_patch_that_draws_the_maps(network, testset):
    """The page writes a view's values at once (view_patch without maps) and its feature maps' pictures a
    frame later (maps_patch): the two together write what view_patch writes; a network without map
    layers has no maps patch."""
    view = render.view_for_sample(network, testset, 5)
    whole, values = json.loads(render.view_patch(network, view)), json.loads(render.view_patch(network, view, maps=False))
    maps = render.maps_patch(network, view)
    if not any(layer.kind in ("conv2d", "maxpool2d") for layer in network.layers):
        assert maps is None and values == whole
        return
    maps = json.loads(maps)
    assert [op for op in whole if op[0].endswith("> .fmaps")] == maps and len(maps) >= 1
    assert [op for op in whole if not op[0].endswith("> .fmaps")] == values


def test_no_style_rule_names_an_attribute_that_a_new_view_rewrites(network, testset):
    """The attributes that differ between two views' patches (a neuron's value, its label, its colour) are
    named by no selector of site/style.css: a rule such as `.neuron[data-activation]:hover` makes Chromium
    recompute the style of every neuron whose value a click changes (docs/benchmarks.md)."""
    def rows(index):
        ops = json.loads(render.view_patch(network, render.view_for_sample(network, testset, index), maps=False))
        return [row for op in ops if isinstance(op[1], list) for row in op[1]]

    changed = {name for a, b in zip(rows(0), rows(1), strict=True)
               for name in a[2].keys() | b[2].keys() if a[2].get(name) != b[2].get(name)}
    assert {"data-activation", "aria-label"} <= changed
    css = re.sub(r"/\*.*?\*/", "", (SITE / "style.css").read_text(), flags=re.S)
    named = set(re.findall(r"\[\s*([\w-]+)", css))
    assert named, "the stylesheet's attribute selectors were not found"
    assert not named & changed, f"style.css selects on {sorted(named & changed)}, which every new view rewrites"


def test_markup_escapes_attribute_values_and_text():
    tree = ("button", {"aria-label": 'a "b" & <c>'}, (("span", {}, "<1 & 2>"),))
    assert render.markup(tree) == '<button aria-label="a &quot;b&quot; &amp; &lt;c&gt;"><span>&lt;1 &amp; 2&gt;</span></button>'
    assert render.flatten([tree]) == [["button", 1, {"aria-label": 'a "b" & <c>'}, None], ["span", 0, {}, "<1 & 2>"]]


def css_percent(text):
    assert text.endswith("%"), text
    return float(text[:-1]) / 100


def shown_part(size, position, image):
    """The part of a background image an element shows, in image pixels along one axis: (first, count).

    ``size`` is CSS background-size and ``position`` background-position, both percentages of the
    element (CSS Backgrounds 3: a position p puts the image's point at p of its length on the
    element's point at p, i.e. offsets the image by p * (element - image))."""
    element = 1.0
    drawn = size * element  # the whole image's length on the page
    offset = position * (element - drawn)
    per_pixel = drawn / image
    return -offset / per_pixel, element / per_pixel


def test_a_feature_map_image_is_its_channel_on_the_layer_scale(network, testset):
    """Each conv or pooling layer's maps are one image (its .fmaps' background-image) of which each channel shows,
    through its background-size and -position, exactly its map coloured on the layer's scale."""
    images = [l for l in network.layers if len(l.output_shape) == 3]
    html = render.network_view(network, render.view_for_sample(network, testset, 5))
    assert html.count('class="fmap-img"') == sum(l.units for l in images)
    assert html.count("data:image/png") == 1 + len(images)  # the digit, and one image a map layer
    if not images:
        return
    maps = network.forward(network.normalize(testset.images[5]))
    for layer in images:
        pos = network.layers.index(layer)
        h, w, channels = layer.output_shape
        section = re.search(rf'<section[^>]*id="layer-{layer.name}"[^>]*data-kind="{layer.kind}"', html)
        assert section, layer.name
        url, size_x, size_y = re.search(
            rf'id="layer-{layer.name}".*?<div class="fmaps" style="background-image:url\(([^)]*)\);--sprite-size:(\S+) (\S+)">', html).groups()
        sprite = decode_png(url)
        tiles = re.findall(rf'data-layer="{layer.name}" data-index="(\d+)"[^>]*><span class="fmap-img" data-shape="(\d+),(\d+)" '
                           r'style="background-position:(\S+) (\S+)"', html)
        assert [int(i) for i, *_ in tiles] == list(range(channels))
        for c, shape_h, shape_w, pos_x, pos_y in tiles:
            assert (int(shape_h), int(shape_w)) == (h, w)
            (x, width), (y, height) = (shown_part(css_percent(size), css_percent(at), n)
                                       for size, at, n in ((size_x, pos_x, sprite.shape[1]), (size_y, pos_y, sprite.shape[0])))
            assert (width, height) == (pytest.approx(w, abs=1e-3), pytest.approx(h, abs=1e-3))
            assert (x, y) == (pytest.approx(round(x), abs=1e-3), pytest.approx(round(y), abs=1e-3))  # whole pixels
            x, y = round(x), round(y)
            scale = render.scale_of(network, layer)
            want = render.scale_rgb(maps[pos][:, :, int(c)], scale)
            np.testing.assert_array_equal(sprite[y:y + h, x:x + w], want)
            # and, value by value, the scale's colour of the map (the cells' scalar colouring; its rounding may differ by 1)
            scalar = [render.colour(scale.position(v), scale.stops) for v in maps[pos][:, :, int(c)].ravel().tolist()]
            np.testing.assert_allclose(sprite[y:y + h, x:x + w].reshape(-1, 3), np.array(scalar), atol=1)
            # the sprite is one row of tiles, whose pixels left and right of each repeat its edge:
            # a rounding at a map's edge shows no other map
            assert (y, sprite.shape[0]) == (0, h)
            around = sprite[:, max(x - 1, 0):x + w + 1]
            assert around.shape[1] == w + 2
            np.testing.assert_array_equal(around, np.pad(want, ((0, 0), (1, 1), (0, 0)), mode="edge"))
