"""End to end: the page reads as a network. The flow between the layers, the weight gallery,
arrow keys, and a layout that holds for every model on a desktop and a phone.

The expected lines come from flow.top_incoming run here in CPython (itself checked against a
plain numpy computation in test_flow.py); the gallery's images are decoded here and compared
with the exported weights.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest

from conftest import SHIPPED, SITE, watch
from pyscript_app.core import network as nw
from pyscript_app.core import flow
from test_gallery import decode_png


def lines(page):
    page.wait_for_selector("#connections")
    return page.eval_on_selector_all(
        "#connections line", "ls => ls.map(l => [l.dataset.from, l.dataset.to, +l.dataset.strength])")


def expected_links(network, testset, index, per_neuron, knocked_out=None):
    x = network.normalize(testset.images[index])
    links = flow.top_incoming(network, x, network.forward(x, knocked_out), per_neuron)
    return {(f"{l.source}:{l.source_index}", f"{l.target}:{l.target_index}"): l.strength for l in links}


def shown_sample(page) -> int:
    return int(page.get_attribute("#input-image", "data-sample-index"))


def test_the_flow_is_each_neurons_strongest_connections(app, network, testset):
    page = app.page
    app.goto(app.hash("sample=21"))
    # the hash changes in the same document: the lines of the digit shown before stay until redrawn
    page.wait_for_function("document.getElementById('connections')?.dataset.sample === '21'")
    per_neuron = int(page.get_attribute("#connections", "data-per-neuron"))
    assert per_neuron == flow.default_per_neuron(network)  # on by default, the model's own default
    assert int(page.input_value("#links-per-neuron")) == per_neuron
    drawn = {(a, b): s for a, b, s in lines(page)}
    expected = expected_links(network, testset, 21, per_neuron)
    assert drawn.keys() == expected.keys()
    for key, s in expected.items():
        assert drawn[key] == pytest.approx(s, rel=1e-5, abs=1e-7)
    # fewer lines per neuron: exactly the strongest one of each
    page.fill("#links-per-neuron", "1")
    page.dispatch_event("#links-per-neuron", "input")
    page.wait_for_function("document.getElementById('connections').dataset.perNeuron === '1'")
    assert {(a, b) for a, b, _ in lines(page)} == expected_links(network, testset, 21, 1).keys()
    # a new digit: the lines follow it
    page.click("#random-sample")
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== '21'")
    index = shown_sample(page)
    page.wait_for_function(f"document.getElementById('connections').dataset.sample === '{index}'")
    assert {(a, b) for a, b, _ in lines(page)} == expected_links(network, testset, index, 1).keys()
    page.fill("#links-per-neuron", str(flow.default_per_neuron(network)))
    page.dispatch_event("#links-per-neuron", "input")


GEOMETRY = """() => {
  const box = n => { const r = n.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const lines = [...document.querySelectorAll('#connections line')].map(l => {
    const svg = l.ownerSVGElement.getBoundingClientRect();
    return [svg.left + +l.getAttribute('x1'), svg.top + +l.getAttribute('y1'),
            svg.left + +l.getAttribute('x2'), svg.top + +l.getAttribute('y2'), l.dataset.from + '>' + l.dataset.to];
  });
  const blocks = [...document.querySelectorAll('#view .neuron, #view h2, #view .sub, #view .verdict, #input-image')]
    .map(n => [...box(n), n.id || n.className || n.tagName]);
  return {lines, blocks};
}"""


def crossings(lines, rects, margin=0.5) -> list[tuple[str, str]]:
    """(line, rectangle) names of every segment that passes through a rectangle's inside (shrunk
    by ``margin``), sampled at 200 points along each segment: dense enough for boxes a few
    pixels wide. Lines are [x1, y1, x2, y2, name], rectangles [left, top, right, bottom, name]."""
    if not lines or not rects:
        return []
    box = np.array([r[:4] for r in rects], dtype=float) + [margin, margin, -margin, -margin]
    t = np.linspace(0.0, 1.0, 200)[:, None]
    out = []
    for line in lines:
        x1, y1, x2, y2 = line[:4]
        x, y = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t  # (200, 1): every sample against every box
        inside = (box[:, 0] < x) & (x < box[:, 2]) & (box[:, 1] < y) & (y < box[:, 3])
        out += [(line[4], rects[k][4]) for k in np.flatnonzero(inside.any(axis=0))]
    return out


def test_crossings_finds_a_segment_through_a_box_and_not_one_beside_it():
    boxes = [[10, 10, 20, 20, "a"], [30, 0, 32, 100, "thin"], [50, 50, 50, 60, "empty"]]
    lines = [[0, 15, 25, 15, "through a"], [0, 25, 25, 25, "beside a"], [0, 5, 100, 5, "through thin"],
             [20.2, 0, 20.2, 40, "on a's edge"], [40, 55, 60, 55, "through empty"]]
    assert crossings(lines, boxes) == [("through a", "a"), ("through thin", "thin")]


@contextlib.contextmanager
def page_at(browser, server, model, viewport, sample):
    """A fresh page of ``model`` at a screen size, showing test digit ``sample`` with its lines drawn."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    w = watch(context, server.url, model=model)
    try:
        assert w.goto(w.hash(f"sample={sample}")) == "ready"
        w.page.wait_for_selector("#connections line")
        yield w
        assert w.errors == [] and w.outside == []
    finally:
        context.close()


