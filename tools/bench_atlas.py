"""The atlas in the page, measured: each layer's PCA, the map's drawing, the current dot following a click.

Part of ``make bench`` (tools/bench.py calls :func:`measure` once, after its rounds); runs alone too:

    .venv/bin/python tools/bench_atlas.py [--clicks 20]

For every model of the picker, one page at ``#model=<id>&mode=atlas``: every
layer of #atlas-layer picked in turn, and for each the Python time the page
recorded on #atlas (page/atlas.py): the principal axes (data-pca-ms: the
covariance and its eigenvectors over the 10,000 test digits), the whole map
(data-map-ms: also the first layer's pass when it had not run yet, placing the
digits and the separability vote), the longest single idle-time step
(data-step-ms), and drawing the map (data-draw-ms: raster + one putImageData).
Then ``clicks`` clicks on "Get random prediction": the dot's Python time
(data-follow-ms), and whether #atlas-current had moved when the click's event
handler returned (so it is painted in the click's own frame).

Then the t-SNE map computed in the page (page/atlas.py's page_tsne, for a
network with no build-time map): the default model's own files opened as
"your model", its last hidden layer, t-SNE picked; the whole map's Python
time and its longest idle step.

All of it at full speed and again with Chromium's CPU throttled (``--cpu-throttle``,
4 by default: a slow laptop's profile, as tools/bench.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_MS = 180_000
GOAL_PCA_MS, GOAL_DRAW_MS, GOAL_STEP_MS = 150.0, 50.0, 50.0

READY_JS = """(layer) => { const a = document.getElementById('atlas');
  return a.dataset.state === 'ready' && a.dataset.layer === layer && a.dataset.model === a.dataset.wanted; }"""

FOLLOW_JS = """async (n) => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const dot = document.getElementById('atlas-current'), before = dot.dataset.sample;
    document.getElementById('random-sample').click();
    out.push({ moved: dot.dataset.sample !== before,
               follow_ms: parseFloat(document.getElementById('atlas').dataset.followMs) });
    await new Promise((r) => setTimeout(r, 150));
  }
  return out;
}"""


def model_files(site: Path, model_id: str) -> bytes:
    """A shipped model's export as the zip a user would open (core's one writer of the zip)."""
    sys.path.insert(0, str(ROOT))
    from pyscript_app.core import export_format

    folder = site / "models" / model_id
    files = {"manifest.json": (folder / "manifest.json").read_bytes()}
    files.update({p.name: p.read_bytes() for p in sorted(folder.glob("*.npy"))})
    return export_format.write_zip(files)


def measure_once(page, clicks: int, site: Path) -> dict:
    out = {}
    models = page.eval_on_selector_all("#model-picker option", "os => os.map(o => o.value)")
    for model_id in models:
        page.evaluate(f"location.hash = '#model={model_id}&mode=atlas'")
        page.wait_for_function("id => document.getElementById('view').dataset.model === id", arg=model_id, timeout=READY_MS)
        page.evaluate(f"document.getElementById('atlas').dataset.wanted = {model_id!r}")
        layers = {}
        for layer in page.eval_on_selector_all("#atlas-layer option", "os => os.map(o => o.value)"):
            page.select_option("#atlas-layer", layer)
            page.wait_for_function(READY_JS, arg=layer, timeout=READY_MS)
            data = page.evaluate("Object.assign({}, document.getElementById('atlas').dataset)")
            layers[layer] = {k: float(data[k]) for k in ("pcaMs", "mapMs", "stepMs", "drawMs") if data.get(k)}
        follows = page.evaluate(FOLLOW_JS, clicks)
        out[model_id] = {"layers": layers, "follow_ms": [f["follow_ms"] for f in follows],
                         "moved_in_click": sum(f["moved"] for f in follows) / max(len(follows), 1)}
        print(f"bench: atlas of {model_id} measured", file=sys.stderr, flush=True)
    return {"models": out, "tsne": measure_tsne(page, site, models[0])}


def measure_tsne(page, site: Path, model_id: str) -> dict:
    """The t-SNE map computed in the page, of a model opened from its files (so it has no build-time map)."""
    page.evaluate(f"location.hash = '#model={model_id}&mode=atlas'")
    page.wait_for_function("id => document.getElementById('view').dataset.model === id", arg=model_id, timeout=READY_MS)
    page.set_input_files("#open-model", [{"name": f"{model_id}.zip", "mimeType": "application/zip",
                                          "buffer": model_files(site, model_id)}])
    page.wait_for_function("document.getElementById('view').dataset.model.startsWith('own-')", timeout=READY_MS)
    own = page.get_attribute("#view", "data-model")
    layer = page.eval_on_selector_all("#atlas-layer option", "os => os.map(o => o.value)")[-2]
    page.evaluate(f"document.getElementById('atlas').dataset.wanted = {own!r}")
    page.select_option("#atlas-layer", layer)
    page.wait_for_function(READY_JS, arg=layer, timeout=READY_MS)
    page.select_option("#atlas-method", "tsne")
    page.wait_for_function("document.getElementById('atlas').dataset.method === 'tsne'", timeout=4 * READY_MS)
    data = page.evaluate("Object.assign({}, document.getElementById('atlas').dataset)")
    print(f"bench: in-page t-SNE of {model_id} measured", file=sys.stderr, flush=True)
    return {"model": model_id, "layer": layer, "points": int(data["points"]),
            **{k: float(data[k]) for k in ("mapMs", "stepMs", "drawMs") if data.get(k)}}


def measure(playwright, url: str, clicks: int = 20, cpu_throttle: float = 4.0, site: Path = ROOT / "site") -> dict:
    """The atlas at full speed, then (``cpu_throttle`` > 1) throttled: {"rates": {"1": results, "<rate>": results},
    "errors": [...]}, and the full-speed results' "models" and "tsne" at the top too."""
    import browser as chromium

    b = chromium.launch(playwright)
    errors, out, missed = [], {}, []
    try:
        for rate in (1.0, cpu_throttle) if cpu_throttle > 1 else (1.0,):
            context = b.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script("localStorage.setItem('nnv-tour-dismissed', 'true')")
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            if rate > 1:
                chromium.throttle_cpu(page, rate)
            try:
                page.goto(url + "#mode=atlas")
                page.wait_for_function("document.body.dataset.ready === 'true'", timeout=READY_MS)
                out[f"{rate:g}"] = measure_once(page, clicks, site)
            except Exception as exc:  # noqa: BLE001 (a wait that times out: said, and the other rate is kept)
                missed.append(f"the atlas at {rate:g}x: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}")
                print(f"bench: not measured: {missed[-1]}", flush=True)
            finally:
                context.close()
    finally:
        b.close()
    return {**out.get("1", {}), "rates": out, "errors": errors, "not_measured": missed}


