"""Why this answer, what a neuron wants, and how to fool it.

Pure numpy: attribution maps (gradient x input, integrated gradients, occlusion), activation
maximisation ("dreams"), a targeted attack with the smallest epsilon that works, and an untargeted
robustness curve. Every gradient comes from the network's own backward pass
(:func:`gradient`, which asks ``network.input_gradient``; exact integrated gradients seed
``network.backward`` themselves); nothing here differentiates by itself.

Vocabulary:

* ``u`` is a digit as the network's pixels in [0, 1] (grey level / 255), flat; the network's
  input is ``network.normalize`` of the grey levels, that is ``u * 255 * scale + offset``.
* What is attributed is a class's log-probability (the log of its softmax output), or the
  difference of two classes' log-probabilities for "A versus B" (``target = (a, b)``).
* A unit of a hidden layer is "excited" by its net input (pre-activation): the activation is a
  monotone function of it, and its gradient does not vanish where a sigmoid saturates or a
  ReLU is off.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from pyscript_app.core import layers as layers_mod
from pyscript_app.core import pacing

METHODS = ("gradxinput", "ig", "occlusion")
METHOD_TITLES = {"gradxinput": "gradient x input", "ig": "integrated gradients", "occlusion": "occlusion"}
IG_STEPS = 32  # gradients taken at first (the quadrature adds more where they fall short)
IG_NODES = 8  # Gauss-Legendre nodes a segment
IG_TOLERANCE = 0.005  # completeness wanted: |sum - (f(x) - f(b))| within this share of f(x) - f(b)
IG_MOST_STEPS = 256
IG_LINEAR_PIECES = ("relu", "linear")  # hidden activations whose networks get exact integrated gradients
IG_MOST_SEGMENTS = IG_MOST_STEPS  # exact integrated gradients take one gradient a linear piece of the path: at most this many
IG_LOGIT_SPREAD = 2.0  # exact integrated gradients: the most two logits' difference moves over one quadrature piece
OCCLUSION_PATCH, OCCLUSION_STRIDE = 6, 2


# ---------------------------------------------------------------------------
# objectives and their gradients


def input_scale(network) -> tuple[float, float]:
    """(a, b) with input = a * u + b for pixels u in [0, 1]."""
    norm = network.normalization or {}
    scale = float(norm.get("scale", 1.0 / 255.0))
    return 255.0 * scale, float(norm.get("offset", 0.0))


def to_input(network, u: np.ndarray) -> np.ndarray:
    a, b = input_scale(network)
    return np.asarray(u, dtype=np.float64) * a + b


def class_objective(target) -> tuple:
    """``k`` -> the class's log-probability; ``(a, b)`` -> log p_a - log p_b."""
    if isinstance(target, (tuple, list)):
        a, b = (int(t) for t in target)
        return ("logprob", a, b)
    return ("logprob", int(target), None)


def unit_objective(network, layer_name: str, index: int) -> tuple:
    """A hidden unit's net input (a conv channel: the largest value of its net-input map; a pooling
    channel: of its map), or an output class's log-probability."""
    if layer_name == network.output_layer.name:
        return ("logprob", int(index), None)
    return ("unit", layer_name, int(index))


def gradient(network, x: np.ndarray, objective: tuple, knocked_out=None) -> tuple[np.ndarray, np.ndarray]:
    """(value, d value / d input) of ``objective`` at network inputs ``x`` (n, input_size), float64.

    ``objective``: ``("logprob", k, None)``, ``("logprob", a, b)`` (a difference) or
    ``("unit", layer, index)`` (a unit's net input). The gradient is the network's own backward pass.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if objective[0] == "logprob":
        _, a, b = objective
        g = network.input_gradient(x, a, minus=b, knocked_out=knocked_out)
        logp = _log_softmax(network.output_layer.net_input)  # the forward pass input_gradient ran
        return logp[:, a] - (logp[:, b] if b is not None else 0.0), g
    _, layer_name, index = objective
    layer = network.layer(layer_name)
    if len(layer.output_shape) == 3:  # a channel: the gradient of its map's peak flows through that one pixel
        source, net, h, w = _peak_source(network, layer)
        outs = network.forward(x, knocked_out=knocked_out, keep=True, upto=source.name)
        peaks = _channel_map(network, outs, layer, index)
        n = x.shape[0]
        at = peaks.reshape(n, -1).argmax(axis=1)
        seed = np.zeros((n, *source.output_shape))
        seed[np.arange(n), at // w, at % w, index] = 1.0
        _, g = network.backward(seed, at_net_input=net, knocked_out=knocked_out, upto=source.name, parameters=False)
        return peaks.reshape(n, -1).max(axis=1), g
    network.forward(x, knocked_out=knocked_out, keep=True, upto=layer_name)
    seed = np.zeros((x.shape[0], layer.units))
    seed[:, index] = 1.0
    _, g = network.backward(seed, at_net_input=True, knocked_out=knocked_out, upto=layer_name, parameters=False)
    return layer.net_input[:, index].copy(), g


def _peak_source(network, layer) -> tuple:
    """(the layer whose map a channel objective maximises, whether at its net input, rows, columns).

    A conv channel: its own net-input map (its activation's peak follows: every hidden activation
    rises with its net input). A pooling channel after a conv layer: that layer's net-input map over
    the rows and columns the pooling reads (its peak is the pooled map's peak, and a dead ReLU map
    still has a gradient there). Otherwise the layer's own map."""
    pos = network.layers.index(layer)
    if layer.kind == "maxpool2d" and pos > 0 and network.layers[pos - 1].kind == "conv2d":
        h, w, _ = layer.output_shape
        return network.layers[pos - 1], True, h * layer.POOL, w * layer.POOL
    h, w, _ = layer.output_shape
    return layer, layer.kind == "conv2d", h, w


