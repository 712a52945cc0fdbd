"""Train mode's loop: training in slices, each its own task.

A slice is a message the page posts to itself on a MessageChannel (so no wait
for the display's next tick and no timer clamping). While training, a slice
either redraws the live views, when they are due (train_live.py says when), or
advances a test-set evaluation by one chunk (as many digits as fit SLICE_S on
this machine), then trains with what is left of SLICE_S. An evaluation comes
after every epoch and, within one, at most EVALS_PER_EPOCH times and only once
training has had the time that keeps evaluations at pacing.EVAL_SHARE of it.
Between two slices the browser handles clicks, keys and drawing (on the
network being trained) and paints: a click waits for one of the two, never
for both in one task.
"""

import time

import js
from pyodide.ffi import create_proxy

from pyscript_app.core import pacing
from pyscript_app.views import train_view

SLICE_S = 0.013  # Python time per slice: input and painting wait at most this long
EVAL_CHUNK = 500  # test digits classified in the first slice of an evaluation (then as many as fit SLICE_S)
EVAL_CHUNK_CNN = 100  # ... for a network with conv layers (about 15 ms in the browser)
EVALS_PER_EPOCH = 4  # test accuracy is measured at most this often within an epoch, and after every epoch
# ... with conv layers: classifying the 10,000 test digits costs about as much as training 3,000
EVALS_PER_EPOCH_CNN = 2


class SliceLoop:
    """The trainer's run: running or paused, its test-set evaluations, its speed; ``refresh()`` redraws
    the live views, ``due(now)`` says whether they are due while training, ``stopped()`` is called when
    the trainer stops by itself (diverged), ``measured()`` when a test accuracy comes in."""

    def __init__(self, testset, refresh, due, stopped, measured):
        self.testset = testset
        self.refresh, self.due, self.stopped, self.measured = refresh, due, stopped, measured
        self.trainer = None
        self.running = False
        self.pending = False  # a slice is posted
        self.channel = js.MessageChannel.new()  # a message on it runs the next slice
        self.channel.port1.onmessage = create_proxy(self.slice)
        self.rate = train_view.RateMeter()
        self.last_tick = None
        self.timing = {"train": 0.0, "eval": 0.0}  # seconds spent in the last slice's parts
        self.restart()

    def use(self, trainer):
        self.trainer = trainer

    def restart(self):
        """A new run (or the same from its start): nothing measured yet."""
        self.rate.reset()
        self.evaluation = None
        self.eval_due = False
        self.next_eval_step = self.eval_every()
        self.eval_spent = 0.0  # the Python time of the evaluation under way
        self.train_before_eval = 0.0  # seconds of training still to go before an evaluation within an epoch
        conv = self.trainer is not None and self.trainer.settings.conv
        self.eval_sizer = pacing.StepSizer(first=EVAL_CHUNK_CNN if conv else EVAL_CHUNK, budget=SLICE_S)
        self.test_accuracy = self.test_steps = None

    def eval_every(self):
        if not self.trainer:
            return 1
        per_epoch = EVALS_PER_EPOCH_CNN if self.trainer.settings.conv else EVALS_PER_EPOCH
        return max(1, self.trainer.steps_per_epoch // per_epoch)

    def start(self):
        self.running = True
        self.last_tick = None
        self.schedule()

    def pause(self):
        """Stop training at once; the accuracy of the weights paused at is measured next. False if not running."""
        if not self.running:
            return False
        self.running = False
        self.last_tick = None
        self.eval_due = True
        self.schedule()
        return True

    def step(self):
        """One batch, then its accuracy."""
        self.trainer.step()
        self.eval_due = True
        self.schedule()

    def schedule(self):
        if not self.pending:
            self.pending = True
            self.channel.port2.postMessage(0)

    def slice(self, *_):
        """One slice: the live views when due (and nothing else while training); else a chunk of the
        evaluation, then training until SLICE_S of the slice is spent (at least one batch)."""
        self.pending = False
        t = self.trainer
        if t is None:
            return
        start = time.perf_counter()
        if self.running:
            self.rate.add(0.0 if self.last_tick is None else start - self.last_tick, t.seen)
            self.last_tick = start
        if not self.running or self.due(start):
            self.refresh()
            if self.running:  # the views are a task of their own: a click waits for them or a slice, not both
                self.schedule()
                return
        if self.evaluation is None and self.eval_due:
            self.eval_due = False
            self.evaluation = t.start_evaluation(self.testset.images, self.testset.labels)
            self.eval_spent = 0.0
        t1 = time.perf_counter()
        if self.evaluation is not None:
            before = self.evaluation.position
            finished = self.evaluation.advance(self.eval_sizer.items)
            took = time.perf_counter() - t1
            self.eval_sizer.measured(self.evaluation.position - before, took)
            self.eval_spent += took
            if finished:
                self.test_accuracy, self.test_steps = self.evaluation.accuracy, self.evaluation.steps
                self.evaluation = None
                self.train_before_eval = pacing.training_between_evaluations(self.eval_spent)
                self.measured()
                if not self.running:
                    self.refresh()  # (while training, the next refresh shows it)
        t2 = time.perf_counter()
        self.timing["eval"] = t2 - t1
        if self.running:
            epoch = t.epoch
            t.run_until(start + SLICE_S)
            self.timing["train"] = time.perf_counter() - t2
            self.train_before_eval -= self.timing["train"]
            if t.epoch != epoch or t.steps >= self.next_eval_step and self.train_before_eval <= 0:
                self.eval_due = True
                self.next_eval_step = t.steps + self.eval_every()
            if t.stopped:
                self.running = False
                self.stopped()
                self.refresh()
        if self.running or self.evaluation is not None or self.eval_due:
            self.schedule()
