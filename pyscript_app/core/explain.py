"""The numbers behind the "look inside" features; the page only draws them.

Pure numpy + stdlib. This module runs unchanged in CPython (pytest) and in
the browser (Pyodide): it never imports anything from the browser, and it
does not even import ``network.py`` -- it works on any object shaped like
``network.Network`` (``.layers`` of ``Layer(name, activation, weights (in,
units), bias, ...)`` with ``.pre_activation(x)`` and ``.activate(z)``,
``.normalize()``, ``.forward(x, knocked_out=...)``)
and ``network.TestSet`` (``.images`` (n, rows, columns) uint8, ``.labels`` (n,)).
That keeps it independent of how the page lays its modules out.

Vocabulary used throughout:

* a *unit* is addressed by ``(layer_name, index)``;
* the *input* of a layer is what feeds it: the normalised pixels
  (``input_size`` values) for the first layer, the previous layer's activations otherwise
  (after any knock-out, exactly as ``network.forward`` returns them);
* a *knock-out* is a mapping ``layer name -> sorted list of unit indices``
  whose activations are forced to zero (see :func:`normalize_knockout`).
  Only hidden layers can be knocked out.

Whole-test-set results (every layer's activations for the 10,000 test
digits, predictions, confusion matrices) are computed once per knock-out set
and kept in a small cache (:class:`TestsetCache`, found with
:func:`cache_for`). Cached arrays are read-only; copy them before editing.
A cache belongs to one version of the weights (``network.version``, bumped by
``Network.weights_changed()``): :func:`cache_for` drops a cache whose version
is not the network's, so changed weights never show stale numbers.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Iterable, Mapping, Sequence

import numpy as np

KnockOut = dict  # layer name -> sorted list of unit indices (see normalize_knockout)

#: test digits per block in the first layer's pass over the test set (see TestsetCache):
#: small blocks suit the browser's BLAS-less numpy (and keep idle-time warming steps
#: short); elsewhere a multithreaded BLAS does better with fewer, larger products.
CHUNK = 250 if sys.platform == "emscripten" else 2500

#: what top_exciting / unit_values rank by
SCORES = ("pre_activation", "activation")


# ---------------------------------------------------------------------------
# addressing layers and units


def _layer_position(network, layer_name: str) -> int:
    for i, layer in enumerate(network.layers):
        if layer.name == layer_name:
            return i
    names = [layer.name for layer in network.layers]
    raise ValueError(f"unknown layer {layer_name!r}; the layers are {names}")


def _unit_index(layer, index, what: str = "unit") -> int:
    """``index`` as an int, or a ValueError saying why it is not a unit of ``layer``."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"{what} index {index!r} of layer {layer.name!r} is not an integer")
    i = int(index)
    if not 0 <= i < layer.units:
        raise ValueError(
            f"{what} index {i} is out of range: layer {layer.name!r} has units 0..{layer.units - 1}"
        )
    return i


def _unit(network, layer_name: str, index):
    """(position of the layer, the Layer, the unit index), all checked."""
    pos = _layer_position(network, layer_name)
    layer = network.layers[pos]
    return pos, layer, _unit_index(layer, index)


def _layer_vector(layer, values, what: str) -> np.ndarray:
    v = np.asarray(values)
    fan_in = layer.weights.shape[0]
    if v.size != fan_in:
        raise ValueError(
            f"{what} for layer {layer.name!r} has {v.size} values; the layer takes {fan_in}"
        )
    return v.reshape(fan_in)


# ---------------------------------------------------------------------------
# 1. incoming weights


def incoming_weights(network, layer_name: str, index: int) -> np.ndarray:
    """The unit's incoming weights, shape (fan_in,) float32 (a copy).

    For the first layer that is one value a pixel: reshape to
    ``network.image_shape`` (or use :func:`weight_image`) to draw them.
    """
    _, layer, i = _unit(network, layer_name, index)
    return np.array(layer.weights[:, i], dtype=np.float32)


def neuron_bias(network, layer_name: str, index: int) -> float:
    """The unit's bias."""
    _, layer, i = _unit(network, layer_name, index)
    return float(layer.bias[i])


def weight_image(network, index: int) -> np.ndarray:
    """A first-layer unit's incoming weights as an image (28, 28) float32."""
    first = network.layers[0]
    return incoming_weights(network, first.name, index).reshape(tuple(network.image_shape))


