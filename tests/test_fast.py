"""The start-up optimisations change how the page is delivered; it must still be right.

- the app's Python ships as one archive: exactly the pyscript_app modules (as bytecode);
- PyScript's configuration is inline: no micropip, no plugin module, no config file;
- every preload hint names a file of the site, and each file the start-up needs is hinted or
  fetched early by loader.js (except the wasm binary, see build_site.preloads);
- on a cold load every file is fetched once (each hint is consumed, none downloads twice),
  the numpy wheel's sha256 is still enforced although it is preloaded, and the page works.
No timings here: speed is measured by tools/bench.py (make bench).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from conftest import ROOT, SITE, Server, site_copy, watch


LOCK = SITE / "vendor" / "pyodide" / "pyodide-lock.json"
PLUGINS_SOURCE = ROOT / "node_modules" / "@pyscript" / "core" / "src" / "plugins.js"


class Page(HTMLParser):
    """The parts of index.html that deliver the app, read independently of build_site."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.py_scripts, self.mpy_config, self._in_mpy = [], [], None, False
        self.early, self._in_early = "", False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("rel") in ("preload", "modulepreload"):
            self.links.append(a)
        elif tag == "script" and a.get("type") == "py":
            self.py_scripts.append(a)
        self._in_mpy = tag == "mpy-config"
        self._in_early = tag == "script" and a.get("id") == "early-fetches"

    def handle_data(self, data):
        if self._in_mpy:
            self.mpy_config = (self.mpy_config or "") + data
        if self._in_early:
            self.early += data

    def handle_endtag(self, tag):
        self._in_mpy = self._in_early = False


@pytest.fixture(scope="module")
def page():
    return Page((SITE / "index.html").read_text())


def site_path(href: str) -> str:
    """./vendor/x -> vendor/x (a URL relative to the page, as a path in the site)."""
    return urlparse(urljoin("http://site/", href)).path.lstrip("/")


def pyscript_plugins() -> set[str]:
    """Every plugin the vendored PyScript imports unless told not to (from its own source)."""
    names = set(re.findall(r'^\s*(?:\["([\w-]+)"\]|([\w-]+)):\s*\(\)\s*=>', PLUGINS_SOURCE.read_text(), re.M))
    return {a or b for a, b in names}


def test_app_bundle_is_exactly_the_app_modules(page):
    config = json.loads(page.py_scripts[0]["config"])
    (bundle, target), = config["files"].items()
    assert target == "./*"  # unpacked into the working directory, where `import pyscript_app` looks
    # every module as CPython 3.12 bytecode (tools/pycompile_runtime.py's compile_app: unchecked
    # hash-based .pyc), main.py, the page's script, as its source
    modules = {m.relative_to(ROOT).as_posix(): m for m in (ROOT / "pyscript_app").rglob("*.py")}
    script = "pyscript_app/main.py"
    with zipfile.ZipFile(SITE / site_path(bundle)) as z:
        assert sorted(z.namelist()) == sorted(name if name == script else name + "c" for name in modules)
        assert z.read(script) == modules[script].read_bytes()
        for name in modules.keys() - {script}:
            pyc = z.read(name + "c")
            assert pyc[:4] == (3531).to_bytes(2, "little") + b"\r\n" and int.from_bytes(pyc[4:8], "little") == 0b01, name
    # what the <script src> runs is the same main.py
    assert (SITE / site_path(page.py_scripts[0]["src"])).read_bytes() == (ROOT / "pyscript_app" / "main.py").read_bytes()


def test_pyscript_config_is_inline_and_skips_micropip_and_plugins(page):
    (script,) = page.py_scripts
    config = json.loads(script["config"])  # JSON in the attribute: no config file, no TOML parser
    assert "packages" not in config  # even `packages = []` makes PyScript load micropip
    assert config["interpreter"] == "./vendor/pyodide/pyodide.mjs"
    plugins = pyscript_plugins()
    assert {"error", "py-terminal", "py-editor"} <= plugins  # the source was read right
    assert {f"!{p}" for p in plugins} <= set(config["plugins"])
    # PyScript also reads a config for MicroPython scripts (the page has none): without one
    # it would import every plugin for that type.
    assert {f"!{p}" for p in plugins} <= set(json.loads(page.mpy_config)["plugins"])
    assert not (SITE / "pyscript.toml").exists()


