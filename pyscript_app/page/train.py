"""Train mode (``#mode=train`` plus the settings): train a network in the page and watch it learn.

Browser-side. The training is core/train.py (the same module pytest runs).
Train mode is split by job: train_form.py (the panel, its settings form and
buttons), train_data.py (the training digits' download), train_loop.py (the
slices of training), train_live.py (the live views, the network being trained
as a model of the page) and train_save.py (Save). This class holds them
together and answers the page's one question about training (is_training).
"""

from pyscript_app.core import ordered, train
from pyscript_app.page import train_save
from pyscript_app.page.dom import el
from pyscript_app.page.train_data import TrainingDigits
from pyscript_app.page.train_form import TrainForm
from pyscript_app.page.train_live import MODEL_ID, LiveViews
from pyscript_app.page.train_loop import SliceLoop


class Train:
    def __init__(self, page):
        self.page = page
        self.trainer = None
        self.digits = TrainingDigits(page.data_manifest.get("train"))
        self.live = LiveViews(page)
        self.loop = SliceLoop(page.testset, refresh=self.refresh, due=self.live.due, stopped=self.on_stopped,
                              measured=self.show_accuracy)
        self.form = TrainForm(page, self.apply, {"train-start": self.start, "train-pause": self.on_pause,
                                                 "train-step": self.step, "train-reset": self.reset,
                                                 "train-save": self.save})

    def is_training(self, network):
        """Is ``network`` the one being trained, and is it training now?"""
        return self.loop.running and self.live.shows(network)

    def running(self):
        """Is it training right now?"""
        return self.loop.running

    def follow(self, state_):
        """Show or hide the panel for ``state_`` (the page's address); in train mode fetch the digits once."""
        if self.form.follow(state_):
            self.draw_buttons()
            self.digits.load(then=self.make_trainer)

    def apply(self, settings):
        """New settings: a new run (new initial weights from the seed), paused."""
        if self.trainer is not None:
            self.pause()
            self.trainer.reset(settings)
            self.restart()
            self.live.install(self.trainer)
            self.show_accuracy()
            self.refresh()  # the progress line and the curve start again too

    def make_trainer(self):
        manifest = self.page.network.manifest
        self.trainer = train.Trainer(self.form.settings, self.digits.images, self.digits.labels,
                                     classes=list(manifest["classes"]), input_spec=manifest["input"])
        self.loop.use(self.trainer)
        self.restart()
        self.live.install(self.trainer)
        self.draw_buttons()
        # (for tools/bench.py: is the browser's matrix product the in-order one, or the slower slices?)
        el("train-progress").dataset.matmulInOrder = "true" if train.matmul_in_order() else "false"
        ordered.einsum_in_order()  # (its one check runs here, as the mode opens, not in a training slice)
        self.refresh()

    def restart(self):
        self.loop.restart()
        self.live.restart()
        self.form.say("")
        self.draw_buttons()

    def refresh(self):
        self.live.refresh(self.loop, self.form.say)

    def show_accuracy(self):
        self.live.show_accuracy(self.loop)

    def draw_buttons(self):
        t = self.trainer
        self.form.draw_buttons(t is not None, self.loop.running, t is not None and bool(t.stopped))

    def show_trained(self):
        """Switch the page to the network being trained (the address says so)."""
        if self.page.model_id != MODEL_ID:
            self.page.go(model=MODEL_ID)

    # --- the buttons
    def start(self, *_):
        if self.trainer is None or self.trainer.stopped:
            return
        self.show_trained()
        self.loop.start()
        self.draw_buttons()
        self.show_accuracy()

    def on_pause(self, *_):
        # Stopped at once; the views follow in the next slice (which pause() asks for), so the
        # click returns quickly. The view is redrawn then even if no batch was trained since the
        # last refresh: an open card lists its top test digits again.
        self.pause()
        self.live.redraw_next()

    def pause(self):
        if self.loop.pause():
            self.draw_buttons()

    def step(self, *_):
        if self.trainer is None or self.trainer.stopped:
            return
        self.pause()
        self.show_trained()
        self.loop.step()
        self.show_accuracy()
        self.refresh()

    def reset(self, *_):
        if self.trainer is None:
            return
        self.pause()
        self.trainer.reset()
        self.restart()
        self.live.sync_weights(self.trainer)
        self.show_accuracy()
        self.refresh()

    def on_stopped(self):
        self.form.say(self.trainer.stopped)
        self.draw_buttons()

    def save(self, *_):
        t, loop = self.trainer, self.loop
        if t is None:
            return
        problem = train_save.save(t, MODEL_ID, self.page.data_manifest,
                                  loop.test_accuracy if loop.test_steps == t.steps else None)
        if problem:
            self.form.say(problem)
