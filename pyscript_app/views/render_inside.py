"""What the "look inside" views draw: neuron cards, the connections' key, knock-outs, the error explorer.

Pure Python + numpy, no browser imports, like render.py (whose helpers it
uses). Every number comes from explain.py; this module only turns numbers
into HTML / SVG strings, which the page modules set as innerHTML.

Colours: activations use render.py's viridis; weights and contributions,
which have a sign, use a diverging scale (ColorBrewer RdBu: blue negative,
near-white zero, red positive; readable with the common colour-vision
deficiencies), always centred on 0 and symmetric (explain.symmetric_limit).
"""

from __future__ import annotations

import html
import json
import math

import numpy as np

from pyscript_app.core import channels, explain, flow
from pyscript_app.views import colours, glossary, render
from pyscript_app.core.network import Network

# ColorBrewer RdBu, 7 classes (blue = negative, red = positive).
DIVERGING_STOPS = (
    (-1.0, (33, 102, 172)),
    (-2 / 3, (103, 169, 207)),
    (-1 / 3, (209, 229, 240)),
    (0.0, (247, 247, 247)),
    (1 / 3, (253, 219, 199)),
    (2 / 3, (239, 138, 98)),
    (1.0, (178, 24, 43)),
)
# Lines on the dark page: the lighter ends of the same scale stay readable.
LINE_POSITIVE = "#ef8a62"
LINE_NEGATIVE = "#67a9cf"

TOP_DIGITS = 9  # test digits shown on a card
TOP_CONTRIBUTIONS = 10  # contributions listed before "n more"
TOP_FLAT_VALUES = 100  # after a flatten: the values listed one by one, at most (the channel sums cover them all)
CELL_CAP = 100  # thumbnails shown for one confusion-matrix cell
MAX_STAGE_LINES = 1500  # lines drawn at most between two layers (the strongest; 512 x 512 would be 262,144)


# ---------------------------------------------------------------------------
# the diverging scale


def diverging_rgb(values, limit: float) -> np.ndarray:
    """Values in [-limit, limit] -> uint8 RGB, shape ``values.shape + (3,)`` (clipped outside)."""
    if not limit > 0:
        raise ValueError(f"the limit of a diverging scale must be > 0, got {limit!r}")
    t = np.clip(np.asarray(values, dtype=np.float64) / float(limit), -1.0, 1.0)
    stops = np.array([p for p, _ in DIVERGING_STOPS])
    rgb = np.array([c for _, c in DIVERGING_STOPS], dtype=np.float64)
    channels = [np.interp(t, stops, rgb[:, k]) for k in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def diverging_hex(value: float, limit: float) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in diverging_rgb(value, limit))


def diverging_gradient() -> str:
    """The scale as a CSS gradient, left = -limit, right = +limit."""
    return "linear-gradient(to right, " + ", ".join(
        "#%02x%02x%02x %.1f%%" % (*c, (p + 1) * 50) for p, c in DIVERGING_STOPS
    ) + ")"


def signed(value: float, digits: int = 2) -> str:
    """+1.23 / −1.23 (a real minus sign), 0 as 0.00."""
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return text
    return ("+" if value > 0 else "\u2212") + text


SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def signed_or_tiny(value: float, digits: int = 2) -> str:
    """:func:`signed`, but a value too small to show there in two significant digits (+2.3×10⁻⁶), never
    a 0.00 that is not 0."""
    if value == 0 or not math.isfinite(value) or float(f"{abs(value):.{digits}f}") != 0:
        return signed(value, digits)
    mantissa, exponent = f"{abs(value):.1e}".split("e")
    return ("+" if value > 0 else "\u2212") + f"{mantissa}\u00d710" + str(int(exponent)).translate(SUPERSCRIPT)


def diverging_legend(limit: float, what: str) -> str:
    """A small key: the gradient with its ends and 0 marked."""
    low, high = signed_or_tiny(-limit), signed_or_tiny(limit)
    label = f"{what}: blue negative down to {low}, white 0, red positive up to {high}"
    return (
        f'<div class="dlegend" role="img" aria-label="{html.escape(label)}">'
        f'<span class="ramp" style="background:{diverging_gradient()}"></span>'
        f'<span class="ticks"><span>{low}</span><span>0</span><span>{high}</span></span></div>'
    )


def values_json(values) -> str:
    """Full-precision JSON list (each float32 value exactly, as Python's repr)."""
    return json.dumps([float(v) for v in np.asarray(values).reshape(-1)])


def diverging_image(values, shape, limit: float, element_id: str, alt: str, data_name: str) -> str:
    """A diverging-colour image of ``values`` (reshaped to ``shape``); the values go in ``data-<data_name>``."""
    rgb = diverging_rgb(np.asarray(values).reshape(shape), limit)
    return (
        f'<img id="{element_id}" class="wimg" src="{render.png_data_url(rgb)}" alt="{html.escape(alt)}" '
        f'data-{data_name}="{html.escape(values_json(values))}" data-limit="{render.fmt(limit)}">'
    )


# ---------------------------------------------------------------------------
# naming units


def unit_name(network: Network, layer_name: str, index: int) -> str:
    """'Hidden layer 1 · neuron 3' / 'Output layer · digit 7'."""
    layer = network.layer(layer_name)
    if layer.is_output:
        return f"{layer.title} \u00b7 digit {layer.labels[index]}"
    if channels.is_image(layer):
        return f"{layer.title} \u00b7 channel {index}"
    return f"{layer.title} \u00b7 neuron {index}"


def _position(network: Network, layer_name: str) -> int:
    return [layer.name for layer in network.layers].index(layer_name)


# ---------------------------------------------------------------------------
# the neuron card


