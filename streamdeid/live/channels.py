"""Live channels and the latency clock: where a late frame is dropped, and how late is measured.

A :class:`LiveChannel` is the live policy's rule 4 (:mod:`streamdeid.live.policy`) in a queue:
once a stage's inbox has been full for its budget, the oldest frame waiting is dropped and
counted, so latency is set by the slowest stage's queue instead of the sum of all of them. Kept
apart from the pipeline that wires the channels (:mod:`streamdeid.live.runner`) and the stages
that read them (:mod:`streamdeid.live.stages`), which each have enough to say on their own.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from streamdeid.live.policy import queue_budget_s
from streamdeid.pipeline.stage import POLL_S, Channel
from streamdeid.types import EndOfStream, Frame

# --------------------------------------------------------------------------------------------------
# Clock. ``Frame.captured_at`` is the monotonic time the frame entered this process (decoded from
# the camera, or due, for a paced file); ``LiveFrame.wall_time`` is the same instant on the wall
# clock. Latency is measured on the monotonic clock, which NTP steps cannot skew.
# --------------------------------------------------------------------------------------------------


class LatencyClock:
    """Capture→now latency of a frame, in seconds.

    Args:
        capture_wallclock: optional ``frame -> time.time() of capture`` (e.g. from a camera's
            RTCP sender reports); when it returns a value, latency is measured on the wall
            clock from that instant, which then includes the network.
    """

    def __init__(self, capture_wallclock: Callable[[Frame], float | None] | None = None) -> None:
        self._wallclock = capture_wallclock

    def latency_s(self, frame: Frame) -> float:
        if self._wallclock is not None:
            wall = self._wallclock(frame)
            if wall is not None:
                return time.time() - wall
        return time.monotonic() - frame.captured_at


class LiveChannel(Channel):
    """A channel that, once full for ``budget_s``, makes room by dropping its *oldest* item.

    "Full for longer than the budget" is measured from the first put that found the queue full
    and is reset by the first put that finds room at once, so a short stall of the consumer is
    absorbed (the producer waits) and a consumer slower than the camera is not: after one
    budget, every put evicts the oldest waiting frame, counted through ``on_drop``. Evicting the
    oldest rather than refusing the newest is what bounds latency: the consumer always takes a
    frame that arrived at most ``maxsize`` frames ago, not one that has waited ``maxsize`` of
    its own slow turns. Order is kept, and :class:`EndOfStream` is never dropped.
    """

    def __init__(
        self,
        maxsize: int,
        budget_s: float,
        on_drop: Callable[[Any], None] | None = None,
        startup_s: float = 0.0,
        startup_budget_s: float = 0.0,
    ) -> None:
        super().__init__(maxsize)
        self.budget_s = budget_s
        self.on_drop = on_drop
        # The first seconds are slow once (encoder open, the model's first run at this frame
        # size): a longer budget then lets the backlog drain instead of dropping frames.
        self.startup_s = startup_s
        self.startup_budget_s = startup_budget_s
        self._first_put: float | None = None
        self.dropped = 0
        self._full_since: float | None = None
        # Channel keeps its queue private; this subclass adds eviction on top of it.
        self._queue: queue.Queue[Any] = self._q

    def put(self, item: Any) -> bool:
        if isinstance(item, EndOfStream):
            return super().put(item)
        try:
            self._queue.put(item, block=False)
            self._full_since = None
            if self._first_put is None:
                self._first_put = time.monotonic()
            return True
        except queue.Full:
            pass
        now = time.monotonic()
        if self._first_put is None:
            self._first_put = now
        if self._full_since is None:
            self._full_since = now
        budget = queue_budget_s(
            since_first_put_s=now - self._first_put,
            budget_s=self.budget_s,
            startup_s=self.startup_s,
            startup_budget_s=self.startup_budget_s,
        )
        deadline = self._full_since + budget
        while not self.reader_gone.is_set():
            left = deadline - time.monotonic()
            try:
                if left > 0:
                    self._queue.put(item, timeout=min(POLL_S, left))
                else:
                    self._queue.put(item, block=False)
                return True
            except queue.Full:
                if left > 0:
                    continue
            self._evict_oldest()
        return False

    def _evict_oldest(self) -> None:
        try:
            old = self._queue.get(block=False)
        except queue.Empty:
            return  # the consumer just took it: there is room now
        if isinstance(old, EndOfStream):  # cannot happen (nothing follows it); never lose it
            self._queue.put(old)
            return
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop(old)
