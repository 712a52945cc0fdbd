"""What to draw: HTML fragments for the input, every layer, and the output.

Pure Python + numpy, no browser imports. The page sets these strings as
innerHTML; the build (tools/build_site.py) calls the very same functions to
pre-render the first view into index.html, so the page shows a real digit
with its real activations before Python has even started.

Everything about the layers (names, titles, sizes, activations, class
labels) comes from the network, i.e. from the manifest; each layer's grid is
derived from its width (:func:`grid_for`) and its colour scale from its
activation's range (colours.scale_for). The View itself is built in
view.py, PNGs are encoded in png.py, and draw mode's inspector is in
render_draw.py; their names stay available here.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import numpy as np

from pyscript_app.views.colours import (  # noqa: F401  (the scales, used here and by the callers of render)
    DIVERGING_STOPS, LEVELS, SCALE_STOPS, VIRIDIS_01, Scale, cell_colours, colour, hex_colour, scale_for, scale_gradient,
    levels_rgb, scale_levels, scale_rgb, text_colour,
)
from pyscript_app.views import glossary
from pyscript_app.core.network import Layer, Network
from pyscript_app.views.png import png_data_url
from pyscript_app.core.view import View, view_for_drawing, view_for_sample  # noqa: F401  (re-exported: what is shown)

# ---------------------------------------------------------------------------
# grids: a layer's units laid out from its width alone

TEXT_CELL = 26  # px: a cell that shows its value
ROWS = 16  # rows of a layer up to 128 units (32 units: 16x2)


@dataclass(frozen=True)
class Grid:
    rows: int
    columns: int
    cell: int  # px, the cell's height (its width follows the column)
    text: bool  # whether the cells show their value


def grid_for(units: int) -> Grid:
    """Rows x columns for a layer of ``units`` (filled column by column).

    Up to 16 units: one column. Up to 64: 16 rows (32 units: 16x2), cells
    that show their value. Up to 128: 16 rows of smaller cells; up to 512:
    32 rows of small cells (16 columns at most). At most about 470 px high
    and 230 px wide, so four hidden layers fit beside the input and the
    output on a 1400 px screen; a phone lays each grid out transposed.
    """
    n = max(int(units), 1)
    if n <= ROWS:
        return Grid(n, 1, TEXT_CELL, True)
    if n <= 4 * ROWS:
        rows = math.ceil(n / 2) if n <= 2 * ROWS else ROWS
        return Grid(rows, math.ceil(n / rows), TEXT_CELL, True)
    if n <= 8 * ROWS:
        return Grid(ROWS, math.ceil(n / ROWS), 18, False)
    rows = 2 * ROWS
    return Grid(rows, math.ceil(n / rows), 11, False)



# ---------------------------------------------------------------------------
# images


def digit_image(pixels: np.ndarray, element_id: str = "", alt: str = "", attrs: str = "", cls: str = "digit") -> str:
    """A 28x28 digit drawn white on black, scaled up with crisp pixels by CSS."""
    ident = f' id="{element_id}"' if element_id else ""
    return f'<img{ident} class="{cls}" src="{png_data_url(pixels)}" alt="{html.escape(alt)}"{attrs}>'



# ---------------------------------------------------------------------------
# layers


def fmt(value: float) -> str:
    """Full float precision (the float32 value exactly), for data- attributes."""
    return repr(float(value))


def percent(p: float) -> str:
    """A probability as the page writes it everywhere: 99.9%."""
    return f"{p * 100:.1f}%"


def labeller(layer: Layer):
    """``label(index, value)``: the neuron's name and value, also its tooltip. It contains the text the
    neuron shows, so what is read out matches what is seen; the exact value follows in brackets.
    (Made once a layer: a click labels every neuron of the view.)"""
    title = layer.title
    if is_image(layer):
        return lambda index, value: f"{title}, channel {index}: peak {short(value)} (the largest value of its feature map, {value:.4f})"
    if layer.is_output:
        labels = layer.labels
        return lambda index, value: f"{labels[index]} {percent(value)}, {title}, digit {labels[index]} (probability {value:.4f})"
    return lambda index, value: f"{title}, neuron {index}: {short(value)} (activation {value:.4f})"


def neuron_attrs(layer: Layer, index: int, value: float, view: View, label=None) -> dict[str, str]:
    """A neuron button's attributes (``label``: the layer's :func:`labeller`, made once a layer)."""
    name = layer.name
    dead = index in view.knocked_out.get(name, ())
    selected = view.selected is not None and view.selected == (name, index)
    text = (label or labeller(layer))(index, value)
    attrs = {
        "type": "button",
        "class": f'neuron{" knocked-out" if dead else ""}{" selected" if selected else ""}',
        "data-layer": name, "data-index": str(index), "data-activation": fmt(value),
    }
    if dead:
        attrs["data-knocked-out"] = "true"
        text += " (knocked out)"
    if selected:
        attrs["aria-pressed"] = "true"
    if index:
        attrs["tabindex"] = "-1"  # one Tab stop per layer; the arrow keys move within it (navigate.py)
    attrs["aria-label"] = text  # also the tooltip (style.css shows it on hover and focus): no title, no second tooltip
    return attrs


# A neuron is a small element tree, (tag, attributes, text or child elements). The same trees
# give the HTML (markup: the pre-rendered first view, a whole re-render) and the in-place update
# of a view already on the page (view_patch), so both always draw the same.


def attributes(attrs: dict[str, str]) -> str:
    """An element's attributes as HTML: ` name="value"` each, the values escaped."""
    return "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())


