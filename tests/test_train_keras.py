"""The trainer against Keras: from the same weights, on the same batches, k steps give the same weights.

Keras (TensorFlow) runs on one thread with deterministic kernels, as in
export_weights.py; the model is the same Dense chain with softmax and sparse
categorical cross-entropy, trained with ``model.train_on_batch``.

Keras computes in float32, the trainer in float64, so the two drift apart by
about 1e-7 per step. One thing turns that drift into a real difference: with
relu, a net input within ~1e-6 of 0 can fall on different sides of the kink,
and Adam turns the gradient that appears on one side only into a full step
(seen with seed 7 at step 4 of the relu/Adam case: 1e-3). The seed used here
(0) meets no such net input in these runs; seeds 0 to 5 all stay within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import export_weights  # sets TensorFlow's environment (deterministic ops, no oneDNN) before it is imported
from pyscript_app.core import train

pytest.importorskip("tensorflow")

STEPS = 25
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras():
    _, keras = export_weights.configure_tensorflow(0)
    return keras


def keras_optimizer(keras, settings):
    if settings.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=settings.learning_rate)
    momentum = settings.momentum if settings.optimizer == "momentum" else 0.0
    return keras.optimizers.SGD(learning_rate=settings.learning_rate, momentum=momentum)


def keras_model(keras, trainer):
    sizes = trainer.sizes
    model = keras.Sequential(
        [keras.Input(shape=(sizes[0],))]
        + [keras.layers.Dense(units, activation=a) for units, a in zip(sizes[1:], trainer.layer_activations)]
    )
    model.compile(optimizer=keras_optimizer(keras, trainer.settings), loss="sparse_categorical_crossentropy")
    model.set_weights([p for w, b in zip(trainer.weights, trainer.biases) for p in (w, b)])
    return model


CASES = [
    ("sigmoid", "sgd", 0.5),
    ("sigmoid", "momentum", 0.05),
    ("sigmoid", "adam", 0.003),
    ("tanh", "sgd", 0.1),
    ("tanh", "momentum", 0.02),
    ("tanh", "adam", 0.002),
    ("relu", "sgd", 0.1),
    ("relu", "momentum", 0.02),
    ("relu", "adam", 0.002),
]


@pytest.mark.parametrize("activation,optimizer,rate", CASES, ids=[f"{a}-{o}" for a, o, _ in CASES])
def test_steps_equal_keras_train_on_batch(keras, testset, activation, optimizer, rate):
    settings = train.Settings(hidden=(32, 16), activation=activation, optimizer=optimizer,
                              learning_rate=rate, batch_size=32, seed=0, momentum=0.9)
    trainer = train.Trainer(settings, testset.images[:2000], testset.labels[:2000])
    initial = [w.copy() for w in trainer.weights]
    model = keras_model(keras, trainer)
    for _ in range(STEPS):
        idx = trainer.next_batch()
        x = trainer.normalize(trainer.images[idx]).astype(np.float32)
        keras_loss = float(model.train_on_batch(x, trainer.labels[idx]))
        ours = trainer.step()
        assert ours == pytest.approx(keras_loss, abs=1e-4)  # the loss before this step's update
    ours = [p for w, b in zip(trainer.weights, trainer.biases) for p in (w, b)]
    theirs = model.get_weights()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < TOLERANCE, f"parameter {i}: max difference {np.abs(a - b).max():.2e}"
    # and the steps did move the weights (far more than the tolerance)
    assert max(np.abs(w - w0).max() for w, w0 in zip(trainer.weights, initial)) > 100 * TOLERANCE


def test_three_layers_with_one_activation_each_equal_keras(keras, testset):
    settings = train.Settings(hidden=(16, 32, 8), activation=("tanh", "relu", "sigmoid"), optimizer="adam",
                              learning_rate=0.003, batch_size=64, seed=0)
    trainer = train.Trainer(settings, testset.images[:3000], testset.labels[:3000])
    model = keras_model(keras, trainer)
    for _ in range(STEPS):
        idx = trainer.next_batch()
        model.train_on_batch(trainer.normalize(trainer.images[idx]).astype(np.float32), trainer.labels[idx])
        trainer.step()
    ours = [p for w, b in zip(trainer.weights, trainer.biases) for p in (w, b)]
    assert max(np.abs(a - b).max() for a, b in zip(ours, model.get_weights())) < TOLERANCE


def test_initial_weights_follow_keras_glorot_uniform_limits(testset):
    trainer = train.Trainer(train.Settings(hidden=(64, 8)), testset.images[:100], testset.labels[:100])
    for w, b in zip(trainer.weights, trainer.biases):
        fan_in, fan_out = w.shape
        limit = np.sqrt(6 / (fan_in + fan_out))
        assert w.dtype == np.float32 and np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.95 * limit  # spread over the whole range, not a narrower one
        assert abs(float(w.std()) - limit / np.sqrt(3)) < 0.1 * limit  # uniform's standard deviation
        assert not b.any()


# --- the gradient w.r.t. the input pixels, against TensorFlow's GradientTape ----------------------------------


@pytest.mark.parametrize("model_id", ["seed", "relu", "deep"])
def test_input_gradients_of_the_shipped_models_equal_gradient_tape(keras, testset, model_id):
    import tensorflow as tf

    from pyscript_app.core import network as nw

    network = nw.read_model_dir(f"site/models/{model_id}")
    # float64 in TensorFlow too: a confident digit's log-probability moves by ~1e-9, below float32's resolution
    model = keras.Sequential([keras.Input(shape=(network.input_size,), dtype="float64")]
                             + [keras.layers.Dense(l.units, activation=l.activation, dtype="float64") for l in network.layers])
    model.set_weights([p.astype(np.float64) for l in network.layers for p in (l.weights, l.bias)])
    # the 8 digits of the first 1,000 it is least sure of: their gradients are large (a certain digit's are ~1e-8)
    first = network.normalize(testset.images[:1000])
    x = first[np.argsort(network.forward(first)[-1].max(axis=1))[:8]]
    probabilities = network.forward(x)[-1]
    target = probabilities.argmax(axis=1)
    runner_up = np.argsort(probabilities, axis=1)[:, -2]
    xt = tf.constant(x.astype(np.float64))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        logp = tf.math.log(model(xt))
        chosen = tf.gather(logp, target, axis=1, batch_dims=1)
        margin = chosen - tf.gather(logp, runner_up, axis=1, batch_dims=1)
    hidden = network.layers[0].name
    unit = int(network.forward(x)[0].sum(axis=0).argmax())  # the most active first-layer unit
    first_layer = keras.Model(model.inputs, model.layers[0].output)
    with tf.GradientTape() as unit_tape:
        unit_tape.watch(xt)
        activation = first_layer(xt)[:, unit]
    cases = [
        (network.input_gradient(x, target), tape.gradient(chosen, xt)),
        (network.input_gradient(x, target, minus=runner_up), tape.gradient(margin, xt)),
        (network.input_gradient(x, layer=hidden, unit=unit), unit_tape.gradient(activation, xt)),
    ]
    for ours, theirs in cases:
        theirs = np.asarray(theirs, dtype=np.float64)
        assert ours.shape == theirs.shape == x.shape
        # relative to the largest gradient of the batch (a hidden unit that is off has none for a digit)
        relative = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert relative < 1e-5, f"{model_id}: relative difference {relative:.2e}"
        assert np.abs(theirs).max() > 1e-3  # gradients worth comparing
