"""The page's state as a URL hash, so any view can be shared, bookmarked and gone Back to.

Format: ``#model=relu&sample=42&neuron=hidden_1:3&ko=hidden_1:3,7;hidden_2:5&mode=draw``, and for
the "why" panel ``why=ig`` (the attribution method), ``class=5`` or ``class=6-5`` (6 rather than 5),
``attack=3`` (make it a 3) and ``applied=1`` (the changed digit shown in the network).
Every key is optional. A hand-edited link never breaks the page: :func:`read`
turns any hash into the nearest valid state and says, in plain words, what it
ignored or changed; the page then shows that state and rewrites the address
to ``format(state)``. Pure Python, no browser imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence
from urllib.parse import parse_qsl, quote

MODES = ("sample", "draw", "train", "atlas")  # atlas: test digits, with the atlas open
KEYS = ("model", "mode", "sample", "neuron", "ko", "why", "class", "attack", "applied")
WHY_METHODS = ("gradxinput", "ig", "occlusion")  # the first is the default
MAX_NOTE_VALUE = 24  # characters of a bad value quoted back in a note


@dataclass
class State:
    sample: int | None = None
    neuron: tuple[str, int] | None = None  # (layer name, index) of the open card
    knocked_out: dict[str, list[int]] = field(default_factory=dict)
    mode: str = "sample"  # one of MODES
    model: str | None = None  # the model's id (None: the default one)
    extra: dict[str, str] = field(default_factory=dict)  # keys another part of the page reads (train settings)
    why: str = WHY_METHODS[0]  # the attribution method
    target: int | tuple[int, int] | None = None  # the class attributed (a pair: the first rather than the second)
    attack: int | None = None  # "make it a ...": the target class
    applied: bool = False  # the attack's changed digit is what the network is shown

    def with_(self, **changes) -> "State":
        values = {**self.__dict__, **changes}
        return State(**values)


@dataclass
class Context:
    """What a valid state may name: the model's layers, the test set's size, the models."""

    layer_units: Mapping[str, int] | None = None  # every layer's name -> units, in order
    knockable: Sequence[str] | None = None  # layers whose units can be knocked out (None: all)
    samples: int | None = None  # test digits
    models: Sequence[str] | None = None  # model ids
    default_model: str | None = None
    extra_keys: Sequence[str] = ()  # keys kept as they are for another reader (train settings)
    classes: int | None = None  # the output layer's classes


def _int(text: str) -> int | None:
    text = text.strip()
    if not text or not (text.isdigit() and text.isascii()) or len(text) > 9:
        return None
    return int(text)


def _quoted(text: str) -> str:
    text = text if len(text) <= MAX_NOTE_VALUE else text[: MAX_NOTE_VALUE - 1] + "…"
    return repr(text)


def read(hash_text: str, ctx: Context | None = None) -> tuple[State, list[str]]:
    """Any hash -> (the nearest valid state, notes on what was ignored or changed)."""
    ctx = ctx or Context()
    notes: list[str] = []
    try:
        pairs = parse_qsl(str(hash_text).lstrip("#"), keep_blank_values=True)
    except ValueError:
        return State(), ["the address could not be read: showing the start"]
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values and values[key] != value:
            notes.append(f"{key} was given twice: using the last ({_quoted(value)})")
        values[key] = value
    state = State()
    unknown = [k for k in values if k not in KEYS and k not in ctx.extra_keys]
    if unknown:
        notes.append("ignored unknown " + ("key " if len(unknown) == 1 else "keys ") + ", ".join(map(_quoted, unknown[:5])))
    state.extra = {k: values[k] for k in ctx.extra_keys if k in values}

    if "model" in values:
        model = values["model"]
        if ctx.models is None or model in ctx.models:
            state.model = None if model == ctx.default_model else model
        else:
            notes.append(f"no model named {_quoted(model)}: showing the default")

    if "mode" in values:
        if values["mode"] in MODES:
            state.mode = values["mode"]
        else:
            notes.append(f"mode {_quoted(values['mode'])} is unknown: showing test digits")

    if "sample" in values:
        sample = _int(values["sample"])
        last = None if ctx.samples is None else ctx.samples - 1
        if sample is None:
            span = "" if last is None else f" from 0 to {last}"
            notes.append(f"sample {_quoted(values['sample'])} is not a test digit's number{span}: showing test digit 0")
        elif last is not None and sample > last:
            notes.append(f"there is no test digit {sample}: showing the last one, {last}")
            state.sample = last
        else:
            state.sample = sample

    units = ctx.layer_units
    if "neuron" in values:
        name, _, idx = values["neuron"].partition(":")
        index = _int(idx)
        if index is None or (units is not None and name not in units):
            notes.append(f"no neuron {_quoted(values['neuron'])}: no card opened")
        elif units is not None and index >= units[name]:
            notes.append(f"layer {_quoted(name)} has {units[name]} neurons, not {index + 1}: no card opened")
        else:
            state.neuron = (name, index)

    knockable = ctx.knockable
    for group in filter(None, values.get("ko", "").split(";")):
        name, _, indices = group.partition(":")
        if (units is not None and name not in units) or (knockable is not None and name not in knockable):
            why = "cannot be knocked out" if units is not None and name in units else "is not a layer"
            notes.append(f"knock-out: {_quoted(name)} {why}: ignored")
            continue
        valid, bad = set(), []
        for text in indices.split(","):
            i = _int(text)
            if i is None or (units is not None and i >= units[name]):
                bad.append(text)
            else:
                valid.add(i)
        if bad:
            notes.append(f"knock-out: {_quoted(name)} has no neuron {', '.join(map(_quoted, bad[:5]))}: ignored")
        if valid:
            state.knocked_out[name] = sorted(valid | set(state.knocked_out.get(name, ())))
    _read_why(values, ctx, state, notes)
    return state, notes


def _class(text: str, classes: int | None) -> int | None:
    k = _int(text)
    return None if k is None or (classes is not None and k >= classes) else k


def _read_why(values: dict, ctx: Context, state: State, notes: list[str]) -> None:
    """The why panel's keys: a method, a class (or two), an attack target; a bad one is dropped."""
    if "why" in values:
        if values["why"] in WHY_METHODS:
            state.why = values["why"]
        else:
            notes.append(f"attribution method {_quoted(values['why'])} is unknown (one of {', '.join(WHY_METHODS)}): using {WHY_METHODS[0]}")
    if "class" in values:
        parts = values["class"].split("-")
        picked = [_class(p, ctx.classes) for p in parts]
        if len(parts) > 2 or None in picked or (len(picked) == 2 and picked[0] == picked[1]):
            notes.append(f"no class {_quoted(values['class'])}: explaining the network's answer")
        else:
            state.target = picked[0] if len(picked) == 1 else (picked[0], picked[1])
    if "attack" in values:
        target = _class(values["attack"], ctx.classes)
        if target is None:
            notes.append(f"no class {_quoted(values['attack'])} to make it: no change searched for")
        else:
            state.attack = target
            state.applied = values.get("applied") == "1"
    if "applied" in values and not state.applied:
        notes.append(f"applied={_quoted(values['applied'])} needs applied=1 and attack=<class>: ignored")


