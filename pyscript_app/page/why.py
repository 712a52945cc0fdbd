"""The why panel (#why): the attribution map, "Make it a ...", the robustness curves; the card's dream.

Browser-side: core/why.py computes, views/why.py draws. The map (gradient x input: one forward and
backward pass; integrated gradients, occlusion) and attacks run in a task of their own after the
view's values are painted, so a click's frame never waits for them; the robustness
curve and a card's dream run in idle time, a short step at a time, with progress shown.
"""

import time

import numpy as np
from pyscript import document, window

from pyscript_app.core import explain, pacing, why
from pyscript_app.core.view import View
from pyscript_app.views import why as why_view
from pyscript_app.page.dom import WAIT, AfterValues, el, in_idle_time, listen, rerender

# the first step of idle work (then sized by time, see pacing.StepSizer)
FIRST_DREAM_STEPS = 2  # gradient steps of a dream
FIRST_ROBUSTNESS_DIGITS = 4  # test digits of the robustness curve
PROGRESS_EVERY_S = 0.25  # the robustness panel's progress is redrawn at most this often (steps are short)


def digit_of(view):
    """The digit a view shows as pixels in [0, 1], flat."""
    return np.asarray(view.pixels, dtype=np.float64).reshape(-1) / 255.0


def ko_key(knocked_out):
    return tuple(sorted((k, tuple(v)) for k, v in (knocked_out or {}).items()))


