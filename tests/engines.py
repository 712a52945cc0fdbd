"""One small driver interface over Playwright (Chromium, Firefox) and Selenium (WebKitGTK), so that
the same test body runs in every engine (tests/test_engines.py).

Scripts are function bodies that read their arguments from ``arguments`` and ``return`` a value
(Selenium's convention; under Playwright they are wrapped in a function). Attributes are always
read through scripts: element handles can race a re-render of the view.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
import urllib.parse

from conftest import TOUR_SEEN  # noqa: E402

READY_TIMEOUT_S = 90


class EngineStopped(RuntimeError):
    """The page stopped answering the driver (its web process crashed or hung): the browser's fault
    or the page's, told apart by the browser's log in the message. The tests' rerun marker
    (test_engines.py) runs such a test once more on a reloaded page."""


class Page:
    """What a test does with a page: go, run a script, wait, click, draw, and what left the origin."""

    engine: str
    local: set  # every local test server this page was pointed at: requests to them are not outside

    @property
    def base(self) -> str:
        """The page's server (a test may point the page at another one for a while)."""
        return self._base

    @base.setter
    def base(self, url: str) -> None:
        self._base = url
        self.local = getattr(self, "local", set()) | {url}

    def is_local(self, url: str) -> bool:
        return url.startswith("data:") or any(url.startswith(b) for b in self.local)

    def run(self, body: str, *args):
        raise NotImplementedError

    def goto(self, url: str) -> None:
        raise NotImplementedError

    def reload(self) -> None:
        raise NotImplementedError

    def click(self, selector: str) -> None:
        raise NotImplementedError

    def _pointer(self, points: list[tuple[float, float]]) -> None:
        """Press the mouse button at points[0], move through the others, release (viewport px)."""
        raise NotImplementedError

    def outside(self) -> list[str]:
        """Every request this page made outside its own server."""
        raise NotImplementedError

    def errors(self) -> list[str] | None:
        """Uncaught exceptions and console errors, or None where the driver cannot report them."""
        return None

    def close(self) -> None:
        raise NotImplementedError

    def recover(self, url: str) -> str:
        """Load ``url`` again in a page that stopped answering; its state once settled."""
        self.goto(url)
        return self.settle()

    # --- built on the above, the same in every engine --------------------------------------

    def wait(self, body: str, *args, timeout: float = 30.0):
        """Run the script until it returns something truthy; that value."""
        end = time.monotonic() + timeout
        while True:
            value = self.run(body, *args)
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"{self.engine}: still false after {timeout} s: {body}")
            time.sleep(0.05)

    def settle(self) -> str:
        """Wait until the start-up has ended; the status's state ("ready" or "error")."""
        return self.wait("const s = document.getElementById('status').dataset.state; return s !== 'loading' && s;",
                         timeout=READY_TIMEOUT_S)

    def attribute(self, selector: str, name: str):
        return self.run("const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);", selector, name)

    def draw(self, strokes, steps: int = 4) -> None:
        """Draw strokes (polylines in pad units, 0..1) on #draw-pad with the mouse, then let two
        animation frames pass (the pad updates once per frame)."""
        self.run("document.getElementById('draw-pad').scrollIntoView({block: 'center'});")
        box = self.run("const r = document.getElementById('draw-pad').getBoundingClientRect(); return [r.x, r.y, r.width, r.height];")
        x0, y0, w, h = box
        for stroke in strokes:
            points = [stroke[0]]
            for (ax, ay), (bx, by) in zip(stroke, stroke[1:]):
                points += [(ax + (bx - ax) * t / steps, ay + (by - ay) * t / steps) for t in range(1, steps + 1)]
            self._pointer([(x0 + x * w, y0 + y * h) for x, y in points])
        self.run("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));")