def report(r: dict) -> str:
    lines = []
    for rate, at in r["rates"].items():
        lines.append(f"The atlas at {rate}x (per layer: PCA over 10,000 digits / the whole map / longest idle step / "
                     "drawing, Python ms in the page):")
        for model_id, m in at["models"].items():
            for layer, t in m["layers"].items():
                pca = "precomputed (build)" if layer == "input" else f"PCA {t.get('pcaMs', 0):7.1f}"
                lines.append(f"  {model_id:>8} {layer:>9}: {pca}  map {t.get('mapMs', 0):7.1f}  step {t.get('stepMs', 0):6.1f}"
                             f"  draw {t.get('drawMs', 0):6.1f}")
            follow = sorted(m["follow_ms"])
            if follow:
                lines.append(f"  {model_id:>8} dot follows a click: median {follow[len(follow) // 2]:.2f} ms, "
                             f"max {follow[-1]:.2f} ms; moved before the click's frame in {m['moved_in_click']:.0%} of clicks")
        t = at.get("tsne")
        if t:
            lines.append(f"  t-SNE in the page ({t['model']} opened from its files, {t['layer']}, {t['points']:,} digits): "
                         f"{t.get('mapMs', 0) / 1000:.1f} s of idle work, longest step {t.get('stepMs', 0):.1f} ms")
        worst = [t.get("pcaMs", 0) for m in at["models"].values() for layer, t in m["layers"].items() if layer != "input"]
        draws = [t.get("drawMs", 0) for m in at["models"].values() for t in m["layers"].values()]
        steps = [t.get("stepMs", 0) for m in at["models"].values() for t in m["layers"].values()]
        if worst:
            lines.append(f"  goals at {rate}x: PCA < {GOAL_PCA_MS:.0f} ms (worst {max(worst):.1f}); draw < {GOAL_DRAW_MS:.0f} ms "
                         f"(worst {max(draws):.1f}); idle step <= {GOAL_STEP_MS:.0f} ms (worst {max(steps):.1f})")
    if r["errors"]:
        lines.append(f"  page errors: {r['errors'][:3]}")
    lines += [f"  not measured: {what}" for what in r.get("not_measured", [])]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clicks", type=int, default=20, help="clicks timed per model (default 20)")
    p.add_argument("--site", type=Path, default=ROOT / "site")
    p.add_argument("--cpu-throttle", type=float, default=4.0, help="also measure with the CPU throttled this many times (1: not)")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bench import CountingServer, Traffic

    server = CountingServer(args.site, Traffic())
    try:
        with sync_playwright() as pw:
            print(report(measure(pw, server.url, args.clicks, args.cpu_throttle, args.site)))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