# Each line's two ends and the boxes of what it joins: a neuron, or a pixel of the input image.
ENDS = """([rows, cols]) => {
  const box = (name) => {
    const [layer, index] = name.split(':');
    if (layer === 'input') {
      const r = document.getElementById('input-image').getBoundingClientRect(), k = +index;
      const w = r.width / cols, h = r.height / rows;
      return [r.left + (k % cols) * w, r.top + Math.floor(k / cols) * h, r.left + (k % cols + 1) * w,
              r.top + (Math.floor(k / cols) + 1) * h];
    }
    const r = document.querySelector(`#view .neuron[data-layer="${layer}"][data-index="${index}"]`).getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  return [...document.querySelectorAll('#connections line')].map(l => {
    const svg = l.ownerSVGElement.getBoundingClientRect();
    return [svg.left + +l.getAttribute('x1'), svg.top + +l.getAttribute('y1'), svg.left + +l.getAttribute('x2'),
            svg.top + +l.getAttribute('y2'), box(l.dataset.from), box(l.dataset.to)];
  });
}"""


def off_their_neurons(ends) -> list:
    """Lines whose ends are not level with what they join: beside each other (a desktop), each end's height
    lies within its neuron's (or pixel's) box; stacked (a phone), each end's left-right place does."""
    def within(a, b, src, dst, lo, hi):
        return src[lo] - 0.5 <= a <= src[hi] + 0.5 and dst[lo] - 0.5 <= b <= dst[hi] + 0.5

    return [(x1, y1, x2, y2, src, dst) for x1, y1, x2, y2, src, dst in ends
            if not (within(y1, y2, src, dst, 1, 3) or within(x1, x2, src, dst, 0, 2))]


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)])
def test_no_line_is_drawn_over_a_value_a_heading_or_the_digit(browser, site_server, model_id, network, viewport):
    with page_at(browser, site_server, model_id, viewport, 8) as w:
        geometry = w.page.evaluate(GEOMETRY)
        assert geometry["lines"]
        bad = crossings(geometry["lines"], geometry["blocks"])
        assert bad == [], bad[:5]
        # and each line ends at the two neurons it joins
        ends = w.page.evaluate(ENDS, list(network.image_shape))
        assert len(ends) == len(geometry["lines"]) and off_their_neurons(ends) == [], off_their_neurons(ends)[:3]


