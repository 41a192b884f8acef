"""Reversible masking of recorded segments: one sidecar per segment, each able to stand alone.

A camera recorded 24/7 rotates its files (:class:`~streamdeid.io.segment_sink.SegmentSink`), and
an archive deletes old segments by age. So each segment gets its own ``SEGMENT.sdeid``, under
its own recording id, that restores that segment without any other file.

The camera's packets are kept (:mod:`streamdeid.crypto.source`), and a segment's originals
must start at a camera keyframe at or before its first frame, although that keyframe was
demuxed before the segment existed (the pipeline runs a few hundred ms behind the demuxer).
:class:`GopFeed` therefore holds the camera's packets since the oldest keyframe a future
segment may start from, and hands every packet to the open segment's sidecar as it comes.
Segment timestamps restart at 0, so the index records carry each frame's time in its segment.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamdeid.crypto.source import SourcePacket, StreamParams
from streamdeid.crypto.writer import SidecarWriter
from streamdeid.io.frame_sink import FrameSink
from streamdeid.io.segment_sink import SegmentSink
from streamdeid.live.reversible import Originals, write_originals
from streamdeid.types import Frame

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Gop:
    """Packets from one keyframe (or a new decoder's first packet) to the next."""

    params: StreamParams
    key_pts: int | None
    start: int | None  # index of its first frame, once that frame is decoded
    new_decoder: bool
    packets: list[SourcePacket] = field(default_factory=list)


class GopFeed:
    """Camera packets for segment sidecars: a writer to :class:`SourceKeeper`, a buffer to them.

    Thread-safe: packets and decoded frames come on the reader thread, segments open and close
    on the encode thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gops: deque[_Gop] = deque()
        self._params: StreamParams | None = None
        self._restart = -1  # the next packet starts a new decoder whose first frame has this index
        self._writer: SidecarWriter | None = None

    # SourceKeeper's writer interface -------------------------------------------------------
    def begin_source(self, params: StreamParams, first_frame: int = 0) -> None:
        with self._lock:
            self._params, self._restart = params, int(first_frame)
            if self._writer is not None:
                self._writer.begin_source(params, first_frame)

    def write_packet(self, packet: SourcePacket) -> None:
        with self._lock:  # SourceKeeper calls begin_source first, so a run is open
            if self._restart >= 0 or packet.keyframe:
                fresh = self._restart >= 0
                start = self._restart if fresh else None
                self._gops.append(_Gop(self._params, packet.pts, start, fresh))
                self._restart = -1
            self._gops[-1].packets.append(packet)
            if self._writer is not None:
                self._writer.write_packet(packet)

    # ----------------------------------------------------------------------------------------
    def decoded(self, pts: int | None, index: int) -> None:
        """A frame left the decoder: it may be the keyframe some buffered run starts with."""
        if pts is None:
            return
        with self._lock:
            for gop in reversed(self._gops):
                if gop.start is None and gop.key_pts == pts:
                    gop.start = index
                    return

    def written(self, index: int) -> None:
        """Frame ``index`` reached the output: later segments start after it, so runs before
        the last one starting at or before it are no longer needed."""
        with self._lock:
            keep = self._last_start_at_or_before(index)
            for _ in range(keep):
                self._gops.popleft()

    def _last_start_at_or_before(self, index: int) -> int:
        found = 0
        for i, gop in enumerate(self._gops):
            if gop.start is not None and gop.start <= index:
                found = i
        return found

    def feed(self, writer: SidecarWriter, first_index: int) -> None:
        """Start ``writer`` with the buffered packets from the run holding frame ``first_index``,
        then hand it every further packet."""
        with self._lock:
            gops = list(self._gops)[self._last_start_at_or_before(first_index) :]
            if not gops or gops[0].start is None or gops[0].start > first_index:
                log.warning(
                    "segment %s: no kept keyframe before frame %d; its first frames cannot "
                    "be restored",
                    writer.path,
                    first_index,
                )
            for i, gop in enumerate(gops):
                if i == 0 or gop.new_decoder:
                    start = gop.start if gop.start is not None else first_index
                    writer.begin_source(gop.params, start)
                for packet in gop.packets:
                    writer.write_packet(packet)
            if self._params is not None and not gops:
                writer.begin_source(self._params, first_index)
            self._writer = writer

    def release(self) -> None:
        with self._lock:
            self._writer = None


class ReversibleSegments(FrameSink):
    """Segments (alone or teed with an RTSP push) with one ``SEGMENT.sdeid`` per segment."""

    def __init__(
        self,
        inner: FrameSink,
        segments: SegmentSink,
        originals: Originals,
        open_writer: Callable[[Path], SidecarWriter],
        feed: GopFeed | None,
    ) -> None:
        self.inner, self.segments, self.originals = inner, segments, originals
        self.name = inner.name
        self._open_writer, self._feed = open_writer, feed
        self._writer: SidecarWriter | None = None
        self._frame: Frame | None = None
        segments.on_open, segments.on_close = self._opened, self._closed

    @property
    def frames_written(self) -> int:  # type: ignore[override]
        return self.inner.frames_written

    def packet_drops(self) -> dict[str, int]:
        return self.inner.packet_drops()

    def write(self, frame: Frame) -> None:
        self._frame = frame
        self.segments.last_muxed = None
        try:
            self.inner.write(frame)
        finally:
            crops = self.originals.take(frame.index)
            if self._feed is not None:
                self._feed.written(frame.index)
        muxed, writer = self.segments.last_muxed, self._writer
        if crops and muxed is not None and writer is not None:
            time_base = self.segments.encoder.time_base
            write_originals(writer, frame, crops, muxed, time_base)

    def _opened(self, path: Path) -> dict[str, str]:
        """A segment file is being created: its sidecar, named in the file's metadata."""
        writer = self._open_writer(path)
        if self._feed is not None and self._frame is not None:
            self._feed.feed(writer, self._frame.index)
        self._writer = writer
        return {"comment": f"streamdeid recording {writer.recording_id}"}

    def _closed(self) -> None:
        writer, self._writer = self._writer, None
        if self._feed is not None:
            self._feed.release()
        if writer is not None:
            writer.close()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self._closed()
