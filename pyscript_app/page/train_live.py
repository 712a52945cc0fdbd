"""Train mode's live views: the network being trained as a model of the page, and what follows its training.

A refresh copies the trainer's weights into the network the page shows
(network.weights_changed(): every cache of results follows), then redraws the
progress line, the loss curve, #view and, less often, the page's
#weight-gallery. How often is core/pacing.py's: the intervals grow with what a
refresh costs on this machine, so that the views take at most a fifth of the
time while training. A refresh's cost counts the work it leaves for the frames
after it too (dom.AfterValues: the connections, a CNN's maps, the why panel),
and a relu layer's colour scale, a forward pass of test digits, is measured
again at most every STATS_EVERY_S while training. #train-progress says how it
went: data-refresh-ms and data-gallery-ms (the last refresh's parts),
data-later-ms (the work left for the frames after the refresh before it),
data-refresh-interval-ms and data-gallery-interval-ms (the intervals now),
data-views-share (the fraction of the last few seconds spent on the views while
training).

Test hook: ``window.nnvRefreshCostMs`` (a number, unset in normal use) adds that
many ms of busy work to every refresh, as a slower machine would; the browser
tests use it to check that the intervals follow the cost.
"""

import time

import numpy as np
from pyscript import window

from pyscript_app.core import activations as act
from pyscript_app.core import network as nw
from pyscript_app.core import pacing
from pyscript_app.views import gallery, render, render_inside, train_view
from pyscript_app.page import dom
from pyscript_app.page.dom import el

MODEL_ID = "trained"  # the trained network's id in the picker and the address
# With the error explorer open (a pass over the whole test set for every new set of weights), the
# network shown takes the trainer's weights this often while training, not at every refresh.
SLOW_SYNC_S = 1.0
STATS_DIGITS = 500  # test digits over which an unbounded (relu) layer's colour scale is measured
STATS_DIGITS_CNN = 64  # ... with conv layers (a pass costs about 40 times as much per digit)
# While training, the colour scale is measured again at most this often (a CNN's pass over STATS_DIGITS_CNN
# digits is dearer than the rest of a refresh); paused, at every refresh.
STATS_EVERY_S = 1.0