def _fact(label: str, value: float, ident: str = "", text: str | None = None, note: str = "") -> str:
    attr = f' id="{ident}"' if ident else ""
    shown = text if text is not None else f"{value:.4f}"
    return f'<div><dt>{label} {note}</dt><dd{attr} data-value="{render.fmt(value)}">{shown}</dd></div>'


def thumb(testset, i: int, action_label: str, current: int | None, cls: str = "thumb") -> str:
    now = ' aria-current="true"' if current == i else ""
    alt = f"test digit {i}, labelled {int(testset.labels[i])}"
    return (
        f'<button type="button" class="{cls}" data-action="sample" data-sample="{i}" data-focus-key="{cls}-{i}"{now} '
        f'aria-label="{html.escape(action_label.format(i=i, label=int(testset.labels[i])))}" title="#{i}">'
        f'<img src="{render.png_data_url(testset.images[i])}" alt="{html.escape(alt)}"></button>'
    )


def top_digits_html(network: Network, testset, layer_name: str, index: int, knocked_out, current: int | None,
                    ranked_by: str = "net input") -> str:
    top = explain.top_exciting(network, testset, layer_name, index, k=TOP_DIGITS, knocked_out=knocked_out)
    thumbs = "".join(thumb(testset, int(i), "Show test digit {i} (labelled {label})", current) for i in top)
    return (
        '<h3>Test digits that excite it most</h3>'
        f'<div class="top-digits" id="card-top" data-samples="{",".join(str(int(i)) for i in top)}">{thumbs}</div>'
        f'<p class="note">Ranked by {ranked_by} over all {len(testset):,} test digits. Click one to look at it.</p>'
    )


TOP_LATER_TRAINING = "Listed when training is paused: the weights change too often to rank all the test digits."


def top_digits_later(why_later) -> str:
    """In place of the top digits: why they are not listed yet (``False``: training; or a sentence)."""
    text = TOP_LATER_TRAINING if why_later is False else str(why_later)
    return f'<h3>Test digits that excite it most</h3><p class="note" id="card-top-later">{html.escape(text)}</p>'


DEAD_CLASS = ' class="dead"'


