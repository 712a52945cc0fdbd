"""A feature map pixel's sum, shown: the patch it reads, the kernel, their products, bias and activation.

Pure Python + numpy, no browser imports: HTML for #kernel-view (page/receptive.py places it
beside the hovered map and outlines the receptive field on the digit).
"""

from __future__ import annotations

import html

import numpy as np

from pyscript_app.views import render
from pyscript_app.core.explain import symmetric_limit
from pyscript_app.views.render_inside import diverging_hex, signed

SHOWN_CHANNELS = 4  # input channels drawn as grids; the others are summed in one line


def _cells(values: np.ndarray, colour, text) -> str:
    rows = []
    for r in range(values.shape[0]):
        cells = "".join(f'<span style="background:{colour(v)}">{text(v)}</span>' for v in values[r].tolist())
        rows.append(cells)
    return f'<span class="kgrid" style="--k:{values.shape[1]}">{"".join(rows)}</span>'


def _grey(v: float) -> str:
    level = int(round(255 * min(max(v, 0.0), 1.0)))
    return f"rgb({level},{level},{level})"


def number(v: float) -> str:
    return f"{v:.2f}".replace("-", "\u2212")


def _conv(layer, channel: int, row: int, col: int, info: dict) -> str:
    patch, kernel, prods = info["patch"], info["kernel"], info["products"]
    cin = patch.shape[2]
    sums = prods.reshape(-1, cin).sum(axis=0)
    order = np.argsort(-np.abs(sums), kind="stable")
    shown = order[:SHOWN_CHANNELS]
    limit_w = symmetric_limit(kernel)
    limit_p = symmetric_limit(prods)
    parts = []
    source = "input pixels" if layer.input_shape[2] == 1 and cin == 1 else "channel"
    for k in shown.tolist():
        name = "the digit" if source == "input pixels" else f"channel {k}"
        pv = patch[:, :, k]
        ink = _grey if float(np.max(np.abs(pv))) <= 1.0 and float(np.min(pv)) >= 0 else (lambda v: diverging_hex(v, symmetric_limit(pv)))
        parts.append(
            f'<div class="kstep" data-channel="{k}"><span class="klabel">{html.escape(name)}</span>'
            f'{_cells(pv, ink, lambda v: "")}<span class="kop">&times;</span>'
            f'{_cells(kernel[:, :, k], lambda v: diverging_hex(v, limit_w), lambda v: "")}<span class="kop">=</span>'
            f'{_cells(prods[:, :, k], lambda v: diverging_hex(v, limit_p), number if kernel.shape[1] <= 3 else lambda v: "")}'
            f'<span class="ksum">{signed(float(sums[k]))}</span></div>'
        )
    rest = order[SHOWN_CHANNELS:]
    if rest.size:
        parts.append(f'<p class="krest">+ {rest.size} more input channels, together {signed(float(sums[rest].sum()))}</p>')
    kh, kw = kernel.shape[:2]
    return (
        f'<p class="kline">{kh}&times;{kw}&times;{cin} = {prods.size} products, summed: {signed(float(prods.sum()))}'
        f' &middot; + bias {signed(info["bias"])} = net input <b>{signed(info["z"])}</b>'
        f' &middot; {html.escape(info["activation"])} &rarr; <b>{render.short(info["value"])}</b></p>'
        + "".join(parts)
    )


def _pool(layer, channel: int, info: dict) -> str:
    block, (wr, wc) = info["block"], info["winner"]
    cells = []
    for r in range(block.shape[0]):
        for c in range(block.shape[1]):
            win = " class=\"win\"" if (r, c) == (wr, wc) else ""
            cells.append(f"<span{win}>{render.short(float(block[r, c]))}</span>")
    return (
        f'<p class="kline">the largest of this 2&times;2 block of channel {channel} of the layer before: '
        f'<b>{render.short(info["value"])}</b></p>'
        f'<span class="kgrid pool" style="--k:{block.shape[1]}">{"".join(cells)}</span>'
    )


def kernel_view(layer, channel: int, row: int, col: int, info: dict, field: tuple[int, int, int, int]) -> str:
    """#kernel-view: what pixel (row, col) of ``channel``'s map sums (core/receptive.products' ``info``)."""
    top, left, bottom, right = field
    body = _conv(layer, channel, row, col, info) if info["kind"] == "conv2d" else _pool(layer, channel, info)
    return (
        f'<div id="kernel-view" class="kernel-view" role="status" data-layer="{html.escape(layer.name)}" '
        f'data-index="{channel}" data-row="{row}" data-col="{col}" data-value="{render.fmt(info["value"])}">'
        f'<b>{html.escape(layer.title)}, channel {channel}, pixel ({row}, {col})</b>'
        f'<span class="kfield"> reads input pixels rows {top}&ndash;{bottom}, columns {left}&ndash;{right}</span>'
        f"{body}</div>"
    )
