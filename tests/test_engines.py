"""End to end in every engine: the core of the suite, one test body for Chromium and Firefox
(Playwright) and WebKit (WebKitGTK under Selenium), through tests/engines.py.

Checked in each engine: start-up to ready, a click showing the CPython forward pass, the shipped
CNN (its feature maps, a channel's receptive field and card), drawing
with the mouse, a neuron card, the error explorer, zero requests outside the local server, and
offline after one visit. The expected numbers come from the export read with plain numpy (the
``plain`` fixture) and from pyscript_app's CPython code run here, never from the page.
One loaded page per engine is shared by the tests (a cold load costs seconds).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from conftest import CRASHED, DEFAULT_MODEL, PAD_PIXELS_JS, SITE, Server, pad_rgba, read_default_model, site_copy
from drawn_digits import TEMPLATES
from engines import EngineStopped, PlaywrightPage, RecordingProxy, SeleniumPage
from pyscript_app.core import why
from pyscript_app.core.preprocess import preprocess
import reference
from test_picture import CARD_LAYOUT
from test_render_inside import plain, plain_confusion, plain_pass  # noqa: F401 (plain is a fixture)
import browser as engines_here  # tools/browser.py


ENGINES = engines_here.engines()

# A test whose page stopped answering the driver (EngineStopped: seen in WebKitGTK, whose web process
# can crash under the driver) or whose Chromium or Firefox page crashed runs once more, on a page loaded
# again (see reload_a_page_that_stopped); the rerun shows in the summary, and a second stop fails the test.
pytestmark = pytest.mark.flaky(reruns=1, only_rerun=[EngineStopped.__name__, CRASHED])


@pytest.fixture(scope="module")
def default_model():
    """(network, testset) of the model the page shows by default: its CPython forward pass is the reference."""
    return read_default_model()
OUTSIDE = "http://outside.invalid/probe"


def skip_if_missing(engine):
    """Skip, saying why, when the engine is not installed here; fail instead where every engine is
    required (CI sets NNV_REQUIRE_ENGINES)."""
    missing = dict(ENGINES).get(engine, "not chosen in NNV_ENGINES")
    if missing:
        (pytest.fail if os.environ.get("NNV_REQUIRE_ENGINES") else pytest.skip)(f"{engine}: {missing}")


def start(request, engine, base):
    """(page, close) for `engine`, its recorder of outside requests already proven to hear one."""
    closers = []
    if engine == "webkit":
        display = None
        if not os.environ.get("DISPLAY"):
            xvfb = engines_here.VirtualDisplay()
            closers.append(xvfb.close)
            display = xvfb.display
        proxy = RecordingProxy()
        closers.append(proxy.close)
        page = SeleniumPage(lambda: engines_here.launch_webkit(display=display, proxy=proxy.address), engine, base, proxy)
        closers.insert(0, page.quit)
        page.goto(OUTSIDE)  # through the proxy (a top-level navigation: the page's CSP does not apply)
        assert any("outside.invalid" in r for r in proxy.requests), "the recording proxy heard nothing"
        page.probe_host = "outside.invalid"  # the browser may still ask that host for a favicon later
        proxy.requests.clear()
    else:
        if engine == "chromium":
            browser = request.getfixturevalue("browser")
        else:
            browser = engines_here.launch_firefox(request.getfixturevalue("playwright_instance"))
            closers.append(browser.close)
        page = PlaywrightPage(browser, engine, base)
        closers.insert(0, page.close)
        probe = page.context.new_page()  # a tab of its own: an aborted navigation leaves an error page
        try:
            probe.goto(OUTSIDE)
        except Exception:  # aborted by the route, as it must be
            pass
        probe.close()
        assert page.outside() == [OUTSIDE], page.outside()
        page._outside.clear()

    def close():
        for c in closers:
            c()

    return page, close


@pytest.fixture(scope="session", params=[e for e, _ in ENGINES], ids=[e for e, _ in ENGINES])
def ep(request, site_server):
    """The shared page of one engine, loaded and ready."""
    engine = request.param
    skip_if_missing(engine)
    page, close = start(request, engine, site_server.url)
    page.goto(site_server.url + "#sample=3")
    state = page.settle()
    assert state == "ready", page.run("return document.getElementById('status-text').textContent;")
    yield page
    close()


STILL_THE_APP = "return document.body?.dataset.ready === 'true' && !!document.getElementById('view');"


@pytest.fixture(autouse=True)
def reload_a_page_that_stopped(request):
    """Before a test of the shared page: if that page stopped answering (a test before it ended with
    EngineStopped), it is loaded again, so that one crash fails one test, not every one after it."""
    if "ep" in request.fixturenames:
        page = request.getfixturevalue("ep")
        if hasattr(page, "answers") and not (page.answers() and page.run(STILL_THE_APP)):
            assert page.recover(page.base + "#sample=3") == "ready"


SHOWN = """return {
  sample: document.getElementById('input-image').dataset.sampleIndex,
  predicted: document.getElementById('prediction').dataset.digit,
  neurons: [...document.querySelectorAll('#view .neuron')].map(n => [n.dataset.layer, +n.dataset.index, n.dataset.activation]),
};"""


def check_activations(view, expected_by_layer):
    """Every neuron of every layer shows the expected activation (within 1e-6), in order."""
    for name, acts in expected_by_layer.items():
        got = sorted((i, float(v)) for layer, i, v in view["neurons"] if layer == name)
        assert [i for i, _ in got] == list(range(len(acts))), name
        np.testing.assert_allclose([v for _, v in got], acts, atol=1e-6, err_msg=name)
    assert {layer for layer, _, _ in view["neurons"]} == set(expected_by_layer)
    assert int(view["predicted"]) == int(np.argmax(list(expected_by_layer.values())[-1]))


def show_sample(ep, index):
    ep.run("location.hash = arguments[0];", f"#sample={index}")
    ep.wait("return document.getElementById('input-image').dataset.sampleIndex === arguments[0];", str(index))


def test_start_up_reaches_ready_with_the_manifest_layers(ep, default_model):
    manifest = default_model[0].manifest
    assert ep.attribute("#status", "data-state") == "ready"
    assert ep.run("return !document.getElementById('random-sample').disabled;")
    layers = ep.run("return [...new Set([...document.querySelectorAll('#view .neuron')].map(n => n.dataset.layer))];")
    assert layers == [layer["name"] for layer in manifest["layers"]]
    assert ep.run("return document.body.dataset.ready;") == "true"
    assert ep.errors() in (None, [])


def test_a_click_shows_the_cpython_forward_pass(ep, default_model):
    network, testset = default_model
    seen = set()
    for _ in range(5):
        before = ep.attribute("#input-image", "data-sample-index")
        ep.click("#random-sample")
        ep.wait("return document.getElementById('input-image').dataset.sampleIndex !== arguments[0];", before)
        view = ep.run(SHOWN)
        index = int(view["sample"])
        expected = network.forward(network.normalize(testset.images[index]))
        check_activations(view, {layer.name: acts for layer, acts in zip(network.layers, expected)})
        seen.add(index)
    assert len(seen) == 5


def test_drawing_with_the_mouse_is_read_like_cpython(ep, default_model):
    network = default_model[0]
    ep.run("location.hash = '#mode=draw';")
    ep.wait("return !document.getElementById('draw-panel').hidden;")
    try:
        ep.click("#clear-pad")
        ep.draw(TEMPLATES[2][0])
        ep.wait("return !!document.getElementById('model-input');")
        pad = pad_rgba(ep.run(PAD_PIXELS_JS))
        assert pad[..., 3].max() > 0, "the mouse left no ink on the pad"
        pixels = np.array(json.loads(ep.attribute("#model-input", "data-pixels")), dtype=np.uint8)
        expected_input = preprocess(pad)
        np.testing.assert_array_equal(pixels.reshape(expected_input.centred.shape), expected_input.centred)
        expected = network.forward(network.normalize(pixels))
        check_activations(ep.run(SHOWN), {layer.name: acts for layer, acts in zip(network.layers, expected)})
    finally:
        ep.run("location.hash = '#sample=3';")
        ep.wait("return document.getElementById('input-image').dataset.sampleIndex === '3';")


def test_an_address_set_while_a_click_still_has_to_write_its_own_is_shown(ep):
    """A click writes its address a moment later (one history entry for a quick run of clicks);
    an address set meanwhile is what the page shows, whichever comes first: the click's deferred
    write falling due while the page is busy, or another click handled before the hashchange."""
    show_sample(ep, 3)
    try:
        ep.run("""document.getElementById('random-sample').click();
            const t = performance.now(); while (performance.now() - t < 600) {}  // busy past the deferred write
            location.hash = '#mode=draw';""")
        ep.wait("return !document.getElementById('draw-panel').hidden;", timeout=10)
        assert ep.run("return location.hash;") == "#mode=draw"
        show_sample(ep, 3)
        ep.run("""document.getElementById('random-sample').click();
            location.hash = '#sample=42';
            document.querySelector('#view .neuron[data-index="1"]').click();  // handled before the hashchange""")
        ep.wait("return !!document.getElementById('neuron-card');")
        ep.wait("return document.getElementById('input-image').dataset.sampleIndex === '42';", timeout=10)
        assert ep.run("return location.hash;").startswith("#sample=42&neuron=")
    finally:
        ep.run("location.hash = '#sample=3';")
        ep.wait("return document.getElementById('input-image').dataset.sampleIndex === '3';")
        ep.run("const c = document.getElementById('card-close'); if (c) c.click();")
        ep.wait("return !document.getElementById('neuron-card');")


