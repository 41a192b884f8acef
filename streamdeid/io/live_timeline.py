"""How a live source stamps its frames: one rising pts timeline across every reconnect.

A camera that reconnects starts its clock again, or jumps it back; a consumer (the encoder, a
segment muxer) needs pts that only rise and keep measuring real time. :class:`Timeline` is that
rule, kept out of the reader thread (:mod:`streamdeid.io.live_source`) so it reads, and is
tested, as arithmetic on numbers: the reader passes in the clock readings it took.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from streamdeid.io.source import SourceInfo
from streamdeid.media import DEFAULT_FRAME_RATE, PTS_TIME_BASE
from streamdeid.types import Frame


@dataclass(frozen=True, slots=True)
class LiveFrame(Frame):
    """A :class:`Frame` that also knows when it was captured on the wall clock.

    ``captured_at`` (inherited) is ``time.monotonic()`` when the frame was decoded, or when it
    was due for a file played in real time. Use it for latency inside this process. ``wall_time``
    is ``time.time()`` at that same instant (UTC seconds since the epoch). Use it for names and
    logs that people read, such as segment file names.
    """

    wall_time: float


def stream_time_base(stream: Any) -> Fraction:
    """The stream's pts unit (PyAV leaves it None for some raw inputs)."""
    return Fraction(stream.time_base or PTS_TIME_BASE)


def stream_rate(stream: Any, fallback: Fraction = DEFAULT_FRAME_RATE) -> Fraction:
    """The stream's frame rate as FFmpeg guessed it, else its average, else ``fallback``."""
    return Fraction(stream.guessed_rate or stream.average_rate or fallback)


def stream_info(container: Any, stream: Any, name: str, *, live: bool) -> SourceInfo:
    """What the first connection looks like; its time base becomes the source's for good.

    A live stream has no length: ``frames`` is 0 and ``duration_s`` None.
    """
    cc = stream.codec_context
    in_tb = stream_time_base(stream)
    duration = None
    if not live and stream.duration is not None:
        duration = float(stream.duration * in_tb)
    return SourceInfo(
        path=name,
        format_name=container.format.name,
        width=cc.width,
        height=cc.height,
        time_base=in_tb,
        frame_rate=stream_rate(stream),
        frames=0 if live else int(stream.frames or 0),
        duration_s=duration,
        codec=cc.name,
        has_audio=bool(container.streams.audio),
    )


class Timeline:
    """Maps every connection's pts onto one timeline in ``time_base`` that never goes back.

    Each run of pts (a new connection, or the camera's clock jumping back) is anchored after the
    last frame delivered, by the wall-clock time the source was away and at least one frame
    period, so pts keep measuring real time. Within a run, pts follow the input's, converted to
    ``time_base`` and forced to rise by at least 1.

    Example:
        >>> t = Timeline(Fraction(1, 90000))
        >>> t.begin(Fraction(1, 90000), Fraction(25))
        >>> t.place(3600, now=0.0), t.place(7200, now=0.04)
        (0, 3600)
    """

    def __init__(self, time_base: Fraction) -> None:
        self.time_base = time_base
        self.last_pts: int | None = None  # last pts handed out
        self.last_at: float | None = None  # monotonic time of that frame
        self._in_tb = time_base
        self._step_in = 1
        self._step_out = 1
        self._anchor_in: int | None = None  # first input pts of this run, and where it maps to
        self._anchor_out = 0
        self._prev_in: int | None = None

    def begin(self, in_tb: Fraction, rate: Fraction) -> None:
        """A new connection: its pts are in ``in_tb`` at ``rate`` frames per second."""
        self._in_tb = in_tb
        self._step_out = max(1, round(1 / (self.time_base * rate)))
        self._step_in = max(1, round(1 / (in_tb * rate)))
        self._anchor_in, self._anchor_out, self._prev_in = None, 0, None

    def place(self, pts_in: int | None, now: float) -> int:
        """The output pts of a decoded frame with input pts ``pts_in``, read at ``now``.

        ``pts_in`` None (RTSP gives none until the first RTCP report) counts one frame period
        on from the previous frame.
        """
        if pts_in is None:
            pts_in = 0 if self._prev_in is None else self._prev_in + self._step_in
        if self._anchor_in is None or (self._prev_in is not None and pts_in < self._prev_in):
            # New connection, or the camera's clock jumped back: re-anchor.
            self._anchor_in, self._anchor_out = pts_in, self._next_base(now)
        self._prev_in = pts_in
        pts = self._anchor_out + round((pts_in - self._anchor_in) * self._in_tb / self.time_base)
        if self.last_pts is not None:
            pts = max(pts, self.last_pts + 1)
        return pts

    def delivered(self, pts: int, at: float) -> None:
        """The frame stamped ``pts`` was handed out at monotonic time ``at``."""
        self.last_pts, self.last_at = pts, at

    def _next_base(self, now: float) -> int:
        """Where a new run of pts starts: after the last frame, by the wall time away."""
        if self.last_pts is None or self.last_at is None:
            return 0
        away = round((now - self.last_at) / self.time_base)
        return self.last_pts + max(self._step_out, away)
