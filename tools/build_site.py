#!/usr/bin/env python3
"""Assemble site/ into a complete static site (what `make site` runs).

1. Vendor the browser runtime (PyScript, Pyodide, wheels) into site/vendor, and
   compile its standard library and numpy to bytecode (tools/pycompile_runtime.py).
2. Bundle the app's Python (pyscript_app/*.py) as site/app/pyscript_app.zip,
   the one file PyScript fetches (its configuration is written inline into
   index.html), and copy main.py, the page's <script src>, beside it.
3. Render site/index.html from tools/index.template.html, with the first view
   (test digit 0 and its real activations) pre-rendered by the same
   pyscript_app.render code the page runs, so something real shows at once.

Only site/model and site/data (the export) and the hand-written site files
(style.css, loader.js) are committed; everything this writes is rebuilt.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from pyscript_app import network as nw  # noqa: E402
from pyscript_app import render  # noqa: E402
from pyscript_app import render_inside  # noqa: E402

TEMPLATE = ROOT / "tools" / "index.template.html"
APP_PACKAGE = "pyscript_app"
FIRST_SAMPLE = 0


def app_modules() -> list[Path]:
    return sorted((ROOT / APP_PACKAGE).glob("*.py"))


def copy_app(site: Path) -> list[str]:
    """site/app/pyscript_app/main.py, the script the page runs (stale files removed).

    The whole package, main.py included, reaches the browser as one archive
    (APP_BUNDLE); only main.py is also needed as a file, as the <script src>.
    Returns the names of all the app's modules (what the archive holds).
    """
    target = site / "app" / APP_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(ROOT / APP_PACKAGE / "main.py", target / "main.py")
    return [module.name for module in app_modules()]


def pyscript_config() -> dict:
    """PyScript's configuration, written inline into index.html (no config file to fetch and parse)."""
    return {
        "name": "Neural Network Visualizer",
        "interpreter": "./vendor/pyodide/pyodide.mjs",
        # No "packages" key at all: numpy is loaded by the app itself (pyodide.loadPackage,
        # from the vendored lock file), so the page can report that stage. Even an empty
        # `packages = []` makes PyScript load micropip + packaging on a first visit.
        "plugins": [f"!{name}" for name in UNUSED_PLUGINS],
        # The app's Python as one archive, unpacked into the working directory.
        "files": {f"./{APP_BUNDLE}": "./*"},
    }


def render_index(site: Path) -> str:
    network, testset = nw.read_export_dir(site / "model")
    view = render.view_for_sample(network, testset, FIRST_SAMPLE)
    page = TEMPLATE.read_text()
    for marker, content in (
        ("{{VIEW}}", render.network_view(network, view)),
        ("{{LEGEND}}", render.legend()),
        ("{{FACTS}}", render.model_facts(network.manifest)),
        ("{{CONNECTIONS_LEGEND}}", render_inside.connections_legend()),  # look inside (issue 5)
        (PRELOAD_MARKER, preload_links(site, network.manifest)),  # start-up speed (issue 7)
        (RUNTIME_FILES_MARKER, runtime_files_block(site, network.manifest)),
        ("{{PYSCRIPT_CONFIG}}", attribute_json(pyscript_config())),
        (MPY_CONFIG_MARKER, mpy_config()),
    ):
        if marker not in page:
            raise SystemExit(f"build_site: {TEMPLATE.name} lacks the {marker} marker")
        page = page.replace(marker, content)
    return page


# --- start-up speed (issue 7): one archive for the app, no unused plugins, preload hints ----

APP_BUNDLE = f"app/{APP_PACKAGE}.zip"
# PyScript 0.6.66 imports each of its plugins (one request each) unless the config
# says "!name"; the page uses none of them ("error" is replaced by loader.js).
UNUSED_PLUGINS = ("error", "codemirror", "deprecations-manager", "donkey", "py-editor", "py-game", "py-terminal")
PRELOAD_MARKER = "<!-- {{PRELOAD}} -->"
MPY_CONFIG_MARKER = "<!-- {{MPY_CONFIG}} -->"
RUNTIME_FILES_MARKER = "<!-- {{RUNTIME_FILES}} -->"
PYODIDE = "vendor/pyodide"
# The folders of the files that the runtime fetches for itself; site/loader.js checks each one it
# has loaded against this build's sha256 (the export's files are checked by the Python loader).
RUNTIME_FOLDERS = ("vendor/", "app/")


def runtime_files(site: Path) -> dict[str, list]:
    """{path: [integrity ("sha256-<base64>"), size in bytes]} of every runtime file of the site."""
    import precache

    return {rel: [precache.integrity(site / rel), (site / rel).stat().st_size]
            for rel in precache.site_files(site) if rel.startswith(RUNTIME_FOLDERS)}


def data_block(ident: str, value) -> str:
    """A JSON data block for site/loader.js (not a script: nothing runs, the CSP allows it)."""
    data = html.escape(json.dumps(value, separators=(",", ":"), sort_keys=True), quote=False)
    return f'<script type="application/json" id="{ident}">{data}</script>'


def runtime_files_block(site: Path, manifest: dict) -> str:
    """The runtime files' sha256 (#runtime-files) and the files to fetch early (#early-fetches)."""
    return "\n".join([data_block("runtime-files", runtime_files(site)),
                      data_block("early-fetches", early_fetches(site, manifest))])


def attribute_json(value) -> str:
    """JSON for a single-quoted HTML attribute."""
    return html.escape(json.dumps(value, separators=(",", ":")), quote=False).replace("'", "&#x27;")


