"""End to end (Chromium): the why panel, "Make it a ...", a card's dream and the robustness curve.

One page is shared by the tests of this module. The attribution maps are compared with the same
computation in CPython (core/why.py on the committed export); the attack's and the dream's images
are read back from the page and run through the tests' own float64 forward pass (tests/reference.py),
never through the page's code.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import reference
from conftest import SITE, read_default_model, watch
from pyscript_app.core import why


# Records every curve so far the robustness panel shows while it measures: [digits done, accuracies].
SO_FAR_JS = """
window.__soFar = [];
new MutationObserver(() => {
  const r = document.querySelector('#robustness[data-so-far-digits]');
  const last = window.__soFar[window.__soFar.length - 1];
  if (r && (!last || last[0] !== r.dataset.soFarDigits)) window.__soFar.push([r.dataset.soFarDigits, r.dataset.soFarAccuracy]);
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


@pytest.fixture(scope="module")
def why_page(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(SO_FAR_JS)
    w = watch(context, site_server.url)
    assert w.goto("#sample=12") == "ready", w.page.inner_text("#status")
    yield w
    assert w.errors == [] and w.outside == []
    context.close()


@pytest.fixture(scope="module")
def model():
    network, testset = read_default_model()
    ref = reference.load(SITE / "models" / network.id)[1]
    return network, testset, ref


def floats(page, selector, name):
    return np.array([float(v) for v in page.get_attribute(selector, f"data-{name}").split(",")])


def go(w, hash_text):
    w.page.evaluate(f"location.hash = {json.dumps(hash_text)}")


def wait_map(w, method, cls, sample):
    """Wait until #attribution explains test digit ``sample`` by ``method`` for class ``cls`` (the map
    follows a view in a task after the view's frame)."""
    w.page.wait_for_function(
        f"(() => {{ const a = document.getElementById('attribution');"
        f" return a && a.dataset.method === {json.dumps(method)} && a.dataset.class === {json.dumps(cls)}"
        f" && a.dataset.sample === {json.dumps(str(sample))}; }})()")


def digit(testset, i):
    return testset.images[i].reshape(-1).astype(np.float64) / 255.0


@pytest.mark.parametrize("method, cls", [("gradxinput", None), ("ig", "5"), ("occlusion", "7"), ("gradxinput", "6-5")])
def test_the_map_equals_the_cpython_computation(why_page, model, method, cls):
    network, testset, _ = model
    hash_text = "#sample=12" + ("" if method == "gradxinput" else f"&why={method}") + (f"&class={cls}" if cls else "")
    go(why_page, hash_text)
    target = None if cls is None else (tuple(int(c) for c in cls.split("-")) if "-" in cls else int(cls))
    expected = why.attribute(network, digit(testset, 12), method, target)
    wait_map(why_page, method, expected.label, 12)
    values = floats(why_page.page, "#attribution", "values")
    assert values.shape == (network.input_size,)
    np.testing.assert_allclose(values, expected.values, atol=1e-5 * max(1.0, np.abs(expected.values).max()))
    assert float(why_page.page.get_attribute("#attribution", "data-sum")) == pytest.approx(expected.total, abs=1e-5)
    if method == "ig":  # the page states the sum next to the change it should add up to
        assert "change from black" in why_page.page.inner_text("#attribution-sum")


def test_the_map_follows_a_click(why_page, model):
    network, testset, _ = model
    go(why_page, "#sample=12")
    wait_map(why_page, "gradxinput", str(int(network.predict(network.normalize(testset.images[12])))), 12)
    why_page.page.click("#random-sample")
    why_page.page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== '12'")
    index = int(why_page.page.get_attribute("#input-image", "data-sample-index"))
    expected = why.attribute(network, digit(testset, index), "gradxinput")
    wait_map(why_page, "gradxinput", expected.label, index)
    np.testing.assert_allclose(floats(why_page.page, "#attribution", "values"), expected.values,
                               atol=1e-5 * max(1.0, np.abs(expected.values).max()))
    # the click writes its address once the clicking pauses: the next test's address must be a change
    why_page.page.wait_for_function(f"location.hash === '#sample={index}'")


def test_an_attack_fools_the_reference_pass_and_apply_shows_it(why_page, model):
    network, testset, ref = model
    page = why_page.page
    go(why_page, "#sample=12")
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex === '12'")
    if page.get_attribute("#attack-toggle", "aria-expanded") != "true":
        page.click("#attack-toggle")
    truth = int(testset.labels[12])
    target = (truth + 3) % 10
    page.click(f'[data-attack-target="{target}"]')
    page.wait_for_selector(f'#attack-result[data-target="{target}"]')
    assert f"attack={target}" in page.evaluate("location.hash")
    u = digit(testset, 12)
    changed = floats(page, "#attack-result", "pixels")
    assert changed.shape == u.shape and ((changed >= 0) & (changed <= 1)).all()
    epsilon = float(page.get_attribute("#attack-result", "data-epsilon"))
    assert np.abs(changed - u).max() <= epsilon + 1e-9
    probs = reference.forward(ref, changed[None])[-1][0]
    assert int(probs.argmax()) == target == int(page.get_attribute("#attack-result", "data-prediction"))
    page.click("#attack-apply")
    page.wait_for_function(f"document.getElementById('prediction').dataset.digit === '{target}'")
    assert "applied=1" in page.evaluate("location.hash")
    page.click("#attack-undo")
    page.wait_for_function(f"document.getElementById('prediction').dataset.digit !== '{target}'")
    assert "applied=1" not in page.evaluate("location.hash")


# what has the keyboard's focus: its data-focus-key, else its id, else its tag
FOCUSED = "(() => { const a = document.activeElement; return a.dataset.focusKey || a.id || a.tagName; })()"


def press(page, selector):
    page.focus(selector)
    page.keyboard.press("Enter")


def test_the_panels_buttons_keep_the_keyboards_focus(why_page, model):
    """A button of the why panel pressed from the keyboard redraws the panel: the focus stays on it, or on what
    takes its place (Apply's Undo; a contrast's "versus" choice), not on the page's body, where the next Tab
    would start again at the top of the page."""
    network, testset, _ = model
    page = why_page.page
    go(why_page, "#sample=12")
    wait_map(why_page, "gradxinput", str(int(testset.labels[12])), 12)
    press(page, '[data-action="why-method"][data-method="ig"]')
    page.wait_for_selector('#attribution[data-method="ig"]')
    assert page.evaluate(FOCUSED) == "why-method-ig"
    a, b = page.get_attribute(".why-not button", "data-a"), page.get_attribute(".why-not button", "data-b")
    press(page, ".why-not button")
    page.wait_for_selector(f'#attribution[data-class="{a}-{b}"]')
    assert page.evaluate(FOCUSED) == "why-versus" and page.eval_on_selector("#why-versus", "s => s.value") == b
    if page.get_attribute("#attack-toggle", "aria-expanded") != "true":
        press(page, "#attack-toggle")
    target = (int(testset.labels[12]) + 3) % 10
    press(page, f'[data-attack-target="{target}"]')
    page.wait_for_selector(f'#attack-result[data-target="{target}"] #attack-apply')
    assert page.evaluate(FOCUSED) == f"attack-{target}"
    press(page, "#attack-apply")
    page.wait_for_selector("#attack-undo")
    assert page.evaluate("document.activeElement.id") == "attack-undo"
    press(page, "#attack-undo")
    page.wait_for_selector("#attack-apply")
    assert page.evaluate("document.activeElement.id") == "attack-apply"
    go(why_page, "#sample=12")


def test_a_dream_is_what_the_reference_pass_says(why_page, model):
    network, testset, ref = model
    page = why_page.page
    layer = network.layers[0].name
    go(why_page, f"#sample=12&neuron={layer}:3")
    page.wait_for_selector("#neuron-dream", timeout=60_000)
    u = floats(page, "#neuron-dream", "pixels")
    assert u.shape == (network.input_size,) and ((u >= 0) & (u <= 1)).all()
    if network.layers[0].kind == "dense":  # black where under 1 % of the test digits have ink
        inked = (testset.images.reshape(len(testset.images), -1) > 0).mean(axis=0) >= 0.01
        assert (u[~inked] == 0).all() and (u[inked] > 0).any()
    expected = reference.forward(ref, u[None])[0][0, 3]
    assert float(page.get_attribute("#neuron-dream", "data-activation")) == pytest.approx(expected, abs=1e-5)
    best = reference.forward(ref, testset.images.reshape(len(testset.images), -1) / 255.0)[0][:, 3].max()
    assert float(page.get_attribute("#neuron-dream", "data-activation")) >= best - 1e-6
    # the caption compares net inputs (what the ascent raised; a saturated activation may read 1.0000 for both)
    z = reference.forward(ref, u[None], pre=True)[0][0][0, 3]
    best_z = reference.forward(ref, testset.images.reshape(len(testset.images), -1) / 255.0, pre=True)[0][0][:, 3].max()
    assert float(page.get_attribute("#neuron-dream", "data-objective")) == pytest.approx(z, abs=1e-5)
    caption = page.inner_text("#neuron-dream figcaption")
    shown = [float(v) for v in re.findall(r"net input ([+-]\d+\.\d+)", caption)]
    activation = float(page.get_attribute("#neuron-dream", "data-activation"))
    if f"{activation:.4f}" == f"{best:.4f}":  # the same to the eye: the net inputs tell them apart
        assert shown == pytest.approx([z, best_z], abs=6e-4), caption
    else:
        assert shown == [], caption
    assert ("more than" if z > best_z + 1e-6 else "as much as") in caption
    least = [int(s) for s in page.get_attribute("#card-least", "data-samples").split(",")]
    acts = reference.forward(ref, testset.images.reshape(len(testset.images), -1) / 255.0)[0][:, 3]
    assert acts[least].max() <= np.sort(acts)[8] + 1e-6  # the nine weakest
    assert_readable_svg_text(page, "#card-class-means")  # the classes under its bars


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two CSS rgb() colours."""
    def luminance(colour):
        r, g, b = (int(v) / 255 for v in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3])
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# Each SVG text in an element, [its fill, the first background behind it that is not transparent].
SVG_TEXT_ON = """(sel) => [...document.querySelectorAll(`${sel} text`)].map((t) => {
  let e = t;
  while (e && ['transparent', 'rgba(0, 0, 0, 0)'].includes(getComputedStyle(e).backgroundColor)) e = e.parentElement;
  return [getComputedStyle(t).fill, e ? getComputedStyle(e).backgroundColor : 'rgb(255, 255, 255)'];
})"""


def assert_readable_svg_text(page, selector):
    """Every SVG text in ``selector`` reads at WCAG's 4.5:1 on what is behind it (an SVG text is black unless styled)."""
    found = page.evaluate(SVG_TEXT_ON, selector)
    assert found and all(contrast(fill, behind) >= 4.5 for fill, behind in found), found


def test_the_robustness_curve_starts_at_the_test_accuracy(why_page, model):
    network, testset, ref = model
    page = why_page.page
    page.wait_for_selector("#robustness[data-accuracy]", timeout=180_000)
    accuracy = floats(page, "#robustness", "accuracy")
    clean = float((network.predict(network.normalize(testset.images)) == testset.labels).mean())
    assert accuracy[0] == pytest.approx(clean, abs=1e-9)
    assert accuracy[-1] < accuracy[0]
    assert_readable_svg_text(page, "#robustness")  # its axes' numbers
    # while it was measured, the dashed curve so far: its accuracy at epsilon 0 is that of the digits done
    # (the first ones of the spread order), by the tests' own forward pass
    so_far = page.evaluate("window.__soFar")
    assert so_far, "no curve so far was shown while the curve was measured"
    assert page.query_selector("#robustness .so-far") is None and not page.get_attribute("#robustness", "data-so-far-digits")
    order = why.spread_order(len(testset.labels))
    read = reference.forward(ref, testset.images.reshape(len(testset.labels), -1) / 255.0)[-1].argmax(axis=1)
    done = [int(d) for d, _ in so_far]
    assert done == sorted(set(done)) and why.ROBUSTNESS_SO_FAR_DIGITS <= done[0] and done[-1] < len(testset.labels)
    for d, values in so_far:
        taken = order[: int(d)]
        assert float(values.split(",")[0]) == pytest.approx(float((read[taken] == testset.labels[taken]).mean()), abs=1e-9)


def test_a_bad_class_or_method_in_the_address_is_dropped_with_a_note(why_page):
    page = why_page.page
    go(why_page, "#sample=12&why=magic&class=12&attack=x")
    page.wait_for_selector("#url-note:not([hidden])")
    note = page.inner_text("#url-note-text")
    assert "magic" in note and "'12'" in note
    page.wait_for_function("location.hash === '#sample=12'")
    wait_map(why_page, "gradxinput", page.get_attribute("#prediction", "data-digit"), 12)