class Why:
    def __init__(self, page):
        self.page = page
        self.drawn = None  # what #why-map shows
        self.attacks = {}  # (weights version, digit, knock-outs, target) -> why.Attack
        self.attack_drawn = None
        self.original = None  # the view of the digit itself (before an applied attack)
        self.curves = {}  # model id -> accuracies per epsilon (None: being measured)
        self.measured_version = {}  # model id -> the weights' version its curve is (being) measured for
        self.titles = {}
        self.spent = {}  # model id -> Python ms of its robustness curve
        self.dreams = {}  # (weights version, layer, index, knock-outs) -> why.Dream
        self.wants_drawn = None
        self.ink = (None, None, None)  # (test set, first layer's kind, the pixels a dream may use)
        self.follower = pacing.Follower()  # while training, new weights redraw the panel only now and then
        self.after_values = AfterValues(self.later, then="task")
        self.state = self.view = None
        listen(document, "change", self.on_change)  # (the robustness curve starts after the first view: later)

    # --- the page's feature protocol
    def reset(self):
        self.drawn = self.attack_drawn = self.wants_drawn = None
        self.start_robustness()

    def update(self, state, view):
        if view is None:
            return
        self.state, self.view = state, view
        if not (state.applied and state.attack is not None):
            self.original = view
        self.after_values.request()

    def nothing_shown(self, state):
        """No digit is shown (the pad is empty): the map waits for one, and the attack's result of the digit
        before goes (its buttons stay)."""
        self.state = self.view = self.original = None
        self.drawn = None
        rerender(el("why-map"), why_view.why_waiting())
        self.draw_attack(state)

    def applied_view(self, state, view):
        """The view of the attack's changed digit when the address says it is applied, else ``view``."""
        self.original = view
        if state.attack is None or not state.applied:
            return view
        result = self.attack_for(state, view)
        if not result.found:
            return view
        pixels = np.rint(result.pixels.reshape(view.pixels.shape) * 255).astype(np.uint8)
        network = self.page.network
        acts = network.forward(network.normalize(pixels), knocked_out=state.knocked_out)
        return View(pixels, acts, view.sample_index, view.true_label, dict(state.knocked_out or {}), view.selected)

    # --- what the user does in the panel
    def on_change(self, event):
        target = event.target
        ident = str(target.id) if target is not None else ""
        if ident not in ("why-class", "why-versus"):
            return
        a, b = el("why-class").value, el("why-versus").value
        target_ = int(a) if not b or b == a else (int(a), int(b))
        self.page.go(target=target_)

    def toggle_attack(self, open_=None):
        box, button = el("attack-slot"), el("attack-toggle")
        opened = box.hidden if open_ is None else open_
        box.hidden = not opened
        button.setAttribute("aria-expanded", "true" if opened else "false")

    # --- the map
    def key(self, state, view):
        return self.page.network.version, hash(np.asarray(view.pixels).tobytes()), ko_key(state.knocked_out)

    def draw_map(self, state, view):
        key = (*self.key(state, view), state.why, state.target)
        if key == self.drawn:
            return
        t0 = time.perf_counter()
        network = self.page.network
        # the class by default: the view's answer (its forward pass has run; no second one for it)
        target = state.target if state.target is not None else int(np.argmax(view.activations[-1]))
        att = why.attribute(network, digit_of(view), state.why, target, state.knocked_out)
        rerender(el("why-map"), why_view.why_panel(network, att, state.target is not None, view.activations[-1],
                                                   view.sample_index))
        el("why").dataset.computeMs = f"{(time.perf_counter() - t0) * 1000:.3f}"
        self.drawn = key

    # --- later: what does not fit a click's frame
    def later(self):
        state, view = self.state, self.view
        if state is None or view is None:
            return
        asked = (self.key(state, view)[1:], state.why, state.target, state.attack, state.applied)
        if not self.follower.due(asked, time.perf_counter(), self.page.is_training()):
            return
        self.draw_map(state, view)
        self.draw_attack(state)
        self.draw_wants(state, view)
        page = self.page
        if self.measured_version.get(page.model_id) != page.network.version and not page.is_training():
            self.start_robustness()  # (given up while the model trained, or trained since)
        # styled and laid out here, in this task, not in the next frame (which draws the connections)
        void = el("why").offsetHeight  # noqa: F841

    # --- the attack
    def attack_for(self, state, original):
        key = (*self.key(state, original), state.attack)
        result = self.attacks.get(key)
        if result is None:
            t0 = time.perf_counter()
            result = why.attack(self.page.network, digit_of(original), state.attack, state.knocked_out)
            el("why").dataset.attackMs = f"{(time.perf_counter() - t0) * 1000:.3f}"
            if len(self.attacks) > 32:
                self.attacks.clear()
            self.attacks[key] = result
        return result

    def draw_attack(self, state):
        network, original = self.page.network, self.original
        if state.attack is None or original is None:
            key = (network.version, None, original is None)
            result = None
        else:
            result = self.attack_for(state, original)
            key = (*self.key(state, original), state.attack, state.applied)
            self.toggle_attack(True)
        if key != self.attack_drawn:
            note = ("Nothing drawn yet: draw a digit first." if original is None
                    else "" if original.sample_index is not None else "Apply shows a changed test digit; for a drawing, the result is shown here.")
            rerender(el("attack-slot"), why_view.attack_panel(network, result, state.applied, note,
                                                              can_apply=original is not None and original.sample_index is not None,
                                                              waiting=original is None))
            self.attack_drawn = key

    # --- the card's "what it wants"
    def draw_wants(self, state, view):
        slot = el("card-wants")
        if state.neuron is None or slot is None:
            self.wants_drawn = None
            return
        page, network = self.page, self.page.network
        layer, index = state.neuron
        key = (network.version, layer, index, ko_key(state.knocked_out))
        if key == self.wants_drawn and slot.childElementCount:
            return
        self.wants_drawn = key
        if page.is_training():
            slot.innerHTML = why_view.wants_later()
            return
        if not explain.cache_for(network, page.testset).is_ready(state.knocked_out) \
                and any(explain.is_image_layer(l) for l in network.layers):
            # a CNN's pass over the test set runs in idle time (the card started it): the card is drawn again after it
            slot.innerHTML = why_view.wants_later("Shown once the test digits have gone through the network.")
            self.wants_drawn = None
            return
        values = explain.unit_values(network, page.testset, layer, index, state.knocked_out, by="activation")
        profile = why.unit_profile(values, page.testset.labels, len(network.class_labels))
        rival = None  # a dense hidden unit's: the best test digit by net input (what the dream raised), and which
        if network.layer(layer).kind == "dense" and not network.layer(layer).is_output:
            net = explain.unit_values(network, page.testset, layer, index, state.knocked_out)
            rival = (float(net.max()), int(net.argmax())) if net.size else None
        dream = self.dreams.get(key)
        if dream is None:
            part = why_view.dream_pending(0, why.DREAM_STEPS)
            in_idle_time(self.dream_steps(network, key, layer, index, state.knocked_out, profile, rival))
        else:
            part = why_view.dream_html(network, layer, index, dream, profile, rival)
        rerender(slot, why_view.wants_section(network, page.testset, part, profile, view.sample_index))

    def dream_steps(self, network, key, layer, index, knocked_out, profile, rival):
        """The dream of ``network``'s unit, a few gradient steps per idle period; given up when the page moved
        on to another model or card before it was done (its layer or knock-outs may not exist there)."""
        testset, kind = self.page.testset, network.layers[0].kind
        if self.ink[0] is not testset or self.ink[1] != kind:
            where = yield from why.dream_pixels_steps(network, testset.images)
            if self.page.network is not network or self.wants_drawn != key:
                return
            self.ink = (testset, kind, where)
        steps = why.dream_steps(network, layer, index, knocked_out, sizer=pacing.StepSizer(first=FIRST_DREAM_STEPS),
                                where=self.ink[2])
        spent = 0.0
        while True:
            if self.page.network is not network or self.wants_drawn != key:
                return
            t0 = time.perf_counter()
            try:
                done, total = next(steps)
            except StopIteration as stop:
                u = stop.value
                break
            finally:
                spent += time.perf_counter() - t0
            if self.wants_drawn != key:
                return  # another card was opened meanwhile
            slot = el("dream-slot")
            if slot is not None:
                slot.innerHTML = why_view.dream_pending(done, total)
            yield
        self.dreams[key] = why.dream_result(network, u, layer, index, knocked_out, kept_to_ink=self.ink[2] is not None)
        slot = el("dream-slot")
        if slot is not None and self.wants_drawn == key:
            slot.innerHTML = why_view.dream_html(network, layer, index, self.dreams[key], profile, rival)
            el("neuron-dream").dataset.computeMs = f"{spent * 1000:.1f}"

    # --- the robustness curve, per model, in idle time
    def start_robustness(self):
        """Measure the robustness curve of the model shown in idle time, unless it is measured for its
        weights or being measured. Not while it trains: a run given up when the weights change under it
        starts again at the first view after training pauses (``later``)."""
        page = self.page
        model_id, network = page.model_id, page.network
        self.titles[model_id] = network.title
        version = network.version
        if self.measured_version.get(model_id) == version or page.is_training():
            self.draw_curves()
            return
        self.measured_version[model_id] = version
        self.curves[model_id] = None

        def steps():
            gen = why.robustness_steps(network, page.testset, sizer=pacing.StepSizer(first=FIRST_ROBUSTNESS_DIGITS))
            spent, drawn = 0.0, float("-inf")
            while True:
                if page.training_now():  # another model's curve waits: training has the time
                    yield WAIT
                    continue
                if network.version != version:  # (trained meanwhile: the curve would be of weights gone)
                    self.curves.pop(model_id, None)
                    self.measured_version.pop(model_id, None)
                    if page.network is network:
                        self.draw_curves()
                    return
                t0 = time.perf_counter()
                try:
                    done, total, accuracy = next(gen)
                except StopIteration as stop:
                    self.curves[model_id] = stop.value
                    break
                finally:
                    spent += time.perf_counter() - t0
                # (the last step's figures are the curve itself: drawn as such once the steps end)
                if page.network is network and done < total and time.perf_counter() - drawn >= PROGRESS_EVERY_S:
                    # the redraw (the whole panel) starts an idle callback of its own: after steps that filled
                    # one, it would make that callback a long task
                    yield WAIT
                    if page.network is not network:
                        continue
                    estimate = done >= why.ROBUSTNESS_SO_FAR_DIGITS
                    self.draw_curves(f"Measuring: {done:,} / {total:,} test digits"
                                     + (" (the dashed line: the digits so far)" if estimate else ""),
                                     (network.title, accuracy, done, total) if estimate else None)
                    drawn = time.perf_counter()
                yield
            self.spent[model_id] = spent * 1000
            yield WAIT  # (the same for the last redraw)
            self.draw_curves()

        in_idle_time(steps())

    def draw_curves(self, progress="", so_far=None):
        curves = {self.titles[m]: acc for m, acc in self.curves.items()}
        rerender(el("robustness-slot"), why_view.robustness_panel(curves, progress, self.page.model_id, self.curves,
                                                                  self.spent.get(self.page.model_id), so_far))
