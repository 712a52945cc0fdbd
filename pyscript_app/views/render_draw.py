"""What draw mode shows beside the pad: the preprocessing inspector, the empty view, the short reading.

Pure Python + numpy, no browser imports, like render.py (whose helpers it uses).
"""

from __future__ import annotations

import html
import math

import numpy as np

from pyscript_app.core.network import Network
from pyscript_app.views import render
from pyscript_app.core.preprocess import BOX, CENTRE, FIELD, area_resample
from pyscript_app.core.view import View

THUMB = 112  # longest side, in image pixels, of the inspector's pad and crop thumbnails (2x their CSS size)


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
        _step(1, "pad", render.digit_image(thumb, alt="the pad, scaled down", cls="step-img smooth"),
              f"{w}&times;{h}", f'<span class="box" style="{percent_box(pre.bbox, (h, w))}"></span>'),
        _step(2, "crop", render.digit_image(thumb[t0:b0, l0:r0], alt="the ink, cropped", cls="step-img smooth"),
              f"{right - left}&times;{bottom - top}"),
        _step(3, "20&times;20", render.digit_image(pre.resized, alt="the crop, longer side resized to 20 pixels", cls="step-img"),
              f"{cols.size}&times;{rows.size}", dot),
        _step(4, "28&times;28", render.digit_image(pre.centred, "model-input", "the 28 by 28 model input",
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
    image = render.digit_image(blank, "input-image", "Nothing drawn yet", ' data-sample-index=""')
    parts = [
        '<section class="panel input drawing" id="input-panel" aria-labelledby="title-input">'
        f'<h2 id="title-input">Input</h2><p class="sub">Nothing drawn yet</p>{image}'
        '<p class="verdict" id="verdict"><span id="prediction" data-digit="">Draw a digit on the pad</span> '
        '<span id="true-label" data-digit=""></span></p></section>'
    ]
    for _, layer in render.drawn_layers(network):
        panel = 'class="panel layer idle"'
        if layer.is_output:
            cells = "".join(
                f'<span class="idle-row"><span class="digit-label">{html.escape(label)}</span><span class="bar"></span>'
                '<span class="prob">&ndash;</span></span>'
                for label in layer.labels
            )
            body, sub = f'<div class="bars idle">{cells}</div>', f"{layer.units} classes &middot; {layer.activation}"
        elif render.is_image(layer):
            h, w, c = layer.output_shape
            rows, cols, px = render.map_grid(h, w, c)
            body = f'<div class="fmaps idle">{"<span></span>" * c}</div>'
            sub = f"{c} channels &middot; {h}&times;{w} &middot; waiting"
            # sized as the panel of its maps (site/style.css .panel.maps), so that the view fits alike
            panel = f'class="panel layer idle maps" style="--rows:{rows};--cols:{cols};--px:{px}px"'
        else:
            body = f'<div {render.grid_attrs(layer).replace(chr(34) + "grid", chr(34) + "grid idle", 1)}>{"<span></span>" * layer.units}</div>'
            sub = f"{layer.units} neurons &middot; {html.escape(layer.activation)} &middot; waiting"
        parts.append(
            f'<section {panel} id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
            f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2><p class="sub">{sub}</p>{body}</section>'
        )
    return "".join(parts)


def pad_reading(network: Network, view: View | None) -> str:
    """The network's reading, short, for beside the pad (on a phone the output layer is a scroll away)."""
    if view is None:
        return ""
    best = view.predicted
    return f'reads <b>{html.escape(network.class_labels[best])}</b> <small>{render.percent(float(view.activations[-1][best]))}</small>'
