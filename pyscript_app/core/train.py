"""Train a network on digits, in numpy: the same module in CPython and in the browser.

Pure numpy (no browser imports). A :class:`Trainer` holds the network being
trained and advances it one mini-batch per :meth:`Trainer.step` (or ``n`` per
:meth:`Trainer.run`), so the page can train in slices between animation
frames and look at the weights in between; :meth:`Trainer.to_export` turns the
current weights into an export (manifest version 2 + ``.npy`` files) that
``network.build_network`` opens like any other.

What it computes is what Keras computes for the same model (up to two
Conv2D layers, each with relu, valid padding and optionally a 2x2
MaxPooling2D, then a Flatten; Dense layers, softmax output, sparse categorical cross-entropy averaged over the batch;
``SGD``, ``SGD(momentum=...)`` and ``Adam`` with Keras' update rules and
defaults), from glorot-uniform weights and zero biases drawn from a seeded
numpy Generator, on batches reshuffled every epoch by another seeded
Generator. Weights are kept in float32 (what the export holds); the arithmetic
runs in float64.

The forward and backward passes are the layers' own (layers.py, run with
``exact=True``): same seed, same weights, in CPython and in the browser, bit
for bit. Every sum runs in one fixed order (left to right over the summed
index, see ordered.py) and the activations use
``activations.Activation.exact`` (no platform-dependent ``exp``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from pyscript_app.core import activations as act
from pyscript_app.core import export_write
from pyscript_app.core import layers as layer_kinds
from pyscript_app.core import ordered
from pyscript_app.core.ordered import column_sums, dot, matmul_in_order  # noqa: F401  (train.dot: the tests, the bench)

# --- the settings a user chooses (and the address carries) -------------------

WIDTHS = (8, 16, 32, 64, 128)
MAX_HIDDEN = 3
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("sgd", "momentum", "adam")
OPTIMIZER_TITLES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
LEARNING_RATES = (1e-5, 10.0)  # smallest and largest accepted
# Default learning rates, for this task: with Adam at 0.003 and batch 32 the seed's network
# reaches 96.2 % test accuracy after 3 epochs of the 60,000 digits (Keras' default, 0.001: 94.4 %).
DEFAULT_RATES = {"sgd": 0.1, "momentum": 0.01, "adam": 0.003}
MOMENTUM_RANGE = (0.0, 0.99)
SEED_MAX = 2**32 - 1
# Convolutional layers before the dense ones (none by default): filters, kernel size, 2x2 max pooling after.
# Each is relu with valid padding (no zeros added around: the cheapest, and what the products skip).
FILTERS = (4, 8, 16, 32)
KERNELS = (3, 5)
MAX_CONV = 2
CONV_ACTIVATION = "relu"
# Keys in the address (#mode=train&hidden=32,32&...): the field names of the Train panel's form.
# conv: one "<filters>x<kernel>" per conv layer, "p" after it for a 2x2 max pooling: "8x3p,16x3p".
KEYS = ("conv", "hidden", "activation", "optimizer", "lr", "batch", "seed", "momentum")

# Keras' Adam defaults
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7

# Divergence: the loss of a network that guesses uniformly is ln(classes); training that
# stays far above it is not learning but blowing up.
DIVERGE_WINDOW = 10  # batches whose mean loss is compared
DIVERGE_MEAN = 3.0  # ... with this many times ln(classes)
DIVERGE_SINGLE = 10.0  # one batch this many times ln(classes) above is enough
# A rate above the default whose loss, after this many batches, is still no better than
# guessing (mean of the last STALL_WINDOW) is jumping around instead of learning: plain SGD
# at 10 saturates every sigmoid and stays there, without ever overflowing.
STALL_AFTER = 300
STALL_WINDOW = 50


@dataclass(frozen=True)
class Settings:
    """One training run: the architecture, the optimizer and the seed.

    ``activation`` is one name for every hidden layer or a tuple with one per
    layer. Construct it directly (values are checked) or from the address
    with :meth:`from_params`, which corrects instead of refusing.
    """

    hidden: tuple[int, ...] = (32, 32)
    activation: str | tuple[str, ...] = "sigmoid"
    optimizer: str = "adam"
    learning_rate: float = 0.003
    batch_size: int = 32  # 24,000 digits/s in the browser (64: 28,000, but 1 point less after 3 epochs)
    seed: int = 42
    momentum: float = 0.9  # used by the "momentum" optimizer only
    conv: tuple[tuple[int, int, bool], ...] = ()  # (filters, kernel size, 2x2 max pooling) per conv layer

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        object.__setattr__(self, "conv", tuple((int(f), int(k), bool(p)) for f, k, p in self.conv))
        if not isinstance(self.activation, str):
            object.__setattr__(self, "activation", tuple(self.activation))
        problems = self.problems()
        if problems:
            raise ValueError("invalid training settings: " + "; ".join(problems))

    @property
    def activations(self) -> tuple[str, ...]:
        if isinstance(self.activation, str):
            return (self.activation,) * len(self.hidden)
        return self.activation

    def problems(self) -> list[str]:
        out = []
        if len(self.conv) > MAX_CONV:
            out.append(f"conv: {len(self.conv)} layers, allowed 0 to {MAX_CONV}")
        out += [f"conv: {f} filters is not one of {_list(FILTERS)}" for f, _, _ in self.conv if f not in FILTERS]
        out += [f"conv: kernel {k}x{k} is not one of {_list(KERNELS)}" for _, k, _ in self.conv if k not in KERNELS]
        if not 1 <= len(self.hidden) <= MAX_HIDDEN:
            out.append(f"hidden: {len(self.hidden)} layers, allowed 1 to {MAX_HIDDEN}")
        out += [f"hidden: width {w} is not one of {_list(WIDTHS)}" for w in self.hidden if w not in WIDTHS]
        if len(self.activations) != len(self.hidden):
            out.append(f"activation: {len(self.activations)} names for {len(self.hidden)} hidden layers")
        out += [f"activation: {a!r} is not one of {_list(ACTIVATIONS)}" for a in self.activations if a not in ACTIVATIONS]
        if self.optimizer not in OPTIMIZERS:
            out.append(f"optimizer: {self.optimizer!r} is not one of {_list(OPTIMIZERS)}")
        if not (LEARNING_RATES[0] <= self.learning_rate <= LEARNING_RATES[1]):
            out.append(f"lr: {self.learning_rate} is outside {LEARNING_RATES[0]:g} to {LEARNING_RATES[1]:g}")
        if self.batch_size not in BATCH_SIZES:
            out.append(f"batch: {self.batch_size} is not one of {_list(BATCH_SIZES)}")
        if not (isinstance(self.seed, int) and 0 <= self.seed <= SEED_MAX):
            out.append(f"seed: {self.seed!r} is not an integer from 0 to {SEED_MAX}")
        if not (MOMENTUM_RANGE[0] <= self.momentum <= MOMENTUM_RANGE[1]):
            out.append(f"momentum: {self.momentum} is outside {MOMENTUM_RANGE[0]:g} to {MOMENTUM_RANGE[1]:g}")
        return out

    def to_params(self) -> dict[str, str]:
        """The address keys for these settings (``from_params(s.to_params())`` gives ``s`` back)."""
        acts = self.activations
        params = {"conv": conv_text(self.conv)} if self.conv else {}
        params |= {
            "hidden": ",".join(str(w) for w in self.hidden),
            "activation": acts[0] if len(set(acts)) == 1 else ",".join(acts),
            "optimizer": self.optimizer,
            "lr": _number(self.learning_rate),
            "batch": str(self.batch_size),
            "seed": str(self.seed),
        }
        if self.optimizer == "momentum":
            params["momentum"] = _number(self.momentum)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> tuple["Settings", list[str]]:
        """The nearest valid settings to ``params`` (strings, as in the address) and notes on what changed.

        A missing key takes its default silently; a value that is not valid is
        replaced by the nearest valid one (or the default when there is no
        nearest, such as an unknown optimizer) with a note that says so.
        Keys that are not training settings are ignored.
        """
        notes: list[str] = []
        d = cls()

        conv = d.conv
        if "conv" in params:
            conv = _parse_conv(str(params["conv"]), notes)

        hidden = d.hidden
        if "hidden" in params:
            hidden = _parse_hidden(str(params["hidden"]), d.hidden, notes)

        optimizer = d.optimizer
        if "optimizer" in params:
            raw = str(params["optimizer"]).strip().lower()
            if raw in OPTIMIZERS:
                optimizer = raw
            else:
                notes.append(f"optimizer {params['optimizer']!r} is unknown (allowed: {_list(OPTIMIZERS)}); using {d.optimizer}")

        activation: str | tuple[str, ...] = d.activation
        if "activation" in params:
            activation = _parse_activation(str(params["activation"]), len(hidden), d.activation, notes)

        rate = DEFAULT_RATES[optimizer]
        if "lr" in params:
            rate = _parse_float("lr", "learning rate", params["lr"], rate, LEARNING_RATES, notes)

        batch = d.batch_size
        if "batch" in params:
            raw = _to_float(params["batch"])
            if raw is None:
                notes.append(f"batch size {params['batch']!r} is not a number; using {batch}")
            else:
                batch = _nearest(raw, BATCH_SIZES)
                if batch != raw:
                    notes.append(f"batch size {params['batch']} is not one of {_list(BATCH_SIZES)}; using {batch}")

        seed = d.seed
        if "seed" in params:
            raw_seed = str(params["seed"]).strip()
            try:
                value = int(raw_seed)
            except ValueError:
                notes.append(f"seed {params['seed']!r} is not a whole number; using {seed}")
            else:
                seed = min(max(value, 0), SEED_MAX)
                if seed != value:
                    notes.append(f"seed {value} is outside 0 to {SEED_MAX}; using {seed}")

        momentum = d.momentum
        if "momentum" in params:
            momentum = _parse_float("momentum", "momentum", params["momentum"], momentum, MOMENTUM_RANGE, notes)

        settings = cls(hidden=hidden, activation=activation, optimizer=optimizer, learning_rate=rate,
                       batch_size=batch, seed=seed, momentum=momentum, conv=conv)
        return settings, notes

    def describe(self) -> str:
        acts = self.activations
        layers = " -> ".join([*(conv_title(c) for c in self.conv), *(f"{w} {a}" for w, a in zip(self.hidden, acts))])
        rate = f"learning rate {_number(self.learning_rate)}"
        if self.optimizer == "momentum":
            rate += f", momentum {_number(self.momentum)}"
        return f"{layers}; {OPTIMIZER_TITLES[self.optimizer]}, {rate}, batch {self.batch_size}, seed {self.seed}"


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _number(x: float) -> str:
    """A float as the shortest text that reads back the same (0.001, not 1e-03)."""
    text = repr(float(x))
    if "e" in text:
        text = np.format_float_positional(x, trim="-")
    return text[:-2] if text.endswith(".0") else text


def _to_float(raw) -> float | None:
    try:
        value = float(str(raw).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _nearest(value: float, allowed: Sequence[int]) -> int:
    return min(allowed, key=lambda a: (abs(a - value), a))  # a tie goes to the smaller


def _parse_float(key, what, raw, default, bounds, notes) -> float:
    value = _to_float(raw)
    if value is None:
        notes.append(f"{what} {raw!r} is not a number; using {_number(default)}")
        return default
    low, high = bounds
    clamped = min(max(value, low), high)
    if clamped != value:
        side = "smallest" if value < low else "largest"
        notes.append(f"{what} {_number(value)} is outside {_number(low)} to {_number(high)}; using the {side}, {_number(clamped)}")
    return clamped


def conv_text(conv) -> str:
    """The address' ``conv`` value: "8x3p,16x3p" (filters x kernel, p: 2x2 max pooling after)."""
    return ",".join(f"{f}x{k}{'p' if pool else ''}" for f, k, pool in conv)


