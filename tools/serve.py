#!/usr/bin/env python3
"""Serve a static folder (the built site) over HTTP on this computer only.

    python serve.py --root site --port 8000

Standalone: standard library only, no imports from the project, so the same
file also works as the launcher of the offline bundle. Binds to 127.0.0.1 by
default, sends the right MIME types for WebAssembly, ES modules, wheels and
numpy files, and ``Cache-Control: no-cache`` so a rebuilt site is picked up
on reload.
"""

from __future__ import annotations

import argparse
import errno
import functools
import signal
import socket
import socketserver
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Checked before Python's mimetypes (whose answers depend on the OS's
# mime.types): browsers refuse .wasm streaming and module scripts otherwise.
MIME_TYPES = {
    "": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".npy": "application/octet-stream",
    ".npz": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".toml": "application/toml",
    ".py": "text/x-python; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


class SiteRequestHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    verbose = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.verbose:
            super().log_message(format, *args)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    # On Windows SO_REUSEADDR lets a second server bind a port that is in use (and a busy
    # port would go unnoticed); there a closed port is free again at once without it.
    allow_reuse_address = sys.platform != "win32"

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall
        # for seconds on a machine without working DNS; the name is unused.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port

    def handle_error(self, request, client_address) -> None:
        # A browser that navigates away mid-download is not an error worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False) -> ThreadingHTTPServer:
    """A server for the files under ``root``, bound but not yet serving.

    ``port=0`` picks a free port (read it from ``server.server_address[1]``).
    Raises FileNotFoundError when root is not a folder and OSError (errno
    EADDRINUSE) when the port is taken. Call ``serve_forever()`` to run it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder to serve", str(root))
    handler = type("Handler", (SiteRequestHandler,), {"verbose": verbose})
    server_class = SiteServer
    if ":" in host:  # an IPv6 literal such as ::1
        server_class = type("SiteServer6", (SiteServer,), {"address_family": socket.AF_INET6})
    return server_class((host, port), functools.partial(handler, directory=str(root.resolve())))


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def serve_until_interrupted(server: ThreadingHTTPServer) -> None:
    """Serve until Ctrl-C, then say "Stopped." (no traceback).

    Ctrl-C (SIGINT) is handled here, not left to Python's default: a process started as a
    background job (``cmd &``, a CI runner, some desktop launchers) gets SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler, so the server would never stop."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve the built site on this computer (stop with Ctrl-C).",
        epilog="If the port is already in use the server does not start: it says so and exits "
               "with status 2 (pick another --port, or --port 0 for any free one).")
    parser.add_argument("--root", default="site", help="folder to serve (default: site)")
    parser.add_argument("--port", type=int, default=8000,
                        help="TCP port (default: 8000; 0 picks a free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    try:
        server = make_server(Path(args.root), args.host, args.port, verbose=args.verbose)
    except FileNotFoundError:
        print(f"serve: error: {args.root} is not a folder (build the site first: make site)",
              file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"serve: error: port {args.port} on {args.host} is busy (another server is using it); "
                  "choose another with --port N, or --port 0 for any free port", file=sys.stderr)
        else:
            print(f"serve: error: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
                  file=sys.stderr)
        return 2

    shown = args.root.rstrip("/\\") + "/"
    with server:
        print(f"Serving {shown} at {url_of(server)}  (Ctrl-C stops)", flush=True)
        serve_until_interrupted(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
