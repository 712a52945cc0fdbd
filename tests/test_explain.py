"""Tests of pyscript_app/explain.py against independent, plainly written computations.

The expected side never calls ``network.forward``: the weights and the test
set are read straight from the export's files, and the forward pass (with
explicit sigmoid / softmax, and knock-outs done by zeroing the knocked-out
unit's outgoing weights) is written out here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from pyscript_app import explain

# ``network`` and ``testset`` (the side under test) come from conftest.py.
MODEL_DIR = Path(__file__).resolve().parents[1] / "site" / "model"
LAYERS = ("hidden_1", "hidden_2", "output")
TOL = 1e-6


# ---------------------------------------------------------------------------
# the independent side


@pytest.fixture(scope="module")
def manifest_file():
    return json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def plain(manifest_file):
    """Weights, biases, inputs and labels read straight from the files."""
    weights = [np.load(MODEL_DIR / spec["weights"]["file"]) for spec in manifest_file["layers"]]
    biases = [np.load(MODEL_DIR / spec["bias"]["file"]) for spec in manifest_file["layers"]]
    with np.load(MODEL_DIR / manifest_file["dataset"]["file"]) as npz:
        images, labels = npz["images"], npz["labels"]
    norm = manifest_file["input"]["normalization"]
    x = images.reshape(len(images), -1).astype(np.float32) * np.float32(norm["scale"]) + np.float32(norm["offset"])
    return {"W": weights, "b": biases, "x": x.astype(np.float32), "labels": labels.astype(np.int64)}


def plain_forward(x, weights, biases):
    """[(pre-activation, activation) per layer]; sigmoid hidden layers, softmax output.

    Sums in float64 (exact to the last float32 bit whatever the BLAS), each
    layer's activations rounded to float32 as the exported network shows them.
    """
    out = []
    a = x
    for i, (W, b) in enumerate(zip(weights, biases)):
        z = a.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
        if i < len(weights) - 1:
            with np.errstate(over="ignore"):
                a = 1.0 / (1.0 + np.exp(-z))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        a = a.astype(np.float32)
        out.append((z, a))
    return out


def cut_outgoing(plain, layer_name, units):
    """Weights with the outgoing weights (rows of the next layer's matrix) of ``units`` zeroed."""
    weights = [W.copy() for W in plain["W"]]
    nxt = LAYERS.index(layer_name) + 1
    weights[nxt][list(units), :] = 0.0
    return weights


def plain_confusion(labels, predicted):
    cm = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(labels.tolist(), predicted.tolist()):
        cm[t, p] += 1
    return cm


@pytest.fixture(scope="module")
def reference(plain):
    return plain_forward(plain["x"], plain["W"], plain["b"])


def layer_inputs(plain, reference, layer_name, digit):
    pos = LAYERS.index(layer_name)
    return plain["x"][digit] if pos == 0 else reference[pos - 1][1][digit]


# ---------------------------------------------------------------------------
# 1. incoming weights


@pytest.mark.parametrize("layer_name,unit", [("hidden_1", 0), ("hidden_1", 17), ("hidden_2", 31), ("output", 7)])
def test_incoming_weights_and_bias(network, plain, layer_name, unit):
    pos = LAYERS.index(layer_name)
    w = explain.incoming_weights(network, layer_name, unit)
    np.testing.assert_array_equal(w, plain["W"][pos][:, unit])
    assert w.shape == ((784,) if pos == 0 else (32,))
    assert explain.neuron_bias(network, layer_name, unit) == pytest.approx(float(plain["b"][pos][unit]))
    w[:] = 0  # a copy: the network is untouched
    assert np.any(network.layers[pos].weights[:, unit] != 0)


def test_weight_image_maps_pixels_row_major(network, plain):
    img = explain.weight_image(network, 5)
    assert img.shape == (28, 28)
    for r, c in [(0, 0), (3, 20), (14, 14), (27, 27)]:
        assert img[r, c] == plain["W"][0][r * 28 + c, 5]
    assert explain.symmetric_limit(img) == pytest.approx(float(np.abs(plain["W"][0][:, 5]).max()))
    assert explain.symmetric_limit(np.zeros(3)) == 1.0


# ---------------------------------------------------------------------------
# 2. contributions


@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("digit", [0, 1, 1234, 9999])
def test_contributions_sum_to_pre_activation(network, plain, reference, layer_name, digit):
    pos = LAYERS.index(layer_name)
    inputs = layer_inputs(plain, reference, layer_name, digit)
    for unit in (0, 3, network.layers[pos].units - 1):
        per_input, bias, pre = explain.contributions(network, layer_name, unit, inputs)
        expected_z = float(reference[pos][0][digit, unit])
        # each term is input x weight, written out plainly
        manual = [float(inputs[k]) * float(plain["W"][pos][k, unit]) for k in range(len(inputs))]
        np.testing.assert_allclose(per_input, manual, rtol=1e-12, atol=1e-12)
        assert bias == pytest.approx(float(plain["b"][pos][unit]))
        assert per_input.sum() + bias == pytest.approx(pre, abs=1e-9)
        assert pre == pytest.approx(expected_z, abs=1e-4)


def test_layer_input_picks_what_feeds_the_layer(network, plain, reference):
    x = plain["x"][42]
    acts = network.forward(x)
    np.testing.assert_array_equal(explain.layer_input(network, "hidden_1", x, acts), x)
    np.testing.assert_allclose(explain.layer_input(network, "hidden_2", x, acts), reference[0][1][42], atol=TOL)
    np.testing.assert_allclose(explain.layer_input(network, "output", x, acts), reference[1][1][42], atol=TOL)


def test_contributions_reject_wrong_input_size(network, plain):
    with pytest.raises(ValueError, match="784"):
        explain.contributions(network, "hidden_1", 0, np.zeros(32))
    with pytest.raises(ValueError, match="32"):
        explain.contributions(network, "output", 0, plain["x"][0])


def test_ranked_contributions_largest_magnitude_first(network, plain, reference):
    per_input, _, _ = explain.contributions(network, "hidden_2", 4, reference[0][1][7])
    idx, vals = explain.ranked_contributions(per_input)
    assert sorted(idx.tolist()) == list(range(32))
    np.testing.assert_array_equal(vals, per_input[idx])
    mags = np.abs(vals)
    assert all(mags[i] >= mags[i + 1] for i in range(len(mags) - 1))
    top_idx, top_vals = explain.ranked_contributions(per_input, top=5)
    np.testing.assert_array_equal(top_idx, idx[:5])
    # signs survive and ties go to the lower index
    idx, vals = explain.ranked_contributions(np.array([1.0, -3.0, 3.0, 0.0, -1.0]))
    assert idx.tolist() == [1, 2, 0, 4, 3]
    assert vals.tolist() == [-3.0, 3.0, 1.0, -1.0, 0.0]


# ---------------------------------------------------------------------------
# 6. connections


@pytest.mark.parametrize("layer_name", LAYERS)
def test_connection_strengths(network, plain, reference, layer_name):
    pos = LAYERS.index(layer_name)
    inputs = layer_inputs(plain, reference, layer_name, 314)
    s = explain.connection_strengths(network, inputs, layer_name)
    W = plain["W"][pos]
    assert s.shape == W.shape
    for k, j in [(0, 0), (len(inputs) - 1, W.shape[1] - 1), (len(inputs) // 2, 3)]:
        assert s[k, j] == pytest.approx(float(inputs[k]) * float(W[k, j]), abs=1e-7)
    per_input, _, _ = explain.contributions(network, layer_name, 3, inputs)
    np.testing.assert_allclose(s[:, 3], per_input, atol=1e-6)

    rows, cols, vals = explain.strongest_connections(s, top=20)
    assert len(rows) == 20
    np.testing.assert_array_equal(vals, s[rows, cols])
    mags = np.abs(vals)
    assert np.all(mags[:-1] >= mags[1:])
    rest = np.ones(s.shape, dtype=bool)
    rest[rows, cols] = False
    assert mags.min() >= np.abs(s[rest]).max()


# ---------------------------------------------------------------------------
# 4. knock-outs


def test_normalize_knockout_canonical_form(network):
    ko = explain.normalize_knockout(network, {"hidden_2": [5, 1, 5], "hidden_1": np.array([3])})
    assert ko == {"hidden_1": [3], "hidden_2": [1, 5]}
    assert list(ko) == ["hidden_1", "hidden_2"]
    assert all(type(i) is int for units in ko.values() for i in units)
    assert explain.normalize_knockout(network, None) == {}
    assert explain.normalize_knockout(network, {"hidden_1": [], "hidden_2": ()}) == {}
    assert explain.knockout_key(network, {"hidden_2": [5, 1]}) == (("hidden_2", (1, 5)),)
    assert explain.knockable_layers(network) == ["hidden_1", "hidden_2"]


def test_toggle_unit(network):
    start = {"hidden_1": [4]}
    on = explain.toggle_unit(network, start, "hidden_2", 9)
    assert on == {"hidden_1": [4], "hidden_2": [9]}
    assert start == {"hidden_1": [4]}  # not mutated
    assert explain.is_knocked_out(network, on, "hidden_2", 9)
    assert not explain.is_knocked_out(network, on, "hidden_2", 8)
    more = explain.toggle_unit(network, on, "hidden_1", 0)
    assert more == {"hidden_1": [0, 4], "hidden_2": [9]}
    assert explain.toggle_unit(network, explain.toggle_unit(network, more, "hidden_1", 4), "hidden_1", 4) == more
    back = explain.toggle_unit(network, explain.toggle_unit(network, on, "hidden_2", 9), "hidden_1", 4)
    assert back == {}


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"output": [1]}, "only hidden layers"),
        ({"hidden_1": [32]}, "out of range"),
        ({"hidden_2": [-1]}, "out of range"),
        ({"hidden_1": [1.5]}, "not an integer"),
        ({"hidden_1": [True]}, "not an integer"),
        ({"hidden_1": 3}, "list of unit indices"),
        ({"hidden_3": [0]}, "unknown layer"),
        ([("hidden_1", [0])], "maps layer names"),
    ],
)
def test_invalid_knockouts_raise(network, testset, bad, message):
    with pytest.raises(ValueError, match=message):
        explain.normalize_knockout(network, bad)
    with pytest.raises(ValueError, match=message):
        explain.confusion_matrix(network, testset, knocked_out=bad)
    with pytest.raises(ValueError, match=message):
        explain.top_exciting(network, testset, "hidden_2", 0, knocked_out=bad)


