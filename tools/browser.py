"""Which Chromium to drive, and how: shared by the tests, the benchmark and the screenshot script.

Order: $NNV_CHROMIUM, the system Chromium (Debian's package), else
Playwright's own download (a laptop, GitHub Actions).
"""

from __future__ import annotations

import os

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_executable() -> str | None:
    if os.environ.get("NNV_CHROMIUM"):
        return os.environ["NNV_CHROMIUM"]
    for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(path):
            return path
    return None


def launch(playwright, **kwargs):
    """Launch Chromium headless with the flags that work on a machine without outside network."""
    exe = chromium_executable()
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, **kwargs)


def launch_persistent(playwright, profile, **kwargs):
    """The same, on a profile folder of its own (a disk HTTP cache, kept between launches)."""
    exe = chromium_executable()
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=exe, args=CHROMIUM_FLAGS if exe else None, headless=True, **kwargs)
