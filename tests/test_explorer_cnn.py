"""End to end: the error explorer of a convolutional network (tests/fake_exports.py's tiny-cnn, conftest's
test site), with a channel knocked out: its pass over the test set runs in idle time with progress shown,
and ends in the confusion matrix of tests/reference.py's plain-loop pass with that channel's maps zeroed."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import reference as ref
from conftest import READY_TIMEOUT_MS, watch

MODEL = "tiny-cnn"
KNOCKED = ("conv_2", 4)

LONG_TASKS_JS = """
() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
    .observe({ type: 'longtask', buffered: false });
}
"""


@pytest.fixture(scope="module")
def expected(test_site):
    """The reference's confusion matrix of tiny-cnn with KNOCKED's channel zeroed, and each digit's margin
    (its two highest probabilities apart: a digit whose two are within float noise may go either way)."""
    manifest, layers = ref.load_chain(test_site / "models" / MODEL)
    with np.load(test_site / "data" / "mnist_test.npz") as npz:
        images, labels = npz["images"], npz["labels"].astype(np.intp)
    x = images.reshape(len(images), -1).astype(np.float32) * np.float32(manifest["input"]["normalization"]["scale"])
    names = [layer["name"] for layer in layers]
    out = ref.forward_chain(layers, x, dead={names.index(KNOCKED[0]): [KNOCKED[1]]}, rounded=np.float32, peaks=True)[-1]
    top2 = np.sort(out, axis=1)[:, -2:]
    predicted = out.argmax(axis=1)
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (labels, predicted), 1)
    return cm, labels, predicted, top2[:, 1] - top2[:, 0]


@contextlib.contextmanager
def knocked_out_page(browser, site_server, script: str):
    """A fresh page of tiny-cnn with KNOCKED's channel knocked out (its pass over the test set not run yet),
    ``script`` run in it once it is ready."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    w = watch(context, site_server.url, model=MODEL)
    assert w.goto(f"#sample=3&ko={KNOCKED[0]}:{KNOCKED[1]}") == "ready", w.page.inner_text("#status")
    w.page.evaluate(script)
    yield w
    assert w.errors == [] and w.outside == []
    context.close()


def test_a_cnn_explorer_shows_progress_then_the_reference_matrix(browser, site_server, expected):
    with knocked_out_page(browser, site_server, LONG_TASKS_JS) as w:
        page = w.page
        page.click("#errors-toggle")
        # the knock-out's pass (and maybe still the intact network's) runs in idle time, its progress shown
        page.wait_for_selector("#explorer-progress-text", timeout=READY_TIMEOUT_MS)
        done, total = (int(page.get_attribute("#explorer-progress-text", a)) for a in ("data-done", "data-total"))
        assert total == 10_000 and 0 <= done < total
        assert page.locator("#confusion-matrix").count() == 0
        page.wait_for_selector(f"#error-explorer[data-model='{MODEL}'] #confusion-matrix", timeout=240_000)
        assert page.locator("#explorer-progress").count() == 0
        cells = page.eval_on_selector_all("#confusion-matrix .cell", "cs => cs.map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count])")
        got = np.zeros((10, 10), dtype=np.int64)
        for t, p, c in cells:
            got[t, p] = c
        assert got.sum() == 10_000
        cm, labels, predicted, margin = expected
        # equal to the reference's, but for digits whose two highest probabilities are within float noise
        close = margin < 1e-5
        diff = np.abs(got - cm).sum()
        assert diff <= 2 * int(close.sum()), (diff, int(close.sum()))
        assert page.locator("#accuracy-change").count() == 1  # the knock-out compared with the full network
        tasks = sorted(page.evaluate("window.__longTasks"))
        steps = {k: page.get_attribute("#error-explorer", f"data-pass-{k}") for k in ("ms", "steps", "step-max-ms", "step-median-ms")}
        print(f"the explorer's pass: {steps} (Python time); tasks over 50 ms meanwhile: {len(tasks)}, "
              f"the longest {max(tasks, default=0):.0f} ms")
        assert int(steps["steps"]) > 1  # in idle-time steps, not in one go


# Every "(N so far)" a CNN card's sentence shows while its pass over the test set runs, in order.
COUNTS_JS = """
() => {
  window.__soFar = [];
  const read = () => {
    const note = document.getElementById('card-top-later');
    const m = note && note.textContent.match(/\\(([\\d,]+) so far\\)/);
    if (m) window.__soFar.push(+m[1].replace(/,/g, ''));
  };
  new MutationObserver(read).observe(document.getElementById('card-slot'), { subtree: true, childList: true, characterData: true });
}
"""


def test_a_cnn_card_counts_its_pass_over_the_test_set_then_lists_its_top_digits(browser, site_server):
    """A channel's card, opened while its knock-out's pass has not run: its sentence counts the digits
    done as the pass goes on (not a number frozen at the opening), then the nine top digits replace it."""
    with knocked_out_page(browser, site_server, COUNTS_JS) as w:
        page = w.page
        page.click('#view .neuron[data-layer="conv_1"][data-index="0"]')
        page.wait_for_selector('#neuron-card[data-layer="conv_1"] #card-top', timeout=240_000)
        counts = page.evaluate("window.__soFar")
        assert len(set(counts)) >= 3 and counts == sorted(counts) and counts[-1] <= 10_000, counts
        assert len(page.get_attribute("#card-top", "data-samples").split(",")) == 9
