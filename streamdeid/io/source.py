"""Read video files (and still images) into :class:`Frame` objects through PyAV.

The source is the only place that knows about containers and codecs on the way in. It reports what
the sink needs to reproduce the input faithfully (time base, rate, rotation, size, audio) in a
:class:`SourceInfo`, and turns every FFmpeg failure into a one-line :class:`SourceError`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import av.format
import numpy as np

from streamdeid.errors import InputNotFoundError, NotAVideoError, SourceError
from streamdeid.io.pts import CLOCK_RESTART_S, FrameClock, jump_limit
from streamdeid.media import DEFAULT_FRAME_RATE, PTS_TIME_BASE
from streamdeid.types import Frame

log = logging.getLogger(__name__)

MAX_LOGGED_ERRORS = 5  # decoding errors logged one by one; the rest are only counted

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".m2ts",
        ".gif",
        ".flv",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".3gp",
    }
)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the input looks like, so the output can match it."""

    path: str
    format_name: str
    width: int
    height: int
    time_base: Fraction
    frame_rate: Fraction  # average rate; used only where the input gives no pts
    frames: int  # header frame count, 0 when unknown (mkv, gif, live)
    duration_s: float | None
    codec: str
    has_audio: bool
    # The container's clock may restart (MPEG-TS/PS, DVR formats): jumps of more than
    # pts.CLOCK_RESTART_S are closed rather than kept as gaps.
    clock_restarts: bool = False
    # Seconds added to every timestamp of every stream: a video that starts before 0 (a pts that
    # wrapped, an edit) is moved to start at 0, since MP4 would drop frames shown before 0.
    start_shift: Fraction = Fraction(0)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_exists(path: str) -> None:
    if "://" in path:
        return
    if not os.path.exists(path):
        raise InputNotFoundError(f"input not found: expected an existing file, got '{path}'")
    if os.path.isdir(path):
        raise NotAVideoError(f"expected a video file, got a directory: '{path}'")