def weight_bars(weights, limit: float, source_title: str, knocked_sources=(), names=None) -> str:
    """An SVG bar chart of a neuron's incoming weights, centred on 0, one bar a source neuron
    (``names``: each source's name, for a source that is not "<source_title> neuron k")."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    n = w.size
    width, height, mid = 320, 96, 48
    bar = width / n
    gap = min(1.0, bar * 0.15)  # a gap each side while bars are wide enough; touching bars beyond ~300
    rects = []
    for k, v in enumerate(w.tolist()):
        h = abs(v) / limit * (mid - 4)
        y = mid - h if v > 0 else mid
        dead = " (knocked out)" if k in knocked_sources else ""
        name = names[k] if names is not None else f"{source_title} neuron {k}"
        rects.append(
            f'<rect x="{k * bar + gap:.2f}" y="{y:.1f}" width="{bar - 2 * gap:.2f}" height="{max(h, 0.5):.1f}" '
            f'fill="{diverging_hex(v, limit)}"{DEAD_CLASS if dead else ""}>'
            f"<title>from {html.escape(name)}{dead}: weight {signed(v, 3)}</title></rect>"
        )
    label = f"{n} incoming weights from {source_title}, from {signed(w.min(), 3)} to {signed(w.max(), 3)}"
    return (
        f'<svg id="card-weights" class="wbars" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{html.escape(label)}" data-weights="{html.escape(values_json(weights))}">'
        f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" class="axis"></line>{"".join(rects)}</svg>'
    )


def _contribution_row(name: str, short: str, layer_name: str, index: int, focus_key: str, act: float, weight: float | None,
                      value: float, scale: float, dead: bool) -> str:
    """One row of a contributions list: a button that opens the source's card (``layer_name``, ``index``).
    ``weight`` None: the value is a sum (over a channel's positions), not one activation x weight."""
    if weight is None:
        detail = "knocked out" if dead else "summed"
        label = f"{name}: {signed(value, 4)}{' (knocked out)' if dead else ''}. Open its card."
    else:
        detail = "knocked out" if dead else f"{act:.2f} \u00d7 {signed(weight)}"
        label = f"{name}: activation {act:.4f} \u00d7 weight {signed(weight, 4)} = {signed(value, 4)}{' (knocked out)' if dead else ''}. Open its card."
    width = min(abs(value) / scale, 1.0) * 50 if scale > 0 else 0.0
    side = "pos" if value > 0 else "neg"
    return (
        f'<li><button type="button" class="contrib{" dead" if dead else ""}" data-action="open-neuron" '
        f'data-layer="{layer_name}" data-index="{index}" data-value="{render.fmt(value)}" data-focus-key="{focus_key}" '
        f'aria-label="{html.escape(label)}" title="{html.escape(name)}">'
        f'<span class="src">{html.escape(short)}</span><span class="cbar"><span class="{side}" style="width:{width:.1f}%"></span></span>'
        f'<span class="cval">{signed(value)}</span><span class="cdetail">{detail}</span></button></li>'
    )


def _contribution_list(rows: list[str], values: np.ndarray, order: np.ndarray, ident: str, all_values, cls: str = "") -> str:
    """The strongest TOP_CONTRIBUTIONS rows, the rest behind "n smaller ones"."""
    head, rest = rows[:TOP_CONTRIBUTIONS], rows[TOP_CONTRIBUTIONS:]
    cls = f"contribs {cls}".strip()
    more = (
        f'<details class="more"><summary>{len(rest)} smaller ones (together {signed(float(values[order[TOP_CONTRIBUTIONS:]].sum()))})</summary>'
        f'<ol class="{cls}" start="{TOP_CONTRIBUTIONS + 1}">{"".join(rest)}</ol></details>'
        if rest
        else ""
    )
    return f'<ol class="{cls}" id="{ident}" data-contributions="{html.escape(values_json(all_values))}">{"".join(head)}</ol>{more}'


def source_names(network: Network, pos: int) -> tuple[str, list[str], list[str], list[tuple[str, int]]]:
    """What layer ``pos`` reads, value by value: (the source's title, each value's name, its short label, the
    (layer, index) whose card it belongs to). After a flatten: the channels of the image before it, by position."""
    src = channels.source_position(network, pos)
    fan_in = int(np.asarray(network.layers[pos].weights).shape[0])
    if src < 0:
        return "the input pixels", [f"pixel {k}" for k in range(fan_in)], [f"#{k}" for k in range(fan_in)], \
            [(flow.INPUT, k) for k in range(fan_in)]
    source = network.layers[src]
    if not channels.is_image(source):
        return source.title, [f"{source.title} neuron {k}" for k in range(fan_in)], [f"#{k}" for k in range(fan_in)], \
            [(source.name, k) for k in range(fan_in)]
    names, shorts, owners = [], [], []
    for k in range(fan_in):
        r, c, ch = channels.flat_position(source.output_shape, k)
        names.append(f"{source.title} channel {ch} at ({r}, {c})")
        shorts.append(f"c{ch} ({r},{c})")
        owners.append((source.name, ch))
    return source.title, names, shorts, owners


def _dead_sources(network: Network, pos: int, owners, knocked_out) -> set[int]:
    """The values layer ``pos`` reads that a knock-out forces to 0: their unit's (a channel's) or a flatten's."""
    dead = {k for k, (name, i) in enumerate(owners) if i in knocked_out.get(name, ())}
    if channels.source_position(network, pos) != pos - 1:  # a flatten between: its own knocked-out values too
        dead |= set(knocked_out.get(network.layers[pos - 1].name, ()))
    return dead


def flat_weights_figure(source, weights, limit: float, dead=()) -> str:
    """A dense unit's weights on the flattened image ``source`` gives: one image a channel (its positions'
    weights where they fall on the map), on one diverging scale. ``data-weights``: all of them, in order."""
    h, w, c = source.output_shape
    grid = np.asarray(weights).reshape(h, w, c)
    images = []
    for k in range(c):
        kernel = grid[:, :, k]
        off = " (knocked out)" if k in dead else ""
        text = (f"Weights on {source.title} channel {k}{off}, position by position: "
                f"from {signed(float(kernel.min()), 3)} to {signed(float(kernel.max()), 3)}")
        images.append(
            f'<figure class="kernel-cell{" dead" if off else ""}"><img class="kernel" src="{render.png_data_url(diverging_rgb(kernel, limit))}" '
            f'alt="{html.escape(text)}" title="{html.escape(text)}" data-input-channel="{k}">'
            f'<figcaption>c{k}</figcaption></figure>'
        )
    return (
        f'<figure class="kernels-figure"><div class="kernels" id="card-weights" data-count="{c}" '
        f'data-weights="{html.escape(values_json(weights))}">{"".join(images)}</div>'
        f'<figcaption>Incoming weights from {html.escape(source.title)} ({h}&times;{w}&times;{c} values, '
        f'one image a channel: where on its map each weight reads) {glossary.note("weight")}</figcaption>'
        + diverging_legend(limit, "weight") + '</figure>'
    )


def contributions_html(network: Network, layer_name: str, index: int, inputs, knocked_out) -> str:
    """The per-input contributions (activation x weight) for this digit, strongest first. After a flatten,
    first each channel of the image before it (its positions summed), then value by value."""
    pos = _position(network, layer_name)
    per_input, bias, z = explain.contributions(network, layer_name, index, inputs)
    weights = explain.incoming_weights(network, layer_name, index)
    order, values = explain.ranked_contributions(per_input)
    scale = float(np.max(np.abs(per_input))) if per_input.size else 0.0
    _, names, shorts, owners = source_names(network, pos)
    dead = _dead_sources(network, pos, owners, knocked_out)
    flat = channels.source_position(network, pos) != pos - 1
    shown = order[:TOP_FLAT_VALUES] if flat else order  # after a flatten: the strongest values (the channels sum them all)
    rows = [
        _contribution_row(names[k], shorts[k], *owners[k], f"contrib-{k}", float(inputs[k]), float(weights[k]), float(v),
                          scale, k in dead)
        for k, v in zip(shown.tolist(), values.tolist())
    ]
    parts = []
    if flat:
        source = network.layers[channels.source_position(network, pos)]
        per_channel = channels.by_channel(per_input, source.output_shape[-1])
        c_order, c_values = explain.ranked_contributions(per_channel)
        c_scale = float(np.max(np.abs(per_channel))) if per_channel.size else 0.0
        c_rows = [
            _contribution_row(f"{source.title} channel {c}", f"c{c}", source.name, c, f"contrib-channel-{c}", 0.0, None,
                              float(v), c_scale, c in knocked_out.get(source.name, ()))
            for c, v in zip(c_order.tolist(), c_values.tolist())
        ]
        h, w, _ = source.output_shape
        parts.append(
            f'<h3>What this digit sends in, channel by channel ({h}&times;{w} positions each, summed)</h3>'
            + _contribution_list(c_rows, per_channel, c_order, "card-channel-contributions", per_channel)
            + f'<h3>Value by value: activation &times; weight{" (the strongest " + str(TOP_FLAT_VALUES) + f" of {order.size})" if order.size > TOP_FLAT_VALUES else ""}</h3>'
        )
    else:
        parts.append('<h3>What this digit sends in: activation \u00d7 weight</h3>')
    parts.append(_contribution_list(rows, per_input, shown, "card-contributions", per_input, "by-position" if flat else ""))
    parts.append(f'<p class="sum">sum {signed(float(per_input.sum()))} + bias {signed(bias)} = net input <b>{signed(z)}</b></p>')
    return "".join(parts)


def knockout_button(layer_name: str, index: int, knocked: bool, unit: str) -> str:
    """A card's knock-out toggle (#knockout-toggle) and its note; ``unit`` is "neuron" or "channel"."""
    pressed = "true" if knocked else "false"
    text = "Bring it back" if knocked else "Knock it out"
    return (
        f'<button type="button" class="secondary ko-toggle" id="knockout-toggle" data-action="knockout" '
        f'data-layer="{layer_name}" data-index="{index}" data-focus-key="knockout-toggle" aria-pressed="{pressed}">'
        f'{text}</button> {glossary.note("knockout")}<p class="note tip">Tip: Shift+click a {unit} knocks it out '
        '(or back in) without opening its card.</p>'
    )


def card_head(network: Network, layer_name: str, index: int) -> str:
    """A card's head: the unit's layer and name (in full for a screen reader), and the button that closes it."""
    layer = network.layers[_position(network, layer_name)]
    if not channels.is_drawn(layer):  # a flatten layer's value
        return ('<div class="card-head">'
                f'<h2 id="card-title"><span class="kicker">{html.escape(layer.title)}</span>Value {index}</h2>'
                + close_button("the card") + '</div>')
    if channels.is_image(layer):
        name, card = f"Channel {index}", "the channel card"
    else:
        name, card = (f"Digit {html.escape(layer.labels[index])}" if layer.is_output else f"Neuron {index}"), "the neuron card"
    return ('<div class="card-head">'
            f'<h2 id="card-title" aria-label="{html.escape(unit_name(network, layer_name, index))}">'
            f'<span class="kicker">{html.escape(layer.title)}</span>{name}</h2>' + close_button(card) + '</div>')


def close_button(card: str) -> str:
    return ('<button type="button" class="icon" id="card-close" data-action="close-card" data-focus-key="card-close" '
            f'aria-label="Close {card} (Escape)" title="Close (Escape)">&times;</button>')


def waiting_card(network: Network, layer_name: str, index: int) -> str:
    """The card of a unit while no digit is shown (an empty pad): which unit it is, and that it waits for one."""
    return (
        f'<section id="neuron-card" class="panel card" data-layer="{layer_name}" data-index="{index}" data-waiting="true" '
        f'tabindex="-1" role="region" aria-labelledby="card-title">{card_head(network, layer_name, index)}'
        '<p class="stands" id="card-waiting">Nothing drawn yet. Draw a digit on the pad: this card then shows what '
        'this unit makes of it.</p></section>'
    )


def neuron_card(network: Network, testset, view: render.View, layer_name: str, index: int,
                top_digits: bool = True) -> str:
    """The card of one neuron for what the view shows (its input, its knock-outs).

    ``top_digits=False`` leaves out the test digits that excite it most (a pass over the whole
    test set, for weights that change many times a second while a network trains) and says so;
    a sentence instead of a bool says why they are not there yet (a CNN's pass still running).
    A conv2d or maxpool2d channel has a card of its own (:func:`channel_card`)."""
    pos = _position(network, layer_name)
    layer = network.layers[pos]
    if channels.is_image(layer):
        return channel_card(network, testset, view, layer_name, index, top_digits)
    if not channels.is_drawn(layer):
        return flatten_card(network, view, layer_name, index)
    x = network.normalize(view.pixels)
    inputs = explain.layer_input(network, layer_name, x, view.activations)
    per_input, bias, z = explain.contributions(network, layer_name, index, inputs)
    weights = explain.incoming_weights(network, layer_name, index)
    activation = float(view.activations[pos][index])
    knocked = index in view.knocked_out.get(layer_name, ())
    hidden = layer_name in explain.knockable_layers(network)
    current = view.sample_index

    what = "probability" if layer.is_output else "activation"
    shown = render.percent(activation) if layer.is_output else render.short(activation)
    if layer.is_output:
        activation_note = glossary.note("softmax", glossary.facts(network.manifest))
    else:  # its activation function, with a dot where this neuron's net input falls
        activation_note = glossary.note(layer.activation, extra=glossary.curve_svg(layer.activation, z))
    facts = [_fact(what, activation, "card-activation", f"{shown} ({activation:.4f})", activation_note)]
    facts.append(_fact("net input", z, "card-net-input", signed(z, 4), glossary.note("net_input")))
    facts.append(_fact("bias", bias, "card-bias", signed(bias, 4), glossary.note("bias")))
    parts = [
        f'<section id="neuron-card" class="panel card" data-layer="{layer_name}" data-index="{index}" '
        f'tabindex="-1" role="region" aria-labelledby="card-title">',
        card_head(network, layer_name, index),
    ]
    if layer.is_output:
        parts.append(f'<p class="stands">This neuron stands for the digit <b>{html.escape(layer.labels[index])}</b>.</p>')
    parts.append(f'<dl class="facts">{"".join(facts)}</dl>')
    if knocked:
        would = float(layer.activate(np.array([z], dtype=np.float32))[0])
        parts.append(f'<p class="ko-note">Knocked out: its output is forced to 0 (it would be {would:.4f}).</p>')
    if hidden:
        parts.append(knockout_button(layer_name, index, knocked, "neuron"))
    if pos == 0:
        shape = tuple(network.image_shape)
        wl, cl = explain.symmetric_limit(weights), explain.symmetric_limit(per_input)
        parts.append(
            '<div class="card-images">'
            '<figure>' + diverging_image(weights, shape, wl, "card-weights",
                                         f"The {weights.size} incoming weights of this neuron as a {shape[0]} by {shape[1]} image: red pixels excite it, blue ones inhibit it", "weights")
            + f'<figcaption>Incoming weights: what it looks for {glossary.note("weight")}</figcaption>' + diverging_legend(wl, "weight") + '</figure>'
            '<figure>' + diverging_image(per_input, shape, cl, "card-pixel-contributions",
                                         "This digit's pixels times the weights: where the digit excites (red) or inhibits (blue) this neuron", "contributions")
            + f'<figcaption>This digit &times; weights (sum {signed(float(per_input.sum()))})</figcaption>' + diverging_legend(cl, "pixel times weight") + '</figure>'
            '</div>'
            f'<p class="sum">pixels &times; weights {signed(float(per_input.sum()))} + bias {signed(bias)} = net input <b>{signed(z)}</b> '
            f'&rarr; {layer.activation} &rarr; {activation:.4f}</p>'
        )
    else:
        limit = explain.symmetric_limit(weights)
        title, names, _, owners = source_names(network, pos)
        src = network.layers[channels.source_position(network, pos)]
        dead_sources = _dead_sources(network, pos, owners, view.knocked_out)
        if channels.is_image(src):
            parts.append(flat_weights_figure(src, weights, limit, view.knocked_out.get(src.name, ())))
        else:
            parts.append(
                '<figure class="bars-figure">' + weight_bars(weights, limit, title, dead_sources, names)
                + f'<figcaption>Incoming weights from {html.escape(title)}, neurons 0&ndash;{weights.size - 1} '
                  f'{glossary.note("weight")}</figcaption>' + diverging_legend(limit, "weight") + '</figure>'
            )
        parts.append(contributions_html(network, layer_name, index, inputs, view.knocked_out))
    parts.append('<div id="card-wants" class="card-wants"></div>')
    if top_digits is True:
        parts.append(top_digits_html(network, testset, layer_name, index, view.knocked_out, current))
    else:
        parts.append(top_digits_later(top_digits))
    parts.append("</section>")
    return "".join(parts)


# ---------------------------------------------------------------------------
# the card of a channel (conv2d, maxpool2d): its map, its kernels, what feeds it


def map_value_text(row: int, column: int, value: float) -> str:
    """The readout of one value of a map: 'row 3, column 7: 0.52 (0.5213)'."""
    return f"row {row}, column {column}: {render.short(value)} ({value:.4f})"


def map_figure(network: Network, pos: int, index: int, fmap: np.ndarray) -> str:
    """A channel's map, enlarged, with a readout of the value under the pointer or the keyboard's cursor
    (page/card.py moves it) and the colour key of the layer's scale."""
    layer = network.layers[pos]
    h, w = fmap.shape
    scale = render.scale_of(network, layer)  # the view's own colours for this layer's maps
    peak = np.unravel_index(int(np.argmax(fmap)), fmap.shape)
    peak_text = map_value_text(int(peak[0]), int(peak[1]), float(fmap[peak]))
    label = (f"The feature map of {layer.title} channel {index} for this digit, {h} by {w} values; "
             f"the largest at {peak_text}. Arrow keys move over its values.")
    key = (f'<div class="dlegend" role="img" aria-label="{html.escape(f"value: from {render.tick(scale.low)} to {render.tick(scale.high)}")}">'
           f'<span class="ramp" style="background:{colours.scale_gradient(scale.stops)}"></span>'
           f'<span class="ticks"><span>{render.tick(scale.low)}</span><span>{render.tick((scale.low + scale.high) / 2)}</span>'
           f'<span>{render.tick(scale.high)}</span></span></div>')
    return (
        '<figure class="card-map">'
        f'<div class="map-frame" id="card-map-frame" tabindex="0" role="group" data-focus-key="card-map" '
        f'data-row="{peak[0]}" data-column="{peak[1]}" aria-label="{html.escape(label)}" aria-describedby="card-map-readout">'
        f'<img id="card-map" class="map-img" src="{render.png_data_url(colours.scale_rgb(fmap, scale))}" alt="" '
        f'title="{html.escape("largest value: " + peak_text)}" data-shape="{h},{w}">'
        f'<span class="map-cursor" hidden style="--r:{peak[0]};--c:{peak[1]};--h:{h};--w:{w}"></span></div>'
        f'<figcaption>Its feature map for this digit, {h}&times;{w}: hover or focus it to read a value '
        f'<output id="card-map-readout" class="map-readout" aria-live="polite">largest: {html.escape(peak_text)}</output>'
        f'</figcaption>{key}</figure>'
    )


def kernels_figure(network: Network, pos: int, index: int) -> str:
    """A conv2d channel's kernels, one weight image per input channel, on one diverging scale.
    ``#card-weights`` carries them all as a dense card carries its weights: ``weights[..., index]``
    (Keras' layout: row, column, input channel), row-major."""
    layer = network.layers[pos]
    kernels = channels.kernels(layer, index)  # (input channels, kh, kw)
    limit = explain.symmetric_limit(kernels)
    src = channels.source_position(network, pos)
    source = "the input image" if src < 0 else network.layers[src].title
    kh, kw = layer.kernel
    images = []
    for k, kernel in enumerate(kernels):
        what = "the input image" if src < 0 else f"{source} channel {k}"
        text = f"Kernel on {what}: {kh} by {kw} weights from {signed(float(kernel.min()), 3)} to {signed(float(kernel.max()), 3)}"
        rgb = diverging_rgb(kernel, limit)
        images.append(
            f'<figure class="kernel-cell"><img class="kernel" id="card-kernel-{k}" src="{render.png_data_url(rgb)}" '
            f'alt="{html.escape(text)}" title="{html.escape(text)}" data-input-channel="{k}" '
            f'data-weights="{html.escape(values_json(kernel))}"><figcaption>{"input" if src < 0 else f"c{k}"}</figcaption></figure>'
        )
    return (
        f'<figure class="kernels-figure"><div class="kernels" id="card-weights" data-count="{len(kernels)}" '
        f'data-weights="{html.escape(values_json(np.asarray(layer.weights)[..., index]))}" '
        f'data-limit="{render.fmt(limit)}">{"".join(images)}</div>'
        f'<figcaption>Its kernel{"s" if len(kernels) != 1 else ""}: {kh}&times;{kw} weights '
        + (f'for each of the {len(kernels)} channels of {html.escape(source)}' if len(kernels) != 1 else f'on {html.escape(source)}')
        + f' (red excites, blue inhibits) {glossary.note("weight")}</figcaption>'
        + diverging_legend(limit, "weight") + '</figure>'
    )


def channel_inputs_html(network: Network, pos: int, index: int, inputs, knocked_out) -> str:
    """What each input channel sends into a conv2d channel for this digit, summed over its map (the
    numbers of its lines in the flow); for a first conv2d layer, an image of what each pixel sends."""
    layer = network.layers[pos]
    src = channels.source_position(network, pos)
    if src < 0 or not channels.is_image(network.layers[src]):
        h, w, _ = layer.input_shape
        pixels = channels.value_contributions(layer, inputs, index).sum(axis=2)
        limit = explain.symmetric_limit(pixels)
        return (
            '<figure>' + diverging_image(pixels, (h, w), limit, "card-pixel-contributions",
                                         "What each input value sends into this channel, summed over its map: "
                                         "red excites it, blue inhibits it", "contributions")
            + f'<figcaption>This digit &times; the weights each value meets, summed over the map '
              f'(sum {signed(float(pixels.sum()))})</figcaption>' + diverging_legend(limit, "value times weights") + '</figure>'
        )
    source = network.layers[src]
    sent = channels.conv_channel_contributions(layer, inputs, index)
    order, values = explain.ranked_contributions(sent)
    scale = float(np.max(np.abs(sent))) if sent.size else 0.0
    dead = set(knocked_out.get(source.name, ()))
    rows = [
        _contribution_row(f"{source.title} channel {k}", f"c{k}", source.name, k, f"contrib-{k}", 0.0, None, float(v), scale,
                          k in dead)
        for k, v in zip(order.tolist(), values.tolist())
    ]
    oh, ow, _ = layer.output_shape
    bias = float(layer.bias[index])
    return (
        f'<h3>What this digit sends in, channel by channel (kernel &times; patch, summed over the {oh}&times;{ow} map)</h3>'
        + _contribution_list(rows, sent, order, "card-contributions", sent)
        + f'<p class="sum">sum {signed(float(sent.sum()))} + bias {signed(bias)} &times; {oh * ow} positions '
          f'= {signed(float(sent.sum()) + bias * oh * ow)}: the net inputs of its map, added up</p>'
    )


def channel_card(network: Network, testset, view: render.View, layer_name: str, index: int,
                 top_digits: bool = True) -> str:
    """The card of one channel of a conv2d or maxpool2d layer for what the view shows.

    It carries ``data-map`` (the channel's map, row by row, the float32 values the view shows) and
    ``data-shape`` ("H,W"). The channel's one number is its map's largest value (its neuron's
    data-activation); a knock-out forces the whole map to 0."""
    pos = _position(network, layer_name)
    layer = network.layers[pos]
    x = network.normalize(view.pixels)
    inputs = explain.layer_input(network, layer_name, x, view.activations)
    fmap = np.asarray(channels.channel_map(view.activations[pos], index))
    h, w = fmap.shape
    peak = float(fmap.max())
    knocked = index in view.knocked_out.get(layer_name, ())
    hidden = layer_name in explain.knockable_layers(network)
    src = channels.source_position(network, pos)
    source_title = "the input image" if src < 0 else network.layers[src].title

    facts = [_fact("map peak", peak, "card-activation", f"{render.short(peak)} ({peak:.4f})")]
    facts.append(_fact("map mean", float(fmap.mean(dtype=np.float64)), "card-map-mean"))
    if layer.kind == "conv2d":
        bias = float(layer.bias[index])
        facts.append(_fact("bias", bias, "card-bias", signed(bias, 4), glossary.note("bias")))
        what = (f"It slides its {layer.kernel[0]}&times;{layer.kernel[1]} kernels over the channels of {html.escape(source_title)}: "
                f"at each position kernel &times; patch, summed, plus its bias, through {html.escape(layer.activation)}.")
    else:
        what = (f"It takes the largest value of each 2&times;2 block of channel {index} of {html.escape(source_title)}: "
                f"a {h}&times;{w} map.")
    parts = [
        f'<section id="neuron-card" class="panel card channel-card" data-layer="{layer_name}" data-index="{index}" '
        f'data-kind="{layer.kind}" data-shape="{h},{w}" data-map="{",".join(render.fmt(v) for v in fmap.reshape(-1).tolist())}" '
        f'tabindex="-1" role="region" aria-labelledby="card-title">',
        card_head(network, layer_name, index),
        f'<p class="stands">One feature map of {h}&times;{w} values. {what} {glossary.note(layer.kind)}</p>',
        f'<dl class="facts">{"".join(facts)}</dl>',
    ]
    if knocked:
        would = float(channels.unknocked_map(layer, inputs, index).max())
        parts.append(f'<p class="ko-note">Knocked out: its whole map is forced to 0 (its largest value would be {would:.4f}).</p>')
    if hidden:
        parts.append(knockout_button(layer_name, index, knocked, "channel"))
    parts.append(map_figure(network, pos, index, fmap))
    if layer.kind == "conv2d":
        parts.append(kernels_figure(network, pos, index))
        parts.append(channel_inputs_html(network, pos, index, inputs, view.knocked_out))
    elif src >= 0 and channels.is_image(network.layers[src]):
        source = network.layers[src]
        parts.append(
            f'<p class="pool-source">Reads channel {index} of {html.escape(source.title)} only: '
            f'<button type="button" class="secondary" id="card-pool-source" data-action="open-neuron" data-layer="{source.name}" '
            f'data-index="{index}" data-focus-key="card-pool-source">Open {html.escape(source.title)} channel {index}</button></p>'
        )
    parts.append('<div id="card-wants" class="card-wants"></div>')  # what it wants: page/why.py (its map's peak)
    if top_digits is True:
        parts.append(top_digits_html(network, testset, layer_name, index, view.knocked_out, view.sample_index,
                                     "the largest value of its map"))
    else:
        parts.append(top_digits_later(top_digits))
    parts.append("</section>")
    return "".join(parts)


def flatten_card(network: Network, view: render.View, layer_name: str, index: int) -> str:
    """The card of a flatten layer's value (only an address names one: the view does not draw the layer):
    which channel and position of the image before it the value is, and a button to that channel's card."""
    pos = _position(network, layer_name)
    layer = network.layers[pos]
    value = float(np.asarray(view.activations[pos]).reshape(-1)[index])
    src = channels.source_position(network, pos)
    if src >= 0 and channels.is_image(network.layers[src]):
        source = network.layers[src]
        r, c, ch = channels.flat_position(source.output_shape, index)
        where = (f'It is channel {ch} of {html.escape(source.title)} at row {r}, column {c}. '
                 f'<button type="button" class="secondary" id="card-flatten-source" data-action="open-neuron" '
                 f'data-layer="{source.name}" data-index="{ch}" data-focus-key="card-flatten-source">'
                 f'Open {html.escape(source.title)} channel {ch}</button>')
    else:
        where = f"It is value {index} of what the layer before gives, unchanged."
    return (
        f'<section id="neuron-card" class="panel card" data-layer="{layer_name}" data-index="{index}" '
        f'data-kind="{layer.kind}" tabindex="-1" role="region" aria-labelledby="card-title">'
        + card_head(network, layer_name, index) +
        f'<dl class="facts">{_fact("value", value, "card-activation")}</dl>'
        f'<p class="stands">A flatten layer only lays the image before it out as one row of values; '
        f'it is not drawn. {where}</p></section>'
    )


# ---------------------------------------------------------------------------
# knock-outs


def knockout_summary(network: Network, knocked_out) -> str:
    """'Knocked out: Hidden layer 1 #3, #9' (empty when nothing is)."""
    ko = explain.normalize_knockout(network, knocked_out)
    if not ko:
        return ""
    groups = [f"{network.layer(name).title} " + ", ".join(f"#{i}" for i in idx) for name, idx in ko.items()]
    count = sum(len(idx) for idx in ko.values())
    return f"{count} knocked out: " + "; ".join(groups)


# ---------------------------------------------------------------------------
# connections (which lines and where: flow.py)


def connections_legend(network) -> str:
    per_neuron = flow.default_per_neuron(network)
    return (
        '<span class="conn-key" id="connections-legend">'
        '<label for="links-per-neuron">Lines per neuron</label> '
        f'<input type="range" id="links-per-neuron" min="0" max="{flow.MAX_PER_NEURON}" step="1" '
        f'value="{per_neuron}" disabled> '
        f'<output id="links-per-neuron-value" for="links-per-neuron">{per_neuron}</output> &middot; '
        f'<span class="swatch" style="background:{LINE_POSITIVE}"></span>excites '
        f'<span class="swatch" style="background:{LINE_NEGATIVE}"></span>inhibits '
        f'&middot; <span id="connections-thickness">{html.escape(thickness_text(network))}</span> '
        '&middot; hover a neuron for its own</span>'
    )


def thickness_text(network) -> str:
    """What a line's thickness says, for this network (flow.relative_strength)."""
    text = "thickness: |activation \u00d7 weight| for this digit"
    if any(flow.summed(network, pos) for pos in range(len(network.layers)) if channels.is_drawn(network.layers[pos])):
        text += "; into a channel (and from the channels before a flatten), summed over the map, relative to that layer's strongest"
    return text


# ---------------------------------------------------------------------------
# the error explorer


def accuracy_html(network: Network, cm: np.ndarray, full_cm: np.ndarray, knocked_out) -> str:
    """Overall accuracy (exact in data-value) and, under a knock-out, the change from the full network."""
    acc = explain.accuracy(cm)
    total = int(cm.sum())
    text = (
        f'<p class="acc">Accuracy <b id="accuracy" data-value="{render.fmt(acc)}">{acc:.2%}</b> '
        f'<span class="muted">{int(np.trace(cm)):,} of {total:,} test digits right</span></p>'
    )
    summary = knockout_summary(network, knocked_out)
    if summary:
        full = explain.accuracy(full_cm)
        delta = (acc - full) * 100
        text += (
            f'<p class="acc-delta" id="accuracy-change" data-value="{render.fmt(acc - full)}">'
            f'{html.escape(summary)}. The full network: {full:.2%} '
            f'(<b class="{"worse" if delta < 0 else "better"}">{signed(delta)} points</b>).</p>'
        )
    return text


def confusion_html(network: Network, cm: np.ndarray, selected: tuple | None = None, compute_ms: float | None = None) -> str:
    """The confusion matrix as a table of focusable cells (rows = true digit, columns = predicted)."""
    labels = network.class_labels
    n = len(labels)
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    off_peak = max(int(off.max()), 1)
    focus = selected if selected is not None else (0, 0)
    head = "".join(f'<th scope="col">{html.escape(l)}</th>' for l in labels)
    rows = []
    for t in range(n):
        row_total = max(int(cm[t].sum()), 1)
        cells = []
        for p in range(n):
            c = int(cm[t, p])
            if t == p:
                kind, strength = "diag", c / row_total
            else:
                kind, strength = ("off" if c else "zero"), (c / off_peak) ** 0.5
            name = f"true {labels[t]}, predicted {labels[p]}: {c} digit{'' if c == 1 else 's'}"
            pressed = "true" if selected == (t, p) else "false"
            if c >= 1000:
                kind += " big"
            cells.append(
                f'<td><button type="button" class="cell {kind}" data-action="cell" data-true="{t}" data-predicted="{p}" '
                f'data-count="{c}" data-focus-key="cell-{t}-{p}" aria-label="{name}" title="{name}" aria-pressed="{pressed}" '
                f'tabindex="{0 if focus == (t, p) else -1}" style="--s:{strength:.3f}">{c if c else "&middot;"}</button></td>'
            )
        rows.append(f'<tr><th scope="row">{html.escape(labels[t])}</th>{"".join(cells)}</tr>')
    ms = f' data-compute-ms="{compute_ms:.3f}"' if compute_ms is not None else ""
    return (
        f'<table id="confusion-matrix" class="cm"{ms}>'
        '<caption>Rows: the true digit. Columns: what the network predicted. '
        'Arrow keys move between cells; Enter shows the digits.</caption>'
        f'<thead><tr><th scope="col"><span class="corner">true&darr; pred&rarr;</span></th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
    )


def cell_digits_html(network: Network, testset, true: int, predicted: int, members, current: int | None, cap: int = CELL_CAP) -> str:
    """The test digits of one matrix cell as thumbnails (at most ``cap``), each loads that digit."""
    labels = network.class_labels
    members = np.asarray(members).reshape(-1)
    count = members.size
    shown = members[:cap]
    kind = "right" if true == predicted else "wrong"
    title = f"True {labels[true]}, predicted {labels[predicted]}: {count:,} digit{'' if count == 1 else 's'}"
    note = f'<p class="note" id="cell-note">Showing {shown.size} of {count:,}.</p>' if count > shown.size else ""
    thumbs = "".join(
        thumb(testset, int(i), f"Show test digit {{i}} (true {labels[true]}, predicted {labels[predicted]})", current, "cthumb")
        for i in shown.tolist()
    )
    body = f'<div class="thumbs">{thumbs}</div>' if count else '<p class="note">No test digit falls in this cell.</p>'
    return (
        f'<div id="cell-digits" class="{kind}" data-true="{true}" data-predicted="{predicted}" data-count="{count}">'
        f'<h3>{html.escape(title)}</h3>{note}{body}</div>'
    )


EXPLORER_HEAD = (
    '<div class="card-head"><h2 id="errors-title" tabindex="-1">Error explorer</h2>'
    '<button type="button" class="icon" data-action="close-errors" data-focus-key="close-errors" '
    'aria-label="Close the error explorer" title="Close">&times;</button></div>'
)


def explorer_progress_text(testset, done: int, total: int, knocked: bool) -> str:
    what = "the network with the knock-outs" if knocked else "the network"
    return f"Running the {len(testset):,} test digits through {what}: {done:,} / {total:,}"


def explorer_progress(network: Network, testset, done: int, total: int, knocked: bool) -> str:
    """The explorer while a pass over the test set runs (in idle time): how far it is, no matrix yet.
    ``knocked``: the pass is that of the network with its knock-outs (the intact network's comes first)."""
    text = explorer_progress_text(testset, done, total, knocked)
    return (
        EXPLORER_HEAD
        + f'<p class="sub">The confusion matrix of all {len(testset):,} MNIST test digits is computed in your '
        'browser, a few digits whenever the page is idle.</p>'
        f'<progress id="explorer-progress" class="explorer-progress" max="{total}" value="{done}" '
        f'aria-label="{html.escape(text)}"></progress>'
        f'<p class="note" id="explorer-progress-text" data-done="{done}" data-total="{total}">'
        f'{html.escape(text)}</p>'
    )


def error_explorer(network: Network, testset, cm, full_cm, knocked_out, compute_ms: float | None,
                   selected: tuple | None, current: int | None) -> str:
    """The whole explorer: accuracy, the matrix, and the digits of the selected cell."""
    parts = [
        EXPLORER_HEAD,
        f'<p class="sub">All {len(testset):,} MNIST test digits, run through the network in your browser just now'
        f'{" with the knock-outs" if explain.normalize_knockout(network, knocked_out) else ""}. '
        f'{glossary.note("confusion", glossary.facts(network.manifest, len(testset)))}</p>',
        accuracy_html(network, cm, full_cm, knocked_out),
        confusion_html(network, cm, selected, compute_ms),
    ]
    if selected is not None:
        members = explain.cell_members(network, testset, selected[0], selected[1], knocked_out)
        parts.append(cell_digits_html(network, testset, selected[0], selected[1], members, current))
    else:
        parts.append('<p class="note" id="cell-digits-hint">Click a cell to see its digits; the red ones are mistakes.</p>')
    return "".join(parts)
