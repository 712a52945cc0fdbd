"""Digits as a person draws them on the pad: a few strokes of a thick round brush.

Each digit is one or more templates of polylines in pad units (0..1, x to the
right, y down), written by hand from how the digits are usually drawn (a 1
with and without its flag, a 7 with and without a bar, an open and a closed
4, ...). They serve two kinds of test:

* the end-to-end tests move the real mouse (or a finger) along them on the
  page's pad;
* :func:`rasterize` paints them in numpy the way a canvas does (a round brush,
  anti-aliased edges as alpha), so many drawings, varied in size, position,
  slant and wobble (:func:`variants`), can go through the preprocessing and
  the model in CPython.
"""

from __future__ import annotations

import math

import numpy as np

BRUSH = 1 / 12  # brush diameter as a fraction of the pad's side (what the page uses)


def arc(cx, cy, rx, ry, start, stop, n=14):
    """Points on an ellipse, angles in degrees (0 = right, 90 = down: the screen's y points down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(start, stop, n)]


TEMPLATES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[arc(0.5, 0.5, 0.17, 0.31, -90, 275, 24)],
        [arc(0.5, 0.5, 0.2, 0.3, -100, 265, 24)]],
    1: [[[(0.5, 0.15), (0.5, 0.85)]],
        [[(0.4, 0.27), (0.53, 0.15), (0.53, 0.85)]]],
    2: [[arc(0.5, 0.33, 0.16, 0.17, 200, 400) + [(0.32, 0.85), (0.7, 0.85)]],
        [arc(0.5, 0.32, 0.15, 0.16, 190, 380) + [(0.36, 0.84), (0.5, 0.8), (0.7, 0.84)]]],
    3: [[arc(0.5, 0.32, 0.15, 0.16, 200, 450) + arc(0.5, 0.66, 0.17, 0.18, 270, 520)],
        [[(0.33, 0.16), (0.66, 0.16), (0.47, 0.45)] + arc(0.5, 0.65, 0.17, 0.19, 280, 520)]],
    4: [[[(0.6, 0.15), (0.3, 0.62), (0.72, 0.62)], [(0.6, 0.38), (0.6, 0.86)]],
        [[(0.35, 0.15), (0.33, 0.55), (0.7, 0.55)], [(0.63, 0.15), (0.63, 0.86)]]],
    5: [[[(0.67, 0.15), (0.39, 0.15), (0.36, 0.47)] + arc(0.5, 0.64, 0.17, 0.2, 225, 505)],
        [[(0.38, 0.15), (0.35, 0.46)] + arc(0.5, 0.64, 0.17, 0.2, 225, 505), [(0.38, 0.15), (0.68, 0.15)]]],
    6: [[[(0.63, 0.15), (0.46, 0.3), (0.36, 0.52)] + arc(0.51, 0.66, 0.15, 0.19, 185, 545)],
        [arc(0.62, 0.62, 0.27, 0.46, 250, 180, 10) + arc(0.5, 0.67, 0.15, 0.18, 180, 540)]],
    7: [[[(0.3, 0.17), (0.7, 0.17), (0.45, 0.85)]],
        [[(0.3, 0.17), (0.7, 0.17), (0.47, 0.85)], [(0.42, 0.5), (0.64, 0.5)]]],
    8: [[arc(0.5, 0.32, 0.13, 0.16, -90, 270), arc(0.5, 0.67, 0.16, 0.18, -90, 270)],
        [arc(0.5, 0.31, 0.14, 0.15, 0, 360), arc(0.5, 0.66, 0.17, 0.19, 0, 360)]],
    9: [[arc(0.5, 0.33, 0.15, 0.17, 0, 365), [(0.65, 0.33), (0.62, 0.86)]],
        [arc(0.5, 0.32, 0.16, 0.16, 10, 370), [(0.66, 0.3), (0.6, 0.6), (0.5, 0.86)]]],
}


def transform(strokes, scale=1.0, aspect=1.0, slant=0.0, rotate=0.0, shift=(0.0, 0.0)):
    """The strokes scaled about the pad's centre, x stretched by ``aspect``, slanted, rotated (degrees), moved."""
    c, s = math.cos(math.radians(rotate)), math.sin(math.radians(rotate))
    out = []
    for stroke in strokes:
        p = np.asarray(stroke, dtype=np.float64) - 0.5
        x, y = p[:, 0] * aspect * scale, p[:, 1] * scale
        x = x - slant * y  # a positive slant leans the top to the right
        out.append(np.stack([c * x - s * y + 0.5 + shift[0], s * x + c * y + 0.5 + shift[1]], axis=1))
    return out


