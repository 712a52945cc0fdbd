"""Tests of pyscript_app/core/explain.py against independent, plainly written computations.

The expected side never calls ``network.forward``: the weights and the test
set are read straight from the export's files, and the forward pass (with
each activation written out in tests/reference.py, and knock-outs done by
zeroing the knocked-out unit's outgoing weights) is written out here.
Every test runs for each committed model and the small test-made ones
(conftest.model_dir), the convolutional tiny-cnn too; on the shipped cnn,
where each pass of the plain-loop reference over the test set costs seconds,
a test runs the cases its ``on_the_shipped_cnn`` mark names (none: "(tiny-cnn)",
whose random weights take the same code paths). Layers are addressed
by position (0 = the first, 1 = the second, -1 = the output; or among the
dense layers, for what only a dense layer has), units by a position within
the layer. A conv2d / maxpool2d layer's results over the test set are its
channels' peaks (each digit's map maximum), which the reference computes
from its own maps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import reference as ref
from conftest import on_the_shipped_cnn
from pyscript_app.core import explain

# ``network`` and ``testset`` (the side under test) come from conftest.py.
SITE = Path(__file__).resolve().parents[1] / "site"
TOL = 1e-6


def name_at(network, pos: int) -> str:
    """The name of the layer at ``pos`` (0 first, 1 second (the output if there is one hidden layer), -1 output)."""
    return network.layers[min(pos, len(network.layers) - 1) if pos >= 0 else pos].name


def position(network, name: str) -> int:
    return [layer.name for layer in network.layers].index(name)


def unit_at(network, name: str, k: int) -> int:
    """Unit ``k`` of the layer, wrapped into its width (so a 8-unit layer takes any k)."""
    return k % network.layers[position(network, name)].units


def dense_at(network, pos: int) -> str:
    """The name of the dense layer at ``pos`` among the dense layers (0 the first dense one, -1 the output)."""
    dense = [layer.name for layer in network.layers if layer.kind == "dense"]
    return dense[min(pos, len(dense) - 1) if pos >= 0 else pos]


def knockable(network) -> list[str]:
    """The layers whose units can be knocked out: every hidden one but the flatten."""
    return [layer.name for layer in network.layers[:-1] if layer.kind != "flatten"]


# ---------------------------------------------------------------------------
# the independent side


@pytest.fixture(scope="module")
def manifest_file(model_dir):
    return json.loads((model_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def plain(manifest_file, model_dir):
    """Weights, biases, activations, inputs and labels read straight from the files (None: a layer without)."""
    specs = manifest_file["layers"]
    weights = [np.load(model_dir / spec["weights"]["file"]) if "weights" in spec else None for spec in specs]
    biases = [np.load(model_dir / spec["bias"]["file"]) if "bias" in spec else None for spec in specs]
    with np.load(SITE / "data" / "mnist_test.npz") as npz:
        images, labels = npz["images"], npz["labels"]
    norm = manifest_file["input"]["normalization"]
    x = images.reshape(len(images), -1).astype(np.float32) * np.float32(norm["scale"]) + np.float32(norm["offset"])
    return {"W": weights, "b": biases, "x": x.astype(np.float32), "labels": labels.astype(np.int64),
            "act": [spec.get("activation") for spec in specs],
            "names": [spec["name"] for spec in specs], "chain": ref.load_chain(model_dir)[1]}


def forward_of(plain, weights=None, dead=None):
    """[(pre-activation, activation) per layer] by tests/reference.py's pass (for a conv2d / maxpool2d
    layer: (its channel peaks before its own knock-out, after)).

    Sums in float64 (exact to the last float32 bit whatever the BLAS), each
    layer's activations rounded to float32 as the exported network shows them.
    """
    chain = [{**layer, "W": layer["W"] if weights is None or weights[pos] is None else weights[pos].astype(np.float64)}
             for pos, layer in enumerate(plain["chain"])]
    return ref.forward_chain(chain, plain["x"], dead=dead, pre=True, rounded=np.float32, peaks=True)


def cut_outgoing(plain, layer_name, units, weights=None, dead=None):
    """(weights, dead) that knock ``units`` out: the outgoing weights (rows of the next layer's matrix)
    zeroed when a dense layer follows a vector; otherwise (a channel of an image layer) the units listed in
    ``dead`` ({position: units}) for the reference pass to zero. ``weights`` / ``dead``: add to these."""
    weights = [None if W is None else W.copy() for W in (plain["W"] if weights is None else weights)]
    dead = dict(dead or {})
    pos = plain["names"].index(layer_name)
    if plain["chain"][pos]["kind"] == "dense" and plain["chain"][pos + 1]["kind"] == "dense":
        weights[pos + 1][list(units), :] = 0.0
    else:
        dead[pos] = sorted(set(dead.get(pos, [])) | set(units))
    return weights, dead


def knocked_forward(plain, layer_name, units, reference=None):
    """forward_of with ``units`` knocked out. Given the intact pass (``reference``) and a knock-out whose
    layer and followers are all dense, the layers before it are the intact pass's and the pass goes on from
    its output (the same sums: a CNN's conv layers are not run again)."""
    weights, dead = cut_outgoing(plain, layer_name, units)
    pos = plain["names"].index(layer_name)
    if reference is None or dead or any(layer["kind"] != "dense" for layer in plain["chain"][pos:]):
        return forward_of(plain, weights, dead)
    rest = [{**layer, "W": weights[p].astype(np.float64)} for p, layer in enumerate(plain["chain"]) if p > pos]
    return [*reference[: pos + 1], *ref.forward_chain(rest, reference[pos][1], pre=True, rounded=np.float32, peaks=True)]


def plain_confusion(labels, predicted, classes):
    cm = np.zeros((classes, classes), dtype=np.int64)
    for t, p in zip(labels.tolist(), predicted.tolist()):
        cm[t, p] += 1
    return cm


@pytest.fixture(scope="module")
def reference(plain):
    return forward_of(plain)


@pytest.fixture(scope="module")
def classes(plain):
    return plain["W"][-1].shape[1]


def layer_inputs(plain, reference, layer_name, digit):
    pos = plain["names"].index(layer_name)
    return plain["x"][digit] if pos == 0 else reference[pos - 1][1][digit]


# ---------------------------------------------------------------------------
# 1. incoming weights


@pytest.mark.parametrize("pos,k", [(0, 0), (0, 17), (1, 31), (-1, 7)])
def test_incoming_weights_and_bias(network, plain, pos, k):
    layer_name = dense_at(network, pos)
    pos, unit = position(network, layer_name), unit_at(network, layer_name, k)
    w = explain.incoming_weights(network, layer_name, unit)
    np.testing.assert_array_equal(w, plain["W"][pos][:, unit])
    assert w.shape == (plain["W"][pos].shape[0],)
    assert explain.neuron_bias(network, layer_name, unit) == pytest.approx(float(plain["b"][pos][unit]))
    w[:] = 0  # a copy: the network is untouched
    assert np.any(network.layers[pos].weights[:, unit] != 0)


def test_weight_image_maps_pixels_row_major(network, plain):
    if network.layers[0].kind != "dense":
        with pytest.raises(ValueError, match="conv2d"):
            explain.weight_image(network, 0)
        return
    img = explain.weight_image(network, 5)
    rows, cols = network.image_shape
    assert img.shape == (rows, cols)
    for r, c in [(0, 0), (3, 20), (14, 14), (rows - 1, cols - 1)]:
        assert img[r, c] == plain["W"][0][r * cols + c, 5]
    assert explain.symmetric_limit(img) == pytest.approx(float(np.abs(plain["W"][0][:, 5]).max()))
    assert explain.symmetric_limit(np.zeros(3)) == 1.0


# ---------------------------------------------------------------------------
# 2. contributions


@pytest.mark.parametrize("pos", [0, 1, -1])
@pytest.mark.parametrize("digit", [0, 1, 1234, 9999])
def test_contributions_sum_to_pre_activation(network, plain, reference, pos, digit):
    layer_name = dense_at(network, pos)
    pos = position(network, layer_name)
    inputs = layer_inputs(plain, reference, layer_name, digit)
    for unit in {0, unit_at(network, layer_name, 3), network.layers[pos].units - 1}:
        per_input, bias, pre = explain.contributions(network, layer_name, unit, inputs)
        expected_z = float(reference[pos][0][digit, unit])
        # each term is input x weight, written out plainly
        manual = [float(inputs[k]) * float(plain["W"][pos][k, unit]) for k in range(len(inputs))]
        np.testing.assert_allclose(per_input, manual, rtol=1e-12, atol=1e-12)
        assert bias == pytest.approx(float(plain["b"][pos][unit]))
        assert per_input.sum() + bias == pytest.approx(pre, abs=1e-9)
        assert pre == pytest.approx(expected_z, abs=1e-4 * max(1.0, abs(expected_z)))


def test_layer_input_picks_what_feeds_the_layer(network, plain, reference):
    x = plain["x"][42]
    acts = network.forward(x)
    np.testing.assert_array_equal(explain.layer_input(network, plain["names"][0], x, acts), x)
    for pos, name in enumerate(plain["names"][1:], start=1):
        if network.layers[pos].kind != "dense":
            continue  # an image layer's input is a map; the reference keeps its peaks
        np.testing.assert_allclose(explain.layer_input(network, name, x, acts), reference[pos - 1][1][42],
                                   atol=TOL * max(1.0, float(np.abs(reference[pos - 1][1][42]).max())))


def test_contributions_reject_wrong_input_size(network, plain):
    first, out = dense_at(network, 0), plain["names"][-1]
    fan_in = plain["W"][position(network, first)].shape[0]
    with pytest.raises(ValueError, match=f"takes {fan_in}"):
        explain.contributions(network, first, 0, np.zeros(plain["W"][-1].shape[0]))
    with pytest.raises(ValueError, match=f"takes {plain['W'][-1].shape[0]}"):
        explain.contributions(network, out, 0, plain["x"][0])


def test_ranked_contributions_largest_magnitude_first(network, plain, reference):
    name = dense_at(network, 1)
    pos = position(network, name)
    per_input, _, _ = explain.contributions(network, name, unit_at(network, name, 4), reference[pos - 1][1][7])
    idx, vals = explain.ranked_contributions(per_input)
    assert sorted(idx.tolist()) == list(range(plain["W"][pos].shape[0]))
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
# 4. knock-outs


def test_normalize_knockout_canonical_form(network):
    names = knockable(network)
    first, last_hidden = names[0], names[-1]
    given = {last_hidden: [5, 1, 5]} if last_hidden != first else {}
    given[first] = list(given.get(first, [])) + [3]
    given = dict(reversed(list(given.items())))  # asked in the wrong layer order
    ko = explain.normalize_knockout(network, {k: np.array(v) if k == first else v for k, v in given.items()})
    assert ko == {name: sorted(set(given[name])) for name in names if name in given}
    assert list(ko) == [name for name in names if name in ko]  # layer order
    assert all(type(i) is int for units in ko.values() for i in units)
    assert explain.normalize_knockout(network, None) == {}
    assert explain.normalize_knockout(network, {first: [], last_hidden: ()}) == {}
    assert explain.knockout_key(network, {last_hidden: [5, 1]}) == ((last_hidden, (1, 5)),)
    assert explain.knockable_layers(network) == names


def test_toggle_unit(network):
    first, last_hidden = network.layers[0].name, network.layers[-2].name
    f = network.layers[0].units - 1  # a unit of the first layer other than 0
    start = {first: [f]}
    on = explain.toggle_unit(network, start, last_hidden, 6)
    assert on == explain.normalize_knockout(network, {first: [f], last_hidden: [6]} if first != last_hidden else {first: [f, 6]})
    assert start == {first: [f]}  # not mutated
    assert explain.is_knocked_out(network, on, last_hidden, 6)
    assert not explain.is_knocked_out(network, on, last_hidden, 5)
    more = explain.toggle_unit(network, on, first, 0)
    assert explain.is_knocked_out(network, more, first, 0)
    assert explain.toggle_unit(network, explain.toggle_unit(network, more, first, f), first, f) == more
    back = explain.toggle_unit(network, explain.toggle_unit(network, on, last_hidden, 6), first, f)
    assert back == {}


BAD_KNOCKOUTS = [
    ("output", [1], "only hidden layers"),
    ("first", "units", "out of range"),
    ("last_hidden", [-1], "out of range"),
    ("first", [1.5], "not an integer"),
    ("first", [True], "not an integer"),
    ("first", 3, "list of unit indices"),
    ("nowhere", [0], "unknown layer"),
]


@pytest.mark.parametrize("which,units,message", BAD_KNOCKOUTS)
def test_invalid_knockouts_raise(network, testset, which, units, message):
    names = {"output": network.layers[-1].name, "first": network.layers[0].name,
             "last_hidden": network.layers[-2].name, "nowhere": "no_such_layer"}
    bad = {names[which]: [network.layers[0].units] if units == "units" else units}
    with pytest.raises(ValueError, match=message):
        explain.normalize_knockout(network, bad)
    with pytest.raises(ValueError, match=message):
        explain.confusion_matrix(network, testset, knocked_out=bad)
    with pytest.raises(ValueError, match=message):
        explain.top_exciting(network, testset, network.layers[-2].name, 0, knocked_out=bad)
    with pytest.raises(ValueError, match="maps layer names"):
        explain.normalize_knockout(network, [(network.layers[0].name, [0])])


def test_the_flatten_cannot_be_knocked_out(network):
    flat = [layer.name for layer in network.layers if layer.kind == "flatten"]
    for name in flat:
        with pytest.raises(ValueError, match="cannot be knocked out"):
            explain.normalize_knockout(network, {name: [0]})
        with pytest.raises(ValueError, match="cannot be knocked out"):
            explain.toggle_unit(network, {}, name, 0)
    assert not set(flat) & set(explain.knockable_layers(network))


def test_toggle_invalid_unit_raises(network):
    with pytest.raises(ValueError, match="only hidden layers"):
        explain.toggle_unit(network, {}, network.layers[-1].name, 3)
    with pytest.raises(ValueError, match="out of range"):
        explain.toggle_unit(network, {}, network.layers[0].name, network.layers[0].units)


def test_invalid_units_raise(network):
    out = network.layers[-1]
    with pytest.raises(ValueError, match="out of range"):
        explain.incoming_weights(network, out.name, out.units)
    with pytest.raises(ValueError, match="unknown layer"):
        explain.incoming_weights(network, "hidden", 0)
    with pytest.raises(ValueError, match="not an integer"):
        explain.contributions(network, out.name, "3", np.zeros(out.weights.shape[0]))


@pytest.mark.parametrize("nothing", [None, {}, "empty first", "empty all"])
def test_knocking_out_nothing_changes_nothing(network, testset, plain, reference, classes, nothing):
    if nothing == "empty first":
        nothing = {network.layers[0].name: []}
    elif nothing == "empty all":
        nothing = {name: [] for name in knockable(network)}
    acts = explain.testset_activations(network, testset, knocked_out=nothing)
    for (z, a), got in zip(reference, acts):
        np.testing.assert_allclose(got, a, atol=TOL * max(1.0, float(np.abs(a).max())), rtol=0)
    expected = plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1), classes)
    np.testing.assert_array_equal(explain.confusion_matrix(network, testset, knocked_out=nothing), expected)


