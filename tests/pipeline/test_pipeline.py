from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from streamdeid.errors import PipelineError, SourceError
from streamdeid.io.frame_sink import FrameSink
from streamdeid.obscure.filters import SolidFilter
from streamdeid.pipeline.lookahead import LookaheadTrackStage
from streamdeid.pipeline.runner import Pipeline
from streamdeid.pipeline.stage import Stage
from streamdeid.pipeline.stages import DetectStage, ObscureStage, SinkStage, TrackStage
from streamdeid.track.iou import IoUTracker
from streamdeid.types import Frame, FramePacket

from helpers import ScriptedDetector


def frames(n: int | None, size: tuple[int, int] = (32, 24)) -> Iterator[Frame]:
    w, h = size
    for i in itertools.count() if n is None else range(n):
        img = np.full((h, w, 3), 200, np.uint8)
        yield Frame(index=i, image=img, pts=i * 10, time_base=None, captured_at=time.monotonic())


class Raising(Stage):
    name = "raising"

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def process(self, packet: FramePacket) -> FramePacket:
        if packet.frame.index == self.at:
            raise RuntimeError("boom")
        return packet


class Collect(Stage):
    name = "collect"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.closed = False

    def process(self, packet: FramePacket) -> None:
        self.seen.append(packet.frame.index)

    def teardown(self) -> None:
        self.closed = True


def run_in_thread(pipeline: Pipeline, timeout_s: float = 20) -> BaseException | None:
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            pipeline.run()
        except BaseException as e:  # noqa: BLE001
            box[0] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout_s)
    assert not t.is_alive(), "pipeline hung"
    return box[0]


def test_every_frame_arrives_in_order() -> None:
    sink = Collect()
    assert run_in_thread(Pipeline(frames(100), [Raising(at=-1), sink], queue_size=2)) is None
    assert sink.seen == list(range(100)) and sink.closed


def test_raising_stage_fails_fast_even_with_endless_input() -> None:
    sink = Collect()
    error = run_in_thread(Pipeline(frames(None), [Raising(at=5), sink], queue_size=2))
    assert isinstance(error, PipelineError)
    assert "raising" in str(error) and "boom" in str(error)
    assert sink.seen == [0, 1, 2, 3, 4] and sink.closed


def test_source_error_is_reraised_and_downstream_closes() -> None:
    def broken() -> Iterator[Frame]:
        yield from frames(3)
        raise SourceError("disk went away")

    sink = Collect()
    error = run_in_thread(Pipeline(broken(), [sink]))
    assert isinstance(error, SourceError) and sink.seen == [0, 1, 2] and sink.closed


def test_stop_event_drains_without_losing_read_frames() -> None:
    stop = threading.Event()
    sink = Collect()

    class StopAt(Stage):
        name = "stopper"

        def process(self, packet: FramePacket) -> FramePacket:
            if packet.frame.index == 20:
                stop.set()
            return packet

    pipeline = Pipeline(frames(None), [StopAt(), sink], queue_size=4, stop=stop)
    assert run_in_thread(pipeline) is None
    assert sink.seen == list(range(pipeline.frames_read))
    assert 20 < pipeline.frames_read < 40


class ImageSink(FrameSink):
    """Keeps a copy of every image written."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.closed = False

    def write(self, frame: Frame) -> None:
        self.images.append(frame.image.copy())

    def close(self) -> None:
        self.closed = True


def test_detector_failure_masks_the_whole_frame_instead_of_crashing() -> None:
    sink = ImageSink()
    out = sink.images
    detector = ScriptedDetector([[]] * 6, raise_on=[2])
    stages = [
        DetectStage(lambda: detector),
        TrackStage(IoUTracker(), 1.3, 12),
        ObscureStage(SolidFilter(color=(0, 0, 0))),
        SinkStage(sink),
    ]
    assert run_in_thread(Pipeline(frames(6), stages)) is None
    assert len(out) == 6 and sink.closed
    assert [int(img.max()) for img in out] == [200, 200, 0, 200, 200, 200]
    assert stages[0].failures == 1


@pytest.mark.parametrize("n_frames", [0, 1])
def test_tiny_inputs(n_frames: int) -> None:
    sink = Collect()
    assert run_in_thread(Pipeline(frames(n_frames), [sink])) is None
    assert sink.seen == list(range(n_frames))


@pytest.mark.parametrize("n_frames", [1, 2, 5, 6])
def test_lookahead_detects_the_last_frame_and_keeps_order(n_frames: int) -> None:
    # Look-ahead masks a skipped frame with the run after it, so the last frame must be a run
    # even when detect_every does not schedule it; frames still leave in order.
    detector = ScriptedDetector([[(4, 4, 12, 12)]] * n_frames)
    collect = Collect()
    stages = [
        DetectStage(lambda: detector, 2, lookahead=True),
        LookaheadTrackStage(IoUTracker(), 1.0, 1),
        collect,
    ]
    assert run_in_thread(Pipeline(frames(n_frames), stages)) is None
    assert collect.seen == list(range(n_frames))
    expected = sorted({*range(0, n_frames, 2), n_frames - 1})
    assert detector.calls == expected
    assert stages[1].whole_frames == 0  # every held frame had a run after it


def test_lookahead_masks_a_face_that_appears_on_a_skipped_frame() -> None:
    # Frame 1 is skipped and the face first shows there: only the run on frame 2 knows it.
    script = [[], [(10, 8, 20, 18)], [(11, 8, 21, 18)]]
    regions: dict[int, list] = {}

    class Keep(Collect):
        def process(self, packet: FramePacket) -> None:
            regions[packet.frame.index] = [r.xyxy for r in packet.regions]

    stages = [
        DetectStage(lambda: ScriptedDetector(script), 2, lookahead=True),
        LookaheadTrackStage(IoUTracker(), 1.0, 1),
        Keep(),
    ]
    assert run_in_thread(Pipeline(frames(3), stages)) is None
    assert regions[0] == []
    (x1, y1, x2, y2), *_ = regions[1]
    assert x1 <= 10 and y1 <= 8 and x2 >= 20 and y2 >= 18
