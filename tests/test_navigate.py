"""Arrow keys: every neuron of every layer can be reached, and each key goes where it says."""

from __future__ import annotations

import pytest

from pyscript_app.core import navigate

SHAPES = [[("a", 32), ("b", 32), ("out", 10)], [("a", 128), ("b", 64), ("out", 10)], [("a", 1), ("out", 10)],
          [("a", 512), ("b", 7), ("c", 3), ("d", 64), ("out", 10)]]


@pytest.mark.parametrize("layers", SHAPES)
def test_every_neuron_is_reachable_from_the_first(layers):
    seen, todo = set(), [(layers[0][0], 0)]
    while todo:
        here = todo.pop()
        if here in seen:
            continue
        seen.add(here)
        todo += [n for n in (navigate.move(layers, here, k) for k in navigate.KEYS) if n is not None]
    assert seen == {(name, i) for name, units in layers for i in range(units)}


@pytest.mark.parametrize("layers", SHAPES)
def test_keys_move_as_they_say(layers):
    first, last = layers[0], layers[-1]
    assert navigate.move(layers, (first[0], 0), "ArrowUp") is None
    assert navigate.move(layers, (first[0], 0), "ArrowDown") == ((first[0], 1) if first[1] > 1 else None)
    assert navigate.move(layers, (first[0], 0), "ArrowLeft") is None
    assert navigate.move(layers, (last[0], last[1] - 1), "ArrowRight") is None
    assert navigate.move(layers, (last[0], 3), "End") == (last[0], last[1] - 1)
    assert navigate.move(layers, (last[0], 3), "Home") == (last[0], 0)
    for (name, units), (nxt, nxt_units) in zip(layers, layers[1:]):
        # the bottom neuron of a layer goes to the bottom of the next, the top to the top
        if units > 1:
            assert navigate.move(layers, (name, units - 1), "ArrowRight") == (nxt, nxt_units - 1)
            assert navigate.move(layers, (name, 0), "ArrowRight") == (nxt, 0)
        else:  # a lone neuron leads to the middle of the next layer
            assert navigate.move(layers, (name, 0), "ArrowRight") == (nxt, (nxt_units - 1) // 2)
        assert navigate.move(layers, (nxt, 0), "ArrowLeft") == (name, 0)


def test_other_keys_and_unknown_layers_do_nothing():
    layers = SHAPES[0]
    assert navigate.move(layers, ("a", 3), "Enter") is None
    assert navigate.move(layers, ("zzz", 3), "ArrowDown") is None
