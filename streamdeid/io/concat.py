"""Join separately encoded parts of one video into a file, without re-encoding.

A batch encodes the chunks of a long file on different workers (:mod:`streamdeid.batch`), each
into its own file with the same encoder settings. :func:`join_parts` copies their video packets,
in order, into one output and copies the audio of the original input beside them, interleaved
by time as :class:`~streamdeid.io.sink.VideoSink` does. Each part starts with a keyframe (every
encoder starts with one), so the joined stream decodes from any part's start. The parts must
share their codec headers (``extradata``): one stream can carry only one set, and parts encoded
with the same settings and size have the same. A part that does not is refused, never joined.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from streamdeid.errors import SinkError
from streamdeid.io.sink import _AudioCopier, _mux_options
from streamdeid.io.source import FileSource, SourceInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Joined:
    """What :func:`join_parts` wrote: video packets per part, and the pts of all of them."""

    packets: list[int]
    pts: list[int]


def join_parts(
    parts: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    audio_from: str | None = None,
    audio: str = "copy",
    container_format: str | None = None,
) -> Joined:
    """Remux the video of ``parts`` into ``output`` (one stream, no re-encoding).

    Args:
        parts: the part files, in presentation order; their pts must rise from part to part.
        output: the joined file (its extension, or ``container_format``, picks the container).
        audio_from: the original input, whose audio is copied beside the video (``audio`` as
            :class:`~streamdeid.io.sink.EncoderSettings` says: copy, reencode or drop).
        container_format: FFmpeg format name, for an output name without a telling extension.

    Raises:
        SinkError: a part has no video, other codec headers than the first, or pts that do not
            follow the part before it; or the output cannot be written.
    """
    if not parts:
        raise SinkError(f"'{output}': expected at least one part to join, got none")
    dst = os.fspath(output)
    info: SourceInfo | None = None
    if audio_from and audio != "drop":
        with FileSource(audio_from) as source:  # how its audio is timed, as VideoSink sees it
            info = source.info
    try:
        with av.open(dst, mode="w", format=container_format, options=_mux_options(dst)) as out:
            return _copy_parts([os.fspath(p) for p in parts], out, dst, audio_from, info, audio)
    except av.error.FFmpegError as e:
        raise SinkError(f"'{dst}': joining {len(parts)} parts failed: {e.strerror or e}") from e


def _copy_parts(
    parts: list[str],
    out: Any,
    dst: str,
    audio_from: str | None,
    info: SourceInfo | None,
    audio: str,
) -> Joined:
    stream: Any = None
    headers: tuple[Any, bytes] | None = None  # the first part's time base and extradata
    copier: _AudioCopier | None = None
    last_dts: int | None = None
    counts: list[int] = []
    all_pts: list[int] = []
    try:
        for part in parts:
            with av.open(part) as src:
                if not src.streams.video:
                    raise SinkError(f"part '{part}': expected a video stream, found none")
                ins = src.streams.video[0]
                mine = (ins.time_base, bytes(ins.codec_context.extradata or b""))
                if headers is None:
                    headers = mine
                    stream = out.add_stream_from_template(ins)
                    if audio_from and info is not None:
                        suffix = Path(dst).suffix.lower()
                        copier = _AudioCopier.open(audio_from, out, audio, suffix, info)
                elif mine != headers:
                    raise SinkError(
                        f"part '{part}': expected the codec headers and time base of the "
                        "first part (same encoder settings), found others"
                    )
                n, last_dts = _copy_packets(src, ins, stream, out, copier, last_dts, all_pts)
                counts.append(n)
        if copier is not None:
            copier.mux_until(float("inf"))
    finally:
        if copier is not None:
            copier.close()
    return Joined(counts, all_pts)


def _copy_packets(
    src: Any,
    ins: Any,
    stream: Any,
    out: Any,
    copier: _AudioCopier | None,
    last_dts: int | None,
    all_pts: list[int],
) -> tuple[int, int | None]:
    """Copy one part's video packets; returns how many and the last dts (in ``ins`` time)."""
    first_pts = max(all_pts) if all_pts else None
    n = 0
    for packet in src.demux(ins):
        if packet.size == 0 or packet.pts is None:
            continue
        if first_pts is not None and n == 0 and packet.pts <= first_pts:
            raise SinkError(
                f"part '{src.name}': expected pts after {first_pts}, its first packet has "
                f"{packet.pts}"
            )
        if packet.dts is None:  # Matroska keeps no decode times: any rising dts <= pts does
            packet.dts = packet.pts if last_dts is None else min(packet.pts, last_dts + 1)
        if last_dts is not None and packet.dts <= last_dts:
            # A part's first packets are decoded before they are shown (B-frames), so their
            # dts may reach back into the previous part; nudge them forward, never past pts.
            packet.dts = min(last_dts + 1, packet.pts)
            if packet.dts <= last_dts:
                raise SinkError(
                    f"part '{src.name}': expected room for its decode times after the part "
                    f"before, found none at pts {packet.pts}"
                )
        last_dts = packet.dts
        all_pts.append(packet.pts)
        if copier is not None:
            copier.mux_until(float(packet.pts * packet.time_base))
        packet.stream = stream
        out.mux(packet)
        n += 1
    return n, last_dts


def video_pts(path: str | os.PathLike[str]) -> list[int]:
    """The pts of every video packet of ``path``, in presentation order (no decoding)."""
    with av.open(os.fspath(path)) as c:
        return sorted(p.pts for p in c.demux(c.streams.video[0]) if p.size and p.pts is not None)
