"""The flow through the network for one digit: which connections to draw, and where.

Pure numpy. For every neuron, only its strongest incoming connections for
the current digit are drawn (by |source activation x weight|, the signal
the connection carries), so the picture shows what this digit sends where.
Lines stay in the gutters between the layers' panels: they start at the
sending panel's edge level with the sending neuron and end at the receiving
panel's edge level with the receiving neuron, so they never cross a value,
a heading or the digit. The page measures the boxes; this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pyscript_app.core import channels

Box = tuple  # (x, y, width, height) in the drawing's coordinates
INPUT = "input"  # the name of the pixels' "layer" in data-from
DEFAULT_PER_NEURON = 3  # lines into each neuron until the reader sets another number (see default_per_neuron)
MAX_PER_NEURON = 8
LINE_BUDGET = 256  # the default picture stays near this many lines, however many neurons the network has


@dataclass(frozen=True)
class Strongest:
    """The connections to draw, as arrays in drawing order (weakest first): for each one the
    receiving layer's position in network.layers (its sources are the stage before it), the
    sending and receiving neurons' indices, and the signal it carries."""

    stage: np.ndarray
    source: np.ndarray
    target: np.ndarray
    strength: np.ndarray

    def __len__(self) -> int:
        return int(self.stage.size)


class Link(NamedTuple):
    source: str  # layer name, or INPUT for a pixel
    source_index: int
    target: str
    target_index: int
    strength: float  # source activation x weight


