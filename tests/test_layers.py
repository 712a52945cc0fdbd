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
from pyscript_app.core import ordered
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


@pytest.fixture(params=["blas", "no-blas", "no-blas, einsum in order"])
def products(request, monkeypatch):
    """The passes that are not exact as CPython runs them (numpy's product, BLAS) or as the browser's numpy
    without BLAS does (einsum along long rows, a conv layer's product transposed); and the exact passes as
    the browser runs them where einsum adds in order (a conv layer's transposed too: here its sums agree
    to rounding, tests/test_train_pyodide.py checks the bits there): all are checked."""
    monkeypatch.setattr(layers, "NO_BLAS", request.param != "blas")
    monkeypatch.setattr(ordered, "einsum_in_order", lambda: request.param == "no-blas, einsum in order")
    return request.param


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
def test_dense_backward_equals_finite_differences(activation, exact, products):
    rng = np.random.default_rng(len(activation) + 10 * exact)
    for _ in range(3):
        inputs, units, n = (int(v) for v in rng.integers(1, 13, 3))
        layer = random_dense(rng, inputs, units, activation)
        x = rng.normal(0, 1.0, (n, inputs))
        check_layer_gradients(layer, x, rng, exact)


def test_wide_layers_agree_with_the_exact_passes_to_rounding(products):
    """Layers wide enough for the browser's einsum products (and a conv layer's transposed one) give what the
    exact passes (every sum in one fixed order) give, to float64 rounding: forward, input and parameter gradients."""
    rng = np.random.default_rng(11)
    chain = [random_conv(rng, 12, 11, 3, 40, 3, "same", "relu"), layers.MaxPool2D("p", "P", (12, 11, 40)),
             layers.Flatten("f", "F", (6, 5, 40)), random_dense(rng, 1200, 48, "tanh"), random_dense(rng, 48, 36, "linear")]
    x = rng.normal(size=(5, 12, 11, 3))
    seed = rng.normal(size=(5, 36))
    results = []
    for exact in (True, False):
        out = layers.forward_all(chain, x, exact=exact)[-1]
        g_in = layers.backward_all(chain, seed, exact=exact)
        results.append([out, g_in] + [g for layer in chain for g in layer.grads])
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


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
def test_input_gradient_equals_finite_differences(knocked, products):
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


# --- conv2d, maxpool2d, flatten ------------------------------------------------------------------------------


def random_conv(rng, h, w, channels, filters, k, padding, activation):
    return layers.Conv2D("c", "C", activation, rng.normal(0, 0.4, (k, k, channels, filters)).astype(np.float32),
                         rng.normal(0, 0.3, filters).astype(np.float32), (h, w, channels), padding)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "linear"])
def test_conv2d_backward_equals_finite_differences(padding, k, activation, products):
    rng = np.random.default_rng(k + 7 * len(activation) + (padding == "same"))
    for exact in (False, True):
        h, w = (int(v) for v in rng.integers(k, k + 5, 2))
        layer = random_conv(rng, h, w, int(rng.integers(1, 4)), int(rng.integers(1, 5)), k, padding, activation)
        assert layer.output_shape == ((h, w) if padding == "same" else (h - k + 1, w - k + 1)) + (layer.units,)
        check_layer_gradients(layer, rng.normal(size=(2, h, w, layer.input_shape[2])), rng, exact)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_conv_layer_s_exact_passes_skip_the_all_zero_patches_and_give_the_same_results(padding, products):
    """Training's first layer leaves out the patches that are all zeros (a digit's background): its output,
    input gradient and parameter gradients are those of the whole product."""
    rng = np.random.default_rng(4)
    layer = random_conv(rng, 16, 16, 2, 5, 3, padding, "relu")
    x = np.zeros((3, 16, 16, 2))
    x[:, 5:10, 4:9] = rng.random((3, 5, 5, 2))  # a small lit patch on a dark background
    r = rng.standard_normal((3, *layer.output_shape)) * (rng.random((3, *layer.output_shape)) < 0.2)
    results = []
    for sparse in (False, True):
        out = layer.forward(x, exact=True, sparse_input=sparse)
        g_in = layer.backward(r, exact=True)
        results.append([out, g_in, *layer.grads])
    for whole, skipping in zip(*results):
        np.testing.assert_allclose(skipping, whole, rtol=1e-13, atol=0)


