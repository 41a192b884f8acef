"""Originals kept as the input's own compressed video packets, instead of one crop per region.

Measured on the dev clips (``benchmarks/reversible.py``), a crop per region and frame costs 44-104x
the masked video as PNG and 16-37x as JPEG; crops encoded per track as H.264 4:4:4 at ~40 dB
still cost 1.6-7x, and 3-13 ms of CPU per crop. The input's packets cost what the input costs
(0.9-1.4x the masked video on the same clips), no CPU beyond AES, and decode to exactly the frames
the anonymizer saw, so the restore is bit-exact. They hold whole frames, so they are encrypted
under a key derived from the content key only: a full-key reviewer restores from them; a grant
holder gets a package with its track's crops cut from them (:mod:`streamdeid.grant_package`).

Packets are sealed in runs that start at a keyframe, or after :data:`MAX_RUN_PACKETS` packets or
:data:`MAX_RUN_BYTES` (long-GOP cameras, single-GOP files), so a killed writer loses at most the
run in progress (~1 s). Runs are decoded in order; one that starts at a keyframe is a place a
reader could start.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Codecs whose packets are worth keeping: inter-frame codecs, where a packet costs a fraction of
# a crop. Intra-only input (MJPEG webcams, raw video) keeps the per-region crops instead.
COPYABLE_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video"}
)
MAX_RUN_BYTES = 4 << 20  # seal a run at this size even without a keyframe (long-GOP cameras)
# ... and at this many packets (1 s at 25 fps): about what a killed writer can lose at most.
MAX_RUN_PACKETS = 25
MAX_CODEC_NAME = 32
MAX_EXTRADATA = 1 << 20
NO_PTS = -(1 << 63)  # stored for a packet without pts or dts

_PARAMS = struct.Struct(">IIIIq")  # width, height, time_base num, den, first frame (-1: none)
_PACKET = struct.Struct(">qqBI")  # pts, dts, 1 if keyframe, size
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a decoder needs besides the packets: codec, its extradata (SPS/PPS), picture size.

    ``first_frame`` is -1, except on the run where the anonymizer opened a new decoder (a live
    camera reconnected): there a reader opens a new decoder too, and numbers its first frame
    so, whatever the old decoder still held.
    """

    codec: str
    extradata: bytes
    width: int
    height: int
    tb_num: int
    tb_den: int
    first_frame: int = -1


@dataclass(frozen=True, slots=True)
class SourcePacket:
    pts: int | None
    dts: int | None
    keyframe: bool
    data: bytes


def pack_run(params: StreamParams, packets: list[SourcePacket]) -> bytes:
    """Plaintext of one run: the stream parameters (every run decodes on its own), then packets."""
    name = params.codec.encode()
    parts = [bytes([len(name)]), name, _U32.pack(len(params.extradata)), params.extradata]
    parts.append(
        _PARAMS.pack(params.width, params.height, params.tb_num, params.tb_den, params.first_frame)
    )
    for p in packets:
        pts = NO_PTS if p.pts is None else p.pts
        dts = NO_PTS if p.dts is None else p.dts
        parts.append(_PACKET.pack(pts, dts, int(p.keyframe), len(p.data)))
        parts.append(p.data)
    return b"".join(parts)


def unpack_run(plain: bytes, n_packets: int) -> tuple[StreamParams, list[SourcePacket]]:
    """Inverse of :func:`pack_run`, checking every length against what is left.

    Raises:
        ValueError: The plaintext is not what :func:`pack_run` writes for ``n_packets`` packets.
    """
    view = memoryview(plain)
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(view):
            raise ValueError(f"expected {n} more bytes at byte {pos}, but {len(view) - pos} remain")
        pos += n
        return bytes(view[pos - n : pos])

    name_len = take(1)[0]
    if not 0 < name_len <= MAX_CODEC_NAME:
        raise ValueError(f"expected a codec name of 1 to {MAX_CODEC_NAME} bytes, got {name_len}")
    codec = take(name_len).decode("ascii", errors="replace")
    (extra_len,) = _U32.unpack(take(_U32.size))
    if extra_len > MAX_EXTRADATA:
        raise ValueError(f"expected at most {MAX_EXTRADATA} bytes of extradata, got {extra_len}")
    extradata = take(extra_len)
    params = StreamParams(codec, extradata, *_PARAMS.unpack(take(_PARAMS.size)))
    packets = []
    for _ in range(n_packets):
        pts, dts, key, size = _PACKET.unpack(take(_PACKET.size))
        packets.append(
            SourcePacket(
                None if pts == NO_PTS else pts,
                None if dts == NO_PTS else dts,
                bool(key),
                take(size),
            )
        )
    if pos != len(view):
        raise ValueError(f"expected {n_packets} packets, but {len(view) - pos} bytes follow them")
    return params, packets


class RunBuffer:
    """Collects packets until a run is due: at the next keyframe, or at :data:`MAX_RUN_BYTES`."""

    def __init__(self) -> None:
        self.packets: list[SourcePacket] = []
        self.size = 0
        self.first_index = 0  # index, in the whole stream, of the first buffered packet

    def due(self, packet: SourcePacket) -> bool:
        """Whether the buffer must be sealed before ``packet`` joins it."""
        if not self.packets:
            return False
        return (
            packet.keyframe
            or len(self.packets) >= MAX_RUN_PACKETS
            or self.size + len(packet.data) > MAX_RUN_BYTES
        )

    def add(self, packet: SourcePacket) -> None:
        self.packets.append(packet)
        self.size += len(packet.data)

    def take(self) -> tuple[int, list[SourcePacket]]:
        """The buffered run (first packet index, packets); the buffer starts the next run."""
        run, first = self.packets, self.first_index
        self.first_index += len(run)
        self.packets, self.size = [], 0
        return first, run
