"""Colours of activations: each layer's scale (viridis, or diverging for values with a sign) and its ramp.

Pure Python, no browser imports. A layer's scale follows its activation's
range (activations.py); an unbounded one tops out at the layer's stated
99th percentile (activation_stats).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pyscript_app.core import activations as act
from pyscript_app.core.network import Layer

# Viridis at five stops: perceptually uniform and readable for colour-blind users.
# The scale's low end is dark purple, its high end bright yellow.
SCALE_STOPS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))
# ColorBrewer RdBu, 7 classes (blue = negative, near-white 0, red = positive), at positions 0..1:
# for values with a sign centred on 0 (tanh and linear activations, weights, contributions).
DIVERGING_STOPS = (
    (0.0, (33, 102, 172)), (1 / 6, (103, 169, 207)), (1 / 3, (209, 229, 240)), (0.5, (247, 247, 247)),
    (2 / 3, (253, 219, 199)), (5 / 6, (239, 138, 98)), (1.0, (178, 24, 43)),
)



def colour(value: float, stops=SCALE_STOPS) -> tuple[int, int, int]:
    """A colour scale: value in [0, 1] -> RGB, linear between the stops (viridis by default)."""
    v = min(max(float(value), 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if v <= p1:
            t = (v - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return stops[-1][1]


def hex_colour(value: float, stops=SCALE_STOPS) -> str:
    return "#%02x%02x%02x" % colour(value, stops)


def luminance(rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def linear(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = map(linear, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(value: float, stops=SCALE_STOPS) -> str:
    """Black or white, whichever contrasts more with the cell's colour (WCAG contrast ratio)."""
    lum = luminance(colour(value, stops))
    return "#000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#fff"


LEVELS = 1023  # colour steps for the cells: finer than a screen can show


@dataclass(frozen=True)
class Scale:
    """How a layer's activations become colours: ``low`` .. ``high`` onto viridis or the diverging scale."""

    kind: str  # "viridis" or "diverging" (centred on 0)
    low: float
    high: float
    source: str = ""  # where the ends come from: "range" of the activation, or its test-set 99th percentile

    @property
    def stops(self):
        return DIVERGING_STOPS if self.kind == "diverging" else SCALE_STOPS

    def position(self, value: float) -> float:
        return min(max((float(value) - self.low) / (self.high - self.low), 0.0), 1.0)


VIRIDIS_01 = Scale("viridis", 0.0, 1.0, "range")


def scale_for(layer: Layer) -> Scale:
    """The colour scale of a layer: its activation's range, or (unbounded) the layer's stated top.

    [0, 1] activations (sigmoid, the output's softmax) use viridis on [0, 1];
    symmetric ones (tanh) the diverging scale on [-1, 1]; relu viridis on
    [0, p99] and linear the diverging scale on [-p99, p99], with p99 the
    layer's activation_stats (from the export, or computed over the test set
    by explain.fill_activation_stats). Values beyond the top get the top colour.
    """
    a = act.get(layer.activation)
    if a.bounded:
        return Scale("diverging" if a.symmetric else "viridis", float(a.low), float(a.high), "range")  # type: ignore[arg-type]
    stats = layer.stats or {}
    top = float(stats.get("p99") or 0.0) or float(stats.get("max") or 0.0)
    top = top if top > 0 else 1.0
    source = "p99" if stats else "default"
    if a.low is not None:
        return Scale("viridis", float(a.low), float(a.low) + top, source)
    return Scale("diverging", -top, top, source)


@functools.lru_cache(maxsize=None)
def _level_colours(level: int, diverging: bool = False) -> tuple[str, str]:
    v, stops = level / LEVELS, (DIVERGING_STOPS if diverging else SCALE_STOPS)
    return hex_colour(v, stops), text_colour(v, stops)


def cell_colours(value: float, scale: Scale = VIRIDIS_01) -> tuple[str, str]:
    """(background, text colour) for an activation on a scale; cached per colour step (the click path)."""
    return _level_colours(round(scale.position(value) * LEVELS), scale.kind == "diverging")


@functools.lru_cache(maxsize=None)
def level_rgb(diverging: bool = False) -> np.ndarray:
    """The scale's colour at each of its LEVELS + 1 steps, (LEVELS + 1, 3) uint8 (the cells' colours)."""
    stops = DIVERGING_STOPS if diverging else SCALE_STOPS
    return np.array([colour(k / LEVELS, stops) for k in range(LEVELS + 1)], dtype=np.uint8)


def scale_levels(values, scale: Scale) -> np.ndarray:
    """Activations -> their colour step on a layer's scale, 0 .. LEVELS (as cell_colours rounds them)."""
    t = np.clip((np.asarray(values, dtype=np.float64) - scale.low) / (scale.high - scale.low), 0.0, 1.0)
    return np.rint(t * LEVELS).astype(np.intp)


@functools.lru_cache(maxsize=None)
def _level_rgba(diverging: bool) -> np.ndarray:
    """level_rgb with each colour's R, G, B and 255 as one uint32: a pixel's colour is one 4-byte
    read (numpy's quick one-dimensional take) instead of a row of 3."""
    rgba = np.full((LEVELS + 1, 4), 255, dtype=np.uint8)
    rgba[:, :3] = level_rgb(diverging)
    return rgba.view(np.uint32).ravel()


def levels_rgb(levels: np.ndarray, diverging: bool = False) -> np.ndarray:
    """Colour steps (scale_levels) -> uint8 RGB, shape ``levels.shape + (3,)``."""
    rgba = _level_rgba(diverging)[levels].view(np.uint8).reshape(*levels.shape, 4)
    return np.ascontiguousarray(rgba[..., :3])


def scale_rgb(values, scale: Scale):
    """Activations -> uint8 RGB on a layer's scale, shape ``values.shape + (3,)`` (a feature map's image):
    the colour of each value's step, as a cell of that value has."""
    return levels_rgb(scale_levels(values, scale), scale.kind == "diverging")


def scale_gradient(stops=SCALE_STOPS) -> str:
    return "linear-gradient(to right, " + ", ".join(f"{hex_colour(p, stops)} {p * 100:.0f}%" for p, _ in stops) + ")"