@pytest.mark.parametrize("pos", [0, -2])
@pytest.mark.parametrize("units", [[0], [13], [31], [2, 5, 30]])
@on_the_shipped_cnn({"pos": 0, "units": [2, 5, 30]})  # channels of its first conv layer
def test_knockout_equals_cutting_outgoing_weights(network, testset, plain, reference, classes, pos, units):
    layer_name = network.layers[pos].name
    pos = position(network, layer_name)
    units = sorted({u % network.layers[pos].units for u in units})
    ko = {layer_name: units}
    expected = knocked_forward(plain, layer_name, units, reference)
    got = explain.testset_activations(network, testset, knocked_out=ko)
    for p in range(pos + 1, len(network.layers)):
        np.testing.assert_allclose(got[p], expected[p][1], atol=TOL * max(1.0, float(np.abs(expected[p][1]).max())), rtol=0)
    # the knocked-out units read 0, the others are what they were
    assert np.all(got[pos][:, units] == 0)
    others = [j for j in range(network.layers[pos].units) if j not in units]
    np.testing.assert_allclose(got[pos][:, others], reference[pos][1][:, others], atol=TOL * max(1.0, float(np.abs(reference[pos][1]).max())), rtol=0)
    # ... and the knock-out really did something (the test is not vacuous)
    assert np.abs(got[-1] - reference[-1][1]).max() > 1e-4
    cm = explain.confusion_matrix(network, testset, knocked_out=ko)
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], expected[-1][1].argmax(axis=1), classes))