def test_the_gallery_shows_every_first_layer_neurons_weights(app, network):
    page = app.page
    page.wait_for_selector("#weight-gallery .gthumb")
    items = page.eval_on_selector_all(
        "#weight-gallery .gthumb", "bs => bs.map(b => [+b.dataset.index, b.querySelector('img').src])")
    layer = network.layers[0]
    assert [i for i, _ in items] == list(range(layer.units))
    assert page.get_attribute("#weight-gallery", "data-layer") == layer.name
    limit = float(page.get_attribute("#weight-gallery", "data-limit"))
    for i, url in items:
        img = decode_png(url).astype(int)
        if layer.kind == "conv2d":  # a channel's kernel (kh, kw, input channels, filters) on the grey digit
            w = np.asarray(layer.weights)[:, :, :, i].sum(axis=2)
        else:
            w = layer.weights[:, i].reshape(network.image_shape)
        assert img.shape[:2] == w.shape, i
        strong_pos, strong_neg = w > limit * 0.3, w < -limit * 0.3
        assert (img[strong_pos][:, 0] > img[strong_pos][:, 2]).all(), i
        assert (img[strong_neg][:, 2] > img[strong_neg][:, 0]).all(), i
    # a gallery image opens its neuron's card
    page.click('#weight-gallery .gthumb[data-index="2"]')
    page.wait_for_selector(f'#neuron-card[data-layer="{layer.name}"][data-index="2"]')
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")


def focused(page):
    return page.evaluate("(() => { const a = document.activeElement; return [a.dataset.layer || null, a.dataset.index ? +a.dataset.index : null]; })()")


def test_arrow_keys_reach_every_neuron_of_every_layer(app, network):
    page = app.page
    layers = [layer for layer in network.layers if layer.kind != "flatten"]  # a flatten layer is not drawn
    page.focus(f'#view .neuron[data-layer="{layers[0].name}"][data-index="0"]')
    for pos, layer in enumerate(layers):
        assert focused(page) == [layer.name, 0]
        for i in range(1, layer.units):
            page.keyboard.press("ArrowDown")
            assert focused(page) == [layer.name, i]
        page.keyboard.press("ArrowDown")  # the last: stays
        assert focused(page) == [layer.name, layer.units - 1]
        page.keyboard.press("Home")
        assert focused(page) == [layer.name, 0]
        if pos + 1 < len(layers):
            page.keyboard.press("ArrowRight")
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert focused(page) == [layers[-2].name, layers[-2].units - 1]
    # one Tab stop per layer: Tab from a layer's neuron leaves the layer
    page.focus(f'#view .neuron[data-layer="{layers[0].name}"][data-index="0"]')
    page.keyboard.press("Tab")
    assert focused(page)[0] != layers[0].name or focused(page)[1] == 0


def test_the_skip_button_reaches_the_answer(app, network):
    page = app.page
    page.focus(".skip")
    assert page.evaluate("document.activeElement.getBoundingClientRect().top >= 0")  # shown while focused
    page.keyboard.press("Enter")
    assert focused(page) == [network.layers[-1].name, 0]


LAYOUT = """() => {
  const W = document.documentElement.clientWidth;
  const out = [];
  for (const n of document.querySelectorAll('body *')) {
    const r = n.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(n).visibility === 'hidden') continue;
    if (n.closest('.skip, #tour, [hidden], details:not([open]) > .term-body, svg')) continue;
    if (r.right > W + 1 || r.left < -1) out.push([n.tagName + '#' + n.id + '.' + n.className, r.left, r.right]);
  }
  const texts = [...document.querySelectorAll('h1, h2, h3, .sub, .tagline, #view .neuron span, .prob, .digit-label, .verdict, label, button, dt, dd, figcaption, .legend .ticks span')]
    .filter(n => { const r = n.getBoundingClientRect(); return r.width && r.height && !n.closest('[hidden], .skip, #tour, details:not([open]) > .term-body'); })
    .map(n => [n, n.getBoundingClientRect()]);
  const overlaps = [];
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
    const [a, ra] = texts[i], [b, rb] = texts[j];
    if (a.contains(b) || b.contains(a)) continue;
    const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left), y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (x > 1 && y > 1) overlaps.push([a.tagName + '.' + a.className + ':' + a.textContent.slice(0, 20), b.tagName + '.' + b.className + ':' + b.textContent.slice(0, 20)]);
  }
  return {scroll: document.documentElement.scrollWidth, width: W, outside: out.slice(0, 8), overlaps: overlaps.slice(0, 8)};
}"""


