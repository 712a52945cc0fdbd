"""The page: wires DOM events to the numpy core. The only module that touches the browser.

Everything computed here comes from network.py / render.py / state.py, the
same modules pytest runs in CPython. This file only fetches files, sets
innerHTML and attributes, and listens for events.
"""

import asyncio
import json
import math
import time

import js
import pyodide_js
from pyodide.ffi import create_proxy, to_js
from pyscript import document, window

STAGES = ("runtime", "numpy", "model", "data")


def el(element_id):
    return document.getElementById(element_id)


def set_status(state, text, stage=None):
    status = el("status")
    if status.dataset.state == "error":
        return  # the first error stays: loader.js may already have named a file that failed to load
    status.dataset.state = state
    if stage is not None:
        status.dataset.stage = stage
        el("progress").value = STAGES.index(stage) + 1
    el("status-text").textContent = text


class LoadError(Exception):
    """A file the page needs could not be fetched; the message names it."""


async def fetch_bytes(url):
    try:
        response = await js.fetch(url)
    except Exception as exc:  # network failure: the browser gives a TypeError
        raise LoadError(f"{url} could not be fetched ({exc})") from None
    if not response.ok:
        raise LoadError(f"{url} could not be loaded (HTTP {response.status} {response.statusText})")
    buffer = await response.arrayBuffer()
    return buffer.to_bytes()


class Page:
    """The running page: the loaded network and test set, and what is shown."""

    def __init__(self, nw, render, state, network, testset):
        self.nw, self.render, self.state_mod = nw, render, state
        self.network, self.testset = network, testset
        self.units = {layer.name: layer.units for layer in network.layers}
        self.rng = __import__("numpy").random.default_rng()
        self.shown = None
        self.shown_view = None  # the view #view shows (None in draw mode)
        self.inside = None  # Inside (look-inside views), set by start()
        self.pad = None  # the drawing pad (Pad), wired once the page runs
        self.url_pending = None  # a URL (hash) shown but not yet written: see random_sample
        self.url_timer = None
        self.write_url_proxy = create_proxy(self.write_url)

    def current_state(self, write_url=True):
        """What the page shows. A URL still to be written is the state: it is written first
        (so a change made next comes after it in the history), unless ``write_url`` is False."""
        if write_url:
            self.write_url()
        text = self.url_pending if self.url_pending is not None else str(window.location.hash)
        return self.state_mod.parse(text, self.units, len(self.testset))

    def write_url(self, *_):
        if self.url_pending is not None:
            url, self.url_pending = self.url_pending, None
            window.history.pushState(None, "", url)  # a new history entry (Back returns), no hashchange

    def on_hashchange(self, *_):
        self.url_pending = None  # the URL moved on (Back, a link, a typed hash): it says what to show
        self.show()

    def show(self, *_, state=None):
        t0 = time.perf_counter()
        state = self.current_state() if state is None else state
        if self.pad is not None and self.pad.follow(state):  # draw mode: the pad shows the view
            self.shown = self.shown_view = None
            return
        index = state.sample if state.sample is not None else 0
        key = (index, state.neuron, tuple(sorted((k, tuple(v)) for k, v in state.knocked_out.items())))
        if key == self.shown:
            return
        self.shown = key
        view = self.render.view_for_sample(self.network, self.testset, index, state.knocked_out, state.neuron)
        draw_view(self.render, self.network, view)
        self.shown_view = view
        updated(t0)
        if self.inside is not None:
            self.inside.update(state, view)

    def random_sample(self, *_):
        state = self.current_state(write_url=False)
        index = state.sample
        while index == state.sample:
            index = int(self.rng.integers(len(self.testset)))
        state = state.with_(sample=index, mode="sample")
        self.show(state=state)
        # The URL (a new history entry) follows once the clicking pauses. Chromium's same-document
        # navigation, after every paint, slowed the next click (measured: click p95 17.5 ms, 10.4
        # without it; docs/benchmarks.md). A quick run of clicks is then one Back step, like
        # typing is one undo step. Anything that reads the state writes it first.
        self.url_pending = self.state_mod.format(state)
        window.clearTimeout(self.url_timer)  # (None, before the first click: no timer, no-op)
        self.url_timer = window.setTimeout(self.write_url_proxy, self.URL_DELAY_MS)

    URL_DELAY_MS = 300
    CLICK_WARM_UP_ROUNDS = 30

    def warm_up_clicks(self):
        """Run the click path in idle time, a round a step, changing nothing on screen.

        A round computes a random sample's view and its patch (what a click computes) and
        applies the patch of the view already shown (patch.js then writes nothing but the
        input image, identical). The first clicks after start-up would otherwise pay for
        that code's first runs (measured: the first ~10 clicks 30 to 80 ms, later ~10 ms).
        Stops early in draw mode. #view gets data-warm="done" when it is over.
        """
        for _ in range(self.CLICK_WARM_UP_ROUNDS):
            if self.shown_view is None:
                break
            state = self.current_state(write_url=False)
            index = int(self.rng.integers(len(self.testset)))
            view = self.render.view_for_sample(self.network, self.testset, index, state.knocked_out, state.neuron)
            self.render.view_patch(self.network, view)
            draw_view(self.render, self.network, self.shown_view)
            yield
        el("view").dataset.warm = "done"


