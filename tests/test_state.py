"""pyscript_app.core.state: any address becomes the nearest valid state, and says what it changed."""

from __future__ import annotations

import random
import string

import pytest

from pyscript_app.core import state

# A made-up network: the state code must not care about the committed model's shape.
UNITS = {"first": 16, "second": 8, "third": 4, "out": 10}
CTX = state.Context(layer_units=UNITS, knockable=["first", "second", "third"], samples=500,
                    models=["seed", "relu"], default_model="seed")


def read(text):
    return state.read(text, CTX)


@pytest.mark.parametrize(
    "s",
    [
        state.State(),
        state.State(sample=5),
        state.State(sample=499, neuron=("first", 15), knocked_out={"first": [0, 3], "third": [2]}),
        state.State(mode="draw", neuron=("out", 2)),
        state.State(mode="train", model="relu", sample=7),
    ],
)
def test_valid_states_round_trip_without_notes(s):
    assert read(state.format(s)) == (s, [])


def test_format_is_readable():
    s = state.State(sample=12, neuron=("first", 3), knocked_out={"second": [7, 1]}, model="relu")
    assert state.format(s) == "#model=relu&sample=12&neuron=first:3&ko=second:1,7"


@pytest.mark.parametrize(
    "text, expected, said",
    [
        ("#sample=abc", state.State(), "sample 'abc' is not a test digit's number from 0 to 499"),
        ("#sample=-1", state.State(), "sample '-1'"),
        ("#sample=500", state.State(sample=499), "no test digit 500: showing the last one, 499"),
        ("#sample=1e3", state.State(), "sample '1e3'"),
        ("#sample=٣", state.State(), "sample '٣'"),  # a digit, but not an ASCII one
        ("#neuron=first:16", state.State(), "layer 'first' has 16 neurons, not 17"),
        ("#neuron=nolayer:1", state.State(), "no neuron 'nolayer:1'"),
        ("#neuron=first", state.State(), "no neuron 'first'"),
        ("#ko=out:3", state.State(), "'out' cannot be knocked out"),
        ("#ko=first:x,99,2", state.State(knocked_out={"first": [2]}), "'first' has no neuron 'x', '99'"),
        ("#ko=ghost:1", state.State(), "'ghost' is not a layer"),
        ("#mode=fly", state.State(), "mode 'fly' is unknown"),
        ("#model=nope&sample=3", state.State(sample=3), "no model named 'nope'"),
        ("#model=seed", state.State(), None),  # the default model is not written out
        ("#garbage", state.State(), "ignored unknown key 'garbage'"),
        ("#sample=3&sample=4", state.State(sample=4), "sample was given twice"),
        ("#sample=3&sample=3", state.State(sample=3), None),
    ],
)
def test_bad_values_give_the_nearest_valid_state_and_say_so(text, expected, said):
    got, notes = read(text)
    assert got == expected
    if said is None:
        assert notes == []
    else:
        assert any(said in n for n in notes), notes


def test_knock_outs_of_one_layer_given_twice_are_merged():
    assert read("#ko=first:1;first:4,1")[0].knocked_out == {"first": [1, 4]}


def test_extra_keys_are_kept_for_their_reader():
    ctx = state.Context(layer_units=UNITS, samples=10, extra_keys=("lr", "seed"))
    s, notes = state.read("#mode=train&lr=0.01&seed=x", ctx)
    assert notes == [] and s.extra == {"lr": "0.01", "seed": "x"}
    assert state.read(state.format(s), ctx) == (s, [])


def _random_hash(rng: random.Random) -> str:
    keys = list(state.KEYS) + ["", "x", "%", "&", "sample%3D1", "ko;"]
    values = ["", "0", "-1", "499", "500", "9" * 30, "first:3", "out:9", "first:1,2;second:7", "draw", "train", "relu",
              "%ZZ", "%00", "\u202e", "'\"<>", ":", ";;", ",", "first:", "first:%31"]
    parts = []
    for _ in range(rng.randint(0, 6)):
        key = rng.choice(keys) if rng.random() < 0.8 else "".join(rng.choices(string.printable, k=rng.randint(0, 6)))
        value = rng.choice(values) if rng.random() < 0.8 else "".join(rng.choices(string.printable, k=rng.randint(0, 12)))
        parts.append(f"{key}={value}" if rng.random() < 0.9 else key)
    return "#" + rng.choice("&;").join(parts) if rng.random() < 0.1 else "#" + "&".join(parts)


def test_any_hash_reads_to_a_state_that_formats_back_to_itself():
    rng = random.Random(12)
    for _ in range(3000):
        text = _random_hash(rng)
        s, notes = read(text)
        again, more = read(state.format(s))
        assert again == s and more == [], text
        assert s.sample is None or 0 <= s.sample < 500
        assert s.neuron is None or 0 <= s.neuron[1] < UNITS[s.neuron[0]]
        assert all(name in CTX.knockable and all(0 <= i < UNITS[name] for i in idx) for name, idx in s.knocked_out.items())
        assert all(isinstance(n, str) and n for n in notes)
