"""Hover a feature map's pixel: its receptive field outlined on the digit, its kernel's products beside it.

Browser-side. The pointer over a map (`.fmap-img`, render.map_neurons) picks the
pixel under it; a channel given the keyboard focus picks its map's peak (the value
its colour shows). #receptive-field (an outline over #input-image, in input pixels:
data-box="top,left,bottom,right") and #kernel-view (views/receptive.py, beside
the map) follow; both go when the pointer or the focus leaves the maps.
"""

from pyscript import document

from pyscript_app.core import receptive
from pyscript_app.views import receptive as receptive_view
from pyscript_app.page.dom import el


class Receptive:
    def __init__(self, page):
        self.page = page
        self.view = None  # the view shown (its activations), told by the page
        self.shown = None  # (layer, channel, row, col) outlined now

    def reset(self):
        self.hide()

    def update(self, state, view):
        self.view = view
        if self.shown is not None:  # the same pixel, of the new digit
            self.show(*self.shown)

    # --- events (main.py listens on the document)
    def on_pointer(self, event):
        target = event.target
        if not hasattr(target, "classList") or not target.classList.contains("fmap-img"):
            if self.shown is not None and document.activeElement is not None \
                    and not document.activeElement.classList.contains("fmap"):
                self.hide()
            return
        h, w = (int(v) for v in str(target.dataset.shape).split(","))
        rect = target.getBoundingClientRect()
        if rect.width <= 0 or rect.height <= 0:
            return
        row = min(h - 1, max(0, int((event.clientY - rect.top) / rect.height * h)))
        col = min(w - 1, max(0, int((event.clientX - rect.left) / rect.width * w)))
        button = target.parentElement
        key = (str(button.dataset.layer), int(button.dataset.index), row, col)
        if key != self.shown:
            self.show(*key)

    def on_focus(self, event):
        target = event.target
        if hasattr(target, "classList") and target.classList.contains("fmap") and self.view is not None:
            layer, channel = str(target.dataset.layer), int(target.dataset.index)
            maps = self.view.activations[[l.name for l in self.page.network.layers].index(layer)]
            self.show(layer, channel, *receptive.peak_pixel(maps, channel))
        elif self.shown is not None:
            self.hide()

    # --- drawing
    def show(self, layer_name, channel, row, col):
        network, view = self.page.network, self.view
        if view is None:
            return
        try:
            box = receptive.field(network, layer_name, row, col)
            x = network.normalize(view.pixels)
            info = receptive.products(network, layer_name, channel, row, col, x, view.activations)
        except (KeyError, ValueError):  # a map of a model no longer shown
            self.hide()
            return
        self.shown = (layer_name, channel, row, col)
        self.outline(box)
        layer = network.layer(layer_name)
        panel = el("kernel-view")
        html = receptive_view.kernel_view(layer, channel, row, col, info, box)
        if panel is None:
            document.body.insertAdjacentHTML("beforeend", html)
            panel = el("kernel-view")
        else:
            panel.outerHTML = html
            panel = el("kernel-view")
        self.place(panel, layer_name, channel)

    def outline(self, box):
        """#receptive-field over the digit (on the page's body, so a new view's input panel does not take it away)."""
        image = el("input-image")
        if image is None:
            return
        frame = el("receptive-field")
        if frame is None:
            document.body.insertAdjacentHTML("beforeend", '<div id="receptive-field" aria-hidden="true"></div>')
            frame = el("receptive-field")
        top, left, bottom, right = box
        rows, cols = self.page.network.image_shape
        rect = image.getBoundingClientRect()
        sx, sy = rect.width / cols, rect.height / rows
        scroll_x, scroll_y = document.documentElement.scrollLeft, document.documentElement.scrollTop
        style = frame.style
        style.left = f"{rect.left + scroll_x + left * sx}px"
        style.top = f"{rect.top + scroll_y + top * sy}px"
        style.width = f"{(right - left + 1) * sx}px"
        style.height = f"{(bottom - top + 1) * sy}px"
        frame.setAttribute("data-box", f"{top},{left},{bottom},{right}")
        frame.hidden = False

    def place(self, panel, layer_name, channel):
        """#kernel-view beside the hovered channel's map (below it when there is no room to its right)."""
        anchor = document.querySelector(f'#view .neuron[data-layer="{layer_name}"][data-index="{channel}"]')
        if anchor is None:
            return
        rect = anchor.getBoundingClientRect()
        scroll_x, scroll_y = document.documentElement.scrollLeft, document.documentElement.scrollTop
        width = document.documentElement.clientWidth
        left = rect.right + 10
        if left + panel.offsetWidth > width:
            left = max(4, width - panel.offsetWidth - 4)
            top = rect.bottom + 8
        else:
            top = rect.top
        panel.style.left = f"{left + scroll_x}px"
        panel.style.top = f"{top + scroll_y}px"

    def hide(self):
        self.shown = None
        frame, panel = el("receptive-field"), el("kernel-view")
        if frame is not None:
            frame.hidden = True
            frame.removeAttribute("data-box")
        if panel is not None:
            panel.remove()
