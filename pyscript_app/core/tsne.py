"""t-SNE in numpy, for the atlas of a network that has no build-time map (opened, or changed by training).

The algorithm is scikit-learn's exact t-SNE (``TSNE(method="exact")``), step for step, so that the
tests can hold it to scikit-learn's result: the affinities by a binary search for each digit's
Gaussian width at the perplexity asked (30), symmetrised; then gradient descent on the
Kullback-Leibler divergence between them and a Student-t kernel in 2-D, with early exaggeration
(12) for the first 250 iterations at momentum 0.5, momentum 0.8 after, per-coordinate gains and
scikit-learn's automatic learning rate. It starts from the layer's two principal axes scaled to a
standard deviation of 1e-4, as scikit-learn's ``init="pca"`` does.

Exact t-SNE costs n^2 per iteration, so the page maps a subset (:data:`DIGITS`, the first test
digits) in idle time: every function here is a generator of small steps (a block of rows at a time)
that yields its progress and returns its result (``StopIteration.value``). In the browser a block's
rows are sized by time (pacing.idle_sizer); in CPython every run takes the same blocks.
"""

from __future__ import annotations

import math

import numpy as np

from pyscript_app.core import pacing
from pyscript_app.core.pacing import run

DIGITS = 1000  # the first test digits: the page's map of a network with no build-time map
PERPLEXITY = 30.0
EXAGGERATION = 12.0
EXPLORATION = 250  # iterations with the affinities exaggerated
ITERATIONS = 500  # in all (scikit-learn's default is 1000; on 1,000 digits the divergence is within 5 % of it by 500)
CHECK_EVERY = 50  # iterations between two checks of the divergence (stop when it no longer falls)
NO_PROGRESS = 300  # ... for this many iterations
MIN_GRAD_NORM = 1e-7
MIN_GAIN = 0.01
SEARCH_STEPS = 100  # binary search steps for a digit's Gaussian width at most
SEARCH_TOLERANCE = 1e-5  # on the entropy (nats)
EPS = np.finfo(np.double).eps
STEP_CELLS = 60_000  # matrix cells a step handles (about 15 ms in the page's numpy on a fast machine)