def parse(hash_text: str, layer_units: dict[str, int] | None = None, samples: int | None = None) -> State:
    """``#sample=...`` -> the nearest valid State (see :func:`read` for what is said about it)."""
    return read(hash_text, Context(layer_units=layer_units, samples=samples))[0]


def format(state: State) -> str:  # noqa: A001 (mirrors parse)
    parts = []
    if state.model is not None:
        parts.append(f"model={quote(state.model)}")
    if state.mode != "sample":
        parts.append(f"mode={state.mode}")
    if state.sample is not None:
        parts.append(f"sample={state.sample}")
    if state.neuron is not None:
        parts.append(f"neuron={quote(state.neuron[0])}:{state.neuron[1]}")
    groups = [f"{quote(name)}:{','.join(map(str, sorted(idx)))}" for name, idx in sorted(state.knocked_out.items()) if idx]
    if groups:
        parts.append("ko=" + ";".join(groups))
    if state.why != WHY_METHODS[0]:
        parts.append(f"why={state.why}")
    if state.target is not None:
        parts.append("class=" + (f"{state.target[0]}-{state.target[1]}" if isinstance(state.target, tuple) else str(state.target)))
    if state.attack is not None:
        parts.append(f"attack={state.attack}" + ("&applied=1" if state.applied else ""))
    parts += [f"{quote(k)}={quote(v)}" for k, v in state.extra.items()]
    return "#" + "&".join(parts) if parts else ""
