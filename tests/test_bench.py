"""tools/bench.py: the pieces that turn page events into numbers (no timing is asserted).

The last test runs the real thing once (`tools/bench.py --rounds 1 --clicks 20`):
about 20 s on a quiet 2-core machine, a minute on a busy one. Set
NNV_SKIP_BENCH_RUN=1 to leave it out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.utils import formatdate

import numpy as np
import pytest

from conftest import ROOT, SITE
import bench


def test_percentile_is_the_nearest_rank():
    rng = np.random.default_rng(7)
    for n in (1, 2, 19, 20, 200, 201):
        values = list(rng.normal(10, 3, n))
        for q in (50, 95, 100):
            assert bench.percentile(values, q) == np.percentile(values, q, method="inverted_cdf")


def test_stats_leave_out_missing_values():
    s = bench.stats([3.0, None, 1.0, 2.0])
    assert (s["n"], s["median"], s["min"], s["max"]) == (3, 2.0, 1.0, 3.0)
    assert bench.stats([None]) == {"n": 0}


def test_counting_server_records_what_was_sent(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1234)
    (tmp_path / "b.txt").write_text("hello")
    traffic = bench.Traffic()
    server = bench.CountingServer(tmp_path, traffic)
    try:
        for name in ("a.bin", "b.txt?v=1"):
            urllib.request.urlopen(server.url + name).read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + "missing")
        later = urllib.request.Request(server.url + "a.bin", headers={"If-Modified-Since": formatdate(time.time() + 60, usegmt=True)})
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(later)
        assert not_modified.value.code == 304
    finally:
        server.close()
    log = [(path, int(status), size) for path, status, size, _ in traffic.since(0)]
    assert log[:2] == [("/a.bin", 200, 1234), ("/b.txt", 200, 5)]
    assert log[2][:2] == ("/missing", 404)
    assert log[3] == ("/a.bin", 304, 0)


def summary(**over):
    """A summary as summarise() makes it, with every target met unless overridden."""
    base = {
        "cold.view_ms": 300, "ratio.cold_over_reference": 1.0, "ratio.warm_over_cold": 0.4,
        "click.layout_ms": 10, "cold.bytes": 17e6, "cold.requests": 25,
        "cold.bytes_until_ready": 16e6, "cold.requests_until_ready": 20, "switch.cached_ms": 120,
        "model.seed.click_work_ms": 12.0, "model.relu.click_work_ms": 15.0,
        "model.seed.slow_click_work_ms": 13.0, "model.relu.slow_click_work_ms": 14.0,
    }
    base.update(over)
    return {k: {"n": 1, "median": v, "min": v, "max": v, "p95": v} for k, v in base.items()}


def test_targets_pass_and_fail_on_the_right_side():
    text = bench.report(summary(), 1, 200)
    assert text.count("[PASS") == len(bench.TARGETS) and "[FAIL" not in text
    assert "[FAIL: 501.0 ms] cached model switch" in bench.report(summary(**{"switch.cached_ms": 501}), 1, 200)
    text = bench.report(summary(**{"ratio.cold_over_reference": 1.16, "cold.requests": 30,
                                   "ratio.warm_over_cold": 0.5}), 1, 200)
    assert "[FAIL: 1.16 x] cold ready <= 1.15 x reference" in text
    assert "[FAIL: 30] cold requests < 30 (whole first visit)" in text
    assert "[PASS: 0.50 x] warm ready <= 0.5 x cold" in text  # the limit itself is allowed there
    assert text.count("[FAIL") == 2


def test_a_target_over_every_model_names_the_worst():
    text = bench.report(summary(**{"model.deep.click_work_ms": 17.5}), 1, 200)
    assert "[FAIL: 17.5 ms, deep] a click's longest frame p95 within a frame, 16.7 ms (quick run" in text
    assert "[PASS: 14.0 ms, relu] a click's longest frame p95 within a frame, 16.7 ms (400 ms apart" in text
    assert "[PASS: 15.0 ms, relu] a click's longest frame p95 within a frame, 16.7 ms (quick run" in bench.report(summary(), 1, 200)
    s = {k: v for k, v in summary().items() if not k.startswith("model.")}
    assert bench.report(s, 1, 200).count("[n/a] a click's longest frame p95") == 2


def test_missing_features_and_metrics_say_so():
    s = summary()
    del s["click.layout_ms"]
    text = bench.report(s, 1, 0)
    assert "drawing: view updates per second" in text and "n/a (feature not present)" in text
    assert "[n/a] click p95 <= 16 ms" in text


def test_reference_page_uses_the_sites_vendored_runtime(tmp_path):
    folder = bench.reference_site(SITE, tmp_path)
    html = (folder / "index.html").read_text()
    assert 'from "./vendor/pyodide/pyodide.mjs"' in html and 'loadPackage("numpy")' in html
    assert (folder / "vendor" / "pyodide" / "pyodide.asm.wasm").resolve() == (SITE / "vendor" / "pyodide" / "pyodide.asm.wasm").resolve()


@pytest.mark.skipif(os.environ.get("NNV_SKIP_BENCH_RUN") == "1", reason="NNV_SKIP_BENCH_RUN=1")
def test_a_short_benchmark_run_writes_valid_json(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--rounds", "1", "--clicks", "20",
                          "--draw-seconds", "1", "--train-seconds", "2", "--atlas-clicks", "3", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["rounds"] == 1 and len(doc["raw"]) == 1
    s = doc["summary"]
    assert s["click.dom_ms"]["n"] == 20
    assert 0 < s["cold.view_ms"]["median"] < s["cold.ready_ms"]["median"]
    assert s["cold.requests"]["median"] > 10 and s["cold.bytes"]["median"] > 10e6
    assert set(doc["targets"]) == {t[0] for t in bench.TARGETS}
    assert "targets" in run.stdout
    training = doc["training"]  # Train mode, measured in the page (tools/bench_train_page.py)
    assert training["page_digits_per_s"] > 0 and training["cpython_digits_per_s"] > 0
    assert len(training["card_ms"]) == len(training["pause_ms"]) == 10 and training["errors"] == []
    assert "Training in the page" in run.stdout
    atlas = doc["atlas"]  # the atlas, measured in the page (tools/bench_atlas.py): every model, every layer
    assert atlas["errors"] == [] and set(atlas["models"]) == set(json.loads((SITE / "models" / "index.json").read_text())["models"])
    for m in atlas["models"].values():
        assert "input" in m["layers"] and all(t["drawMs"] > 0 for t in m["layers"].values())
        assert all(t["pcaMs"] > 0 for layer, t in m["layers"].items() if layer != "input") and len(m["follow_ms"]) == 3
    assert "The atlas" in run.stdout
