"""What to draw: HTML fragments for the input, every layer, and the output.

Pure Python + numpy, no browser imports. The page sets these strings as
innerHTML; the build (tools/build_site.py) calls the very same functions to
pre-render the first view into index.html, so the page shows a real digit
with its real activations before Python has even started.

Everything about the layers (names, titles, sizes, activations, class
labels) comes from the network, i.e. from the manifest; each layer's grid is
derived from its width (:func:`grid_for`) and its colour scale from its
activation's range (:func:`scale_for`).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import activations as act
from . import glossary
from .network import Layer, Network
from .preprocess import BOX, CENTRE, FIELD, area_resample

# Viridis at five stops: perceptually uniform and readable for colour-blind users.
# The scale's low end is dark purple, its high end bright yellow.
SCALE_STOPS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))
# ColorBrewer RdBu, 7 classes (blue = negative, near-white 0, red = positive), at positions 0..1:
# for values with a sign centred on 0 (tanh and linear activations, weights, contributions).
DIVERGING_STOPS = (
    (0.0, (33, 102, 172)), (1 / 6, (103, 169, 207)), (1 / 3, (209, 229, 240)), (0.5, (247, 247, 247)),
    (2 / 3, (253, 219, 199)), (5 / 6, (239, 138, 98)), (1.0, (178, 24, 43)),
)


@dataclass
class View:
    """One thing shown: an input image and every layer's activations for it."""

    pixels: np.ndarray  # (28, 28) uint8, 0 = background
    activations: list  # one array per layer
    sample_index: int | None = None  # test digit index; None for a drawn digit
    true_label: int | None = None
    knocked_out: dict = field(default_factory=dict)  # layer name -> set of unit indices
    selected: tuple | None = None  # (layer name, index) of the open neuron card

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.activations[-1]))


def view_for_sample(network: Network, testset, index: int, knocked_out=None, selected=None) -> View:
    pixels = testset.images[index]
    acts = network.forward(network.normalize(pixels), knocked_out=knocked_out)
    return View(pixels, acts, index, int(testset.labels[index]), dict(knocked_out or {}), selected)


# ---------------------------------------------------------------------------
# colours


