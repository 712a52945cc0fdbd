"""The flow between the layers (#connections), on by default, and the highlight of a hovered neuron's own lines.

Browser-side: the page measures where the panels and neurons are; flow.py
decides which connections to draw (each neuron's strongest for this digit)
and where (in the gutters between the panels). The lines are drawn in the
animation frame after the one that paints a new view's values (once for any
number of views before it): each gets a frame of its own, so a click's values
are on screen at the next frame however many lines follow, and its lines one
frame (1/60 s) later. While the network shown trains, a refresh's new weights
redraw the lines at most every pacing.TRAINING_FOLLOW_S. Lines join whatever ``.neuron`` elements carry their
data-layer / data-index: a convolutional layer's channels too; a flatten layer
is not drawn, so the lines into the dense layer after it start at the channels
of the image layer before it (flow.source_name).
"""

import time

import numpy as np
from pyscript import window

from pyscript_app.core import explain, flow, pacing
from pyscript_app.page.dom import AfterValues, el, listen
from pyscript_app.views import render_inside


class Connections:
    def __init__(self, page):
        self.page = page
        self.on = True
        self.chosen = None  # lines per neuron set by the reader (None: the model's default)
        self.per_neuron = None
        self.follow_model()
        self.hovered = None
        self.view = None
        self.after_values = AfterValues(self.follow)
        self.follower = pacing.Follower()  # while training, new weights redraw the lines only now and then
        self.layout_key, self.neurons = None, {}  # see measure()
        self.moved = False  # the panels moved since the lines were drawn (layout_moved)
        view = el("view")
        view.classList.add("with-connections")
        for kind, handler in (("pointerover", self.on_hover), ("pointerout", self.on_unhover),
                              ("focusin", self.on_hover), ("focusout", self.on_unhover)):
            listen(view, kind, handler)
        listen(window, "resize", lambda *_: self.on and self.draw())
        listen(el("links-per-neuron"), "input", self.set_per_neuron)
        for ident in ("connections-toggle", "links-per-neuron"):
            el(ident).disabled = False

    def reset(self):
        """A new model: its own default number of lines, unless the reader has chosen one. The
        view of the model before is forgotten: a frame still to come must not draw it."""
        self.hovered = None
        self.view = None
        self.layout_key = None
        self.follow_model()

    def follow_model(self):
        thickness = el("connections-thickness")
        if thickness is not None:
            thickness.textContent = render_inside.thickness_text(self.page.network)
        if self.chosen is None:
            self.per_neuron = flow.default_per_neuron(self.page.network)
            el("links-per-neuron").value = str(self.per_neuron)
            el("links-per-neuron-value").textContent = str(self.per_neuron)

    def update(self, state, view):
        self.view = view
        if self.on:
            self.after_values.request()

    def toggle(self):
        self.on = not self.on
        el("connections-toggle").setAttribute("aria-pressed", "true" if self.on else "false")
        el("view").classList.toggle("with-connections", self.on)
        el("connections-legend").hidden = not self.on
        self.draw()

    def set_per_neuron(self, event):
        self.per_neuron = self.chosen = min(max(0, int(event.target.value or 0)), flow.MAX_PER_NEURON)
        el("links-per-neuron-value").textContent = str(self.per_neuron)
        self.draw()

    def layout_moved(self):
        """The panels moved (the view's width changed: the side column, Train mode's settings, the screen; or
        they were fitted to it again): the lines drawn end where the neurons were, and keep the view as wide
        as it was. They go at once and come back in the frame after."""
        old = el("connections")
        if old is not None:
            old.remove()
        self.moved = True
        if self.on:
            self.after_values.request()

    def follow(self):
        """The lines of the view just drawn (in the frame after its values)."""
        view, network = self.view, self.page.network
        asked = None if view is None else (view.sample_index, hash(np.asarray(view.pixels).tobytes()), view.selected,
                                           explain.knockout_key(network, view.knocked_out))
        moved, self.moved = self.moved, False
        if self.follower.due(asked, time.perf_counter(), self.page.is_training() and el("connections") is not None) or moved:
            self.draw()

    def draw(self, *_):
        t0 = time.perf_counter()
        box = el("view")
        old = el("connections")
        if old is not None:
            old.remove()
        if not self.on or self.view is None:
            return
        network, view = self.page.network, self.view
        panels, neurons, image_box = self.measure(box, network)
        found = flow.strongest(network, network.normalize(view.pixels), view.activations, self.per_neuron)
        svg = flow.svg(network, found, panels, neurons, (box.scrollWidth, box.scrollHeight), image_box)
        box.insertAdjacentHTML("beforeend", svg)
        drawn = el("connections").dataset
        drawn.perNeuron = str(self.per_neuron)
        drawn.sample = "" if view.sample_index is None else str(view.sample_index)
        drawn.drawMs = f"{(time.perf_counter() - t0) * 1000:.2f}"  # the Python time of this drawing
        if self.hovered:
            self.highlight(self.hovered)

    def measure(self, box, network):
        """Where the panels, the neurons and the input image are, in #view's scrolled coordinates.

        Every neuron's box is measured again only when the layout may have
        moved them: when a panel's box, the image's box, or a layer's first or
        last neuron is not where it was. A click on the same layout measures
        a few boxes, not every neuron.
        """
        origin = box.getBoundingClientRect()
        dx, dy = box.scrollLeft - origin.left, box.scrollTop - origin.top

        def place(node):
            r = node.getBoundingClientRect()
            return (r.left + dx, r.top + dy, r.width, r.height)

        panels = {}
        for layer in network.layers:
            panel = el(f"layer-{layer.name}")
            if panel is not None:
                panels[layer.name] = place(panel)
        image, input_panel = el("input-image"), el("input-panel")
        if input_panel is not None:
            panels[flow.INPUT] = place(input_panel)
        image_box = place(image) if image is not None else None
        ends = []
        for name in panels:
            if name != flow.INPUT:
                grid = box.querySelectorAll(f'.neuron[data-layer="{name}"]')
                ends.append((name, grid.length) + ((place(grid.item(0)), place(grid.item(grid.length - 1))) if grid.length else ()))
        key = (tuple(panels.items()), image_box, tuple(ends))
        if key != self.layout_key:
            found = {}
            for node in box.querySelectorAll(".neuron"):
                found.setdefault(node.dataset.layer, {})[int(node.dataset.index)] = place(node)
            self.neurons = {name: np.array([b[i] for i in sorted(b)], dtype=np.float64) for name, b in found.items()}
            self.layout_key = key
        return panels, self.neurons, image_box

    def highlight(self, key):
        svg = el("connections")
        if svg is None:
            return
        for line in svg.querySelectorAll("line.hi"):
            line.classList.remove("hi")
        svg.classList.toggle("hovering", bool(key))
        if key:
            for line in svg.querySelectorAll(f'line[data-from="{key}"], line[data-to="{key}"]'):
                line.classList.add("hi")

    def on_hover(self, event):
        neuron = event.target.closest(".neuron") if event.target.closest else None
        key = f"{neuron.dataset.layer}:{neuron.dataset.index}" if neuron is not None else None
        if key != self.hovered:
            self.hovered = key
            if self.on:
                self.highlight(key)

    def on_unhover(self, event):
        related = event.relatedTarget
        if related is not None and related.closest and related.closest(".neuron") is not None:
            return  # moving straight onto another neuron: its pointerover follows
        self.hovered = None
        if self.on:
            self.highlight(None)
