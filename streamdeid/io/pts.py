"""Timestamps that rise: the one rule every sink applies before a frame reaches its encoder.

Encoders and muxers reject a pts that repeats or goes back, and such a frame would end the
recording. It happens with live input: a camera whose clock restarts after a reconnect, or two
frames timed into the same tick. Every sink therefore passes its pts through :class:`RisingPts`
instead of carrying its own variant of the rule.
"""

from __future__ import annotations


class RisingPts:
    """Restamps a pts that does not rise to one step after the previous one.

    The step is the shortest rise seen so far (1 before any was seen): dropped frames make some
    rises longer, the shortest one is the stream's frame interval, so a restamped run of frames
    goes on at the stream's own rate instead of being squeezed into consecutive ticks.

    Example:
        >>> rise = RisingPts()
        >>> [rise(p) for p in (0, 3600, 7200, 0, 3600)]
        [0, 3600, 7200, 10800, 14400]
        >>> rise.restamped
        2
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.step: int | None = None
        self.restamped = 0  # how many pts were replaced

    def __call__(self, pts: int) -> int:
        """``pts`` if it rises above the previous one, else the previous one plus a step."""
        last = self.last
        if last is not None and pts <= last:
            self.restamped += 1
            pts = last + (self.step or 1)
        elif last is not None:
            rise = pts - last
            self.step = rise if self.step is None else min(self.step, rise)
        self.last = pts
        return pts