def test_toggle_invalid_unit_raises(network):
    with pytest.raises(ValueError, match="only hidden layers"):
        explain.toggle_unit(network, {}, "output", 3)
    with pytest.raises(ValueError, match="out of range"):
        explain.toggle_unit(network, {}, "hidden_1", 32)


def test_invalid_units_raise(network):
    with pytest.raises(ValueError, match="out of range"):
        explain.incoming_weights(network, "output", 10)
    with pytest.raises(ValueError, match="unknown layer"):
        explain.incoming_weights(network, "hidden", 0)
    with pytest.raises(ValueError, match="not an integer"):
        explain.contributions(network, "hidden_2", "3", np.zeros(32))


@pytest.mark.parametrize("nothing", [None, {}, {"hidden_1": []}, {"hidden_1": [], "hidden_2": []}])
def test_knocking_out_nothing_changes_nothing(network, testset, plain, reference, nothing):
    acts = explain.testset_activations(network, testset, knocked_out=nothing)
    for (z, a), got in zip(reference, acts):
        np.testing.assert_allclose(got, a, atol=TOL, rtol=0)
    expected = plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1))
    np.testing.assert_array_equal(explain.confusion_matrix(network, testset, knocked_out=nothing), expected)


@pytest.mark.parametrize("layer_name", ["hidden_1", "hidden_2"])
@pytest.mark.parametrize("units", [[0], [13], [31], [2, 5, 30]])
def test_knockout_equals_cutting_outgoing_weights(network, testset, plain, reference, layer_name, units):
    ko = {layer_name: units}
    expected = plain_forward(plain["x"], cut_outgoing(plain, layer_name, units), plain["b"])
    got = explain.testset_activations(network, testset, knocked_out=ko)
    np.testing.assert_allclose(got[-1], expected[-1][1], atol=TOL, rtol=0)
    if layer_name == "hidden_1":
        np.testing.assert_allclose(got[1], expected[1][1], atol=TOL, rtol=0)
    # the knocked-out units read 0, the others are what they were
    pos = LAYERS.index(layer_name)
    assert np.all(got[pos][:, units] == 0)
    others = [j for j in range(32) if j not in units]
    np.testing.assert_allclose(got[pos][:, others], reference[pos][1][:, others], atol=TOL, rtol=0)
    # ... and the knock-out really did something (the test is not vacuous)
    assert np.abs(got[-1] - reference[-1][1]).max() > 1e-3
    cm = explain.confusion_matrix(network, testset, knocked_out=ko)
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], expected[-1][1].argmax(axis=1)))


