"""The trainer (pyscript_app/core/train.py) in CPython: gradients, determinism, learning, divergence,
settings from the address, the export it saves, and its portable arithmetic."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pyscript_app.core import activations as act
from pyscript_app.core import network as nw
from pyscript_app.core import train

import reference as ref


@pytest.fixture(scope="module")
def testset(seed_export):
    """The committed test digits (the trainer does not depend on which model is shown)."""
    return seed_export[1]


@pytest.fixture(scope="module")
def digits(testset):
    """Training digits for the unit tests: the first 6,000 test digits (the other 4,000 judge them)."""
    return testset.images[:6000], testset.labels[:6000]


# --- gradients ---------------------------------------------------------------------------------


def reference_loss(weights, biases, activations, x, y):
    """Mean cross-entropy of tests/reference.py's plain float64 forward pass: an independent computation."""
    layers = [*zip(weights[:-1], biases[:-1], activations), (weights[-1], biases[-1], "softmax")]
    return ref.cross_entropy(layers, x, y)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_gradients_equal_finite_differences(digits, activation):
    images, labels = digits
    trainer = train.Trainer(train.Settings(hidden=(16, 8), activation=activation, seed=1), images[:64], labels[:64])
    trainer.run(5)  # away from the initial weights (relu biases off 0)
    x = trainer.normalize(trainer.images[:24])
    y = trainer.labels[:24]
    loss, _, grads = trainer.gradients(trainer.images[:24], y)
    weights = [w.astype(np.float64) for w in trainer.weights]
    biases = [b.astype(np.float64) for b in trainer.biases]
    acts = trainer.settings.activations
    assert loss == pytest.approx(reference_loss(weights, biases, acts, x, y), abs=1e-12)
    rng = np.random.default_rng(0)
    h = 1e-6
    checked = 0
    for layer in range(len(weights)):
        for part, params in (("w", weights), ("b", biases)):
            array = params[layer]
            grad = grads[layer][0 if part == "w" else 1]
            flat = rng.choice(array.size, size=min(12, array.size), replace=False)
            if layer == 0 and part == "w":  # also pixels that are ink in this batch (non-zero gradients)
                inked = np.flatnonzero(x.any(axis=0))
                flat = np.concatenate([flat, rng.choice(inked, 6, replace=False) * array.shape[1]])
            for i in flat:
                idx = np.unravel_index(i, array.shape)
                keep = array[idx]
                array[idx] = keep + h
                up = reference_loss(weights, biases, acts, x, y)
                array[idx] = keep - h
                down = reference_loss(weights, biases, acts, x, y)
                array[idx] = keep
                numeric = (up - down) / (2 * h)
                assert grad[idx] == pytest.approx(numeric, abs=2e-8, rel=1e-5), (layer, part, idx)
                checked += 1
    assert checked >= 6 * 12
    assert max(np.abs(g).max() for pair in grads for g in pair) > 1e-3  # not all zero


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights(digits):
    images, labels = digits
    runs = []
    for seed in (42, 42, 43):
        trainer = train.Trainer(train.Settings(seed=seed), images[:3000], labels[:3000])
        trainer.run(120)  # into the second epoch (94 batches an epoch)
        runs.append((train.weights_digest(trainer), trainer.losses, trainer.epoch))
    assert runs[0] == runs[1]
    assert runs[0][2] == 1
    assert runs[2][0] != runs[0][0]


def test_reset_gives_the_initial_weights_again(digits):
    images, labels = digits
    trainer = train.Trainer(train.Settings(), images[:500], labels[:500])
    initial = train.weights_digest(trainer)
    trainer.run(10)
    assert train.weights_digest(trainer) != initial
    trainer.reset()
    assert train.weights_digest(trainer) == initial
    assert (trainer.steps, trainer.epoch, trainer.losses) == (0, 0, [])


