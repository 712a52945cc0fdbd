"""The atlas's numbers: a layer's 2-D map of many digits (PCA), how separable the classes are, per-class summaries.

numpy only. A map is the projection of each digit's activations in one
layer (or its input pixels) onto the layer's first two principal axes:

* ``mean`` is the activations' mean over the digits, ``axes`` the two unit
  eigenvectors of their covariance with the largest eigenvalues, as rows
  (2, width). Sign convention, so that the picture is the same every time:
  each axis's largest-magnitude loading is positive (the first such loading
  on a tie). A digit's place is ``(a - mean) @ axes.T``.
* The covariance is formed in float64 from the centred activations, one
  block of its rows at a time (:func:`pca_steps` yields between blocks so
  the page can run it in idle time), then ``numpy.linalg.eigh``.
* Degenerate layers still give a map and a sentence, never NaN: a layer of
  one unit has a zero second axis (every digit on a line); a layer whose
  activations are all equal gets the first two unit vectors as axes (every
  digit on one point).

Separability (:func:`knn_accuracy`) is a k-nearest-neighbour vote in the
layer's full space, defined exactly so that scikit-learn's
``KNeighborsClassifier(n_neighbors=K, algorithm="brute")`` fitted on the
same references gives the same figure: the references are the first
:data:`REFERENCES` digits, the queries the :data:`QUERIES` digits after them
(fewer when the set is smaller: see :func:`knn_split`); distances are
Euclidean in float64; each query takes its K nearest references (a distance
tie goes to the lower index) and votes their true labels, a tie in the vote
going to the smallest class; the figure is the fraction of queries whose
vote is their own true label.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from pyscript_app.core import pacing
from pyscript_app.core.pacing import run

K = 5  # neighbours in the separability vote
REFERENCES = 2000  # the first digits: the references of the vote
QUERIES = 500  # the digits after them: the queries
KNN_ROWS = 64  # queries per step at most (a step may sort their distances)
LIVE_DIGITS = 2000  # Train mode's live map: the first this many test digits
STEP_MACS = 6_000_000  # multiply-adds per step of the idle-time work (a few ms in the page's numpy)
# The browser's numpy has no BLAS: there einsum's own loops multiply row blocks 5 to 7 times faster than
# matmul does (measured in Pyodide under Node); elsewhere matmul (BLAS) is the fast one.
IN_BROWSER = sys.platform == "emscripten"


def layers(network) -> list:
    """The layers the atlas maps (after the input): every one the view draws; a flatten only reshapes."""
    return [layer for layer in network.layers if layer.kind != "flatten"]


def layer_space(layer, a) -> np.ndarray:
    """A layer's output as the atlas places digits by it, (n, features) or (features,) for one digit. A
    conv2d or maxpool2d layer: each channel's peak (the largest value of its feature map, what the view
    colours), so a digit is one point per channel, as for a dense layer's units; a layer's cached test-set
    values may already be these peaks."""
    a = np.asarray(a)
    if len(layer.output_shape) == 3 and a.shape[-1] == layer.units and a.ndim in (3, 4) \
            and tuple(a.shape[-3:]) == tuple(layer.output_shape):
        return a.reshape(*a.shape[:-3], -1, layer.units).max(axis=-2)
    return a


def rows_times_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` for C-contiguous rows, in whichever way is fast on this numpy."""
    return np.einsum("ij,kj->ik", a, b) if IN_BROWSER else a @ b.T


@dataclass
class Pca:
    """A layer's map: its centre, its two unit axes (rows), and the variance along each."""

    mean: np.ndarray  # (width,) float64
    axes: np.ndarray  # (2, width) float64
    variance: np.ndarray  # (2,) the variance of the digits along each axis
    total: float  # the total variance (the covariance's trace)
    note: str = ""  # a sentence when the layer is degenerate

    @property
    def explained(self) -> np.ndarray:
        """The fraction of the total variance along each axis (0 when there is none)."""
        return self.variance / self.total if self.total > 0 else np.zeros(2)


