"""flow.py: the connections drawn for a digit are each neuron's strongest, and they stay in the gutters."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyscript_app.core import flow

import reference as ref
from conftest import SITE
from pyscript_app.core import network as nw


def plain_signals(model_dir, pixels, dead=None):
    """Per layer (None for a flatten, which receives no lines): (source name, (sources, units) signal matrix)
    by tests/reference.py's plain loops, fed the layer's input from its float64 pass (each layer rounded to
    float32, as the page shows the values it passes on)."""
    manifest, layers = ref.load_layers(model_dir)
    norm = manifest["input"]["normalization"]
    x = pixels.reshape(1, -1).astype(np.float64) * norm["scale"] + norm["offset"]
    inputs = [x, *ref.forward_layers(layers, x, dead, rounded=np.float32)[:-1]]
    out = []
    for pos, (spec, _, _) in enumerate(layers):
        if spec.get("kind") == "flatten":
            out.append(None)
            continue
        src = pos - 1
        while src >= 0 and layers[src][0].get("kind") == "flatten":
            src -= 1
        out.append((flow.INPUT if src < 0 else layers[src][0]["name"], ref.incoming_signals(layers, pos, inputs[pos][0])))
    return out


def check_top_k(got, column, k, what):
    """``got`` (the chosen sources) are the k largest |signal| of ``column`` (the nonzero ones): every one at
    least the k-th largest and every larger one chosen, equal values (ties) either way, to float32 precision."""
    size = np.abs(column)
    tol = 1e-6 * max(float(size.max()), 1e-12)
    kth = np.sort(size)[::-1][min(k, size.size) - 1] if k else np.inf
    must = {i for i in range(size.size) if size[i] > kth + tol}
    may = {i for i in range(size.size) if size[i] >= kth - tol and size[i] > 0}
    assert must <= set(got) <= may, what
    assert len(got) == len(set(got)) == min(k, int((size > 0).sum())), what


@pytest.mark.parametrize("sample", [0, 7, 4321])
@pytest.mark.parametrize("k", [1, 3])
def test_each_neuron_gets_its_k_strongest_incoming(network, model_dir, testset, sample, k):
    check_k_strongest(network, model_dir, testset, sample, k)


def check_k_strongest(network, model_dir, testset, sample, k, dead=None):
    pixels = testset.images[sample]
    x = network.normalize(pixels)
    links = flow.top_incoming(network, x, network.forward(x, dead), k)
    got = {}
    for link in links:
        got.setdefault((link.target, link.target_index), []).append((link.source, link.source_index))
    assert not [link for link in links if network.layer(link.target).kind == "flatten"]
    for layer, plain in zip(network.layers, plain_signals(model_dir, pixels, dead)):
        if plain is None:
            continue
        source, signals = plain
        for j in range(layer.units):
            chosen = got.get((layer.name, j), [])
            assert {name for name, _ in chosen} <= {source}, (layer.name, j)
            check_top_k([i for _, i in chosen], signals[:, j], k, (layer.name, j))


def test_strengths_are_the_plain_signals_and_strongest_last(network, model_dir, testset):
    """activation x weight for a dense unit; for a channel, or a dense unit after a flatten, the sum over positions."""
    x = network.normalize(testset.images[3])
    links = flow.top_incoming(network, x, network.forward(x), 2)
    plain = {layer.name: p for layer, p in zip(network.layers, plain_signals(model_dir, testset.images[3])) if p}
    assert links
    for link in links:
        source, signals = plain[link.target]
        assert link.source == source
        assert link.strength == pytest.approx(signals[link.source_index, link.target_index], rel=1e-5, abs=1e-6)
    sizes = [abs(link.strength) for link in links]
    assert sizes == sorted(sizes)


def test_a_knocked_out_source_sends_nothing(network, testset):
    x = network.normalize(testset.images[3])
    first = network.layers[0].name
    dead = {first: list(range(network.layers[0].units))}
    links = flow.top_incoming(network, x, network.forward(x, dead), 3)
    assert not [link for link in links if link.source == first]


def test_zero_per_neuron_draws_nothing(network, testset):
    x = network.normalize(testset.images[3])
    assert flow.top_incoming(network, x, network.forward(x), 0) == []


@pytest.mark.parametrize(
    "src_panel, dst_panel, stacked",
    [((0, 0, 100, 400), (160, 0, 100, 400), False),  # side by side
     ((0, 0, 300, 200), (0, 240, 300, 200), True)],  # stacked (a phone)
)
def test_lines_run_in_the_gutter_between_panels(src_panel, dst_panel, stacked):
    src_box, dst_box = (10, 50, 40, 20), (170, 300, 40, 20) if not stacked else (30, 260, 40, 20)
    x1, y1, x2, y2 = flow.anchors(src_panel, dst_panel, src_box, dst_box)[0]
    if stacked:
        assert (y1, y2) == (200, 240) and x1 == 30 and x2 == 50
    else:
        assert (x1, x2) == (100, 160) and y1 == 60 and y2 == 310


def test_the_svg_draws_every_chosen_connection_between_its_two_neurons(network, testset):
    """Side-by-side panels 200 px apart; a pixel's line starts level with its row of the image."""
    x = network.normalize(testset.images[5])
    found = flow.strongest(network, x, network.forward(x), 2)
    panels = {flow.INPUT: (0.0, 0.0, 140.0, 140.0)}
    neurons = {}
    for i, layer in enumerate(network.layers):
        left = 200.0 * (i + 1)
        panels[layer.name] = (left, 0.0, 100.0, 10.0 * layer.units)
        neurons[layer.name] = [(left + 10, 10.0 * j, 8.0, 8.0) for j in range(layer.units)]
    picture = flow.svg(network, found, panels, neurons, (2000, 2000), image_box=(0.0, 0.0, 140.0, 140.0))
    lines = re.findall(r'<line x1="([^"]+)" y1="([^"]+)" x2="([^"]+)" y2="([^"]+)"[^>]* data-from="([^"]+)" '
                       r'data-to="([^"]+)" data-strength="([^"]+)"', picture)
    assert len(lines) == len(found) > 0
    width = network.image_shape[1]
    for x1, y1, x2, y2, source, target, strength in lines:
        name, index = source.split(":")
        into, j = target.split(":")
        src_panel, dst_panel = panels[name], panels[into]
        level = (int(index) // width) * 140 / network.image_shape[0] + 70 / network.image_shape[0] \
            if name == flow.INPUT else 10.0 * int(index) + 4
        assert float(x1) == pytest.approx(src_panel[0] + src_panel[2], abs=0.05)
        assert float(x2) == pytest.approx(dst_panel[0], abs=0.05)
        assert float(y1) == pytest.approx(level, abs=0.05)
        assert float(y2) == pytest.approx(10.0 * int(j) + 4, abs=0.05)
    assert [abs(float(s)) for *_, s in lines] == sorted(abs(float(s)) for *_, s in lines)


def test_the_default_picture_keeps_to_its_line_budget(network):
    """Up to DEFAULT_PER_NEURON lines into each neuron, fewer (never none) when there are so many neurons
    that the picture would pass LINE_BUDGET lines."""
    units = sum(layer.units for layer in network.layers if layer.kind != "flatten")  # a flatten is not drawn
    k = flow.default_per_neuron(network)
    assert 1 <= k <= flow.DEFAULT_PER_NEURON
    assert k * units <= flow.LINE_BUDGET or k == 1
    assert k == flow.DEFAULT_PER_NEURON or (k + 1) * units > flow.LINE_BUDGET


# ---------------------------------------------------------------------------
# a convolutional network: channels, summed over their maps


@pytest.fixture(scope="module")
def cnn(fake_models):
    """tests/fake_exports.py's tiny-cnn (conv valid relu, pool, conv same tanh, pool, flatten, dense, output)."""
    folder = fake_models / "tiny-cnn"
    network, _ = nw.read_export_dir(folder, SITE / "data")
    return network, folder


@pytest.mark.parametrize("sample, k, dead", [
    (0, 3, None), (7, 1, None), (4321, 8, None),
    (21, 3, {"pool_1": [2]}),  # a knocked-out channel sends nothing
    (21, 2, {"conv_2": [0, 4], "dense_1": [3]}),
])
def test_cnn_flow_equals_plain_loops(cnn, testset, sample, k, dead):
    """Into a conv channel: each input channel (the first conv: each pixel) summed over its map; into a pool
    channel: the same channel before; into a dense unit after the flatten: each channel before it, summed
    over its positions. The chosen ones are the k largest, by tests/reference.py's loops."""
    network, folder = cnn
    check_k_strongest(network, folder, testset, sample, k, dead)
    x = network.normalize(testset.images[sample])
    links = flow.top_incoming(network, x, network.forward(x, dead), k)
    plain = {layer.name: p for layer, p in zip(network.layers, plain_signals(folder, testset.images[sample], dead)) if p}
    for link in links:
        source, signals = plain[link.target]
        assert link.source == source
        assert link.strength == pytest.approx(signals[link.source_index, link.target_index], rel=1e-5, abs=1e-6)
    for name, units in (dead or {}).items():
        assert not [link for link in links if link.source == name and link.source_index in units]
    kinds = {(network.layer(link.target).kind, link.source) for link in links}
    assert ("conv2d", flow.INPUT) in kinds and ("dense", "pool_2") in kinds  # pixels in; channels over the flatten
    assert not [link for link in links if "flatten" in (link.source, link.target)]
    pools = [link for link in links if network.layer(link.target).kind == "maxpool2d"]
    assert pools and all(link.source_index == link.target_index for link in pools)


def test_cnn_lines_join_the_drawn_channels(cnn, testset):
    """No flatten panel: the dense layer's lines start at the pool channels before it; a first conv's at
    its pixels. Thickness is relative within each layer of sums (a sum over a map is on its own scale)."""
    network, _ = cnn
    x = network.normalize(testset.images[5])
    found = flow.strongest(network, x, network.forward(x), 2)
    panels = {flow.INPUT: (0.0, 0.0, 140.0, 140.0)}
    neurons = {}
    drawn = [layer for layer in network.layers if layer.kind != "flatten"]
    for i, layer in enumerate(drawn):
        left = 200.0 * (i + 1)
        panels[layer.name] = (left, 0.0, 100.0, 10.0 * layer.units)
        neurons[layer.name] = [(left + 10, 10.0 * j, 8.0, 8.0) for j in range(layer.units)]
    picture = flow.svg(network, found, panels, neurons, (2000, 2000), image_box=(0.0, 0.0, 140.0, 140.0))
    lines = re.findall(r'<line x1="([^"]+)" y1="([^"]+)" x2="([^"]+)" y2="([^"]+)" class="[^"]+" '
                       r'stroke-width="([^"]+)"[^>]* data-from="([^"]+)" data-to="([^"]+)"', picture)
    assert len(lines) == len(found) > 0
    widths = {}
    for x1, y1, x2, y2, width, source, target in lines:
        name, index = source.split(":")
        into, j = target.split(":")
        assert "flatten" not in (name, into)
        assert float(x1) == pytest.approx(panels[name][0] + panels[name][2], abs=0.05)
        assert float(x2) == pytest.approx(panels[into][0], abs=0.05)
        if name == flow.INPUT:
            assert into == "conv_1"
            assert float(y1) == pytest.approx((int(index) // 28) * 5 + 2.5, abs=0.05)
        else:
            assert float(y1) == pytest.approx(10.0 * int(index) + 4, abs=0.05)
        widths.setdefault(into, []).append(float(width))
    assert {"conv_1", "pool_1", "conv_2", "pool_2", "dense_1", "output"} <= widths.keys()
    for name in ("conv_1", "pool_1", "conv_2", "pool_2", "dense_1"):
        assert max(widths[name]) == 4.0  # each layer of sums has its own strongest line
