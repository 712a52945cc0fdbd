"""The atlas (#atlas; ``#mode=atlas`` or #atlas-toggle): every test digit as one layer sees it, and the digit shown.

Browser-side: core/atlas.py computes (in idle-time steps, progress in
#atlas-status), views/atlas.py draws (one putImageData of the whole map). The
page tells the atlas of every view it draws (``update``, as the other
features), so the current digit's dot (#atlas-current) follows clicks,
strokes and knock-outs at once. In Train mode the map is live: the first
atlas.LIVE_DIGITS test digits through the network being trained, computed a
little at each of Train mode's refreshes of its views (``live``: LIVE_SHARE of
the time since the refresh before, at most LIVE_BUDGET_MAX_S), a new one as
soon as one is done, in the same refresh when its time is not used up (at
most every LIVE_MIN_S), each new map turned to match the one before (atlas.align).
Its separability is measured on every LIVE_SEPARABILITY_MAPS-th map (the vote
costs about half as much as the rest of a map); the maps in between state the
last one.
Its work counts in the views' cost, so Train mode's pacing keeps the views
with it to their share of the time: the atlas takes its time from the
view's refreshes, not from training.

The input layer's map is the same for every network but for its scale: the
pixels' PCA and separability are computed at build time (tools/build_site.py
writes INPUT_FILE; its sha256 is in the page's #atlas-files block) and
fetched when first needed.

t-SNE (#atlas-method): the shipped models' maps are computed at build time
(tools/atlas_maps.py; their files and sha256 are in #atlas-files under
"tsne") and fetched when t-SNE is first chosen for a model. A network that is
not a shipped model as shipped (opened, or changed by training) gets its map
computed here, in idle time with progress, on the first tsne.DIGITS test
digits (core/tsne.py: scikit-learn's exact t-SNE); #atlas-method-note says so.
A t-SNE map reuses the layer's PCA map for everything but the places (the
labels, the separability), and places the digit shown by
atlas.place_by_neighbours among the digits it maps.
"""

import asyncio
import dataclasses
import hashlib
import io
import json
import time

import js
import numpy as np

from pyscript_app.core import atlas, explain, tsne
from pyscript_app.page.dom import el, fetch_bytes, in_idle_time, listen
from pyscript_app.views import atlas as atlas_view
from pyscript_app.views import render

LIVE_MIN_S = 0.2  # a new live map starts at most this often
LIVE_SHARE = 0.12  # the live map's work at each of Train mode's refreshes: this share of the time since the last
LIVE_BUDGET_MAX_S = 0.025  # ... at most this long (a refresh is a task: a click waits for it)
LIVE_SEPARABILITY_MAPS = 4  # a live map's separability is measured on every this many maps (the first included)
KEY_STEP = 12  # canvas pixels an arrow key moves the keyboard box
BLOCK = 64  # digits per step of the live map's forward pass


def position(network, layer_name):
    """The place of a layer of the manifest among the network's layers."""
    return [layer.name for layer in network.layers].index(layer_name)


async def fetch_checked(spec):
    """The bytes of a build-time file of #atlas-files ({"file", "sha256"}); a ValueError if they are not its."""
    data = await fetch_bytes(spec["file"])
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ValueError(f"{spec['file']} is corrupt: its sha256 does not match the page's")
    return data


