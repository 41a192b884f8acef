"""Reversible masking of live cameras: encrypted originals beside each recorded file.

A live pipeline may drop a frame between any two stages (its latency budget), so originals are
written by the output, for exactly the frames that reached it, under the timestamp the file
gives them. Two pieces do that:

* :class:`CaptureOriginalsStage` runs before the obscure stage and copies each region's original
  pixels (a small ``memcpy`` per face) into a bounded, in-memory :class:`Originals` store.
* :class:`ReversibleFileSink` wraps a file output: after a frame is written it takes that
  frame's crops, compresses and encrypts them into ``OUTPUT.sdeid`` (per-region records, as for
  ``--originals regions``), and flushes. Crops of frames dropped on the way are discarded.

Live input is never kept as packets: frames may be dropped and timestamps re-anchored after a
reconnect, so only per-region crops pair reliably with what the file holds. Segment and RTSP
outputs get no sidecar (a segment's timestamps restart at zero); a camera with reversible
masking needs a file output, and says so at start-up.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from fractions import Fraction

import numpy as np

from streamdeid.crypto.writer import SidecarWriter
from streamdeid.io.frame_sink import FrameSink
from streamdeid.io.sink import VideoSink
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.pipeline.stage import Stage
from streamdeid.types import Frame, FramePacket, Region

log = logging.getLogger(__name__)

MAX_PENDING_FRAMES = 256  # far more than the live queues hold; beyond it the oldest are dropped


class Originals:
    """Crops waiting for their frame to be written, by frame index (thread-safe, bounded).

    Plaintext pixels live here only in memory, and only until their frame is written or known
    to be dropped (a later frame was written).
    """

    def __init__(self, limit: int = MAX_PENDING_FRAMES) -> None:
        self._items: OrderedDict[int, list[tuple[Region, np.ndarray]]] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit
        self.discarded = 0  # frames whose crops were dropped with the frame

    def put(self, index: int, crops: list[tuple[Region, np.ndarray]]) -> None:
        with self._lock:
            self._items[index] = crops
            while len(self._items) > self._limit:
                self._items.popitem(last=False)
                self.discarded += 1

    def take(self, index: int) -> list[tuple[Region, np.ndarray]]:
        """The crops of frame ``index`` (none if it had no region); earlier frames' are dropped:
        frames reach the output in order, so theirs were dropped on the way."""
        with self._lock:
            while self._items and next(iter(self._items)) < index:
                self._items.popitem(last=False)
                self.discarded += 1
            return self._items.pop(index, [])


class CaptureOriginalsStage(Stage):
    """Copies every region's original pixels before the obscure stage masks them."""

    name = "originals"

    def __init__(self, originals: Originals) -> None:
        super().__init__()
        self.originals = originals

    def process(self, packet: FramePacket) -> FramePacket:
        if packet.regions:
            image = packet.frame.image
            crops = []
            for region in packet.regions:
                x1, y1, x2, y2 = region.xyxy
                crops.append((region, image[y1:y2, x1:x2].copy()))
            self.originals.put(packet.frame.index, crops)
        return packet


class ReversibleFileSink(FrameSink):
    """A file output whose frames' originals go, encrypted, into ``OUTPUT.sdeid``."""

    def __init__(self, inner: VideoSink, writer: SidecarWriter, originals: Originals) -> None:
        self.inner = inner
        self.writer = writer
        self.originals = originals
        self.name = inner.name
        # The recording id in the video pairs it with its sidecar (checked by reveal).
        inner.metadata["comment"] = f"streamdeid recording {writer.recording_id}"

    @property
    def frames_written(self) -> int:  # type: ignore[override]
        return self.inner.frames_written

    def write(self, frame: Frame) -> None:
        self.inner.write(frame)
        crops = self.originals.take(frame.index)
        if crops and self.inner.last_pts is not None:
            rate = self.inner.info.frame_rate or DEFAULT_FRAME_RATE
            time_base = self.inner.info.time_base or Fraction(1) / rate
            size = (frame.width, frame.height)
            self.writer.write_crops(self.inner.last_pts, time_base, size, crops)
            self.writer.flush()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.writer.close()
