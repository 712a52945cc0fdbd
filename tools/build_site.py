#!/usr/bin/env python3
"""Assemble site/ into a complete static site (what `make site` runs).

1. Vendor the browser runtime (PyScript, Pyodide, wheels) into site/vendor, and
   compile its standard library and numpy to bytecode (tools/pycompile_runtime.py).
2. Bundle the app's Python (pyscript_app/**/*.py) as site/app/pyscript_app.zip,
   the one file PyScript fetches (its configuration is written inline into
   index.html), compiled to bytecode like the runtime (main.py kept as source),
   and copy main.py, the page's <script src>, beside it.
3. Render site/index.html from tools/index.template.html, with the first view
   (test digit 0 and its real activations, of the default model of
   site/models/index.json) pre-rendered by the same pyscript_app.views.render code
   the page runs, so something real shows at once. Every model the index
   lists is loaded and checked first; the model picker lists them all.
4. Write the training digits, site/data/mnist_train.npz, and check them against
   site/data/manifest.json (tools/train_data.py; not committed, about 10 MB).

Only site/models and site/data (the exports) and the hand-written site files
(style.css, loader.js) are committed; everything this writes is rebuilt.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from pyscript_app.core import explain
from pyscript_app.core import network as nw
from pyscript_app.views import atlas as atlas_view
from pyscript_app.views import render
from pyscript_app.views import render_inside

ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = ROOT / "tools" / "index.template.html"
APP_PACKAGE = "pyscript_app"
FIRST_SAMPLE = 0


def app_modules() -> list[Path]:
    return sorted((ROOT / APP_PACKAGE).rglob("*.py"))


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
    return [module.relative_to(ROOT / APP_PACKAGE).as_posix() for module in app_modules()]


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


def check_models(site: Path) -> dict:
    """Every model of models/index.json, loaded and checked: {id: manifest}, in the index's order."""
    index = nw.read_models_index(site)
    testset = nw.read_testset_dir(site / "data")
    manifests = {}
    for model_id in index["models"]:
        network = nw.read_model_dir(site / "models" / model_id)
        nw.check_fits(network, testset, f"{model_id}/{nw.MANIFEST_NAME}")
        if network.id not in (None, model_id):
            raise nw.ExportError(f"{model_id}/{nw.MANIFEST_NAME}: id is {network.id!r}, its folder is {model_id!r}")
        manifests[model_id] = network.manifest
    return manifests


ATLAS_INPUT = "data/atlas_input.npz"


