"""What is shown: an input image and every layer's activations for it (a View), for a test digit or a drawing.

Pure numpy, no browser imports. render.py turns a View into HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyscript_app.core.network import Network


@dataclass
class View:
    """One thing shown: an input image and every layer's activations for it."""

    pixels: np.ndarray  # (28, 28) uint8, 0 = background
    activations: list  # one array per layer
    sample_index: int | None = None  # test digit index; None for a drawn digit
    true_label: int | None = None
    knocked_out: dict = field(default_factory=dict)  # layer name -> set of unit indices
    selected: tuple | None = None  # (layer name, index) of the open neuron card

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.activations[-1]))


def view_for_sample(network: Network, testset, index: int, knocked_out=None, selected=None) -> View:
    pixels = testset.images[index]
    acts = network.forward(network.normalize(pixels), knocked_out=knocked_out)
    return View(pixels, acts, index, int(testset.labels[index]), dict(knocked_out or {}), selected)



def view_for_drawing(network: Network, pixels: np.ndarray, knocked_out=None, selected=None) -> View:
    """A drawn digit's view: ``pixels`` is the preprocessed 28x28 uint8 model input."""
    acts = network.forward(network.normalize(pixels), knocked_out=knocked_out)
    return View(np.asarray(pixels, dtype=np.uint8), acts, None, None, dict(knocked_out or {}), selected)