def test_every_digit_once_an_epoch_in_a_new_order(digits):
    images, labels = digits
    trainer = train.Trainer(train.Settings(batch_size=64), images[:1000], labels[:1000])
    seen = []
    while trainer.epoch == 0:
        seen.append(trainer.next_batch().copy())
        trainer.step()
    order = np.concatenate(seen)
    assert sorted(order) == list(range(1000)) and len(seen) == trainer.steps_per_epoch == 16
    assert len(seen[-1]) == 1000 - 15 * 64  # the last batch is the rest
    assert not np.array_equal(trainer.next_batch(), order[:64])  # reshuffled
    assert trainer.progress()["epoch"] == 1 and trainer.progress()["steps"] == 16


# --- learning ---------------------------------------------------------------------------------------


def test_default_settings_learn_6000_digits(digits, testset):
    """Three epochs of 6,000 digits: over 90 % on 4,000 other digits (it gets 90.65 %; chance: 10 %)."""
    images, labels = digits
    trainer = train.Trainer(train.Settings(), images, labels)
    for _ in range(3):
        trainer.run_epoch()
    assert trainer.epoch == 3 and trainer.stopped is None
    accuracy = trainer.evaluate(testset.images[6000:], testset.labels[6000:])
    assert accuracy > 0.90
    assert trainer.smoothed_loss() < 0.5 * trainer.losses[0]


def test_default_network_is_the_seed_network(digits, seed_export):
    trainer = train.Trainer(train.Settings(), *digits)
    seed = [(l.weights.shape, l.activation) for l in seed_export[0].layers]
    assert [(w.shape, a) for w, a in zip(trainer.weights, trainer.layer_activations)] == seed
    assert trainer.settings.optimizer == "adam"


# --- divergence ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", train.OPTIMIZERS)
def test_learning_rate_10_is_caught_and_explained(digits, optimizer):
    images, labels = digits
    trainer = train.Trainer(train.Settings(optimizer=optimizer, learning_rate=10.0), images[:3000], labels[:3000])
    done = trainer.run(400)
    assert done < 400 and trainer.stopped
    message = trainer.stopped
    assert "learning rate 10" in message and "smaller" in message
    assert any(what in message for what in ("NaN", "infinite", "exploded", "overflowed", "no better than guessing"))
    assert trainer.step() is None and trainer.run(5) == 0  # stays stopped, no exception
    assert trainer.progress()["stopped"] == message
    with pytest.raises(train.Diverged):
        trainer.train_batch(images[:8], labels[:8])
    trainer.reset(train.Settings(optimizer=optimizer))  # the way out: Reset, smaller rate
    assert trainer.stopped is None and trainer.run(20) == 20


def test_healthy_training_is_not_flagged(digits):
    """The default rates, and larger ones that still learn (the stall check applies above the default)."""
    images, labels = digits
    for optimizer, rate in [*train.DEFAULT_RATES.items(), ("sgd", 0.5), ("momentum", 0.1), ("adam", 0.03)]:
        trainer = train.Trainer(train.Settings(optimizer=optimizer, learning_rate=rate), images[:4000], labels[:4000])
        assert trainer.run(train.STALL_AFTER + 20) == train.STALL_AFTER + 20 and trainer.stopped is None


# --- settings from the address ---------------------------------------------------------------------------


def test_default_settings_round_trip_through_the_address():
    s = train.Settings()
    assert train.Settings.from_params(s.to_params()) == (s, [])
    assert train.Settings.from_params({}) == (s, [])
    other = train.Settings(hidden=(128, 8, 16), activation=("relu", "tanh", "sigmoid"), optimizer="momentum",
                           learning_rate=0.0125, batch_size=256, seed=7, momentum=0.8)
    params = other.to_params()
    assert params == {"hidden": "128,8,16", "activation": "relu,tanh,sigmoid", "optimizer": "momentum",
                      "lr": "0.0125", "batch": "256", "seed": "7", "momentum": "0.8"}
    assert train.Settings.from_params(params) == (other, [])


