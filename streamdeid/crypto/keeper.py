"""Feeding a source's compressed packets to the sidecars that keep them as originals.

One piece for files and cameras: :class:`SourceKeeper` hooks into a
:class:`~streamdeid.io.source.FileSource` (one stream, from frame 0) or a
:class:`~streamdeid.io.live_source.LiveSource` (a new decoder on every reconnect), checks that
the codec is worth keeping (:data:`~streamdeid.crypto.source.COPYABLE_CODECS`), and hands every
demuxed packet to each writer. Input in another codec keeps per-region crops instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Protocol

from streamdeid.crypto.source import COPYABLE_CODECS, SourcePacket, StreamParams
from streamdeid.io.packet_decoder import stream_params

log = logging.getLogger(__name__)


class PacketKeeper(Protocol):
    """What keeps packets: a :class:`SidecarWriter`, or a buffer in front of several."""

    def begin_source(self, params: StreamParams, first_frame: int = 0) -> None: ...

    def write_packet(self, packet: SourcePacket) -> None: ...


class SourceKeeper:
    """Hands a source's packets, and its reconnects, to the sidecar writers.

    Args:
        writers: The sidecars to keep the packets in (one per output file).
        on_keep: Called once packets are kept (live: stop copying crops).
    """

    def __init__(
        self, writers: list[PacketKeeper], on_keep: Callable[[], None] | None = None
    ) -> None:
        self.writers = writers
        self.on_keep = on_keep
        self.keeping = False

    def attach(self, source: Any) -> None:
        """Hook into a LiveSource (before it connects) or a FileSource (before its first
        frame)."""
        if hasattr(source, "connect_hook"):
            source.connect_hook = self.connected
        else:
            self.connected(source.stream, 0)
        source.packet_hook = self.packet

    def connected(self, stream: Any, first_index: int) -> None:
        """A new connection, hence a new decoder whose first frame gets ``first_index``."""
        codec, extradata, width, height = stream_params(stream)
        if codec not in COPYABLE_CODECS:
            if self.keeping:
                log.warning("the source now sends %s; its packets are still kept", codec)
            else:
                log.info("reversible: %s input keeps per-region crops (not inter-frame)", codec)
                return
        # FFmpeg conceals a damaged packet differently with frame threads (3 distinct results in
        # 15 decodes of a corrupt MPEG-TS) and with slice threads (differs from one thread);
        # reveal must decode the very pixels that were masked, so the kept stream is decoded by
        # one thread on both sides (io/packet_decoder.py). Same CPU per frame (measured).
        stream.codec_context.thread_count = 1
        tb = Fraction(stream.time_base or Fraction(1, 90000))
        params = StreamParams(codec, extradata, width, height, tb.numerator, tb.denominator)
        for writer in self.writers:
            writer.begin_source(params, first_index)
        if not self.keeping and self.on_keep is not None:
            self.on_keep()
        self.keeping = True

    def packet(self, packet: Any) -> None:
        if not self.keeping:
            return
        kept = SourcePacket(packet.pts, packet.dts, packet.is_keyframe, bytes(packet))
        for writer in self.writers:
            writer.write_packet(kept)
