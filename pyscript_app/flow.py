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

import numpy as np

Box = tuple  # (x, y, width, height) in the drawing's coordinates
INPUT = "input"  # the name of the pixels' "layer" in data-from
DEFAULT_PER_NEURON = 3  # lines into each neuron until the reader sets another number
MAX_PER_NEURON = 8


@dataclass(frozen=True)
class Link:
    source: str  # layer name, or INPUT for a pixel
    source_index: int
    target: str
    target_index: int
    strength: float  # source activation x weight


def stage_inputs(network, x: np.ndarray, activations) -> list[np.ndarray]:
    """What each layer receives for one digit: the pixels' network input, then each layer's activations."""
    return [np.asarray(x, dtype=np.float32)] + [np.asarray(a, dtype=np.float32) for a in activations[:-1]]


def top_incoming(network, x: np.ndarray, activations, per_neuron: int) -> list[Link]:
    """Each neuron's ``per_neuron`` strongest incoming connections for this digit.

    Connections that carry nothing (a source at 0, a knocked-out unit) are
    never drawn. Returned weakest first, so the strongest are drawn on top.
    """
    if per_neuron < 0:
        raise ValueError(f"per_neuron must be >= 0, got {per_neuron}")
    links = []
    names = [INPUT] + [layer.name for layer in network.layers]
    for pos, (layer, inputs) in enumerate(zip(network.layers, stage_inputs(network, x, activations))):
        strengths = inputs[:, None].astype(np.float64) * layer.weights.astype(np.float64)  # (fan_in, units)
        k = min(per_neuron, strengths.shape[0])
        if k == 0:
            continue
        magnitude = np.abs(strengths)
        # the k largest of each column in linear time (a click computes this), then only those sorted
        top = np.argpartition(-magnitude, k - 1, axis=0)[:k] if k < magnitude.shape[0] else np.indices(magnitude.shape)[0]
        for j in range(strengths.shape[1]):
            for src in top[:, j].tolist():
                s = float(strengths[src, j])
                if s != 0.0:
                    links.append(Link(names[pos], int(src), layer.name, j, s))
    links.sort(key=lambda link: (abs(link.strength), link.target, link.target_index, link.source_index))
    return links


def _stacked(src_panel: Box, dst_panel: Box) -> bool:
    """The receiving panel is below the sending one (a phone), not beside it."""
    sx, sy, sw, sh = src_panel
    dx, dy, dw, dh = dst_panel
    return dx < sx + sw - 1 and dy >= sy + sh - 1


def anchors(src_panel: Box, dst_panel: Box, src_box: Box, dst_box: Box) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of a line in the gutter between two panels, level with its two neurons."""
    sx, sy, sw, sh = src_panel
    dx, dy, dw, dh = dst_panel
    if _stacked(src_panel, dst_panel):
        return (src_box[0] + src_box[2] / 2, sy + sh, dst_box[0] + dst_box[2] / 2, dy)
    return (sx + sw, src_box[1] + src_box[3] / 2, dx, dst_box[1] + dst_box[3] / 2)


def pixel_box(image_box: Box, index: int, image_shape: tuple[int, int]) -> Box:
    """The box of pixel ``index`` of the input image (row-major) on screen."""
    h, w = image_shape
    ix, iy, iw, ih = image_box
    return (ix + (index % w) * iw / w, iy + (index // w) * ih / h, iw / w, ih / h)


def svg(network, links: list[Link], panels: dict, neurons: dict, size: tuple, image_box: Box | None = None) -> str:
    """The lines, as one SVG over the view.

    ``panels`` maps each layer name (and INPUT) to its panel's box,
    ``neurons`` each layer name to its neurons' boxes in index order,
    ``image_box`` is the input image's box; all in the drawing's
    coordinates, ``size`` its (width, height). Colour = sign, thickness and
    opacity = the signal's size relative to the strongest line drawn.
    """
    peak = max((abs(link.strength) for link in links), default=0.0)
    parts = []
    for link in links:
        src_panel, dst_panel = panels.get(link.source), panels.get(link.target)
        dst_boxes = neurons.get(link.target)
        if src_panel is None or dst_panel is None or dst_boxes is None:
            continue
        if link.source == INPUT:
            if image_box is None:
                continue
            src_box = pixel_box(image_box, link.source_index, network.image_shape)
        else:
            src_box = neurons[link.source][link.source_index]
        x1, y1, x2, y2 = anchors(src_panel, dst_panel, src_box, dst_boxes[link.target_index])
        m = abs(link.strength) / peak
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{"pos" if link.strength > 0 else "neg"}" '
            f'stroke-width="{0.6 + 3.4 * m:.2f}" stroke-opacity="{0.25 + 0.7 * m:.2f}" '
            f'data-from="{link.source}:{link.source_index}" data-to="{link.target}:{link.target_index}" '
            f'data-strength="{link.strength!r}"></line>'
        )
    width, height = size
    return (
        f'<svg class="connections" id="connections" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
    )
