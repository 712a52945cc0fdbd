"""End to end: Train mode in the page, against the same trainer run in CPython.

One page is shared by most tests (a cold load costs seconds). The weights the
page trained are read the way a user gets them, by saving the export zip
(#train-save, a download) and parsing it here; they must equal, bit for bit,
pyscript_app/core/train.py run in CPython on the same digits with the same settings.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest

from conftest import READY_TIMEOUT_MS, SITE, Server, offline_after_a_visit, watch
from test_gallery import decode_png
from test_models_page import check_view_against_reference, wait_model

from pyscript_app.core import export_write, train
from pyscript_app.views import train_view

TRAIN_FILE = json.loads((SITE / "data" / "manifest.json").read_text())["train"]["file"]
SMALL = {"mode": "train", "hidden": "16", "activation": "sigmoid", "optimizer": "adam", "lr": "0.003",
         "batch": "32", "seed": "7"}


def address(params):
    return "#" + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="module")
def digits():
    with np.load(SITE / "data" / TRAIN_FILE) as npz:
        return npz["images"], npz["labels"]


def cpython_trainer(digits, params, steps):
    settings, notes = train.Settings.from_params({k: v for k, v in params.items() if k != "mode"})
    assert notes == []
    seed_manifest = json.loads((SITE / "models" / "seed" / "manifest.json").read_text())
    t = train.Trainer(settings, *digits, classes=seed_manifest["classes"], input_spec=seed_manifest["input"])
    assert t.run(steps) == steps
    return t


@pytest.fixture(scope="module")
def served():
    server = Server(SITE)
    yield server
    server.close()


@pytest.fixture(scope="module")
def app(browser, served):
    context = browser.new_context(accept_downloads=True)
    w = watch(context, served.url)
    assert w.goto("") == "ready"
    yield w
    context.close()


def progress(page) -> dict:
    return page.evaluate("Object.assign({}, document.getElementById('train-progress').dataset)")


def wait_data(page):
    page.wait_for_function("['ready', 'error'].includes(document.getElementById('train-data')?.dataset.state)",
                           timeout=READY_TIMEOUT_MS)
    assert page.get_attribute("#train-data", "data-state") == "ready", page.inner_text("#train-data")


def wait_steps(page, steps):
    page.wait_for_function("n => document.getElementById('train-progress').dataset.steps === String(n)",
                           arg=steps, timeout=READY_TIMEOUT_MS)


def wait_idle(page):
    """Paused, and the evaluation of the weights paused at finished (the loop has stopped)."""
    page.wait_for_function(
        "() => { const d = document.getElementById('train-progress').dataset;"
        " return d.running === 'false' && d.testSteps === d.steps; }", timeout=READY_TIMEOUT_MS)


def saved(page, tmp_path=None):
    """The page's network as the export zip it downloads: (manifest, [(weights, bias)] of each layer with
    weights, zip bytes)."""
    with page.expect_download() as info:
        page.click("#train-save")
    data = open(info.value.path(), "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        layers = [(np.load(io.BytesIO(zf.read(l["weights"]["file"]))), np.load(io.BytesIO(zf.read(l["bias"]["file"]))))
                  for l in manifest["layers"] if "weights" in l]  # (pooling and flatten layers have none)
    return manifest, layers, data


def assert_same_weights(layers, trainer):
    assert len(layers) == len(trainer.weights)
    for i, ((w, b), tw, tb) in enumerate(zip(layers, trainer.weights, trainer.biases)):
        assert w.dtype == np.float32 and w.shape == tw.shape, i
        assert np.array_equal(w, tw), f"layer {i}: weights differ in {int((w != tw).sum())} places"
        assert np.array_equal(b, tb), f"layer {i}: biases differ"


def test_training_digits_are_fetched_only_when_train_opens(app, served):
    page = app.page
    assert not [p for p, _ in served.requests if p.endswith(TRAIN_FILE)]
    page.click("#train-toggle")
    assert page.is_visible("#train-panel")
    wait_data(page)
    assert [s for p, s in served.requests if p.endswith(TRAIN_FILE)] == [200]
    assert re.search(r"60,000 training digits loaded \([\d.]+ MB, sha256 checked\)", page.inner_text("#train-data"))
    # the defaults are the seed network's settings, and the address says them
    params = dict(kv.split("=") for kv in page.evaluate("location.hash")[1:].split("&"))
    assert train.Settings.from_params({k: v.replace("%2C", ",") for k, v in params.items() if k in train.KEYS}) == \
        (train.Settings(), [])
    for key in ("activation", "optimizer", "lr", "batch", "seed"):
        assert page.locator(f"#train-panel [name='{key}']").count() == 1, key
    assert page.locator("#train-panel select[name='hidden']").count() == train.MAX_HIDDEN


def test_steps_and_training_equal_cpython_bit_for_bit(app, digits, tmp_path):
    page = app.page
    page.evaluate("h => { location.hash = h; }", address(SMALL))
    page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
    page.wait_for_selector("#train-step:not([disabled])")
    for _ in range(3):
        page.click("#train-step")
    wait_steps(page, 3)
    assert page.evaluate("document.getElementById('model-picker').selectedOptions[0].textContent") == \
        "Trained here: 784-16-10"
    assert page.get_attribute("#view", "data-model") == "trained"
    page.click("#train-start")
    page.wait_for_function("() => Number(document.getElementById('train-progress').dataset.steps) > 200",
                           timeout=READY_TIMEOUT_MS)
    # a neuron's card opens while training, on the weights being trained; its test-set ranking waits for Pause
    page.click("#view .neuron[data-layer='hidden_1'][data-index='3']")
    page.wait_for_selector("#neuron-card[data-layer='hidden_1'][data-index='3'] #card-top-later")
    page.click("#train-pause")
    wait_idle(page)
    page.wait_for_selector("#neuron-card #card-top")
    steps = int(progress(page)["steps"])
    page.wait_for_timeout(300)
    assert int(progress(page)["steps"]) == steps  # paused means paused
    manifest, layers, data = saved(page)
    trainer = cpython_trainer(digits, SMALL, steps)
    assert_same_weights(layers, trainer)
    assert manifest["training"]["steps"] == steps
    # the progress line: loss of the last batch and the accuracy on all test digits, as CPython has them
    p = progress(page)
    assert float(p["loss"]) == trainer.losses[-1]
    assert int(p["seen"]) == trainer.seen and int(p["epoch"]) == trainer.epoch
    with np.load(SITE / "data" / "mnist_test.npz") as npz:
        accuracy = trainer.evaluate(npz["images"], npz["labels"])
    assert float(p["testAccuracy"]) == accuracy
    # the saved zip is the one writer's, byte for byte: the CPython trainer's export of the same weights
    test = json.loads((SITE / "data" / "manifest.json").read_text())["test"]
    assert data == export_write.zip_bytes(*trainer.to_export(
        model_id="trained", title=train_view.trained_title(trainer.sizes), test_accuracy=accuracy,
        dataset={k: test[k] for k in ("file", "sha256", "count")}))
    assert int(p["rate"]) > 0
    assert float(page.get_attribute("#model-card .model-acc", "data-value")) == float(p["testAccuracy"])
    # the robustness curve is of the weights paused at (a run on weights that training changed is given up)
    page.wait_for_selector("#robustness[data-model='trained'][data-accuracy]", timeout=READY_TIMEOUT_MS)
    clean = float(page.get_attribute("#robustness", "data-accuracy").split(",")[0])
    assert clean == pytest.approx(accuracy, abs=2e-4)  # (its pass is not the exact one: a tie may go the other way)
    (tmp_path / "trained.zip").write_bytes(data)

    # the gallery shows those first-layer weights (blue negative, white 0, red positive, one shared limit)
    w0 = layers[0][0]
    limit = float(page.get_attribute("#weight-gallery", "data-limit"))
    urls = page.eval_on_selector_all("#weight-gallery .gthumb img", "imgs => imgs.map(i => i.src)")
    assert len(urls) == w0.shape[1]
    assert limit == pytest.approx(np.percentile(np.abs(w0).astype(np.float64), 99), rel=1e-5)
    for i, url in enumerate(urls):
        img = decode_png(url).astype(int)
        w = w0[:, i].reshape(-1)
        green = img[..., 1].reshape(-1)
        for side in (w >= 0, w < 0):
            order = np.argsort(np.minimum(np.abs(w[side]), limit), kind="stable")
            assert np.all(np.diff(green[side][order]) <= 2), f"neuron {i}: the image is not its current weights"

    # one Step more is one batch more, exactly
    page.click("#train-step")
    wait_steps(page, steps + 1)
    wait_idle(page)
    trainer.step()
    assert_same_weights(saved(page)[1], trainer)
    # ... and the robustness curve is measured again for those weights
    with np.load(SITE / "data" / "mnist_test.npz") as npz:
        accuracy = trainer.evaluate(npz["images"], npz["labels"])
    page.wait_for_function("a => { const r = document.getElementById('robustness');"
                           " return r.dataset.model === 'trained' && !!r.dataset.accuracy"
                           " && Math.abs(Number(r.dataset.accuracy.split(',')[0]) - a) < 2e-4; }",
                           arg=accuracy, timeout=READY_TIMEOUT_MS)

    # Reset: new initial weights from the seed, progress back to 0
    page.click("#train-reset")
    wait_steps(page, 0)
    assert_same_weights(saved(page)[1], cpython_trainer(digits, SMALL, 0))
    assert progress(page)["testAccuracy"] == ""

    # the saved zip opens again as the user's own model, with the activations of an independent pass
    page.set_input_files("#open-model", str(tmp_path / "trained.zip"))
    wait_model(page, "own-1")
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(tmp_path / "trained.zip").extractall(folder)
    check_view_against_reference(page, folder)
    assert app.errors == [] and app.outside == []


def test_a_conv_layer_picked_in_the_form_trains_in_the_page_as_in_cpython(app, digits, tmp_path):
    """One conv layer chosen in the form: the address takes it, the network trains (the views follow), its
    saved zip holds CPython's weights bit for bit and opens as the user's own model."""
    page = app.page
    page.evaluate("h => { location.hash = h; }", address(SMALL))
    page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
    page.wait_for_selector("#train-step:not([disabled])")
    assert page.is_disabled("#train-panel select[name='conv-kernel'][data-layer='1']")
    page.select_option("#train-panel select[name='conv-filters'][data-layer='1']", "8")
    page.wait_for_function("() => location.hash.includes('conv=8x3p')")
    params = {**SMALL, "conv": "8x3p"}
    page.wait_for_selector("#train-step:not([disabled])")
    assert page.is_enabled("#train-panel select[name='conv-kernel'][data-layer='1']")
    page.click("#train-step")
    wait_steps(page, 1)
    assert page.evaluate("document.getElementById('model-picker').selectedOptions[0].textContent") == \
        "Trained here: 784-8x3p-16-10"
    page.wait_for_selector("#weight-gallery[data-layer='conv_1']")
    assert page.locator("#weight-gallery .gthumb img").count() == 8  # one kernel per filter
    version = page.get_attribute("#weight-gallery", "data-version")
    page.click("#train-start")
    page.wait_for_function("() => Number(document.getElementById('train-progress').dataset.refreshes) > 3"
                           " && Number(document.getElementById('train-progress').dataset.steps) > 20",
                           timeout=READY_TIMEOUT_MS)
    page.click("#train-pause")
    wait_idle(page)
    page.wait_for_function("v => document.getElementById('weight-gallery').dataset.version !== v", arg=version)
    steps = int(progress(page)["steps"])
    assert int(page.get_attribute("#loss-curve", "data-batches")) == steps
    manifest, layers, data = saved(page)
    assert [l["kind"] for l in manifest["layers"]] == ["conv2d", "maxpool2d", "flatten", "dense", "dense"]
    assert manifest["training"]["settings"]["conv"] == "8x3p"
    trainer = cpython_trainer(digits, params, steps)
    assert_same_weights(layers, trainer)
    assert float(progress(page)["loss"]) == trainer.losses[-1]
    (tmp_path / "cnn.zip").write_bytes(data)
    known = page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)")
    page.set_input_files("#open-model", str(tmp_path / "cnn.zip"))
    page.wait_for_function(
        "known => { const m = document.getElementById('view').dataset.model; return m.startsWith('own-')"
        " && !known.includes(m) && document.getElementById('status').dataset.state === 'ready'; }",
        arg=known, timeout=READY_TIMEOUT_MS)
    assert app.errors == [] and app.outside == []


def test_a_bad_settings_link_opens_the_nearest_settings_and_says_what_changed(app):
    page = app.page
    page.evaluate("() => { location.hash = '#mode=train&hidden=0,10000&optimizer=rmsprop&lr=-1&seed=abc&batch=33'; }")
    page.wait_for_selector("#train-notes:not([hidden])")
    notes = page.inner_text("#train-notes")
    for said in ("width 0", "10000", "'rmsprop'", "learning rate -1", "seed 'abc'", "batch size 33"):
        assert said in notes, (said, notes)
    values = page.eval_on_selector_all("#train-panel select[name='hidden']", "s => s.map(x => x.value)")
    assert values == ["8", "128", ""]
    field = lambda name: page.eval_on_selector(f"#train-panel [name='{name}']", "e => e.value")  # noqa: E731
    assert (field("optimizer"), field("lr"), field("seed"), field("batch")) == ("adam", "0.00001", "42", "32")
    assert "hidden=8%2C128" in page.evaluate("location.hash")
    assert page.get_attribute("#status", "data-state") == "ready"
    # one activation per layer is valid, and the form says so
    page.evaluate("() => { location.hash = '#mode=train&hidden=16,8&activation=relu,tanh'; }")
    page.wait_for_selector("#train-notes[hidden]", state="attached")
    assert field("activation") == "relu,tanh"
    assert "activation=relu%2Ctanh" in page.evaluate("location.hash")


def test_a_diverging_rate_stops_with_the_trainers_message_and_reset_works(app):
    page = app.page
    page.evaluate("h => { location.hash = h; }", address({**SMALL, "lr": "10"}))
    page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
    page.wait_for_selector("#train-start:not([disabled])")
    page.click("#train-start")
    page.wait_for_selector("#train-message:not([hidden])", timeout=READY_TIMEOUT_MS)
    message = page.inner_text("#train-message")
    assert message.startswith("Training stopped at step") and "try a smaller one, such as 1" in message, message
    assert progress(page)["stopped"] == "true" and progress(page)["running"] == "false"
    assert page.is_disabled("#train-start") and page.is_disabled("#train-save")
    assert page.evaluate("document.activeElement.id") == "train-reset"  # the focus went where there is a way on
    page.click("#train-reset")
    wait_steps(page, 0)
    assert page.is_hidden("#train-message") and page.is_enabled("#train-start")
    assert app.errors == []


def test_train_and_pause_from_the_keyboard_keep_the_focus(app):
    """Train disables itself as it starts training, Pause as it pauses: the focus moves to the other one, not
    to the page's body (where the next Tab would start again at the top of the page)."""
    page = app.page
    # (a seed of its own: the test after this one opens SMALL's address, and a new address resets the run)
    page.evaluate("h => { location.hash = h; }", address({**SMALL, "seed": "8"}))
    page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
    page.wait_for_selector("#train-start:not([disabled])")
    page.focus("#train-start")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('train-progress').dataset.running === 'true'")
    assert page.evaluate("document.activeElement.id") == "train-pause"
    page.keyboard.press("Enter")
    wait_idle(page)
    page.wait_for_selector("#train-start:not([disabled])")
    assert page.evaluate("document.activeElement.id") == "train-start"
    assert app.errors == []