# a map layer's caption gives each map's rows x columns (checked against its images' shape), not a grid's
CAPTIONS = """() => [...document.querySelectorAll('#view .layer:not(.output):not(.maps)')].map(l => [
  l.querySelector('.sub').innerText,
  [...l.querySelectorAll('.neuron')].map(n => Math.round(n.getBoundingClientRect().left)),
  [...l.querySelectorAll('.neuron')].map(n => Math.round(n.getBoundingClientRect().top))])"""


MAP_CAPTIONS = """() => [...document.querySelectorAll('#view .layer.maps')].map(l => [
  l.querySelector('.sub').innerText, [...l.querySelectorAll('.neuron .fmap-img')].map(m => m.dataset.shape)])"""


@pytest.mark.parametrize("viewport", [(1400, 900), (1920, 1080), (390, 844)])
@pytest.mark.parametrize("model", SHIPPED)
def test_layout_fits_every_screen(browser, site_server, model, viewport):
    with page_at(browser, site_server, model, viewport, 4) as w:
        w.page.wait_for_selector("#weight-gallery")
        found = w.page.evaluate(LAYOUT)
        assert found["scroll"] <= found["width"], f"the page scrolls sideways: {found}"
        assert found["outside"] == [], found["outside"]
        assert found["overlaps"] == [], found["overlaps"]
        # each layer's caption says the grid that is drawn (or no grid at all)
        for caption, xs, ys in w.page.evaluate(CAPTIONS):
            shape = re.search(r"(\d+)\u00d7(\d+)", caption)
            if shape:
                assert (int(shape[1]), int(shape[2])) == (len(set(ys)), len(set(xs))), caption
        for caption, shapes in w.page.evaluate(MAP_CAPTIONS):
            shape = re.search(r"(\d+)\u00d7(\d+)", caption)
            assert shapes and set(shapes) == {f"{shape[1]},{shape[2]}"}, caption


# Whatever in an open neuron card sticks out of the card sideways, or is cut off in its box.
CARD_LAYOUT = """() => {
  const card = document.getElementById('neuron-card').getBoundingClientRect();
  const out = [...document.querySelectorAll('#neuron-card *')].filter((n) => {
    const r = n.getBoundingClientRect();
    return r.width && r.height && !n.closest('details:not([open]) > .term-body') && (r.right > card.right + 1 || r.left < card.left - 1);
  }).map((n) => n.tagName + '.' + n.className + ':' + n.textContent.slice(0, 20));
  const cut = [...document.querySelectorAll('#neuron-card dd')].filter((d) => d.scrollWidth > d.clientWidth + 1).map((d) => d.textContent);
  // a number split over two lines: a word of a fact whose text boxes lie on more than one line
  const split = [];
  for (const d of document.querySelectorAll('#neuron-card dd')) {
    const text = d.firstChild;
    if (!text || text.nodeType !== Node.TEXT_NODE) continue;
    for (const m of text.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(text, m.index);
      range.setEnd(text, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (tops.size > 1) split.push('split: ' + m[0]);
    }
  }
  return out.slice(0, 8).concat(cut, split);
}"""


