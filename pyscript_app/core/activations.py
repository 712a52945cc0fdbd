"""Activation functions as data: each one's function, derivative and value range.

Pure numpy, shared by the forward pass (network.py), training (the derivative)
and drawing (the range picks the colour scale). A manifest names an activation
by its key in ``REGISTRY``; nothing else in the project lists activations.

``derivative(z, a)`` takes both the net input ``z`` and the activation
``a = function(z)``, so that each activation can use whichever is cheaper
(sigmoid's is ``a * (1 - a)``, relu's looks at ``z``). Softmax is the output
layer's activation only: its derivative is taken together with the
cross-entropy loss (``probabilities - one_hot``), never on its own.

``portable(z)`` is the same function computed from +, -, *, / and exact
operations only (no ``np.exp`` or ``np.tanh``, whose last bit depends on the
numpy build: CPython's numpy on an AVX-512 machine has its own exp, the
browser's uses the C library's), so it gives bit-identical float64 results on
every platform. Training uses it: a one-ulp difference in an activation would
grow, step by step, into different weights in the browser and in CPython.
"""

from __future__ import annotations

import math
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


# --- portable versions: the same bits everywhere -----------------------------

_LOG2E = 1.4426950408889634
# ln 2 split so that k * _LN2_HI is exact for |k| < 2**11 (its last 21 bits are zero)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(14))  # e^r for |r| <= ln(2) / 2: error < 1e-17
_SQRT_HALF = 0.7071067811865476
_ATANH_SERIES = tuple(1.0 / (2 * n + 1) for n in range(12))  # 2 atanh(f) / (2 f), |f| <= 0.172


def exp_portable(x: np.ndarray) -> np.ndarray:
    """e**x in float64 from exact range reduction and a polynomial (within ~2 ulp)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        xc = np.clip(x, -746.0, 709.0)
        k = np.rint(xc * _LOG2E)
        r = (xc - k * _LN2_HI) - k * _LN2_LO
        p = np.full_like(r, _EXP_TAYLOR[-1])
        for c in _EXP_TAYLOR[-2::-1]:
            p *= r
            p += c
        k_int = np.where(np.isfinite(k), k, 0.0).astype(np.int32)
        out = np.ldexp(p, k_int)
    out[x < -746.0] = 0.0
    out[x > 709.78] = np.inf
    return out


def log_portable(x: np.ndarray) -> np.ndarray:
    """Natural log (float64, x > 0) from frexp and the atanh series (within ~2 ulp)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    small = m < _SQRT_HALF
    m = np.where(small, m * 2.0, m)
    e = (e - small).astype(np.float64)
    f = (m - 1.0) / (m + 1.0)
    f2 = f * f
    p = np.full_like(f, _ATANH_SERIES[-1])
    for c in _ATANH_SERIES[-2::-1]:
        p *= f2
        p += c
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * f * p)


def sum_last_axis(x: np.ndarray) -> np.ndarray:
    """Sum over the last axis, strictly left to right (keepdims): the same order everywhere."""
    s = x[..., 0:1].copy()
    for j in range(1, x.shape[-1]):
        s += x[..., j : j + 1]
    return s


def sigmoid_portable(z: np.ndarray) -> np.ndarray:
    e = exp_portable(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh_portable(z: np.ndarray) -> np.ndarray:
    t = exp_portable(-2.0 * np.abs(z))
    return np.copysign((1.0 - t) / (1.0 + t), z)


def relu_portable(z: np.ndarray) -> np.ndarray:
    # np.maximum's choice between -0.0 and 0.0 differs between SIMD builds; where() does not.
    return np.where(z > 0, z, 0.0)


def softmax_portable(z: np.ndarray) -> np.ndarray:
    e = exp_portable(z - z.max(axis=-1, keepdims=True))
    return e / sum_last_axis(e)


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
    portable: Callable[[np.ndarray], np.ndarray] | None = None  # bit-identical everywhere (None: function is)

    def exact(self, z: np.ndarray) -> np.ndarray:
        """The activation of float64 ``z`` with the same bits on every platform (training uses it)."""
        return (self.portable or self.function)(z)

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
        Activation("sigmoid", sigmoid, lambda z, a: a * (1 - a), 0.0, 1.0, formula="1 / (1 + e^-z)",
                   portable=sigmoid_portable),
        Activation("tanh", np.tanh, lambda z, a: 1 - a * a, -1.0, 1.0, formula="tanh(z)", portable=tanh_portable),
        Activation("relu", relu, lambda z, a: (z > 0).astype(z.dtype), 0.0, None, formula="max(0, z)",
                   portable=relu_portable),
        Activation("linear", linear, lambda z, a: np.ones_like(z), None, None, formula="z"),
        Activation("softmax", softmax, _softmax_derivative, 0.0, 1.0, hidden=False, formula="e^z_i / sum_j e^z_j",
                   portable=softmax_portable),
    )
}

HIDDEN = tuple(name for name, a in REGISTRY.items() if a.hidden)
OUTPUT = "softmax"  # the output layer's activation: probabilities over the classes


def get(name: str) -> Activation:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; known: {', '.join(REGISTRY)}") from None
