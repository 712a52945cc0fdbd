"""The page's view: what the address says is shown; the model shown; the URL and its notes.

Browser-side. Everything shareable is in the address (state.py): a click
draws the new state and writes it as a new history entry (Page.go); Back, a
link or a typed address arrives as a hashchange and is drawn from the
address. Any address is read as the nearest valid state (state.read); the
address is then rewritten to that state (replaceState: no extra history
entry) and what was ignored is said in #url-note.
"""

import asyncio
import random
import time

from pyodide.ffi import create_proxy, to_js
from pyscript import document, window

from pyscript_app.core import explain, flow, state, train

from pyscript_app.views import render
from pyscript_app.page.dom import el, in_idle_time, listen
from pyscript_app.page.maps import feature_maps

NOTE_SECONDS = 12  # how long a note about the address stays (it can be dismissed sooner)
GLIDE_S = 0.3  # a new view glides to its colours (site/style.css) when the one before was shown this long


#: called after every drawing of #view (in place or whole), which replaces elements of the view:
#: what marks one of them (the tour's highlight) marks it again here
after_drawing = []
drawn_whole = 0  # how many times #view was rendered whole (its panels may have changed: fit_view measures again)


def draw_view(network, view, whole=False):
    """Show ``view`` in #view: in place when #view shows a view of the same shape (one call
    into the page, site/patch.js; a CNN's feature-map pictures follow a frame later, page/maps.py),
    else (or with ``whole``) by rendering it whole, keeping a neuron's focus. True when it was rendered whole
    (its panels may have changed: Page.fit measures them again)."""
    box, apply_patch = el("view"), getattr(window, "nnvApplyPatch", None)
    if whole or apply_patch is None or not apply_patch(box, to_js(render.view_patch(network, view, maps=False).encode())):
        draw_whole(network, render.network_view(network, view))
        return True
    if any(render.is_image(layer) for layer in network.layers):
        feature_maps().later(network, view)
    for mark in after_drawing:
        mark()
    return False


def draw_whole(network, markup):
    """Render #view whole from ``markup`` (a view of ``network``, or the waiting view of an empty pad),
    keeping a neuron's focus; the page's fit measures it again (Page.fit)."""
    global drawn_whole
    drawn_whole += 1
    box = el("view")
    feature_maps().drawn()
    box.classList.toggle("has-maps", any(render.is_image(layer) for layer in network.layers))  # (site/style.css: a CNN's panels sit closer)
    focused = document.activeElement
    refocus = (focused.dataset.layer, focused.dataset.index) if focused and focused.classList.contains("neuron") else None
    box.innerHTML = markup
    if refocus:
        again = box.querySelector(f'.neuron[data-layer="{refocus[0]}"][data-index="{refocus[1]}"]')
        if again:
            again.focus()
    for mark in after_drawing:
        mark()


def overflows(box):
    """Do the panels of #view reach past its right edge (a row of panels too wide for the view)?"""
    panels = box.querySelectorAll(":scope > .panel")
    if not panels.length:
        return False
    right = panels[panels.length - 1].getBoundingClientRect().right - box.getBoundingClientRect().left - box.clientLeft
    return right + box.scrollLeft > box.clientWidth + 1


FIT_LEVELS = ("", "narrow", "smaller", "small")  # #view[data-fit], site/style.css: as it is, then narrower and smaller


def fit_view():
    """Fit the row of panels to the view's width, measured, so that it holds for a network of any shape on
    any screen: the first of FIT_LEVELS at which it fits (#view[data-fit], site/style.css). Where even the
    last does not, the room beside the view is taken back, a step at a time, each followed by the levels
    again: the side column (a neuron card, the error explorer) goes below the view (main[data-side]), then
    in draw mode the pad narrows (main[data-pad]). The view scrolls sideways only where none of it is
    enough."""
    box, main = el("view"), document.querySelector("main")
    main.removeAttribute("data-side")
    main.removeAttribute("data-pad")
    if fits_at_a_level(box):
        return
    if main.getAttribute("data-inside") == "true":
        main.setAttribute("data-side", "below")
        if fits_at_a_level(box):
            return
    if document.body.getAttribute("data-mode") == "draw":
        main.setAttribute("data-pad", "narrow")
        fits_at_a_level(box)


def fits_at_a_level(box):
    """Set #view[data-fit] to the first of FIT_LEVELS at which its panels fit (True), else to the last (False)."""
    for level in FIT_LEVELS:
        box.dataset.fit = level
        if not overflows(box):
            return True
    return False


