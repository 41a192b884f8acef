"""The one timing rule: rising pts for every sink, and file timing derived as FFmpeg does."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from streamdeid.io.pts import BestEffortPts, FrameClock, RisingPts, jump_limit


@pytest.mark.parametrize(
    ("given", "expected", "restamped"),
    [
        ([], [], 0),
        ([5], [5], 0),
        ([0, 3600, 7200], [0, 3600, 7200], 0),  # rising: untouched
        ([0, 3600, 3600], [0, 3600, 7200], 1),  # repeated: one step on
        ([0, 3600, 7200, 0, 3600], [0, 3600, 7200, 10800, 14400], 2),  # clock restarted
        ([0, 3600, 10800, 9000], [0, 3600, 10800, 14400], 1),  # step = shortest rise seen
        ([7, 7, 7], [7, 8, 9], 2),  # no rise seen yet: a step of 1
        ([0, 3600, 3600, 7200], [0, 3600, 7200, 10800], 2),  # the run after a restamp follows it
        ([0, 40, 30, 120], [0, 40, 80, 120], 1),  # back on time once the pts overtake
    ],
)
def test_rising_pts(given: list[int], expected: list[int], restamped: int) -> None:
    rise = RisingPts()
    assert [rise(p) for p in given] == expected
    assert rise.restamped == restamped
    assert all(b > a for a, b in itertools.pairwise(expected))


@pytest.mark.parametrize(
    ("given", "expected", "jumps"),
    [
        ([0, 40, 3_600_000, 3_600_040], [0, 40, 80, 120], 1),  # an hour ahead: closed
        ([50_000, 50_040, 0, 40], [50_000, 50_040, 50_080, 50_120], 1),  # back to 0: closed
        ([5000, 5040, 0, 40], [5000, 5040, 5080, 5120], 0),  # 5 s back: pushed frame by frame
        ([0, 40, 9000, 9040], [0, 40, 9000, 9040], 0),  # 9 s: a pause, kept
        ([0, 40, 20, 80], [0, 40, 80, 120], 0),  # small step back: pushed, not a restart
    ],
)
def test_clock_restarts_are_closed_within_the_limit(
    given: list[int], expected: list[int], jumps: int
) -> None:
    rise = RisingPts(max_jump=jump_limit(Fraction(1, 1000), clock_restarts=True))
    assert [rise(p) for p in given] == expected
    assert rise.jumps == jumps


def test_gaps_are_kept_where_the_clock_does_not_restart() -> None:
    assert jump_limit(Fraction(1, 1000), clock_restarts=False) is None
    rise = RisingPts(max_jump=None)
    assert [rise(p) for p in (0, 40, 3_600_000)] == [0, 40, 3_600_000]


def test_offset_missing_pts_and_a_given_step() -> None:
    rise = RisingPts(offset=500)  # a stream that started at -500 starts at 0
    assert [rise(p) for p in (-500, -460, None, -380)] == [0, 40, 80, 120]
    assert rise.filled == 1
    audio = RisingPts()
    assert [audio(0), audio(0, step=1024), audio(None, step=512)] == [0, 1024, 1536]


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        # (pts, dts) of an AVI with B-frames: pts permuted, dts rising -> dts from the first fault
        ([(1, 2), (2, 3), (4, 4), (3, 5), (5, 6), (6, 7)], [1, 2, 4, 5, 6, 7]),
        # no dts (flushed frames): the pts
        ([(0, None), (1, None), (2, None)], [0, 1, 2]),
        # no pts: the dts
        ([(None, 3), (None, 4)], [3, 4]),
        # neither
        ([(None, None)], [None]),
        # both going back equally often (a joined file): the pts
        ([(10, 10), (11, 11), (0, 0), (1, 1)], [10, 11, 0, 1]),
    ],
)
def test_best_effort_pts_is_ffmpegs_rule(frames: list, expected: list) -> None:
    guess = BestEffortPts()
    assert [guess(p, d) for p, d in frames] == expected


def test_frame_clock_counts_each_repaired_frame_once() -> None:
    clock = FrameClock(frame_step=40)
    times = [clock(p, None, 0) for p in (0, 40, None, None, 80, 200)]
    assert times == [0, 40, 80, 120, 160, 200]  # missing: one frame on; 80 pushed past 120
    assert clock.repaired == 3
    vfr = FrameClock(frame_step=40)
    assert [vfr(p, p, d) for p, d in [(0, 20), (20, 60), (None, 60)]] == [0, 20, 80]
