"""End to end: a runtime file that is missing, truncated or corrupted ends the start-up in a
readable message naming the file, and the page is plainly marked as not running.

Each case breaks one file in a copy of the site (served 200 as it is, or 404 when missing) and
loads the page in headless Chromium. The time to the message is printed (run with -s to see
it), not asserted: the wait is generous so that a loaded machine cannot make the test flaky.
"""

from __future__ import annotations

import time

import pytest

from conftest import SITE, Server, default_model_dir, site_copy, watch

SETTLE_MS = 30_000


def numpy_wheel() -> str:
    return next(p.name for p in (SITE / "vendor" / "pyodide").glob("numpy-*.whl"))


RUNTIME_FILES = [
    "vendor/pyodide/pyodide.asm.wasm",
    "vendor/pyodide/pyodide.asm.js",
    "vendor/pyodide/python_stdlib.zip",
    "vendor/pyodide/pyodide.mjs",
    f"vendor/pyodide/{numpy_wheel()}",
    "vendor/pyscript/core.js",
    "app/pyscript_app.zip",
]


def damage(root, rel: str, how: str) -> None:
    """Break site file `rel` in the copy `root`: missing, truncated (half of it) or corrupted
    (a run of bytes in the middle inverted, same size)."""
    path = root / rel
    data = bytearray(path.read_bytes())
    path.unlink()  # a link into the shared vendored runtime: never write through it
    if how == "missing":
        return
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        for i in range(middle, min(middle + 64, len(data))):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def load(browser, root, words=()):
    """Load the page from `root`; (page facts, seconds to settle, watcher). `words`: what the message
    should hold; it is waited for a while (a damaged file's check can end just after another error
    was shown, and replaces it), then the test's own assertions say what is there."""
    server = Server(root)
    context = browser.new_context()
    try:
        w = watch(context, server.url)
        started = time.monotonic()
        w.goto("", wait_ready=False)
        w.page.wait_for_function("document.getElementById('status').dataset.state !== 'loading'", timeout=SETTLE_MS)
        try:
            w.page.wait_for_function("(words) => words.every((word) => document.getElementById('status-text').textContent.includes(word))",
                                     arg=list(words), timeout=SETTLE_MS)
        except Exception:  # not there: the assertions below show the message
            pass
        seconds = time.monotonic() - started
        facts = w.page.evaluate("""() => ({
            state: document.getElementById('status').dataset.state,
            text: document.getElementById('status-text').textContent,
            role: document.getElementById('status').getAttribute('role'),
            ready: document.body.dataset.ready,
            notice: (() => { const n = document.getElementById('not-running');
                             return n && !n.hidden && n.getBoundingClientRect().height > 0 ? n.textContent : null; })(),
            viewOpacity: +getComputedStyle(document.querySelector('.workspace')).opacity,
            buttonsEnabled: [...document.querySelectorAll('.controls button')].filter(b => !b.disabled && !b.hidden).length,
            hint: getComputedStyle(document.getElementById('hint')).display,
        })""")
        return facts, seconds, w
    finally:
        context.close()
        server.close()


def check_not_running(facts):
    """The failure is unmistakable: an alert, the view greyed under a visible notice that says what to do."""
    assert facts["state"] == "error" and facts["role"] == "alert"
    assert facts["ready"] == "failed"
    assert facts["notice"] and "Not running" in facts["notice"] and "Reload" in facts["notice"]
    assert facts["viewOpacity"] < 0.5
    assert facts["buttonsEnabled"] == 0
    assert facts["hint"] == "none"  # no "buttons work once the status says Ready" under an error


@pytest.mark.parametrize("how", ["missing", "truncated", "corrupted"])
@pytest.mark.parametrize("rel", RUNTIME_FILES, ids=lambda rel: rel.split("/")[-1].split("-")[0])
def test_a_damaged_runtime_file_is_named(browser, tmp_path, rel, how):
    root = site_copy(tmp_path)
    damage(root, rel, how)
    name = rel.split("/")[-1]
    facts, seconds, w = load(browser, root, [name] if how == "missing" else [name, "damaged"])
    print(f"\n{how} {rel}: message after {seconds:.1f} s: {facts['text']}")
    assert name in facts["text"], facts["text"]
    if how == "missing":
        assert "404" in facts["text"] or "failed to load" in facts["text"], facts["text"]
    else:
        assert "damaged" in facts["text"] and "integrity check failed" in facts["text"], facts["text"]
        assert how in facts["text"], facts["text"]  # "truncated" or "corrupted": what is wrong with it
    check_not_running(facts)
    assert w.outside == []


def test_a_live_page_is_not_marked_as_failed(app):
    """The other side of the marking: a page that started is not greyed and has no notice."""
    facts = app.page.evaluate("""() => ({
        ready: document.body.dataset.ready,
        notice: !!document.getElementById('not-running') && !document.getElementById('not-running').hidden,
        viewOpacity: +getComputedStyle(document.querySelector('.workspace')).opacity,
    })""")
    assert facts == {"ready": "true", "notice": False, "viewOpacity": 1}


def test_an_error_set_by_python_marks_the_page_not_running_too(browser, tmp_path):
    """The marking follows the status, whoever sets the error: here the Python loader (a weight
    file of the export that is missing)."""
    root = site_copy(tmp_path)
    model = root / default_model_dir().relative_to(SITE)
    victim = sorted(model.glob("*_bias.npy"))[-1]
    victim.unlink()
    facts, seconds, w = load(browser, root, [victim.name])
    print(f"\nmissing {victim.name}: message after {seconds:.1f} s: {facts['text']}")
    assert victim.name in facts["text"], facts["text"]
    check_not_running(facts)
