"""End to end: every model in the page, the model picker, #model=, and opening your own export.

The page is served from a copy of site/ whose models/index.json also lists
the test-made models (conftest.test_site). What the page shows is checked
against tests/reference.py, a float64 forward pass written independently of
pyscript_app, and against the exported .npy files read with np.load.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import fake_exports
import reference as ref
from conftest import DEFAULT_MODEL, MODELS, READY_TIMEOUT_MS, SITE, on_the_shipped_cnn, watch
from pyscript_app.core import export_format
from pyscript_app.core import state as st
from test_page import shown

def served_index(test_site):
    return json.loads((test_site / "models" / "index.json").read_text())


def wait_model(page, model_id):
    page.wait_for_function(
        "id => document.getElementById('view').dataset.model === id && document.getElementById('status').dataset.state === 'ready'",
        arg=model_id, timeout=READY_TIMEOUT_MS,
    )


def images_and_labels():
    with np.load(SITE / "data" / "mnist_test.npz") as npz:
        return npz["images"], npz["labels"]


IMAGES, LABELS = images_and_labels()


def check_view_against_reference(page, model_dir):
    """Every neuron shown equals the independent float64 pass within 1e-6 (relative above 1: float32 has 7 digits)."""
    manifest, layers = ref.load_chain(model_dir)
    view = shown(page)
    index = int(view["sample"])
    x = IMAGES[index].reshape(1, -1).astype(np.float64) * manifest["input"]["normalization"]["scale"]
    expected = ref.forward_chain(layers, x, peaks=True)  # a conv or pooling channel shows its map's peak
    for spec, acts in zip(manifest["layers"], expected):
        got = sorted((i, float(v)) for name, i, v in view["neurons"] if name == spec["name"])
        if spec["kind"] == "flatten":  # not drawn
            assert got == []
            continue
        assert [i for i, _ in got] == list(range(acts.shape[1])), spec["name"]
        values = np.array([v for _, v in got])
        np.testing.assert_allclose(values, acts[0], rtol=1e-6, atol=1e-6, err_msg=f"{model_dir.name} {spec['name']}")
    assert int(view["predicted"]) == int(np.argmax(expected[-1][0]))


def check_confusion_matrix(page, model_dir):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    page.click("#errors-toggle")
    try:
        expected = reference_confusion(model_dir)  # (while the page runs its own pass)
        page.wait_for_selector(f"#error-explorer[data-model='{model_dir.name}'] #confusion-matrix", timeout=READY_TIMEOUT_MS)
        cells = page.eval_on_selector_all("#confusion-matrix .cell", "cs => cs.map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count])")
    finally:
        page.click("#errors-toggle")  # closed again, also after a failure: the next model's check opens it
    n = len(manifest["classes"])
    got = np.zeros((n, n), dtype=np.int64)
    for t, p, c in cells:
        got[t, p] = c
    np.testing.assert_array_equal(got, expected)


@functools.lru_cache(maxsize=None)
def reference_confusion(model_dir):
    """The confusion matrix of tests/reference.py's pass over the 10,000 test digits: computed once for each model
    (several tests check a model's matrix; the reference's plain loops take seconds on a convolutional one)."""
    manifest, layers = ref.load_chain(model_dir)
    n = len(manifest["classes"])
    x = IMAGES.reshape(len(IMAGES), -1).astype(np.float64) * manifest["input"]["normalization"]["scale"]
    predicted = ref.forward_chain(layers, x, peaks=True)[-1].argmax(axis=1)
    expected = np.zeros((n, n), dtype=np.int64)
    np.add.at(expected, (LABELS.astype(np.intp), predicted), 1)
    expected.flags.writeable = False
    return expected


def check_first_layer_card(page, model_dir, unit):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    first = manifest["layers"][0]
    unit %= first["weights"]["shape"][-1]
    page.click(f'#view .neuron[data-layer="{first["name"]}"][data-index="{unit}"]')
    page.wait_for_selector(f'#neuron-card[data-layer="{first["name"]}"][data-index="{unit}"]')
    weights = np.array(json.loads(page.get_attribute("#card-weights", "data-weights")), dtype=np.float64)
    column = np.load(model_dir / first["weights"]["file"])[..., unit].astype(np.float64)  # a dense unit's or a conv channel's
    np.testing.assert_array_equal(weights.ravel(), column.ravel())
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")


@pytest.fixture(scope="module")
def picker_page(browser, site_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    w = watch(context, site_server.url)
    dialogs = []
    w.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    w.dialogs = dialogs
    assert w.goto("#sample=77") == "ready", w.page.inner_text("#status")
    yield w
    context.close()


def model_dirs(test_site):
    return {m: test_site / "models" / m for m in served_index(test_site)["models"]}


def test_the_picker_lists_every_model_and_the_default_is_shown(picker_page, test_site):
    page = picker_page.page
    index = served_index(test_site)
    assert page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)") == index["models"]
    assert page.get_attribute("#view", "data-model") == index["default"]
    assert page.eval_on_selector("#model-picker", "s => s.value") == index["default"]
    assert page.is_enabled("#model-picker")


def test_switching_with_the_picker_shows_each_model_exactly(picker_page, test_site):
    """For each model, picked in the picker: activations, the confusion matrix and a first-layer card's weights."""
    page = picker_page.page
    dirs = model_dirs(test_site)
    for model_id in [*dirs, DEFAULT_MODEL]:
        page.select_option("#model-picker", model_id)
        wait_model(page, model_id)
        assert page.get_attribute("#input-image", "data-sample-index") == "77"  # the sample carried across
        check_view_against_reference(page, dirs[model_id])
        manifest = json.loads((dirs[model_id] / "manifest.json").read_text())
        assert page.eval_on_selector("#model-card", "c => c.dataset.model") == model_id
        assert manifest["title"] in page.inner_text("#model-card")
        expected_hash = st.format(st.State(sample=77, model=None if model_id == DEFAULT_MODEL else model_id))
        assert page.evaluate("location.hash") == expected_hash
    # the models are cached: a second switch fetches nothing and is recorded for the benchmark
    page.select_option("#model-picker", "tiny-deep")
    wait_model(page, "tiny-deep")
    assert page.get_attribute("#view", "data-switch-cached") == "true"
    assert float(page.get_attribute("#view", "data-switch-ms")) > 0
    assert picker_page.errors == [] and picker_page.outside == [] and picker_page.dialogs == []