@pytest.mark.parametrize("params,expected,note", [
    ({"hidden": "0"}, {"hidden": (8,)}, "width 0"),
    ({"hidden": "10000"}, {"hidden": (128,)}, "width 10000"),
    ({"hidden": "50,20"}, {"hidden": (64, 16)}, "width 50"),
    ({"hidden": "32,abc"}, {"hidden": (32, 32)}, "'abc' is not a number"),
    ({"hidden": "32,32,32,32"}, {"hidden": (32, 32, 32)}, "4 hidden layers"),
    ({"hidden": ""}, {"hidden": (32, 32)}, "name no width"),
    ({"optimizer": "rmsprop"}, {"optimizer": "adam"}, "'rmsprop' is unknown"),
    ({"optimizer": "SGD"}, {"optimizer": "sgd", "learning_rate": 0.1}, None),
    ({"lr": "-0.01"}, {"learning_rate": 1e-5}, "learning rate -0.01 is outside"),
    ({"lr": "1000"}, {"learning_rate": 10.0}, "learning rate 1000 is outside"),
    ({"lr": "fast"}, {"learning_rate": 0.003}, "'fast' is not a number"),
    ({"lr": "nan"}, {"learning_rate": 0.003}, "not a number"),
    ({"seed": "abc"}, {"seed": 42}, "seed 'abc' is not a whole number"),
    ({"seed": "-5"}, {"seed": 0}, "seed -5 is outside"),
    ({"seed": "4.5"}, {"seed": 42}, "not a whole number"),
    ({"batch": "100"}, {"batch_size": 128}, "batch size 100"),
    ({"batch": "0"}, {"batch_size": 8}, "batch size 0"),
    ({"activation": "softmax"}, {"activation": "sigmoid"}, "'softmax' is unknown"),
    ({"activation": "relu,tanh,relu"}, {"activation": "relu"}, "3 activations given for 2 hidden layers"),
    ({"activation": "relu,tanh"}, {"activation": ("relu", "tanh")}, None),
    ({"optimizer": "momentum", "momentum": "1.5"}, {"momentum": 0.99}, "momentum 1.5 is outside"),
])
def test_bad_address_values_give_the_nearest_valid_settings_and_say_so(params, expected, note):
    settings, notes = train.Settings.from_params(params)
    for key, value in expected.items():
        assert getattr(settings, key) == value, key
    if note is None:
        assert notes == []
    else:
        assert len(notes) >= 1 and any(note in n for n in notes), notes
    assert settings.problems() == []


def test_unrelated_address_keys_are_ignored():
    assert train.Settings.from_params({"mode": "train", "sample": "12", "neuron": "x"}) == (train.Settings(), [])


def test_invalid_settings_are_refused_when_built_directly():
    with pytest.raises(ValueError, match="width 0 is not one of 8, 16, 32, 64, 128"):
        train.Settings(hidden=(0,))
    with pytest.raises(ValueError, match="optimizer: 'rmsprop'"):
        train.Settings(optimizer="rmsprop")


# --- the export ---------------------------------------------------------------------------------------------