class PlaywrightPage(Page):
    """A Playwright page (Chromium or Firefox) in its own context; outside requests aborted and recorded."""

    def __init__(self, browser, engine: str, base: str):
        self.engine, self.base, self.browser = engine, base, browser
        self._outside, self._errors = [], []
        self._open()

    def _open(self):
        self.crashed = False
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(TOUR_SEEN)  # a returning visitor: no tour over the page
        self.page = self.context.new_page()

        def route(r):
            if self.is_local(r.request.url):
                r.continue_()
            else:
                self._outside.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page.on("pageerror", lambda e: self._errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self._errors.append(f"console: {m.text}"))
        self.page.on("crash", lambda _: setattr(self, "crashed", True))

    def answers(self) -> bool:
        """Whether the page's renderer is alive (a crashed one answers nothing, ever)."""
        return not self.crashed

    def recover(self, url):
        """A crashed page stays crashed: a new context and page (in a new Chromium, see
        conftest.SharedChromium) load ``url``."""
        if self.crashed:
            self.context.close()
            self._open()
        return super().recover(url)

    def run(self, body, *args):
        return self.page.evaluate(f"(args) => (function () {{ {body}\n}}).apply(null, args)", list(args))

    def goto(self, url):
        self.page.goto(url)

    def reload(self):
        self.page.reload()

    def click(self, selector):
        self.page.click(selector)

    def _pointer(self, points):
        mouse = self.page.mouse
        mouse.move(*points[0])
        mouse.down()
        for x, y in points[1:]:
            mouse.move(x, y)
        mouse.up()

    def outside(self):
        return list(self._outside)

    def errors(self):
        return list(self._errors)

    def close(self):
        self.context.close()


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards nothing: it records each request (and CONNECT)
    sent to it and answers 502. A browser configured to use it for every host but the local
    server shows through it every request that would leave the machine."""

    def __init__(self):
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _refuse(self):
                requests.append(f"{self.command} {self.path}")
                self.send_error(502, "outside requests are refused in tests")

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_CONNECT = _refuse

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SeleniumPage(Page):
    """The one window of a Selenium WebDriver session (WebKitGTK). No request interception in
    this driver: outside requests are what the recording proxy saw, plus any resource the page
    itself reports (performance entries) that is not on its server."""

    def __init__(self, launch, engine: str, base: str, proxy: RecordingProxy):
        """launch(): a new WebDriver session (again after the browser stopped: see recover)."""
        self.engine, self.base, self.launch, self.proxy = engine, base, launch, proxy
        self._use(launch())

    def _use(self, driver):
        self.driver = driver
        driver.set_window_size(1280, 900)
        self.tour_seen = False
        driver.set_page_load_timeout(READY_TIMEOUT_S)  # a browser that stops answering fails the test, never hangs it
        driver.set_script_timeout(60)

    def quit(self, seconds: float = 30) -> None:
        """End the session; a driver that does not answer within ``seconds`` is killed."""
        driver = self.driver
        quitting = threading.Thread(target=driver.quit, daemon=True)
        quitting.start()
        quitting.join(seconds)
        if quitting.is_alive():
            driver.service.process.kill()
        try:
            os.unlink(driver.log_path)
        except (AttributeError, OSError):
            pass

    def recover(self, url):
        """A crashed web process may take the session with it (WebKitWebDriver deletes a session whose
        page crashed): then a new session, in a new browser, loads the page."""
        from selenium.common.exceptions import WebDriverException

        try:
            return super().recover(url)
        except WebDriverException:
            self.quit()
            self._use(self.launch())
            return super().recover(url)

    def answers(self) -> bool:
        """Whether the page still runs a script (a crashed web process answers nothing parseable)."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self.driver.execute_script("return 1;") == 1
        except WebDriverException:
            return False

    def _checked(self, what, call):
        """call(); a driver error after which the page no longer answers is raised as EngineStopped,
        with the end of the browser's log."""
        from selenium.common.exceptions import WebDriverException

        try:
            return call()
        except WebDriverException as exc:
            if self.answers():
                raise
            raise EngineStopped(f"{self.engine}: the page stopped answering during {what} ({exc.msg or 'no message'});"
                                f" the browser's log ends:\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.driver.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:]) or "(empty)"
        except (AttributeError, OSError) as exc:
            return f"(no log: {exc})"

    def run(self, body, *args):
        return self._checked("a script", lambda: self.driver.execute_script(body, *args))

    def goto(self, url):
        if not self.tour_seen:  # a returning visitor (no init scripts here): dismissed on the site's own origin first
            self.driver.get(urllib.parse.urljoin(url, "style.css"))  # a plain file of the same origin
            self.driver.execute_script(TOUR_SEEN)
            self.tour_seen = True
        self.driver.get(url)

    def reload(self):
        self.driver.refresh()

    def click(self, selector):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        end = time.monotonic() + 10
        while True:
            try:
                self.driver.find_element(By.CSS_SELECTOR, selector).click()
                return
            except StaleElementReferenceException:  # the view was re-rendered under the handle: again
                if time.monotonic() > end:
                    raise

    def _pointer(self, points):
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        actions = ActionBuilder(self.driver, duration=0)
        pointer = actions.pointer_action
        pointer.move_to_location(round(points[0][0]), round(points[0][1]))
        pointer.pointer_down()
        for x, y in points[1:]:
            pointer.move_to_location(round(x), round(y))
        pointer.pointer_up()
        self._checked("pointer actions", actions.perform)

    probe_host = None  # the host of the fixture's own probe of the proxy (its favicon request comes late)

    def outside(self):
        seen = self.run("return performance.getEntriesByType('resource').map(e => e.name);")
        heard = [r for r in self.proxy.requests if not (self.probe_host and f"//{self.probe_host}/" in r)]
        return heard + [u for u in seen if not self.is_local(u)]

    def close(self):
        pass  # the driver session belongs to the fixture