def test_knockout_in_every_hidden_layer(network, testset, plain):
    ko, weights, dead = {}, plain["W"], {}
    for name, units in zip(knockable(network), ([1, 8], [0, 20], [3], [2], [5])):
        units = sorted({u % network.layers[position(network, name)].units for u in units})
        ko[name] = units
        weights, dead = cut_outgoing(plain, name, units, weights, dead)
    expected = forward_of(plain, weights, dead)
    got = explain.testset_activations(network, testset, knocked_out=ko)
    np.testing.assert_allclose(got[-1], expected[-1][1], atol=TOL, rtol=0)


@on_the_shipped_cnn()  # (tiny-cnn)
def test_cache_is_keyed_on_the_knockout(network, testset, plain, reference, classes):
    base = plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1), classes)
    name = network.layers[-2].name
    units = list(range(min(8, network.layers[-2].units - 1)))
    ko = {name: units}
    cut = knocked_forward(plain, name, units, reference)
    knocked = plain_confusion(plain["labels"], cut[-1][1].argmax(axis=1), classes)
    assert not np.array_equal(base, knocked)
    for _ in range(2):
        np.testing.assert_array_equal(explain.confusion_matrix(network, testset), base)
        np.testing.assert_array_equal(explain.confusion_matrix(network, testset, knocked_out=ko), knocked)
        # the same knock-out spelt differently hits the same entry
        np.testing.assert_array_equal(
            explain.confusion_matrix(network, testset, knocked_out={name: units[::-1], network.layers[0].name: []}
                                     if name != network.layers[0].name else {name: units[::-1]}),
            knocked,
        )


