#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Start the Neural Network Visualizer from the offline bundle: serve the page on
this computer and open it in the default browser.

    python3 start.py            (or double-click start.command, start.bat or start.sh)

Standard library only (Python 3.7 or newer); the bundle ships it next to
serve.py, the small static server it uses. It serves the folder ``site`` next
to this file on 127.0.0.1 (this computer only), on port 8419 when that port
is free (the same address every time, so the browser's offline copy of the
page is reused) and on any free port otherwise. Ctrl-C, or closing the
window, stops it.

This file is kept parseable by old Pythons so that it can say which one it needs.
"""

from __future__ import print_function

import sys

MINIMUM = (3, 7)

if sys.version_info < MINIMUM:
    sys.stderr.write("start.py: the Neural Network Visualizer needs Python 3.7 or newer; this is Python "
                     "%d.%d. Install a current Python 3 and run it again.\n" % sys.version_info[:2])
    sys.exit(1)

import argparse  # noqa: E402
import errno  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import webbrowser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import serve  # noqa: E402  (serve.py, next to this file)

HOST = "127.0.0.1"
PREFERRED_PORT = 8419


def open_server(root, port):
    """(server, note): a server on ``port`` if it is free, else on any free port (note says so)."""
    try:
        return serve.make_server(root, HOST, port), None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
    return serve.make_server(root, HOST, 0), "Port {0} is in use, so another free port is used.".format(port)


def open_browser(url):
    try:
        opened = webbrowser.open(url)
    except Exception:  # noqa: BLE001 (no browser, broken browser setting: say so, keep serving)
        opened = False
    if not opened:
        print("No browser could be opened from here: open {0} in your browser.".format(url), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="start.py",
        description="Serve the Neural Network Visualizer on this computer and open it in the browser.")
    parser.add_argument("--root", default=os.path.join(HERE, "site"),
                        help="the site folder to serve (default: the folder 'site' next to start.py)")
    parser.add_argument("--port", type=int, default=PREFERRED_PORT,
                        help="port to use if it is free (default: %(default)s); otherwise any free port")
    parser.add_argument("--no-browser", action="store_true",
                        help="only print the address, do not open a browser (also: NNV_NO_BROWSER=1)")
    args = parser.parse_args(argv)
    no_browser = args.no_browser or os.environ.get("NNV_NO_BROWSER", "") not in ("", "0")

    if not os.path.isfile(os.path.join(args.root, "index.html")):
        print("start.py: error: {0} does not hold the page (index.html). Unzip the whole bundle and keep "
              "the 'site' folder next to start.py.".format(args.root), file=sys.stderr)
        return 2
    try:
        server, note = open_server(args.root, args.port)
    except OSError as exc:
        print("start.py: error: cannot listen on {0}: {1}".format(HOST, exc.strerror or exc), file=sys.stderr)
        return 2

    url = serve.url_of(server)
    with server:
        if note:
            print(note)
        print("Neural Network Visualizer is running at {0}".format(url))
        print("Keep this window open while you use the page. To stop: press Ctrl-C or close the window.",
              flush=True)
        if not no_browser:
            threading.Thread(target=open_browser, args=(url,), daemon=True).start()
        serve.serve_until_interrupted(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
