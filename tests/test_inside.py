"""End to end: neuron cards, knock-outs, connections and the error explorer in the real page.

One page (its own, since these tests put neurons and knock-outs into the
URL) is shared by the tests of this module. The expected numbers come from
the export's .npy files and plain numpy (see test_render_inside.py), never
from the page's own modules.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import watch
from test_render_inside import plain, plain_confusion, plain_pass  # noqa: F401 (plain is a fixture)


@pytest.fixture(scope="module")
def inside(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    w = watch(context, site_server.url)
    assert w.goto("#sample=3") == "ready", w.page.inner_text("#status")
    yield w
    assert w.errors == [] and w.outside == []
    context.close()


def go(w, hash_text):
    """Set the URL hash (as a shared link would) and wait until the view shows its sample."""
    sample = dict(p.split("=") for p in hash_text.lstrip("#").split("&"))["sample"]
    w.page.evaluate(f"location.hash = {json.dumps(hash_text)}")
    w.page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{sample}'")


def neuron(layer, index):
    return f'#view .neuron[data-layer="{layer}"][data-index="{index}"]'


def card_for(w, layer, index):
    w.page.wait_for_selector(f'#neuron-card[data-layer="{layer}"][data-index="{index}"]')


def shown_layer(page, layer):
    return np.array(page.eval_on_selector_all(f'#view .neuron[data-layer="{layer}"]', "ns => ns.map(n => +n.dataset.activation)"))


def side_column(page):
    """#inside's box on the page: None while it is not displayed (it shows nothing)."""
    return page.locator("#inside").bounding_box()


def active(page):
    """(id, data-layer, data-index) of the focused element."""
    return page.evaluate("(() => { const a = document.activeElement; return [a.id, a.dataset.layer || null, a.dataset.index || null]; })()")


def test_first_layer_card_by_click_and_escape(inside, plain):
    page = inside.page
    go(inside, "#sample=3")
    assert side_column(page) is None  # nothing in it yet: it takes no room
    page.click(neuron("hidden_1", 4))
    card_for(inside, "hidden_1", 4)
    view, side = page.locator("#view").bounding_box(), side_column(page)
    assert side is not None and side["x"] >= view["x"] + view["width"]  # the card's column, beside the view
    weights = json.loads(page.get_attribute("#card-weights", "data-weights"))
    np.testing.assert_array_equal(np.array(weights).astype(np.float32), plain["W"][0][:, 4])
    assert "neuron=hidden_1:4" in page.evaluate("location.hash")
    assert page.get_attribute(neuron("hidden_1", 4), "aria-pressed") == "true"
    x = plain["images"][3].reshape(-1) / 255.0
    contributions = np.array(json.loads(page.get_attribute("#card-pixel-contributions", "data-contributions")))
    np.testing.assert_allclose(contributions, x * plain["W"][0][:, 4], atol=1e-7)
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")
    assert "neuron=" not in page.evaluate("location.hash")
    assert active(page) == ["", "hidden_1", "4"]  # focus is back on the neuron
    assert side_column(page) is None
    assert inside.errors == []


def test_card_by_keyboard_follows_the_sample(inside, plain):
    page = inside.page
    go(inside, "#sample=3")
    page.focus(neuron("hidden_1", 11))
    page.keyboard.press("Enter")
    card_for(inside, "hidden_1", 11)
    assert active(page)[0] == "neuron-card"  # focus moved into the card
    weights = json.loads(page.get_attribute("#card-weights", "data-weights"))
    np.testing.assert_array_equal(np.array(weights).astype(np.float32), plain["W"][0][:, 11])
    # a top-exciting digit loads that sample; the card stays and now explains that digit
    top = [int(s) for s in page.get_attribute("#card-top", "data-samples").split(",")]
    assert len(top) == 9
    page.click(f'#card-top .thumb[data-sample="{top[2]}"]')
    page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{top[2]}'")
    card_for(inside, "hidden_1", 11)
    (z, a), *_ = plain_pass(plain, plain["images"][top[2]])
    assert float(page.get_attribute("#card-activation", "data-value")) == pytest.approx(a[11], abs=1e-6)
    assert float(page.get_attribute("#card-net-input", "data-value")) == pytest.approx(z[11], abs=1e-5)
    # from the keyboard, one of the digits that excite it least (drawn a task after the card): the focus waits
    # for them to be drawn again, and stays on the digit pressed
    least = page.get_attribute("#card-least", "data-samples").split(",")[0]
    page.focus(f'#card-least .thumb[data-sample="{least}"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#card-least .thumb[data-sample="{least}"][aria-current="true"]')
    assert page.evaluate("document.activeElement.dataset.focusKey") == f"thumb-{least}"
    # the close button closes it too, and focus returns to the neuron
    page.click("#card-close")
    page.wait_for_selector("#neuron-card", state="detached")
    assert active(page) == ["", "hidden_1", "11"]