def test_a_slow_refresh_makes_the_refreshes_rarer_and_the_views_keep_to_a_fifth_of_the_time(app):
    """A refresh made artificially dearer (the test hook window.nnvRefreshCostMs adds that much busy work to
    each, as a slower machine would): the interval between refreshes grows with it, and the share of the
    time spent on the views (#train-progress data-views-share, measured in the page, the work each refresh
    leaves for the frames after it included) stays at most 0.2."""
    page = app.page
    refreshes = lambda: int(progress(page)["refreshes"])  # noqa: E731
    page.evaluate("h => { location.hash = h; }", address(SMALL))
    page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
    page.wait_for_selector("#train-start:not([disabled])")
    page.click("#train-start")
    try:
        page.wait_for_function("n => Number(document.getElementById('train-progress').dataset.refreshes) > n",
                               arg=refreshes() + 10, timeout=READY_TIMEOUT_MS)
        before = float(progress(page)["refreshIntervalMs"])
        cost = 70  # (refreshes then come further apart than a view's glide: none glides while training)
        page.evaluate("ms => { window.nnvRefreshCostMs = ms; }", cost)
        # past the share's window (about 3 s) of refreshes that all had the added cost
        page.wait_for_function("n => Number(document.getElementById('train-progress').dataset.refreshes) > n",
                               arg=refreshes() + 12, timeout=READY_TIMEOUT_MS)
        shares, later = [], []
        for _ in range(6):  # (about 2.5 s: the connections are drawn at least once a second)
            n = refreshes()
            page.wait_for_function("n => Number(document.getElementById('train-progress').dataset.refreshes) > n",
                                   arg=n, timeout=READY_TIMEOUT_MS)
            p = progress(page)
            assert p["running"] == "true"
            assert float(p["refreshMs"]) >= cost  # the hook's cost is in the refresh
            later.append(float(p["laterMs"]))
            assert float(p["refreshIntervalMs"]) >= cost / 0.2 > before
            shares.append(float(p["viewsShare"]))
            assert not page.evaluate("document.getElementById('view').classList.contains('glide')")
        assert max(shares) <= 0.2, shares
        # ... and so is the work refreshes left for the next frames (the connections, at least once a second)
        assert max(later) > 0.5, later
    finally:
        page.evaluate("() => { delete window.nnvRefreshCostMs; }")
        page.click("#train-pause")
    wait_idle(page)
    assert app.errors == []


def test_training_works_offline_after_one_training_visit(browser):
    """First visit installs the service worker; the second (controlled) opens Train, which stores the
    training digits; then, with the network gone, a third visit trains."""
    with offline_after_a_visit(browser) as (server, w):
        w.page.reload()  # now the service worker controls the page
        assert w.wait_settled() == "ready"
        w.page.click("#train-toggle")
        wait_data(w.page)
        server.close()
        w.page.context.set_offline(True)
        w.page.reload()
        assert w.wait_settled() == "ready"
        wait_data(w.page)
        w.page.click("#train-step")
        wait_steps(w.page, 1)
        assert w.errors == [] and w.outside == []
