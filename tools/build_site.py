#!/usr/bin/env python3
"""Assemble site/ into a complete static site (what `make site` runs).

1. Vendor the browser runtime (PyScript, Pyodide, wheels) into site/vendor.
2. Copy the app's Python (pyscript_app/*.py) into site/app/pyscript_app, and
   write site/pyscript.toml listing those files for PyScript.
3. Render site/index.html from tools/index.template.html, with the first view
   (test digit 0 and its real activations) pre-rendered by the same
   pyscript_app.render code the page runs, so something real shows at once.

Only site/model and site/data (the export) and the hand-written site files
(style.css, loader.js) are committed; everything this writes is rebuilt.
"""

from __future__ import annotations

import argparse
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
    """site/app/pyscript_app/*.py, exactly the modules of pyscript_app/ (stale ones removed)."""
    target = site / "app" / APP_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    names = []
    for module in app_modules():
        shutil.copy2(module, target / module.name)
        names.append(module.name)
    return names


def pyscript_toml(modules: list[str]) -> str:
    files = "\n".join(f'"./app/{APP_PACKAGE}/{m}" = "./{APP_PACKAGE}/{m}"' for m in modules)
    return (
        "# Written by tools/build_site.py: do not edit.\n"
        'name = "Neural Network Visualizer"\n'
        'interpreter = "./vendor/pyodide/pyodide.mjs"\n'
        "# numpy is loaded by the app itself (pyodide.loadPackage, from the vendored lock\n"
        "# file), so the page can report that stage and skip micropip.\n"
        "packages = []\n"
        "plugins = [\"!error\"]\n\n"
        f"[files]\n{files}\n"
    )


def render_index(site: Path) -> str:
    network, testset = nw.read_export_dir(site / "model")
    view = render.view_for_sample(network, testset, FIRST_SAMPLE)
    page = TEMPLATE.read_text()
    for marker, content in (
        ("{{VIEW}}", render.network_view(network, view)),
        ("{{LEGEND}}", render.legend()),
        ("{{FACTS}}", render.model_facts(network.manifest)),
        ("{{CONNECTIONS_LEGEND}}", render_inside.connections_legend()),  # look inside (issue 5)
    ):
        if marker not in page:
            raise SystemExit(f"build_site: {TEMPLATE.name} lacks the {marker} marker")
        page = page.replace(marker, content)
    return page


def build(site: Path, vendor: bool = True) -> None:
    if vendor:
        import vendor_runtime

        try:
            vendor_runtime.vendor(site, ROOT / "node_modules", ROOT / ".cache" / "wheels", log=print)
        except vendor_runtime.VendorError as exc:
            raise SystemExit(f"build_site: {exc}") from None
    modules = copy_app(site)
    (site / "pyscript.toml").write_text(pyscript_toml(modules))
    try:
        (site / "index.html").write_text(render_index(site))
    except nw.ExportError as exc:
        raise SystemExit(f"build_site: the export in {site / 'model'} is broken: {exc}") from None
    print(f"site: {len(modules)} app modules, pyscript.toml and index.html (first view: test digit {FIRST_SAMPLE}) written")
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
