#!/usr/bin/env python3
"""What a built site consists of, its build version, and the service worker that caches it.

    python tools/precache.py --site site      # (re)write site/sw.js for the site as it is

The files of the site are every file under site/ except leftovers that no page
needs: source maps, Python caches, editor and OS droppings, dot-files and
dot-folders (such as a half-finished ``.vendor-*``), the build's own records
beside the atlas's t-SNE maps (each ``atlas.json`` in data/ or a model's
folder: the build copies them into the page's #atlas-files block, and no page
reads them), and ``sw.js`` itself. The same list is what the service worker
caches and what ``tools/make_dist.py`` puts into the offline bundle.

Files fetched on demand (the training digits, about 10 MB, that only the
Train mode needs, and the files of every model but the default one, which a
visit fetches only when that model is picked) belong to the build like the others, but the worker does
not download them at install, so a first visit transfers no more than the
page needs: it stores them the first time the page fetches them, checked
against the same build hash, and serves them from then on, offline too. An
update copies them from the previous build's cache when they are unchanged.
Which files those are: the ``train`` entry of ``data/manifest.json`` and the
non-default models of ``models/index.json``, and the atlas's t-SNE maps (the
files named by an ``atlas.json`` in data/ or a model's folder, fetched when
t-SNE is first chosen).

The build version (the one source of truth for "which build is this") is the
first 16 hex digits of a sha256 over every file's path and sha256, plus the
service-worker template. ``site/sw.js`` is written from
``tools/sw.template.js`` with that version and the list of files, each with
its Subresource-Integrity hash (``sha256-<base64>``), so the worker can refuse
a file that is not byte for byte the one of its build.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tools" / "sw.template.js"
SERVICE_WORKER = "sw.js"
MARKER = "{{BUILD}}"
DATA_MANIFEST = "data/manifest.json"
ON_DEMAND_ENTRIES = ("train",)  # data/manifest.json entries whose file is cached when first fetched
MODELS_INDEX = "models/index.json"  # every model but its default is cached when first fetched

ATLAS_SIDE = "atlas.json"  # beside the atlas's t-SNE maps: {"tsne": {"file", "sha256"}} (tools/atlas_maps.py)


def _atlas_side(rel: Path) -> bool:
    """data/atlas.json or models/<id>/atlas.json: read by the build only (see the module's notes)."""
    parts = rel.parts
    return rel.name == ATLAS_SIDE and (parts == ("data", ATLAS_SIDE) or (len(parts) == 3 and parts[0] == "models"))


# Never part of the site, wherever they turn up.
EXCLUDED_DIRS = {"__pycache__", "node_modules"}
EXCLUDED_NAMES = {"Thumbs.db", "desktop.ini"}
EXCLUDED_SUFFIXES = (".map", ".pyc", ".pyo", ".swp", ".tmp", "~")


class StaleSite(Exception):
    """site/ no longer matches the build recorded in its sw.js (the message says how)."""


def _excluded(rel: Path) -> bool:
    if any(part.startswith(".") or part in EXCLUDED_DIRS for part in rel.parts):
        return True
    if _atlas_side(rel):
        return True
    return rel.name in EXCLUDED_NAMES or rel.name.endswith(EXCLUDED_SUFFIXES)


def site_files(site: Path) -> list[str]:
    """The site's files as sorted POSIX paths relative to ``site`` (symlinks followed)."""
    site = Path(site)
    files = []
    for path in site.rglob("*"):
        rel = path.relative_to(site)
        if path.is_file() and not _excluded(rel):
            files.append(rel.as_posix())
    return sorted(f for f in files if f != SERVICE_WORKER)  # the worker is not a file it caches


def file_sha256(path: Path) -> str:
    """A file's sha256 as 64 lowercase hexadecimal digits, read a megabyte at a time (a runtime file is
    tens of MB). The one file hash of the tools (vendor_runtime.py and pycompile_runtime.py use it too)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def integrity(path: Path) -> str:
    """The Subresource-Integrity value of a file: ``sha256-<base64 digest>``."""
    return "sha256-" + base64.b64encode(bytes.fromhex(file_sha256(path))).decode("ascii")


def other_models_files(site: Path) -> set[str]:
    """Site paths of the files of every model but the default one (a visit fetches those only when picked)."""
    path = Path(site) / MODELS_INDEX
    if not path.is_file():
        return set()
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StaleSite(f"{path} is not valid JSON ({exc})") from None
    folder = path.parent
    return {f.relative_to(site).as_posix() for model in index.get("models", []) if model != index.get("default")
            for f in (folder / str(model)).glob("*") if f.is_file() and not _excluded(f.relative_to(site))}




def atlas_maps(site: Path) -> dict:
    """The atlas's t-SNE maps: {"input" or a model id: {"file": site path, "sha256": ...}} from each atlas.json."""
    site = Path(site)
    folders = {"input": site / "data", **{side.parent.name: side.parent for side in (site / "models").glob(f"*/{ATLAS_SIDE}")}}
    found = {}
    for key, folder in folders.items():
        side = folder / ATLAS_SIDE
        if side.is_file():
            try:
                entry = json.loads(side.read_text(encoding="utf-8"))["tsne"]
                found[key] = {"file": f"{folder.relative_to(site).as_posix()}/{entry['file']}", "sha256": str(entry["sha256"])}
            except (ValueError, KeyError, TypeError) as exc:
                raise StaleSite(f"{side} has no tsne file entry ({exc})") from None
    return found


def atlas_map_files(site: Path) -> set[str]:
    """Site paths of the atlas's t-SNE maps (fetched only when t-SNE is chosen)."""
    return {entry["file"] for entry in atlas_maps(site).values()}


def on_demand_files(site: Path) -> set[str]:
    """Site paths of the files cached only once the page fetches them (see the module's notes)."""
    site = Path(site)
    path = site / DATA_MANIFEST
    if not path.is_file():
        return other_models_files(site) | atlas_map_files(site)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StaleSite(f"{path} is not valid JSON ({exc})") from None
    folder = Path(DATA_MANIFEST).parent.as_posix()
    return other_models_files(site) | atlas_map_files(site) | {f"{folder}/{manifest[key]['file']}" for key in ON_DEMAND_ENTRIES
                                       if isinstance(manifest.get(key), dict) and isinstance(manifest[key].get("file"), str)}


def build_manifest(site: Path) -> dict:
    """{"version": build id, "files": [[path, integrity], ...], "on_demand": [...]} of the site as it is now.

    ``files`` are cached at install, ``on_demand`` when first fetched; both are the build.
    """
    site = Path(site)
    lazy = on_demand_files(site)
    everything = [[rel, integrity(site / rel)] for rel in site_files(site)]
    if "index.html" not in {rel for rel, _ in everything}:
        raise StaleSite(f"{site} has no index.html: build the site first (make site)")
    h = hashlib.sha256(TEMPLATE.read_bytes())
    for rel, sri in everything:
        h.update(f"\n{rel}\0{sri}".encode())
    return {"version": h.hexdigest()[:16],
            "files": [f for f in everything if f[0] not in lazy],
            "on_demand": [f for f in everything if f[0] in lazy]}


def all_files(manifest: dict) -> list[str]:
    """Every file of a build (cached at install or on demand), sorted."""
    return sorted(rel for rel, _ in manifest["files"] + manifest.get("on_demand", []))


def render_service_worker(manifest: dict) -> str:
    template = TEMPLATE.read_text(encoding="utf-8")
    if MARKER not in template:
        raise SystemExit(f"precache: {TEMPLATE.name} lacks the {MARKER} marker")
    return template.replace(MARKER, json.dumps(manifest, separators=(",", ":")))


def write_service_worker(site: Path) -> dict:
    """Write ``site/sw.js`` for the site as it is now; return its manifest."""
    manifest = build_manifest(site)
    (Path(site) / SERVICE_WORKER).write_text(render_service_worker(manifest), encoding="utf-8")
    return manifest


def read_service_worker(site: Path) -> dict:
    """The manifest recorded in ``site/sw.js`` (StaleSite if there is none)."""
    path = Path(site) / SERVICE_WORKER
    if not path.is_file():
        raise StaleSite(f"{path} is missing: build the site first (make site)")
    match = re.search(r"^const BUILD = (\{.*\});$", path.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise StaleSite(f"{path} was not written by tools/precache.py: rebuild the site (make site)")
    return json.loads(match.group(1))


def check_built(site: Path) -> dict:
    """The recorded manifest, after checking that every file is still the one it names."""
    recorded = read_service_worker(site)
    current = build_manifest(site)
    if current != recorded:
        was = dict(recorded["files"] + recorded.get("on_demand", []))
        now = dict(current["files"] + current["on_demand"])
        changed = sorted(p for p in was.keys() & now.keys() if was[p] != now[p])
        parts = [f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
                 for label, names in (("changed", changed), ("new", sorted(now.keys() - was.keys())),
                                      ("gone", sorted(was.keys() - now.keys()))) if names]
        raise StaleSite(f"{site} changed since it was built ({'; '.join(parts) or 'service-worker template'}): "
                        "rebuild it (make site)")
    return recorded


def describe(site: Path, manifest: dict) -> str:
    size = sum((Path(site) / rel).stat().st_size for rel, _ in manifest["files"])
    text = f"{SERVICE_WORKER}: build {manifest['version']}, {len(manifest['files'])} files, {size / 1e6:.1f} MB to cache"
    lazy = manifest.get("on_demand", [])
    if lazy:
        extra = sum((Path(site) / rel).stat().st_size for rel, _ in lazy)
        text += f" (+ {len(lazy)} on demand, {extra / 1e6:.1f} MB)"
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the built site (default: site/)")
    args = p.parse_args(argv)
    try:
        manifest = write_service_worker(args.site)
    except StaleSite as exc:
        print(f"precache: error: {exc}", file=sys.stderr)
        return 2
    print(f"site: {describe(args.site, manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
