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
    ("mode", "overrides", "threads"),
    [
        ("live", {}, 2),  # a camera: the live policy's detector_threads
        ("live", {"detector.threads": 1}, 1),  # the config says so: it wins
        ("file", {}, 1),  # a file (or a file read as a camera): both cores are busy
    ],
)
def test_detector_threads_by_mode(mode: str, overrides: dict, threads: int, monkeypatch) -> None:
    from streamdeid import build
    from streamdeid.config import Config
    from streamdeid.live.policy import LiveConfig

    made = {}

    def fake_make_detector(config, default_threads=1):
        made["kwargs"] = config.detector.backend_kwargs("retinaface", default_threads)
        return None

    monkeypatch.setattr(build, "make_detector", fake_make_detector)
    stages = build.build_stages(Config().override(overrides), mode, live=LiveConfig())
    stages.detect._make_detector()
    assert made["kwargs"]["threads"] == threads


def test_mediapipe_takes_no_thread_count_even_on_a_camera() -> None:
    # MediaPipe's graph has no thread setting: nothing is passed, and nothing is refused.
    from streamdeid.config import Config

    config = Config().override({"detector.backend": "mediapipe", "detector.focus.enabled": False})
    assert "threads" not in config.detector.backend_kwargs("mediapipe", 2)
