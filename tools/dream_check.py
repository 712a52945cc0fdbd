"""Every hidden unit's dream against the best test digit, per shipped model (the card's "What it wants").

    .venv/bin/python tools/dream_check.py [model ...]

For each unit (a dense neuron, a conv or pooling channel) it runs the card's dream (``why.dream`` on the
pixels ``why.dream_pixels`` allows) and compares the unit's objective on it (a dense unit's net input, a
channel's peak) with the highest over the 10,000 test digits. Prints, per model, how many units the dream
beats or equals and each one it does not, with the gap. The tests check a sample of units of every export
against their own float64 pass; this is the whole list for the shipped models.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pyscript_app.core import network as nw, why  # noqa: E402

SITE = ROOT / "site"


def check(model: str) -> list[tuple[str, int, float, float]]:
    network, testset = nw.read_export_dir(SITE / "models" / model, SITE / "data")
    x = why.to_input(network, testset.images.reshape(len(testset.images), -1) / 255.0)
    where = why.dream_pixels(network, testset.images)
    missed, units, t0 = [], 0, time.perf_counter()
    for layer in network.layers[:-1]:
        if layer.kind == "flatten":  # not a unit of its own
            continue
        bests = np.concatenate([why.unit_objectives(network, x[i:i + 1000], layer.name)
                                for i in range(0, len(x), 1000)]).max(axis=0)
        for index in range(layer.units):
            objective, best = why.unit_objective(network, layer.name, index), float(bests[index])
            u = why.dream(network, layer.name, index, where=where)
            value = float(why.objective_value(network, why.to_input(network, u)[None], objective)[0])
            units += 1
            if value < best:
                missed.append((layer.name, index, value, best))
    print(f"{model}: {units - len(missed)} of {units} hidden units' dreams excite them at least as much as the "
          f"best test digit ({time.perf_counter() - t0:.1f} s)")
    for name, index, value, best in missed:
        print(f"  {name}:{index}  {value:.4f} against {best:.4f} ({value - best:+.4f})")
    return missed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shipped = sorted(p.name for p in (SITE / "models").iterdir() if (p / "manifest.json").exists())
    parser.add_argument("models", nargs="*", default=shipped)
    for model in parser.parse_args(argv).models:
        check(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
