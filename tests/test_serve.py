"""tools/serve.py: the static server for the site (and the offline bundle's launcher)."""

from __future__ import annotations

import ast
import errno
import http.client
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import serve

from conftest import as_a_background_job

ROOT = Path(__file__).resolve().parent.parent
SERVE_PY = ROOT / "tools" / "serve.py"


FILES = {  # path: (body, the Content-Type it must be served with; None: any of the alternatives)
    "runtime/pyodide.asm.wasm": (b"\0asm\1\0\0\0", ("application/wasm",)),
    "runtime/pyodide.mjs": (b"export const x = 1;\n", ("text/javascript",)),
    "runtime/core.js": (b"console.log(1);\n", ("text/javascript",)),
    "model/weights.npy": (b"\x93NUMPY\1\0v\0", ("application/octet-stream",)),
    "data/test.npz": (b"PK\3\4npz", ("application/octet-stream", "application/zip")),
    "runtime/numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl": (b"PK\3\4whl",
                                                                   ("application/octet-stream", "application/zip")),
    "runtime/python_stdlib.zip": (b"PK\3\4zip", ("application/octet-stream", "application/zip")),
    "model/manifest.json": (b'{"a": 1}', ("application/json",)),
    "pyscript.toml": (b'packages = ["numpy"]\n', ("application/toml", "text/plain")),
    "app/main.py": (b"print(1)\n", ("text/x-python", "text/plain")),
    "style.css": (b"body {}\n", ("text/css",)),
    "index.html": (b"<!doctype html><title>t</title>\n", ("text/html",)),
    "icon.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", ("image/svg+xml",)),
    "icon.png": (b"\x89PNG\r\n\x1a\n", ("image/png",)),
    "manifest.webmanifest": (b"{}", ("application/manifest+json",)),
}


def essence(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for rel, (body, _) in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    (root.parent / "secret.txt").write_text("outside the root")
    return root


@pytest.fixture(scope="module")
def server(site_root):
    srv = serve.make_server(site_root, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("rel", sorted(FILES))
def test_content_type_body_and_no_cache(server, rel):
    body, types = FILES[rel]
    status, headers, got = get(server.server_address[1], "/" + rel)
    assert status == 200
    assert got == body
    assert essence(headers.get("content-type")) in types
    assert headers.get("cache-control") == "no-cache"


def test_missing_files_and_escapes_are_404(server):
    port = server.server_address[1]
    assert get(port, "/model/nothing.npy")[0] == 404
    status, _, body = get(port, "/../secret.txt")
    assert status == 404 and b"outside the root" not in body


def test_binds_to_loopback_by_default_and_port_0_is_a_free_port(site_root, server):
    assert server.server_address[0] == "127.0.0.1"
    other = serve.make_server(site_root, port=0)
    try:
        ports = {server.server_address[1], other.server_address[1]}
        assert 0 not in ports and len(ports) == 2
        assert other.server_address[0] == "127.0.0.1"
    finally:
        other.server_close()


def test_a_busy_port_is_an_error(site_root, server):
    with pytest.raises(OSError) as err:
        serve.make_server(site_root, port=server.server_address[1])
    assert err.value.errno == errno.EADDRINUSE


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SERVE_PY), *args], capture_output=True, text=True, timeout=30)


def test_cli_busy_port_and_missing_root_exit_2_with_one_line(site_root, server, tmp_path):
    busy = run_cli("--root", str(site_root), "--port", str(server.server_address[1]))
    assert busy.returncode == 2
    assert busy.stderr.count("\n") == 1 and "busy" in busy.stderr and "Traceback" not in busy.stderr
    missing = run_cli("--root", str(tmp_path / "no-site"), "--port", "0")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


@pytest.mark.parametrize("verbose,background", [(False, False), (True, False), (False, True)],
                         ids=["quiet", "verbose", "from-a-background-job"])
def test_cli_start_line_quiet_log_and_clean_ctrl_c(site_root, verbose, background):
    cmd = [sys.executable, str(SERVE_PY), "--root", str(site_root), "--port", "0"]
    proc = subprocess.Popen(cmd + (["--verbose"] if verbose else []),
                            preexec_fn=as_a_background_job if background else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"Serving (.+)/ at http://127\.0\.0\.1:(\d+)/  \(Ctrl-C stops\)\n", line)
        assert match, line
        assert match.group(1) == str(site_root)
        port = int(match.group(2))
        assert port > 0
        assert get(port, "/index.html")[0] == 200
        assert get(port, "/nothing")[0] == 404
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Traceback" not in err
    if verbose:
        assert "GET /index.html" in err
    else:
        assert err == ""


def test_serve_py_is_standalone():
    """Only the standard library: the file is copied alone into the offline bundle."""
    tree = ast.parse(SERVE_PY.read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add(node.module.split(".")[0])
    assert modules and modules <= set(sys.stdlib_module_names) | {"__future__"}


def test_listening_socket_accepts_on_loopback(server):
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5):
        pass
