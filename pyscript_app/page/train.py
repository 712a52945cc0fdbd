"""Train mode (``#mode=train`` plus the settings): train a network in the page and watch it learn.

Browser-side. The training is pyscript_app/train.py (the same module pytest
runs); the panel's markup, the loss curve and the progress line come from
train_view.py, the weight gallery from gallery.py. Training runs in slices,
each its own task (a message to itself on a MessageChannel, so no wait for the
display's next tick and no timer clamping): every REFRESH_S a slice first
copies the weights into the network the page shows (network.weights_changed():
every cache of results follows) and redraws the live views (the progress line,
the loss curve, #view; the page's #weight-gallery every GALLERY_S); then it
advances a test-set evaluation by one chunk, and trains with what is left of
SLICE_S. Between two slices the browser handles clicks, keys and drawing (on
the network being trained) and paints.

The training digits (data/manifest.json's ``train`` entry, about 10 MB) are
fetched only when Train mode is first opened, with progress shown, and checked
against their sha256; the service worker keeps them for offline use.
"""

import asyncio
import hashlib
import io
import time

import js
import numpy as np
from pyodide.ffi import create_proxy, to_js
from pyscript import window

from pyscript_app.core import activations as act
from pyscript_app.views import gallery, render, render_inside, train_view
from pyscript_app.core import state, train
from pyscript_app.core import export_format as fmt
from pyscript_app.core import network as nw
from pyscript_app.page.dom import el, js_object, listen

MODEL_ID = "trained"  # the trained network's id in the picker and the address
SLICE_S = 0.013  # Python time per slice: input and painting wait at most this long
REFRESH_S = 0.075  # the live views are redrawn this often while training (about 12 a second)
GALLERY_S = 0.25  # the weight gallery (an image per first-layer neuron) this often
# With the error explorer open (a pass over the whole test set for every new set of weights), the
# network shown takes the trainer's weights this often while training, not at every refresh.
SLOW_SYNC_S = 1.0
EVAL_CHUNK = 500  # test digits classified per slice while an evaluation runs
EVALS_PER_EPOCH = 4  # test accuracy is measured this often within an epoch, and after every epoch
STATS_DIGITS = 500  # test digits over which an unbounded (relu) layer's colour scale is measured


