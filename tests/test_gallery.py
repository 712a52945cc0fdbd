"""The weight gallery: one image per first-layer neuron, each the picture of that neuron's weight column."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import numpy as np

from pyscript_app.views import gallery


def decode_png(url: str) -> np.ndarray:
    """A PNG of filter-0 rows (what a plain encoder writes) -> uint8 (h, w, channels); written out here."""
    data = base64.b64decode(url.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, (w, h, channels) = 8, b"", (0, 0, 0)
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            channels = {0: 1, 2: 3}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[y * (1 + w * channels):(y + 1) * (1 + w * channels)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return np.frombuffer(b"".join(r[1:] for r in rows), np.uint8).reshape(h, w, channels)


def rank(v):
    return np.argsort(np.argsort(v, kind="stable"), kind="stable")


def test_one_image_per_neuron_showing_its_own_weights(network):
    markup = gallery.gallery_html(network)
    layer = network.layers[0]
    items = re.findall(r'data-index="(\d+)"[^>]*><img src="([^"]+)"', markup)
    assert [int(i) for i, _ in items] == list(range(layer.units))
    limit = float(re.search(r'id="weight-gallery"[^>]*data-limit="([^"]+)"', markup).group(1))
    for i, url in items:
        img = decode_png(url).astype(int)
        if layer.kind == "conv2d":  # a channel's kernel on the one grey input channel
            assert layer.weights.shape[2] == 1
            w = layer.weights[:, :, 0, int(i)]
        else:  # a neuron's weights, laid out like the digit
            w = layer.weights[:, int(i)].reshape(network.image_shape)
        assert img.shape[:2] == w.shape
        # blue negative, white 0, red positive: the further from 0 (up to the limit), the less green;
        # the sign shows as red above blue or blue above red
        green = img[..., 1].reshape(-1)
        for side in (w.reshape(-1) >= 0, w.reshape(-1) < 0):
            size = np.minimum(np.abs(w.reshape(-1)[side]), limit)
            order = np.argsort(size, kind="stable")
            assert np.all(np.diff(green[side][order]) <= 2), f"neuron {i}: the image is not its weights"
        strong_pos, strong_neg = w > limit * 0.3, w < -limit * 0.3
        assert (img[strong_pos][:, 0] > img[strong_pos][:, 2]).all()
        assert (img[strong_neg][:, 2] > img[strong_neg][:, 0]).all()