def test_knockout_in_both_layers(network, testset, plain):
    ko = {"hidden_1": [1, 8], "hidden_2": [0, 20]}
    weights = cut_outgoing(plain, "hidden_1", [1, 8])
    weights[2][[0, 20], :] = 0.0
    expected = plain_forward(plain["x"], weights, plain["b"])
    got = explain.testset_activations(network, testset, knocked_out=ko)
    np.testing.assert_allclose(got[-1], expected[-1][1], atol=TOL, rtol=0)


def test_cache_is_keyed_on_the_knockout(network, testset, plain, reference):
    base = plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1))
    ko = {"hidden_2": [0, 1, 2, 3, 4, 5, 6, 7]}
    cut = plain_forward(plain["x"], cut_outgoing(plain, "hidden_2", ko["hidden_2"]), plain["b"])
    knocked = plain_confusion(plain["labels"], cut[-1][1].argmax(axis=1))
    assert not np.array_equal(base, knocked)
    for _ in range(2):
        np.testing.assert_array_equal(explain.confusion_matrix(network, testset), base)
        np.testing.assert_array_equal(explain.confusion_matrix(network, testset, knocked_out=ko), knocked)
        # the same knock-out spelt differently hits the same entry
        np.testing.assert_array_equal(
            explain.confusion_matrix(network, testset, knocked_out={"hidden_2": ko["hidden_2"][::-1], "hidden_1": []}),
            knocked,
        )


