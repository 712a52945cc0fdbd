"""The first-visit tour: shown once, skippable, never again once dismissed, reopenable."""

from __future__ import annotations

import pytest

from conftest import watch
from pyscript_app.views import tour


@pytest.fixture()
def first_visit(browser, site_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    w = watch(context, site_server.url, first_visit=True)
    assert w.goto("") == "ready", w.page.inner_text("#status")
    yield w
    assert w.errors == [] and w.outside == []
    context.close()


def shown_step(page):
    page.wait_for_selector("#tour:not([hidden])")
    return int(page.get_attribute("#tour", "data-step"))


def test_steps_point_at_parts_of_the_page(first_visit):
    page = first_visit.page
    assert 4 <= len(tour.STEPS) <= 6
    assert shown_step(page) == 0
    assert page.evaluate("document.activeElement.id") == "tour"  # announced: focus moves into the dialog
    for i, step in enumerate(tour.STEPS):
        assert shown_step(page) == i
        assert page.inner_text("#tour-title") == step.title
        assert page.locator(step.target).first.evaluate("n => n.classList.contains('tour-target')")
        # in sight: what the step points at is scrolled into the window
        assert page.locator(step.target).first.evaluate(
            "n => { const r = n.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }"), step.title
        if i == 0:  # what step 1 invites: another digit redraws the view, and the highlight stays
            before = page.get_attribute("#input-image", "data-sample-index")
            page.click("#random-sample")
            page.wait_for_function("i => document.getElementById('input-image').dataset.sampleIndex !== i", arg=before)
            assert page.locator(step.target).first.evaluate("n => n.classList.contains('tour-target')")
            page.wait_for_selector("#view[data-warm='done']")  # the idle warm-up redraws the view too
            assert page.locator(step.target).first.evaluate("n => n.classList.contains('tour-target')")
        box = page.locator("#tour").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1400
        page.click('#tour [data-tour="next"]' if i < len(tour.STEPS) - 1 else '#tour [data-tour="done"]')
    assert page.is_hidden("#tour")
    assert page.evaluate("document.querySelectorAll('.tour-target').length") == 0


def test_dismissed_once_it_never_shows_again_and_reopens(first_visit):
    page = first_visit.page
    shown_step(page)
    page.click('#tour [data-tour="next"]')
    page.click('#tour [data-tour="back"]')
    assert shown_step(page) == 0
    page.keyboard.press("Escape")
    assert page.is_hidden("#tour")
    page.reload()
    page.wait_for_function("document.body.dataset.ready === 'true'")
    page.wait_for_timeout(300)
    assert page.is_hidden("#tour")
    page.click("#tour-open")
    assert shown_step(page) == 0
    page.click('#tour [data-tour="skip"]')
    assert page.is_hidden("#tour")
    assert page.evaluate("document.activeElement.id") == "tour-open"  # focus back where it was