@pytest.mark.parametrize("model_id", [m for m in MODELS if m != DEFAULT_MODEL] + [DEFAULT_MODEL])
def test_parity_after_switching_with_the_picker(picker_page, test_site, model_id):
    page = picker_page.page
    dirs = model_dirs(test_site)
    page.select_option("#model-picker", model_id)
    wait_model(page, model_id)
    check_view_against_reference(page, dirs[model_id])
    check_confusion_matrix(page, dirs[model_id])
    check_first_layer_card(page, dirs[model_id], 5)
    assert picker_page.errors == []


@pytest.mark.parametrize("model_id", [m for m in MODELS if m != DEFAULT_MODEL])
@on_the_shipped_cnn()  # (picked in the picker above; a fresh load of a CNN: tiny-cnn)
def test_a_model_in_the_address_is_the_one_loaded(browser, site_server, test_site, model_id):
    """#model=<id> on a fresh load: only that model's files are fetched, and it is shown exactly."""
    context = browser.new_context()
    try:
        w = watch(context, site_server.url)
        fetched = []
        w.page.on("request", lambda r: fetched.append(r.url.split("/models/", 1)[-1]) if "/models/" in r.url else None)
        assert w.goto(f"#model={model_id}&sample=12") == "ready"
        wait_model(w.page, model_id)
        check_view_against_reference(w.page, model_dirs(test_site)[model_id])
        check_confusion_matrix(w.page, model_dirs(test_site)[model_id])
        check_first_layer_card(w.page, model_dirs(test_site)[model_id], 3)
        # that model's files, and no other's (but the default's, which index.html preloads for the common case)
        weights = {u.split("/")[0] for u in fetched if u.endswith(".npy")}
        assert model_id in weights and weights <= {model_id, DEFAULT_MODEL}, weights
        assert w.errors == [] and w.outside == []
    finally:
        context.close()