class LiveViews:
    def __init__(self, page):
        self.page = page
        self.network = None  # the network the page shows for the trainer (the model MODEL_ID)
        self.synced = -1  # the trainer's step the network's weights are of
        self.curve = train_view.LossCurve()
        self.pacer = pacing.Pacer()
        self.share = pacing.ShareMeter()
        self.refreshes = 0  # (#train-progress data-refreshes; tools/bench.py reads it)
        self.next_refresh = self.last_slow_sync = self.last_gallery = self.last_stats = 0.0
        self.later_mark = None  # dom.after_values_seconds() at the end of the last refresh while training
        self.redraw_view = False  # redraw #view at the next refresh even if the weights did not change
        self.gallery_due = False  # the weights changed since the gallery was drawn

    def restart(self):
        self.curve.reset()
        self.share.reset()
        self.synced = -1

    def redraw_next(self):
        """Redraw #view at the next refresh even if the weights did not change."""
        self.redraw_view = True

    def shows(self, network):
        return network is not None and network is self.network

    def due(self, now):
        """Is a refresh due while training (an interval after the last one was due)?"""
        return now >= self.next_refresh

    # --- the network the page shows
    def install(self, trainer):
        """The trainer's network as the model MODEL_ID (replacing an earlier one); shown if it is shown."""
        manifest, files = trainer.to_export(model_id=MODEL_ID, title=train_view.trained_title(trainer.sizes))
        network = nw.build_network(manifest, files, "the network being trained")
        self.pacer = pacing.Pacer()  # a new network costs its own to draw (a CNN's refresh is far dearer)
        self.set_stats(network)
        self.network = network
        self.synced = trainer.steps
        self.page.install_model(MODEL_ID, network, manifest)

    def sync_weights(self, trainer, stats=True):
        """Copy the trainer's weights into the network shown; every cache keyed on its version follows.
        ``stats``: measure the colour scales again for them (else the last ones stay)."""
        network = self.network
        if network is None or self.synced == trainer.steps and not trainer.stopped:
            return False
        if not all(np.isfinite(w).all() for w in trainer.weights):
            return False  # (diverged: the network keeps its last finite weights; the message says what happened)
        for layer, source in zip(network.layers, trainer.layers):
            if layer.parts:  # (pooling and flatten have none)
                layer.weights, layer.bias = source.weights.copy(), source.bias.copy()
        network.weights_changed()
        if stats:
            self.set_stats(network)
        self.synced = trainer.steps
        return True

    def set_stats(self, network):
        """An unbounded layer's colour scale (relu): its p99 over the first STATS_DIGITS test digits, now."""
        unbounded = [i for i, layer in enumerate(network.hidden_layers)
                     if hasattr(layer, "activation") and not act.get(layer.activation).bounded]
        if not unbounded:
            return
        count = STATS_DIGITS_CNN if any(layer.kind == "conv2d" for layer in network.layers) else STATS_DIGITS
        pixels = self.page.testset.images[:count].reshape(count, -1)
        acts = network.forward(network.normalize(pixels))
        for i in unbounded:
            a = np.abs(acts[i]) if np.min(acts[i]) < 0 else acts[i]
            network.layers[i].stats = {"p99": float(np.percentile(a, 99)), "max": float(np.max(a)),
                                       "over": f"{count} test digits, for the current weights"}

    def show_accuracy(self, loop):
        """The model card states the test accuracy when it was measured on the weights shown (paused), else none."""
        if loop.trainer is None:
            return
        current = not loop.running and loop.test_accuracy is not None and loop.test_steps == loop.trainer.steps
        self.page.set_test_accuracy(MODEL_ID, round(float(loop.test_accuracy), 6) if current else None)

    # --- a refresh
    def refresh(self, loop, say):
        """Redraw the live views for ``loop`` (its trainer, its figures): progress, loss curve, gallery, and
        the view (on the current weights). ``say`` shows the trainer's message when it stopped."""
        t = loop.trainer
        if t is None:
            return
        start = time.perf_counter()
        # Due an interval after the one before was due, not after it came: a refresh comes at the first slice
        # of training after it is due, and the next one makes up for that wait (unless it was an interval or more).
        late = start - self.next_refresh
        self.next_refresh = (start - late if 0 <= late < self.pacer.refresh_s else start) + self.pacer.refresh_s
        self.refreshes += 1
        shown = self.shows(self.page.network)
        slow = loop.running and self.page.explorer_open() and shown
        changed = False
        if not slow or start - self.last_slow_sync >= SLOW_SYNC_S:
            stats = not loop.running or start - self.last_stats >= STATS_EVERY_S
            changed = self.sync_weights(t, stats)
            self.last_slow_sync = start
            if changed and stats:
                self.last_stats = start
        self.curve.extend(t.losses)
        progress = t.progress()
        box = el("train-progress")
        rate = loop.rate.rate
        attrs = train_view.progress_attributes(progress, loop.test_accuracy, loop.test_steps, rate, loop.running)
        for key, value in attrs.items():
            setattr(box.dataset, key, value)
        box.dataset.refreshes = str(self.refreshes)
        evaluating = None if loop.evaluation is None else (loop.evaluation.position, loop.evaluation.count)
        el("train-progress-text").innerHTML = train_view.progress_html(progress, loop.test_accuracy, loop.test_steps,
                                                                       rate, evaluating)
        if t.stopped:
            say(t.stopped)
        if not el("train-panel").hidden:
            el("train-curve").innerHTML = self.curve.svg()
        t0 = time.perf_counter()
        self.gallery_due = self.gallery_due or changed
        drawn = None
        if self.gallery_due and shown and (not loop.running or t0 - self.last_gallery >= self.pacer.gallery_s):
            self.gallery_due = False
            self.last_gallery = t0
            self.draw_gallery()
            drawn = time.perf_counter() - t0
        if (changed or self.redraw_view) and shown:
            self.redraw_view = False
            self.page.redraw()
        self.page.atlas.live()  # the atlas's live map, when it is open and a step is due (its cost counts here)
        added_cost()
        spent = time.perf_counter() - start
        mark = dom.after_values_seconds()
        later = 0.0 if self.later_mark is None else mark - self.later_mark
        self.later_mark = mark if loop.running else None
        self.measured(box, loop, start, spent, drawn, later)

    def measured(self, box, loop, start, spent, gallery_s, later):
        """A refresh that began at ``start`` took ``spent`` seconds (``gallery_s`` of them the gallery, if drawn),
        and the work left for the frames after the one before it ``later``: the intervals follow (while
        training), and #train-progress says so (read by tools/bench.py)."""
        if loop.running:
            self.pacer.measured(spent - (gallery_s or 0.0), gallery_s, later)
            self.share.add(start, spent + later)
        timing = {**loop.timing, "refresh": spent, "later": later, "gallery": gallery_s or 0.0,
                  "refresh-interval": self.pacer.refresh_s, "gallery-interval": self.pacer.gallery_s}
        for part, seconds in timing.items():
            box.setAttribute(f"data-{part}-ms", f"{seconds * 1000:.2f}")
        share = self.share.share
        box.dataset.viewsShare = "" if share is None else f"{share:.3f}"

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


def added_cost():
    """The test hook (see the module's docstring): window.nnvRefreshCostMs of busy work, if set."""
    extra = getattr(window, "nnvRefreshCostMs", None)
    if isinstance(extra, (int, float)) and extra > 0:
        until = time.perf_counter() + extra / 1000
        while time.perf_counter() < until:
            pass
