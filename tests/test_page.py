"""End to end: the real page in headless Chromium against the site served locally.

One page load is shared (fixture ``app``); tests that must break the site use
their own copy of it.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from conftest import READY_TIMEOUT_MS, Server, rehash_runtime_files, site_copy, watch
from pyscript_app.views import render


def shown(page):
    """What the page shows: sample index, prediction, label and every neuron's activation."""
    return page.evaluate(
        """() => ({
            sample: document.getElementById('input-image').dataset.sampleIndex,
            predicted: document.getElementById('prediction').dataset.digit,
            label: document.getElementById('true-label').dataset.digit,
            neurons: [...document.querySelectorAll('.neuron')].map(n => [n.dataset.layer, +n.dataset.index, n.dataset.activation]),
        })"""
    )


def check_matches_cpython(view, network, testset):
    index = int(view["sample"])
    expected = network.forward(network.normalize(testset.images[index]))
    # a dense unit shows its activation; a conv or pooling channel its map's maximum; a flatten is not drawn
    by_layer = {layer.name: acts.max(axis=(0, 1)) if acts.ndim == 3 else acts
                for layer, acts in zip(network.layers, expected) if layer.kind != "flatten"}
    seen = {name: [] for name in by_layer}
    for name, i, value in view["neurons"]:
        seen[name].append((i, float(value)))
    for name, acts in by_layer.items():
        values = [v for _, v in sorted(seen[name])]
        assert [i for i, _ in sorted(seen[name])] == list(range(len(acts))), name
        np.testing.assert_allclose(values, acts, atol=1e-6, err_msg=f"{name} of sample {index}")
    assert int(view["predicted"]) == int(np.argmax(expected[-1]))
    assert int(view["label"]) == int(testset.labels[index])


def test_page_reaches_ready_without_errors(app):
    assert app.page.get_attribute("#status", "data-state") == "ready"
    assert app.page.is_enabled("#random-sample")
    assert app.errors == []
    assert app.outside == []


def test_twenty_clicks_show_the_cpython_forward_pass(app, network, testset):
    page = app.page
    seen = set()
    for _ in range(20):
        before = page.get_attribute("#input-image", "data-sample-index")
        page.click("#random-sample")
        page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex !== '{before}'")
        view = shown(page)
        check_matches_cpython(view, network, testset)
        page.wait_for_function(f"location.hash === {json.dumps(app.hash('sample=' + view['sample']))}")  # the URL follows the click
        seen.add(view["sample"])
    assert len(seen) >= 15  # really random digits, not the same few
    assert app.errors == [] and app.outside == []


def with_the_pages_scales(page, network):
    """``network`` with each layer's colour scale as the page's legend states it (data-high, every bit).

    An export without activation_stats gets its scales computed in the page: a 99th percentile over the
    test digits' activations, which the browser's numpy sums in another order than CPython's. The two agree
    to the last few float32 bits (checked here), but a value on the boundary of two of the scale's colour
    steps then takes one in the page and the other in CPython. The view is compared on the page's scale."""
    highs = dict(page.eval_on_selector_all(".legend .scale-key", "ks => ks.map(k => [k.dataset.layer, +k.dataset.high])"))
    shown = copy.copy(network)
    shown.layers = [copy.copy(layer) for layer in network.layers]
    for layer in shown.layers:
        if layer.name not in highs or render.scale_for(layer).source != "p99":
            continue
        scale = render.scale_for(layer)
        assert highs[layer.name] == pytest.approx(scale.high, rel=1e-5), layer.name
        layer.stats = {**layer.stats, "p99": highs[layer.name] - (scale.low if scale.kind == "viridis" else 0.0)}
        assert render.scale_for(layer).high == highs[layer.name], layer.name
    return shown