def colour(value: float, stops=SCALE_STOPS) -> tuple[int, int, int]:
    """A colour scale: value in [0, 1] -> RGB, linear between the stops (viridis by default)."""
    v = min(max(float(value), 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if v <= p1:
            t = (v - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return stops[-1][1]


def hex_colour(value: float, stops=SCALE_STOPS) -> str:
    return "#%02x%02x%02x" % colour(value, stops)


def luminance(rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def linear(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = map(linear, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(value: float, stops=SCALE_STOPS) -> str:
    """Black or white, whichever contrasts more with the cell's colour (WCAG contrast ratio)."""
    lum = luminance(colour(value, stops))
    return "#000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#fff"


LEVELS = 1023  # colour steps for the cells: finer than a screen can show


@dataclass(frozen=True)
class Scale:
    """How a layer's activations become colours: ``low`` .. ``high`` onto viridis or the diverging scale."""

    kind: str  # "viridis" or "diverging" (centred on 0)
    low: float
    high: float
    source: str = ""  # where the ends come from: "range" of the activation, or its test-set 99th percentile

    @property
    def stops(self):
        return DIVERGING_STOPS if self.kind == "diverging" else SCALE_STOPS

    def position(self, value: float) -> float:
        return min(max((float(value) - self.low) / (self.high - self.low), 0.0), 1.0)


VIRIDIS_01 = Scale("viridis", 0.0, 1.0, "range")


def scale_for(layer: Layer) -> Scale:
    """The colour scale of a layer: its activation's range, or (unbounded) the layer's stated top.

    [0, 1] activations (sigmoid, the output's softmax) use viridis on [0, 1];
    symmetric ones (tanh) the diverging scale on [-1, 1]; relu viridis on
    [0, p99] and linear the diverging scale on [-p99, p99], with p99 the
    layer's activation_stats (from the export, or computed over the test set
    by explain.fill_activation_stats). Values beyond the top get the top colour.
    """
    a = act.get(layer.activation)
    if a.bounded:
        return Scale("diverging" if a.symmetric else "viridis", float(a.low), float(a.high), "range")  # type: ignore[arg-type]
    stats = layer.stats or {}
    top = float(stats.get("p99") or 0.0) or float(stats.get("max") or 0.0)
    top = top if top > 0 else 1.0
    source = "p99" if stats else "default"
    if a.low is not None:
        return Scale("viridis", float(a.low), float(a.low) + top, source)
    return Scale("diverging", -top, top, source)


@functools.lru_cache(maxsize=None)
def _level_colours(level: int, diverging: bool = False) -> tuple[str, str]:
    v, stops = level / LEVELS, (DIVERGING_STOPS if diverging else SCALE_STOPS)
    return hex_colour(v, stops), text_colour(v, stops)


def cell_colours(value: float, scale: Scale = VIRIDIS_01) -> tuple[str, str]:
    """(background, text colour) for an activation on a scale; cached per colour step (the click path)."""
    return _level_colours(round(scale.position(value) * LEVELS), scale.kind == "diverging")


def scale_gradient(stops=SCALE_STOPS) -> str:
    return "linear-gradient(to right, " + ", ".join(f"{hex_colour(p, stops)} {p * 100:.0f}%" for p, _ in stops) + ")"


# ---------------------------------------------------------------------------
# grids: a layer's units laid out from its width alone

TEXT_CELL = 26  # px: a cell that shows its value
ROWS = 16  # rows of a layer up to 128 units (32 units: 16x2)


@dataclass(frozen=True)
class Grid:
    rows: int
    columns: int
    cell: int  # px, the cell's height (its width follows the column)
    text: bool  # whether the cells show their value


def grid_for(units: int) -> Grid:
    """Rows x columns for a layer of ``units`` (filled column by column).

    Up to 16 units: one column. Up to 64: 16 rows (32 units: 16x2), cells
    that show their value. Up to 128: 16 rows of smaller cells; up to 512:
    32 rows of small cells (16 columns at most). At most about 470 px high
    and 230 px wide, so four hidden layers fit beside the input and the
    output on a 1400 px screen; a phone lays each grid out transposed.
    """
    n = max(int(units), 1)
    if n <= ROWS:
        return Grid(n, 1, TEXT_CELL, True)
    if n <= 4 * ROWS:
        rows = math.ceil(n / 2) if n <= 2 * ROWS else ROWS
        return Grid(rows, math.ceil(n / rows), TEXT_CELL, True)
    if n <= 8 * ROWS:
        return Grid(ROWS, math.ceil(n / ROWS), 18, False)
    rows = 2 * ROWS
    return Grid(rows, math.ceil(n / rows), 11, False)


# ---------------------------------------------------------------------------
# images


def png_data_url(pixels: np.ndarray) -> str:
    """A PNG of a uint8 image as a data: URL (stdlib zlib only).

    (h, w) is greyscale (colour type 0); (h, w, 3) is RGB (colour type 2).
    """
    img = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = img.shape[:2]
    colour_type = 2 if img.ndim == 3 else 0
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"a PNG needs an (h, w) grey or (h, w, 3) RGB image, got shape {img.shape}")
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def digit_image(pixels: np.ndarray, element_id: str = "", alt: str = "", attrs: str = "", cls: str = "digit") -> str:
    """A 28x28 digit drawn white on black, scaled up with crisp pixels by CSS."""
    ident = f' id="{element_id}"' if element_id else ""
    return f'<img{ident} class="{cls}" src="{png_data_url(pixels)}" alt="{html.escape(alt)}"{attrs}>'


# ---------------------------------------------------------------------------
# layers


def fmt(value: float) -> str:
    """Full float precision (the float32 value exactly), for data- attributes."""
    return repr(float(value))


def percent(p: float) -> str:
    """A probability as the page writes it everywhere: 99.9%."""
    return f"{p * 100:.1f}%"


def neuron_label(layer: Layer, index: int, value: float) -> str:
    """The neuron's name and value, also its tooltip. It contains the text the neuron shows, so
    what is read out matches what is seen; the exact value follows in brackets."""
    if layer.is_output:
        return f"{layer.labels[index]} {percent(value)} · {layer.title}, digit {layer.labels[index]} (probability {value:.4f})"
    return f"{layer.title}, neuron {index}: {short(value)} (activation {value:.4f})"


def neuron_attrs(layer: Layer, index: int, value: float, view: View) -> dict[str, str]:
    dead = index in view.knocked_out.get(layer.name, ())
    selected = view.selected == (layer.name, index)
    label = neuron_label(layer, index, value) + (" (knocked out)" if dead else "")
    attrs = {
        "type": "button",
        "class": f'neuron{" knocked-out" if dead else ""}{" selected" if selected else ""}',
        "data-layer": layer.name, "data-index": str(index), "data-activation": fmt(value),
    }
    if dead:
        attrs["data-knocked-out"] = "true"
    if selected:
        attrs["aria-pressed"] = "true"
    if index:
        attrs["tabindex"] = "-1"  # one Tab stop per layer; the arrow keys move within it (navigate.py)
    attrs["aria-label"] = label  # also the tooltip (style.css shows it on hover and focus): no title, no second tooltip
    return attrs


# A neuron is a small element tree, (tag, attributes, text or child elements). The same trees
# give the HTML (markup: the pre-rendered first view, a whole re-render) and the in-place update
# of a view already on the page (view_patch), so both always draw the same.


def markup(element: tuple) -> str:
    tag, attrs, content = element
    inner = html.escape(content, quote=False) if isinstance(content, str) else "".join(map(markup, content))
    return "<" + tag + "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items()) + f">{inner}</{tag}>"


def flatten(elements, rows: list | None = None) -> list:
    """Every element of the trees in document order: [tag, child element count, attributes, text or None]."""
    rows = [] if rows is None else rows
    for tag, attrs, content in elements:
        text = isinstance(content, str)
        rows.append([tag, 0 if text else len(content), attrs, content if text else None])
        if not text:
            flatten(content, rows)
    return rows


def short(value: float) -> str:
    """A value in at most 4 characters for inside a cell: 0.52, -0.5, 12.3, 140."""
    a = abs(value)
    if a < 9.995:
        return f"{value:.2f}" if value >= 0 else f"{value:.1f}"
    return f"{value:.1f}" if a < 99.95 else f"{value:.0f}"


def hidden_neurons(layer: Layer, acts: np.ndarray, view: View) -> list:
    scale = scale_for(layer)
    text = grid_for(layer.units).text
    cells = []
    for i, a in enumerate(acts.tolist()):
        background, ink = cell_colours(a, scale)
        attrs = neuron_attrs(layer, i, a, view)
        attrs["style"] = f"background:{background};color:{ink}"
        cells.append(("button", attrs, (("span", {}, short(a) if text else ""),)))
    return cells


def output_neurons(layer: Layer, probs: np.ndarray, view: View) -> list:
    best = int(np.argmax(probs))
    rows = []
    for i, p in enumerate(probs.tolist()):
        rows.append(("button", neuron_attrs(layer, i, p, view), (
            ("span", {"class": "digit-label best" if i == best else "digit-label"}, layer.labels[i]),
            ("span", {"class": "bar"}, (("span", {"style": f"width:{p * 100:.2f}%;background:{cell_colours(p)[0]}"}, ""),)),
            ("span", {"class": "prob"}, " " + percent(p)),  # (the space: read out as "7 99.9%", not "799.9%")
        )))
    return rows


def neurons(layer: Layer, acts: np.ndarray, view: View) -> tuple[str, list]:
    """(class of the layer's neuron container, the neuron trees): bars for a layer with class labels, else a grid."""
    return ("bars", output_neurons(layer, acts, view)) if layer.is_output else ("grid", hidden_neurons(layer, acts, view))


def grid_attrs(layer: Layer) -> str:
    g = grid_for(layer.units)
    return f'class="grid{"" if g.text else " dense"}" style="--rows:{g.rows};--cols:{g.columns};--cell:{g.cell}px"'


def hidden_layer(layer: Layer, acts: np.ndarray, view: View) -> str:
    g = grid_for(layer.units)
    return (
        f'<section class="panel layer" id="layer-{layer.name}" aria-labelledby="title-{layer.name}" data-units="{layer.units}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} neurons &middot; {html.escape(layer.activation)} &middot; {g.rows}&times;{g.columns} '
        f'{glossary.note(layer.activation, extra=glossary.curve_svg(layer.activation))}</p>'
        f'<div {grid_attrs(layer)}>{"".join(map(markup, hidden_neurons(layer, acts, view)))}</div></section>'
    )


def output_layer(layer: Layer, probs: np.ndarray, view: View) -> str:
    return (
        f'<section class="panel layer output" id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} classes &middot; {html.escape(layer.activation)} {glossary.note("softmax")}</p>'
        f'<div class="bars">{"".join(map(markup, output_neurons(layer, probs, view)))}</div></section>'
    )


def _input_notes(network: Network) -> str:
    figures = glossary.facts(network.manifest)
    return glossary.note("input", figures) + glossary.note("normalization", figures)


def input_panel(network: Network, view: View) -> str:
    predicted = view.predicted
    label_of = network.class_labels
    if view.sample_index is not None:
        caption = f"MNIST test digit #{view.sample_index}"
        alt = f"Test digit number {view.sample_index}, labelled {view.true_label}"
        image = digit_image(view.pixels, "input-image", alt, f' data-sample-index="{view.sample_index}"')
    else:
        caption = "Your drawing, as the network sees it"
        alt = "Your drawing, preprocessed to 28 by 28 pixels"
        image = digit_image(view.pixels, "input-image", alt, ' data-sample-index=""')
    if view.true_label is None:
        truth, verdict, vclass = '<span id="true-label" data-digit="">label: none (drawn)</span>', "", ""
    else:
        right = predicted == view.true_label
        truth = f'<span id="true-label" data-digit="{view.true_label}">label <b>{label_of[view.true_label]}</b></span>'
        verdict = "&#10003; right" if right else "&#10007; wrong"
        vclass = "right" if right else "wrong"
    confidence = float(view.activations[-1][predicted])
    return (
        '<section class="panel input" id="input-panel" aria-labelledby="title-input">'
        f'<h2 id="title-input">Input</h2><p class="sub">{caption} {_input_notes(network)}</p>{image}'
        f'<p class="verdict {vclass}" id="verdict"><span id="prediction" data-digit="{predicted}">'
        f'predicted <b>{label_of[predicted]}</b> <small>({percent(confidence)})</small></span> {truth} '
        f'<span class="mark">{verdict}</span></p></section>'
    )


def network_view(network: Network, view: View) -> str:
    """The whole view: input, every layer left to right, output."""
    parts = [input_panel(network, view)]
    for layer, acts in zip(network.layers, view.activations):
        parts.append(output_layer(layer, acts, view) if layer.is_output else hidden_layer(layer, acts, view))
    return "".join(parts)


def view_patch(network: Network, view: View) -> str:
    """The same view as :func:`network_view`, as an update of a view already on the page.

    JSON for the page's ``nnvApplyPatch`` (site/patch.js), one call instead of a few hundred
    (each call from Python into the page costs): the input panel is replaced, and every
    element of each layer's neurons gets the attributes and text of its tree above, so nothing
    of the previous view stays. It applies only to a view of the same shape (the page checks
    every element's tag and child count first, and otherwise re-renders).
    """
    ops = [["#input-panel", input_panel(network, view)]]
    for layer, acts in zip(network.layers, view.activations):
        container, trees = neurons(layer, acts, view)
        ops.append([f"#layer-{layer.name} > .{container} *", flatten(trees)])
    return json.dumps(ops, separators=(",", ":"), check_circular=False)  # trees, no cycles: a little quicker


def tick(value: float) -> str:
    """A scale's end or middle in at most three significant digits: 0, 0.5, 1, 2.44, -4.41."""
    return f"{value:.3g}"


def scale_key(layer: Layer) -> str:
    """One layer's colour key: its name, the ramp in use and the values at its ends and middle."""
    sc = scale_for(layer)
    mid = (sc.low + sc.high) / 2
    low, high = tick(sc.low), tick(sc.high)
    where = {"p99": " (top: 99th percentile over the test set)", "default": ""}.get(sc.source, "")
    colours = "blue to white to red" if sc.kind == "diverging" else "dark purple to bright yellow"
    label = f"{layer.title} ({layer.activation}): {low} to {high}, {colours}{where}"
    return (
        f'<span class="scale-key" data-layer="{layer.name}" data-scale="{sc.kind}" data-low="{fmt(sc.low)}" '
        f'data-high="{fmt(sc.high)}" role="img" aria-label="{html.escape(label)}">'
        f'<span class="scale-name">{html.escape(layer.title)} &middot; {html.escape(layer.activation)}</span>'
        f'<span class="scale"><span class="ramp" style="background:{scale_gradient(sc.stops)}"></span>'
        f'<span class="ticks"><span>{low}</span><span>{tick(mid)}</span><span>{high}{"+" if sc.source != "range" else ""}</span></span></span></span>'
    )


def legend(network: Network) -> str:
    """The colour keys of every hidden layer (each its own scale) and of the output's probabilities."""
    keys = "".join(scale_key(layer) for layer in network.hidden_layers)
    return f'<div class="legend" id="legend"><span>activation</span>{keys}</div>'


def model_shape(manifest: dict) -> str:
    """784 &rarr; 32 sigmoid &rarr; ... &rarr; 10 softmax."""
    return " &rarr; ".join(
        [str(manifest["input"]["size"])] + [f'{l["units"]} {html.escape(str(l["activation"]))}' for l in manifest["layers"]]
    )


def model_facts(manifest: dict) -> str:
    """A line about the model, straight from the manifest's training facts."""
    t = manifest.get("training") or {}
    acc = t.get("test_accuracy")
    bits = [model_shape(manifest)]
    if acc is not None:
        count = (manifest.get("dataset") or {}).get("count")
        bits.append(f"test accuracy {acc:.2%}" + (f" on {count:,} test digits" if count else ""))
    if t.get("epochs"):
        bits.append(html.escape(f'trained {t["epochs"]} epochs, batch {t.get("batch_size", "?")}, seed {t.get("seed", "?")}'))
    if isinstance(t.get("augmentation"), dict) and t["augmentation"].get("copies"):
        bits.append(f'plus {t["augmentation"]["copies"]} drawing-like varied copies of the training digits')
    if t.get("keras_version"):
        bits.append(html.escape(f'Keras {t["keras_version"]} / TensorFlow {t.get("tensorflow_version", "?")}'))
    return " &middot; ".join(bits)


# ---------------------------------------------------------------------------
# a drawn digit (the "Draw" mode): its view, the preprocessing inspector, the empty state

THUMB = 112  # longest side, in image pixels, of the inspector's pad and crop thumbnails (2x their CSS size)


def view_for_drawing(network: Network, pixels: np.ndarray, knocked_out=None, selected=None) -> View:
    """A drawn digit's view: ``pixels`` is the preprocessed 28x28 uint8 model input."""
    acts = network.forward(network.normalize(pixels), knocked_out=knocked_out)
    return View(np.asarray(pixels, dtype=np.uint8), acts, None, None, dict(knocked_out or {}), selected)


def pixels_json(pixels: np.ndarray) -> str:
    """The image's grey levels as a JSON array of ints, row by row (784 for 28x28)."""
    return "[" + ",".join(map(str, np.asarray(pixels, dtype=np.uint8).ravel().tolist())) + "]"


def pad_thumbnail(pre, pad_shape: tuple[int, int], size: int = THUMB) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The pad as ``preprocess`` saw it (its crop on blank paper), area-averaged to at most ``size`` px.

    Only the crop is resampled (the rest of the pad is paper), so this costs
    about as much as the crop, not the whole pad. Returns the thumbnail and
    the crop's pixel box in it (top, left, bottom, right; bottom/right exclusive).
    """
    h, w = pad_shape[:2]
    top, left, bottom, right = pre.bbox
    scale = min(1.0, size / max(h, w))
    rows, cols = math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9)
    small = area_resample(pre.crop.astype(np.float64), scale, rows, top * scale)
    small = area_resample(np.ascontiguousarray(small.T), scale, cols, left * scale).T
    box = (math.floor(top * scale), math.floor(left * scale), math.ceil(bottom * scale - 1e-9), math.ceil(right * scale - 1e-9))
    return np.rint(np.clip(small, 0, 255)).astype(np.uint8), box


def percent_box(box: tuple[int, int, int, int], shape: tuple[int, int]) -> str:
    """CSS placing a box (top, left, bottom, right; bottom/right exclusive) over an image of ``shape``, in %."""
    top, left, bottom, right = box
    h, w = shape[:2]
    return (
        f"top:{100 * top / h:.3f}%;left:{100 * left / w:.3f}%;"
        f"height:{100 * (bottom - top) / h:.3f}%;width:{100 * (right - left) / w:.3f}%"
    )


def _step(number: int, title: str, image: str, note: str, overlay: str = "") -> str:
    return (
        f'<li class="step"><span class="frame">{image}{overlay}</span>'
        f'<span class="step-title">{number}. {title}</span><span class="step-note">{note}</span></li>'
    )


def inspector(pad: np.ndarray, pre, normalization: dict | None = None) -> str:
    """The preprocessing, step by step: pad -> crop -> 20x20 -> centred 28x28 (``#model-input``).

    ``pad`` is what the page read from the canvas ((H, W, 4) RGBA or (H, W) ink),
    ``pre`` what :func:`preprocess.preprocess` made of it (``None``: an empty pad).
    """
    if pre is None:
        return (
            '<p class="inspector-empty" id="inspector-empty">Nothing drawn yet. Draw a digit: '
            "the four steps that turn it into the network's 28&times;28 input appear here.</p>"
        )
    h, w = np.shape(pad)[:2]
    top, left, bottom, right = pre.bbox
    thumb, (t0, l0, b0, r0) = pad_thumbnail(pre, (h, w))
    rows, cols = np.flatnonzero(pre.resized.any(axis=1)), np.flatnonzero(pre.resized.any(axis=0))
    com_r, com_c = pre.centre_of_mass
    formula = (normalization or {}).get("formula", "x = pixel / 255")
    model_title = (
        f"The {FIELD}x{FIELD} image the network receives: grey levels 0..255 (0 = background), "
        f"listed in data-pixels; the network then normalises them ({formula})."
    )
    dot = f'<span class="mark com" style="top:{100 * (com_r + 0.5) / BOX:.2f}%;left:{100 * (com_c + 0.5) / BOX:.2f}%"></span>'
    cross = f'<span class="mark centre" style="top:{100 * (CENTRE + 0.5) / FIELD:.2f}%;left:{100 * (CENTRE + 0.5) / FIELD:.2f}%"></span>'
    steps = [
        _step(1, "pad", digit_image(thumb, alt="the pad, scaled down", cls="step-img smooth"),
              f"{w}&times;{h}", f'<span class="box" style="{percent_box(pre.bbox, (h, w))}"></span>'),
        _step(2, "crop", digit_image(thumb[t0:b0, l0:r0], alt="the ink, cropped", cls="step-img smooth"),
              f"{right - left}&times;{bottom - top}"),
        _step(3, "20&times;20", digit_image(pre.resized, alt="the crop, longer side resized to 20 pixels", cls="step-img"),
              f"{cols.size}&times;{rows.size}", dot),
        _step(4, "28&times;28", digit_image(pre.centred, "model-input", "the 28 by 28 model input",
                                         f' data-pixels="{pixels_json(pre.centred)}" title="{html.escape(model_title)}"', cls="step-img"),
              "model input", cross),
    ]
    return (
        f'<ol class="steps" aria-label="How your drawing becomes the network\'s input">{"".join(steps)}</ol>'
        '<p class="steps-how">Crop to the ink (dashed box), shrink the longer side to 20 px by area averaging, '
        'then shift it so its centre of mass (<span class="key-com"></span>) lands on the middle of the '
        '28&times;28 field (+), as MNIST did.</p>'
    )


def empty_drawing_view(network: Network) -> str:
    """The view for an empty pad: no prediction, the layers waiting (no ``.neuron`` elements)."""
    blank = np.zeros(network.image_shape, dtype=np.uint8)
    image = digit_image(blank, "input-image", "Nothing drawn yet", ' data-sample-index=""')
    parts = [
        '<section class="panel input drawing" id="input-panel" aria-labelledby="title-input">'
        f'<h2 id="title-input">Input</h2><p class="sub">Nothing drawn yet</p>{image}'
        '<p class="verdict" id="verdict"><span id="prediction" data-digit="">Draw a digit on the pad</span> '
        '<span id="true-label" data-digit=""></span></p></section>'
    ]
    for layer in network.layers:
        if layer.is_output:
            cells = "".join(
                f'<span class="idle-row"><span class="digit-label">{html.escape(label)}</span><span class="bar"></span>'
                '<span class="prob">&ndash;</span></span>'
                for label in layer.labels
            )
            body, sub = f'<div class="bars idle">{cells}</div>', f"{layer.units} classes &middot; {layer.activation}"
        else:
            body = f'<div {grid_attrs(layer).replace(chr(34) + "grid", chr(34) + "grid idle", 1)}>{"<span></span>" * layer.units}</div>'
            sub = f"{layer.units} neurons &middot; {html.escape(layer.activation)} &middot; waiting"
        parts.append(
            f'<section class="panel layer idle" id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
            f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2><p class="sub">{sub}</p>{body}</section>'
        )
    return "".join(parts)


def pad_reading(network: Network, view: View | None) -> str:
    """The network's reading, short, for beside the pad (on a phone the output layer is a scroll away)."""
    if view is None:
        return ""
    best = view.predicted
    return f'reads <b>{html.escape(network.class_labels[best])}</b> <small>{percent(float(view.activations[-1][best]))}</small>'


# ---------------------------------------------------------------------------
# the models: the picker and the card of the model shown


def model_summary(manifest: dict) -> dict:
    """What a model's card says: title, shape, activations, test accuracy (from its manifest alone)."""
    layers = manifest["layers"]
    acc = (manifest.get("training") or {}).get("test_accuracy")
    return {
        "title": manifest.get("title") or manifest.get("id") or "Network",
        "description": manifest.get("description") or "",
        "shape": " \u2192 ".join([str(manifest["input"]["size"])] + [str(l["units"]) for l in layers]),
        "activations": ", ".join(str(l["activation"]) for l in layers),
        "accuracy": None if acc is None else float(acc),
        "hidden": len(layers) - 1,
    }


def model_option_text(manifest: dict, user: bool = False) -> str:
    s = model_summary(manifest)
    return ("Your model: " if user else "") + s["title"]


def model_picker(entries, current: str) -> str:
    """The <option>s of #model-picker: ``entries`` is [(id, manifest or None, is the user's own)]."""
    options = []
    for model_id, manifest, user in entries:
        text = model_option_text(manifest, user) if manifest else model_id
        chosen = " selected" if model_id == current else ""
        options.append(f'<option value="{html.escape(model_id)}"{chosen}>{html.escape(text)}</option>')
    return "".join(options)


def model_card(model_id: str, manifest: dict, user: bool = False) -> str:
    """The card of the model shown: its title, shape, activations and test accuracy."""
    s = model_summary(manifest)
    acc = "not stated" if s["accuracy"] is None else f"{s['accuracy']:.2%}"
    layers = "hidden layer" if s["hidden"] == 1 else "hidden layers"
    return (
        f'<div id="model-card" class="model-card" data-model="{html.escape(model_id)}"'
        f'{" data-user=" + chr(34) + "true" + chr(34) if user else ""}>'
        f'<b class="model-title">{html.escape(("Your model: " if user else "") + s["title"])}</b> '
        f'<span class="model-shape" title="layer widths, input to output">{html.escape(s["shape"])}</span> '
        f'<span class="model-acts">{s["hidden"]} {layers} &middot; {html.escape(s["activations"])}</span> '
        f'<span class="model-acc" data-value="{"" if s["accuracy"] is None else fmt(s["accuracy"])}">test accuracy {acc}</span>'
        + (f'<span class="model-desc">{html.escape(s["description"])}</span>' if s["description"] else "")
        + "</div>"
    )
