"""Layer kinds: each one a small class that knows its forward and backward pass and its manifest entry.

Pure numpy; runs unchanged in CPython and in the browser (Pyodide). A layer
kind is one class registered in ``KINDS`` under the name a manifest's
``kind`` field uses. Each class has:

* its parameters (float32 arrays, in the order of ``parts``, the manifest's
  array entries; ``params()`` / ``set_params()``),
* ``forward(x)``: its output for a batch ``x`` (float64 arithmetic), keeping
  what ``backward`` needs (``keep=False`` keeps nothing),
* ``backward(grad_out)``: the gradient with respect to its input, after
  storing its parameters' gradients in ``grads`` (same order as ``parts``),
* ``check(entry, ...)`` / ``from_entry(entry, arrays)`` / ``entry()``: its
  manifest entry, checked (for export_format's loader), read and written,
* what a view needs: ``units`` and ``output_shape``.

``exact=True`` (training) sums every product in one fixed order
(ordered.dot) and takes each activation's portable form
(``activations.Activation.exact``): the same bits in CPython and the browser.
Otherwise numpy's own product runs (BLAS in CPython), which is faster but
adds in an order that depends on the numpy build.

``forward_all`` / ``backward_all`` run a chain of layers: the one forward and
the one backward that network.Network and train.Trainer share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from pyscript_app.core import activations as act
from pyscript_app.core import ordered


class Layer:
    """What every layer kind has; see the module's docstring."""

    kind: ClassVar[str] = ""
    parts: ClassVar[tuple[str, ...]] = ()  # names of its parameter arrays, as in the manifest
    name: str
    title: str
    labels: list[str] | None
    stats: dict | None

    @property
    def is_output(self) -> bool:
        return self.labels is not None

    def params(self) -> list[np.ndarray]:
        return [getattr(self, part) for part in self.parts]

    def set_params(self, arrays: Sequence[np.ndarray]) -> None:
        """Replace the parameters (float32, in ``parts`` order)."""
        for part, array in zip(self.parts, arrays):
            setattr(self, part, array)
        self.refresh()

    def refresh(self) -> None:
        """Recompute what is derived from the parameters (call after changing them in place)."""

    def copy(self) -> "Layer":
        return dataclasses.replace(self, **{part: getattr(self, part).copy() for part in self.parts})  # type: ignore

    def forward(self, x: np.ndarray, exact: bool = False, keep: bool = True, sparse_input: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray, exact: bool = False, at_net_input: bool = False,
                 parameters: bool = True, input_gradient: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def entry(self) -> dict:
        """Its manifest entry without the array files (the writer adds those, one per part)."""
        raise NotImplementedError


@dataclass
class Dense(Layer):
    """Every unit sums every input: ``activation(x @ weights + bias)``."""

    kind: ClassVar[str] = "dense"
    parts: ClassVar[tuple[str, ...]] = ("weights", "bias")

    name: str
    title: str
    activation: str
    weights: np.ndarray  # (inputs, units) float32
    bias: np.ndarray  # (units,) float32
    labels: list[str] | None = None  # names of the units: the classes, for the output layer only
    stats: dict | None = None  # activation_stats: {"p99": ..., "max": ...} over the test set

    def __post_init__(self):
        self.refresh()
        self._cache = None
        self.grads: tuple[np.ndarray, ...] = ()

    def refresh(self) -> None:
        # The arithmetic runs in float64: float32 sums depend on the order the
        # BLAS of each numpy build adds in (the browser's numpy and CPython's
        # differ by up to ~2e-6), float64 ones agree to the last float32 bit.
        self._w64 = self.weights.astype(np.float64)
        self._b64 = self.bias.astype(np.float64)

    # -- what a view needs
    @property
    def units(self) -> int:
        return int(self.bias.shape[0])

    @property
    def inputs(self) -> int:
        return int(self.weights.shape[0])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.units,)

    # -- the arithmetic
    def pre_activation(self, x: np.ndarray) -> np.ndarray:
        """Weighted input sums (float64) for input ``x`` (n, fan_in) or (fan_in,)."""
        return np.asarray(x, dtype=np.float64) @ self._w64 + self._b64

    def activate(self, z: np.ndarray) -> np.ndarray:
        return act.get(self.activation).function(z)

    def forward(self, x, exact=False, keep=True, sparse_input=False):
        """``activation(x @ weights + bias)`` for x (n, inputs), float64.

        ``sparse_input``: input columns that are 0 in every row are left out of
        the product (their terms are exact zeros: the sums are the same).
        """
        x = np.asarray(x, dtype=np.float64)
        w, cols = self._w64, None
        if sparse_input:
            cols = np.flatnonzero(x.any(axis=0))
            x, w = x[:, cols], w[cols]
        if exact:
            z = ordered.dot(x, w) + self._b64
            a = act.get(self.activation).exact(z)
        else:
            z = x @ w + self._b64
            a = self.activate(z)
        self._cache = (x, cols, z, a) if keep else None
        return a

    @property
    def net_input(self) -> np.ndarray:
        """The net input ``z`` of the last kept forward pass (float64)."""
        return self._cache[2]

    @property
    def input_columns(self) -> np.ndarray | None:
        """The input columns the last kept forward pass read (``sparse_input``), else None: all."""
        return self._cache[1]

    @property
    def last_output(self) -> np.ndarray:
        """The output of the last kept forward pass (float64)."""
        return self._cache[3]

    def backward(self, grad_out, exact=False, at_net_input=False, parameters=True, input_gradient=True):
        """Gradient w.r.t. the input of the last kept forward; ``grads`` = (d weights, d bias).

        ``grad_out`` is the gradient w.r.t. this layer's output, or with
        ``at_net_input`` w.r.t. its net input ``z`` (softmax with
        cross-entropy hands in ``probabilities - one_hot`` that way).
        """
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward pass with keep=True first")
        x, cols, z, a = self._cache
        if at_net_input:
            delta = grad_out
        elif self.activation == act.OUTPUT:  # softmax: J^T g = a * (g - sum(g * a))
            delta = a * (grad_out - (grad_out * a).sum(axis=-1, keepdims=True))
        else:
            delta = grad_out * act.get(self.activation).derivative(z, a)
        dot = ordered.dot if exact else np.matmul
        if parameters:
            g_w = dot(x.T, delta)
            if cols is not None:
                full = np.zeros(self.weights.shape)
                full[cols] = g_w
                g_w = full
            g_b = ordered.column_sums(delta)[0] if exact else delta.sum(axis=0)
            self.grads = (g_w, g_b)
        if not input_gradient:
            return None
        return dot(delta, self._w64.T)  # every input column, the skipped ones too

    # -- the manifest entry
    def entry(self) -> dict:
        return {"name": self.name, "title": self.title, "kind": self.kind, "inputs": self.inputs,
                "units": self.units, "activation": self.activation}

    @classmethod
    def from_entry(cls, entry: dict, arrays: Sequence[np.ndarray], labels: list[str] | None = None) -> "Dense":
        weights, bias = arrays
        return cls(name=entry["name"], title=entry.get("title") or entry["name"], activation=entry["activation"],
                   weights=weights, bias=bias, labels=labels, stats=entry.get("activation_stats"))

    @classmethod
    def check(cls, entry: dict, c, f: str, in_shape: tuple[int, ...], in_field: str, last: bool,
              classes: list) -> tuple[tuple[int, ...], str, dict[str, list[int]]]:
        """Check the entry's own fields (``c``: export_format's checker, ``f``: "layers[i]").

        ``in_shape`` is what the layer before gives (``in_field`` says where
        that is written). Returns (output shape, the field that says it,
        {part: expected array shape}).
        """
        units = c.integer(c.get(entry, "units", f"{f}.units"), f"{f}.units", 1, MAX_UNITS)
        inputs = c.integer(c.get(entry, "inputs", f"{f}.inputs"), f"{f}.inputs", 1)
        if len(in_shape) != 1:
            c.fail(f"{f}.kind", f"is \"dense\" but {in_field} gives a {'x'.join(map(str, in_shape))} image: "
                                f"a \"flatten\" layer must come first")
        if inputs != in_shape[0]:
            c.fail(f"{f}.inputs", f"is {inputs} but {in_field} is {in_shape[0]}: the layers do not connect")
        activation = c.get(entry, "activation", f"{f}.activation")
        if last:
            if activation != act.OUTPUT:
                c.fail(f"{f}.activation", f"must be \"{act.OUTPUT}\" for the output layer, got {c.shown(activation)}")
            if units != len(classes):
                c.fail(f"{f}.units", f"is {units} but there are {len(classes)} classes: the output layer needs one unit per class")
        elif activation not in act.HIDDEN:
            c.fail(f"{f}.activation", f"must be one of {', '.join(act.HIDDEN)} for a hidden layer, got {c.shown(activation)}")
        return (units,), f"{f}.units", {"weights": [inputs, units], "bias": [units]}


