"""The why panel (#why): the attribution map, "Make it a ...", the robustness curves.

Browser-side: core/why.py computes, views/why.py draws. Gradient x input follows every view at
once (one forward and backward pass); integrated gradients, occlusion and attacks run in a task
after the view is painted, so a click's frame never waits for them; the robustness curve runs in
idle time with progress.
"""

import time

import numpy as np
from pyodide.ffi import create_proxy
from pyscript import window

from pyscript_app.core import why
from pyscript_app.core.view import View
from pyscript_app.views import why as why_view
from pyscript_app.page.dom import el, in_idle_time, rerender


def digit_of(view):
    """The digit a view shows as pixels in [0, 1], flat."""
    return np.asarray(view.pixels, dtype=np.float64).reshape(-1) / 255.0


class Why:
    def __init__(self, page):
        self.page = page
        self.drawn = None  # what #why-map shows: (weights version, pixels digest, method, target, knock-outs)
        self.attacks = {}  # (weights version, pixels digest, target, knock-outs) -> why.Attack
        self.attack_drawn = None
        self.curves = {}  # model id -> accuracies per epsilon (None: running)
        self.titles = {}
        self.pending = None
        self.later_proxy = create_proxy(self.later)
        self.state = self.view = None

    # --- the page's feature protocol
    def reset(self):
        self.drawn = self.attack_drawn = None
        self.start_robustness()

    def update(self, state, view):
        self.state, self.view = state, view
        if state.why == "gradxinput":
            self.draw_map(state, view)
        else:
            self.defer()
        if state.attack is not None or self.attack_drawn is not None:
            self.defer()

    # --- what the page asks
    def applied_view(self, state, view):
        """The view of the attack's changed digit when the address says it is applied, else ``view``."""
        if state.attack is None or not state.applied or view.sample_index is None:
            return view
        result = self.attack_for(state, view)
        if not result.found:
            return view
        pixels = np.rint(result.pixels.reshape(view.pixels.shape) * 255).astype(np.uint8)
        network = self.page.network
        acts = network.forward(network.normalize(pixels), knocked_out=state.knocked_out)
        return View(pixels, acts, view.sample_index, view.true_label, dict(state.knocked_out or {}), view.selected)

    # --- the map
    def key(self, state, view):
        network = self.page.network
        ko = tuple(sorted((k, tuple(v)) for k, v in (state.knocked_out or {}).items()))
        return network.version, hash(np.asarray(view.pixels).tobytes()), ko

    def draw_map(self, state, view):
        key = (*self.key(state, view), state.why, state.target)
        if key == self.drawn:
            return
        t0 = time.perf_counter()
        network = self.page.network
        att = why.attribute(network, digit_of(view), state.why, state.target, state.knocked_out)
        rerender(el("why-map"), why_view.why_panel(network, att, state.target is not None))
        el("why").dataset.computeMs = f"{(time.perf_counter() - t0) * 1000:.3f}"
        self.drawn = key

    # --- later: what does not fit a click's frame
    def defer(self):
        if self.pending is None:
            self.pending = window.setTimeout(self.later_proxy, 0)

    def later(self, *_):
        self.pending = None
        state, view = self.state, self.view
        if state is None or view is None:
            return
        self.draw_map(state, view)
        self.draw_attack(state, view)

    # --- the attack
    def attack_for(self, state, view):
        key = (*self.key(state, view), state.attack)
        result = self.attacks.get(key)
        if result is None:
            t0 = time.perf_counter()
            result = why.attack(self.page.network, digit_of(view), state.attack, state.knocked_out)
            el("why").dataset.attackMs = f"{(time.perf_counter() - t0) * 1000:.3f}"
            if len(self.attacks) > 32:
                self.attacks.clear()
            self.attacks[key] = result
        return result

    def draw_attack(self, state, view):
        network = self.page.network
        if state.attack is None:
            key = None
            markup = why_view.attack_panel(network, None, False)
        else:
            original = self.page.original_view() if state.applied else view
            result = self.attack_for(state, original)
            key = (*self.key(state, original), state.attack, state.applied)
            note = "" if view.sample_index is not None or not state.applied else "Apply works on test digits."
            markup = why_view.attack_panel(network, result, state.applied, note)
        if key != self.attack_drawn or key is None:
            rerender(el("attack-slot"), markup)
            self.attack_drawn = key

    # --- the robustness curve, per model, in idle time
    def start_robustness(self):
        page = self.page
        model_id, network = page.model_id, page.network
        self.titles[model_id] = network.title
        if model_id in self.curves:
            self.draw_curves()
            return
        self.curves[model_id] = None

        def steps():
            gen = why.robustness_steps(network, page.testset)
            spent = 0.0
            while True:
                t0 = time.perf_counter()
                try:
                    done, total = next(gen)
                except StopIteration as stop:
                    self.curves[model_id] = stop.value
                    break
                finally:
                    spent += time.perf_counter() - t0
                if page.network is network:
                    self.draw_curves(f"Measuring robustness: {done:,} / {total:,} test digits")
                yield
            el("why").dataset.robustnessMs = f"{spent * 1000:.1f}"
            el("why").dataset.robustnessModel = model_id
            self.draw_curves()

        in_idle_time(steps())

    def draw_curves(self, progress=""):
        curves = {self.titles[m]: acc for m, acc in self.curves.items()}
        rerender(el("robustness-slot"), why_view.robustness_panel(curves, progress))
