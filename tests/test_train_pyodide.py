"""The browser's numpy and CPython's train the same weights, bit for bit.

The same script trains a few networks (dense ones and small CNNs) for a full epoch each, once in the
site's vendored Pyodide under Node.js (numpy without BLAS, as in the page)
and once in this CPython (numpy with OpenBLAS), and prints a sha256 of every
weight and of the loss history. They must be equal. About a minute.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SITE
import pyodide_node


SCRIPT = r"""
import hashlib, json, sys
sys.path.insert(0, REPO)
import numpy as np
from pyscript_app.core import train

with np.load(REPO + "/site/data/mnist_test.npz") as f:
    images, labels = f["images"], f["labels"]

CASES = [
    ("default settings", {}, 8000),
    ("tanh, momentum", {"hidden": (16,), "activation": "tanh", "optimizer": "momentum", "learning_rate": 0.05,
                        "batch_size": 64, "seed": 3}, 4000),
    ("relu, sgd, three layers", {"hidden": (64, 16, 8), "activation": "relu", "optimizer": "sgd", "learning_rate": 0.1,
                                 "batch_size": 16, "seed": 11}, 2000),
    ("one activation each, adam", {"hidden": (32, 8), "activation": ("relu", "tanh"), "learning_rate": 0.01,
                                   "batch_size": 128, "seed": 5}, 4000),
    ("two conv layers, pooling", {"conv": ((4, 3, True), (8, 3, True)), "hidden": (16,), "activation": "relu",
                                  "learning_rate": 0.01, "batch_size": 32, "seed": 9}, 1000),
    ("conv 5x5, momentum", {"conv": ((4, 5, False),), "hidden": (8,), "activation": "tanh", "optimizer": "momentum",
                            "learning_rate": 0.05, "batch_size": 64, "seed": 2}, 2048),
]
result = {"platform": sys.platform, "matmul_in_order": train.matmul_in_order(), "cases": {}}
for name, kwargs, count in CASES:
    trainer = train.Trainer(train.Settings(**kwargs), images[:count], labels[:count])
    trainer.run_epoch()
    trainer.run(3)  # and into the next epoch: its new shuffle
    result["cases"][name] = {
        "weights": train.weights_digest(trainer),
        "losses": hashlib.sha256(np.array(trainer.losses).tobytes()).hexdigest(),
        "epoch": trainer.epoch, "steps": trainer.steps, "last_loss": trainer.losses[-1],
        "accuracy": trainer.evaluate(images[8000:], labels[8000:]),
    }
print(json.dumps(result))
"""


def run_cpython() -> dict:
    done = subprocess.run([sys.executable, "-c", f"REPO = {str(ROOT)!r}\n" + SCRIPT], capture_output=True, text=True,
                          timeout=600, check=True)
    return pyodide_node.last_json(done.stdout)


def run_pyodide() -> dict:
    return pyodide_node.last_json(pyodide_node.run_python('REPO = "/repo"\n' + SCRIPT, pyodide_node.pyodide_dir(SITE)))


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_browser_numpy_and_cpython_train_identical_weights():
    browser, cpython = run_pyodide(), run_cpython()
    assert browser["platform"] == "emscripten" and cpython["platform"] != "emscripten"
    # the browser's matrix product is the left-to-right one (no BLAS); CPython's is not used
    assert browser["matmul_in_order"] is True and cpython["matmul_in_order"] is False
    for name, ours in cpython["cases"].items():
        theirs = browser["cases"][name]
        assert ours["epoch"] == 1 and ours["steps"] > 30, name
        assert theirs == ours, f"{name}: the browser's run differs from CPython's\n{json.dumps(theirs)}\n{json.dumps(ours)}"
        assert ours["accuracy"] > 0.3, name  # they learned something (chance: 0.1), identically