def test_a_neuron_card_opens_with_the_exported_weights(ep, plain):
    manifest = plain["manifest"]
    show_sample(ep, 3)
    first = manifest["layers"][0]["name"]
    ep.click(f'#view .neuron[data-layer="{first}"][data-index="4"]')
    ep.wait("return !!document.querySelector(arguments[0]);", f'#neuron-card[data-layer="{first}"][data-index="4"]')
    weights = json.loads(ep.attribute("#card-weights", "data-weights"))
    np.testing.assert_array_equal(np.array(weights).astype(np.float32), plain["W"][0][:, 4])
    z, a = plain_pass(plain, plain["images"][3])[0]
    assert float(ep.attribute("#card-activation", "data-value")) == pytest.approx(a[4], abs=1e-6)
    # laid out in this engine's fonts: nothing sticks out of the card, no number split over two lines
    assert ep.run(f"return ({CARD_LAYOUT})();") == []
    ep.click("#card-close")
    ep.wait("return !document.getElementById('neuron-card');")


def test_the_error_explorer_shows_the_numpy_confusion_matrix(ep, plain):
    show_sample(ep, 3)
    ep.click("#errors-toggle")
    ep.wait("return !!document.getElementById('confusion-matrix');", timeout=60)
    cells = ep.run("return [...document.querySelectorAll('#confusion-matrix [data-true][data-predicted]')]"
                   ".map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count]);")
    expected = plain_confusion(plain)
    got = np.full(expected.shape, -1, dtype=np.int64)
    for t, p, n in cells:
        got[t, p] = n
    assert len(cells) == expected.size
    np.testing.assert_array_equal(got, expected)
    assert float(ep.attribute("#accuracy", "data-value")) == plain["manifest"]["training"]["test_accuracy"]
    visible = ep.run("const r = document.getElementById('confusion-matrix').getBoundingClientRect(); return r.width > 0 && r.height > 0;")
    assert visible
    ep.click("#errors-toggle")
    ep.wait("return document.getElementById('error-explorer').hidden;")