# The page's view against a fresh parse of what CPython's render.network_view draws: node for node.
# Empty when they are equal, else each differing panel's id with where and how it first differs.
SAME_AS_RENDERED = """(markup) => {
  const fresh = document.createElement('template');
  fresh.innerHTML = markup;
  const live = [...document.querySelectorAll('#view > section')], want = [...fresh.content.children];
  if (live.length !== want.length) return `${live.length} panels shown, ${want.length} rendered`;
  const attrs = (n) => n.attributes ? [...n.attributes].map((a) => `${a.name}=${a.value}`).sort().join(' ') : '';
  const first = (a, b, path) => {
    if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return `${path}: ${a.nodeName} shown, ${b.nodeName} rendered`;
    if (a.nodeType === 3) return a.data === b.data ? '' : `${path}: text ${JSON.stringify(a.data)} shown, ${JSON.stringify(b.data)} rendered`;
    if (attrs(a) !== attrs(b)) return `${path}: [${attrs(a)}] shown, [${attrs(b)}] rendered`;
    const ac = [...a.childNodes], bc = [...b.childNodes];
    if (ac.length !== bc.length) return `${path}: ${ac.length} children shown, ${bc.length} rendered`;
    for (let i = 0; i < ac.length; i++) {
      const d = first(ac[i], bc[i], `${path}>${ac[i].nodeName}[${i}]`);
      if (d) return d;
    }
    return '';
  };
  return live.map((node, i) => node.isEqualNode(want[i]) ? '' : `${node.id} (${first(node, want[i], node.id)})`)
    .filter(Boolean).join('; ');
}"""


def test_warming_the_click_path_changes_nothing_on_screen(browser, site_server, network, testset, model_id):
    """In idle time after start-up the page runs the click path a few times (Page.warm_up_clicks):
    afterwards the view is still exactly the render of the digit shown, the URL and history as they were."""
    context = browser.new_context()
    try:
        w = watch(context, site_server.url, model=model_id)
        assert w.goto("#sample=42") == "ready"
        history = w.page.evaluate("history.length")
        w.page.wait_for_selector("#view[data-warm='done']", state="attached", timeout=READY_TIMEOUT_MS)
        shown = with_the_pages_scales(w.page, network)
        view = render.view_for_sample(shown, testset, 42)
        assert w.page.evaluate(SAME_AS_RENDERED, render.network_view(shown, view)) == ""
        hash_ = "#sample=42" if w.model is None else f"#model={w.model}&sample=42"
        assert w.page.evaluate("[location.hash, history.length]") == [hash_, history]
        assert w.errors == [] and w.outside == []
    finally:
        context.close()


def test_view_updated_in_place_is_exactly_the_cpython_render(app, network, testset):
    """Clicks, then knock-outs and a selected neuron that come and go: the view, updated in place
    (the same elements throughout), is each time what render.network_view draws for the state shown,
    every attribute (data-activation, colours, aria-label) and text; nothing stale stays."""
    page = app.page
    shown = with_the_pages_scales(page, network)

    def check(index, knocked_out=None, selected=None):
        view = render.view_for_sample(shown, testset, index, knocked_out, selected)
        # a CNN's map pictures follow its values a frame later (page/maps.py): the frames first
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert page.evaluate(SAME_AS_RENDERED, render.network_view(shown, view)) == "", f"sample {index}"

    def go(hash_text, ready):
        page.evaluate(f"location.hash = {json.dumps(app.hash(hash_text))}")
        page.wait_for_function(ready)

    go("#sample=0", "document.getElementById('input-image').dataset.sampleIndex === '0'")
    check(0)
    page.evaluate("document.querySelector('#view .neuron').probe = 'kept'")  # an element that stays (in place)
    page.evaluate("document.querySelector('#input-panel details').probe = 'kept'")  # the input's notes stay too
    for _ in range(12):
        before = page.get_attribute("#input-image", "data-sample-index")
        page.click("#random-sample")
        page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex !== '{before}'")
        check(int(page.get_attribute("#input-image", "data-sample-index")))
    first, last = network.layers[0].name, network.layers[-2].name
    if network.layers[-2].kind == "flatten":  # not a layer of units: the channels before it
        last = network.layers[-3].name
    a, b, c = sorted({1, 5, 7} if min(network.layers[0].units, network.layer(last).units) > 7 else {0, 1, 2})
    ko = {first: [b], last: [a, c]} if last != first else {first: [a, b, c]}
    ko_text = ";".join(f"{name}:{','.join(map(str, units))}" for name, units in ko.items())
    go(f"#sample=77&neuron={first}:{b}&ko={ko_text}", "document.querySelectorAll('[data-knocked-out]').length === 3")
    check(77, ko, (first, b))
    go("#sample=78", "document.getElementById('input-image').dataset.sampleIndex === '78'")
    check(78)
    assert page.evaluate("document.querySelector('#view .neuron').probe") == "kept"
    assert page.evaluate("document.querySelector('#input-panel details').probe") == "kept"
    assert app.errors == [] and app.outside == []


