"""The concrete stages: detect → track (+ regions) → obscure → encode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from streamdeid.crypto.writer import SidecarWriter
from streamdeid.detect.base import Detector
from streamdeid.detect.tiling import box_iou
from streamdeid.io.frame_sink import FrameSink
from streamdeid.obscure.filters import Filter, warm_up
from streamdeid.obscure.regions import build_regions, merge_regions
from streamdeid.pipeline.stage import Stage
from streamdeid.track.iou import IoUTracker
from streamdeid.types import FramePacket

log = logging.getLogger(__name__)


class DetectStage(Stage):
    """Runs the detector on every ``detect_every``-th frame.

    With ``lookahead`` (files; see :mod:`streamdeid.pipeline.lookahead`), a frame the detector
    skips is held here until the next frame arrives, and the stream's last frame is detected
    even when it is not scheduled: the track stage masks every skipped frame with the runs before
    *and after* it, so a skipped frame must never be the last one.

    Without ``lookahead``, when a run finds a face that the previous run did not have, the
    detector also runs on the next frames (a short burst): a new track has no velocity yet, so a
    fast face would walk out of its predicted box before the next scheduled run. Two close
    detections teach the tracker the motion.

    A detector exception does not stop the run and does not let the frame through raw: the packet
    is flagged and the region builder masks the whole frame.
    """

    BURST_FRAMES = 2

    name = "detect"
    paces = True

    def __init__(
        self,
        make_detector: Callable[[], Detector],
        detect_every: int = 1,
        *,
        lookahead: bool = False,
    ) -> None:
        super().__init__()
        self._make_detector = make_detector
        self.detect_every = detect_every
        self.lookahead = lookahead
        self.detector: Detector | None = None
        self.faces = 0
        self.runs = 0
        self.failures = 0
        self._burst = 0
        self._previous = np.zeros((0, 4), np.float32)
        self._pending: FramePacket | None = None

    def setup(self) -> None:
        self.detector = self._make_detector()

    def process(self, packet: FramePacket) -> FramePacket | None:
        if not self.lookahead:
            return self._scheduled(packet)
        pending, self._pending = self._pending, None
        if self.outbox is not None and self.outbox.reader_gone.is_set():
            return None  # downstream failed: nothing will be written, spare the detector
        if pending is not None and not self.emit(pending):
            return None
        packet = self._scheduled(packet)
        if packet.detections is None and not packet.detection_failed:
            self._pending = packet  # skipped: emitted when we know it is not the last frame
            return None
        return packet

    def _scheduled(self, packet: FramePacket) -> FramePacket:
        if packet.frame.index % self.detect_every and self._burst <= 0:
            return packet
        self._burst -= 1
        return self.detect(packet)

    def detect(self, packet: FramePacket) -> FramePacket:
        """Run the detector on this packet now, whatever the schedule."""
        if self.detector is None:
            self.setup()
        self.runs += 1
        try:
            found = self.detector.detect(packet.frame)  # type: ignore[union-attr]
            packet.detections = found
            self.faces += len(found)
            if self.detect_every > 1 and not self.lookahead:
                if _has_new_box(found.xyxy, self._previous):
                    self._burst = self.BURST_FRAMES
            self._previous = found.xyxy
        except Exception as e:  # noqa: BLE001 - any backend failure must mask, not crash
            self.failures += 1
            packet.detection_failed = True
            log.warning(
                "detector failed on frame %d, masking the whole frame: %s", packet.frame.index, e
            )
        return packet

    def teardown(self) -> None:
        try:
            pending, self._pending = self._pending, None
            if pending is not None:
                # The last frame was not scheduled: detect it, so that it (and the frames held
                # before it downstream) have a run after them. After an error the detector may
                # be gone; the track stage then masks the frame whole.
                if self.detector is not None and self.error is None:
                    pending = self.detect(pending)
                self.emit(pending)
        finally:
            if self.detector is not None:
                self.detector.close()


def _has_new_box(current: np.ndarray, previous: np.ndarray, iou: float = 0.1) -> bool:
    if len(current) == 0:
        return False
    if len(previous) == 0:
        return True
    return bool((box_iou(current, previous).max(axis=1) < iou).any())


class TrackStage(Stage):
    """Updates the tracker and turns detections ∪ tracks into padded regions."""

    name = "track"

    def __init__(self, tracker: IoUTracker, mask_scale: float, min_size_px: int) -> None:
        super().__init__()
        self.tracker = tracker
        self.mask_scale = mask_scale
        self.min_size_px = min_size_px
        self.regions = 0

    def setup(self) -> None:
        # Compile (or load) the region merge now: a first face compiling it would stall a
        # camera for a second or more (100 frames dropped at the start of a 1080p run).
        merge_regions([((0, 0, 2, 2), 1), ((0, 0, 2, 2), None)])

    def process(self, packet: FramePacket) -> FramePacket:
        frame = packet.frame
        packet.tracks = self.tracker.update(packet.detections)
        packet.regions = build_regions(
            packet.detections,
            packet.tracks,
            frame.width,
            frame.height,
            mask_scale=self.mask_scale,
            min_size_px=self.min_size_px,
            detection_failed=packet.detection_failed,
        )
        self.regions += len(packet.regions)
        return packet


class EncryptStage(Stage):
    """Encrypts each region's original pixels into the sidecar, before anything is masked.

    Runs between the track and obscure stages: the frame it sees is still the decoded source,
    and the obscure stage only gets the packet after this stage has handed it on. The sidecar
    is flushed every frame, so a crash keeps every frame written so far. When the writer keeps
    the input's packets (:mod:`streamdeid.crypto.source`), only the boxes are written here.
    """

    name = "encrypt"

    def __init__(self, writer: SidecarWriter, fallback_time_base: Fraction) -> None:
        super().__init__()
        self.writer = writer
        self.fallback_time_base = fallback_time_base

    def process(self, packet: FramePacket) -> FramePacket:
        frame = packet.frame
        if packet.regions:
            pts = frame.index if frame.pts is None else frame.pts
            time_base = frame.time_base or self.fallback_time_base
            if self.writer.keeps_source:
                h, w = frame.image.shape[:2]
                self.writer.write_index(frame.index, pts, time_base, (w, h), packet.regions)
            else:
                self.writer.write_regions(pts, time_base, frame.image, packet.regions)
            self.writer.flush()
        return packet

    def teardown(self) -> None:
        self.writer.close()


class ObscureStage(Stage):
    """The only stage that writes to ``Frame.image``."""

    name = "obscure"

    def __init__(self, filter_: Filter) -> None:
        super().__init__()
        self.filter = filter_

    def setup(self) -> None:
        # JIT-load the kernels while the detector loads its model, not on the first face.
        warm_up()
        self.filter.prepare()

    def process(self, packet: FramePacket) -> FramePacket:
        self.filter.next_frame(packet.detections is not None)
        if packet.regions:
            self.filter.apply(packet.frame.image, packet.regions)
        return packet


class SinkStage(Stage):
    """Encodes frames in order; closing (flush + trailer) happens in teardown, always.

    Any :class:`~streamdeid.io.frame_sink.FrameSink` will do (a file, segments, RTSP, a tee):
    the stage owns the sink from here on, and closes it even when the run fails or is stopped,
    so what was written so far stays playable.
    """

    name = "encode"

    def __init__(
        self,
        sink: FrameSink,
        on_frame: Callable[[FramePacket], None] | None = None,
    ) -> None:
        super().__init__()
        self.sink = sink
        self.on_frame = on_frame

    def process(self, packet: FramePacket) -> None:
        self.sink.write(packet.frame)
        if self.on_frame is not None:
            self.on_frame(packet)
        return None

    def teardown(self) -> None:
        self.sink.close()
