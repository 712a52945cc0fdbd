#!/usr/bin/env python3
"""Training speed of pyscript_app/core/train.py in the browser's Pyodide (under Node) and in CPython.

    python tools/bench_train.py [--runs 5] [--batches 16,32,64,128] [--accuracy] [--json PATH]
                                [--cnn 8x3p,16x3p] [--cnn-hidden 32] [--cnn-batches 32,64,128]

For each batch size, with the default settings otherwise (the seed's network,
Adam): digits per second over about 6,000 digits of the training set
(site/data/mnist_train.npz, else the test digits), the median of ``--runs``
runs, in the site's vendored Pyodide (numpy without BLAS, what the page runs)
and in this CPython. Then one full epoch of the default settings in Pyodide,
and the first layer's products (forward and backward, one batch) in float32
against float64 in Pyodide: the dtype choice. ``--accuracy`` adds three epochs
of the default settings in CPython on all training digits, with the test
accuracy after each (identical in the browser: same weights, bit for bit).

Then the same for a convolutional network (``--cnn``, the address' ``conv``
value, with ``--cnn-hidden`` dense units; the other settings the defaults):
digits per second by batch size in Pyodide and CPython, by the wall clock
and per CPU second of the process (on a shared machine the wall clock
counts the other processes' time too), the time per step of each layer's
forward and backward pass in Pyodide, and with ``--accuracy`` its test
accuracy after each of three epochs (the goal: 2,000 digits/s in the page,
97 % after 3 epochs). ``--cnn ""`` leaves it out.

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


# Runs unchanged in Pyodide and in CPython: REPO, BATCHES, RUNS, EPOCH, CNN, CNN_BATCHES are set before it.
SCRIPT = r"""
import collections, json, statistics, sys, time
sys.path.insert(0, REPO)
import numpy as np
from pyscript_app.core import train

if sys.platform == "emscripten":  # the process' CPU time (Node's): what this run used, whatever else runs
    import js
    def cpu_clock():
        used = js.process.cpuUsage()
        return (used.user + used.system) / 1e6
else:
    cpu_clock = time.process_time

def load():
    import os
    path = REPO + "/site/data/mnist_train.npz"
    if not os.path.exists(path):
        path = REPO + "/site/data/mnist_test.npz"
    with np.load(path) as f:
        return f["images"], f["labels"], path.rsplit("/", 1)[1]

images, labels, source = load()
out = {"platform": sys.platform, "numpy": np.__version__, "data": source, "digits": int(len(labels)),
       "matmul_in_order": train.matmul_in_order(), "batches": {}}
