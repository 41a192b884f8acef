"""Look-ahead masking: frames the detector did not run on are masked with the runs around them.

When the detector skips a frame (``detect_every`` > 1, or a live detector that is behind), the
tracker alone would mask only the faces it already knows, moved by their predicted velocity. A
face that appears on a skipped frame, or one that turns faster than predicted, would show. So a
skipped frame is held back until the next frame the detector ran on (call the runs before and
after it A and B) and masked with its own tracks ∪ every face of A and of B ∪, for each face
seen by both, the box spanning its two positions (its straight path), all grown. A face that
appears between two runs is in B, so it is covered from its first frame. Frames still leave in
order: B cannot be emitted before its own detection anyway.

All frames between two runs share one mask: each gets the margins of the frame farthest from
the runs, which hold what its own distance asks for. A mask that changed size on every frame
made the encoder's work harder: x264 spent 19% more CPU on the 720p dev clip's masked output
than on its input, and one mask per gap took a third of that extra away (3-4% of the run).

Used by ``streamdeid run`` (files: the detect stage always runs on the last frame, so every
skipped frame has a B) and by the live pipeline, which adds its blind rule
(:mod:`streamdeid.live.policy`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamdeid.obscure.regions import Box, Face, box_around, merge_regions, whole_frame
from streamdeid.pipeline.stages import TrackStage
from streamdeid.track.iou import IoUTracker
from streamdeid.types import FramePacket, Region


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


MAX_SCALED_GROW = 4.0
"""Growth scaled by distance from a run stops here (unless ``grow`` itself is larger).

