"""TestsetCache.activation_steps: the whole test set's activations in idle-time steps (the browser's way: blocks of
rows of each dense layer after the pass) give what the one-shot computation gives, for every model."""

from __future__ import annotations

import numpy as np

from pyscript_app.core import explain


def stepped(cache, knocked_out=None):
    steps, count = cache.activation_steps(knocked_out), 0
    while True:
        try:
            next(steps)
            count += 1
        except StopIteration as stop:
            return stop.value, count


def test_steps_give_the_one_shot_activations(export, monkeypatch):
    network, testset = export
    whole = explain.TestsetCache(network, testset).activations()
    monkeypatch.setattr(explain, "AFTER_WORK", 20_000)  # small blocks of rows, as in the browser
    cache = explain.TestsetCache(network, testset)
    acts, steps = stepped(cache)
    assert steps > len(network.layers) - cache.end  # more than one step a layer
    assert len(acts) == len(whole)
    for mine, theirs in zip(acts, whole):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)
    assert np.array_equal(cache.predictions(), whole[-1].argmax(axis=1))
    assert cache.activations() is acts  # kept: the next call costs nothing
    again, steps = stepped(cache)
    assert again is acts and steps == 0


def test_steps_with_a_knock_out_equal_the_forward_pass(export, monkeypatch):
    network, testset = export
    monkeypatch.setattr(explain, "AFTER_WORK", 20_000)
    layer = explain.knockable_layers(network)[-1]
    knocked = {layer: [0]}
    acts, _ = stepped(explain.TestsetCache(network, testset), knocked)
    x = network.normalize(testset.images[:300])
    want = network.forward(x, knocked_out=knocked)
    np.testing.assert_allclose(acts[-1][:300], want[-1], rtol=1e-5, atol=1e-6)
    pos = [l.name for l in network.layers].index(layer)
    assert np.all(acts[pos][:, 0] == 0)
