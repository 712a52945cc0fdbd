#!/usr/bin/env python3
"""Benchmark the page in headless Chromium (what `make bench` runs).

    python tools/bench.py [--rounds 5] [--clicks 200] [--json PATH]

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

Prints a table (median, min, max), the targets with pass/fail, and writes
JSON to bench-results/bench-<date>.json (and to --json PATH if given).
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
from browser import launch_persistent  # (the tests' choice of Chromium)

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

# Clicks the button n times; each time waits for the new sample in the DOM.
# dom: click -> new #input-image in the DOM (the Python handler patches the view in place);
# layout: + style and layout of the new view (forced); frame: + the next animation frame.
# The page paints a click's values at the next frame and its connections at the frame after
# (page_connections.py). values: the main-thread work of the values' frame: the click's task to
# laid out, plus that frame's animation-frame callbacks (from the first, registered before the
# click, to the end of the last, registered after the new view) and a forced style + layout.
# lines: the same for the frame after it, where the page draws the connections. work: the
# longer of the two, the click's longest frame; within a frame when under 16.7 ms. picture:
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
    out.push({ dom: dom - t0, layout: layout - t0, frame: frame - t0, values, lines,
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

# Clicks the error explorer's button; click -> a new #confusion-matrix[data-compute-ms] in the DOM.
CONFUSION_JS = """
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
  const t1 = await shown;
  observer.disconnect();
  return { wall_ms: t1 - t0, compute_ms: parseFloat(matrix().dataset.computeMs) };
}
"""

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

TARGETS = (  # (key, label, summary key, statistic, limit, unit, holds when value < limit (or <=))
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
                super().end_headers()
                if hasattr(self, "_bench"):
                    traffic.record(self.path.split("?")[0], *self._bench)

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

    def __init__(self, playwright, profile: Path):
        self.playwright, self.profile = playwright, profile
        self.context = None

    def open(self):
        self.context = launch_persistent(self.playwright, self.profile, viewport=VIEWPORT)
        self.context.add_init_script(MARKS_JS)
        page = self.context.pages[0] if self.context.pages else self.context.new_page()
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


def measure_confusion(page) -> dict | None:
    """Open the error explorer (if the page has it); time to the confusion matrix, inside the page."""
    button = page.query_selector(ERROR_EXPLORER_BUTTONS)
    if not button:
        return None
    page.wait_for_selector(f"{ERROR_EXPLORER_BUTTONS.split(',')[0]}:not([disabled])", timeout=60_000)
    return page.evaluate(CONFUSION_JS, ERROR_EXPLORER_BUTTONS)


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
  return { id, switch_ms: parseFloat(view.dataset.switchMs), cached: view.dataset.switchCached === 'true' };
}
"""


def measure_models(page, clicks: int) -> list[dict]:
    """Every model of the picker: switched to twice (its files fetched, then cached), then clicks
    and the confusion matrix once its first layer has run over the test set (idle time)."""
    ids = page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)")
    if len(ids) < 2:
        return []
    out = []
    for model_id in ids[1:] + ids[:1]:
        first = page.evaluate(SWITCH_JS, model_id)
        other = ids[0] if model_id != ids[0] else ids[1]
        page.evaluate(SWITCH_JS, other)
        again = page.evaluate(SWITCH_JS, model_id)
        page.wait_for_function("id => document.getElementById('inside').dataset.warm === 'done' && "
                               "document.getElementById('inside').dataset.warmModel === id", arg=model_id, timeout=120_000)
        entry = {"id": model_id, "first_switch_ms": first["switch_ms"], "cached_switch_ms": again["switch_ms"],
                 "cached": again["cached"], "clicks": measure_clicks(page, clicks),
                 "slow_clicks": measure_clicks(page, SLOW_CLICKS, SLOW_PAUSE_MS),
                 "warm_ms": float(page.get_attribute("#inside", "data-warm-ms"))}
        entry["confusion"] = measure_confusion(page)
        page.click("#errors-toggle")  # closed again
        out.append(entry)
    return out


