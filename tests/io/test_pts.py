"""The one rising-pts rule every sink applies (streamdeid.io.pts)."""

from __future__ import annotations

import itertools

import pytest

from streamdeid.io.pts import RisingPts


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