# ---------------------------------------------------------------------------
# 5. confusion matrix


def test_confusion_matrix_matches_independent_pass_and_manifest(network, testset, plain, reference, manifest_file):
    cm = explain.confusion_matrix(network, testset)
    predicted = reference[-1][1].argmax(axis=1)
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (plain["labels"], predicted), 1)
    assert cm.shape == (10, 10) and cm.dtype.kind == "i"
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], predicted))
    assert cm.sum() == 10_000
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(plain["labels"], minlength=10))  # rows = true label
    assert np.trace(cm) / 10_000 == manifest_file["training"]["test_accuracy"]
    assert explain.accuracy(cm) == manifest_file["training"]["test_accuracy"]
    assert int(np.trace(cm)) == manifest_file["training"]["test_correct"]


def test_accuracy():
    assert explain.accuracy(np.array([[3, 1], [0, 4]])) == 7 / 8
    with pytest.raises(ValueError):
        explain.accuracy(np.zeros((10, 10), dtype=int))


def test_cached_results_are_read_only(network, testset):
    cm = explain.confusion_matrix(network, testset)
    with pytest.raises(ValueError):
        cm[0, 0] = 0
    with pytest.raises(ValueError):
        explain.testset_activations(network, testset)[0][0, 0] = 0


@pytest.mark.parametrize("knocked_out", [None, {"hidden_1": [3, 9]}])
def test_cell_members(network, testset, plain, knocked_out):
    weights = plain["W"] if knocked_out is None else cut_outgoing(plain, "hidden_1", [3, 9])
    predicted = plain_forward(plain["x"], weights, plain["b"])[-1][1].argmax(axis=1)
    labels = plain["labels"]
    cm = explain.confusion_matrix(network, testset, knocked_out=knocked_out)
    seen = []
    for t in range(10):
        for p in range(10):
            members = explain.cell_members(network, testset, t, p, knocked_out=knocked_out)
            expected = [i for i in range(len(labels)) if labels[i] == t and predicted[i] == p]
            assert members.tolist() == expected
            assert len(members) == cm[t, p]
            seen.extend(members.tolist())
    assert sorted(seen) == list(range(10_000))
    with pytest.raises(ValueError, match="true class"):
        explain.cell_members(network, testset, 10, 0)
    with pytest.raises(ValueError, match="predicted class"):
        explain.cell_members(network, testset, 0, -1)