def test_trained_network_exports_as_a_manifest_v2_the_page_opens(digits, testset):
    images, labels = digits
    trainer = train.Trainer(train.Settings(hidden=(16, 8, 32), activation=("relu", "tanh", "sigmoid")),
                            images[:2000], labels[:2000])
    trainer.run(40)
    accuracy = trainer.evaluate(testset.images[6000:7000], testset.labels[6000:7000])
    manifest, files = trainer.to_export(model_id="my-run", dataset={"name": "MNIST test set", "count": 1000},
                                        test_accuracy=accuracy)
    manifest = json.loads(json.dumps(manifest))  # it is plain JSON
    assert manifest["format"] == "nn-visualizer-export" and manifest["format_version"] == 2
    assert manifest["id"] == "my-run" and manifest["classes"] == [str(c) for c in range(10)]
    assert manifest["input"]["size"] == 784 and manifest["input"]["image_shape"] == [28, 28]
    layers = manifest["layers"]
    assert [l["units"] for l in layers] == [16, 8, 32, 10]
    assert [l["inputs"] for l in layers] == [784, 16, 8, 32]
    assert [l["activation"] for l in layers] == ["relu", "tanh", "sigmoid", "softmax"]
    assert len({l["name"] for l in layers}) == 4
    assert sorted(files) == sorted(nw.model_files(manifest))
    for layer in layers:
        for part in ("weights", "bias"):
            spec = layer[part]
            assert nw.sha256(files[spec["file"]]) == spec["sha256"] and spec["dtype"] == "float32"
    assert manifest["training"]["test_accuracy"] == round(accuracy, 6)
    assert manifest["training"]["settings"] == trainer.settings.to_params()
    # the page's loader builds it, and its forward pass gives what the trainer computes
    network = nw.build_network(manifest, files)
    x = network.normalize(testset.images[6000:6500])
    page = network.forward(x)[-1]
    _, acts, _ = trainer.forward(trainer.normalize(testset.images[6000:6500].reshape(500, -1)))
    np.testing.assert_allclose(page, acts[-1], atol=1e-6)
    assert (page.argmax(1) == trainer.predict(testset.images[6000:6500])).all()


def test_a_diverged_network_cannot_be_saved(digits):
    images, labels = digits
    trainer = train.Trainer(train.Settings(optimizer="adam", learning_rate=10.0), images[:2000], labels[:2000])
    trainer.run(400)
    assert trainer.stopped
    if all(np.isfinite(w).all() for w in trainer.weights):
        trainer.weights[0][0, 0] = np.inf  # the loss exploded before the weights did: make them overflow
    with pytest.raises(ValueError, match="no longer finite"):
        trainer.to_export()


def test_input_size_and_classes_come_from_the_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 6, 5), dtype=np.uint8)
    labels = rng.integers(0, 4, 300)
    trainer = train.Trainer(train.Settings(hidden=(8,)), images, labels)
    assert trainer.sizes == [30, 8, 4]
    assert trainer.run(10) == 10
    manifest, files = trainer.to_export()
    assert manifest["input"]["size"] == 30 and manifest["input"]["image_shape"] == [6, 5]
    assert manifest["classes"] == ["0", "1", "2", "3"]
    assert nw.build_network(manifest, files).layers[-1].units == 4


def test_bad_data_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        train.Trainer(train.Settings(), np.zeros((3, 4, 4), np.uint8), np.zeros(2, int))
    with pytest.raises(ValueError, match="labels must lie in 0 .. 1"):
        train.Trainer(train.Settings(), np.zeros((3, 4, 4), np.uint8), np.array([0, 1, 5]), classes=["a", "b"])


# --- the arithmetic that makes the browser and CPython agree --------------------------------------------------


def test_dot_adds_left_to_right_from_zero():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 40)) * np.exp2(rng.integers(-30, 30, (5, 40)))
    b = rng.standard_normal((40, 3))
    expected = np.zeros((5, 3))
    for i in range(5):
        for j in range(3):
            s = 0.0
            for k in range(40):
                s = s + float(a[i, k]) * float(b[k, j])  # Python floats: IEEE double, one rounding each
            expected[i, j] = s
    assert np.array_equal(train.dot(a, b), expected)
    assert not np.array_equal(a @ b, expected)  # BLAS adds in another order: the reason for dot()