def test_conv2d_and_maxpool2d_forward_equal_plain_loops(products):
    rng = np.random.default_rng(2)
    for padding in ("valid", "same"):
        layer = random_conv(rng, 9, 8, 2, 3, 3, padding, "linear")
        x = rng.normal(size=(3, 9, 8, 2))
        for exact in (False, True):
            np.testing.assert_allclose(layer.forward(x, exact=exact), ref.conv2d(x, layer.weights.astype(np.float64),
                                       layer.bias.astype(np.float64), padding), rtol=1e-12, atol=1e-12)
    pool = layers.MaxPool2D("p", "P", (9, 8, 2))
    assert pool.output_shape == (4, 4, 2)
    np.testing.assert_array_equal(pool.forward(x), ref.maxpool2d(x))


def test_maxpool2d_backward_routes_to_the_maximum(products):
    rng = np.random.default_rng(4)
    for h, w in ((6, 4), (7, 5)):  # an odd last row and column take no part
        pool = layers.MaxPool2D("p", "P", (h, w, 3))
        x = rng.normal(size=(2, h, w, 3))  # no ties
        out = pool.forward(x)
        r = rng.standard_normal(out.shape)
        g = pool.backward(r)
        numeric = numeric_gradient(lambda: float((pool.forward(x, keep=False) * r).sum()), x,
                                   [np.unravel_index(i, x.shape) for i in range(x.size)])
        np.testing.assert_allclose(g.reshape(-1), numeric, atol=1e-8)
        assert np.count_nonzero(g) == out.size  # one input per block gets its gradient


def test_flatten_is_keras_order_and_back():
    flat = layers.Flatten("f", "F", (2, 3, 4))
    x = np.arange(48, dtype=np.float64).reshape(2, 2, 3, 4)
    assert flat.forward(x).tolist() == x.reshape(2, 24).tolist() and flat.units == 24
    assert np.array_equal(flat.backward(flat.forward(x)), x)


def cnn_export(rng, padding="same", hidden=8):
    """A small CNN's export written by the one writer: conv 3x3 -> pool -> conv 5x5 -> flatten -> dense -> softmax."""
    conv1 = random_conv(rng, 12, 10, 1, 4, 3, padding, "relu")
    pool = layers.MaxPool2D("pool_1", "Pooling 1", conv1.output_shape)
    conv2 = random_conv(rng, *pool.output_shape, 3, 3, "valid", "tanh")
    conv1.name, conv2.name = "conv_1", "conv_2"
    flat = layers.Flatten("flatten", "Flatten", conv2.output_shape)
    dense = layers.dense_chain([(rng.normal(0, 0.3, (flat.units, hidden)), rng.normal(0, 0.1, hidden), "sigmoid"),
                                (rng.normal(0, 0.5, (hidden, 10)), rng.normal(0, 0.1, 10), "softmax")],
                               [str(c) for c in range(10)])
    chain = [conv1, pool, conv2, flat, *dense]
    return export_write.build(chain, model_id="cnn", title="CNN", description="d", classes=[str(c) for c in range(10)],
                              input_spec={"size": 120, "image_shape": [12, 10], "dtype": "float32",
                                          "normalization": {"scale": 1 / 255, "offset": 0.0}}, training={})


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_cnn_export_opens_and_its_forward_equals_plain_loops(padding):
    rng = np.random.default_rng(9)
    manifest, files = cnn_export(rng, padding)
    network = nw.build_network(manifest, files)
    assert [l["kind"] for l in manifest["layers"]] == ["conv2d", "maxpool2d", "conv2d", "flatten", "dense", "dense"]
    assert manifest["layers"][0]["output_shape"] == ([12, 10, 4] if padding == "same" else [10, 8, 4])
    pixels = rng.integers(0, 256, (5, 12, 10), dtype=np.uint8)
    x = network.normalize(pixels)
    got = network.forward(x)
    # independent: plain loops on the .npy arrays as the manifest names them
    arrays = {name: np.load(__import__("io").BytesIO(data)).astype(np.float64) for name, data in files.items()}
    a = x.astype(np.float64).reshape(5, 12, 10, 1)
    a = ref.FUNCTIONS["relu"](ref.conv2d(a, arrays["conv_1_weights.npy"], arrays["conv_1_bias.npy"], padding))
    expected = [a]
    expected.append(ref.maxpool2d(a))
    expected.append(ref.FUNCTIONS["tanh"](ref.conv2d(expected[-1], arrays["conv_2_weights.npy"], arrays["conv_2_bias.npy"], "valid")))
    expected.append(expected[-1].reshape(5, -1))
    expected += ref.forward([(arrays["hidden_1_weights.npy"], arrays["hidden_1_bias.npy"], "sigmoid"),
                             (arrays["output_weights.npy"], arrays["output_bias.npy"], "softmax")], expected[-1])
    for g, e, layer in zip(got, expected, network.layers):
        assert g.shape == (5, *layer.output_shape) and g.dtype == np.float32
        np.testing.assert_allclose(g, e, atol=1e-5)
    single = network.forward(x[0])
    assert single[0].shape == network.layers[0].output_shape  # one digit: (height, width, channels)
    # knocking out a channel zeroes its whole map, and its gradient
    dead = network.forward(x, knocked_out={"conv_1": [2]})
    assert not dead[0][..., 2].any() and dead[0][..., 1].any()
    assert not network.input_gradient(x[0], layer="conv_2", unit=1, knocked_out={"conv_2": [1]}).any()
    assert network.input_gradient(x[0], layer="conv_2", unit=1).any()


