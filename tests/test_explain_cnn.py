"""The test-set cache of a convolutional network (tests/fake_exports.py's tiny-cnn): the blocked pass over
the test set per knock-out of channels, resumed in pieces, and what it keeps of the image layers (each
digit's channel peaks), against tests/reference.py's plain loops (never the page's own forward)."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from conftest import SITE
from pyscript_app.core import explain
from pyscript_app.core import network as nw

MODEL = "tiny-cnn"


@pytest.fixture(scope="module")
def cnn(fake_models):
    network, testset = nw.read_export_dir(fake_models / MODEL, SITE / "data")
    _, chain = ref.load_chain(fake_models / MODEL)
    x = network.normalize(testset.images)  # float32 pixels / 255: the reference reads the same inputs
    return network, testset, chain, x


def reference_pass(chain, x, dead=None):
    return ref.forward_chain(chain, x, dead=dead, pre=True, rounded=np.float32, peaks=True)


def confusion(labels, predicted):
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.intp), predicted), 1)
    return cm


def test_a_knockout_pass_resumed_in_pieces_equals_one_go(cnn):
    network, testset, chain, x = cnn
    ko = {"pool_1": [2]}
    pieces = explain.TestsetCache(network, testset)
    assert not pieces.is_ready(ko) and pieces.pass_progress(ko) == (0, len(testset))
    one, two = pieces.first_layer_blocks(ko), pieces.first_layer_blocks(ko)  # two idle-time jobs share the work
    seen = [next(one), next(two), next(one)]
    block = pieces.block
    assert seen == [block, 2 * block, 3 * block] and pieces.pass_progress(ko) == (3 * block, len(testset))
    assert not pieces.first_layer_ready  # the intact network's pass is another one
    for _ in pieces.first_layer_blocks(ko):
        pass
    assert pieces.is_ready(ko) and not pieces.is_ready()
    whole = explain.TestsetCache(network, testset)
    for got, want in zip(pieces.activations(ko), whole.activations(ko)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(pieces.confusion(ko), whole.confusion(ko))
    # ... and both are the reference with that channel's maps zeroed
    names = [layer.name for layer in network.layers]
    want = reference_pass(chain, x, dead={names.index("pool_1"): [2]})
    got = pieces.activations(ko)
    for pos, (_, a) in enumerate(want):
        np.testing.assert_allclose(got[pos], a, atol=1e-6 * max(1.0, float(np.abs(a).max())), rtol=0)
    assert np.all(got[names.index("pool_1")][:, 2] == 0)


def test_peaks_are_the_maps_maxima_and_a_knocked_channel_keeps_its_own(cnn):
    network, testset, chain, x = cnn
    names = [layer.name for layer in network.layers]
    conv = names.index("conv_2")
    want = reference_pass(chain, x, dead={conv: [1]})
    ko = {"conv_2": [1]}
    for pos in (names.index("conv_1"), conv, names.index("pool_2")):
        before, after = want[pos]
        for channel in range(network.layers[pos].units):
            np.testing.assert_allclose(explain.unit_values(network, testset, names[pos], channel, ko), before[:, channel], atol=1e-6)
            np.testing.assert_allclose(explain.unit_values(network, testset, names[pos], channel, ko, by="activation"),
                                       after[:, channel], atol=1e-6)
    assert np.all(explain.unit_values(network, testset, "conv_2", 1, ko, by="activation") == 0)
    # a channel's top digits: the 9 whose map peaks highest (ties aside)
    top = explain.top_exciting(network, testset, "conv_2", 3, knocked_out=ko)
    peaks = want[conv][0][:, 3]
    rest = np.setdiff1d(np.arange(len(peaks)), top)
    assert len(top) == 9 and peaks[top].min() >= peaks[rest].max() - 1e-6
    with pytest.raises(ValueError, match="peaks"):
        explain.cache_for(network, testset).pre_activations("conv_2")


def test_channel_knockouts_give_the_reference_confusion_matrix(cnn):
    network, testset, chain, x = cnn
    names = [layer.name for layer in network.layers]
    for ko in ({"conv_1": [0, 3]}, {"conv_2": [5], "dense_1": [2]}):
        dead = {names.index(name): units for name, units in ko.items()}
        out = reference_pass(chain, x, dead=dead)[-1][1]
        top2 = np.sort(out, axis=1)[:, -2:]
        close = int((top2[:, 1] - top2[:, 0] < 1e-5).sum())  # a digit whose two best are within float noise
        got = explain.confusion_matrix(network, testset, ko)
        assert got.sum() == len(testset)
        assert np.abs(got - confusion(testset.labels, out.argmax(axis=1))).sum() <= 2 * close


def test_only_a_few_passes_are_kept(cnn):
    network, testset, _, _ = cnn
    cache = explain.TestsetCache(network, testset, max_passes=2)
    intact = cache.confusion()
    a, b = {"conv_1": [1]}, {"conv_1": [2]}
    cache.confusion(a)
    cache.confusion(b)  # a's pass is dropped (the intact one never is), with a's results
    assert cache.is_ready() and cache.is_ready(b) and not cache.is_ready(a) and not cache.is_cached(a)
    assert cache.confusion() is intact
    assert cache.pass_progress(a) == (0, len(testset))


def test_image_layer_stats_sample_every_kth_value(cnn):
    network, testset, chain, x = cnn
    cache = explain.TestsetCache(network, testset)
    conv = network.layers[0]
    stats = cache.image_stats(conv.name)
    values = int(np.prod(conv.output_shape)) * len(testset)
    assert stats["stride"] > 1 and values // stats["stride"] <= explain.STATS_SAMPLE
    assert int(np.prod(conv.output_shape)) % stats["stride"] != 0  # every row and channel is met
    with pytest.raises(ValueError, match="not a conv2d or maxpool2d"):
        cache.image_stats("dense_1")


def test_the_explorer_shows_progress_until_its_matrix_is_ready(cnn):
    from pyscript_app.views import render_inside

    network, testset, _, _ = cnn
    markup = render_inside.explorer_progress(network, testset, 2_500, 10_000, knocked=True)
    assert 'id="errors-title"' in markup and 'data-action="close-errors"' in markup  # closable as the matrix is
    assert '<progress id="explorer-progress"' in markup and 'max="10000" value="2500"' in markup
    assert "with the knock-outs: 2,500 / 10,000" in markup
    assert 'id="confusion-matrix"' not in markup
