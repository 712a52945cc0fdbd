"""tools/bench.py: the pieces that turn page events into numbers (no timing is asserted).

The last test runs the real thing once, as short as its checks allow: one round of 10 clicks, at 1x only, on
a copy of the site whose picker lists two of the shipped models (the default and the deep tanh one: every
per-model step runs, on Dense networks; the cnn's robustness curve alone takes one to three minutes of idle
work). Three minutes on a 2-core machine busy with other suites (load 10). Set NNV_SKIP_BENCH_RUN=1 to leave it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.utils import formatdate

import numpy as np
import pytest

from conftest import ROOT, SITE, site_copy
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


LOAD = {"ready_ms": 2000.0, "cpu_s": 3.0, "fcp_ms": 100.0, "view_ms": 300.0, "requests": 25, "bytes": 17e6,
        "requests_until_ready": 20, "bytes_until_ready": 16e6}
ROUND = {"cold": LOAD, "warm": {**LOAD, "ready_ms": 800.0}, "third": {**LOAD, "ready_ms": 700.0}}  # one round's loads


def summary(**over):
    """A summary as summarise() makes it, with every target met unless overridden."""
    base = {
        "cold.view_ms": 300, "ratio.cold_over_reference": 1.0, "ratio.warm_over_cold": 0.4,
        "click.layout_ms": 10, "cold.bytes": 17e6, "cold.requests": 25,
        "cold.bytes_until_ready": 16e6, "cold.requests_until_ready": 20, "switch.cached_ms": 120,
        "model.seed.click_work_ms": 12.0, "model.relu.click_work_ms": 15.0,
        "model.seed.slow_click_work_ms": 13.0, "model.relu.slow_click_work_ms": 14.0,
        "model.seed.click_shown_ms": 12.0, "model.relu.click_shown_ms": 16.0,
        "drawing.updates_per_s": 30.0, "idle.longest_task_ms": 0.0, "idle.long_tasks": 0, "train.card_ms": 20.0,
        "model.relu.why_ig_ms": 40.0, "model.relu.why_attack_ms": 200.0, "model.relu.why_dream_ms": 300.0,
        "model.relu.why_robustness_ms": 8000.0,
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


def test_the_why_targets_name_the_worst_model():
    text = bench.report(summary(**{"model.deep.why_attack_ms": 320.0, "model.seed.why_robustness_ms": 10000.0}), 1, 200)
    assert "[FAIL: 320.0 ms, deep] why: a targeted attack with its epsilon search < 300 ms" in text
    assert "[FAIL: 10000.0 ms, seed] why: the robustness curve < 10 s of idle work" in text  # the limit is not allowed
    assert "[PASS: 40.0 ms, relu] why: integrated gradients < 100 ms" in text
    assert "relu: why: a dream, its steps (Python)" in text


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


def test_a_failed_step_is_one_line_and_the_rest_goes_on(capsys):
    failed = []

    def stalls(selector):
        raise TimeoutError(f"Timeout 10000ms exceeded.\nwaiting for {selector} to be visible\n  (a call log)")

    assert bench.attempt(failed, "drawing", stalls, "canvas#draw-pad", default=[]) == []
    assert failed == ["drawing: TimeoutError: Timeout 10000ms exceeded."]
    assert capsys.readouterr().out == "bench: not measured: drawing: TimeoutError: Timeout 10000ms exceeded.\n"
    assert bench.attempt(failed, "clicks", lambda n: [n], 3) == [3] and len(failed) == 1
    summary = bench.summarise([{"ours": {**ROUND, "clicks": [], "drawing": None, "confusion": None, "models": []},
                                "reference": ROUND["cold"]}])
    assert summary["click.layout_ms"] == {"n": 0} and summary["drawing.updates_per_s"] == {"n": 0}
    assert "[n/a] click p95" in bench.report(summary, 1, 200)


def test_long_tasks_are_counted_in_their_window():
    tasks = [[100.0, 60.0], [300.0, 51.0], [1000.0, 120.0], [2000.0, 80.0]]  # [start, duration], page time
    assert bench.long_tasks_within(tasks, [(150.0, 1050.0)]) == [60.0, 51.0, 120.0]  # one still running at the start
    assert bench.long_tasks_within(tasks, [(1200.0, 1900.0)]) == []
    assert bench.long_tasks_within([], [(0.0, 1e9)]) == []
    # windows of idle work between responses (a response's own tasks fall between them); a task in two, once
    assert bench.long_tasks_within(tasks, [(0.0, 120.0), (320.0, 1000.0), (1000.0, 1500.0)]) == [60.0, 51.0, 120.0]
    assert bench.long_tasks_within(tasks, [(500.0, 500.0), (3000.0, 3100.0)]) == []  # (an empty window: none)


def test_idle_work_windows_summarise_to_count_and_longest():
    clicks = [{k: 1.0 for k in ("dom", "layout", "frame", "shown", "values", "lines", "work", "picture", "py")}]
    model = {"id": "seed", "first_switch_ms": 200.0, "cached_switch_ms": 100.0, "cached": True, "clicks": clicks,
             "slow_clicks": clicks, "warm_ms": 40.0, "confusion": {"wall_ms": 90.0, "compute_ms": 30.0, "long_tasks": [70.0]}}
    ours = {**ROUND, "clicks": clicks, "drawing": None, "confusion": {"wall_ms": 90.0, "compute_ms": 30.0, "long_tasks": []},
            "models": [{**model, "idle_long_tasks": [55.0, 130.0]}, {**model, "id": "relu", "idle_long_tasks": None}]}
    s = bench.summarise([{"ours": ours, "reference": ROUND["cold"]}])
    # windows: seed's pass [55, 130], seed's and relu's matrices [70] each, the first matrix []; relu's pass unknown
    assert s["idle.long_tasks"]["values"] == [2, 0, 1, 1]
    assert s["idle.longest_task_ms"]["max"] == 130.0 and s["idle.longest_task_ms"]["min"] == 0.0
    target = next(t for t in bench.TARGETS if t[0] == "idle_long_tasks")
    assert bench.verdict(target, s) == "FAIL: 130.0 ms"
    assert bench.verdict(target, s, by=True) == "FAIL: 130.0 ms, missed by 80.0 ms (160%)"


def test_the_throttled_profile_is_side_by_side_with_its_slowdown():
    fast = summary()
    slow = summary(**{"click.layout_ms": 40, "model.relu.click_shown_ms": 61.0, "model.seed.click_shown_ms": 30.0,
                      "drawing.updates_per_s": 15.0, "train.card_ms": 80.0})
    text = bench.report(fast, 5, 200, slow, 4, 2)
    header, *rows = text.splitlines()
    assert header.split() == ["metric", "1x", "median", "1x", "p95", "4x", "median", "4x", "p95", "4x", "/", "1x", "unit"]
    layout = next(r for r in rows if r.startswith("click -> DOM updated and laid out"))
    assert layout.split()[-6:] == ["10.0", "10.0", "40.0", "40.0", "4.00", "ms"]  # 40 / 10: four times slower
    drawing = next(r for r in rows if r.startswith("drawing: view updates per second"))
    assert drawing.split()[-2:] == ["0.50", "/s"]
    assert "4x: CPU throttled 4 times, 2 rounds" in text
    assert ("[1x PASS: 16.0 ms, relu | 4x FAIL: 61.0 ms, relu, missed by 11.0 ms (22%)] a click's new values on screen"
            in text)
    assert "[1x PASS: 30.0 /s | 4x FAIL: 15.0 /s, missed by 5.0 /s (25%)] drawing: >= 20 view updates" in text
    assert "[1x PASS: 20.0 ms | 4x PASS: 80.0 ms] a neuron card opens p95 <= 100 ms while training" in text
    assert bench.slowdown({"n": 0}, slow["click.layout_ms"]) == "-"
    one = bench.report(fast, 5, 200)  # no throttled profile: the table of one profile, as before
    assert one.splitlines()[0].split() == ["metric", "median", "min", "max", "p95", "unit"] and "4x" not in one


def test_a_rate_at_or_over_its_limit_passes():
    target = next(t for t in bench.TARGETS if t[0] == "drawing_rate")
    assert bench.verdict(target, summary(**{"drawing.updates_per_s": 20.0})) == "PASS: 20.0 /s"
    assert bench.verdict(target, summary(**{"drawing.updates_per_s": 19.9})) == "FAIL: 19.9 /s"


def test_the_throttled_cpython_trainer_runs_a_quarter_of_each_period():
    import signal

    import bench_train_page

    class Child:  # a process that ends after its third period
        def __init__(self):
            self.log, self.periods = [], 0

        def poll(self):
            return 0 if self.periods == 3 else None

        def send_signal(self, sig):
            self.log.append(sig)
            self.periods += sig == signal.SIGCONT

    child, slept = Child(), []
    bench_train_page.duty_cycle(child, 4, period=0.02, sleep=slept.append)
    assert child.log == [signal.SIGSTOP, signal.SIGCONT] * 3  # stopped and let go on, never left stopped
    assert slept == pytest.approx([0.005, 0.015] * 3)  # runs 1/4 of each period: a CPU four times slower


def test_reference_page_uses_the_sites_vendored_runtime(tmp_path):
    folder = bench.reference_site(SITE, tmp_path)
    html = (folder / "index.html").read_text()
    assert 'from "./vendor/pyodide/pyodide.mjs"' in html and 'loadPackage("numpy")' in html
    assert (folder / "vendor" / "pyodide" / "pyodide.asm.wasm").resolve() == (SITE / "vendor" / "pyodide" / "pyodide.asm.wasm").resolve()


#: the models of the site the benchmark test measures (the first is the default)
BENCH_MODELS = ["seed", "deep"]
BENCH_CLICKS, ATLAS_CLICKS = 10, 2


def site_of(tmp_path, models):
    """A copy of site/ whose picker lists only ``models``, its offline copy (sw.js) listing that site's files."""
    import precache

    root = site_copy(tmp_path)
    index = json.loads((root / "models" / "index.json").read_text())
    assert index["default"] == models[0] and set(models) <= set(index["models"]), index
    for model_id in set(index["models"]) - set(models):
        shutil.rmtree(root / "models" / model_id)
    (root / "models" / "index.json").write_text(json.dumps({**index, "models": models}))
    precache.write_service_worker(root)
    return root


