"""Decoding a video stream from packets held in memory, to the very pixels a file source gives.

Reversible masking can keep the input's own packets (:mod:`streamdeid.crypto.source`); restoring
from them must reproduce, bit for bit, the frames the anonymizer decoded. So this decodes the way
:class:`~streamdeid.io.source.FileSource` does: the same decoder with the stream's extradata, one
thread, corrupt packets skipped, and the same ``bgr24`` conversion. Nothing touches disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

import av
import numpy as np

from streamdeid.errors import SourceError

log = logging.getLogger(__name__)


class StreamParamsLike(Protocol):
    codec: str
    extradata: bytes
    width: int
    height: int
    first_frame: int  # -1, or: open a new decoder here, its first frame has this index


class PacketLike(Protocol):
    pts: int | None
    dts: int | None
    data: bytes


class PacketRun(Protocol):
    params: StreamParamsLike
    packets: list[PacketLike]


def stream_params(stream: av.video.stream.VideoStream) -> tuple[str, bytes, int, int]:
    """(codec name, extradata, width, height) of a demuxed stream: what :func:`decode_runs`
    needs to decode its packets without the container."""
    cc = stream.codec_context
    return cc.name, bytes(cc.extradata or b""), cc.width, cc.height


def decode_runs(runs: Iterable[PacketRun]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, (H, W, 3) uint8 BGR image) of the packets in ``runs``, in presentation
    order, numbered as the anonymizer numbered them.

    A run whose ``first_frame`` is set starts a new decoder, as the anonymizer did after a
    reconnect: what the old one still holds is flushed, up to that index (the anonymizer's old
    decoder may have lost the rest with its connection), and numbering resumes there.

    Raises:
        SourceError: The codec is unknown to this FFmpeg, or decoding fails outright.
    """
    decoder: av.CodecContext | None = None
    index = 0
    for run in runs:
        restart = run.params.first_frame
        if decoder is None or restart >= 0:
            if decoder is not None:
                for image in _decode(decoder, None):
                    if index < restart:
                        yield index, image
                        index += 1
            index = max(index, restart)
            decoder = _open_decoder(run.params)
        for p in run.packets:
            packet = av.Packet(p.data)
            packet.pts, packet.dts = p.pts, p.dts
            for image in _decode(decoder, packet):
                yield index, image
                index += 1
    if decoder is not None:
        for image in _decode(decoder, None):
            yield index, image
            index += 1


def _open_decoder(params: StreamParamsLike) -> av.CodecContext:
    try:
        decoder = av.CodecContext.create(params.codec, "r")
    except (av.error.FFmpegError, ValueError) as e:
        raise SourceError(f"cannot decode the kept source: codec '{params.codec}' ({e})") from e
    if params.extradata:
        decoder.extradata = params.extradata
    decoder.width, decoder.height = params.width, params.height
    decoder.thread_count = 1  # the one way damage is concealed alike every time (SourceKeeper)
    return decoder


def _decode(decoder: av.CodecContext, packet: av.Packet | None) -> Iterator[np.ndarray]:
    try:
        frames = decoder.decode(packet)
    except av.error.MemoryError as e:
        raise SourceError(f"decoding the kept source failed: {e.strerror or e}") from e
    except av.error.FFmpegError as e:
        # FileSource skips a packet that fails to decode the same way (whatever the error), so
        # the frame count still agrees.
        log.warning("kept source: skipped a packet that fails to decode (%s)", e)
        return
    for vf in frames:
        yield np.ascontiguousarray(vf.to_ndarray(format="bgr24"))
