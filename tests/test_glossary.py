"""glossary.py: a note on every term and activation the page uses, and curves that plot the real function."""

from __future__ import annotations

import re

import pytest

from pyscript_app.core import activations

from pyscript_app.views import glossary

import reference as ref


def test_every_hidden_activation_and_the_output_have_a_note():
    for name in activations.REGISTRY:
        title, text = glossary.term(name) if name != activations.OUTPUT else glossary.term("softmax")
        assert title and len(text) > 30


def test_notes_quote_the_manifests_figures(manifest):
    figures = glossary.facts(manifest, 1234)
    rows, cols = manifest["input"]["image_shape"]
    assert f"{rows} × {cols}" in glossary.term("input", figures)[1]
    assert str(manifest["input"]["size"]) in glossary.term("input", figures)[1]
    assert "1,234" in glossary.term("confusion", figures)[1]
    assert "{" not in "".join(glossary.term(k, figures)[1] for k in glossary.TERMS)


def test_note_is_a_keyboard_reachable_disclosure():
    html = glossary.note("bias")
    assert html.startswith('<details class="term" data-term="bias"><summary')
    assert 'role="note"' in html and "Bias" in html


REFERENCE = ref.FUNCTIONS  # tests/reference.py's activations


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("z", [-2.5, 0.0, 0.7, 3.0])
def test_the_dot_sits_on_the_curve_where_the_net_input_falls(name, z):
    svg = glossary.curve_svg(name, z)
    cx, cy = map(float, re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg).groups())
    assert cx == pytest.approx((z + 6) / 12 * glossary.CURVE_W, abs=0.06)
    # the dot lies on the drawn path: the path's point at the nearest z is within a line's width
    points = [tuple(map(float, p.split(","))) for p in re.findall(r"[ML]([\d.]+,[\d.]+)", svg)]
    nearest = min(points, key=lambda p: abs(p[0] - cx))
    assert abs(nearest[0] - cx) <= glossary.CURVE_W / 60 / 2 + 0.1
    slope_room = 4.5 if name != "relu" else 3
    assert abs(nearest[1] - cy) < slope_room
    # and it says the real activation
    assert f"activation {float(REFERENCE[name](z)):.2f}" in svg


def test_softmax_has_no_curve_of_one_input():
    with pytest.raises(ValueError):
        glossary.curve_svg("softmax", 1.0)