def symmetric_limit(values: np.ndarray) -> float:
    """max |value| (1.0 if all are zero): the range of a diverging colour scale centred on 0."""
    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return m if m > 0 else 1.0


# ---------------------------------------------------------------------------
# 2. contributions (one input)


def layer_input(network, layer_name: str, x: np.ndarray, activations: Sequence[np.ndarray]) -> np.ndarray:
    """What feeds ``layer_name`` for one input.

    ``x`` is the normalised input (input_size,) and ``activations`` the list
    ``network.forward(x, knocked_out=...)`` returned for it; the result is
    ``x`` for the first layer, the previous layer's activations otherwise.
    """
    pos = _layer_position(network, layer_name)
    return np.asarray(x if pos == 0 else activations[pos - 1])


def contributions(network, layer_name: str, index: int, input_activations: np.ndarray):
    """How each input pushes one unit: ``(per_input, bias, pre_activation)``.

    ``per_input[k] = input_activations[k] * weight[k]`` (float64, shape
    (fan_in,); for ``hidden_1`` reshapeable to 28x28), and
    ``pre_activation = per_input.sum() + bias``: the unit's net input, which
    matches the network's own float32 pre-activation to ~1e-5.
    ``input_activations`` is the layer's input (see :func:`layer_input`).
    """
    _, layer, i = _unit(network, layer_name, index)
    a = _layer_vector(layer, input_activations, "input_activations").astype(np.float64)
    per_input = a * layer.weights[:, i].astype(np.float64)
    bias = float(layer.bias[i])
    return per_input, bias, float(per_input.sum() + bias)


def ranked_contributions(values: np.ndarray, top: int | None = None):
    """``(indices, values)`` of a 1-D array, largest magnitude first (ties: lower index first).

    ``top`` keeps only that many. Used for the contributions bar chart:
    ``ranked_contributions(contributions(...)[0], top=10)``.
    """
    v = np.asarray(values).reshape(-1)
    if top is not None and top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    order = np.lexsort((np.arange(v.size), -np.abs(v)))
    if top is not None:
        order = order[:top]
    return order, v[order]


# ---------------------------------------------------------------------------
# 4. knock-outs


def knockable_layers(network) -> list[str]:
    """Names of the layers whose units can be knocked out (every hidden layer; never the output)."""
    hidden = getattr(network, "hidden_layers", None)
    return [layer.name for layer in (hidden if hidden is not None else network.layers[:-1])]


def normalize_knockout(network, knocked_out: Mapping[str, Iterable[int]] | None) -> KnockOut:
    """Check a knock-out and put it in its one canonical form.

    Returns ``{layer name: sorted unique unit indices}`` in layer order, with
    no empty entries (so "no knock-out" is ``{}``). Raises ValueError for an
    unknown layer, the output layer, or an index that is not an integer in
    range.
    """
    if knocked_out is None:
        return {}
    if not isinstance(knocked_out, Mapping):
        raise ValueError(f"a knock-out maps layer names to unit indices, got {type(knocked_out).__name__}")
    hidden = knockable_layers(network)
    out: KnockOut = {}
    for name, units in knocked_out.items():
        pos = _layer_position(network, name)
        if name not in hidden:
            raise ValueError(
                f"only hidden layers can be knocked out ({hidden}); {name!r} is the output layer"
            )
        if isinstance(units, (str, bytes)) or not isinstance(units, Iterable):
            raise ValueError(f"knock-out of layer {name!r} must be a list of unit indices, got {units!r}")
        layer = network.layers[pos]
        idx = sorted({_unit_index(layer, u, "knocked-out unit") for u in units})
        if idx:
            out[name] = idx
    return {name: out[name] for name in hidden if name in out}


def knockout_key(network, knocked_out) -> tuple:
    """A hashable form of a knock-out (for caches): ``((layer, (i, j, ...)), ...)``."""
    return tuple((name, tuple(idx)) for name, idx in normalize_knockout(network, knocked_out).items())


def is_knocked_out(network, knocked_out, layer_name: str, index: int) -> bool:
    """Whether that unit is in the knock-out."""
    _, _, i = _unit(network, layer_name, index)
    return i in normalize_knockout(network, knocked_out).get(layer_name, ())


