"""The live rules as tables: every skip, blind mask and drop decision, case by case."""

from __future__ import annotations

import pytest

from streamdeid.live.policy import (
    LiveConfig,
    hand_over,
    masked_whole,
    queue_budget_s,
    skip_detection,
)

POLICY = LiveConfig(detect_age_budget_s=0.25, blind_s=0.5, blind_frames=12)


@pytest.mark.parametrize(
    ("since_run_s", "backlog", "downstream_full", "frame_age_s", "skip"),
    [
        (None, 0, False, 0.0, False),  # model just loaded, frame fresh: look
        (0.1, 0, False, 0.1, False),  # on time, nothing waiting
        (0.1, 1, False, 0.0, True),  # a newer frame waits: this one is stale
        (0.1, 0, True, 0.0, True),  # the encoder is the bottleneck: leave it the CPU
        (0.1, 0, False, 0.26, True),  # older than the age budget
        (0.1, 0, False, 0.25, False),  # exactly at the budget: still looked at
        (0.5, 5, True, 3.0, False),  # blind for blind_s: look whatever the backlog
        (0.49, 5, False, 0.0, True),
        (None, 3, False, 0.0, True),  # before the first run the backlog still counts
    ],
)
def test_skip_detection(
    since_run_s: float | None, backlog: int, downstream_full: bool, frame_age_s: float, skip: bool
) -> None:
    assert (
        skip_detection(
            since_run_s=since_run_s,
            backlog=backlog,
            downstream_full=downstream_full,
            frame_age_s=frame_age_s,
            policy=POLICY,
        )
        is skip
    )


@pytest.mark.parametrize(
    ("frames", "seconds", "whole"),
    [
        (0, 0.0, False),
        (12, 0.5, False),  # at both limits: the run still covers it
        (13, 0.1, True),  # too many frames since the run
        (1, 0.51, True),  # too long since the run
        (13, 0.6, True),
    ],
)
def test_masked_whole(frames: int, seconds: float, whole: bool) -> None:
    assert masked_whole(frames_since_run=frames, seconds_since_run=seconds, policy=POLICY) is whole


@pytest.mark.parametrize(
    ("since_first", "budget", "startup", "startup_budget", "expected"),
    [
        (0.0, 0.2, 5.0, 1.5, 1.5),  # start-up: the longer budget
        (4.99, 0.2, 5.0, 1.5, 1.5),
        (5.0, 0.2, 5.0, 1.5, 0.2),  # after start-up: the normal budget
        (1.0, 2.0, 5.0, 1.5, 2.0),  # a normal budget already longer wins
        (0.0, 0.2, 0.0, 1.5, 0.2),  # no start-up period
    ],
)
def test_queue_budget(
    since_first: float, budget: float, startup: float, startup_budget: float, expected: float
) -> None:
    got = queue_budget_s(
        since_first_put_s=since_first,
        budget_s=budget,
        startup_s=startup,
        startup_budget_s=startup_budget,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("live", "full", "action"),
    [
        (True, False, "put"),
        (True, True, "drop_oldest"),  # a camera never waits
        (False, False, "put"),
        (False, True, "wait"),  # a file never drops
    ],
)
def test_hand_over(live: bool, full: bool, action: str) -> None:
    assert hand_over(live=live, queue_full=full) == action


@pytest.mark.parametrize(
    ("live", "overrides", "threads"),
    [
        (True, {}, 2),  # a camera: the live policy's detector_threads
        (True, {"detector.threads": 1}, 1),  # the config says so: it wins
        (False, {}, None),  # a file read as a camera: 1, as in `run` (both cores are busy)
        # MediaPipe's graph takes no thread count: setting one would be refused as doing nothing
        (True, {"detector.backend": "mediapipe", "detector.focus.enabled": False}, None),
    ],
)
def test_live_camera_detector_threads(
    live: bool, overrides: dict, threads: int, monkeypatch
) -> None:
    import threading

    from streamdeid.config import Config
    from streamdeid.live import session
    from streamdeid.live.endpoints import LiveInput
    from streamdeid.live.policy import LiveConfig
    from streamdeid.live.stats import LiveStats

    seen = {}

    def fake_build(config, mode, **kwargs):
        seen["threads"] = config.detector.threads
        raise RuntimeError("stop here")

    monkeypatch.setattr(session, "build_stages", fake_build)
    camera = session.Camera("cam", "x", [], Config().override(overrides), LiveConfig())
    source = LiveInput(iter(()), live, None, "cam")
    with pytest.raises(RuntimeError, match="stop here"):
        session._wire(camera, source, LiveStats("cam"), threading.Event(), None, None)
    assert seen["threads"] == threads
