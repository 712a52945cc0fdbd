"""The atlas's numbers (pyscript_app/core/atlas.py) against independent computations.

The activations come from tests/reference.py's float64 forward pass over the
export's files; the PCA is checked against numpy's SVD written out here and
scikit-learn's PCA, the separability against scikit-learn's
KNeighborsClassifier, on the same data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA
from sklearn.neighbors import KNeighborsClassifier

import reference as ref
from pyscript_app.core import atlas

SITE = Path(__file__).resolve().parents[1] / "site"
TOL = 1e-6


@pytest.fixture(scope="module")
def layers_acts(model_dir, testset):
    """{layer name: (n, width) float64 activations over the test set}, plus "input" (the normalised pixels);
    a conv2d or maxpool2d layer's width is its channels (each digit's map maxima), a flatten is not mapped."""
    manifest, layers = ref.load_chain(model_dir)
    norm = manifest["input"].get("normalization", {})
    x = testset.images.reshape(len(testset), -1).astype(np.float64) * norm.get("scale", 1 / 255) + norm.get("offset", 0.0)
    acts = ref.forward_chain(layers, x, peaks=True)
    return {"input": x, **{spec["name"]: a for spec, a in zip(manifest["layers"], acts) if spec["kind"] != "flatten"}}


def mapped(manifest):
    """The manifest's layers the atlas maps: all but a flatten."""
    return [spec for spec in manifest["layers"] if spec["kind"] != "flatten"]


def svd_axes(x):
    """The two leading principal axes of x by numpy's SVD of the centred data (rows)."""
    c = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return vt[:2]


def same_up_to_sign(a, b, tol=TOL):
    for u, v in zip(a, b):
        assert min(np.abs(u - v).max(), np.abs(u + v).max()) < tol


def test_pca_matches_svd_and_scikit_learn(model_dir, layers_acts, testset):
    manifest, _ = ref.load_chain(model_dir)
    for spec in mapped(manifest):
        x = layers_acts[spec["name"]]
        if x.shape[1] < 3:
            continue
        got = atlas.pca(x.astype(np.float32))
        assert np.abs(got.mean - x.mean(axis=0)).max() < TOL
        same_up_to_sign(got.axes, svd_axes(x))
        sk = SkPCA(n_components=2, svd_solver="full").fit(x)
        same_up_to_sign(got.axes, sk.components_)
        assert np.allclose(got.variance, sk.explained_variance_ * (len(x) - 1) / len(x), rtol=1e-6)
        # the places are the activations minus the mean dotted with each axis
        xy = atlas.project(got, x)
        assert np.abs(xy - (x - got.mean) @ got.axes.T).max() < TOL
        # the sign convention: each axis's largest loading positive
        for axis in got.axes:
            assert axis[np.argmax(np.abs(axis))] > 0


def test_input_pca_from_the_pixels(testset):
    """The input layer's map (pixels' PCA in grey levels, scaled by a network's normalisation) is the PCA of its input."""
    grey = testset.images.reshape(len(testset), -1)[:1000].astype(np.float64)
    raw = atlas.pca(grey)
    for norm in ({"scale": 1 / 255, "offset": 0.0}, {"scale": 2 / 255, "offset": -1.0}):
        x = grey * norm["scale"] + norm["offset"]
        mine = atlas.input_pca(raw, norm)
        assert np.abs(mine.mean - x.mean(axis=0)).max() < TOL
        same_up_to_sign(mine.axes, svd_axes(x))
        assert np.allclose(mine.variance, atlas.pca(x).variance, rtol=1e-9)


def test_separability_equals_scikit_learn(model_dir, layers_acts, testset):
    manifest, _ = ref.load_chain(model_dir)
    labels = testset.labels.astype(int)
    refs, queries = atlas.knn_split(len(labels))
    assert (refs.stop, queries.stop - queries.start) == (atlas.REFERENCES, atlas.QUERIES)
    for name in [*(["input"] if model_dir.name == "relu" else []), *[spec["name"] for spec in mapped(manifest)]]:
        x = layers_acts[name]
        knn = KNeighborsClassifier(n_neighbors=atlas.K, algorithm="brute").fit(x[refs], labels[refs])
        expected = float(np.mean(knn.predict(x[queries]) == labels[queries]))
        assert atlas.knn_accuracy(x.astype(np.float32), labels) == pytest.approx(expected, abs=1e-12), name


def test_separability_story_on_the_shipped_model(testset):
    """Clusters form with depth: the most accurate shipped model's last hidden layer separates the classes
    better than the pixels do."""
    manifest, layers = ref.load(SITE / "models" / "relu")
    x = testset.images.reshape(len(testset), -1)[:2500].astype(np.float64) / 255
    last_hidden = ref.forward(layers, x)[-2]
    labels = testset.labels[:2500]
    assert atlas.knn_accuracy(last_hidden, labels) > atlas.knn_accuracy(x, labels) > 0.5


