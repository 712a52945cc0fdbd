"""Train mode in the page, measured: throughput, interaction latency while training, live-view refresh rate.

Part of ``make bench`` (tools/bench.py calls :func:`measure`); runs alone too:

    .venv/bin/python tools/bench_train_page.py [--seconds 8] [--tries 10] [--epochs 3] [--cpu-throttle 4] [--atlas 8]
        [--params conv=8x3p,16x3p&hidden=32]

In one page of the built site at ``#mode=train`` (the default settings, or those ``--params`` adds to
the address, such as a convolutional network's):
- throughput: digits trained per wall-clock second while training, in the page,
  and the same trainer (pyscript_app/core/train.py) in CPython numpy in this process, and their ratio;
  with ``--cpu-throttle N`` the CPython trainer runs in a child process stopped for all but 1/N of the
  time (SIGSTOP and SIGCONT: :func:`duty_cycle`), so that both run on a CPU N times slower;
- latency while training, each over ``tries`` tries at random moments: a click on a
  neuron until its card is in the page, and a click on Pause until training has stopped;
- the live views' refresh rate (#train-progress data-refreshes per second while training), the
  interval the page chose for them and the share of the time they took (data-refresh-interval-ms,
  data-views-share: at most 0.2 by design, whatever the machine);
- with ``--atlas SECONDS``: first, in a page of its own, the same stretch of training with the atlas open
  (its map of the network being trained is live): digits per second and their ratio to the speed without
  it (the goal is 0.9 or more), live maps and view refreshes per second;
- with ``--epochs N``: the test accuracy (all test digits) after N epochs in the page.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

READY_MS = 120_000

PROGRESS = "Object.assign({}, document.getElementById('train-progress').dataset)"

# A click at a random moment (the page is busy training in slices), then the time
# until the effect is in the page: performance.now() of the planned moment to the mutation seen.
LATENCY_JS = """async ([what, tries]) => {
  const out = [];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < tries; i++) {
    if (what === "pause") {
      if (document.getElementById("train-panel").dataset.running !== "true") {
        document.getElementById("train-start").click();
        await sleep(400);
      }
    } else if (document.getElementById("neuron-card")) {
      document.getElementById("card-close").click();
      await sleep(200);
    }
    await sleep(100 + Math.random() * 200);
    const t0 = performance.now();
    const done = new Promise((resolve) => {
      const check = () => what === "pause"
        ? document.getElementById("train-panel").dataset.running === "false"
        : !!document.getElementById("neuron-card");
      const obs = new MutationObserver(() => { if (check()) { obs.disconnect(); resolve(performance.now()); } });
      obs.observe(document.body, {subtree: true, childList: true, attributes: true});
    });
    if (what === "pause") {
      document.getElementById("train-pause").click();
    } else {
      const neurons = document.querySelectorAll("#view .neuron");
      neurons[Math.floor(Math.random() * neurons.length)].click();
    }
    out.push((await done) - t0);
  }
  return out;
}"""


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# A throttled CPython trainer runs in a child process that is stopped (SIGSTOP) for all but 1/rate of every
# period and let go on (SIGCONT) for the rest, as DevTools' CPU throttling suspends the page's main thread:
# the page at 4x is compared with the same trainer on a CPU four times slower, not with a full-speed one.
THROTTLE_PERIOD_S = 0.02


def cpython_rate(seconds: float, params: str = "", cpu_throttle: float = 1) -> float:
    """Digits per second of the trainer (the default settings, or ``params`` as in the address) in CPython
    numpy: in this process, or with ``cpu_throttle`` > 1 in a child process suspended for all but
    1/``cpu_throttle`` of the time (:data:`THROTTLE_PERIOD_S`)."""
    if cpu_throttle != 1:
        return throttled_cpython_rate(seconds, params, cpu_throttle)
    import numpy as np

    from pyscript_app.core import train

    manifest = json.loads((ROOT / "site" / "data" / "manifest.json").read_text())
    with np.load(ROOT / "site" / "data" / manifest["train"]["file"]) as npz:
        images, labels = npz["images"], npz["labels"]
    settings, _ = train.Settings.from_params(dict(kv.split("=", 1) for kv in params.split("&") if kv))
    t = train.Trainer(settings, images, labels)
    t.run(20)  # warm up
    seen, t0 = t.seen, time.perf_counter()
    t.run_until(t0 + seconds)
    return (t.seen - seen) / (time.perf_counter() - t0)


def throttled_cpython_rate(seconds: float, params: str, rate: float) -> float:
    import subprocess

    child = subprocess.Popen([sys.executable, __file__, "--cpython-only", "--seconds", str(seconds), "--params", params],
                             stdout=subprocess.PIPE, text=True)
    duty_cycle(child, rate)
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the throttled CPython trainer failed (exit {child.returncode})")
    return float(out.split()[-1])


def duty_cycle(child, rate: float, period: float = THROTTLE_PERIOD_S, sleep=time.sleep) -> None:
    """Until ``child`` (a Popen) ends: let it run for period/rate, stop it for the rest of the period."""
    import signal

    running = period / rate
    try:
        while child.poll() is None:
            sleep(running)
            child.send_signal(signal.SIGSTOP)
            sleep(period - running)
            child.send_signal(signal.SIGCONT)
    except ProcessLookupError:  # it ended between the poll and a signal
        pass
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)


ATLAS_LIVE = "+(document.getElementById('atlas')?.dataset.liveRefreshes || 0)"


def training_window(context, url: str, seconds: float, cpu_throttle: float, params: str, atlas: bool, errors: list):
    """A new page at ``#mode=train`` (the atlas opened first if ``atlas``), Start, then ``seconds`` of training
    measured from 1.5 s after: (the page, #train-progress's data at the window's end, digits/s, view
    refreshes/s, live atlas maps/s)."""
    import browser as chromium

    page = context.new_page()
    if cpu_throttle != 1:  # a slow machine's profile (tools/bench.py --cpu-throttle)
        chromium.throttle_cpu(page, cpu_throttle)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "#mode=train" + (f"&{params}" if params else ""))
    page.wait_for_function("['ready', 'error'].includes(document.getElementById('train-data')?.dataset.state)",
                           timeout=READY_MS)
    if atlas:  # its default layer: the map of the network being trained is live
        page.click("#atlas-toggle")
    page.click("#train-start")
    page.wait_for_timeout(1500)  # past the first slices
    p0, m0, t0 = page.evaluate(PROGRESS), page.evaluate(ATLAS_LIVE), time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    p1, m1, t1 = page.evaluate(PROGRESS), page.evaluate(ATLAS_LIVE), time.perf_counter()
    per_s = lambda a, b: (b - a) / (t1 - t0)  # noqa: E731
    return (page, p1, per_s(int(p0["seen"]), int(p1["seen"])), per_s(int(p0["refreshes"]), int(p1["refreshes"])),
            per_s(m0, m1))


def measure(playwright, url: str, seconds: float = 8.0, tries: int = 10, epochs: int = 0, cpu_throttle: float = 1,
            params: str = "", atlas_seconds: float = 0) -> dict:
    import browser as chromium

    b = chromium.launch(playwright)
    try:
        context = b.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script("localStorage.setItem('nnv-tour-dismissed', 'true')")
        errors = []
        with_atlas = None
        if atlas_seconds:  # the same from a new start with the atlas open: the same stretch of training (an
            # evaluation of the test set comes at the same point of it), before the page measured below
            apage, _, atlas_rate, atlas_refreshes, maps = training_window(context, url, atlas_seconds, cpu_throttle,
                                                                        params, True, errors)
            apage.close()
            with_atlas = {"page_digits_per_s": atlas_rate, "refreshes_per_s": atlas_refreshes, "live_maps_per_s": maps}
            print(f"bench: training with the atlas open: {atlas_rate:,.0f} digits/s", file=sys.stderr, flush=True)
        page, p1, rate, refreshes, _ = training_window(context, url, seconds, cpu_throttle, params, False, errors)
        print(f"bench: training in the page: {rate:,.0f} digits/s", file=sys.stderr, flush=True)
        if with_atlas:
            with_atlas["ratio_to_without"] = with_atlas["page_digits_per_s"] / rate
        card = page.evaluate(LATENCY_JS, ["card", tries])
        pause = page.evaluate(LATENCY_JS, ["pause", tries])
        print("bench: latencies measured", file=sys.stderr, flush=True)
        result = {
            "page_digits_per_s": rate,
            "page_rate_shown": float(p1["rate"] or 0),
            "refreshes_per_s": refreshes,
            "views_share": float(p1.get("viewsShare") or "nan"),
            "refresh_interval_ms": float(p1.get("refreshIntervalMs") or "nan"),
            "frame_ms": {k: float(p1.get(k) or 0) for k in ("trainMs", "evalMs", "refreshMs", "galleryMs")},
            "with_atlas": with_atlas,
            "card_ms": card, "card_p95_ms": percentile(card, 95),
            "pause_ms": pause, "pause_p95_ms": percentile(pause, 95),
            "errors": errors,
        }
        if epochs:
            page.click("#train-reset")
            page.click("#train-start")
            started = time.perf_counter()
            page.wait_for_function(f"() => Number(document.getElementById('train-progress').dataset.epoch) >= {epochs}",
                                   timeout=epochs * 120_000, polling=200)
            page.click("#train-pause")
            page.wait_for_function("() => { const d = document.getElementById('train-progress').dataset;"
                                   " return d.running === 'false' && d.testSteps === d.steps; }", timeout=READY_MS)
            p = page.evaluate(PROGRESS)
            result.update({"epochs": int(p["epoch"]), "steps": int(p["steps"]), "test_accuracy": float(p["testAccuracy"]),
                           "epochs_seconds": time.perf_counter() - started})
        context.close()
    finally:
        b.close()
    result["params"] = params
    result["cpython_digits_per_s"] = cpython_rate(3.0, params, cpu_throttle)
    result["cpu_throttle"] = cpu_throttle
    result["ratio_page_to_cpython"] = result["page_digits_per_s"] / result["cpython_digits_per_s"]
    return result


def report(r: dict) -> str:
    throttle = r.get("cpu_throttle", 1)
    throttled = f" on a CPU {throttle:g} times slower" if throttle != 1 else ""
    lines = [
        f"Training in the page ({r.get('params') or 'default settings'}, Train mode):",
        f"  throughput        {r['page_digits_per_s']:,.0f} digits/s in the page "
        f"(goal >= {'2,000' if 'conv=' in (r.get('params') or '') else '10,000'}); "
        f"CPython numpy{throttled} {r['cpython_digits_per_s']:,.0f} digits/s; page/CPython {r['ratio_page_to_cpython']:.2f} "
        "(goal >= 0.8)",
        f"  live views        {r['refreshes_per_s']:.1f} refreshes/s (goal >= 4), one every "
        f"{r.get('refresh_interval_ms', float('nan')):.0f} ms; share of the time "
        f"{r.get('views_share', float('nan')):.3f} (goal <= 0.2)",
        f"  click -> card     p95 {r['card_p95_ms']:.1f} ms, median {percentile(r['card_ms'], 50):.1f} ms "
        f"over {len(r['card_ms'])} (goal p95 < 50)",
        f"  Pause -> stopped  p95 {r['pause_p95_ms']:.1f} ms, median {percentile(r['pause_ms'], 50):.1f} ms "
        f"over {len(r['pause_ms'])} (goal p95 < 50)",
        "  last slice        " + ", ".join(f"{k} {v:.1f} ms" for k, v in r["frame_ms"].items()),
    ]
    a = r.get("with_atlas")
    if a:
        lines.append(f"  atlas open        {a['page_digits_per_s']:,.0f} digits/s, {a['ratio_to_without']:.2f} of the speed "
                     f"without it (goal >= 0.9); {a['live_maps_per_s']:.2f} live maps/s; "
                     f"{a['refreshes_per_s']:.1f} refreshes/s of the views")
    if "test_accuracy" in r:
        lines.append(f"  accuracy          {r['test_accuracy']:.2%} on the test digits after {r['epochs']} epochs "
                     f"({r['steps']:,} batches, {r['epochs_seconds']:.0f} s) (goal >= 95 % within 3)")
    if r["errors"]:
        lines.append(f"  page errors       {r['errors'][:3]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="training time measured (default 8 s)")
    p.add_argument("--tries", type=int, default=10, help="clicks timed for each latency (default 10)")
    p.add_argument("--epochs", type=int, default=0, help="also train this many epochs and report the test accuracy")
    p.add_argument("--params", default="", help="training settings added to the address, such as "
                   "conv=8x3p,16x3p&hidden=32 (default: none, the default settings)")
    p.add_argument("--atlas", type=float, default=0, metavar="SECONDS",
                   help="also train this long with the atlas open (its live map), in a page of its own: the speed ratio")
    p.add_argument("--cpu-throttle", type=float, default=1,
                   help="slow the page's CPU this many times (DevTools), and the CPython trainer compared with it")
    p.add_argument("--site", type=Path, default=ROOT / "site")
    p.add_argument("--cpython-only", action="store_true", help=argparse.SUPPRESS)  # the throttled trainer's child
    args = p.parse_args(argv)
    if args.cpython_only:
        print(cpython_rate(args.seconds, args.params))
        return 0
    import serve
    from playwright.sync_api import sync_playwright

    httpd = serve.make_server(args.site, port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            r = measure(pw, serve.url_of(httpd), args.seconds, args.tries, args.epochs, args.cpu_throttle,
                        params=args.params, atlas_seconds=args.atlas)
    finally:
        httpd.shutdown()
    print(report(r))
    print(json.dumps({k: v for k, v in r.items() if not k.endswith("_ms") or k.endswith("p95_ms")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
