"""Moving between neurons with the arrow keys: within a layer and from layer to layer.

Pure Python. Up and Down step through a layer's neurons in their numbering
(the order the cards and the labels use); Left and Right go to the previous
or next layer, to the neuron at the same relative height; Home and End go to
a layer's first and last neuron. The layer order and widths come from the
network, so this holds for any shape; one Tab stop per layer is enough.
"""

from __future__ import annotations

from typing import Sequence

KEYS = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End")


def move(layers: Sequence[tuple[str, int]], current: tuple[str, int], key: str) -> tuple[str, int] | None:
    """The neuron ``key`` moves to from ``current``; None where there is nowhere to go.

    ``layers`` is [(name, units), ...] in the network's order.
    """
    names = [name for name, _ in layers]
    if key not in KEYS or current[0] not in names:
        return None
    pos = names.index(current[0])
    units = layers[pos][1]
    index = min(max(current[1], 0), units - 1)
    if key == "ArrowUp":
        return (current[0], index - 1) if index > 0 else None
    if key == "ArrowDown":
        return (current[0], index + 1) if index < units - 1 else None
    if key == "Home":
        return (current[0], 0)
    if key == "End":
        return (current[0], units - 1)
    step = -1 if key == "ArrowLeft" else 1
    if not 0 <= pos + step < len(layers):
        return None
    name, other = layers[pos + step]
    # the same relative height: top to top, bottom to bottom, evenly between (a lone neuron: the middle)
    if units == 1:
        return name, (other - 1) // 2
    return name, int(index * (other - 1) / (units - 1) + 0.5)
