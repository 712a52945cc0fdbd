"""The drawing pad (draw mode, ``#mode=draw``): strokes in, the network's reading out, once a frame.

Browser-side. The pixels go through preprocess.py (as MNIST did it) and
then the same view as a test digit's; the neuron card and the other
features follow the drawing too: the view at every frame of a stroke, the
flow's lines and the why map when the stroke pauses or ends (Page.tell).

Test hook: ``window.nnvSettleMs`` (a number, unset in normal use) replaces
:attr:`Pad.SETTLE_MS`, so that a test can tell a stroke's frames from its
pauses on a machine of any speed.
"""

import math
import time

import js
import numpy as np
from pyodide.ffi import create_proxy, to_js
from pyscript import document

from pyscript_app.views import render, render_draw
from pyscript_app.page.dom import el, hold_idle_work
from pyscript_app.page.view import draw_view, draw_whole, updated
from pyscript_app.core.preprocess import preprocess


class Pad:
    """The drawing pad (draw mode): strokes go on a transparent canvas; once per
    animation frame the canvas is read back, preprocessed and shown.

    Strokes are drawn in white with a round brush; the pad's black is CSS, not
    pixels, so the canvas's alpha channel is the ink (what preprocess reads).
    """

    BRUSH = 1 / 12  # brush diameter, as a fraction of the pad's side
    SETTLE_MS = 150  # a stroke held still this long counts as paused: the features that follow a still view catch up
    CLEAR_KEYS = ("c", "C", "Delete")
    IDLE_HOLD_S = 0.5  # idle work waits this long after a frame of a stroke (dom.hold_idle_work)

    def __init__(self, page):
        self.page = page
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
        self.settle_proxy = create_proxy(self.settle)
        self.settle_timer = None
        self.unsettled = None  # (state, view) of the last frame of a stroke, not yet told to every feature
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
        self.page.go(mode="sample" if self.page.current_state().mode == "draw" else "draw")

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
        if self.frame_pending:  # that frame's update, the stroke over, tells every feature
            js.clearTimeout(self.settle_timer)
            self.unsettled = None
        else:
            self.settle()

    def settle_ms(self):
        """How long a stroke is held still before it counts as paused (the test hook, if set)."""
        hook = getattr(js.window, "nnvSettleMs", None)
        return hook if isinstance(hook, (int, float)) and hook >= 0 else self.SETTLE_MS

    def settle(self, *_):
        """The stroke paused or ended: tell every feature of the view the stroke left (see Page.tell)."""
        js.clearTimeout(self.settle_timer)
        self.settle_timer = None
        if self.unsettled is not None and self.page.current_state().mode == "draw":
            state, view = self.unsettled
            self.unsettled = None
            self.page.tell(state, view)

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
        return np.frombuffer(data, np.uint8).reshape(h, w, 4)

    def update(self, state=None):
        t0 = time.perf_counter()
        self.dirty = False
        page = self.page
        state = state or page.current_state()
        pad = self.read()
        pre = preprocess(pad)
        network = page.network
        view = None if pre is None else render.view_for_drawing(network, pre.centred, state.knocked_out, state.neuron)
        if view is None:
            draw_whole(network, render_draw.empty_drawing_view(network))
            page.nothing_drawn(state)
        if view is None or draw_view(network, view):  # drawn whole (a cleared pad, the first stroke): fit it again
            page.fit()
        el("pad-reading").innerHTML = render_draw.pad_reading(network, view)
        el("inspector").innerHTML = render_draw.inspector(pad, pre, network.normalization)
        el("draw-panel").dataset.empty = "true" if pre is None else "false"
        updated(t0)
        if view is not None:  # the neuron card etc. follow the drawing too
            moving = self.last is not None
            if moving:
                hold_idle_work(self.IDLE_HOLD_S)
            page.tell(state, view, moving=moving)
            self.unsettled = (state, view) if moving else None
            if moving:
                js.clearTimeout(self.settle_timer)
                self.settle_timer = js.setTimeout(self.settle_proxy, self.settle_ms())