def test_state_carries_across_where_it_makes_sense(picker_page):
    """A neuron of a layer the next model lacks, a unit beyond its width: dropped, with a note; the rest stays."""
    page = picker_page.page
    page.evaluate("location.hash = '#sample=321&neuron=hidden_2:20&ko=hidden_1:3,30'")
    wait_model(page, DEFAULT_MODEL)
    page.wait_for_selector('#neuron-card[data-layer="hidden_2"][data-index="20"]')
    page.select_option("#model-picker", "tiny-one")  # 40 linear units, no hidden_2
    wait_model(page, "tiny-one")
    assert page.evaluate("location.hash") == "#model=tiny-one&sample=321&ko=hidden_1:3,30"
    assert page.query_selector("#neuron-card") is None
    assert page.is_visible("#url-note") and "hidden_2" in page.inner_text("#url-note")
    page.select_option("#model-picker", "tiny-deep")  # 16 relu units: unit 30 is not there
    wait_model(page, "tiny-deep")
    assert page.evaluate("location.hash") == "#model=tiny-deep&sample=321&ko=hidden_1:3"
    assert page.eval_on_selector_all("[data-knocked-out]", "ns => ns.map(n => n.dataset.layer + ':' + n.dataset.index)") == ["hidden_1:3"]
    assert "30" in page.inner_text("#url-note")
    page.click("#url-note [data-action='dismiss-note']")
    assert not page.is_visible("#url-note")
    assert picker_page.errors == []


def test_knocking_out_an_output_neuron_in_a_link_is_ignored_with_a_note(browser, site_server, network, testset, model_id):
    """#ko=output:3 used to kill the page: now the output is untouched and the address says so."""
    context = browser.new_context()
    try:
        w = watch(context, site_server.url, model=model_id)
        assert w.goto("#sample=5&ko=output:3") == "ready"
        wait_model(w.page, model_id)
        assert w.page.evaluate("location.hash") == w.hash("sample=5")
        assert "output" in w.page.inner_text("#url-note")
        assert w.page.query_selector("[data-knocked-out]") is None
        # and the page goes on working: set on the running page too, then a click
        w.page.evaluate(f"location.hash = {json.dumps(w.hash('sample=6&ko=output:3'))}")
        w.page.wait_for_function(f"location.hash === {json.dumps(w.hash('sample=6'))}")
        w.page.click("#random-sample")
        w.page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== '6'")
        view = shown(w.page)
        expected = network.forward(network.normalize(testset.images[int(view["sample"])]))
        np.testing.assert_allclose([float(v) for n, i, v in view["neurons"] if n == network.layers[-1].name], expected[-1], atol=1e-6)
        assert w.errors == [] and w.outside == []
    finally:
        context.close()


# --- open your own --------------------------------------------------------------------


def exported(model_id="mine", hidden=((24, "relu"), (12, "tanh"), (10, "sigmoid"), (8, "linear")), seed=7, title="Four layers"):
    return fake_exports.export_files(model_id, list(hidden), seed=seed, title=title)


def open_files(page, files: dict[str, bytes]):
    page.set_input_files("#open-model", [{"name": n, "mimeType": "application/octet-stream", "buffer": b} for n, b in files.items()])