def first_wrong_and_right(network, testset, block=250):
    """The first test digit the network misreads and the first it reads right (read in blocks until both are
    found: a convolutional network's pass over all 10,000 takes seconds)."""
    wrong = right = None
    for start in range(0, len(testset), block):
        pred = network.predict(network.normalize(testset.images[start : start + block]))
        labels = testset.labels[start : start + block]
        if wrong is None and (pred != labels).any():
            wrong = start + int(np.flatnonzero(pred != labels)[0])
        if right is None and (pred == labels).any():
            right = start + int(np.flatnonzero(pred == labels)[0])
        if wrong is not None and right is not None:
            return wrong, right
    raise AssertionError(f"{network.id} reads every test digit {'right' if wrong is None else 'wrong'}")


def test_right_or_wrong_is_marked(app, network, testset):
    page = app.page
    wrong, right = first_wrong_and_right(network, testset)
    for index, mark in ((wrong, "wrong"), (right, "right")):
        page.evaluate(f"location.hash = {json.dumps(app.hash(f'sample={index}'))}")
        page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{index}'")
        assert mark in page.inner_text("#verdict")
        check_matches_cpython(shown(page), network, testset)


def test_hash_addresses_a_sample_and_back_returns(app, network, testset):
    page = app.page
    app.goto("#sample=1234")
    assert page.get_attribute("#input-image", "data-sample-index") == "1234"
    check_matches_cpython(shown(page), network, testset)
    page.click("#random-sample")
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== '1234'")
    page.wait_for_function(f"location.hash !== {json.dumps(app.hash('sample=1234'))}")  # the new history entry follows the clicks
    page.go_back()
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex === '1234'")
    assert page.evaluate("location.hash") == app.hash("sample=1234")
    check_matches_cpython(shown(page), network, testset)


def test_a_quick_run_of_clicks_is_one_step_back(app, network, testset):
    """Each click shows its digit at once; the URL follows when the clicking pauses, as one new
    history entry, so Back returns to the digit shown before the run."""
    page = app.page
    app.goto("#sample=321")
    history = page.evaluate("history.length")
    seen, hash_during = page.evaluate("""() => {
      const button = document.getElementById('random-sample'), seen = [];
      for (let i = 0; i < 5; i++) {
        button.click();
        seen.push(document.getElementById('input-image').dataset.sampleIndex);
      }
      return [seen, location.hash];
    }""")
    assert len(set(seen)) == 5 and "321" not in seen  # every click a new digit, shown at once
    assert hash_during == app.hash("sample=321")  # no history entry in the middle of the run
    check_matches_cpython(shown(page), network, testset)
    page.wait_for_function(f"location.hash === {json.dumps(app.hash('sample=' + seen[-1]))}")
    assert page.evaluate("history.length") == history + 1
    page.go_back()
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex === '321'")
    check_matches_cpython(shown(page), network, testset)


def test_every_neuron_tells_its_exact_value(app, network):
    page = app.page
    neurons = page.query_selector_all(".neuron")
    assert len(neurons) == sum(layer.units for layer in network.layers if layer.kind != "flatten")  # (not drawn)
    for n in neurons[:3] + neurons[-3:]:
        value = float(n.get_attribute("data-activation"))
        label = n.get_attribute("aria-label")
        assert f"{value:.4f}" in label
        n.hover()  # the tooltip on screen says the same, once (no native title tooltip besides it)
        assert page.evaluate("(n) => getComputedStyle(n, '::after').content", n) == json.dumps(label)
        assert n.get_attribute("title") is None
    # focusable with the keyboard
    neurons[0].focus()
    assert page.evaluate("document.activeElement.classList.contains('neuron')")


