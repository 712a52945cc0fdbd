#!/usr/bin/env python3
"""Training speed of pyscript_app/core/train.py in the browser's Pyodide (under Node) and in CPython.

    python tools/bench_train.py [--runs 5] [--batches 16,32,64,128] [--accuracy] [--json PATH]

For each batch size, with the default settings otherwise (the seed's network,
Adam): digits per second over about 6,000 digits of the training set
(site/data/mnist_train.npz, else the test digits), the median of ``--runs``
runs, in the site's vendored Pyodide (numpy without BLAS, what the page runs)
and in this CPython. Then one full epoch of the default settings in Pyodide,
and the first layer's products (forward and backward, one batch) in float32
against float64 in Pyodide: the dtype choice. ``--accuracy`` adds three epochs
of the default settings in CPython on all training digits, with the test
accuracy after each (identical in the browser: same weights, bit for bit).

``measure()`` returns the figures as a dict (tools/bench.py can call it).
Timed figures live here only: the tests assert behaviour, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyodide_node

ROOT = Path(__file__).resolve().parent.parent


# Runs unchanged in Pyodide and in CPython: REPO, BATCHES, RUNS, EPOCH are set before it.
SCRIPT = r"""
import json, statistics, sys, time
sys.path.insert(0, REPO)
import numpy as np
from pyscript_app.core import train

def load():
    import os
    path = REPO + "/site/data/mnist_train.npz"
    if not os.path.exists(path):
        path = REPO + "/site/data/mnist_test.npz"
    with np.load(path) as f:
        return f["images"], f["labels"], path.rsplit("/", 1)[1]

images, labels, source = load()
out = {"platform": sys.platform, "numpy": np.__version__, "data": source, "digits": int(len(labels)),
       "matmul_in_order": train.MATMUL_IN_ORDER, "batches": {}}
