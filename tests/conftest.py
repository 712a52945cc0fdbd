"""Shared fixtures. Browser fixtures live in tests/browser.py (imported by e2e tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import json

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

from pyscript_app.core import network as nw  # noqa: E402

import fake_exports  # noqa: E402  (tests/fake_exports.py)

#: every committed model (site/models/index.json) and the small random ones made by the tests
SHIPPED = json.loads((SITE / "models" / "index.json").read_text())["models"]
MODELS = [*SHIPPED, *fake_exports.SHAPES, *fake_exports.CNN_SHAPES]


@pytest.fixture(scope="session")
def fake_models(tmp_path_factory) -> Path:
    """A models/ folder holding the test-made exports (tests/fake_exports.py)."""
    folder = tmp_path_factory.mktemp("fake") / "models"
    fake_exports.write_models(folder)
    return folder


@pytest.fixture(scope="session", params=MODELS)
def model_dir(request, fake_models) -> Path:
    """The folder of one model: each committed one, then each test-made one."""
    if request.param in SHIPPED:
        return SITE / "models" / request.param
    return fake_models / request.param


@pytest.fixture(scope="session")
def model_id(model_dir) -> str:
    return model_dir.name


@pytest.fixture(scope="session")
def export(model_dir):
    """(network, testset) of one model (see model_dir) with the committed test digits.

    As the page does, a layer whose export states no activation_stats gets them computed."""
    from pyscript_app.core import explain

    network, testset = nw.read_export_dir(model_dir, SITE / "data")
    explain.fill_activation_stats(network, testset)
    return network, testset


@pytest.fixture(scope="session")
def seed_export():
    """The default committed model and the test digits."""
    return nw.read_site(SITE)


def pinned_to_default():
    """``network``, ``testset`` and ``manifest`` fixtures of the default committed model, for a test module
    whose tests spell out that model's layers and sizes (or need a trained network):
    ``network, testset, manifest = pinned_to_default()`` in the module.

    They are module-scoped and ``manifest`` is overridden with them: a session-scoped fixture
    computed from the pinned ``network`` would otherwise stay cached for the rest of the session
    and be handed to the tests of every model (pytest keys a fixture's cache on its own
    parameters, not on its dependencies'), and one that tried now fails loudly (ScopeMismatch)."""

    @pytest.fixture(scope="module", name="network")
    def network_fixture(seed_export):
        return seed_export[0]

    @pytest.fixture(scope="module", name="testset")
    def testset_fixture(seed_export):
        return seed_export[1]

    @pytest.fixture(scope="module", name="manifest")
    def manifest_fixture(network):
        return network.manifest

    return network_fixture, testset_fixture, manifest_fixture


def default_model_dir() -> Path:
    """The folder of the model the page shows by default (its manifest.json and .npy files)."""
    return SITE / "models" / DEFAULT_MODEL


def read_default_model():
    """(network, testset) of the model the page shows by default."""
    return nw.read_site(SITE)


@pytest.fixture(scope="session")
def network(export):
    return export[0]


@pytest.fixture(scope="session")
def testset(seed_export):
    """The committed test digits: the same for every model, so tests that need only them run once."""
    return seed_export[1]


@pytest.fixture(scope="session")
def manifest(network):
    return network.manifest


# --- the browser ------------------------------------------------------------------------

import contextlib  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import browser as chromium  # noqa: E402  (tools/browser.py)
from browser import CHROMIUM_FLAGS, chromium_executable  # noqa: E402,F401  (re-exported for tests)
import serve  # noqa: E402

READY_TIMEOUT_MS = 90_000


def as_a_background_job() -> None:
    """``preexec_fn`` of a subprocess that starts with SIGINT ignored, as a shell's background job
    (``cmd &``) or a CI runner starts it; Ctrl-C must stop the servers started that way too."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        if self.thread.is_alive():  # (closing twice is fine: a test may stop its server early)
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


CRASHED = "Target crashed"  # Playwright's word for a page whose renderer process died


class SharedChromium:
    """This worker's Chromium, as the tests' ``browser``: it opens contexts like a Playwright Browser.

    A test whose page crashed runs once more (pyproject.toml). Once a crash is reported (see
    pytest_runtest_makereport), the next context opens in a newly launched Chromium, so that a
    browser left in a bad state cannot fail the rerun too; the pages already open stay where they
    are, and every Chromium launched is closed at the end."""

    def __init__(self, playwright):
        self.playwright = playwright
        self.launched = [chromium.launch(playwright)]
        self.relaunch = False

    def new_context(self, **kwargs):
        if self.relaunch:
            self.launched.append(chromium.launch(self.playwright))
            self.relaunch = False
        return self.launched[-1].new_context(**kwargs)

    def close(self):
        for b in self.launched:
            b.close()


SHARED_CHROMIUM: list[SharedChromium] = []


@pytest.fixture(scope="session")
def browser(playwright_instance):
    b = SharedChromium(playwright_instance)
    SHARED_CHROMIUM.append(b)
    yield b
    SHARED_CHROMIUM.remove(b)
    b.close()


def machine_now() -> str:
    """What a crash report needs to tell a browser's fault from the machine's: memory and processes."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    procs = [p for p in Path("/proc").iterdir() if p.name.isdigit()]

    def named(p):
        try:
            return (p / "comm").read_text().strip()
        except OSError:
            return ""

    names = [named(p) for p in procs]
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    return (f"MemAvailable {info.get('MemAvailable', '?').strip()}, MemTotal {info.get('MemTotal', '?').strip()}; "
            f"/dev/shm {shm.free >> 20 if shm else '?'} MB free of {shm.total >> 20 if shm else '?'}; "
            f"{len(procs)} processes, {sum('chrom' in n for n in names)} Chromium, "
            f"{sum('firefox' in n.lower() or 'Web Content' in n for n in names)} Firefox, "
            f"{sum('WebKit' in n for n in names)} WebKit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After a report of a crashed page: the machine's state in the report, and new Chromium contexts
    in a new browser (SharedChromium)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and CRASHED in report.longreprtext:
        report.sections.append(("Chromium crash", machine_now()))
        for b in SHARED_CHROMIUM:
            b.relaunch = True


@dataclass
class Watched:
    """A page with every outside request aborted and recorded, and its errors collected."""

    page: object
    base: str
    outside: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # uncaught exceptions and console errors
    model: str | None = None  # the model every goto() asks for (None: the site's default)
    crashed: bool = False  # its renderer process died (Playwright's "crash" event)
    reload: object = None  # for a shared page: loads a new one like it (conftest.app)

    def goto(self, path: str = "", wait_ready: bool = True):
        """Open the page (with ``#model=`` of ``self.model`` first in the hash); unless told not to,
        wait until it is ready or failed and return that state."""
        if self.model is not None and not path.startswith("#model="):
            rest = path[1:] if path.startswith("#") else path
            path = f"#model={self.model}" + (f"&{rest}" if rest else "")
        self.page.goto(self.base + path)
        return self.wait_settled() if wait_ready else None

    def hash(self, rest: str = "") -> str:
        """The address of ``#rest`` for this page's model, as the page writes it (the model first)."""
        rest = rest.lstrip("#")
        if self.model is None:
            return f"#{rest}" if rest else ""
        return f"#model={self.model}" + (f"&{rest}" if rest else "")

    def wait_settled(self):
        self.page.wait_for_function(
            "document.getElementById('status').dataset.state !== 'loading'", timeout=READY_TIMEOUT_MS
        )
        return self.page.get_attribute("#status", "data-state")


# The drawing pad's own RGBA pixels, as a script body (arguments-free): [width, height, base64].
# Base64 in one string: the same pixels as a JSON array of numbers took seconds per read.
PAD_PIXELS_JS = """const c = document.getElementById('draw-pad'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let s = '';
for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
return [c.width, c.height, btoa(s)];"""


def pad_rgba(answer):
    """PAD_PIXELS_JS's answer as an (h, w, 4) uint8 array."""
    import base64

    import numpy as np

    w, h, data = answer
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(h, w, 4)


TOUR_SEEN = "try { localStorage.setItem('nnv-tour-dismissed', 'true'); } catch (e) {}"  # (storage can be off limits, about:blank)


def watch(context, base: str, intercept: bool = True, model: str | None = None, first_visit: bool = False) -> Watched:
    """A new page of `context` whose errors and requests outside `base` are recorded.

    intercept=True aborts outside requests (routing); Playwright then bypasses the browser's
    HTTP cache. intercept=False only records them and leaves the HTTP cache working.
    Unless first_visit, the page is a returning visitor's: it has dismissed the tour."""
    if not first_visit:
        context.add_init_script(TOUR_SEEN)
    page = context.new_page()
    w = Watched(page, base, model=None if model == DEFAULT_MODEL else model)

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
    page.on("crash", lambda _: setattr(w, "crashed", True))
    return w


DEFAULT_MODEL = json.loads((SITE / "models" / "index.json").read_text())["default"]


def add_models(site: Path, models: Path) -> Path:
    """site/ with the exports in ``models`` added to its models/ folder and its index.json."""
    index_path = site / "models" / "index.json"
    index = json.loads(index_path.read_text())
    for folder in sorted(models.iterdir()):
        shutil.copytree(folder, site / "models" / folder.name)
        index["models"].append(folder.name)
    index_path.write_text(json.dumps(index))
    return site


@pytest.fixture(scope="session")
def test_site(tmp_path_factory, fake_models) -> Path:
    """A copy of site/ whose models/ also holds the test-made models (listed in its index.json)."""
    return add_models(site_copy(tmp_path_factory.mktemp("site")), fake_models)


@pytest.fixture(scope="session")
def site_server(test_site):
    s = Server(test_site)
    yield s
    s.close()


@pytest.fixture(scope="session")
def app(browser, site_server, model_id):
    """One loaded page of one model (see model_dir) shared by many tests (a cold load costs seconds).
    If its page crashes, the test's rerun finds it loaded again (reopen_a_crashed_app)."""
    def load() -> Watched:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        w = watch(context, site_server.url, model=model_id)
        state = w.goto("")
        assert state == "ready", w.page.inner_text("#status")
        return w

    w = load()
    w.reload = load
    yield w
    w.page.context.close()


@pytest.fixture(autouse=True)
def reopen_a_crashed_app(request):
    """Before a test of a shared page whose renderer crashed in an earlier test: the page is loaded
    again in a new context, so that one crash fails one test (which runs once more), not every one after it."""
    if "app" in request.fixturenames:
        w = request.getfixturevalue("app")
        if isinstance(w, Watched) and w.crashed and w.reload:
            w.page.context.close()
            fresh = w.reload()
            w.page, w.outside, w.errors, w.crashed = fresh.page, fresh.outside, fresh.errors, False
            w.page.on("crash", lambda _: setattr(w, "crashed", True))


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


@contextlib.contextmanager
def offline_after_a_visit(browser, root: Path = SITE):
    """A first visit of the site in ``root``, until its offline copy is installed: yields (server, watched page).
    Going offline is the test's: ``server.close()`` and ``w.page.context.set_offline(True)``."""
    server = Server(root)
    context = browser.new_context()
    try:
        w = watch(context, server.url)
        assert w.goto("") == "ready"
        w.page.wait_for_selector("#offline-ready:not([hidden])", timeout=READY_TIMEOUT_MS)
        yield server, w
    finally:
        context.close()
        server.close()


def cnn_page_of(browser, server, test_site, address: str, model: str = "tiny-cnn"):
    """(a loaded page of a CNN test export at ``address``, its layers by tests/reference.py, the test images),
    for a module's shared page; the caller closes ``w.page.context`` after checking ``w.errors`` and ``w.outside``."""
    import numpy as np

    import reference

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    w = watch(context, server.url, model=model)
    assert w.goto(address) == "ready", w.page.inner_text("#status")
    _, layers = reference.load_layers(test_site / "models" / model)
    with np.load(test_site / "data" / "mnist_test.npz") as npz:
        images = npz["images"]
    return w, layers, images


# --- the shipped CNN's share of the per-model tests -----------------------------------------


def _is_cnn(model_id: str) -> bool:
    manifest = json.loads((SITE / "models" / model_id / "manifest.json").read_text())
    return any(layer.get("kind") == "conv2d" for layer in manifest["layers"])


#: the committed convolutional models: one pass of the tests' plain-loop reference (tests/reference.py) over the
#: 10,000 test digits costs seconds with one of them, against a fraction of a second with the random tiny-cnn
SHIPPED_CNNS = [m for m in SHIPPED if _is_cnn(m)]


def on_the_shipped_cnn(*cases: dict):
    """Mark a per-model test whose parameter grid runs in full on every other model (tiny-cnn's random weights
    take the same code paths), and on a shipped CNN only in ``cases``: each a dict of parameter values as the
    test's parametrize names them (``{}``: the test's one case). No case: the test leaves the shipped CNN out.
    The cases left out are deselected at collection (pytest's summary counts them), never skipped."""
    return pytest.mark.big_model_cases(cases=cases)


def pytest_configure(config):
    config.addinivalue_line("markers", "big_model_cases(cases): the cases a per-model test runs on a shipped CNN (conftest.on_the_shipped_cnn)")


def pytest_collection_modifyitems(config, items):
    """Deselect the cases of a shipped CNN that its test's on_the_shipped_cnn mark does not name."""
    kept, left_out = [], []
    for item in items:
        mark = item.get_closest_marker("big_model_cases")
        params = item.callspec.params if hasattr(item, "callspec") else {}
        model = params.get("model_dir", params.get("model_id"))
        if mark is None or model not in SHIPPED_CNNS or any(
                all(k in params and params[k] == v for k, v in case.items()) for case in mark.kwargs["cases"]):
            kept.append(item)
        else:
            left_out.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
