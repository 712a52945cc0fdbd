"""The runtime ships only what the page uses (tools/trim_runtime.py, docs/runtime-trim.md).

- the built site holds none of the dropped files, and the offline copy lists none;
- the vendored lock file lists exactly the shipped wheels, each with the sha256 of its bytes;
- nothing kept in the trimmed archives imports a left-out module when it is imported;
- licence files stay;
- a cold visit that uses every feature (random digits, drawing, neuron cards,
  knock-outs, connections, error explorer, the offline copy) requests nothing that
  is missing, and shows no error.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile

import pytest

from conftest import ROOT, SITE, Server, watch
import precache
import trim_runtime


VENDOR = SITE / "vendor"
DIST = ROOT / "node_modules" / "@pyscript" / "core" / "dist"
NPM = ROOT / "node_modules" / "pyodide"
OFFICIAL_LOCK = json.loads((NPM / "pyodide-lock.json").read_text())
NUMPY_WHEEL = OFFICIAL_LOCK["packages"]["numpy"]["file_name"]
WHEEL_CACHE = ROOT / ".cache" / "wheels"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def official_numpy() -> zipfile.ZipFile:
    if not (WHEEL_CACHE / NUMPY_WHEEL).exists():
        pytest.skip("the wheel cache holds no numpy wheel (make site fills it)")
    return zipfile.ZipFile(WHEEL_CACHE / NUMPY_WHEEL)


def test_the_site_holds_none_of_the_dropped_files():
    everything = {p.name for p in DIST.iterdir() if p.is_file() and p.suffix != ".map"}
    shipped = {p.name for p in (VENDOR / "pyscript").iterdir()}
    assert shipped == set(trim_runtime.pyscript_files(DIST))
    dropped = everything - shipped
    assert {"core.css", "storage.js"} <= dropped and any(n.startswith(("xterm", "codemirror")) for n in dropped)
    wheels = {p.name for p in (VENDOR / "pyodide").glob("*.whl")}
    assert wheels == {NUMPY_WHEEL}  # no micropip, no packaging
    cached = {path for path, _ in precache.read_service_worker(SITE)["files"]}  # the offline copy
    assert cached | precache.on_demand_files(SITE) == set(precache.site_files(SITE))
    assert not {f"vendor/pyscript/{n}" for n in dropped} & cached
    assert not [p for p in cached if re.search(r"micropip|packaging-", p)]


def test_the_lock_lists_exactly_the_shipped_wheels_with_the_sha256_of_their_bytes():
    lock = json.loads((VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"] == OFFICIAL_LOCK["info"]
    listed = {entry["file_name"]: entry for entry in lock["packages"].values()}
    assert set(listed) == {p.name for p in (VENDOR / "pyodide").glob("*.whl")}
    for file_name, entry in listed.items():
        assert entry["sha256"] == sha256((VENDOR / "pyodide" / file_name).read_bytes()), file_name
        for dependency in entry["depends"]:
            assert dependency in lock["packages"]
    # apart from the sha256 of the rewritten wheel, each entry is the official one
    official = {name: {**OFFICIAL_LOCK["packages"][name], "sha256": entry["sha256"]}
                for name, entry in lock["packages"].items()}
    assert lock["packages"] == official


def module_name(member: str) -> str:
    name = member.rsplit(".", 1)[0].replace("/", ".")
    return name.removesuffix(".__init__")


# A module-level import: at the start of a line, so never inside a function (nor a try).
TOP_LEVEL_IMPORT = re.compile(r"^(?:import\s+([\w.]+)|from\s+([\w.]+)\s+import\s+\(?\s*([\w, ]+))", re.M)


def imports_of_left_out(archive: zipfile.ZipFile, kind: str, also_left_out: set[str]) -> tuple[set[str], list[str]]:
    """(modules left out of this archive, "member imports module" for each kept .py that imports one)."""
    left = set(trim_runtime.left_out(kind, archive.namelist()))
    gone = {module_name(m) for m in left if m.endswith((".py", ".so"))} | also_left_out
    found = []
    for member in archive.namelist():
        if member in left or not member.endswith(".py"):
            continue
        for match in TOP_LEVEL_IMPORT.finditer(archive.read(member).decode("utf-8")):
            module = match[1] or match[2]
            names = {module} | {f"{module}.{n.strip()}" for n in (match[3] or "").split(",") if n.strip()}
            found += [f"{member} imports {n}" for n in names
                      if n in gone or any(n.startswith(g + ".") for g in gone)]
    return gone, found


def test_nothing_kept_imports_a_left_out_module_on_import():
    with zipfile.ZipFile(NPM / "python_stdlib.zip") as stdlib:
        gone, found = imports_of_left_out(stdlib, "stdlib", set())
    assert {"unittest", "xml", "http", "pydoc", "multiprocessing", "encodings.big5"} <= gone
    with official_numpy() as numpy:
        numpy_gone, numpy_found = imports_of_left_out(numpy, "numpy", gone)
    assert {"numpy.f2py", "numpy.testing", "numpy.ma", "numpy.fft"} <= numpy_gone
    assert found + numpy_found == []


def test_every_rule_still_matches_something_and_the_needed_modules_stay():
    with zipfile.ZipFile(NPM / "python_stdlib.zip") as z:
        names = z.namelist()
    left = set(trim_runtime.left_out("stdlib", names))
    for entry in trim_runtime.STDLIB_LEFT_OUT:  # a stale entry would hide a changed runtime
        assert f"{entry}.py" in left or any(n.startswith(f"{entry}/") for n in left), entry
    # imported on every page load (Pyodide, PyScript, zipfile, the app): never left out
    for needed in ("encodings/utf_8.py", "encodings/cp437.py", "traceback.py", "warnings.py", "linecache.py",
                   "email/message.py", "tarfile.py", "asyncio/__init__.py", "importlib/metadata/__init__.py",
                   "pyodide/__init__.py", "_pyodide/_base.py", "json/decoder.py", "urllib/parse.py"):
        assert needed in names and needed not in left, needed
    with official_numpy() as numpy:
        left = trim_runtime.left_out("numpy", numpy.namelist())
    for pattern in trim_runtime.NUMPY_LEFT_OUT:
        assert any(re.search(pattern, n) for n in left), pattern


def test_licence_files_stay_in_the_shipped_wheel():
    with official_numpy() as official, zipfile.ZipFile(VENDOR / "pyodide" / NUMPY_WHEEL) as shipped:
        licences = [n for n in official.namelist() if re.search(r"LICEN[CS]E", n)]
        assert len(licences) >= 3
        for name in licences:
            assert shipped.read(name) == official.read(name)


@pytest.fixture(scope="module")
def full_visit(browser):
    """A cold visit in its own context that uses every feature, with every response recorded."""
    server = Server(SITE)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        w = watch(context, server.url)
        requests, failed = [], []
        context.on("request", lambda r: requests.append((r.url[len(server.url):], bool(r.service_worker))))
        context.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        context.on("requestfailed", lambda r: r.url.startswith(server.url) and failed.append(f"failed {r.url}"))
        assert w.goto("") == "ready", w.page.inner_text("#status")
        use_every_feature(w.page)
        w.page.wait_for_selector("#offline-ready:not([hidden])")  # the offline copy is complete
        yield w, requests, failed
    finally:
        context.close()
        server.close()


def use_every_feature(page):
    for _ in range(3):
        before = page.get_attribute("#input-image", "data-sample-index")
        page.click("#random-sample")
        page.wait_for_function(f"document.getElementById('input-image').dataset.sampleIndex !== '{before}'")
    page.click("#draw-toggle")
    page.wait_for_selector("#draw-pad", state="visible")
    box = page.locator("#draw-pad").bounding_box()
    page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.8 * box["height"], steps=8)
    page.mouse.up()
    page.wait_for_selector("#model-input")  # the drawing went through the network
    page.click("#draw-toggle")
    page.wait_for_function("document.getElementById('input-image').dataset.sampleIndex !== ''")
    page.click('#view .neuron[data-layer="hidden_1"][data-index="4"]')
    page.wait_for_selector('#neuron-card[data-layer="hidden_1"][data-index="4"]')
    page.click('#view .neuron[data-layer="output"][data-index="2"]')
    page.wait_for_selector('#neuron-card[data-layer="output"][data-index="2"]')
    page.keyboard.press("Escape")
    page.wait_for_selector("#neuron-card", state="detached")
    page.click('#view .neuron[data-layer="hidden_2"][data-index="1"]', modifiers=["Shift"])
    page.wait_for_selector('.neuron[data-layer="hidden_2"][data-index="1"][data-knocked-out="true"]')
    page.click("#reset-network")
    page.wait_for_selector('.neuron[data-layer="hidden_2"][data-index="1"]:not([data-knocked-out])')
    page.wait_for_selector("#connections line")
    page.fill("#links-per-neuron", "5")
    page.dispatch_event("#links-per-neuron", "input")
    page.click("#errors-toggle")
    page.wait_for_selector("#confusion-matrix[data-compute-ms]")
    page.click('#confusion-matrix [data-true="4"][data-predicted="9"]')


def test_a_visit_using_every_feature_requests_nothing_missing(full_visit):
    w, requests, failed = full_visit
    assert failed == [] and w.errors == [] and w.outside == []
    by_page = {path.split("?")[0] for path, from_worker in requests if not from_worker}
    vendor = {p for p in by_page if p.startswith("vendor/")}
    assert {"vendor/pyscript/core.js", "vendor/pyodide/python_stdlib.zip", f"vendor/pyodide/{NUMPY_WHEEL}"} <= vendor
    assert all((SITE / p).is_file() for p in vendor)
    # the service worker fetched the offline copy: only files of the build, all present
    # (the page itself by the address it was loaded as, the folder's: "" here)
    by_worker = {path.split("?")[0] or "index.html" for path, from_worker in requests if from_worker}
    assert by_worker and by_worker <= set(precache.site_files(SITE)) | {precache.SERVICE_WORKER}