# The view's panels that are not wholly in sight (the view scrolls sideways, or a panel is past the screen's edge).
IN_SIGHT = """() => {
  const view = document.getElementById('view'), W = document.documentElement.clientWidth;
  const out = view.scrollWidth > view.clientWidth + 1 ? [`view ${view.scrollWidth} > ${view.clientWidth}`] : [];
  for (const p of view.querySelectorAll(':scope > .panel')) {
    const r = p.getBoundingClientRect();
    if (r.left < -1 || r.right > Math.min(W, view.getBoundingClientRect().right) + 1) out.push(`${p.id} ${r.left}..${r.right}`);
  }
  return out;
}"""


@pytest.mark.parametrize("viewport", [(1400, 900), (1366, 768), (1280, 800)])
def test_every_kind_of_neuron_card_fits_its_column(browser, site_server, viewport):
    """The first neuron of every layer of every shipped model, its card opened on a laptop's screen: its
    facts (activation, net input, bias) and everything else stay inside the card, and no number is split
    over two lines. Beside the card the whole network stays in sight, its output layer (where a knock-out
    shows) included: the view does not scroll sideways. Nor does it without a card."""
    with page_at(browser, site_server, None, viewport, 4) as w:
        for model in SHIPPED:
            w.page.evaluate("m => { location.hash = `model=${m}&sample=4`; }", model)
            w.page.wait_for_function("m => document.getElementById('model-picker').value === m && document.querySelector('#view .neuron')", arg=model)
            assert w.page.evaluate(IN_SIGHT) == [], model
            firsts = w.page.evaluate("[...document.querySelectorAll('#view .layer')].map((l) => l.querySelector('.neuron')).filter(Boolean).map((n) => [n.dataset.layer, n.dataset.index])")
            assert len(firsts) >= 2, model
            for layer, index in firsts:
                w.page.evaluate("h => { location.hash = h; }", f"model={model}&sample=4&neuron={layer}:{index}")
                w.page.wait_for_selector(f'#neuron-card[data-layer="{layer}"][data-index="{index}"] dd')
                assert w.page.evaluate(CARD_LAYOUT) == [], (model, layer)
                assert w.page.evaluate(IN_SIGHT) == [], (model, layer)


FIT_STEPS = ["", "narrow", "smaller", "small"]  # #view[data-fit], from roomy to tightest


def test_the_view_narrows_only_where_its_panels_would_not_fit(browser, site_server):
    """The cnn's seven panels fit a wide screen as they are; on a laptop of 1,280 px, and narrower still
    with a neuron card beside them, their margins, gutters and pictures narrow a step at a time
    (#view[data-fit]) rather than the view scrolling sideways, and the lines join the neurons where they
    now are. Back on the wide screen the view is as it was."""
    with page_at(browser, site_server, "cnn", (1920, 1000), 4) as w:
        shape = list(nw.read_model_dir(SITE / "models" / "cnn").image_shape)
        fit = "() => document.getElementById('view').dataset.fit || ''"
        assert w.page.evaluate(fit) == "" and w.page.evaluate(IN_SIGHT) == []
        w.page.set_viewport_size({"width": 1280, "height": 800})
        w.page.wait_for_function(f"() => ({fit})() !== ''")
        assert w.page.evaluate(IN_SIGHT) == []
        plain = w.page.evaluate(fit)
        w.page.evaluate("location.hash = 'model=cnn&sample=4&neuron=hidden_1:3'")
        w.page.wait_for_selector("#neuron-card dd")
        w.page.wait_for_function("() => document.querySelector('main').dataset.inside === 'true'")
        assert w.page.evaluate(IN_SIGHT) == []
        assert FIT_STEPS.index(w.page.evaluate(fit)) >= FIT_STEPS.index(plain)
        w.page.wait_for_selector("#connections line")
        ends = w.page.evaluate(ENDS, shape)
        assert ends and off_their_neurons(ends) == [], off_their_neurons(ends)[:3]
        # narrower still, the card goes below the view rather than the view scrolling sideways
        w.page.set_viewport_size({"width": 1180, "height": 800})
        w.page.wait_for_function("() => document.querySelector('main').getAttribute('data-side') === 'below'")
        assert w.page.evaluate(IN_SIGHT) == []
        view, card = (w.page.locator(s).bounding_box() for s in ("#view", "#neuron-card"))
        assert card["y"] >= view["y"] + view["height"], (view, card)
        w.page.wait_for_selector("#connections line")
        ends = w.page.evaluate(ENDS, shape)
        assert ends and off_their_neurons(ends) == [], off_their_neurons(ends)[:3]
        w.page.set_viewport_size({"width": 1920, "height": 1000})
        w.page.wait_for_function(f"() => ({fit})() === '' && !document.querySelector('main').hasAttribute('data-side')")
        assert w.page.evaluate(IN_SIGHT) == []
        view, card = (w.page.locator(s).bounding_box() for s in ("#view", "#neuron-card"))
        assert card["x"] >= view["x"] + view["width"], (view, card)  # beside it again



