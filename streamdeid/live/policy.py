"""Back-pressure policy for live input: bounded latency, and never a face let through for it.

A camera does not wait for us. When the detector cannot keep up, the pipeline must either fall
further and further behind (latency grows without bound) or skip work. We skip work, in this
order, and every rule errs towards masking more:

1. **Detect skips** (detect stage). The model is not run on a frame when the detector is behind
   (a newer frame is already waiting in its inbox, or the frame has spent more than
   ``detect_age_budget_s`` inside the pipeline) or when a later stage is (its inbox is full:
   on two cores the model's run takes the CPU that stage needs, and its queue would drop
   frames instead; measured at 1080p, where the encoder was the one that fell behind). The
   frame passes on with ``detections=None`` ("not detected"), exactly like a ``detect_every``
   gap, so the tracker predicts (coasts) every known face onto it. Exception: once the
   detector has not run for ``blind_s`` it runs on the next frame whatever the backlog, so a
   slow downstream stage or a permanently late upstream cannot leave the output masked whole
   forever.
2. **Look-ahead masking** (track stage). A frame the detector did not run on is held back until
   the next frame it did run on (call the runs before and after it A and B). The held frame is
   then masked with its own tracks ∪ every face of A and of B ∪, for each face seen by both,
   the box spanning its two positions (its straight path), all grown by ``skip_grow`` per frame
   of distance from the run (at most 4×), the same for every frame between A and B (the
   margins of the farthest one): the further behind the detector, the more is masked.
   A face that appears between two runs is in B, so it is covered on the skipped frames too.
   This costs no latency: B cannot be emitted before its own detection anyway, and frames leave
   in order. The rule and its code are shared with files (:mod:`streamdeid.pipeline.lookahead`).
3. **Blind rule** (track stage). If no run B follows A within ``blind_s`` seconds and
   ``blind_frames`` frames (detector very slow, stalled, or the stream ends), the held frames and
   every frame until the next run are masked whole. Frames before the detector's first run are
   masked whole too (the model may take seconds to load while the camera is already sending).
4. **Drops** (channels). The capture thread never blocks on a full detector inbox for longer
   than ``capture_budget_s``. That inbox holds ``detect_queue_size`` (8) frames, because a late
   detector skips them in microseconds: keeping them costs little latency. A masked frame
   waiting for the full inbox of a slower stage (the encoder, or the obscure stage blurring
   whole 1080p frames) is dropped once that inbox has been full for ``drop_budget_s``. The
   oldest waiting frame is the one dropped, so what gets through is the freshest. Drops happen
   before encoding starts, are counted per stage, and a dropped frame is never emitted at all.
   No frame is dropped after encoding began (the RTSP publisher's packets are rule 5). Queues
   after the detector hold ``queue_size`` (2) frames instead of the file pipeline's 8: when the
   machine cannot keep up, every queued frame is waiting time, so latency stays near
   (queue_size + 1) × the slowest stage's time per frame plus the other stages' own time, and
   the surplus is dropped in front of the slowest.

5. **Publisher drops** (RTSP output, :func:`rtsp_sends`). The one place where something already
   encoded is dropped, and it is never part of a recording: segments and files get every frame.
   The RTSP publisher sends from its own thread behind a queue of about 2 s of packets. When the
   network is slower than the stream, or the server is gone, what does not fit is dropped rather
   than waited for: waiting would stall the one encoder that also feeds the recording, and then
   the whole pipeline. After such a gap every packet up to the next keyframe goes too (a frame
   without its reference would show viewers a smeared picture), and the encoder is asked for
   that keyframe. Every dropped packet is counted (``RtspSink.packets_dropped``).

File input that is not paced (``realtime=False``) uses none of these: every put blocks, every
scheduled detection runs, nothing is dropped, as in ``streamdeid run``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from streamdeid.config_base import StrictModel
from streamdeid.config_schedule import CameraQueueSize, DetectEvery, Lookahead, SkipGrow
from streamdeid.limits import MAX_THREADS


def rtsp_sends(keyframe: bool, after_gap: bool) -> bool:
    """Whether the RTSP publisher sends an encoded packet (rule 5); False: drop it, counted.

    ``after_gap``: packets were dropped since the last one sent (a full queue), or there is no
    session (the server is gone, or not connected yet). A viewer can only resume on a keyframe.
    """
    return keyframe or not after_gap


class LiveSourceConfig(StrictModel):
    """How a live source is opened and kept open (RTSP/HTTP/UDP cameras)."""

    rtsp_transport: Literal["tcp", "udp"] = Field(
        default="tcp",
        description="RTSP transport: tcp survives lossy networks and firewalls; udp has lower "
        "latency but loses packets (smeared frames) on busy links.",
    )
    open_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Give up connecting after this many seconds."
    )
    read_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="A source silent for this long counts as lost and is reconnected.",
    )
    reconnect: bool = Field(
        default=True, description="Reconnect a lost source (with backoff) instead of stopping."
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, le=60, description="First wait before reconnecting; doubles each try."
    )
    backoff_max_s: float = Field(
        default=10.0, gt=0, le=600, description="Longest wait between two reconnect attempts."
    )
    max_reconnects: int | None = Field(
        default=None,
        ge=0,
        description="Reconnect attempts in a row before the source gives up; null = forever.",
    )


class LiveConfig(StrictModel):
    """The live back-pressure policy (see the module docstring for the rules).

    ``detect_every``, ``lookahead``, ``skip_grow`` and ``queue_size`` are the detector's
    schedule for cameras; files use ``pipeline.*`` instead (the settings are defined once, in
    :mod:`streamdeid.config_schedule`). A camera's defaults differ from a file's: the detector
    is scheduled on every frame (1), since the rules above already skip it when it falls
    behind, and a fixed schedule would hold every frame between two runs (latency) even when
    there is time to look at it; and only 2 frames are queued between stages, since every
    queued frame is latency when a stage is the bottleneck. Lookahead costs a camera no latency:
    the frame after the held ones cannot leave before its own detection anyway.
    """

    detect_age_budget_s: float = Field(
        default=0.25,
        gt=0,
        le=10,
        description="A frame older than this (time since it entered the pipeline) when it "
        "reaches the detector is not detected; tracks and wider masks cover it.",
    )
    blind_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Longest time between two detector runs before the frames between them "
        "are masked whole (privacy first: nobody has looked at them).",
    )
    blind_frames: int = Field(
        default=12,
        ge=1,
        le=1000,
        description="Same as blind_s, in frames; whichever is reached first applies. Must be "
        ">= live.detect_every and pipeline.detect_every.",
    )
    skip_grow: SkipGrow = 1.25
    detect_every: DetectEvery = 1
    lookahead: Lookahead = True
    queue_size: CameraQueueSize = 2
    detector_threads: int = Field(
        default=2,
        ge=1,
        le=MAX_THREADS,
        description="Inference threads of a live camera's detector, unless the config sets "
        "detector.threads. Files use 1 (both cores are busy, and a second thread made a 720p "
        "run 4% slower); a camera's decode and encode leave part of a core idle, and a second "
        "thread skipped 8-11% fewer frames at 720p25 (measured 2026-12-03).",
    )
    detect_queue_size: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Frames the detector's inbox holds. Larger than the other queues on "
        "purpose: a late detector skips these in microseconds (tracks mask them), so they "
        "cost little latency, and dropping them instead would leave gaps in the output.",
    )
    capture_budget_s: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description="Once the detector's inbox has been full this long, the capture thread "
        "makes room by dropping its oldest frame (counted) rather than fall behind the camera.",
    )
    drop_budget_s: float = Field(
        default=0.2,
        ge=0,
        le=60,
        description="Once the inbox of a stage after the detector (track, obscure, encoder) has "
        "been full this long, frames that do not fit are dropped before encoding (counted) "
        "until it has room again.",
    )
    startup_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="For this long after the first frame, queues wait up to startup_budget_s "
        "before dropping: the encoder's open and the model's first run at the stream's size "
        "are slow once, and the backlog drains afterwards (measured: all 18 drops of a 2-min "
        "720p run fell in the first seconds).",
    )
    startup_budget_s: float = Field(
        default=1.5,
        ge=0,
        le=60,
        description="Drop budget of every live queue during startup_s.",
    )
    restart_limit: int | None = Field(
        default=5,
        ge=0,
        description="Multi-camera: restarts of a failed camera (bad URL, crash, source gave "
        "up) before it is marked failed; null = forever. The other cameras keep running.",
    )
    restart_backoff_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="Wait before the first restart of a failed camera; doubles each time "
        "(at most 60 s).",
    )
    source: LiveSourceConfig = Field(default_factory=LiveSourceConfig)

    def check_against(self, detect_every: int, where: str = "live") -> None:
        """Raise ValueError when the blind window is shorter than a scheduled detect gap.

        ``detect_every`` is the file schedule (pipeline.detect_every), used when a camera is a
        file read as fast as it decodes; the camera schedule is this config's own.
        """
        for name, every in (
            ("live.detect_every", self.detect_every),
            ("pipeline.detect_every", detect_every),
        ):
            if self.blind_frames < every:
                raise ValueError(
                    f"{where}.blind_frames ({self.blind_frames}) must be >= {name} "
                    f"({every}), or every scheduled gap would be masked whole"
                )

    @model_validator(mode="after")
    def _backoff_order(self) -> LiveConfig:
        if self.source.backoff_max_s < self.source.backoff_initial_s:
            raise ValueError(
                f"source.backoff_max_s ({self.source.backoff_max_s}) must be >= "
                f"source.backoff_initial_s ({self.source.backoff_initial_s})"
            )
        return self


# --------------------------------------------------------------------------------------------------
# The decisions. Pure functions of what the caller measured, so that each rule is tested as a
# table (tests/live/test_policy.py) and every place that skips or drops asks the same rule.
# --------------------------------------------------------------------------------------------------


def skip_detection(
    *,
    since_run_s: float | None,
    backlog: int,
    downstream_full: bool,
    frame_age_s: float,
    policy: LiveConfig,
) -> bool:
    """Rule 1: skip the model on a scheduled live frame?

    Args:
        since_run_s: seconds since the detector last ran (or became ready); None before that.
        backlog: frames already waiting in the detector's inbox.
        downstream_full: a later stage's inbox is full.
        frame_age_s: how long this frame has been inside the pipeline.
    """
    if since_run_s is not None and since_run_s >= policy.blind_s:
        return False  # blind too long: look now, whatever the backlog
    if backlog > 0 or downstream_full:
        return True
    return frame_age_s > policy.detect_age_budget_s


def masked_whole(*, frames_since_run: int, seconds_since_run: float, policy: LiveConfig) -> bool:
    """Rule 3: is a live frame this far from the detector's last run masked whole (blind)?"""
    return frames_since_run > policy.blind_frames or seconds_since_run > policy.blind_s


def queue_budget_s(
    *, since_first_put_s: float, budget_s: float, startup_s: float, startup_budget_s: float
) -> float:
    """Rule 4: how long a live queue may stay full before it drops its oldest frame.

    The first ``startup_s`` after the first frame are slow once (encoder open, the model's first
    run at this size), so the budget is then at least ``startup_budget_s``.
    """
    if since_first_put_s < startup_s:
        return max(budget_s, startup_budget_s)
    return budget_s


HandOver = Literal["put", "drop_oldest", "wait"]


def hand_over(*, live: bool, queue_full: bool) -> HandOver:
    """Rule 4 at the reader: what a decoded frame does at the reader's hand-over queue.

    A camera never waits (the oldest waiting frame is dropped and counted); a file waits for
    the consumer and never drops.
    """
    if not queue_full:
        return "put"
    return "drop_oldest" if live else "wait"