for batch in BATCHES:
    trainer = train.Trainer(train.Settings(batch_size=batch), images, labels)
    trainer.run(5)  # warm-up
    steps = max(10, 6000 // batch)
    rates, cpu_rates = [], []
    for _ in range(RUNS):
        t0, c0 = time.perf_counter(), cpu_clock()
        trainer.run(steps)
        rates.append(steps * batch / (time.perf_counter() - t0))
        cpu_rates.append(steps * batch / (cpu_clock() - c0))
    out["batches"][batch] = {"digits_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
                             "ms_per_step": 1000 * steps * batch / statistics.median(rates) / steps,
                             "digits_per_cpu_s": statistics.median(cpu_rates)}
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
if CNN:
    out["cnn"] = {"params": CNN, "batches": {}}
    for batch in CNN_BATCHES:
        settings, _ = train.Settings.from_params({**CNN, "batch": str(batch)})
        trainer = train.Trainer(settings, images, labels)
        trainer.run(3)  # warm-up
        steps = max(4, 1500 // batch)
        rates, cpu_rates = [], []
        for _ in range(RUNS):
            t0, c0 = time.perf_counter(), cpu_clock()
            trainer.run(steps)
            rates.append(steps * batch / (time.perf_counter() - t0))
            cpu_rates.append(steps * batch / (cpu_clock() - c0))
        out["cnn"]["batches"][batch] = {"digits_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
                                        "digits_per_cpu_s": statistics.median(cpu_rates)}
    if EPOCH:  # where a step's time goes, layer by layer (CPU time), at the first batch size
        settings, _ = train.Settings.from_params({**CNN, "batch": str(CNN_BATCHES[0])})
        trainer = train.Trainer(settings, images, labels)
        trainer.run(3)
        spent = collections.Counter()
        def timed(obj, method, key):
            original = getattr(obj, method)
            def run(*args, **kwargs):
                c0 = cpu_clock()
                try:
                    return original(*args, **kwargs)
                finally:
                    spent[key] += cpu_clock() - c0
            setattr(obj, method, run)
        for layer in trainer.layers:
            timed(layer, "forward", layer.name + " forward")
            timed(layer, "backward", layer.name + " backward")
        timed(trainer, "_apply", "optimizer")
        steps = max(10, 3000 // CNN_BATCHES[0])
        c0 = cpu_clock()
        trainer.run(steps)
        total = cpu_clock() - c0
        parts = {key: 1000 * seconds / steps for key, seconds in spent.items()}
        parts["rest (batch, loss, checks)"] = 1000 * total / steps - sum(parts.values())
        out["cnn"]["profile"] = {"batch": CNN_BATCHES[0], "ms_per_step": parts, "total_ms": 1000 * total / steps}
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
settings, _ = train.Settings.from_params(PARAMS)
trainer = train.Trainer(settings, images, labels)
epochs = []
for _ in range(3):
    t0 = time.perf_counter()
    trainer.run_epoch()
    epochs.append({"epoch": trainer.epoch, "seconds": time.perf_counter() - t0,
                   "test_accuracy": trainer.evaluate(test_images, test_labels), "loss": trainer.smoothed_loss()})
print(json.dumps({"settings": trainer.settings.describe(), "epochs": epochs, "weights": train.weights_digest(trainer)}))
"""


def _prelude(repo: str, batches, runs: int, epoch: bool, cnn: dict | None = None, cnn_batches=()) -> str:
    return (f"REPO = {repo!r}\nBATCHES = {list(batches)!r}\nRUNS = {runs}\nEPOCH = {epoch}\n"
            f"CNN = {cnn or {}!r}\nCNN_BATCHES = {list(cnn_batches)!r}\n")


def _cpython(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"bench_train: CPython run failed: {done.stderr.strip()[-1000:]}")
    return pyodide_node.last_json(done.stdout)


def cnn_params(conv: str, hidden: str) -> dict:
    """The address settings of the CNN measured (the defaults otherwise); {} without conv layers."""
    return {"conv": conv, "hidden": hidden} if conv else {}


def measure(batches=(16, 32, 64, 128), runs: int = 5, accuracy: bool = False, site: Path = ROOT / "site",
            cnn: dict | None = None, cnn_batches=(32, 64, 128)) -> dict:
    """Training throughput in Pyodide and CPython (and optionally 3-epoch accuracy) as a dict; with ``cnn``
    (address settings with a ``conv`` key) the same for that convolutional network."""
    browser = pyodide_node.last_json(pyodide_node.run_python(
        _prelude("/repo", batches, runs, True, cnn, cnn_batches) + SCRIPT, pyodide_node.pyodide_dir(site), timeout=1800))
    cpython = _cpython(_prelude(str(ROOT), batches, runs, False, cnn, cnn_batches) + SCRIPT)
    result = {"pyodide": browser, "cpython": cpython, "ratio": {
        str(b): browser["batches"][str(b)]["digits_per_s"] / cpython["batches"][str(b)]["digits_per_s"] for b in batches}}
    if accuracy:
        result["accuracy"] = _cpython(f"REPO = {str(ROOT)!r}\nPARAMS = {{}}\n" + ACCURACY_SCRIPT)
        if cnn:
            result["cnn_accuracy"] = _cpython(f"REPO = {str(ROOT)!r}\nPARAMS = {cnn!r}\n" + ACCURACY_SCRIPT)
    return result


def report(r: dict) -> str:
    b, c = r["pyodide"], r["cpython"]
    lines = [f"training throughput, default settings (data: {b['data']}, {b['digits']} digits); median of runs",
             f"{'batch':>6} {'Pyodide digits/s':>17} {'(min-max)':>15} {'ms/step':>8} {'per CPU s':>10} "
             f"{'CPython digits/s':>17} {'ratio':>6}"]
    for batch, fig in b["batches"].items():
        cp = c["batches"][batch]
        lines.append(f"{batch:>6} {fig['digits_per_s']:>17,.0f} {fig['min']:>7,.0f}-{fig['max']:<7,.0f} "
                     f"{fig['ms_per_step']:>8.2f} {fig['digits_per_cpu_s']:>10,.0f} {cp['digits_per_s']:>17,.0f} "
                     f"{r['ratio'][batch]:>6.2f}")
    e = b["epoch"]
    target = "PASS" if e["seconds"] < 6 else "FAIL"
    lines.append(f"one epoch in Pyodide (default settings, {e['digits']} digits, {e['steps']} steps): "
                 f"{e['seconds']:.2f} s = {e['digits'] / e['seconds']:,.0f} digits/s   [target < 6 s: {target}]")
    d = b["first_layer_ms"]
    lines.append(f"first layer's products in Pyodide, one batch: float32 {d['float32']:.2f} ms, float64 {d['float64']:.2f} ms")
    lines.append(f"Pyodide's matrix product adds in order (no BLAS): {b['matmul_in_order']}; numpy {b['numpy']} "
                 f"(CPython: numpy {c['numpy']}, sums by slices)")
    if "accuracy" in r:
        lines += _accuracy_lines(r["accuracy"], 0.95)
    if "cnn" in b:
        lines += _cnn_lines(r)
    return "\n".join(lines)


def _accuracy_lines(a: dict, target: float) -> list[str]:
    lines = [f"CPython, {a['settings']}: epoch {ep['epoch']}: test accuracy {ep['test_accuracy']:.2%} "
             f"({ep['seconds']:.1f} s)" for ep in a["epochs"]]
    best = a["epochs"][-1]["test_accuracy"]
    lines.append(f"  [target >= {target:.0%} within 3 epochs: {'PASS' if best >= target else 'FAIL'}]")
    return lines


CNN_TARGET = 2000  # digits per second in the page


def _cnn_lines(r: dict) -> list[str]:
    b, c = r["pyodide"]["cnn"], r["cpython"]["cnn"]
    params = "&".join(f"{k}={v}" for k, v in b["params"].items())
    lines = ["", f"convolutional network ({params}; the other settings the defaults); median of runs",
             f"{'batch':>6} {'Pyodide digits/s':>17} {'(min-max)':>15} {'per CPU s':>10} "
             f"{'CPython digits/s':>17} {'per CPU s':>10}"]
    for batch, fig in b["batches"].items():
        cp = c["batches"][batch]
        lines.append(f"{batch:>6} {fig['digits_per_s']:>17,.0f} {fig['min']:>7,.0f}-{fig['max']:<7,.0f} "
                     f"{fig['digits_per_cpu_s']:>10,.0f} {cp['digits_per_s']:>17,.0f} {cp['digits_per_cpu_s']:>10,.0f}")
    best = max(fig["digits_per_cpu_s"] for fig in b["batches"].values())
    lines.append(f"  [target >= {CNN_TARGET:,} digits/s in Pyodide (per CPU second, best batch): "
                 f"{'PASS' if best >= CNN_TARGET else 'FAIL'}]")
    dense = r["pyodide"]["batches"].get("32")
    if dense and "32" in b["batches"]:  # the same machine, the same moment: a ratio holds when the load varies
        share = b["batches"]["32"]["digits_per_cpu_s"] / dense["digits_per_cpu_s"]
        lines.append(f"  per CPU second at batch 32 the CNN trains {share:.3f} times as many digits as the default "
                     f"dense network")
    if "profile" in b:
        p = b["profile"]
        lines.append(f"Pyodide, where a step goes at batch {p['batch']} (ms of CPU time per step, total {p['total_ms']:.2f}):")
        for key, ms in sorted(p["ms_per_step"].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {key:<28} {ms:>7.2f}  {ms / p['total_ms']:>5.1%}")
    if "cnn_accuracy" in r:
        lines += _accuracy_lines(r["cnn_accuracy"], 0.97)
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per batch size (default 5)")
    p.add_argument("--batches", default="16,32,64,128", help="batch sizes (default 16,32,64,128)")
    p.add_argument("--accuracy", action="store_true", help="also train 3 epochs in CPython and report test accuracy")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--cnn", default="8x3p,16x3p", help='the CNN\'s conv layers, as the address writes them '
                   '(default 8x3p,16x3p: 8 and 16 filters, 3x3, 2x2 max pooling after each); "" for none')
    p.add_argument("--cnn-hidden", default="32", help="the CNN's dense hidden layers (default 32)")
    p.add_argument("--cnn-batches", default="32,64,128", help="batch sizes for the CNN (default 32,64,128)")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    try:
        result = measure(batches, args.runs, args.accuracy, cnn=cnn_params(args.cnn, args.cnn_hidden),
                         cnn_batches=[int(b) for b in args.cnn_batches.split(",")])
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
