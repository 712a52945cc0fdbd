"""Pacing by measured cost: how often Train mode redraws its live views, and how big a step of idle work is.

Pure Python. A refresh of the live views (the progress line, the loss curve,
the weights copied into the network shown, #view and, less often, the weight
gallery) costs what the machine makes it cost: a few ms on a fast desktop,
several times that on a slow laptop. :class:`Pacer` keeps a moving figure of
each part's cost and stretches both intervals by one factor so that the views
take at most :data:`VIEWS_SHARE` of the time (aiming a little under it,
:data:`AIM`), never refreshing more often than the intervals of a fast machine
(:data:`REFRESH_S`, :data:`GALLERY_S`). Where the refreshes still come at least
:data:`MIN_PER_S` times a second with the views at :data:`VIEWS_AIM` of the
time, that is their share: more refreshes than that would show little more
and take the time from training (a CNN's refresh costs 20 ms or more). When
the refreshes alone can come at least :data:`MIN_PER_S` times a second within
the share, the gallery gives way first. :class:`ShareMeter` says what share of the last few seconds the views took.
Train mode's test-set evaluations within an epoch wait for the training time that keeps them at
:data:`EVAL_SHARE` of it (:func:`training_between_evaluations`).

Idle work (the first layer's pass over the test set, robustness curves,
dreams) runs in steps between the page's other work; a step's size in items
comes from what the items measurably cost (:class:`StepSizer`), and an idle
callback runs steps only while they fit its deadline (:func:`may_start_step`),
so that no task grows long on a slow machine.
"""

from __future__ import annotations

import sys
import time
from collections import deque

VIEWS_SHARE = 0.2  # the live views take at most this fraction of the time while training
AIM = 0.9  # the intervals aim at this fraction of VIEWS_SHARE (a margin for a refresh dearer than the last)
REFRESH_S = 0.075  # the shortest interval between refreshes (about 13 a second)
GALLERY_S = 0.25  # the shortest interval between two drawings of the weight gallery
MIN_PER_S = 4  # at least this many refreshes a second, when the share allows it
VIEWS_AIM = 0.1  # ... and while that many still fit, the views take only this fraction (training the rest)
SMOOTHING = 0.7  # the moving figure of a cost: this much of it is the figure before
LATER_SMOOTHING = 0.9  # ... and of the work refreshes leave for later, a mean over about the last 10
SHARE_WINDOW_S = 3.0  # ShareMeter: the share over about the last this many seconds
# While the network shown trains, the dearer views (the flow's lines, the why panel) follow its new weights at
# most this often: what they show changes slowly, and redrawn at every refresh they take a third of the views'
# time. Another digit, card or choice is followed at once.
TRAINING_FOLLOW_S = 1.0


EVAL_SHARE = 0.08  # Train mode's test-set evaluations within an epoch take at most this fraction of the time


def training_between_evaluations(evaluation_s: float, share: float = EVAL_SHARE) -> float:
    """Seconds of training after an evaluation that took ``evaluation_s`` before the next one within an
    epoch, so that evaluations take at most ``share`` of the time: e / (e + gap) = share."""
    return max(0.0, evaluation_s) * (1.0 - share) / share


class Pacer:
    """The two intervals (refresh, gallery) in seconds, from what refreshes and gallery drawings cost."""

    def __init__(self):
        self.refresh_cost = 0.0  # moving figure of a refresh without the gallery, seconds
        self.later_cost = 0.0  # mean of the work refreshes leave for the frames after them, seconds
        self.gallery_cost = 0.0  # moving figure of a drawing of the gallery, seconds
        self.refresh_s, self.gallery_s = REFRESH_S, GALLERY_S

    def measured(self, refresh: float, gallery: float | None = None, later: float = 0.0) -> None:
        """A refresh took ``refresh`` seconds, not counting the gallery; the gallery (if drawn) ``gallery``;
        ``later``: the work done for the views since the refresh before, after it (in the frames after it).
        A cost above the moving figure counts at once in full, a cost below it lowers the figure slowly.
        The later work keeps a plain mean (LATER_SMOOTHING): some of it comes at its own pace, once a
        second, and a refresh that happens to follow it is not dearer itself."""
        self.refresh_cost = _follow(self.refresh_cost, refresh)
        self.later_cost = LATER_SMOOTHING * self.later_cost + (1 - LATER_SMOOTHING) * later
        if gallery is not None:
            self.gallery_cost = _follow(self.gallery_cost, gallery)
        self.refresh_s, self.gallery_s = intervals(self.refresh_cost + self.later_cost, self.gallery_cost)


