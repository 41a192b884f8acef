"""The live source's pts rule, as arithmetic: one rising timeline across reconnects."""

from __future__ import annotations

from fractions import Fraction

from streamdeid.io.live_timeline import Timeline

TB = Fraction(1, 90000)
RATE = Fraction(25)
STEP = 3600  # one frame at 25 fps in 1/90000


def deliver(t: Timeline, pts_in: int | None, now: float) -> int:
    pts = t.place(pts_in, now)
    t.delivered(pts, now)
    return pts


def test_a_reconnect_follows_on_by_the_time_away_and_never_goes_back() -> None:
    t = Timeline(TB)
    t.begin(TB, RATE)
    first = [deliver(t, 5000 + i * STEP, 10.0 + i * 0.04) for i in range(3)]
    assert first == [0, STEP, 2 * STEP]
    # Away 2 s; the camera restarts its clock at 0 in a coarser time base.
    t.begin(Fraction(1, 1000), RATE)
    assert deliver(t, 0, 12.08) == 2 * STEP + 2 * 90000
    assert deliver(t, 40, 12.12) == 2 * STEP + 2 * 90000 + STEP


def test_missing_pts_count_frame_periods_and_a_clock_jump_back_re_anchors() -> None:
    t = Timeline(TB)
    t.begin(TB, RATE)
    assert [deliver(t, None, 0.0), deliver(t, None, 0.0)] == [0, STEP]
    # The camera's clock jumps back at once: at least one frame period on, never backwards.
    assert deliver(t, 0, 0.0) == 2 * STEP


def test_pts_rise_even_when_the_input_repeats_one() -> None:
    t = Timeline(TB)
    t.begin(TB, RATE)
    assert [deliver(t, 100, 0.0), deliver(t, 100, 0.0)] == [0, 1]
