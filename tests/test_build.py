"""One builder for every mode: the same config gives the same stages, and the mode picks only
the schedule (pipeline.* for files, live.* for cameras)."""

from __future__ import annotations

import pytest

from streamdeid.build import Schedule, build_stages, schedule_for
from streamdeid.config import Config
from streamdeid.live.policy import LiveConfig
from streamdeid.live.stages import LiveDetectStage, LiveTrackStage
from streamdeid.live.stats import LiveStats
from streamdeid.pipeline.lookahead import LookaheadTrackStage
from streamdeid.pipeline.stages import DetectStage, TrackStage

CONFIG = Config().override(
    {"pipeline.detect_every": 3, "pipeline.skip_grow": 1.5, "pipeline.queue_size": 6}
)
LIVE = LiveConfig(detect_every=1, skip_grow=1.1, queue_size=2, lookahead=True)


class NoDetector:
    """Never called: building stages must not load a model (it loads on the detect thread)."""

    def __call__(self) -> None:
        raise AssertionError("the detector was built while building the stages")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("file", Schedule(3, True, 1.5, 6)), ("live", Schedule(1, True, 1.1, 2))],
)
def test_schedule_is_pipeline_for_files_and_live_for_cameras(mode, expected) -> None:
    assert schedule_for(CONFIG, mode, LIVE) == expected


def test_file_mode_builds_the_file_stages() -> None:
    stages = build_stages(CONFIG, "file", detector_factory=NoDetector())
    assert type(stages.detect) is DetectStage and stages.detect.detect_every == 3
    assert isinstance(stages.track, LookaheadTrackStage) and stages.track.grow == 1.5
    off = build_stages(CONFIG.override({"pipeline.lookahead": False}), "file")
    assert type(off.track) is TrackStage


def test_live_command_on_an_unpaced_file_uses_the_file_schedule() -> None:
    # `streamdeid live file.mp4` without pacing is documented to behave like `run`: it once
    # took the camera's look-ahead growth (1.1 here) and schedule instead.
    stages = build_stages(CONFIG, "file", live=LIVE, stats=LiveStats("t"))
    assert isinstance(stages.detect, LiveDetectStage) and not stages.detect.live
    assert stages.detect.detect_every == 3 and stages.detect.lookahead
    assert isinstance(stages.track, LiveTrackStage) and not stages.track.live
    assert stages.track.grow == 1.5 and stages.track.hold


def test_live_mode_uses_the_camera_policy() -> None:
    stages = build_stages(CONFIG, "live", live=LIVE, stats=LiveStats("t"))
    assert stages.detect.live and stages.detect.detect_every == 1
    assert not stages.detect.lookahead  # a camera cannot wait for a frame that may not come
    assert stages.track.live and stages.track.grow == 1.1 and stages.track.hold
