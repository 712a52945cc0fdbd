"""MNIST-style preprocessing of a digit drawn on the page's drawing pad.

Pure numpy (and the standard library): this module runs unchanged in CPython
and in the browser (Pyodide), where numpy is the only package there is.

The steps are the ones that made the MNIST digits, so a drawn digit reaches
the network looking like the digits it was trained on:

1. **Ink.** The pad becomes grey levels 0..255, white (ink) on black (paper).
   A 2D pad ``(H, W)`` already holds ink levels on that scale, whatever its
   dtype (floats are clipped to 0..255; ``True`` counts as 255). An RGBA pad
   ``(H, W, 4)`` (canvas ``getImageData``) has its **alpha channel** taken as
   the ink: the page draws strokes on a *transparent* canvas, so alpha is the
   ink whatever colour the strokes are. (A canvas filled with an opaque
   background would be all ink: clear it with ``clearRect``, do not paint it.)
2. **Crop** to the bounding box of the pixels with ink >= ``NOISE_THRESHOLD``
   (a pad with none is empty: ``None``). Fainter ink is paper: it is set to 0,
   so faint noise neither moves the box nor greys the digit. Ink at or above
   the threshold keeps its grey level (a stroke's anti-aliased edge).
3. **Resize** so the longer side is 20 px, keeping the aspect ratio, by exact
   area averaging (a box filter): every output pixel is the mean of the ink
   over the square of the pad it covers, input pixels counted with the
   fraction of them that falls inside it. That gives anti-aliased grey levels
   for any ratio and conserves ink (total ink scales by the area ratio).
   The crop's top-left corner lands on a pixel corner, and the crop sits in
   the middle of a 20x20 frame (``resized``).
4. **Centre** by translating the frame by whole pixels so the intensity-
   weighted centre of mass lands on pixel (14, 14) of the 28x28 field
   (within half a pixel: the shift is rounded). Should that push ink out of
   the field (a lopsided digit: a few MNIST digits touch its edge), the
   shift stops where the ink touches the edge: no ink is ever cut off.

Centre convention (measured, not guessed): with pixel *indices* 0..27 as
coordinates, the centre of mass of every MNIST digit lies within 0.5 px of
index 14 (means 13.99 and 14.01 over the 10,000 test digits; all but 3,
whose ink runs into the edge, within [13.5, 14.5]), not of the geometric
middle 13.5. Re-centring the test digits with this rule gives back all
10,000 of them unchanged, while aiming at 13.5 moves three quarters of them
by a pixel and costs the model about two points of accuracy. So the target is index 14.0, by a whole-pixel shift (rounding),
which is what MNIST did; the 20-px box is never resampled a second time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIELD = 28  # side of the model's input image
BOX = 20  # the longer side of the digit after resizing
CENTRE = 14.0  # where the centre of mass goes, in pixel indices (row and column)
NOISE_THRESHOLD = 16  # ink levels (of 255) below this are paper, not digit


@dataclass(frozen=True)
class Preprocessed:
    """Every step of :func:`preprocess`, for the page's inspector."""

    crop: np.ndarray  # (h, w) uint8: the ink in the bounding box, at the pad's resolution
    resized: np.ndarray  # (20, 20) uint8: the crop resized to a 20-px longer side, centred in the frame
    centred: np.ndarray  # (28, 28) uint8: the model's input (0 = background, 255 = ink)
    bbox: tuple[int, int, int, int]  # (top, left, bottom, right) in pad pixels; bottom/right exclusive
    scale: float  # 20-px frame pixels per pad pixel
    centre_of_mass: tuple[float, float]  # (row, col) of the ink in `resized`, pixel indices
    offset: tuple[int, int]  # (row, col) of the frame's top-left pixel in the 28x28 field


