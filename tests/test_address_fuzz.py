"""No address breaks the page: a few hundred generated hashes set on a running page.

After each one the page is ready, shows a valid state (the digit, the card
and the knock-outs of that state), the address is exactly ``state.format``
of the state shown (state.read, the pure function, is tested in
test_state.py), no Python error escaped and no dialog opened.
"""

from __future__ import annotations

import json
import random
from urllib.parse import quote

import pytest

from conftest import watch
from pyscript_app.core import explain
from pyscript_app.core import state as st
from pyscript_app.core import train

KEYS = ["sample", "neuron", "ko", "mode", "model", "x", "Sample", "", "neuron ", "&", "ko;"]
WEIRD = ["", "-1", "abc", "1e3", "0x10", "٣", "9999", "10000", "99999999999", " 5", "5 ", "+7", "3.0",
         "<script>", "\"'", "%", "%zz", "\u00e9", "hidden_1", "output", ":", ";", ",", "..", "🙂" * 3, "a" * 300]


def value_for(key, rng, network):
    layers = [layer.name for layer in network.layers]
    if key == "sample" and rng.random() < 0.6:
        return str(rng.choice([0, 1, 42, 9999, rng.randrange(10000)]))
    if key == "neuron" and rng.random() < 0.6:
        name = rng.choice(layers + ["nope"])
        return f"{name}:{rng.choice([0, 3, 31, 32, 511, -1])}"
    if key == "ko" and rng.random() < 0.6:
        groups = [f"{rng.choice(layers + ['x'])}:{','.join(str(rng.choice([0, 1, 9, 31, 40, -2])) for _ in range(rng.randrange(1, 4)))}"
                  for _ in range(rng.randrange(1, 3))]
        return ";".join(groups)
    if key == "mode" and rng.random() < 0.6:
        return rng.choice(["sample", "draw", "train", "DRAW", ""])
    if key == "model" and rng.random() < 0.5:
        return rng.choice(["seed", "nope", "SEED", ""])
    return rng.choice(WEIRD)


def hashes(network, count=300, seed=1234):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(0, 6)):
            key = rng.choice(KEYS)
            value = value_for(key, rng, network)
            if rng.random() < 0.3:
                value = quote(value, safe="")
            parts.append(f"{key}={value}" if rng.random() > 0.05 else key)
        joiner = rng.choice(["&", "&", "&", "&&", ";"])
        out.append("#" + joiner.join(parts))
    return out


SHOWN = """() => ({
  hash: location.hash,
  status: document.getElementById('status').dataset.state,
  model: document.getElementById('view').dataset.model,
  mode: document.body.dataset.mode || 'sample',
  sample: (document.getElementById('input-image') || {dataset: {}}).dataset.sampleIndex,
  card: document.getElementById('neuron-card') && [document.getElementById('neuron-card').dataset.layer, +document.getElementById('neuron-card').dataset.index],
  ko: [...document.querySelectorAll('#view [data-knocked-out]')].map(n => n.dataset.layer + ':' + n.dataset.index),
})"""

SET_HASH = """(h) => new Promise((done) => {
  const finish = () => setTimeout(done, 0);  // after the page's own hashchange listener
  addEventListener('hashchange', finish, { once: true });
  setTimeout(done, 400);  // an address equal to the current one fires no hashchange
  location.hash = h;
})"""


@pytest.fixture(scope="module")
def fuzzed(browser, site_server, seed_export):
    context = browser.new_context()
    w = watch(context, site_server.url)
    dialogs = []
    w.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert w.goto("") == "ready"
    yield w, dialogs
    context.close()


def test_any_address_gives_a_valid_state_and_the_address_says_it(fuzzed, seed_export):
    w, dialogs = fuzzed
    network, testset = seed_export
    page = w.page
    ids = json.loads(page.evaluate("JSON.stringify([...document.querySelectorAll('#model-picker option')].map(o => o.value))"))
    ctx = st.Context(
        layer_units={layer.name: layer.units for layer in network.layers},
        knockable=explain.knockable_layers(network), samples=len(testset), models=ids, default_model="seed",
        extra_keys=train.KEYS,
    )
    checked = 0
    for text in hashes(network):
        encoded = page.evaluate("h => new URL(h, location.href).hash", text)  # as the browser percent-encodes it
        page.evaluate(SET_HASH, text)
        got = page.evaluate(SHOWN)
        assert got["status"] == "ready", (text, got)
        if got["model"] != "seed":
            continue  # (no other model is named validly here; see test_models_page for switching)
        # what the page shows is the state the address reads as, and the address is that state, formatted
        shown_state = st.read(got["hash"], ctx)[0]
        assert st.format(shown_state) == got["hash"], (text, got)
        expected = st.read(encoded, ctx)[0]
        if expected.mode == "train":  # Train mode writes the nearest valid training settings, every key
            expected = expected.with_(extra=train.Settings.from_params(expected.extra)[0].to_params())
        assert st.format(expected) == got["hash"], (text, encoded, got)
        if shown_state.mode == "draw":
            assert got["mode"] == "draw"
        else:
            assert got["sample"] == str(shown_state.sample or 0), (text, got)
            assert got["card"] == (list(shown_state.neuron) if shown_state.neuron else None), (text, got)
            assert sorted(got["ko"]) == sorted(f"{n}:{i}" for n, units in shown_state.knocked_out.items() for i in units)
        checked += 1
    assert checked >= 250
    assert w.errors == [] and dialogs == [] and w.outside == []
