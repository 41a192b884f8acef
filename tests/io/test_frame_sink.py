"""Every output behind FrameSink keeps the same contract (streamdeid.io.frame_sink)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamdeid.errors import SinkError
from streamdeid.io.frame_sink import FrameSink, SinkGroup
from streamdeid.io.segment_sink import SegmentSink
from streamdeid.io.sink import EncoderSettings, VideoSink
from streamdeid.io.source import SourceInfo
from streamdeid.io.tee_sink import TeeSink
from streamdeid.pipeline.stages import SinkStage
from streamdeid.types import Frame, FramePacket

TB = Fraction(1, 90_000)
W, H = 96, 64


def frames(pts: list[int]) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [
        Frame(i, rng.integers(0, 255, (H, W, 3), np.uint8), p, TB, time.monotonic())
        for i, p in enumerate(pts)
    ]


def video_file(folder: Path) -> FrameSink:
    info = SourceInfo("in.mp4", "mp4", W, H, TB, Fraction(25), 0, None, "h264", False)
    return VideoSink(folder / "out.mkv", info, EncoderSettings(audio="drop"))


def segments(folder: Path) -> FrameSink:
    return SegmentSink(folder, segment_time_s=600, container="mkv")


def tee(folder: Path) -> FrameSink:
    return TeeSink([SegmentSink(folder, segment_time_s=600, container="mkv")])


def group(folder: Path) -> FrameSink:
    return SinkGroup([video_file(folder), segments(folder)])


SINKS: dict[str, Callable[[Path], FrameSink]] = {
    "file": video_file,
    "segments": segments,
    "tee": tee,
    "group": group,
}


def written_pts(folder: Path) -> list[list[int]]:
    out = []
    for path in sorted(folder.iterdir()):
        with av.open(str(path)) as container:
            out.append([f.pts for f in container.decode(video=0)])
    return out


@pytest.mark.parametrize("kind", SINKS)
def test_every_sink_keeps_the_contract(kind: str, tmp_path: Path) -> None:
    # A source whose clock restarted (a camera reconnecting): the pts go back to 0. Every sink
    # restamps them rising instead of failing, and keeps every frame.
    given = frames([i * 3600 for i in range(5)] * 2)
    with SINKS[kind](tmp_path) as sink:
        assert isinstance(sink, FrameSink)
        stage = SinkStage(sink)
        for frame in given:
            stage.process(FramePacket(frame=frame))
        assert sink.frames_written == len(given)
    sink.close()  # idempotent
    with pytest.raises(SinkError, match="after close"):
        sink.write(given[0])
    outputs = written_pts(tmp_path)
    assert len(outputs) == (2 if kind == "group" else 1)
    for pts in outputs:
        assert len(pts) == len(given)
        assert all(b > a for a, b in itertools.pairwise(pts)), pts


def test_a_group_closes_every_member_and_raises_the_first_error(tmp_path: Path) -> None:
    closed: list[str] = []

    class Member(FrameSink):
        def __init__(self, name: str, fail: bool) -> None:
            self.name, self.fail = name, fail

        def write(self, frame: Frame) -> None:
            pass

        def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise SinkError(f"{self.name} failed")

    group = SinkGroup([Member("a", True), Member("b", True), Member("c", False)])
    assert group.name == "a, b, c"
    with pytest.raises(SinkError, match="a failed"):
        group.close()
    assert closed == ["a", "b", "c"]
