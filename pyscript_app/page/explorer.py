"""The error explorer (#error-explorer): the confusion matrix of the whole test set, its cells' digits.

Browser-side: explain.py computes (cached per knock-out and per version of
the weights), render_inside.py draws. For a convolutional network, the pass
of the test digits through its image layers (explain.TestsetCache.first_layer_blocks,
again for each knock-out of channels) runs in idle time, a block of digits
(sized to about 12 ms) at a time, the explorer showing its progress until
the pass is over; then the dense layers after it run a block of rows at a
time. A dense network's first-layer pass and layers are run the same way
when the explorer opens before the page's own idle pass after loading
(Page.prepare) is over: on a slow machine they take most of a second.
While the network shown is training, a dense network's matrix is computed
at once instead: its weights change every second (train_live.SLOW_SYNC_S),
and a pass in idle time, which training leaves little of, would never end.
"""

import time

from pyscript_app.core import explain

from pyscript_app.views import render_inside
from pyscript_app.page.dom import el, in_idle_time, js_object, rerender


class Explorer:
    def __init__(self, page):
        self.page = page
        self.open = False
        self.cell = None  # (true, predicted) of the selected confusion-matrix cell
        self.drawn = None  # (weights version, knock-out key, cell) the explorer shows
        self.state = self.view = None
        self.job = None  # the pass running in idle time: (network version, knock-out key), or None
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
        box = el("error-explorer")
        at_once = cache.end == 0 and page.is_training()
        if not at_once and not (cache.is_ready() and cache.is_ready(ko)):
            self.drawn = None
            self.show_progress(cache, ko)
            self.run_pass(network, ko)
            return
        cached = cache.is_cached(ko)
        t0 = time.perf_counter()
        cm = explain.confusion_matrix(network, page.testset, ko)
        ms = (time.perf_counter() - t0) * 1000
        full = explain.confusion_matrix(network, page.testset)
        rerender(box, render_inside.error_explorer(network, page.testset, cm, full, ko, ms, self.cell, current))
        el("confusion-matrix").dataset.cached = "true" if cached else "false"
        box.dataset.renderMs = f"{(time.perf_counter() - t0) * 1000:.3f}"  # matrix + markup + DOM
        box.dataset.model = page.model_id
        self.drawn = key

    def progress(self, cache, ko):
        """(digits done, digits, whether it is the knock-out's pass) of the pass the explorer waits for."""
        done, total = cache.pass_progress()
        if done < total:
            return done, total, False
        done, total = cache.pass_progress(ko)
        return done, total, bool(explain.normalize_knockout(self.page.network, ko))

    def show_progress(self, cache, ko):
        done, total, knocked = self.progress(cache, ko)
        bar, text = el("explorer-progress"), el("explorer-progress-text")
        box = el("error-explorer")
        box.dataset.model = self.page.model_id
        if bar is None or text is None:
            rerender(box, render_inside.explorer_progress(self.page.network, self.page.testset, done, total, knocked))
            return
        words = render_inside.explorer_progress_text(self.page.testset, done, total, knocked)
        bar.max, bar.value = total, done
        bar.setAttribute("aria-label", words)
        text.textContent = words
        text.dataset.done, text.dataset.total = str(done), str(total)

    def run_pass(self, network, ko):
        """Run the passes the matrix needs (the intact network's, then the knock-out's) in idle time, one
        block a step; redraw when done. A pass given up (the knock-outs or the model changed) stays half
        done, to be resumed when asked for again."""
        job = (network.version, explain.knockout_key(network, ko))
        if self.job == job:
            return
        self.job = job

        def wanted_now():
            return (self.open and self.page.network is network
                    and explain.knockout_key(network, self.state.knocked_out) == job[1])

        def wanted():
            return self.job == job and wanted_now()

        finished, spent = [], []  # spent: the Python time of each step, seconds

        def parts(cache):
            for target in (None, ko):
                yield cache.first_layer_blocks(target)
            # the layers after the pass, a block of rows a step, for the matrix and the one it is compared
            # with (in the matrix's own task they took over 100 ms at 4x for the default network)
            for target in (None, ko):
                yield cache.activation_steps(target)

        def steps():
            cache = explain.cache_for(network, self.page.testset)
            for part in parts(cache):
                while True:
                    t0 = time.perf_counter()
                    if next(part, StopIteration) is StopIteration:
                        break
                    if not wanted():
                        return
                    self.show_progress(cache, ko)
                    spent.append(time.perf_counter() - t0)
                    yield
            finished.append(True)
            if spent:  # what the pass cost, on #error-explorer (tests and tools/bench.py read them)
                data = el("error-explorer").dataset
                data.passMs = f"{sum(spent) * 1000:.1f}"
                data.passSteps = str(len(spent))
                data.passStepMaxMs = f"{max(spent) * 1000:.1f}"
                data.passStepMedianMs = f"{sorted(spent)[len(spent) // 2] * 1000:.1f}"

        def then():
            if self.job == job:
                self.job = None
                if finished and wanted_now():
                    self.draw(force=True)

        in_idle_time(steps(), then=then)

    def toggle(self, open_=None):
        self.open = (not self.open) if open_ is None else open_
        box, button = el("error-explorer"), el("errors-toggle")
        box.hidden = not self.open
        button.setAttribute("aria-expanded", "true" if self.open else "false")
        self.page.inside_changed()
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
        cache = explain.cache_for(self.page.network, self.page.testset)
        if cache.is_ready(self.state.knocked_out):
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
