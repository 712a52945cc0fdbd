"""The tour in the page: shown on a first visit, never again once dismissed, reopened by #tour-open."""

from pyodide.ffi import create_proxy
from pyscript import document, window

from pyscript_app.page import view
from pyscript_app.page.dom import js_object
from pyscript_app.views import tour

HIGHLIGHT = "tour-target"


class Tour:
    def __init__(self):
        self.box = document.getElementById("tour")
        self.index = 0
        self.opener = None
        self.target = None  # the selector of what the step shown points at (None: the tour is closed)
        self.proxies = [create_proxy(self.on_click), create_proxy(self.on_key), create_proxy(self.open),
                        create_proxy(self.place)]
        self.box.addEventListener("click", self.proxies[0])
        self.box.addEventListener("keydown", self.proxies[1])
        window.addEventListener("resize", self.proxies[3])
        button = document.getElementById("tour-open")
        button.addEventListener("click", self.proxies[2])
        button.disabled = False
        view.after_drawing.append(self.mark)  # a view update replaces parts of #view, a target among them

    def dismissed(self) -> bool:
        try:
            return window.localStorage.getItem(tour.STORAGE_KEY) == "true"
        except Exception:  # storage blocked (a private window's policy): the tour shows once per visit
            return False

    def remember(self):
        try:
            window.localStorage.setItem(tour.STORAGE_KEY, "true")
        except Exception:
            pass

    def open(self, *_):
        self.opener = document.activeElement
        self.box.hidden = False  # (shown before its first step, to be measured where it goes)
        self.show(0)
        self.box.focus()

    def show(self, index):
        self.index = index
        self.box.dataset.step = str(index)
        self.box.innerHTML = tour.step_html(index)
        self.unmark()
        self.target = tour.STEPS[index].target
        target = self.mark()
        if target is not None and target.getClientRects().length:  # what the step points at, in sight
            target.scrollIntoView(js_object(block="nearest"))
        self.place()

    def place(self, *_):
        """Put the panel in the corner of the window where it covers least of what the step talks about."""
        if self.target is None:
            return
        step = tour.STEPS[self.index]
        rects = [(r.left, r.top, r.right, r.bottom) for r in (
            node.getBoundingClientRect() for node in document.querySelectorAll(step.keep_clear or step.target))]
        self.box.dataset.corner = tour.corner_clear_of(
            rects, (self.box.offsetWidth, self.box.offsetHeight), (window.innerWidth, window.innerHeight))

    def mark(self):
        """Highlight what the step shown points at (again, after a view update replaced it); returns it."""
        if self.target is None:
            return None
        target = document.querySelector(self.target)
        if target is not None:
            target.classList.add(HIGHLIGHT)
        return target

    def unmark(self):
        for old in document.querySelectorAll("." + HIGHLIGHT):
            old.classList.remove(HIGHLIGHT)

    def close(self):
        self.remember()
        self.box.hidden = True
        self.target = None
        self.unmark()
        back = self.opener if self.opener is not None and self.opener != document.body else document.getElementById("tour-open")
        back.focus()

    def on_click(self, event):
        action = event.target.closest("[data-tour]") if event.target.closest else None
        if action is None:
            return
        kind = action.dataset.tour
        if kind == "next":
            self.show(self.index + 1)
            self.box.querySelector('[data-tour="next"], [data-tour="done"]').focus()
        elif kind == "back":
            self.show(self.index - 1)
            self.box.querySelector('[data-tour="back"], [data-tour="next"]').focus()
        else:  # done, skip
            self.close()

    def on_key(self, event):
        if event.key == "Escape":
            event.stopPropagation()
            self.close()


def start():
    """Wire the tour; open it unless this browser dismissed it before."""
    t = Tour()
    if not t.dismissed():
        t.open()
    return t
