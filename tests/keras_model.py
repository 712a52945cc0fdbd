"""A Keras model with an export's weights (any chain: Reshape, Conv2D, MaxPooling2D, Flatten, Dense), for the
tests that check the page's numbers against TensorFlow: its outputs and GradientTape gradients are TensorFlow's
own, not the core's."""

from __future__ import annotations

import os

import reference


def from_export(model_dir, dtype: str = "float64"):
    """The export in ``model_dir`` as a Keras Sequential model taking the flat normalised input (n, size)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    manifest, layers = reference.load_chain(model_dir)
    stack = [keras.Input((manifest["input"]["size"],), dtype=dtype)]
    if layers[0]["kind"] in ("conv2d", "maxpool2d"):
        stack.append(keras.layers.Reshape(tuple(layers[0]["input_shape"]), dtype=dtype))
    weighted = []
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv2d":
            k = layer["W"].shape[0]
            made = keras.layers.Conv2D(layer["W"].shape[3], (k, k), padding=layer["padding"],
                                       activation=layer["activation"], dtype=dtype)
            weighted.append((made, layer))
        elif kind == "maxpool2d":
            made = keras.layers.MaxPooling2D((2, 2), dtype=dtype)
        elif kind == "flatten":
            made = keras.layers.Flatten(dtype=dtype)
        else:
            made = keras.layers.Dense(layer["W"].shape[1], activation=layer["activation"], dtype=dtype)
            weighted.append((made, layer))
        stack.append(made)
    model = keras.Sequential(stack)
    for made, layer in weighted:
        made.set_weights([layer["W"], layer["b"]])
    return model
