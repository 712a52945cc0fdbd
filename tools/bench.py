#!/usr/bin/env python3
"""Benchmark the page in headless Chromium (what `make bench` runs).

    python tools/bench.py [--rounds 5] [--clicks 200] [--cpu-throttle 4] [--json PATH]

Serves site/ locally (tools/serve.py on a free port) and, each round:
- loads the page COLD in a fresh browser profile: first contentful paint, the
  moment the pre-rendered view (a real digit with its real activations) is on
  screen, and the moment ``#status`` says ready; bytes and requests that
  reached the server;
- closes the browser and opens the SAME profile again for a WARM load (second
  visit: HTTP cache, and the service worker when the page has one);
- loads the REFERENCE page cold: a page generated into a temporary folder that
  only starts the same vendored Pyodide and imports numpy (the floor of this
  stack). Ours and the reference alternate, so drift hits both alike;
- on the warm page, clicks "Get random prediction" many times, timed inside
  the page; then draws a stroke on the drawing pad and opens the confusion
  matrix when the page has those features.

A slow machine's profile: the first --throttled-rounds rounds are run again with Chromium's
CPU throttled --cpu-throttle times (DevTools' CPU throttling, as Lighthouse's mobile profile
does; 4 by default, 1 leaves it out), Train mode too. Long tasks (over 50 ms, a
PerformanceObserver the bench injects) are counted while idle work runs: a model's first-layer
pass over the test set after a switch, the error explorer's matrix, a neuron card's dream and the
robustness curve. Each window begins once the response to the action that started the work (its
task, the frame that paints it and the frame after) has run: responses have goals of their own
(a click's values, a card, a switch). A machine index at 1x
(a fixed loop of plain JavaScript in the page, the trainer in CPython) says how fast this
machine is, so that two machines' figures can be put side by side.

Prints a table (median, min, max, p95; with the throttled profile: median and p95 at 1x and at
the throttled rate side by side), the targets with pass/fail for each profile, and writes JSON to
bench-results/bench-<date>.json (and to --json PATH if given).
Timed numbers only ever live here: the tests assert behaviour, not speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import serve
from browser import launch_persistent, throttle_cpu  # (the tests' choice of Chromium)

ROOT = Path(__file__).resolve().parent.parent

READY_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 900}
IDLE_SECONDS = 1.0  # the network counts as settled after this long without a request

# Recorded in every page from its first instant (times are performance.now(): ms since navigation).
MARKS_JS = """
(() => {
  const marks = (window.__bench = {});
  const check = () => {
    if (!('viewDom' in marks) && document.querySelector('#view .neuron[data-activation]')
        && document.getElementById('input-image')) {
      marks.viewDom = performance.now();
      requestAnimationFrame(() => setTimeout(() => { marks.view = performance.now(); }, 0));
    }
    const status = document.getElementById('status');
    const state = status && status.dataset.state;
    if (state && state !== 'loading' && !(state in marks)) marks[state] = performance.now();
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
})();
"""

# Every task longer than 50 ms (the Long Tasks API), from the page's first instant: [start, duration].
LONG_TASKS_JS = """
(() => {
  const tasks = (window.__benchLongTasks = []);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) tasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { /* no Long Tasks API: nothing counted, the figures say n/a */ }
})();
"""

# A fixed CPU-bound loop of plain JavaScript (no DOM, no allocation): the page's share of the
# machine index. Its ms say how fast this machine runs the page's own thread.
MACHINE_JS = """
() => {
  let best = Infinity, x = 0.5, sum = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < 20000000; i++) { x = 3.9 * x * (1 - x); sum += x; }
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, check: sum };
}
"""

# Clicks the button n times; each time waits for the new sample in the DOM.
# dom: click -> new #input-image in the DOM (the Python handler patches the view in place);
# layout: + style and layout of the new view (forced); frame: + the next animation frame.
# The page paints a click's values at the next frame and its connections at the frame after
# (page_connections.py). values: the main-thread work of the values' frame: the click's task to
# laid out, plus that frame's animation-frame callbacks (from the first, registered before the
# click, to the end of the last, registered after the new view) and a forced style + layout.
# lines: the same for the frame after it, where the page draws the connections. work: the
# longer of the two, the click's longest frame; within a frame when under 16.7 ms. shown: click
# -> the values' frame laid out (what the screen paints next: the click's new values). picture:
# click -> the lines laid out (with the waits for the display's ticks). With pause > 0 each
# click comes that many ms after the one before (the view glides to a new digit after a pause).
CLICKS_JS = """
async ([n, pause]) => {
  const button = document.getElementById('random-sample');
  const view = document.getElementById('view');
  const framed = () => new Promise((r) => requestAnimationFrame(() => {
    const at = performance.now();
    void document.body.offsetHeight;  // style + layout of what the frame's callbacks added
    r([at, performance.now()]);
  }));
  const out = [];
  for (let i = 0; i < n; i++) {
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    const before = document.getElementById('input-image').dataset.sampleIndex;
    let observer;
    const updated = new Promise((resolve) => {
      observer = new MutationObserver(() => {
        const now = document.getElementById('input-image');
        if (now && now.dataset.sampleIndex !== before) resolve(performance.now());
      });
      observer.observe(view, { subtree: true, childList: true, attributes: true,
                               attributeFilter: ['data-sample-index'] });
    });
    let firstStart = null, secondStart = null;
    requestAnimationFrame(() => {
      firstStart = performance.now();
      requestAnimationFrame(() => { secondStart = performance.now(); });
    });
    const t0 = performance.now();
    button.click();
    const dom = await updated;
    observer.disconnect();
    void document.body.offsetHeight;  // style + layout of the new view, now
    const layout = performance.now();
    const [frame, firstEnd] = await framed();
    const [, secondEnd] = await framed();
    const values = layout - t0 + (firstStart === null ? 0 : firstEnd - firstStart);
    const lines = secondStart === null ? 0 : secondEnd - secondStart;
    out.push({ dom: dom - t0, layout: layout - t0, frame: frame - t0, shown: firstEnd - t0, values, lines,
               work: Math.max(values, lines), picture: secondEnd - t0, py: parseFloat(view.dataset.updateMs) });
    await new Promise((r) => setTimeout(r, 0));
  }
  return out;
}
"""

# Counts updates of the view (each one writes #view[data-update-ms]) until stop() is called.
COUNT_UPDATES_JS = """
() => {
  const view = document.getElementById('view');
  let updates = 0;
  const observer = new MutationObserver((records) => { updates += records.length; });
  observer.observe(view, { attributes: true, attributeFilter: ['data-update-ms'] });
  window.__benchUpdates = { stop: () => { observer.disconnect(); return updates; } };
}
"""

# The response to an action the bench takes (a click, a switch, a new address): its own task, the frame
# that paints its values and the frame after it, where the page does what a new view leaves for later
# (dom.AfterValues: the connections, a CNN's maps, the why panel's map in a task after the values frame).
# Resolves once those have run: page time then. What runs after it until the action's idle work is done is
# that idle work's window for the long-task count (the response has its own goals: a click's values, a card).
SETTLED_JS = """() => new Promise((resolve) => {
  const done = () => setTimeout(() => resolve(performance.now()), 0);
  const frames = (n) => requestAnimationFrame(() => (n > 1 ? frames(n - 1) : done()));
  frames(3);
})"""

# Clicks the error explorer's button; click -> a new #confusion-matrix[data-compute-ms] in the DOM. The
# window of its idle work: from the click's response settled to the matrix shown (empty if shown by then).
CONFUSION_JS = ("""
async (selector) => {
  const matrix = () => document.querySelector('#confusion-matrix[data-compute-ms]');
  const before = matrix();
  let observer;
  const shown = new Promise((resolve) => {
    observer = new MutationObserver(() => { if (matrix() && matrix() !== before) resolve(performance.now()); });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true,
                                      attributeFilter: ['data-compute-ms'] });
  });
  const t0 = performance.now();
  document.querySelector(selector).click();
  const settled = (""" + SETTLED_JS + """)();  // the click's response: idle work is what runs after it
  const t1 = await shown;
  observer.disconnect();
  const start = await settled;
  return { wall_ms: t1 - t0, compute_ms: parseFloat(matrix().dataset.computeMs), start, end: Math.max(start, t1) };
}
""")

REFERENCE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reference: Pyodide + numpy</title></head>
<body><p id="status" data-state="loading">loading</p>
<script type="module">
// The floor of this stack: start the vendored Pyodide, load numpy, import it. Nothing else.
import { loadPyodide } from "./vendor/pyodide/pyodide.mjs";
const status = document.getElementById("status");
try {
  const pyodide = await loadPyodide({ indexURL: "./vendor/pyodide/" });
  await pyodide.loadPackage("numpy");
  pyodide.runPython("import numpy");
  status.textContent = "ready";
  status.dataset.state = "ready";
} catch (error) {
  status.textContent = String(error);
  status.dataset.state = "error";
}
</script></body></html>
"""

