"""The connection lines over the view (#connections), and the highlight of a hovered neuron's own lines.

Browser-side: the page measures where the neurons are; render_inside.connections_svg draws.
"""

from pyscript_app import render_inside
from pyscript_app.page_dom import el


class Connections:
    def __init__(self, page):
        self.page = page
        self.on = False
        self.hovered = None
        self.view = None

    def reset(self):
        self.hovered = None

    def update(self, state, view):
        self.view = view
        if self.on:
            self.draw()

    def toggle(self):
        self.on = not self.on
        el("connections-toggle").setAttribute("aria-pressed", "true" if self.on else "false")
        el("view").classList.toggle("with-connections", self.on)
        el("connections-legend").hidden = not self.on
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

        boxes = {}
        for node in box.querySelectorAll(".neuron"):
            boxes.setdefault(node.dataset.layer, {})[int(node.dataset.index)] = place(node)
        boxes = {name: [b[i] for i in sorted(b)] for name, b in boxes.items()}
        image = el("input-image")
        svg = render_inside.connections_svg(
            self.page.network, self.view, boxes, (box.scrollWidth, box.scrollHeight), place(image) if image else None
        )
        box.insertAdjacentHTML("beforeend", svg)
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