class Train:
    """The Train panel, the trainer, and the loop that trains in slices."""

    def __init__(self, page):
        self.page = page
        self.trainer = None
        self.settings = None  # the settings the address asked for (nearest valid)
        self.notes = []
        self.images = self.labels = None  # the training digits, once loaded
        self.loading = None  # the task fetching them
        self.built = False  # the panel's markup is in the page
        self.running = False
        self.slice_pending = False
        self.redraw_view = False  # redraw #view at the next refresh even if the weights did not change
        self.gallery_due = False  # the weights changed since the gallery was drawn
        self.channel = js.MessageChannel.new()  # a message on it runs the next slice
        self.channel.port1.onmessage = create_proxy(self.slice)
        self.network = None  # the network the page shows for the trainer (models.networks[MODEL_ID])
        self.synced = -1  # the trainer's step the network's weights are of
        self.curve = train_view.LossCurve()
        self.rate = train_view.RateMeter()
        self.last_tick = None
        self.last_refresh = self.last_slow_sync = self.last_gallery = 0.0
        self.evaluation = None
        self.eval_due = False
        self.next_eval_step = 0
        self.test_accuracy = self.test_steps = None
        self.timing = {"train": 0.0, "eval": 0.0, "refresh": 0.0, "gallery": 0.0}  # seconds spent in the last slice's parts
        self.refreshes = 0  # live-view refreshes (#train-progress data-refreshes; tools/bench.py reads it)
        listen(el("train-toggle"), "click", self.toggle)
        el("train-toggle").disabled = False

    # --- the mode and the settings (the address)
    def toggle(self, *_):
        training = self.page.current_state().mode == "train"
        self.page.go(mode="sample" if training else "train")

    def follow(self, state_):
        """Show or hide the panel for ``state_``; in train mode take its settings (nearest valid, notes said)."""
        training = state_.mode == "train"
        el("train-panel").hidden = not training
        toggle = el("train-toggle")
        toggle.textContent = "Leave Train mode" if training else "Train a network"
        toggle.setAttribute("aria-expanded", "true" if training else "false")
        if not training:
            return
        settings, notes = train.Settings.from_params(state_.extra)
        canonical = settings.to_params()
        if state_.extra != canonical:  # a hand-edited or partial link: the address says what is used
            window.history.replaceState(None, "", state.format(state_.with_(extra=canonical)))
        if settings != self.settings:
            self.notes = notes
            self.apply(settings)
        elif notes:
            self.notes = notes
        if not self.built:
            self.build()
        self.show_notes()
        if self.images is None and self.loading is None:
            self.loading = asyncio.ensure_future(self.load_data())

    def apply(self, settings):
        """New settings: a new run (new initial weights from the seed), paused."""
        self.settings = settings
        if self.built:
            self.fill_form()
        if self.trainer is not None:
            self.pause()
            self.trainer.reset(settings)
            self.restart()
            self.install_network()

    def build(self):
        el("train-panel").innerHTML = train_view.panel_html(self.settings)
        self.built = True
        self.fill_form()
        form = el("train-form")
        listen(form, "change", self.on_form)
        listen(form, "submit", lambda event: event.preventDefault())
        for ident, handler in (("train-start", self.start), ("train-pause", self.on_pause), ("train-step", self.step),
                               ("train-reset", self.reset), ("train-save", self.save)):
            listen(el(ident), "click", handler)
        self.draw_buttons()

    def fill_form(self):
        s = self.settings
        form = el("train-form")
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

    def on_form(self, event):
        form = el("train-form")
        params = {}
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

    # --- the training digits
    async def load_data(self):
        status = el("train-data")
        spec = self.page.data_manifest.get("train")
        try:
            if not isinstance(spec, dict) or not fmt.is_plain_file_name(spec.get("file")):
                raise nw.ExportError(f"{nw.DATA_MANIFEST} has no valid 'train' entry")
            data = await fetch_with_progress("data/" + spec["file"], status)
            if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                raise nw.ExportError(f"data/{spec['file']} is corrupt: its sha256 does not match {nw.DATA_MANIFEST}")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                images, labels = npz["images"], npz["labels"]
            if images.shape[0] != spec.get("count", images.shape[0]) or labels.shape[0] != images.shape[0]:
                raise nw.ExportError(f"data/{spec['file']}: {images.shape[0]} images and {labels.shape[0]} labels, "
                                     f"the data manifest says {spec.get('count')}")
        except Exception as exc:  # noqa: BLE001 (said in the panel; Train mode can be opened again)
            status.textContent = f"The training digits could not be loaded: {exc}. Leave Train mode and open it again to retry."
            status.dataset.state = "error"
            self.loading = None
            return
        self.images, self.labels = images, labels
        status.textContent = f"{len(labels):,} training digits loaded ({len(data) / 1048576:.1f} MB, sha256 checked)."
        status.dataset.state = "ready"
        self.make_trainer()

    def make_trainer(self):
        manifest = self.page.network.manifest
        self.trainer = train.Trainer(self.settings, self.images, self.labels, classes=list(manifest["classes"]),
                                     input_spec=manifest["input"])
        self.restart()
        self.install_network()
        self.draw_buttons()
        # (for tools/bench.py: is the browser's matrix product the in-order one, or the slower slices?)
        el("train-progress").dataset.matmulInOrder = "true" if train.MATMUL_IN_ORDER else "false"
        self.refresh()

    # --- the network the page shows
    def install_network(self):
        """The trainer's network as the model MODEL_ID (replacing an earlier one); shown if it is shown."""
        page, models, t = self.page, self.page.models, self.trainer
        manifest, files = t.to_export(model_id=MODEL_ID, title=train_view.trained_title(t.sizes))
        network = nw.build_network(manifest, files, "the network being trained")
        self.set_stats(network)
        self.network = network
        self.synced = t.steps
        models.manifests[MODEL_ID] = manifest
        models.networks[MODEL_ID] = network
        if MODEL_ID not in models.order:
            models.order.append(MODEL_ID)
        if page.model_id == MODEL_ID:
            page.network = network
            page.shown = None
            for feature in page.features:
                feature.reset()
            page.draw_model_parts()
            page.show(whole=True)
        else:
            el("model-picker").innerHTML = models.picker_html(page.model_id)
            el("model-picker").value = page.model_id

    def show_trained(self):
        """Switch the page to the network being trained (the address says so)."""
        if self.page.model_id != MODEL_ID:
            self.page.go(model=MODEL_ID)

    def sync_weights(self):
        """Copy the trainer's weights into the network shown; every cache keyed on its version follows."""
        t, network = self.trainer, self.network
        if network is None or self.synced == t.steps and not t.stopped:
            return False
        if not all(np.isfinite(w).all() for w in t.weights):
            return False  # (diverged: the network keeps its last finite weights; the message says what happened)
        for layer, w, b in zip(network.layers, t.weights, t.biases):
            layer.weights, layer.bias = w.copy(), b.copy()
        network.weights_changed()
        self.set_stats(network)
        self.synced = t.steps
        return True

    def set_stats(self, network):
        """An unbounded layer's colour scale (relu): its p99 over the first STATS_DIGITS test digits, now."""
        unbounded = [i for i, layer in enumerate(network.hidden_layers) if not act.get(layer.activation).bounded]
        if not unbounded:
            return
        pixels = self.page.testset.images[:STATS_DIGITS].reshape(STATS_DIGITS, -1)
        acts = network.forward(network.normalize(pixels))
        for i in unbounded:
            a = np.abs(acts[i]) if np.min(acts[i]) < 0 else acts[i]
            network.layers[i].stats = {"p99": float(np.percentile(a, 99)), "max": float(np.max(a)),
                                       "over": f"{STATS_DIGITS} test digits, for the current weights"}

    # --- buttons
    def start(self, *_):
        if self.trainer is None or self.trainer.stopped:
            return
        self.show_trained()
        self.running = True
        self.last_tick = None
        self.draw_buttons()
        self.show_accuracy()
        self.schedule()

    def on_pause(self, *_):
        # Stopped at once; the views follow in the next slice (which pause() asks for), so the
        # click returns quickly. The view is redrawn then even if no batch was trained since the
        # last refresh: an open card lists its top test digits again.
        self.pause()
        self.redraw_view = True

    def pause(self):
        if not self.running:
            return
        self.running = False
        self.last_tick = None
        self.eval_due = True  # the accuracy of the weights paused at
        self.draw_buttons()
        self.schedule()

    def step(self, *_):
        if self.trainer is None or self.trainer.stopped:
            return
        self.pause()
        self.show_trained()
        self.trainer.step()
        self.eval_due = True
        self.show_accuracy()
        self.refresh()
        self.schedule()

    def reset(self, *_):
        if self.trainer is None:
            return
        self.pause()
        self.trainer.reset()
        self.restart()
        self.sync_weights()
        self.show_accuracy()
        self.refresh()

    def restart(self):
        self.curve.reset()
        self.rate.reset()
        self.evaluation = None
        self.eval_due = False
        self.next_eval_step = self.eval_every()
        self.test_accuracy = self.test_steps = None
        self.synced = -1
        el("train-message").hidden = True
        self.draw_buttons()

    def eval_every(self):
        return max(1, self.trainer.steps_per_epoch // EVALS_PER_EPOCH) if self.trainer else 1

    def save(self, *_):
        t = self.trainer
        if t is None:
            return
        try:
            manifest, files = t.to_export(model_id=MODEL_ID, title=train_view.trained_title(t.sizes),
                                          dataset=self.page.data_manifest.get("test") and {
                                              k: self.page.data_manifest["test"][k] for k in ("file", "sha256", "count")},
                                          test_accuracy=self.test_accuracy if self.test_steps == t.steps else None)
        except ValueError as exc:
            self.say(str(exc))
            return
        import json

        files = {nw.MANIFEST_NAME: json.dumps(manifest, indent=2).encode(), **files}
        data = fmt.write_zip(files)
        blob = js.Blob.new(to_js([js.Uint8Array.new(to_js(data))]), js_object(type="application/zip"))
        url = js.URL.createObjectURL(blob)
        link = js.document.createElement("a")
        link.href, link.download = url, f"trained-{train_view.shape_text(t.sizes)}-step{t.steps}.zip"
        js.document.body.appendChild(link)
        link.click()
        link.remove()
        window.setTimeout(create_proxy(lambda *_: js.URL.revokeObjectURL(url)), 10_000)

    def draw_buttons(self):
        if not self.built:
            return
        ready = self.trainer is not None
        stopped = ready and bool(self.trainer.stopped)
        el("train-start").disabled = not ready or self.running or stopped
        el("train-pause").disabled = not self.running
        el("train-step").disabled = not ready or stopped
        el("train-reset").disabled = not ready
        el("train-save").disabled = not ready or stopped
        el("train-panel").dataset.running = "true" if self.running else "false"

    def say(self, message):
        box = el("train-message")
        box.textContent = message
        box.hidden = not message

    # --- the loop: slices of training, each a task
    def schedule(self):
        if not self.slice_pending:
            self.slice_pending = True
            self.channel.port2.postMessage(0)

    def slice(self, *_):
        """One slice: the live views when due, a chunk of the evaluation, then training
        until SLICE_S of the slice is spent (at least one batch)."""
        self.slice_pending = False
        t = self.trainer
        if t is None:
            return
        start = time.perf_counter()
        if self.running:
            self.rate.add(0.0 if self.last_tick is None else start - self.last_tick, t.seen)
            self.last_tick = start
        if not self.running or start - self.last_refresh >= REFRESH_S:
            self.refresh()
        if self.evaluation is None and self.eval_due:
            self.eval_due = False
            self.evaluation = t.start_evaluation(self.page.testset.images, self.page.testset.labels, EVAL_CHUNK)
        t1 = time.perf_counter()
        if self.evaluation is not None and self.evaluation.advance():
            self.test_accuracy, self.test_steps = self.evaluation.accuracy, self.evaluation.steps
            self.evaluation = None
            self.show_accuracy()
            if not self.running:
                self.refresh()  # (while training, the next refresh shows it)
        t2 = time.perf_counter()
        self.timing["eval"] = t2 - t1
        if self.running:
            epoch = t.epoch
            t.run_until(start + SLICE_S)
            self.timing["train"] = time.perf_counter() - t2
            if t.epoch != epoch or t.steps >= self.next_eval_step:
                self.eval_due = True
                self.next_eval_step = t.steps + self.eval_every()
            if t.stopped:
                self.running = False
                self.say(t.stopped)
                self.draw_buttons()
                self.refresh()
        if self.running or self.evaluation is not None or self.eval_due:
            self.schedule()

    def refresh(self):
        """Redraw the live views: progress, loss curve, gallery, and the view (on the current weights)."""
        t = self.trainer
        if t is None:
            return
        self.last_refresh = time.perf_counter()
        self.refreshes += 1
        slow = self.running and self.page.explorer.open and self.page.network is self.network
        changed = False
        if not slow or self.last_refresh - self.last_slow_sync >= SLOW_SYNC_S:
            changed = self.sync_weights()
            self.last_slow_sync = self.last_refresh
        self.curve.extend(t.losses)
        progress = t.progress()
        box = el("train-progress")
        attrs = train_view.progress_attributes(progress, self.test_accuracy, self.test_steps, self.rate.rate, self.running)
        for key, value in attrs.items():
            setattr(box.dataset, key, value)
        box.dataset.refreshes = str(self.refreshes)
        evaluating = None if self.evaluation is None else (self.evaluation.position, self.evaluation.count)
        el("train-progress-text").innerHTML = train_view.progress_html(progress, self.test_accuracy, self.test_steps,
                                                                       self.rate.rate, evaluating)
        if t.stopped:
            self.say(t.stopped)
        if not el("train-panel").hidden:
            el("train-curve").innerHTML = self.curve.svg()
        t0 = time.perf_counter()
        self.gallery_due = self.gallery_due or changed
        if (self.gallery_due and self.page.network is self.network
                and (not self.running or t0 - self.last_gallery >= GALLERY_S)):
            self.gallery_due = False
            self.last_gallery = t0
            self.draw_gallery()
        self.timing["gallery"] = time.perf_counter() - t0
        if (changed or self.redraw_view) and self.page.network is self.network:
            self.redraw_view = False
            self.page.shown = None
            self.page.show()
        self.page.atlas.live()  # the atlas's live map, when it is open and one is due (in idle time)
        self.timing["refresh"] = time.perf_counter() - self.last_refresh
        for part, seconds in self.timing.items():  # (read by tools/bench.py)
            box.setAttribute(f"data-{part}-ms", f"{seconds * 1000:.2f}")


    def show_accuracy(self):
        """The model card states the test accuracy when it was measured on the weights shown (paused), else none."""
        manifest = self.page.models.manifests.get(MODEL_ID)
        if manifest is None or self.trainer is None:
            return
        current = not self.running and self.test_accuracy is not None and self.test_steps == self.trainer.steps
        value = round(float(self.test_accuracy), 6) if current else None
        training = manifest.setdefault("training", {})
        if training.get("test_accuracy") == value:
            return
        training["test_accuracy"] = value
        if self.page.model_id == MODEL_ID:
            el("model-card").outerHTML = self.page.models.card_html(MODEL_ID)

    def draw_gallery(self):
        """The page's #weight-gallery on the current weights: new images in the buttons already there
        (a click on one is never lost to a redraw), or the whole gallery when the layer is new."""
        box, network = el("weight-gallery"), self.network
        thumbs = None if box is None else box.querySelectorAll(".gthumb img")
        if thumbs is None or thumbs.length != network.layers[0].units or box.dataset.layer != network.layers[0].name:
            self.page.draw_gallery()
            return
        pictures, limit = gallery.images(network)
        for i, picture in enumerate(pictures):
            thumbs.item(i).src = render.png_data_url(picture)
        box.dataset.limit = render.fmt(limit)
        legend = box.nextElementSibling
        if legend is not None:
            legend.outerHTML = render_inside.diverging_legend(limit, "weight")
        box.dataset.version = str(network.version)


async def fetch_with_progress(url, status):
    """The bytes at ``url``, read as they arrive, with "x MB of y MB" in ``status``."""
    try:
        response = await js.fetch(url)
    except Exception as exc:  # noqa: BLE001 (the browser's TypeError: offline, say)
        raise nw.ExportError(f"{url} could not be fetched ({exc})") from None
    if not response.ok:
        raise nw.ExportError(f"{url} could not be loaded (HTTP {response.status} {response.statusText})")
    length = response.headers.get("content-length")
    total = int(length) if length else None
    status.dataset.state = "loading"
    status.textContent = train_view.download_progress(0, total)
    reader = response.body.getReader()
    parts, loaded = [], 0
    while True:
        chunk = await reader.read()
        if chunk.done:
            break
        data = chunk.value.to_bytes()
        parts.append(data)
        loaded += len(data)
        status.textContent = train_view.download_progress(loaded, total)
        status.dataset.loaded, status.dataset.total = str(loaded), str(total or "")
    return b"".join(parts)