SLOW_CLICKS, SLOW_PAUSE_MS = 20, 400  # per model: clicks after a pause, each starting a glide

SLOW_RATE = 4  # the slow machine's profile: Chromium's CPU throttled this many times (--cpu-throttle)
LONG_TASK_MS = 50  # RAIL: idle work in chunks of at most 50 ms (what the Long Tasks API reports)

TARGETS = (  # (key, label, summary key, statistic, limit, unit, holds when value < limit (or <=, >=))
    ("first_view", "first view < 0.5 s", "cold.view_ms", "median", 500, "ms", "<"),
    ("cold_vs_reference", "cold ready <= 1.15 x reference", "ratio.cold_over_reference", "median", 1.15, "x", "<="),
    ("warm_vs_cold", "warm ready <= 0.5 x cold", "ratio.warm_over_cold", "median", 0.5, "x", "<="),
    ("click_p95", "click p95 <= 16 ms (click -> laid out)", "click.layout_ms", "p95", 16, "ms", "<="),
    ("cold_bytes", "cold transfer < 18 MB (whole first visit)", "cold.bytes", "median", 18e6, "MB", "<"),
    ("cold_requests", "cold requests < 30 (whole first visit)", "cold.requests", "median", 30, "", "<"),
    ("cold_bytes_ready", "cold transfer < 18 MB (until ready)", "cold.bytes_until_ready", "median", 18e6, "MB", "<"),
    ("cold_requests_ready", "cold requests < 30 (until ready)", "cold.requests_until_ready", "median", 30, "", "<"),
    ("switch_cached", "cached model switch <= 0.5 s (worst model)", "switch.cached_ms", "max", 500, "ms", "<="),
    ("click_work_p95", "a click's longest frame p95 within a frame, 16.7 ms (quick run, worst model)",
     "model.*.click_work_ms", "p95", 16.7, "ms", "<="),
    ("slow_click_work_p95", f"a click's longest frame p95 within a frame, 16.7 ms ({SLOW_PAUSE_MS} ms apart, worst model)",
     "model.*.slow_click_work_ms", "p95", 16.7, "ms", "<="),
    # RAIL, meant to hold on a slow machine too (the throttled profile)
    ("click_shown_p95", "a click's new values on screen p95 <= 50 ms (click -> values' frame, worst model)",
     "model.*.click_shown_ms", "p95", 50, "ms", "<="),
    ("drawing_rate", "drawing: >= 20 view updates per second", "drawing.updates_per_s", "median", 20, "/s", ">="),
    ("idle_long_tasks", f"no task > {LONG_TASK_MS} ms while idle work runs (first-layer pass, explorer, dreams, curve)",
     "idle.longest_task_ms", "max", LONG_TASK_MS, "ms", "<="),
    ("train_card_p95", "a neuron card opens p95 <= 100 ms while training", "train.card_ms", "p95", 100, "ms", "<="),
    # why this answer (worst model); gradient x input runs in a task after the click's values frame (quoted here)
    ("why_ig", "why: integrated gradients < 100 ms (worst model)", "model.*.why_ig_ms", "max", 100, "ms", "<"),
    ("why_attack", "why: a targeted attack with its epsilon search < 300 ms (worst model)",
     "model.*.why_attack_ms", "max", 300, "ms", "<"),
    ("why_dream", "why: a dream < 1.5 s (worst model)", "model.*.why_dream_ms", "max", 1500, "ms", "<"),
    ("why_robustness", "why: the robustness curve < 10 s of idle work (worst model)",
     "model.*.why_robustness_ms", "max", 10000, "ms", "<"),
)


# --- the server, with a count of what reached it ------------------------------------------


class Traffic:
    """Every response the server sent: (path, status, body bytes, time)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log: list[tuple[str, int, int, float]] = []

    def record(self, path: str, status: int, size: int) -> None:
        with self.lock:
            self.log.append((path, status, size, time.monotonic()))

    def mark(self) -> int:
        with self.lock:
            return len(self.log)

    def since(self, mark: int) -> list:
        with self.lock:
            return self.log[mark:]

    def wait_idle(self, seconds: float = IDLE_SECONDS, limit: float = 15.0) -> None:
        """Return once no request has come for `seconds` (or after `limit`)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            with self.lock:
                last = self.log[-1][3] if self.log else 0.0
            if time.monotonic() - last >= seconds:
                return
            time.sleep(0.1)


