"""The neuron card (#neuron-card in #card-slot) and the knock-out summary (#ko-summary, Reset).

Browser-side: the numbers come from explain.py, the markup from render_inside.py. A channel's
card (conv2d, maxpool2d) shows its feature map enlarged: the value under the pointer, or under
a cursor the arrow keys move while the map has focus, is read out beside it.
"""

import numpy as np
from pyscript import document

from pyscript_app.core import explain
from pyscript_app.views import render, render_inside
from pyscript_app.page.dom import el, in_idle_time, js_object, listen, rerender

MAP_KEYS = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}


def finding(done: int, total: int) -> str:
    """In a CNN's card, in place of the test digits that excite it most while its pass over the test set runs."""
    return f"Finding them: the {total:,} test digits are going through the network in idle time ({done:,} so far)."


class Card:
    def __init__(self, page):
        self.page = page
        self.focus_card = False  # move focus into the card when it is next drawn
        self.card_key = None  # (layer, index) of the open card
        self.ko_drawn = None  # the knock-out summary the page shows
        self.map = None  # the open channel card's map (height, width), as its data-map says
        self.map_cursor = None  # (row, column) read out last on that card
        self.waiting = None  # (network version, knock-out key) whose pass over the test set runs for the card
        slot = el("card-slot")
        listen(slot, "pointermove", self.on_map_pointer)
        listen(slot, "keydown", self.on_map_key)
        listen(slot, "focusin", self.on_map_focus)

    def reset(self):
        self.ko_drawn = None

    def is_open(self):
        return self.card_key is not None

    def top_digits_ready(self, knocked_out):
        """True when the card's top digits cost no pass over the test set (a dense network's do not, a CNN's
        do until its pass for these knock-outs ran); else a sentence for the card, while the pass runs in idle
        time and draws the card again when done."""
        page = self.page
        network, testset = page.network, page.testset
        cache = explain.cache_for(network, testset)
        if not any(explain.is_image_layer(layer) for layer in network.layers) or cache.is_ready(knocked_out):
            return True
        key = (network.version, explain.knockout_key(network, knocked_out))
        if self.waiting != key:
            self.waiting = key

            def steps():
                for _ in cache.first_layer_blocks(knocked_out):
                    if self.waiting != key or page.network is not network:
                        return
                    note = el("card-top-later")
                    if note is not None and not page.is_training():
                        note.textContent = finding(*cache.pass_progress(knocked_out))
                    yield

            def done():
                if self.waiting == key and page.network is network:
                    self.waiting = None
                    if self.card_key is not None:
                        page.redraw()  # the card (and its "what it wants") with the pass done

            in_idle_time(steps(), then=done)
        return finding(*cache.pass_progress(knocked_out))

    def focus_next(self):
        self.focus_card = True

    def update(self, state, view):
        """Draw the card the state names for ``view`` (None: no digit is shown, the card waits for one)."""
        self.draw_card(state, view)
        self.draw_knockouts(state)

    def draw_card(self, state, view):
        slot = el("card-slot")
        neuron = state.neuron
        if neuron is None:
            if self.card_key is not None:
                had_focus = slot.contains(document.activeElement)
                slot.innerHTML = ""
                self.map = self.map_cursor = None
                closed, self.card_key = self.card_key, None
                self.page.inside_changed()
                if had_focus:  # back to the neuron the card belonged to
                    focus_neuron(closed)
            return
        page = self.page
        if view is None:  # no digit shown (an empty pad)
            rerender(slot, render_inside.waiting_card(page.network, *neuron))
        else:
            top = not page.is_training() and self.top_digits_ready(state.knocked_out)
            rerender(slot, render_inside.neuron_card(page.network, page.testset, view, *neuron, top_digits=top))
        opened = self.card_key != neuron
        self.card_key = neuron
        if opened:
            self.page.inside_changed()
        self.read_map(keep_cursor=not opened)
        if self.focus_card:
            self.focus_card = False
            el("neuron-card").focus()  # and into view
        elif opened:
            el("neuron-card").scrollIntoView(js_object(block="nearest"))

    # --- a channel's map: the value under the pointer or the keyboard's cursor
    def read_map(self, keep_cursor):
        card = el("neuron-card")
        values = card.getAttribute("data-map") if card is not None else None  # (a neuron's card has none)
        if not values:
            self.map = self.map_cursor = None
            return
        h, w = (int(v) for v in card.getAttribute("data-shape").split(","))
        self.map = np.array(values.split(","), dtype=np.float64).reshape(h, w)
        if keep_cursor and self.map_cursor is not None:
            self.show_map_value(*self.map_cursor)
        else:
            self.map_cursor = None

    def show_map_value(self, row, column):
        h, w = self.map.shape
        row, column = min(max(row, 0), h - 1), min(max(column, 0), w - 1)
        self.map_cursor = (row, column)
        value = float(self.map[row, column])
        text = render_inside.map_value_text(row, column, value)
        frame, readout = el("card-map-frame"), el("card-map-readout")
        frame.dataset.row, frame.dataset.column = str(row), str(column)
        readout.textContent = text
        readout.dataset.value = render.fmt(value)
        el("card-map").title = text
        cursor = frame.querySelector(".map-cursor")
        cursor.style.setProperty("--r", str(row))
        cursor.style.setProperty("--c", str(column))
        cursor.hidden = False

    def on_map_pointer(self, event):
        target = event.target
        if self.map is None or target.id != "card-map":
            return
        box = target.getBoundingClientRect()
        if box.width <= 0 or box.height <= 0:
            return
        h, w = self.map.shape
        self.show_map_value(int((event.clientY - box.top) / box.height * h), int((event.clientX - box.left) / box.width * w))

    def on_map_focus(self, event):
        if self.map is not None and event.target.id == "card-map-frame":
            frame = event.target
            self.show_map_value(int(frame.dataset.row), int(frame.dataset.column))

    def on_map_key(self, event):
        if self.map is None or event.target.id != "card-map-frame" or event.key not in MAP_KEYS:
            return
        if event.altKey or event.ctrlKey or event.metaKey:
            return
        event.preventDefault()  # the arrows move the cursor, not the page
        dr, dc = MAP_KEYS[event.key]
        row, column = self.map_cursor or (int(event.target.dataset.row), int(event.target.dataset.column))
        self.show_map_value(row + dr, column + dc)

    def draw_knockouts(self, state):
        summary = render_inside.knockout_summary(self.page.network, state.knocked_out)
        if summary == self.ko_drawn:  # every click comes here: leave the page alone if nothing changed
            return
        self.ko_drawn = summary
        el("ko-summary").textContent = summary
        reset = el("reset-network")
        reset.hidden = not summary
        reset.disabled = not summary


def focus_neuron(key):
    target = document.querySelector(f'#view .neuron[data-layer="{key[0]}"][data-index="{key[1]}"]')
    if target is not None:
        target.focus()
