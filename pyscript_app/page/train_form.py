"""Train mode's panel controls: showing the panel for the address, the settings form (one field per
address key), the buttons and the message line. The settings live in the address: the form writes
them there (page.go) and the panel takes them back from it (follow)."""

import js
from pyscript import document, window

from pyscript_app.core import state, train
from pyscript_app.views import train_view
from pyscript_app.page.dom import el, listen

BUTTONS = ("train-start", "train-pause", "train-step", "train-reset", "train-save")
# where the keyboard's focus goes when the button that has it is disabled by what it did (Train starts
# training and is disabled, Pause pauses it and is disabled): the button that undoes it, else the first enabled
NEXT_FOCUS = {"train-start": "train-pause", "train-pause": "train-start"}


class TrainForm:
    def __init__(self, page, on_settings, buttons):
        """``on_settings(settings)`` is called with new settings; ``buttons`` maps each id of BUTTONS to its handler."""
        self.page = page
        self.on_settings = on_settings
        self.buttons = buttons
        self.settings = None  # the settings the address asked for (nearest valid)
        self.notes = []
        self.built = False  # the panel's markup is in the page
        listen(el("train-toggle"), "click", self.toggle)
        el("train-toggle").disabled = False

    def toggle(self, *_):
        training = self.page.current_state().mode == "train"
        self.page.go(mode="sample" if training else "train")

    def follow(self, state_):
        """Show or hide the panel for ``state_``; in train mode take its settings (nearest valid, notes said).
        True in train mode."""
        training = state_.mode == "train"
        el("train-panel").hidden = not training
        toggle = el("train-toggle")
        toggle.textContent = "Leave Train mode" if training else "Train a network"
        toggle.setAttribute("aria-expanded", "true" if training else "false")
        if not training:
            return False
        settings, notes = train.Settings.from_params(state_.extra)
        canonical = settings.to_params()
        if state_.extra != canonical:  # a hand-edited or partial link: the address says what is used
            window.history.replaceState(None, "", state.format(state_.with_(extra=canonical)))
        if settings != self.settings:
            self.notes = notes
            self.settings = settings
            if self.built:
                self.fill()
            self.on_settings(settings)
        elif notes:
            self.notes = notes
        if not self.built:
            self.build()
        self.show_notes()
        return True

    def build(self):
        el("train-panel").innerHTML = train_view.panel_html(self.settings)
        self.built = True
        self.fill()
        form = el("train-form")
        listen(form, "change", self.on_change)
        listen(form, "submit", lambda event: event.preventDefault())
        for ident in BUTTONS:
            listen(el(ident), "click", self.buttons[ident])

    def fill(self):
        s = self.settings
        form = el("train-form")
        filters, kernels = form.querySelectorAll('select[name="conv-filters"]'), form.querySelectorAll('select[name="conv-kernel"]')
        pools = form.querySelectorAll('input[name="conv-pool"]')
        for i in range(filters.length):
            used = i < len(s.conv)
            filters.item(i).value = str(s.conv[i][0]) if used else ""
            if used:
                kernels.item(i).value = str(s.conv[i][1])
                pools.item(i).checked = s.conv[i][2]
            kernels.item(i).disabled = pools.item(i).disabled = not used
        selects = form.querySelectorAll('select[name="hidden"]')
        for i in range(selects.length):
            selects.item(i).value = str(s.hidden[i]) if i < len(s.hidden) else ""
        acts = s.activations
        activation = form.elements.namedItem("activation")
        value = acts[0] if len(set(acts)) == 1 else ",".join(acts)
        if not any(str(activation.options.item(i).value) == value for i in range(activation.options.length)):
            option = js.document.createElement("option")  # one activation per layer, from the address
            option.value = option.textContent = value
            activation.appendChild(option)
        activation.value = value
        form.elements.namedItem("optimizer").value = s.optimizer
        form.elements.namedItem("lr").value = train._number(s.learning_rate)
        form.elements.namedItem("batch").value = str(s.batch_size)
        form.elements.namedItem("seed").value = str(s.seed)
        form.elements.namedItem("momentum").value = train._number(s.momentum)
        el("train-momentum-field").hidden = s.optimizer != "momentum"

    def on_change(self, event):
        form = el("train-form")
        params = {}
        conv = conv_param(form)
        if conv:
            params["conv"] = conv
        selects = form.querySelectorAll('select[name="hidden"]')
        params["hidden"] = ",".join(v for v in (str(selects.item(i).value) for i in range(selects.length)) if v)
        for key in ("activation", "optimizer", "lr", "batch", "seed", "momentum"):
            params[key] = str(form.elements.namedItem(key).value)
        target = event.target
        if getattr(target, "name", None) == "optimizer" and str(target.value) != self.settings.optimizer:
            params["lr"] = train._number(train.DEFAULT_RATES[str(target.value)])  # each optimizer its own default rate
        if params["optimizer"] != "momentum":
            params.pop("momentum")
        self.page.go(extra=params)  # drawn through show(), which applies them (follow)

    def show_notes(self):
        box = el("train-notes")
        box.hidden = not self.notes
        box.textContent = ("The training link was adjusted: " + "; ".join(self.notes) + ".") if self.notes else ""

    def draw_buttons(self, ready, running, stopped):
        """The buttons for a trainer that is ``ready`` (made), ``running``, ``stopped`` (diverged)."""
        if not self.built:
            return
        active = document.activeElement
        focused = str(active.id) if active is not None and str(active.id) in BUTTONS else None
        el("train-start").disabled = not ready or running or stopped
        el("train-pause").disabled = not running
        el("train-step").disabled = not ready or stopped
        el("train-reset").disabled = not ready
        el("train-save").disabled = not ready or stopped
        el("train-panel").dataset.running = "true" if running else "false"
        if focused is not None and el(focused).disabled:  # (the browser would leave the focus on the page's body)
            for ident in (NEXT_FOCUS.get(focused), *BUTTONS):
                if ident is not None and not el(ident).disabled:
                    el(ident).focus()
                    break

    def say(self, message):
        box = el("train-message")
        box.textContent = message
        box.hidden = not message


def conv_param(form):
    """The address' ``conv`` value from the conv rows of the form ("8x3p,16x3p"; rows set to none left out)."""
    filters, kernels = form.querySelectorAll('select[name="conv-filters"]'), form.querySelectorAll('select[name="conv-kernel"]')
    pools = form.querySelectorAll('input[name="conv-pool"]')
    rows = [(str(filters.item(i).value), str(kernels.item(i).value), bool(pools.item(i).checked)) for i in range(filters.length)]
    return ",".join(f"{f}x{k}{'p' if pool else ''}" for f, k, pool in rows if f)