def conv_title(layer) -> str:
    f, k, pool = layer
    return f"conv {f} {k}x{k} {CONV_ACTIVATION}" + (" + 2x2 max pooling" if pool else "")


def _parse_conv(raw: str, notes) -> tuple[tuple[int, int, bool], ...]:
    parts = [p for p in raw.replace(" ", "").lower().split(",") if p and p != "none"]
    if len(parts) > MAX_CONV:
        notes.append(f"{len(parts)} conv layers asked for, at most {MAX_CONV} allowed; keeping the first {MAX_CONV}")
        parts = parts[:MAX_CONV]
    out = []
    for p in parts:
        pool = p.endswith("p")
        filters, _, kernel = (p[:-1] if pool else p).partition("x")
        f, k = _to_float(filters), _to_float(kernel or "3")
        if f is None or k is None:
            notes.append(f"conv layer {p!r} is not <filters>x<kernel> (such as 8x3p); left out")
            continue
        nf, nk = _nearest(f, FILTERS), _nearest(k, KERNELS)
        if nf != f:
            notes.append(f"conv filters {filters} is not one of {_list(FILTERS)}; using {nf}")
        if nk != k:
            notes.append(f"conv kernel {kernel} is not one of {_list(KERNELS)}; using {nk}")
        out.append((nf, nk, pool))
    return tuple(out)


