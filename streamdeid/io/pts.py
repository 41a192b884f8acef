"""Timestamps that rise: the one timing rule for every frame and packet streamdeid writes.

Encoders and muxers reject a pts that repeats or goes back, and such a frame would end the
recording. It happens with live input: a camera whose clock restarts after a reconnect, or two
frames timed into the same tick. Every sink therefore passes its pts through :class:`RisingPts`
instead of carrying its own variant of the rule.

Files bring the same problem from the other side. AVI keeps no presentation times, so H.264
with B-frames decodes with its timestamps out of order; raw and damaged streams have frames with
no time at all; MPEG-TS recordings joined end to end restart their clock. :class:`FrameClock`
derives each decoded frame's time the way FFmpeg does (the frame's pts, else its best-effort
timestamp from the packet dts, else the previous time plus one frame) and then applies
:class:`RisingPts`; the file sink's audio copy applies the same :class:`RisingPts` to its
packets, so both streams are repaired by one rule and stay together.
"""

from __future__ import annotations

from fractions import Fraction

# A jump this big in a format whose clock may restart (MPEG-TS and -PS, DVR formats) is a new
# recording joined on, not a pause: FFmpeg's dts_delta_threshold.
CLOCK_RESTART_S = 10


def jump_limit(time_base: Fraction, clock_restarts: bool) -> int | None:
    """The largest rise, in ``time_base`` ticks, kept as a real gap; None keeps every gap.

    Only formats whose clock may restart get a limit: in MP4 or MKV a long gap is a recording
    that paused, and it is kept.
    """
    if not clock_restarts or not time_base:
        return None
    return max(1, round(CLOCK_RESTART_S / time_base))


class RisingPts:
    """Restamps a pts that does not rise to one step after the previous one.

    The step is the shortest rise seen so far (1 before any was seen): dropped frames make some
    rises longer, the shortest one is the stream's frame interval, so a restamped run of frames
    goes on at the stream's own rate instead of being squeezed into consecutive ticks. A caller
    that knows the duration of the previous frame or packet may pass it as ``step`` instead.

    With ``max_jump``, a jump of more than that many ticks either way is a clock restart: the
    stream goes on one step after the previous pts, and every later pts is moved by the same
    amount (counted in :attr:`jumps`). ``offset`` is added to every pts from the start (a
    stream that begins at a negative time is moved to begin at 0). A missing pts (None) is one
    step after the previous one (counted in :attr:`filled`).

    Example:
        >>> rise = RisingPts()
        >>> [rise(p) for p in (0, 3600, 7200, 0, 3600)]
        [0, 3600, 7200, 10800, 14400]
        >>> rise.restamped
        2
        >>> rejoin = RisingPts(max_jump=90_000)
        >>> [rejoin(p) for p in (0, 3600, 900_000, 903_600, 7200)]
        [0, 3600, 7200, 10800, 14400]
        >>> rejoin.jumps
        2
    """

    def __init__(self, max_jump: int | None = None, offset: int = 0) -> None:
        self.last: int | None = None
        self.step: int | None = None
        self.max_jump = max_jump
        self.offset = offset
        self.restamped = 0  # how many pts were replaced
        self.jumps = 0  # clock restarts closed
        self.filled = 0  # missing pts given one

    def __call__(self, pts: int | None, step: int | None = None) -> int:
        """``pts`` if it rises above the previous one, else the previous one plus a step."""
        last = self.last
        next_pts = self.offset if last is None else last + (step or self.step or 1)
        if pts is None:
            self.filled += 1
            pts = next_pts
        elif last is None:
            pts += self.offset
        elif self.max_jump is not None and abs(pts + self.offset - last) > self.max_jump:
            self.jumps += 1
            self.offset = next_pts - pts
            pts = next_pts
        elif pts + self.offset <= last:
            self.restamped += 1
            pts = next_pts
        else:
            pts += self.offset
            rise = pts - last
            self.step = rise if self.step is None else min(self.step, rise)
        self.last = pts
        return pts


class BestEffortPts:
    """FFmpeg's best-effort timestamp of a decoded frame (``guess_correct_pts``, libavcodec).

    A frame's pts is used while it rises at least as reliably as the dts of the packets; once
    the pts went back more often than the dts (AVI stores only decode order, so H.264 with
    B-frames decodes with its pts permuted), the dts is used. None when the frame has neither.
    PyAV does not expose FFmpeg's own value, so this is the same rule written out.

    Example:
        >>> guess = BestEffortPts()
        >>> [guess(p, d) for p, d in [(1, 2), (2, 3), (4, 4), (3, 5), (5, 6), (None, None)]]
        [1, 2, 4, 5, 6, None]
    """

    def __init__(self) -> None:
        self.faulty_pts = 0
        self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts


class FrameClock:
    """The time of each decoded frame of a file: FFmpeg's best effort, then made to rise.

    Counts what it repaired: :attr:`repaired` frames whose own pts was missing or out of order
    (given the dts, one frame after the previous time, or pushed forward), and :attr:`jumps`
    (clock restarts closed).

    Example:
        >>> clock = FrameClock(frame_step=1)
        >>> [clock(p, d) for p, d in [(1, 2), (2, 3), (4, 4), (3, 5), (5, 6), (None, None)]]
        [1, 2, 4, 5, 6, 7]
        >>> clock.repaired
        3
    """

    def __init__(self, frame_step: int, max_jump: int | None = None, offset: int = 0) -> None:
        self.frame_step = max(1, frame_step)
        self._guess = BestEffortPts()
        self._rising = RisingPts(max_jump, offset)
        self.repaired = 0

    @property
    def jumps(self) -> int:
        return self._rising.jumps

    def __call__(self, pts: int | None, dts: int | None, duration: int = 0) -> int:
        """The time of a frame with this pts, packet dts and duration (0 when unknown)."""
        guess = self._guess(pts, dts)
        restamped = self._rising.restamped
        out = self._rising(guess, (duration or self.frame_step) if guess is None else None)
        if pts is None or guess != pts or self._rising.restamped != restamped:
            self.repaired += 1
        return out
