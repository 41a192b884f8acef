"""Reading part of a video: where it can be cut, and decoding from a keyframe on.

Batches split long files into chunks that run on different workers (:mod:`streamdeid.batch`).
Two things about the input make that possible, and both live here beside :class:`FileSource`:

* :func:`probe_packets` lists the video packets in decode order (pts, keyframe flag) without
  decoding anything, so the planner can find the keyframes where the file can be cut cleanly.
* :class:`ChunkSource` seeks to such a keyframe and yields frames from there with the index they
  have in the whole file, so the detector's schedule and the frames' pts are those of a
  whole-file run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import av.error

from streamdeid.errors import ChunkMismatchError, NotAVideoError, SourceError
from streamdeid.io.source import FileSource
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.types import Frame


@dataclass(frozen=True, slots=True)
class VideoPackets:
    """The video packets of a file in decode order (no pixels): what a cut plan is made from."""

    pts: list[int | None]
    keyframe: list[bool]
    time_base: Fraction
    frame_rate: Fraction


def probe_packets(path: str | os.PathLike[str]) -> VideoPackets:
    """Demux (not decode) the first video stream and list its packets.

    Raises:
        SourceError: the file cannot be opened or demuxed, or has no video stream.
    """
    src = os.fspath(path)
    try:
        with av.open(src) as container:
            if not container.streams.video:
                raise NotAVideoError(f"'{src}' has no video stream: expected a video")
            stream = container.streams.video[0]
            pts: list[int | None] = []
            keys: list[bool] = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                pts.append(packet.pts)
                keys.append(bool(packet.is_keyframe))
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FRAME_RATE
            time_base = Fraction(stream.time_base or 0)
    except av.error.FFmpegError as e:
        raise SourceError(f"cannot read the packets of '{src}': {e.strerror or e}") from e
    return VideoPackets(pts, keys, time_base, Fraction(rate))


class ChunkSource(FileSource):
    """A :class:`FileSource` that starts at a keyframe and numbers frames as the whole file does.

    Example:
        >>> with ChunkSource("in.mp4") as src:  # doctest: +SKIP
        ...     for frame in src.frames_from(250, 10_000, 375):
        ...         ...
    """

    @property
    def pts_shift(self) -> int:
        """What :class:`~streamdeid.io.pts.FrameClock` adds to every pts of the file (a video
        that starts before 0 is moved to 0): frames carry the packets' pts plus this."""
        return round(self.info.start_shift / self.info.time_base)

    def frames_from(self, first_index: int, first_pts: int, end_index: int) -> Iterator[Frame]:
        """Frames ``first_index`` .. ``end_index - 1`` of the file, with their indices in it.

        ``first_index`` must be a keyframe after which every frame has a packet pts of at least
        ``first_pts`` (a clean cut, see :func:`streamdeid.batch.plan.clean_cuts`). The seek may
        land on an earlier keyframe; frames before ``first_pts`` are then decoded and dropped.

        Raises:
            ChunkMismatchError: the frame at the cut does not carry ``first_pts`` (the file is
                not what the plan was made from).
            SourceError: the seek or the decoding failed.
        """
        if first_index > 0:
            try:
                self._container.seek(first_pts, stream=self._stream, backward=True)
            except av.error.FFmpegError as e:
                raise SourceError(
                    f"'{self.path}': cannot seek to pts {first_pts}: {e.strerror or e}"
                ) from e
        index, expected = first_index, first_pts + self.pts_shift
        for frame in self.frames():
            if frame.pts is None or frame.pts < expected:
                continue
            if index == first_index and frame.pts != expected:
                raise ChunkMismatchError(
                    f"'{self.path}': expected frame {first_index} at pts {expected} after "
                    f"seeking, decoded pts {frame.pts}"
                )
            if index >= end_index:
                return
            yield replace(frame, index=index)
            index += 1