def _rows(width: int):
    """The sizer of a step's rows, ``width`` cells a row."""
    return pacing.idle_sizer(STEP_CELLS // max(width, 1))


def distance_steps(x: np.ndarray):
    """(n, n) squared Euclidean distances, as scikit-learn's ``pairwise_distances(squared=True)``, a block of
    rows at a time. Yields (what, fraction done); returns the matrix."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    d = np.empty((n, n))

    def rows(start, stop):
        block = d[start:stop]
        np.matmul(x[start:stop], x.T, out=block)
        block *= -2.0
        block += sq[start:stop, None]
        block += sq[None, :]
        np.maximum(block, 0.0, out=block)

    for done in pacing.spans(n, _rows(n * max(1, x.shape[1] // 8)), rows):
        yield "t-SNE, the distances", done
    np.fill_diagonal(d, 0.0)
    return d


def squared_distances(x: np.ndarray) -> np.ndarray:
    return run(distance_steps(x))


def conditional_steps(distances: np.ndarray, perplexity: float = PERPLEXITY):
    """Each digit's conditional probabilities p(j|i) (a row each, float32 as scikit-learn stores them):
    a Gaussian around it whose width is found by binary search so that the row's entropy is
    log(perplexity). Yields (what, fraction done); returns the (n, n) matrix."""
    d = np.asarray(distances, dtype=np.float32)
    n = len(d)
    target = math.log(perplexity)
    beta = np.ones(n)
    low, high = np.full(n, -np.inf), np.full(n, np.inf)
    active = np.ones(n, dtype=bool)
    p = np.zeros((n, n), dtype=np.float32)

    def search(rows):
        def step(start, stop):
            r = rows[start:stop]
            block = np.exp(-d[r] * beta[r, None]).astype(np.float32)
            block[np.arange(len(r)), r] = 0.0
            total = block.sum(axis=1, dtype=np.float64)
            total[total == 0.0] = 1e-8
            block = (block / total[:, None]).astype(np.float32)
            spread = (d[r] * block).sum(axis=1, dtype=np.float64)
            p[r] = block
            diff = np.log(total) + beta[r] * spread - target
            done = np.abs(diff) <= SEARCH_TOLERANCE
            wider, b = diff > 0.0, beta[r]
            # entropy too high: the Gaussian is too wide, raise beta (halve the gap, or double it)
            new_low = np.where(wider & ~done, b, low[r])
            new_high = np.where(~wider & ~done, b, high[r])
            up = np.where(np.isinf(new_high), b * 2.0, (b + new_high) / 2.0)
            down = np.where(np.isinf(new_low), b / 2.0, (b + new_low) / 2.0)
            beta[r] = np.where(done, b, np.where(wider, up, down))
            low[r], high[r] = new_low, new_high
            active[r[done]] = False
        return step

    sizer = _rows(n)
    for _ in range(SEARCH_STEPS):
        rows = np.flatnonzero(active)
        if len(rows) == 0:
            break
        for _ in pacing.spans(len(rows), sizer, search(rows)):
            yield "t-SNE, the neighbourhoods", float(n - active.sum()) / n
    return p


def joint_steps(conditional: np.ndarray):
    """(n, n) symmetric p_ij = (p(j|i) + p(i|j)) / sum, at least EPS off the diagonal, 0 on it; a block of
    rows at a time (yields None after each). Returns the matrix."""
    c = np.asarray(conditional)
    n = len(c)
    p = np.empty((n, n))

    def add(start, stop):
        p[start:stop] = c[start:stop] + c[:, start:stop].T  # in c's precision, as scikit-learn adds them

    for _ in pacing.spans(n, _rows(n), add):
        yield
    total = max(float(p.sum()), EPS)

    def scale(start, stop):
        block = p[start:stop]
        block /= total
        np.maximum(block, EPS, out=block)

    for _ in pacing.spans(n, _rows(n), scale):
        yield
    np.fill_diagonal(p, 0.0)
    return p


def joint_probabilities(conditional: np.ndarray) -> np.ndarray:
    return run(joint_steps(conditional))


def kl_gradient_steps(y: np.ndarray, p: np.ndarray, exaggeration: float = 1.0, error: bool = False, sizers=None):
    """The gradient of KL(P || Q) at the places y (n, 2) (and the divergence when ``error``), a block of rows
    at a time (yields None after each). Q is the Student-t kernel 1 / (1 + |y_i - y_j|^2), normalised.
    ``sizers``: row sizers kept from one iteration to the next (see :func:`_sizers`).
    Returns (divergence or nan, gradient)."""
    n = len(y)
    kernel_rows, gradient_rows, divergence_rows = sizers or _sizers(n)
    kernel = np.empty((n, n))
    row_sums = np.empty(n)  # the kernel's sum is the sum of its rows' sums, whatever the blocks

    def kernel_block(start, stop):
        dx = y[start:stop, 0, None] - y[None, :, 0]
        dy = y[start:stop, 1, None] - y[None, :, 1]
        k = kernel[start:stop]
        np.multiply(dx, dx, out=k)
        k += dy * dy
        k += 1.0
        np.reciprocal(k, out=k)
        k[np.arange(stop - start), np.arange(start, stop)] = 0.0
        row_sums[start:stop] = k.sum(axis=1)

    for _ in pacing.spans(n, kernel_rows, kernel_block):
        yield
    total = float(row_sums.sum())
    grad = np.empty_like(y)
    kl = [0.0]

    def gradient_block(start, stop):
        k = kernel[start:stop]
        q = np.maximum(k / total, EPS)
        pe = p[start:stop] * exaggeration if exaggeration != 1.0 else p[start:stop]
        if error:
            off = pe > 0.0
            kl[0] += float(np.dot(pe[off], np.log(np.maximum(pe[off], EPS) / q[off])))
        w = (pe - q) * k
        grad[start:stop] = 4.0 * (y[start:stop] * w.sum(axis=1)[:, None] - w @ y)

    for _ in pacing.spans(n, divergence_rows if error else gradient_rows, gradient_block):
        yield
    return (kl[0] if error else math.nan), grad


def _sizers(n: int):
    """The row sizers of a gradient's parts: the kernel, the gradient, the gradient with the divergence
    (a few times dearer a row: it is computed every CHECK_EVERY iterations only)."""
    return _rows(n), _rows(n), _rows(n)


def learning_rate(n: int) -> float:
    """scikit-learn's ``learning_rate="auto"``."""
    return max(n / EXAGGERATION / 4.0, 50.0)


def initial_places(pca_xy: np.ndarray) -> np.ndarray:
    """The start: the digits' places on the layer's two principal axes, scaled to a standard deviation of 1e-4
    along the first (as scikit-learn's ``init="pca"``; float32 as it rounds them)."""
    xy = np.asarray(pca_xy, dtype=np.float32)
    scale = float(np.std(xy[:, 0]))
    return (xy / (scale if scale > 0 else 1.0) * 1e-4).astype(np.float32).astype(np.float64)


def descent_steps(p: np.ndarray, y0: np.ndarray, iterations: int = ITERATIONS):
    """Gradient descent on KL(P || Q) from y0: scikit-learn's schedule (its ``_gradient_descent``, twice).
    Yields (what, fraction done); returns the places (n, 2)."""
    y = np.array(y0, dtype=np.float64).reshape(-1, 2)
    rate = learning_rate(len(y))
    update = np.zeros_like(y)
    gains = np.ones_like(y)
    sizers = _sizers(len(y))
    for first, last, momentum, exaggeration, patience in (
            (0, min(EXPLORATION, iterations), 0.5, EXAGGERATION, EXPLORATION),
            (EXPLORATION, iterations, 0.8, 1.0, NO_PROGRESS)):
        best_error, best_iter = np.finfo(float).max, first
        for i in range(first, last):
            check = (i + 1) % CHECK_EVERY == 0
            parts = kl_gradient_steps(y, p, exaggeration, error=check or i == last - 1, sizers=sizers)
            while True:
                try:
                    next(parts)
                except StopIteration as stop:
                    error, grad = stop.value
                    break
                yield "t-SNE, the map", i / iterations
            inc = update * grad < 0.0
            gains[inc] += 0.2
            gains[~inc] *= 0.8
            np.clip(gains, MIN_GAIN, np.inf, out=gains)
            grad *= gains
            update = momentum * update - rate * grad
            y += update
            yield "t-SNE, the map", (i + 1) / iterations
            if check:
                if error < best_error:
                    best_error, best_iter = error, i
                elif i - best_iter > patience:
                    break
                if float(np.sqrt((grad * grad).sum())) <= MIN_GRAD_NORM:
                    break
    return y


def tsne_steps(x: np.ndarray, pca_xy: np.ndarray, perplexity: float = PERPLEXITY, iterations: int = ITERATIONS):
    """The t-SNE map (n, 2) of the rows of x (n, width), starting from their principal-axes places ``pca_xy``.
    Yields (what, fraction of that part done)."""
    n = len(x)
    if n < 2:
        return np.zeros((n, 2))
    perplexity = min(perplexity, (n - 1) / 3.0)  # a perplexity above that has no solution
    distances = yield from distance_steps(x)
    conditional = yield from conditional_steps(distances, perplexity)
    p = yield from pacing.shown_as(joint_steps(conditional), ("t-SNE, the neighbourhoods", 1.0))
    y = yield from descent_steps(p, initial_places(pca_xy), iterations)
    return y
