"""The page's state as a URL hash, so any view can be shared, bookmarked and gone Back to.

Format: ``#sample=42&neuron=hidden_1:3&ko=hidden_1:3,7;hidden_2:5&mode=draw``.
Every key is optional; unknown keys are ignored, bad values are dropped (a
hand-edited link never breaks the page). Pure Python, no browser imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote


@dataclass
class State:
    sample: int | None = None
    neuron: tuple[str, int] | None = None  # (layer name, index) of the open card
    knocked_out: dict[str, list[int]] = field(default_factory=dict)
    mode: str = "sample"  # "sample" or "draw"

    def with_(self, **changes) -> "State":
        values = {**self.__dict__, **changes}
        return State(**values)


def _int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def parse(hash_text: str, layer_units: dict[str, int] | None = None, samples: int | None = None) -> State:
    """``#sample=...`` -> State. With ``layer_units``/``samples``, out-of-range values are dropped."""
    pairs = dict(parse_qsl(hash_text.lstrip("#"), keep_blank_values=True))
    state = State()
    sample = _int(pairs.get("sample", ""))
    if sample is not None and (samples is None or sample < samples):
        state.sample = sample
    if "neuron" in pairs and ":" in pairs["neuron"]:
        name, _, idx = pairs["neuron"].partition(":")
        index = _int(idx)
        if index is not None and (layer_units is None or index < layer_units.get(name, 0)):
            state.neuron = (name, index)
    for group in filter(None, pairs.get("ko", "").split(";")):
        name, _, indices = group.partition(":")
        valid = sorted(
            {i for i in (_int(x) for x in indices.split(",")) if i is not None and (layer_units is None or i < layer_units.get(name, 0))}
        )
        if valid:
            state.knocked_out[name] = valid
    if pairs.get("mode") == "draw":
        state.mode = "draw"
    return state


def format(state: State) -> str:  # noqa: A001 (mirrors parse)
    parts = []
    if state.mode == "draw":
        parts.append("mode=draw")
    if state.sample is not None:
        parts.append(f"sample={state.sample}")
    if state.neuron is not None:
        parts.append(f"neuron={quote(state.neuron[0])}:{state.neuron[1]}")
    groups = [f"{quote(name)}:{','.join(map(str, sorted(idx)))}" for name, idx in sorted(state.knocked_out.items()) if idx]
    if groups:
        parts.append("ko=" + ";".join(groups))
    return "#" + "&".join(parts) if parts else ""
