"""End to end: drawing a digit on the page's pad, in headless Chromium.

Strokes are real input events (Playwright's mouse; touch through the DevTools
protocol, as a touchscreen sends them) along the hand-written polylines of
tests/drawn_digits.py. What the page shows is checked against CPython: the
preprocessing of the pad's own pixels, and the forward pass of the model input.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import PAD_PIXELS_JS, SHIPPED, SHIPPED_CNNS, on_the_shipped_cnn, pad_rgba, watch
from drawn_digits import TEMPLATES
from pyscript_app.core.preprocess import preprocess
from test_page import check_matches_cpython, shown
from test_picture import IN_SIGHT


@pytest.fixture(scope="module")
def pad(browser, site_server, model_id):
    """One page of one model in draw mode, in a context with a touchscreen and a mouse."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, has_touch=True)
    w = watch(context, site_server.url, model=model_id)
    assert w.goto("#mode=draw") == "ready", w.page.inner_text("#status")
    yield w
    context.close()


def settle(page):
    """Two animation frames: the pad updates once per frame, so any pending update has run."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def to_screen(page, x, y):
    box = page.locator("#draw-pad").bounding_box()
    return box["x"] + x * box["width"], box["y"] + y * box["height"]


def draw(page, strokes, steps=4):
    """Draw the strokes (pad units 0..1) with the mouse, button down along each polyline."""
    page.locator("#draw-pad").scroll_into_view_if_needed()
    for stroke in strokes:
        page.mouse.move(*to_screen(page, *stroke[0]))
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(*to_screen(page, x, y), steps=steps)
        page.mouse.up()
    settle(page)


def clear(page):
    page.click("#clear-pad")
    settle(page)


def draw_anew(pad, strokes):
    """Clear the shared page's pad and draw the strokes on it; the page."""
    page = pad.page
    clear(page)
    draw(page, strokes)
    return page


def pad_pixels(page):
    """The canvas's own RGBA pixels, read back from the page."""
    return pad_rgba(page.evaluate(f"() => {{ {PAD_PIXELS_JS} }}"))


def model_input(page):
    return np.array(json.loads(page.get_attribute("#model-input", "data-pixels")), dtype=np.uint8)


def check_drawing_matches_cpython(page, network):
    """#model-input is the CPython preprocessing of the pad; the neurons are the CPython forward pass of it."""
    pixels = model_input(page)
    assert pixels.shape == (784,) and pixels.max() > 0
    expected_input = preprocess(pad_pixels(page))
    assert expected_input is not None
    np.testing.assert_array_equal(pixels.reshape(28, 28), expected_input.centred)
    view = shown(page)
    assert view["sample"] == "" and view["label"] == ""
    expected = network.forward(network.normalize(pixels))
    for layer, acts in zip(network.layers, expected):
        if layer.kind == "flatten":  # not drawn
            continue
        acts = acts.max(axis=(0, 1)) if acts.ndim == 3 else acts  # a channel shows its map's maximum
        values = [(i, float(v)) for name, i, v in view["neurons"] if name == layer.name]
        assert [i for i, _ in values] == list(range(layer.units))
        np.testing.assert_allclose([v for _, v in values], acts, atol=1e-6, err_msg=layer.name)
    assert view["predicted"] == str(int(np.argmax(expected[-1])))
    return int(view["predicted"])


def is_empty(page):
    return page.evaluate(
        """() => ({
            prediction: document.getElementById('prediction').dataset.digit,
            label: document.getElementById('true-label').dataset.digit,
            neurons: document.querySelectorAll('.neuron').length,
            modelInput: !!document.getElementById('model-input'),
            ink: (() => { const c = document.getElementById('draw-pad');
                          return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); })(),
            panel: document.getElementById('draw-panel').dataset.empty,
            reading: document.getElementById('pad-reading').textContent,
        })"""
    ) == {"prediction": "", "label": "", "neurons": 0, "modelInput": False, "ink": False, "panel": "true", "reading": ""}


def test_empty_pad_asks_for_a_digit(pad):
    page = pad.page
    assert page.is_visible("#draw-pad") and page.is_visible("#clear-pad")
    assert is_empty(page)
    assert "Draw a digit" in page.inner_text("#verdict")
    assert page.evaluate("getComputedStyle(document.getElementById('draw-pad')).touchAction") == "none"
    size = page.locator("#draw-pad").bounding_box()  # (narrowed from 280 px where the network's panels need the room)
    assert size["width"] >= 220 and size["height"] == size["width"]


