"""The queue between a live source's reader thread and its consumer (policy rule 4's first step).

A camera cannot be paused: when the consumer is behind, the reader drops the *oldest* waiting
frame and counts it, so the socket is always read and what gets through is the freshest. A file
can wait, and never drops. The same queue carries the reader's end: a clean end or the error
that stopped it, which must reach a consumer still reading even when the queue is full.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from streamdeid.live.policy import hand_over

_POLL_S = 0.1  # how often a waiting put re-checks the stop event


class Failure:
    """Carries the reader thread's exception to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


END = object()  # the reader is done: the stream or file ended, or it was stopped


class HandOver:
    """A bounded queue that drops its oldest item for a live source instead of blocking.

    ``stopped`` is polled while a put waits, so a reader never outlives a stop by more than
    about 0.1 s. ``dropped`` counts the frames evicted; it is read from other threads, and
    only the reader writes it.
    """

    def __init__(self, size: int, *, live: bool, stopped: Callable[[], bool]) -> None:
        self.live = live
        self.dropped = 0
        self._stopped = stopped
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)

    def put(self, frame: Any) -> None:
        """Hand ``frame`` over: a camera never waits (it evicts), a file waits for room."""
        while not self._stopped():
            if hand_over(live=self.live, queue_full=self._queue.full()) == "drop_oldest":
                self._drop_oldest()
            try:
                self._queue.put(frame, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def finish(self, item: object) -> None:
        """Put the final item (:data:`END` or a :class:`Failure`), making room if needed."""
        while not self._stopped():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if hand_over(live=self.live, queue_full=True) == "drop_oldest":
                    self._drop_oldest()

    def get(self, timeout_s: float) -> Any:
        """The next item; raises :class:`queue.Empty` after ``timeout_s``."""
        return self._queue.get(timeout=timeout_s)

    def drain(self) -> None:
        """Empty the queue: unblocks a file reader waiting for room after the consumer left."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def peek_failure(self) -> BaseException | None:
        """The reader's error if one is waiting, without taking it off the queue."""
        with self._queue.mutex:
            for item in self._queue.queue:
                if isinstance(item, Failure):
                    return item.error
        return None

    def _drop_oldest(self) -> None:
        try:
            self._queue.get_nowait()
            self.dropped += 1
        except queue.Empty:
            pass