def in_idle_time(steps, then=None):
    """Advance the generator ``steps`` one step per idle period of the page, then call ``then``."""

    def step(*_):
        if next(steps, StopIteration) is StopIteration:
            if then is not None:
                then()
        else:
            schedule()

    proxy = create_proxy(step)

    def schedule():
        if hasattr(window, "requestIdleCallback"):
            window.requestIdleCallback(proxy, _js_object(timeout=1000))
        else:
            window.setTimeout(proxy, 20)

    schedule()


def draw_view(render, network, view):
    """Show ``view`` in #view: in place when #view shows a view of the same shape (one call
    into the page, site/patch.js), else by rendering it whole (keeping a neuron's focus)."""
    box, apply_patch = el("view"), getattr(window, "nnvApplyPatch", None)
    if apply_patch is not None and apply_patch(box, to_js(render.view_patch(network, view).encode())):
        return
    focused = document.activeElement
    refocus = (focused.dataset.layer, focused.dataset.index) if focused and focused.classList.contains("neuron") else None
    box.innerHTML = render.network_view(network, view)
    if refocus:
        again = document.querySelector(f'.neuron[data-layer="{refocus[0]}"][data-index="{refocus[1]}"]')
        if again:
            again.focus()


def updated(t0):
    """Record an update of #view: its Python time (data-update-ms, which tools/bench.py reads)."""
    el("view").setAttribute("data-update-ms", f"{(time.perf_counter() - t0) * 1000:.3f}")