class FileSource:
    """Decode a media file frame by frame. Use as a context manager.

    Frames carry the container's own ``pts`` so the sink can write them back unchanged, unless
    they are missing or out of order (AVI with B-frames, raw and damaged streams) or the clock
    restarts (joined MPEG-TS recordings): then :class:`~streamdeid.io.pts.FrameClock` derives
    them as FFmpeg does, and :meth:`repairs` says what it changed.

    Example:
        >>> with FileSource("in.mp4") as src:  # doctest: +SKIP
        ...     for frame in src.frames():
        ...         ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        _check_exists(self.path)
        try:
            self._container = av.open(self.path, mode="r")
        except av.error.FFmpegError as e:
            raise NotAVideoError(
                f"cannot open '{self.path}' as video: expected a media file FFmpeg can read, "
                f"got error: {e.strerror or e}"
            ) from e
        if not self._container.streams.video:
            kinds = [s.type for s in self._container.streams]
            found = f"{len(kinds)} stream(s): {', '.join(kinds)}" if kinds else "no streams"
            self._container.close()
            raise NotAVideoError(
                f"'{self.path}' has no video stream: expected a video or image, found {found}"
            )
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame threading: decode on both cores
        self.info = _describe(self.path, self._container, self._stream)
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise NotAVideoError(
                f"'{self.path}': expected a video with a picture size, "
                f"got {self.info.width}x{self.info.height}"
            )
        self.rotation: int = 0
        self.corrupt_frames = 0  # packets that could not be decoded (skipped)
        self.damaged_frames = 0  # frames decoded with errors concealed
        self.read_error: str | None = None  # why reading stopped before the end, if it did
        self._decode_error: str | None = None
        tb = self.info.time_base
        self.clock = FrameClock(
            _pts_step(tb, self.info.frame_rate),
            jump_limit(tb, self.info.clock_restarts),
            round(self.info.start_shift / tb),
        )
        # Called with every demuxed packet before it is decoded (reversible masking keeps them).
        self.packet_hook: Callable[[av.Packet], None] | None = None
        self.frame_hook: Callable[[int | None, int], None] | None = None  # (stream pts, index)

    @property
    def stream(self) -> av.video.stream.VideoStream:
        """The video stream being decoded (see :mod:`streamdeid.io.packet_decoder`)."""
        return self._stream

    @property
    def estimated_frames(self) -> int | None:
        """Header frame count, else duration × rate; None when nothing tells."""
        if self.info.frames:
            return self.info.frames
        if self.info.duration_s:
            return max(1, round(self.info.duration_s * float(self.info.frame_rate)))
        return None

    def frames(self) -> Iterator[Frame]:
        """Yield every decodable frame in presentation order, timed by :class:`FrameClock`.

        What FFmpeg can decode is kept, as the ``ffmpeg`` tool does: a packet that fails to
        decode is logged, counted and skipped (archived CCTV often has a damaged GOP, and
        dropping the file because of it would lose every other frame), and a read error ends
        the input where it happened. Only a file that yields no frame at all is an error.
        """
        index = 0
        try:
            for vf in self._decoded():
                if index == 0:
                    self.rotation = int(getattr(vf, "rotation", 0) or 0)
                self.damaged_frames += bool(vf.is_corrupt)
                if self.frame_hook is not None:
                    self.frame_hook(vf.pts, index)
                pts = self.clock(vf.pts, vf.dts, vf.duration)
                image = vf.to_ndarray(format="bgr24")
                yield Frame(
                    index=index,
                    image=np.ascontiguousarray(image),
                    pts=pts,
                    time_base=self.info.time_base,
                    captured_at=time.monotonic(),
                )
                index += 1
        except av.error.FFmpegError as e:
            raise SourceError(
                f"'{self.path}': decoding failed after {index} frames: {e.strerror or e}"
            ) from e
        if index == 0:
            raise NotAVideoError(self._nothing_decoded())

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The decoder's frames; the demuxer's last (empty) packet flushes it, or we do after a
        read error."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self.read_error = str(e.strerror or e)
                log.warning("%s: input ends early, reading failed: %s", self.path, self.read_error)
                yield from self._decode(None)
                return
            if self.packet_hook is not None and packet.size:
                self.packet_hook(packet)
            yield from self._decode(packet)

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            if packet is None:
                return self._stream.codec_context.decode(None)
            return packet.decode()
        except av.error.MemoryError:
            raise
        except av.error.FFmpegError as e:
            self._skipped(packet, e)
            return []

    def _skipped(self, packet: av.Packet | None, error: av.error.FFmpegError) -> None:
        """Count a packet that failed to decode; log the first few."""
        self.corrupt_frames += 1
        self._decode_error = self._decode_error or str(error.strerror or error)
        if self.corrupt_frames > MAX_LOGGED_ERRORS:
            return
        pts = getattr(packet, "pts", None)
        more = (
            " (further ones are only counted)" if self.corrupt_frames == MAX_LOGGED_ERRORS else ""
        )
        log.warning(
            "%s: skipped a packet that fails to decode (pts %s): %s%s", self.path, pts, error, more
        )

    def _nothing_decoded(self) -> str:
        found = "decoded 0"
        if self.corrupt_frames:
            found += f"; {self.corrupt_frames} packet(s) failed to decode: {self._decode_error}"
        if self.read_error:
            found += f"; reading failed: {self.read_error}"
        return f"'{self.path}': expected at least one video frame, {found}"

    def repairs(self) -> list[str]:
        """What was wrong with the input and repaired or skipped, one phrase each."""
        notes = []
        if self.clock.repaired:
            notes.append(
                f"timing repaired: {self.clock.repaired} frames had missing or out-of-order pts"
            )
        if self.clock.jumps:
            jumps, limit = self.clock.jumps, CLOCK_RESTART_S
            notes.append(f"{jumps} clock restart(s) closed (timestamp jumps over {limit} s)")
        if self.info.start_shift:
            notes.append(f"timestamps moved by {float(self.info.start_shift):.3f} s to start at 0")
        if self.corrupt_frames:
            notes.append(f"{self.corrupt_frames} packet(s) that failed to decode skipped")
        if self.damaged_frames:
            notes.append(f"{self.damaged_frames} frame(s) decoded with errors concealed")
        if self.read_error:
            notes.append(f"input ended early: {self.read_error}")
        return notes

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(path: str, container: Any, stream: Any) -> SourceInfo:
    """What the sink needs to know of the input, read from its headers."""
    cc = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or DEFAULT_FRAME_RATE
    tb = Fraction(stream.time_base or PTS_TIME_BASE)
    duration = None
    if stream.duration is not None:
        duration = float(stream.duration * tb)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    start = stream.start_time * tb if stream.start_time is not None else Fraction(0)
    return SourceInfo(
        path=path,
        format_name=container.format.name,
        width=cc.width,
        height=cc.height,
        time_base=tb,
        frame_rate=Fraction(rate),
        frames=int(stream.frames or 0),
        duration_s=duration,
        codec=cc.name,
        has_audio=bool(container.streams.audio),
        clock_restarts=bool(container.format.flags & av.format.Flags.ts_discont.value),
        start_shift=max(Fraction(0), -start),
    )


def _pts_step(time_base: Fraction, rate: Fraction) -> int:
    if not rate:
        return 1
    return max(1, round(1 / (time_base * rate)))
