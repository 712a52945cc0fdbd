"""Activation functions as data: each one's function, derivative and value range.

Pure numpy, shared by the forward pass (network.py), training (the derivative)
and drawing (the range picks the colour scale). A manifest names an activation
by its key in ``REGISTRY``; nothing else in the project lists activations.

``derivative(z, a)`` takes both the net input ``z`` and the activation
``a = function(z)``, so that each activation can use whichever is cheaper
(sigmoid's is ``a * (1 - a)``, relu's looks at ``z``). Softmax is the output
layer's activation only: its derivative is taken together with the
cross-entropy loss (``probabilities - one_hot``), never on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-|z|) never overflows; both branches agree with 1 / (1 + exp(-z)).
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def linear(z: np.ndarray) -> np.ndarray:
    return z


def _softmax_derivative(z, a):
    raise ValueError("softmax's derivative is taken with the cross-entropy loss: use probabilities - one_hot")


@dataclass(frozen=True)
class Activation:
    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]  # d a / d z, from (z, a)
    low: float | None  # the smallest value it can take (None: unbounded)
    high: float | None  # the largest (None: unbounded)
    hidden: bool = True  # may a hidden layer use it (softmax: output only)
    formula: str = ""

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def symmetric(self) -> bool:
        """Centred on 0 (tanh): drawn with a diverging scale."""
        return self.low is not None and self.high is not None and self.low == -self.high


REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, lambda z, a: a * (1 - a), 0.0, 1.0, formula="1 / (1 + e^-z)"),
        Activation("tanh", np.tanh, lambda z, a: 1 - a * a, -1.0, 1.0, formula="tanh(z)"),
        Activation("relu", relu, lambda z, a: (z > 0).astype(z.dtype), 0.0, None, formula="max(0, z)"),
        Activation("linear", linear, lambda z, a: np.ones_like(z), None, None, formula="z"),
        Activation("softmax", softmax, _softmax_derivative, 0.0, 1.0, hidden=False, formula="e^z_i / sum_j e^z_j"),
    )
}

HIDDEN = tuple(name for name, a in REGISTRY.items() if a.hidden)
OUTPUT = "softmax"  # the output layer's activation: probabilities over the classes


def get(name: str) -> Activation:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; known: {', '.join(REGISTRY)}") from None