# ---------------------------------------------------------------------------
# 3. top exciting


def assert_top(chosen, values, k):
    """``chosen`` are k digits, in descending order, none below any other digit (up to float noise)."""
    assert len(chosen) == k == len(set(chosen.tolist()))
    rest = np.ones(len(values), dtype=bool)
    rest[chosen] = False
    assert values[chosen].min() >= values[rest].max() - 1e-6
    assert np.all(np.diff(values[chosen]) <= 1e-6)


@pytest.mark.parametrize("layer_name,unit", [("hidden_1", 0), ("hidden_1", 21), ("hidden_2", 6), ("output", 3), ("output", 9)])
def test_top_exciting_by_activation(network, testset, reference, layer_name, unit):
    pos = LAYERS.index(layer_name)
    activation = reference[pos][1][:, unit]
    chosen = explain.top_exciting(network, testset, layer_name, unit, k=9, by="activation")
    assert_top(chosen, activation, 9)


@pytest.mark.parametrize("layer_name,unit", [("hidden_1", 0), ("hidden_1", 21), ("hidden_2", 6), ("output", 3)])
def test_top_exciting_default_ranks_by_net_input(network, testset, reference, layer_name, unit):
    pos = LAYERS.index(layer_name)
    z, a = reference[pos][0][:, unit], reference[pos][1][:, unit]
    chosen = explain.top_exciting(network, testset, layer_name, unit)
    assert_top(chosen, z, 9)
    if layer_name != "output":  # sigmoid is increasing: also the most activated digits
        assert_top(chosen, a, 9)
    assert_top(explain.top_exciting(network, testset, layer_name, unit, k=25), z, 25)
    np.testing.assert_allclose(explain.unit_values(network, testset, layer_name, unit), z, atol=1e-4)


def test_top_exciting_output_unit_picks_its_class(network, testset, plain):
    for digit in (0, 7):
        chosen = explain.top_exciting(network, testset, "output", digit)
        assert np.all(plain["labels"][chosen] == digit)


def test_top_exciting_under_knockout(network, testset, plain):
    ko = {"hidden_1": [0, 1, 2, 3, 4, 5]}
    expected = plain_forward(plain["x"], cut_outgoing(plain, "hidden_1", ko["hidden_1"]), plain["b"])
    for by, part in (("pre_activation", 0), ("activation", 1)):
        chosen = explain.top_exciting(network, testset, "hidden_2", 11, k=9, knocked_out=ko, by=by)
        assert_top(chosen, expected[1][part][:, 11], 9)


