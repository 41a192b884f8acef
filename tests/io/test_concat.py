"""Joining separately encoded parts of a video by remuxing (streamdeid.io.concat)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamdeid.errors import SinkError
from streamdeid.io.concat import join_parts, video_pts
from streamdeid.io.sink import EncoderSettings, VideoSink
from streamdeid.io.source import SourceInfo
from streamdeid.types import Frame

from helpers import decode_frames, probe


def info(width: int, height: int, time_base: Fraction) -> SourceInfo:
    return SourceInfo("in", "mp4", width, height, time_base, Fraction(25), 0, None, "h264", False)


def encode_part(path: Path, first: int, count: int, size=(64, 48), step: int = 512) -> Path:
    """Frames ``first .. first + count - 1`` of a moving gradient, pts ``index * step``."""
    w, h = size
    tb = Fraction(1, 12800) if step == 512 else Fraction(1, 1000)
    with VideoSink(path, info(w, h, tb), EncoderSettings(crf=10)) as sink:
        for i in range(first, first + count):
            image = np.full((h, w, 3), (i * 7) % 256, np.uint8)
            image[:, : (i % w)] = 255 - image[:, : (i % w)]
            sink.write(Frame(i, image, i * step, tb, 0.0))
    return path


@pytest.mark.parametrize(("suffix", "step"), [(".mp4", 512), (".mkv", 40)])
def test_parts_join_into_one_stream_with_every_frame_and_pts(
    tmp_path: Path, suffix: str, step: int
) -> None:
    parts = [
        encode_part(tmp_path / f"p{n}{suffix}", first, count, step=step)
        for n, (first, count) in enumerate([(0, 13), (13, 20), (33, 7)])
    ]
    joined = join_parts(parts, tmp_path / f"joined{suffix}")
    assert joined.packets == [13, 20, 7]
    assert video_pts(tmp_path / f"joined{suffix}") == [i * step for i in range(40)]
    frames = decode_frames(str(tmp_path / f"joined{suffix}"))
    singles = [f for p in parts for f in decode_frames(str(p))]
    assert len(frames) == len(singles) == 40
    assert all(np.array_equal(a, b) for a, b in zip(frames, singles, strict=True))
    assert probe(str(tmp_path / f"joined{suffix}"))["pts"] == [i * step for i in range(40)]


def test_parts_of_another_size_are_refused(tmp_path: Path) -> None:
    one = encode_part(tmp_path / "a.mp4", 0, 5)
    two = encode_part(tmp_path / "b.mp4", 5, 5, size=(80, 48))
    with pytest.raises(SinkError, match="codec headers"):
        join_parts([one, two], tmp_path / "joined.mp4")


def test_parts_out_of_order_are_refused(tmp_path: Path) -> None:
    one = encode_part(tmp_path / "a.mp4", 0, 5)
    two = encode_part(tmp_path / "b.mp4", 5, 5)
    with pytest.raises(SinkError, match="expected pts after"):
        join_parts([two, one], tmp_path / "joined.mp4")
