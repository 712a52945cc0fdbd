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
