"""Matrix products summed in one fixed order: the same bits in CPython and in the browser.

Training must give the same weights everywhere, bit for bit (see train.py).
Every sum it needs runs left to right over the summed index, from 0. The
browser's numpy has no BLAS: its matrix product is exactly that loop, and
fast. CPython's numpy hands products to OpenBLAS, which adds in blocks, so
there the same loop runs as numpy slices.
"""

from __future__ import annotations

import functools
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


@functools.cache
def matmul_in_order() -> bool:
    """The browser's numpy (no BLAS) multiplies matrices with the plain three-loop product, which is exactly
    _dot_slices's order: checked once, not assumed, at the first exact product that asks (not at import: the
    page's start needs no exact product, and the check with its numpy.random costs a tenth of a second there)."""
    return sys.platform == "emscripten" and _matmul_is_left_to_right()


#: einsum re-reads the right-hand matrix once per result row: when that matrix has this many rows or more,
#: rows_product runs on blocks of EINSUM_BLOCK columns that stay in the CPU's cache (about 1.5x faster
#: for a 3x3 conv over 12 channels; a smaller inner size gains nothing and pays the loop)
EINSUM_BLOCK_DEPTH = 32
EINSUM_BLOCK = 8192


def rows_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (float64) by einsum on C-ordered copies of both: its loop runs over the summed index outside
    and along a row of the result inside, a term of every sum of the row at a time (numpy without BLAS:
    about twice its matrix product's speed for rows of 32 values or more)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if b.shape[0] < EINSUM_BLOCK_DEPTH or b.shape[1] <= EINSUM_BLOCK:
        return np.einsum("ik,kj->ij", a, b)
    out = np.empty((a.shape[0], b.shape[1]))
    for start in range(0, b.shape[1], EINSUM_BLOCK):
        np.einsum("ik,kj->ij", a, b[:, start : start + EINSUM_BLOCK], out=out[:, start : start + EINSUM_BLOCK])
    return out


def _rows_product_is_left_to_right() -> bool:
    """Does rows_product add each element's terms left to right from 0 when the result's rows have two
    values or more (a term of each sum at a time, every sum in its own place)? With one column, or
    operands in another memory order, einsum sums along a row instead: not the same bits."""
    rng = np.random.default_rng(1)
    for m, k, n in ((16, 72, 300), (8, 9, 40), (72, 16, 2), (3, 300, 7), (1, 5, 9000), (5, 1, 3),
                    (2, EINSUM_BLOCK_DEPTH, EINSUM_BLOCK + 9)):
        a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-30, 30, (m, k)))
        block = rng.standard_normal((k, min(n, 61))) * np.exp2(rng.integers(-30, 30, (k, min(n, 61))))
        b = np.tile(block, (1, -(-n // block.shape[1])))[:, :n]  # (wide ones from a block: this runs at start-up)
        if not np.array_equal(rows_product(a, b.T.copy().T), _dot_slices(a, b)):  # (b given in column order)
            return False
    return True


@functools.cache
def einsum_in_order() -> bool:
    """... and so does rows_product (checked the same way, at the first exact pass that asks): the passes of a
    conv layer, whose results have rows of thousands of values, run on it there, exact or not."""
    return matmul_in_order() and _rows_product_is_left_to_right()


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The matrix product of 2-D float64 arrays, each element summed left to right from 0.

    The result does not depend on the numpy build: the browser's matrix
    product already adds in that order; elsewhere it is done by slices.
    """
    if matmul_in_order():
        return _matmul_in_order(a, b)
    return _dot_slices(a, b)


def column_sums(x: np.ndarray) -> np.ndarray:
    """Sum over the rows (axis 0), left to right, as (1, columns)."""
    return dot(np.ones((1, x.shape[0])), x)
