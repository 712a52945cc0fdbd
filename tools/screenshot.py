#!/usr/bin/env python3
"""Take the README's screenshots from the real page (what `make screenshot` runs).

Serves site/ locally, opens it in headless Chromium, waits until Python is
ready, shows a test digit and writes docs/screenshot.png (laptop) and
docs/screenshot-phone.png (phone).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import browser  # noqa: E402
import serve  # noqa: E402

SHOTS = (("screenshot.png", {"width": 1280, "height": 860}, False), ("screenshot-phone.png", {"width": 390, "height": 844}, True))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sample", type=int, default=8, help="test digit to show (default %(default)s)")
    p.add_argument("--hash", default="", help="URL hash to open instead of #sample=N (e.g. '#sample=8&neuron=hidden_1:3')")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    httpd = serve.make_server(ROOT / "site", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = serve.url_of(httpd) + (args.hash or f"#sample={args.sample}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            b = browser.launch(pw)
            for name, viewport, mobile in SHOTS:
                page = b.new_page(viewport=viewport, is_mobile=mobile, has_touch=mobile, device_scale_factor=1)
                page.goto(url)
                page.wait_for_function("document.getElementById('status').dataset.state !== 'loading'", timeout=90_000)
                state = page.get_attribute("#status", "data-state")
                if state != "ready":
                    print(f"screenshot: the page did not get ready: {page.inner_text('#status')}", file=sys.stderr)
                    return 1
                page.wait_for_timeout(300)
                page.screenshot(path=str(args.out / name), full_page=not mobile)
                print(f"wrote {args.out / name}")
                page.close()
            b.close()
    finally:
        httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