def test_portable_functions_match_numpy_closely():
    z = np.concatenate([np.linspace(-40, 40, 200001), [0.0, -0.0, 1e-300, -1e-300, 700.0, -740.0]])
    for name in ("sigmoid", "tanh", "relu"):
        a = act.get(name)
        np.testing.assert_allclose(a.exact(z), a.function(z), rtol=1e-15, atol=1e-16)
    zz = np.stack([z, -z, 0.5 * z], axis=1)
    np.testing.assert_allclose(act.get("softmax").exact(zz), act.softmax(zz), rtol=1e-14, atol=1e-300)
    x = np.exp(np.linspace(-700, 700, 100001))
    np.testing.assert_allclose(act.log_portable(x), np.log(x), rtol=1e-15, atol=1e-13)
    np.testing.assert_allclose(act.exp_portable(np.linspace(-700, 700, 100001)), x, rtol=4e-16)
    assert act.exp_portable(np.array([-np.inf, np.inf, -800.0]))[[0, 2]].tolist() == [0.0, 0.0]
    assert math.isinf(act.exp_portable(np.array([np.inf]))[0])


# --- stepping in slices, as the page does ---------------------------------------------------------------------


def test_evaluation_in_slices_measures_the_weights_it_started_with(digits, testset):
    images, labels = digits
    trainer = train.Trainer(train.Settings(), images[:3000], labels[:3000])
    trainer.run(30)
    expected = trainer.evaluate(testset.images[6000:], testset.labels[6000:])
    evaluation = trainer.start_evaluation(testset.images[6000:], testset.labels[6000:], chunk=700)
    calls = 0
    while not evaluation.advance():
        calls += 1
        assert evaluation.accuracy is None
        trainer.step()  # training goes on between slices
    assert calls == 5 and evaluation.count == 4000 and evaluation.steps == 30
    assert evaluation.accuracy == expected
    assert trainer.evaluate(testset.images[6000:], testset.labels[6000:]) != expected  # the weights did move


def test_evaluation_slices_may_differ_in_size(digits, testset):
    images, labels = digits
    trainer = train.Trainer(train.Settings(), images[:3000], labels[:3000])
    trainer.run(10)
    expected = trainer.evaluate(testset.images[:1000], testset.labels[:1000])
    evaluation = trainer.start_evaluation(testset.images[:1000], testset.labels[:1000])
    positions = []
    for count in (1, 99, 400, 0, 10_000):  # as many as the page's sizer says (at least one)
        evaluation.advance(count)
        positions.append(evaluation.position)
    assert positions == [1, 100, 500, 501, 1000] and evaluation.done
    assert evaluation.accuracy == expected


def test_run_until_stops_at_the_deadline():
    rng = np.random.default_rng(0)
    trainer = train.Trainer(train.Settings(hidden=(8,)), rng.integers(0, 256, (200, 4, 4), dtype=np.uint8),
                            rng.integers(0, 3, 200))
    ticks = iter(range(100))
    # the clock is read after each step: 0, 1, 2, 3, 4 are before the deadline, 5 is not
    assert trainer.run_until(5, clock=lambda: next(ticks)) == 6
    assert trainer.run_until(-1.0) == 1  # always at least one step
    assert trainer.steps == 7


def test_to_network_is_what_the_page_draws(digits, testset):
    images, labels = digits
    trainer = train.Trainer(train.Settings(hidden=(16,), activation="tanh"), images[:1000], labels[:1000])
    trainer.run(10)
    network = trainer.to_network()
    assert [l.name for l in network.layers] == ["hidden_1", "output"]
    for layer, w, b in zip(network.layers, trainer.weights, trainer.biases):
        assert np.array_equal(layer.weights, w) and np.array_equal(layer.bias, b)
    assert network.class_labels == [str(c) for c in range(10)]


# --- convolutional layers ---------------------------------------------------------------------------------