class CountingServer:
    """tools/serve.py's server for `root` on a free port, recording every response."""

    def __init__(self, root: Path, traffic: Traffic):
        self.httpd = serve.make_server(root, port=0)
        handler = self.httpd.RequestHandlerClass  # functools.partial(handler class, directory=...)

        class Counting(handler.func):
            def send_response(self, code, message=None):
                self._bench = [code, 0]
                super().send_response(code, message)

            def send_header(self, keyword, value):
                if keyword.lower() == "content-length" and hasattr(self, "_bench"):
                    self._bench[1] = int(value)
                super().send_header(keyword, value)

            def end_headers(self):
                # recorded before the headers go out: once they are sent, the client may make its next request,
                # whose thread would record it first
                if hasattr(self, "_bench"):
                    traffic.record(self.path.split("?")[0], *self._bench)
                super().end_headers()

        self.httpd.RequestHandlerClass = functools.partial(Counting, *handler.args, **handler.keywords)
        self.url = serve.url_of(self.httpd)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reference_site(site: Path, folder: Path) -> Path:
    """A folder with only the reference page and a link to the site's vendored runtime."""
    (folder / "index.html").write_text(REFERENCE_HTML)
    (folder / "vendor").symlink_to((site / "vendor").resolve(), target_is_directory=True)
    return folder


# --- one browser session -----------------------------------------------------------------


def cpu_seconds(profile: Path) -> float | None:
    """CPU time (user + system) used so far by the Chromium running on `profile` and all its
    child processes (renderer, GPU, network...), from /proc; None where there is no /proc.

    On a machine shared with other work, wall-clock times stretch with the load; the CPU
    time a start-up costs barely does, so it is the steadier way to compare two variants.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    marker = f"--user-data-dir={profile}".encode()
    parents, ticks, roots = {}, {}, []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
            if marker in (entry / "cmdline").read_bytes():
                roots.append(pid)
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    mine = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return sum(ticks.get(pid, 0) for pid in mine) / os.sysconf("SC_CLK_TCK") if mine else None


class Browser:
    """A Chromium with its own profile folder, reopened on the same profile for a warm visit."""

    def __init__(self, playwright, profile: Path, rate: float = 1):
        self.playwright, self.profile, self.rate = playwright, profile, rate
        self.context = None

    def open(self):
        self.context = launch_persistent(self.playwright, self.profile, viewport=VIEWPORT)
        self.context.add_init_script(MARKS_JS)
        self.context.add_init_script(LONG_TASKS_JS)
        page = self.context.pages[0] if self.context.pages else self.context.new_page()
        if self.rate != 1:
            throttle_cpu(page, self.rate)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        return page

    def close(self):
        if self.context is not None:
            self.context.close()
            self.context = None


def load(page, url: str, traffic: Traffic, profile: Path | None = None) -> dict:
    """Navigate, wait for ready, let the network settle; the page's timings and the traffic."""
    mark = traffic.mark()
    cpu_before = cpu_seconds(profile) if profile else None
    page.goto(url)
    page.wait_for_function("window.__bench && ('ready' in __bench || 'error' in __bench)",
                           timeout=READY_TIMEOUT_MS)
    cpu_after = cpu_seconds(profile) if profile else None
    marks = page.evaluate("window.__bench")
    if "error" in marks:
        raise SystemExit(f"bench: {url} failed to start: {page.inner_text('#status')}")
    at_ready = traffic.since(mark)
    wait_service_worker(page)
    traffic.wait_idle()
    sent = traffic.since(mark)
    paint = page.evaluate(
        "Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]))")
    return {
        "ready_ms": marks["ready"],
        "cpu_s": cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None,
        "fcp_ms": paint.get("first-contentful-paint"),
        # the view is on screen at the first paint after it entered the DOM
        "view_ms": max(paint.get("first-contentful-paint") or 0, marks.get("view") or 0) or None,
        "requests": len(sent),
        "bytes": sum(size for _, _, size, _ in sent),
        "requests_until_ready": len(at_ready),
        "bytes_until_ready": sum(size for _, _, size, _ in at_ready),
        "files": [[path, status, size] for path, status, size, _ in sent],
        "service_worker": page.evaluate("!!(navigator.serviceWorker && navigator.serviceWorker.controller)"),
    }


def wait_service_worker(page) -> None:
    """If the page registered a service worker, wait (bounded) until it is active."""
    page.evaluate("""async () => {
        if (!navigator.serviceWorker) return;
        const regs = await navigator.serviceWorker.getRegistrations();
        if (!regs.length) return;
        await Promise.race([navigator.serviceWorker.ready, new Promise(r => setTimeout(r, 15000))]);
    }""")


def measure_clicks(page, n: int, pause_ms: int = 0) -> list[dict]:
    return page.evaluate(CLICKS_JS, [n, pause_ms]) if n > 0 else []


