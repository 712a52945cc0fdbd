"""How often Train mode redraws its live views (pyscript_app/core/pacing.py): the views' share of the time."""

from __future__ import annotations

import itertools

import pytest

from pyscript_app.core import pacing


def share(refresh_cost, gallery_cost, intervals):
    refresh_s, gallery_s = intervals
    return refresh_cost / refresh_s + gallery_cost / gallery_s


def test_cheap_refreshes_come_as_often_as_on_a_fast_machine():
    assert pacing.intervals(0.002, 0.004) == (pacing.REFRESH_S, pacing.GALLERY_S)


@pytest.mark.parametrize("refresh_ms, gallery_ms", list(itertools.product([0, 1, 5, 15, 30, 45, 60, 200], [0, 5, 20, 80])))
def test_the_views_never_take_more_than_a_fifth(refresh_ms, gallery_ms):
    r, g = refresh_ms / 1000, gallery_ms / 1000
    found = pacing.intervals(r, g)
    assert share(r, g, found) <= pacing.VIEWS_SHARE * pacing.AIM + 1e-12
    assert found[0] >= pacing.REFRESH_S and found[1] >= pacing.GALLERY_S
    # at least MIN_PER_S refreshes a second whenever the refreshes alone leave room for that
    if r * pacing.MIN_PER_S < pacing.VIEWS_SHARE * pacing.AIM:
        assert found[0] <= 1 / pacing.MIN_PER_S + 1e-12
    # ... aiming above it (a refresh waits for the slice of training under way) where the share allows
    if r * pacing.MIN_PER_S / pacing.AIM < pacing.VIEWS_SHARE * pacing.AIM:
        assert found[0] <= pacing.AIM / pacing.MIN_PER_S + 1e-12


@pytest.mark.parametrize("refresh_ms, gallery_ms", [(8, 20), (10, 8), (15, 10), (20, 0)])
def test_while_the_refreshes_come_four_times_a_second_the_views_take_a_tenth(refresh_ms, gallery_ms):
    """More refreshes than that would show little more: the rest of the time trains."""
    r, g = refresh_ms / 1000, gallery_ms / 1000
    found = pacing.intervals(r, g)
    assert found[0] <= pacing.AIM / pacing.MIN_PER_S
    assert share(r, g, found) == pytest.approx(pacing.VIEWS_AIM)


def test_the_interval_grows_with_the_cost():
    costs = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16]
    refresh = [pacing.intervals(c, 0.01)[0] for c in costs]
    assert refresh == sorted(refresh) and refresh[-1] > refresh[0]
    assert refresh[-1] == pytest.approx(costs[-1] / (pacing.VIEWS_SHARE * pacing.AIM), rel=0.2)


def test_a_dearer_refresh_counts_at_once_a_cheaper_one_slowly():
    p = pacing.Pacer()
    p.measured(0.005, 0.005)
    assert (p.refresh_s, p.gallery_s) == (pacing.REFRESH_S, pacing.GALLERY_S)
    p.measured(0.1)
    assert p.refresh_cost == 0.1 and p.gallery_cost == 0.005  # (no gallery drawn: its figure stays)
    slow = p.refresh_s
    assert slow >= 0.1 / pacing.VIEWS_SHARE
    p.measured(0.005)
    assert p.refresh_cost == pytest.approx(pacing.SMOOTHING * 0.1 + (1 - pacing.SMOOTHING) * 0.005)
    assert pacing.REFRESH_S < p.refresh_s < slow
    for _ in range(40):
        p.measured(0.005)
    assert p.refresh_s == pacing.REFRESH_S


def test_work_left_for_later_counts_at_its_mean():
    """Work a refresh leaves for the next frames that comes once in four refreshes (say, lines redrawn once a
    second) counts at its mean, not at its peak; the intervals follow the refresh and that mean."""
    p = pacing.Pacer()
    for i in range(200):
        p.measured(0.020, later=0.040 if i % 4 == 0 else 0.0)
    assert 0.005 < p.later_cost < 0.016  # (the mean is 0.010)
    assert p.refresh_s == pacing.intervals(p.refresh_cost + p.later_cost, p.gallery_cost)[0]
    assert p.refresh_s < pacing.intervals(0.060, 0.0)[0]


def test_share_meter_reads_the_last_seconds():
    m = pacing.ShareMeter(window=3.0)
    assert m.share is None
    for k in range(10):  # every 0.5 s a refresh of 0.1 s: a fifth
        m.add(k * 0.5, 0.1)
    assert m.share == pytest.approx(0.2)
    for k in range(10, 20):  # then they cost 0.05 s: a tenth, once the dear ones are out of the window
        m.add(k * 0.5, 0.05)
    assert m.share == pytest.approx(0.1)
    assert len(m.refreshes) <= 8
    m.reset()
    assert m.share is None


# --- idle work in steps sized by time (StepSizer, may_start_step), on a simulated machine