def _parse_hidden(raw: str, default, notes) -> tuple[int, ...]:
    parts = [p.strip() for p in raw.replace(" ", "").split(",") if p.strip()]
    if not parts:
        notes.append(f"hidden layers {raw!r} name no width; using {_list(default)}")
        return default
    if len(parts) > MAX_HIDDEN:
        notes.append(f"{len(parts)} hidden layers asked for, at most {MAX_HIDDEN} allowed; keeping the first {MAX_HIDDEN}")
        parts = parts[:MAX_HIDDEN]
    widths = []
    for p in parts:
        value = _to_float(p)
        if value is None:
            notes.append(f"hidden layer width {p!r} is not a number; using {default[0]}")
            widths.append(default[0])
            continue
        width = _nearest(value, WIDTHS)
        if width != value:
            notes.append(f"hidden layer width {p} is not one of {_list(WIDTHS)}; using {width}")
        widths.append(width)
    return tuple(widths)


def _parse_activation(raw: str, layers: int, default: str, notes) -> str | tuple[str, ...]:
    names = [p.strip().lower() for p in raw.split(",") if p.strip()] or [default]
    fixed = []
    for n in names:
        if n in ACTIVATIONS:
            fixed.append(n)
        else:
            notes.append(f"activation {n!r} is unknown (allowed: {_list(ACTIVATIONS)}); using {default}")
            fixed.append(default)
    if len(fixed) == 1:
        return fixed[0]
    if len(fixed) != layers:
        notes.append(f"{len(fixed)} activations given for {layers} hidden layers; using {fixed[0]} for all")
        return fixed[0]
    return fixed[0] if len(set(fixed)) == 1 else tuple(fixed)