def test_the_cnn_shows_its_feature_maps_receptive_field_and_channel_card(ep):
    """The shipped convolutional network in this engine: every channel's peak and every dense activation
    against tests/reference.py's plain loops, each map drawn from its layer's one image, a focused
    channel's receptive field, and its card's whole map."""
    layers_ = reference.load_layers(SITE / "models" / "cnn")[1]
    with np.load(SITE / "data" / "mnist_test.npz") as data:
        x = data["images"][12].reshape(1, -1).astype(np.float64) / 255.0
    acts = [a[0] for a in reference.forward_layers(layers_, x)]
    ep.run("location.hash = arguments[0];", "#model=cnn&sample=12")
    ep.wait("return document.getElementById('view').dataset.model === 'cnn'"
            " && document.getElementById('input-image').dataset.sampleIndex === '12';", timeout=60)
    view = ep.run(SHOWN)
    for pos, (spec, _, _) in enumerate(layers_):
        got = [float(v) for _, v in sorted((i, v) for name, i, v in view["neurons"] if name == spec["name"])]
        if spec["kind"] == "flatten":
            assert got == []  # not drawn
            continue
        want = acts[pos].max(axis=(0, 1)) if spec["kind"] in ("conv2d", "maxpool2d") else acts[pos]
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=spec["name"])
    images = ep.run("return [...document.querySelectorAll('#layer-conv_1 .fmap-img')].map(n => getComputedStyle(n).backgroundImage);")
    assert len(images) == 12 and len(set(images)) == 1 and images[0].startswith('url("data:image/png')
    pos = next(i for i, (spec, _, _) in enumerate(layers_) if spec["name"] == "conv_2")
    ep.run("document.querySelector('#layer-conv_2 .neuron[data-index=\"5\"]').focus();")
    ep.wait("const k = document.getElementById('kernel-view'); return !!k && k.dataset.layer === 'conv_2' && k.dataset.index === '5';")
    row, col = (int(ep.attribute("#kernel-view", f"data-{k}")) for k in ("row", "col"))
    assert acts[pos][row, col, 5] == pytest.approx(acts[pos][:, :, 5].max(), abs=1e-6)
    box = tuple(int(v) for v in ep.attribute("#receptive-field", "data-box").split(","))
    assert box == reference.receptive_box(layers_, pos, row, col)
    ep.click('#layer-conv_2 .neuron[data-index="5"]')
    ep.wait("return !!document.querySelector('#neuron-card[data-layer=\"conv_2\"][data-index=\"5\"]');")
    assert ep.attribute("#neuron-card", "data-shape") == "{},{}".format(*acts[pos].shape[:2])
    shown_map = np.array([float(v) for v in ep.attribute("#neuron-card", "data-map").split(",")])
    np.testing.assert_allclose(shown_map, acts[pos][:, :, 5].ravel(), atol=1e-5)
    ep.click("#card-close")
    ep.wait("return !document.getElementById('neuron-card');")
    ep.run("location.hash = arguments[0];", f"#model={DEFAULT_MODEL}&sample=3")
    ep.wait("return document.getElementById('view').dataset.model === arguments[0]"
            " && document.getElementById('input-image').dataset.sampleIndex === '3';", DEFAULT_MODEL, timeout=60)