def test_legend_and_model_facts(app, network, manifest):
    page = app.page
    assert page.is_visible(".legend")
    # one colour key a hidden layer, on the scale its activation calls for
    keys = page.eval_on_selector_all(".legend .scale-key", "ks => ks.map(k => [k.dataset.layer, k.dataset.scale, +k.dataset.low, +k.dataset.high])")
    # (pooling and flatten layers have no activation of their own: a pooling layer shares the conv layer's key)
    keyed = [layer for layer in network.layers[:-1] if hasattr(layer, "activation")]
    assert [k[0] for k in keys] == [layer.name for layer in keyed]
    for (_, scale, low, high), layer in zip(keys, keyed):
        if layer.activation in ("sigmoid",):
            assert (scale, low, high) == ("viridis", 0, 1)
        elif layer.activation == "tanh":
            assert (scale, low, high) == ("diverging", -1, 1)
        elif layer.activation == "relu":
            assert scale == "viridis" and low == 0 and high > 0
        else:
            assert scale == "diverging" and low == -high and high > 0
    facts = page.inner_text("#facts")
    if "test_accuracy" in manifest["training"]:
        assert f"{manifest['training']['test_accuracy']:.2%}" in facts
        assert f"{manifest['training']['test_accuracy']:.2%}" in page.inner_text("#model-card")
    assert page.get_attribute("#view", "data-model") == manifest["id"]


def test_phone_layout_and_touch(browser, site_server, network, testset, model_id):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    w = watch(context, site_server.url, model=model_id)
    try:
        assert w.goto("#sample=7") == "ready"
        page = w.page
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
        page.tap("#random-sample")
        page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== '7'")
        check_matches_cpython(shown(page), network, testset)
        boxes = [page.locator(f"#layer-{layer.name}").bounding_box() for layer in network.layers if layer.kind != "flatten"]
        assert all(b["width"] <= 390 for b in boxes)
        assert w.errors == [] and w.outside == []
    finally:
        context.close()


# --- a broken site ends in a readable error -----------------------------------------------


def load_broken(browser, root):
    server = Server(root)
    context = browser.new_context()
    try:
        w = watch(context, server.url)
        w.goto("", wait_ready=False)
        state = w.wait_settled()
        return state, w.page.inner_text("#status-text"), w
    finally:
        context.close()
        server.close()


def test_corrupted_weight_file_is_named(browser, tmp_path):
    root = site_copy(tmp_path)
    path = root / "models" / "seed" / "hidden_2_weights.npy"
    data = bytearray(path.read_bytes())
    data[200] ^= 0x55
    path.write_bytes(bytes(data))
    state, text, _ = load_broken(browser, root)
    assert state == "error"
    assert "hidden_2_weights.npy" in text and "corrupt" in text


def test_missing_weight_file_is_named(browser, tmp_path):
    root = site_copy(tmp_path)
    (root / "models" / "seed" / "output_bias.npy").unlink()
    state, text, _ = load_broken(browser, root)
    assert state == "error"
    assert "output_bias.npy" in text and "404" in text


def test_missing_test_set_is_named(browser, tmp_path):
    root = site_copy(tmp_path)
    (root / "data" / "mnist_test.npz").unlink()
    state, text, _ = load_broken(browser, root)
    assert state == "error" and "mnist_test.npz" in text


# Missing, truncated and corrupted runtime files: tests/test_damaged.py.


def test_a_python_error_before_ready_is_shown_not_an_endless_spinner(browser, tmp_path):
    """An exception that escapes main.py (here at import time) ends the loading with its message."""
    root = site_copy(tmp_path)
    script = root / "app" / "pyscript_app" / "main.py"  # the page's <script src>: what PyScript runs
    script.write_text(script.read_text().replace("import asyncio\n", "import asyncio\nimport no_such_module_here\n", 1))
    rehash_runtime_files(root)  # a build whose main.py fails, not a damaged file
    state, text, _ = load_broken(browser, root)
    assert state == "error"
    assert "ModuleNotFoundError" in text and "no_such_module_here" in text, text
