"""core/tsne.py (the atlas's t-SNE for a network with no build-time map) held to scikit-learn's exact t-SNE,
on the default model's activations (tests/reference.py's float64 pass, not the core's)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from sklearn.manifold import TSNE, _t_sne, trustworthiness

import reference as ref
from conftest import DEFAULT_MODEL, SITE
from pyscript_app.core import tsne


@pytest.fixture(scope="module")
def hidden():
    """(the last hidden layer's activations, their first two principal-axis places) of the first 300 test digits."""
    _, layers = ref.load(SITE / "models" / DEFAULT_MODEL)
    with np.load(SITE / "data" / "mnist_test.npz") as data:
        x = data["images"][:300].reshape(300, -1).astype(np.float64) / 255.0
    acts = ref.forward(layers, x)[-2]
    centred = acts - acts.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return acts, centred @ vt[:2].T


def affinities(x):
    return tsne.joint_probabilities(tsne.run(tsne.conditional_steps(tsne.squared_distances(x))))


def test_affinities_equal_scikit_learns(hidden):
    x, _ = hidden
    theirs = _t_sne._joint_probabilities(_t_sne.pairwise_distances(x, squared=True), tsne.PERPLEXITY, 0)
    ours = affinities(x)
    np.testing.assert_allclose(squareform(ours, checks=False), theirs, rtol=1e-5)
    assert np.all(np.diag(ours) == 0) and np.allclose(ours, ours.T) and abs(ours.sum() - 1) < 1e-6


@pytest.mark.parametrize("exaggeration", [1.0, tsne.EXAGGERATION])
def test_divergence_and_gradient_equal_scikit_learns(hidden, exaggeration):
    x, _ = hidden
    p = affinities(x)
    y = np.random.default_rng(1).normal(size=(len(x), 2))
    kl, grad = tsne.run(tsne.kl_gradient_steps(y, p, exaggeration, error=True))
    their_kl, their_grad = _t_sne._kl_divergence(y.ravel(), squareform(p, checks=False) * exaggeration, 1, len(x), 2)
    assert kl == pytest.approx(their_kl, rel=1e-10)
    np.testing.assert_allclose(grad.ravel(), their_grad, rtol=1e-9, atol=1e-15)


def test_the_first_iterations_equal_scikit_learns_descent(hidden):
    """Step for step (t-SNE's descent amplifies rounding, so the comparison is over the first 50 iterations)."""
    x, pca_xy = hidden
    p, y0 = affinities(x), tsne.initial_places(pca_xy)
    assert np.std(y0[:, 0]) == pytest.approx(1e-4, rel=1e-3)
    theirs = _t_sne._gradient_descent(
        _t_sne._kl_divergence, y0.ravel().copy(), 0, 50, n_iter_check=tsne.CHECK_EVERY, n_iter_without_progress=250,
        momentum=0.5, learning_rate=tsne.learning_rate(len(x)), min_gain=tsne.MIN_GAIN, min_grad_norm=tsne.MIN_GRAD_NORM,
        args=[squareform(p, checks=False) * tsne.EXAGGERATION, 1, len(x), 2], kwargs={})[0]
    ours = tsne.run(tsne.descent_steps(p, y0, 50))
    np.testing.assert_allclose(ours.ravel(), theirs, rtol=1e-6, atol=1e-9 * np.abs(theirs).max())


def test_the_whole_map_is_as_good_as_scikit_learns(hidden):
    """The whole run (the page's iterations) against scikit-learn's exact t-SNE from the same start: the same
    divergence within 5 %, and as trustworthy (how well each digit's 10 nearest neighbours are kept)."""
    x, pca_xy = hidden
    y0 = tsne.initial_places(pca_xy)
    ours = tsne.run(tsne.tsne_steps(x, pca_xy))
    model = TSNE(n_components=2, perplexity=tsne.PERPLEXITY, method="exact", init=y0.copy(),
                 learning_rate="auto", max_iter=tsne.ITERATIONS, random_state=0)
    theirs = model.fit_transform(x)
    kl, _ = tsne.run(tsne.kl_gradient_steps(ours, affinities(x), error=True))
    assert kl == pytest.approx(model.kl_divergence_, rel=0.05)
    assert trustworthiness(x, ours, n_neighbors=10) >= trustworthiness(x, theirs, n_neighbors=10) - 0.01


def test_steps_stay_small_and_report_progress(hidden):
    x, pca_xy = hidden
    seen = []
    steps = tsne.tsne_steps(x, pca_xy, iterations=260)
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as stop:
            y = stop.value
            break
    whats = [w for w, _ in seen]
    assert whats[0] == "t-SNE, the distances" and "t-SNE, the neighbourhoods" in whats and whats[-1] == "t-SNE, the map"
    assert all(0.0 <= f <= 1.0 for _, f in seen) and y.shape == (len(x), 2) and np.all(np.isfinite(y))


@pytest.mark.parametrize("x", [np.zeros((40, 5)), np.ones((40, 1)), np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]],
                         ids=["all-equal", "one-unit-constant", "few-distinct"])
def test_degenerate_layers_give_a_finite_map(x):
    y = tsne.run(tsne.tsne_steps(x, np.zeros((len(x), 2)), iterations=260))
    assert y.shape == (len(x), 2) and np.all(np.isfinite(y))


def test_one_digit_or_none():
    assert tsne.run(tsne.tsne_steps(np.ones((1, 4)), np.zeros((1, 2)))).shape == (1, 2)
    assert tsne.run(tsne.tsne_steps(np.ones((0, 4)), np.zeros((0, 2)))).shape == (0, 2)
