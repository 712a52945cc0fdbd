"""Small helpers every browser-side module uses: elements, the status line, fetching, idle time.

Browser-only (imports ``js`` and ``pyscript``): only the page's ``page_*``
modules import it, never the numpy core.
"""

import json
import time

import js
from pyodide.ffi import create_proxy
from pyscript import document, window

from pyscript_app.core import pacing

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


def js_object(**options):
    """A plain JS object (a Python dict would arrive as a Map)."""
    return js.JSON.parse(json.dumps(options))


LOST_FOCUS_S = 2.0  # how long a focus key a redraw took away waits for a later redraw that brings it back
_lost_focus = None  # (data-focus-key, perf_counter time) of the focused element a redraw removed with no successor


def rerender(container, markup):
    """Replace a container's content, keeping focus on the element with the same data-focus-key. Where the
    new content has none (a part drawn later, such as a card's test digits), the key waits LOST_FOCUS_S for
    the redraw that brings it, while the focus is still nowhere (on the page's body)."""
    global _lost_focus
    active = document.activeElement
    key = active.getAttribute("data-focus-key") if active is not None and container.contains(active) else None
    container.innerHTML = markup
    waiting = (key is None and _lost_focus is not None and (active is None or str(active.tagName) == "BODY")
               and time.perf_counter() - _lost_focus[1] < LOST_FOCUS_S)
    if waiting:
        key = _lost_focus[0]
    if key:
        again = container.querySelector(f'[data-focus-key="{key}"]')
        if again is not None:
            again.focus()
            _lost_focus = None
        elif not waiting:  # (a key already waiting keeps its first time)
            _lost_focus = (key, time.perf_counter())


WAIT = object()  # yielded by a step of idle work that has nothing to do now (see in_idle_time)
_idle_held_until = 0.0  # perf_counter time before which idle work does not run (hold_idle_work)


def hold_idle_work(seconds):
    """Keep idle work from running for the next ``seconds``: a stroke being drawn has every frame. On a slow
    machine the browser is never idle while a stroke is drawn, and idle callbacks run on their timeout, each
    a step of up to pacing.IDLE_TASK_S between the stroke's frames."""
    global _idle_held_until
    _idle_held_until = max(_idle_held_until, time.perf_counter() + seconds)


def in_idle_time(steps, then=None):
    """Advance the generator ``steps`` in the page's idle periods, then call ``then``.

    Each idle callback runs one step, then more while the next one (expected to cost what the
    last one did) fits the idle deadline's time left and pacing.IDLE_TASK_S (see
    pacing.may_start_step), so that a callback stays a short task. A step that yields WAIT did
    no work: the callback ends there, and the next idle callback asks again.
    """
    expected = 0.0  # the last step's cost, seconds

    def step(deadline=None, *_):
        nonlocal expected
        began = time.perf_counter()
        if began < _idle_held_until:  # asked again once the hold is over
            window.setTimeout(schedule_proxy, (_idle_held_until - began) * 1000)
            return
        while True:
            now = time.perf_counter()
            remaining = deadline.timeRemaining() / 1000 if hasattr(deadline, "timeRemaining") else None
            if not pacing.may_start_step(now - began, expected, remaining):
                schedule()
                return
            got = next(steps, StopIteration)
            if got is StopIteration:
                if then is not None:
                    then()
                return
            if got is WAIT:
                schedule()
                return
            expected = time.perf_counter() - now

    proxy = create_proxy(step)

    def schedule(*_):
        if hasattr(window, "requestIdleCallback"):
            window.requestIdleCallback(proxy, js_object(timeout=1000))
        else:
            window.setTimeout(proxy, 20)

    schedule_proxy = create_proxy(schedule)

    schedule()


def listen(target, kind, handler):
    """addEventListener with a proxy kept alive for the page's life."""
    proxy = create_proxy(handler)
    target.addEventListener(kind, proxy)
    return proxy


_after_values_s = 0.0  # the time all AfterValues' work has taken in this page, seconds


def after_values_seconds():
    """The time every AfterValues' work has taken so far (Train mode counts it in its views' cost)."""
    return _after_values_s


class AfterValues:
    """Runs ``work`` once after the next animation frame, which paints a new view's values, so that
    they get that frame to themselves: in the frame after it (``then="frame"``: the connections, a
    CNN's map pictures) or in a task of its own right after it (``then="task"``: the why panel).
    Requests made before it runs add nothing. The time the work takes adds to after_values_seconds()."""

    def __init__(self, work, then="frame"):
        self.work, self.then, self.pending = work, then, False
        self.values_frame_proxy, self.run_proxy = create_proxy(self.values_frame), create_proxy(self.run)

    def request(self):
        if not self.pending:
            self.pending = True
            window.requestAnimationFrame(self.values_frame_proxy)

    def values_frame(self, *_):
        if self.then == "task":
            window.setTimeout(self.run_proxy, 0)  # a task queued in a frame runs after that frame's paint
        else:
            window.requestAnimationFrame(self.run_proxy)

    def run(self, *_):
        global _after_values_s
        self.pending = False
        t0 = time.perf_counter()
        try:
            self.work()
        finally:
            _after_values_s += time.perf_counter() - t0