def test_top_exciting_edges(network, testset):
    assert explain.top_exciting(network, testset, "hidden_2", 0, k=0).size == 0
    everything = explain.top_exciting(network, testset, "hidden_2", 0, k=20_000)
    assert sorted(everything.tolist()) == list(range(10_000))
    with pytest.raises(ValueError):
        explain.top_exciting(network, testset, "hidden_2", 0, k=-1)
    with pytest.raises(ValueError, match="by must be"):
        explain.top_exciting(network, testset, "hidden_2", 0, by="probability")
    with pytest.raises(ValueError, match="out of range"):
        explain.top_exciting(network, testset, "output", 10)
    # ties (saturated units, a knocked-out unit's zeros) go to the lower index
    dead = explain.top_exciting(network, testset, "hidden_1", 5, k=4, knocked_out={"hidden_1": [5]}, by="activation")
    assert dead.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# speed (generous bounds: they catch a Python loop over the digits, not noise)


def test_speed(network, testset):
    explain.clear_caches()
    t0 = time.perf_counter()
    explain.confusion_matrix(network, testset)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    explain.confusion_matrix(network, testset)
    cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    explain.top_exciting(network, testset, "hidden_2", 3)
    top = time.perf_counter() - t0
    assert first < 0.5, first
    assert cached < 0.005, cached
    assert top < 0.1, top


# ---------------------------------------------------------------------------
# the cache shares layers between knock-outs, and stays exact


def test_cache_reuses_layers_and_equals_the_forward_pass(network, testset):
    """Whatever order knock-outs are asked in, each equals network.forward (and predicts the same)."""
    cache = explain.TestsetCache(network, testset)
    x = network.normalize(testset.images)
    kos = [{"hidden_2": [4]}, {}, {"hidden_1": [3]}, {"hidden_1": [3], "hidden_2": [4, 7]}, {"hidden_1": [0, 31]}]
    for ko in kos:
        expected = network.forward(x, knocked_out=ko)
        for got, want in zip(cache.activations(ko), expected):
            np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
        np.testing.assert_array_equal(cache.predictions(ko), expected[-1].argmax(axis=1))
        for layer, want in zip(network.layers, [x] + expected[:-1]):
            z = cache.pre_activations(layer.name, ko)
            np.testing.assert_allclose(z, layer.pre_activation(want), atol=1e-5, rtol=0)
    # the first layer's net input does not depend on any knock-out: one array for all
    first = {id(cache.pre_activations("hidden_1", ko)) for ko in kos}
    assert len(first) == 1
    # a knock-out in the second layer shares the first layer's activations with "none"
    assert cache.activations({"hidden_2": [4]})[0] is cache.activations({})[0]
    assert cache.activations({"hidden_1": [3]})[0] is not cache.activations({})[0]


def test_first_layer_can_be_warmed_block_by_block(network, testset, plain, reference):
    cache = explain.TestsetCache(network, testset)
    assert not cache.first_layer_ready
    steps = cache.first_layer_blocks()
    done = [next(steps) for _ in range(3)]
    assert done == [explain.CHUNK, 2 * explain.CHUNK, 3 * explain.CHUNK] and not cache.first_layer_ready
    # asking for results now finishes the pass (the half-used generator is simply dropped)
    cm = cache.confusion()
    assert cache.first_layer_ready
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1)))
    np.testing.assert_allclose(cache.pre_activations("hidden_1"), reference[0][0], atol=1e-5, rtol=0)
    assert list(cache.first_layer_blocks()) == []  # nothing left to do
    # a fresh cache warmed to the end gives the same numbers
    other = explain.TestsetCache(network, testset)
    counts = list(other.first_layer_blocks())
    assert counts[-1] == len(testset) and counts == sorted(counts)
    np.testing.assert_array_equal(other.pre_activations("hidden_1"), cache.pre_activations("hidden_1"))
    with pytest.raises(ValueError):
        other.pre_activations("hidden_1")[0, 0] = 1.0  # read-only