def default_per_neuron(network) -> int:
    """Lines into each neuron until the reader sets another number: DEFAULT_PER_NEURON, or fewer
    (at least one) when that would draw more than LINE_BUDGET lines. Past a few hundred lines the
    picture is a tangle that says less, and each line costs a click time to draw. (A flatten
    layer is not drawn: nothing goes into it.)"""
    units = sum(layer.units for layer in network.layers if channels.is_drawn(layer))
    return max(1, min(DEFAULT_PER_NEURON, LINE_BUDGET // max(units, 1)))


def stage_inputs(network, x: np.ndarray, activations) -> list[np.ndarray]:
    """What each layer receives for one digit: the pixels' network input, then each layer's activations."""
    return [np.asarray(x, dtype=np.float32)] + [np.asarray(a, dtype=np.float32) for a in activations[:-1]]


def source_name(network, pos: int) -> str:
    """The name of what sends into layer ``pos``'s neurons: INPUT (the pixels) or a drawn layer's name
    (for a dense layer after a flatten, the image layer before the flatten: its channels)."""
    src = channels.source_position(network, pos)
    return INPUT if src < 0 else network.layers[src].name


def _dense_strongest(layer, inputs: np.ndarray, per_neuron: int):
    """(source, target, signal) of a dense layer reading a vector: each unit's ``per_neuron`` largest
    |input x weight|. A click computes this, so it stays in numpy: the k largest of each column in
    linear time on float32 sizes, then the few candidates ranked exactly in float64."""
    units = layer.units
    k = min(per_neuron, layer.weights.shape[0])
    live = np.flatnonzero(inputs)  # a source at 0 sends nothing: most of a digit's pixels, relu's silent units
    if k == 0 or live.size == 0:
        return None
    weights, sources = layer.weights[live], inputs[live]
    # Candidates by float32 size, neuron by neuron (contiguous rows: fast); two spare ones so that
    # values equal in float32 but not in float64 are ranked exactly below.
    spare = min(k + 2, live.size)
    if spare < live.size:
        rough = np.abs(np.multiply(weights.T, sources, order="C"))  # (units, live sources)
        candidates = np.argpartition(rough, live.size - spare, axis=1)[:, live.size - spare:]
    else:
        candidates = np.broadcast_to(np.arange(live.size), (units, live.size))
    k = min(k, live.size)
    rows = np.arange(units)[:, None]
    exact = sources[candidates].astype(np.float64) * weights[candidates, rows].astype(np.float64)
    best = np.argsort(-np.abs(exact), axis=1, kind="stable")[:, :k]
    return live[candidates[rows, best]].reshape(-1), np.repeat(np.arange(units), k), exact[rows, best].reshape(-1)


def _summed_strongest(network, pos: int, inputs: np.ndarray, per_neuron: int):
    """(source, target, signal) of a layer whose signals are sums over positions (channels.incoming):
    each unit's ``per_neuron`` largest |signal| (ties: the lower source first)."""
    signals = channels.incoming(network, pos, inputs)  # (sources, units)
    k = min(per_neuron, signals.shape[0])
    if k == 0:
        return None
    units = signals.shape[1]
    best = np.argsort(-np.abs(signals), axis=0, kind="stable")[:k].T  # (units, k)
    return best.reshape(-1), np.repeat(np.arange(units), k), signals[best, np.arange(units)[:, None]].reshape(-1)


def strongest(network, x: np.ndarray, activations, per_neuron: int) -> Strongest:
    """Each neuron's ``per_neuron`` strongest incoming connections for this digit, weakest first.

    A dense unit's connections carry source activation x weight. A channel's
    (conv2d, maxpool2d) and a dense unit's after a flatten are sums over
    positions (see channels.py): from each input channel (or, into a first
    conv2d layer, each input pixel) summed over the channel's map; from the
    same channel of the layer before into a maxpool2d channel; from each
    channel of the image before the flatten, summed over its positions.
    Connections that carry nothing (a source at 0, a knocked-out unit) are
    never drawn; nothing goes into a flatten layer (it is not drawn).
    """
    if per_neuron < 0:
        raise ValueError(f"per_neuron must be >= 0, got {per_neuron}")
    parts = []
    for pos, (layer, inputs) in enumerate(zip(network.layers, stage_inputs(network, x, activations))):
        if not channels.is_drawn(layer):
            continue
        plain = layer.kind == "dense" and channels.source_position(network, pos) == pos - 1
        chosen = _dense_strongest(layer, inputs, per_neuron) if plain else _summed_strongest(network, pos, inputs, per_neuron)
        if chosen is None:
            continue
        source, target, signal = chosen
        keep = signal != 0.0
        parts.append((np.full(int(keep.sum()), pos), source[keep], target[keep], signal[keep]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Strongest(empty, empty, empty, np.zeros(0))
    stage, source, target, strength = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((source, target, stage, np.abs(strength)))
    return Strongest(stage[order], source[order], target[order], strength[order])


def top_incoming(network, x: np.ndarray, activations, per_neuron: int) -> list[Link]:
    """strongest() as a list of Links (layer names, indices, signal), weakest first."""
    found = strongest(network, x, activations, per_neuron)
    names = [layer.name for layer in network.layers]
    sources = [source_name(network, pos) for pos in range(len(network.layers))]
    return [Link(sources[p], s, names[p], t, v) for p, s, t, v in
            zip(found.stage.tolist(), found.source.tolist(), found.target.tolist(), found.strength.tolist())]


def summed(network, pos: int) -> bool:
    """Whether the connections into layer ``pos`` carry sums over positions (into a channel, or into a
    dense unit from the channels before a flatten) rather than one activation x weight each."""
    return network.layers[pos].kind != "dense" or channels.source_position(network, pos) != pos - 1


def relative_strength(network, found: Strongest) -> np.ndarray:
    """Each line's |signal| over the largest one it is compared with, in [0, 1]: the strongest of all the
    activation x weight lines; for the sums over positions (see summed), the strongest into the same layer,
    since a sum over a map is on another scale than one product (and a map's size sets it)."""
    magnitude = np.abs(found.strength)
    group = np.array([pos if summed(network, pos) else -1 for pos in range(len(network.layers))])[found.stage] \
        if len(found) else np.zeros(0, dtype=np.int64)
    out = np.zeros(magnitude.shape)
    for g in np.unique(group).tolist():
        rows = group == g
        peak = float(magnitude[rows].max())
        out[rows] = magnitude[rows] / peak if peak > 0 else magnitude[rows]
    return out


def _stacked(src_panel: Box, dst_panel: Box) -> bool:
    """The receiving panel is below the sending one (a phone), not beside it."""
    sx, sy, sw, sh = src_panel
    dx, dy, dw, dh = dst_panel
    return dx < sx + sw - 1 and dy >= sy + sh - 1


def anchors(src_panel: Box, dst_panel: Box, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) of lines in the gutter between two panels, each level with its two neurons
    (``src`` and ``dst``: the neurons' boxes, one row each)."""
    src, dst = np.atleast_2d(np.asarray(src, dtype=np.float64)), np.atleast_2d(np.asarray(dst, dtype=np.float64))
    sx, sy, sw, sh = src_panel
    dx, dy, dw, dh = dst_panel
    n = src.shape[0]
    if _stacked(src_panel, dst_panel):
        return np.column_stack((src[:, 0] + src[:, 2] / 2, np.full(n, sy + sh), dst[:, 0] + dst[:, 2] / 2, np.full(n, dy)))
    return np.column_stack((np.full(n, sx + sw), src[:, 1] + src[:, 3] / 2, np.full(n, dx), dst[:, 1] + dst[:, 3] / 2))


def pixel_boxes(image_box: Box, index: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """The boxes of pixels ``index`` of the input image (row-major) on screen, one row each."""
    h, w = image_shape
    ix, iy, iw, ih = image_box
    n = index.size
    return np.column_stack((ix + (index % w) * iw / w, iy + (index // w) * ih / h, np.full(n, iw / w), np.full(n, ih / h)))


def svg(network, found: Strongest, panels: dict, neurons: dict, size: tuple, image_box: Box | None = None) -> str:
    """The lines, as one SVG over the view.

    ``found`` is what strongest() chose; ``panels`` maps each layer name
    (and INPUT) to its panel's box, ``neurons`` each layer name to its
    neurons' boxes in index order (an (n, 4) array or a list of boxes),
    ``image_box`` is the input image's box; all in the drawing's
    coordinates, ``size`` its (width, height). Colour = sign, thickness and
    opacity = the signal's size relative to the strongest comparable line
    drawn (see relative_strength).
    """
    names = [layer.name for layer in network.layers]
    sources = [source_name(network, pos) for pos in range(len(network.layers))]
    ends = np.zeros((len(found), 4))
    drawn = np.zeros(len(found), dtype=bool)
    for pos in range(len(network.layers)):
        source, target = sources[pos], names[pos]
        src_panel, dst_panel = panels.get(source), panels.get(target)
        if src_panel is None or dst_panel is None or target not in neurons:
            continue
        if source == INPUT and image_box is None or source != INPUT and source not in neurons:
            continue
        rows = np.flatnonzero(found.stage == pos)
        if source == INPUT:
            src = pixel_boxes(image_box, found.source[rows], network.image_shape)
        else:
            src = np.asarray(neurons[source], dtype=np.float64).reshape(-1, 4)[found.source[rows]]
        dst = np.asarray(neurons[target], dtype=np.float64).reshape(-1, 4)[found.target[rows]]
        ends[rows] = anchors(src_panel, dst_panel, src, dst)
        drawn[rows] = True
    m = relative_strength(network, found)
    parts = [
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{"pos" if s > 0 else "neg"}" '
        f'stroke-width="{0.6 + 3.4 * k:.2f}" stroke-opacity="{0.25 + 0.7 * k:.2f}" '
        f'data-from="{sources[p]}:{i}" data-to="{names[p]}:{j}" data-strength="{s!r}"></line>'
        for (x1, y1, x2, y2), p, i, j, s, k, d in zip(
            ends.tolist(), found.stage.tolist(), found.source.tolist(), found.target.tolist(),
            found.strength.tolist(), m.tolist(), drawn.tolist())
        if d
    ]
    width, height = size
    return (
        f'<svg class="connections" id="connections" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
    )
