"""The channels of image layers (conv2d, maxpool2d): their maps, kernels, and what feeds them.

Pure numpy; runs in CPython and in the browser. A conv2d or maxpool2d layer's
*channel* is one feature map (its ``units`` are its channels); the page draws
a flatten layer as nothing (it only reshapes), so whatever reads a flatten's
values is said to read the channels of the image layer before it.

*Contributions*, summed over a map: what one input value, or one input
channel, sends into a channel for one digit, added up over every output
position. For a conv2d channel ``c`` the value ``x[i, j, k]`` meets the kernel
weights ``w[ky, kx, k, c]`` of every output position whose window covers it,
so it sends ``x[i, j, k] * coverage[i, j, k, c]`` (coverage: those weights
summed, :func:`coverage`); summed over ``(i, j)`` that is ``sum over output
positions of sum over the window of w[:, :, k, c] * patch of channel k``. A
maxpool2d channel sends on each 2x2 block's largest value of the same channel
(the first of equal ones, as the layer routes its gradient). A dense unit
after a flatten reads ``w[pos * C + k, u] * a[pos, k]``, position by
position, channels last.
"""

from __future__ import annotations

import numpy as np

IMAGE_KINDS = ("conv2d", "maxpool2d")


def is_image(layer) -> bool:
    """Whether the layer gives feature maps (height, width, channels): drawn as channels."""
    return getattr(layer, "kind", "dense") in IMAGE_KINDS


def is_drawn(layer) -> bool:
    """Whether the page draws the layer (a flatten only reshapes: it is not drawn)."""
    return getattr(layer, "kind", "dense") != "flatten"


def source_position(network, pos: int) -> int:
    """The position of the layer whose values layer ``pos`` reads, a flatten skipped; -1: the input pixels."""
    src = pos - 1
    while src >= 0 and not is_drawn(network.layers[src]):
        src -= 1
    return src


def source_shape(network, pos: int) -> tuple[int, ...]:
    """The shape of what layer ``pos`` reads, as its source gives it: (h, w, channels) for an
    image layer, (values,) for the input pixels or a dense layer."""
    src = source_position(network, pos)
    return (network.input_size,) if src < 0 else tuple(network.layers[src].output_shape)


def channel_map(activations, channel: int) -> np.ndarray:
    """One channel's map (height, width) out of an image layer's activations (height, width, channels)."""
    return np.asarray(activations)[..., int(channel)]


def flat_position(image_shape, index: int) -> tuple[int, int, int]:
    """(row, column, channel) of value ``index`` of an image (h, w, c) read as one vector (channels last)."""
    h, w, c = image_shape
    if not 0 <= int(index) < h * w * c:
        raise ValueError(f"value {index} is outside a {h}x{w}x{c} image")
    pos, k = divmod(int(index), c)
    return pos // w, pos % w, k


def kernels(layer, channel: int) -> np.ndarray:
    """A conv2d channel's kernels, one per input channel: (input channels, kh, kw) float32."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(layer.weights)[:, :, :, int(channel)], 2, 0))


def coverage(layer, channel: int | None = None) -> np.ndarray:
    """(h, w, input channels, filters) float64: for each input value, the sum of the kernel weights it
    meets over every output position of a conv2d layer (valid or same padding, stride 1); with
    ``channel``, of that filter only: (h, w, input channels)."""
    (h, w, _), (kh, kw), (ph, pw) = layer.input_shape, layer.kernel, layer.pads
    oh, ow, _ = layer.output_shape
    weights = np.asarray(layer.weights, dtype=np.float64)
    if channel is not None:
        weights = weights[:, :, :, int(channel)]
    padded = np.zeros((h + 2 * ph, w + 2 * pw, *weights.shape[2:]))
    for ky in range(kh):  # output (oy, ox) reads padded position (oy + ky, ox + kx)
        for kx in range(kw):
            padded[ky : ky + oh, kx : kx + ow] += weights[ky, kx]
    return padded[ph : ph + h, pw : pw + w]


def pool_winners(layer, x) -> np.ndarray:
    """(h, w, channels) bool: the value each 2x2 block of a maxpool2d layer's input passes on."""
    x = np.asarray(x, dtype=np.float64).reshape(layer.input_shape)
    h, w, c = layer.input_shape
    oh, ow, _ = layer.output_shape
    blocks = x[: 2 * oh, : 2 * ow].reshape(oh, 2, ow, 2, c).transpose(0, 2, 4, 1, 3).reshape(oh, ow, c, 4)
    winner = blocks.argmax(axis=-1)
    chosen = np.zeros((oh, ow, c, 4), dtype=bool)
    np.put_along_axis(chosen, winner[..., None], True, axis=-1)
    mask = np.zeros((h, w, c), dtype=bool)
    mask[: 2 * oh, : 2 * ow] = chosen.reshape(oh, ow, c, 2, 2).transpose(0, 3, 1, 4, 2).reshape(2 * oh, 2 * ow, c)
    return mask


