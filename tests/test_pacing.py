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