def test_a_cnn_s_input_gradient_equals_finite_differences(products):
    rng = np.random.default_rng(12)
    manifest, files = cnn_export(rng, "same")
    network = nw.build_network(manifest, files)
    x = rng.uniform(0, 1, 120)
    plain = [(l.weights.astype(np.float64), l.bias.astype(np.float64)) for l in network.layers if l.parts]

    def log_p(v, k=3):
        a = ref.FUNCTIONS["relu"](ref.conv2d(v.reshape(1, 12, 10, 1), *plain[0], "same"))
        a = ref.FUNCTIONS["tanh"](ref.conv2d(ref.maxpool2d(a), *plain[1], "valid")).reshape(1, -1)
        p = ref.forward([(*plain[2], "sigmoid"), (*plain[3], "softmax")], a)[-1][0]
        return np.log(p[k])

    probe = x.copy()
    numeric = numeric_gradient(lambda: log_p(probe), probe, [(i,) for i in range(120)])
    got = network.input_gradient(x.astype(np.float32), 3)
    np.testing.assert_allclose(got, numeric, rtol=1e-3, atol=1e-5)
    assert np.abs(got).max() > 1e-3


def refusal(mutate):
    manifest, files = cnn_export(np.random.default_rng(1))
    mutate(manifest)
    with pytest.raises(nw.ExportError) as err:
        nw.parse_manifest(__import__("json").dumps(manifest), "cnn/manifest.json")
    return str(err.value)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m["layers"][2]["weights"].update(shape=[3, 3, 2, 3]),
     "cnn/manifest.json: layers[2].weights.shape must be [3, 3, 4, 3]"),
    (lambda m: m["layers"][0].update(output_shape=[10, 8, 4]), "layers[0].output_shape must be [12, 10, 4]"),
    (lambda m: m["layers"][1].update(output_shape=[6, 6, 4]), "layers[1].output_shape must be [6, 5, 4]"),
    (lambda m: m["layers"][0].update(padding="full"), 'layers[0].padding must be "valid" or "same", got "full"'),
    (lambda m: m["layers"][0].update(stride=2), "layers[0].stride must be 1 (the only stride supported), got 2"),
    (lambda m: m["layers"][0].update(filters=65), "layers[0].filters must be from 1 to 64, got 65"),
    (lambda m: m["layers"][0].update(kernel=[4, 4]), "layers[0].kernel must be [3, 3] or [5, 5]"),
    (lambda m: m["layers"][2].update(input_shape=[6, 5, 3]), "layers[2].input_shape is [6, 5, 3] but layers[1].output_shape gives 6x5x4"),
    (lambda m: m["layers"][4].update(kind="conv2d"), "layers[4].input_shape is missing"),
    (lambda m: m["layers"][3].update(output_shape=[40]), "layers[3].output_shape must be [36] (4 x 3 x 3 values)"),
    (lambda m: m["layers"].__setitem__(slice(0, 0), [dict(m["layers"][0], name=f"x{i}") for i in range(3)]),
     "layers holds 5 conv2d layers; 4 of them at most"),
])
def test_the_loader_refuses_a_cnn_that_does_not_follow(mutate, message):
    assert message in refusal(mutate)


def test_a_zip_saved_by_train_mode_before_the_layer_registry_still_opens(seed_export):
    """Train mode used to write the output layer's entry with its "labels" and manifest.json without a final
    newline; such a zip opens as it is, with the same weights."""
    testset = seed_export[1]
    trainer = train.Trainer(train.Settings(hidden=(8,)), testset.images[:500], testset.labels[:500])
    trainer.run(3)
    manifest, files = trainer.to_export()
    manifest["layers"][-1]["labels"] = [str(c) for c in range(10)]
    old = nw.fmt.write_zip({"manifest.json": __import__("json").dumps(manifest, indent=2).encode(), **files})
    got, arrays = nw.fmt.load_export(nw.fmt.read_zip(old, "old.zip"), "old.zip")
    network = nw.build_network(got, nw.fmt.read_zip(old, "old.zip"), "old.zip: manifest.json")
    for layer, w, b in zip(network.layers, trainer.weights, trainer.biases):
        assert np.array_equal(layer.weights, w) and np.array_equal(layer.bias, b)