MAX_UNITS = 512  # the widest Dense layer an export may have

#: every layer kind, by the name a manifest's ``kind`` uses
KINDS: dict[str, type[Layer]] = {cls.kind: cls for cls in (Dense,)}


def kind(name: str) -> type[Layer]:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown layer kind {name!r}; known: {', '.join(KINDS)}") from None


# -- a chain of layers ----------------------------------------------------------------------


def forward_all(layers: Sequence[Layer], x: np.ndarray, exact: bool = False, keep: bool = True,
                float32: bool = False, knocked_out: Mapping[str, object] | None = None,
                sparse_input: bool = False) -> list[np.ndarray]:
    """Every layer's output for the batch ``x`` (n, ...), in order.

    ``float32``: each output is rounded to float32 before the next layer
    reads it (what the page shows); otherwise float64 throughout (training).
    ``knocked_out`` maps a layer name to units forced to 0 before the next
    layer. ``sparse_input``: the first layer skips the input's all-zero
    columns (training on digits: most pixels are background).
    """
    a = x
    out = []
    for i, layer in enumerate(layers):
        a = layer.forward(a, exact=exact, keep=keep, sparse_input=sparse_input and i == 0)
        if float32:
            a = a.astype(np.float32)
        dead = (knocked_out or {}).get(layer.name)
        if dead is not None and len(dead):  # type: ignore[arg-type]
            a = a.copy()
            a[:, np.asarray(list(dead), dtype=np.intp)] = 0.0  # type: ignore[arg-type]
        out.append(a)
    return out