def reference_cnn(manifest, files, x):
    """The output of a saved CNN for pixels x (n, 784), float64, from tests/reference.py's plain loops (the
    .npy files read with np.load, each layer written out; nothing from pyscript_app)."""
    import io

    a = np.asarray(x, dtype=np.float64)
    for spec in manifest["layers"]:
        kind = spec["kind"]
        arrays = {part: np.load(io.BytesIO(files[spec[part]["file"]])).astype(np.float64)
                  for part in ("weights", "bias") if part in spec}
        if kind == "conv2d":
            z = ref.conv2d(a.reshape(-1, *spec["input_shape"]), arrays["weights"], arrays["bias"], spec["padding"])
            a = ref.FUNCTIONS[spec["activation"]](z)
        elif kind == "maxpool2d":
            a = ref.maxpool2d(a.reshape(-1, *spec["input_shape"]))
        elif kind == "flatten":
            a = a.reshape(len(a), -1)
        else:
            z = a @ arrays["weights"] + arrays["bias"]
            a = ref.softmax(z) if spec["activation"] == "softmax" else ref.FUNCTIONS[spec["activation"]](z)
    return a


CNN = {"conv": "4x3p,8x3p", "hidden": "16", "batch": "16", "seed": "7"}


def test_a_cnn_learns_from_a_few_hundred_digits(digits, testset):
    images, labels = digits
    settings, notes = train.Settings.from_params({**CNN, "activation": "relu", "lr": "0.01"})
    assert notes == [] and settings.conv == ((4, 3, True), (8, 3, True))
    trainer = train.Trainer(settings, images[:480], labels[:480])
    assert [layer.kind for layer in trainer.layers] == ["conv2d", "maxpool2d", "conv2d", "maxpool2d", "flatten",
                                                        "dense", "dense"]
    assert [w.shape for w in trainer.weights] == [(3, 3, 1, 4), (3, 3, 4, 8), (200, 16), (16, 10)]
    held_out = testset.images[6000:6500], testset.labels[6000:6500]
    before = trainer.evaluate(*held_out)
    trainer.run_epoch()
    assert trainer.steps == 30 and trainer.epoch == 1
    first, last = np.mean(trainer.losses[:5]), np.mean(trainer.losses[-5:])
    assert last < 0.8 * first, (first, last)
    after = trainer.evaluate(*held_out)
    assert after > before + 0.2 and after > 0.4, (before, after)


def test_cnn_initial_weights_are_glorot_uniform_as_keras(digits):
    images, labels = digits
    trainer = train.Trainer(train.Settings(conv=((16, 5, False),), hidden=(8,)), images[:64], labels[:64])
    w = trainer.weights[0].astype(np.float64)
    limit = math.sqrt(6.0 / (5 * 5 * 1 + 5 * 5 * 16))  # Keras' fans: kernel size x channels in / filters
    assert w.shape == (5, 5, 1, 16) and np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit
    assert abs(w.std() - limit / math.sqrt(3)) < 0.1 * limit
    assert not trainer.biases[0].any()
    assert trainer.layers[-2].weights.shape == (24 * 24 * 16, 8)  # valid padding: 28 - 5 + 1, no pooling


def test_cnn_gradients_equal_finite_differences_of_the_reference_loss(digits):
    images, labels = digits
    settings, _ = train.Settings.from_params({**CNN, "conv": "4x3p,4x5", "activation": "tanh"})
    trainer = train.Trainer(settings, images[:64], labels[:64])
    trainer.run(3)  # away from the zero biases
    pixels, y = trainer.images[:6], trainer.labels[:6]
    loss, _, grads = trainer.gradients(pixels, y)
    grads = [g for g in grads if g]  # (pooling and flatten have no parameters)
    manifest, files = trainer.to_export()
    x = trainer.normalize(pixels)

    def reference_loss():
        p = reference_cnn(manifest, files, x)
        return -np.log(p[np.arange(len(y)), y]).mean()

    assert loss == pytest.approx(reference_loss(), abs=1e-7)  # (the export holds float32 weights, as trained)
    rng = np.random.default_rng(2)
    import io

    h = 1e-6  # (the nudged copies are saved as float64: the reference reads them as they are)
    for i, spec in enumerate(l for l in manifest["layers"] if "weights" in l):
        for j, part in enumerate(("weights", "bias")):
            name = spec[part]["file"]
            array = np.load(io.BytesIO(files[name])).astype(np.float64)
            for flat in rng.choice(array.size, size=4, replace=False):
                idx = np.unravel_index(flat, array.shape)
                keep = array[idx]
                losses = []
                for step in (h, -h):
                    array[idx] = keep + step
                    files[name] = _npy(array)
                    losses.append(reference_loss())
                array[idx] = keep
                files[name] = _npy(array)
                numeric = (losses[0] - losses[1]) / (2 * h)
                assert grads[i][j][idx] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (spec["name"], part, idx)


