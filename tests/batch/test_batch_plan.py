"""Chunk planning: clean cuts, chunk bounds, warm-up and tail (pure; no Ray, no decoding)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from streamdeid.batch.plan import ChunkSpec, clean_cuts, plan_chunks
from streamdeid.io.chunk_source import VideoPackets


def packets(n: int, gop: int, *, bframes: bool = True, fps: int = 25) -> VideoPackets:
    """``n`` frames in decode order of closed GOPs (I P B B ... as x264 writes them)."""
    pts: list[int | None] = []
    keys = []
    for start in range(0, n, gop):
        frames = list(range(start, min(n, start + gop)))
        order = [frames[0]]
        rest = frames[1:]
        while rest:  # P before the two B frames shown ahead of it
            group, rest = rest[:3], rest[3:]
            order += [group[-1], *group[:-1]] if bframes and len(group) == 3 else group
        pts += order
        keys += [True] + [False] * (len(order) - 1)
    return VideoPackets(pts, keys, Fraction(1, fps), Fraction(fps))


def test_clean_cuts_are_the_keyframes_of_closed_gops() -> None:
    p = packets(100, 25)
    assert clean_cuts(p.pts, p.keyframe) == [0, 25, 50, 75]


def test_an_open_gop_keyframe_is_no_cut() -> None:
    # The B frames after the second keyframe (pts 3, 4) are shown before it (pts 5).
    pts = [0, 2, 1, 5, 3, 4, 6]
    keys = [True, False, False, True, False, False, False]
    assert clean_cuts(pts, keys) == [0]


@pytest.mark.parametrize("pts", [[0, None, 2], [0, 1, 1]])
def test_packets_without_distinct_pts_cannot_be_cut(pts: list[int | None]) -> None:
    assert clean_cuts(pts, [True] * len(pts)) is None


def test_chunks_cover_every_frame_once_at_keyframes() -> None:
    p = packets(250, 25)  # 10 s at 25 fps, a keyframe every second
    plan = plan_chunks(p, 3.0, warmup_s=1.0, detect_every=4)
    assert [(c.start, c.end) for c in plan.chunks] == [(0, 75), (75, 150), (150, 250)]
    assert plan.frames == 250 and plan.chunked
    for c in plan.chunks:
        assert c.start % 25 == 0  # a keyframe
        assert c.first_pts == c.start and c.last_pts == c.end - 1
        assert c.key <= c.warm <= c.start < c.end <= c.feed_end
        assert c.key % 25 == 0 and c.key_pts == c.key
        assert c.warm % 4 == 0  # on the detector's schedule


def test_warm_up_reaches_back_warmup_seconds_and_the_tracker_memory() -> None:
    # Chunk 1 starts on frame 75 (3 s); 1 s before is frame 50, rounded down to frame 48 (runs
    # on every 4th frame), decoded from the keyframe on 25.
    plan = plan_chunks(packets(250, 25), 3.0, warmup_s=1.0, detect_every=4)
    assert (plan.chunks[1].warm, plan.chunks[1].key) == (48, 25)
    assert plan.chunks[0].warm == 0
    # A tracker that coasts 40 frames needs them: back to 75 - 40 = 35 -> 32, keyframe 25.
    plan = plan_chunks(packets(250, 25), 3.0, warmup_s=1.0, warmup_frames=40, detect_every=4)
    assert (plan.chunks[1].warm, plan.chunks[1].key) == (32, 25)
    plan = plan_chunks(packets(250, 25), 3.0, warmup_s=0.0, detect_every=4)
    assert plan.chunks[1].warm == 72  # no warm-up asked: still from the run before the start


def test_tail_feeds_frames_up_to_the_next_detector_run() -> None:
    plan = plan_chunks(packets(250, 25), 3.0, warmup_s=1.0, detect_every=4)
    first, second, last = plan.chunks
    assert first.feed_end == 77  # end 75 -> next run on frame 76, fed too
    assert second.feed_end == 153  # end 150 -> run on 152
    assert last.feed_end == 250  # the file's end: a whole-file run ends there too


def test_a_short_last_chunk_joins_the_one_before() -> None:
    plan = plan_chunks(packets(170, 25), 3.0, detect_every=1)  # 6.8 s: 3 + 3.8, not 3 + 3 + 0.8
    assert [(c.start, c.end) for c in plan.chunks] == [(0, 75), (75, 170)]


@pytest.mark.parametrize(
    ("p", "reason"),
    [
        (packets(60, 250), "no clean keyframe"),  # one keyframe
        (packets(100, 25), "no clean keyframe"),  # 4 s: shorter than two 3 s chunks
        (VideoPackets([0, None], [True, False], Fraction(1, 25), Fraction(25)), "lack pts"),
    ],
)
def test_files_that_cannot_be_cut_run_whole(p: VideoPackets, reason: str) -> None:
    plan = plan_chunks(p, 3.0)
    assert not plan.chunked and reason in plan.reason


def test_pts_in_another_time_base_and_order() -> None:
    base = packets(150, 25)
    scaled = VideoPackets(
        [q * 512 for q in base.pts], base.keyframe, Fraction(1, 12800), base.frame_rate
    )
    plan = plan_chunks(scaled, 2.0, detect_every=4)
    assert [c.start for c in plan.chunks] == [0, 50, 100]
    assert plan.chunks[1].first_pts == 50 * 512 and plan.chunks[1].last_pts == 99 * 512


def test_spec_round_trips_through_json_data() -> None:
    spec = plan_chunks(packets(250, 25), 3.0).chunks[1]
    assert ChunkSpec.from_dict(spec.to_dict()) == spec
