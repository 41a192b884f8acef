"""Recording to back-to-back files, each playable on its own, even after SIGKILL.

MP4 segments are fragmented (a fragment at least every second), MKV clusters are short, and each
segment starts on a keyframe with the SPS/PPS inside it. A killed writer therefore loses at most
the last second. A segment that fails to write (full disk, removed folder) is abandoned, and a
fresh one starts at a keyframe a little later: the recording outlives a full disk.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from streamdeid.errors import ConfigError, OutputNotWritableError, SinkError, StreamDeidError
from streamdeid.io.live_encoder import LiveSink
from streamdeid.io.sink import EncoderSettings
from streamdeid.media import DEFAULT_FRAME_RATE

log = logging.getLogger(__name__)

_CONTAINERS = {"mp4": "mp4", "mkv": "matroska"}
# Fragmented MP4: a moov with no samples up front, then self-contained fragments, cut at every
# keyframe and at least once a second. A killed writer loses at most the last second.
_MP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": "1000000",
    "flush_packets": "1",
}
_MKV_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
_STAMP = "%Y%m%dT%H%M%SZ"
_SEGMENT_RETRY_S = 1.0  # after a write error, wait this long before starting a new segment


class SegmentSink(LiveSink):
    """Record to back-to-back files of about ``segment_time_s``, each playable on its own.

    ``pattern_or_dir`` is a folder, where files are named ``{prefix}_{start}.{container}``, or a
    path pattern containing ``{start}``, such as ``rec/cam1_{start}.mp4``. ``{start}`` is the
    segment's first frame capture time in UTC, e.g. ``20261123T181500Z``. A name already taken
    gets ``-1``, ``-2``, ... appended. A segment is cut at the first frame at or past
    ``segment_time_s`` of media time, and the encoder is asked for a keyframe there, so segments
    are that long to within a frame.

    Timestamps start at 0 in every segment: each file stands alone, and the file name says when
    it began.

    Example:
        >>> with SegmentSink("rec/", segment_time_s=600, prefix="cam1") as sink:  # doctest: +SKIP
        ...     for frame in source.frames():
        ...         sink.write(frame)
    """

    def __init__(
        self,
        pattern_or_dir: str | os.PathLike[str],
        segment_time_s: float = 600,
        container: str = "mp4",
        settings: EncoderSettings | None = None,
        *,
        prefix: str = "cam",
        frame_rate: float = DEFAULT_FRAME_RATE,
        gop_s: float = 2,
    ) -> None:
        super().__init__(settings, frame_rate, gop_s)
        if container not in _CONTAINERS:
            raise ConfigError(f"container: expected 'mp4' or 'mkv', got {container!r}")
        if not segment_time_s > 0:
            raise ConfigError(f"segment_time_s: expected seconds > 0, got {segment_time_s!r}")
        target = Path(pattern_or_dir)
        if target.is_dir() or str(pattern_or_dir).endswith(os.sep):
            pattern = target / f"{prefix}_{{start}}.{container}"
        else:
            pattern = target
            if "{start}" not in target.name:
                raise ConfigError(
                    f"segment pattern: expected a folder or a file name containing '{{start}}', "
                    f"got '{target}'"
                )
            if target.suffix.lower() != f".{container}":
                raise ConfigError(
                    f"segment pattern: expected a '.{container}' name for container="
                    f"{container!r}, got '{target.name}'"
                )
        folder = pattern.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise OutputNotWritableError(
                f"cannot write segments to '{folder}': expected an existing, writable folder"
            )
        self.pattern = pattern
        self.container = container
        self.segment_time_s = float(segment_time_s)
        self.name = f"segments:{pattern}"
        self.segments: list[Path] = []  # every file started, in order
        self.packets_skipped = 0  # waiting for a keyframe after a failed segment
        self._retry_at = 0.0  # after a failure, no new segment (and keyframe) before this
        self._out: Any = None
        self._stream: Any = None
        self._start_pts = 0
        # Reversible masking (live/segment_originals.py): a segment's sidecar is opened with it
        # (on_open returns metadata naming it) and closed with it; last_muxed is the time, in
        # its segment, of the last packet written.
        self.on_open: Callable[[Path], dict[str, str]] | None = None
        self.on_close: Callable[[], None] | None = None
        self.last_muxed: int | None = None

    def wants_keyframe(self, pts: int) -> bool:
        if self._out is None:
            return time.monotonic() >= self._retry_at
        return self._due(pts)

    def _due(self, pts: int) -> bool:
        return (pts - self._start_pts) * self.encoder.time_base >= self.segment_time_s

    def put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        if self._out is not None and packet.is_keyframe and self._due(pts):
            self._close_segment()
        if self._out is None:
            if not packet.is_keyframe or time.monotonic() < self._retry_at:
                self.packets_skipped += 1
                return
            try:
                self._open_segment(pts, wall_time)
            except SinkError:
                self._retry_at = time.monotonic() + _SEGMENT_RETRY_S
                raise
        try:
            packet.time_base = self.encoder.time_base
            packet.pts, packet.dts = pts - self._start_pts, dts - self._start_pts
            packet.stream = self._stream
            self._out.mux(packet)
            self.last_muxed = pts - self._start_pts
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._abandon()
            raise SinkError(f"segment '{self.segments[-1]}': writing failed: {e}") from e

    def _open_segment(self, pts: int, wall_time: float) -> None:
        enc = self.encoder
        stamp = datetime.fromtimestamp(wall_time, UTC).strftime(_STAMP)
        path = Path(str(self.pattern).replace("{start}", stamp))
        n = 0
        while path.exists():
            n += 1
            path = Path(str(self.pattern).replace("{start}", f"{stamp}-{n}"))
        options = _MP4_OPTIONS if self.container == "mp4" else _MKV_OPTIONS
        try:
            out = av.open(str(path), mode="w", format=_CONTAINERS[self.container], options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"cannot create segment '{path}': {e}") from e
        try:
            out.metadata["creation_time"] = datetime.fromtimestamp(wall_time, UTC).isoformat()
            stream = out.add_mux_stream(
                "h264",
                rate=Fraction(enc.frame_rate).limit_denominator(1001),
                width=enc.width,
                height=enc.height,
            )
            stream.time_base = enc.time_base
            if self.on_open is not None:
                out.metadata.update(self.on_open(path))
        except (av.error.FFmpegError, ValueError, StreamDeidError) as e:
            out.close()
            raise SinkError(f"cannot set up segment '{path}': {e}") from e
        self._out, self._stream, self._start_pts = out, stream, pts
        self.segments.append(path)
        log.info("recording segment %s", path)

    def _close_segment(self) -> None:
        out, self._out = self._out, None
        try:
            out.close()
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"closing segment '{self.segments[-1]}' failed: {e}") from e
        finally:
            self._closed()

    def _closed(self) -> None:
        if self.on_close is not None:
            self.on_close()

    def _abandon(self) -> None:
        """Drop a segment that failed; a keyframe after ``_SEGMENT_RETRY_S`` starts a new one."""
        out, self._out = self._out, None
        self._retry_at = time.monotonic() + _SEGMENT_RETRY_S
        try:
            out.close()
        except (av.error.FFmpegError, OSError) as e:
            log.debug("closing a failed segment: %s", e)
        finally:
            self._closed()

    def finish(self) -> None:
        if self._out is not None:
            self._close_segment()
