"""What the first layer learned, at a glance: every first-layer neuron's incoming weights as a small image.

For a convolutional first layer, each channel's kernel (its weights on the input pixels) instead.

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


def weight_images(layer, image_shape) -> np.ndarray:
    """(units, height, width) float: a dense first layer's weights laid out like the digit; a conv
    layer's kernels on the input (summed over its input channels: one for a grey digit)."""
    if layer.kind == "conv2d":
        return np.asarray(layer.weights).sum(axis=2).transpose(2, 0, 1)
    return np.asarray(layer.weights).T.reshape(layer.units, *image_shape)


def images(network) -> tuple[list[np.ndarray], float]:
    """(one RGB uint8 image per first-layer neuron or channel, the colour limit)."""
    layer = network.layers[0]
    weights = weight_images(layer, network.image_shape)
    limit = shared_limit(weights)
    return list(render_inside.diverging_rgb(weights, limit)), limit


def gallery_html(network) -> str:
    """``#weight-gallery``: one button per first-layer neuron (``data-index``); a click opens its card."""
    layer = network.layers[0]
    pictures, limit = images(network)
    unit = "channel" if layer.kind == "conv2d" else "neuron"
    items = "".join(
        f'<button type="button" class="gthumb" data-action="open-neuron" data-layer="{html.escape(layer.name)}" '
        f'data-index="{i}" aria-label="{html.escape(layer.title)}, {unit} {i}: its incoming weights">'
        f'<img src="{render.png_data_url(img)}" alt=""></button>'
        for i, img in enumerate(pictures)
    )
    if layer.kind == "conv2d":
        k = layer.kernel[0]
        what = (f"Each image is one channel&#39;s {k}&times;{k} kernel: the weights it slides over the digit. "
                f"Red pixels excite it, blue ones hold it back, wherever in the digit they fall.")
    else:
        what = (f"Each image is one neuron&#39;s {layer.weights.shape[0]} incoming weights, laid out like the digit. "
                f"Red pixels excite it, blue ones hold it back.")
    return (
        f'<section class="panel gallery" aria-labelledby="gallery-title"><h2 id="gallery-title">What {html.escape(layer.title)} looks for</h2>'
        f'<p class="sub">{what}</p>'
        f'<div id="weight-gallery" data-layer="{html.escape(layer.name)}" data-limit="{render.fmt(limit)}">{items}</div>'
        f'{render_inside.diverging_legend(limit, "weight")}</section>'
    )
