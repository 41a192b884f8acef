"""Stage base class and the channels between stages.

Every stage runs the same loop on its own named thread: take a packet (with a timeout), process
it, pass it on, forward :class:`EndOfStream`. The loop is written once here so that no stage can
forget a timeout or hang when its neighbour dies (the failure mode of supervision's
``process_video``, where a dead reader left the main thread waiting forever).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from streamdeid.errors import PipelineError
from streamdeid.types import EndOfStream, FramePacket

log = logging.getLogger(__name__)

POLL_S = 0.1


class Channel:
    """A bounded queue that knows whether its reader and writer are still alive."""

    def __init__(self, maxsize: int) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.reader_gone = threading.Event()
        self.writer_gone = threading.Event()

    def put(self, item: Any) -> bool:
        """Block until there is room; False when the reader is gone (item dropped)."""
        while not self.reader_gone.is_set():
            try:
                self._q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        """Block until an item arrives; a vanished writer reads as a failed end of stream."""
        while True:
            try:
                return self._q.get(timeout=POLL_S)
            except queue.Empty:
                if self.writer_gone.is_set() and self._q.empty():
                    return EndOfStream(PipelineError("upstream stage exited without end-of-stream"))

    def qsize(self) -> int:
        return self._q.qsize()

    def full(self) -> bool:
        return self._q.full()


class Stage(ABC):
    """One step of the pipeline. ``process`` is pure enough to unit-test without threads."""

    name: str = "stage"
    # True for the stage that sets a file's pace (the detector): with a pipeline's
    # ``background_nice``, every other thread yields the CPU to it (see pipeline.priority).
    paces: bool = False

    def __init__(self) -> None:
        self.busy_s = 0.0
        self.count = 0
        self.error: BaseException | None = None
        self.outbox: Channel | None = None  # set by run(); None for the last stage
        self._emit_wait_s = 0.0  # time emit() waited inside the current process() call

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources on the stage's own thread (models are not thread-portable)."""

    @abstractmethod
    def process(self, packet: FramePacket) -> FramePacket | None:
        """Transform one packet; None drops it (never done in file mode)."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release resources; runs even after an error."""

    def emit(self, packet: FramePacket) -> bool:
        """Pass a packet on from inside :meth:`process` (a frame held back earlier).

        False when the next stage is gone (or there is none). The wait for room is taken out of
        ``busy_s``: busy time is the stage's own work, and a slower neighbour's backlog must not
        show up as this stage's cost.
        """
        if self.outbox is None:
            return False
        t0 = time.perf_counter()
        ok = self.outbox.put(packet)
        self._emit_wait_s += time.perf_counter() - t0
        return ok

    def run(self, inbox: Channel, outbox: Channel | None, stop: threading.Event) -> None:
        """The shared loop; errors are recorded, stop is set, and end-of-stream still flows."""
        self.outbox = outbox
        eos = EndOfStream()
        try:
            self.setup()
            while True:
                item = inbox.get()
                if isinstance(item, EndOfStream):
                    eos = item
                    break
                t0 = time.perf_counter()
                self._emit_wait_s = 0.0
                out = self.process(item)
                self.busy_s += time.perf_counter() - t0 - self._emit_wait_s
                self.count += 1
                if out is not None and outbox is not None and not outbox.put(out):
                    break
        except BaseException as e:
            log.debug("stage %s failed", self.name, exc_info=True)
            self.error = e
            eos = EndOfStream(e)
            stop.set()
        finally:
            inbox.reader_gone.set()
            try:
                self.teardown()
            except BaseException as e:  # noqa: BLE001
                if self.error is None:
                    self.error = e
                    eos = EndOfStream(e)
                    stop.set()
            if outbox is not None:
                outbox.put(eos)
                outbox.writer_gone.set()