for batch in BATCHES:
    trainer = train.Trainer(train.Settings(batch_size=batch), images, labels)
    trainer.run(5)  # warm-up
    steps = max(10, 6000 // batch)
    rates = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        trainer.run(steps)
        rates.append(steps * batch / (time.perf_counter() - t0))
    out["batches"][batch] = {"digits_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
                             "ms_per_step": 1000 * steps * batch / statistics.median(rates) / steps}
if EPOCH:
    trainer = train.Trainer(train.Settings(), images, labels)
    t0 = time.perf_counter()
    trainer.run_epoch()
    out["epoch"] = {"seconds": time.perf_counter() - t0, "digits": int(len(labels)), "steps": trainer.steps}
    # the dtype choice: the first layer's two big products for one default batch
    rng = np.random.default_rng(0)
    x = trainer.normalize(images[:32].reshape(32, -1))
    w = trainer.weights[0]
    delta = rng.standard_normal((32, w.shape[1]))
    dtypes = {}
    for dtype in (np.float32, np.float64):
        a, b, d = x.astype(dtype), w.astype(dtype), delta.astype(dtype)
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            a @ b
            a.T @ d
            times.append(time.perf_counter() - t0)
        dtypes[np.dtype(dtype).name] = 1000 * statistics.median(times)
    out["first_layer_ms"] = dtypes
print(json.dumps(out))
"""

ACCURACY_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, REPO)
import numpy as np
from pyscript_app.core import train
with np.load(REPO + "/site/data/mnist_train.npz") as f:
    images, labels = f["images"], f["labels"]
with np.load(REPO + "/site/data/mnist_test.npz") as f:
    test_images, test_labels = f["images"], f["labels"]
trainer = train.Trainer(train.Settings(), images, labels)
epochs = []
for _ in range(3):
    t0 = time.perf_counter()
    trainer.run_epoch()
    epochs.append({"epoch": trainer.epoch, "seconds": time.perf_counter() - t0,
                   "test_accuracy": trainer.evaluate(test_images, test_labels), "loss": trainer.smoothed_loss()})
print(json.dumps({"settings": trainer.settings.describe(), "epochs": epochs, "weights": train.weights_digest(trainer)}))
"""


def _prelude(repo: str, batches, runs: int, epoch: bool) -> str:
    return f"REPO = {repo!r}\nBATCHES = {list(batches)!r}\nRUNS = {runs}\nEPOCH = {epoch}\n"


def _cpython(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bench_train: CPython run failed: {done.stderr.strip()[-1000:]}")
    return pyodide_node.last_json(done.stdout)


def measure(batches=(16, 32, 64, 128), runs: int = 5, accuracy: bool = False, site: Path = ROOT / "site") -> dict:
    """Training throughput in Pyodide and CPython (and optionally 3-epoch accuracy) as a dict."""
    browser = pyodide_node.last_json(pyodide_node.run_python(
        _prelude("/repo", batches, runs, True) + SCRIPT, pyodide_node.pyodide_dir(site), timeout=900))
    cpython = _cpython(_prelude(str(ROOT), batches, runs, False) + SCRIPT)
    result = {"pyodide": browser, "cpython": cpython, "ratio": {
        str(b): browser["batches"][str(b)]["digits_per_s"] / cpython["batches"][str(b)]["digits_per_s"] for b in batches}}
    if accuracy:
        result["accuracy"] = _cpython(f"REPO = {str(ROOT)!r}\n" + ACCURACY_SCRIPT)
    return result


def report(r: dict) -> str:
    b, c = r["pyodide"], r["cpython"]
    lines = [f"training throughput, default settings (data: {b['data']}, {b['digits']} digits); median of runs",
             f"{'batch':>6} {'Pyodide digits/s':>17} {'(min-max)':>15} {'ms/step':>8} {'CPython digits/s':>17} {'ratio':>6}"]
    for batch, fig in b["batches"].items():
        cp = c["batches"][batch]
        lines.append(f"{batch:>6} {fig['digits_per_s']:>17,.0f} {fig['min']:>7,.0f}-{fig['max']:<7,.0f} "
                     f"{fig['ms_per_step']:>8.2f} {cp['digits_per_s']:>17,.0f} {r['ratio'][batch]:>6.2f}")
    e = b["epoch"]
    target = "PASS" if e["seconds"] < 6 else "FAIL"
    lines.append(f"one epoch in Pyodide (default settings, {e['digits']} digits, {e['steps']} steps): "
                 f"{e['seconds']:.2f} s = {e['digits'] / e['seconds']:,.0f} digits/s   [target < 6 s: {target}]")
    d = b["first_layer_ms"]
    lines.append(f"first layer's products in Pyodide, one batch: float32 {d['float32']:.2f} ms, float64 {d['float64']:.2f} ms")
    lines.append(f"Pyodide's matrix product adds in order (no BLAS): {b['matmul_in_order']}; numpy {b['numpy']} "
                 f"(CPython: numpy {c['numpy']}, sums by slices)")
    if "accuracy" in r:
        a = r["accuracy"]
        for ep in a["epochs"]:
            lines.append(f"CPython, {a['settings']}: epoch {ep['epoch']}: test accuracy {ep['test_accuracy']:.2%} "
                         f"({ep['seconds']:.1f} s)")
        best = a["epochs"][-1]["test_accuracy"]
        lines.append(f"  [target >= 95 % within 3 epochs: {'PASS' if best >= 0.95 else 'FAIL'}]")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per batch size (default 5)")
    p.add_argument("--batches", default="16,32,64,128", help="batch sizes (default 16,32,64,128)")
    p.add_argument("--accuracy", action="store_true", help="also train 3 epochs in CPython and report test accuracy")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    try:
        result = measure(batches, args.runs, args.accuracy)
    except pyodide_node.PyodideError as exc:
        print(f"bench_train: error: {exc}", file=sys.stderr)
        return 2
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "when": time.strftime("%Y-%m-%d %H:%M")}
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
