#!/usr/bin/env python3
"""Write the offline bundle for a USB stick: dist/nn-visualizer-<version>.zip (what `make dist` runs).

    python tools/make_dist.py [--site site] [--out dist]

<version> is the site's build id from tools/precache.py, the same id the
service worker caches the site under (a sha256 over every file of the built
site), so a zip's name says exactly which build it holds. The zip holds one
folder, ``nn-visualizer-<version>/``, with

* ``README.txt`` (names the launcher), ``start.py`` and ``serve.py`` (the
  launcher and its server, standard library only), and the double-click
  helpers ``start.command`` (macOS), ``start.bat`` (Windows), ``start.sh``
  (Linux), executable where the platform honours it;
* ``site/``: every file of the build (precache.site_files: no source maps,
  caches, dot-files; the on-demand training digits included) plus ``site/sw.js``. Nothing else of the repository
  (tests, templates, tools) goes in.

The zip is deterministic: sorted entries, fixed timestamps ($SOURCE_DATE_EPOCH,
else 1980-01-01), fixed permissions, so the same site gives the same bytes. A
site that changed since it was built is refused (run `make site`). Older bundles in the
output folder are removed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zipfile
from pathlib import Path

import precache
import start

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"

NAME = "nn-visualizer"
BUNDLE = TOOLS / "bundle"
# (name in the bundle, source, executable)
LAUNCHER = (
    ("start.py", TOOLS / "start.py", True),
    ("serve.py", TOOLS / "serve.py", False),
    ("start.command", BUNDLE / "start.command", True),
    ("start.sh", BUNDLE / "start.sh", True),
    ("start.bat", BUNDLE / "start.bat", False),
)
README = BUNDLE / "README.txt"


def zip_time() -> tuple:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return time.gmtime(max(int(epoch), 315532800))[:6]  # zip times start in 1980
    return (1980, 1, 1, 0, 0, 0)


def bundle_entries(site: Path, version: str, files: list[str]) -> list[tuple[str, bytes, bool]]:
    """(path in the zip, content, executable) for every file of the bundle, sorted by path."""
    entries = []
    for name, source, executable in LAUNCHER:
        data = source.read_bytes()
        if name.endswith(".bat"):
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # cmd.exe wants CRLF
        entries.append((name, data, executable))
    readme = README.read_text(encoding="utf-8").format(version=version, port=start.PREFERRED_PORT)
    entries.append(("README.txt", readme.encode("utf-8"), False))
    for rel in files + [precache.SERVICE_WORKER]:
        entries.append((f"site/{rel}", (site / rel).read_bytes(), False))
    top = f"{NAME}-{version}/"
    return sorted((top + name, data, executable) for name, data, executable in entries)


def write_zip(target: Path, entries: list[tuple[str, bytes, bool]]) -> None:
    stamp = zip_time()
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w") as zf:
        for name, data, executable in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the permission bits below are honoured
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            zf.writestr(info, data, compresslevel=9)
    os.replace(partial, target)


def make_dist(site: Path, out: Path) -> tuple[Path, dict]:
    """Write the zip for the built site; return (its path, the site's build manifest)."""
    manifest = precache.check_built(site)
    files = precache.all_files(manifest)  # the on-demand training digits too: the stick has no network
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{NAME}-{manifest['version']}.zip"
    write_zip(target, bundle_entries(site, manifest["version"], files))
    for older in out.glob(f"{NAME}-*.zip"):  # one bundle in dist/: the current one
        if older != target:
            older.unlink()
    return target, manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the built site (default: site/)")
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="where to write the zip (default: dist/)")
    args = p.parse_args(argv)
    try:
        target, manifest = make_dist(args.site, args.out)
    except precache.StaleSite as exc:
        print(f"make_dist: error: {exc}", file=sys.stderr)
        return 2
    unpacked = sum((args.site / rel).stat().st_size for rel in precache.all_files(manifest))
    with zipfile.ZipFile(target) as zf:
        count = len(zf.infolist())
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB ({target.stat().st_size} bytes), {count} files; "
          f"site {unpacked / 1e6:.1f} MB unpacked, build {manifest['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