def markup(element: tuple) -> str:
    tag, attrs, content = element
    inner = html.escape(content, quote=False) if isinstance(content, str) else "".join(map(markup, content))
    return "<" + tag + attributes(attrs) + f">{inner}</{tag}>"


def flatten(elements, rows: list | None = None) -> list:
    """Every element of the trees in document order: [tag, child element count, attributes, text or None]."""
    rows = [] if rows is None else rows
    for tag, attrs, content in elements:
        text = isinstance(content, str)
        rows.append([tag, 0 if text else len(content), attrs, content if text else None])
        if not text:
            flatten(content, rows)
    return rows


def short(value: float) -> str:
    """A value in at most 4 characters for inside a cell: 0.52, -0.5, 12.3, 140."""
    a = abs(value)
    if a < 9.995:
        return f"{value:.2f}" if value >= 0 else f"{value:.1f}"
    return f"{value:.1f}" if a < 99.95 else f"{value:.0f}"


def hidden_neurons(layer: Layer, acts: np.ndarray, view: View) -> list:
    scale = scale_for(layer)
    text = grid_for(layer.units).text
    label = labeller(layer)
    cells = []
    for i, a in enumerate(acts.tolist()):
        background, ink = cell_colours(a, scale)
        attrs = neuron_attrs(layer, i, a, view, label)
        attrs["style"] = f"background:{background};color:{ink}"
        cells.append(("button", attrs, (("span", {}, short(a) if text else ""),)))
    return cells


def output_neurons(layer: Layer, probs: np.ndarray, view: View) -> list:
    best = int(np.argmax(probs))
    label = labeller(layer)
    rows = []
    for i, p in enumerate(probs.tolist()):
        rows.append(("button", neuron_attrs(layer, i, p, view, label), (
            ("span", {"class": "digit-label best" if i == best else "digit-label"}, layer.labels[i]),
            ("span", {"class": "bar"}, (("span", {"style": f"width:{p * 100:.2f}%;background:{cell_colours(p)[0]}"}, ""),)),
            ("span", {"class": "prob"}, " " + percent(p)),  # (the space: read out as "7 99.9%", not "799.9%")
        )))
    return rows