def toggle_unit(network, knocked_out, layer_name: str, index: int) -> KnockOut:
    """A new knock-out with that unit flipped (knocked out <-> working); the old one is untouched."""
    ko = normalize_knockout(network, knocked_out)
    _, _, i = _unit(network, layer_name, index)
    return normalize_knockout(network, {**ko, layer_name: set(ko.get(layer_name, ())) ^ {i}})


# ---------------------------------------------------------------------------
# the test-set cache


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class TestsetCache:
    """Whole-test-set results for one (network, testset), per knock-out set.

    The normalised test images are made once. For each knock-out set (at
    most ``max_entries`` kept, least recently used dropped; "no knock-out"
    is never dropped) it keeps every layer's activations (from
    ``network.forward``), the predictions and the confusion matrix;
    pre-activations are made on first use. All returned arrays are
    read-only.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, network, testset, max_entries: int = 8):
        self.network = network
        self.testset = testset
        self.version = getattr(network, "version", None)  # the weights these results are for
        self.max_entries = max(1, int(max_entries))
        self._inputs: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._entries: OrderedDict[tuple, dict] = OrderedDict()
        self._z1: np.ndarray | None = None  # the first layer's net input (see first_layer_blocks)
        self._z1_done = 0

    # -- inputs
    @property
    def inputs(self) -> np.ndarray:
        """The normalised test images (n, 784) float32."""
        if self._inputs is None:
            self._inputs = _readonly(np.ascontiguousarray(self.network.normalize(self.testset.images)))
        return self._inputs

    @property
    def labels(self) -> np.ndarray:
        """The true labels as (n,) intp."""
        if self._labels is None:
            labels = np.asarray(self.testset.labels).astype(np.intp)
            classes = self.network.layers[-1].units
            if labels.size and not (labels.min() >= 0 and labels.max() < classes):
                raise ValueError(f"test labels must be in 0..{classes - 1}")
            self._labels = _readonly(labels)
        return self._labels

    # -- per knock-out
    def _entry(self, knocked_out) -> dict:
        key = knockout_key(self.network, knocked_out)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = self._compute(key)
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            oldest = next(k for k in self._entries if k != ())
            del self._entries[oldest]
        return entry

    def _compute(self, key: tuple) -> dict:
        """Every layer for one knock-out, reusing what a cached knock-out shares with it.

        A layer's net input depends only on the knock-outs of the layers
        before it, and its activations on those up to and including it. So
        the expensive first layer (digits x pixels x units) is computed once for
        all knock-outs, and knocking a unit out re-runs only the small layers
        after it. The steps are those of ``network.forward`` (net input,
        activations rounded to float32, knocked-out units set to 0); only
        the first layer runs in blocks of digits.
        """
        ko = dict(key)
        position = {layer.name: i for i, layer in enumerate(self.network.layers)}

        def before(k: tuple, pos: int) -> tuple:  # the part of a knock-out that acts before layer pos
            return tuple(item for item in k if position[item[0]] < pos)

        acts, pre = [], {}
        a = None  # the first layer reads the images itself (see _first_layer_net_input)
        for pos, layer in enumerate(self.network.layers):
            z = out = intact = None  # intact: this layer's activations before any knock-out in it
            for other_key, other in self._entries.items():
                if before(other_key, pos) != before(key, pos):
                    continue
                z = other["pre"].get(pos, z)
                if before(other_key, pos + 1) == before(key, pos + 1):
                    out = other["activations"][pos]
                    break
                if layer.name not in dict(other_key):
                    intact = other["activations"][pos]
            if out is None:
                if intact is not None:
                    out = intact  # the same net input, so the same activations: skip the activation function
                else:
                    if z is None:
                        z = self._first_layer_net_input() if pos == 0 else layer.pre_activation(a)
                        z = _readonly(np.asarray(z))
                    out = layer.activate(z).astype(np.float32)
                dead = ko.get(layer.name)
                if dead:
                    out = out.copy()
                    out[:, np.asarray(dead, dtype=np.intp)] = 0.0
                out = _readonly(out)
            if z is not None:
                pre[pos] = z
            acts.append(out)
            a = out
        return {"activations": tuple(acts), "pre": pre}

    def _first_layer_net_input(self) -> np.ndarray:
        """The first layer's net input for every test digit, (n, units) float64 (read-only).

        The one expensive step (digits x pixels x units), the same for every
        knock-out. It runs on blocks of CHUNK digits, normalised block by
        block: in the browser's numpy (no BLAS) one 10,000-row product
        costs 3 to 6 times as much as the same work in blocks, and no 31 MB
        float copy of the images is made. Finishes what
        :meth:`first_layer_blocks` started, if anything.
        """
        for _ in self.first_layer_blocks():
            pass
        return self._z1

    def first_layer_blocks(self):
        """Compute the first layer's net input one block at a time; yields the digits done so far.

        For warming the cache in idle time: the page runs one step when the
        browser has nothing else to do, so that the first confusion matrix
        or first-layer card later costs only the small layers. Stopping and
        calling again resumes where it was.
        """
        images = np.asarray(self.testset.images)
        n = images.shape[0]
        first = self.network.layers[0]
        if self._z1 is None:
            self._z1, self._z1_done = np.empty((n, first.units), dtype=np.float64), 0
        while self._z1 is not None and self._z1_done < n:  # (None: cleared meanwhile)
            start = self._z1_done
            block = self.network.normalize(images[start : start + CHUNK].reshape(-1, self.network.input_size))
            self._z1[start : start + CHUNK] = first.pre_activation(block)
            self._z1_done = min(start + CHUNK, n)
            yield self._z1_done
        if self._z1 is not None:
            _readonly(self._z1)

    @property
    def first_layer_ready(self) -> bool:
        """Whether the first layer's pass over the test set is done."""
        return self._z1 is not None and self._z1_done >= self._z1.shape[0]

    def is_cached(self, knocked_out=None) -> bool:
        """Whether the results for that knock-out are already computed (nothing is computed here)."""
        return knockout_key(self.network, knocked_out) in self._entries

    def activations(self, knocked_out=None) -> tuple:
        """Every layer's activations for all test digits: one (n, units) float32 array a layer."""
        return self._entry(knocked_out)["activations"]

    def pre_activations(self, layer_name: str, knocked_out=None) -> np.ndarray:
        """One layer's pre-activations (net inputs) for all test digits, (n, units), as Layer.pre_activation gives them."""
        pos = _layer_position(self.network, layer_name)
        entry = self._entry(knocked_out)
        z = entry["pre"].get(pos)
        if z is None:
            layer = self.network.layers[pos]
            if pos == 0:
                z = self._first_layer_net_input()
            else:
                z = np.asarray(layer.pre_activation(entry["activations"][pos - 1]))
            z = entry["pre"][pos] = _readonly(z)
        return z

    def predictions(self, knocked_out=None) -> np.ndarray:
        """The predicted class of every test digit, (n,) intp."""
        entry = self._entry(knocked_out)
        if "pred" not in entry:
            entry["pred"] = _readonly(entry["activations"][-1].argmax(axis=1).astype(np.intp))
        return entry["pred"]

    def confusion(self, knocked_out=None) -> np.ndarray:
        """The (classes, classes) confusion matrix: rows true label, columns prediction."""
        entry = self._entry(knocked_out)
        if "cm" not in entry:
            classes = self.network.layers[-1].units
            flat = np.bincount(self.labels * classes + self.predictions(knocked_out), minlength=classes * classes)
            entry["cm"] = _readonly(flat.reshape(classes, classes).astype(np.int64))
        return entry["cm"]

    def clear(self) -> None:
        self._entries.clear()
        self._z1, self._z1_done = None, 0