@pytest.mark.parametrize("digit", [0, 1, 2, 3, 4, 7])
@on_the_shipped_cnn({"digit": 2})  # (how well it reads drawn digits: test_shipped_models.py, 1,500 of them)
def test_mouse_drawn_digit_is_preprocessed_and_read_like_cpython(pad, network, digit):
    page = draw_anew(pad, TEMPLATES[digit][0])
    predicted = check_drawing_matches_cpython(page, network)
    if network.id in SHIPPED:  # (the test-made models have random weights: they read nothing)
        assert predicted == digit  # a clearly drawn digit is read right
    assert page.inner_text("#pad-reading").startswith(f"reads {predicted}")  # and said beside the pad
    assert page.get_attribute("#draw-panel", "data-empty") == "false"


def test_activations_update_while_the_stroke_is_drawn(pad, network):
    page = pad.page
    clear(page)
    stroke = TEMPLATES[2][0][0]
    page.mouse.move(*to_screen(page, *stroke[0]))
    page.mouse.down()
    seen = []
    for x, y in stroke[1:]:
        page.mouse.move(*to_screen(page, x, y), steps=3)
        settle(page)
        seen.append(page.get_attribute("#model-input", "data-pixels"))
        check_drawing_matches_cpython(page, network)  # mid-stroke, the button still down
    page.mouse.up()
    assert len(set(seen)) >= len(seen) - 2  # the input changed as the stroke grew, not only at the end


# The model's input shown, the why map's values and sum, and the stroke's state, read at one moment.
SHOWN_MAP_JS = """() => [document.getElementById('model-input').dataset.pixels, document.getElementById('attribution').dataset.values,
  document.getElementById('attribution').dataset.sum, document.querySelector('main').dataset.stroke]"""


def attribution_values(page):
    return np.array(page.get_attribute("#attribution", "data-values").split(","), dtype=np.float64)


@on_the_shipped_cnn()  # (page logic, the same for every model: tiny-cnn takes a CNN's paths)
def test_the_why_map_follows_when_the_stroke_pauses_or_ends(pad, network):
    """The view follows every frame of a stroke; the why map (like the flow's lines: Page.still_only) follows
    when the stroke is held still or ends, dimmed meanwhile, and then explains the drawing as CPython does."""
    from pyscript_app.core import why

    page = pad.page
    page.evaluate("window.nnvSettleMs = 600000")  # (no pause is seen until told below, however slow the machine)
    clear(page)
    strokes = TEMPLATES[7][0]
    draw(page, strokes[:1])
    page.wait_for_function("document.querySelector('main').dataset.stroke === 'still'")
    before = attribution_values(page)
    stroke = strokes[-1]
    page.mouse.move(*to_screen(page, *stroke[0]))
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(*to_screen(page, x, y), steps=3)
    settle(page)
    moving = page.evaluate("""() => ({stroke: document.querySelector('main').dataset.stroke,
        opacity: getComputedStyle(document.getElementById('why-map')).opacity})""")
    assert moving == {"stroke": "moving", "opacity": "0.35"}
    np.testing.assert_array_equal(attribution_values(page), before)  # the first stroke's map, while this one moves
    sums = [page.get_attribute("#attribution", "data-sum")]

    def check_map():  # the map of the digit drawn so far, as CPython computes it
        page.wait_for_function("s => document.getElementById('attribution').dataset.sum !== s", arg=sums[-1])
        # On a busy machine a frame of the last moves can come after a pause was seen: the view then shows
        # that frame and its map follows at the next pause. The input and its map are read together, until
        # the stroke is still and the map is the one of the input shown (or the time is up: then the last).
        deadline = time.monotonic() + 30
        while True:
            pixels, values, total, stroke_state = page.evaluate(SHOWN_MAP_JS)
            x = np.array(json.loads(pixels), dtype=np.float64) / 255.0
            values = np.array(values.split(","), dtype=np.float64)
            expected = why.attribute(network, x, "gradxinput").values
            close = np.allclose(values, expected, rtol=1e-7, atol=1e-5 * max(1.0, np.abs(expected).max()))
            if (close and stroke_state == "still") or time.monotonic() > deadline:
                break
            page.wait_for_timeout(100)
        sums.append(total)
        assert stroke_state == "still"
        np.testing.assert_allclose(values, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))
        assert page.evaluate("getComputedStyle(document.getElementById('why-map')).opacity") == "1"

    # a pause, the button still down: the stroke counts as paused once held still for nnvSettleMs
    page.evaluate("window.nnvSettleMs = 50")
    page.mouse.move(*to_screen(page, *stroke[0]), steps=3)
    page.wait_for_function("document.querySelector('main').dataset.stroke === 'still'")
    check_map()
    page.evaluate("window.nnvSettleMs = 600000")
    page.mouse.move(*to_screen(page, *stroke[-1]), steps=3)
    settle(page)
    assert page.evaluate("document.querySelector('main').dataset.stroke") == "moving"
    page.mouse.up()  # the end of a stroke
    page.wait_for_function("document.querySelector('main').dataset.stroke === 'still'")
    check_map()
    page.evaluate("delete window.nnvSettleMs")