def test_second_layer_and_output_cards(inside, plain):
    page = inside.page
    go(inside, "#sample=8")
    page.click(neuron("hidden_2", 6))
    card_for(inside, "hidden_2", 6)
    np.testing.assert_array_equal(
        np.array(json.loads(page.get_attribute("#card-weights", "data-weights"))).astype(np.float32), plain["W"][1][:, 6]
    )
    (_, a1), *_ = plain_pass(plain, plain["images"][8])
    rows = page.eval_on_selector_all("#neuron-card .contrib", "rs => rs.map(r => [+r.dataset.index, +r.dataset.value])")
    assert len(rows) == 32
    for k, value in rows:
        assert value == pytest.approx(a1[k] * plain["W"][1][k, 6], abs=1e-6)
    assert [abs(v) for _, v in rows] == sorted((abs(v) for _, v in rows), reverse=True)
    # a contribution row opens its source neuron's card
    first = rows[0][0]
    page.click(f'#neuron-card .contrib[data-index="{first}"]')
    card_for(inside, "hidden_1", first)
    # output neurons stand for a digit
    page.click(neuron("output", 2))
    card_for(inside, "output", 2)
    assert "stands for the digit 2" in page.inner_text("#neuron-card")
    assert page.query_selector("#knockout-toggle") is None
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")


def flipping_knockout(plain):
    """A (sample, hidden_2 unit) whose knock-out changes the prediction, found with plain numpy."""
    for sample in range(200):
        base = plain_pass(plain, plain["images"][sample])[-1][1].argmax()
        for unit in range(32):
            if plain_pass(plain, plain["images"][sample], {1: [unit]})[-1][1].argmax() != base:
                return sample, unit
    raise AssertionError("no single knock-out flips a prediction among the first 200 digits")


def test_knockout_changes_the_output_as_numpy_says_and_reset_restores(inside, plain):
    page = inside.page
    sample, unit = flipping_knockout(plain)
    go(inside, f"#sample={sample}")
    before = plain_pass(plain, plain["images"][sample])[-1][1]
    np.testing.assert_allclose(shown_layer(page, "output"), before, atol=1e-6)
    page.click(neuron("hidden_2", unit))
    card_for(inside, "hidden_2", unit)
    page.click("#knockout-toggle")
    page.wait_for_selector(neuron("hidden_2", unit) + '[data-knocked-out="true"]')
    after = plain_pass(plain, plain["images"][sample], {1: [unit]})[-1][1]  # outgoing weights zeroed
    np.testing.assert_allclose(shown_layer(page, "output"), after, atol=1e-6)
    assert int(page.get_attribute("#prediction", "data-digit")) == int(after.argmax()) != int(before.argmax())
    assert float(page.get_attribute(neuron("hidden_2", unit), "data-activation")) == 0.0
    assert f"ko=hidden_2:{unit}" in page.evaluate("location.hash")
    assert page.get_attribute("#knockout-toggle", "aria-pressed") == "true"
    assert "knocked out" in page.get_attribute(neuron("hidden_2", unit), "aria-label")
    # a second one, in the first layer, through its card
    page.click(neuron("hidden_1", 0))
    card_for(inside, "hidden_1", 0)
    page.click("#knockout-toggle")
    page.wait_for_selector(neuron("hidden_1", 0) + '[data-knocked-out="true"]')
    both = plain_pass(plain, plain["images"][sample], {0: [0], 1: [unit]})
    np.testing.assert_allclose(shown_layer(page, "hidden_2")[np.arange(32) != unit], both[1][1][np.arange(32) != unit], atol=1e-6)
    np.testing.assert_allclose(shown_layer(page, "output"), both[-1][1], atol=1e-6)
    assert "2 knocked out" in page.inner_text("#ko-summary")
    # reset restores the whole network
    page.click("#reset-network")
    page.wait_for_function("!document.querySelector('#view [data-knocked-out]')")
    np.testing.assert_allclose(shown_layer(page, "output"), before, atol=1e-6)
    assert "ko=" not in page.evaluate("location.hash")
    assert page.is_hidden("#reset-network")
    # Shift+click knocks a neuron out (and back in) without opening its card
    page.click(neuron("hidden_2", unit), modifiers=["Shift"])
    page.wait_for_selector(neuron("hidden_2", unit) + '[data-knocked-out="true"]')
    np.testing.assert_allclose(shown_layer(page, "output"), after, atol=1e-6)
    card_for(inside, "hidden_1", 0)  # the open card stays as it was
    page.click(neuron("hidden_2", unit), modifiers=["Shift"])
    page.wait_for_function("!document.querySelector('#view [data-knocked-out]')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")