def sign_convention(axes: np.ndarray) -> np.ndarray:
    """Each axis (a row) turned so that its largest-magnitude loading is positive (the first one on a tie)."""
    axes = np.array(axes, dtype=np.float64)
    for row in axes:
        if row.size and row[int(np.argmax(np.abs(row)))] < 0:
            row *= -1
    return axes + 0.0  # (no negative zeros)


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return x if np.isfinite(x).all() else np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def pca_steps(acts):
    """The PCA of ``acts`` (digits, width) in steps: yields the fraction done, returns a :class:`Pca`.

    Use as ``result = yield from pca_steps(acts)`` in an idle-time generator, or :func:`pca`.
    """
    a = np.asarray(acts)
    if a.ndim == 1:
        a = a[:, None]
    n, width = a.shape
    # The passes over the values (to float64, the finite check, the mean, the centring, the transpose) run
    # a block of digits a step too, like the products; in the browser each kind of block is sized by what
    # the ones before it took (pacing.StepSizer), so that a step is as short on a slow machine.
    total = np.zeros(width)

    def add(start, stop):
        total[:] += _finite(a[start:stop]).sum(axis=0)

    yield from pacing.shown_as(pacing.spans(n, pacing.idle_sizer(STEP_MACS // (8 * max(1, width))), add), 0.0)
    mean = total / n if n else np.zeros(width)
    centred_t = np.empty((width, n))  # (width, digits): each row contiguous

    def centre(start, stop):
        centred_t[:, start:stop] = (_finite(a[start:stop]) - mean).T

    yield from pacing.shown_as(pacing.spans(n, pacing.idle_sizer(STEP_MACS // (8 * max(1, width))), centre), 0.0)
    gram = np.empty((width, width))

    def products(i, stop):
        block = rows_times_rows(centred_t[i:stop], centred_t[i:])
        gram[i:stop, i:] = block
        gram[i:, i:stop] = block.T

    # a block of rows i.. costs (width - i) products of each row: the later blocks are cheaper per row
    yield from pacing.spans(width, pacing.idle_sizer(STEP_MACS // max(1, n * width)), products)
    cov = gram / max(n, 1)
    total = float(np.trace(cov))
    if width == 1:
        axes = np.array([[1.0], [0.0]])
        variance = np.array([total, 0.0])
        note = "This layer has one unit: every digit lies on a line (there is no second axis)."
    elif not total > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))) ** 2:
        axes = np.eye(2, width)
        variance = np.zeros(2)
        note = "Every digit gives this layer the same activations: all of them land on one point."
    else:
        values, vectors = np.linalg.eigh(cov)
        top = np.argsort(values, kind="stable")[::-1][:2]
        axes = vectors[:, top].T
        variance = np.clip(values[top], 0.0, None)
        note = ""
    return Pca(mean=mean, axes=sign_convention(axes), variance=variance, total=max(total, 0.0), note=note)


def pca(acts) -> Pca:
    return run(pca_steps(acts))


def project(pca_: Pca, acts) -> np.ndarray:
    """The places of digits (n, width), or of one digit (width,): ``(a - mean) @ axes.T`` in float64."""
    x = np.asarray(acts, dtype=np.float64)
    one = x.ndim == 1
    xy = _finite(x[None] if one else x) - pca_.mean
    xy = rows_times_rows(xy, pca_.axes)
    return xy[0] if one else xy


def project_steps(pca_: Pca, acts, out: np.ndarray, transform=None):
    """Project ``acts`` into ``out`` (n, 2) a block of rows at a time (``transform`` maps a block first); yields the fraction done."""
    n = len(acts)
    # a block's cost is mostly its passes over the block's values (the transform, the finite check, the
    # centring: about 8 of them), not the 2 multiply-adds a value of the projection
    def place(start, stop):
        block = acts[start:stop]
        out[start:stop] = project(pca_, block if transform is None else transform(block))

    yield from pacing.spans(n, pacing.idle_sizer(STEP_MACS // max(1, 8 * pca_.mean.size)), place)


def align(pca_: Pca, xy: np.ndarray, previous: np.ndarray | None) -> tuple[Pca, np.ndarray]:
    """Turn a new map to match the previous one (the same digits' places): the signed swap of the axes
    (one of 8: swap or not, each axis flipped or not) that brings the points closest to where they were.
    The axes stay principal axes (only their order and signs change), so live refreshes do not flip."""
    if previous is None or len(previous) != len(xy) or not len(xy):
        return pca_, xy
    best, best_score = None, -np.inf
    for order in ((0, 1), (1, 0)):
        for signs in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            moved = xy[:, order] * np.array(signs)
            score = -float(np.sum((moved - previous) ** 2))
            if score > best_score + 1e-12:
                best, best_score = (order, signs), score
    (order, signs) = best
    if order == (0, 1) and signs == (1, 1):
        return pca_, xy
    s = np.array(signs, dtype=np.float64)
    turned = Pca(mean=pca_.mean, axes=pca_.axes[list(order)] * s[:, None], variance=pca_.variance[list(order)],
                 total=pca_.total, note=pca_.note)
    return turned, xy[:, order] * s


def knn_split(n: int) -> tuple[slice, slice]:
    """(references, queries) of the separability vote among ``n`` digits: the first REFERENCES and the
    QUERIES after them; with fewer digits, four fifths are references and the rest (at most QUERIES) queries."""
    refs = min(REFERENCES, (4 * n) // 5)
    return slice(0, refs), slice(refs, refs + min(QUERIES, n - refs))


def knn_steps(acts, labels, k: int = K):
    """:func:`knn_accuracy` in steps (yields the fraction done, returns the accuracy, None with too few digits)."""
    x = _finite(acts)
    labels = np.asarray(labels).astype(np.intp)
    refs, queries = knn_split(len(x))
    r, q = x[refs], x[queries]
    k = min(k, len(r))
    if not len(q) or k < 1:
        return None
    r_sq = np.einsum("ij,ij->i", r, r)
    classes = int(labels.max()) + 1
    right = 0

    def vote(start, stop):
        nonlocal right
        block = q[start:stop]
        d = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * rows_times_rows(block, r) + r_sq[None, :]
        near = np.argpartition(d, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(d, near, axis=1).max(axis=1)
        tied = np.sum(d <= kth[:, None], axis=1) > k  # a tie at the k-th distance (saturated units give many)
        if tied.any():
            near[tied] = np.argsort(d[tied], axis=1, kind="stable")[:, :k]  # the lower indices first
        votes = labels[refs][near]
        counts = np.zeros((len(block), classes), dtype=np.intp)
        np.add.at(counts, (np.repeat(np.arange(len(block)), k), votes.ravel()), 1)
        right += int(np.sum(counts.argmax(axis=1) == labels[queries][start:stop]))

    yield from pacing.spans(len(q), pacing.idle_sizer(min(KNN_ROWS, STEP_MACS // max(1, len(r) * x.shape[1])), KNN_ROWS), vote)
    return right / len(q)


def knn_accuracy(acts, labels, k: int = K) -> float | None:
    """The separability figure (see the module's docstring for exactly what it is)."""
    return run(knn_steps(acts, labels, k))


@dataclass
class ClassSummary:
    label: str
    count: int
    centre: tuple[float, float]
    spread: float  # root-mean-square distance of the class's digits from its centre
    misread: int


def class_summaries(xy: np.ndarray, labels, predicted, class_labels) -> list[ClassSummary]:
    """Per class: its digits' centre on the map, their spread (RMS distance from it), how many are misread."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    out = []
    for c, name in enumerate(class_labels):
        mine = labels == c
        count = int(mine.sum())
        if count:
            pts = xy[mine]
            centre = pts.mean(axis=0)
            spread = float(np.sqrt(np.mean(np.sum((pts - centre) ** 2, axis=1))))
        else:
            centre, spread = np.zeros(2), 0.0
        out.append(ClassSummary(str(name), count, (float(centre[0]), float(centre[1])), spread,
                                int(np.sum(mine & (predicted != c)))))
    return out


def separability_sentence(accuracy: float | None, classes: int, k: int = K, queries: int = QUERIES) -> str:
    if accuracy is None:
        return "Too few digits to measure how separable the classes are."
    chance = 100 / max(classes, 1)
    if accuracy < 1.5 / max(classes, 1):
        verdict = "hardly better than guessing (chance is {:.0f} %): the classes are not yet apart here".format(chance)
    elif accuracy < 0.8:
        verdict = "the classes overlap a lot here"
    elif accuracy < 0.95:
        verdict = "most classes are apart, with some overlap"
    else:
        verdict = "the classes are well apart here"
    return (f"A {k}-nearest-neighbour vote in this layer's full space reads {accuracy * 100:.1f} % of "
            f"{queries:,} test digits right: {verdict}.")


@dataclass
class LayerMap:
    """One layer's map of many digits: the PCA, every digit's place, the separability, the labels."""

    layer: str  # the manifest's layer name, or "input"
    pca: Pca
    xy: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,) true classes
    predicted: np.ndarray  # (n,) the network's reading
    separability: float | None
    method: str = "pca"
    digits: np.ndarray | None = None  # the test digits' numbers of the rows (None: 0..n-1)
    extra: dict = field(default_factory=dict)

    @property
    def misread(self) -> np.ndarray:
        return self.labels != self.predicted

    def numbers(self) -> np.ndarray:
        return np.arange(len(self.xy)) if self.digits is None else self.digits


def tagged(what: str, steps, out: dict):
    """Yield (what, fraction) for each step of a core step generator; its return value goes to out[what]."""
    while True:
        try:
            fraction = next(steps)
        except StopIteration as done:
            out[what] = done.value
            return
        yield what, fraction


MEASURE = object()  # map_steps' ``separability``: measure it


def map_steps(layer: str, acts, labels, predicted, previous=None, given: tuple | None = None, transform=None,
              separability=MEASURE):
    """A :class:`LayerMap` of ``acts`` in steps: yields (what is being done, fraction), returns the map.

    ``previous``: the places of the same digits on the map before (the new one is aligned to them).
    ``given``: (Pca, separability) known already (the input layer's, from the build); then ``acts`` are
    projected through ``transform`` (the pixels normalised block by block) and nothing else is computed.
    ``separability``: a figure to state instead of measuring it (a live map's, measured on weights shortly
    before); by default it is measured."""
    got = {}
    n = len(acts)
    if given is None:
        yield from tagged("principal axes", pca_steps(acts), got)
        pca_ = got["principal axes"]
    else:
        pca_, separability = given
    xy = np.empty((n, 2))
    yield from tagged("placing the digits", project_steps(pca_, acts, xy, transform), got)
    pca_, xy = align(pca_, xy, previous)
    if separability is MEASURE:
        yield from tagged("separability", knn_steps(acts, labels), got)
        separability = got["separability"]
    return LayerMap(layer, pca_, xy, np.asarray(labels).astype(np.intp), np.asarray(predicted).astype(np.intp),
                    separability)


def input_pca(raw: Pca, normalization: dict) -> Pca:
    """The input layer's PCA for a network, from the pixels' PCA in grey levels (computed at build time: the same
    for every network, as a network's input is ``grey * scale + offset``): the mean and the variances scaled,
    the axes kept (turned by the sign convention when the scale is negative)."""
    scale = float(normalization.get("scale", 1.0 / 255.0))
    offset = float(normalization.get("offset", 0.0))
    return Pca(mean=raw.mean * scale + offset, axes=sign_convention(raw.axes * (-1.0 if scale < 0 else 1.0)),
               variance=raw.variance * scale**2, total=raw.total * scale**2, note=raw.note)


def input_arrays(raw: Pca, separability: float | None) -> dict:
    """The arrays of the input layer's file (tools/atlas_maps.py writes it, :func:`read_input_arrays` reads it)."""
    return {"mean": raw.mean, "axes": raw.axes, "variance": raw.variance, "total": np.array(raw.total),
            "separability": np.array(np.nan if separability is None else separability)}


def read_input_arrays(arrays) -> tuple[Pca, float | None]:
    """(the pixels' Pca, the separability) from :func:`input_arrays`'s arrays (a ValueError names what is wrong)."""
    try:
        mean = np.asarray(arrays["mean"], dtype=np.float64)
        axes = np.asarray(arrays["axes"], dtype=np.float64)
        variance = np.asarray(arrays["variance"], dtype=np.float64)
        total, sep = float(arrays["total"]), float(arrays["separability"])
    except KeyError as exc:
        raise ValueError(f"the array {exc} is missing") from None
    if mean.ndim != 1 or axes.shape != (2, mean.size) or variance.shape != (2,):
        raise ValueError(f"mean {list(mean.shape)}, axes {list(axes.shape)}: expected [w] and [2, w]")
    if not (np.isfinite(mean).all() and np.isfinite(axes).all()):
        raise ValueError("not every value is finite")
    return Pca(mean=mean, axes=axes, variance=variance, total=total), (None if np.isnan(sep) else sep)


# --- the t-SNE maps (computed at build time by tools/atlas_maps.py, for the shipped models)

NEIGHBOURS = 10  # a digit's place on a t-SNE map: the mean place of this many nearest test digits
PLACE_ROWS = 1000  # rows of the test set per block of the distance computation


def nearest_rows(space, a, k: int = NEIGHBOURS) -> np.ndarray:
    """The rows of ``space`` (digits, width) nearest to ``a`` (width,): Euclidean in float64, nearest first,
    a distance tie going to the lower row."""
    a = _finite(np.ravel(a))[:, 0]
    d = np.empty(len(space))
    for start in range(0, len(space), PLACE_ROWS):
        diff = _finite(space[start : start + PLACE_ROWS]) - a
        d[start : start + PLACE_ROWS] = np.einsum("ij,ij->i", diff, diff)
    return np.argsort(d, kind="stable")[: min(k, len(d))]


def place_by_neighbours(space, xy: np.ndarray, a, k: int = NEIGHBOURS) -> np.ndarray:
    """A digit's place on a non-linear map of the digits ``space``: the mean of the map places ``xy`` of its
    ``k`` nearest digits in the layer's full space (:func:`nearest_rows`)."""
    return np.asarray(xy, dtype=np.float64)[nearest_rows(space, a, k)].mean(axis=0)


def read_tsne_arrays(arrays, names, digits: int) -> dict:
    """{layer: (digits, 2) float64} from a t-SNE file's arrays (a ValueError names what is wrong)."""
    out = {}
    for name in names:
        try:
            xy = np.asarray(arrays[name], dtype=np.float64)
        except KeyError:
            raise ValueError(f"the map of layer {name!r} is missing") from None
        if xy.shape != (digits, 2) or not np.isfinite(xy).all():
            raise ValueError(f"the map of layer {name!r} is {list(xy.shape)}, expected [{digits}, 2] finite values")
        out[name] = xy
    return out
