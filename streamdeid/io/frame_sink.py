"""The one interface every output implements, so the stages that write frames never ask which.

A file (:class:`~streamdeid.io.sink.VideoSink`), rolling segments
(:class:`~streamdeid.io.segment_sink.SegmentSink`), an RTSP publisher
(:class:`~streamdeid.io.rtsp_sink.RtspSink`), a tee that encodes once for several of them
(:class:`~streamdeid.io.tee_sink.TeeSink`) and a group of independent outputs
(:class:`SinkGroup`) all behave the same way:

* they open lazily, on the first :meth:`FrameSink.write`: a live source knows its size and time
  base only once it delivered a frame;
* pts that do not rise are restamped (:class:`~streamdeid.io.pts.RisingPts`), never rejected;
* :meth:`FrameSink.close` flushes the encoder and writes trailers, so an interrupted run still
  leaves a playable output; it is safe to call twice, and the context manager calls it;
* a write after close raises :class:`~streamdeid.errors.SinkError`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Self

from streamdeid.errors import SinkError
from streamdeid.types import Frame

log = logging.getLogger(__name__)


class FrameSink(ABC):
    """Something masked frames are written to. See the module docstring for the contract."""

    name: str = "output"  # for messages: a path, or a URL without its credentials
    frames_written: int = 0

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """Encode and write one frame; the first one opens the output."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish the output so it plays; safe to call twice."""

    def packet_drops(self) -> dict[str, int]:
        """Encoded packets not sent so far, by output name; only outputs that may drop are named.

        Files and segments never drop (they get every packet); an RTSP publisher may (policy
        rule 5). Asked from other threads (stats, ``/metrics``), so it only reads counters.
        """
        return {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SinkGroup(FrameSink):
    """Writes every frame to each of several sinks; closes all of them even when one fails.

    Unlike a tee, every member keeps its own encoder: a plain file is encoded with its own
    settings, next to the shared live encode of segments and RTSP.
    """

    def __init__(self, sinks: Sequence[FrameSink]) -> None:
        self.sinks = list(sinks)
        self.name = ", ".join(s.name for s in self.sinks)
        self.frames_written = 0
        self._closed = False

    def write(self, frame: Frame) -> None:
        if self._closed:
            raise SinkError(f"{self.name}: write after close")
        for sink in self.sinks:
            sink.write(frame)
        self.frames_written += 1

    def packet_drops(self) -> dict[str, int]:
        return {name: n for sink in self.sinks for name, n in sink.packet_drops().items()}

    def close(self) -> None:
        """Close every member, then raise the first error any of them raised."""
        self._closed = True
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # noqa: BLE001 - re-raised below, after closing the rest
                errors.append(e)
        if errors:
            raise errors[0]