def test_the_lines_follow_the_panels_when_the_side_column_opens_or_closes(browser, site_server):
    """The error explorer opened on a laptop's screen narrows the view (the side column takes room) and
    moves the panels: the lines are drawn again on the neurons where they now are, and no line left where
    they were keeps the view wider than its column. The same when it closes."""
    with page_at(browser, site_server, "deep", (1400, 900), 4) as w:
        shape = list(nw.read_model_dir(SITE / "models" / "deep").image_shape)
        for inside in ("true", "false"):
            w.page.click("#errors-toggle")
            w.page.wait_for_function("v => document.querySelector('main').dataset.inside === v", arg=inside)
            w.page.wait_for_selector("#connections line")
            assert w.page.evaluate(IN_SIGHT) == [], inside
            ends = w.page.evaluate(ENDS, shape)
            assert ends and off_their_neurons(ends) == [], (inside, off_their_neurons(ends)[:3])


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)])
def test_train_mode_fits_the_screen_too(browser, site_server, viewport):
    with page_at(browser, site_server, None, viewport, 4) as w:
        w.page.evaluate("location.hash = '#mode=train&sample=4'")
        w.page.wait_for_selector("#train-panel:not([hidden])")
        w.page.wait_for_selector("#train-start:not([disabled])", timeout=90_000)  # the training digits are in
        found = w.page.evaluate(LAYOUT)
        assert found["scroll"] <= found["width"], f"the page scrolls sideways: {found}"
        assert found["outside"] == [], found["outside"]
        assert found["overlaps"] == [], found["overlaps"]
        # the settings took room: the lines are drawn again where the neurons now are, the view not left wider
        w.page.wait_for_selector("#connections line")
        assert w.page.evaluate(IN_SIGHT) == []
        # a CNN of two conv layers, after one step: its maps too fit beside the settings
        w.page.evaluate("location.hash = '#mode=train&sample=4&conv=8x3p,16x3p&hidden=32'")
        w.page.wait_for_function("() => document.getElementById('train-progress').dataset.steps === '0'")
        w.page.click("#train-step:not([disabled])")
        w.page.wait_for_selector("#view #layer-conv_2 .fmaps .neuron")
        found = w.page.evaluate(LAYOUT)
        assert found["scroll"] <= found["width"] and found["outside"] == [] and found["overlaps"] == [], found
        assert w.page.evaluate(IN_SIGHT) == []
        # and the deep model with a neuron card too (beside the view where the panels fit, else below it)
        w.page.evaluate("location.hash = '#model=deep&mode=train&sample=4&neuron=hidden_1:3'")
        w.page.wait_for_selector("#neuron-card[data-layer='hidden_1'] dd")
        w.page.wait_for_selector("#view #layer-hidden_3 .neuron")
        w.page.wait_for_function("() => document.querySelector('main').dataset.inside === 'true'")
        assert w.page.evaluate(IN_SIGHT) == []


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)])
def test_the_atlas_fits_the_screen_in_line_with_the_panels_above(browser, site_server, viewport):
    with page_at(browser, site_server, None, viewport, 4) as w:
        w.page.evaluate("location.hash = '#mode=atlas&sample=4'")
        w.page.wait_for_selector("#atlas[data-state='ready']", timeout=90_000)
        found = w.page.evaluate(LAYOUT)
        assert found["scroll"] <= found["width"] and found["outside"] == [] and found["overlaps"] == [], found
        lefts = w.page.evaluate("['why', 'atlas'].map((id) => document.getElementById(id).getBoundingClientRect().left)")
        assert abs(lefts[0] - lefts[1]) <= 1, lefts