def _npy(array):
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_cnn_settings_round_trip_through_the_address():
    settings = train.Settings(conv=((8, 3, True), (16, 5, False)), hidden=(32,))
    params = settings.to_params()
    assert params["conv"] == "8x3p,16x5" and list(params)[0] == "conv"
    assert train.Settings.from_params(params) == (settings, [])
    assert "conv" not in train.Settings().to_params()  # a dense network's link is as before
    assert "conv 8 3x3 relu + 2x2 max pooling -> conv 16 5x5 relu -> 32 sigmoid" in settings.describe()


@pytest.mark.parametrize("raw,expected,note", [
    ("7x3p", ((8, 3, True),), "conv filters 7 is not one of 4, 8, 16, 32; using 8"),
    ("8x4", ((8, 3, False),), "conv kernel 4 is not one of 3, 5; using 3"),
    ("8x3p,8x3p,8x3p", ((8, 3, True), (8, 3, True)), "3 conv layers asked for, at most 2 allowed"),
    ("eight", (), "conv layer 'eight' is not <filters>x<kernel>"),
    ("", (), None),
])
def test_bad_conv_values_give_the_nearest_valid_settings_and_say_so(raw, expected, note):
    settings, notes = train.Settings.from_params({"conv": raw})
    assert settings.conv == expected
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes), notes


def test_a_conv_layer_that_does_not_fit_the_image_is_refused():
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    settings = train.Settings(conv=((4, 5, True), (4, 5, False)), hidden=(8,))
    with pytest.raises(ValueError, match="conv layer 2 \\(5x5\\) does not fit its 2x2 input"):
        train.Trainer(settings, images, np.arange(4) % 2)


def test_a_saved_cnn_opens_through_the_reader_and_its_forward_is_the_reference_loop(digits, testset, tmp_path):
    from pyscript_app.core import export_format, export_write

    images, labels = digits
    settings, _ = train.Settings.from_params(CNN)
    trainer = train.Trainer(settings, images[:320], labels[:320])
    trainer.run(15)
    accuracy = trainer.evaluate(testset.images[6000:6200], testset.labels[6000:6200])
    manifest, files = trainer.to_export(model_id="cnn-run", test_accuracy=accuracy)
    data = export_write.zip_bytes(manifest, files)  # what Save downloads
    opened = export_format.read_zip(data, "trained.zip")
    network = nw.build_network(export_format.parse_manifest(opened["manifest.json"]), opened)
    assert [layer.kind for layer in network.layers] == [layer.kind for layer in trainer.layers]
    assert network.manifest["training"]["settings"]["conv"] == "4x3p,8x3p"
    pixels = testset.images[6000:6300].reshape(300, -1)
    x = network.normalize(pixels)
    expected = reference_cnn(json.loads(opened["manifest.json"]), opened, x)
    np.testing.assert_allclose(network.forward(x)[-1], expected, atol=1e-6)
    _, acts, _ = trainer.forward(trainer.normalize(pixels))
    np.testing.assert_allclose(acts[-1], expected, atol=1e-12)  # the trainer's exact pass: float64 throughout
    assert (expected.argmax(1) == trainer.predict(testset.images[6000:6300])).all()