def backward_all(layers: Sequence[Layer], grad: np.ndarray, exact: bool = False, at_net_input: bool = False,
                 knocked_out: Mapping[str, object] | None = None, parameters: bool = True,
                 input_gradient: bool = True) -> np.ndarray | None:
    """Back through ``layers`` (their last kept forward) from ``grad``, the gradient w.r.t. the last one's output.

    (``at_net_input``: w.r.t. the last layer's net input.) Each layer's
    parameter gradients land in its ``grads``; returns the gradient w.r.t.
    the first layer's input (None with ``input_gradient=False``: the first
    layer then skips it). A knocked-out unit passes no gradient back.
    """
    g = grad
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        dead = (knocked_out or {}).get(layer.name)
        if dead is not None and len(dead) and not (at_net_input and i == len(layers) - 1):  # type: ignore[arg-type]
            g = np.array(g, dtype=np.float64)
            g[:, np.asarray(list(dead), dtype=np.intp)] = 0.0  # type: ignore[arg-type]
        g = layer.backward(g, exact=exact, at_net_input=at_net_input and i == len(layers) - 1,
                           parameters=parameters, input_gradient=input_gradient or i > 0)
    return g


def dense_chain(arrays: Sequence[tuple[np.ndarray, np.ndarray, str]], classes: Sequence[str]) -> list[Dense]:
    """Dense layers for (weights, bias, activation) triples, named as every export names them:
    ``hidden_1`` ("Hidden layer 1"), ... and ``output`` ("Output layer", one unit per class)."""
    out = []
    for i, (w, b, activation) in enumerate(arrays):
        last = i == len(arrays) - 1
        out.append(Dense(name="output" if last else f"hidden_{i + 1}",
                         title="Output layer" if last else f"Hidden layer {i + 1}", activation=activation,
                         weights=np.asarray(w, dtype=np.float32), bias=np.asarray(b, dtype=np.float32),
                         labels=list(classes) if last else None))
    return out