def updated(t0):
    """Record an update of #view: its Python time (data-update-ms, which tools/bench.py reads)."""
    el("view").setAttribute("data-update-ms", f"{(time.perf_counter() - t0) * 1000:.3f}")


class Page:
    """The running page: the models, the one shown, the test set, and what is shown of it."""

    URL_DELAY_MS = 300
    CLICK_WARM_UP_ROUNDS = 30
    SWITCH_WARM_UP_ROUNDS = 10  # after a switch: the new shapes' first runs

    def __init__(self, models, testset, model_id, data_manifest, *, card, connections, explorer, pad, train,
                 open_your_own, why, atlas, receptive):
        """The page of ``model_id`` (loaded in ``models``) and every feature it holds, each made here from the
        class given (called with this page): the controllers talk to each other only through the page's
        methods below (install_model, redraw, is_training, explorer_open, set_test_accuracy, ...)."""
        self.models, self.testset = models, testset
        self.data_manifest = data_manifest  # data/manifest.json (the test digits, the training digits)
        self.model_id, self.network = model_id, models.networks[model_id]
        self.rng = random.Random()  # picks a click's test digit (not numpy.random: its import would slow the start)
        self.shown = None
        self.shown_view = None  # the view #view shows (None in draw mode)
        self.url_pending = None  # a URL (hash) shown but not yet written: see random_sample
        self.url_under = None  # the address when url_pending was set: a moved address drops it
        self.url_timer = None
        self.write_url_proxy = create_proxy(self.write_url)
        self.hide_note_proxy = create_proxy(lambda *_: self.show_notes([]))
        self.note_timer = None
        self.switching = None  # the id of the model being fetched
        self.prepared = {}  # network version -> Python ms of its first layer's pass over the test set (None: running)
        self.gliding, self.last_view_at = False, 0.0  # #view.glide, and when the last view was done
        # The features. Those in self.features are told of every view drawn (.update(state, view)) and
        # of a new model (.reset()); the pad and Train mode follow the address (.follow(state)).
        self.card, self.connections, self.explorer = card(self), connections(self), explorer(self)
        self.why = why(self)
        self.atlas = atlas(self)
        self.receptive = receptive(self)
        self.features = (self.card, self.connections, self.explorer, self.why, self.atlas, self.receptive)
        # ... of which these follow a drawing only when its stroke pauses or ends (tell(moving=True) skips
        # them): the flow's lines and the why map cost more than the view itself, and redrawn at every
        # frame of a stroke they would hold the view back on a slow machine, and flicker
        self.still_only = (self.connections, self.why)
        self.stroke = "still"
        self.pad = pad(self)
        self.train = train(self)
        self.open_your_own = open_your_own(self)
        self.fitted = None  # what the view's width was last fitted to (fit)
        listen(window, "resize", lambda *_: self.fit())

    # --- what one feature asks of another
    def is_training(self):
        """Is the network shown being trained right now (Train mode running on it)?"""
        return self.train.is_training(self.network)

    def training_now(self):
        """Is Train mode training right now (whichever network is shown)?"""
        return self.train.running()

    def explorer_open(self):
        return self.explorer.is_open()

    def inside_changed(self):
        """Called when the neuron card opens or closes or the error explorer is shown or hidden: the side
        column (#inside) takes room only while it shows one of them (main[data-inside], site/style.css)."""
        shows = "true" if self.card.is_open() or self.explorer.is_open() else "false"
        main = document.querySelector("main")
        if main.dataset.inside != shows:
            main.dataset.inside = shows
            self.fit()

    def fit(self):
        """When what sets the view's width or its panels changed (the screen's width, the side column, the
        mode: Train mode's settings take room, a view drawn whole), fit the panels to the width (fit_view)
        and draw the lines again on the neurons where they now are."""
        key = (window.innerWidth, document.querySelector("main").dataset.inside,
               document.body.getAttribute("data-mode"), drawn_whole)  # (no mode yet before the first view)
        if key != self.fitted:
            self.fitted = key
            fit_view()
            self.connections.layout_moved()

    def focus_card_next(self):
        """Move the focus into the neuron card when it is next drawn (a neuron was clicked)."""
        self.card.focus_next()

    # --- the state
    def context(self):
        layers = self.network.layers
        return state.Context(
            layer_units={layer.name: layer.units for layer in layers},
            knockable=explain.knockable_layers(self.network),
            samples=len(self.testset),
            models=self.models.ids(),
            default_model=self.models.default,
            extra_keys=train.KEYS,
            classes=self.network.output_layer.units,
        )

    def address(self):
        return self.url_pending if self.url_pending is not None else str(window.location.hash)

    def current_state(self, write_url=True):
        """What the page shows. A URL still to be written is the state: it is written first
        (so a change made next comes after it in the history), unless ``write_url`` is False."""
        if write_url:
            self.write_url()
        return state.read(self.address(), self.context())[0]

    def go(self, **changes):
        """Show the state with ``changes`` and make it a new history entry. It is drawn here, in the
        event's own task, not after a hashchange (a task of its own, which would wait behind
        whatever is queued, such as a slice of training). A change of model goes through the
        address: the hashchange listener fetches the model."""
        if changes.get("model") == self.models.default:
            changes["model"] = None
        text = state.format(self.current_state().with_(**changes))
        new, notes = state.read(text, self.context())
        if (new.model or self.models.default) != self.model_id:
            window.location.hash = text
            return
        if text != self.address():
            window.history.pushState(None, "", text or (str(window.location.pathname) + str(window.location.search)))
        self.normalise_address(text, new, notes)
        self.show(state_=new)

    def write_url(self, *_):
        if self.url_pending is None:
            return
        url, self.url_pending = self.url_pending, None
        # The address moved on since (a link, a typed hash, Back): its hashchange may still be on
        # its way, behind this (a timer that fell due first, a click handled first); writing the
        # click's URL now would put it back over the address, and that address would never be shown.
        if str(window.location.href) == self.url_under:
            window.history.pushState(None, "", url)  # a new history entry (Back returns), no hashchange

    def on_hashchange(self, *_):
        self.url_pending = None  # the URL moved on (Back, a link, a typed hash): it says what to show
        self.show()

    def normalise_address(self, text, shown, notes):
        """Rewrite the address to the state shown when it says anything else, and say what was ignored."""
        canonical = state.format(shown)
        if canonical != text:
            window.history.replaceState(None, "", canonical or (str(window.location.pathname) + str(window.location.search)))
        if notes:
            self.show_notes(notes)

    def show_notes(self, notes):
        box = el("url-note")
        window.clearTimeout(self.note_timer)
        if not notes:
            box.hidden = True
            return
        el("url-note-text").textContent = "The address was adjusted: " + "; ".join(notes) + "."
        box.hidden = False
        self.note_timer = window.setTimeout(self.hide_note_proxy, NOTE_SECONDS * 1000)

    def show_model_error(self, message):
        box = el("open-model-error")
        box.textContent = message and f"Not opened: {message}. The network shown is unchanged."
        box.hidden = not message

    # --- drawing
    def show(self, *_, state_=None, whole=False):
        self.draw(state_, whole)
        self.fit()

    def draw(self, state_=None, whole=False):
        t0 = time.perf_counter()
        if state_ is None:
            self.write_url()
            text = self.address()
            state_, notes = state.read(text, self.context())
            wanted = state_.model or self.models.default
            if wanted != self.model_id:
                asyncio.ensure_future(self.switch(wanted, t0))
                return
            self.normalise_address(text, state_, notes)
        self.train.follow(state_)
        self.atlas.follow(state_)
        if self.pad.follow(state_):  # draw mode: the pad shows the view
            self.shown = self.shown_view = None
            return
        index = state_.sample if state_.sample is not None else 0
        key = (self.network.version, index, state_.neuron, tuple(sorted((k, tuple(v)) for k, v in state_.knocked_out.items())),
               state_.attack if state_.applied else None)
        if key == self.shown and not whole:
            self.why.update(state_, self.shown_view)  # the panel's own choices (method, class, attack) may have changed
            return
        self.shown = key
        view = render.view_for_sample(self.network, self.testset, index, state_.knocked_out, state_.neuron)
        view = self.why.applied_view(state_, view)
        self.glide_unless_quick(t0)
        draw_view(self.network, view, whole)
        self.shown_view = view
        updated(t0)
        self.tell(state_, view)
        self.last_view_at = time.perf_counter()  # (a slow machine's long view does not end a quick run)

    def glide_unless_quick(self, now):
        """#view.glide (colours and bars glide to a new view) unless the view before was done less than
        GLIDE_S before ``now`` (when this one was asked for), or the view is a refresh of the network being
        trained (a glide repaints every frame it runs: at a few refreshes a second, a quarter of a slow
        machine's time taken from training). The class changes once at the start and end of a quick run,
        not at every view."""
        glide = now - self.last_view_at >= GLIDE_S and not self.is_training()
        if glide != self.gliding:
            self.gliding = glide
            el("view").classList.toggle("glide", glide)

    def tell(self, state_, view, moving=False):
        """Tell the features of the view drawn; ``moving``: a frame of a stroke being drawn, which the
        features in still_only hear of when the stroke pauses or ends (the pad tells them again then)."""
        stroke = "moving" if moving else "still"
        if self.stroke != stroke:  # (site/style.css dims the lines and the why map while it is "moving")
            self.stroke = document.querySelector("main").dataset.stroke = stroke
        for feature in self.features:
            if not (moving and feature in self.still_only):
                feature.update(state_, view)

    def nothing_drawn(self, state_):
        """The pad is empty: what explains a digit waits for one (the view shows its layers waiting), and the
        atlas's dot of the current digit goes."""
        for feature in (self.card, self.atlas):
            feature.update(state_, None)
        self.why.nothing_shown(state_)

    def test_digit_mode(self):
        """The mode a test digit is shown in: with the atlas when it is open."""
        return "atlas" if self.atlas is not None and self.atlas.open else "sample"

    def random_sample(self, *_):
        current = self.current_state(write_url=False)
        index = current.sample
        while index == current.sample:
            index = self.rng.randrange(len(self.testset))
        new = current.with_(sample=index, mode=self.test_digit_mode())
        self.show(state_=new)
        # The URL (a new history entry) follows once the clicking pauses. Chromium's same-document
        # navigation, after every paint, slowed the next click (measured: click p95 17.5 ms, 10.4
        # without it; docs/benchmarks.md). A quick run of clicks is then one Back step, like
        # typing is one undo step. Anything that reads the state writes it first.
        if self.url_pending is None:
            self.url_under = str(window.location.href)
        self.url_pending = state.format(new)
        window.clearTimeout(self.url_timer)  # (None, before the first click: no timer, no-op)
        self.url_timer = window.setTimeout(self.write_url_proxy, self.URL_DELAY_MS)

    # --- switching models
    async def switch(self, model_id, t0):
        if self.switching == model_id:
            return
        self.switching = model_id
        cached = model_id in self.models.networks
        progress = el("model-progress")
        if not cached:
            progress.textContent = f"Loading the model {model_id}…"
            progress.hidden = False
        try:
            network = await self.models.network(model_id)
        except Exception as exc:  # noqa: BLE001 (named in the page; the model shown stays)
            self.switching = None
            progress.hidden = True
            self.show_model_error(f"the model {model_id!r} could not be loaded: {exc}")
            back = state.read(self.address(), self.context())[0]
            window.history.replaceState(None, "", state.format(back.with_(
                model=None if self.model_id == self.models.default else self.model_id)) or str(window.location.pathname))
            self.show()
            return
        self.switching = None
        progress.hidden = True
        if (state.read(self.address(), self.context())[0].model or self.models.default) != model_id:
            self.show()  # the address moved on while the files came
            return
        self.use_network(model_id, network)
        el("view").dataset.switchMs = f"{(time.perf_counter() - t0) * 1000:.1f}"
        el("view").dataset.switchCached = "true" if cached else "false"
        in_idle_time(self.warm_up_clicks(rounds=self.SWITCH_WARM_UP_ROUNDS), then=self.prepare)

    def use_network(self, model_id, network):
        """Show ``network`` as the model ``model_id``: every feature starts afresh, the model's parts are drawn."""
        self.model_id, self.network = model_id, network
        self.shown = None
        for feature in self.features:
            feature.reset()
        self.draw_model_parts()
        self.show(whole=True)

    def install_model(self, model_id, network, manifest):
        """Add (or replace) the model ``model_id`` built in the page (Train mode's network); shown at once
        if it is the model shown, else named in the picker."""
        self.models.install(model_id, network, manifest)
        if self.model_id == model_id:
            self.use_network(model_id, network)
        else:
            self.draw_picker()

    def redraw(self):
        """Draw the view again although the address did not change (the weights shown changed)."""
        self.shown = None
        self.show()

    def set_test_accuracy(self, model_id, value):
        """The test accuracy the model card of ``model_id`` states (None: none measured for these weights)."""
        if self.models.set_test_accuracy(model_id, value) and self.model_id == model_id:
            el("model-card").outerHTML = self.models.card_html(model_id)

    def draw_picker(self):
        picker = el("model-picker")
        picker.innerHTML = self.models.picker_html(self.model_id)
        picker.value = self.model_id

    def draw_model_parts(self):
        """Everything outside #view that belongs to the model: its name in the picker, its card, the legend, facts."""
        el("view").dataset.model = self.model_id
        self.draw_picker()
        el("model-card").outerHTML = self.models.card_html(self.model_id)
        el("legend").outerHTML = render.legend(self.network)
        el("facts").innerHTML = render.model_facts(self.network.manifest)
        self.draw_gallery()

    def draw_gallery(self):
        """#weight-gallery: what the first layer of the network shown has learned (again whenever its weights change)."""
        from pyscript_app.views import gallery

        el("gallery-slot").innerHTML = gallery.gallery_html(self.network)

    # --- idle time
    def warm_up_clicks(self, rounds=None):
        """Run the click path in idle time, a round a step, changing nothing on screen.

        A round computes a random sample's view, its patch and its connections
        (what a click computes) and applies the patch of the view already shown
        (patch.js then writes nothing but the input image, identical). The
        first clicks after start-up or a switch of model would otherwise pay
        for that code's first runs on these shapes (measured: the first ~10
        clicks 30 to 80 ms, later ~10 ms). Stops early in draw mode. #view
        gets data-warm="done" when it is over.
        """
        for _ in range(self.CLICK_WARM_UP_ROUNDS if rounds is None else rounds):
            if self.shown_view is None:
                break
            current = self.current_state(write_url=False)
            index = self.rng.randrange(len(self.testset))
            network = self.network
            view = render.view_for_sample(network, self.testset, index, current.knocked_out, current.neuron)
            render.view_patch(network, view, maps=False)
            yield  # (a round in parts: at 4x CPU throttle a whole round was a task of 50 to 90 ms)
            render.maps_patch(network, view)
            flow.strongest(network, network.normalize(view.pixels), view.activations, flow.default_per_neuron(network))
            yield
            if self.network is not network or self.shown_view is None:
                break
            draw_view(network, self.shown_view)
            yield
        el("view").dataset.warm = "done"

    def prepare(self):
        """Run the model over the test set in idle time, once per model, with progress shown.

        That pass is what a first confusion matrix or card would otherwise
        wait for: its first layer (explain.TestsetCache.first_layer_blocks,
        which grows with the first layer's width; the progress counts its
        digits), then the layers after it in blocks of rows
        (TestsetCache.activation_steps), so that opening the explorer only
        counts the answers. #inside gets data-warm="done", data-warm-model
        and data-warm-ms (Python time of the steps) when it is over. A pass
        whose weights change under it (Train mode) is given up.
        """
        network = self.network
        box, progress = el("inside"), el("model-progress")

        def mark_done(spent_ms):
            progress.hidden = True
            box.dataset.warmMs = f"{spent_ms:.3f}"
            box.dataset.warmModel = self.model_id
            box.dataset.warm = "done"

        if network.version in self.prepared:  # done before (or running still: it marks itself when done)
            if self.prepared[network.version] is not None:
                mark_done(self.prepared[network.version])
            else:
                box.dataset.warm = "running"
            return
        self.prepared[network.version] = None
        box.dataset.warm = "running"

        version = network.version

        def given_up():
            """Trained meanwhile: the pass would be of weights gone (the explorer runs one when opened)."""
            if network.version == version:
                return False
            self.prepared.pop(version, None)
            if network is self.network:
                progress.hidden = True
                box.removeAttribute("data-warm")
            return True

        def steps():
            blocks = explain.cache_for(network, self.testset).first_layer_blocks()
            spent, total = 0.0, len(self.testset)
            while True:
                if given_up():
                    return
                t0 = time.perf_counter()
                done = next(blocks, None)
                spent += time.perf_counter() - t0
                if done is None:
                    break
                if network is self.network:
                    progress.textContent = f"Preparing the error explorer: {done:,} / {total:,} test digits"
                    progress.hidden = done >= total
                yield
            rest = explain.cache_for(network, self.testset).activation_steps()
            while True:
                if given_up():
                    return
                t0 = time.perf_counter()
                try:
                    next(rest)
                except StopIteration:
                    break
                finally:
                    spent += time.perf_counter() - t0
                yield
            self.prepared[version] = spent * 1000
            if network is self.network:
                mark_done(spent * 1000)

        in_idle_time(steps())