def run_ours(playwright, url: str, traffic: Traffic, clicks: int, draw_seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnv-bench-") as tmp:
        browser = Browser(playwright, Path(tmp))
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
            out = {"cold": cold, "warm": warm, "third": third, "user_agent": user_agent,
                   "clicks": measure_clicks(page, clicks),
                   "drawing": measure_drawing(page, draw_seconds),
                   "confusion": measure_confusion(page)}
            page.click("#errors-toggle")  # closed again
            out["models"] = measure_models(page, clicks)
            if page.errors:
                raise SystemExit(f"bench: the page raised errors: {page.errors[:3]}")
            return out
        finally:
            browser.close()


def run_reference(playwright, url: str, traffic: Traffic) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnv-bench-ref-") as tmp:
        browser = Browser(playwright, Path(tmp))
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
    for key in ("dom", "layout", "frame", "values", "lines", "work", "picture", "py"):
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
        s[f"model.{model_id}.click_work_ms"] = stats([c["work"] for m in mine for c in m["clicks"]])
        s[f"model.{model_id}.slow_click_work_ms"] = stats([c["work"] for m in mine for c in m.get("slow_clicks", [])])
        s[f"model.{model_id}.confusion_ms"] = stats([m["confusion"]["wall_ms"] for m in mine if m["confusion"]])
        s[f"model.{model_id}.first_layer_ms"] = stats([m["warm_ms"] for m in mine])
        s[f"model.{model_id}.cached_switch_ms"] = stats([m["cached_switch_ms"] for m in mine])
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


def report(summary: dict, rounds: int, clicks: int) -> str:
    lines = [f"{'metric':44} {'median':>9} {'min':>9} {'max':>9} {'p95':>9}  unit"]
    for key, label, unit in ROWS:
        st = summary.get(key, {"n": 0})
        if not st["n"]:
            why = "n/a (feature not present)" if key.split(".")[0] in ("drawing", "confusion") else "n/a"
            lines.append(f"{label:44} {why}")
            continue
        cells = " ".join(f"{fmt(st[k], unit):>9}" for k in ("median", "min", "max", "p95"))
        lines.append(f"{label:44} {cells}  {unit}")
    for key in sorted(k for k in summary if k.startswith("model.")):
        _, model_id, what = key.split(".")
        unit, label = "ms", {"click_frame_ms": "click -> next frame", "click_work_ms": "click: longest frame's work",
                             "slow_click_work_ms": f"click after {SLOW_PAUSE_MS} ms: longest frame", "confusion_ms": "confusion matrix shown",
                             "first_layer_ms": "first layer over the test set", "cached_switch_ms": "cached switch"}[what]
        st = summary[key]
        if st["n"]:
            cells = " ".join(f"{fmt(st[k], unit):>9}" for k in ("median", "min", "max", "p95"))
            lines.append(f"{f'{model_id}: {label}':44} {cells}  {unit}")
    lines.append("")
    lines.append(f"targets ({rounds} rounds, {clicks} clicks a round; ratios are medians of per-round pairs):")
    for target in TARGETS:
        lines.append(f"  [{verdict(target, summary)}] {target[1]}")
    return "\n".join(lines)


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


def verdict(target: tuple, summary: dict) -> str:
    """PASS / FAIL with the measured value, or n/a when the metric was not measured."""
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
    ok = value < limit if op == "<" else value <= limit
    return f"{'PASS' if ok else 'FAIL'}: {fmt(value, unit)}{' ' + unit if unit else ''}{worst}"


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
    p.add_argument("--atlas-clicks", type=int, default=20,
                   help="the atlas (tools/bench_atlas.py): clicks timed per model (default 20; 0 leaves it out)")
    p.add_argument("--label", default="", help="a note stored in the JSON (e.g. what was changed)")
    p.add_argument("--compare", type=Path, action="append", default=[], metavar="SITE",
                   help="another built site (e.g. before a change) measured in the same rounds, "
                        "with its own reference page; repeatable")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
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
                for k, which in runs:
                    ours, reference = servers[k]
                    if which == "ours":
                        results[k]["ours"] = run_ours(pw, ours.url, traffic, args.clicks, args.draw_seconds)
                    else:
                        results[k]["reference"] = run_reference(pw, reference.url, traffic)
                result = {**results[0], "compare": {str(site): r for site, r in zip(args.compare, results[1:])}}
                rounds.append(result)
                print(f"round {i + 1}/{args.rounds}: " + "; ".join(
                    f"{site}: cold ready {r['ours']['cold']['ready_ms']:.0f} ms, reference {r['reference']['ready_ms']:.0f} ms, "
                    f"warm ready {r['ours']['warm']['ready_ms']:.0f} ms" for site, r in zip(sites, results)), flush=True)
            training = None
            if args.train_seconds > 0:  # Train mode (tools/bench_train_page.py): once, after the rounds
                import bench_train_page

                training = bench_train_page.measure(pw, servers[0][0].url, args.train_seconds, epochs=args.train_epochs)
            atlas = None
            if args.atlas_clicks > 0:  # the atlas (tools/bench_atlas.py): once, after the rounds
                import bench_atlas

                atlas = bench_atlas.measure(pw, servers[0][0].url, args.atlas_clicks)
    finally:
        for ours, reference in servers:
            ours.close()
            reference.close()
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = summarise(rounds)
    print()
    print(report(summary, args.rounds, args.clicks))
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
