"""Shipping the site: the offline bundle and its launcher, the service worker (offline after one
visit, clean replacement by a new build), the Content Security Policy, the file:// message and the
GitHub Pages workflow.

Browser tests use fresh contexts: a service worker persists per browser context.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import READY_TIMEOUT_MS, ROOT, SITE, Server, as_a_background_job, chromium, offline_after_a_visit, site_copy, watch
import precache


MAKE_DIST = ROOT / "tools" / "make_dist.py"
LAUNCHER_FILES = {"README.txt", "start.py", "serve.py", "start.command", "start.bat", "start.sh"}
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
SETTLED = "() => document.getElementById('status').dataset.state !== 'loading'"  # no eval: works under any CSP


CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
    {directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile}));
"""


def sri(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def click_shows_the_cpython_forward_pass(page, network, testset):
    """Click 'random prediction'; the digit shown changes and its output layer matches CPython's."""
    before = page.get_attribute("#input-image", "data-sample-index")
    page.click("#random-sample")
    page.wait_for_function(f"() => document.getElementById('input-image').dataset.sampleIndex !== '{before}'")
    index = int(page.get_attribute("#input-image", "data-sample-index"))
    expected = network.forward(network.normalize(testset.images[index]))[-1]
    shown = page.eval_on_selector_all(
        '.neuron[data-layer="output"]', "ns => ns.map(n => [+n.dataset.index, +n.dataset.activation])")
    np.testing.assert_allclose([a for _, a in sorted(shown)], expected, atol=1e-6)
    assert int(page.get_attribute("#prediction", "data-digit")) == int(np.argmax(expected))


# --- the offline bundle (make dist) -----------------------------------------------------------


def make_dist(out: Path) -> Path:
    result = subprocess.run([sys.executable, str(MAKE_DIST), "--site", str(SITE), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    zips = list(out.glob("nn-visualizer-*.zip"))
    assert len(zips) == 1 and str(zips[0]) in result.stdout and "MB" in result.stdout
    return zips[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """(zip path, the folder it was unzipped into: the bundle's top folder)."""
    out = tmp_path_factory.mktemp("dist")
    zip_path = make_dist(out)
    target = tmp_path_factory.mktemp("usb-stick")
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(target)
    (top,) = target.iterdir()
    return zip_path, top


def test_zip_holds_the_built_site_and_the_launcher_only(bundle):
    zip_path, top = bundle
    version = precache.read_service_worker(SITE)["version"]
    assert zip_path.name == f"nn-visualizer-{version}.zip" and top.name == f"nn-visualizer-{version}"
    with zipfile.ZipFile(zip_path) as zf:
        names = [i.filename for i in zf.infolist()]
    assert all(n.startswith(top.name + "/") for n in names)
    inside = [n[len(top.name) + 1:] for n in names]
    assert {n for n in inside if "/" not in n} == LAUNCHER_FILES
    site_names = sorted(n[len("site/"):] for n in inside if n.startswith("site/"))
    assert len(site_names) + len(LAUNCHER_FILES) == len(inside)
    junk = [n for n in inside if re.search(r"\.map$|__pycache__|\.pyc$|(^|/)\.|(^|/)tests?/|(^|/)test_[^/]*\.py$"
                                           r"|template|node_modules|\.cache|\.partial$", n)]
    assert junk == []
    for required in ("index.html", "sw.js", "loader.js", "offline.js", "app/pyscript_app.zip", "vendor/pyscript/core.js",
                     "vendor/pyodide/pyodide.asm.wasm", "vendor/pyodide/python_stdlib.zip",
                     "models/index.json", "models/seed/manifest.json", "data/manifest.json", "data/mnist_test.npz",
                     "app/pyscript_app/main.py"):
        assert required in site_names
    # every file is the built one, byte for byte, and the zipped sw.js lists exactly the zipped site
    for rel in site_names:
        assert (top / "site" / rel).read_bytes() == (SITE / rel).read_bytes(), rel
    recorded = precache.read_service_worker(top / "site")
    listed = dict(recorded["files"] + recorded["on_demand"])  # the training digits too, though fetched on demand
    assert sorted(listed) == [n for n in site_names if n != "sw.js"]
    assert all(listed[rel] == sri((top / "site" / rel).read_bytes()) for rel in listed)
    assert (top / "serve.py").read_bytes() == (ROOT / "tools" / "serve.py").read_bytes()


def test_zip_is_deterministic_with_fixed_times_and_modes(bundle, tmp_path):
    zip_path, _ = bundle
    again = make_dist(tmp_path)
    assert again.read_bytes() == zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as zf:
        infos = {i.filename.split("/", 1)[1]: i for i in zf.infolist()}
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
    executable = {n for n, i in infos.items() if (i.external_attr >> 16) & 0o111}
    assert executable == {"start.py", "start.command", "start.sh"}
    assert list(infos) == sorted(infos)


def test_readme_and_helpers_name_the_launcher(bundle):
    _, top = bundle
    readme = (top / "README.txt").read_text()
    assert precache.read_service_worker(SITE)["version"] in readme
    for name in ("start.command", "start.bat", "start.sh", "start.py", "Python 3", "Ctrl-C"):
        assert name in readme
    bat = (top / "start.bat").read_bytes()
    assert b"\r\n" in bat and b"\n" not in bat.replace(b"\r\n", b"")  # cmd.exe wants CRLF throughout
    assert b"start.py" in bat and b"Python 3" in bat
    assert "start.sh" in (top / "start.command").read_text()


class Launched:
    """The bundle's launcher in a subprocess, started with SIGINT ignored (as from a background job:
    Ctrl-C must stop it however it was started); its address is read from what it prints."""

    def __init__(self, cmd, cwd, env=None):
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, preexec_fn=as_a_background_job,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.printed = []
        while True:
            line = self.lines.get(timeout=30)
            if line is None:
                raise AssertionError(f"the launcher ended: {self.proc.stderr.read()}")
            self.printed.append(line)
            match = re.search(r"running at (http://127\.0\.0\.1:(\d+)/)$", line.strip())
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
                break

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stop(self):
        """Ctrl-C; returns (exit status, everything printed after the address, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        rest = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        return self.proc.returncode, "".join(rest), self.proc.stderr.read()


def python3_on_path(tmp_path: Path) -> dict:
    """An environment whose `python3` is this Python (a wrapper script, so no venv tricks)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_launcher_serves_the_unzipped_bundle_and_the_page_works(bundle, browser, seed_export, tmp_path):
    network, testset = seed_export  # the site's default model: what the page starts with
    """start.sh -> start.py on 127.0.0.1; the page loads with every outside request aborted, and works."""
    _, top = bundle
    launched = Launched(["/bin/sh", "start.sh", "--no-browser"], cwd=top, env=python3_on_path(tmp_path))
    try:
        headers = urllib.request.urlopen(launched.url + "vendor/pyodide/pyodide.asm.wasm", timeout=10).headers
        assert headers["Content-Type"] == "application/wasm"
        context = browser.new_context()
        context.add_init_script(CSP_LISTENER)
        try:
            w = watch(context, launched.url)
            fetched = set()
            w.page.on("request", lambda r: fetched.add(r.url[len(launched.url):]))
            assert w.goto("") == "ready", w.page.inner_text("#status")
            click_shows_the_cpython_forward_pass(w.page, network, testset)
            assert w.outside == [] and w.errors == [] and w.page.evaluate("window.__csp") == []
            fetched.discard("")  # the page itself, as /
            assert fetched and [f for f in fetched if not (top / "site" / f).is_file()] == []
        finally:
            context.close()
    finally:
        status, printed, err = launched.stop()
    assert status == 0 and "Stopped." in printed and "Traceback" not in err


def test_launcher_takes_another_free_port_when_the_preferred_one_is_busy(bundle):
    _, top = bundle
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        launched = Launched([sys.executable, "start.py", "--no-browser", "--port", str(port)], cwd=top)
        try:
            assert launched.port not in (port, 0)
            assert any("in use" in line for line in launched.printed)
            page = urllib.request.urlopen(launched.url, timeout=10).read()
            assert page == (top / "site" / "index.html").read_bytes()
        finally:
            status, _, err = launched.stop()
    assert status == 0 and "Traceback" not in err


def test_launcher_opens_the_default_browser_on_its_address(bundle, tmp_path):
    """webbrowser honours $BROWSER: a stand-in browser records the address it was asked to open."""
    _, top = bundle
    seen = tmp_path / "opened.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(f'#!/bin/sh\necho "$1" > "{seen}"\n')
    fake.chmod(0o755)
    launched = Launched([sys.executable, "start.py", "--port", "0"], cwd=top,
                        env={**os.environ, "BROWSER": str(fake), "NNV_NO_BROWSER": ""})
    try:
        for _ in range(300):  # the browser is opened in the background: give it up to 30 s
            if seen.exists() and seen.read_text().endswith("\n"):
                break
            threading.Event().wait(0.1)
        assert seen.read_text().strip() == launched.url
    finally:
        status, _, err = launched.stop()
    assert status == 0 and "Traceback" not in err


def test_launcher_refuses_a_folder_without_the_page(bundle, tmp_path):
    _, top = bundle
    result = subprocess.run([sys.executable, str(top / "start.py"), "--no-browser", "--root", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "index.html" in result.stderr and "Traceback" not in result.stderr


def test_start_py_can_tell_an_old_python_what_it_needs(bundle):
    """start.py parses as old Python 3 syntax, so an old interpreter reaches its version check."""
    import ast

    source = (bundle[1] / "start.py").read_text()
    ast.parse(source, feature_version=(3, 4))
    check = source.index("if sys.version_info < MINIMUM:")
    assert check < source.index("import serve") and "3.7" in source[check:check + 200]


@pytest.mark.parametrize("helper", ["start.sh", "start.command"])
def test_helpers_say_plainly_when_python_3_is_missing(bundle, tmp_path, helper):
    _, top = bundle
    bin_dir = tmp_path / "no-python"
    bin_dir.mkdir()
    for tool in ("dirname", "uname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(["/bin/sh", helper], cwd=top, env={"PATH": str(bin_dir)}, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "needs Python 3" in result.stdout and "none was found" in result.stdout
    assert "install" in result.stdout.lower()


# --- file:// ---------------------------------------------------------------------------------


def test_opening_index_html_as_a_file_says_to_use_the_launcher(bundle, browser):
    _, top = bundle
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto((top / "site" / "index.html").as_uri())
        page.wait_for_selector("#status[data-state=error]", timeout=30_000)
        text = page.inner_text("#status-text")
        assert "file://" in text and "README.txt" in text
        named = set(re.findall(r"start\.(?:py|command|bat|sh)", text))
        assert named == {"start.py", "start.command", "start.bat", "start.sh"}
        assert all((top / name).is_file() for name in named | {"README.txt"})  # they really are next to site/
        assert page.get_attribute("#status", "role") == "alert"
    finally:
        context.close()


# --- the service worker: offline after one visit ----------------------------------------------


def wait_offline_ready(page) -> str:
    page.wait_for_selector("#offline-ready:not([hidden])", timeout=READY_TIMEOUT_MS)
    return page.get_attribute("#offline-ready", "data-version")


def test_the_first_visit_downloads_each_file_once_offline_copy_included(playwright_instance, tmp_path):
    """The service worker stores what the page has just downloaded (from the HTTP cache, checked
    against the build's sha256) instead of asking the server for every file a second time.
    A profile on disk, as a user's browser has (an in-memory cache may not keep the 10 MB wasm)."""
    server = Server(SITE)
    context = chromium.launch_persistent(playwright_instance, tmp_path / "profile")
    try:
        w = watch(context, server.url, intercept=False)  # routing would switch the HTTP cache off
        assert w.goto("") == "ready"
        assert wait_offline_ready(w.page) == precache.read_service_worker(SITE)["version"]
        paths = [path for path, _ in server.requests]
        assert sorted({p for p in paths if paths.count(p) > 1}) == []
        assert all(status == 200 for _, status in server.requests), server.requests
        cached = {"/" + rel for rel, _ in precache.read_service_worker(SITE)["files"]}
        assert cached <= set(paths) | {"/index.html"}  # the offline copy holds every file, each downloaded once
        assert not {"/" + rel for rel in precache.on_demand_files(SITE)} & set(paths)  # but not the training digits
        assert w.errors == [] and w.outside == []
    finally:
        context.close()
        server.close()


def test_second_visit_works_offline_with_no_csp_violation(browser, seed_export):
    network, testset = seed_export  # the site's default model: what the page starts with
    """Load once, go offline with the server gone, reload: the page starts and works from the
    service worker's cache. No CSP violation on either visit (the second takes other paths:
    PyScript's cached lock file), and the policy is enforced."""
    server = Server(SITE)
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        w = watch(context, server.url)
        assert w.goto("") == "ready"
        click_shows_the_cpython_forward_pass(w.page, network, testset)
        assert wait_offline_ready(w.page) == precache.read_service_worker(SITE)["version"]
        assert w.page.evaluate("window.__csp") == []
        served = []
        w.page.on("response", lambda r: served.append((r.url, r.status, r.from_service_worker)))
        server.close()
        context.set_offline(True)
        w.page.reload()
        assert w.wait_settled() == "ready", w.page.inner_text("#status")
        click_shows_the_cpython_forward_pass(w.page, network, testset)
        assert served and all(status == 200 and from_sw for _, status, from_sw in served), served
        assert w.page.is_visible("#offline-ready")
        assert w.page.evaluate("window.__csp") == []
        assert w.outside == [] and w.errors == []
        # The policy is enforced and the listener hears it: a request elsewhere is refused.
        w.page.evaluate("fetch('http://127.0.0.2:9/').catch(() => null)")
        w.page.wait_for_function("() => window.__csp.length > 0")
        assert w.page.evaluate("window.__csp")[0]["directive"] == "connect-src"
    finally:
        context.close()


UPDATE_NOW = """async () => {
    const registration = await navigator.serviceWorker.getRegistration();
    await registration.update();
    const worker = registration.installing;
    if (!worker) return "no new worker";
    if (worker.state !== "installing") return worker.state;
    await new Promise((done) => worker.addEventListener("statechange", () => worker.state !== "installing" && done()));
    return worker.state;
}"""


def stored(page, version: str) -> list[str]:
    """The paths in the service worker's cache of a build."""
    return sorted(page.evaluate(
        "async (name) => (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname)",
        f"nn-visualizer-{version}"))


def test_a_new_build_replaces_the_cached_one_and_builds_never_mix(browser, tmp_path):
    root = site_copy(tmp_path)
    server = Server(root)
    context = browser.new_context()
    index = root / "index.html"
    try:
        w = watch(context, server.url)
        assert w.goto("") == "ready"
        first = wait_offline_ready(w.page)
        files_of_first = sorted("/" + rel for rel, _ in precache.read_service_worker(root)["files"])

        # A new build is deployed, but one of its files is not the one its sw.js lists
        # (a half-updated server): the new build is never installed, the old one stays.
        marked = index.read_text().replace("<footer>", '<footer><p id="build-marker">second build</p>')
        index.write_text(marked)
        second = precache.write_service_worker(root)["version"]
        assert second != first
        index.write_text(marked.replace("second build", "tampered build"))
        assert w.page.evaluate(UPDATE_NOW) == "redundant"
        assert stored(w.page, first) == files_of_first  # the old build: whole
        assert "/index.html" not in stored(w.page, second)  # the refused file was never cached

        # Now the deployment is complete. The reload still shows the first build, whole,
        # until the user takes the new one.
        index.write_text(marked)
        w.page.reload()
        assert w.wait_settled() == "ready"
        assert w.page.query_selector("#build-marker") is None
        w.page.wait_for_selector("#update-ready:not([hidden])", timeout=READY_TIMEOUT_MS)
        with w.page.expect_navigation():
            w.page.click("#update-ready")
        assert w.wait_settled() == "ready"
        assert w.page.inner_text("#build-marker") == "second build"
        assert wait_offline_ready(w.page) == second
        assert w.page.evaluate("caches.keys()") == [f"nn-visualizer-{second}"]  # the old build is gone
        assert stored(w.page, second) == sorted("/" + rel for rel, _ in precache.read_service_worker(root)["files"])
        fetched = w.page.evaluate("fetch('index.html').then(r => r.text())")
        assert "second build" in fetched and "tampered" not in fetched
        assert w.outside == [] and w.errors == []
    finally:
        context.close()
        server.close()


# --- tools/precache.py -------------------------------------------------------------------------


def test_site_files_leave_out_what_no_page_needs(tmp_path):
    site = tmp_path / "site"
    for rel in ("index.html", "a.js", "a.js.map", "__pycache__/m.cpython-312.pyc", "app/m.py", "app/m.pyc",
                ".vendor-tmp/x.js", "vendor/.DS_Store", "sw.js", "vendor/sw.js", "notes.txt~",
                "data/atlas.json", "models/m/atlas.json", "models/m/atlas_tsne.npz", "vendor/atlas.json"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    # the atlas's build records (atlas.json beside its t-SNE maps) are the build's, not the page's
    assert precache.site_files(site) == ["a.js", "app/m.py", "index.html", "models/m/atlas_tsne.npz",
                                         "vendor/atlas.json", "vendor/sw.js"]


def test_build_version_follows_the_content_and_a_stale_site_is_named(tmp_path):
    site = tmp_path / "site"
    (site / "model").mkdir(parents=True)
    (site / "index.html").write_text("<p>one</p>")
    (site / "model" / "w.npy").write_bytes(b"\x93NUMPY weights")
    written = precache.write_service_worker(site)
    assert precache.read_service_worker(site) == written == precache.check_built(site)
    assert dict(written["files"]) == {"index.html": sri(b"<p>one</p>"), "model/w.npy": sri(b"\x93NUMPY weights")}
    assert re.fullmatch(r"[0-9a-f]{16}", written["version"])
    assert precache.build_manifest(site)["version"] == written["version"]  # same files, same version

    (site / "model" / "w.npy").write_bytes(b"\x93NUMPY other weights")
    (site / "extra.css").write_text("p {}")
    with pytest.raises(precache.StaleSite, match=r"changed: model/w\.npy; new: extra\.css"):
        precache.check_built(site)
    assert precache.write_service_worker(site)["version"] != written["version"]

    result = subprocess.run([sys.executable, str(MAKE_DIST), "--site", str(site), "--out", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0  # rebuilt: packs
    (site / "index.html").write_text("<p>two</p>")
    result = subprocess.run([sys.executable, str(MAKE_DIST), "--site", str(site), "--out", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "index.html" in result.stderr and "make site" in result.stderr
    assert "Traceback" not in result.stderr
    newer = precache.write_service_worker(site)["version"]
    result = subprocess.run([sys.executable, str(MAKE_DIST), "--site", str(site), "--out", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert [z.name for z in (tmp_path / "d").iterdir()] == [f"nn-visualizer-{newer}.zip"]  # the older one is gone


def test_service_worker_is_valid_javascript():
    node = shutil.which("node")
    assert node, "node is needed to build the site (npm), so it is here"
    result = subprocess.run([node, "--check", str(SITE / "sw.js")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# --- Content Security Policy ------------------------------------------------------------------

def csp_of(html: str) -> dict[str, list[str]]:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert match, "no CSP meta"
    policy = {}
    for directive in match.group(1).split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


def test_csp_meta_comes_first_and_allows_only_the_own_origin():
    html = (SITE / "index.html").read_text()
    head = html[:html.index("</head>")]
    assert head.index("Content-Security-Policy") < min(head.index("<script"), head.index("<link"))
    policy = csp_of(html)
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    allowed = {"'self'", "'none'", "'wasm-unsafe-eval'", "'unsafe-eval'", "'unsafe-inline'", "data:", "blob:"}
    assert {s for sources in policy.values() for s in sources} <= allowed  # no host, no scheme, no *
    assert [d for d, s in policy.items() if "data:" in s] == ["img-src"]
    assert [d for d, s in policy.items() if "blob:" in s] == []  # PyScript's package cache is not used
    assert [d for d, s in policy.items() if "'unsafe-inline'" in s] == ["style-src"]
    assert policy["style-src-elem"] == ["'self'"]  # inline <style> elements stay blocked
    assert "'wasm-unsafe-eval'" in policy["script-src"]


@pytest.mark.parametrize("directive, source, why", [
    ("script-src", "'unsafe-eval'", "vendor/pyscript/"),  # PyScript 0.6.66 compiles its hooks with Function()
    ("style-src", "'unsafe-inline'", ""),                  # the activation colours are style attributes
    ("img-src", "data:", ""),                              # the digit is a PNG data: URL
])
def test_each_exception_in_the_csp_is_needed(browser, tmp_path, directive, source, why):
    """Take one source out of the policy: the page then runs into exactly that directive."""
    root = site_copy(tmp_path)
    index = root / "index.html"
    html = index.read_text()
    policy = csp_of(html)[directive]
    assert source in policy
    new_policy = " ".join(s for s in policy if s != source)
    index.write_text(html.replace(f"{directive} {' '.join(policy)};", f"{directive} {new_policy};", 1))
    assert csp_of(index.read_text())[directive] == new_policy.split()
    server = Server(root)
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    try:
        page = context.new_page()
        effective = {"style-src": "style-src-attr"}.get(directive, directive)
        for _ in range(2):  # blob: is only fetched on a second visit
            page.goto(server.url)
            page.wait_for_function(f"(d) => window.__csp.some((v) => v.directive === d) || ({SETTLED})()",
                                   arg=effective, timeout=READY_TIMEOUT_MS)
            hits = [v for v in page.evaluate("window.__csp") if v["directive"] == effective]
            if hits:
                break
        assert hits, page.evaluate("window.__csp")
        assert all(why in v["source"] for v in hits)
    finally:
        context.close()
        server.close()


# --- the GitHub Pages workflow ----------------------------------------------------------------


def venv_tool(name: str) -> str:
    """A command installed next to this Python (requirements.txt), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is missing: it is in requirements.txt (make venv)"
    return found


def lint(workflow: Path) -> list[subprocess.CompletedProcess]:
    return [
        subprocess.run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                       capture_output=True, text=True, timeout=120),
        subprocess.run([venv_tool("zizmor"), "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG),
                        str(workflow)], capture_output=True, text=True, timeout=120),
    ]


def test_pages_workflow_passes_the_workflow_linters():
    for result in lint(WORKFLOW):
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("breakage", [
    ("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"),            # not a workflow key: schema
    ("id-token: write #", "id-token: writ #"),                        # not a permission level: schema
    ("          persist-credentials: false\n", ""),                     # token left in .git: zizmor
    ("permissions:\n  contents: read", "permissions: write-all\n"),   # far too broad: zizmor
])
def test_the_linters_catch_a_broken_workflow(tmp_path, breakage):
    old, new = breakage
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / "pages.yml"
    broken.write_text(text.replace(old, new, 1))
    assert any(result.returncode != 0 for result in lint(broken))


def test_pages_workflow_deploys_what_make_site_builds():
    from ruamel.yaml import YAML

    flow = YAML(typ="safe").load(WORKFLOW.read_text())
    assert flow["on"]["push"]["branches"] == ["main"] and "workflow_dispatch" in flow["on"]
    jobs = flow["jobs"]
    steps = {name: job["steps"] for name, job in jobs.items()}
    uses = {name: [s.get("uses", "").split("@")[0] for s in job_steps] for name, job_steps in steps.items()}
    assert "actions/configure-pages" in uses["build"]
    assert any(s.get("run", "").startswith("make site") for s in steps["build"])
    (upload,) = [s for s in steps["build"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload["with"]["path"] == "site"
    assert jobs["deploy"]["needs"] == "build" and uses["deploy"] == ["actions/deploy-pages"]
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    # What neither linter checks: every needs names a job, every steps.<id> a step of that job.
    for name, job in jobs.items():
        needs = job.get("needs", [])
        assert set([needs] if isinstance(needs, str) else needs) <= set(jobs) - {name}
        ids = {s.get("id") for s in job["steps"]}
        assert set(re.findall(r"steps\.([\w-]+)\.", str(job))) <= ids
    # `make site` writes the folder that is uploaded
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^site:.*\n\t\$\(PY\) tools/build_site\.py\s*$", makefile, re.M)
    assert "default=ROOT / \"site\"" in (ROOT / "tools" / "build_site.py").read_text()


def test_a_model_picked_once_works_offline_afterwards(browser):
    """Only the default model is in the offline copy from the start; another one is stored the
    first time it is picked (checked against the build's sha256) and opens offline from then on."""
    index = json.loads((SITE / "models" / "index.json").read_text())
    other = next(m for m in index["models"] if m != index["default"])
    with offline_after_a_visit(browser) as (server, w):
        assert not [p for p, _ in server.requests if p.startswith(f"/models/{other}/")]  # not fetched at install
        w.page.select_option("#model-picker", other)
        w.page.wait_for_selector(f'#view[data-model="{other}"]')
        w.page.wait_for_function(  # the worker has stored every file of the model it just served
            "async (names) => { const c = await caches.open((await caches.keys())[0]);"
            " return (await Promise.all(names.map(n => c.match(n)))).every(Boolean); }",
            arg=[f"models/{other}/{f.name}" for f in (SITE / "models" / other).iterdir()])
        server.close()
        w.page.context.set_offline(True)
        w.page.goto(w.base + f"#model={other}&sample=5")
        assert w.wait_settled() == "ready", w.page.inner_text("#status")
        assert w.page.get_attribute("#view", "data-model") == other
        assert w.outside == [] and w.errors == []