def neurons(network: Network, layer: Layer, acts: np.ndarray, view: View) -> tuple[str, list]:
    """(class of the layer's neuron container, the neuron trees): bars for a layer with class labels, feature maps
    for a conv2d or maxpool2d layer, else a grid."""
    if layer.is_output:
        return "bars", output_neurons(layer, acts, view)
    if is_image(layer):
        return "fmaps", map_neurons(layer, acts, view)
    return "grid", hidden_neurons(layer, acts, view)


def grid_attrs(layer: Layer) -> str:
    g = grid_for(layer.units)
    return f'class="grid{"" if g.text else " dense"}" style="--rows:{g.rows};--cols:{g.columns};--cell:{g.cell}px"'


def hidden_layer(layer: Layer, acts: np.ndarray, view: View) -> str:
    g = grid_for(layer.units)
    return (
        f'<section class="panel layer" id="layer-{layer.name}" aria-labelledby="title-{layer.name}" data-units="{layer.units}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} neurons &middot; {html.escape(layer.activation)}'
        f'<span class="grid-shape"> &middot; {g.rows}&times;{g.columns}</span> '
        f'{glossary.note(layer.activation, extra=glossary.curve_svg(layer.activation))}</p>'
        f'<div {grid_attrs(layer)}>{"".join(map(markup, hidden_neurons(layer, acts, view)))}</div></section>'
    )


# ---------------------------------------------------------------------------
# convolutional layers: one feature map per channel

MAP_AREA = (440, 150)  # px (height, width): the most one layer's maps take on a laptop screen; narrow,
# so that a CNN's six panels and the gutters its lines run in fit a 1400 px screen side by side


def is_image(layer: Layer) -> bool:
    """A conv2d or maxpool2d layer: its output is an image (height, width, channels), drawn as feature maps."""
    return len(layer.output_shape) == 3


def drawn_layers(network: Network) -> list[tuple[int, Layer]]:
    """(position, layer) of every layer the view draws: all but a flatten, which only reshapes
    (the first dense layer after it reads the feature maps before it)."""
    return [(i, layer) for i, layer in enumerate(network.layers) if layer.kind != "flatten"]


def scale_of(network: Network, layer: Layer) -> Scale:
    """A layer's colour scale. A pooling layer has no activation of its own: it shows values of the
    conv layer before it, on that layer's scale (pixels on [0, 1] if it pools the input)."""
    i = network.layers.index(layer)
    while not hasattr(layer, "activation"):
        if i == 0:
            return VIRIDIS_01
        i -= 1
        layer = network.layers[i]
    return scale_for(layer)