def test_the_whole_network_is_in_sight_beside_the_pad(pad):
    """On a laptop's 1,280 px, beside the pad, every panel of the network is in sight, its output layer
    included, whether the pad is empty (the layers waiting) or holds a digit: the view does not scroll
    sideways (where the panels need it, the pad narrows: main[data-pad])."""
    page = pad.page
    clear(page)
    assert is_empty(page)
    assert page.evaluate(IN_SIGHT) == []
    draw(page, TEMPLATES[3][0])
    page.wait_for_selector("#view .neuron")
    assert page.evaluate(IN_SIGHT) == []
    assert page.locator("#layer-output").bounding_box()["x"] > page.locator("#draw-panel").bounding_box()["x"]  # beside it


def test_clear_button_and_shortcuts_empty_the_pad(pad):
    page = pad.page
    for how in ("button", "c", "Delete"):
        draw(page, TEMPLATES[1][0])
        assert not is_empty(page)
        page.wait_for_selector("#attack-slot [data-action=attack]:not([disabled])", state="attached")
        page.keyboard.press("Control+c")  # copying is not clearing
        settle(page)
        assert not is_empty(page)
        if how == "button":
            page.click("#clear-pad")
        else:
            page.locator("body").focus()
            page.keyboard.press(how)
        settle(page)
        assert is_empty(page), how
        # nothing drawn, nothing to explain: the why panel waits for a digit rather than showing the last one's map
        page.wait_for_selector("#why-waiting")
        assert page.locator("#attribution").count() == 0 and page.locator("#attack-result").count() == 0, how
        assert "draw a digit first" in page.text_content("#attack-slot"), how
        # with no digit to change, "Make it a ..." cannot be pressed (it would ask for an attack on nothing)
        buttons = page.locator("#attack-slot [data-action=attack]")
        assert buttons.count() > 0 and page.locator("#attack-slot [data-action=attack]:not([disabled])").count() == 0, how


def test_touch_stroke_draws(pad, network):
    page = pad.page
    clear(page)
    page.locator("#draw-pad").scroll_into_view_if_needed()
    cdp = page.context.new_cdp_session(page)
    scroll = page.evaluate("window.scrollY")
    for stroke in TEMPLATES[7][0]:
        points = [to_screen(page, x, y) for x, y in stroke]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for t in np.linspace(0, 1, 6)[1:]:
                p = {"x": x0 + t * (x1 - x0), "y": y0 + t * (y1 - y0)}
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [p]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    settle(page)
    predicted = check_drawing_matches_cpython(page, network)
    if network.id in SHIPPED:  # a trained network reads it
        assert predicted == 7
    assert page.evaluate("window.scrollY") == scroll  # the finger drew; it did not scroll the page