@on_the_shipped_cnn()  # (tiny-cnn)
def test_changed_weights_never_show_stale_numbers(tmp_path, model_dir, testset, plain, classes):
    from pyscript_app.core import network as nw

    network, _ = nw.read_export_dir(model_dir, SITE / "data")  # a copy of its own, to edit
    before = explain.confusion_matrix(network, testset).copy()
    network.layers[-1].bias[:] = 0
    network.layers[-1].bias[0] = 1000.0  # everything is now a 0
    network.weights_changed()
    after = explain.confusion_matrix(network, testset)
    assert after[:, 0].sum() == len(testset) and not np.array_equal(before, after)


# ---------------------------------------------------------------------------
# 5. confusion matrix


def test_confusion_matrix_matches_independent_pass_and_manifest(network, testset, plain, reference, manifest_file, classes):
    cm = explain.confusion_matrix(network, testset)
    predicted = reference[-1][1].argmax(axis=1)
    expected = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(expected, (plain["labels"], predicted), 1)
    assert cm.shape == (classes, classes) and cm.dtype.kind == "i"
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], predicted, classes))
    assert cm.sum() == len(testset)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(plain["labels"], minlength=classes))  # rows = true label
    if "test_accuracy" in manifest_file["training"]:
        assert np.trace(cm) / len(testset) == manifest_file["training"]["test_accuracy"]
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


