"""export_weights.py --augment: training digits varied the way drawn digits vary (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

import export_weights as ew
from export_helpers import committed_testset
from pyscript_app.core.preprocess import CENTRE, centre_of_mass


@pytest.fixture(scope="session")
def testset():
    return committed_testset()


def dilate_by_hand(image):
    """Grey dilation with a plus-shaped 3x3 element, one pixel at a time."""
    h, w = image.shape
    out = image.copy()
    for y in range(h):
        for x in range(w):
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y, x] = max(out[y, x], image[y + dy, x + dx])
    return out


def test_thickness_zero_is_the_digit_and_one_is_a_dilation(testset):
    x = testset.images[:3]
    np.testing.assert_array_equal(ew.change_thickness(x, np.zeros(3)), x)
    one = ew.change_thickness(x, np.ones(3))
    for a, b in zip(one, x):
        np.testing.assert_array_equal(a, dilate_by_hand(b))
    ink = [ew.change_thickness(x[:1], np.array([t])).sum() for t in (-0.6, -0.3, 0, 0.5, 1, 1.5, 2)]
    assert all(b > a for a, b in zip(ink, ink[1:]))  # more t, more ink


def test_warp_identity_and_exact_quarter_turns(testset):
    x = testset.images[:4].astype(np.float32)
    ones, zeros = np.ones(4), np.zeros(4)
    np.testing.assert_allclose(ew.warp(x, zeros, zeros, ones), x, atol=1e-4)
    # 90 degrees clockwise on screen maps the pixel grid onto itself: bilinear is exact
    np.testing.assert_allclose(ew.warp(x, ones * 90, zeros, ones), np.rot90(x, k=-1, axes=(1, 2)), atol=1e-3)


def test_positive_slant_moves_the_bottom_to_the_right():
    bar = np.zeros((1, 28, 28), np.float32)
    bar[0, 4:24, 13:15] = 255  # a vertical stroke
    leaned = ew.warp(bar, np.zeros(1), np.array([0.2]), np.ones(1))[0]
    top_x = centre_of_mass(leaned[4:8])[1]
    bottom_x = centre_of_mass(leaned[20:24])[1]
    assert top_x < bottom_x - 2  # x += shear * y with y down: the bottom moves right, the top left


def test_augmented_digits_are_centred_like_mnist_and_reproducible(testset):
    x = testset.images[:200]
    a = ew.augment(x, np.random.default_rng(5))
    b = ew.augment(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == x.shape
    assert (a != x).any(axis=(1, 2)).mean() > 0.9  # nearly all of them varied
    for image in a:
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        assert rows[-1] - rows[0] < 20 and cols[-1] - cols[0] < 20  # the 20-px box
        r, c = centre_of_mass(image)
        assert abs(r - CENTRE) <= 0.5 + 1e-9 and abs(c - CENTRE) <= 0.5 + 1e-9


def test_augmented_training_set_keeps_the_clean_digits_and_labels(testset):
    x, y = testset.images[:50], testset.labels[:50]
    xs, ys = ew.augmented_training_set(x, y, seed=1, copies=2)
    assert xs.shape == (150, 28, 28) and ys.shape == (150,)
    np.testing.assert_array_equal(xs[:50], x)
    np.testing.assert_array_equal(ys, np.concatenate([y, y, y]))


@pytest.mark.parametrize("args", [["--augment", "--from-model", "m.keras"], ["--augment-copies", "0"]])
def test_bad_augment_options_are_refused(args):
    with pytest.raises(SystemExit) as exc:
        ew.parse_args(args)
    assert exc.value.code == 2