def read_matrix(page):
    cells = page.eval_on_selector_all(
        "#confusion-matrix [data-true][data-predicted]",
        "cs => cs.map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count, c.getAttribute('aria-label')])",
    )
    cm = np.full((10, 10), -1, dtype=np.int64)
    for t, p, n, label in cells:
        assert cm[t, p] == -1  # one element per cell
        cm[t, p] = n
        assert label == f"true {t}, predicted {p}: {n} digit{'' if n == 1 else 's'}"
    assert len(cells) == 100
    return cm


def test_error_explorer_matches_numpy_and_follows_knockouts(inside, plain):
    page = inside.page
    go(inside, "#sample=3")
    # the page runs the model over the test set in idle time once it is shown: the matrix then only counts
    page.wait_for_selector("#inside[data-warm='done']", state="attached", timeout=60_000)
    page.click("#errors-toggle")
    page.wait_for_selector("#confusion-matrix")
    assert page.get_attribute("#errors-toggle", "aria-expanded") == "true"
    assert side_column(page) is not None and page.locator("#error-explorer").is_visible()
    assert page.get_attribute("#confusion-matrix", "data-cached") == "true"
    expected = plain_confusion(plain)
    np.testing.assert_array_equal(read_matrix(page), expected)
    assert float(page.get_attribute("#accuracy", "data-value")) == plain["manifest"]["training"]["test_accuracy"]
    assert float(page.get_attribute("#confusion-matrix", "data-compute-ms")) >= 0
    # knock-outs recompute it
    go(inside, "#sample=3&ko=hidden_1:0,1,2,3,4,5")
    page.wait_for_selector("#accuracy-change")
    knocked = plain_confusion(plain, {0: [0, 1, 2, 3, 4, 5]})
    np.testing.assert_array_equal(read_matrix(page), knocked)
    assert float(page.get_attribute("#accuracy", "data-value")) == np.trace(knocked) / 10_000
    go(inside, "#sample=3")
    page.wait_for_selector("#accuracy-change", state="detached")
    np.testing.assert_array_equal(read_matrix(page), expected)


# Opens the explorer in the very task in which the page says it is ready: before any idle work of its own
OPEN_EXPLORER_AT_READY = """
new MutationObserver((_, observer) => {
  const status = document.getElementById('status');
  if (!status || status.dataset.state !== 'ready') return;
  observer.disconnect();
  document.getElementById('errors-toggle').click();
  window.__progressAtOnce = !!document.getElementById('explorer-progress-text');
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
"""


