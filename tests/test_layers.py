"""The layer kinds (pyscript_app/core/layers.py) and Network.backward: gradients against central finite
differences in float64, on random shapes; the one writer's export from Train mode and from export_weights.py."""

from __future__ import annotations

import numpy as np
import pytest

import export_weights
from pyscript_app.core import activations as act
from pyscript_app.core import export_write
from pyscript_app.core import layers
from pyscript_app.core import network as nw
from pyscript_app.core import train

import reference as ref

H = 1e-6  # finite-difference step (float64)


def numeric_gradient(f, array, indices):
    """Central differences of the scalar f() w.r.t. array[idx] for each idx (array changed in place, restored)."""
    out = []
    for idx in indices:
        keep = array[idx]
        array[idx] = keep + H
        up = f()
        array[idx] = keep - H
        down = f()
        array[idx] = keep
        out.append((up - down) / (2 * H))
    return np.array(out)


def sample(rng, shape, count=10):
    flat = rng.choice(int(np.prod(shape)), size=min(count, int(np.prod(shape))), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def check_layer_gradients(layer, x, rng, exact):
    """backward's gradients (input and every parameter) against central differences of sum(forward * R)."""
    out = layer.forward(x, exact=exact)
    r = rng.standard_normal(out.shape)
    g_in = layer.backward(r, exact=exact)
    grads = layer.grads
    # the float64 copies the forward pass reads are the ones nudged (float32 parameters hold no 1e-6 step)
    params64 = [p.astype(np.float64) for p in layer.params()]
    loss = lambda: float((layer.forward(x, exact=exact, keep=False) * r).sum())
    assert np.asarray(g_in).shape == x.shape
    idx = sample(rng, x.shape)
    np.testing.assert_allclose([g_in[i] for i in idx], numeric_gradient(loss, x, idx), rtol=1e-5, atol=1e-7)
    for part, array, grad in zip(layer.parts, params64, grads):
        assert grad.shape == array.shape, part
        idx = sample(rng, array.shape)

        def nudged():
            layer.set_params(params64)  # float64 parameters: the layer computes with them as they are
            return loss()

        np.testing.assert_allclose([grad[i] for i in idx], numeric_gradient(nudged, array, idx),
                                   rtol=1e-5, atol=1e-7, err_msg=part)
    assert max(np.abs(g).max() for g in grads) > 1e-3  # not all zero


def random_dense(rng, inputs, units, activation):
    return layers.Dense("d", "D", activation, rng.normal(0, 0.5, (inputs, units)).astype(np.float32),
                        rng.normal(0, 0.5, units).astype(np.float32))


@pytest.mark.parametrize("activation", list(act.REGISTRY))
@pytest.mark.parametrize("exact", [False, True], ids=["numpy", "exact"])
def test_dense_backward_equals_finite_differences(activation, exact):
    rng = np.random.default_rng(len(activation) + 10 * exact)
    for _ in range(3):
        inputs, units, n = (int(v) for v in rng.integers(1, 13, 3))
        layer = random_dense(rng, inputs, units, activation)
        x = rng.normal(0, 1.0, (n, inputs))
        check_layer_gradients(layer, x, rng, exact)


def test_sparse_input_gives_the_same_outputs_and_gradients():
    rng = np.random.default_rng(3)
    layer = random_dense(rng, 20, 6, "tanh")
    x = rng.normal(size=(5, 20))
    x[:, [0, 3, 4, 17]] = 0.0
    r = rng.standard_normal((5, 6))
    full = layer.forward(x, exact=True)
    g_full = layer.backward(r, exact=True)
    grads_full = layer.grads
    sparse = layer.forward(x, exact=True, sparse_input=True)
    assert list(layer.input_columns) == [c for c in range(20) if c not in (0, 3, 4, 17)]
    g_sparse = layer.backward(r, exact=True)
    assert np.array_equal(full, sparse) and np.array_equal(g_full, g_sparse)
    for a, b in zip(grads_full, layer.grads):
        assert np.array_equal(a, b)


# --- the network: gradient w.r.t. the input ---------------------------------------------------------------


def random_network(rng, sizes=(30, 9, 7, 5), activations=("tanh", "relu")):
    arrays = [(rng.normal(0, 0.4, (i, o)), rng.normal(0, 0.3, o), a)
              for i, o, a in zip(sizes[:-1], sizes[1:], [*activations, "softmax"])]
    chain = layers.dense_chain(arrays, [str(c) for c in range(sizes[-1])])
    manifest, files = export_write.build(
        chain, model_id="grad", title="t", description="d", classes=[str(c) for c in range(sizes[-1])],
        input_spec={"size": sizes[0], "image_shape": [5, 6], "dtype": "float32",
                    "normalization": {"scale": 1 / 255, "offset": 0.0}}, training={})
    return nw.build_network(manifest, files)


def plain_layers(network):
    return [(l.weights.astype(np.float64), l.bias.astype(np.float64), l.activation) for l in network.layers]


@pytest.mark.parametrize("knocked", [None, {"hidden_1": [2, 5]}], ids=["all units", "knock-outs"])
def test_input_gradient_equals_finite_differences(knocked):
    rng = np.random.default_rng(11)
    network = random_network(rng)
    x = rng.uniform(0, 1, 30)
    dead = {0: knocked["hidden_1"]} if knocked else None
    plain = plain_layers(network)
    probe = x.copy()
    for target, minus in ((3, None), (1, 4)):
        got = network.input_gradient(x.astype(np.float32), target, minus=minus, knocked_out=knocked)
        assert got.shape == (30,)

        def f():
            lp = np.log(ref.forward(plain, probe[None], dead)[-1][0])
            return lp[target] - (lp[minus] if minus is not None else 0.0)

        numeric = numeric_gradient(f, probe, [(i,) for i in range(30)])
        # the network reads float32 input and rounds each layer's output to float32: agreement to ~1e-6
        np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-5)
    # a hidden unit's activation (the most active relu unit: one that has a gradient)
    unit = int(network.forward(x.astype(np.float32), knocked)[1].argmax())
    got = network.input_gradient(x.astype(np.float32), layer="hidden_2", unit=unit, knocked_out=knocked)
    numeric = numeric_gradient(lambda: ref.forward(plain, probe[None], dead)[1][0, unit], probe, [(i,) for i in range(30)])
    np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-5)
    assert np.abs(got).max() > 1e-3
    if knocked:  # a knocked-out unit has no gradient at all
        assert not network.input_gradient(x.astype(np.float32), layer="hidden_1", unit=2, knocked_out=knocked).any()