class Follower:
    """Whether a view is redrawn for what it is asked to show (any hashable description of it): always for
    something new, and for the same thing on new weights at most every TRAINING_FOLLOW_S while training."""

    def __init__(self):
        self.asked, self.at = None, float("-inf")  # what it was last redrawn for, and when

    def due(self, asked, now: float, training: bool) -> bool:
        if training and asked == self.asked and now - self.at < TRAINING_FOLLOW_S:
            return False
        self.asked, self.at = asked, now
        return True


def _follow(figure: float, cost: float) -> float:
    return max(cost, SMOOTHING * figure + (1 - SMOOTHING) * cost)


def intervals(refresh_cost: float, gallery_cost: float, share: float = VIEWS_SHARE * AIM,
              aim: float = VIEWS_AIM) -> tuple[float, float]:
    """(refresh interval, gallery interval) in seconds for these costs: the views' share
    refresh_cost / refresh interval + gallery_cost / gallery interval is at most ``share``, and ``aim``
    where that still leaves MIN_PER_S refreshes a second (the rest of the time trains)."""
    rate = refresh_cost / REFRESH_S + gallery_cost / GALLERY_S  # the views' share at the shortest intervals
    scale = max(1.0, rate / aim)
    # A refresh comes at the first slice of training after its interval, a few ms late: MIN_PER_S a second
    # needs a shorter interval than 1 / MIN_PER_S (AIM of it), or that one if the share leaves no room.
    if REFRESH_S * scale <= AIM / MIN_PER_S:
        return REFRESH_S * scale, GALLERY_S * scale
    for slowest in (AIM / MIN_PER_S, 1.0 / MIN_PER_S):  # the aim is too low for those: up to ``share``
        left = share - refresh_cost / slowest  # the gallery's share if the refreshes come that often
        if left > 0:
            return slowest, max(GALLERY_S, gallery_cost / left)
    scale = max(1.0, rate / share)
    return REFRESH_S * scale, GALLERY_S * scale


class ShareMeter:
    """The fraction of time spent on the views, over the refreshes of about the last SHARE_WINDOW_S seconds:
    the cost of every refresh but the newest over the time from the oldest's start to the newest's."""

    def __init__(self, window: float = SHARE_WINDOW_S):
        self.window = window
        self.refreshes: deque[tuple[float, float]] = deque()  # (start, cost) in seconds

    def reset(self) -> None:
        self.refreshes.clear()

    def add(self, start: float, cost: float) -> None:
        self.refreshes.append((start, cost))
        while len(self.refreshes) > 2 and self.refreshes[1][0] <= start - self.window:
            self.refreshes.popleft()

    @property
    def share(self) -> float | None:
        if len(self.refreshes) < 2:
            return None
        span = self.refreshes[-1][0] - self.refreshes[0][0]
        return sum(cost for _, cost in list(self.refreshes)[:-1]) / span if span > 0 else None


# ---------------------------------------------------------------------------
# idle work in steps sized by time

STEP_BUDGET_S = 0.012  # a step of idle work aims at this much time, whatever the machine
STEP_GROWTH = 2.0  # a step is at most this many times the items of the one before
IDLE_TASK_S = 0.030  # one idle callback runs steps for at most this long: a long task is over 50 ms, and a
# callback's task costs more than its steps (the calls into the page, the garbage collector): 10 to 17 ms more
# at Chromium's 4x CPU throttle with a cap of 40 ms


