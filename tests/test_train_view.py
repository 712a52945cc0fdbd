"""The Train panel's pure parts (pyscript_app/views/train_view.py): the loss curve, the rate, the form."""

from __future__ import annotations

import math
import re

import numpy as np

from pyscript_app.core import train

from pyscript_app.views import train_view


def ema(losses, smoothing):
    """Bias-corrected exponential moving average, written out here."""
    out, value = [], 0.0
    for k, loss in enumerate(losses, 1):
        value = smoothing * value + (1 - smoothing) * loss
        out.append(value / (1 - smoothing**k))
    return out


def test_the_curve_is_the_smoothed_loss_whatever_the_refresh_rhythm():
    rng = np.random.default_rng(1)
    losses = list(2.3 * np.exp(-np.arange(5000) / 800) + rng.uniform(0, 0.3, 5000))
    whole, pieces = train_view.LossCurve(), train_view.LossCurve()
    whole.extend(losses)
    for end in range(0, len(losses) + 1, 37):  # a refresh every 37 batches, reading only what is new
        pieces.extend(losses[:end])
    pieces.extend(losses)
    assert whole.points == pieces.points
    assert len(whole.points) <= train_view.MAX_POINTS
    expected = ema(losses, train_view.SMOOTHING)
    for batch, value in whole.points:
        assert math.isclose(value, expected[batch - 1], rel_tol=1e-9)
    assert whole.points[0][0] == 1 and whole.points[-1][0] > 4000


def test_the_svg_draws_the_points_inside_its_box_and_says_where_training_is():
    curve = train_view.LossCurve()
    curve.extend([2.0, 1.5, 1.0, 0.5])
    svg = curve.svg(320, 120)
    coords = [tuple(map(float, p.split(","))) for p in re.search(r'<polyline points="([^"]+)"', svg).group(1).split()]
    assert len(coords) == 4
    assert all(0 <= x <= 320 and 0 <= y <= 120 for x, y in coords)
    assert [x for x, _ in coords] == sorted(x for x, _ in coords)  # batches left to right
    assert coords[0][1] < coords[-1][1]  # the loss went down: the line goes down (SVG y grows downwards)
    assert 'data-batches="4"' in svg and "after 4 batches" in svg
    assert "<polyline" not in train_view.LossCurve().svg()


def test_a_nan_loss_leaves_the_curve_at_its_last_finite_point():
    curve = train_view.LossCurve()
    curve.extend([2.0, 1.0, float("nan")])
    assert all(math.isfinite(v) for _, v in curve.points)
    assert curve.read == 3


def test_the_rate_counts_digits_over_the_last_seconds_of_training():
    meter = train_view.RateMeter(window=2.0)
    assert meter.rate is None
    seen = 0
    for _ in range(100):  # 1,000 digits/s for 5 s, then 4,000 digits/s for 5 s
        seen += 50
        meter.add(0.05, seen)
    for _ in range(100):
        seen += 200
        meter.add(0.05, seen)
    assert abs(meter.rate - 4000) < 1e-6


def test_the_form_has_one_field_per_address_key_and_the_settings_selected():
    settings = train.Settings(hidden=(64, 16), activation="tanh", optimizer="momentum", batch_size=128, seed=5,
                              conv=((16, 5, False),))
    markup = train_view.panel_html(settings)
    names = set(re.findall(r'name="([a-z-]+)"', markup))
    # the conv layers' three fields per layer make up the key "conv" ("16x5": 16 filters, 5x5, no pooling)
    assert names == {*train.KEYS, "conv-filters", "conv-kernel", "conv-pool"} - {"conv"}
    assert len(re.findall(r'<select name="hidden"', markup)) == train.MAX_HIDDEN
    assert len(re.findall(r'<select name="conv-filters"', markup)) == train.MAX_CONV
    conv_1, conv_2 = re.findall(r'<span class="conv-row".*?</span>', markup)
    assert re.findall(r'<option value="([^"]*)" selected>', conv_1) == ["16", "5"] and "checked" not in conv_1
    # the second: none (the first option), a 3x3 kernel and pooling ready for when filters are chosen
    assert re.findall(r'<option value="([^"]*)" selected>', conv_2) == ["3"] and "checked" in conv_2
    selected = re.findall(r'<option value="([^"]*)" selected>', markup.split("</fieldset>", 1)[1])
    assert selected[:2] == ["64", "16"] and "tanh" in selected and "momentum" in selected and "128" in selected
    for ident in ("train-start", "train-pause", "train-step", "train-reset", "train-save", "train-progress"):
        assert f'id="{ident}"' in markup


def test_the_trained_networks_name_is_its_shape():
    assert train_view.trained_title([784, 32, 32, 10]) == "Trained here: 784-32-32-10"