def test_input_gradient_of_a_batch_is_each_digit_s_own():
    rng = np.random.default_rng(5)
    network = random_network(rng)
    xs = rng.uniform(0, 1, (4, 30)).astype(np.float32)
    batch = network.input_gradient(xs, 2)
    for i in range(4):
        np.testing.assert_allclose(batch[i], network.input_gradient(xs[i], 2), rtol=1e-12, atol=1e-15)


def test_network_backward_gives_every_parameter_s_gradient():
    rng = np.random.default_rng(8)
    network = random_network(rng)
    x = rng.uniform(0, 1, (3, 30)).astype(np.float32)
    acts = network.forward(x, keep=True)
    r = rng.standard_normal(acts[-1].shape)
    grads, g_in = network.backward(r)
    assert [tuple(g.shape for g in pair) for pair in grads] == [(l.weights.shape, l.bias.shape) for l in network.layers]
    assert g_in.shape == x.shape
    plain = plain_layers(network)
    for pos, part in ((1, 0), (2, 1), (0, 0)):
        array = plain[pos][part]
        idx = sample(rng, array.shape, 6)
        numeric = numeric_gradient(lambda: float((ref.forward(plain, x.astype(np.float64))[-1] * r).sum()), array, idx)
        np.testing.assert_allclose([grads[pos][part][i] for i in idx], numeric, rtol=1e-4, atol=1e-6)


# --- one writer ------------------------------------------------------------------------------------


def test_train_mode_and_export_weights_write_the_same_export(seed_export):
    testset = seed_export[1]
    images, labels = testset.images[:2000], testset.labels[:2000]
    trainer = train.Trainer(train.Settings(hidden=(16, 8), activation=("relu", "tanh")), images, labels,
                            input_spec=dict(seed_export[0].manifest["input"]))
    trainer.run(20)
    test = (testset.images[5000:6000], testset.labels[5000:6000])
    meta = {"id": "same", "title": "Same weights", "description": "written twice"}
    arrays = [(w, b, a) for w, b, a in zip(trainer.weights, trainer.biases, trainer.layer_activations)]
    ours, our_files, test_bytes = export_weights.build_manifest(meta, arrays, test, {"source": "test"},
                                                               trainer.input_spec["normalization"])
    theirs, their_files = trainer.to_export(model_id=meta["id"], title=meta["title"], dataset=ours["dataset"],
                                            test_accuracy=0.5)
    theirs["description"] = meta["description"]
    # the array files: byte for byte
    del our_files["manifest.json"]
    assert our_files == their_files
    # the manifests: equal but for the training facts and the test set's activation scales (the build measures them)
    for layer in ours["layers"][:-1]:
        assert layer.pop("activation_stats")["over"] == "MNIST test set"
    assert set(ours.pop("training")) != set(theirs.pop("training"))
    assert export_write.manifest_bytes(ours) == export_write.manifest_bytes(theirs)
    # and the zip is the writer's
    zipped = export_write.zip_bytes(theirs, their_files)
    files = nw.fmt.read_zip(zipped, "t.zip")
    assert files == export_write.export_files(theirs, their_files)