def check_against_files(page, files):
    """The model shown is the one in ``files``: every activation against the independent pass of its arrays."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        manifest, layers = ref.load_chain(folder)
    view = shown(page)
    x = IMAGES[int(view["sample"])].reshape(1, -1).astype(np.float64) / 255
    for spec, acts in zip(manifest["layers"], ref.forward_chain(layers, x, peaks=True)):
        got = [float(v) for _, v in sorted((i, v) for n, i, v in view["neurons"] if n == spec["name"])]
        if spec["kind"] == "flatten":  # not drawn
            assert got == []
            continue
        np.testing.assert_allclose(got, acts[0], rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def own(browser, site_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    w = watch(context, site_server.url)
    assert w.goto("#sample=42") == "ready"
    yield w
    context.close()


def test_an_export_zip_opens_as_a_model_of_its_own(own):
    page = own.page
    files = exported()
    open_files(page, {"four-layers.zip": export_format.write_zip(files)})
    page.wait_for_function("document.getElementById('view').dataset.model.startsWith('own-')", timeout=READY_TIMEOUT_MS)
    model_id = page.get_attribute("#view", "data-model")
    assert page.eval_on_selector("#model-picker", "s => s.selectedOptions[0].textContent") == "Your model: Four layers"
    assert "Your model: Four layers" in page.inner_text("#model-card")
    assert page.evaluate("location.hash") == f"#model={model_id}&sample=42"
    check_against_files(page, files)
    assert own.errors == [] and own.outside == []


def test_the_export_files_themselves_open_too(own):
    page = own.page
    files = exported(hidden=((512, "relu"),), seed=9, title="Wide")
    before = page.get_attribute("#view", "data-model")
    open_files(page, files)
    page.wait_for_function("m => document.getElementById('view').dataset.model !== m", arg=before, timeout=READY_TIMEOUT_MS)
    assert page.eval_on_selector("#model-picker", "s => s.selectedOptions[0].textContent") == "Your model: Wide"
    check_against_files(page, files)
    # the first-layer card of a 512-unit layer, and the bars of a 512-input output neuron: no negative widths
    page.click('#view .neuron[data-layer="output"][data-index="2"]')
    page.wait_for_selector('#neuron-card[data-layer="output"]')
    widths = page.eval_on_selector_all("#card-weights rect", "rs => rs.map(r => +r.getAttribute('width'))")
    assert len(widths) == 512 and min(widths) > 0
    page.keyboard.press("Escape")


def cnn_exported():
    return fake_exports.cnn_export_files("mine-cnn", fake_exports.CNN_SHAPES["tiny-cnn"], seed=5)


def _manifest_of(files):
    return json.loads(files["manifest.json"])


def _with_manifest(files, change):
    m = _manifest_of(files)
    change(m)
    return {**files, "manifest.json": json.dumps(m).encode()}


def _five_hidden_layers():
    files = exported(hidden=((8, "relu"),) * 4)
    m = _manifest_of(files)
    extra = json.loads(json.dumps(m["layers"][3]))
    extra.update(name="hidden_5")
    m["layers"].insert(4, extra)
    return {"deep.zip": export_format.write_zip({**files, "manifest.json": json.dumps(m).encode()})}


# case -> (the files given, what the message must say: the file and the field)
BAD = {
    "not an export": (lambda: {"notes.zip": export_format.write_zip({"readme.txt": b"hello"})},
                      r"manifest\.json is missing from notes\.zip"),
    "not a zip": (lambda: {"broken.zip": b"PK\x03\x04 not really"}, r"broken\.zip is not a zip file"),
    "broken chain": (lambda: {"chain.zip": export_format.write_zip(_with_manifest(exported(), lambda m: m["layers"][2].update(inputs=11)))},
                     r"chain\.zip: manifest\.json: layers\[2\]\.inputs is 11 but layers\[1\]\.units is 12"),
    "missing file": (lambda: {"gap.zip": export_format.write_zip({k: v for k, v in exported().items() if k != "hidden_3_bias.npy"})},
                     r"hidden_3_bias\.npy is missing from gap\.zip .*layers\[2\]\.bias\.file"),
    "wrong sha256": (lambda: {"sha.zip": export_format.write_zip({**exported(), "output_bias.npy": fake_exports.npy(np.ones(10, np.float32))})},
                     r"sha\.zip: output_bias\.npy is corrupt: its sha256 does not match manifest\.json's layers\[4\]\.bias\.sha256"),
    "5 hidden layers": (_five_hidden_layers, r"deep\.zip: manifest\.json: layers must hold 1 to 4 hidden layers"),
    "2,000 units": (lambda: {"huge.zip": export_format.write_zip(_with_manifest(exported(hidden=((16, "relu"),)), lambda m: m["layers"][0].update(units=2000)))},
                    r"huge\.zip: manifest\.json: layers\[0\]\.units must be from 1 to 512, got 2000"),
    "files without a manifest": (lambda: {"hidden_1_weights.npy": b"\x93NUMPY"}, r"no manifest\.json among the files given"),
    "strided conv": (lambda: {"cnn.zip": export_format.write_zip(_with_manifest(cnn_exported(), lambda m: m["layers"][0].update(stride=2)))},
                     r"cnn\.zip: manifest\.json: layers\[0\]\.stride must be 1 \(the only stride supported\), got 2"),
    "pool size off": (lambda: {"pool.zip": export_format.write_zip(_with_manifest(cnn_exported(), lambda m: m["layers"][1].update(output_shape=[12, 12, 4])))},
                      r"pool\.zip: manifest\.json: layers\[1\]\.output_shape must be \[13, 13, 4\] \(2x2 blocks of a 26x26 input\), got \[12, 12, 4\]"),
}


def _bad_files(case):
    make, message = BAD[case]
    return make(), message


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_export_is_refused_by_name_and_the_model_shown_stays(own, case):
    import re

    page = own.page
    files, message = _bad_files(case)
    before_model = page.get_attribute("#view", "data-model")
    before_hash = page.evaluate("location.hash")
    options = page.eval_on_selector_all("#model-picker option", "os => os.length")
    open_files(page, files)
    page.wait_for_selector("#open-model-error:not([hidden])", timeout=READY_TIMEOUT_MS)
    text = page.inner_text("#open-model-error")
    assert re.search(message, text), text
    assert page.get_attribute("#view", "data-model") == before_model
    assert page.evaluate("location.hash") == before_hash
    assert page.eval_on_selector_all("#model-picker option", "os => os.length") == options
    # still usable: a click shows a new digit
    sample = page.get_attribute("#input-image", "data-sample-index")
    page.click("#random-sample")
    page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex !== '{sample}'")
    # (and the address follows it, after the pause the page waits for: the next case starts from it)
    page.wait_for_function("location.hash.endsWith('sample=' + document.getElementById('input-image').dataset.sampleIndex)")
    assert own.errors == [] and own.outside == []


def test_a_cnn_export_zip_opens_as_a_model_of_its_own(own):
    page = own.page
    files = cnn_exported()
    before = page.get_attribute("#view", "data-model")
    open_files(page, {"convolutional.zip": export_format.write_zip(files)})
    page.wait_for_function("m => document.getElementById('view').dataset.model !== m", arg=before, timeout=READY_TIMEOUT_MS)
    assert page.eval_on_selector("#model-picker", "s => s.selectedOptions[0].textContent") == "Your model: Test network mine-cnn"
    assert page.get_attribute("#layer-conv_1", "data-kind") == "conv2d"
    check_against_files(page, files)
    assert own.errors == [] and own.outside == []


def test_a_good_export_after_a_bad_one_clears_the_message(own):
    page = own.page
    open_files(page, {"gap.zip": _bad_files("missing file")[0]["gap.zip"]})
    page.wait_for_selector("#open-model-error:not([hidden])", timeout=READY_TIMEOUT_MS)
    before = page.get_attribute("#view", "data-model")
    open_files(page, {"ok.zip": export_format.write_zip(exported(seed=11, title="Fine"))})
    page.wait_for_function("m => document.getElementById('view').dataset.model !== m", arg=before, timeout=READY_TIMEOUT_MS)
    assert not page.is_visible("#open-model-error")


# --- the explorer beside a card, thumbnails in draw mode ---------------------------------


def in_viewport(page, selector):
    return page.eval_on_selector(selector, """e => { const r = e.getBoundingClientRect();
        return r.top >= 0 && r.top < innerHeight && r.bottom > 0 && r.left >= 0 && r.right <= innerWidth; }""")


def test_the_error_explorer_shows_while_a_neuron_card_is_open(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        w = watch(context, site_server.url)
        assert w.goto("#sample=3&neuron=hidden_1:4") == "ready"
        w.page.wait_for_selector("#neuron-card")
        w.page.click("#errors-toggle")
        w.page.wait_for_selector("#confusion-matrix")
        w.page.wait_for_timeout(300)  # (a smooth scroll, if any, has ended)
        assert in_viewport(w.page, "#confusion-matrix .cell[data-true='0'][data-predicted='0']")
        assert w.page.is_visible("#neuron-card")
        assert w.errors == []
    finally:
        context.close()


def test_a_digit_thumbnail_in_draw_mode_shows_that_digit(browser, site_server, seed_export):
    network, testset = seed_export
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        w = watch(context, site_server.url)
        assert w.goto("#mode=draw") == "ready"
        w.page.click("#errors-toggle")
        w.page.wait_for_selector("#confusion-matrix")
        w.page.click("#confusion-matrix .cell[data-true='4'][data-predicted='9']")
        thumb = w.page.wait_for_selector("#cell-digits .cthumb")
        index = thumb.get_attribute("data-sample")
        thumb.click()
        w.page.wait_for_function(f"location.hash === '#sample={index}'")
        w.page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{index}'")
        assert not w.page.is_visible("#draw-pad")
        view = shown(w.page)
        expected = network.forward(network.normalize(testset.images[int(index)]))
        np.testing.assert_allclose([float(v) for n, i, v in view["neurons"] if n == "output"], expected[-1], atol=1e-6)
        assert int(testset.labels[int(index)]) == 4
        assert w.errors == []
    finally:
        context.close()
