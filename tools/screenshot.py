#!/usr/bin/env python3
"""Take the README's screenshots from the real page (what `make screenshot` runs).

Serves site/ locally, opens it in headless Chromium, waits until Python is
ready, shows a test digit in the convolutional network with a change that
fools it (the why panel below the view) and writes docs/screenshot.png (laptop),
docs/screenshot-phone.png (phone) and docs/screenshot-draw.png (a digit drawn
on the pad with mouse events).
"""

from __future__ import annotations

import argparse
import sys
import threading
import urllib.parse
from pathlib import Path

import browser
import serve

ROOT = Path(__file__).resolve().parent.parent

SHOTS = (("screenshot.png", {"width": 1400, "height": 900}, False), ("screenshot-phone.png", {"width": 390, "height": 844}, True))
VIEW = "#model=cnn&sample=8&attack=3"  # the convolutional network, and why panel's "Make it a 3" done
TOUR_SEEN = "localStorage.setItem('nnv-tour-dismissed', 'true')"  # a returning visitor: no tour over the page


# A "2" as a polyline, in fractions of the pad (drawn with real mouse events).
TWO = ((0.3, 0.25), (0.5, 0.15), (0.7, 0.25), (0.65, 0.45), (0.35, 0.85), (0.75, 0.85))


def draw_shot(b, base: str, path: Path) -> None:
    page = b.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    page.add_init_script(TOUR_SEEN)
    page.goto(base + "#mode=draw")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ready'", timeout=90_000)
    box = page.locator("#draw-pad").bounding_box()
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])  # noqa: E731
    page.mouse.move(*at(TWO[0]))
    page.mouse.down()
    for point in TWO[1:]:
        page.mouse.move(*at(point), steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")
    page.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hash", default=VIEW, help="the address to open (default %(default)s; e.g. '#sample=8&neuron=hidden_1:3')")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    p.add_argument("--site", type=Path, default=ROOT / "site", help="the built site to serve (default: site/)")
    p.add_argument("--no-draw", action="store_true", help="skip the draw-mode screenshot")
    p.add_argument("--width", type=int, default=SHOTS[0][1]["width"], help="the laptop screenshot's width in px")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    httpd = serve.make_server(args.site, port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = serve.url_of(httpd) + args.hash
    address = urllib.parse.parse_qs(args.hash.lstrip("#"))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            b = browser.launch(pw)
            shots = ((SHOTS[0][0], {**SHOTS[0][1], "width": args.width}, False), *SHOTS[1:])
            for name, viewport, mobile in shots:
                page = b.new_page(viewport=viewport, is_mobile=mobile, has_touch=mobile, device_scale_factor=1)
                page.add_init_script(TOUR_SEEN)
                page.goto(url)
                page.wait_for_function("document.getElementById('status').dataset.state !== 'loading'", timeout=90_000)
                state = page.get_attribute("#status", "data-state")
                if state != "ready":
                    print(f"screenshot: the page did not get ready: {page.inner_text('#status')}", file=sys.stderr)
                    return 1
                page.wait_for_selector("#connections line")
                page.wait_for_selector("#weight-gallery", timeout=30_000)  # drawn in idle time after start-up
                if "attack" in address:
                    page.wait_for_selector("#attack-result", timeout=30_000)
                if not mobile and "model" in address:  # the model's robustness curve, done (idle time: up to a minute)
                    page.wait_for_selector(f'#robustness[data-model="{address["model"][0]}"]', timeout=180_000)
                if mobile:  # a phone's screen: the network, where a reader scrolls to it
                    page.evaluate("document.getElementById('view').scrollIntoView()")
                page.wait_for_timeout(300)
                page.screenshot(path=str(args.out / name), full_page=not mobile)
                print(f"wrote {args.out / name}")
                page.close()
            if not args.no_draw:
                draw_shot(b, serve.url_of(httpd), args.out / "screenshot-draw.png")
            b.close()
    finally:
        httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