def rasterize(strokes, size: int = 280, brush: float = BRUSH) -> np.ndarray:
    """Paint the strokes as a canvas would: (size, size, 4) RGBA, white, the brush's coverage as alpha."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    dist = np.full((size, size), np.inf)
    for stroke in strokes:
        p = np.asarray(stroke, dtype=np.float64) * size
        if len(p) == 1:
            p = np.vstack([p, p])
        for (x0, y0), (x1, y1) in zip(p[:-1], p[1:]):
            dx, dy = x1 - x0, y1 - y0
            t = ((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-12)
            t = np.clip(t, 0.0, 1.0)
            np.minimum(dist, np.hypot(xx - x0 - t * dx, yy - y0 - t * dy), out=dist)
    alpha = np.clip(brush * size / 2 + 0.5 - dist, 0.0, 1.0)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return rgba


def variants(count: int, seed: int):
    """``count`` (digit, strokes) drawings: every template, varied like hands vary.

    Size 45% to 100% of the pad, x stretched 0.75 to 1.25, slant and rotation
    up to about 15 degrees, a small wobble of every point, anywhere on the
    pad that keeps the whole digit on it.
    """
    rng = np.random.default_rng(seed)
    flat = [(d, t) for d, ts in TEMPLATES.items() for t in ts]
    for k in range(count):
        digit, strokes = flat[k % len(flat)]
        drawn = transform(strokes, scale=rng.uniform(0.45, 1.0), aspect=rng.uniform(0.75, 1.25),
                          slant=rng.uniform(-0.25, 0.3), rotate=rng.uniform(-12, 12))
        drawn = [s + rng.normal(0, 0.006, s.shape) for s in drawn]
        lo = np.min([s.min(axis=0) for s in drawn], axis=0) - BRUSH
        hi = np.max([s.max(axis=0) for s in drawn], axis=0) + BRUSH
        shift = rng.uniform(-lo, 1 - hi) if np.all(hi - lo < 1) else -lo
        yield digit, [s + shift for s in drawn]


# ---------------------------------------------------------------------------
# MNIST digits redrawn with the pad's brush: real handwriting shapes, canvas strokes


def _neighbours(b: np.ndarray):
    """P2..P9 of every pixel (clockwise from north), from a zero-padded copy."""
    p = np.pad(b, 1)
    h, w = b.shape
    at = lambda dy, dx: p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]  # noqa: E731
    return [at(-1, 0), at(-1, 1), at(0, 1), at(1, 1), at(1, 0), at(1, -1), at(0, -1), at(-1, -1)]


def skeleton(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the 1-pixel-wide centre line of a binary shape."""
    b = binary.astype(np.uint8).copy()
    while True:
        changed = False
        for step in (0, 1):
            n = _neighbours(b)
            count = sum(n)
            transitions = sum((n[i] == 0) & (n[(i + 1) % 8] == 1) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                ok = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                ok = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            kill = (b == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & ok
            if kill.any():
                b[kill] = 0
                changed = True
        if not changed:
            return b.astype(bool)


def redraw(image: np.ndarray, rng, size: int = 280, brush: float = BRUSH, height=(0.35, 0.95)) -> np.ndarray:
    """An MNIST digit as if drawn on the pad: its centre line, painted with the round brush.

    The digit is enlarged 4x, thinned to its centre line, and the line is
    painted at a random size (the digit's box ``height`` of the pad) and
    position, with the brush's anti-aliased edge as alpha.
    """
    big = np.kron(image, np.ones((4, 4), dtype=np.uint8))  # 112x112
    line = skeleton(big >= 128)
    ys, xs = np.nonzero(line)
    extent = max(ys.max() - ys.min(), xs.max() - xs.min(), 1)
    r = brush * size / 2
    scale = rng.uniform(*height) * (size - 2 * r - 2) / extent
    ys = (ys - ys.min()) * scale
    xs = (xs - xs.min()) * scale
    oy = rng.uniform(r + 1, size - r - 1 - ys.max())
    ox = rng.uniform(r + 1, size - r - 1 - xs.max())
    dist = np.full((size, size), np.inf)
    k = int(math.ceil(r + 1))
    for y, x in zip(ys + oy, xs + ox):
        y0, x0 = max(0, int(y) - k), max(0, int(x) - k)
        y1, x1 = min(size, int(y) + k + 2), min(size, int(x) + k + 2)
        gy, gx = np.mgrid[y0:y1, x0:x1] + 0.5
        np.minimum(dist[y0:y1, x0:x1], np.hypot(gy - y, gx - x), out=dist[y0:y1, x0:x1])
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.rint(np.clip(r + 0.5 - dist, 0.0, 1.0) * 255).astype(np.uint8)
    return rgba