@pytest.mark.skipif(os.environ.get("NNV_SKIP_BENCH_RUN") == "1", reason="NNV_SKIP_BENCH_RUN=1")
def test_a_short_benchmark_run_writes_valid_json(tmp_path):
    out = tmp_path / "bench.json"
    site = site_of(tmp_path, BENCH_MODELS)
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--site", str(site), "--rounds", "1",
                          "--clicks", str(BENCH_CLICKS), "--draw-seconds", "0.5", "--train-seconds", "1",
                          "--cpu-throttle", "1", "--atlas-clicks", str(ATLAS_CLICKS), "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["rounds"] == 1 and len(doc["raw"]) == 1
    assert [m["id"] for m in doc["raw"][0]["ours"]["models"]] == BENCH_MODELS[1:] + BENCH_MODELS[:1]
    s = doc["summary"]
    assert s["click.dom_ms"]["n"] == BENCH_CLICKS
    assert 0 < s["cold.view_ms"]["median"] < s["cold.ready_ms"]["median"]
    assert s["cold.requests"]["median"] > 10 and s["cold.bytes"]["median"] > 10e6
    assert set(doc["targets"]) == {t[0] for t in bench.TARGETS}
    assert "targets" in run.stdout and "machine index (1x)" in run.stdout
    assert doc["machine_index"]["js_loop_ms"]["median"] > 0 and doc["machine_index"]["cpython_digits_per_s"] > 0
    assert s["idle.long_tasks"]["n"] >= 1 and doc["not_measured"] == []
    for m in doc["raw"][0]["ours"]["models"]:  # the dreams of a first-layer unit and of an output class
        assert m["why"]["dream_first_ms"] > 0 and m["why"]["dream_output_ms"] > 0
        assert m["why"]["dream_ms"] == max(m["why"]["dream_first_ms"], m["why"]["dream_output_ms"])
    training = doc["training"]  # Train mode, measured in the page (tools/bench_train_page.py)
    assert training["page_digits_per_s"] > 0 and training["cpython_digits_per_s"] > 0
    assert len(training["card_ms"]) == len(training["pause_ms"]) == 10 and training["errors"] == []
    assert "Training in the page" in run.stdout
    atlas = doc["atlas"]  # the atlas, measured in the page (tools/bench_atlas.py): every model, every layer
    assert atlas["errors"] == [] and set(atlas["models"]) == set(BENCH_MODELS)
    for m in atlas["models"].values():
        assert "input" in m["layers"] and all(t["drawMs"] > 0 for t in m["layers"].values())
        assert all(t["pcaMs"] > 0 for layer, t in m["layers"].items() if layer != "input") and len(m["follow_ms"]) == ATLAS_CLICKS
    assert "The atlas" in run.stdout


def test_an_atlas_rate_not_measured_is_said_and_the_other_kept():
    import bench_atlas

    layers = {"hidden_1": {"pcaMs": 40.0, "mapMs": 90.0, "stepMs": 12.0, "drawMs": 4.0}}
    at_1x = {"models": {"seed": {"layers": layers, "follow_ms": [0.4, 0.5], "moved_in_click": 1.0}}, "tsne": None}
    text = bench_atlas.report({"rates": {"1": at_1x}, "errors": [],
                               "not_measured": ["the atlas at 4x: TimeoutError: Timeout 180000ms exceeded."]})
    assert "goals at 1x: PCA < 150 ms (worst 40.0)" in text
    assert text.endswith("  not measured: the atlas at 4x: TimeoutError: Timeout 180000ms exceeded.")