@pytest.mark.parametrize("knock", [False, True])
@on_the_shipped_cnn({"knock": False})  # (its knock-outs: the tests above)
def test_cell_members(network, testset, plain, reference, classes, knock):
    first = network.layers[0].name
    units = sorted({3 % network.layers[0].units, 9 % network.layers[0].units})
    knocked_out = {first: units} if knock else None
    predicted = (knocked_forward(plain, first, units) if knock else reference)[-1][1].argmax(axis=1)
    labels = plain["labels"]
    cm = explain.confusion_matrix(network, testset, knocked_out=knocked_out)
    seen = []
    for t in range(classes):
        for p in range(classes):
            members = explain.cell_members(network, testset, t, p, knocked_out=knocked_out)
            expected = np.flatnonzero((labels == t) & (predicted == p))
            assert members.tolist() == expected.tolist()
            assert len(members) == cm[t, p]
            seen.extend(members.tolist())
    assert sorted(seen) == list(range(len(testset)))
    with pytest.raises(ValueError, match="true class"):
        explain.cell_members(network, testset, classes, 0)
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


@pytest.mark.parametrize("pos,k", [(0, 0), (0, 21), (1, 6), (-1, 3), (-1, 9)])
def test_top_exciting_by_activation(network, testset, reference, pos, k):
    layer_name = name_at(network, pos)
    pos, unit = position(network, layer_name), unit_at(network, layer_name, k)
    activation = reference[pos][1][:, unit]
    chosen = explain.top_exciting(network, testset, layer_name, unit, k=9, by="activation")
    assert_top(chosen, activation, 9)