class Pad:
    """The drawing pad (draw mode): strokes go on a transparent canvas; once per
    animation frame the canvas is read back, preprocessed and shown.

    Strokes are drawn in white with a round brush; the pad's black is CSS, not
    pixels, so the canvas's alpha channel is the ink (what preprocess reads).
    """

    BRUSH = 1 / 12  # brush diameter, as a fraction of the pad's side
    CLEAR_KEYS = ("c", "C", "Delete")

    def __init__(self, page):
        import numpy as np

        from pyscript_app.preprocess import preprocess

        self.page, self.np, self.preprocess = page, np, preprocess
        self.canvas = el("draw-pad")
        options = to_js({"willReadFrequently": True}, dict_converter=js.Object.fromEntries)
        self.ctx = self.canvas.getContext("2d", options)
        self.last = None  # the stroke's last point (pad pixels), None between strokes
        self.screen_box = (0.0, 0.0, 1.0, 1.0)  # the pad's left, top and pad pixels per CSS pixel, at stroke start
        self.dirty = self.frame_pending = False
        self.proxies = []
        for target, kind, handler in (
            (self.canvas, "pointerdown", self.down),
            (self.canvas, "pointermove", self.move),
            (self.canvas, "pointerup", self.up),
            (self.canvas, "pointercancel", self.up),
            (el("clear-pad"), "click", self.clear),
            (el("draw-toggle"), "click", self.toggle),
            (document, "keydown", self.key),
        ):
            self.proxies.append(create_proxy(handler))
            target.addEventListener(kind, self.proxies[-1])
        self.frame_proxy = create_proxy(self.frame)
        el("draw-toggle").disabled = False

    # --- mode
    def follow(self, state):
        """Show or hide the pad for ``state``; in draw mode show the drawing and return True."""
        drawing = state.mode == "draw"
        document.body.dataset.mode = state.mode
        el("draw-panel").hidden = not drawing
        el("draw-toggle").textContent = "Back to test digits" if drawing else "Draw your own digit"
        if drawing:
            self.update(state)
        return drawing

    def toggle(self, *_):
        state = self.page.current_state()
        window.location.hash = self.page.state_mod.format(state.with_(mode="sample" if state.mode == "draw" else "draw"))

    # --- strokes
    def point(self, event):
        """The event's position in pad pixels (the pad's place on screen is read once per stroke)."""
        left, top, sx, sy = self.screen_box
        return (event.clientX - left) * sx, (event.clientY - top) * sy

    def down(self, event):
        if event.pointerType == "mouse" and event.button != 0:
            return
        event.preventDefault()
        self.canvas.setPointerCapture(event.pointerId)
        rect = self.canvas.getBoundingClientRect()
        self.screen_box = (rect.left, rect.top, self.canvas.width / rect.width, self.canvas.height / rect.height)
        ctx, (x, y) = self.ctx, self.point(event)
        ctx.fillStyle = ctx.strokeStyle = "#fff"
        ctx.lineWidth = self.canvas.width * self.BRUSH
        ctx.lineCap = ctx.lineJoin = "round"
        ctx.beginPath()
        ctx.arc(x, y, ctx.lineWidth / 2, 0, math.tau)
        ctx.fill()
        self.last = (x, y)
        self.changed()

    def move(self, event):
        if self.last is None:
            return
        event.preventDefault()
        moves = event.getCoalescedEvents() if hasattr(event, "getCoalescedEvents") else None
        ctx = self.ctx
        ctx.beginPath()
        ctx.moveTo(*self.last)
        for e in moves if moves and moves.length else [event]:
            self.last = self.point(e)
            ctx.lineTo(*self.last)
        ctx.stroke()
        self.changed()

    def up(self, *_):
        self.last = None

    def clear(self, *_):
        self.ctx.clearRect(0, 0, self.canvas.width, self.canvas.height)
        self.last = None
        if self.page.current_state().mode == "draw":
            self.update()

    def key(self, event):
        target = event.target
        typing = target is not None and (str(target.tagName) in ("INPUT", "TEXTAREA", "SELECT") or target.isContentEditable)
        if (event.key in self.CLEAR_KEYS and not (event.ctrlKey or event.metaKey or event.altKey or typing)
                and self.page.current_state().mode == "draw"):
            event.preventDefault()
            self.clear()

    # --- once per frame: read, preprocess, show
    def changed(self):
        self.dirty = True
        if not self.frame_pending:
            self.frame_pending = True
            js.requestAnimationFrame(self.frame_proxy)

    def frame(self, *_):
        self.frame_pending = False
        if self.dirty and self.page.current_state().mode == "draw":
            self.update()

    def read(self):
        w, h = self.canvas.width, self.canvas.height
        data = self.ctx.getImageData(0, 0, w, h).data.to_bytes()
        return self.np.frombuffer(data, self.np.uint8).reshape(h, w, 4)

    def update(self, state=None):
        t0 = time.perf_counter()
        self.dirty = False
        page, render = self.page, self.page.render
        state = state or page.current_state()
        pad = self.read()
        pre = self.preprocess(pad)
        view = None if pre is None else render.view_for_drawing(page.network, pre.centred, state.knocked_out, state.neuron)
        if view is None:
            el("view").innerHTML = render.empty_drawing_view(page.network)
        else:
            draw_view(render, page.network, view)
        el("pad-reading").innerHTML = render.pad_reading(page.network, view)
        el("inspector").innerHTML = render.inspector(pad, pre, page.network.normalization)
        el("draw-panel").dataset.empty = "true" if pre is None else "false"
        updated(t0)
        if view is not None and page.inside is not None:  # the neuron card etc. follow the drawing too
            page.inside.update(state, view)


