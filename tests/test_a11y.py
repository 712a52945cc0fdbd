"""Accessibility, checked by a real tool: axe-core (from npm) on the page's main states.

axe runs inside the page, so its script is added to it; the test context
bypasses the Content Security Policy for that one inline script (the page
itself still runs under its policy in every other test). A serious or
critical violation fails the test, with axe's own description of each.
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, watch

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")


@pytest.fixture(scope="module")
def a11y(browser, site_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    w = watch(context, site_server.url)
    assert w.goto("#sample=5") == "ready", w.page.inner_text("#status")
    yield w
    assert w.outside == []
    context.close()


def violations(page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in FAILING]


def check(page, what: str):
    found = violations(page)
    assert found == [], f"{what}: axe-core found\n" + json.dumps(found, indent=1)


def hash_to(w, text, selector):
    w.page.evaluate(f"location.hash = {json.dumps(text)}")
    w.page.wait_for_selector(selector, state="attached")


def test_first_view(a11y):
    check(a11y.page, "first view")


def test_neuron_card_open(a11y):
    first = a11y.page.get_attribute("#view .neuron", "data-layer")
    hash_to(a11y, f"#sample=5&neuron={first}:1", "#neuron-card")
    check(a11y.page, "neuron card")
    hash_to(a11y, "#sample=5", "#view")


def test_draw_mode(a11y):
    hash_to(a11y, "#mode=draw", "#draw-panel:not([hidden])")
    check(a11y.page, "draw mode")
    hash_to(a11y, "#sample=5", "#draw-panel[hidden]")


def test_error_explorer(a11y):
    a11y.page.click("#errors-toggle")
    a11y.page.wait_for_selector("#confusion-matrix")
    check(a11y.page, "error explorer")
    a11y.page.click("#errors-toggle")
