"""Back-pressure policy for live input: bounded latency, and never a face let through for it.

A camera does not wait for us. When the detector cannot keep up, the pipeline must either fall
further and further behind (latency grows without bound) or skip work. We skip work, in this
order, and every rule errs towards masking more:

1. **Detect skips** (detect stage). The model is not run on a frame when the detector is behind:
   a newer frame is already waiting in its inbox, or the frame has spent more than
   ``detect_age_budget_s`` inside the pipeline. The frame passes on with ``detections=None``
   ("not detected"), exactly like a ``detect_every`` gap, so the tracker predicts (coasts) every
   known face onto it. Exception: once the detector has not run for ``blind_s`` it runs on the
   next frame whatever the backlog, so a slow downstream stage or a permanently late upstream
   cannot leave the output masked whole forever.
2. **Look-ahead masking** (track stage). A frame the detector did not run on is held back until
   the next frame it did run on (call the runs before and after it A and B). The held frame is
   then masked with its own tracks ∪ every face of A and of B ∪, for each face seen by both,
   the box spanning its two positions (its straight path), all grown by ``skip_grow``. A face
   that appears between two runs is in B, so it is covered on the skipped frames too. This
   costs no latency: B cannot be emitted before its own detection anyway, and frames leave in
   order.
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
   Nothing is dropped after encoding began. Queues after the detector hold ``queue_size`` (2)
   frames instead of the file pipeline's 8: when the machine cannot keep up, every queued frame
   is waiting time, so latency stays near (queue_size + 1) × the slowest stage's time per
   frame plus the other stages' own time, and the surplus is dropped in front of the slowest.

File input that is not paced (``realtime=False``) uses none of these: every put blocks, every
scheduled detection runs, nothing is dropped, as in ``streamdeid run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamdeid.types import Region


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LiveSourceConfig(_Model):
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


class LiveConfig(_Model):
    """The live back-pressure policy (see the module docstring for the rules)."""

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
        ">= pipeline.detect_every.",
    )
    skip_grow: float = Field(
        default=1.25,
        ge=1.0,
        le=4.0,
        description="On frames the detector skipped, the regions of the detector runs before "
        "and after are grown by this factor (faces move between runs).",
    )
    lookahead: bool = Field(
        default=True,
        description="Hold frames the detector skipped until its next run and mask them with "
        "that run's faces too (catches faces that appear between two runs; no extra latency).",
    )
    queue_size: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Frames buffered between two stages for live input (pipeline.queue_size "
        "applies to files). Every queued frame is latency when a stage is the bottleneck.",
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
        """Raise ValueError when the blind window is shorter than a scheduled detect gap."""
        if self.blind_frames < detect_every:
            raise ValueError(
                f"{where}.blind_frames ({self.blind_frames}) must be >= pipeline.detect_every "
                f"({detect_every}), or every scheduled gap would be masked whole"
            )

    @model_validator(mode="after")
    def _backoff_order(self) -> LiveConfig:
        if self.source.backoff_max_s < self.source.backoff_initial_s:
            raise ValueError(
                f"source.backoff_max_s ({self.source.backoff_max_s}) must be >= "
                f"source.backoff_initial_s ({self.source.backoff_initial_s})"
            )
        return self


Box = tuple[int, int, int, int]


def whole_frame(width: int, height: int) -> list[Region]:
    return [Region((0, 0, width, height))]


def grow_box(xyxy: Sequence[float], factor: float, width: int, height: int) -> Box | None:
    """``xyxy`` scaled by ``factor`` about its centre, rounded outwards and clipped."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * factor / 2, (y2 - y1) * factor / 2
    bx1, by1 = max(0, math.floor(cx - hw)), max(0, math.floor(cy - hh))
    bx2, by2 = min(width, math.ceil(cx + hw)), min(height, math.ceil(cy + hh))
    if bx2 <= bx1 or by2 <= by1:
        return None
    return bx1, by1, bx2, by2


def lookahead_regions(
    own: Iterable[Region],
    before: Sequence[Region],
    after: Sequence[Region],
    gap_frames: int,
    grow: float,
    width: int,
    height: int,
) -> list[Region]:
    """Regions for a frame the detector skipped, between the runs ``before`` and ``after``.

    Every box of ``before`` (A) and of ``after`` (B) is masked where it was seen, grown. On top,
    a face's two positions are joined by the box spanning both, grown: whatever straight path
    the face took between the two runs, it stays inside. Positions are joined when they carry
    the same track id, and every B box with no such partner (a new track: a face that appeared,
    or one that moved so far that the tracker did not recognise it, its old track still coasting
    where it was) is joined to the nearest A box within reach (half a face size per frame of the
    gap). A new face with nothing in reach is masked where B saw it.

    Args:
        own: the frame's own regions (its predicted/coasting tracks).
        before: regions of the last detector run before the frame (A).
        after: regions of the first detector run after it (B); empty when unknown.
        gap_frames: frames between A and B (sets how far a face may have moved).
        grow: growth factor for every box taken from A or B.
        width: frame width in pixels.
        height: frame height in pixels.
    """
    boxes: list[tuple[Box, int | None]] = [(r.xyxy, r.track_id) for r in own]
    for r in (*before, *after):
        box = grow_box(r.xyxy, grow, width, height)
        if box is not None:
            boxes.append((box, r.track_id))
    a_ids = {r.track_id: r.xyxy for r in before if r.track_id is not None}
    for rb in after:
        b = rb.xyxy
        partner = a_ids.get(rb.track_id) if rb.track_id is not None else None
        if partner is None:
            reachable = [
                (_distance(ra.xyxy, b), ra.xyxy)
                for ra in before
                if _distance(ra.xyxy, b) <= _reach(ra.xyxy, b, gap_frames)
            ]
            partner = min(reachable)[1] if reachable else None
        if partner is None:
            continue
        span = (
            min(partner[0], b[0]),
            min(partner[1], b[1]),
            max(partner[2], b[2]),
            max(partner[3], b[3]),
        )
        box = grow_box(span, grow, width, height)
        if box is not None:
            boxes.append((box, rb.track_id))
    return merge_regions(boxes)


def _distance(a: Box, b: Box) -> float:
    return math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


def _reach(a: Box, b: Box, gap_frames: int) -> float:
    size = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
    return size * (1 + 0.5 * max(1, gap_frames))


def merge_regions(boxes: Iterable[tuple[Box, int | None]]) -> list[Region]:
    """Unique regions, dropping every box that lies inside another (it is masked already)."""
    unique: dict[Box, int | None] = {}
    for box, track_id in boxes:
        unique.setdefault(box, track_id)
    items = list(unique.items())
    kept = []
    for i, (box, track_id) in enumerate(items):
        inside = any(j != i and _contains(other, box) for j, (other, _) in enumerate(items))
        # Of two identical-coverage boxes only exact duplicates exist (deduplicated above), so a
        # box inside another is strictly smaller and safe to drop.
        if not inside:
            kept.append(Region(box, track_id))
    return kept


def _contains(outer: Box, inner: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and outer[2] >= inner[2]
        and outer[3] >= inner[3]
    )
