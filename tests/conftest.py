"""Shared fixtures. Browser fixtures live in tests/browser.py (imported by e2e tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
sys.path.insert(0, str(ROOT))

from pyscript_app import network as nw  # noqa: E402


@pytest.fixture(scope="session")
def export():
    """The committed export: (network, testset)."""
    return nw.read_export_dir(SITE / "model")


def default_model_dir() -> Path:
    """The folder of the model the page shows by default (its manifest.json and .npy files)."""
    return SITE / "model"


def read_default_model():
    """(network, testset) of the model the page shows by default."""
    return nw.read_export_dir(default_model_dir())


@pytest.fixture(scope="session")
def network(export):
    return export[0]


@pytest.fixture(scope="session")
def testset(export):
    return export[1]


@pytest.fixture(scope="session")
def manifest(network):
    return network.manifest


# --- the browser ------------------------------------------------------------------------

import functools  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import browser as chromium  # noqa: E402  (tools/browser.py)
from browser import CHROMIUM_FLAGS, chromium_executable  # noqa: E402,F401  (re-exported for tests)
import serve  # noqa: E402

READY_TIMEOUT_MS = 90_000


class Server:
    """tools/serve.py's server on a free port, in a thread."""

    def __init__(self, root: Path):
        self.root = root
        self.httpd = serve.make_server(root, port=0)
        self.requests = []  # (path, HTTP status) of every request answered, in order
        requests, handler = self.requests, self.httpd.RequestHandlerClass  # functools.partial(class, ...)

        class Recording(handler.func):
            def log_request(self, code="-", size="-"):
                requests.append((self.path.split("?")[0], int(code)))
                super().log_request(code, size)

        self.httpd.RequestHandlerClass = functools.partial(Recording, *handler.args, **handler.keywords)
        self.url = serve.url_of(self.httpd)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    b = chromium.launch(playwright_instance)
    yield b
    b.close()


@dataclass
class Watched:
    """A page with every outside request aborted and recorded, and its errors collected."""

    page: object
    base: str
    outside: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # uncaught exceptions and console errors

    def goto(self, path: str = "", wait_ready: bool = True):
        """Open the page; unless told not to, wait until it is ready or failed and return that state."""
        self.page.goto(self.base + path)
        return self.wait_settled() if wait_ready else None

    def wait_settled(self):
        self.page.wait_for_function(
            "document.getElementById('status').dataset.state !== 'loading'", timeout=READY_TIMEOUT_MS
        )
        return self.page.get_attribute("#status", "data-state")


def watch(context, base: str, intercept: bool = True) -> Watched:
    """A new page of `context` whose errors and requests outside `base` are recorded.

    intercept=True aborts outside requests (routing); Playwright then bypasses the browser's
    HTTP cache. intercept=False only records them and leaves the HTTP cache working."""
    page = context.new_page()
    w = Watched(page, base)

    def inside(url: str) -> bool:
        return url.startswith(base) or url.startswith("data:")

    def route(r):
        if inside(r.request.url):
            r.continue_()
        else:
            w.outside.append(r.request.url)
            r.abort()

    if intercept:
        context.route("**/*", route)
    else:
        context.on("request", lambda r: inside(r.url) or w.outside.append(r.url))
    page.on("pageerror", lambda e: w.errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and w.errors.append(f"console: {m.text}"))
    return w


@pytest.fixture(scope="session")
def site_server():
    s = Server(SITE)
    yield s
    s.close()


@pytest.fixture(scope="session")
def app(browser, site_server):
    """One loaded page shared by many tests (a cold load costs seconds)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    w = watch(context, site_server.url)
    state = w.goto("")
    assert state == "ready", w.page.inner_text("#status")
    yield w
    context.close()


def site_copy(tmp_path: Path) -> Path:
    """A copy of site/ to break on purpose (the vendored runtime is linked, not copied)."""
    copy = tmp_path / "site"
    shutil.copytree(SITE, copy, ignore=shutil.ignore_patterns("vendor"))
    for part in ("pyscript", "pyodide"):
        (copy / "vendor" / part).mkdir(parents=True)
        for f in (SITE / "vendor" / part).iterdir():
            (copy / "vendor" / part / f.name).symlink_to(f)
    return copy


def rehash_runtime_files(root: Path) -> None:
    """After changing a runtime file of a site copy on purpose, record its new sha256 in the
    copy's index.html, as a rebuild would (site/loader.js would otherwise call it damaged)."""
    import re

    import build_site

    index = root / "index.html"
    block = build_site.data_block("runtime-files", build_site.runtime_files(root))
    page, n = re.subn(r'<script type="application/json" id="runtime-files">.*?</script>', lambda _: block, index.read_text())
    assert n == 1, "index.html has no runtime-files block"
    index.write_text(page)
