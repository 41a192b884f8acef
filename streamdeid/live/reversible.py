"""Reversible masking of live cameras: encrypted originals beside each recorded file.

As for files, the camera's own packets are kept (:mod:`streamdeid.crypto.source`): PNG crops
were measured to cost ~30 ms of CPU per 720p frame, which a live 2-core machine does not have
(on the dev camera, output fell from 24.5 to 12 fps). The session's
:class:`~streamdeid.crypto.keeper.SourceKeeper` hands every demuxed packet, and every reconnect
(a new decoder), to the sidecar of each file output.

A live pipeline may drop a frame between any two stages (its latency budget), so the index of
masked boxes is written by the output, for exactly the frames that reached it, under the
timestamp the file gives them, naming the original by its decode count:

* :class:`CaptureOriginalsStage` runs before the obscure stage and notes each frame's regions
  (and copies their pixels when the camera's codec is not worth keeping, e.g. MJPEG) in a
  bounded, in-memory :class:`Originals` store.
* :class:`ReversibleFileSink` wraps a file output: after a frame is written it takes that
  frame's entry and writes the index record (or the encrypted crops) to ``OUTPUT.sdeid``.
  Entries of frames dropped on the way are discarded.

Segments get one sidecar each (:mod:`streamdeid.live.segment_originals`). An RTSP push gets
none: a camera with reversible masking needs a file or segments output, and says so at start-up.
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
        self._items: OrderedDict[int, list[tuple[Region, np.ndarray | None]]] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit
        self.discarded = 0  # frames whose crops were dropped with the frame
        self.pixels = True  # copy pixels; off once the camera's packets are kept
        self.consumers = 1  # outputs that take each frame's crops (file and segments sidecars)
        self._taken: dict[int, int] = {}

    def put(self, index: int, crops: list[tuple[Region, np.ndarray | None]]) -> None:
        with self._lock:
            self._items[index] = crops
            while len(self._items) > self._limit:
                dropped, _ = self._items.popitem(last=False)
                self._taken.pop(dropped, None)
                self.discarded += 1

    def take(self, index: int) -> list[tuple[Region, np.ndarray | None]]:
        """The crops of frame ``index`` (none if it had no region); earlier frames' are dropped:
        frames reach the outputs in order, so theirs were dropped on the way. Each of the
        :attr:`consumers` outputs (a file and segments) takes every frame once."""
        with self._lock:
            while self._items and next(iter(self._items)) < index:
                dropped, _ = self._items.popitem(last=False)
                self._taken.pop(dropped, None)
                self.discarded += 1
            if index not in self._items:
                return []
            taken = self._taken.pop(index, 0) + 1
            if taken < self.consumers:
                self._taken[index] = taken
                return self._items[index]
            return self._items.pop(index)


class CaptureOriginalsStage(Stage):
    """Copies every region's original pixels before the obscure stage masks them."""

    name = "originals"

    def __init__(self, originals: Originals) -> None:
        super().__init__()
        self.originals = originals

    def process(self, packet: FramePacket) -> FramePacket:
        if packet.regions:
            image = packet.frame.image
            crops: list[tuple[Region, np.ndarray | None]] = []
            for region in packet.regions:
                x1, y1, x2, y2 = region.xyxy
                crop = image[y1:y2, x1:x2].copy() if self.originals.pixels else None
                crops.append((region, crop))
            self.originals.put(packet.frame.index, crops)
        return packet


class ReversibleFileSink(FrameSink):
    """A file output whose frames' originals go, encrypted, into ``OUTPUT.sdeid``."""

    def __init__(self, inner: VideoSink, writer: SidecarWriter, originals: Originals) -> None:
        """``writer`` was opened at camera start (packets come before the first frame)."""
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
        if not crops or self.inner.last_pts is None:
            return
        rate = self.inner.info.frame_rate or DEFAULT_FRAME_RATE
        time_base = self.inner.info.time_base or Fraction(1) / rate
        write_originals(self.writer, frame, crops, self.inner.last_pts, time_base)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.writer.close()


def write_originals(
    writer: SidecarWriter,
    frame: Frame,
    crops: list[tuple[Region, np.ndarray | None]],
    pts: int,
    time_base: Fraction,
) -> None:
    """The originals of one written frame, named by its time in the output: an index record
    when the camera's packets are kept, else its encrypted crops; flushed at once."""
    size = (frame.width, frame.height)
    if writer.keeps_source:
        regions = [region for region, _ in crops]
        writer.write_index(frame.index, pts, time_base, size, regions)
    else:
        pixels = [(region, crop) for region, crop in crops if crop is not None]
        writer.write_crops(pts, time_base, size, pixels)
    writer.flush()