def measure_drawing(page, seconds: float) -> dict | None:
    """Draw with the mouse (real input events) on the pad for `seconds`; view updates per second."""
    if not page.query_selector("canvas#draw-pad"):
        return None
    if not page.is_visible("canvas#draw-pad"):
        page.evaluate("location.hash = 'mode=draw'")
        page.wait_for_selector("canvas#draw-pad", state="visible", timeout=10_000)
    page.locator("canvas#draw-pad").scroll_into_view_if_needed()
    box = page.locator("canvas#draw-pad").bounding_box()

    def at(i: int) -> tuple[float, float]:  # a zig-zag over the middle of the pad
        phase = (i % 40) / 40
        return (box["x"] + box["width"] * (0.25 + 0.5 * phase),
                box["y"] + box["height"] * (0.3 + 0.4 * ((i // 40) % 2 + (-1) ** (i // 40) * phase)))

    page.evaluate(COUNT_UPDATES_JS)
    t0 = time.perf_counter()
    page.mouse.move(*at(0))
    page.mouse.down()
    i = 0
    while time.perf_counter() - t0 < seconds:
        i += 1
        page.mouse.move(*at(i))
    page.mouse.up()
    elapsed = time.perf_counter() - t0
    time.sleep(0.3)  # the last frame's update
    updates = page.evaluate("window.__benchUpdates.stop()")
    return {"updates_per_s": updates / elapsed, "updates": updates, "seconds": elapsed, "moves": i}


ERROR_EXPLORER_BUTTONS = "#errors-toggle, button[data-action='errors']"


def long_tasks_within(tasks: list, windows: list) -> list[float]:
    """The durations of the long tasks ([start, duration] each, page time) that ran in any of the windows
    ((start, end) each: begun there, or begun before and still running at its start), each task once."""
    return [duration for begun, duration in tasks
            if any(begun <= end and begun + duration >= start for start, end in windows)]


def long_tasks(page, windows: list) -> list[float] | None:
    """The page's long tasks in the windows ((start, end), page time), once the observer has been told of
    them (entries come after the task, in a task of their own); None where the browser has no Long Tasks API."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)))")
    if not page.evaluate("PerformanceObserver.supportedEntryTypes.includes('longtask')"):
        return None
    return long_tasks_within(page.evaluate("window.__benchLongTasks || []"), windows)


def measure_confusion(page) -> dict | None:
    """Open the error explorer (if the page has it); time to the confusion matrix, inside the page,
    and the long tasks meanwhile."""
    button = page.query_selector(ERROR_EXPLORER_BUTTONS)
    if not button:
        return None
    page.wait_for_selector(f"{ERROR_EXPLORER_BUTTONS.split(',')[0]}:not([disabled])", timeout=60_000)
    out = page.evaluate(CONFUSION_JS, ERROR_EXPLORER_BUTTONS)
    out["long_tasks"] = long_tasks(page, [(out["start"], out["end"])])
    return out


def machine_index_js(page) -> float:
    """ms of the fixed loop of plain JavaScript (MACHINE_JS), the best of three, in this page."""
    return page.evaluate(MACHINE_JS)["ms"]


SWITCH_JS = """
async (id) => {
  const view = document.getElementById('view'), before = view.dataset.switchMs;
  const picker = document.getElementById('model-picker');
  picker.value = id;
  picker.dispatchEvent(new Event('change', { bubbles: true }));
  const t0 = performance.now();
  while (view.dataset.model !== id || view.dataset.switchMs === before) {
    await new Promise((r) => setTimeout(r, 5));
    if (performance.now() - t0 > 60000) throw new Error(`model ${id} did not show`);
  }
  return { id, switch_ms: parseFloat(view.dataset.switchMs), cached: view.dataset.switchCached === 'true',
           at: performance.now() };
}
"""


def measure_models(page, clicks: int, failed: list, draw_seconds: float = 0) -> list[dict]:
    """Every model of the picker: switched to twice (its files fetched, then cached), then clicks
    and the confusion matrix once its first layer has run over the test set (idle time), the why
    panel, and drawing. A model whose measurement fails is said and left out (see attempt)."""
    ids = page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)")
    if len(ids) < 2:
        return []
    measured = (attempt(failed, f"model {model_id}", measure_model, page, model_id, ids, clicks, draw_seconds)
                for model_id in ids[1:] + ids[:1])
    return [entry for entry in measured if entry is not None]


def wait_first_layer_pass(page, model_id: str) -> float:
    """Wait until the model's first layer has run over the test set (idle work after a switch); page time then."""
    page.wait_for_function("id => document.getElementById('inside').dataset.warm === 'done' && "
                           "document.getElementById('inside').dataset.warmModel === id", arg=model_id, timeout=240_000)
    return page.evaluate("performance.now()")


def measure_model(page, model_id: str, ids: list, clicks: int, draw_seconds: float = 0) -> dict:
    """One model of the picker (see measure_models)."""
    first = page.evaluate(SWITCH_JS, model_id)
    settled = page.evaluate(SETTLED_JS)
    prepared = wait_first_layer_pass(page, model_id)  # the idle work a switch starts: its long tasks counted
    idle = long_tasks(page, [(settled, prepared)])
    other = ids[0] if model_id != ids[0] else ids[1]
    page.evaluate(SWITCH_JS, other)
    again = page.evaluate(SWITCH_JS, model_id)
    wait_first_layer_pass(page, model_id)
    entry = {"id": model_id, "first_switch_ms": first["switch_ms"], "cached_switch_ms": again["switch_ms"],
             "idle_long_tasks": idle,
             "cached": again["cached"], "clicks": measure_clicks(page, clicks),
             "slow_clicks": measure_clicks(page, SLOW_CLICKS, SLOW_PAUSE_MS),
             "warm_ms": float(page.get_attribute("#inside", "data-warm-ms"))}
    entry["confusion"] = measure_confusion(page)
    page.click("#errors-toggle")  # closed again
    entry["why"] = measure_why(page, model_id)
    entry["drawing"] = measure_model_drawing(page, model_id, draw_seconds)
    return entry


def measure_model_drawing(page, model_id: str, seconds: float) -> dict | None:
    """Drawing (measure_drawing) with this model: draw mode opened by the address, the model kept."""
    if seconds <= 0 or not page.query_selector("canvas#draw-pad"):
        return None
    page.evaluate("id => { location.hash = `model=${id}&mode=draw`; }", model_id)
    page.wait_for_selector("canvas#draw-pad", state="visible", timeout=10_000)
    page.wait_for_function("id => document.getElementById('view').dataset.model === id", arg=model_id, timeout=60_000)
    return measure_drawing(page, seconds)


# Waits until the element has the attribute (with that value, unless null); page time then.
WHY_WAIT = """async ([selector, attribute, value]) => {
  const t0 = performance.now();
  for (;;) {
    const e = document.querySelector(selector);
    if (e && (value === null ? e.hasAttribute(attribute) : e.getAttribute(attribute) === value)) return performance.now();
    if (performance.now() - t0 > 600000) throw new Error(`${selector} never had ${attribute}`);  // (a slow curve at 4x)
    await new Promise((r) => setTimeout(r, 2));
  }
}"""


def measure_why(page, model_id: str) -> dict:
    """The why panel for one model (Python ms, from the page's own attributes): gradient x input after a
    click, integrated gradients, a targeted attack with its epsilon search, a first-layer unit's dream and an
    output class's (idle-time steps added up) and the robustness curve over the test set (idle time), with the long
    tasks while the last two ran."""
    base = page.evaluate("location.hash").split("&why=")[0]
    out = {"gradxinput_ms": float(page.get_attribute("#why", "data-compute-ms"))}
    page.evaluate("h => { location.hash = h; }", base + "&why=ig")
    page.evaluate(WHY_WAIT, ["#attribution", "data-method", "ig"])
    out["ig_ms"] = float(page.get_attribute("#why", "data-compute-ms"))
    predicted = int(page.get_attribute("#prediction", "data-digit"))
    target = (predicted + 5) % 10
    page.evaluate("h => { location.hash = h; }", f"{base}&attack={target}")
    page.evaluate(WHY_WAIT, ["#attack-result", "data-target", str(target)])
    out["attack_ms"] = float(page.get_attribute("#why", "data-attack-ms"))
    names = page.evaluate("[...document.querySelectorAll('#view .neuron')].map((n) => n.dataset.layer)")
    first, last = names[0], names[-1]  # the first layer's units, the output's classes (as many as it has)
    windows = []  # of idle work: from a card's response settled to its dream done, then the curve's rest
    for key, unit in (("dream_first", f"{first}:1"), ("dream_output", f"{last}:{(predicted + 3) % names.count(last)}")):
        page.evaluate("h => { location.hash = h; }", base)
        page.wait_for_function("!document.getElementById('neuron-dream')")
        asked = page.evaluate("h => { location.hash = h; return performance.now(); }", f"{base}&neuron={unit}")
        page.wait_for_selector("#neuron-dream", state="attached")
        settled = page.evaluate(SETTLED_JS)
        done = page.evaluate(WHY_WAIT, ["#neuron-dream", "data-compute-ms", None])
        out[f"{key}_wall_ms"] = done - asked
        out[f"{key}_ms"] = float(page.get_attribute("#neuron-dream", "data-compute-ms"))
        windows.append((settled, max(settled, done)))
    # the dream goal is for any unit: the worse of a first-layer unit (the cheapest gradient) and an output class
    out["dream_ms"] = max(out["dream_first_ms"], out["dream_output_ms"])
    out["dream_wall_ms"] = max(out["dream_first_wall_ms"], out["dream_output_wall_ms"])
    curve = page.evaluate(WHY_WAIT, ["#robustness", "data-model", model_id])  # (begun at the switch, in idle time)
    out["robustness_ms"] = float(page.get_attribute("#robustness", "data-compute-ms"))
    windows.append((windows[-1][1], max(windows[-1][1], curve)))
    out["long_tasks"] = long_tasks(page, windows)
    page.evaluate("h => { location.hash = h; }", base)
    return out


def attempt(failed: list, what: str, step, *args, default=None):
    """``step(*args)``; a step that fails (a page that stops answering, a wait that times out) is
    said in one line and recorded in ``failed``, and the bench goes on with the other measurements."""
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 (Playwright's errors, an assertion in a step: all said alike)
        message = f"{what}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        print(f"bench: not measured: {message}", flush=True)
        failed.append(message)
        return default


def run_ours(playwright, url: str, traffic: Traffic, clicks: int, draw_seconds: float, rate: float = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnv-bench-") as tmp:
        browser = Browser(playwright, Path(tmp), rate)
        try:
            page = browser.open()
            user_agent = page.evaluate("navigator.userAgent")
            cold = load(page, url, traffic, browser.profile)
            browser.close()
            page = browser.open()  # the same profile: a second visit
            warm = load(page, url, traffic, browser.profile)
            # A third visit: Chromium keeps the compiled wasm beside the service worker's cached
            # copy only once a page has run it from there (the second visit), so it helps from here on.
            browser.close()
            page = browser.open()
            third = load(page, url, traffic, browser.profile)
            failed = []
            out = {"cold": cold, "warm": warm, "third": third, "user_agent": user_agent, "failed": failed,
                   "clicks": attempt(failed, "clicks", measure_clicks, page, clicks, default=[]),
                   "drawing": attempt(failed, "drawing", measure_drawing, page, draw_seconds),
                   "confusion": attempt(failed, "confusion matrix", measure_confusion, page)}
            attempt(failed, "closing the error explorer", page.click, "#errors-toggle")
            out["models"] = measure_models(page, clicks, failed, draw_seconds)
            if rate == 1:  # the machine index: measured after the rest, so that it slows nothing measured
                out["machine_js_ms"] = attempt(failed, "machine index", machine_index_js, page)
            if page.errors:
                message = f"the page raised errors: {page.errors[:3]}"
                print(f"bench: {message}", flush=True)
                failed.append(message)
            return out
        finally:
            browser.close()


def run_reference(playwright, url: str, traffic: Traffic, rate: float = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnv-bench-ref-") as tmp:
        browser = Browser(playwright, Path(tmp), rate)
        try:
            return load(browser.open(), url, traffic, browser.profile)
        finally:
            browser.close()


# --- statistics and the report -------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values),
            "p95": percentile(values, 95), "values": values}


def summarise(rounds: list[dict]) -> dict:
    s = {}
    for phase in ("cold", "warm", "third"):
        for key in ("fcp_ms", "view_ms", "ready_ms", "cpu_s", "bytes", "requests", "bytes_until_ready",
                    "requests_until_ready"):
            s[f"{phase}.{key}"] = stats([r["ours"][phase][key] for r in rounds if phase in r["ours"]])
    s["reference.ready_ms"] = stats([r["reference"]["ready_ms"] for r in rounds])
    s["reference.cpu_s"] = stats([r["reference"]["cpu_s"] for r in rounds])
    if all(r["reference"]["cpu_s"] and r["ours"]["cold"]["cpu_s"] for r in rounds):
        s["ratio.cold_cpu_over_reference"] = stats(
            [r["ours"]["cold"]["cpu_s"] / r["reference"]["cpu_s"] for r in rounds])
    s["ratio.cold_over_reference"] = stats(
        [r["ours"]["cold"]["ready_ms"] / r["reference"]["ready_ms"] for r in rounds])
    s["ratio.warm_over_cold"] = stats([r["ours"]["warm"]["ready_ms"] / r["ours"]["cold"]["ready_ms"] for r in rounds])
    s["ratio.third_over_cold"] = stats(
        [r["ours"]["third"]["ready_ms"] / r["ours"]["cold"]["ready_ms"] for r in rounds if "third" in r["ours"]])
    clicks = [c for r in rounds for c in r["ours"]["clicks"]]
    for key in ("dom", "layout", "frame", "shown", "values", "lines", "work", "picture", "py"):
        s[f"click.{key}_ms"] = stats([c[key] for c in clicks])
    drawing = [r["ours"]["drawing"] for r in rounds if r["ours"]["drawing"]]
    s["drawing.updates_per_s"] = stats([d["updates_per_s"] for d in drawing])
    confusion = [r["ours"]["confusion"] for r in rounds if r["ours"]["confusion"]]
    s["confusion.compute_ms"] = stats([c["compute_ms"] for c in confusion])
    s["confusion.wall_ms"] = stats([c["wall_ms"] for c in confusion])
    models = [m for r in rounds for m in r["ours"].get("models", [])]
    s["switch.cached_ms"] = stats([m["cached_switch_ms"] for m in models])
    s["switch.first_ms"] = stats([m["first_switch_ms"] for m in models])
    for model_id in dict.fromkeys(m["id"] for m in models):
        mine = [m for m in models if m["id"] == model_id]
        s[f"model.{model_id}.click_frame_ms"] = stats([c["frame"] for m in mine for c in m["clicks"]])
        s[f"model.{model_id}.click_shown_ms"] = stats([c.get("shown") for m in mine for c in m["clicks"]])
        s[f"model.{model_id}.click_work_ms"] = stats([c["work"] for m in mine for c in m["clicks"]])
        s[f"model.{model_id}.slow_click_work_ms"] = stats([c["work"] for m in mine for c in m.get("slow_clicks", [])])
        s[f"model.{model_id}.confusion_ms"] = stats([m["confusion"]["wall_ms"] for m in mine if m["confusion"]])
        s[f"model.{model_id}.first_layer_ms"] = stats([m["warm_ms"] for m in mine])
        s[f"model.{model_id}.cached_switch_ms"] = stats([m["cached_switch_ms"] for m in mine])
        s[f"model.{model_id}.drawing_per_s"] = stats([m["drawing"]["updates_per_s"] for m in mine if m.get("drawing")])
        for key in WHY_ROWS:
            s[f"model.{model_id}.why_{key}"] = stats([m["why"][key] for m in mine if m.get("why")])
    # Idle work, each a window of the page's time: a model's first-layer pass after a switch, the error
    # explorer's matrix. None: the browser has no Long Tasks API (nothing counted, not "none").
    windows = [m.get("idle_long_tasks") for m in models] + [(m.get("why") or {}).get("long_tasks") for m in models] + [
        c.get("long_tasks") for c in confusion + [m["confusion"] for m in models if m["confusion"]]]
    windows = [w for w in windows if w is not None]
    s["idle.long_tasks"] = stats([len(w) for w in windows])
    s["idle.longest_task_ms"] = stats([max(w, default=0.0) for w in windows])
    return s


ROWS = (  # (summary key, label, unit)
    ("cold.fcp_ms", "cold: first contentful paint", "ms"),
    ("cold.view_ms", "cold: pre-rendered view on screen", "ms"),
    ("cold.ready_ms", "cold: status ready", "ms"),
    ("reference.ready_ms", "reference (Pyodide + numpy): done", "ms"),
    ("ratio.cold_over_reference", "ratio cold / reference (pairs)", "x"),
    ("cold.cpu_s", "cold: CPU time to ready (all processes)", "s"),
    ("reference.cpu_s", "reference: CPU time to done", "s"),
    ("ratio.cold_cpu_over_reference", "ratio of CPU times cold / reference", "x"),
    ("warm.view_ms", "warm: pre-rendered view on screen", "ms"),
    ("warm.ready_ms", "warm: status ready", "ms"),
    ("warm.cpu_s", "warm: CPU time to ready", "s"),
    ("ratio.warm_over_cold", "ratio warm / cold", "x"),
    ("third.ready_ms", "third visit: status ready", "ms"),
    ("third.cpu_s", "third visit: CPU time to ready", "s"),
    ("ratio.third_over_cold", "ratio third visit / cold", "x"),
    ("click.dom_ms", "click -> new activations in the DOM", "ms"),
    ("click.layout_ms", "click -> DOM updated and laid out", "ms"),
    ("click.frame_ms", "click -> next animation frame", "ms"),
    ("click.shown_ms", "click -> new values on screen (frame laid out)", "ms"),
    ("click.values_ms", "click: the values' frame, its work", "ms"),
    ("click.lines_ms", "click: the lines' frame (the next), its work", "ms"),
    ("click.work_ms", "click: the longer of those two frames", "ms"),
    ("click.picture_ms", "click -> lines laid out (two frames)", "ms"),
    ("click.py_ms", "click: Python update (data-update-ms)", "ms"),
    ("drawing.updates_per_s", "drawing: view updates per second", "/s"),
    ("confusion.compute_ms", "confusion matrix: Python compute", "ms"),
    ("confusion.wall_ms", "confusion matrix: click -> shown", "ms"),
    ("switch.first_ms", "model switch, files not yet fetched", "ms"),
    ("switch.cached_ms", "model switch, files cached", "ms"),
    ("idle.long_tasks", f"idle work: tasks > {LONG_TASK_MS} ms, per pass or matrix", ""),
    ("idle.longest_task_ms", "idle work: the longest task (0: none over 50)", "ms"),
    ("train.card_ms", "Train mode: click -> neuron card", "ms"),
    ("cold.bytes_until_ready", "cold: bytes transferred until ready", "MB"),
    ("cold.requests_until_ready", "cold: requests until ready", ""),
    ("cold.bytes", "cold: bytes, whole visit (+ offline copy)", "MB"),
    ("cold.requests", "cold: requests, whole visit", ""),
    ("warm.bytes", "warm: bytes transferred", "MB"),
    ("warm.requests", "warm: requests", ""),
)


def fmt(value: float, unit: str) -> str:
    if unit == "MB":
        return f"{value / 1e6:.2f}"
    if unit in ("x", "s"):
        return f"{value:.2f}"
    if unit == "":
        return f"{value:.0f}"
    return f"{value:.1f}"


MODEL_ROWS = {"click_frame_ms": "click -> next frame", "click_shown_ms": "click -> new values on screen",
              "click_work_ms": "click: longest frame's work", "slow_click_work_ms": f"click after {SLOW_PAUSE_MS} ms: longest frame",
              "confusion_ms": "confusion matrix shown", "first_layer_ms": "the pass over the test set (idle)",
              "cached_switch_ms": "cached switch", "drawing_per_s": "drawing: view updates per second"}
WHY_ROWS = {"gradxinput_ms": "why: gradient x input (Python)", "ig_ms": "why: integrated gradients (Python)",
            "attack_ms": "why: attack + epsilon search (Python)", "dream_ms": "why: a dream, its steps (Python)",
            "dream_first_ms": "why: a first-layer unit's dream (Python)",
            "dream_output_ms": "why: an output class's dream (Python)",
            "dream_wall_ms": "why: a dream, card -> image", "robustness_ms": "why: robustness curve, its steps (Python)"}
MODEL_ROWS.update({f"why_{k}": v for k, v in WHY_ROWS.items()})


def rows(*summaries: dict) -> list[tuple[str, str, str]]:
    """(summary key, label, unit) of every row: ROWS, then each model's rows (from any summary)."""
    models = sorted({k for s in summaries for k in s if k.startswith("model.")})
    return list(ROWS) + [(k, f"{k.split('.')[1]}: {MODEL_ROWS[k.split('.')[2]]}", "/s" if k.endswith("_per_s") else "ms")
                         for k in models]


def report(summary: dict, rounds: int, clicks: int, slow: dict | None = None, rate: float = SLOW_RATE,
           slow_rounds: int = 0) -> str:
    """The table and the targets; with ``slow`` (the summary of the throttled profile, ``rate``
    times slower) every figure and target at 1x and at the throttled rate side by side."""
    if slow is None:
        lines = [f"{'metric':44} {'median':>9} {'min':>9} {'max':>9} {'p95':>9}  unit"]
        columns = [(summary, ("median", "min", "max", "p95"))]
    else:
        fast, slowed = "1x", f"{rate:g}x"
        lines = [f"{'metric':44} {fast + ' median':>10} {fast + ' p95':>9} {slowed + ' median':>10} {slowed + ' p95':>9}"
                 f" {slowed + ' / 1x':>8}  unit"]
        columns = [(summary, ("median", "p95")), (slow, ("median", "p95"))]
    for key, label, unit in rows(*(c for c, _ in columns)):
        found = [c.get(key, {"n": 0}) for c, _ in columns]
        if not any(st["n"] for st in found):
            if key.startswith("model."):
                continue
            why = "n/a (feature not present)" if key.split(".")[0] in ("drawing", "confusion") else "n/a"
            lines.append(f"{label:44} {why}")
            continue
        cells = []
        for st, (_, stats_) in zip(found, columns):
            for k in stats_:
                width = 10 if k == "median" and slow is not None else 9
                cells.append(f"{fmt(st[k], unit) if st['n'] else 'n/a':>{width}}")
        if slow is not None:
            cells.append(f"{slowdown(found[0], found[1]):>8}")
        lines.append(f"{label:44} {' '.join(cells)}  {unit}")
    lines.append("")
    lines.append(f"targets ({rounds} rounds, {clicks} clicks a round; ratios are medians of per-round pairs"
                 + (f"; {rate:g}x: CPU throttled {rate:g} times, {slow_rounds} round{'s' * (slow_rounds != 1)})" if slow is not None else "):"))
    for target in TARGETS:
        if slow is None:
            lines.append(f"  [{verdict(target, summary)}] {target[1]}")
        else:
            lines.append(f"  [1x {verdict(target, summary, by=True)} | {rate:g}x {verdict(target, slow, by=True)}] {target[1]}")
    return "\n".join(lines)


def slowdown(fast: dict, slow: dict) -> str:
    """How many times the median grew from 1x to the throttled profile ("-" when not both measured)."""
    if not fast["n"] or not slow["n"] or not fast["median"]:
        return "-"
    return f"{slow['median'] / fast['median']:.2f}"


def brief(summary: dict) -> dict:
    """The summary without the raw value lists (they are in "raw")."""
    return {k: {kk: vv for kk, vv in v.items() if kk != "values"} for k, v in summary.items()}


def paired(rounds: list[dict], theirs: list[dict]) -> dict:
    """Per-round ratios ours / theirs (same round, so the same machine load)."""
    out = {}
    for phase in ("cold", "warm"):
        for key in ("ready_ms", "cpu_s"):
            pairs = [(r["ours"][phase][key], t["ours"][phase][key]) for r, t in zip(rounds, theirs)]
            out[f"{phase}.{key}"] = stats([a / b for a, b in pairs if a is not None and b])
    return out


COMPARED = (  # (summary key, label, unit) shown side by side for --compare
    ("cold.view_ms", "cold: pre-rendered view on screen", "ms"),
    ("cold.ready_ms", "cold: status ready", "ms"),
    ("cold.cpu_s", "cold: CPU time to ready", "s"),
    ("ratio.cold_over_reference", "cold / its reference (pairs)", "x"),
    ("ratio.cold_cpu_over_reference", "cold CPU / its reference CPU", "x"),
    ("warm.ready_ms", "warm: status ready", "ms"),
    ("warm.cpu_s", "warm: CPU time to ready", "s"),
    ("ratio.warm_over_cold", "warm / cold", "x"),
    ("click.layout_ms", "click -> laid out (p95 in the last column)", "ms"),
    ("cold.bytes", "cold: bytes transferred", "MB"),
    ("cold.requests", "cold: requests", ""),
)


def comparison(site: Path, other: Path, ours: dict, theirs: dict) -> str:
    lines = [f"compared with {other} (medians; the same rounds):",
             f"{'metric':44} {'this':>9} {'other':>9} {'ratio':>7}"]
    for key, label, unit in COMPARED:
        a, b = ours.get(key, {"n": 0}), theirs["summary"].get(key, {"n": 0})
        if not a["n"] or not b["n"]:
            continue
        stat = "p95" if key.startswith("click") else "median"
        ratio = a[stat] / b[stat] if b[stat] else float("nan")
        lines.append(f"{label:44} {fmt(a[stat], unit):>9} {fmt(b[stat], unit):>9} {ratio:>7.2f}")
    for key, st in theirs["paired"].items():
        if st["n"]:
            lines.append(f"{'paired ratio ' + key + ' (this / other)':44} {st['median']:>27.2f}")
    return "\n".join(lines)


def verdict(target: tuple, summary: dict, by: bool = False) -> str:
    """PASS / FAIL with the measured value, or n/a when the metric was not measured; with ``by``,
    a FAIL also says by how much the limit is missed."""
    _, _, key, stat, limit, unit, op = target
    worst = ""
    if "*" in key:  # one figure per model: the worst one decides
        head, tail = key.split("*")
        found = {k[len(head):-len(tail)]: v for k, v in summary.items()
                 if k.startswith(head) and k.endswith(tail) and v["n"]}
        if not found:
            return "n/a"
        worst = max(found, key=lambda name: found[name][stat])
        st = found[worst]
        worst = f", {worst}"
    else:
        st = summary.get(key, {"n": 0})
    if not st["n"]:
        return "n/a"
    value = st[stat]
    ok = {"<": value < limit, "<=": value <= limit, ">=": value >= limit}[op]
    missed = ""
    if by and not ok:
        missed = f", missed by {fmt(abs(value - limit), unit)}{' ' + unit if unit else ''} ({abs(value - limit) / limit:.0%})"
    return f"{'PASS' if ok else 'FAIL'}: {fmt(value, unit)}{' ' + unit if unit else ''}{worst}{missed}"


def machine_report(index: dict) -> str:
    """The machine index (1x): how fast this machine runs a fixed loop of plain JavaScript in the
    page and the trainer in CPython; figures from two machines compare through it."""
    js = index["js_loop_ms"]
    loop = f"{js['median']:.0f} ms (median of {js['n']}; less is faster)" if js["n"] else "n/a"
    return ("machine index (1x): a fixed loop of plain JavaScript in the page (2e7 logistic-map steps) "
            f"{loop}; the trainer in CPython {index['cpython_digits_per_s']:,.0f} digits/s")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return {"nproc": os.cpu_count(), "load_average": os.getloadavg(), "cpu": cpu, "memory_gib": round(memory / 2**30, 1) if memory else None,
            "platform": platform.platform(), "python": platform.python_version()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds (cold+warm+reference each; default 5)")
    p.add_argument("--clicks", type=int, default=200, help="clicks timed per round (default 200)")
    p.add_argument("--draw-seconds", type=float, default=3.0, help="length of the drawn stroke (default 3 s)")
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the built site (default: site/)")
    p.add_argument("--json", type=Path, help="also write the JSON results here")
    p.add_argument("--train-seconds", type=float, default=8.0,
                   help="Train mode: training measured in the page (default 8 s; 0 leaves it out)")
    p.add_argument("--train-epochs", type=int, default=0,
                   help="Train mode: also train this many epochs in the page and report the test accuracy")
    p.add_argument("--cpu-throttle", type=float, default=SLOW_RATE, metavar="RATE",
                   help=f"also measure with Chromium's CPU throttled RATE times, a slow machine's profile "
                        f"(default {SLOW_RATE:g}; 1 leaves it out)")
    p.add_argument("--throttled-rounds", type=int, default=2,
                   help="how many of the rounds are run again throttled (default 2; at most --rounds)")
    p.add_argument("--atlas-clicks", type=int, default=20,
                   help="the atlas (tools/bench_atlas.py): clicks timed per model (default 20; 0 leaves it out)")
    p.add_argument("--label", default="", help="a note stored in the JSON (e.g. what was changed)")
    p.add_argument("--compare", type=Path, action="append", default=[], metavar="SITE",
                   help="another built site (e.g. before a change) measured in the same rounds, "
                        "with its own reference page; repeatable")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.cpu_throttle < 1:
        p.error("--cpu-throttle must be at least 1 (1: full speed only)")
    slow_rounds = min(args.rounds, max(args.throttled_rounds, 1)) if args.cpu_throttle > 1 else 0
    for site in (args.site, *args.compare):
        if not (site / "index.html").exists() or not (site / "vendor").is_dir():
            p.error(f"{site} is not a built site (run `make site` first)")

    from playwright.sync_api import sync_playwright

    load_at_start = os.getloadavg()
    traffic = Traffic()
    sites = [args.site, *args.compare]
    servers, tmps = [], []
    rounds = []
    try:
        for site in sites:
            tmps.append(Path(tempfile.mkdtemp(prefix="nnv-bench-site-")))
            servers.append((CountingServer(site, traffic), CountingServer(reference_site(site, tmps[-1]), traffic)))
        with sync_playwright() as pw:
            for i in range(args.rounds):
                runs = [(k, which) for k in range(len(sites)) for which in ("ours", "reference")]
                if i % 2:
                    runs.reverse()  # alternate the order, so drift hits every variant alike
                results = [{} for _ in sites]
                if i < slow_rounds:  # this site and its reference again, slowed (the compared sites: 1x only)
                    runs += [(0, "slow ours"), (0, "slow reference")]
                    results[0]["slow"] = {}
                for k, which in runs:
                    ours, reference = servers[k]
                    rate, into = (args.cpu_throttle, results[k]["slow"]) if which.startswith("slow") else (1, results[k])
                    if which.endswith("ours"):
                        into["ours"] = run_ours(pw, ours.url, traffic, args.clicks, args.draw_seconds, rate)
                    else:
                        into["reference"] = run_reference(pw, reference.url, traffic, rate)
                result = {**results[0], "compare": {str(site): r for site, r in zip(args.compare, results[1:])}}
                rounds.append(result)
                print(f"round {i + 1}/{args.rounds}: " + "; ".join(
                    f"{site}: cold ready {r['ours']['cold']['ready_ms']:.0f} ms, reference {r['reference']['ready_ms']:.0f} ms, "
                    f"warm ready {r['ours']['warm']['ready_ms']:.0f} ms" for site, r in zip(sites, results))
                    + (f"; at {args.cpu_throttle:g}x: cold ready {result['slow']['ours']['cold']['ready_ms']:.0f} ms"
                       if "slow" in result else ""), flush=True)
            # The machine index: the trainer in CPython, here (the page's loop ran in each round's page)
            import bench_train_page

            machine_index = {"js_loop_ms": stats([r["ours"].get("machine_js_ms") for r in rounds]),
                             "cpython_digits_per_s": bench_train_page.cpython_rate(3.0)}
            training = training_slow = None
            if args.train_seconds > 0:  # Train mode (tools/bench_train_page.py): once, after the rounds
                import bench_train_page

                training = bench_train_page.measure(pw, servers[0][0].url, args.train_seconds, epochs=args.train_epochs,
                                                    atlas_seconds=args.train_seconds)
                if slow_rounds:
                    training_slow = attempt([], f"Train mode at {args.cpu_throttle:g}x", functools.partial(
                        bench_train_page.measure, pw, servers[0][0].url, args.train_seconds, cpu_throttle=args.cpu_throttle,
                        atlas_seconds=args.train_seconds))
            atlas = None
            if args.atlas_clicks > 0:  # the atlas (tools/bench_atlas.py): once, after the rounds
                import bench_atlas

                atlas = bench_atlas.measure(pw, servers[0][0].url, args.atlas_clicks, args.cpu_throttle, args.site)
    finally:
        for ours, reference in servers:
            ours.close()
            reference.close()
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = summarise(rounds)
    slow = summarise([r["slow"] for r in rounds if "slow" in r]) if slow_rounds else None
    for profile, measured in ((summary, training), (slow, training_slow)):
        if profile is not None and measured is not None:
            profile["train.card_ms"] = stats(measured["card_ms"])
    print()
    print(report(summary, args.rounds, args.clicks, slow, args.cpu_throttle, slow_rounds))
    print()
    print(machine_report(machine_index))
    failed = [f"round {i + 1}{at}: {what}" for i, r in enumerate(rounds)
              for at, run in (("", r), (f" at {args.cpu_throttle:g}x", r.get("slow", {})))
              for what in run.get("ours", {}).get("failed", [])]
    if failed:
        print("\nnot measured (the figures above leave these out):\n  " + "\n  ".join(failed))
    compared = {}
    for site in args.compare:
        theirs = [r["compare"][str(site)] for r in rounds]
        compared[str(site)] = {"summary": summarise(theirs), "paired": paired(rounds, theirs)}
        print()
        print(comparison(args.site, site, summary, compared[str(site)]))
    if training is not None:
        import bench_train_page

        print()
        print(bench_train_page.report(training))
        if training_slow is not None:
            print(f"\nAt {args.cpu_throttle:g}x (CPU throttled):")
            print(bench_train_page.report(training_slow))
    if atlas is not None:
        import bench_atlas

        print()
        print(bench_atlas.report(atlas))
    info = machine()
    info["browser"] = rounds[0]["ours"]["user_agent"]
    info["load_average_start"] = load_at_start
    when = dt.datetime.now()
    doc = {
        "date": when.isoformat(timespec="seconds"),
        "command": "python tools/bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "label": args.label,
        "machine": info,
        "rounds": args.rounds,
        "clicks_per_round": args.clicks,
        "summary": brief(summary),
        "compare": {site: {"summary": brief(c["summary"]), "paired": brief(c["paired"])} for site, c in compared.items()},
        "targets": {t[0]: {"label": t[1], "result": verdict(t, summary)} for t in TARGETS},
        "cpu_throttle": args.cpu_throttle if slow_rounds else 1,
        "throttled_rounds": slow_rounds,
        "summary_throttled": brief(slow) if slow is not None else None,
        "targets_throttled": {t[0]: {"label": t[1], "result": verdict(t, slow)} for t in TARGETS} if slow is not None else None,
        "machine_index": {"js_loop_ms": brief({"s": machine_index["js_loop_ms"]})["s"],
                          "cpython_digits_per_s": machine_index["cpython_digits_per_s"]},
        "training_throttled": training_slow,
        "not_measured": failed,
        "training": training,
        "atlas": atlas,
        "raw": rounds,
    }
    out = ROOT / "bench-results" / f"bench-{when:%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    text = json.dumps(doc, indent=1)
    out.write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(f"\nwritten: {out}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