@pytest.mark.parametrize("case", ["one unit", "all equal", "two equal columns", "nan", "untrained"])
def test_degenerate_layers_give_finite_numbers_and_a_sentence(case):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 600)
    if case == "one unit":
        x = rng.random((600, 1))
    elif case == "all equal":
        x = np.full((600, 16), 0.5)
    elif case == "two equal columns":
        x = np.repeat(rng.random((600, 1)), 2, axis=1)
    elif case == "nan":
        x = rng.random((600, 4))
        x[3, 1] = np.nan
    else:  # an untrained network's layer: small random weights on random digits
        x = np.tanh(rng.random((600, 784)) @ rng.normal(0, 0.01, (784, 32)))
    p = atlas.pca(x)
    xy = atlas.project(p, x)
    acc = atlas.knn_accuracy(x, labels)
    assert np.isfinite(p.mean).all() and np.isfinite(p.axes).all() and np.isfinite(xy).all()
    assert np.isfinite(p.explained).all() and 0 <= acc <= 1
    sentence = atlas.separability_sentence(acc, 10)
    assert sentence.endswith(".") and "nan" not in sentence.lower()
    if case == "one unit":
        assert "one unit" in p.note and np.all(xy[:, 1] == 0)
        assert np.abs(xy[:, 0] - (x[:, 0] - x[:, 0].mean())).max() < 1e-12
    if case == "all equal":
        assert "same activations" in p.note and np.all(xy == 0)
    if case == "untrained":
        assert "guessing" in sentence or "overlap" in sentence


def test_alignment_keeps_orientation():
    """A map whose axes come back swapped and flipped is turned back to the previous orientation, exactly."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 6)) * np.array([5, 3, 1, 1, 1, 1])
    p = atlas.pca(x)
    xy = atlas.project(p, x)
    for order, signs in (((1, 0), (1, -1)), ((0, 1), (-1, -1)), ((1, 0), (-1, 1))):
        turned = atlas.Pca(mean=p.mean, axes=p.axes[list(order)] * np.array(signs)[:, None],
                           variance=p.variance[list(order)], total=p.total)
        new_xy = atlas.project(turned, x)
        aligned, aligned_xy = atlas.align(turned, new_xy, xy)
        assert np.abs(aligned_xy - xy).max() < 1e-12
        assert np.abs(aligned.axes - p.axes).max() < 1e-12
        assert np.abs(atlas.project(aligned, x) - aligned_xy).max() < 1e-12
    # a slightly moved map (training went on) keeps its orientation too
    moved = xy + rng.normal(0, 0.1, xy.shape)
    same, same_xy = atlas.align(p, -moved, xy)
    assert np.abs(same_xy - moved).max() < 1e-12


def test_a_map_states_a_separability_given_instead_of_measuring_it():
    """A live map between two measured ones states the figure it is given and skips the vote; its places are
    the same PCA map as one that measures."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 5)) * np.array([4, 2, 1, 1, 1])
    labels = rng.integers(0, 3, 600)
    predicted = labels.copy()

    def run(**kw):
        steps = []
        gen = atlas.map_steps("h", x, labels, predicted, **kw)
        while True:
            try:
                steps.append(next(gen)[0])
            except StopIteration as stop:
                return stop.value, set(steps)

    measured, measured_steps = run()
    given, given_steps = run(separability=0.25)
    assert "separability" in measured_steps and "separability" not in given_steps
    assert measured.separability == atlas.knn_accuracy(x, labels) and given.separability == 0.25
    assert np.array_equal(given.xy, measured.xy)


def test_class_summaries():
    xy = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0]])
    s = atlas.class_summaries(xy, [0, 0, 1, 1], [0, 1, 1, 1], ["0", "1", "2"])
    assert s[0].centre == (1.0, 0.0) and s[0].spread == pytest.approx(1.0) and s[0].misread == 1
    assert s[1].centre == (10.0, 11.0) and s[1].count == 2 and s[1].misread == 0
    assert s[2].count == 0 and s[2].spread == 0.0


def test_the_picture_one_image_with_a_dot_per_digit():
    """views/atlas.py: every digit a dot of its class's colour where the frame puts it; a misread one a ring;
    the summary states the separability and each class, with no NaN even for a degenerate map."""
    from pyscript_app.views import atlas as view

    xy = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    frame = view.Frame(xy)
    points = frame.to_canvas(xy)
    assert points[0, 0] < points[1, 0] and points[0, 1] > points[1, 1]  # x to the right, y up
    img = view.raster(points, [0, 1, 2], [False, False, True])
    assert img.shape == (view.SIZE, view.SIZE, 4) and img.dtype == np.uint8
    for (x, y), c in zip(np.rint(points[:2]).astype(int), (0, 1)):
        assert tuple(img[y, x, :3]) == view.rgb(view.PALETTE[c])
    x, y = np.rint(points[2]).astype(int)
    assert tuple(img[y, x]) == view.BACKGROUND and tuple(img[y, x + 2, :3]) == view.rgb(view.PALETTE[2])  # a ring
    assert frame.nearest(points[1] + 2, points) == 1 and frame.nearest(points[1] + 40, points) is None
    assert list(view.Frame.inside(points, (*points[0] - 1, *points[2] + 1))) == [0, 2]
    dimmed = view.raster(points, [0, 1, 2], [False] * 3, highlight=np.array([True, False, False]))
    assert tuple(dimmed[int(round(points[1, 1])), int(round(points[1, 0]))]) == view.DIMMED
    flat = np.zeros((20, 4))
    m = atlas.LayerMap("hidden_1", atlas.pca(flat), np.zeros((20, 2)), np.arange(20) % 10, np.arange(20) % 10,
                       atlas.knn_accuracy(flat, np.arange(20) % 10))
    text = view.summary_html(m, [str(i) for i in range(10)])
    assert "nan" not in text.lower() and "same activations" in text and "nearest-neighbour" in text
    assert view.Frame(m.xy).scale == 1.0  # all on one point: a finite frame