@pytest.mark.parametrize("pos,k", [(0, 0), (0, 21), (1, 6), (-1, 3)])
def test_top_exciting_default_ranks_by_net_input(network, testset, reference, pos, k):
    layer_name = name_at(network, pos)
    pos, unit = position(network, layer_name), unit_at(network, layer_name, k)
    z, a = reference[pos][0][:, unit], reference[pos][1][:, unit]
    chosen = explain.top_exciting(network, testset, layer_name, unit)
    assert_top(chosen, z, 9)
    if getattr(network.layers[pos], "activation", None) in ("sigmoid", "tanh", "linear"):  # strictly increasing: also the most activated
        assert_top(chosen, a, 9)
    assert_top(explain.top_exciting(network, testset, layer_name, unit, k=25), z, 25)
    np.testing.assert_allclose(explain.unit_values(network, testset, layer_name, unit), z, atol=1e-4 * max(1.0, float(np.abs(z).max())))


def test_top_exciting_output_unit_picks_its_class(network, testset, plain, manifest_file):
    if manifest_file["id"] != "seed":
        return  # random weights do not know the classes: this is about a trained network
    for digit in (0, 7):
        chosen = explain.top_exciting(network, testset, "output", digit)
        assert np.all(plain["labels"][chosen] == digit)


@on_the_shipped_cnn()  # (tiny-cnn)
def test_top_exciting_under_knockout(network, testset, plain):
    first = network.layers[0].name
    ko = {first: list(range(min(6, network.layers[0].units - 1)))}
    expected = knocked_forward(plain, first, ko[first])
    target = network.layers[1].name
    unit = unit_at(network, target, 11)
    for by, part in (("pre_activation", 0), ("activation", 1)):
        chosen = explain.top_exciting(network, testset, target, unit, k=9, knocked_out=ko, by=by)
        assert_top(chosen, expected[1][part][:, unit], 9)


@on_the_shipped_cnn()  # (tiny-cnn)
def test_top_exciting_edges(network, testset):
    name, out = network.layers[-2].name, network.layers[-1]
    assert explain.top_exciting(network, testset, name, 0, k=0).size == 0
    everything = explain.top_exciting(network, testset, name, 0, k=20_000)
    assert sorted(everything.tolist()) == list(range(len(testset)))
    with pytest.raises(ValueError):
        explain.top_exciting(network, testset, name, 0, k=-1)
    with pytest.raises(ValueError, match="by must be"):
        explain.top_exciting(network, testset, name, 0, by="probability")
    with pytest.raises(ValueError, match="out of range"):
        explain.top_exciting(network, testset, out.name, out.units)
    # ties (a knocked-out unit's zeros) go to the lower index
    first = network.layers[0].name
    five = unit_at(network, first, 5)
    dead = explain.top_exciting(network, testset, first, five, k=4, knocked_out={first: [five]}, by="activation")
    assert dead.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# speed (generous ratios within one run: they catch a Python loop over the digits, not noise)


