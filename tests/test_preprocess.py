"""MNIST-style preprocessing of a drawn digit (pyscript_app/core/preprocess.py).

MNIST test digits, blown up and pasted anywhere on a large blank pad, stand in
for drawings: preprocessing must give them back as the model saw them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyscript_app.core.network import read_site
from pyscript_app.core.preprocess import (
    BOX,
    CENTRE,
    FIELD,
    NOISE_THRESHOLD,
    Preprocessed,
    centre_of_mass,
    preprocess,
    resize_to_box,
)

SITE = Path(__file__).resolve().parents[1] / "site"
PAD = 400


@pytest.fixture(scope="module")
def export():
    return read_site(SITE)


# ---------------------------------------------------------------------------
# helpers: a digit drawn on a pad


def upscale(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """``image`` (n, n) uint8 resized to (size, size), pixel centres aligned."""
    n = image.shape[0]
    src = (np.arange(size) + 0.5) * n / size - 0.5  # where each output pixel's centre falls
    if mode == "nearest":
        i = np.clip(np.floor(src + 0.5).astype(int), 0, n - 1)
        return image[np.ix_(i, i)]
    lo = np.clip(np.floor(src).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    t = np.clip(src - lo, 0.0, 1.0)
    f = image.astype(np.float64)
    rows = f[lo] * (1 - t)[:, None] + f[hi] * t[:, None]
    out = rows[:, lo] * (1 - t)[None, :] + rows[:, hi] * t[None, :]
    return np.rint(out).astype(np.uint8)


def paste(image: np.ndarray, size: int, top: int, left: int, mode: str, pad: int = PAD) -> np.ndarray:
    canvas = np.zeros((pad, pad), dtype=np.uint8)
    canvas[top : top + size, left : left + size] = upscale(image, size, mode)
    return canvas


def random_pads(images: np.ndarray, count: int, seed: int, *, integer_scale: bool, mode: str):
    """``count`` (index, pad) pairs: test digits scaled 3x to 8x, anywhere on the pad."""
    rng = np.random.default_rng(seed)
    for index in rng.choice(len(images), size=count, replace=False):
        scale = rng.integers(3, 9) if integer_scale else rng.uniform(3.0, 8.0)
        size = int(round(28 * scale))
        top, left = rng.integers(0, PAD - size + 1, size=2)
        yield int(index), paste(images[index], size, int(top), int(left), mode)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def touches_edge(image: np.ndarray) -> bool:
    top, bottom, left, right = ink_box(image)
    return top == 0 or left == 0 or bottom == image.shape[0] - 1 or right == image.shape[1] - 1


def recognition_rates(export, seed: int, *, integer_scale: bool, mode: str) -> tuple[float, float, str]:
    """The model's accuracy on 1,000 test digits as they are and after a trip through a pad."""
    network, testset = export
    indices, images = [], []
    for index, pad in random_pads(testset.images, 1000, seed, integer_scale=integer_scale, mode=mode):
        indices.append(index)
        images.append(preprocess(pad).centred)
    labels = testset.labels[indices]
    original = float((network.predict(network.normalize(testset.images[indices])) == labels).mean())
    preprocessed = float((network.predict(network.normalize(np.stack(images))) == labels).mean())
    report = f"{mode} x3..x8: original {original:.1%}, preprocessed {preprocessed:.1%} (of 1,000)"
    print(f"\n{report}")
    return original, preprocessed, report


# ---------------------------------------------------------------------------
# digits on a pad


def test_mnist_centres_its_digits_on_index_14(export):
    # The convention preprocess follows, read off the data: pixel indices as
    # coordinates, MNIST's centres of mass are within 0.5 px of (14, 14), not
    # of the geometric middle (13.5, 13.5). (The few exceptions are digits
    # whose ink runs into the field's edge.)
    _, testset = export
    coms = np.array([centre_of_mass(im) for im in testset.images])
    near = (np.abs(coms - CENTRE) <= 0.5).all(axis=1)
    assert near.mean() > 0.999
    assert CENTRE == 14.0
    assert np.abs(coms.mean(axis=0) - 14.0).max() < 0.05


