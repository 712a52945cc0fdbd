"""Clicks and keys: one table from a clicked element's ``data-action`` to what it does.

Browser-side. A click on a neuron opens its card (Shift+click knocks it
out); anything else with ``data-action`` goes through ACTIONS. Every change
of what is shown goes through the address (page.go).
"""

from pyscript import document

from pyscript_app.core import explain, navigate
from pyscript_app.page.dom import el, js_object


def click_neuron(page, event, neuron):
    key = (neuron.dataset.layer, int(neuron.dataset.index))
    if event.shiftKey:  # Shift+click: knock out (hidden layers only)
        if key[0] in explain.knockable_layers(page.network):
            page.go(knocked_out=explain.toggle_unit(page.network, page.current_state().knocked_out, *key))
    elif page.current_state().neuron == key:
        page.go(neuron=None)
    else:
        page.focus_card_next()
        page.go(neuron=key)


def open_neuron(page, action):
    page.focus_card_next()
    page.go(neuron=(action.dataset.layer, int(action.dataset.index)))


def knockout(page, action):
    layer, index = action.dataset.layer, int(action.dataset.index)
    if layer in explain.knockable_layers(page.network):
        page.go(knocked_out=explain.toggle_unit(page.network, page.current_state().knocked_out, layer, index))


def reset(page, action):
    page.go(knocked_out={})
    el("reset-network").blur()


def sample(page, action):
    # a test digit is shown as a test digit, also from draw mode
    page.go(sample=int(action.dataset.sample), mode=page.test_digit_mode())
    if action.classList.contains("cthumb"):
        el("input-panel").scrollIntoView(js_object(block="nearest", behavior="smooth"))


def focus_neuron(layer, index):
    target = document.querySelector(f'#view .neuron[data-layer="{layer}"][data-index="{index}"]')
    if target is not None:
        target.focus()
    return target


def skip_to_output(page, action):
    focus_neuron(page.network.layers[-1].name, 0)


def arrow_key(page, event, neuron):
    """Arrow keys, Home and End move between neurons (navigate.py); one Tab stop per layer."""
    layers = [(layer.name, layer.units) for layer in page.network.layers if layer.kind != "flatten"]  # (not drawn)
    goal = navigate.move(layers, (neuron.dataset.layer, int(neuron.dataset.index)), event.key)
    if goal is not None and focus_neuron(*goal) is not None:
        event.preventDefault()


ACTIONS = {
    "skip-output": skip_to_output,
    "close-card": lambda page, action: page.go(neuron=None),
    "open-neuron": open_neuron,
    "knockout": knockout,
    "reset": reset,
    "sample": sample,
    "cell": lambda page, action: page.explorer.select(int(action.dataset.true), int(action.dataset.predicted)),
    "connections": lambda page, action: page.connections.toggle(),
    "errors": lambda page, action: page.explorer.toggle(),
    "close-errors": lambda page, action: page.explorer.toggle(False),
    "dismiss-note": lambda page, action: page.show_notes([]),
    "why-method": lambda page, action: page.go(why=str(action.dataset.method)),
    "why-not": lambda page, action: page.go(target=(int(action.dataset.a), int(action.dataset.b))),
    "attack": lambda page, action: page.go(attack=int(action.dataset.attackTarget), applied=False),
    "attack-apply": lambda page, action: page.go(applied=True),
    "attack-undo": lambda page, action: page.go(applied=False),
    "attack-toggle": lambda page, action: page.why.toggle_attack(),
}


def on_click(page, event):
    target = event.target
    if not target.closest:
        return
    neuron = target.closest("#view .neuron")
    if neuron is not None:
        click_neuron(page, event, neuron)
        return
    action = target.closest("[data-action]")
    if action is not None and action.dataset.action in ACTIONS:
        ACTIONS[action.dataset.action](page, action)


def on_keydown(page, event):
    if event.key == "Escape":
        if page.explorer_open() and el("error-explorer").contains(document.activeElement):
            page.explorer.toggle(False)
        elif page.current_state().neuron is not None:
            page.go(neuron=None)
        return
    closest = event.target.closest if event.target.closest else None
    if closest is None or event.altKey or event.ctrlKey or event.metaKey:
        return
    neuron = closest("#view .neuron")
    if neuron is not None and event.key in navigate.KEYS:
        arrow_key(page, event, neuron)
        return
    cell = closest(".cell")
    if cell is not None:
        page.explorer.move(event, cell)


def on_pick(page, event):
    page.go(model=str(el("model-picker").value))