def test_knock_outs_apply_to_a_drawing(pad, network):
    page = draw_anew(pad, TEMPLATES[4][0])
    first = network.layers[0]
    dead = list(range(min(8, first.units - 1)))
    page.evaluate(f"location.hash = {json.dumps(pad.hash(f'mode=draw&ko={first.name}:' + ','.join(map(str, dead))))}")
    page.wait_for_selector(f'.neuron[data-layer="{first.name}"][data-index="{dead[-1]}"][data-knocked-out="true"]')
    pixels = model_input(page)
    outs = network.forward(network.normalize(pixels), knocked_out={first.name: dead})
    # a dense unit shows its activation, a channel its map's maximum; a flatten is not drawn
    expected = np.concatenate([a.max(axis=(0, 1)) if a.ndim == 3 else a
                               for layer, a in zip(network.layers, outs) if layer.kind != "flatten"])
    got = np.array([float(v) for _, _, v in shown(page)["neurons"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    page.evaluate(f"location.hash = {json.dumps(pad.hash('mode=draw'))}")
    page.wait_for_selector(f'.neuron[data-layer="{first.name}"][data-index="{dead[-1]}"]:not([data-knocked-out])')


def test_a_neuron_card_explains_the_drawn_digit(pad, network):
    page = draw_anew(pad, TEMPLATES[0][0])
    pos = next(i for i, l in enumerate(network.layers) if l.kind == "dense")  # (a CNN: the first after its maps)
    layer = network.layers[pos]
    x = network.normalize(model_input(page))
    x = (x if pos == 0 else network.forward(x)[pos - 1]).astype(np.float64).reshape(-1)
    z_all = x @ layer.weights.astype(np.float64) + layer.bias.astype(np.float64)
    unit = int(np.argmax(z_all))  # the most excited first-layer neuron (a relu one may be 0 for most drawings)
    neuron = f'#view .neuron[data-layer="{layer.name}"][data-index="{unit}"]'
    page.click(neuron)
    page.wait_for_selector(f'#neuron-card[data-layer="{layer.name}"][data-index="{unit}"]')
    z = x @ layer.weights[:, unit].astype(np.float64) + float(layer.bias[unit])  # the net input, by hand
    assert float(page.get_attribute("#card-net-input", "data-value")) == pytest.approx(z, abs=1e-5)
    shown_value = page.get_attribute(neuron, "data-activation")
    assert page.get_attribute("#card-activation", "data-value") == shown_value
    draw(page, [[(0.15, 0.5), (0.85, 0.5)]])  # a bar across: the open card follows the drawing
    now = page.get_attribute(neuron, "data-activation")
    assert now != shown_value and page.get_attribute("#card-activation", "data-value") == now
    # the pad cleared, the card stays open on its neuron but shows no values of a digit that is gone
    clear(page)
    page.wait_for_selector(f'#neuron-card[data-layer="{layer.name}"][data-index="{unit}"] #card-waiting')
    assert page.locator("#card-activation").count() == 0
    draw(page, TEMPLATES[0][0])  # and a new digit fills it again
    page.wait_for_selector(f'#neuron-card[data-layer="{layer.name}"][data-index="{unit}"] #card-activation')
    assert page.get_attribute("#card-activation", "data-value") == page.get_attribute(neuron, "data-activation")
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")


def test_switching_between_drawing_and_test_digits(pad, network, testset):
    page = draw_anew(pad, TEMPLATES[3][0])
    drawn = model_input(page)
    assert "mode=draw" in page.evaluate("location.hash")
    page.click("#random-sample")  # back to the test digits
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== ''")
    assert page.is_hidden("#draw-panel")
    view = shown(page)
    check_matches_cpython(view, network, testset)
    page.wait_for_function(f"location.hash === {json.dumps(pad.hash('sample=' + view['sample']))}")  # the URL follows the paint
    page.click("#draw-toggle")  # and to the pad again: the drawing is still there
    page.wait_for_selector("#model-input")
    assert "mode=draw" in page.evaluate("location.hash") and page.is_visible("#draw-pad")
    np.testing.assert_array_equal(model_input(page), drawn)
    check_drawing_matches_cpython(page, network)
    page.click("#draw-toggle")  # the same button leads back to the same test digit
    page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex === '{view['sample']}'")
    assert "mode=draw" not in page.evaluate("location.hash")
    page.go_back()  # history: draw mode again
    page.wait_for_selector("#model-input")
    assert page.is_visible("#draw-pad")


# The robustness curve's progress: how many test digits it has measured (None: not measuring).
MEASURED_JS = """() => { const m = /Measuring: ([\\d,]+) \\//.exec(document.getElementById('robustness-slot').textContent);
  return m ? Number(m[1].replace(/,/g, '')) : null; }"""


def test_idle_work_waits_while_a_stroke_is_drawn(browser, site_server):
    """Idle work (here the robustness curve, measured in idle callbacks) does not run while a stroke is drawn:
    the stroke has every frame. It goes on once the stroke ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # the slowest curve to measure: the steps below take a few seconds of it
    w = watch(context, site_server.url, model=(SHIPPED_CNNS or SHIPPED)[-1])
    page = w.page
    assert w.goto("") == "ready", page.inner_text("#status")
    page.wait_for_function(f"({MEASURED_JS})() > 0", timeout=60_000)  # (it starts once a digit is shown)
    page.click("#draw-toggle")
    page.wait_for_selector("#draw-pad", state="visible")
    before = page.evaluate(MEASURED_JS)
    page.wait_for_timeout(1000)
    going = page.evaluate(MEASURED_JS)
    assert going is not None and going > before  # without a stroke, it goes on
    box = page.locator("#draw-pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    readings, t0 = [], time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < 2.5:
        i += 1
        phase = (i % 20) / 20
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.4 * phase), box["y"] + box["height"] * (0.3 + 0.4 * ((i // 20) % 2)),
                        steps=2)
        if time.perf_counter() - t0 > 0.5:  # (a step under way as the stroke began may end and be shown)
            readings.append(page.evaluate(MEASURED_JS))
    page.mouse.up()
    assert len(readings) > 5 and len(set(readings)) == 1, readings  # held while the stroke was drawn
    page.wait_for_function(f"(n) => {{ const m = ({MEASURED_JS})(); return m === null || m > n; }}", arg=readings[-1],
                           timeout=10_000)  # and on again once it ended
    assert w.errors == [] and w.outside == []
    context.close()


def test_no_outside_requests_and_no_errors(pad):
    assert pad.errors == []
    assert pad.outside == []