@pytest.mark.parametrize("model", SHIPPED)
def test_every_neuron_is_a_finger_wide_on_a_phone(browser, site_server, model):
    with page_at(browser, site_server, model, (390, 844), 4) as w:
        sizes = w.page.eval_on_selector_all(
            "#view .neuron", "ns => ns.map(n => { const r = n.getBoundingClientRect(); return [r.width, r.height]; })")
        assert sizes and min(min(s) for s in sizes) >= 44, min(sizes)


GLIDE_JS = """async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const look = () => [document.getElementById('view').classList.contains('glide'),
                      getComputedStyle(document.querySelector('#view .bars .bar > span')).transitionDuration,
                      [...document.querySelectorAll('#view .grid')].map(
                        (g) => [g.classList.contains('dense'), getComputedStyle(g.querySelector('.neuron')).transitionDuration])];
  await sleep(500);
  document.getElementById('random-sample').click();  // after a pause
  const slow = look();
  document.getElementById('random-sample').click();  // at once after it
  const quick = look();
  return [slow, quick];
}"""


def test_a_new_digit_glides_unless_it_comes_in_a_quick_run(app):
    page = app.page
    app.goto(app.hash("sample=5"))
    slow, quick = page.evaluate(GLIDE_JS)
    # after a pause the bars and colours glide to the new digit's (a dense grid's cells change at once)
    assert slow[:2] == [True, "0.28s, 0.28s"]
    assert slow[2] and all(duration == ("0s" if dense else "0.28s") for dense, duration in slow[2])
    # the next, at once: shown as it is
    assert quick[:2] == [False, "0s"] and all(duration == "0s" for _, duration in quick[2])
    page.emulate_media(reduced_motion="reduce")
    try:
        slow, _ = page.evaluate(GLIDE_JS)
        assert slow[:2] == [True, "0s"] and all(duration == "0s" for _, duration in slow[2])  # "reduce motion": never
    finally:
        page.emulate_media(reduced_motion="no-preference")


# A click, then two animation frames: what #view shows at once and what its lines are of then.
FRAMES_JS = """async () => {
  const sample = () => document.getElementById('input-image').dataset.sampleIndex;
  const lines = () => document.getElementById('connections')?.dataset.sample;
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const before = [sample(), lines()];
  document.getElementById('random-sample').click();
  const atOnce = sample();
  await frame();
  await frame();
  return [before, atOnce, lines(), document.querySelectorAll('#connections line').length];
}"""


def test_a_clicks_values_show_at_the_next_frame_and_its_lines_at_the_one_after(app, network, testset):
    page = app.page
    app.goto(app.hash("sample=5"))
    page.wait_for_function("document.getElementById('connections')?.dataset.sample === '5'")
    before, at_once, lines_of, count = page.evaluate(FRAMES_JS)
    assert before == ["5", "5"]
    assert at_once != "5"  # the values: in the DOM when the click's handler returns, painted at the next frame
    assert lines_of == at_once  # the lines: drawn for that digit by the end of the frame after
    expected = expected_links(network, testset, int(at_once), flow.default_per_neuron(network))
    assert count == len(expected)