def test_speed(network, testset):
    explain.clear_caches()
    t0 = time.perf_counter()
    explain.confusion_matrix(network, testset)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    explain.confusion_matrix(network, testset)
    cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    explain.top_exciting(network, testset, network.layers[-2].name, 3 % network.layers[-2].units)
    top = time.perf_counter() - t0
    # 2 s, or for a network that costs more (a CNN) 3 x what network.forward takes over the digits in
    # blocks of 500, measured now (the same load on the machine): a loop over single digits is far slower
    x = network.normalize(testset.images[:2000])
    t0 = time.perf_counter()
    for i in range(0, len(x), 500):
        network.forward(x[i : i + 500])
    forward = (time.perf_counter() - t0) * len(testset) / len(x)
    assert first < max(2.0, 3 * forward), (first, forward)
    # the cached matrix and a unit's top digits read what the first call kept: a small part of its time
    # (ratios within one run, not absolute times: the machine is shared)
    assert cached < first / 10, (cached, first)
    assert top < first / 2, (top, first)


# ---------------------------------------------------------------------------
# the cache shares layers between knock-outs, and stays exact


def forward_in_blocks(network, x, ko, block=1000):
    """network.forward over x in blocks (a CNN's maps of 10,000 digits would not fit), image layers reduced
    to their channel peaks."""
    parts = [network.forward(x[i : i + block], knocked_out=ko) for i in range(0, len(x), block)]
    return [np.concatenate([p[pos].max(axis=(1, 2)) if p[pos].ndim == 4 else p[pos] for p in parts])
            for pos in range(len(network.layers))]


@on_the_shipped_cnn()  # (tiny-cnn)
def test_cache_reuses_layers_and_equals_the_forward_pass(network, testset):
    """Whatever order knock-outs are asked in, each equals network.forward (and predicts the same)."""
    cache = explain.TestsetCache(network, testset)
    x = network.normalize(testset.images)
    if network.layers[0].kind != "dense":
        x = x[:1000]  # network.forward's maps: the first 1,000 digits are enough to compare
    first, last = network.layers[0], network.layers[-2]
    front = network.layers[cache.end]  # the first dense layer
    kos = [{last.name: [4 % last.units]}, {}, {first.name: [3]},
           explain.normalize_knockout(network, {first.name: [3], last.name: [4 % last.units, 7 % last.units]}),
           {first.name: [0, first.units - 1]}]
    for ko in kos:
        expected = forward_in_blocks(network, x, ko)
        for got, want in zip(cache.activations(ko), expected):
            np.testing.assert_allclose(got[: len(x)], want, atol=TOL, rtol=0)
        np.testing.assert_array_equal(cache.predictions(ko)[: len(x)], expected[-1].argmax(axis=1))
        for pos, layer in enumerate(network.layers):
            if pos < cache.end:
                with pytest.raises(ValueError, match="peaks"):
                    cache.pre_activations(layer.name, ko)
                continue
            z = cache.pre_activations(layer.name, ko)
            np.testing.assert_allclose(z[: len(x)], layer.pre_activation(x if pos == 0 else expected[pos - 1]), atol=1e-5, rtol=0)
    # the first dense layer's net input depends only on the knock-outs before it: one array for each of those
    before = {explain.knockout_key(network, {k: v for k, v in ko.items() if position(network, k) < cache.end}) for ko in kos}
    assert len({id(cache.pre_activations(front.name, ko)) for ko in kos}) == len(before)
    if cache.end == 0:
        assert len(before) == 1  # a dense network: one pass for every knock-out
    # a knock-out in a later layer shares the first layer's activations with "none"
    if last is not first:
        assert cache.activations({last.name: [4 % last.units]})[0] is cache.activations({})[0]
    assert cache.activations({first.name: [3]})[0] is not cache.activations({})[0]


