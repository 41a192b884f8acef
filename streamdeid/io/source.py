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

import av
import av.error
import numpy as np

from streamdeid.errors import InputNotFoundError, NotAVideoError, SourceError
from streamdeid.media import DEFAULT_FRAME_RATE, PTS_TIME_BASE
from streamdeid.types import Frame

log = logging.getLogger(__name__)

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

    Frames carry the container's own ``pts`` so the sink can write them back unchanged; frames
    without a pts (some AVI/raw streams) get one derived from their index and the frame rate.

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
            self._container.close()
            raise NotAVideoError(
                f"'{self.path}' has no video stream: expected a video or image, "
                f"found {len(self._container.streams)} non-video stream(s)"
            )
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame threading: decode on both cores
        cc = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate or DEFAULT_FRAME_RATE
        tb = self._stream.time_base or PTS_TIME_BASE
        duration = None
        if self._stream.duration is not None:
            duration = float(self._stream.duration * tb)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        self.info = SourceInfo(
            path=self.path,
            format_name=self._container.format.name,
            width=cc.width,
            height=cc.height,
            time_base=Fraction(tb),
            frame_rate=Fraction(rate),
            frames=int(self._stream.frames or 0),
            duration_s=duration,
            codec=cc.name,
            has_audio=bool(self._container.streams.audio),
        )
        if cc.width <= 0 or cc.height <= 0:
            self.close()
            raise NotAVideoError(
                f"'{self.path}': expected a video with a picture size, got {cc.width}x{cc.height}"
            )
        self.rotation: int = 0
        self.corrupt_frames = 0
        # Called with every demuxed packet before it is decoded (reversible masking keeps them).
        self.packet_hook: Callable[[av.Packet], None] | None = None

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
        """Yield every decodable frame in presentation order.

        Corrupt packets are logged and counted, not fatal: archived CCTV often has a damaged
        GOP, and dropping the file because of it would lose every other frame.
        """
        index = 0
        last_pts: int | None = None
        step = _pts_step(self.info.time_base, self.info.frame_rate)
        try:
            for packet in self._container.demux(self._stream):
                if self.packet_hook is not None and packet.size:
                    self.packet_hook(packet)
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as e:
                    self.corrupt_frames += 1
                    log.warning(
                        "%s: skipped a corrupt packet at pts %s (%s)", self.path, packet.pts, e
                    )
                    continue
                for vf in decoded:
                    if index == 0:
                        self.rotation = int(getattr(vf, "rotation", 0) or 0)
                    pts = vf.pts
                    if pts is None:
                        pts = 0 if last_pts is None else last_pts + step
                    last_pts = pts
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
            raise NotAVideoError(f"'{self.path}': expected at least one video frame, decoded 0")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pts_step(time_base: Fraction, rate: Fraction) -> int:
    if not rate:
        return 1
    return max(1, round(1 / (time_base * rate)))
