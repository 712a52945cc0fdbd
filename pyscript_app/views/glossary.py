"""Plain-language notes on the terms the page uses, and a small curve of each activation.

Pure Python + numpy: the page places the notes (render modules call
:func:`note`), the tests read them here. Every note is short, correct and
says what the reader sees on this page. The activation notes come from
activations.py's registry, so a new activation needs a note here and
nowhere else.
"""

from __future__ import annotations

import html

import numpy as np

from pyscript_app.core import activations

TERMS: dict[str, tuple[str, str]] = {
    "input": (
        "Input pixels",
        "The digit is a {rows} × {cols} grey image: {size} numbers, 0 for the black background up to 255 for full ink. "
        "The network does not see a picture, only this list of numbers.",
    ),
    "normalization": (
        "Normalisation",
        "Before the first layer each pixel is scaled to a small number (here {formula}). "
        "Networks learn better from inputs of a similar, small size.",
    ),
    "weight": (
        "Weight",
        "Each connection has a weight, a number learned in training. A positive weight (red) makes the "
        "receiving neuron fire more when the sending one is active; a negative weight (blue) holds it back.",
    ),
    "bias": (
        "Bias",
        "Each neuron adds its own learned number, the bias, to what comes in. It sets how easily the neuron "
        "fires when its inputs are quiet.",
    ),
    "net_input": (
        "Net input",
        "A neuron's net input z is the sum of every input times its weight, plus the bias. "
        "The activation function then turns z into the neuron's output.",
    ),
    "activation": (
        "Activation",
        "What a neuron sends on: its activation function applied to its net input. "
        "The colour of each square on the page is this value.",
    ),
    "softmax": (
        "Softmax and probability",
        "The output layer turns its net inputs, one per class, into probabilities: each is e^z divided by the sum of all {classes}, "
        "so they are positive and add up to 100 %. The highest one is the network's answer.",
    ),
    "conv2d": (
        "Convolution and feature maps",
        "A convolutional layer slides each of its small kernels (a few learned weights per input channel) over the image "
        "before it. At every position it sums kernel times patch, adds its bias and applies its activation: one value of "
        "that channel's feature map. So a channel finds one pattern, wherever it is. Hover a map's pixel to see the patch "
        "of the digit it reads and the products it sums.",
    ),
    "maxpool2d": (
        "Max pooling",
        "A pooling layer keeps the largest value of each 2 × 2 block of every feature map: the map halves in each "
        "direction, and a pattern found anywhere in the block still counts.",
    ),
    "knockout": (
        "Knock-out",
        "Knocking a neuron out forces its activation to 0, as if it had been removed. "
        "Watch how the answer and the accuracy change: that is what the neuron was worth.",
    ),
    "confusion": (
        "Confusion matrix",
        "Rows are the true digits, columns what the network answered, for every one of the {samples} test digits. "
        "The diagonal is right; every other cell counts one kind of mistake. Click a cell to see its digits.",
    ),
}

ACTIVATION_NOTES: dict[str, str] = {
    "sigmoid": "Sigmoid squeezes any net input into 0 to 1: very negative z gives almost 0, very positive almost 1, z = 0 gives 0.5.",
    "tanh": "Tanh squeezes any net input into -1 to 1, like a sigmoid centred on 0: negative z gives a negative output.",
    "relu": "ReLU passes a positive net input on unchanged and turns a negative one into 0: max(0, z).",
    "linear": "Linear passes the net input on unchanged: the output is z itself.",
    }


TITLES = {"relu": "ReLU"}


def facts(manifest: dict, samples: int | None = None) -> dict:
    """The figures the notes quote, from the manifest (and the test set's size)."""
    rows, cols = manifest["input"]["image_shape"]
    return {
        "rows": rows, "cols": cols, "size": manifest["input"]["size"],
        "formula": manifest["input"].get("normalization", {}).get("formula", "a fixed scale"),
        "classes": len(manifest["classes"]) if "classes" in manifest else "the",
        "samples": f"{samples:,}" if samples else "",
    }


def term(key: str, figures: dict | None = None) -> tuple[str, str]:
    """(title, text) of a term, or of an activation by its registry name; ``figures`` from :func:`facts`."""
    if key in TERMS:
        title, text = TERMS[key]
    elif key in ACTIVATION_NOTES:
        title, text = TITLES.get(key, key.capitalize()), ACTIVATION_NOTES[key]
    else:
        raise KeyError(f"no note on {key!r}")
    return title, text.format(**figures) if figures else text


def note(key: str, figures: dict | None = None, extra: str = "") -> str:
    """A note on demand: a disclosure (keyboard and screen readers handle <details> natively)."""
    title, text = term(key, figures)
    return (
        f'<details class="term" data-term="{html.escape(key)}"><summary aria-label="What is this? {html.escape(title)}">'
        f'<span aria-hidden="true">?</span></summary><div class="term-body" role="note">'
        f"<b>{html.escape(title)}</b> {html.escape(text)}{extra}</div></details>"
    )


CURVE_W, CURVE_H = 120, 60


def curve_points(name: str, z_limit: float = 6.0, n: int = 61) -> tuple[np.ndarray, np.ndarray]:
    """Samples (z, a) of an activation's curve over [-z_limit, z_limit]."""
    z = np.linspace(-z_limit, z_limit, n)
    return z, activations.get(name).function(z)


def curve_svg(name: str, z: float | None = None, z_limit: float = 6.0) -> str:
    """A small plot of the activation, with a dot where the net input ``z`` falls (clipped to the plot)."""
    act = activations.get(name)
    if not act.hidden:
        raise ValueError(f"{name} acts on a whole layer: it has no curve of one input")
    zs, ys = curve_points(name, z_limit)
    low = act.low if act.low is not None else -z_limit
    high = act.high if act.high is not None else z_limit
    pad = 0.08 * (high - low)
    low, high = low - pad, high + pad

    def x_of(v):
        return (v + z_limit) / (2 * z_limit) * CURVE_W

    def y_of(v):
        return CURVE_H - (min(max(v, low), high) - low) / (high - low) * CURVE_H

    path = " ".join(f"{'M' if i == 0 else 'L'}{x_of(a):.1f},{y_of(b):.1f}" for i, (a, b) in enumerate(zip(zs, ys)))
    parts = [
        f'<svg class="curve" viewBox="0 0 {CURVE_W} {CURVE_H}" width="{CURVE_W}" height="{CURVE_H}" role="img" '
        f'aria-label="{html.escape(term(name)[0])} curve'
        + ("" if z is None else f", net input z = {z:.2f}, activation {float(act.function(np.array(z))):.2f}")
        + '">',
        f'<line class="axis" x1="0" y1="{y_of(0):.1f}" x2="{CURVE_W}" y2="{y_of(0):.1f}"/>',
        f'<line class="axis" x1="{x_of(0):.1f}" y1="0" x2="{x_of(0):.1f}" y2="{CURVE_H}"/>',
        f'<path d="{path}"/>',
    ]
    if z is not None:
        zc = min(max(float(z), -z_limit), z_limit)
        parts.append(f'<circle cx="{x_of(zc):.1f}" cy="{y_of(float(act.function(np.array(zc)))):.1f}" r="4" data-z="{float(z)!r}"/>')
    return "".join(parts) + "</svg>"
