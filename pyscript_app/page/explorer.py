"""The error explorer (#error-explorer): the confusion matrix of the whole test set, its cells' digits.

Browser-side: explain.py computes (cached per knock-out and per version of
the weights), render_inside.py draws.
"""

import time

from pyscript_app.core import explain

from pyscript_app.views import render_inside
from pyscript_app.page.dom import el, js_object, rerender


class Explorer:
    def __init__(self, page):
        self.page = page
        self.open = False
        self.cell = None  # (true, predicted) of the selected confusion-matrix cell
        self.drawn = None  # (weights version, knock-out key, cell) the explorer shows
        self.state = self.view = None
        el("errors-toggle").disabled = False

    def is_open(self):
        return self.open

    def reset(self):
        self.cell = None
        self.drawn = None

    def update(self, state, view):
        self.state, self.view = state, view
        if self.open:
            self.draw()

    def draw(self, force=False):
        page, network = self.page, self.page.network
        ko = self.state.knocked_out
        key = (network.version, explain.knockout_key(network, ko), self.cell)
        current = self.view.sample_index if self.view is not None else None
        if key == self.drawn and not force:
            for thumb in el("error-explorer").querySelectorAll(".cthumb"):
                if thumb.dataset.sample == str(current):
                    thumb.setAttribute("aria-current", "true")
                else:
                    thumb.removeAttribute("aria-current")
            return
        cache = explain.cache_for(network, page.testset)
        cached = cache.is_cached(ko)
        t0 = time.perf_counter()
        cm = explain.confusion_matrix(network, page.testset, ko)
        ms = (time.perf_counter() - t0) * 1000
        full = explain.confusion_matrix(network, page.testset)
        box = el("error-explorer")
        rerender(box, render_inside.error_explorer(network, page.testset, cm, full, ko, ms, self.cell, current))
        el("confusion-matrix").dataset.cached = "true" if cached else "false"
        box.dataset.renderMs = f"{(time.perf_counter() - t0) * 1000:.3f}"  # matrix + markup + DOM
        box.dataset.model = page.model_id
        self.drawn = key

    def toggle(self, open_=None):
        self.open = (not self.open) if open_ is None else open_
        box, button = el("error-explorer"), el("errors-toggle")
        box.hidden = not self.open
        button.setAttribute("aria-expanded", "true" if self.open else "false")
        if self.open:
            if self.state is None:
                self.state, self.view = self.page.current_state(), self.page.shown_view
            self.draw(force=True)
            el("errors-title").focus()
            # in view even below an open neuron card (the side column scrolls)
            box.scrollIntoView(js_object(block="start"))
        else:
            button.focus()

    def select(self, true, predicted):
        self.cell = (true, predicted)
        self.draw()
        members = explain.cell_members(self.page.network, self.page.testset, true, predicted, self.state.knocked_out)
        self.page.atlas.highlight_digits(members)

    def move(self, event, cell):
        """Arrow keys move between the matrix's cells."""
        moves = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}
        if event.key not in moves:
            return
        n = len(self.page.network.class_labels)
        dt, dp = moves[event.key]
        t = min(max(int(cell.dataset.true) + dt, 0), n - 1)
        p = min(max(int(cell.dataset.predicted) + dp, 0), n - 1)
        nxt = el("confusion-matrix").querySelector(f'.cell[data-true="{t}"][data-predicted="{p}"]')
        if nxt is not None:
            event.preventDefault()
            cell.tabIndex = -1
            nxt.tabIndex = 0
            nxt.focus()