def mpy_config() -> str:
    """PyScript reads a config for each script type it knows; MicroPython's, absent, would
    import every plugin (5 more requests) although the page has no MicroPython script."""
    config = json.dumps({"plugins": [f"!{name}" for name in UNUSED_PLUGINS]}, separators=(",", ":"))
    return f"<mpy-config hidden>{html.escape(config, quote=False)}</mpy-config>"


def compile_runtime(site: Path) -> None:
    """The vendored stdlib and numpy as bytecode (tools/pycompile_runtime.py); a no-op once done."""
    import pycompile_runtime

    if not (site / PYODIDE).is_dir():
        return
    try:
        pycompile_runtime.compile_runtime(site / PYODIDE, ROOT / ".cache" / "pyc", log=print)
    except pycompile_runtime.CompileError as exc:
        raise SystemExit(f"build_site: {exc}") from None


def write_app_bundle(site: Path) -> Path:
    """site/app/pyscript_app.zip: exactly pyscript_app/*.py, byte-for-byte reproducible."""
    import zipfile

    target = site / APP_BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for module in app_modules():
            info = zipfile.ZipInfo(f"{APP_PACKAGE}/{module.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, module.read_bytes())
    return target


def numpy_wheel(site: Path) -> str:
    lock_path = site / PYODIDE / "pyodide-lock.json"
    if not lock_path.is_file():
        raise SystemExit(f"build_site: {lock_path} is missing: vendor the runtime first (make site, without --no-vendor)")
    return json.loads(lock_path.read_text())["packages"]["numpy"]["file_name"]


def preloads(site: Path, manifest: dict) -> list[tuple[str, str, str]]:
    """(rel, href, extra attributes) for the runtime's files, in the order it needs them.

    Started from the HTML head, the downloads run in parallel with the runtime's own
    start instead of one after the other. Each hint must match the later request
    (destination and CORS mode: fetch() is "cors"), or the browser downloads the file
    twice. Only files that the start-up uses within a few seconds of the page's load
    event are hinted: the browser warns about a preload left unused longer than that.
    What is needed later (numpy, the export) is fetched early by site/loader.js instead
    (early_fetches).

    pyodide.asm.wasm is left out on purpose: Pyodide compiles it from a streamed fetch,
    which on a second visit reuses the compiled code Chromium cached beside the HTTP
    cache entry; the same bytes handed over from a preload do not (measured: about 1.5
    to 3 s more CPU on every warm start). Its download starts within the first ~0.5 s
    anyway, and is not what a cold start waits for.
    """
    numpy_wheel(site)  # the runtime must be vendored
    return [
        ("modulepreload", "vendor/pyscript/core.js", ""),
        *[("modulepreload", f"vendor/pyscript/{chunk.name}", "")  # core.js's one static import
          for chunk in sorted((site / "vendor" / "pyscript").glob("core-*.js"))],
        ("modulepreload", f"{PYODIDE}/pyodide.mjs", ""),
        ("modulepreload", f"{PYODIDE}/pyodide.asm.js", ""),
        ("preload", f"{PYODIDE}/python_stdlib.zip", ' as="fetch" crossorigin'),
        ("preload", f"{PYODIDE}/pyodide-lock.json", ' as="fetch" crossorigin'),
    ]


def early_fetches(site: Path, manifest: dict) -> list[str]:
    """The files the start-up needs only once the interpreter runs (seconds after the load event on
    a slow machine): the app, numpy, the export: site/loader.js fetches them at once and hands each response to the first fetch()
    of it. The numpy wheel's sha256 is still checked (Pyodide asks for it as fetch integrity)."""
    return [APP_BUNDLE, f"app/{APP_PACKAGE}/main.py", f"{PYODIDE}/{numpy_wheel(site)}", "model/" + nw.MANIFEST_NAME,
            *["model/" + name for name in nw.model_files(manifest)],
            *[posix_join("model", name) for name in nw.dataset_files(manifest)]]


def posix_join(base: str, relative: str) -> str:
    """model + ../data/x.npz -> data/x.npz (a URL path relative to the page)."""
    import posixpath

    return posixpath.normpath(posixpath.join(base, relative))


def preload_links(site: Path, manifest: dict) -> str:
    return "\n".join(f'<link rel="{rel}" href="./{href}"{extra}>' for rel, href, extra in preloads(site, manifest))


def build(site: Path, vendor: bool = True) -> None:
    if vendor:
        import vendor_runtime

        try:
            vendor_runtime.vendor(site, ROOT / "node_modules", ROOT / ".cache" / "wheels", log=print)
        except vendor_runtime.VendorError as exc:
            raise SystemExit(f"build_site: {exc}") from None
    compile_runtime(site)
    modules = copy_app(site)
    write_app_bundle(site)
    (site / "pyscript.toml").unlink(missing_ok=True)  # the config is inline in index.html now
    try:
        (site / "index.html").write_text(render_index(site))
    except nw.ExportError as exc:
        raise SystemExit(f"build_site: the export in {site / 'model'} is broken: {exc}") from None
    print(f"site: {len(modules)} app modules, {APP_BUNDLE} and index.html (first view: test digit {FIRST_SAMPLE}) written")
    write_offline_copy(site)


# --- offline: the service worker that caches this exact build (tools/precache.py) ---------


def write_offline_copy(site: Path) -> None:
    """site/sw.js, listing every file of the site as built; written last, after all of them."""
    import precache

    try:
        manifest = precache.write_service_worker(site)
    except precache.StaleSite as exc:
        raise SystemExit(f"build_site: {exc}") from None
    print(f"site: {precache.describe(site, manifest)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the site folder (default: site/)")
    p.add_argument("--no-vendor", action="store_true", help="skip vendoring the runtime")
    args = p.parse_args(argv)
    build(args.site, vendor=not args.no_vendor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
