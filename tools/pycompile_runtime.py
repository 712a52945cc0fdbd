#!/usr/bin/env python3
"""Compile the vendored runtime's Python to bytecode once, at build time.

    python tools/pycompile_runtime.py --site site

Pyodide's standard library (``python_stdlib.zip``) and its numpy wheel hold
``.py`` sources only, so every page start compiled a few hundred modules to
bytecode before running them: measured, about a third of a cold start's CPU time
and half of a warm one's. This replaces, inside ``site/vendor/pyodide``, each
``.py`` of those two archives by the ``.pyc`` that the very same interpreter
makes of it (the vendored Pyodide, run under Node), so the browser only loads
bytecode:

- compiled by CPython 3.12 in wasm itself, so the magic number always matches;
- unchecked hash-based ``.pyc`` files in place of the sources (``json/decoder.pyc``
  beside where ``json/decoder.py`` was), which zipimport and the sourceless file
  loader import without a source to compare against;
- compiled as the browser's interpreter would compile them itself (same optimize
  level 0: docstrings and asserts kept), only without the column tables that
  put ``^^^^`` under the failing expression in tracebacks (``PYTHONNODEBUGRANGES``):
  bytecode is bigger than the source it replaces, and those tables are a third of
  it. Tracebacks still name the file and line, without the source text. (``-OO``
  would be smaller still, but numpy then fails to import: it attaches docstrings
  unless the *interpreter* runs with -OO, which PyScript cannot ask Pyodide for);
- the members ``tools/trim_runtime.py`` names (modules the page never imports,
  numpy's C headers, stubs and test helpers) are left out in the same pass;
- the archive comment records that and how it was compiled, so a compiled archive
  is never compiled again; results are cached in ``.cache/pyc/`` by the sha256 of
  the input and of the list of members left out, so a rebuild costs a copy, not a
  Node run;
- ``pyodide-lock.json``'s sha256 of the numpy wheel becomes the compiled wheel's,
  so ``pyodide.loadPackage`` still checks every byte it loads. The wheel that went
  in was the one vendor_runtime.py verified against the official lock file.

The app's own archive (site/app/pyscript_app.zip) is compiled the same way
(:func:`compile_app`): about 12,000 lines, which took a quarter of a second to
compile at every start on a fast machine (a second at a 4x slower CPU). Its
modules are compiled at ``-OO`` (:data:`APP_OPTIMIZE`): none of them reads a
docstring or has an assert, and without their docstrings the archive is a
quarter smaller. Its tracebacks still name the module and line. Its ``main.py`` stays a source: the
page runs it from its own file (a ``<script src>``), with top-level ``await``,
which only a script allows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import trim_runtime
from precache import file_sha256
from pyscript_app.core.export_format import sha256

ROOT = Path(__file__).resolve().parent.parent
OPTIMIZE = 0  # see the module docstring: 2 (-OO) breaks numpy's import
# The app's own modules at -OO: without their docstrings (a quarter of the archive). None of its code reads a
# docstring or has an assert to lose (tests/test_pycompile.py checks both), and nothing else imports them.
APP_OPTIMIZE = 2


def mark_of(optimize: int) -> str:
    """The comment of an archive compiled at ``optimize``: a compiled archive is never compiled again."""
    return (f"nn-visualizer: .py compiled to .pyc by tools/pycompile_runtime.py (optimize={optimize}, no debug ranges), "
            "unused members left out (tools/trim_runtime.py)")


MARK, APP_MARK = mark_of(OPTIMIZE), mark_of(APP_OPTIMIZE)
LOCK_NAME = "pyodide-lock.json"
NODE_TIMEOUT = 600

# Run by Node: boots the vendored Pyodide and rewrites each archive.
# argv: the pyodide folder (a path ending in /), then
# {"python", "optimize", "mark", "jobs": [[in, out, prefix, [members left out], [.py members kept as sources]]]}.
COMPILER_JS = r"""
const [indexURL, taskJSON] = process.argv.slice(2);
const task = JSON.parse(taskJSON);
const { pathToFileURL } = await import("node:url");
const { loadPyodide } = await import(pathToFileURL(indexURL + "pyodide.mjs").href);
const fs = await import("node:fs");
const pyodide = await loadPyodide({ indexURL, env: { PYTHONNODEBUGRANGES: "1" } });
pyodide.globals.set("OPTIMIZE", task.optimize);
pyodide.globals.set("MARK", task.mark);
for (const [input, output, prefix, leftOut, keep = []] of task.jobs) {
  pyodide.FS.writeFile("/tmp/in.zip", fs.readFileSync(input));
  pyodide.globals.set("PREFIX", prefix);
  pyodide.globals.set("LEFT_OUT", pyodide.toPy(leftOut));
  pyodide.globals.set("KEEP", pyodide.toPy(keep));
  pyodide.runPython(task.python);
  fs.writeFileSync(output, pyodide.FS.readFile("/tmp/out.zip"));
}
"""

COMPILER_PY = r"""
import importlib.util
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