def test_why_this_answer_is_the_cpython_attribution(ep, default_model):
    network, testset = default_model
    show_sample(ep, 3)
    expected = why.attribute(network, testset.images[3].reshape(-1) / 255.0, "gradxinput")
    ep.wait("const a = document.getElementById('attribution');"
            " return !!a && a.dataset.class === arguments[0] && a.dataset.sample === '3';", expected.label)
    values = np.array([float(v) for v in ep.attribute("#attribution", "data-values").split(",")])
    np.testing.assert_allclose(values, expected.values, atol=1e-5 * max(1.0, np.abs(expected.values).max()))


def test_make_it_a_fools_the_reference_pass(ep, default_model):
    network, testset = default_model
    show_sample(ep, 3)
    target = (int(testset.labels[3]) + 4) % 10
    try:
        if ep.attribute("#attack-toggle", "aria-expanded") != "true":
            ep.click("#attack-toggle")
        ep.click(f'[data-attack-target="{target}"]')
        ep.wait("const r = document.getElementById('attack-result'); return !!r && r.dataset.target === arguments[0];", str(target))
        changed = np.array([float(v) for v in ep.attribute("#attack-result", "data-pixels").split(",")])
        u = testset.images[3].reshape(-1) / 255.0
        assert ((changed >= 0) & (changed <= 1)).all()
        assert np.abs(changed - u).max() <= float(ep.attribute("#attack-result", "data-epsilon")) + 1e-9
        layers = reference.load(SITE / "models" / network.id)[1]
        assert int(reference.forward(layers, changed[None])[-1][0].argmax()) == target
    finally:
        show_sample(ep, 3)


def test_the_atlas_is_the_pca_and_its_dot_follows_a_click(ep, default_model):
    """The atlas's core flow: opened by its toggle, the map of the last hidden layer is the PCA of the test
    set's activations (numpy SVD of the CPython forward pass), and the current digit's dot is its projection."""
    network, testset = default_model
    show_sample(ep, 3)
    ep.click("#atlas-toggle")
    layer = network.layers[-2].name
    ready = ("const a = document.getElementById('atlas'); return !a.hidden && a.dataset.state === 'ready' "
             "&& a.dataset.layer === arguments[0];")
    try:
        ep.wait(ready, layer, timeout=120)
        assert "mode=atlas" in ep.run("return location.hash;")
        acts = network.forward(network.normalize(testset.images))[len(network.layers) - 2].astype(np.float64)
        mean = np.array([float(v) for v in ep.attribute("#atlas", "data-mean").split(",")])
        axes = np.array([float(v) for v in ep.attribute("#atlas", "data-axes").split(",")]).reshape(2, -1)
        np.testing.assert_allclose(mean, acts.mean(axis=0), atol=1e-6)
        _, _, vt = np.linalg.svd(acts - acts.mean(axis=0), full_matrices=False)
        for got, want in zip(axes, vt[:2]):
            assert min(np.abs(got - want).max(), np.abs(got + want).max()) < 1e-6
        for _ in range(2):
            before = ep.attribute("#atlas-current", "data-sample")
            ep.click("#random-sample")
            ep.wait("return document.getElementById('atlas-current').dataset.sample !== arguments[0];", before)
            index = int(ep.attribute("#atlas-current", "data-sample"))
            dot = [float(ep.attribute("#atlas-current", f"data-{c}")) for c in "xy"]
            np.testing.assert_allclose(dot, (acts[index] - mean) @ axes.T, atol=1e-6)
    finally:
        ep.run("location.hash = '#sample=3';")
        ep.wait("return document.getElementById('atlas').hidden && "
                "document.getElementById('input-image').dataset.sampleIndex === '3';")