def test_a_digit_anywhere_on_the_pad_comes_back_centred_in_a_20px_box(export):
    _, testset = export
    checked = 0
    for mode in ("nearest", "bilinear"):
        for index, pad in random_pads(testset.images, 150, seed=1, integer_scale=False, mode=mode):
            result = preprocess(pad)
            assert isinstance(result, Preprocessed)
            image = result.centred
            assert image.shape == (FIELD, FIELD) and image.dtype == np.uint8
            top, bottom, left, right = ink_box(image)
            assert bottom - top + 1 <= BOX and right - left + 1 <= BOX, (index, ink_box(image))
            assert max(bottom - top, right - left) + 1 >= BOX - 1, (index, ink_box(image))
            if touches_edge(image):  # ink kept inside the field wins over exact centring
                continue
            cy, cx = centre_of_mass(image)
            assert abs(cy - CENTRE) <= 0.5 and abs(cx - CENTRE) <= 0.5, (index, mode, cy, cx)
            checked += 1
    assert checked >= 295


def test_a_digit_blown_up_by_a_whole_factor_comes_back_pixel_for_pixel(export):
    # Area averaging undoes a nearest-neighbour blow-up exactly, and the
    # whole-pixel centring puts the digit back where MNIST had it.
    _, testset = export
    fits = [i for i in range(300) if not touches_edge(testset.images[i])]
    rng = np.random.default_rng(2)
    for index in fits[:100]:
        k = int(rng.integers(3, 9))
        top, left = rng.integers(0, PAD - 28 * k + 1, size=2)
        pad = paste(testset.images[index], 28 * k, int(top), int(left), "nearest")
        result = preprocess(pad, threshold=1)
        np.testing.assert_array_equal(result.centred, testset.images[index], err_msg=f"digit {index}, x{k}")


def test_preprocessed_digits_are_recognised_as_often_as_the_originals(export):
    original, preprocessed, report = recognition_rates(export, 0, integer_scale=True, mode="nearest")
    assert preprocessed >= original, report


def test_smoothly_scaled_digits_lose_little_accuracy(export):
    # Bilinear blow-ups by fractional factors are not undone exactly (two
    # resamplings blur a little), but the digits must stay readable.
    original, preprocessed, report = recognition_rates(export, 3, integer_scale=False, mode="bilinear")
    assert preprocessed >= original - 0.015, report


# ---------------------------------------------------------------------------
# empty pads and noise


def test_an_empty_pad_gives_none():
    assert preprocess(np.zeros((280, 280), dtype=np.uint8)) is None
    assert preprocess(np.zeros((280, 280, 4), dtype=np.uint8)) is None


def test_sub_threshold_noise_is_paper(export):
    _, testset = export
    rng = np.random.default_rng(4)
    noise = rng.integers(0, NOISE_THRESHOLD, size=(PAD, PAD), dtype=np.uint8)
    assert noise.max() == NOISE_THRESHOLD - 1
    assert preprocess(noise) is None

    clean = paste(testset.images[0], 140, 200, 30, "bilinear")
    noisy = np.maximum(clean, noise)
    a, b = preprocess(clean), preprocess(noisy)
    assert a.bbox == b.bbox
    np.testing.assert_array_equal(a.centred, b.centred)


def test_one_stroke_at_the_threshold_counts():
    pad = np.zeros((PAD, PAD), dtype=np.uint8)
    pad[100:300, 200:210] = NOISE_THRESHOLD
    result = preprocess(pad)
    assert result is not None and result.bbox == (100, 200, 300, 210)


# ---------------------------------------------------------------------------
# input conventions


def test_rgba_ink_is_the_alpha_channel(export):
    _, testset = export
    ink = paste(testset.images[7], 200, 50, 120, "bilinear")
    rgba = np.zeros(ink.shape + (4,), dtype=np.uint8)
    rgba[..., 3] = ink  # black strokes (RGB 0) with alpha on a transparent canvas
    from_rgba, from_ink = preprocess(rgba), preprocess(ink)
    for name in ("crop", "resized", "centred"):
        np.testing.assert_array_equal(getattr(from_rgba, name), getattr(from_ink, name), err_msg=name)
    assert (from_rgba.bbox, from_rgba.offset) == (from_ink.bbox, from_ink.offset)

    rgba[..., :3] = 200  # stroke colour does not matter, only alpha
    np.testing.assert_array_equal(preprocess(rgba).centred, from_ink.centred)


def test_float_and_bool_pads_are_on_the_same_scale():
    ink = np.zeros((300, 300), dtype=np.uint8)
    ink[40:260, 120:170] = 255
    ink[40:60, 120:230] = 128
    expected = preprocess(ink).centred
    np.testing.assert_array_equal(preprocess(ink.astype(np.float32)).centred, expected)
    np.testing.assert_array_equal(preprocess(ink.astype(np.float64) + 0.3).centred, expected)
    np.testing.assert_array_equal(preprocess(ink == 255).centred, preprocess(np.where(ink == 255, 255, 0)).centred)


