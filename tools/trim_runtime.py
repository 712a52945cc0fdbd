"""What of the vendored runtime the page never loads, and so is not shipped (issue 7: cold transfer < 18 MB).

Used by the build, not run by itself:

- ``tools/vendor_runtime.py`` copies only the PyScript files the page loads
  (``pyscript_files``), only the wheels of ``SHIPPED_PACKAGES``, and a
  ``pyodide-lock.json`` that lists only those (``trim_lock``).

How each list was derived: docs/runtime-trim.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# --------------------------------------------------------------------------
# PyScript: core.js, what it imports statically, and the lazy chunks this page's
# start-up does import. Every other chunk of the dist (codemirror, xterm, the
# editor, terminal, MicroPython, py-game, donkey, the TOML parser, the zip
# reader that only the MicroPython path uses, storage.js, service-worker.js,
# core.css) is imported only by a feature this page switches off or never uses.

PYSCRIPT_ENTRY = "core.js"
# core imports the "error" plugin's chunk even when the config says "!error" (seen in
# every page load); no other lazy chunk is ever requested.
PYSCRIPT_LAZY_CHUNKS = ("error",)
_STATIC_IMPORT = re.compile(r'(?:\bfrom|\bimport)\s*"\./([\w.-]+\.js)"')
_CHUNK = re.compile(r"^(?P<base>.+)-[\w-]{8}\.js$")  # name-<8-character build hash>.js


class TrimError(Exception):
    """The runtime does not look as these lists expect (another PyScript, say)."""


def pyscript_files(dist: Path) -> list[str]:
    """The files of PyScript's dist/ that the page loads: core.js, the lazy chunks
    named in PYSCRIPT_LAZY_CHUNKS, and everything those import statically."""
    dist = Path(dist)
    chunks = {m["base"]: p.name for p in dist.glob("*.js") if (m := _CHUNK.match(p.name))}
    missing = [base for base in PYSCRIPT_LAZY_CHUNKS if base not in chunks]
    if missing or not (dist / PYSCRIPT_ENTRY).is_file():
        raise TrimError(f"{dist} has no {PYSCRIPT_ENTRY} or no chunk named {', '.join(missing)}-*.js: "
                        "check tools/trim_runtime.py's PyScript list against this PyScript version")
    todo = [PYSCRIPT_ENTRY, *(chunks[base] for base in PYSCRIPT_LAZY_CHUNKS)]
    keep: set[str] = set()
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if not (dist / name).is_file():
            raise TrimError(f"{dist / name} (imported by PyScript itself) is missing")
        keep.add(name)
        todo += _STATIC_IMPORT.findall((dist / name).read_text(encoding="utf-8"))
    return sorted(keep)


# --------------------------------------------------------------------------
# Pyodide's lock file: only the packages that are shipped. Pyodide reads it at
# start-up (and pyodide.loadPackage resolves names and checks sha256 from it); a
# package that is listed but not shipped could only ever end in a 404.

SHIPPED_PACKAGES = ("numpy",)


def trim_lock(lock: dict, keep=SHIPPED_PACKAGES) -> dict:
    """``lock`` with only the packages in ``keep`` and their dependencies."""
    packages = lock["packages"]
    wanted, todo = set(), list(keep)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += packages[name].get("depends", [])
    return {**lock, "packages": {name: packages[name] for name in sorted(wanted)}}


def lock_bytes(lock: dict) -> bytes:
    """The lock file as written into site/vendor (compact: it is downloaded at every cold start)."""
    return json.dumps(lock, separators=(",", ":")).encode()
