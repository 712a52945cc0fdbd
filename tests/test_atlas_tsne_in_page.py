"""End to end: a network with no build-time t-SNE map (one opened from its files) gets its t-SNE map computed in
the page, on the first tsne.DIGITS test digits, in idle time with progress (the algorithm itself is held to
scikit-learn's in tests/test_tsne.py)."""

from __future__ import annotations

import numpy as np

import fake_exports
from conftest import watch
from pyscript_app.core import export_format, tsne
from test_atlas_page import READY_MS, current, ready
from test_models_page import open_files


def test_an_opened_network_gets_its_tsne_map_computed_in_the_page(browser, site_server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    w = watch(context, site_server.url)
    page = w.page
    try:
        assert w.goto("#sample=3") == "ready", page.inner_text("#status")
        files = fake_exports.export_files("mine", [(16, "relu"), (8, "tanh")], seed=5, title="Two layers")
        open_files(page, {"two-layers.zip": export_format.write_zip(files)})
        page.wait_for_function("document.getElementById('view').dataset.model.startsWith('own-')", timeout=READY_MS)
        page.click("#atlas-toggle")
        ready(page, "hidden_2")
        assert page.get_attribute("#atlas", "data-method") == "pca"
        page.select_option("#atlas-method", "tsne")
        note = page.inner_text("#atlas-method-note")
        assert page.is_visible("#atlas-method-note") and "computed in the page" in note and f"{tsne.DIGITS:,}" in note
        page.wait_for_function("document.getElementById('atlas-status').textContent.includes('t-SNE, ')", timeout=READY_MS)
        page.wait_for_function("document.getElementById('atlas').dataset.method === 'tsne'", timeout=3 * READY_MS)
        assert page.get_attribute("#atlas", "data-points") == str(tsne.DIGITS)
        assert page.get_attribute("#atlas", "data-layer") == "hidden_2"
        assert f"computed in the page on the first {tsne.DIGITS:,} test digits" in page.inner_text("#atlas-summary")
        xy = current(page)
        assert np.all(np.isfinite(xy)) and page.is_visible("#atlas-current")
        page.click("#random-sample")  # the dot follows a new digit on the same map
        page.wait_for_function("document.getElementById('atlas-current').dataset.sample !== '3'")
        assert np.all(np.isfinite(current(page))) and page.get_attribute("#atlas", "data-method") == "tsne"
        page.select_option("#atlas-method", "pca")
        page.wait_for_function("document.getElementById('atlas').dataset.method === 'pca'")
        assert page.is_hidden("#atlas-method-note")
        assert w.errors == [] and w.outside == []
    finally:
        context.close()