class StepSizer:
    """How many items (digits, gradient steps) the next step of idle work should take, from what the
    steps before cost: about :data:`STEP_BUDGET_S` of time a step on any machine, at least one item,
    at most ``most``, growing at most :data:`STEP_GROWTH` times a step. The cost of an item is a moving
    figure (see :func:`_follow`: a dearer step counts at once, a cheaper one lowers it slowly), so a
    step that the machine makes slower shortens the next one at once.

    Use: ``n = sizer.items``; ``t0 = sizer.clock()``; do n items; ``sizer.measured(n, sizer.clock() - t0)``
    (time only the work, not the wait for the next idle period). ``clock`` is a seconds clock (a fake one
    in tests)."""

    def __init__(self, first: int = 1, most: int | None = None, budget: float = STEP_BUDGET_S, clock=None):
        self.budget, self.most = budget, most
        self.clock = clock or time.perf_counter
        self.item_cost = 0.0  # moving figure of one item's cost, seconds (0: nothing measured yet)
        self.items = self._bounded(first)

    def _bounded(self, items: float) -> int:
        items = max(1, int(items))
        return min(items, self.most) if self.most is not None else items

    def measured(self, items: int, seconds: float) -> None:
        """The last step did ``items`` items in ``seconds``; sets :attr:`items` for the next one."""
        if items <= 0:
            return
        self.item_cost = _follow(self.item_cost, max(seconds, 0.0) / items)
        fit = self.budget / self.item_cost if self.item_cost > 0 else float("inf")
        self.items = self._bounded(min(fit, items * STEP_GROWTH))


def sizer(first: int, most: int | None = None, in_steps: bool = True):
    """A :class:`StepSizer` starting at ``first`` items when the work runs in idle-time steps (the browser,
    ``in_steps``), else :class:`FixedSteps` of ``first`` items: the same blocks on every run."""
    return StepSizer(first=first, most=most) if in_steps else FixedSteps(first)


IN_STEPS = sys.platform == "emscripten"  # idle work runs in steps sized by time in the browser only


def idle_sizer(first: int, most: int | None = None):
    """The blocks of a step of idle work: elsewhere (CPython, the tests) ``first`` items each, the same
    blocks on every run; in the browser sized by time (:class:`StepSizer`), starting at a quarter of
    ``first``: the first step's cost is a guess (``first`` is a few ms of work on a fast machine), so it
    is kept small enough for a slow one."""
    return sizer(max(1, first // 4 if IN_STEPS else first), most, in_steps=IN_STEPS)


def spans(n: int, sizer_, work):
    """Call ``work(start, stop)`` over ``[0, n)`` a span of ``sizer_.items`` items at a time, each call
    timed for the sizer; yields the fraction done after each (an idle-time step)."""
    start = 0
    while start < n:
        stop = min(n, start + sizer_.items)
        t0 = sizer_.clock()
        work(start, stop)
        sizer_.measured(stop - start, sizer_.clock() - t0)
        start = stop
        yield stop / n


def shown_as(steps, value):
    """The steps of a part whose own progress is not shown: each yields ``value`` instead; returns the
    part's result (``StopIteration.value``)."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
        yield value


def may_start_step(spent: float, expected: float, remaining: float | None, cap: float = IDLE_TASK_S) -> bool:
    """Whether an idle callback that has run steps for ``spent`` seconds may start another one expected
    to take ``expected``: only if it fits both the browser's time left (``remaining``, the idle
    deadline's timeRemaining() in seconds; None where there is none) and ``cap``. The first step of a
    callback always runs (``spent`` 0), so the work goes on however long a step takes."""
    if spent <= 0:
        return True
    limit = cap if remaining is None else min(cap, spent + remaining)
    return spent + expected <= limit


class FixedSteps:
    """A :class:`StepSizer` that always says ``items`` and measures nothing (work run all at once)."""

    def __init__(self, items: int):
        self.items = items

    @staticmethod
    def clock() -> float:
        return 0.0

    def measured(self, items: int, seconds: float) -> None:
        pass


def run(steps):
    """Run a step generator to its end at once (no pacing); its return value (``StopIteration.value``)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
