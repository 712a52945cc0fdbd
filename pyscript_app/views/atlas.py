"""The atlas as the page shows it: the map's pixels (RGBA for one putImageData), its key, its text summary.

Imports the core only. Where a digit lands on the canvas is :class:`Frame`
(the map's coordinates to canvas pixels and back): the page uses the same
frame to place the current digit's dot, to find the dot under the pointer
and the digits inside a box.
"""

from __future__ import annotations

import html

import numpy as np

from pyscript_app.core import atlas, tsne
from pyscript_app.views import render, render_inside

SIZE = 480  # the canvas's side in pixels
MARGIN = 0.05  # of the side, around the outermost dots
# Okabe-Ito's colour-blind-safe palette on the page's dark background (its black turned white), plus grey
# and a light brown: one colour per class. A misread digit is drawn as a ring, a read one as a filled dot.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#F2F2F2", "#8C8C8C", "#C8A07A")
BACKGROUND = (23, 30, 46, 255)  # --panel in site/style.css
DIMMED = (70, 78, 96, 255)  # the dots outside a highlighted set
LAYER_NAMES = {"input": "the input pixels"}
DOT = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])  # a 3 x 3 filled dot
RING = np.array([(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2])  # 5 x 5 outline


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


class Frame:
    """The map's coordinates -> canvas pixels (y up on the map, down on the canvas); equal scales on both axes."""

    def __init__(self, xy: np.ndarray, size: int = SIZE):
        self.size = size
        lo = xy.min(axis=0) if len(xy) else np.zeros(2)
        hi = xy.max(axis=0) if len(xy) else np.zeros(2)
        self.centre = (lo + hi) / 2
        span = float(np.max(hi - lo))
        self.scale = size * (1 - 2 * MARGIN) / span if span > 0 else 1.0

    def to_canvas(self, xy) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        px = (xy - self.centre) * self.scale
        return np.stack([self.size / 2 + px[..., 0], self.size / 2 - px[..., 1]], axis=-1)

    def nearest(self, canvas_xy, points: np.ndarray, radius: float = 6.0) -> int | None:
        """The row of the dot nearest the canvas point, if one is within ``radius`` pixels."""
        if not len(points):
            return None
        d = np.sum((points - np.asarray(canvas_xy)) ** 2, axis=1)
        i = int(np.argmin(d))
        return i if d[i] <= radius * radius else None

    @staticmethod
    def inside(points: np.ndarray, box) -> np.ndarray:
        """The rows of the dots inside a canvas box (x0, y0, x1, y1), in their order."""
        x0, x1 = sorted((box[0], box[2]))
        y0, y1 = sorted((box[1], box[3]))
        return np.flatnonzero((points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1))


def raster(points: np.ndarray, labels, misread, size: int = SIZE, highlight=None) -> np.ndarray:
    """Every dot drawn into an (size, size, 4) uint8 RGBA image, in the digits' order (the test set is shuffled,
    so no class is always on top). ``highlight``: a boolean mask; the other dots are drawn dimmed, beneath.
    Each pixel is written as one 32-bit word (its four bytes at once: a quarter of the indexed writes)."""
    img = np.empty((size, size, 4), dtype=np.uint8)
    flat = img.view(np.uint32).reshape(-1)
    flat[:] = np.array(BACKGROUND, dtype=np.uint8).view(np.uint32)[0]
    colours = np.array([rgb(c) + (255,) for c in PALETTE], dtype=np.uint8).view(np.uint32).reshape(-1)
    dimmed_colour = np.array(DIMMED, dtype=np.uint8).view(np.uint32)[0]
    labels = np.asarray(labels).astype(np.intp) % len(PALETTE)
    centre = np.rint(points).astype(np.intp)
    misread = np.asarray(misread, dtype=bool)
    groups = [np.ones(len(points), dtype=bool)] if highlight is None else [~np.asarray(highlight), np.asarray(highlight)]
    for g, members in enumerate(groups):
        dimmed = highlight is not None and g == 0
        for shape, which in ((DOT, members & ~misread), (RING, members & misread)):
            rows = np.flatnonzero(which)
            ys = (centre[rows, 1][:, None] + shape[:, 0]).ravel()
            xs = (centre[rows, 0][:, None] + shape[:, 1]).ravel()
            ok = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
            where = ys[ok] * size + xs[ok]
            flat[where] = dimmed_colour if dimmed else colours[np.repeat(labels[rows], len(shape))[ok]]
    return img


def layer_title(layer: str) -> str:
    return LAYER_NAMES.get(layer, f"layer {layer}")


def layer_options(network, selected: str) -> str:
    """The <option>s of #atlas-layer: input, then every layer of the manifest."""
    names = ["input", *(layer.name for layer in atlas.layers(network))]
    return "".join(f'<option value="{html.escape(n)}"{" selected" if n == selected else ""}>'
                   f'{html.escape(layer_title(n))}</option>' for n in names)


def key_html(class_labels) -> str:
    items = "".join(f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{html.escape(str(c))}</li>'
                    for i, c in enumerate(class_labels))
    return (f'<ul class="atlas-key" aria-label="Colour key: the true class of each dot">{items}'
            '<li><span class="swatch ring"></span>misread (a ring)</li></ul>')


def numbers(values) -> str:
    return ",".join(render.fmt(v) for v in np.ravel(values))


def summary_html(layer_map: atlas.LayerMap, class_labels) -> str:
    """The text summary for screen readers (and anyone): the separability, then per class its centre and spread."""
    m = layer_map
    summaries = atlas.class_summaries(m.xy, m.labels, m.predicted, class_labels)
    sentence = atlas.separability_sentence(m.separability, len(class_labels))
    explained = m.pca.explained
    axes = (f"The two axes are the directions along which the digits vary most in {layer_title(m.layer)} "
            f"({explained[0] * 100:.0f} % and {explained[1] * 100:.0f} % of the variation).")
    if m.method == "tsne":
        where = ("computed at build time" if m.digits is None else
                 f"computed in the page on the first {len(m.xy):,} test digits (exact t-SNE, {tsne.ITERATIONS} iterations)")
        axes = f"This is a t-SNE map of {layer_title(m.layer)}, {where}. {TSNE_NOTE}"
    rows = "".join(
        f"<tr><th scope=\"row\">{html.escape(s.label)}</th><td>{s.count:,}</td><td>{s.centre[0]:.2f}, {s.centre[1]:.2f}</td>"
        f"<td>{s.spread:.2f}</td><td>{s.misread:,}</td></tr>" for s in summaries)
    note = f"<p>{html.escape(m.pca.note)}</p>" if m.pca.note and m.method == "pca" else ""
    return (f"<p>{html.escape(sentence)}</p>{note}<p>{axes}</p>"
            '<table class="atlas-table"><caption>Each class on the map</caption>'
            '<thead><tr><th scope="col">class</th><th scope="col">digits</th><th scope="col">centre (x, y)</th>'
            f'<th scope="col">spread</th><th scope="col">misread</th></tr></thead><tbody>{rows}</tbody></table>')


def separability_html(layer_map: atlas.LayerMap) -> str:
    value = layer_map.separability
    shown = "–" if value is None else f"{value * 100:.1f} %"
    data = "" if value is None else render.fmt(value)
    return (f'<span id="atlas-separability" data-value="{data}" title="a {atlas.K}-nearest-neighbour vote in the '
            f'layer\'s full space">separability {shown}</span>')


METHODS = (("pca", "PCA"), ("tsne", "t-SNE"))
TSNE_NOTE = (f"A t-SNE map keeps each digit near the digits that are near it in the layer, but the distances between "
             f"clusters and their sizes mean little. The digit shown is placed at the mean place of its "
             f"{atlas.NEIGHBOURS} nearest test digits in the layer's full space (Euclidean distance over all its "
             f"units), as t-SNE cannot place a new digit by itself.")
IN_PAGE_TSNE = (f"This network has no t-SNE map made at build time (those are for the shipped models as shipped): "
                f"its t-SNE map is computed in the page, on the first {tsne.DIGITS:,} test digits, in the background.")


def method_html() -> str:
    """#atlas-method (PCA or t-SNE), its ? note, and #atlas-method-note (where a t-SNE map comes from when it is computed in the page)."""
    options = "".join(f'<option value="{v}">{t}</option>' for v, t in METHODS)
    return (f'<label for="atlas-method">Map</label> <select id="atlas-method">{options}</select> '
            '<details class="note-details" id="atlas-tsne-help"><summary aria-label="How the t-SNE map places the '
            f'digit shown">?</summary><p>{html.escape(TSNE_NOTE)}</p></details> '
            '<span id="atlas-method-note" class="note" hidden></span> ')


def panel_html(network) -> str:
    """The atlas panel's frame (what is filled in once a map is computed)."""
    last_hidden = network.layers[-2].name if len(network.layers) > 1 else network.layers[-1].name
    return (
        '<h2 id="atlas-title" tabindex="-1">Atlas: where every test digit lands</h2>'
        '<p class="sub">Each dot is one test digit, placed by what one layer makes of it (its first two principal '
        'components, or a t-SNE map), coloured by its true class. Hover a dot to see it, click to load it, drag a box to list the '
        'digits inside.' + (' A convolutional or pooling layer places each digit by its channels&#39; peaks (the largest '
                            'value of each feature map, as the view colours them).'
                            if any(len(l.output_shape) == 3 for l in network.layers) else '') + '</p>'
        '<div class="atlas-controls">'
        f'<label for="atlas-layer">Layer</label> <select id="atlas-layer">{layer_options(network, last_hidden)}</select> '
        '<button type="button" id="atlas-step" class="secondary">Next layer</button> '
        f'{method_html()}'
        '<span id="atlas-status" role="status"></span></div>'
        f'<div class="atlas-map" id="atlas-map" tabindex="0" role="application" aria-roledescription="map of test digits" '
        'aria-describedby="atlas-keys-help">'
        f'<canvas id="atlas-canvas" width="{SIZE}" height="{SIZE}" aria-hidden="true"></canvas>'
        '<span id="atlas-current" class="atlas-current" hidden></span>'
        '<span id="atlas-box" class="atlas-box" hidden></span>'
        '<span id="atlas-tip" class="atlas-tip" hidden></span></div>'
        '<p id="atlas-keys-help" class="note">Keyboard: arrow keys move the box, + and − resize it, Enter lists '
        'the digits inside it.</p>'
        f'{key_html(network.class_labels)}'
        '<div id="atlas-found" class="atlas-found" aria-live="polite"></div>'
        '<div id="atlas-summary" class="atlas-summary"></div>'
    )


def found_html(testset, digits, cap: int = 60) -> str:
    """The digits inside a box, as buttons that load them (at most ``cap``)."""
    digits = [int(i) for i in digits]
    thumbs = "".join(render_inside.thumb(testset, i, "Show test digit {i} (labelled {label})", None) for i in digits[:cap])
    more = f" (the first {cap} shown)" if len(digits) > cap else ""
    return (f'<h3>{len(digits):,} digits in the box{more}</h3><div class="top-digits" id="atlas-found-list" '
            f'data-samples="{",".join(map(str, digits[:cap]))}">{thumbs}</div>')
