"""Why this answer, what a neuron wants, how to fool it (pyscript_app/core/why.py), in CPython.

Checked against independent computations: TensorFlow's GradientTape on a Keras model built from the
export's .npy files, and the tests' own float64 forward pass (tests/reference.py). Every committed model
and the random test exports (conftest's model_dir) run through the same checks.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import reference
from conftest import SHIPPED, SITE
from pyscript_app.core import network as nw
from pyscript_app.core import why
from pyscript_app.views import why as why_view

DIGITS = (0, 7, 21, 1234, 4321)


@pytest.fixture(scope="module")
def ref(model_dir):
    return reference.load_chain(model_dir)[1]


@pytest.fixture(scope="module")
def keras_model(model_dir):
    """A float64 Keras model with the export's weights: its log-softmax and input gradient come from TensorFlow."""
    import keras_model as km

    return km.from_export(model_dir)


def outputs(ref, u):
    """Every layer's output (tests/reference.py's plain loops); a conv or pooling layer's as each digit's map maxima."""
    return reference.forward_chain(ref, np.atleast_2d(u), peaks=True)


def tape_gradient(keras_model, x, a, b=None):
    """d (log p_a - log p_b) / dx from TensorFlow, float64."""
    import tensorflow as tf

    xt = tf.constant(np.atleast_2d(x), dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logp = tf.math.log(keras_model(xt))
        f = logp[:, a] - (logp[:, b] if b is not None else 0.0)
    return tape.gradient(f, xt).numpy(), f.numpy()


def pixels(testset, i):
    return testset.images[i].reshape(-1).astype(np.float64) / 255.0


def reference_logp(ref, u):
    probs = outputs(ref, u)[-1]
    return np.log(probs)


def test_gradient_x_input_equals_tensorflow(export, keras_model):
    network, testset = export
    for i in DIGITS:
        u = pixels(testset, i)
        att = why.attribute(network, u, "gradxinput")
        predicted = int(network.predict(network.normalize(testset.images[i])))
        g, f = tape_gradient(keras_model, u, predicted)
        expected = u * g[0]
        assert att.target == ("logprob", predicted, None)
        scale = np.abs(expected).max()
        assert np.abs(att.values - expected).max() <= 1e-5 * scale + 1e-12, i
        assert att.value == pytest.approx(float(f[0]), rel=1e-5, abs=1e-6)
        assert att.total == pytest.approx(float(att.values.sum()))


def test_a_contrast_is_the_difference_of_two_log_probabilities(export, keras_model):
    network, testset = export
    u = pixels(testset, 21)
    att = why.attribute(network, u, "gradxinput", target=(6, 5))
    g, f = tape_gradient(keras_model, u, 6, 5)
    assert np.abs(att.values - u * g[0]).max() <= 1e-5 * np.abs(u * g[0]).max() + 1e-12
    assert att.value == pytest.approx(float(f[0]), rel=1e-5, abs=1e-6)
    assert att.label == "6-5"


def test_integrated_gradients_are_complete_within_one_percent(export, ref):
    network, testset = export
    for i in DIGITS:
        u = pixels(testset, i)
        att = why.attribute(network, u, "ig", target=int(testset.labels[i]))
        k = int(testset.labels[i])
        fx, fb = reference_logp(ref, u)[0, k], reference_logp(ref, np.zeros_like(u))[0, k]
        assert att.value == pytest.approx(fx, rel=1e-5, abs=1e-6)
        assert att.baseline_value == pytest.approx(fb, rel=1e-5, abs=1e-6)
        gap = abs(att.total - (fx - fb))
        # A piecewise-linear network (relu or linear layers) gets them exactly, segment by segment between
        # the path's kinks: complete to rounding. Any other by the quadrature, within 1 %; one with kinks
        # as well as curves (relu or max pooling with tanh or sigmoid, as tiny-cnn) can use up the
        # quadrature's most gradients first: then the page shows the gap, which stays small.
        assert why.piecewise_linear(network) or not att.exact
        if att.exact:
            assert gap <= 1e-6 * abs(fx - fb) + 1e-9, (i, att.total, fx - fb)
            assert att.steps >= 1
        else:
            assert gap <= 0.01 * abs(fx - fb) + 1e-6 or (att.steps == why.IG_MOST_STEPS and gap <= 0.05), (i, att.total, fx - fb)
            assert why.IG_STEPS <= att.steps <= why.IG_MOST_STEPS


@pytest.fixture(scope="module")
def relu_export():
    """(network, testset, its folder) of the shipped ReLU network: exact integrated gradients are checked on it."""
    folder = SITE / "models" / "relu"
    return (*nw.read_export_dir(folder, SITE / "data"), folder)


def test_integrated_gradients_of_the_relu_network_are_complete_to_rounding_on_200_digits(relu_export):
    """The shipped ReLU network turns confident within slivers of the path, where a quadrature converges
    slowly; integrated gradients taken segment by segment between the kinks add up to f(x) - f(black)."""
    network, testset, folder = relu_export
    assert why.piecewise_linear(network)
    ref = reference.load_chain(folder)[1]
    picked = np.random.default_rng(0).choice(len(testset.labels), 200, replace=False)
    u = testset.images[picked].reshape(200, -1).astype(np.float64) / 255.0
    logp = np.log(outputs(ref, np.concatenate([u, np.zeros((1, u.shape[1]))]))[-1])
    worst = 0.0
    for row, i in enumerate(picked):
        k = int(testset.labels[i])
        att = why.attribute(network, u[row], "ig", target=k)
        assert att.exact
        change = logp[row, k] - logp[-1, k]
        assert att.value == pytest.approx(logp[row, k], rel=1e-9, abs=1e-12)
        assert att.baseline_value == pytest.approx(logp[-1, k], rel=1e-9, abs=1e-12)
        worst = max(worst, abs(att.total - change) / abs(change))
    assert worst <= 1e-6


def test_a_contrast_and_knock_outs_keep_integrated_gradients_exact(relu_export):
    network, testset, folder = relu_export
    ref = reference.load_chain(folder)[1]
    u = pixels(testset, 21)
    black = np.zeros_like(u)
    att = why.attribute(network, u, "ig", target=(6, 5))
    logp = np.log(outputs(ref, np.stack([u, black]))[-1])
    change = (logp[0, 6] - logp[0, 5]) - (logp[1, 6] - logp[1, 5])
    assert att.total == pytest.approx(change, rel=1e-6)
    dead = {"hidden_1": [3, 17, 40, 99], "hidden_2": [0, 5, 33]}
    k = int(testset.labels[21])
    att = why.attribute(network, u, "ig", target=k, knocked_out=dead)
    positions = {layer["name"]: pos for pos, layer in enumerate(ref)}
    logp = np.log(reference.forward_chain(ref, np.stack([u, black]), dead={positions[n]: v for n, v in dead.items()})[-1])
    assert att.value == pytest.approx(logp[0, k], rel=1e-9)
    assert att.total == pytest.approx(logp[0, k] - logp[1, k], rel=1e-6)


def test_convolutions_and_max_pooling_get_exact_integrated_gradients(tmp_path, monkeypatch):
    """Max pooling is piecewise linear too: its kinks are where a block's largest value changes hands."""
    import fake_exports

    testset = nw.read_testset_dir(SITE / "data")
    chains = {"relu-pool": [("conv", 1, 3, "valid", "relu"), ("pool",), (8, "linear")],
              "linear-pool": [("conv", 2, 3, "valid", "linear"), ("pool",), (8, "relu")]}
    for name, chain in chains.items():
        folder = fake_exports.write_export(tmp_path / name, fake_exports.cnn_export_files(name, chain, seed=5))
        network, ref = nw.read_export_dir(folder, SITE / "data")[0], reference.load_chain(folder)[1]
        assert why.piecewise_linear(network)
        for i in (0, 7):
            u = pixels(testset, i)
            att = why.attribute(network, u, "ig", target=3)
            logp = np.log(outputs(ref, np.stack([u, np.zeros_like(u)]))[-1])
            assert att.exact and att.total == pytest.approx(logp[0, 3] - logp[1, 3], rel=1e-6), (name, i)
    # a path cut into more pieces than the quadrature's most gradients takes the quadrature
    monkeypatch.setattr(why, "IG_MOST_SEGMENTS", 3)
    att = why.attribute(network, pixels(testset, 0), "ig", target=3)
    assert not att.exact and why.IG_STEPS <= att.steps <= why.IG_MOST_STEPS


def test_exact_integrated_gradients_are_what_riemann_sums_converge_to(relu_export):
    """TensorFlow's gradients at 2,000 and 20,000 midpoints of the path: their error against the exact
    attributions shrinks as 1 / steps (a sum over a path whose gradient jumps at kinks converges no faster),
    down to a few parts in 10,000 of the largest attribution."""
    import keras_model as km
    import tensorflow as tf

    network, testset, folder = relu_export
    model = km.from_export(folder)

    def riemann(u, k, steps):
        total = np.zeros_like(u)
        for start in range(0, steps, 5000):
            alphas = (np.arange(start, min(steps, start + 5000)) + 0.5) / steps
            xt = tf.constant(alphas[:, None] * u[None])
            with tf.GradientTape() as tape:
                tape.watch(xt)
                f = tf.reduce_sum(tf.math.log(model(xt))[:, k])
            total += tape.gradient(f, xt).numpy().sum(axis=0)
        return u * total / steps

    for i in (0, 21):
        u = pixels(testset, i)
        k = int(testset.labels[i])
        exact = why.attribute(network, u, "ig", target=k).values
        scale = np.abs(exact).max()
        coarse, fine = (np.abs(riemann(u, k, n) - exact).max() / scale for n in (2000, 20000))
        assert fine <= 1e-3 and fine <= 0.25 * coarse, (i, coarse, fine)


def test_occlusion_equals_the_drops_of_the_reference_pass(export, ref):
    network, testset = export
    u = pixels(testset, 7)
    k = int(testset.labels[7])
    att = why.attribute(network, u, "occlusion", target=k)
    image = u.reshape(28, 28)
    base = reference_logp(ref, u)[0, k]
    total, count = np.zeros((28, 28)), np.zeros((28, 28))
    places = [(top, left) for top in range(0, 23, 2) for left in range(0, 23, 2)]
    hidden = np.repeat(image[None], len(places), axis=0)
    for i, (top, left) in enumerate(places):
        hidden[i, top : top + 6, left : left + 6] = 0
    drops = base - reference_logp(ref, hidden.reshape(len(places), -1))[:, k]
    for (top, left), drop in zip(places, drops):
        total[top : top + 6, left : left + 6] += drop
        count[top : top + 6, left : left + 6] += 1
    expected = (total / count).reshape(-1)
    assert np.abs(att.values - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_attributions_of_a_blank_digit_are_finite(export):
    network, _ = export
    for method in why.METHODS:
        att = why.attribute(network, np.zeros(network.input_size), method)
        assert np.isfinite(att.values).all() and np.isfinite(att.total), method


def tick_value(text: str) -> float:
    """A legend's end as the page writes it (+0.12, \u22124.6\u00d710\u207b\u2074) as a float."""
    digits = str.maketrans("\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079", "-0123456789")
    text = text.replace("\u2212", "-")
    mantissa, _, exponent = text.partition("\u00d710")
    return float(mantissa) * 10.0 ** int(exponent.translate(digits) or 0)


def test_a_sure_answer_says_why_its_map_is_faint_and_its_scale_is_never_zero(export, ref):
    """Gradient x input of a log-probability near 0 is tiny everywhere: the map's key reads its true size (not
    0.00 to 0.00), and a sentence says why, when the network is 99 % sure or more (by the tests' own forward
    pass), and only then."""

    network, testset = export
    probs = outputs(ref, testset.images[:300].reshape(300, -1).astype(np.float64) / 255.0)[-1].max(axis=1)
    seen = set()
    for i in [int(np.argmax(probs)), int(np.argmin(probs))]:
        att = why.attribute(network, pixels(testset, i), "gradxinput")
        figure = why_view.attribution_figure(network, att, i)
        low, high = re.search(r'<span class="ticks"><span>(.*?)</span><span>0</span><span>(.*?)</span>', figure).groups()
        limit = np.abs(att.values).max()
        assert tick_value(high) == pytest.approx(limit, rel=0.05, abs=0.005), (i, high, limit)
        assert tick_value(low) == -tick_value(high)
        sure = probs[i] >= 0.99
        assert ('id="attribution-sure"' in figure) == sure, (i, probs[i])
        seen.add(sure)
    if network.manifest["id"] in SHIPPED:  # (trained: the random test exports are never that sure)
        assert seen == {True, False}


@pytest.mark.parametrize("i", [3, 1234])
def test_an_attack_reaches_its_target_within_its_epsilon(export, ref, i):
    network, testset = export
    u = pixels(testset, i)
    truth = int(testset.labels[i])
    for target in ((truth + 1) % 10, (truth + 5) % 10):
        result = why.attack(network, u, target)
        if not result.found:
            assert result.epsilon is None and "no change" in result.message
            continue
        assert ((result.pixels >= 0) & (result.pixels <= 1)).all()
        assert np.abs(result.pixels - u).max() <= result.epsilon + 1e-12
        probs = outputs(ref, result.pixels)[-1][0]
        assert int(probs.argmax()) == target == result.prediction
        assert result.confidence == pytest.approx(float(probs.max()), rel=1e-4)
        assert result.moved == int((np.abs(result.pixels - u) > 0.1).sum())
        # the pixels are grey levels: the changed digit shows in the view exactly
        assert np.array_equal(np.rint(result.pixels * 255) / 255, result.pixels)


def test_an_unreachable_target_says_so(fake_models):
    files = __import__("fake_exports").export_files("unreachable", [(8, "relu")], seed=3)
    manifest = nw.parse_manifest(files["manifest.json"])
    network = nw.build_network(manifest, files)
    out = network.layers[-1]
    out.weights[:, 4] = 0.0  # class 4 can never win: no weight reaches it and its bias is far below
    out.bias[4] = -1e4
    network.weights_changed()
    result = why.attack(network, np.full(network.input_size, 0.3), 4)
    assert not result.found and result.epsilon is None
    assert "no change of at most 1 per pixel" in result.message


def test_the_robustness_curve_at_zero_is_the_test_accuracy_and_equals_tensorflows(export, keras_model):
    import tensorflow as tf

    network, testset = export
    subset = nw.TestSet(testset.images[:500], testset.labels[:500])
    eps = (0.0, 0.05, 0.1)
    curve = why.robustness_curve(network, subset, eps)
    u = subset.images.reshape(500, -1).astype(np.float64) / 255.0
    y = subset.labels.astype(np.intp)
    xt = tf.constant(u)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logp = tf.math.log(keras_model(xt))
        f = tf.reduce_sum(tf.gather(logp, y, axis=1, batch_dims=1))
    g = tape.gradient(f, xt).numpy()
    for e, acc in zip(eps, curve):
        adv = np.clip(u - e * np.sign(g), 0, 1)
        expected = float((keras_model(adv).numpy().argmax(1) == y).mean())
        # a pixel whose gradient is 0 up to rounding may get another sign: allow one digit of 500
        assert abs(acc - expected) <= 1 / 500 + 1e-12, (e, acc, expected)
    assert curve[0] == pytest.approx(float((network.predict(network.normalize(subset.images)) == y).mean()))


def test_the_robustness_curve_so_far_is_the_accuracy_over_the_digits_done(export, keras_model):
    """While it is measured, the curve shown is the accuracy over the digits done so far: a spread sample."""
    import tensorflow as tf

    network, testset = export
    n, eps = 400, (0.0, 0.1)
    subset = nw.TestSet(testset.images[:n], testset.labels[:n])
    u = subset.images.reshape(n, -1).astype(np.float64) / 255.0
    y = subset.labels.astype(np.intp)
    xt = tf.constant(u)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        f = tf.reduce_sum(tf.gather(tf.math.log(keras_model(xt)), y, axis=1, batch_dims=1))
    g = tape.gradient(f, xt).numpy()
    right = np.stack([keras_model(np.clip(u - e * np.sign(g), 0, 1)).numpy().argmax(1) == y for e in eps], axis=1)
    order = why.spread_order(n)
    assert sorted(order) == list(range(n)) and not np.array_equal(order, np.arange(n))  # every digit, shuffled
    steps, seen = why.robustness_steps(network, subset, eps, chunk=96), []
    while True:
        try:
            done, total, so_far = next(steps)
        except StopIteration as stop:
            final = stop.value
            break
        seen.append(done)
        expected = right[order[:done]].sum(axis=0)
        # a pixel whose gradient is 0 up to rounding may get another sign: allow one digit
        assert np.abs(np.asarray(so_far) * done - expected).max() <= 1 + 1e-9, (done, so_far, expected / done)
    assert seen == [96, 192, 288, 384, 400] and total == n
    assert np.array_equal(final, so_far)  # the last curve so far is the curve


def test_a_dense_networks_dream_keeps_to_the_pixels_where_test_digits_have_ink(export):
    network, testset = export
    flat = testset.images.reshape(len(testset.images), -1)
    where = why.dream_pixels(network, testset.images)
    if network.layers[0].kind != "dense":
        assert where is None  # a conv layer's kernels are the same at every place
        return
    assert np.array_equal(where, np.count_nonzero(flat, axis=0) >= 0.01 * len(flat))
    assert why.dream_pixels(network, np.zeros_like(testset.images)) is None  # no ink anywhere: every pixel


def test_a_dream_excites_its_unit_at_least_as_much_as_any_test_digit(export, ref):
    network, testset = export
    x = testset.images.reshape(len(testset.images), -1).astype(np.float64) / 255.0
    # a dense unit's net input; a conv or pooling channel's peak (its map's largest value)
    pre = reference.forward_chain(ref, x, pre=True, peaks=True)
    where = why.dream_pixels(network, testset.images)  # as the page's card does
    missed = []
    for pos, layer in enumerate(network.layers[:-1]):
        if layer.kind == "flatten":  # not a unit of its own: its values are the maps before it
            continue
        for unit in range(0, layer.units, max(1, layer.units // 8)):
            u = why.dream(network, layer.name, unit, where=where)
            assert ((u >= 0) & (u <= 1)).all() and np.isfinite(u).all()
            if where is not None:
                assert (u[~where] == 0).all()  # black where no test digit has ink
            k = 1 if len(layer.output_shape) == 3 else 0
            z = reference.forward_chain(ref, u[None], pre=True, peaks=True)[pos][k][0, unit]
            best = pre[pos][k][:, unit].max()
            if z < best - 1e-9:
                missed.append((layer.name, unit, z, best))
    assert missed == []