async def start():
    set_status("loading", "Loading numpy…", "numpy")
    try:
        await pyodide_js.loadPackage("numpy", checkIntegrity=True)
    except Exception as exc:
        raise LoadError(f"numpy could not be loaded from vendor/pyodide ({exc})") from None
    from pyscript_app import network as nw
    from pyscript_app import render, state

    set_status("loading", "Loading the model and the test digits…", "model")
    manifest = nw.parse_manifest(await fetch_bytes(_join("model/", nw.MANIFEST_NAME)))
    model_names = nw.model_files(manifest)  # paths relative to the manifest's folder, like the data's
    data_task = asyncio.ensure_future(fetch_bytes(_join("model/", nw.dataset_files(manifest)[0])))
    blobs = await asyncio.gather(*[fetch_bytes(_join("model/", f)) for f in model_names])
    network = nw.build_network(manifest, dict(zip(model_names, blobs)))
    set_status("loading", "Loading the 10,000 MNIST test digits…", "data")
    testset = nw.build_testset(manifest, await data_task)

    page = Page(nw, render, state, network, testset)
    page.inside = Inside(page)  # look inside (issue 5)
    page.pad = Pad(page)
    page.show()
    window.addEventListener("hashchange", create_proxy(page.on_hashchange))
    button = el("random-sample")
    button.addEventListener("click", create_proxy(page.random_sample))
    button.disabled = False
    el("facts").innerHTML = render.model_facts(manifest)
    page.inside.wire()
    from pyscript_app import tour_page

    page.tour = tour_page.start()
    document.body.dataset.ready = "true"
    set_status("ready", "Ready: click a button, or any neuron.")
    # In idle time: the click path first (clicks are what a visitor does first), then the first layer.
    window.setTimeout(create_proxy(lambda *_: in_idle_time(
        page.warm_up_clicks(), then=lambda: in_idle_time(page.inside.warm_up()))), 300)
    return page


# ===========================================================================
# Look inside (issue 5): neuron cards, connections, knock-outs, error explorer.
# All numbers come from explain.py and all markup from render_inside.py; this
# only reads the state / element positions, sets innerHTML and listens.


def _js_object(**options):
    """A plain JS object (a Python dict would arrive as a Map)."""
    return js.JSON.parse(json.dumps(options))


def _rerender(container, markup):
    """Replace a container's content, keeping focus on the element with the same data-focus-key."""
    active = document.activeElement
    key = active.getAttribute("data-focus-key") if active is not None and container.contains(active) else None
    container.innerHTML = markup
    if key:
        again = container.querySelector(f'[data-focus-key="{key}"]')
        if again is not None:
            again.focus()