def test_explorer_opened_before_the_pass_runs_it_in_idle_steps(browser, site_server, plain):
    """Opened before the page's own pass over the test set, the explorer of a dense network shows its progress
    and runs the pass in idle-time steps (not as one long task), then shows the reference matrix."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(OPEN_EXPLORER_AT_READY)
    w = watch(context, site_server.url)
    assert w.goto("#sample=3") == "ready", w.page.inner_text("#status")
    page = w.page
    assert page.evaluate("window.__progressAtOnce") is True
    page.wait_for_selector("#confusion-matrix", timeout=60_000)
    assert page.locator("#explorer-progress").count() == 0
    np.testing.assert_array_equal(read_matrix(page), plain_confusion(plain))
    assert int(page.get_attribute("#error-explorer", "data-pass-steps")) > 1
    assert w.errors == [] and w.outside == []
    context.close()


def test_a_cell_shows_its_digits_and_a_thumbnail_loads_one(inside, plain):
    page = inside.page
    ko = {1: [4]}
    go(inside, "#sample=3&ko=hidden_2:4")
    if not page.is_visible("#confusion-matrix"):
        page.click("#errors-toggle")
    page.wait_for_selector("#accuracy-change")
    cm = plain_confusion(plain, ko)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(int(np.argmax(off)), off.shape)
    page.click(f'#confusion-matrix [data-true="{t}"][data-predicted="{p}"]')
    page.wait_for_selector(f'#cell-digits[data-true="{t}"][data-predicted="{p}"]')
    # the digits with that label and that (knocked-out network's) prediction
    predicted = np.array([plain_pass(plain, plain["images"][i], ko)[-1][1].argmax() for i in np.flatnonzero(plain["labels"] == t)])
    members = np.flatnonzero(plain["labels"] == t)[predicted == p]
    assert int(page.get_attribute("#cell-digits", "data-count")) == members.size == cm[t, p]
    shown = [int(s) for s in page.eval_on_selector_all("#cell-digits .cthumb", "ts => ts.map(t => t.dataset.sample)")]
    assert shown == members[:100].tolist()
    pick = shown[min(2, len(shown) - 1)]
    page.click(f'#cell-digits .cthumb[data-sample="{pick}"]')
    page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{pick}'")
    assert page.evaluate("location.hash") == f"#sample={pick}&ko=hidden_2:4"  # knock-outs kept
    assert int(page.get_attribute("#true-label", "data-digit")) == t
    assert int(page.get_attribute("#prediction", "data-digit")) == p
    assert page.get_attribute(f'#cell-digits .cthumb[data-sample="{pick}"]', "aria-current") == "true"
    # keyboard: arrows move between cells, Enter opens one
    page.focus(f'#confusion-matrix [data-true="{t}"][data-predicted="{p}"]')
    page.keyboard.press("ArrowDown" if t < 9 else "ArrowUp")
    t2 = t + 1 if t < 9 else t - 1
    assert page.evaluate("document.activeElement.dataset.true") == str(t2)
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#cell-digits[data-true="{t2}"][data-predicted="{p}"]')
    # Escape inside the explorer closes it and returns focus to its button
    page.keyboard.press("Escape")
    page.wait_for_selector("#error-explorer", state="hidden")
    assert active(page)[0] == "errors-toggle"
    go(inside, "#sample=3")


def test_connections_show_activation_times_weight_and_hover_highlights(inside, plain):
    page = inside.page
    go(inside, "#sample=5")
    assert page.get_attribute("#connections-toggle", "aria-pressed") == "true"  # on from the start
    page.wait_for_function("document.getElementById('connections')?.dataset.sample === '5'")
    per_neuron = int(page.get_attribute("#connections", "data-per-neuron"))
    lines = page.eval_on_selector_all(
        "#connections line", "ls => ls.map(l => [l.dataset.from, l.dataset.to, +l.dataset.strength, l.getAttribute('class')])"
    )
    (_, a1), (_, a2), _ = plain_pass(plain, plain["images"][5])
    x = plain["images"][5].reshape(-1) / 255.0
    source = {"hidden_1": x, "hidden_2": a1, "output": a2}
    weights = {"hidden_1": plain["W"][0], "hidden_2": plain["W"][1], "output": plain["W"][2]}
    into = {}
    for src, dst, strength, cls in lines:
        (dl, j), k = dst.split(":"), int(src.split(":")[1])
        assert strength == pytest.approx(source[dl][k] * weights[dl][k, int(j)], abs=1e-6)
        assert cls.split()[0] == ("pos" if strength > 0 else "neg")
        into.setdefault(dst, set()).add(k)
    for dl in ("hidden_1", "hidden_2", "output"):  # each neuron: its strongest incoming signals, by |a x w|
        s = np.abs(source[dl][:, None] * weights[dl])
        for j in range(s.shape[1]):
            strongest = set(np.argsort(-s[:, j], kind="stable")[:per_neuron].tolist())
            assert into.get(f"{dl}:{j}", set()) == {k for k in strongest if s[k, j] > 0}, (dl, j)
    # hovering a neuron highlights exactly its own connections
    page.hover(neuron("hidden_2", 3))
    page.wait_for_selector("#connections.hovering")
    hi = page.eval_on_selector_all("#connections line.hi", "ls => ls.map(l => [l.dataset.from, l.dataset.to])")
    assert hi and all("hidden_2:3" in pair for pair in hi)
    assert len(hi) == sum(1 for s, d, *_ in lines if "hidden_2:3" in (s, d))
    page.mouse.move(5, 5)
    page.wait_for_selector("#connections:not(.hovering)")
    # follows the sample, and goes away when turned off (and back on)
    go(inside, "#sample=6")
    page.wait_for_function("document.getElementById('connections')?.dataset.sample === '6'")
    page.click("#connections-toggle")
    page.wait_for_selector("#connections", state="detached")
    assert page.get_attribute("#connections-toggle", "aria-pressed") == "false"
    page.click("#connections-toggle")
    page.wait_for_selector("#connections line")


def test_a_shared_link_restores_sample_card_and_knockouts(inside, plain):
    page = inside.page
    assert inside.goto("#sample=77&neuron=hidden_1:5&ko=hidden_2:1,9") == "ready"  # a fresh load
    card_for(inside, "hidden_1", 5)
    assert page.get_attribute("#input-image", "data-sample-index") == "77"
    dead = page.eval_on_selector_all('#view [data-knocked-out="true"]', "ns => ns.map(n => n.dataset.layer + ':' + n.dataset.index)")
    assert dead == ["hidden_2:1", "hidden_2:9"]
    np.testing.assert_allclose(shown_layer(page, "output"), plain_pass(plain, plain["images"][77], {1: [1, 9]})[-1][1], atol=1e-6)
    np.testing.assert_array_equal(
        np.array(json.loads(page.get_attribute("#card-weights", "data-weights"))).astype(np.float32), plain["W"][0][:, 5]
    )
    # what the user does next lands in the hash, and Back undoes it
    page.click("#knockout-toggle")
    page.wait_for_selector(neuron("hidden_1", 5) + '[data-knocked-out="true"]')
    assert page.evaluate("location.hash") == "#sample=77&neuron=hidden_1:5&ko=hidden_1:5;hidden_2:1,9"
    page.go_back()
    page.wait_for_selector(neuron("hidden_1", 5) + ":not([data-knocked-out])")
    assert page.evaluate("location.hash") == "#sample=77&neuron=hidden_1:5&ko=hidden_2:1,9"
    assert inside.errors == [] and inside.outside == []


def test_phone_layout_with_card_connections_and_explorer(browser, site_server, plain):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    w = watch(context, site_server.url)
    try:
        assert w.goto("#sample=9&neuron=hidden_2:3") == "ready"
        page = w.page
        card_for(w, "hidden_2", 3)
        page.wait_for_selector("#connections line")  # the flow shows on a phone too
        page.tap("#errors-toggle")
        page.wait_for_selector("#confusion-matrix")
        np.testing.assert_array_equal(read_matrix(page), plain_confusion(plain))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
        for sel in ("#neuron-card", "#error-explorer", "#confusion-matrix"):
            box = page.locator(sel).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, sel
        page.tap(neuron("hidden_1", 2))
        card_for(w, "hidden_1", 2)
        assert w.errors == [] and w.outside == []
    finally:
        context.close()
