"""An independent float64 forward pass for the tests: the .npy files read with np.load, the maths written out.

It shares no code with pyscript_app: each activation is written here again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FUNCTIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "linear": lambda z: z,
}


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def load(model_dir: Path):
    """(manifest, [(W float64, b float64, activation)]) of an export folder."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    layers = [
        (np.load(model_dir / s["weights"]["file"]).astype(np.float64),
         np.load(model_dir / s["bias"]["file"]).astype(np.float64), s["activation"])
        for s in manifest["layers"]
    ]
    return manifest, layers


def forward(layers, x, dead=None, pre=False, dtype=np.float64, rounded=None):
    """Every layer's activations for x (n, inputs); ``dead``: {layer position: [units]} set to 0 (which is what
    zeroing their outgoing weights gives the next layer).

    With ``pre=True``: [(net input, activation)] per layer. The sums are done in
    ``dtype`` (float64; float32 follows a float32 pass to the last bit); with
    ``rounded`` (say float32) each layer's activations are rounded to it before
    the next layer reads them, as an exported network shows them.
    """
    a = np.asarray(x, dtype=dtype)
    out = []
    for pos, (w, b, activation) in enumerate(layers):
        z = np.asarray(a, dtype=dtype) @ np.asarray(w, dtype=dtype) + np.asarray(b, dtype=dtype)
        with np.errstate(over="ignore"):  # sigmoid of a very negative net input: exp overflows, the result is 0
            a = softmax(z) if activation == "softmax" else FUNCTIONS[activation](z)
        if rounded is not None:
            a = a.astype(rounded)
        if dead and pos in dead:
            a = a.copy()
            a[..., list(dead[pos])] = 0.0
        out.append((z, a) if pre else a)
    return out


def cross_entropy(layers, x, labels):
    """Mean cross-entropy of the softmax output for integer ``labels`` (log-softmax of the output's net input)."""
    z = forward(layers, x, pre=True)[-1][0]
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


def plain_forward(manifest, model_dir, x):
    """Every layer's activations of the export in model_dir for x (n, inputs)."""
    return forward(load(model_dir)[1], x)


def conv2d(x, kernel, bias, padding):
    """A plain loop convolution (stride 1) of x (n, h, w, c) by kernel (kh, kw, c, f), float64."""
    x = np.asarray(x, dtype=np.float64)
    kh, kw, _, f = kernel.shape
    if padding == "same":
        x = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, f))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i : i + kh, j : j + kw, :]
            for k in range(f):
                out[:, i, j, k] = (patch * kernel[:, :, :, k]).sum(axis=(1, 2, 3)) + bias[k]
    return out