def write_atlas_input(site: Path, testset) -> dict:
    """site/data/atlas_input.npz: the test pixels' PCA (in grey levels) and separability, for the atlas's input
    layer (the same for every network: page/atlas.py scales it by the network's normalisation). Returns the
    page's #atlas-files entry (file, sha256)."""
    from pyscript_app.core import atlas

    grey = np.asarray(testset.images).reshape(len(testset), -1).astype(np.float64)
    raw = atlas.pca(grey)
    arrays = atlas.input_arrays(raw, atlas.knn_accuracy(grey, testset.labels))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (site / ATLAS_INPUT).write_bytes(buffer.getvalue())
    return {"input": {"file": ATLAS_INPUT, "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()},
            "tsne": atlas_tsne_files(site)}


def atlas_tsne_files(site: Path) -> dict:
    """The t-SNE maps tools/atlas_maps.py wrote, of the models of the index (and "input")."""
    import precache

    shipped = {"input", *nw.read_models_index(site)["models"]}
    return {key: entry for key, entry in precache.atlas_maps(site).items() if key in shipped}


def render_index(site: Path) -> str:
    index = nw.read_models_index(site)
    manifests = check_models(site)
    default = index["default"]
    network, testset = nw.read_site(site, default)
    explain.fill_activation_stats(network, testset)
    view = render.view_for_sample(network, testset, FIRST_SAMPLE)
    page = TEMPLATE.read_text()
    for marker, content in (
        ("{{VIEW}}", render.network_view(network, view)),
        ("{{MODEL}}", html.escape(default)),
        ("{{ICON}}", icon_data_url()),
        ("{{MODEL_PICKER}}", render.model_picker([(m, manifests[m], False) for m in index["models"]], default)),
        ("{{MODEL_CARD}}", render.model_card(default, network.manifest)),
        ("{{LEGEND}}", render.legend(network)),
        ("{{FACTS}}", render.model_facts(network.manifest)),
        ("{{CONNECTIONS_LEGEND}}", render_inside.connections_legend(network)),
        ("{{ATLAS}}", atlas_view.panel_html(network)),
        ("{{ATLAS_FILES}}", data_block("atlas-files", write_atlas_input(site, testset))),
        (PRELOAD_MARKER, preload_links(site)),  # start-up speed
        (RUNTIME_FILES_MARKER, runtime_files_block(site, default, network.manifest)),
        ("{{PYSCRIPT_CONFIG}}", attribute_json(pyscript_config())),
        (MPY_CONFIG_MARKER, mpy_config()),
    ):
        if marker not in page:
            raise SystemExit(f"build_site: {TEMPLATE.name} lacks the {marker} marker")
        page = page.replace(marker, content)
    return page


# --- start-up speed: one archive for the app, no unused plugins, preload hints ----

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


def runtime_files_block(site: Path, model_id: str, manifest: dict) -> str:
    """The runtime files' sha256 (#runtime-files) and the files to fetch early (#early-fetches)."""
    return "\n".join([data_block("runtime-files", runtime_files(site)),
                      data_block("early-fetches", early_fetches(site, model_id, manifest))])


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


# Where PyScript unpacks the app's archive (its working directory): the file names in tracebacks.
APP_HOME = "/home/pyodide/"


def compile_app_bundle(bundle: Path, site: Path) -> None:
    """The app's archive as bytecode, main.py (the page's script) kept as source
    (tools/pycompile_runtime.py's compile_app); left as sources without a vendored runtime."""
    import pycompile_runtime

    if not (site / PYODIDE / "pyodide.mjs").is_file():
        return
    try:
        pycompile_runtime.compile_app(bundle, site / PYODIDE, ROOT / ".cache" / "pyc", APP_HOME,
                                      keep=[f"{APP_PACKAGE}/main.py"], log=print)
    except pycompile_runtime.CompileError as exc:
        raise SystemExit(f"build_site: {exc}") from None


def write_app_bundle(site: Path) -> Path:
    """site/app/pyscript_app.zip: exactly pyscript_app/*.py, byte-for-byte reproducible."""
    import zipfile

    target = site / APP_BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for module in app_modules():
            info = zipfile.ZipInfo(f"{APP_PACKAGE}/{module.relative_to(ROOT / APP_PACKAGE).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, module.read_bytes())
    return target


def numpy_wheel(site: Path) -> str:
    lock_path = site / PYODIDE / "pyodide-lock.json"
    if not lock_path.is_file():
        raise SystemExit(f"build_site: {lock_path} is missing: vendor the runtime first (make site, without --no-vendor)")
    return json.loads(lock_path.read_text())["packages"]["numpy"]["file_name"]


def preloads(site: Path) -> list[tuple[str, str, str]]:
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


def early_fetches(site: Path, model_id: str, manifest: dict) -> list[str]:
    """The files the start-up needs only once the interpreter runs (seconds after the load event on
    a slow machine): the app, numpy, the default model and the test digits: site/loader.js fetches
    them at once and hands each response to the first fetch() of it. The numpy wheel's sha256 is
    still checked (Pyodide asks for it as fetch integrity)."""
    data = nw.parse_data_manifest((site / "data" / "manifest.json").read_bytes())
    return [APP_BUNDLE, f"app/{APP_PACKAGE}/main.py", f"{PYODIDE}/{numpy_wheel(site)}",
            "models/index.json", "data/manifest.json", f"models/{model_id}/{nw.MANIFEST_NAME}",
            *[f"models/{model_id}/{name}" for name in nw.model_files(manifest)],
            f"data/{nw.testset_file(data)}"]


ICON = ROOT / "tools" / "icon.svg"  # the page's icon: in the page itself, not a file of the site


def icon_data_url() -> str:
    """tools/icon.svg as a data: address (the page's policy allows data: images): no request for it, and
    no file of its own for the offline copy to store."""
    return "data:image/svg+xml;base64," + base64.b64encode(ICON.read_bytes()).decode()


def preload_links(site: Path) -> str:
    return "\n".join(f'<link rel="{rel}" href="./{href}"{extra}>' for rel, href, extra in preloads(site))


def build(site: Path, vendor: bool = True) -> None:
    if vendor:
        import vendor_runtime

        try:
            vendor_runtime.vendor(site, ROOT / "node_modules", ROOT / ".cache" / "wheels", log=print)
        except vendor_runtime.VendorError as exc:
            raise SystemExit(f"build_site: {exc}") from None
    compile_runtime(site)
    modules = copy_app(site)
    compile_app_bundle(write_app_bundle(site), site)
    (site / "pyscript.toml").unlink(missing_ok=True)  # the config is inline in index.html now
    try:
        (site / "index.html").write_text(render_index(site))
    except nw.ExportError as exc:
        raise SystemExit(f"build_site: an export in {site / 'models'} or {site / 'data'} is broken: {exc}") from None
    print(f"site: {len(modules)} app modules, {APP_BUNDLE} and index.html (first view: test digit {FIRST_SAMPLE}) written")
    write_training_digits(site)
    write_offline_copy(site)


def write_training_digits(site: Path) -> None:
    """site/data/mnist_train.npz for training in the page (tools/train_data.py); a check once written."""
    import train_data

    try:
        train_data.write_train_data(site)
    except train_data.TrainDataError as exc:
        raise SystemExit(f"build_site: {exc}") from None


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