class Inside:
    def __init__(self, page):
        from pyscript_app import explain, render_inside

        self.page, self.explain, self.ri = page, explain, render_inside
        self.network, self.testset = page.network, page.testset
        self.state = self.view = None
        self.connections = False
        self.errors_open = False
        self.cell = None  # (true, predicted) of the selected confusion-matrix cell
        self.errors_drawn = None  # (knock-out key, cell) the explorer shows
        self.focus_card = False  # move focus into the card when it is next drawn
        self.card_key = None  # (layer, index) of the open card
        self.ko_drawn = None  # the knock-out summary the page shows
        self.hovered = None

    # -- state: everything shareable goes through the URL hash
    def go(self, **changes):
        state = self.page.current_state().with_(**changes)
        window.location.hash = self.page.state_mod.format(state)  # the hashchange listener draws it

    def wire(self):
        document.addEventListener("click", create_proxy(self.on_click))
        document.addEventListener("keydown", create_proxy(self.on_keydown))
        view = el("view")
        view.addEventListener("pointerover", create_proxy(self.on_hover))
        view.addEventListener("pointerout", create_proxy(self.on_unhover))
        view.addEventListener("focusin", create_proxy(self.on_hover))
        view.addEventListener("focusout", create_proxy(self.on_unhover))
        window.addEventListener("resize", create_proxy(lambda *_: self.connections and self.draw_connections()))
        for ident in ("connections-toggle", "errors-toggle"):
            el(ident).disabled = False

    def warm_up(self):
        """Run the first layer over the 10,000 test digits, one block a step (start() runs
        the steps in idle time, after Page.warm_up_clicks).

        That pass is what a first confusion matrix or first-layer card
        would otherwise wait for (explain.TestsetCache.first_layer_blocks).
        #inside gets data-warm="done" and data-warm-ms (Python time of the
        steps) when it is over.
        """
        blocks = self.explain.cache_for(self.network, self.testset).first_layer_blocks()
        spent = 0.0
        while True:
            t0 = time.perf_counter()
            done = next(blocks, None)
            spent += time.perf_counter() - t0
            if done is None:
                break
            yield
        box = el("inside")
        box.dataset.warmMs = f"{spent * 1000:.3f}"
        box.dataset.warm = "done"

    # -- drawing, after every view update
    def update(self, state, view):
        self.state, self.view = state, view
        self.draw_card()
        self.draw_knockouts()
        if self.connections:
            self.draw_connections()
        if self.errors_open:
            self.draw_errors()

    def draw_card(self):
        slot = el("card-slot")
        neuron = self.state.neuron
        if neuron is None:
            if self.card_key is not None:
                had_focus = slot.contains(document.activeElement)
                slot.innerHTML = ""
                closed, self.card_key = self.card_key, None
                if had_focus:  # back to the neuron the card belonged to
                    self.focus_neuron(closed)
            return
        _rerender(slot, self.ri.neuron_card(self.network, self.testset, self.view, *neuron))
        self.card_key = neuron
        if self.focus_card:
            self.focus_card = False
            el("neuron-card").focus()  # and into view

    def focus_neuron(self, key):
        target = document.querySelector(f'#view .neuron[data-layer="{key[0]}"][data-index="{key[1]}"]')
        if target is not None:
            target.focus()

    def draw_knockouts(self):
        summary = self.ri.knockout_summary(self.network, self.state.knocked_out)
        if summary == self.ko_drawn:  # every click comes here: leave the page alone if nothing changed
            return
        self.ko_drawn = summary
        el("ko-summary").textContent = summary
        reset = el("reset-network")
        reset.hidden = not summary
        reset.disabled = not summary

    def draw_connections(self):
        view = el("view")
        old = el("connections")
        if old is not None:
            old.remove()
        if not self.connections:
            return
        origin = view.getBoundingClientRect()
        dx, dy = view.scrollLeft - origin.left, view.scrollTop - origin.top

        def box(node):
            r = node.getBoundingClientRect()
            return (r.left + dx, r.top + dy, r.width, r.height)

        boxes = {}
        for node in view.querySelectorAll(".neuron"):
            boxes.setdefault(node.dataset.layer, {})[int(node.dataset.index)] = box(node)
        boxes = {name: [b[i] for i in sorted(b)] for name, b in boxes.items()}
        image = el("input-image")
        svg = self.ri.connections_svg(
            self.network, self.view, boxes, (view.scrollWidth, view.scrollHeight), box(image) if image else None
        )
        view.insertAdjacentHTML("beforeend", svg)
        if self.hovered:
            self.highlight(self.hovered)

    def draw_errors(self, force=False):
        ko = self.state.knocked_out
        key = (self.explain.knockout_key(self.network, ko), self.cell)
        current = self.view.sample_index
        if key == self.errors_drawn and not force:
            for thumb in el("error-explorer").querySelectorAll(".cthumb"):
                if thumb.dataset.sample == str(current):
                    thumb.setAttribute("aria-current", "true")
                else:
                    thumb.removeAttribute("aria-current")
            return
        cache = self.explain.cache_for(self.network, self.testset)
        cached = cache.is_cached(ko)
        t0 = time.perf_counter()
        cm = self.explain.confusion_matrix(self.network, self.testset, ko)
        ms = (time.perf_counter() - t0) * 1000
        full = self.explain.confusion_matrix(self.network, self.testset)
        box = el("error-explorer")
        _rerender(box, self.ri.error_explorer(self.network, self.testset, cm, full, ko, ms, self.cell, current))
        el("confusion-matrix").dataset.cached = "true" if cached else "false"
        box.dataset.renderMs = f"{(time.perf_counter() - t0) * 1000:.3f}"  # matrix + markup + DOM
        self.errors_drawn = key

    def toggle_errors(self, open_=None):
        self.errors_open = (not self.errors_open) if open_ is None else open_
        box, button = el("error-explorer"), el("errors-toggle")
        box.hidden = not self.errors_open
        button.setAttribute("aria-expanded", "true" if self.errors_open else "false")
        if self.errors_open:
            self.draw_errors(force=True)
            el("errors-title").focus()
        else:
            button.focus()

    def toggle_connections(self):
        self.connections = not self.connections
        el("connections-toggle").setAttribute("aria-pressed", "true" if self.connections else "false")
        el("view").classList.toggle("with-connections", self.connections)
        el("connections-legend").hidden = not self.connections
        self.draw_connections()

    # -- hovering a neuron highlights its own connections
    def highlight(self, key):
        svg = el("connections")
        if svg is None:
            return
        for line in svg.querySelectorAll("line.hi"):
            line.classList.remove("hi")
        svg.classList.toggle("hovering", bool(key))
        if key:
            for line in svg.querySelectorAll(f'line[data-from="{key}"], line[data-to="{key}"]'):
                line.classList.add("hi")

    def on_hover(self, event):
        neuron = event.target.closest(".neuron") if event.target.closest else None
        key = f"{neuron.dataset.layer}:{neuron.dataset.index}" if neuron is not None else None
        if key != self.hovered:
            self.hovered = key
            if self.connections:
                self.highlight(key)

    def on_unhover(self, event):
        related = event.relatedTarget
        if related is not None and related.closest and related.closest(".neuron") is not None:
            return  # moving straight onto another neuron: its pointerover follows
        self.hovered = None
        if self.connections:
            self.highlight(None)

    # -- events
    def on_click(self, event):
        target = event.target
        if not target.closest:
            return
        neuron = target.closest("#view .neuron")
        if neuron is not None:
            key = (neuron.dataset.layer, int(neuron.dataset.index))
            if event.shiftKey and key[0] in self.explain.knockable_layers(self.network):  # Shift+click: knock out
                ko = self.explain.toggle_unit(self.network, self.page.current_state().knocked_out, *key)
                self.go(knocked_out=ko)
            elif self.page.current_state().neuron == key:
                self.go(neuron=None)
            else:
                self.focus_card = True
                self.go(neuron=key)
            return
        action = target.closest("[data-action]")
        if action is None:
            return
        kind, data = action.dataset.action, action.dataset
        if kind == "close-card":
            self.go(neuron=None)
        elif kind == "open-neuron":
            self.focus_card = True
            self.go(neuron=(data.layer, int(data.index)))
        elif kind == "knockout":
            ko = self.explain.toggle_unit(self.network, self.page.current_state().knocked_out, data.layer, int(data.index))
            self.go(knocked_out=ko)
        elif kind == "reset":
            self.go(knocked_out={})
            el("reset-network").blur()
        elif kind == "sample":
            self.go(sample=int(data.sample))
            if action.classList.contains("cthumb"):
                el("input-panel").scrollIntoView(_js_object(block="nearest", behavior="smooth"))
        elif kind == "cell":
            self.cell = (int(data.true), int(data.predicted))
            self.draw_errors()
        elif kind == "connections":
            self.toggle_connections()
        elif kind == "errors":
            self.toggle_errors()
        elif kind == "close-errors":
            self.toggle_errors(False)

    def on_keydown(self, event):
        key = event.key
        if key == "Escape":
            if el("error-explorer").contains(document.activeElement) and self.errors_open:
                self.toggle_errors(False)
            elif self.page.current_state().neuron is not None:
                self.go(neuron=None)
            return
        cell = event.target.closest(".cell") if event.target.closest else None
        moves = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}
        if cell is not None and key in moves:
            n = len(self.network.class_labels)
            dt, dp = moves[key]
            t = min(max(int(cell.dataset.true) + dt, 0), n - 1)
            p = min(max(int(cell.dataset.predicted) + dp, 0), n - 1)
            nxt = document.querySelector(f'#confusion-matrix .cell[data-true="{t}"][data-predicted="{p}"]')
            if nxt is not None:
                event.preventDefault()
                cell.tabIndex = -1
                nxt.tabIndex = 0
                nxt.focus()


def _join(base, relative):
    """model/ + ../data/x.npz -> data/x.npz (URLs relative to the page)."""
    parts = []
    for part in (base + relative).split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


async def main():
    t0 = time.perf_counter()
    try:
        page = await start()
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        set_status("error", f"The page could not start: {message}")
        js.console.warn(f"nn-visualizer: {type(exc).__name__}: {message}")
        return None
    js.console.info(f"nn-visualizer: Python side ready in {(time.perf_counter() - t0) * 1000:.0f} ms")
    return page


PAGE = await main()  # noqa: F704 (top-level await: PyScript runs this module asynchronously)