Files never reach it (with ``detect_every`` 5 a frame is at most 4 frames from a run: 2x).
A live detector that falls behind can leave up to ``blind_frames`` (12) between two runs; a
cap of 2x there let a face walking out at the frame edge between runs 11 frames apart show on
the frames in between (seen under load in the RTSP test). A run further away masks more."""


def scaled_grow(grow: float, frames: int) -> float:
    """``grow`` for a box seen ``frames`` frames away: a face moves with every frame, so the
    margin added to a box grows with the distance from the frame it was seen on (capped)."""
    return max(grow, min(MAX_SCALED_GROW, 1.0 + (grow - 1.0) * max(1, frames)))


def lookahead_regions(
    own: Iterable[Region],
    before: Sequence[Region],
    after: Sequence[Region],
    since_before: int,
    until_after: int,
    grow: float,
    width: int,
    height: int,
) -> list[Region]:
    """Regions for a frame the detector skipped, between the runs ``before`` and ``after``.

    Every box of ``before`` (A) and of ``after`` (B) is masked where it was seen, grown by
    ``grow`` per frame of distance (:func:`scaled_grow`): a face that appeared two frames
    before B had two frames to move. Every frame of the gap gets the margins of the frame
    farthest from the runs (one mask per gap, see the module docstring; B unknown: its own).
    On top, a face's two positions are joined by the box spanning both, grown: whatever
    straight path the face took between the two runs, it stays inside. Positions are joined
    when they carry the same track id, and every B box with no such partner (a new track: a
    face that appeared, or one that moved so far that the tracker did not recognise it, its
    old track still coasting where it was) is joined to the nearest A box within reach (a face
    size per frame of the gap). A new face with nothing in reach is masked where B saw it.

    Args:
        own: the frame's own regions (its predicted/coasting tracks).
        before: regions of the last detector run before the frame (A).
        after: regions of the first detector run after it (B); empty when unknown.
        since_before: frames from A to this frame.
        until_after: frames from this frame to B (ignored when ``after`` is empty).
        grow: growth factor per frame of distance for every box taken from A or B.
        width: frame width in pixels.
        height: frame height in pixels.
    """
    boxes: list[tuple[Box, int | None]] = [(r.xyxy, r.track_id) for r in own]
    gap_frames = since_before + until_after
    factor = scaled_grow(grow, gap_frames - 1 if after else since_before)
    for regions in (before, after):
        for r in regions:
            box = grow_box(r.xyxy, factor, width, height)
            if box is not None:
                boxes.append((box, r.track_id))
    boxes += _paths(before, after, gap_frames, scaled_grow(grow, gap_frames // 2), width, height)
    faces = _faces_between(own, before, after, since_before, until_after)
    boxes += _unboxed_faces(faces, boxes, width, height)
    return merge_regions(boxes, faces)


def _paths(
    before: Sequence[Region],
    after: Sequence[Region],
    gap_frames: int,
    span_grow: float,
    width: int,
    height: int,
) -> list[tuple[Box, int | None]]:
    """Each B box joined to its A position (same track id, else the nearest A box in reach)
    by the box spanning both, grown."""
    boxes: list[tuple[Box, int | None]] = []
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
        box = grow_box(box_around(partner, b), span_grow, width, height)
        if box is not None:
            boxes.append((box, rb.track_id))
    return boxes


def _unboxed_faces(
    faces: dict[int, Face], boxes: list[tuple[Box, int | None]], width: int, height: int
) -> list[tuple[Box, int | None]]:
    """A box for each face whose track has none among ``boxes``: a track seen only inside
    other tracks' regions (their ``inner``) has nothing else for the merge to name its face
    by. The face box lies inside the region that held the face, as a rule (so masks stay as
    they were); where it does not, the mask only grows."""
    boxed = {track_id for _, track_id in boxes}
    out: list[tuple[Box, int | None]] = []
    for track_id, face in faces.items():
        if track_id in boxed:
            continue
        box = grow_box(face, 1.0, width, height)
        if box is not None:
            out.append((box, track_id))
    return out


def _faces_between(
    own: Iterable[Region],
    before: Sequence[Region],
    after: Sequence[Region],
    since_before: int,
    until_after: int,
) -> dict[int, Face]:
    """Each track's face on a skipped frame: its faces at the two runs interpolated when both
    are known (the tracker only extrapolates from the run before), else the tracker's own, else
    (a face that appeared before the next run found it) where that run saw it."""
    faces = _track_faces(own)
    if not after:
        return faces
    t = since_before / max(1, since_before + until_after)
    later = _track_faces(after)
    for track_id, face in later.items():
        faces.setdefault(track_id, face)
    for track_id, face in _track_faces(before).items():
        if track_id not in later:
            continue
        b = later[track_id]
        x1, y1, x2, y2 = (a + (bb - a) * t for a, bb in zip(face, b, strict=True))
        faces[track_id] = (x1, y1, x2, y2)
    return faces


def _track_faces(regions: Iterable[Region]) -> dict[int, Face]:
    """Every track's face named by ``regions``: a region's own, and those of the tracks lying
    inside it (:attr:`Region.inner`), which have no region of their own."""
    faces: dict[int, Face] = {}
    for r in regions:
        for track_id, face in r.inner:
            faces.setdefault(track_id, face)
        if r.track_id is not None and r.face is not None:
            faces[r.track_id] = r.face
    return faces


def _distance(a: Box, b: Box) -> float:
    return math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


def _reach(a: Box, b: Box, gap_frames: int) -> float:
    """How far a face may have moved between two runs: its own size per frame of the gap.

    Half a size per frame missed a footballer's 30-px face crossing 100 px in 4 frames (the
    tracker cannot match such a jump either, so only this join covers the frames between).
    Joining two different people instead costs a wider mask, never a visible face.
    """
    size = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
    return size * (1 + max(1, gap_frames))


@dataclass(slots=True)
class DetectorRun:
    """A frame the detector ran on: the A or B of a skipped frame."""

    index: int
    t: float  # Frame.captured_at (monotonic seconds)
    regions: list[Region]


class LookaheadTrackStage(TrackStage):
    """:class:`TrackStage` that holds skipped frames until the next detector run, then masks them.

    Args:
        tracker, mask_scale, min_size_px: as for :class:`TrackStage`.
        grow: growth factor, per frame of distance, for every box taken from the runs before
            and after a skipped frame (faces move between runs); see :func:`scaled_grow`.
        hold: False masks a skipped frame at once with the run before it only (no latency, no
            look-ahead; live cameras may choose this).

    A held frame is put on the outbox from :meth:`process` when the next run arrives, and from
    :meth:`teardown` (which the shared stage loop runs before it forwards end-of-stream) with the
    whole frame masked: no run after it will come, so nobody has looked for new faces in it.
    """

    def __init__(
        self,
        tracker: IoUTracker,
        mask_scale: float,
        min_size_px: int,
        *,
        grow: float = 1.25,
        hold: bool = True,
    ) -> None:
        super().__init__(tracker, mask_scale, min_size_px)
        if grow < 1.0:
            raise ValueError(f"grow must be >= 1.0, got {grow}")
        self.grow = grow
        self.hold = hold
        self.whole_frames = 0
        self._held: deque[FramePacket] = deque()
        self._last: DetectorRun | None = None

    def blind(self, start: DetectorRun, index: int, t: float) -> bool:
        """True when frame ``index`` (at time ``t``) is too far from run ``start`` to trust it.

        Files never are: their detect stage runs on every scheduled frame and on the last one.
        """
        return False

    def process(self, packet: FramePacket) -> FramePacket | None:
        ran = packet.detections is not None or packet.detection_failed
        packet = super().process(packet)
        frame = packet.frame
        if ran:
            run = DetectorRun(frame.index, frame.captured_at, list(packet.regions))
            self._release(run)
            self._last = run
            return packet
        if self._last is None or self.blind(self._last, frame.index, frame.captured_at):
            self._release(None)
            self.mask_whole(packet)
            return packet
        if not self.hold:
            self._mask_between(packet, self._last, None)
            return packet
        self._held.append(packet)
        return None

    def _mask_between(
        self, packet: FramePacket, before: DetectorRun, after: DetectorRun | None
    ) -> None:
        frame = packet.frame
        packet.regions = lookahead_regions(
            packet.regions,
            before.regions,
            after.regions if after is not None else [],
            frame.index - before.index,
            after.index - frame.index if after is not None else 0,
            self.grow,
            frame.width,
            frame.height,
        )

    def mask_whole(self, packet: FramePacket) -> None:
        packet.regions = whole_frame(packet.frame.width, packet.frame.height)
        self.whole_frames += 1

    def _release(self, after: DetectorRun | None) -> None:
        """Emit every held frame: look-ahead masked when ``after`` is in reach, else whole."""
        while self._held:
            held = self._held.popleft()
            before = self._last
            if after is None or before is None or self.blind(before, after.index, after.t):
                self.mask_whole(held)
            else:
                self._mask_between(held, before, after)
            if not self.emit(held):
                self._held.clear()
                return

    def teardown(self) -> None:
        # End of stream, stop or error: no next run will come, so nobody has vouched for them.
        self._release(None)