with zipfile.ZipFile("/tmp/in.zip") as src, zipfile.ZipFile("/tmp/out.zip", "w") as out:
    left_out = set(LEFT_OUT)
    for info in src.infolist():
        if info.filename in left_out:
            continue
        data = src.read(info)
        name = info.filename
        if name.endswith(".py") and name not in KEEP:
            code = compile(data, PREFIX + name, "exec", dont_inherit=True, optimize=OPTIMIZE)
            data = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False))
            name += "c"
        item = zipfile.ZipInfo(name, date_time=info.date_time)
        item.external_attr = info.external_attr
        item.compress_type = zipfile.ZIP_DEFLATED
        out.writestr(item, data)
    out.comment = MARK.encode()
"""


class CompileError(Exception):
    """A failure to report as one line."""


def is_compiled(path: Path, mark: str = MARK) -> bool:
    with zipfile.ZipFile(path) as z:
        return z.comment == mark.encode()


def targets(pyodide_dir: Path) -> list[tuple[Path, str, str]]:
    """(archive, the folder its files land in inside the browser's file system, its trim_runtime rule)."""
    lock = json.loads((pyodide_dir / LOCK_NAME).read_text())
    major, minor = lock["info"]["python"].split(".")[:2]
    return [
        (pyodide_dir / "python_stdlib.zip", f"/lib/python{major}{minor}.zip/", "stdlib"),
        (pyodide_dir / lock["packages"]["numpy"]["file_name"], f"/lib/python{major}.{minor}/site-packages/", "numpy"),
    ]


def members_left_out(path: Path, kind: str) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return trim_runtime.left_out(kind, z.namelist())


def _run_node(pyodide_dir: Path, jobs: list[list[str]], node: str, optimize: int = OPTIMIZE) -> None:
    task = json.dumps({"python": COMPILER_PY, "optimize": optimize, "mark": mark_of(optimize), "jobs": jobs})
    with tempfile.TemporaryDirectory(prefix="pycompile-") as tmp:
        runner = Path(tmp) / "compile.mjs"
        runner.write_text(COMPILER_JS)
        index_url = str(pyodide_dir.resolve()) + "/"
        try:
            done = subprocess.run([node, str(runner), index_url, task], capture_output=True,
                                  text=True, timeout=NODE_TIMEOUT)
        except FileNotFoundError:
            raise CompileError(f"`{node}` was not found: Node.js is needed to build the site (as for npm ci)") from None
        except subprocess.TimeoutExpired:
            raise CompileError(f"compiling the runtime's Python took over {NODE_TIMEOUT} s") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CompileError("compiling the runtime's Python failed: " + " | ".join(tail))


def _replace(path: Path, data: bytes) -> None:
    """Put `data` at `path` as a new file (never writing through a link into its target)."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)


def compile_runtime(pyodide_dir: Path, cache_dir: Path, node: str = "node", log=print) -> list[Path]:
    """Compile the stdlib zip and the numpy wheel in ``pyodide_dir`` (see the module docstring).

    Returns the archives that changed. Raises CompileError (and leaves the folder as it
    was) on any failure.
    """
    pyodide_dir, cache_dir = Path(pyodide_dir), Path(cache_dir)
    say = log or (lambda line: None)
    todo = [(path, prefix, members_left_out(path, kind)) for path, prefix, kind in targets(pyodide_dir)
            if not is_compiled(path)]
    if not todo:
        return []
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = {path: cache_dir / (f"{file_sha256(path)}-{sha256(json.dumps(left).encode())[:16]}"
                                 f"-o{OPTIMIZE}.zip") for path, _, left in todo}
    jobs = [[str(path), str(cached[path]) + ".part", prefix, left] for path, prefix, left in todo
            if not cached[path].exists()]
    if jobs:
        say(f"pycompile: compiling {', '.join(Path(j[0]).name for j in jobs)} to bytecode (Node + the vendored Pyodide)")
        _run_node(pyodide_dir, jobs, node)
        for job in jobs:
            part = Path(job[1])
            if not is_compiled(part):
                raise CompileError(f"{part.name} came out unmarked: the compiler did not run to the end")
            part.replace(part.with_suffix(""))  # .zip.part -> .zip: the cache holds whole results only
    lock_path = pyodide_dir / LOCK_NAME
    lock = json.loads(lock_path.read_text())
    numpy = lock["packages"]["numpy"]
    for path, _, left in todo:
        before = path.stat().st_size
        _replace(path, cached[path].read_bytes())
        if path.name == numpy["file_name"]:
            numpy["sha256"] = file_sha256(path)
        say(f"pycompile: {path.name}: {before / 1e6:.2f} MB of sources -> {path.stat().st_size / 1e6:.2f} MB of bytecode"
            f" ({len(left)} unused files left out)")
    _replace(lock_path, trim_runtime.lock_bytes(lock))
    return [path for path, _, _ in todo]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the site folder (default: site/)")
    p.add_argument("--cache", type=Path, default=ROOT / ".cache" / "pyc", help="where compiled archives are kept")
    p.add_argument("--node", default="node", help="the Node.js executable (default: node)")
    args = p.parse_args(argv)
    try:
        compile_runtime(args.site / "vendor" / "pyodide", args.cache, args.node)
    except CompileError as exc:
        print(f"pycompile: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def compile_app(bundle: Path, pyodide_dir: Path, cache_dir: Path, prefix: str, keep=(), node: str = "node",
                log=print) -> bool:
    """Replace the app's archive ``bundle`` (its modules as sources) by the same archive with every
    ``.py`` but those in ``keep`` compiled by the vendored Pyodide, as for the runtime (``prefix``: where the
    page unpacks it, for the file names in tracebacks). Cached by the archive's sha256. Returns whether it
    changed; raises CompileError (and leaves the archive as it was) on any failure."""
    bundle, cache_dir = Path(bundle), Path(cache_dir)
    if is_compiled(bundle, APP_MARK):
        return False
    keep = sorted(keep)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"app-{file_sha256(bundle)}-{sha256(json.dumps([prefix, keep]).encode())[:16]}-o{APP_OPTIMIZE}.zip"
    if not cached.exists():
        if log:
            log(f"pycompile: compiling {bundle.name} to bytecode (Node + the vendored Pyodide)")
        _run_node(Path(pyodide_dir), [[str(bundle), str(cached) + ".part", prefix, [], keep]], node, APP_OPTIMIZE)
        part = Path(str(cached) + ".part")
        if not is_compiled(part, APP_MARK):
            raise CompileError(f"{part.name} came out unmarked: the compiler did not run to the end")
        part.replace(cached)
    _replace(bundle, cached.read_bytes())
    return True