class FakeClock:
    """A seconds clock that only moves when told: a step costs ``fixed + per_item * items``."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_steps(sizer, clock, costs):
    """Run one step per (fixed, per_item) of ``costs``: [(items, seconds)] of each step."""
    done = []
    for fixed, per_item in costs:
        n, t0 = sizer.items, sizer.clock()
        clock.now += fixed + per_item * n
        sizer.measured(n, sizer.clock() - t0)
        done.append((n, clock.now - t0))
    return done


@pytest.mark.parametrize("slowdown", [1, 4, 20])
def test_steps_settle_at_the_budget_whatever_the_machine(slowdown):
    clock = FakeClock()
    sizer = pacing.StepSizer(first=1, clock=clock)
    per_item = 0.0001 * slowdown  # a digit of the first layer's pass: 0.1 ms on the fast machine
    steps = run_steps(sizer, clock, [(0.0005 * slowdown, per_item)] * 40)
    assert all(seconds <= pacing.STEP_BUDGET_S + 1e-12 for _, seconds in steps)
    settled = steps[-10:]
    assert all(seconds >= pacing.STEP_BUDGET_S / 2 for _, seconds in settled)  # the budget is used, not wasted
    # a slower machine gets proportionally fewer items a step
    fit = (pacing.STEP_BUDGET_S - 0.0005 * slowdown) / per_item
    assert all(fit / 2 <= n <= fit for n, _ in settled)


def test_a_step_grows_at_most_twice_a_step():
    clock = FakeClock()
    sizer = pacing.StepSizer(first=3, clock=clock)
    steps = run_steps(sizer, clock, [(0.0, 1e-9)] * 12)  # nearly free items
    sizes = [n for n, _ in steps]
    assert sizes[0] == 3
    assert all(b <= a * pacing.STEP_GROWTH for a, b in zip(sizes, sizes[1:]))
    assert sizes[-1] > 1000


def test_a_slower_step_shortens_the_next_at_once():
    clock = FakeClock()
    sizer = pacing.StepSizer(first=8, clock=clock)
    steps = run_steps(sizer, clock, [(0.0, 0.0001)] * 30 + [(0.0, 0.0004)] * 10)  # then throttled 4x
    assert steps[30][1] > pacing.STEP_BUDGET_S  # the first step at the new speed could not know
    assert all(seconds <= pacing.STEP_BUDGET_S + 1e-12 for _, seconds in steps[31:])


def test_at_least_one_item_and_at_most_the_bound():
    clock = FakeClock()
    sizer = pacing.StepSizer(first=5, clock=clock)
    run_steps(sizer, clock, [(0.0, 1.0)] * 3)  # an item costs far more than the budget
    assert sizer.items == 1
    bounded = pacing.StepSizer(first=50, most=20, clock=clock)
    assert bounded.items == 20
    run_steps(bounded, clock, [(0.0, 1e-9)] * 5)
    assert bounded.items == 20


def test_fixed_steps_always_say_the_same():
    fixed = pacing.FixedSteps(250)
    fixed.measured(250, 10.0)
    assert fixed.items == 250


def test_spans_cover_the_items_once_each_in_timed_steps():
    clock = FakeClock()
    sizer = pacing.StepSizer(first=2, clock=clock)
    seen, fractions = [], []

    def work(start, stop):  # an item costs 1 ms: the spans grow towards the budget, never past it
        seen.extend(range(start, stop))
        clock.now += 0.001 * (stop - start)

    for fraction in pacing.spans(100, sizer, work):
        fractions.append(fraction)
    assert seen == list(range(100))
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert 1 < len(fractions) < 50
    assert list(pacing.spans(0, sizer, work)) == []


def test_sizer_is_fixed_outside_idle_time_steps():
    assert pacing.sizer(7, in_steps=False).items == 7
    fixed = pacing.sizer(7, in_steps=False)
    fixed.measured(7, 100.0)
    assert fixed.items == 7
    timed = pacing.sizer(7, most=5)
    assert isinstance(timed, pacing.StepSizer) and timed.items == 5


CAP = pacing.IDLE_TASK_S


@pytest.mark.parametrize("spent, expected, remaining, starts", [
    (0.0, 1.0, 0.0, True),  # the first step of a callback always runs
    (0.010, 0.010, 0.030, True),
    (0.010, 0.010, 0.005, False),  # would overrun the idle deadline
    (CAP - 0.010, 0.015, 0.049, False),  # would pass IDLE_TASK_S
    (CAP / 2, CAP / 4, None, True),  # no deadline (setTimeout): only the cap
    (CAP - 0.010, 0.015, None, False),
])
def test_a_step_starts_only_if_it_fits_the_deadline(spent, expected, remaining, starts):
    assert CAP < 0.050  # (a long task is over 50 ms)
    assert pacing.may_start_step(spent, expected, remaining) is starts


def test_shown_as_yields_the_value_for_each_step_and_returns_the_result():
    def part():
        yield "a"
        yield "b"
        return 42

    steps = pacing.shown_as(part(), ("what", 1.0))
    assert [next(steps), next(steps)] == [("what", 1.0)] * 2
    assert pacing.run(steps) == 42


def test_a_follower_redraws_anything_new_and_the_same_thing_only_now_and_then_while_training():
    f = pacing.Follower()
    s = pacing.TRAINING_FOLLOW_S
    assert f.due("digit 3", 0.0, training=True)  # new: at once
    assert not f.due("digit 3", s / 2, training=True)  # the same, new weights: not yet
    assert f.due("digit 3", s / 2, training=False)  # paused: at once
    assert f.due("digit 4", s / 2 + 0.01, training=True)  # another digit: at once
    assert not f.due("digit 4", s, training=True)
    assert f.due("digit 4", 1.5 * s + 0.02, training=True)  # the interval is over


@pytest.mark.parametrize("evaluation_s", [0.05, 0.25, 1.0, 4.0])
def test_evaluations_within_an_epoch_take_their_share_of_the_time(evaluation_s):
    gap = pacing.training_between_evaluations(evaluation_s)
    assert evaluation_s / (evaluation_s + gap) == pytest.approx(pacing.EVAL_SHARE)
    assert pacing.training_between_evaluations(2 * evaluation_s) == pytest.approx(2 * gap)  # a dearer one, longer