def test_zero_requests_outside_the_local_server(ep):
    assert ep.outside() == []
    assert ep.errors() in (None, [])


def test_offline_after_one_visit(ep, default_model):
    network, testset = default_model
    """First visit on a server of its own (a new origin: a new service worker), then that
    server is shut down and the page reloaded: everything comes from the service worker."""
    server, shared = Server(SITE), ep.base
    ep.base = server.url  # the page's own server, for the recording of outside requests
    try:
        ep.goto(server.url + "#sample=11")
        assert ep.settle() == "ready"
        ep.wait("const o = document.getElementById('offline-ready'); return o && !o.hidden;", timeout=90)
        server.close()
        server = None
        ep.reload()
        assert ep.settle() == "ready", ep.run("return document.getElementById('status-text').textContent;")
        assert ep.run("return !!navigator.serviceWorker.controller;")
        show_sample(ep, 12)
        view = ep.run(SHOWN)
        expected = network.forward(network.normalize(testset.images[12]))
        check_activations(view, {layer.name: acts for layer, acts in zip(network.layers, expected)})
    finally:
        if server is not None:
            server.close()
        ep.base = shared
        ep.goto(ep.base + "#sample=3")  # the shared page back on the shared server
        assert ep.settle() == "ready"


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_a_load_leaves_a_clean_console(request, site_server, engine):
    """No warning and no error in the console over a whole load, also when the machine is slow
    (Chromium: CPU throttled 6x, as a slow phone; preloads unused a few seconds after the load
    event are what it warns about). WebKit's driver reports no console, so it is not checked there."""
    skip_if_missing(engine)
    browser = request.getfixturevalue("browser") if engine == "chromium" else \
        engines_here.launch_firefox(request.getfixturevalue("playwright_instance"))
    context = browser.new_context()
    try:
        page = context.new_page()
        if engine == "chromium":
            context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 6})
        messages, infos = [], []
        page.on("console", lambda m: m.type in ("warning", "error") and messages.append(f"{m.type}: {m.text}"))
        page.on("console", lambda m: m.type == "info" and infos.append(m.text))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.goto(site_server.url)
        page.wait_for_function("document.getElementById('status').dataset.state !== 'loading'", timeout=120_000)
        assert page.get_attribute("#status", "data-state") == "ready"
        page.wait_for_timeout(4000)  # the browser's unused-preload warnings come about 3 s after the load event
        assert messages == []
        # The start-up's objects (the modules, numpy, the page) are set aside from the garbage collector's
        # scans, so that a full collection does not walk them all again in the middle of a stroke.
        ready = [m for m in infos if m.startswith("nn-visualizer: Python side ready")]
        assert len(ready) == 1, infos
        frozen = re.search(r"; ([\d,]+) objects of the start-up left out of the garbage collector's scans$", ready[0])
        assert frozen and int(frozen[1].replace(",", "")) > 10_000, ready[0]
    finally:
        context.close()
        if engine != "chromium":
            browser.close()


@pytest.mark.parametrize("rel, how", [("vendor/pyodide/pyodide.asm.wasm", "truncated"), ("numpy", "corrupted")])
def test_a_damaged_runtime_file_is_named(ep, tmp_path, rel, how):
    """The two damages that used to stall or mislead (a truncated wasm binary, a corrupted numpy
    wheel) end in a message naming the file, with the view marked as not running, in every engine."""
    from test_damaged import damage, numpy_wheel

    rel = f"vendor/pyodide/{numpy_wheel()}" if rel == "numpy" else rel
    root = site_copy(tmp_path)
    damage(root, rel, how)
    server, shared = Server(root), ep.base
    ep.base = server.url
    try:
        ep.goto(server.url)
        assert ep.settle() == "error"
        text = ep.wait("const t = document.getElementById('status-text').textContent; return t.includes('damaged') && t;", timeout=30)
        assert rel.split("/")[-1] in text and how in text and "integrity check failed" in text, text
        assert ep.run("return document.body.dataset.ready;") == "failed"
        assert ep.run("const n = document.getElementById('not-running'); return !!n && !n.hidden;")
        assert ep.outside() == []
    finally:
        server.close()
        ep.base = shared
        ep.goto(ep.base + "#sample=3")
        assert ep.settle() == "ready"

