"""Where a feature map's pixel looks, and what it sums: its receptive field and its kernel's products.

Pure numpy. A pixel (row, column) of a conv2d or maxpool2d layer's map reads
a patch of the layer before it: a kernel-sized window (shifted by the
padding) for a convolution, a 2x2 block for max pooling. Followed back
through every layer to the input, that is a rectangle of input pixels, its
receptive field. Rows and columns beyond the image (a "same" convolution's
zero padding) hold nothing, so the rectangle is clipped to the image.
"""

from __future__ import annotations

import numpy as np


def _position(network, layer_name: str) -> int:
    for i, layer in enumerate(network.layers):
        if layer.name == layer_name:
            return i
    raise KeyError(f"no layer named {layer_name!r}")


def _window(layer, row: int, col: int) -> tuple[int, int, int, int]:
    """The rows and columns (top, left, bottom, right, inclusive; may reach into the padding) of the
    layer's input that its output pixel (row, col) reads."""
    if layer.kind == "conv2d":
        (kh, kw), (ph, pw) = layer.kernel, layer.pads
        return row - ph, col - pw, row - ph + kh - 1, col - pw + kw - 1
    if layer.kind == "maxpool2d":
        p = layer.POOL
        return row * p, col * p, row * p + p - 1, col * p + p - 1
    raise ValueError(f"{layer.name} is a {layer.kind} layer: only conv2d and maxpool2d layers have feature maps")


def field(network, layer_name: str, row: int, col: int) -> tuple[int, int, int, int]:
    """The receptive field of pixel (row, col) of layer ``layer_name``'s maps: (top, left, bottom, right)
    in input pixels, inclusive, clipped to the image."""
    pos = _position(network, layer_name)
    h, w = network.layers[pos].output_shape[:2]
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"{layer_name}: pixel ({row}, {col}) is outside its {h}x{w} map")
    top, left, bottom, right = row, col, row, col
    for layer in reversed(network.layers[: pos + 1]):
        t, l, _, _ = _window(layer, top, left)
        _, _, b, r = _window(layer, bottom, right)
        ih, iw = layer.input_shape[:2]
        top, left, bottom, right = max(t, 0), max(l, 0), min(b, ih - 1), min(r, iw - 1)
    return top, left, bottom, right


def layer_input(network, pos: int, x: np.ndarray, activations) -> np.ndarray:
    """What layer ``pos`` reads for one digit: the input image (h, w, 1) or the layer before's output."""
    if pos == 0:
        return np.asarray(x, dtype=np.float32).reshape(network.layers[0].input_shape)
    return np.asarray(activations[pos - 1]).reshape(network.layers[pos].input_shape)


def products(network, layer_name: str, channel: int, row: int, col: int, x: np.ndarray, activations) -> dict:
    """What pixel (row, col) of channel ``channel``'s map computes, for one digit (``x`` the normalised input,
    ``activations`` every layer's output for it, as Network.forward gives them).

    A conv2d pixel: ``patch`` (kh, kw, input channels) of what it reads (zeros in the padding),
    ``kernel`` (the same shape), ``products`` = patch * kernel, ``bias``, ``z`` = their sum + bias
    (in float64), ``value`` = the map's value shown. A maxpool2d pixel: ``block`` (2, 2) of channel
    ``channel`` of the layer before, ``winner`` (its row and column in the block), ``value``.
    """
    pos = _position(network, layer_name)
    layer = network.layers[pos]
    h, w, channels = layer.output_shape
    if not (0 <= channel < channels):
        raise ValueError(f"{layer_name} has {channels} channels, not {channel + 1}")
    top, left, bottom, right = _window(layer, row, col)
    source = layer_input(network, pos, x, activations)
    value = float(np.asarray(activations[pos])[row, col, channel])
    if layer.kind == "maxpool2d":
        block = np.asarray(source[top : bottom + 1, left : right + 1, channel], dtype=np.float64)
        r, c = divmod(int(np.argmax(block)), block.shape[1])
        return {"kind": layer.kind, "box": (top, left, bottom, right), "block": block, "winner": (r, c), "value": value}
    ih, iw, cin = layer.input_shape
    patch = np.zeros((bottom - top + 1, right - left + 1, cin))
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(bottom, ih - 1), min(right, iw - 1)
    patch[r0 - top : r1 - top + 1, c0 - left : c1 - left + 1] = source[r0 : r1 + 1, c0 : c1 + 1]
    kernel = np.asarray(layer.weights[:, :, :, channel], dtype=np.float64)
    prods = patch * kernel
    bias = float(layer.bias[channel])
    return {"kind": layer.kind, "box": (top, left, bottom, right), "patch": patch, "kernel": kernel,
            "products": prods, "bias": bias, "z": float(prods.sum() + bias), "value": value,
            "activation": layer.activation}


def peak_pixel(maps: np.ndarray, channel: int) -> tuple[int, int]:
    """(row, col) of the largest value of one channel's map (the first, reading row by row)."""
    m = np.asarray(maps)[:, :, channel]
    r, c = divmod(int(np.argmax(m)), m.shape[1])
    return r, c