class Atlas:
    def __init__(self, page):
        self.page = page
        self.open = False  # the panel is shown
        self.layer = None  # the layer picked (None: the last hidden layer)
        self.maps = {}  # (network version, layer) -> atlas.LayerMap over the whole test set
        self.map = None  # the map shown
        self.points = self.frame = None  # its dots on the canvas, and the frame that put them there
        self.running = None  # the key of the map being computed
        self.highlight = None  # a set of test digits to show highlighted (an error explorer cell)
        self.view = None  # the view the page shows (the current digit)
        self.input_raw = None  # (atlas.Pca, separability) of the pixels, once fetched
        self.loading_input = False
        self.live_prev = None  # the last live map's places (for the alignment)
        self.live_at = 0.0
        self.live_tick = None  # when Train mode's last refresh asked the live map to advance
        self.live_separability = (0, None)  # (live maps since it was measured, the figure) of the last live map
        self.live_refreshes = 0  # live maps shown (#atlas data-live-refreshes)
        self.live_job = self.live_done = None  # the live map being computed (a step generator), what to do after
        self.box = [atlas_view.SIZE / 2, atlas_view.SIZE / 2, 80.0]  # keyboard box: centre x, y and side
        self.drag = None  # (x, y) where a drag started
        self.method = "pca"  # the map picked in #atlas-method
        self.tsne = {}  # model id -> {layer: (digits, 2) places} of its t-SNE maps, once fetched
        self.tsne_loading = set()
        self.tsne_running = None  # the key of the t-SNE map being computed in the page
        self.shipped = {}  # model id -> the version of its network when first seen (t-SNE maps fit it only)
        self.ctx = el("atlas-canvas").getContext("2d")
        listen(el("atlas-method"), "change", lambda *_: self.pick_method(str(el("atlas-method").value)))
        listen(el("atlas-toggle"), "click", self.toggle)
        listen(el("atlas-layer"), "change", lambda *_: self.pick(str(el("atlas-layer").value)))
        listen(el("atlas-step"), "click", self.step)
        box = el("atlas-map")
        for kind, handler in (("pointerdown", self.down), ("pointermove", self.move), ("pointerup", self.up),
                              ("pointerleave", self.leave), ("keydown", self.key)):
            listen(box, kind, handler)
        el("atlas-toggle").disabled = False

    # --- open, close, the layer
    def follow(self, state_):
        """The address's mode: ``atlas`` opens the panel, ``sample`` closes it; draw and train keep it as it is."""
        if state_.mode == "atlas":
            self.show_panel(True)
        elif state_.mode == "sample":
            self.show_panel(False)

    def toggle(self, *_):
        mode = self.page.current_state().mode
        if mode in ("sample", "atlas"):
            self.page.go(mode="sample" if self.open else "atlas")
        else:
            self.show_panel(not self.open)
        if self.open:
            el("atlas-title").focus()

    def show_panel(self, open_):
        if open_ == self.open:
            return
        self.open = open_
        el("atlas").hidden = not open_
        button = el("atlas-toggle")
        button.setAttribute("aria-expanded", "true" if open_ else "false")
        if open_:
            self.view = self.view or self.page.shown_view
            self.refresh()

    def layer_names(self):
        return ["input", *(layer.name for layer in atlas.layers(self.page.network))]

    def current_layer(self):
        names = self.layer_names()
        return self.layer if self.layer in names else names[-2] if len(names) > 2 else names[-1]

    def pick(self, name):
        self.layer = name
        el("atlas-layer").value = name
        self.live_prev = None
        self.refresh()

    def step(self, *_):
        names = self.layer_names()
        self.pick(names[(names.index(self.current_layer()) + 1) % len(names)])

    def pick_method(self, method):
        self.method = method
        self.refresh()

    def tsne_files(self):
        return json.loads(str(el("atlas-files").textContent)).get("tsne", {})

    def has_tsne(self):
        """The network shown is a shipped model with t-SNE maps, its weights unchanged since the atlas first saw it
        (a knock-out does not change them; editing them in place does)."""
        model_id, network = self.page.model_id, self.page.network
        return (model_id in self.tsne_files() and model_id not in self.page.models.user
                and self.shipped.setdefault(model_id, network.version) == network.version)

    def show_method_choice(self):
        shipped = self.has_tsne()
        select, note = el("atlas-method"), el("atlas-method-note")
        note.textContent = "" if shipped else atlas_view.IN_PAGE_TSNE
        note.hidden = shipped or self.method != "tsne"
        select.value = self.method

    def reset(self):
        """A new model: its layers in the picker; the maps of the one before forgotten."""
        self.maps.clear()
        self.map, self.highlight, self.live_prev, self.live_job = None, None, None, None
        self.live_separability = (0, None)
        el("atlas-layer").innerHTML = atlas_view.layer_options(self.page.network, self.current_layer())
        if self.open:
            self.refresh()

    # --- the page's view
    def update(self, state_, view):
        """A new view is drawn: the current digit's dot moves to its place."""
        self.view = view
        if self.open:
            self.place_current()

    def highlight_digits(self, digits):
        """Show these test digits (an error explorer cell's) highlighted, the others dimmed."""
        self.highlight = None if digits is None else np.asarray(digits, dtype=np.intp)
        if self.open and self.map is not None:
            self.draw()

    # --- computing a map
    def training(self):
        return self.page.current_state(write_url=False).mode == "train"

    def refresh(self):
        """Show the map of the layer picked for the network shown: computed in idle time if it is not yet."""
        if not self.open:
            return
        network, layer = self.page.network, self.current_layer()
        self.show_method_choice()
        if self.training() and layer != "input":
            self.live(force=True)
            return
        key = (network.version, layer)
        if key in self.maps:
            self.show_map(self.with_method(self.maps[key]))
            return
        if layer == "input" and self.input_raw is None:
            if not self.loading_input:
                self.loading_input = True
                asyncio.ensure_future(self.load_input())
            return
        if self.running == key:
            return
        self.running = key
        self.say(f"Computing the map of {atlas_view.layer_title(layer)}…")
        spent = {}

        def done():
            self.running = None
            if result := self.maps.get(key):
                result.extra["spent"] = spent
                if self.open and (self.page.network.version, self.current_layer()) == key:
                    self.show_map(self.with_method(result))

        in_idle_time(self.timed(self.map_steps(network, layer, key), spent, layer), then=done)

    def timed(self, steps, spent, layer, quiet=False):
        """Run ``steps`` (yielding (what, fraction)) with progress shown (unless ``quiet``: a live map's
        refresh keeps the status line of the map shown); ``spent``: Python seconds per part, "all" and the
        longest step ("step")."""
        while True:
            t0 = time.perf_counter()
            try:
                what, fraction = next(steps)
            except StopIteration:
                what = None
            took = time.perf_counter() - t0
            spent["all"] = spent.get("all", 0.0) + took
            spent["step"] = max(spent.get("step", 0.0), took)
            if what is None:
                return
            spent[what] = spent.get(what, 0.0) + took
            if self.open and not quiet:
                self.say(f"Computing the map of {atlas_view.layer_title(layer)}: {what}, {fraction * 100:.0f} %")
            yield

    @staticmethod
    def record(spent):
        """The Python time of the map shown, by part, on #atlas (tools/bench_atlas.py reads them)."""
        data = el("atlas").dataset
        for name, key in (("pca", "principal axes"), ("project", "placing the digits"), ("knn", "separability"),
                          ("map", "all"), ("step", "step")):
            setattr(data, f"{name}Ms", f"{spent.get(key, 0.0) * 1000:.2f}")

    def map_steps(self, network, layer, key):
        testset = self.page.testset
        cache = explain.cache_for(network, testset)
        for done in cache.first_layer_blocks():
            yield "the first layer", done / len(testset)
        steps = cache.activation_steps()
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                acts = stop.value
                break
            yield "the other layers", 0.5
        predicted, labels = cache.predictions(), cache.labels
        if layer == "input":
            raw, separability = self.input_raw
            given = (atlas.input_pca(raw, network.normalization), separability)
            x = np.asarray(testset.images).reshape(len(testset), -1)
            got = yield from atlas.map_steps(layer, x, labels, predicted, given=given, transform=network.normalize)
        else:
            pos = position(network, layer)
            x = atlas.layer_space(network.layers[pos], acts[pos])
            got = yield from atlas.map_steps(layer, x, labels, predicted)
        self.maps[key] = got

    def with_method(self, pca_map):
        """The map to show for the method picked: the layer's PCA map, or its t-SNE map once fetched or computed
        (the PCA map meanwhile: the fetch or the computation is started, and the map is shown when it is done)."""
        if self.method != "tsne":
            return pca_map
        if not self.has_tsne():
            return self.page_tsne(pca_map)
        model_id = self.page.model_id
        maps = self.tsne.get(model_id)
        if maps is None:
            if model_id not in self.tsne_loading:
                self.tsne_loading.add(model_id)
                asyncio.ensure_future(self.load_tsne(model_id))
            return pca_map
        return dataclasses.replace(pca_map, xy=maps[pca_map.layer], method="tsne", extra=dict(pca_map.extra))

    def page_tsne(self, pca_map):
        """The t-SNE map of a network with no build-time map: computed here on the first tsne.DIGITS test digits
        (in idle time, progress in #atlas-status), from their places on the PCA map."""
        network, layer = self.page.network, pca_map.layer
        key = (network.version, layer, "tsne")
        if key in self.maps:
            return self.maps[key]
        if self.tsne_running != key:
            self.tsne_running = key
            n = min(tsne.DIGITS, len(pca_map.xy))
            x = self.full_space(layer)[:n]
            spent = {}

            def steps():
                xy = yield from tsne.tsne_steps(x, pca_map.xy[:n])
                self.maps[key] = dataclasses.replace(
                    pca_map, xy=xy, labels=pca_map.labels[:n], predicted=pca_map.predicted[:n], method="tsne",
                    digits=np.arange(n), extra={"spent": spent})

            def done():
                if self.tsne_running == key:
                    self.tsne_running = None
                if key in self.maps and self.open and self.method == "tsne" and \
                        (self.page.network.version, self.current_layer()) == key[:2]:
                    self.show_map(self.maps[key])

            in_idle_time(self.timed(steps(), spent, f"{layer} (t-SNE, {n:,} digits)"), then=done)
        return pca_map

    async def load_tsne(self, model_id):
        """Fetch a model's t-SNE maps (and the input pixels' map), each file checked against its sha256."""
        files = self.tsne_files()
        names = [layer.name for layer in atlas.layers(self.page.network)]
        digits = len(self.page.testset)
        self.say("Fetching the t-SNE maps…")
        maps = {}
        try:
            for key, wanted in ((model_id, names), ("input", ["input"])):
                spec = files[key]
                data = await fetch_checked(spec)
                with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                    try:
                        maps.update(atlas.read_tsne_arrays(arrays, wanted, digits))
                    except ValueError as exc:
                        raise ValueError(f"{spec['file']}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 (said in the panel; the PCA map stays usable)
            self.tsne_loading.discard(model_id)
            self.method = "pca"
            el("atlas-method").value = "pca"
            self.say(f"The t-SNE maps could not be loaded: {exc}. The PCA map is shown.")
            return
        self.tsne[model_id] = maps
        self.tsne_loading.discard(model_id)
        self.refresh()

    async def load_input(self):
        spec = json.loads(str(el("atlas-files").textContent))["input"]
        try:
            data = await fetch_checked(spec)
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                self.input_raw = atlas.read_input_arrays(arrays)
        except Exception as exc:  # noqa: BLE001 (said in the panel; another layer can be picked)
            self.say(f"The input layer's map could not be loaded: {exc}")
            self.loading_input = False
            return
        self.refresh()

    # --- Train mode: the live map
    def live(self, force=False):
        """Train mode's views were refreshed: advance the live map being computed by LIVE_SHARE of the time
        since the refresh before, or start one when one is due. While training runs the page has no idle
        time, so the map advances here, a little at every refresh; while it is paused, in idle time too."""
        now = time.perf_counter()
        since_last = float("inf") if self.live_tick is None else now - self.live_tick
        budget, self.live_tick = min(LIVE_BUDGET_MAX_S, LIVE_SHARE * since_last), now
        if self.live_job is not None:
            if self.advance_live(budget):
                return
            # done within this refresh: the next map may start with what is left of its time
            now = time.perf_counter()
            budget = budget - (now - self.live_tick)
            if budget <= 0:
                return
        if not self.open or self.running is not None or not self.training():
            return
        if not force and now - self.live_at < LIVE_MIN_S:
            return
        network, layer = self.page.network, self.current_layer()
        if layer == "input":
            return
        self.live_at = now
        spent, result = {}, {}
        since, figure = self.live_separability
        separability = atlas.MEASURE if force or since % LIVE_SEPARABILITY_MAPS == 0 else figure

        def steps():
            testset = self.page.testset
            n = min(atlas.LIVE_DIGITS, len(testset))
            pos = position(network, layer)
            images = np.asarray(testset.images[:n]).reshape(n, -1)
            x = np.empty((n, network.layers[pos].units), dtype=np.float32)
            predicted = np.empty(n, dtype=np.intp)
            for start in range(0, n, BLOCK):
                out = network.forward(network.normalize(images[start : start + BLOCK]))
                x[start : start + BLOCK] = atlas.layer_space(network.layers[pos], out[pos])
                predicted[start : start + BLOCK] = out[-1].argmax(axis=1)
                yield "the digits through the network", (start + BLOCK) / n
            labels = np.asarray(testset.labels[:n])
            result["map"] = yield from atlas.map_steps(layer, x, labels, predicted, previous=self.live_prev,
                                                       separability=separability)

        def done():
            if "map" not in result:
                return
            self.live_separability = (1 if separability is atlas.MEASURE else since + 1, result["map"].separability)
            if self.open and self.training() and self.current_layer() == layer:
                self.live_prev = result["map"].xy
                result["map"].extra["spent"] = spent
                self.live_refreshes += 1
                el("atlas").dataset.liveRefreshes = str(self.live_refreshes)
                self.show_map(result["map"])

        job = self.live_job = self.timed(steps(), spent, layer, quiet=self.live_prev is not None)
        self.live_done = done

        def idle():
            while job is self.live_job and self.advance_live(0.0):
                yield

        in_idle_time(idle())
        self.advance_live(budget)

    def advance_live(self, budget):
        """Run steps of the live map for about ``budget`` seconds (at least one); False once it is done."""
        job, t0 = self.live_job, time.perf_counter()
        while job is not None:
            if next(job, StopIteration) is StopIteration:
                self.live_job = None
                self.live_done()
                return False
            if time.perf_counter() - t0 >= budget:
                break
        return job is not None

    # --- drawing
    def say(self, text):
        el("atlas-status").textContent = text

    def show_map(self, layer_map):
        self.map = layer_map
        self.frame = atlas_view.Frame(layer_map.xy)
        self.points = self.frame.to_canvas(layer_map.xy)
        box = el("atlas")
        data = box.dataset
        data.layer, data.method, data.points = layer_map.layer, layer_map.method, str(len(layer_map.xy))
        pca = layer_map.method == "pca"
        data.mean = atlas_view.numbers(layer_map.pca.mean) if pca else ""
        data.axes = atlas_view.numbers(layer_map.pca.axes) if pca else ""
        data.model = self.page.model_id
        live = layer_map.digits is None and self.training()
        data.live = "true" if live else "false"
        self.record(layer_map.extra.get("spent", {}))
        el("atlas-layer").value = layer_map.layer
        labels = self.page.network.class_labels
        el("atlas-summary").innerHTML = atlas_view.summary_html(layer_map, labels)
        what = f"{len(layer_map.xy):,} test digits" + (
            f" (live, as the network trains; its separability measured on every {LIVE_SEPARABILITY_MAPS}th map)"
            if live else "")
        el("atlas-status").innerHTML = f"{what} · " + atlas_view.separability_html(layer_map)
        self.draw()
        self.place_current()
        data.state = "ready"

    def draw(self):
        t0 = time.perf_counter()
        m = self.map
        mask = None
        if self.highlight is not None:
            mask = np.isin(m.numbers(), self.highlight)
        img = atlas_view.raster(self.points, m.labels, m.misread, highlight=mask)
        pixels = js.Uint8ClampedArray.new(img.nbytes)
        pixels.assign(memoryview(img).cast("B"))
        self.ctx.putImageData(js.ImageData.new(pixels, atlas_view.SIZE, atlas_view.SIZE), 0, 0)
        el("atlas").dataset.drawMs = f"{(time.perf_counter() - t0) * 1000:.2f}"
        el("atlas").dataset.highlighted = "0" if mask is None else str(int(mask.sum()))

    def place_current(self):
        """#atlas-current at the view's digit's place: its activations minus the mean, dotted with each axis."""
        t0 = time.perf_counter()
        dot, m, view = el("atlas-current"), self.map, self.view
        if m is None or view is None:
            dot.hidden = True
            return
        network = self.page.network
        if m.method == "tsne":
            space = self.full_space(m.layer)[m.numbers()]
            xy = atlas.place_by_neighbours(space, m.xy, self.full_space_of_view(m.layer))
        elif m.layer == "input":
            xy = atlas.project(m.pca, network.normalize(view.pixels))
        else:
            pos = position(network, m.layer)
            xy = atlas.project(m.pca, atlas.layer_space(network.layers[pos], view.activations[pos]))
        x, y = self.frame.to_canvas(xy)
        dot.dataset.x, dot.dataset.y = repr(float(xy[0])), repr(float(xy[1]))
        dot.dataset.sample = "" if view.sample_index is None else str(view.sample_index)
        dot.style.left = f"{100 * x / atlas_view.SIZE:.3f}%"
        dot.style.top = f"{100 * y / atlas_view.SIZE:.3f}%"
        what = "your drawing" if view.sample_index is None else f"test digit {view.sample_index}"
        dot.title = f"{what}: here"
        dot.hidden = False
        el("atlas").dataset.followMs = f"{(time.perf_counter() - t0) * 1000:.3f}"

    def full_space(self, layer):
        """Every test digit in the layer's full space, as its t-SNE map was computed: the grey levels for the
        input, the activations (flattened) for a layer."""
        testset = self.page.testset
        if layer == "input":
            return np.asarray(testset.images).reshape(len(testset), -1)
        pos = position(self.page.network, layer)
        acts = explain.cache_for(self.page.network, testset).activations()[pos]
        acts = atlas.layer_space(self.page.network.layers[pos], acts)
        return acts.reshape(len(acts), -1)

    def full_space_of_view(self, layer):
        if layer == "input":
            return np.ravel(self.view.pixels)
        pos = position(self.page.network, layer)
        return np.ravel(atlas.layer_space(self.page.network.layers[pos], self.view.activations[pos]))

    # --- pointer and keys
    def canvas_point(self, event):
        rect = el("atlas-canvas").getBoundingClientRect()
        return ((event.clientX - rect.left) * atlas_view.SIZE / rect.width,
                (event.clientY - rect.top) * atlas_view.SIZE / rect.height)

    def digit_at(self, point):
        row = None if self.points is None else self.frame.nearest(point, self.points)
        return None if row is None else int(self.map.numbers()[row])

    def move(self, event):
        if self.points is None:
            return
        point = self.canvas_point(event)
        if self.drag is not None:
            self.show_box(self.drag + point)
            return
        tip, digit = el("atlas-tip"), self.digit_at(point)
        if digit is None:
            tip.hidden = True
            return
        testset = self.page.testset
        tip.innerHTML = (f'<img src="{render.png_data_url(testset.images[digit])}" alt="">'
                         f" test digit {digit}, a {int(testset.labels[digit])}")
        tip.style.left = f"{100 * point[0] / atlas_view.SIZE:.2f}%"
        tip.style.top = f"{100 * point[1] / atlas_view.SIZE:.2f}%"
        tip.hidden = False

    def leave(self, *_):
        el("atlas-tip").hidden = True

    def down(self, event):
        if self.points is None or (event.pointerType == "mouse" and event.button != 0):
            return
        event.preventDefault()
        el("atlas-map").setPointerCapture(event.pointerId)
        self.drag = self.canvas_point(event)

    def up(self, event):
        if self.drag is None:
            return
        start, end = self.drag, self.canvas_point(event)
        self.drag = None
        if max(abs(end[0] - start[0]), abs(end[1] - start[1])) < 4:  # a click: load the dot under it
            el("atlas-box").hidden = True
            digit = self.digit_at(end)
            if digit is not None:
                self.load(digit)
            return
        self.list_box(start + end)

    def load(self, digit):
        self.page.go(sample=digit, mode=self.page.test_digit_mode())

    def show_box(self, box):
        x0, x1 = sorted((box[0], box[2]))
        y0, y1 = sorted((box[1], box[3]))
        span = el("atlas-box")
        size = atlas_view.SIZE
        span.style.left, span.style.top = f"{100 * x0 / size:.2f}%", f"{100 * y0 / size:.2f}%"
        span.style.width, span.style.height = f"{100 * (x1 - x0) / size:.2f}%", f"{100 * (y1 - y0) / size:.2f}%"
        span.hidden = False

    def list_box(self, box):
        self.show_box(box)
        rows = atlas_view.Frame.inside(self.points, box)
        digits = self.map.numbers()[rows]
        found = el("atlas-found")
        found.innerHTML = atlas_view.found_html(self.page.testset, digits)
        found.dataset.count = str(len(digits))

    def key(self, event):
        """Arrow keys move the keyboard box, + and - resize it, Enter lists the digits inside."""
        if self.points is None or event.altKey or event.ctrlKey or event.metaKey:
            return
        x, y, side = self.box
        moves = {"ArrowLeft": (-1, 0), "ArrowRight": (1, 0), "ArrowUp": (0, -1), "ArrowDown": (0, 1)}
        size = atlas_view.SIZE
        if event.key in moves:
            dx, dy = moves[event.key]
            x, y = min(max(x + dx * KEY_STEP, 0), size), min(max(y + dy * KEY_STEP, 0), size)
        elif event.key in ("+", "="):
            side = min(side * 1.25, size)
        elif event.key in ("-", "_"):
            side = max(side / 1.25, 8.0)
        elif event.key == "Enter":
            event.preventDefault()
            self.list_box((x - side / 2, y - side / 2, x + side / 2, y + side / 2))
            return
        else:
            return
        event.preventDefault()
        self.box = [x, y, side]
        self.show_box((x - side / 2, y - side / 2, x + side / 2, y + side / 2))
