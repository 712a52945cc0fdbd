"""The numbers behind the "look inside" features; the page only draws them.

Pure numpy + stdlib. This module runs unchanged in CPython (pytest) and in
the browser (Pyodide): it never imports anything from the browser, and it
does not even import ``network.py`` -- it works on any object shaped like
``network.Network`` (``.layers`` of layers.py's layers: ``kind``, ``units``,
``forward(x, keep=False)``, a dense layer's ``weights`` (in, units), ``bias``,
``pre_activation(x)`` and ``activate(z)``; ``.normalize()``,
``.forward(x, knocked_out=...)``) and ``network.TestSet`` (``.images``
(n, rows, columns) uint8, ``.labels`` (n,)).
That keeps it independent of how the page lays its modules out.

Vocabulary used throughout:

* a *unit* is addressed by ``(layer_name, index)``; a conv2d or maxpool2d
  layer's units are its channels (one feature map each);
* the *input* of a layer is what feeds it: the normalised pixels
  (``input_size`` values) for the first layer, the previous layer's activations otherwise
  (after any knock-out, exactly as ``network.forward`` returns them);
* a *knock-out* is a mapping ``layer name -> sorted list of unit indices``
  whose activations (a channel's whole map) are forced to zero (see
  :func:`normalize_knockout`). Hidden layers can be knocked out, but not
  the flatten (it only reshapes: knock out the channels before it).
* a channel's *peak* for a digit is the maximum of its map: what the test-set
  results keep of a conv2d / maxpool2d layer (see :class:`TestsetCache`).

Whole-test-set results (every layer's activations for the 10,000 test
digits, an image layer's peaks, predictions, confusion matrices) are
computed once per knock-out set and kept in a small cache
(:class:`TestsetCache`, found with :func:`cache_for`). Cached arrays are
read-only; copy them before editing.
A cache belongs to one version of the weights (``network.version``, bumped by
``Network.weights_changed()``): :func:`cache_for` drops a cache whose version
is not the network's, so changed weights never show stale numbers.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Iterable, Mapping, Sequence

import numpy as np

from pyscript_app.core import pacing
from pyscript_app.core.pacing import run

KnockOut = dict  # layer name -> sorted list of unit indices (see normalize_knockout)

#: test digits per block in the first layer's pass over the test set (see TestsetCache):
#: small blocks suit the browser's BLAS-less numpy (and keep idle-time warming steps
#: short); elsewhere a multithreaded BLAS does better with fewer, larger products.
CHUNK = 250 if sys.platform == "emscripten" else 2500
#: multiply-adds per block of a convolutional network's pass over the test set (see block_size): in the
#: browser about 2 million (measured: 10 to 40 ms a block in Pyodide, more on a loaded machine), elsewhere
#: a block of the default dense network's first layer (CHUNK digits x 784 pixels x 32 units)
BLOCK_WORK = 2_000_000 if sys.platform == "emscripten" else CHUNK * 784 * 32
#: in the browser, the pass sizes each block to take about this long (pacing.StepSizer, from what the
#: digits of the blocks before took): an idle-time step stays short on any machine
STEP_S = pacing.STEP_BUDGET_S if sys.platform == "emscripten" else None
#: multiply-adds per step of the dense layers after that pass, in the browser (elsewhere: a layer at once)
AFTER_WORK = 2_000_000 if sys.platform == "emscripten" else None

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
    if getattr(layer, "kind", "dense") != "dense":
        raise ValueError(f"layer {layer.name!r} is a {layer.kind} layer: {what} are for a dense layer's units")
    v = np.asarray(values)
    fan_in = layer.weights.shape[0]
    if v.size != fan_in:
        raise ValueError(
            f"{what} for layer {layer.name!r} has {v.size} values; the layer takes {fan_in}"
        )
    return v.reshape(fan_in)


# ---------------------------------------------------------------------------
# 1. incoming weights


def _weighted(layer) -> None:
    if getattr(layer, "kind", "dense") not in ("dense", "conv2d"):
        raise ValueError(f"layer {layer.name!r} is a {layer.kind} layer: it has no weights")


def incoming_weights(network, layer_name: str, index: int) -> np.ndarray:
    """The unit's incoming weights, shape (fan_in,) float32 (a copy); a conv2d channel's kernel
    (kernel height, kernel width, input channels).

    For a dense first layer that is one value a pixel: reshape to
    ``network.image_shape`` (or use :func:`weight_image`) to draw them.
    """
    _, layer, i = _unit(network, layer_name, index)
    _weighted(layer)
    return np.array(layer.weights[..., i], dtype=np.float32)


def neuron_bias(network, layer_name: str, index: int) -> float:
    """The unit's bias (a conv2d channel's)."""
    _, layer, i = _unit(network, layer_name, index)
    _weighted(layer)
    return float(layer.bias[i])


def weight_image(network, index: int) -> np.ndarray:
    """A unit of a dense first layer: its incoming weights as an image (28, 28) float32."""
    first = network.layers[0]
    if getattr(first, "kind", "dense") != "dense":
        raise ValueError(f"the first layer {first.name!r} is a {first.kind} layer: its units have no weight "
                         f"image the size of the digit (incoming_weights gives a channel's kernel)")
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
    """Names of the layers whose units can be knocked out: every hidden layer (a conv2d / maxpool2d
    layer's units are its channels) but the flatten; never the output."""
    hidden = getattr(network, "hidden_layers", None)
    return [layer.name for layer in (hidden if hidden is not None else network.layers[:-1])
            if getattr(layer, "kind", "dense") != "flatten"]


def normalize_knockout(network, knocked_out: Mapping[str, Iterable[int]] | None) -> KnockOut:
    """Check a knock-out and put it in its one canonical form.

    Returns ``{layer name: sorted unique unit indices}`` in layer order, with
    no empty entries (so "no knock-out" is ``{}``). A unit of a conv2d or
    maxpool2d layer is a channel: knocking it out sets its whole map to 0.
    Raises ValueError for an unknown layer, the output layer, the flatten,
    or an index that is not an integer in range.
    """
    if knocked_out is None:
        return {}
    if not isinstance(knocked_out, Mapping):
        raise ValueError(f"a knock-out maps layer names to unit indices, got {type(knocked_out).__name__}")
    hidden = knockable_layers(network)
    out: KnockOut = {}
    for name, units in knocked_out.items():
        pos = _layer_position(network, name)
        layer = network.layers[pos]
        if name not in hidden:
            if getattr(layer, "kind", "dense") == "flatten":
                raise ValueError(f"layer {name!r} (flatten) cannot be knocked out: knock out channels of the "
                                 f"layer before it; the layers that can be are {hidden}")
            raise ValueError(
                f"only hidden layers can be knocked out ({hidden}); {name!r} is the output layer"
            )
        if isinstance(units, (str, bytes)) or not isinstance(units, Iterable):
            raise ValueError(f"knock-out of layer {name!r} must be a list of unit indices, got {units!r}")
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


def _kind(layer) -> str:
    return getattr(layer, "kind", "dense")


def front_end(network) -> int:
    """The position of the first dense layer: what the blocked pass over the test set ends with.

    0 for a network of dense layers; for a convolutional one, the layers
    before it are its image layers (conv2d, maxpool2d) and the flatten.
    """
    for pos, layer in enumerate(network.layers):
        if _kind(layer) == "dense":
            return pos
    raise ValueError("the network has no dense layer (its output layer must be one)")


def is_image_layer(layer) -> bool:
    """Whether the layer's output is an image (height, width, channels): conv2d, maxpool2d."""
    return _kind(layer) in IMAGE_KINDS


IMAGE_KINDS = ("conv2d", "maxpool2d")


def work_per_digit(network) -> int:
    """Multiply-adds per digit of the pass over the test set (the layers up to and including the first dense one)."""
    work = 0
    for layer in network.layers[: front_end(network) + 1]:
        kind = _kind(layer)
        if kind == "conv2d":
            oh, ow, c = layer.output_shape
            kh, kw, cin, _ = layer.weights.shape
            work += oh * ow * kh * kw * cin * c
        elif kind == "maxpool2d":
            work += int(np.prod(layer.output_shape)) * 4
        elif kind == "dense":
            work += int(layer.weights.shape[0]) * layer.units
    return max(work, 1)


def block_size(network) -> int:
    """Test digits per block of the pass over the test set (the first block, in the browser): about BLOCK_WORK
    multiply-adds (an idle-time step); outside the browser CHUNK for a dense network."""
    end = front_end(network)
    if end == 0 and sys.platform != "emscripten":
        return CHUNK
    return int(min(CHUNK, max(1, BLOCK_WORK // work_per_digit(network))))


#: an image layer's p99 is taken over every k-th value of its maps (k a prime that cuts across rows and
#: channels), at most about this many values: its maps over the test set hold tens of millions
STATS_SAMPLE = 1 << 20


def _sample_stride(total: int, per_digit: int) -> int:
    stride = -(-total // STATS_SAMPLE)
    if stride <= 1:
        return 1
    while per_digit % stride == 0 or any(stride % d == 0 for d in range(2, int(stride**0.5) + 1)):
        stride += 1  # the next prime that does not divide a digit's values (so every row and channel is met)
    return stride


class _Pass:
    """The blocked pass over the test set for one knock-out of the image layers (see TestsetCache).

    For each conv2d / maxpool2d layer: each digit's per-channel map maximum
    before the layer's own knock-out ("peaks", (n, channels) float32); for the
    flatten: its output (n, units) float32; for the first dense layer: its
    net input (n, units) float64. With ``stats``, also each image layer's
    minimum, maximum and a sample of its values (for fill_activation_stats).
    """

    def __init__(self, network, n: int, end: int, knocked_out: dict, stats: bool):
        self.n, self.end, self.knocked_out, self.done = n, end, knocked_out, 0
        layers = network.layers
        self.peaks = {pos: np.empty((n, layers[pos].units), dtype=np.float32)
                      for pos in range(end) if is_image_layer(layers[pos])}
        self.flat = {pos: np.empty((n, layers[pos].units), dtype=np.float32)
                     for pos in range(end) if not is_image_layer(layers[pos])}
        self.z = np.empty((n, layers[end].units), dtype=np.float64)
        self.stats = None
        if stats:
            self.stats = {}
            for pos in self.peaks:
                per_digit = int(np.prod(layers[pos].output_shape))
                self.stats[pos] = {"min": np.inf, "max": -np.inf, "stride": _sample_stride(n * per_digit, per_digit),
                                   "per_digit": per_digit, "sample": []}

    @property
    def ready(self) -> bool:
        return self.done >= self.n

    def run_block(self, network, images, block: int) -> None:
        """One block of digits through the layers up to the first dense one's net input, as network.forward
        does it (each output rounded to float32, knocked-out channels set to 0 before the next layer)."""
        start = self.done
        a = network.normalize(images[start : start + block])
        stop = start + a.shape[0]
        for pos in range(self.end):
            layer = network.layers[pos]
            a = layer.forward(a, keep=False).astype(np.float32)
            if pos in self.peaks:
                self.peaks[pos][start:stop] = a.max(axis=(1, 2))
                if self.stats is not None:
                    self._note(pos, a, start)
            dead = self.knocked_out.get(layer.name)
            if dead:
                a[..., np.asarray(dead, dtype=np.intp)] = 0.0
            if pos in self.flat:
                self.flat[pos][start:stop] = a
        self.z[start:stop] = network.layers[self.end].pre_activation(a)
        self.done = stop
        if self.ready:
            for array in (*self.peaks.values(), *self.flat.values(), self.z):
                _readonly(array)

    def _note(self, pos: int, a: np.ndarray, start: int) -> None:
        s = self.stats[pos]
        s["min"], s["max"] = min(s["min"], float(a.min())), max(s["max"], float(a.max()))
        stride = s["stride"]
        first = (-start * s["per_digit"]) % stride  # every stride-th value of the whole test set's maps
        s["sample"].append(a.reshape(-1)[first::stride].copy())

    def image_stats(self, pos: int) -> dict:
        s = self.stats[pos]
        sample = np.concatenate(s["sample"]) if s["sample"] else np.zeros(1, dtype=np.float32)
        if s["min"] < 0:  # values of both signs: the figures are of |activation|
            sample, top = np.abs(sample), max(-s["min"], s["max"])
        else:
            top = s["max"]
        return {"p99": float(np.percentile(sample, 99)), "max": float(top), "stride": s["stride"]}


class TestsetCache:
    """Whole-test-set results for one (network, testset), per knock-out set.

    The one expensive step is the pass of the test digits through the
    layers up to and including the first dense layer's net input (for a
    dense network: the first layer alone, digits x pixels x units; for a
    convolutional one: every conv2d / maxpool2d layer, the flatten and the
    first dense layer). It runs in blocks of :attr:`block` digits
    (:meth:`first_layer_blocks`, resumable, so the page can run it in idle
    time) and keeps:

    * for a conv2d / maxpool2d layer, each digit's per-channel map maximum
      (the channel's *peak*, (n, channels) float32: what a feature map's
      colour shows at its brightest); its full maps over 10,000 digits would
      not fit (a 26x26x8 layer is 216 MB in float32);
    * for the flatten, its output (n, units) float32;
    * for the first dense layer, its net input (n, units) float64.

    That pass depends only on the knock-outs in the image layers: a dense
    network makes it once for every knock-out, a convolutional one once per
    set of knocked-out channels (the layers before a knocked-out one are run
    again too, their maps not being kept; at most ``max_passes`` such passes
    are kept, the intact one always).

    For each knock-out set (at most ``max_entries`` kept, least recently used
    dropped; "no knock-out" is never dropped) it keeps every layer's
    activations (the peaks for an image layer), the predictions and the
    confusion matrix; the dense layers' net inputs are made on first use.
    All returned arrays are read-only.

    Memory (measured): for the default dense network 9 MB; for a CNN conv 8
    (3x3) -> pool -> conv 16 (3x3) -> pool -> dense 32 -> 10, 23 MB for the
    intact network (the flatten's 400 values a digit are 16 MB of it), and
    24 MB more for each kept knock-out of channels (with ``max_passes=3``,
    at most two of them: about 70 MB in all).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, network, testset, max_entries: int = 8, max_passes: int = 3):
        self.network = network
        self.testset = testset
        self.version = getattr(network, "version", None)  # the weights these results are for
        self.max_entries = max(1, int(max_entries))
        self.max_passes = max(1, int(max_passes))
        self.end = front_end(network)
        self.block = block_size(network)  # digits per block of the pass over the test set
        self._inputs: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._entries: OrderedDict[tuple, dict] = OrderedDict()
        self._passes: OrderedDict[tuple, _Pass] = OrderedDict()  # the image layers' knock-out -> its pass

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

    # -- the blocked pass
    def _front_key(self, key: tuple) -> tuple:
        """The part of a knock-out key that the blocked pass depends on (that of the image layers)."""
        position = {layer.name: i for i, layer in enumerate(self.network.layers)}
        return tuple(item for item in key if position[item[0]] < self.end)

    def _pass(self, front_key: tuple) -> _Pass:
        p = self._passes.get(front_key)
        if p is not None:
            self._passes.move_to_end(front_key)
            return p
        n = len(np.asarray(self.testset.labels))
        p = self._passes[front_key] = _Pass(self.network, n, self.end, dict(front_key), stats=front_key == ())
        while len(self._passes) > self.max_passes:
            oldest = next(k for k in self._passes if k != ())
            del self._passes[oldest]
            for k in [k for k in self._entries if self._front_key(k) == oldest]:
                del self._entries[k]
        return p

    def _finished_pass(self, front_key: tuple) -> _Pass:
        for _ in self._blocks(front_key, None):
            pass
        return self._passes[front_key]

    def _blocks(self, front_key: tuple, seconds: float | None):
        p = self._pass(front_key)
        images = np.asarray(self.testset.images)
        sizer = pacing.StepSizer(first=self.block, most=CHUNK, budget=seconds) if seconds else pacing.FixedSteps(self.block)
        while not p.ready and self._passes.get(front_key) is p:  # (not: cleared or dropped meanwhile)
            start, t0 = p.done, sizer.clock()
            p.run_block(self.network, images, sizer.items)
            sizer.measured(p.done - start, sizer.clock() - t0)
            yield p.done

    def first_layer_blocks(self, knocked_out=None, seconds: float | None = STEP_S):
        """Run the pass over the test set for that knock-out one block at a time; yields the digits done so far.

        The pass is the layers up to the first dense layer's net input (see
        the class); for a dense network it is the same for every knock-out.
        For warming the cache in idle time: the page runs one step when the
        browser has nothing else to do, so that the confusion matrix or a
        card later costs only the small layers. Stopping and calling again
        resumes where it was; two of these running at once share the work.
        Blocks are of :attr:`block` digits; with ``seconds`` (the default in
        the browser, STEP_S) the first is of :attr:`block` digits and the
        others are sized to take about that long each (pacing.StepSizer: on a
        slow machine, fewer digits a block).
        """
        front_key = self._front_key(knockout_key(self.network, knocked_out))
        return self._blocks(front_key, seconds)

    def pass_progress(self, knocked_out=None) -> tuple[int, int]:
        """(digits done, digits) of that knock-out's pass over the test set (nothing is computed here)."""
        p = self._passes.get(self._front_key(knockout_key(self.network, knocked_out)))
        n = len(np.asarray(self.testset.labels))
        return (p.done if p is not None else 0), n

    def is_ready(self, knocked_out=None) -> bool:
        """Whether that knock-out's results cost no pass over the test set any more (only the small layers)."""
        done, n = self.pass_progress(knocked_out)
        return done >= n

    @property
    def first_layer_ready(self) -> bool:
        """Whether the pass over the test set of the intact network is done."""
        return self.is_ready(None)

    # -- per knock-out
    def _entry(self, knocked_out) -> dict:
        return run(self._entry_steps(knocked_out))

    def _entry_steps(self, knocked_out):
        key = knockout_key(self.network, knocked_out)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self._passes.move_to_end(self._front_key(key))
            return entry
        entry = yield from self._compute(key)
        if key in self._entries:  # made meanwhile (a step generator and a direct call interleaved)
            return self._entries[key]
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            oldest = next(k for k in self._entries if k != ())
            del self._entries[oldest]
        return entry

    def _compute(self, key: tuple):
        """Every layer for one knock-out, reusing what a cached knock-out shares with it (a generator of
        steps, each a block of rows of one dense layer of about AFTER_WORK multiply-adds; returns the entry).

        A layer's net input depends only on the knock-outs of the layers
        before it, and its activations on those up to and including it. So
        the blocked pass (up to the first dense layer's net input) is made
        once per knock-out of the image layers (once for all, in a dense
        network), and knocking a dense unit out re-runs only the small layers
        after it. The steps are those of ``network.forward`` (net input,
        activations rounded to float32, knocked-out units set to 0).
        """
        ko = dict(key)
        front = self._finished_pass(self._front_key(key))
        position = {layer.name: i for i, layer in enumerate(self.network.layers)}

        def before(k: tuple, pos: int) -> tuple:  # the part of a knock-out that acts before layer pos
            return tuple(item for item in k if position[item[0]] < pos)

        acts, pre, peaks = [], {}, {}
        for pos in range(self.end):  # the image layers and the flatten: from the pass
            layer = self.network.layers[pos]
            if pos in front.peaks:
                out = peaks[pos] = front.peaks[pos]
                dead = ko.get(layer.name)
                if dead:
                    out = out.copy()
                    out[:, np.asarray(dead, dtype=np.intp)] = 0.0
                    out = _readonly(out)
            else:
                out = front.flat[pos]
            acts.append(out)
        a = acts[-1] if acts else None
        for pos in range(self.end, len(self.network.layers)):
            layer = self.network.layers[pos]
            z = front.z if pos == self.end else None
            out = intact = None  # intact: this layer's activations before any knock-out in it
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
                    n, width = (len(z), z.shape[1]) if a is None else a.shape  # (a: None for the pass's first dense layer)
                    rows = n if AFTER_WORK is None else max(1, AFTER_WORK // max(1, width * layer.units))
                    if z is None:
                        parts = []
                        for start in range(0, n, rows):
                            parts.append(np.asarray(layer.pre_activation(a[start : start + rows])))
                            yield
                        z = _readonly(np.concatenate(parts) if len(parts) != 1 else parts[0])
                    parts = []
                    for start in range(0, n, rows):
                        parts.append(layer.activate(z[start : start + rows]).astype(np.float32))
                        yield
                    out = np.concatenate(parts) if len(parts) != 1 else parts[0]
                dead = ko.get(layer.name)
                if dead:
                    out = out.copy()
                    out[:, np.asarray(dead, dtype=np.intp)] = 0.0
                out = _readonly(out)
            if z is not None:
                pre[pos] = z
            acts.append(out)
            a = out
        return {"activations": tuple(acts), "pre": pre, "peaks": peaks}

    def is_cached(self, knocked_out=None) -> bool:
        """Whether the results for that knock-out are already computed (nothing is computed here)."""
        return knockout_key(self.network, knocked_out) in self._entries

    def activation_steps(self, knocked_out=None):
        """:meth:`activations` in idle-time steps: the pass over the test set a block at a time, then the
        layers after it a block of rows at a time (in the browser; elsewhere each layer at once); yields
        None after each, returns the activations."""
        if knockout_key(self.network, knocked_out) not in self._entries:
            for _ in self.first_layer_blocks(knocked_out):
                yield
        entry = yield from self._entry_steps(knocked_out)
        return entry["activations"]

    def activations(self, knocked_out=None) -> tuple:
        """Every layer's activations for all test digits, one array a layer: (n, units) float32 for a dense
        layer or the flatten; for a conv2d / maxpool2d layer each digit's channel peaks (n, channels) float32
        (the maximum of the channel's map; 0 for a knocked-out channel)."""
        return self._entry(knocked_out)["activations"]

    def peaks(self, layer_name: str, knocked_out=None) -> np.ndarray:
        """An image layer's channel peaks (n, channels) float32 before its own knock-out (a knocked-out
        channel keeps the peak its map would have), after those of the layers before it."""
        pos = _layer_position(self.network, layer_name)
        entry = self._entry(knocked_out)
        if pos not in entry["peaks"]:
            raise ValueError(f"layer {layer_name!r} is not a conv2d or maxpool2d layer: it has no channel peaks")
        return entry["peaks"][pos]

    def image_stats(self, layer_name: str) -> dict:
        """An image layer's activation figures over the intact network's maps (every value of every test
        digit's maps): {"max": exact, "p99": estimated from every ``stride``-th value (at most about
        STATS_SAMPLE of them), "stride"}; of |activation| when the layer has values of both signs."""
        pos = _layer_position(self.network, layer_name)
        front = self._finished_pass(())
        if pos not in front.peaks:
            raise ValueError(f"layer {layer_name!r} is not a conv2d or maxpool2d layer")
        return front.image_stats(pos)

    def pre_activations(self, layer_name: str, knocked_out=None) -> np.ndarray:
        """One dense layer's pre-activations (net inputs) for all test digits, (n, units), as Layer.pre_activation
        gives them. (An image layer keeps only its peaks: see :meth:`peaks`.)"""
        pos = _layer_position(self.network, layer_name)
        if pos < self.end:
            raise ValueError(f"layer {layer_name!r} is a {_kind(self.network.layers[pos])} layer: "
                             f"over the test set only its channel peaks are kept, not its net inputs")
        entry = self._entry(knocked_out)
        z = entry["pre"].get(pos)
        if z is None:
            layer = self.network.layers[pos]
            z = entry["pre"][pos] = _readonly(np.asarray(layer.pre_activation(entry["activations"][pos - 1])))
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
        self._passes.clear()


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
    If a layer has values of both signs (linear, tanh) the figures are of |activation|.
    A convolutional network's figures (every layer's) come from the first
    STATS_DIGITS test digits instead, at once: its pass over the whole test
    set takes seconds in the browser, and the page cannot draw without them.
    (TestsetCache.image_stats gives a conv2d / maxpool2d layer's figures over
    the whole test set once its blocked pass is done.)
    """
    missing = [i for i, layer in enumerate(network.layers[:-1]) if not getattr(layer, "stats", None)]
    if not missing:
        return
    if any(is_image_layer(layer) for layer in network.layers):
        _sample_stats(network, testset, missing)
        return
    cache = cache_for(network, testset)
    acts = cache.activations()
    over = f"{len(testset):,} test digits, computed in the page"
    for i in missing:
        layer = network.layers[i]
        if is_image_layer(layer):
            figures = cache.image_stats(layer.name)
            layer.stats = {"p99": figures["p99"], "max": figures["max"], "over": over}
            continue
        a = np.abs(acts[i]) if np.min(acts[i]) < 0 else acts[i]
        layer.stats = {"p99": float(np.percentile(a, 99)), "max": float(np.max(a)), "over": over}


STATS_DIGITS = 1000  # a CNN export without activation_stats: its scales from this many test digits


def _sample_stats(network, testset, missing) -> None:
    """fill_activation_stats for a convolutional network: from the first STATS_DIGITS test digits, at once
    (the whole test set's pass takes seconds in the browser, and the page cannot draw without its scales)."""
    n = min(STATS_DIGITS, len(testset))
    images = np.asarray(testset.images[:n]).reshape(n, -1)
    parts = {i: [] for i in missing}
    for start in range(0, n, CHUNK):
        out = network.forward(network.normalize(images[start : start + CHUNK]))
        for i in missing:
            parts[i].append(np.asarray(out[i]).reshape(-1))
    over = f"the first {n:,} test digits, computed in the page"
    for i in missing:
        a = np.concatenate(parts[i])
        a = np.abs(a) if a.size and np.min(a) < 0 else a
        network.layers[i].stats = {"p99": float(np.percentile(a, 99)) if a.size else 0.0,
                                   "max": float(np.max(a)) if a.size else 0.0, "over": over}


def testset_activations(network, testset, knocked_out=None) -> tuple:
    """Every layer's activations for all test digits under a knock-out (cached, read-only): (n, units) for a
    dense layer or the flatten; for a conv2d / maxpool2d layer each digit's channel peaks (n, channels), the
    maximum of each channel's map (TestsetCache.activations)."""
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
    A channel of a conv2d / maxpool2d layer gives its map's maximum for each
    digit (its peak, float32) either way, except that ``"pre_activation"``
    gives a knocked-out channel the peaks its map would have (as a knocked-out
    dense unit keeps its net input). The flatten has no net input: its
    activations either way.
    """
    if by not in SCORES:
        raise ValueError(f"by must be one of {SCORES}, got {by!r}")
    pos, layer, i = _unit(network, layer_name, index)
    cache = cache_for(network, testset)
    if is_image_layer(layer) and by == "pre_activation":
        table = cache.peaks(layer_name, knocked_out)
    elif by == "activation" or pos < cache.end:
        table = cache.activations(knocked_out)[pos]
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
    A channel of a conv2d / maxpool2d layer ranks by its map's maximum:
    the digits whose map peaks highest (see :func:`unit_values`).
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