@on_the_shipped_cnn()  # (tiny-cnn)
@pytest.mark.parametrize("block", [1, 3])
def test_a_pass_in_blocks_of_one_digit_equals_the_reference(network, testset, reference, block):
    """The page sizes the pass's blocks by time: after a slow step the next one is a single digit, which
    must be read as a batch of one (for a dense network the pass is the first layer's net input). Blocks
    of 3 end on a block of one."""
    n = 40
    few = SimpleNamespace(images=testset.images[:n], labels=testset.labels[:n])
    cache = explain.TestsetCache(network, few)
    cache.block = block
    assert list(cache.first_layer_blocks(seconds=None)) == [min(n, k) for k in range(block, n + block, block)]
    for layer, got, (_, want) in zip(network.layers, cache.activations(), reference):
        want = want[:n]
        np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, float(np.abs(want).max())), rtol=0, err_msg=layer.name)
    np.testing.assert_array_equal(cache.predictions(), reference[-1][1][:n].argmax(axis=1))


def test_first_layer_can_be_warmed_block_by_block(network, testset, plain, reference, classes):
    cache = explain.TestsetCache(network, testset)
    front = network.layers[cache.end].name  # the first dense layer
    block = cache.block
    assert block == (explain.CHUNK if network.layers[0].kind == "dense" else explain.block_size(network))
    assert not cache.first_layer_ready
    steps = cache.first_layer_blocks()
    done = [next(steps) for _ in range(3)]
    assert done == [block, 2 * block, 3 * block] and not cache.first_layer_ready
    assert cache.pass_progress() == (3 * block, len(testset))
    # asking for results now finishes the pass (the half-used generator is simply dropped)
    cm = cache.confusion()
    assert cache.first_layer_ready
    np.testing.assert_array_equal(cm, plain_confusion(plain["labels"], reference[-1][1].argmax(axis=1), classes))
    np.testing.assert_allclose(cache.pre_activations(front), reference[cache.end][0], atol=1e-5, rtol=0)
    assert list(cache.first_layer_blocks()) == []  # nothing left to do
    # a fresh cache warmed to the end gives the same numbers
    other = explain.TestsetCache(network, testset)
    counts = list(other.first_layer_blocks())
    assert counts[-1] == len(testset) and counts == sorted(counts)
    np.testing.assert_array_equal(other.pre_activations(front), cache.pre_activations(front))
    for got, want in zip(other.activations(), cache.activations()):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        other.pre_activations(front)[0, 0] = 1.0  # read-only


def test_activation_stats_are_computed_when_the_export_states_none(model_dir, testset, plain, reference):
    from pyscript_app.core import network as nw

    network, _ = nw.read_export_dir(model_dir, SITE / "data")
    for layer in network.layers[:-1]:
        layer.stats = None
    explain.fill_activation_stats(network, testset)
    if any(layer.kind in explain.IMAGE_KINDS for layer in network.layers):
        # a CNN's scales come from the first STATS_DIGITS test digits (at once: the page draws with them)
        n = explain.STATS_DIGITS
        outs = ref.forward_chain(plain["chain"], plain["x"][:n], rounded=np.float32)
        values = {pos: np.asarray(a, dtype=np.float64).reshape(-1) for pos, a in enumerate(outs)}
    else:
        values = {pos: reference[pos][1].astype(np.float64).reshape(-1) for pos in range(len(network.layers))}
    for pos, layer in enumerate(network.layers[:-1]):
        a = values[pos]
        a = np.abs(a) if a.min() < 0 else a
        assert layer.stats["p99"] == pytest.approx(float(np.percentile(a, 99)), rel=1e-5, abs=1e-6), layer.name
        assert layer.stats["max"] == pytest.approx(float(a.max()), rel=1e-5, abs=1e-6), layer.name