_CACHES: list[TestsetCache] = []  # most recent last: the models a page switched between lately
_MAX_CACHES = 4


def cache_for(network, testset) -> TestsetCache:
    """The cache of this very (network, testset) pair (made on first use)."""
    for cache in list(_CACHES):
        if cache.network is network and cache.testset is testset:
            _CACHES.remove(cache)
            if cache.version != getattr(network, "version", None):
                break  # the weights changed since: start afresh
            _CACHES.append(cache)
            return cache
    cache = TestsetCache(network, testset)
    _CACHES.append(cache)
    del _CACHES[:-_MAX_CACHES]
    return cache


def clear_caches() -> None:
    """Forget every cached result (call after editing a network's weights in place)."""
    _CACHES.clear()


def fill_activation_stats(network, testset) -> None:
    """Give every hidden layer without ``stats`` (activation_stats) its 99th percentile and maximum over the test set.

    The colour scale of an unbounded activation (relu, linear) tops out at the
    p99 (render.scale_for); exports usually state it, an export that does not
    gets it computed here, from the same cached pass the error explorer uses.
    For a linear layer (values of both signs) the figures are of |activation|.
    """
    missing = [i for i, layer in enumerate(network.layers[:-1]) if not getattr(layer, "stats", None)]
    if not missing:
        return
    acts = cache_for(network, testset).activations()
    for i in missing:
        a = np.abs(acts[i]) if np.min(acts[i]) < 0 else acts[i]
        network.layers[i].stats = {
            "p99": float(np.percentile(a, 99)), "max": float(np.max(a)),
            "over": f"{len(testset):,} test digits, computed in the page",
        }


