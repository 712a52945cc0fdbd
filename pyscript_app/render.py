"""What to draw: HTML fragments for the input, every layer, and the output.

Pure Python + numpy, no browser imports. The page sets these strings as
innerHTML; the build (tools/build_site.py) calls the very same functions to
pre-render the first view into index.html, so the page shows a real digit
with its real activations before Python has even started.

Everything about the layers (names, titles, sizes, grid shape, class labels)
comes from the network, i.e. from the manifest.
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

from .network import Layer, Network
from .preprocess import BOX, CENTRE, FIELD, area_resample

# Viridis at five stops: perceptually uniform and readable for colour-blind users.
# Activation 0 is dark purple, 1 is bright yellow.
SCALE_STOPS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))


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


def colour(value: float) -> tuple[int, int, int]:
    """The colour scale: value in [0, 1] -> RGB, linear between the viridis stops."""
    v = min(max(float(value), 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(SCALE_STOPS, SCALE_STOPS[1:]):
        if v <= p1:
            t = (v - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return SCALE_STOPS[-1][1]


def hex_colour(value: float) -> str:
    return "#%02x%02x%02x" % colour(value)


def text_colour(value: float) -> str:
    """Black on the light end of the scale, white on the dark end."""
    r, g, b = colour(value)
    return "#000" if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else "#fff"


LEVELS = 1023  # colour steps for the cells: finer than a screen can show


@functools.lru_cache(maxsize=None)
def _level_colours(level: int) -> tuple[str, str]:
    v = level / LEVELS
    return hex_colour(v), text_colour(v)


def cell_colours(value: float) -> tuple[str, str]:
    """(background, text colour) for an activation; cached per colour step (the click path)."""
    return _level_colours(round(min(max(value, 0.0), 1.0) * LEVELS))


def scale_gradient() -> str:
    return "linear-gradient(to right, " + ", ".join(f"{hex_colour(p)} {p * 100:.0f}%" for p, _ in SCALE_STOPS) + ")"


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


def neuron_label(layer: Layer, index: int, value: float) -> str:
    if layer.labels:
        return f"{layer.title}, digit {layer.labels[index]}: probability {value:.4f}"
    return f"{layer.title}, neuron {index}: activation {value:.4f}"


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


def hidden_neurons(layer: Layer, acts: np.ndarray, view: View) -> list:
    cells = []
    for i, a in enumerate(acts.tolist()):
        background, text = cell_colours(a)
        attrs = neuron_attrs(layer, i, a, view)
        attrs["style"] = f"background:{background};color:{text}"
        cells.append(("button", attrs, (("span", {}, f"{a:.2f}"),)))
    return cells


def output_neurons(layer: Layer, probs: np.ndarray, view: View) -> list:
    best = int(np.argmax(probs))
    rows = []
    for i, p in enumerate(probs.tolist()):
        rows.append(("button", neuron_attrs(layer, i, p, view), (
            ("span", {"class": "digit-label best" if i == best else "digit-label"}, layer.labels[i] if layer.labels else str(i)),
            ("span", {"class": "bar"}, (("span", {"style": f"width:{p * 100:.2f}%;background:{cell_colours(p)[0]}"}, ""),)),
            ("span", {"class": "prob"}, f"{p * 100:.1f}%"),
        )))
    return rows


def neurons(layer: Layer, acts: np.ndarray, view: View) -> tuple[str, list]:
    """(class of the layer's neuron container, the neuron trees): bars for a layer with class labels, else a grid."""
    return ("bars", output_neurons(layer, acts, view)) if layer.labels else ("grid", hidden_neurons(layer, acts, view))


def hidden_layer(layer: Layer, acts: np.ndarray, view: View) -> str:
    rows, cols = layer.grid["rows"], layer.grid["columns"]
    return (
        f'<section class="panel layer" id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} neurons &middot; {layer.activation} &middot; {rows}&times;{cols}</p>'
        f'<div class="grid" style="--rows:{rows};--cols:{cols}">{"".join(map(markup, hidden_neurons(layer, acts, view)))}</div></section>'
    )


def output_layer(layer: Layer, probs: np.ndarray, view: View) -> str:
    return (
        f'<section class="panel layer output" id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} classes &middot; {layer.activation}</p>'
        f'<div class="bars">{"".join(map(markup, output_neurons(layer, probs, view)))}</div></section>'
    )


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
        f'<h2 id="title-input">Input</h2><p class="sub">{caption}</p>{image}'
        f'<p class="verdict {vclass}" id="verdict"><span id="prediction" data-digit="{predicted}">'
        f'predicted <b>{label_of[predicted]}</b> <small>({confidence:.0%})</small></span> {truth} '
        f'<span class="mark">{verdict}</span></p></section>'
    )


def network_view(network: Network, view: View) -> str:
    """The whole view: input, every layer left to right, output."""
    parts = [input_panel(network, view)]
    for layer, acts in zip(network.layers, view.activations):
        parts.append(output_layer(layer, acts, view) if layer.labels else hidden_layer(layer, acts, view))
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


def legend() -> str:
    return (
        '<div class="legend" aria-label="Colour scale: activation 0 dark purple to 1 bright yellow">'
        '<span>activation</span><span class="scale"><span class="ramp" style="background:' + scale_gradient() + '"></span>'
        '<span class="ticks"><span>0</span><span>0.5</span><span>1</span></span></span></div>'
    )


def model_facts(manifest: dict) -> str:
    """A line about the model, straight from the manifest's training facts."""
    t = manifest["training"]
    sizes = " &rarr; ".join([str(manifest["input"]["size"])] + [f'{l["units"]} {l["activation"]}' for l in manifest["layers"]])
    acc = t.get("test_accuracy")
    bits = [sizes]
    if acc is not None:
        bits.append(f"test accuracy {acc:.2%} on {manifest['dataset']['count']:,} MNIST test digits")
    if t.get("epochs"):
        bits.append(f'trained {t["epochs"]} epochs, batch {t["batch_size"]}, seed {t["seed"]}')
    if t.get("augmentation"):
        bits.append(f'plus {t["augmentation"]["copies"]} drawing-like varied copies of the training digits')
    if t.get("keras_version"):
        bits.append(f'Keras {t["keras_version"]} / TensorFlow {t["tensorflow_version"]}')
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
        if layer.labels:
            cells = "".join(
                f'<span class="idle-row"><span class="digit-label">{html.escape(label)}</span><span class="bar"></span>'
                '<span class="prob">&ndash;</span></span>'
                for label in layer.labels
            )
            body, sub = f'<div class="bars idle">{cells}</div>', f"{layer.units} classes &middot; {layer.activation}"
        else:
            rows, cols = layer.grid["rows"], layer.grid["columns"]
            body = f'<div class="grid idle" style="--rows:{rows};--cols:{cols}">{"<span></span>" * layer.units}</div>'
            sub = f"{layer.units} neurons &middot; {layer.activation} &middot; waiting"
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
    return f'reads <b>{html.escape(network.class_labels[best])}</b> <small>{float(view.activations[-1][best]):.0%}</small>'