def ink_levels(pad: np.ndarray) -> np.ndarray:
    """The pad as a 2D uint8 array of ink levels (0 = paper, 255 = full ink).

    ``pad`` is ``(H, W)`` ink levels on the 0..255 scale (any numeric dtype or
    bool) or ``(H, W, 4)`` RGBA whose alpha channel is the ink.
    """
    a = np.asarray(pad)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, 3]
    elif a.ndim != 2:
        raise ValueError(f"a pad is (H, W) ink levels or (H, W, 4) RGBA, not shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    return np.rint(np.clip(a, 0, 255)).astype(np.uint8)


def area_resample(a: np.ndarray, scale: float, n_out: int, offset: float = 0.0) -> np.ndarray:
    """Box-filter resampling of ``a`` along its first axis: ``(n, ...) -> (n_out, ...)``.

    Input row ``i`` covers ``[offset + i*scale, offset + (i+1)*scale)`` in
    output rows; output row ``j`` is the mean of the input over ``[j, j+1)``,
    each input row weighted by the fraction of it inside (area outside the
    input counts as no ink). Exact for any ratio, and fast: the running sum
    of the rows is piecewise linear, so reading it at the output rows' edges
    (linear interpolation) and differencing gives each output row's integral
    in one pass over ``a``, not a multiply-add per output row.
    """
    n = a.shape[0]
    running = np.zeros((n + 1,) + a.shape[1:], dtype=np.float64)
    np.cumsum(a, axis=0, out=running[1:])
    # the output rows' edges, in input rows, clipped to the input
    edges = np.clip((np.arange(n_out + 1) - offset) / scale, 0.0, n)
    below = np.minimum(edges.astype(np.intp), n - 1)  # the input row each edge falls in
    frac = (edges - below)[:, None]
    integral = running[below] + frac * a[below]
    return (integral[1:] - integral[:-1]) * scale


def resize_to_box(crop: np.ndarray, box: int = BOX) -> tuple[np.ndarray, float]:
    """Area-average ``crop`` so its longer side is ``box`` px; centre it in a box x box frame.

    Returns the float frame and the scale (frame pixels per crop pixel).
    The crop's top-left corner falls on a pixel corner; the shorter side is
    centred by whole pixels.
    """
    h, w = crop.shape
    scale = box / max(h, w)
    # pixels the scaled crop touches (less a hair, so 3 * (20/60) is 1 pixel, not 2)
    rows = min(box, math.ceil(h * scale - 1e-6))
    cols = min(box, math.ceil(w * scale - 1e-6))
    frame = area_resample(crop, scale, box, (box - rows) // 2)
    return area_resample(frame.T, scale, box, (box - cols) // 2).T, scale


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centre (row, col) of ``image`` in pixel indices."""
    f = np.asarray(image, dtype=np.float64)
    total = f.sum()
    if total <= 0:
        raise ValueError("an image without ink has no centre of mass")
    rows = f.sum(axis=1) @ np.arange(f.shape[0]) / total
    cols = f.sum(axis=0) @ np.arange(f.shape[1]) / total
    return float(rows), float(cols)


def _place(profile: np.ndarray, com: float, field: int) -> int:
    """Whole-pixel offset putting ``com`` on CENTRE, kept so the ink stays in the field."""
    ink = np.flatnonzero(profile)
    shift = int(np.round(CENTRE - com))
    return min(max(shift, -int(ink[0])), field - 1 - int(ink[-1]))


def preprocess(pad: np.ndarray, threshold: int = NOISE_THRESHOLD) -> Preprocessed | None:
    """The pad's digit as MNIST would have it, or ``None`` if the pad is empty.

    ``pad`` is anything :func:`ink_levels` reads. ``None`` means no pixel has
    ink >= ``threshold`` (or what there is averages away to nothing at 20 px):
    the page shows its "draw a digit" state then.
    """
    ink = ink_levels(pad)
    strong = ink >= threshold
    rows = np.flatnonzero(strong.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(strong[rows[0] : rows[-1] + 1].any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = ink[top:bottom, left:right].copy()
    crop[crop < threshold] = 0

    frame, scale = resize_to_box(crop)
    resized = np.rint(np.clip(frame, 0, 255)).astype(np.uint8)
    if not resized.any():  # a lone faint speck can average away entirely
        return None
    # the centre of the quantised frame, so the returned image's centre is exactly it + offset
    com = centre_of_mass(resized)
    dy = _place(resized.any(axis=1), com[0], FIELD)
    dx = _place(resized.any(axis=0), com[1], FIELD)
    centred = np.zeros((FIELD, FIELD), dtype=np.uint8)
    # copy the frame's rows/cols that land inside the field (only empty ones can fall outside)
    r0, r1 = max(0, -dy), min(BOX, FIELD - dy)
    c0, c1 = max(0, -dx), min(BOX, FIELD - dx)
    centred[r0 + dy : r1 + dy, c0 + dx : c1 + dx] = resized[r0:r1, c0:c1]
    return Preprocessed(
        crop=crop,
        resized=resized,
        centred=centred,
        bbox=(top, left, bottom, right),
        scale=scale,
        centre_of_mass=com,
        offset=(dy, dx),
    )
