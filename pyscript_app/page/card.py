"""The neuron card (#neuron-card in #card-slot) and the knock-out summary (#ko-summary, Reset).

Browser-side: the numbers come from explain.py, the markup from render_inside.py.
"""

from pyscript import document

from pyscript_app.views import render_inside
from pyscript_app.page.dom import el, js_object, rerender


class Card:
    def __init__(self, page):
        self.page = page
        self.focus_card = False  # move focus into the card when it is next drawn
        self.card_key = None  # (layer, index) of the open card
        self.ko_drawn = None  # the knock-out summary the page shows

    def reset(self):
        self.ko_drawn = None

    def focus_next(self):
        self.focus_card = True

    def update(self, state, view):
        self.draw_card(state, view)
        self.draw_knockouts(state)

    def draw_card(self, state, view):
        slot = el("card-slot")
        neuron = state.neuron
        if neuron is None:
            if self.card_key is not None:
                had_focus = slot.contains(document.activeElement)
                slot.innerHTML = ""
                closed, self.card_key = self.card_key, None
                if had_focus:  # back to the neuron the card belonged to
                    focus_neuron(closed)
            return
        page = self.page
        rerender(slot, render_inside.neuron_card(page.network, page.testset, view, *neuron, top_digits=not page.is_training()))
        opened = self.card_key != neuron
        self.card_key = neuron
        if self.focus_card:
            self.focus_card = False
            el("neuron-card").focus()  # and into view
        elif opened:
            el("neuron-card").scrollIntoView(js_object(block="nearest"))

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