def per_value(layer, x) -> np.ndarray:
    """(input values, units) float64: what each input value sends into each unit for input ``x``
    (the layer's input, any shape holding its values), summed over the unit's map for an image layer."""
    x = np.asarray(x, dtype=np.float64)
    if layer.kind == "conv2d":
        image = x.reshape(layer.input_shape)
        return (image[..., None] * coverage(layer)).reshape(image.size, layer.units)
    if layer.kind == "maxpool2d":
        image = x.reshape(layer.input_shape)
        sent = np.where(pool_winners(layer, image), image, 0.0).reshape(-1)
        out = np.zeros((image.size, layer.units))
        out[np.arange(image.size), np.arange(image.size) % layer.units] = sent
        return out
    return x.reshape(-1, 1) * np.asarray(layer.weights, dtype=np.float64)


def value_contributions(layer, x, channel: int) -> np.ndarray:
    """(h, w, input channels) float64: what each input value sends into one conv2d channel, summed over
    its map (``per_value``'s column for that channel, without the other filters')."""
    image = np.asarray(x, dtype=np.float64).reshape(layer.input_shape)
    return image * coverage(layer, channel)


def by_channel(values: np.ndarray, channels: int) -> np.ndarray:
    """Per-value rows (h * w * channels, ...) of an image read channels last, summed per channel: (channels, ...)."""
    values = np.asarray(values)
    return values.reshape(-1, channels, *values.shape[1:]).sum(axis=0)


def incoming(network, pos: int, inputs) -> np.ndarray:
    """(sources, units) float64: what each source sends into each unit of layer ``pos`` for this digit.

    ``inputs`` is what the layer reads (the normalised pixels, or the layer before's activations).
    The sources are the input pixels or a dense layer's units, value by value; the channels of an
    image layer (a flatten between them skipped), each summed over its positions.
    """
    layer = network.layers[pos]
    shape = source_shape(network, pos)
    if len(shape) != 3:
        return per_value(layer, inputs)
    if layer.kind == "conv2d":  # per channel straight away: the window sums need no per-value table
        return conv_channel_sums(layer, inputs)
    if layer.kind == "dense":  # channel k: its positions' values times their weights, one product a channel
        a = np.asarray(inputs, dtype=np.float64).reshape(-1, shape[-1])  # (positions, channels)
        w = np.asarray(layer.weights, dtype=np.float64).reshape(a.shape[0], shape[-1], layer.units)
        return np.matmul(a.T[:, None, :], w.transpose(1, 0, 2))[:, 0, :]
    if layer.kind == "maxpool2d":  # channel c reads channel c only: what its blocks pass on, added up
        h, w, c = layer.input_shape
        oh, ow, _ = layer.output_shape
        image = np.asarray(inputs, dtype=np.float64).reshape(h, w, c)
        return np.diag(image[: 2 * oh, : 2 * ow].reshape(oh, 2, ow, 2, c).max(axis=(1, 3)).sum(axis=(0, 1)))
    return by_channel(per_value(layer, inputs), shape[-1])


def conv_channel_sums(layer, x) -> np.ndarray:
    """(input channels, filters) float64: what each input channel sends into each conv2d channel, summed
    over its map: ``sum over (ky, kx) of w[ky, kx, k, c] * (sum over output positions of the value the
    window reads there)``, the same numbers as ``per_value`` summed per channel."""
    image = np.asarray(x, dtype=np.float64).reshape(layer.input_shape)
    (kh, kw), (ph, pw) = layer.kernel, layer.pads
    oh, ow, _ = layer.output_shape
    padded = np.pad(image, ((ph, ph), (pw, pw), (0, 0)))
    seen = np.array([[padded[ky : ky + oh, kx : kx + ow].sum(axis=(0, 1)) for kx in range(kw)] for ky in range(kh)])
    w = np.asarray(layer.weights, dtype=np.float64)
    return (seen[..., None] * w).sum(axis=(0, 1))


def conv_channel_contributions(layer, x, channel: int) -> np.ndarray:
    """(input channels,) float64: what each input channel sends into one conv2d channel, summed over its map."""
    return conv_channel_sums(layer, x)[:, int(channel)]


def unknocked_map(layer, x, channel: int) -> np.ndarray:
    """A channel's map (float32) for the layer's input ``x`` as the layer computes it, before any
    knock-out of the channel itself (what a knocked-out channel would show)."""
    out = layer.forward(np.asarray(x, dtype=np.float64)[None], keep=False).astype(np.float32)
    return out[0, ..., int(channel)]
