"""The first-visit tour: shown once, skippable, never again once dismissed, reopenable."""

from __future__ import annotations

import pytest

from conftest import watch
from pyscript_app.views import tour


WIDTH, HEIGHT = 1280, 800  # a laptop's window: the panel cannot stay in one corner and keep clear of every step

# the area of the tour's panel over what its step talks about (the nodes a selector matches), within the window
COVERED = """selector => { const b = document.getElementById('tour').getBoundingClientRect(); let area = 0;
  for (const n of document.querySelectorAll(selector)) { const r = n.getBoundingClientRect();
    area += Math.max(0, Math.min(b.right, r.right, innerWidth) - Math.max(b.left, r.left, 0))
          * Math.max(0, Math.min(b.bottom, r.bottom, innerHeight) - Math.max(b.top, r.top, 0)); }
  return area; }"""


@pytest.fixture()
def first_visit(browser, site_server):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
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
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
        if i != 1:  # (step 2 talks about every layer: the panel covers some wherever it goes)
            # the panel does not cover what the step talks about: the answer's bar and the verdict, the grid of
            # neurons to click, the why panel's map, Fool it and the curves (in whichever corner keeps clear)
            assert page.evaluate(COVERED, step.keep_clear or step.target) == 0, (step.title, page.get_attribute("#tour", "data-corner"))
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


def test_the_panel_takes_the_corner_that_covers_least():
    window, panel = (1000, 800), (300, 200)
    assert tour.corner_clear_of([], panel, window) == "bottom-right"
    # something in the bottom right: the panel goes left; something along the bottom: it goes up
    assert tour.corner_clear_of([(800, 700, 900, 750)], panel, window) == "bottom-left"
    assert tour.corner_clear_of([(0, 600, 1000, 700)], panel, window) == "top-right"
    assert tour.corner_clear_of([(0, 600, 1000, 700), (900, 0, 1000, 100)], panel, window) == "top-left"
    # everything covered somewhere: the least of it
    assert tour.corner_clear_of([(0, 0, 1000, 800), (0, 0, 500, 800)], panel, window) == "bottom-right"