def test_every_preload_is_a_site_file_and_the_start_up_files_are_all_hinted(page, seed_export):
    from conftest import DEFAULT_MODEL

    manifest = seed_export[0].manifest
    hinted = {site_path(link["href"]) for link in page.links}
    assert len(hinted) == len(page.links)  # no duplicates
    early = set(json.loads(page.early))  # what loader.js fetches at once instead of a preload hint
    assert not early & hinted
    hinted |= early
    for path in hinted:
        assert (SITE / path).is_file(), path
    lock = json.loads(LOCK.read_text())
    needed = {f"vendor/pyodide/{f}" for f in ("pyodide.mjs", "pyodide.asm.js", "python_stdlib.zip",
                                              "pyodide-lock.json")}
    needed.add("vendor/pyodide/" + lock["packages"]["numpy"]["file_name"])
    needed |= {f"models/{DEFAULT_MODEL}/manifest.json", "models/index.json", "data/manifest.json", "data/mnist_test.npz",
               "vendor/pyscript/core.js"}
    needed |= {f"models/{DEFAULT_MODEL}/{layer[key]['file']}" for layer in manifest["layers"] for key in ("weights", "bias")}
    assert needed <= hinted, needed - hinted
    # not the wasm: compiled from a preloaded response, it misses Chromium's code cache
    assert "vendor/pyodide/pyodide.asm.wasm" not in hinted
    for link in page.links:  # fetch() requests are CORS-mode: a hint without crossorigin is wasted
        if link["rel"] == "preload":
            assert link["as"] == "fetch" and "crossorigin" in link, link


def cold_load(browser, root: Path):
    """A cold load of `root` in a fresh context: (final state, status text, requested site paths, watcher)."""
    server = Server(root)
    context = browser.new_context()
    try:
        w = watch(context, server.url)
        requested = []
        # Not counted: the reads of loader.js's check worker (check.js). Playwright's routing turns the
        # HTTP cache off, so its "force-cache" reads reach the server here; in a browser they come from
        # the cache (test_ship's first-visit test, without routing, finds no file fetched twice).
        def record(r):
            if r.url.startswith(server.url) and not r.all_headers().get("referer", "").endswith("/check.js"):
                requested.append(r.url[len(server.url):])

        w.page.on("request", record)
        state = w.goto("")
        return state, w.page.inner_text("#status-text"), requested, w
    finally:
        context.close()
        server.close()


def test_cold_load_fetches_each_file_once_and_no_micropip(browser, page, tmp_path):
    state, text, requested, w = cold_load(browser, SITE)
    assert state == "ready", text
    assert w.errors == [] and w.outside == []
    paths = [p.split("?")[0] or "index.html" for p in requested]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    assert twice == [], f"fetched more than once (a preload hint not matching its request?): {twice}"
    assert not [p for p in paths if re.search(r"micropip|packaging|\.toml$|/toml-", p)], paths
    unused = pyscript_plugins() - {"error"}  # error.js is imported to switch the error plugin off
    assert not [p for p in paths if any(re.search(rf"/{name}-\w+\.js$", p) for name in unused)], paths
    assert {site_path(link["href"]) for link in page.links} | set(json.loads(page.early)) <= set(paths)  # every hint was wanted


def test_a_corrupted_numpy_wheel_is_refused_although_preloaded(browser, tmp_path):
    root = site_copy(tmp_path)
    lock = json.loads(LOCK.read_text())
    wheel = root / "vendor" / "pyodide" / lock["packages"]["numpy"]["file_name"]
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x55
    wheel.unlink()  # a link to the real file in site_copy: replace it, never write through it
    wheel.write_bytes(bytes(data))
    state, text, _, _ = cold_load(browser, root)
    assert state == "error" and "numpy" in text, text


def test_build_writes_the_same_bundle_twice(tmp_path):
    import build_site

    first = build_site.write_app_bundle(tmp_path).read_bytes()
    shutil.rmtree(tmp_path / "app")
    assert build_site.write_app_bundle(tmp_path).read_bytes() == first  # reproducible (no timestamps)
