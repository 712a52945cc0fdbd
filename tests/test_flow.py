"""flow.py: the connections drawn for a digit are each neuron's strongest, and they stay in the gutters."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyscript_app.core import flow

import reference as ref


def plain_signals(network, pixels):
    """Each layer's (fan_in, units) signal matrix: its inputs from tests/reference.py's float64 pass, times its weights."""
    x = pixels.reshape(1, -1).astype(np.float64) * network.normalization["scale"] + network.normalization["offset"]
    layers = [(l.weights, l.bias, l.activation) for l in network.layers]
    inputs = [x, *ref.forward(layers, x)[:-1]]
    return [a[0][:, None] * w.astype(np.float64) for a, (w, _, _) in zip(inputs, layers)]


@pytest.mark.parametrize("sample", [0, 7, 4321])
@pytest.mark.parametrize("k", [1, 3])
def test_each_neuron_gets_its_k_strongest_incoming(network, testset, sample, k):
    pixels = testset.images[sample]
    x = network.normalize(pixels)
    links = flow.top_incoming(network, x, network.forward(x), k)
    names = [flow.INPUT] + [layer.name for layer in network.layers]
    got = {}
    for link in links:
        got.setdefault((link.target, link.target_index), set()).add((link.source, link.source_index))
    for pos, (layer, signals) in enumerate(zip(network.layers, plain_signals(network, pixels))):
        for j in range(layer.units):
            column = signals[:, j]
            ranked = sorted(range(column.size), key=lambda i: -abs(column[i]))
            expected = {(names[pos], i) for i in ranked[:k] if column[i] != 0}
            assert got.get((layer.name, j), set()) == expected, (layer.name, j)


def test_strengths_are_activation_times_weight_and_strongest_last(network, testset):
    x = network.normalize(testset.images[3])
    acts = network.forward(x)
    links = flow.top_incoming(network, x, acts, 2)
    inputs = {flow.INPUT: x, **{layer.name: a for layer, a in zip(network.layers, acts)}}
    for link in links:
        w = network.layer(link.target).weights[link.source_index, link.target_index]
        assert link.strength == pytest.approx(float(inputs[link.source][link.source_index]) * float(w), rel=1e-6)
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
    units = sum(layer.units for layer in network.layers)
    k = flow.default_per_neuron(network)
    assert 1 <= k <= flow.DEFAULT_PER_NEURON
    assert k * units <= flow.LINE_BUDGET or k == 1
    assert k == flow.DEFAULT_PER_NEURON or (k + 1) * units > flow.LINE_BUDGET
