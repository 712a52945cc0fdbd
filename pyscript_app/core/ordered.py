"""Matrix products summed in one fixed order: the same bits in CPython and in the browser.

Training must give the same weights everywhere, bit for bit (see train.py).
Every sum it needs runs left to right over the summed index, from 0. The
browser's numpy has no BLAS: its matrix product is exactly that loop, and
fast. CPython's numpy hands products to OpenBLAS, which adds in blocks, so
there the same loop runs as numpy slices.
"""

from __future__ import annotations

import sys

import numpy as np


def _dot_slices(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b (float64) added strictly left to right over the inner index, one slice per index."""
    out = np.zeros((a.shape[0], b.shape[1]))
    tmp = np.empty_like(out)
    for k in range(a.shape[1]):
        np.multiply(a[:, k : k + 1], b[k : k + 1, :], out=tmp)
        out += tmp
    return out


def _matmul_in_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # The same loop and order whatever the layout; with b in column order both operands are
    # read contiguously, which makes the browser's product about 1.5x faster.
    return np.matmul(a, np.asfortranarray(b))


def _matmul_is_left_to_right() -> bool:
    """Does this numpy's matrix product add left to right (numpy built without BLAS)?"""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((9, 300)) * np.exp2(rng.integers(-20, 20, (9, 300)))
    b = rng.standard_normal((300, 7))
    return bool(np.array_equal(_matmul_in_order(a, b), _dot_slices(a, b))
                and np.array_equal(_matmul_in_order(a.T[:40].T, b[:40]), _dot_slices(a[:, :40], b[:40]))
                and np.array_equal(_matmul_in_order(a[:, :7].T, b[:9]), _dot_slices(a[:, :7].T, b[:9])))


# The browser's numpy (no BLAS) multiplies matrices with the plain three-loop
# product, which is exactly _dot_slices's order; checked once here, not assumed.
MATMUL_IN_ORDER = sys.platform == "emscripten" and _matmul_is_left_to_right()


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The matrix product of 2-D float64 arrays, each element summed left to right from 0.

    The result does not depend on the numpy build: the browser's matrix
    product already adds in that order; elsewhere it is done by slices.
    """
    if MATMUL_IN_ORDER:
        return _matmul_in_order(a, b)
    return _dot_slices(a, b)


def column_sums(x: np.ndarray) -> np.ndarray:
    """Sum over the rows (axis 0), left to right, as (1, columns)."""
    return dot(np.ones((1, x.shape[0])), x)