def _channel_map(network, outs, layer, index: int) -> np.ndarray:
    """(n, rows, columns) float64: the map a channel objective takes the peak of (see _peak_source),
    after ``outs = network.forward(x, keep=True)``."""
    source, net, h, w = _peak_source(network, layer)
    values = source.net_input if net else outs[network.layers.index(source)]
    return np.asarray(values, dtype=np.float64)[:, :h, :w, index]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def net_inputs(network, x: np.ndarray, layer_name: str, knocked_out=None) -> np.ndarray:
    """A layer's net inputs (float64, (n, units)) at network inputs ``x``."""
    network.forward(np.atleast_2d(x), knocked_out=knocked_out, keep=True, upto=layer_name)
    return network.layer(layer_name).net_input.copy()


def objective_value(network, x: np.ndarray, objective: tuple, knocked_out=None) -> np.ndarray:
    """The objective's value at inputs ``x`` (n, input_size), from the forward pass only."""
    if objective[0] == "logprob":
        _, a, b = objective
        logp = log_probabilities(network, x, knocked_out)
        return logp[:, a] - (logp[:, b] if b is not None else 0.0)
    _, layer_name, index = objective
    return unit_objectives(network, x, layer_name, [index], knocked_out)[:, 0]


def unit_objectives(network, x: np.ndarray, layer_name: str, indices=None, knocked_out=None) -> np.ndarray:
    """The objectives (:func:`unit_objective`) of a hidden layer's units ``indices`` (all if None) at
    inputs ``x``, from one forward pass: (n, len(indices)) float64."""
    layer = network.layer(layer_name)
    indices = list(range(layer.units) if indices is None else indices)
    if len(layer.output_shape) == 3:  # a channel's peak, as :func:`gradient` takes it
        x = np.atleast_2d(x)
        outs = network.forward(x, knocked_out=knocked_out, keep=True, upto=_peak_source(network, layer)[0].name)
        return np.stack([_channel_map(network, outs, layer, i).reshape(x.shape[0], -1).max(axis=1) for i in indices], axis=1)
    return net_inputs(network, x, layer_name, knocked_out)[:, indices]


def log_probabilities(network, x: np.ndarray, knocked_out=None) -> np.ndarray:
    """log softmax of the output layer's net input, float64, (n, classes)."""
    return _log_softmax(net_inputs(network, x, network.output_layer.name, knocked_out))


# ---------------------------------------------------------------------------
# attribution


@dataclass
class Attribution:
    method: str
    target: tuple  # the objective
    values: np.ndarray  # (input_size,) float64: each pixel's share
    total: float  # the sum of values
    value: float  # f(x)
    baseline_value: float | None = None  # f(baseline), for integrated gradients
    steps: int = 0  # gradients taken (integrated gradients; exact ones: one a linear piece of the path)
    exact: bool = False  # integrated gradients of a piecewise-linear network, exact to rounding
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        _, a, b = self.target
        return str(a) if b is None else f"{a}-{b}"


def attribute(network, pixels_u: np.ndarray, method: str = "gradxinput", target=None, knocked_out=None) -> Attribution:
    """How each pixel pushes ``target``'s log-probability (default: the predicted class) at digit ``u``."""
    u = np.asarray(pixels_u, dtype=np.float64).reshape(-1)
    x = to_input(network, u)
    if target is None:
        target = int(np.argmax(objective_value_all(network, x, knocked_out)))
    objective = class_objective(target)
    if method == "gradxinput":
        value, g = gradient(network, x[None], objective, knocked_out)
        baseline = to_input(network, np.zeros_like(u))
        values = (x - baseline) * g[0]
        return Attribution(method, objective, values, float(values.sum()), float(value[0]))
    if method == "ig":
        return integrated_gradients(network, u, objective, knocked_out=knocked_out)
    if method == "occlusion":
        return occlusion(network, u, objective, knocked_out=knocked_out)
    raise ValueError(f"unknown attribution method {method!r}; one of {', '.join(METHODS)}")


def objective_value_all(network, x, knocked_out=None) -> np.ndarray:
    return log_probabilities(network, np.atleast_2d(x), knocked_out)[0]


