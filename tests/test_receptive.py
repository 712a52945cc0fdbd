"""A feature map pixel's receptive field and the products it sums (core/receptive.py), for every CNN export,
against tests/reference.py's plain loops."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fake_exports
import reference
from conftest import SITE, SHIPPED
from pyscript_app.core import network as nw
from pyscript_app.core import receptive

CNNS = [m for m in SHIPPED if any(l.get("kind") == "conv2d" for l in
                                  json.loads((SITE / "models" / m / "manifest.json").read_text())["layers"])]
CNNS += list(fake_exports.CNN_SHAPES)


@pytest.fixture(scope="module", params=CNNS)
def cnn(request, fake_models):
    folder = SITE / "models" / request.param if request.param in SHIPPED else fake_models / request.param
    return nw.read_model_dir(folder), reference.load_layers(folder)[1]


def image_layers(layers):
    return [i for i, (spec, _, _) in enumerate(layers) if spec["kind"] in ("conv2d", "maxpool2d")]


def test_the_field_is_every_input_pixel_the_map_pixel_depends_on(cnn):
    network, layers = cnn
    rng = np.random.default_rng(0)
    for pos in image_layers(layers):
        h, w = layers[pos][0]["output_shape"][:2]
        pixels = {(0, 0), (h - 1, w - 1), (0, w - 1), (h // 2, w // 2)} | {tuple(rng.integers(0, (h, w))) for _ in range(4)}
        for row, col in sorted(pixels):
            name = layers[pos][0]["name"]
            assert receptive.field(network, name, row, col) == reference.receptive_box(layers, pos, row, col), (name, row, col)


def test_a_pixel_outside_the_map_is_refused(cnn):
    network, layers = cnn
    pos = image_layers(layers)[0]
    h, w = layers[pos][0]["output_shape"][:2]
    with pytest.raises(ValueError, match="outside"):
        receptive.field(network, layers[pos][0]["name"], h, 0)


def test_the_products_sum_to_the_value_the_map_shows(cnn, testset):
    network, layers = cnn
    for sample in (0, 7, 42):
        x = network.normalize(testset.images[sample])
        acts = network.forward(x)
        expected = reference.forward_layers(layers, x[None, :].astype(np.float64))
        for pos in image_layers(layers):
            spec = layers[pos][0]
            h, w, c = spec["output_shape"]
            for row, col, ch in ((0, 0, 0), (h // 2, w // 3, c - 1), (h - 1, w - 1, c // 2)):
                info = receptive.products(network, spec["name"], ch, row, col, x, acts)
                want = float(expected[pos][0, row, col, ch])
                assert info["value"] == pytest.approx(want, abs=1e-5)
                if spec["kind"] == "conv2d":
                    assert info["products"].shape == (*spec["kernel"], spec["input_shape"][2])
                    act = reference.FUNCTIONS[spec["activation"]](np.array(info["z"]))
                    assert float(act) == pytest.approx(want, abs=1e-5)
                else:
                    r, cc = info["winner"]
                    assert info["block"][r, cc] == pytest.approx(want, abs=1e-5)
                    assert info["block"].max() == info["block"][r, cc]
