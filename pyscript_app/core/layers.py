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
(ordered.dot; a conv layer's in the browser: ordered.rows_product) and takes each activation's portable form
(``activations.Activation.exact``): the same bits in CPython and the browser.
Otherwise numpy's own product runs (BLAS in CPython), which is faster but
adds in an order that depends on the numpy build.

Without ``exact`` the products go through :func:`_product` (numpy's own,
or where numpy has no BLAS, the faster of its two plain loops).

``forward_all`` / ``backward_all`` run a chain of layers: the one forward and
the one backward that network.Network and train.Trainer share.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from pyscript_app.core import activations as act
from pyscript_app.core import ordered


#: numpy without BLAS (the browser's): its matrix product is a plain loop, one dot product per output element
NO_BLAS = sys.platform == "emscripten"
#: ... and einsum's loop runs along a row of the output instead: about twice as fast from this many columns on
EINSUM_COLUMNS = 32


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D float64 arrays: numpy's matrix product (BLAS in CPython); without BLAS, einsum
    along the result's rows (ordered.rows_product) when they have at least EINSUM_COLUMNS values. BLAS adds
    each sum's terms in an order of its own; the browser's numpy adds them first to last either way
    (ordered.matmul_in_order, einsum_in_order), so there this is also the ``exact`` passes' product."""
    if not NO_BLAS or b.shape[1] < EINSUM_COLUMNS:
        return a @ b
    return ordered.rows_product(a, b)


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
        self._w64_t = np.ascontiguousarray(self._w64.T)  # (units, inputs): the input gradient's product

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
            z = _product(x, w)
            z += self._b64
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
        # every input column, the skipped ones too
        if exact:
            return ordered.dot(delta, self._w64.T)
        return _product(np.asarray(delta, dtype=np.float64), self._w64_t if NO_BLAS else self._w64.T)

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
MAX_FILTERS = 64  # the most channels a conv2d layer may have
KERNEL_SIZES = (3, 5)
PADDINGS = ("valid", "same")


def _shape(shape) -> str:
    return "x".join(str(v) for v in shape)


def _check_input_shape(kind: str, entry: dict, c, f: str, in_shape: tuple[int, ...], in_field: str,
                       last: bool) -> tuple[int, int, int]:
    """An image layer's ``input_shape`` [height, width, channels]: what the layer before gives (a flat
    vector is read as that image, row by row, channels last). It is never the output layer."""
    if last:
        c.fail(f"{f}.kind", f"is \"{kind}\" but the output layer must be \"dense\" (one unit per class)")
    shape = c.int_list(c.get(entry, "input_shape", f"{f}.input_shape"), f"{f}.input_shape", 3)
    if min(shape) < 1:
        c.fail(f"{f}.input_shape", f"must hold positive sizes, got {c.shown(shape)}")
    fits = tuple(shape) == tuple(in_shape) if len(in_shape) == 3 else int(np.prod(shape)) == in_shape[0]
    if not fits:
        c.fail(f"{f}.input_shape", f"is {c.shown(shape)} but {in_field} gives {_shape(in_shape)}: the layers do not connect")
    return shape[0], shape[1], shape[2]


def _check_output_shape(entry: dict, c, f: str, expected: list[int], why: str) -> tuple[int, ...]:
    got = c.int_list(c.get(entry, "output_shape", f"{f}.output_shape"), f"{f}.output_shape", len(expected))
    if got != expected:
        c.fail(f"{f}.output_shape", f"must be {c.shown(expected)} ({why}), got {c.shown(got)}")
    return tuple(got)


def _shape_entry(layer) -> dict:
    return {"name": layer.name, "title": layer.title, "kind": layer.kind, "input_shape": list(layer.input_shape),
            "output_shape": list(layer.output_shape)}


# CPython: at most this many products at once when summing a long row of them (see _in_order)
_PRODUCTS_BLOCK = 1 << 19


def _in_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (float64) for a (p, m) and b (m, q), each sum over m added first to last from 0.

    ordered.dot's order, for long sums (a conv weight's gradient adds up a
    term per output pixel of the batch): the browser's matrix product adds
    so, whatever the layout; elsewhere the products of a block of the m
    terms are summed by ``np.add.accumulate``, which adds each term to the
    sum of those before it.
    """
    if ordered.matmul_in_order():  # (b's columns contiguous when there are several: the loop reads them faster)
        return np.matmul(a, np.asfortranarray(b) if b.shape[1] > 1 and a.shape[0] > 1 else b)
    p, q = a.shape[0], b.shape[1]
    out = np.zeros((p, q))
    step = max(1, _PRODUCTS_BLOCK // max(1, p * q))
    for start in range(0, a.shape[1], step):
        products = a.T[start : start + step, :, None] * b[start : start + step, None, :]  # (terms, p, q)
        products[0] += out
        out = np.add.accumulate(products, axis=0)[-1]
    return out


def _tiled_add(z: np.ndarray, bias: np.ndarray, width: int) -> None:
    """``z += bias`` for z (rows, channels) whose rows come ``width`` to an image row: broadcast over long
    runs (a whole image row at once) rather than one short run of channels per pixel."""
    if z.size:
        z.reshape(-1, width * bias.size)[...] += np.tile(bias, width)


def _knock(a: np.ndarray, dead) -> np.ndarray:
    """``a`` with the units (the last axis: a dense unit, a channel) in ``dead`` set to 0."""
    a = np.array(a, dtype=a.dtype)
    a[..., np.asarray(list(dead), dtype=np.intp)] = 0.0
    return a


@dataclass
class Conv2D(Layer):
    """``filters`` kernels slid over the image (stride 1): ``activation(sum of kernel * patch + bias)`` per
    output pixel and channel. Images are (n, height, width, channels), as in Keras.

    The products run on im2col rows: one row per output pixel, its patch read
    (kernel row, kernel column, channel). With ``exact`` and ``sparse_input``
    (training's first layer) the patches that are all zero (the background
    of a digit) are left out of the products: their sums are exact zeros, so
    the results are the same bits as with every row. With ``exact`` each sum
    is added in one order: the net input over the patch
    (kernel row, column, channel), a weight's gradient over the rows (digit,
    output row, output column), the input gradient over the filters, then
    over the kernel positions (row, column). The browser's numpy runs the
    products on the im2col matrix transposed (a long row per kernel position
    and channel), with einsum along those rows; it adds in that same order
    there (ordered.einsum_in_order), so its exact passes take that way too.
    """

    kind: ClassVar[str] = "conv2d"
    parts: ClassVar[tuple[str, ...]] = ("weights", "bias")

    name: str
    title: str
    activation: str
    weights: np.ndarray  # (kernel height, kernel width, input channels, filters) float32: Keras' layout
    bias: np.ndarray  # (filters,) float32
    input_shape: tuple[int, int, int]  # (height, width, channels)
    padding: str = "valid"  # "same": the output has the input's height and width (zeros around)
    labels: list[str] | None = None
    stats: dict | None = None

    #: below this share of patches with a non-zero value, the products skip the all-zero ones
    SPARSE_SHARE: ClassVar[float] = 0.85

    def __post_init__(self):
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        self.refresh()
        self._cache = None
        self.grads: tuple[np.ndarray, ...] = ()

    def refresh(self) -> None:
        kh, kw, cin, cout = self.weights.shape
        self._w64 = self.weights.astype(np.float64).reshape(kh * kw * cin, cout)  # rows: (ky, kx, channel)
        self._b64 = self.bias.astype(np.float64)
        self._w64_t = np.ascontiguousarray(self._w64.T)  # (filters, kh * kw * channels)
        # per kernel position its (filters, channels) block, for the input gradient with numpy's own product
        self._w_back = [np.asfortranarray(self._w64[k * cin : (k + 1) * cin].T) for k in range(kh * kw)]

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weights.shape[0]), int(self.weights.shape[1])

    @property
    def units(self) -> int:
        """Its channels (one feature map each)."""
        return int(self.bias.shape[0])

    @property
    def pads(self) -> tuple[int, int]:
        kh, kw = self.kernel
        return ((kh - 1) // 2, (kw - 1) // 2) if self.padding == "same" else (0, 0)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        (h, w, _), (kh, kw), (ph, pw) = self.input_shape, self.kernel, self.pads
        return h + 2 * ph - kh + 1, w + 2 * pw - kw + 1, self.units

    def activate(self, z: np.ndarray) -> np.ndarray:
        return act.get(self.activation).function(z)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        ph, pw = self.pads
        if ph or pw:
            x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        return x

    def _columns(self, x: np.ndarray) -> np.ndarray:
        """im2col of the padded input: every output pixel's patch as one row (n * out_h * out_w, kh * kw * channels)."""
        (kh, kw), (oh, ow, _) = self.kernel, self.output_shape
        n, c = x.shape[0], x.shape[3]
        if c == 1:  # one plane: a copy per kernel position is far cheaper than the strided windows
            cols = np.empty((n, oh, ow, kh * kw))
            for ky in range(kh):
                for kx in range(kw):
                    cols[..., ky * kw + kx] = x[:, ky : ky + oh, kx : kx + ow, 0]
            return cols.reshape(-1, kh * kw)
        windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # n, oh, ow, c, kh, kw
        return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, self._w64.shape[0])

    def _columns_t(self, x: np.ndarray) -> np.ndarray:
        """The im2col matrix transposed, (kh * kw * channels, n * out_h * out_w): one long row per kernel
        position and channel (the products that are not exact run along these rows)."""
        (kh, kw), (oh, ow, _) = self.kernel, self.output_shape
        n, c = x.shape[0], x.shape[3]
        cols = np.empty((kh, kw, c, n, oh, ow))
        for ky in range(kh):
            for kx in range(kw):
                cols[ky, kx] = x[:, ky : ky + oh, kx : kx + ow, :].transpose(3, 0, 1, 2)
        return cols.reshape(kh * kw * c, -1)

    def _live_rows(self, x: np.ndarray) -> np.ndarray | None:
        """The im2col rows whose patch holds a non-zero value, or None when nearly all do (then all are used)."""
        (kh, kw), (oh, ow, _) = self.kernel, self.output_shape
        lit = x[..., 0] != 0 if x.shape[3] == 1 else x.any(axis=3)
        across = lit[:, :, :ow].copy()  # a kernel-wide run of each row holds a non-zero value
        for kx in range(1, kw):
            across |= lit[:, :, kx : kx + ow]
        hit = across[:, :oh].copy()  # ... and a kernel-high stack of those runs
        for ky in range(1, kh):
            hit |= across[:, ky : ky + oh]
        rows = np.flatnonzero(hit)
        return rows if rows.size < self.SPARSE_SHARE * hit.size else None

    def forward(self, x, exact=False, keep=True, sparse_input=False):
        x = self._padded(np.asarray(x, dtype=np.float64).reshape(-1, *self.input_shape))
        n = x.shape[0]
        oh, ow, units = self.output_shape
        transposed = NO_BLAS and (not exact or ordered.einsum_in_order())
        if transposed:  # the product transposed, (filters, patches): plain loops run along the patches
            cols = self._columns_t(x)
        else:
            cols = self._columns(x)
        rows = self._live_rows(x) if exact and sparse_input else None
        if rows is None:
            if transposed:
                z_t = _product(self._w64_t, cols)
                z_t += self._b64[:, None]
                z = np.ascontiguousarray(z_t.T)
            else:
                z = ordered.dot(cols, self._w64) if exact else cols @ self._w64
                _tiled_add(z, self._b64, ow)
        else:  # the all-zero patches' net input is the bias (0 + bias, as the full product gives)
            z = np.empty((n * oh * ow, units))
            z.reshape(-1, ow * units)[...] = np.tile(self._b64 + 0.0, ow)
            if transposed:
                cols = cols[:, rows]
                live = _product(self._w64_t, cols).T
            else:
                cols = cols[rows]
                live = ordered.dot(cols, self._w64)
            live += self._b64
            z[rows] = live
        a = act.get(self.activation).exact(z) if exact else self.activate(z)
        shape = (n, *self.output_shape)
        z, a = z.reshape(shape), a.reshape(shape)
        self._cache = (n, cols, rows, z, a, transposed, exact) if keep else None
        return a

    @property
    def net_input(self) -> np.ndarray:
        return self._cache[3]

    @property
    def last_output(self) -> np.ndarray:
        return self._cache[4]

    def backward(self, grad_out, exact=False, at_net_input=False, parameters=True, input_gradient=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward pass with keep=True first")
        n, cols, rows, z, a, transposed, exact_forward = self._cache
        grad_out = np.asarray(grad_out, dtype=np.float64).reshape(z.shape)
        if at_net_input:
            delta = grad_out
        elif self.activation == "relu":  # its derivative is 1 where z > 0, else 0: one pass instead of three
            delta = np.where(z > 0, grad_out, 0.0)
        else:
            delta = grad_out * act.get(self.activation).derivative(z, a)
        delta = delta.reshape(-1, self.units)
        if exact and not exact_forward:
            raise RuntimeError(f"{self.name}: an exact backward needs an exact forward pass first")
        if parameters:
            if exact:
                self.grads = self._exact_parameter_gradients(np.ascontiguousarray(cols.T) if transposed else cols,
                                                             rows, delta)
            else:
                live = delta if rows is None else delta[rows]
                g_w = cols @ live if transposed else cols.T @ live
                self.grads = (g_w.reshape(self.weights.shape), delta.sum(axis=0))
        if not input_gradient:
            return None
        (h, w, c), (kh, kw), (ph, pw) = self.input_shape, self.kernel, self.pads
        oh, ow, _ = self.output_shape
        if transposed:
            # Every kernel position's and channel's share of each output pixel in one product, on output
            # rows widened with zeros to the padded input's width: then a share goes back where it read as
            # one run per channel and digit (a widened row's zeros fall on the next row: they change no sum).
            hp, wp = oh + kh - 1, ow + kw - 1
            widened = np.zeros((self.units, n, oh, wp))
            widened[..., :ow] = delta.T.reshape(self.units, n, oh, ow)
            shares = _product(self._w64, widened.reshape(self.units, -1)).reshape(kh, kw, c, n, oh * wp)
            grad_t = np.zeros((c, n, hp * wp))  # the padded input, channels first, each image's rows in one run
            for ky in range(kh):  # col2im: each kernel position adds its share back where it read
                for kx in range(kw):
                    start = ky * wp + kx
                    run = min(oh * wp, hp * wp - start)  # (what is cut off at the end: a widened row's zeros)
                    grad_t[:, :, start : start + run] += shares[ky, kx, :, :, :run]
            return grad_t.reshape(c, n, hp, wp)[:, :, ph : ph + h, pw : pw + w].transpose(1, 2, 3, 0)
        dot = ordered.dot if exact else np.matmul
        grad = np.zeros((n, oh + kh - 1, ow + kw - 1, c))  # the padded input's shape
        for ky in range(kh):  # col2im: each kernel position adds its share back where it read (fixed order)
            for kx in range(kw):
                share = dot(delta, self._w_back[ky * kw + kx]).reshape(n, oh, ow, c)
                grad[:, ky : ky + oh, kx : kx + ow, :] += share
        return grad[:, ph : ph + h, pw : pw + w, :]

    def _exact_parameter_gradients(self, cols, rows, delta):
        """(d weights, d bias), each summed over the rows (digit, output row, output column) in order.

        A weight's sum only takes the rows whose patch is not all zeros (the
        others add exact zeros, which changes nothing to a sum that starts at
        0). When that is cheaper, it takes per filter only the rows where its
        delta is not 0 (after a max pooling, at most a quarter of them).
        """
        g_b = _in_order(np.ones((1, delta.shape[0])), delta)[0]
        live = delta if rows is None else delta[rows]
        terms = cols.shape[1]
        nonzero = live != 0
        count = int(np.count_nonzero(nonzero))
        if 2 * count * terms + 8 * live.size >= live.size * terms:  # the whole product is as cheap
            return _in_order(cols.T, live).reshape(self.weights.shape), g_b
        nonzero = np.ascontiguousarray(nonzero.T)  # (filters, live rows)
        ends = np.cumsum(np.count_nonzero(nonzero, axis=1))
        flat = np.flatnonzero(nonzero)  # filter by filter, each its rows in order
        which = flat % live.shape[0]
        values = live[which, flat // live.shape[0]]
        patches = cols[which]
        # a filter's sum, a patch at a time: einsum along the patch where it adds in order (the browser's)
        add_up = ordered.rows_product if ordered.einsum_in_order() and terms >= EINSUM_COLUMNS else _in_order
        g_w = np.zeros((terms, self.units))
        for f in range(self.units):
            start = ends[f - 1] if f else 0
            if ends[f] > start:
                g_w[:, f] = add_up(values[None, start : ends[f]], patches[start : ends[f]])[0]
        return g_w.reshape(self.weights.shape), g_b

    def entry(self) -> dict:
        return {**_shape_entry(self), "filters": self.units, "kernel": list(self.kernel), "stride": 1,
                "padding": self.padding, "activation": self.activation}

    @classmethod
    def from_entry(cls, entry, arrays, labels=None):
        weights, bias = arrays
        return cls(name=entry["name"], title=entry.get("title") or entry["name"], activation=entry["activation"],
                   weights=weights, bias=bias, input_shape=tuple(entry["input_shape"]), padding=entry["padding"],
                   labels=labels, stats=entry.get("activation_stats"))

    @classmethod
    def check(cls, entry, c, f, in_shape, in_field, last, classes):
        h, w, channels = _check_input_shape(cls.kind, entry, c, f, in_shape, in_field, last)
        filters = c.integer(c.get(entry, "filters", f"{f}.filters"), f"{f}.filters", 1, MAX_FILTERS)
        kernel = c.int_list(c.get(entry, "kernel", f"{f}.kernel"), f"{f}.kernel", 2)
        if kernel[0] != kernel[1] or kernel[0] not in KERNEL_SIZES:
            c.fail(f"{f}.kernel", f"must be [3, 3] or [5, 5], got {c.shown(kernel)}")
        stride = c.get(entry, "stride", f"{f}.stride")
        if stride != 1 or isinstance(stride, bool):
            c.fail(f"{f}.stride", f"must be 1 (the only stride supported), got {c.shown(stride)}")
        padding = c.get(entry, "padding", f"{f}.padding")
        if padding not in PADDINGS:
            c.fail(f"{f}.padding", f"must be \"valid\" or \"same\", got {c.shown(padding)}")
        k = kernel[0]
        oh, ow = (h, w) if padding == "same" else (h - k + 1, w - k + 1)
        if oh < 1 or ow < 1:
            c.fail(f"{f}.kernel", f"{c.shown(kernel)} is larger than its {h}x{w} input")
        activation = c.get(entry, "activation", f"{f}.activation")
        if activation not in act.HIDDEN:
            c.fail(f"{f}.activation", f"must be one of {', '.join(act.HIDDEN)} for a hidden layer, got {c.shown(activation)}")
        out = _check_output_shape(entry, c, f, [oh, ow, filters],
                                  f"{padding} padding of a {h}x{w} input by a {k}x{k} kernel, {filters} filters")
        return out, f"{f}.output_shape", {"weights": [k, k, channels, filters], "bias": [filters]}


@dataclass
class _Reshaping(Layer):
    """A layer without parameters that takes an image (height, width, channels)."""

    name: str
    title: str
    input_shape: tuple[int, int, int]
    labels: list[str] | None = None
    stats: dict | None = None

    def __post_init__(self):
        self.input_shape = tuple(int(v) for v in self.input_shape)  # type: ignore[assignment]
        self._cache = None
        self.grads: tuple[np.ndarray, ...] = ()

    def entry(self) -> dict:
        return _shape_entry(self)

    @classmethod
    def from_entry(cls, entry, arrays, labels=None):
        return cls(name=entry["name"], title=entry.get("title") or entry["name"],
                   input_shape=tuple(entry["input_shape"]), labels=labels, stats=entry.get("activation_stats"))


@dataclass
class MaxPool2D(_Reshaping):
    """The largest value of each 2x2 block of each channel (a last odd row or column is left out, as in Keras)."""

    kind: ClassVar[str] = "maxpool2d"
    POOL: ClassVar[int] = 2

    @property
    def units(self) -> int:
        return self.input_shape[2]

    @property
    def output_shape(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        return h // self.POOL, w // self.POOL, c

    def _corners(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Views (n, out_h, out_w, channels) of each block's top-left, top-right, bottom-left, bottom-right value."""
        oh, ow, _ = self.output_shape
        rows, cols = (slice(0, 2 * oh, 2), slice(1, 2 * oh, 2)), (slice(0, 2 * ow, 2), slice(1, 2 * ow, 2))
        return x[:, rows[0], cols[0]], x[:, rows[0], cols[1]], x[:, rows[1], cols[0]], x[:, rows[1], cols[1]]

    def forward(self, x, exact=False, keep=True, sparse_input=False):
        x = np.asarray(x, dtype=np.float64).reshape(-1, *self.input_shape)
        # each corner copied once: the comparisons then run along whole arrays, not a run of channels per block
        tl, tr, bl, br = (np.ascontiguousarray(corner) for corner in self._corners(x))
        # the first of equal maxima (row by row) wins, as TensorFlow routes the gradient; its value is taken
        # as it is (np.maximum's choice between -0.0 and 0.0 differs between numpy builds)
        left_top, left_bottom = tl >= tr, bl >= br
        top, bottom = np.where(left_top, tl, tr), np.where(left_bottom, bl, br)
        upper = top >= bottom
        a = np.where(upper, top, bottom)
        if keep:
            self._cache = (x.shape[0], upper, left_top, left_bottom)
        else:
            self._cache = None
        return a

    def backward(self, grad_out, exact=False, at_net_input=False, parameters=True, input_gradient=True):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward pass with keep=True first")
        n, upper, left_top, left_bottom = self._cache
        self.grads = ()
        if not input_gradient:
            return None
        g = np.asarray(grad_out, dtype=np.float64).reshape(n, *self.output_shape)
        grad = np.zeros((n, *self.input_shape))
        top, bottom = np.where(upper, g, 0.0), np.where(upper, 0.0, g)
        # each corner's share made whole, then written once into its (strided) places
        for corner, share in zip(self._corners(grad), (np.where(left_top, top, 0.0), np.where(left_top, 0.0, top),
                                                       np.where(left_bottom, bottom, 0.0), np.where(left_bottom, 0.0, bottom))):
            corner[...] = share
        return grad

    def entry(self) -> dict:
        return {**_shape_entry(self), "pool": [self.POOL, self.POOL]}

    @classmethod
    def check(cls, entry, c, f, in_shape, in_field, last, classes):
        h, w, channels = _check_input_shape(cls.kind, entry, c, f, in_shape, in_field, last)
        pool = c.int_list(c.get(entry, "pool", f"{f}.pool"), f"{f}.pool", 2)
        if pool != [cls.POOL, cls.POOL]:
            c.fail(f"{f}.pool", f"must be [2, 2] (the only pooling supported), got {c.shown(pool)}")
        if h < 2 or w < 2:
            c.fail(f"{f}.input_shape", f"is {h}x{w}: too small to pool 2x2")
        out = _check_output_shape(entry, c, f, [h // 2, w // 2, channels], f"2x2 blocks of a {h}x{w} input")
        return out, f"{f}.output_shape", {}


@dataclass
class Flatten(_Reshaping):
    """An image (height, width, channels) as one vector, row by row, channels last (as Keras' Flatten)."""

    kind: ClassVar[str] = "flatten"

    @property
    def units(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_shape(self) -> tuple[int]:
        return (self.units,)

    def forward(self, x, exact=False, keep=True, sparse_input=False):
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(x.shape[0], self.units)

    def backward(self, grad_out, exact=False, at_net_input=False, parameters=True, input_gradient=True):
        self.grads = ()
        return np.asarray(grad_out, dtype=np.float64).reshape(-1, *self.input_shape) if input_gradient else None

    @classmethod
    def check(cls, entry, c, f, in_shape, in_field, last, classes):
        h, w, channels = _check_input_shape(cls.kind, entry, c, f, in_shape, in_field, last)
        out = _check_output_shape(entry, c, f, [h * w * channels], f"{h} x {w} x {channels} values")
        return out, f"{f}.output_shape", {}


#: every layer kind, by the name a manifest's ``kind`` uses
KINDS: dict[str, type[Layer]] = {cls.kind: cls for cls in (Dense, Conv2D, MaxPool2D, Flatten)}
#: how many layers of a kind a network may have (the output layer included)
MAX_COUNT = {"dense": 5, "conv2d": 4, "maxpool2d": 4, "flatten": 1}


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
            a = _knock(a, dead)
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
            g = _knock(np.asarray(g, dtype=np.float64), dead)
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