_GAUSS_LEGENDRE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] (Golub-Welsch: the eigenvalues of the Jacobi matrix)."""
    if n not in _GAUSS_LEGENDRE:
        k = np.arange(1, n)
        off = k / np.sqrt(4.0 * k * k - 1.0)
        values, vectors = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
        _GAUSS_LEGENDRE[n] = ((values + 1) / 2, vectors[0] ** 2)
    nodes, weights = _GAUSS_LEGENDRE[n]
    return nodes.copy(), weights.copy()


def integrated_gradients(network, u: np.ndarray, objective: tuple, steps: int = IG_STEPS, knocked_out=None,
                         tolerance: float = IG_TOLERANCE, most: int = IG_MOST_STEPS) -> Attribution:
    """Integrated gradients from a black baseline: (x - b) times the gradient integrated along the straight path.

    A piecewise-linear network (:func:`piecewise_linear`: dense and conv2d layers with relu or
    linear activations, max pooling, flatten, then the softmax output) gets them exactly, to float64
    rounding (:func:`_ig_piecewise_linear`), when the path has at most IG_MOST_SEGMENTS linear pieces
    (the shipped ReLU network: about 100; a ReLU conv layer, a unit a pixel, can make many more). Any
    other (sigmoid, tanh), or a path with more pieces, by adaptive quadrature
    (:func:`_ig_quadrature`, whose ``steps``, ``tolerance`` and ``most`` apply).
    """
    if piecewise_linear(network):
        x, b = to_input(network, u), to_input(network, np.zeros_like(u))
        alphas = _path_kinks(network, b, x - b, knocked_out, IG_MOST_SEGMENTS)
        if alphas is not None:
            return _ig_piecewise_linear(network, u, objective, alphas, knocked_out)
    return _ig_quadrature(network, u, objective, steps, knocked_out, tolerance, most)


def piecewise_linear(network) -> bool:
    """Whether the logits are piecewise linear in the input: every layer before the output is dense or
    conv2d with a relu or linear activation, max pooling or flatten."""
    for layer in network.layers[:-1]:
        if layer.kind in ("flatten", "maxpool2d"):
            continue
        if layer.kind not in ("dense", "conv2d") or layer.activation not in IG_LINEAR_PIECES:
            return False
    return network.output_layer.kind == "dense"


def _path_kinks(network, b: np.ndarray, direction: np.ndarray, knocked_out=None,
                most: int = IG_MOST_SEGMENTS) -> np.ndarray | None:
    """The sorted alphas in [0, 1], ends included, where some relu unit's net input crosses 0 along
    ``b + alpha * direction``, or a pooling block's largest value changes hands: between two
    consecutive ones every unit keeps its side and every block its winner. None when they cut the
    path into more than ``most`` pieces.

    Found layer by layer: between the kinks of the layers before it, a layer's net input is linear
    in alpha, so its zero crossings there follow from its values at those kinks.
    """
    alphas = np.array([0.0, 1.0])
    for pos, layer in enumerate(network.layers[:-1]):
        if layer.kind == "maxpool2d":
            alphas = _pool_kinks(network, pos, b, direction, alphas, knocked_out, most)
            if alphas is None:
                return None
            continue
        if layer.kind == "flatten" or layer.activation != "relu":
            continue
        layers_mod.forward_all(network.layers[: pos + 1], b[None] + alphas[:, None] * direction[None],
                               knocked_out=knocked_out)
        z = np.array(layer.net_input, dtype=np.float64)
        dead = (knocked_out or {}).get(layer.name)
        if dead is not None and len(dead):
            z[..., np.asarray(list(dead), dtype=np.intp)] = 1.0  # a knocked-out unit's side does not matter
        z = z.reshape(len(alphas), -1)
        lo, hi = z[:-1], z[1:]
        seg, unit = np.nonzero(lo * hi < 0)
        if seg.size:
            t = lo[seg, unit] / (lo[seg, unit] - hi[seg, unit])
            alphas = np.unique(np.concatenate([alphas, alphas[seg] + t * (alphas[seg + 1] - alphas[seg])]))
            if len(alphas) - 1 > most:
                return None
    return alphas


def _pool_kinks(network, pos: int, b: np.ndarray, direction: np.ndarray, alphas: np.ndarray, knocked_out=None,
                most: int = IG_MOST_SEGMENTS) -> np.ndarray | None:
    """``alphas`` (between which the pooling layer at ``pos`` reads values linear in alpha) and the
    alphas where one of its blocks' largest value changes hands; None past ``most`` pieces.

    The largest of linear functions is convex: when the same block member is the largest at both
    ends of a piece, it is throughout. Otherwise the crossing of the two winners' lines is added
    (a third member may top both there: then the next round splits again) until none changes.
    """
    layer = network.layers[pos]
    oh, ow, channels = layer.output_shape
    dead = (knocked_out or {}).get(layer.name)
    while True:
        points = b[None] + alphas[:, None] * direction[None]
        read = layers_mod.forward_all(network.layers[:pos], points, knocked_out=knocked_out)[-1] if pos else points
        read = np.asarray(read, dtype=np.float64).reshape(len(alphas), *layer.input_shape)[:, : 2 * oh, : 2 * ow]
        blocks = read.reshape(len(alphas), oh, 2, ow, 2, channels).transpose(0, 1, 3, 5, 2, 4)
        blocks = blocks.reshape(len(alphas), oh, ow, channels, 4)  # top left, top right, bottom left, bottom right
        lo, hi = blocks[:-1], blocks[1:]
        first, last = lo.argmax(axis=-1)[..., None], hi.argmax(axis=-1)[..., None]
        a_lo, a_hi = (np.take_along_axis(v, first, axis=-1)[..., 0] for v in (lo, hi))
        b_lo, b_hi = (np.take_along_axis(v, last, axis=-1)[..., 0] for v in (lo, hi))
        changed = (b_hi > a_hi) & (a_lo > b_lo)  # the first winner is strictly beaten at the end
        if dead is not None and len(dead):
            changed[..., np.asarray(list(dead), dtype=np.intp)] = False
        seg = np.nonzero(changed.reshape(len(alphas) - 1, -1))
        if not seg[0].size:
            return alphas
        lead, gain = (a_lo - b_lo).reshape(len(alphas) - 1, -1)[seg], (b_hi - a_hi).reshape(len(alphas) - 1, -1)[seg]
        at = seg[0]
        found = alphas[at] + lead / (lead + gain) * (alphas[at + 1] - alphas[at])
        grown = np.unique(np.concatenate([alphas, found]))
        if len(grown) - 1 > most:
            return None
        if len(grown) == len(alphas):  # rounding put every crossing on a piece's end
            return alphas
        alphas = grown


def _softmax_integrals(alphas: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(segments, classes): the integral of softmax(z(alpha)) over each segment [alphas[s], alphas[s + 1]],
    where z is linear between the logits ``z`` at the alphas.

    Gauss-Legendre (IG_NODES nodes) on pieces over which no two logits' difference moves by more
    than IG_LOGIT_SPREAD: the softmax of a linear function is analytic, and over such a piece its
    nearest poles are far enough away that the rule is exact to rounding (error ~ 1e-13)."""
    nodes, weights = gauss_legendre(IG_NODES)
    dz = z[1:] - z[:-1]
    pieces = np.maximum(1, np.ceil((dz.max(axis=1) - dz.min(axis=1)) / IG_LOGIT_SPREAD)).astype(np.intp)
    seg = np.repeat(np.arange(len(dz)), pieces)
    starts = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    which = np.arange(seg.size) - starts[seg]  # each piece's place within its segment
    t = (which[:, None] + nodes[None]) / pieces[seg][:, None]  # (pieces, nodes): where within the segment
    zz = z[:-1][seg][:, None, :] + t[..., None] * dz[seg][:, None, :]
    p = np.exp(zz - zz.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    per_piece = (weights[None, :, None] * p).sum(axis=1) / pieces[seg][:, None]
    return np.add.reduceat(per_piece, starts, axis=0) * np.diff(alphas)[:, None]


def _ig_piecewise_linear(network, u: np.ndarray, objective: tuple, alphas: np.ndarray, knocked_out=None) -> Attribution:
    """Integrated gradients of a piecewise-linear network, exact to float64 rounding.

    Between consecutive kinks ``alphas`` of the path (:func:`_path_kinks`) the units' pattern is fixed: the
    logits z are linear in alpha and their Jacobian J_s with respect to the input is constant. So the
    path integral of d f / d x is the sum over segments of c_s . J_s, with c_s the integral of
    d f / d z = onehot_a (- onehot_b, or - softmax(z) for one class) over the segment
    (:func:`_softmax_integrals`), and c_s . J_s is one backward pass seeded with c_s at the output
    layer's net input from the segment's middle: all segments in one batch. ``att.steps`` is the
    number of segments (gradients taken). Knock-outs keep the network piecewise linear.
    """
    x = to_input(network, u)
    b = to_input(network, np.zeros_like(u))
    direction = x - b
    _, a, minus = objective
    layers_mod.forward_all(network.layers, b[None] + np.array([0.0, 1.0])[:, None] * direction[None],
                           knocked_out=knocked_out)
    ends = network.output_layer.net_input.copy()  # the logits at black and at the digit (float64 throughout)
    mids = (alphas[:-1] + alphas[1:]) / 2
    layers_mod.forward_all(network.layers, b[None] + mids[:, None] * direction[None], knocked_out=knocked_out)
    lengths = np.diff(alphas)
    seed = np.zeros((len(lengths), ends.shape[1]))
    seed[:, a] += lengths
    if minus is None:
        # the logits at the kinks: z is linear within a segment, so its end is twice its middle less its start
        middle = network.output_layer.net_input
        z = np.empty((len(alphas), ends.shape[1]))
        z[0] = ends[0]
        for s in range(len(lengths)):
            z[s + 1] = 2.0 * middle[s] - z[s]
        seed -= _softmax_integrals(alphas, z)
    else:
        seed[:, minus] -= lengths
    _, g = network.backward(seed, at_net_input=True, knocked_out=knocked_out, parameters=False)
    values = direction * g.sum(axis=0)
    logp = _log_softmax(ends)
    f = logp[:, a] - (logp[:, minus] if minus is not None else 0.0)
    att = Attribution("ig", objective, values, float(values.sum()), float(f[1]), float(f[0]))
    att.steps, att.exact = len(lengths), True
    return att


def _ig_quadrature(network, u: np.ndarray, objective: tuple, steps: int = IG_STEPS, knocked_out=None,
                   tolerance: float = IG_TOLERANCE, most: int = IG_MOST_STEPS) -> Attribution:
    """Integrated gradients by adaptive Gauss-Legendre quadrature.

    ``steps`` gradients in ``steps / IG_NODES`` equal segments first; a segment whose estimate of
    the objective's change differs from the change itself (two forward passes at its ends) is
    halved, until the attributions add up to f(x) - f(b) within ``tolerance`` of it (completeness)
    or ``most`` gradients were taken. ``att.steps`` is the number of gradients taken.
    """
    x = to_input(network, u)
    b = to_input(network, np.zeros_like(u))
    direction = x - b
    nodes, weights = gauss_legendre(IG_NODES)

    def estimate(segments):
        """Per segment: its share of every pixel (its gradients' weighted sum times its length)."""
        alphas = np.concatenate([lo + (hi - lo) * nodes for lo, hi in segments])
        _, g = gradient(network, b[None] + alphas[:, None] * direction[None], objective, knocked_out)
        g = g.reshape(len(segments), IG_NODES, -1)
        return [(hi - lo) * (weights[:, None] * g[i]).sum(axis=0) for i, (lo, hi) in enumerate(segments)]

    def values_at(alphas):
        return objective_value(network, b[None] + np.asarray(alphas)[:, None] * direction[None], objective, knocked_out)

    count = max(1, steps // IG_NODES)
    edges = np.linspace(0.0, 1.0, count + 1)
    f_edges = values_at(edges)
    segments = {(float(lo), float(hi)): (float(f_lo), float(f_hi))
                for lo, hi, f_lo, f_hi in zip(edges[:-1], edges[1:], f_edges[:-1], f_edges[1:])}
    shares = dict(zip(segments, estimate(list(segments))))
    total_change = float(f_edges[-1] - f_edges[0])
    used = count * IG_NODES
    while True:
        errors = {s: abs(float(shares[s] @ direction) - (f[1] - f[0])) for s, f in segments.items()}
        if sum(errors.values()) <= tolerance * abs(total_change) + 1e-9 or used >= most:
            break
        limit = tolerance * abs(total_change) / len(segments)
        worst = sorted((s for s in errors if errors[s] > limit), key=errors.get, reverse=True)
        worst = worst[: max(1, (most - used) // (2 * IG_NODES))]
        mids = [(lo + hi) / 2 for lo, hi in worst]
        f_mids = values_at(mids)
        halves = []
        for (lo, hi), mid, f_mid in zip(worst, mids, f_mids):
            f_lo, f_hi = segments.pop((lo, hi))
            del shares[(lo, hi)]
            segments[(lo, mid)], segments[(mid, hi)] = (f_lo, float(f_mid)), (float(f_mid), f_hi)
            halves += [(lo, mid), (mid, hi)]
        shares.update(zip(halves, estimate(halves)))
        used += len(halves) * IG_NODES
    values = direction * np.sum(list(shares.values()), axis=0)
    att = Attribution("ig", objective, values, float(values.sum()), float(f_edges[-1]), float(f_edges[0]))
    att.steps = used
    return att


def occlusion(network, u: np.ndarray, objective: tuple, patch: int = OCCLUSION_PATCH,
              stride: int = OCCLUSION_STRIDE, knocked_out=None) -> Attribution:
    """How much ``objective`` drops when a ``patch`` x ``patch`` square is blacked out, for every position.

    Each pixel gets the mean drop of the patches that cover it: positive where hiding the pixel
    lowers the class's log-probability (it pushed towards the class).
    """
    rows, cols = network.image_shape
    image = np.asarray(u, dtype=np.float64).reshape(rows, cols)
    tops = list(range(0, max(rows - patch, 0) + 1, stride))
    lefts = list(range(0, max(cols - patch, 0) + 1, stride))
    if tops[-1] != max(rows - patch, 0):
        tops.append(max(rows - patch, 0))
    if lefts[-1] != max(cols - patch, 0):
        lefts.append(max(cols - patch, 0))
    batch = np.repeat(image[None], len(tops) * len(lefts), axis=0)
    boxes = []
    for t in tops:
        for left in lefts:
            batch[len(boxes), t : t + patch, left : left + patch] = 0.0
            boxes.append((t, left))
    x = to_input(network, image.reshape(-1))
    base = float(objective_value(network, x[None], objective, knocked_out)[0])
    drops = base - objective_value(network, to_input(network, batch.reshape(len(boxes), -1)), objective, knocked_out)
    total = np.zeros((rows, cols))
    count = np.zeros((rows, cols))
    for (t, left), d in zip(boxes, drops):
        total[t : t + patch, left : left + patch] += d
        count[t : t + patch, left : left + patch] += 1
    values = (total / np.maximum(count, 1)).reshape(-1)
    return Attribution("occlusion", objective, values, float(values.sum()), base)


# ---------------------------------------------------------------------------
# fooling it: a targeted attack under a maximum per-pixel change


ATTACK_STEPS = 24
EPSILON_LADDER = (0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.65, 1.0)
EPSILON_REFINE = 8  # epsilons tried between the largest that failed and the smallest that worked
MOVED = 0.1  # a pixel "moved" when it changed by more than this


@dataclass
class Attack:
    target: int
    found: bool
    epsilon: float | None  # the smallest bound that worked (None: not even 1)
    pixels: np.ndarray  # (input_size,) the changed digit in [0, 1] (the original when not found)
    change: np.ndarray  # pixels - original
    prediction: int
    confidence: float  # the prediction's probability
    moved: int  # pixels changed by more than MOVED
    message: str = ""


def _attack_batch(network, u: np.ndarray, target: int, levels: np.ndarray, knocked_out=None,
                  steps: int = ATTACK_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Projected gradient ascent on the target's log-probability, one row per bound.

    ``levels`` are the bounds in grey levels (eps = level / 255), smallest first. Each row starts at
    ``u``, moves a few grey levels along the gradient's sign per step and is projected back onto
    ``|change| <= eps`` and [0, 1]; every pixel stays a whole grey level, so the changed digit is
    an image like any other (the view shows exactly what was found). Returns (the digits,
    whether each row was read as the target after some step: the first such digit is kept).

    Only the smallest bound that works matters: a row stops once it is read as the target, and so
    does every row of a larger bound (its result is then left as not found). A step's forward pass
    reads the digits the step before made (the answer) and gives the gradient of the next move.
    """
    a, _ = input_scale(network)
    grey = np.rint(np.asarray(u, dtype=np.float64) * 255.0)
    bound = np.asarray(levels, dtype=np.float64)[:, None]
    stride = np.maximum(np.rint(2.5 * bound / steps), 1.0)
    adv = np.repeat(grey[None], len(levels), axis=0)
    best = adv.copy()
    done = np.zeros(len(levels), dtype=bool)
    live = np.arange(len(levels))  # the rows still moving, in order of their bound
    objective = class_objective(target)
    for step in range(steps + 1):
        x = to_input(network, adv[live] / 255.0)
        if step < steps:
            _, g = gradient(network, x, objective, knocked_out)
            logp = _log_softmax(network.output_layer.net_input)  # the forward pass the gradient ran
        else:  # the last move's answer only
            logp = log_probabilities(network, x, knocked_out)
        hit = logp.argmax(axis=1) == target
        if step and hit.any():  # (step 0 reads the digit itself)
            first = live[hit]
            best[first], done[first] = adv[first], True
            keep = ~hit & (live < first[0])  # a larger bound than one that works is not needed
            live = live[keep]
            if step < steps:
                g = g[keep]
        if step == steps or not live.size:
            break
        bound_live = bound[live]
        adv[live] = np.clip(np.clip(adv[live] + stride[live] * np.sign(g * a), grey - bound_live, grey + bound_live),
                            0.0, 255.0)
    return best / 255.0, done


def attack(network, pixels_u: np.ndarray, target: int, knocked_out=None) -> Attack:
    """The smallest change (max per-pixel epsilon) found that makes the network answer ``target``.

    Tries a ladder of epsilons at once (one batch, EPSILON_LADDER), then refines between the largest
    that failed and the smallest that worked (a second batch of up to EPSILON_REFINE whole grey
    levels evenly between them). The epsilons tried are at most ceil(gap / (EPSILON_REFINE + 1))
    grey levels (/ 255) apart, gap being the ladder's step there: 1 up to 0.1, 2 up to 0.2, 3, 5, 6
    and 10 up to 0.3, 0.45, 0.65 and 1. A bound counts as failed only after all ATTACK_STEPS steps. The answer is read again by a forward pass.
    """
    u = np.rint(np.asarray(pixels_u, dtype=np.float64).reshape(-1) * 255.0) / 255.0
    target = int(target)
    probs0 = np.exp(log_probabilities(network, to_input(network, u)[None], knocked_out)[0])
    if int(probs0.argmax()) == target:
        return Attack(target, True, 0.0, u.copy(), np.zeros_like(u), target, float(probs0[target]), 0,
                      "the network already reads this digit as that class")
    ladder = np.unique(np.maximum(np.rint(np.asarray(EPSILON_LADDER) * 255.0), 1.0))
    digits, ok = _attack_batch(network, u, target, ladder, knocked_out)
    if not ok.any():
        return Attack(target, False, None, u.copy(), np.zeros_like(u), int(probs0.argmax()), float(probs0.max()), 0,
                      f"no change of at most 1 per pixel made the network answer {network.class_labels[target]}")
    first = int(np.argmax(ok))
    found, level = digits[first], float(ladder[first])
    low = float(ladder[first - 1]) if first > 0 else 0.0
    finer = np.unique(np.rint(np.linspace(low, level, EPSILON_REFINE + 2)[1:-1]))
    finer = finer[(finer > low) & (finer < level)]
    if finer.size:
        digits2, ok2 = _attack_batch(network, u, target, finer, knocked_out)
        if ok2.any():
            i = int(np.argmax(ok2))
            found, level = digits2[i], float(finer[i])
    probs = np.exp(log_probabilities(network, to_input(network, found)[None], knocked_out)[0])
    change = found - u
    return Attack(target, True, level / 255.0, found, change, int(probs.argmax()), float(probs.max()),
                  int((np.abs(change) > MOVED).sum()))


# ---------------------------------------------------------------------------
# robustness: accuracy against epsilon, one signed-gradient step per digit (untargeted)

ROBUSTNESS_EPSILONS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3)
ROBUSTNESS_ORDER_SEED = 0  # the fixed shuffle of spread_order
ROBUSTNESS_SO_FAR_DIGITS = 250  # the curve so far is shown from this many digits on (fewer: too rough an estimate)
# Digits a step: the browser's numpy has no BLAS, and a step in idle time should stay well under 50 ms.
ROBUSTNESS_CHUNK = 25 if sys.platform == "emscripten" else 500
# Changed digits a forward pass (the epsilons' of a chunk go together): larger products, while a conv
# layer's arrays stay small enough to be read fast (a few MB in the browser).
ROBUSTNESS_ROWS = 256 if sys.platform == "emscripten" else 1000


def robustness_steps(network, testset, epsilons=ROBUSTNESS_EPSILONS, knocked_out=None, chunk: int = ROBUSTNESS_CHUNK,
                     sizer=None):
    """Accuracy after a one-step attack (fast gradient sign) at each epsilon, computed a chunk at a time.

    A generator: each step handles ``chunk`` test digits (or as many as ``sizer``, a
    :class:`pacing.StepSizer`, says fit its time budget) and yields (digits done, total, the
    accuracies over the digits done so far); the last value it returns (``StopIteration.value``)
    is the accuracies over all of them, one per epsilon. The digits are taken in
    :func:`spread_order`, so that those done so far are a sample of the whole set and the curve so
    far an estimate of the whole one. The attack lowers the true class's log-probability:
    u' = clip(u - eps * sign(d log p_true / du)).
    """
    order = spread_order(len(testset))
    images = np.asarray(testset.images).reshape(len(testset), -1)
    labels = np.asarray(testset.labels).astype(np.intp)
    eps = np.asarray(epsilons, dtype=np.float64)
    correct = np.zeros(len(eps), dtype=np.int64)
    a, _ = input_scale(network)
    n, start = len(labels), 0
    sizer = sizer or pacing.FixedSteps(chunk)
    while start < n:
        size, t0 = sizer.items, sizer.clock()
        taken = order[start : start + size]
        u = images[taken].astype(np.float64) / 255.0
        y = labels[taken]
        x = to_input(network, u)
        g = network.input_gradient(x, y, knocked_out=knocked_out)  # each digit's own true class, one backward pass
        clean = _log_softmax(network.output_layer.net_input)  # the forward pass input_gradient ran: epsilon 0
        direction = -np.sign(g * a)
        moved = eps != 0.0
        # every other epsilon's changed digits in as few forward passes as fit ROBUSTNESS_ROWS (larger products)
        adv = np.clip(u[None] + eps[moved][:, None, None] * direction[None], 0.0, 1.0).reshape(-1, u.shape[1])
        read = np.concatenate([log_probabilities(network, to_input(network, adv[i : i + ROBUSTNESS_ROWS]),
                                                 knocked_out).argmax(axis=1) for i in range(0, len(adv), ROBUSTNESS_ROWS)])
        hits = (read.reshape(-1, len(y)) == y[None]).sum(axis=1)
        correct[moved] += hits
        correct[~moved] += int((clean.argmax(axis=1) == y).sum())
        sizer.measured(len(y), sizer.clock() - t0)
        start = min(start + size, n)
        yield start, n, correct / start
    return correct / max(n, 1)


def spread_order(n: int) -> np.ndarray:
    """The order the robustness curve takes the test digits in: a fixed shuffle, the same every time, so
    that any first part of it is a sample of the whole set (MNIST's test set has its easier half first)."""
    return np.random.default_rng(ROBUSTNESS_ORDER_SEED).permutation(n)


def robustness_curve(network, testset, epsilons=ROBUSTNESS_EPSILONS, knocked_out=None) -> np.ndarray:
    steps = robustness_steps(network, testset, epsilons, knocked_out)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


# ---------------------------------------------------------------------------
# what a neuron wants: activation maximisation

DREAM_STEPS = 160
DREAM_RATE = 0.05
DREAM_L2 = 0.02  # pulls pixels towards black: a picture of what matters, not noise everywhere
DREAM_BLUR_EVERY = 8
DREAM_POLISH = 24  # last steps without blur or jitter
DREAM_YIELD_EVERY = 8  # gradient steps between two yields of dream_steps (without a sizer)
INK_SHARE = 0.01  # a pixel a dream may use: one where at least this share of the test digits has ink


def dream_pixels(network, images: np.ndarray, share: float = INK_SHARE) -> np.ndarray | None:
    """The pixels a dream may use (a flat bool mask), or None for every pixel: where at least ``share``
    of ``images`` (the test digits) have ink, if the network's first layer is dense. Outside them that
    layer's weights are still near their random start (no digit lit those pixels while it trained): a
    dream that may use them excites its unit through noise that no digit has, and its picture is that
    noise. Kept black there, a dream looks like ink on black, as a digit does. A conv layer's kernels are
    the same at every place, so a CNN's dream may use every pixel."""
    return pacing.run(dream_pixels_steps(network, images, share))


def dream_pixels_steps(network, images: np.ndarray, share: float = INK_SHARE, rows: int = 2500):
    """:func:`dream_pixels` a block of ``rows`` images a step (a generator; its value is the mask): the
    whole test set at once is a task of about 10 ms in the page's numpy at full speed, 40 at 4x."""
    flat = np.asarray(images).reshape(len(images), -1)
    if network.layers[0].kind != "dense" or not len(flat):
        return None
    inked = np.zeros(flat.shape[1], dtype=np.int64)
    for start in range(0, len(flat), rows):
        inked += np.count_nonzero(flat[start : start + rows], axis=0)
        yield
    mask = inked >= share * len(flat)
    return mask if mask.any() else None


def _blur(image: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur (1 2 1 / 4 in each direction), edges repeated."""
    p = np.pad(image, 1, mode="edge")
    rows = (p[:-2] + 2 * p[1:-1] + p[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def dream_steps(network, layer_name: str, index: int, knocked_out=None, steps: int = DREAM_STEPS, seed: int = 0,
                sizer=None, where: np.ndarray | None = None):
    """Gradient ascent on the input for one unit, a few steps per call (a generator).

    Starts grey (0.5), keeps pixels in [0, 1]; normalised-gradient steps with an L2 pull to
    black, a blur every few steps and a random one-pixel jitter, then plain steps to polish
    (a channel's dream last snaps its pixels to their bounds where that raises its peak: :func:`_snap`).
    ``where`` (a flat bool mask, :func:`dream_pixels`) are the pixels it may use; the others stay black.
    Yields (steps done, steps) every DREAM_YIELD_EVERY gradient steps, or as many as ``sizer``
    (a :class:`pacing.StepSizer`) says fit its time budget; returns (``StopIteration.value``)
    the image u (input_size,), the same however the steps are grouped.
    """
    rows, cols = network.image_shape
    objective = unit_objective(network, layer_name, index)
    rng = np.random.default_rng(seed)
    keep = np.ones(rows * cols) if where is None else np.asarray(where, dtype=np.float64).reshape(-1)
    u = 0.5 * keep
    a, _ = input_scale(network)
    sizer = sizer or pacing.FixedSteps(DREAM_YIELD_EVERY)
    batch, since, t0 = sizer.items, 0, sizer.clock()
    for i in range(steps):
        polish = i >= steps - DREAM_POLISH
        dy, dx = (0, 0) if polish else (int(v) for v in rng.integers(-1, 2, 2))
        shifted = np.roll(u.reshape(rows, cols), (dy, dx), axis=(0, 1)).reshape(-1)
        _, g = gradient(network, to_input(network, shifted)[None], objective, knocked_out)
        g = np.roll((g[0] * a).reshape(rows, cols), (-dy, -dx), axis=(0, 1)).reshape(-1)
        if not polish:
            g = g - DREAM_L2 * u
        size = float(np.sqrt(np.mean(g * g)))
        if size > 0 and math.isfinite(size):
            u = np.clip(u + DREAM_RATE * g / size, 0.0, 1.0) * keep
        if not polish and (i + 1) % DREAM_BLUR_EVERY == 0:
            u = _blur(u.reshape(rows, cols)).reshape(-1) * keep
        since += 1
        if since >= batch or i + 1 == steps:
            sizer.measured(since, sizer.clock() - t0)
            yield i + 1, steps
            since, batch, t0 = 0, sizer.items, sizer.clock()
    if len(network.layer(layer_name).output_shape) == 3:
        u = _snap(network, u, objective, knocked_out, keep)
    return u


def _snap(network, u: np.ndarray, objective: tuple, knocked_out=None, keep=1.0) -> np.ndarray:
    """A channel's dream, last: every pixel its peak's gradient moves set to the bound it moves towards
    (1 or 0; pixels outside ``keep`` stay black), kept if the peak rises. A first-layer conv channel is
    linear in its kernel's pixels up to its activation, so this gives it its largest possible peak, which
    the steps above (one step size for all pixels) only approach where a kernel weight is near 0."""
    x = to_input(network, u)[None]
    value, g = gradient(network, x, objective, knocked_out)
    snapped = np.where(g[0] > 0, 1.0, np.where(g[0] < 0, 0.0, u)) * keep
    return snapped if objective_value(network, to_input(network, snapped)[None], objective, knocked_out)[0] > value[0] else u


def dream(network, layer_name: str, index: int, knocked_out=None, steps: int = DREAM_STEPS,
          where: np.ndarray | None = None) -> np.ndarray:
    gen = dream_steps(network, layer_name, index, knocked_out, steps, where=where)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@dataclass
class Dream:
    """A unit's dream (:func:`dream_steps`) and what it does to the unit."""

    pixels: np.ndarray  # (input_size,) in [0, 1]
    activation: float  # the unit's activation on it, as the page shows it (:func:`unit_activation`)
    objective: float  # what the ascent raised (:func:`unit_objective`): a hidden unit's net input, a class's log p
    kept_to_ink: bool  # black where (almost) no test digit has ink (:func:`dream_pixels`)


def dream_result(network, u: np.ndarray, layer_name: str, index: int, knocked_out=None, kept_to_ink=False) -> Dream:
    objective = unit_objective(network, layer_name, index)
    value = objective_value(network, to_input(network, u)[None], objective, knocked_out)[0]
    return Dream(u, unit_activation(network, u, layer_name, index, knocked_out), float(value), kept_to_ink)


def unit_activation(network, u: np.ndarray, layer_name: str, index: int, knocked_out=None) -> float:
    """A unit's activation (an output class: its probability; a conv or pooling channel: its map's peak) for
    the digit ``u``, as the page shows it."""
    acts = network.forward(to_input(network, u).astype(np.float32), knocked_out=knocked_out)
    a = acts[[layer.name for layer in network.layers].index(layer_name)]
    return float(a[..., index].max())


@dataclass
class UnitProfile:
    least: np.ndarray  # the test digits that excite it least, weakest first
    means: np.ndarray  # its mean activation per class (true label)
    best: float  # its highest activation over the test digits
    best_index: int | None


def unit_profile(values: np.ndarray, labels: np.ndarray, classes: int, k: int = 9) -> UnitProfile:
    """From a unit's activation for every test digit: the k weakest, the mean per class, the best."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels).astype(np.intp)
    least = np.argsort(values, kind="stable")[:k]
    sums = np.bincount(labels, weights=values, minlength=classes)
    counts = np.bincount(labels, minlength=classes)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    best_index = int(np.argmax(values)) if values.size else None
    return UnitProfile(least, means, float(values.max()) if values.size else 0.0, best_index)
