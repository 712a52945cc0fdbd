"""What of the vendored runtime the page never loads, and so is not shipped (a cold transfer under 18 MB).

Used by the build, not run by itself:

- ``tools/vendor_runtime.py`` copies only the PyScript files the page loads
  (``pyscript_files``), only the wheels of ``SHIPPED_PACKAGES``, and a
  ``pyodide-lock.json`` that lists only those (``trim_lock``);
- ``tools/pycompile_runtime.py`` leaves the members named by ``left_out`` out of
  ``python_stdlib.zip`` and the numpy wheel while it compiles them to bytecode.

How each list was derived, what it saves, and how to put a module back:
docs/runtime-trim.md.
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


# --------------------------------------------------------------------------
# Archive members left out. Each name below was checked to be absent from
# sys.modules after a page load that used every feature (random digits, drawing,
# neuron cards, knock-outs, connections, the error explorer, the offline copy),
# and to be imported by none of Pyodide's own Python (pyodide, _pyodide), PyScript's
# Python package, the app, or the numpy modules that `import numpy` loads.
# A listed module that something does import fails with ModuleNotFoundError: take it
# off the list (docs/runtime-trim.md).

# Top-level stdlib modules and packages ("urllib/request": one module of a package).
STDLIB_LEFT_OUT = (
    # sub-processes, sockets, servers and mail: a browser page has none of them
    "multiprocessing", "concurrent/futures/process", "http", "urllib/request", "urllib/robotparser",
    "wsgiref", "xmlrpc", "ftplib", "imaplib", "poplib", "smtplib", "nntplib", "telnetlib", "cgi", "cgitb",
    "webbrowser", "mailbox", "mailcap", "pty",
    # tests, debugging, profiling, help() and tools for Python sources
    "unittest", "doctest", "difflib", "pdb", "bdb", "pydoc", "trace", "tracemalloc", "profile",
    "cProfile", "pstats", "timeit", "tabnanny", "pyclbr", "modulefinder", "pickletools",
    "compileall", "zipapp", "symtable",
    # command-line parsing and tools: the page has no command line
    "argparse", "optparse", "json/tool",
    # file formats the page never reads or writes
    "xml", "plistlib", "aifc", "sunau", "wave", "chunk", "sndhdr", "imghdr", "uu", "xdrlib",
    # the pure-Python twins of built-in C modules (_io, _datetime are always there)
    "_pyio", "_pydatetime",
    # demos and jokes
    "__hello__", "__phello__", "antigravity", "this",
)

# encodings/: the codecs a page can meet. The rest (CJK multibyte and 8-bit code
# pages) are looked up only by name, and nothing here asks for them.
STDLIB_ENCODINGS_KEPT = (
    "__init__", "aliases", "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_7", "utf_16", "utf_16_be",
    "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "charmap", "unicode_escape", "raw_unicode_escape",
    "idna", "punycode", "base64_codec", "hex_codec", "zlib_codec", "bz2_codec", "quopri_codec",
    "uu_codec", "rot_13", "undefined",
    "cp437",  # zipfile decodes member names with it (imported on every page load)
    "cp1252",  # the commonest legacy web encoding: kept as a margin, 2 kB
)

# numpy: build-time and type-checking files, f2py, numpy.testing, the extension
# modules that only numpy's own test suite imports, and three subpackages that
# `import numpy` loads only on first use and the app never uses (np.ma, np.fft,
# np.polynomial; numpy.lib.recfunctions needs np.ma; numpy.ma's test helpers need
# numpy.testing). Licence files always stay.
NUMPY_LEFT_OUT = (
    r"\.pyi$", r"\.pxd$", r"/py\.typed$",  # type stubs and Cython declarations
    r"^numpy/_core/include/", r"^numpy/_core/lib/", r"^numpy/random/lib/",  # C headers, static libraries
    r"^numpy/random/_examples/", r"^numpy/_pyinstaller/",
    r"^numpy/f2py/",  # the Fortran wrapper generator (needs a compiler)
    r"^numpy/testing/",  # needs unittest, which STDLIB_LEFT_OUT leaves out
    r"^numpy/_configtool\.",  # the numpy-config command
    r"^numpy/typing/mypy_plugin\.",  # a plugin for the mypy type checker
    r"^numpy/ma/", r"^numpy/fft/", r"^numpy/polynomial/", r"^numpy/lib/recfunctions\.",
    r"^numpy/_core/_(?:operand_flag|rational|struct_ufunc|umath)_tests\.", r"^numpy/_core/_simd\.",
)
_LICENCE = re.compile(r"(?:^|/)(?:LICEN[CS]E|COPYING)[^/]*$", re.IGNORECASE)


def _stdlib_left_out(name: str) -> bool:
    if name.startswith("encodings/"):
        module = name[len("encodings/"):]
        return module.endswith(".py") and "/" not in module and module[:-3] not in STDLIB_ENCODINGS_KEPT
    return any(name == f"{entry}.py" or name.startswith(f"{entry}/") for entry in STDLIB_LEFT_OUT)


_NUMPY_LEFT_OUT = re.compile("|".join(NUMPY_LEFT_OUT))


def _numpy_left_out(name: str) -> bool:
    return bool(_NUMPY_LEFT_OUT.search(name)) and not _LICENCE.search(name)


RULES = {"stdlib": _stdlib_left_out, "numpy": _numpy_left_out}


def left_out(kind: str, names) -> list[str]:
    """The archive members of ``names`` that are not shipped; ``kind`` is "stdlib" or "numpy"."""
    rule = RULES[kind]
    return sorted(name for name in names if rule(name))
