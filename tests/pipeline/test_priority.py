"""The pacing stage keeps its priority; the other pipeline threads yield to it, not the caller."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from streamdeid.config import Config
from streamdeid.pipeline.priority import MAX_NICE, lower_this_thread
from streamdeid.pipeline.runner import Pipeline
from streamdeid.pipeline.stage import Stage
from streamdeid.types import Frame, FramePacket

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature"
)


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class NiceOf(Stage):
    """Records the nice value of the thread it runs on."""

    def __init__(self, name: str, paces: bool) -> None:
        super().__init__()
        self.name = name
        self.paces = paces
        self.nice: int | None = None

    def process(self, packet: FramePacket) -> FramePacket:
        self.nice = _nice()
        return packet


def frames(n: int, seen: list[int]) -> Iterator[Frame]:
    for i in range(n):
        seen.append(_nice())  # the capture thread reads the source
        image = np.zeros((8, 8, 3), np.uint8)
        yield Frame(index=i, image=image, pts=i, time_base=None, captured_at=time.monotonic())


def in_new_thread(fn) -> object:
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join(10)
    return box[0]


def test_lowering_is_relative_capped_and_zero_is_a_no_op() -> None:
    def lowered(by: int) -> tuple[int, int]:
        before = _nice()
        lower_this_thread(by)
        return before, _nice()

    before, after = in_new_thread(lambda: lowered(3))
    assert after == min(MAX_NICE, before + 3)
    before, after = in_new_thread(lambda: lowered(100))
    assert after == MAX_NICE
    before, after = in_new_thread(lambda: lowered(0))
    assert after == before


def test_every_thread_but_the_pacing_stage_yields_and_the_caller_is_untouched() -> None:
    caller = _nice()
    base = in_new_thread(_nice)
    read: list[int] = []
    detect, encode = NiceOf("detect", paces=True), NiceOf("encode", paces=False)
    Pipeline(frames(3, read), [detect, encode], queue_size=2, background_nice=4).run()
    assert detect.nice == base
    assert encode.nice == min(MAX_NICE, base + 4)
    assert read and set(read) == {min(MAX_NICE, base + 4)}
    assert _nice() == caller


def test_without_background_nice_no_thread_changes() -> None:
    base = in_new_thread(_nice)
    read: list[int] = []
    detect, encode = NiceOf("detect", paces=True), NiceOf("encode", paces=False)
    Pipeline(frames(2, read), [detect, encode], queue_size=2).run()
    assert (detect.nice, encode.nice, set(read)) == (base, base, {base})


def test_the_detect_stage_paces_files_and_the_config_bounds_the_setting() -> None:
    from streamdeid.pipeline.stages import DetectStage, ObscureStage

    assert DetectStage.paces and not ObscureStage.paces
    assert Config().pipeline.background_nice == 19
    with pytest.raises(ValueError, match="background_nice"):
        Config.model_validate({"pipeline": {"background_nice": 20}})


def test_only_video_the_detector_enlarges_gets_the_background_priority() -> None:
    from streamdeid.build import background_nice

    config = Config()  # RetinaFace, full pass at least 720 rows
    assert config.detector.retinaface.min_input_height == 720
    assert background_nice(config, 360) == config.pipeline.background_nice > 0
    assert background_nice(config, 720) == 0
    assert background_nice(config, 1080) == 0
    off = Config.model_validate({"pipeline": {"background_nice": 0}})
    assert background_nice(off, 360) == 0
    mediapipe = Config.model_validate(
        {"detector": {"backend": "mediapipe", "focus": {"enabled": False}}}
    )
    assert background_nice(mediapipe, 360) == 0  # no enlarged full pass


def test_a_pipeline_that_captures_its_own_way_still_yields_there() -> None:
    # The live pipeline overrides _capture (it waits for the camera first): the priority is set
    # where every thread starts, not inside the base class's capture body.
    class Waiting(Pipeline):
        def _capture(self, outbox) -> None:
            self._read(outbox)

    base = in_new_thread(_nice)
    read: list[int] = []
    Waiting(frames(2, read), [NiceOf("detect", paces=True)], background_nice=3).run()
    assert read and set(read) == {min(MAX_NICE, base + 3)}
