"""The flow between the layers (#connections), on by default, and the highlight of a hovered neuron's own lines.

Browser-side: the page measures where the panels and neurons are; flow.py
decides which connections to draw (each neuron's strongest for this digit)
and where (in the gutters between the panels). The lines follow a new digit
one frame after its values, so a click's values are never held up by them.
"""

from pyodide.ffi import create_proxy
from pyscript import window

from pyscript_app import flow
from pyscript_app.page_dom import el


class Connections:
    def __init__(self, page):
        self.page = page
        self.on = True
        self.per_neuron = flow.DEFAULT_PER_NEURON
        self.hovered = None
        self.view = None
        self.frame_pending = False
        self.frame_proxy = create_proxy(self.frame)
        el("view").classList.add("with-connections")

    def reset(self):
        self.hovered = None

    def update(self, state, view):
        self.view = view
        if self.on and not self.frame_pending:
            self.frame_pending = True
            window.requestAnimationFrame(self.frame_proxy)

    def frame(self, *_):
        self.frame_pending = False
        self.draw()

    def toggle(self):
        self.on = not self.on
        el("connections-toggle").setAttribute("aria-pressed", "true" if self.on else "false")
        el("view").classList.toggle("with-connections", self.on)
        el("connections-legend").hidden = not self.on
        self.draw()

    def set_per_neuron(self, event):
        self.per_neuron = min(max(0, int(event.target.value or 0)), flow.MAX_PER_NEURON)
        el("links-per-neuron-value").textContent = str(self.per_neuron)
        self.draw()

    def draw(self, *_):
        box = el("view")
        old = el("connections")
        if old is not None:
            old.remove()
        if not self.on or self.view is None:
            return
        origin = box.getBoundingClientRect()
        dx, dy = box.scrollLeft - origin.left, box.scrollTop - origin.top

        def place(node):
            r = node.getBoundingClientRect()
            return (r.left + dx, r.top + dy, r.width, r.height)

        network = self.page.network
        neurons = {}
        for node in box.querySelectorAll(".neuron"):
            neurons.setdefault(node.dataset.layer, {})[int(node.dataset.index)] = place(node)
        neurons = {name: [b[i] for i in sorted(b)] for name, b in neurons.items()}
        panels = {}
        for layer in network.layers:
            panel = el(f"layer-{layer.name}")
            if panel is not None:
                panels[layer.name] = place(panel)
        image, input_panel = el("input-image"), el("input-panel")
        if input_panel is not None:
            panels[flow.INPUT] = place(input_panel)
        view = self.view
        links = flow.top_incoming(network, network.normalize(view.pixels), view.activations, self.per_neuron)
        svg = flow.svg(network, links, panels, neurons, (box.scrollWidth, box.scrollHeight),
                       place(image) if image is not None else None)
        box.insertAdjacentHTML("beforeend", svg)
        drawn = el("connections").dataset
        drawn.perNeuron = str(self.per_neuron)
        drawn.sample = "" if view.sample_index is None else str(view.sample_index)
        if self.hovered:
            self.highlight(self.hovered)

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