def test_a_pad_of_another_shape_is_refused():
    with pytest.raises(ValueError):
        preprocess(np.zeros((10, 10, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------
# resizing


def test_a_tall_thin_stroke_keeps_its_aspect_ratio():
    pad = np.zeros((PAD, PAD), dtype=np.uint8)
    pad[50:350, 190:220] = 255  # 300 x 30: a '1'
    result = preprocess(pad)
    assert result.bbox == (50, 190, 350, 220)
    assert result.scale == pytest.approx(20 / 300)
    top, bottom, left, right = ink_box(result.centred)
    assert (bottom - top + 1, right - left + 1) == (20, 2)
    assert (result.centred[top : bottom + 1, left : right + 1] == 255).all()

    pad[:] = 0
    pad[50:350, 190:215] = 255  # 300 x 25: 1.67 px wide, an anti-aliased second column
    columns = preprocess(pad).centred.sum(axis=0)
    assert sorted(columns[columns > 0].tolist()) == [20 * 170, 20 * 255]


def test_a_wide_stroke_becomes_20px_wide():
    pad = np.zeros((PAD, PAD), dtype=np.uint8)
    pad[200:240, 20:380] = 255  # 40 x 360
    top, bottom, left, right = ink_box(preprocess(pad).centred)
    assert (bottom - top + 1, right - left + 1) == (3, 20)


def test_a_uniform_block_resizes_to_its_grey_level():
    crop = np.full((30, 45), 200, dtype=np.uint8)  # scale 20/45: 13.33 x 20 px
    frame, scale = resize_to_box(crop)
    assert scale == pytest.approx(20 / 45)
    rows = frame.sum(axis=1)
    inked = rows[rows > 0] / 20
    np.testing.assert_allclose(inked, [200] * 13 + [200 / 3], rtol=1e-9)
    np.testing.assert_allclose(frame.sum(), 200 * 30 * 45 * scale**2, rtol=1e-9)


@pytest.mark.parametrize("shape", [(37, 23), (300, 7), (21, 19), (1, 1), (5, 400), (123, 456)])
def test_resizing_conserves_ink(shape):
    rng = np.random.default_rng(sum(shape))
    crop = rng.integers(0, 256, size=shape, dtype=np.uint8)
    frame, scale = resize_to_box(crop)
    assert frame.shape == (BOX, BOX)
    assert frame.min() >= 0 and frame.max() <= 255 + 1e-9
    np.testing.assert_allclose(frame.sum(), crop.sum(dtype=np.float64) * scale**2, rtol=1e-9)


def test_resizing_is_exact_area_averaging():
    # 30 x 24 -> 20 x 16 is a 2/3 reduction: blowing up 2x by repetition and
    # averaging 3x3 blocks is the same box filter, computed the slow way.
    rng = np.random.default_rng(5)
    crop = rng.integers(0, 256, size=(30, 24)).astype(np.uint8)
    reference = np.kron(crop.astype(np.float64), np.ones((2, 2))).reshape(20, 3, 16, 3).mean(axis=(1, 3))
    frame, _ = resize_to_box(crop)
    np.testing.assert_allclose(frame[:, 2:18], reference, atol=1e-9)
    assert not frame[:, :2].any() and not frame[:, 18:].any()


def test_the_steps_are_kept_for_the_inspector(export):
    _, testset = export
    pad = paste(testset.images[3], 112, 10, 250, "nearest")
    result = preprocess(pad)
    top, left, bottom, right = result.bbox
    np.testing.assert_array_equal(result.crop, np.where(pad >= NOISE_THRESHOLD, pad, 0)[top:bottom, left:right])
    assert result.resized.shape == (BOX, BOX) and result.resized.dtype == np.uint8
    dy, dx = result.offset
    margin = np.zeros((FIELD + 2 * BOX, FIELD + 2 * BOX), dtype=np.uint8)
    margin[BOX + dy : 2 * BOX + dy, BOX + dx : 2 * BOX + dx] = result.resized
    np.testing.assert_array_equal(margin[BOX : BOX + FIELD, BOX : BOX + FIELD], result.centred)
    assert int(result.centred.sum()) == int(result.resized.sum())  # nothing fell outside the field
    cy, cx = result.centre_of_mass
    assert abs(cy + dy - CENTRE) <= 0.5 and abs(cx + dx - CENTRE) <= 0.5