def maxpool2d(x):
    """The largest of each 2x2 block, per channel (a last odd row or column left out)."""
    n, h, w, c = x.shape
    out = np.zeros((n, h // 2, w // 2, c))
    for i in range(h // 2):
        for j in range(w // 2):
            out[:, i, j, :] = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, :].max(axis=(1, 2))
    return out


# -- any export (dense, conv2d, maxpool2d, flatten), layer by layer in plain loops ------------------


def load_layers(model_dir: Path):
    """(manifest, [(layer's manifest entry, W float64 or None, b float64 or None)]) of any export folder."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    out = []
    for spec in manifest["layers"]:
        arrays = [np.load(model_dir / spec[part]["file"]).astype(np.float64) if part in spec else None
                  for part in ("weights", "bias")]
        out.append((spec, *arrays))
    return manifest, out


def forward_layers(layers, x, dead=None, rounded=None):
    """Every layer's activations for x (n, inputs) of load_layers' layers: each one shaped as the export
    says ((n, h, w, c) for conv2d / maxpool2d, (n, units) otherwise). ``dead``: {layer name: units (channels:
    the last axis)} set to 0; ``rounded`` (say float32): each layer's output rounded to it, as the page shows it."""
    a = np.asarray(x, dtype=np.float64)
    out = []
    for spec, w, b in layers:
        kind = spec.get("kind", "dense")
        if kind == "conv2d":
            a = FUNCTIONS[spec["activation"]](conv2d(a.reshape(-1, *spec["input_shape"]), w, b, spec["padding"]))
        elif kind == "maxpool2d":
            a = maxpool2d(a.reshape(-1, *spec["input_shape"]))
        elif kind == "flatten":
            a = a.reshape(a.shape[0], -1)
        else:
            z = a.reshape(a.shape[0], -1) @ w + b
            with np.errstate(over="ignore"):
                a = softmax(z) if spec["activation"] == "softmax" else FUNCTIONS[spec["activation"]](z)
        if rounded is not None:
            a = a.astype(rounded).astype(np.float64)
        if dead and spec["name"] in dead:
            a = a.copy()
            a[..., list(dead[spec["name"]])] = 0.0
        out.append(a)
    return out


def conv2d_sent(x, kernel, padding):
    """(h, w, c, f): what each value of one image x (h, w, c) sends into each filter of a stride-1 conv,
    summed over every output position whose window covers it (value x every kernel weight it meets)."""
    x = np.asarray(x, dtype=np.float64)
    kh, kw, c, f = kernel.shape
    h, w, _ = x.shape
    top, left = ((kh - 1) // 2, (kw - 1) // 2) if padding == "same" else (0, 0)
    oh, ow = (h, w) if padding == "same" else (h - kh + 1, w - kw + 1)
    sent = np.zeros((h, w, c, f))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    i, j = oy + ky - top, ox + kx - left
                    if 0 <= i < h and 0 <= j < w:
                        for k in range(c):
                            for out in range(f):
                                sent[i, j, k, out] += x[i, j, k] * kernel[ky, kx, k, out]
    return sent


def maxpool2d_sent(x):
    """(h, w, c): each value of one image x (h, w, c) that its 2x2 block passes on (the first of equal
    largest ones, row by row), 0 elsewhere (and in a left-out odd last row or column)."""
    x = np.asarray(x, dtype=np.float64)
    h, w, c = x.shape
    sent = np.zeros_like(x)
    for i in range(h // 2):
        for j in range(w // 2):
            for k in range(c):
                block = [(2 * i + di, 2 * j + dj) for di in range(2) for dj in range(2)]
                best = max(block, key=lambda p: (x[p[0], p[1], k], -block.index(p)))
                sent[best[0], best[1], k] = x[best[0], best[1], k]
    return sent


def incoming_signals(layers, pos, x_in):
    """(sources, units): what each source sends into each unit of layer ``pos`` (load_layers' layers) for
    one input ``x_in`` (what the layer reads, any shape). Sources: the values the layer reads, except that
    the channels of an image (a conv2d / maxpool2d output, a flatten between skipped) are summed over
    their positions. A conv2d / maxpool2d unit is a channel, its signals summed over its map."""
    spec, w, b = layers[pos]
    kind = spec.get("kind", "dense")
    src = pos - 1
    while src >= 0 and layers[src][0].get("kind") == "flatten":
        src -= 1
    image_source = src >= 0 and layers[src][0].get("kind") in ("conv2d", "maxpool2d")
    if kind == "conv2d":
        sent = conv2d_sent(np.reshape(x_in, spec["input_shape"]), w, spec["padding"])  # h, w, c, f
    elif kind == "maxpool2d":
        image = np.reshape(x_in, spec["input_shape"]).astype(np.float64)
        passed = maxpool2d_sent(image)
        c = image.shape[2]
        sent = np.zeros((*image.shape, c))
        for k in range(c):
            sent[:, :, k, k] = passed[:, :, k]
    else:
        flat = np.reshape(x_in, -1).astype(np.float64)
        sent = np.zeros(w.shape)
        for i in range(w.shape[0]):
            sent[i] = flat[i] * w[i]
        if image_source:
            sent = sent.reshape(*layers[src][0]["output_shape"], -1)
    if image_source:
        return sent.sum(axis=(0, 1))  # per channel
    return sent.reshape(-1, sent.shape[-1])


def load_chain(model_dir: Path):
    """(manifest, layers) of any export, convolutional ones too: one dict a layer with its "kind", "name",
    "activation", "W" and "b" (float64; None for maxpool2d and flatten) and "padding" (conv2d)."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    layers = []
    for s in manifest["layers"]:
        kind = s.get("kind", "dense")
        params = {part: np.load(model_dir / s[part]["file"]).astype(np.float64) if part in s else None
                  for part in ("weights", "bias")}
        layers.append({"kind": kind, "name": s["name"], "activation": s.get("activation"), "W": params["weights"],
                       "b": params["bias"], "padding": s.get("padding"), "input_shape": s.get("input_shape")})
    return manifest, layers


def forward_chain(layers, x, dead=None, pre=False, rounded=None, peaks=False, maps=False, block=1000):
    """Every layer's output for x (n, pixels) through a chain of load_chain's layers, by the plain loops above.

    ``dead``: {layer position: [units]} set to 0 (a conv2d / maxpool2d unit is a channel: its whole map).
    ``rounded``: each layer's output rounded to it (float32: as the page shows them) before the next reads it.
    An image layer (conv2d, maxpool2d) gives its maps (n, h, w, channels); with ``peaks`` instead each
    digit's per-channel map maximum (n, channels), computed ``block`` digits at a time so the maps of the
    whole test set are never held; ``maps`` with ``peaks``: also {position: the maps in float32} (a second
    return value). With ``pre``: (net input, output) per layer; for an image layer with ``peaks``
    (its peaks before its own knock-out, after it), for a maxpool2d or flatten layer without (None, output).
    """
    x = np.asarray(x)
    if peaks and len(x) > block:
        parts = [forward_chain(layers, x[i : i + block], dead, pre, rounded, peaks, maps, block)
                 for i in range(0, len(x), block)]
        outs = [p[0] for p in parts] if maps else parts
        joined = []
        for pos in range(len(layers)):
            items = [o[pos] for o in outs]
            if pre:
                joined.append(tuple(None if items[0][k] is None else np.concatenate([it[k] for it in items])
                                    for k in (0, 1)))
            else:
                joined.append(np.concatenate(items))
        if maps:
            return joined, {pos: np.concatenate([p[1][pos] for p in parts]) for pos in parts[0][1]}
        return joined
    a = np.asarray(x, dtype=np.float64)
    out, kept = [], {}
    for pos, layer in enumerate(layers):
        kind = layer["kind"]
        z = None
        if kind == "conv2d":
            a = a.reshape(len(a), *layer["input_shape"])
            z = conv2d(a, layer["W"], layer["b"], layer["padding"])
            a = FUNCTIONS[layer["activation"]](z)
        elif kind == "maxpool2d":
            a = maxpool2d(a.reshape(len(a), *layer["input_shape"]))
        elif kind == "flatten":
            a = a.reshape(len(a), -1)
        else:
            z = a.reshape(len(a), -1) @ layer["W"] + layer["b"]
            with np.errstate(over="ignore"):
                a = softmax(z) if layer["activation"] == "softmax" else FUNCTIONS[layer["activation"]](z)
        if rounded is not None:
            a = a.astype(rounded)
        image = a.ndim == 4
        before = a.max(axis=(1, 2)) if image and peaks else None
        if maps and image:
            kept[pos] = a.astype(np.float32)
        if dead and pos in dead:
            a = a.copy()
            a[..., list(dead[pos])] = 0.0
        shown = a.max(axis=(1, 2)) if image and peaks else a
        if pre:
            out.append((before, shown) if image and peaks else (z, shown))
        else:
            out.append(shown)
        a = a.astype(np.float64) if rounded is None else a
    return (out, kept) if maps else out


def receptive_box(layers, pos, row, col):
    """(top, left, bottom, right) of the input pixels that output pixel (row, col) of image layer ``pos``
    of load_layers' layers depends on: a mask of pixels carried back layer by layer in plain loops."""
    spec = layers[pos][0]
    mask = np.zeros(spec["output_shape"][:2], dtype=bool)
    mask[row, col] = True
    for spec, w, _ in reversed(layers[: pos + 1]):
        h, wd = spec["input_shape"][:2]
        before = np.zeros((h, wd), dtype=bool)
        for i, j in zip(*np.nonzero(mask)):
            if spec["kind"] == "conv2d":
                kh, kw = w.shape[:2]
                ph, pw = ((kh - 1) // 2, (kw - 1) // 2) if spec["padding"] == "same" else (0, 0)
                for a in range(i - ph, i - ph + kh):
                    for b in range(j - pw, j - pw + kw):
                        if 0 <= a < h and 0 <= b < wd:
                            before[a, b] = True
            else:  # maxpool2d
                before[2 * i : 2 * i + 2, 2 * j : 2 * j + 2] = True
        mask = before
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())