def exact_mean(values: np.ndarray) -> float:
    return math.fsum(values.tolist()) / values.size  # fsum is exactly rounded: no order at all


# --- the trainer ------------------------------------------------------------------


# --- the trainer ------------------------------------------------------------------


DEFAULT_NORMALIZATION = {"scale": 1.0 / 255.0, "offset": 0.0, "formula": "x = pixel / 255"}


class Diverged(RuntimeError):
    """Training stopped: the loss or the weights blew up (the message says how, and what to change)."""


@dataclass
class Step:
    """What one batch did (the trainer keeps the last in ``Trainer.last``)."""

    loss: float
    accuracy: float  # on the batch, before the update
    size: int


@dataclass
class Trainer:
    """Train ``settings``' network on ``images`` (uint8, (n, h, w) or (n, pixels)) and ``labels``.

    The input size is read from the images, the number of classes from
    ``classes`` (default: one per label value 0 .. max(labels)), the
    normalisation from ``input_spec`` (a manifest's ``input`` section; default
    pixel / 255).
    """

    settings: Settings
    images: np.ndarray
    labels: np.ndarray
    classes: list[str] | None = None
    input_spec: dict | None = None
    # progress
    steps: int = field(default=0, init=False)  # batches trained
    epoch: int = field(default=0, init=False)  # epochs completed
    position: int = field(default=0, init=False)  # digits of the current epoch already trained on
    seen: int = field(default=0, init=False)  # digits trained on in all
    losses: list[float] = field(default_factory=list, init=False)  # one per batch
    stopped: str | None = field(default=None, init=False)  # why training stopped (divergence), else None
    last: Step | None = field(default=None, init=False)

    def __post_init__(self):
        images = np.asarray(self.images)
        if images.ndim == 3:
            image_shape = [int(images.shape[1]), int(images.shape[2])]
        elif images.ndim == 2:
            image_shape = [1, int(images.shape[1])]
        else:
            raise ValueError(f"images must be (n, height, width) or (n, pixels), got shape {images.shape}")
        self.images = images.reshape(images.shape[0], -1)
        self.labels = np.asarray(self.labels).astype(np.intp).reshape(-1)
        if self.labels.shape[0] != self.images.shape[0] or self.images.shape[0] == 0:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")
        if self.classes is None:
            self.classes = [str(c) for c in range(int(self.labels.max()) + 1)]
        if self.labels.min() < 0 or self.labels.max() >= len(self.classes):
            raise ValueError(f"labels must lie in 0 .. {len(self.classes) - 1} (one per class)")
        spec = dict(self.input_spec or {})
        spec.setdefault("size", int(self.images.shape[1]))
        spec.setdefault("image_shape", image_shape)
        spec.setdefault("dtype", "float32")
        spec.setdefault("normalization", dict(DEFAULT_NORMALIZATION))
        if spec["size"] != self.images.shape[1]:
            raise ValueError(f"the images have {self.images.shape[1]} pixels, input.size says {spec['size']}")
        self.input_spec = spec
        norm = spec["normalization"]
        self._scale = np.float32(norm.get("scale", DEFAULT_NORMALIZATION["scale"]))
        self._offset = np.float32(norm.get("offset", 0.0))
        self.reset()

    # -- state ------------------------------------------------------------------

    @property
    def sizes(self) -> list:
        """The network's shape: input pixels, each conv layer as the address writes it ("8x3p"), the dense widths."""
        s = self.settings
        return [int(self.images.shape[1]), *(conv_text([c]) for c in s.conv), *s.hidden, len(self.classes)]

    @property
    def layer_activations(self) -> list[str]:
        """Each layer with weights' activation (conv layers first)."""
        return [*(CONV_ACTIVATION for _ in self.settings.conv), *self.settings.activations, act.OUTPUT]

    @property
    def trained_layers(self) -> list:
        """The layers with weights (conv and dense), in order."""
        return [layer for layer in self.layers if layer.parts]

    def _conv_layers(self, init) -> tuple[list, int]:
        """The conv stack (conv, its pooling, ..., flatten) with glorot-uniform kernels (Keras' default) and
        zero biases, and the flattened size it hands the dense layers; ([], pixels) without conv layers."""
        pixels = int(self.images.shape[1])
        if not self.settings.conv:
            return [], pixels
        h, w = (int(v) for v in self.input_spec["image_shape"])
        shape = (h, w, pixels // (h * w))
        out = []
        for i, (filters, k, pool) in enumerate(self.settings.conv, start=1):
            if shape[0] < k or shape[1] < k:
                raise ValueError(f"conv layer {i} ({k}x{k}) does not fit its {shape[0]}x{shape[1]} input: "
                                 f"use fewer conv layers, a smaller kernel or no pooling")
            limit = math.sqrt(6.0 / (k * k * shape[2] + k * k * filters))  # fan in + fan out, as Keras counts them
            weights = init.uniform(-limit, limit, (k, k, shape[2], filters)).astype(np.float32)
            conv = layer_kinds.Conv2D(name=f"conv_{i}", title=f"Convolution {i}", activation=CONV_ACTIVATION,
                                      weights=weights, bias=np.zeros(filters, dtype=np.float32), input_shape=shape)
            out.append(conv)
            shape = conv.output_shape
            if pool:
                if shape[0] < 2 or shape[1] < 2:
                    raise ValueError(f"conv layer {i}'s {shape[0]}x{shape[1]} output is too small to pool 2x2")
                out.append(layer_kinds.MaxPool2D(name=f"pool_{i}", title=f"Pooling {i}", input_shape=shape))
                shape = out[-1].output_shape
        out.append(layer_kinds.Flatten(name="flatten", title="Flatten", input_shape=shape))
        return out, int(np.prod(shape))

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.images.shape[0] // self.settings.batch_size)

    def reset(self, settings: Settings | None = None) -> None:
        """New initial weights from the seed (and, if given, new settings); progress back to 0."""
        if settings is not None:
            self.settings = settings
        s = self.settings
        init = np.random.default_rng([s.seed, 0])
        self._shuffle = np.random.default_rng([s.seed, 1])
        convs, flat = self._conv_layers(init)
        dense_sizes = [flat, *s.hidden, len(self.classes)]
        arrays = []
        for fan_in, fan_out, activation in zip(dense_sizes[:-1], dense_sizes[1:], [*s.activations, act.OUTPUT]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # glorot_uniform, Keras' default for Dense
            arrays.append((init.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32),
                           np.zeros(fan_out, dtype=np.float32), activation))
        # the network being trained (float32 weights)
        self.layers = [*convs, *layer_kinds.dense_chain(arrays, self.classes)]
        self._state = [[np.zeros(p.shape) for p in layer.params()] for layer in self.layers]
        self._second = [[np.zeros(p.shape) for p in layer.params()] for layer in self.layers]
        self._beta_powers = (1.0, 1.0)
        self.steps = self.epoch = self.position = self.seen = 0
        self.losses = []
        self.stopped = None
        self.last = None
        self._order = self._shuffle.permutation(self.images.shape[0])

    @property
    def weights(self) -> list[np.ndarray]:
        """Each conv and dense layer's weights, float32: (fan_in, fan_out), a conv's (kh, kw, channels, filters)."""
        return [layer.weights for layer in self.trained_layers]

    @property
    def biases(self) -> list[np.ndarray]:
        """Each conv and dense layer's bias, float32 (fan_out,)."""
        return [layer.bias for layer in self.trained_layers]

    def set_weights(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        """Start from these weights (float32, the shapes of the settings' network); optimizer state cleared."""
        for i, (w, b) in enumerate(zip(weights, biases)):
            if w.shape != self.weights[i].shape or b.shape != self.biases[i].shape:
                raise ValueError(f"layer {i}: weights {w.shape} / bias {b.shape}, expected "
                                 f"{self.weights[i].shape} / {self.biases[i].shape}")
            self.trained_layers[i].set_params([np.asarray(w, dtype=np.float32).copy(),
                                               np.asarray(b, dtype=np.float32).copy()])
        for state in (self._state, self._second):
            for pair in state:
                for s in pair:
                    s[...] = 0.0
        self._beta_powers = (1.0, 1.0)

    def progress(self) -> dict:
        """Cheap figures for the page: epoch, steps, the last and smoothed loss, digits seen."""
        return {
            "epoch": self.epoch,
            "epoch_progress": self.position / self.images.shape[0],
            "steps": self.steps,
            "steps_per_epoch": self.steps_per_epoch,
            "seen": self.seen,
            "loss": self.losses[-1] if self.losses else None,
            "smoothed_loss": self.smoothed_loss(),
            "stopped": self.stopped,
        }

    def smoothed_loss(self, window: int = 50) -> float | None:
        if not self.losses:
            return None
        tail = self.losses[-window:]
        return math.fsum(tail) / len(tail)

    # -- the arithmetic -----------------------------------------------------------

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (n, pixels) -> the network's input, float32 as the page computes it, as float64."""
        return (pixels.astype(np.float32) * self._scale + self._offset).astype(np.float64)

    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """(net inputs, activations, the input's non-zero columns) of float64 input ``x`` (n, pixels).

        The layers' own forward pass, in one summation order (``exact``); the
        input's all-zero columns (background pixels) are left out of the
        first product: their terms are exact zeros, so the sums are the same
        (a first conv layer leaves out its all-zero patches: the columns are
        then None). A layer without weights (pooling, flatten) gives its
        output as its net input.
        """
        acts = layer_kinds.forward_all(self.layers, x, exact=True, sparse_input=True)
        zs = [layer.net_input if layer.parts else a for layer, a in zip(self.layers, acts)]
        return zs, acts, getattr(self.layers[0], "input_columns", None)

    def gradients(self, pixels: np.ndarray, labels: np.ndarray):
        """(mean loss, per-digit accuracy, [(dL/dW, dL/db) per layer]) of this batch, float64; nothing changes."""
        pixels = np.asarray(pixels).reshape(len(labels), -1)
        labels = np.asarray(labels).astype(np.intp)
        n = labels.shape[0]
        x = self.normalize(pixels)
        zs, acts, _ = self.forward(x)
        rows = np.arange(n)
        # loss: -log softmax(z)[label] = log(sum exp(z - max)) - (z - max)[label]
        logits = zs[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        sums = act.sum_last_axis(act.exp_portable(shifted))[:, 0]
        per_digit = act.log_portable(sums) - shifted[rows, labels]
        loss = exact_mean(per_digit) if np.isfinite(per_digit).all() else math.nan
        accuracy = float((logits.argmax(axis=1) == labels).mean())

        # backward: softmax + mean cross-entropy -> (p - one_hot) / n at the output's net input
        delta = acts[-1].copy()
        delta[rows, labels] -= 1.0
        delta /= n
        layer_kinds.backward_all(self.layers, delta, exact=True, at_net_input=True, input_gradient=False)
        return loss, accuracy, [layer.grads for layer in self.layers]

    def train_batch(self, pixels: np.ndarray, labels: np.ndarray) -> float:
        """One optimizer step on this batch (uint8 pixels (n, pixels), labels (n,)); returns its loss.

        The loss is the batch's before the update (as Keras reports it).
        Raises :class:`Diverged` (and sets ``stopped``) if the loss or the
        weights are no longer finite or the loss explodes.
        """
        if self.stopped:
            raise Diverged(self.stopped)
        loss, accuracy, grads = self.gradients(pixels, labels)
        self._apply(grads)
        n = len(labels)
        self.steps += 1
        self.seen += n
        self.losses.append(loss)
        self.last = Step(loss=loss, accuracy=accuracy, size=n)
        self._check_divergence(loss)
        return loss

    def _apply(self, grads) -> None:
        s = self.settings
        lr = s.learning_rate
        if s.optimizer == "adam":
            b1, b2 = self._beta_powers[0] * BETA_1, self._beta_powers[1] * BETA_2
            self._beta_powers = (b1, b2)
            alpha = lr * math.sqrt(1.0 - b2) / (1.0 - b1)
        for i, layer_grads in enumerate(grads):
            if not layer_grads:
                continue  # (pooling, flatten: no parameters)
            params = self.layers[i].params()
            for j, g in enumerate(layer_grads):
                p = params[j].astype(np.float64)
                if s.optimizer == "sgd":
                    p -= g * lr
                elif s.optimizer == "momentum":
                    m = self._state[i][j]
                    m *= s.momentum
                    m -= g * lr
                    p += m
                else:  # adam, as Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= m alpha / (sqrt(v) + eps)
                    m, v = self._state[i][j], self._second[i][j]
                    t = np.subtract(g, m)
                    t *= 1.0 - BETA_1
                    m += t
                    np.multiply(g, g, out=t)
                    t -= v
                    t *= 1.0 - BETA_2
                    v += t
                    np.sqrt(v, out=t)
                    t += EPSILON
                    step = m * alpha
                    step /= t
                    p -= step
                with np.errstate(over="ignore", invalid="ignore"):
                    params[j] = p.astype(np.float32)
            self.layers[i].set_params(params)

    def _check_divergence(self, loss: float) -> None:
        chance = math.log(len(self.classes))
        what = None
        if not math.isfinite(loss):
            what = "the loss became NaN (not a number)" if math.isnan(loss) else "the loss became infinite"
        elif not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in zip(self.weights, self.biases)):
            what = "the weights overflowed (NaN or infinite values)"
        elif loss > DIVERGE_SINGLE * chance:
            what = f"the loss exploded to {loss:.3g} (guessing at random gives {chance:.2f})"
        elif len(self.losses) >= DIVERGE_WINDOW:
            mean = math.fsum(self.losses[-DIVERGE_WINDOW:]) / DIVERGE_WINDOW
            if mean > DIVERGE_MEAN * chance:
                what = (f"the loss exploded: {mean:.3g} on average over the last {DIVERGE_WINDOW} batches "
                        f"(guessing at random gives {chance:.2f})")
        s = self.settings
        if what is None and len(self.losses) >= STALL_AFTER and s.learning_rate > DEFAULT_RATES[s.optimizer]:
            mean = math.fsum(self.losses[-STALL_WINDOW:]) / STALL_WINDOW
            if mean >= chance:
                what = (f"after {len(self.losses)} batches the loss ({mean:.3g} on average over the last "
                        f"{STALL_WINDOW}) is still no better than guessing at random ({chance:.2f}): "
                        f"the steps are too large to learn")
        if what is None:
            return
        smaller = _number(float(f"{s.learning_rate / 10:.3g}"))
        self.stopped = (f"Training stopped at step {self.steps} (epoch {self.epoch + 1}): {what}. The learning rate "
                        f"{_number(s.learning_rate)} is too large for {OPTIMIZER_TITLES[s.optimizer]}: try a smaller one, "
                        f"such as {smaller} (the default is {_number(DEFAULT_RATES[s.optimizer])}), and press Reset.")
        raise Diverged(self.stopped)

    # -- stepping --------------------------------------------------------------------

    def next_batch(self) -> np.ndarray:
        """The indices of the next mini-batch (the epoch's shuffled order, in slices)."""
        b = self.settings.batch_size
        return self._order[self.position : self.position + b]

    def step(self) -> float | None:
        """Train on the next mini-batch; returns its loss, or None if training has stopped."""
        if self.stopped:
            return None
        idx = self.next_batch()
        try:
            loss = self.train_batch(self.images[idx], self.labels[idx])
        except Diverged:
            return None
        finally:
            self._advance(len(idx))
        return loss

    def _advance(self, count: int) -> None:
        self.position += count
        if self.position >= self.images.shape[0]:
            self.epoch += 1
            self.position = 0
            self._order = self._shuffle.permutation(self.images.shape[0])

    def run(self, n: int) -> int:
        """Up to ``n`` steps (fewer if training stops); returns how many were done."""
        done = 0
        while done < n and not self.stopped:
            if self.step() is None:
                break
            done += 1
        return done

    def run_epoch(self) -> int:
        """Train to the end of the current epoch."""
        return self.run(-(-(self.images.shape[0] - self.position) // self.settings.batch_size))

    # -- looking at the network ----------------------------------------------------------

    def predict(self, images: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Class index per image (uint8 pixels, (n, h, w) or (n, pixels))."""
        flat = np.asarray(images).reshape(len(images), -1)
        out = []
        for start in range(0, flat.shape[0], chunk):
            _, acts, _ = self.forward(self.normalize(flat[start : start + chunk]))
            out.append(acts[-1].argmax(axis=1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.intp)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy (0 to 1) on these digits."""
        labels = np.asarray(labels).reshape(-1)
        return float((self.predict(images) == labels).mean())

    def start_evaluation(self, images: np.ndarray, labels: np.ndarray, chunk: int = 500) -> "Evaluation":
        """The accuracy of the current weights on these digits, computed a slice per call (see Evaluation)."""
        return Evaluation(self, images, labels, chunk)

    def run_until(self, deadline: float, clock=None) -> int:
        """Train until ``clock()`` reaches ``deadline`` (at least one step); returns the steps done.

        For a page that trains within a time budget per frame: ``clock`` is
        its own (``time.perf_counter`` by default, seconds).
        """
        import time

        clock = clock or time.perf_counter
        done = 0
        while not self.stopped and (done == 0 or clock() < deadline):
            if self.step() is None:
                break
            done += 1
        return done

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def to_network(self, **export_args):
        """The current network as the page's ``network.Network`` (through the export, as a saved file would be)."""
        from pyscript_app.core import network as nw

        manifest, files = self.to_export(**export_args)
        return nw.build_network(manifest, files)

    def to_export(self, model_id: str = "trained", title: str | None = None, dataset: dict | None = None,
                  test_accuracy: float | None = None) -> tuple[dict, dict[str, bytes]]:
        """The current network as an export: (manifest version 2, {file name: .npy bytes}).

        ``dataset`` is the test set's entry (name, sha256, count) when
        ``test_accuracy`` was measured on it. A network whose weights are no
        longer finite (training diverged) cannot be exported: ValueError.
        """
        if not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in zip(self.weights, self.biases)):
            raise ValueError("the network cannot be saved: its weights are no longer finite numbers "
                             "(training diverged); press Reset and train with a smaller learning rate")
        s = self.settings
        training = {
            "source": "trained in the page (pyscript_app/train.py)",
            "settings": s.to_params(),
            "optimizer": s.optimizer,
            "learning_rate": s.learning_rate,
            "batch_size": s.batch_size,
            "seed": s.seed,
            "epochs": round(self.epoch + self.position / self.images.shape[0], 4),
            "steps": self.steps,
            "training_digits": int(self.images.shape[0]),
            "final_loss": self.smoothed_loss(),
            "test_accuracy": None if test_accuracy is None else round(float(test_accuracy), 6),
        }
        if self.stopped:
            training["stopped"] = self.stopped
        return export_write.build(self.layers, model_id=model_id, title=title or "Trained in the page",
                                  description=f"Trained in the browser: {s.describe()}.", input_spec=self.input_spec,
                                  classes=self.classes, training=training, dataset=dataset)


class Evaluation:
    """Accuracy on many digits, a slice at a time, on the weights as they were when it started.

    Training may go on between slices (the weights are copied at the start):
    ``while not e.advance(): ...`` then ``e.accuracy``. On the 10,000 test
    digits a slice of 500 takes a few milliseconds in the browser.
    """

    def __init__(self, trainer: Trainer, images: np.ndarray, labels: np.ndarray, chunk: int = 500):
        self._layers = [layer.copy() for layer in trainer.layers]
        self._normalize = trainer.normalize
        self.steps = trainer.steps  # the step whose weights are measured
        self._images = np.asarray(images).reshape(len(images), -1)
        self._labels = np.asarray(labels).reshape(-1)
        self.chunk = int(chunk)
        self.position = 0
        self.correct = 0

    @property
    def count(self) -> int:
        return int(self._labels.shape[0])

    @property
    def done(self) -> bool:
        return self.position >= self.count

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.done else None

    def advance(self, count: int | None = None) -> bool:
        """Classify the next ``count`` digits (default: ``chunk``); True once every digit is done."""
        if not self.done:
            end = min(self.position + max(1, int(self.chunk if count is None else count)), self.count)
            acts = layer_kinds.forward_all(self._layers, self._normalize(self._images[self.position : end]),
                                           exact=True, keep=False, sparse_input=True)
            self.correct += int((acts[-1].argmax(axis=1) == self._labels[self.position : end]).sum())
            self.position = end
        return self.done


def weights_digest(trainer: Trainer) -> str:
    """sha256 over every weight and bias (layer order): equal digests, identical networks."""
    h = hashlib.sha256()
    for w, b in zip(trainer.weights, trainer.biases):
        h.update(np.ascontiguousarray(w).tobytes())
        h.update(np.ascontiguousarray(b).tobytes())
    return h.hexdigest()
