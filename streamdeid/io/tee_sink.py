"""One encode, several live outputs: recording segments and an RTSP push from the same packets.

Encoding is the most expensive step after detection; a camera recorded and streamed at once must
not pay for it twice, and both outputs then show exactly the same pictures.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamdeid.errors import ConfigError
from streamdeid.io.frame_sink import FrameSink
from streamdeid.io.live_encoder import Fanout, LiveSink
from streamdeid.io.sink import EncoderSettings
from streamdeid.types import Frame


class TeeSink(FrameSink):
    """Encode once, write to several live sinks (e.g. segments and an RTSP push).

    The encoder settings are ``settings``, else the first sink's. The members' own settings,
    frame rates and GOPs are then ignored, except that the GOP is the shortest member's. A
    member that fails is counted in ``errors[name]`` and skipped for that packet, and retries
    by itself: the next segment, or the next RTSP connection. Only a packet that no member
    could take raises :class:`SinkError`.

    Example:
        >>> rec = SegmentSink("rec/", segment_time_s=600, prefix="cam1")  # doctest: +SKIP
        >>> push = RtspSink("rtsp://127.0.0.1:8554/cam1-anon")  # doctest: +SKIP
        >>> with TeeSink([rec, push]) as tee:  # doctest: +SKIP
        ...     tee.write(frame)
    """

    def __init__(self, sinks: Sequence[LiveSink], settings: EncoderSettings | None = None) -> None:
        if not sinks:
            raise ConfigError("TeeSink: expected at least one sink, got none")
        for sink in sinks:
            if not isinstance(sink, LiveSink):
                raise ConfigError(
                    f"TeeSink: expected SegmentSink or RtspSink members, got {type(sink).__name__}"
                )
            if sink.fanout is not None or sink.in_tee:
                raise ConfigError(f"TeeSink: {sink.name} is already in use")
            sink.in_tee = True
        self.sinks = list(sinks)
        self.name = ", ".join(s.name for s in self.sinks)
        first = sinks[0]
        self._fanout = Fanout(
            self.sinks,
            settings or first.settings,
            first.frame_rate,
            min(s.gop_s for s in sinks),
            isolate=True,
        )

    @property
    def errors(self) -> dict[str, int]:
        return self._fanout.errors

    @property
    def frames_written(self) -> int:
        return self._fanout.frames_written

    def packet_drops(self) -> dict[str, int]:
        return {name: n for sink in self.sinks for name, n in sink.packet_drops().items()}

    def write(self, frame: Frame) -> None:
        """Encode ``frame`` once and hand its packets to every member."""
        self._fanout.write(frame)

    def close(self) -> None:
        """Flush the one encoder into every sink, then close them all; safe to call twice."""
        self._fanout.close()
