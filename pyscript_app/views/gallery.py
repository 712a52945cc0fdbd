"""What the first layer learned, at a glance: every first-layer neuron's incoming weights as a small image.

Pure numpy. One shared colour limit for the whole gallery (the 99th
percentile of |weight|), so the images can be compared with each other;
blue is negative, white 0, red positive, as in the neuron cards.
"""

from __future__ import annotations

import html

import numpy as np

from pyscript_app.views import render, render_inside

PERCENTILE = 99.0


def shared_limit(weights: np.ndarray) -> float:
    limit = float(np.percentile(np.abs(weights), PERCENTILE)) if weights.size else 0.0
    return limit if limit > 0 else 1.0


def images(network) -> tuple[list[np.ndarray], float]:
    """(one RGB uint8 image per first-layer neuron, the colour limit)."""
    layer = network.layers[0]
    limit = shared_limit(layer.weights)
    shape = network.image_shape
    rgb = render_inside.diverging_rgb(layer.weights.T.reshape(layer.units, *shape), limit)
    return list(rgb), limit


def gallery_html(network) -> str:
    """``#weight-gallery``: one button per first-layer neuron (``data-index``); a click opens its card."""
    layer = network.layers[0]
    pictures, limit = images(network)
    items = "".join(
        f'<button type="button" class="gthumb" data-action="open-neuron" data-layer="{html.escape(layer.name)}" '
        f'data-index="{i}" aria-label="{html.escape(layer.title)}, neuron {i}: its incoming weights">'
        f'<img src="{render.png_data_url(img)}" alt=""></button>'
        for i, img in enumerate(pictures)
    )
    return (
        f'<section class="panel gallery" aria-labelledby="gallery-title"><h2 id="gallery-title">What {html.escape(layer.title)} looks for</h2>'
        f'<p class="sub">Each image is one neuron&#39;s {layer.weights.shape[0]} incoming weights, laid out like the digit. '
        f'Red pixels excite it, blue ones hold it back.</p>'
        f'<div id="weight-gallery" data-layer="{html.escape(layer.name)}" data-limit="{render.fmt(limit)}">{items}</div>'
        f'{render_inside.diverging_legend(limit, "weight")}</section>'
    )
