"""tools/pycompile_runtime.py: the vendored stdlib and numpy ship as bytecode of exactly their sources.

Whether that bytecode runs right is what the page tests show (numpy loads in the
browser and the page matches the CPython forward pass); here: that nothing was
added, lost (beyond what tools/trim_runtime.py leaves out) or left as source, that
the lock file lets loadPackage check the compiled wheel, and that a rebuild reuses
the cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import pytest

from conftest import ROOT, SITE
import pycompile_runtime
import trim_runtime


VENDOR = SITE / "vendor" / "pyodide"
NPM = ROOT / "node_modules" / "pyodide"
WHEELS = ROOT / ".cache" / "wheels"
MAGIC_312 = (3531).to_bytes(2, "little") + b"\r\n"  # CPython 3.12's bytecode magic number
OFFICIAL_LOCK = json.loads((NPM / "pyodide-lock.json").read_text())


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_compiled(original: zipfile.ZipFile, compiled: zipfile.ZipFile, kind: str) -> int:
    """Every .py became a .pyc of CPython 3.12 (unchecked hash-based), everything else is untouched,
    except the members trim_runtime leaves out, which are gone."""
    names = set(compiled.namelist())
    left_out = set(trim_runtime.left_out(kind, original.namelist()))
    assert left_out  # the rule matched something: the lists still fit this runtime
    n = 0
    for info in original.infolist():
        if info.filename in left_out:
            assert info.filename not in names and info.filename + "c" not in names
        elif info.filename.endswith(".py"):
            assert info.filename not in names
            pyc = compiled.read(info.filename + "c")
            assert pyc[:4] == MAGIC_312, info.filename
            assert int.from_bytes(pyc[4:8], "little") == 0b01, info.filename  # hash-based, unchecked
            n += 1
        else:
            assert compiled.read(info.filename) == original.read(info), info.filename
    assert len(names) == len(original.namelist()) - len(left_out)
    assert compiled.comment.decode() == pycompile_runtime.MARK
    return n


def test_the_standard_library_is_bytecode_of_pyodides_own():
    with zipfile.ZipFile(NPM / "python_stdlib.zip") as original, zipfile.ZipFile(VENDOR / "python_stdlib.zip") as compiled:
        assert check_compiled(original, compiled, "stdlib") > 250


def test_the_numpy_wheel_is_bytecode_of_the_verified_one_and_the_lock_checks_it():
    entry = OFFICIAL_LOCK["packages"]["numpy"]
    source = WHEELS / entry["file_name"]
    if not source.exists():
        pytest.skip("the wheel cache holds no numpy wheel (make site fills it)")
    assert sha256(source) == entry["sha256"]  # the input is the official wheel
    served = VENDOR / entry["file_name"]
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(served) as compiled:
        assert check_compiled(original, compiled, "numpy") > 100
    lock = json.loads((VENDOR / "pyodide-lock.json").read_text())
    assert lock["packages"]["numpy"]["sha256"] == sha256(served)  # what pyodide.loadPackage checks
    lock["packages"]["numpy"]["sha256"] = entry["sha256"]
    assert lock == trim_runtime.trim_lock(OFFICIAL_LOCK)  # nothing else in the (shipped part of the) lock file changed


def pristine_runtime(tmp_path):
    """A copy of the runtime as vendored before compiling (the npm files, the lock file listing
    numpy only, and the official wheel)."""
    folder = tmp_path / "pyodide"
    folder.mkdir()
    for name in ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip"):
        (folder / name).symlink_to(NPM / name)
    (folder / "pyodide-lock.json").write_bytes(trim_runtime.lock_bytes(trim_runtime.trim_lock(OFFICIAL_LOCK)))
    wheel = WHEELS / OFFICIAL_LOCK["packages"]["numpy"]["file_name"]
    if not wheel.exists():
        pytest.skip("the wheel cache holds no numpy wheel (make site fills it)")
    shutil.copyfile(wheel, folder / wheel.name)
    return folder


def test_an_already_compiled_runtime_is_left_alone(tmp_path):
    folder = tmp_path / "pyodide"
    shutil.copytree(VENDOR, folder)
    before = {p.name: sha256(p) for p in folder.iterdir()}
    assert pycompile_runtime.compile_runtime(folder, tmp_path / "empty-cache", node="/nonexistent/node", log=None) == []
    assert {p.name: sha256(p) for p in folder.iterdir()} == before


def test_a_rebuild_takes_the_compiled_archives_from_the_cache(tmp_path):
    folder = pristine_runtime(tmp_path)
    lines = []
    # the build of site/ filled ROOT/.cache/pyc; a missing Node proves nothing is compiled again
    changed = pycompile_runtime.compile_runtime(folder, ROOT / ".cache" / "pyc", node="/nonexistent/node", log=lines.append)
    assert sorted(p.name for p in changed) == sorted(["python_stdlib.zip", OFFICIAL_LOCK["packages"]["numpy"]["file_name"]])
    for p in changed:
        assert sha256(p) == sha256(VENDOR / p.name)
    assert sha256(folder / "pyodide-lock.json") == sha256(VENDOR / "pyodide-lock.json")
    assert not any("compiling" in line for line in lines)


def test_without_node_the_build_says_so_and_changes_nothing(tmp_path):
    folder = pristine_runtime(tmp_path)
    before = {p.name: sha256(p) for p in folder.iterdir()}
    with pytest.raises(pycompile_runtime.CompileError, match="Node.js"):
        pycompile_runtime.compile_runtime(folder, tmp_path / "empty-cache", node="/nonexistent/node", log=None)
    assert {p.name: sha256(p) for p in folder.iterdir()} == before


def test_a_compiled_app_archive_is_not_compiled_again(tmp_path):
    """compile_app leaves an archive already compiled as it is, without Node."""
    import build_site

    bundle = tmp_path / "app.zip"
    shutil.copy(SITE / build_site.APP_BUNDLE, bundle)
    before = bundle.read_bytes()
    assert pycompile_runtime.compile_app(bundle, VENDOR, tmp_path / "cache", build_site.APP_HOME, node="/nonexistent/node",
                                         log=None) is False
    assert bundle.read_bytes() == before


def test_the_app_ships_without_docstrings_and_loses_nothing_by_it():
    """The app's modules are compiled at -OO (pycompile_runtime.APP_OPTIMIZE): their docstrings stay out of
    the download. That changes nothing they do only while none reads a docstring or asserts."""
    import ast

    import build_site

    for path in (ROOT / "pyscript_app").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Assert), f"{path.name}:{node.lineno}: an assert (-OO drops it)"
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            assert name not in ("__doc__", "__debug__", "getdoc"), f"{path.name}:{node.lineno}: reads {name}"
    with zipfile.ZipFile(SITE / build_site.APP_BUNDLE) as bundle:
        assert bundle.comment.decode() == pycompile_runtime.APP_MARK
        checked = 0
        for path in (ROOT / "pyscript_app").rglob("*.py"):
            doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
            name = path.relative_to(ROOT).as_posix() + "c"
            if doc and len(doc) > 40 and name in bundle.namelist():
                assert doc.encode() not in bundle.read(name), name  # (marshal keeps a string's bytes as they are)
                checked += 1
        assert checked > 20