def map_grid(height: int, width: int, channels: int) -> tuple[int, int, int]:
    """(rows, columns, px of a map's side) of a layer's feature maps: each map drawn about three screen
    pixels per value (32 to 84 px), smaller (down to 16 px) when its maps would not fit in MAP_AREA as
    columns of as many maps as its height holds; filled column by column."""
    side = max(height, width)
    px = min(84, max(32, 3 * side))
    area_h, area_w = MAP_AREA

    def columns(px: int) -> int:  # as many maps to a column as MAP_AREA's height holds
        return math.ceil(channels / max(1, min(channels, area_h // (px + 4))))

    while px > 16 and columns(px) * (px + 4) > area_w:
        px = max(16, px - 4)
    cols = columns(px)
    return math.ceil(channels / cols), cols, px


def sprite(maps: np.ndarray, scale: Scale) -> np.ndarray:
    """A layer's (h, w, channels) maps as one image on its colour scale: the maps side by side, each
    map's tile between 1-pixel gutters that repeat its left and right edges (so a neighbour's pixel
    never shows at a map's edge, whatever the zoom and rounding); shape (h, channels * (w + 2), 3)."""
    h, w, c = maps.shape
    levels = scale_levels(maps, scale).transpose(0, 2, 1)  # (h, c, w)
    tiles = np.empty((h, c, w + 2), dtype=levels.dtype)
    tiles[:, :, 1:-1] = levels
    tiles[:, :, 0], tiles[:, :, -1] = levels[:, :, 0], levels[:, :, -1]
    return levels_rgb(tiles, scale.kind == "diverging").reshape(h, c * (w + 2), 3)


def sprite_size(w: int, channels: int) -> str:
    """CSS background-size that draws one map's tile of :func:`sprite` over the whole element."""
    return f"{100 * channels * (w + 2) / w:.4f}% 100%"


def sprite_position(w: int, channels: int, index: int) -> str:
    """CSS background-position of channel ``index``'s tile (past its gutter). A percentage p places
    the image's point at p of its width on the element's point at p, i.e. shifts it by p times
    (element - image); it holds at any element size (a laptop's grid, a phone's wider cells)."""
    x = 100 * (index * (w + 2) + 1) / (channels * (w + 2) - w)
    return f"background-position:{x:.4f}% 0%"


def maps_attrs(maps: np.ndarray, scale: Scale) -> dict[str, str]:
    """The attributes of a layer's `.fmaps` container: its maps' sprite (one PNG a layer) as its background-image,
    and its size per map in --sprite-size (style.css draws each `.fmap-img` from them)."""
    _, w, c = maps.shape
    url = png_data_url(sprite(maps, scale), level=1)
    return {"class": "fmaps", "style": f"background-image:url({url});--sprite-size:{sprite_size(w, c)}"}


def map_neurons(layer: Layer, maps: np.ndarray, view: View) -> list:
    """One button per channel (a `.neuron` whose data-activation is its map's maximum) holding its map
    (its tile of the layer's sprite, :func:`maps_attrs`)."""
    h, w, c = maps.shape
    peaks = maps.reshape(-1, c).max(axis=0).tolist()
    label = labeller(layer)
    cells = []
    for i in range(c):
        attrs = neuron_attrs(layer, i, peaks[i], view, label)
        attrs["class"] += " fmap"
        image = {"class": "fmap-img", "data-shape": f"{h},{w}", "style": sprite_position(w, c, i)}
        cells.append(("button", attrs, (("span", image, ""),)))
    return cells


def map_layer(network: Network, layer: Layer, maps: np.ndarray, view: View) -> str:
    h, w, c = layer.output_shape
    rows, cols, px = map_grid(h, w, c)
    if layer.kind == "conv2d":
        k = layer.kernel[0]
        what = (f"{c} channels &middot; {h}&times;{w} &middot; {k}&times;{k} kernels, {html.escape(layer.padding)} "
                f"&middot; {html.escape(layer.activation)}")
    else:
        what = f"{c} channels &middot; {h}&times;{w} &middot; max of 2&times;2"
    trees = map_neurons(layer, maps, view)
    box = maps_attrs(maps, scale_of(network, layer))
    return (
        f'<section class="panel layer maps" id="layer-{layer.name}" aria-labelledby="title-{layer.name}" '
        f'data-units="{c}" data-kind="{layer.kind}" style="--rows:{rows};--cols:{cols};--px:{px}px">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{what} {glossary.note(layer.kind)}</p>'
        f'{markup(("div", box, trees))}</section>'
    )


def output_layer(layer: Layer, probs: np.ndarray, view: View) -> str:
    return (
        f'<section class="panel layer output" id="layer-{layer.name}" aria-labelledby="title-{layer.name}">'
        f'<h2 id="title-{layer.name}">{html.escape(layer.title)}</h2>'
        f'<p class="sub">{layer.units} classes &middot; {html.escape(layer.activation)} {glossary.note("softmax")}</p>'
        f'<div class="bars">{"".join(map(markup, output_neurons(layer, probs, view)))}</div></section>'
    )


def _input_notes(network: Network) -> str:
    figures = glossary.facts(network.manifest)
    return glossary.note("input", figures) + glossary.note("normalization", figures)


def input_caption(view: View) -> str:
    if view.sample_index is not None:
        return f"MNIST test digit #{view.sample_index}"
    return "Your drawing, as the network sees it"


def input_image_attrs(view: View) -> dict[str, str]:
    """``#input-image``'s attributes: the digit as a PNG, what it is, and its test digit (empty for a drawing)."""
    if view.sample_index is not None:
        alt = f"Test digit number {view.sample_index}, labelled {view.true_label}"
    else:
        alt = "Your drawing, preprocessed to 28 by 28 pixels"
    return {"id": "input-image", "class": "digit", "src": png_data_url(view.pixels), "alt": alt,
            "data-sample-index": "" if view.sample_index is None else str(view.sample_index)}


def verdict(network: Network, view: View) -> str:
    """``#verdict``: the prediction with its probability, the label and whether they agree."""
    predicted = view.predicted
    label_of = network.class_labels
    if view.true_label is None:
        truth, mark, vclass = '<span id="true-label" data-digit="">label: none (drawn)</span>', "", ""
    else:
        right = predicted == view.true_label
        truth = f'<span id="true-label" data-digit="{view.true_label}">label <b>{label_of[view.true_label]}</b></span>'
        mark = "&#10003; right" if right else "&#10007; wrong"
        vclass = "right" if right else "wrong"
    confidence = float(view.activations[-1][predicted])
    return (
        f'<p class="verdict {vclass}" id="verdict"><span id="prediction" data-digit="{predicted}">'
        f'predicted <b>{label_of[predicted]}</b> <small>({percent(confidence)})</small></span> {truth} '
        f'<span class="mark">{mark}</span></p>'
    )


def input_panel(network: Network, view: View) -> str:
    image = "<img" + attributes(input_image_attrs(view)) + ">"
    return (
        '<section class="panel input" id="input-panel" aria-labelledby="title-input">'
        f'<h2 id="title-input">Input</h2><p class="sub"><span id="input-caption">{input_caption(view)}</span> '
        f'{_input_notes(network)}</p>{image}{verdict(network, view)}</section>'
    )


def input_patch(network: Network, view: View) -> list:
    """The parts of the input panel that change from one view to the next (its caption, the digit, the verdict),
    as :func:`view_patch` ops: the panel's notes stay as they are (open or closed), nothing else is parsed again."""
    return [["#input-caption", [["span", 0, {"id": "input-caption"}, input_caption(view)]]],
            ["#input-image", [["img", 0, input_image_attrs(view), None]]],
            ["#verdict", verdict(network, view)]]


def network_view(network: Network, view: View) -> str:
    """The whole view: input, every layer left to right, output."""
    parts = [input_panel(network, view)]
    for i, layer in drawn_layers(network):
        acts = view.activations[i]
        if layer.is_output:
            parts.append(output_layer(layer, acts, view))
        elif is_image(layer):
            parts.append(map_layer(network, layer, acts, view))
        else:
            parts.append(hidden_layer(layer, acts, view))
    return "".join(parts)


# A neuron's attributes that its place alone sets (its layer, named in the patch's selector, and its index
# there): every view of the same shape has them alike, so a view patch leaves them as they are and does not
# send them (a quarter of a relu click's patch).
PLACE_ATTRS = ("type", "data-layer", "data-index", "tabindex")


def view_patch(network: Network, view: View, maps: bool = True) -> str:
    """The same view as :func:`network_view`, as an update of a view already on the page.

    JSON for the page's ``nnvApplyPatch`` (site/patch.js), one call instead of a few hundred
    (each call from Python into the page costs): the input panel's changing parts are written, and every
    element of each layer's neurons gets the attributes and text of its tree above, but for
    :data:`PLACE_ATTRS`, which it keeps (and a map layer's `.fmaps` container its new sprite,
    unless ``maps`` is false: then :func:`maps_patch` writes them), so nothing of the previous
    view stays. It applies only to a view of the same shape (the page checks every element's
    tag and child count first, and otherwise re-renders).
    """
    ops = input_patch(network, view)
    for i, layer in drawn_layers(network):
        acts = view.activations[i]
        container, trees = neurons(network, layer, acts, view)
        if maps and is_image(layer):
            ops.append(_maps_op(network, layer, acts))
        rows = flatten(trees)
        for _, _, attrs, _ in rows:  # (dicts made for this patch alone)
            for name in PLACE_ATTRS:
                attrs.pop(name, None)
        ops.append([f"#layer-{layer.name} > .{container} *", rows, PLACE_ATTRS])
    return json.dumps(ops, separators=(",", ":"), check_circular=False)  # trees, no cycles: a little quicker


def maps_patch(network: Network, view: View) -> str | None:
    """The feature maps' part of :func:`view_patch` alone (each map layer's sprite on its `.fmaps`
    container), as JSON for ``nnvApplyPatch``; None for a network without map layers."""
    ops = [_maps_op(network, layer, view.activations[i]) for i, layer in drawn_layers(network) if is_image(layer)]
    return json.dumps(ops, separators=(",", ":")) if ops else None


def _maps_op(network: Network, layer: Layer, maps: np.ndarray) -> list:
    """The maps' container holds their sprite: one image a layer."""
    return [f"#layer-{layer.name} > .fmaps", [["div", maps.shape[-1], maps_attrs(maps, scale_of(network, layer)), None]]]


def tick(value: float) -> str:
    """A scale's end or middle in at most three significant digits: 0, 0.5, 1, 2.44, -4.41."""
    return f"{value:.3g}"


def scale_key(layer: Layer) -> str:
    """One layer's colour key: its name, the ramp in use and the values at its ends and middle
    (a pooling layer shares the key of the conv layer before it)."""
    sc = scale_for(layer)
    mid = (sc.low + sc.high) / 2
    low, high = tick(sc.low), tick(sc.high)
    where = {"p99": " (top: 99th percentile over the test set)", "default": ""}.get(sc.source, "")
    colours = "blue to white to red" if sc.kind == "diverging" else "dark purple to bright yellow"
    label = f"{layer.title} ({layer.activation}): {low} to {high}, {colours}{where}"
    return (
        f'<span class="scale-key" data-layer="{layer.name}" data-scale="{sc.kind}" data-low="{fmt(sc.low)}" '
        f'data-high="{fmt(sc.high)}" role="img" aria-label="{html.escape(label)}">'
        f'<span class="scale-name">{html.escape(layer.title)} &middot; {html.escape(layer.activation)}</span>'
        f'<span class="scale"><span class="ramp" style="background:{scale_gradient(sc.stops)}"></span>'
        f'<span class="ticks"><span>{low}</span><span>{tick(mid)}</span><span>{high}{"+" if sc.source != "range" else ""}</span></span></span></span>'
    )


def legend(network: Network) -> str:
    """The colour keys of every hidden layer (each its own scale) and of the output's probabilities."""
    keys = "".join(scale_key(layer) for layer in network.hidden_layers if hasattr(layer, "activation"))
    return f'<div class="legend" id="legend"><span>activation</span>{keys}</div>'


def layer_shape(entry: dict) -> str:
    """A manifest layer in a few characters: "32 sigmoid", "8@26x26 relu" (a conv layer), "pool 13x13"; "" for a flatten."""
    kind = entry.get("kind", "dense")
    if kind == "conv2d":
        h, w, c = entry["output_shape"]
        return f'{c}@{h}\u00d7{w} {entry["activation"]}'
    if kind == "maxpool2d":
        h, w, _ = entry["output_shape"]
        return f"pool {h}\u00d7{w}"
    if kind == "flatten":
        return ""
    return f'{entry["units"]} {entry["activation"]}'


def model_shape(manifest: dict) -> str:
    """784 &rarr; 32 sigmoid &rarr; ... &rarr; 10 softmax."""
    parts = [str(manifest["input"]["size"])] + [layer_shape(l) for l in manifest["layers"]]
    return " &rarr; ".join(html.escape(p) for p in parts if p)


def model_facts(manifest: dict) -> str:
    """A line about the model, straight from the manifest's training facts."""
    t = manifest.get("training") or {}
    acc = t.get("test_accuracy")
    bits = [model_shape(manifest)]
    if acc is not None:
        count = (manifest.get("dataset") or {}).get("count")
        bits.append(f"test accuracy {acc:.2%}" + (f" on {count:,} test digits" if count else ""))
    if t.get("epochs"):
        bits.append(html.escape(f'trained {t["epochs"]} epochs, batch {t.get("batch_size", "?")}, seed {t.get("seed", "?")}'))
    if isinstance(t.get("augmentation"), dict) and t["augmentation"].get("copies"):
        bits.append(f'plus {t["augmentation"]["copies"]} drawing-like varied copies of the training digits')
    if t.get("keras_version"):
        bits.append(html.escape(f'Keras {t["keras_version"]} / TensorFlow {t.get("tensorflow_version", "?")}'))
    return " &middot; ".join(bits)




# ---------------------------------------------------------------------------
# the models: the picker and the card of the model shown


def model_summary(manifest: dict) -> dict:
    """What a model's card says: title, shape, activations, test accuracy (from its manifest alone)."""
    weighted = [l for l in manifest["layers"] if "activation" in l]  # the dense and conv layers
    acc = (manifest.get("training") or {}).get("test_accuracy")
    return {
        "title": manifest.get("title") or manifest.get("id") or "Network",
        "description": manifest.get("description") or "",
        "shape": " \u2192 ".join([str(manifest["input"]["size"])]
                                  + [str(l["units"]) if "units" in l else layer_shape(l).split(" ")[0] for l in weighted]),
        "activations": ", ".join(str(l["activation"]) for l in weighted),
        "accuracy": None if acc is None else float(acc),
        "hidden": len(weighted) - 1,
    }


def model_option_text(manifest: dict, user: bool = False) -> str:
    s = model_summary(manifest)
    return ("Your model: " if user else "") + s["title"]


def model_picker(entries, current: str) -> str:
    """The <option>s of #model-picker: ``entries`` is [(id, manifest or None, is the user's own)]."""
    options = []
    for model_id, manifest, user in entries:
        text = model_option_text(manifest, user) if manifest else model_id
        chosen = " selected" if model_id == current else ""
        options.append(f'<option value="{html.escape(model_id)}"{chosen}>{html.escape(text)}</option>')
    return "".join(options)


def model_card(model_id: str, manifest: dict, user: bool = False) -> str:
    """The card of the model shown: its title, shape, activations and test accuracy."""
    s = model_summary(manifest)
    acc = "not stated" if s["accuracy"] is None else f"{s['accuracy']:.2%}"
    layers = "hidden layer" if s["hidden"] == 1 else "hidden layers"
    return (
        f'<div id="model-card" class="model-card" data-model="{html.escape(model_id)}"'
        f'{" data-user=" + chr(34) + "true" + chr(34) if user else ""}>'
        f'<b class="model-title">{html.escape(("Your model: " if user else "") + s["title"])}</b> '
        f'<span class="model-shape" title="layer widths, input to output">{html.escape(s["shape"])}</span> '
        f'<span class="model-acts">{s["hidden"]} {layers} &middot; {html.escape(s["activations"])}</span> '
        f'<span class="model-acc" data-value="{"" if s["accuracy"] is None else fmt(s["accuracy"])}">test accuracy {acc}</span>'
        + (f'<span class="model-desc">{html.escape(s["description"])}</span>' if s["description"] else "")
        + "</div>"
    )
