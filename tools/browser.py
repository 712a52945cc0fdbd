"""Which browsers to drive, and how: shared by the tests, the benchmark and the screenshot script.

Chromium: $NNV_CHROMIUM, the system Chromium (Debian's package), else Playwright's own download
(a laptop, GitHub Actions). Firefox: $NNV_FIREFOX, else the system firefox-esr / firefox, driven by
Playwright over WebDriver BiDi (no geckodriver). WebKit: WebKitGTK's MiniBrowser ($NNV_WEBKIT)
driven by Selenium through WebKitWebDriver ($NNV_WEBKIT_DRIVER); it needs an X display, and
`virtual_display()` starts an Xvfb when there is none. $NNV_ENGINES (say "chromium,firefox")
chooses the engines that the cross-engine tests run on; by default every one that is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Chromium keeps its shared memory in /dev/shm. A container's default of 64 MB runs out under a few
# Pyodide pages and their renderers crash; where /dev/shm is that small, Chromium uses /tmp instead.
if not os.path.isdir("/dev/shm") or shutil.disk_usage("/dev/shm").total < 2 << 30:
    CHROMIUM_FLAGS.append("--disable-dev-shm-usage")

ENGINES = ("chromium", "firefox", "webkit")
FIREFOX_PATHS = ("/usr/bin/firefox-esr", "/usr/bin/firefox")
WEBKIT_PATHS = (
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
)


def _first(env: str, paths) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in paths if os.path.exists(p)), None)


def chromium_executable() -> str | None:
    return _first("NNV_CHROMIUM", ("/usr/bin/chromium", "/usr/bin/chromium-browser"))


def firefox_executable() -> str | None:
    return _first("NNV_FIREFOX", FIREFOX_PATHS)


def webkit_executable() -> str | None:
    return _first("NNV_WEBKIT", WEBKIT_PATHS)


def webkit_driver_executable() -> str | None:
    return os.environ.get("NNV_WEBKIT_DRIVER") or shutil.which("WebKitWebDriver")


def engines() -> list[tuple[str, str | None]]:
    """(engine, None) for each engine to test, or (engine, why not) when it cannot run here."""
    chosen = [e.strip() for e in os.environ.get("NNV_ENGINES", ",".join(ENGINES)).split(",") if e.strip()]
    unknown = set(chosen) - set(ENGINES)
    if unknown:
        raise SystemExit(f"NNV_ENGINES names unknown engines: {', '.join(sorted(unknown))} (known: {', '.join(ENGINES)})")
    out = []
    for engine in chosen:
        missing = None
        if engine == "firefox" and not firefox_executable():
            missing = "no Firefox installed (Debian: apt-get install firefox-esr; or set NNV_FIREFOX)"
        elif engine == "webkit":
            if not webkit_executable() or not webkit_driver_executable():
                missing = "no WebKitGTK MiniBrowser + WebKitWebDriver (Debian: apt-get install webkit2gtk-driver; or set NNV_WEBKIT, NNV_WEBKIT_DRIVER)"
            elif not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
                missing = "WebKitGTK needs an X display: none set and no Xvfb (Debian: apt-get install xvfb)"
        out.append((engine, missing))
    return out


def launch(playwright, **kwargs):
    """Launch Chromium headless with the flags that work on a machine without outside network."""
    exe = chromium_executable()
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, **kwargs)


def launch_persistent(playwright, profile, **kwargs):
    """The same, on a profile folder of its own (a disk HTTP cache, kept between launches)."""
    exe = chromium_executable()
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=exe, args=CHROMIUM_FLAGS if exe else None, headless=True, **kwargs)


def throttle_cpu(page, rate: float) -> None:
    """Slow this Chromium page's main thread ``rate`` times (DevTools' CPU throttling, as Lighthouse's
    mobile profile does); it holds across the page's navigations. 1 is full speed."""
    page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})


def launch_firefox(playwright, **kwargs):
    """The system Firefox, headless, over WebDriver BiDi (Playwright's "moz-firefox" channel)."""
    return playwright.firefox.launch(channel="moz-firefox", executable_path=firefox_executable(), headless=True, **kwargs)


class VirtualDisplay:
    """An Xvfb on a free display number (it picks one itself: -displayfd), stopped by close()."""

    def __init__(self):
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            self.process.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)


COMMAND_TIMEOUT_S = 150


def launch_webkit(display: str | None = None, proxy: str | None = None, attempts: int = 3, timeout: float = 60):
    """WebKitGTK's MiniBrowser under Selenium. display: the X display (else $DISPLAY);
    proxy: "host:port" of an HTTP proxy for every request except to 127.0.0.1 / localhost.
    What the driver and the browser it starts print goes to a temporary file, ``driver.log_path``
    (a web process that crashed says so there).

    Now and then WebKitWebDriver never answers the new-session request (its browser is gone
    and it waits on): a start that has not answered within ``timeout`` seconds is stopped,
    driver and all, and tried again, up to ``attempts`` times; then it fails, saying so."""
    import threading

    from selenium import webdriver
    from selenium.webdriver.common.proxy import Proxy, ProxyType
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    options = Options()
    options.binary_location = webkit_executable()
    options.add_argument("--automation")
    if proxy:
        options.proxy = Proxy({"proxyType": ProxyType.MANUAL, "httpProxy": proxy, "sslProxy": proxy,
                               "noProxy": ["127.0.0.1", "localhost"]})
    env = dict(os.environ)
    if display:
        env["DISPLAY"] = display
    problem = None
    for _ in range(attempts):
        fd, log_path = tempfile.mkstemp(prefix="webkit-", suffix=".log")
        os.close(fd)
        service = Service(executable_path=webkit_driver_executable(), env=env, log_output=log_path)
        started: dict = {}

        def start(service=service, started=started):
            try:
                started["driver"] = webdriver.WebKitGTK(options=options, service=service)
            except Exception as exc:  # the driver's own error: tried again like a hang
                started["error"] = exc

        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        thread.join(timeout)
        if "driver" in started:
            driver = started["driver"]
            # no command waits on a silent driver for ever either (page loads time out at 90 s before this)
            driver.command_executor.client_config.timeout = COMMAND_TIMEOUT_S
            driver.log_path = log_path
            return driver
        problem = started.get("error") or f"no session within {timeout:.0f} s"
        try:
            service.stop()  # the driver process (and a browser it may have left) goes; the waiting request ends
        except Exception:
            pass
        thread.join(10)
        os.unlink(log_path)
    raise RuntimeError(f"WebKit did not start in {attempts} tries: {problem}")