def testset_activations(network, testset, knocked_out=None) -> tuple:
    """Every layer's activations for all test digits under a knock-out (cached, read-only)."""
    return cache_for(network, testset).activations(knocked_out)


# ---------------------------------------------------------------------------
# 3. the test digits that excite a unit most


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``(indices, values)`` of the k highest scores, highest first; ties go to the lower index."""
    n = scores.shape[0]
    if k < 0:
        raise ValueError(f"the number of items asked for must be >= 0, got {k}")
    k = min(int(k), n)
    if k == 0:
        return np.empty(0, dtype=np.intp), scores[:0]
    kth = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th highest value
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - above.size]
    chosen = np.concatenate([above, tied])
    chosen = chosen[np.lexsort((chosen, -scores[chosen]))]
    return chosen, scores[chosen]


def unit_values(network, testset, layer_name: str, index: int, knocked_out=None, by: str = "pre_activation") -> np.ndarray:
    """One unit's value for every test digit, (n,) (a fresh array: float64 net inputs, float32 activations).

    ``by="pre_activation"`` (the unit's net input) or ``"activation"``
    (after sigmoid / softmax; a knocked-out unit's activation is all 0).
    """
    if by not in SCORES:
        raise ValueError(f"by must be one of {SCORES}, got {by!r}")
    _, _, i = _unit(network, layer_name, index)
    cache = cache_for(network, testset)
    if by == "activation":
        table = cache.activations(knocked_out)[_layer_position(network, layer_name)]
    else:
        table = cache.pre_activations(layer_name, knocked_out)
    return np.ascontiguousarray(table[:, i])


def top_exciting(network, testset, layer_name: str, index: int, k: int = 9, knocked_out=None, by: str = "pre_activation") -> np.ndarray:
    """Indices of the ``k`` test digits that excite the unit most, most exciting first.

    Ranked by pre-activation (the unit's net input) by default. For the
    sigmoid hidden units this is the same order as by activation (sigmoid
    is increasing), but it still separates the many digits whose float32
    activation saturates at exactly 1.0. For output units it ranks by the
    class's own evidence (logit) rather than by softmax probability, which
    also depends on the other nine classes. ``by="activation"`` ranks by
    activation / probability instead. Ties go to the lower test index.
    The knock-out changes the inputs of later layers; a knocked-out unit
    itself still ranks by its (unchanged) net input.
    """
    chosen, _ = _top_k(unit_values(network, testset, layer_name, index, knocked_out, by), k)
    return chosen


# ---------------------------------------------------------------------------
# 5. confusion matrix


def confusion_matrix(network, testset, knocked_out=None) -> np.ndarray:
    """(classes, classes) int64 counts of test digits: row = true label, column = predicted (cached, read-only)."""
    return cache_for(network, testset).confusion(knocked_out)


def accuracy(cm: np.ndarray) -> float:
    """Fraction on the diagonal of a confusion matrix."""
    cm = np.asarray(cm)
    total = int(cm.sum())
    if total == 0:
        raise ValueError("the confusion matrix is empty")
    return float(np.trace(cm)) / total


def cell_members(network, testset, true: int, predicted: int, knocked_out=None) -> np.ndarray:
    """Ascending indices of the test digits with that true label and that prediction."""
    classes = network.layers[-1].units
    for what, c in (("true", true), ("predicted", predicted)):
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or not 0 <= c < classes:
            raise ValueError(f"{what} class must be an integer in 0..{classes - 1}, got {c!r}")
    cache = cache_for(network, testset)
    return np.flatnonzero((cache.labels == true) & (cache.predictions(knocked_out) == predicted))
