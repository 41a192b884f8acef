"""The live pipeline: capture → detect → track → obscure → encode, with bounded latency.

The stages are the file pipeline's own (:mod:`streamdeid.pipeline.stages`), extended here for the
live policy of :mod:`streamdeid.live.policy`:

* :class:`LiveChannel` drops (and counts) instead of blocking once a budget is spent;
* :class:`LiveDetectStage` skips the model when it is behind;
* :class:`LiveTrackStage` masks skipped frames with look-ahead, or whole when blind;
* :class:`LiveSinkStage` writes to any sink and measures capture→encoded latency.

With ``live=False`` (a file read as fast as it decodes) every piece behaves as in
``streamdeid run``: puts block, every scheduled detection runs, nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Any

from streamdeid.detect.base import Detector
from streamdeid.io.frame_sink import FrameSink
from streamdeid.live.policy import LiveConfig, masked_whole, queue_budget_s, skip_detection
from streamdeid.live.stats import LiveStats
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.pipeline.lookahead import DetectorRun, LookaheadTrackStage
from streamdeid.pipeline.runner import JOIN_POLL_S, Pipeline
from streamdeid.pipeline.stage import POLL_S, Channel, Stage
from streamdeid.pipeline.stages import DetectStage
from streamdeid.track.iou import IoUTracker
from streamdeid.types import EndOfStream, Frame, FramePacket

log = logging.getLogger(__name__)

SETUP_TIMEOUT_S = 120.0
_MODEL_LOAD_LOCK = threading.Lock()


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


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------


class LiveDetectStage(DetectStage):
    """:class:`DetectStage` that skips the model on frames it is too late for (policy rule 1).

    A scheduled run that was skipped is owed: it happens on the next frame that is on time, even
    when ``detect_every`` would not schedule that frame.
    """

    def __init__(
        self,
        make_detector: Callable[[], Detector],
        detect_every: int = 1,
        *,
        policy: LiveConfig,
        stats: LiveStats,
        live: bool = True,
        lookahead: bool = True,
    ) -> None:
        # A file read as fast as it decodes is masked as `streamdeid run` masks it: look-ahead
        # (when configured), with the last frame always detected. A camera cannot wait for a
        # frame that may not come.
        super().__init__(make_detector, detect_every, lookahead=lookahead and not live)
        self.policy = policy
        self.stats = stats
        self.live = live
        self.skipped = 0
        self._inbox: Channel | None = None
        self.downstream: Sequence[Channel] = ()  # inboxes of the stages after this one
        self._owed = False
        self._last_run: float | None = None

    def run(self, inbox: Channel, outbox: Channel | None, stop: threading.Event) -> None:
        self._inbox = inbox  # the backlog is what "behind" means
        super().run(inbox, outbox, stop)

    def setup(self) -> None:
        # One model load at a time in the process: the backends silence native start-up logs
        # by pointing fd 2 at /dev/null and back, which two concurrent loads (two cameras)
        # interleave into a stderr left on /dev/null for good.
        with _MODEL_LOAD_LOCK:
            super().setup()
        # Blind time counts from when the model is ready: loading it may take seconds.
        self._last_run = time.monotonic()

    def _behind(self, frame: Frame) -> bool:
        now = time.monotonic()
        return skip_detection(
            since_run_s=None if self._last_run is None else now - self._last_run,
            backlog=self._inbox.qsize() if self._inbox is not None else 0,
            downstream_full=any(channel.full() for channel in self.downstream),
            frame_age_s=now - frame.captured_at,
            policy=self.policy,
        )

    def _scheduled(self, packet: FramePacket) -> FramePacket:
        frame = packet.frame
        scheduled = self._owed or self._burst > 0 or frame.index % self.detect_every == 0
        if not scheduled:
            return packet
        if self.live and self._behind(frame):
            self.skipped += 1
            self.stats.add("detect_skipped")
            self._owed = True
            return packet
        if self._owed:
            self._burst = max(self._burst, 1)  # make DetectStage run on this off-schedule frame
            self._owed = False
        return super()._scheduled(packet)

    def detect(self, packet: FramePacket) -> FramePacket:
        faces = self.faces
        out = super().detect(packet)
        self._last_run = time.monotonic()
        self.stats.add("detect_runs")
        self.stats.add("faces", self.faces - faces)
        return out


class LiveTrackStage(LookaheadTrackStage):
    """:class:`LookaheadTrackStage` with the live blind rule (policy rules 2 and 3).

    Frames before the detector's first run, and frames too far from a run (``blind_s`` or
    ``blind_frames``), are masked whole. A file read as fast as it decodes (``live=False``)
    is never blind: its detect stage runs on the last frame, as in ``streamdeid run``.
    """

    def __init__(
        self,
        tracker: IoUTracker,
        mask_scale: float,
        min_size_px: int,
        *,
        policy: LiveConfig,
        stats: LiveStats,
        live: bool = True,
        grow: float | None = None,
        hold: bool | None = None,
    ) -> None:
        # grow/hold: the schedule's settings (streamdeid.build.schedule_for); default the policy's.
        super().__init__(
            tracker,
            mask_scale,
            min_size_px,
            grow=policy.skip_grow if grow is None else grow,
            hold=policy.lookahead if hold is None else hold,
        )
        self.policy = policy
        self.stats = stats
        self.live = live

    def blind(self, start: DetectorRun, index: int, t: float) -> bool:
        if not self.live:
            return False
        return masked_whole(
            frames_since_run=index - start.index, seconds_since_run=t - start.t, policy=self.policy
        )

    def mask_whole(self, packet: FramePacket) -> None:
        super().mask_whole(packet)
        self.stats.add("blind_frames")


class LiveSinkStage(Stage):
    """Writes masked frames to a sink opened on the first frame; closes it always.

    The sink is made lazily because a live source only knows its size and time base once it has
    delivered a frame. A frame whose pts does not rise (a source that restarted its clock after a
    reconnect) is restamped by the sink itself (:class:`~streamdeid.io.pts.RisingPts`).
    """

    name = "encode"

    def __init__(
        self,
        make_sink: Callable[[Frame], FrameSink],
        stats: LiveStats,
        clock: LatencyClock | None = None,
    ) -> None:
        super().__init__()
        self.make_sink = make_sink
        self.stats = stats
        self.clock = clock or LatencyClock()
        self.sink: FrameSink | None = None
        self.frames_written = 0

    def process(self, packet: FramePacket) -> None:
        frame = packet.frame
        if self.sink is None:
            self.sink = self.make_sink(frame)
        self.sink.write(frame)
        self.frames_written += 1
        self.stats.frame_out(self.clock.latency_s(frame))
        return None

    def teardown(self) -> None:
        if self.sink is not None:
            self.sink.close()


# --------------------------------------------------------------------------------------------------
# Sources helpers
# --------------------------------------------------------------------------------------------------


def paced(
    frames: Iterable[Frame],
    stop: threading.Event,
    fallback_rate: Fraction = DEFAULT_FRAME_RATE,
    speed: float = 1.0,
) -> Iterator[Frame]:
    """Yield file frames at their presentation times, like a camera would.

    Each frame's ``captured_at`` becomes the moment a camera would have delivered it, so a
    consumer that falls behind sees frames age (and the live policy reacts) instead of the file
    politely waiting. A late consumer is never waited for: late frames are yielded at once.
    """
    start: float | None = None
    first_s: float | None = None
    for i, frame in enumerate(frames):
        if frame.pts is not None and frame.time_base is not None:
            at_s = float(frame.pts * frame.time_base)
        else:
            at_s = i / float(fallback_rate)
        if start is None or first_s is None:
            start, first_s = time.monotonic(), at_s
        due = start + (at_s - first_s) / speed
        delay = due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        yield dataclasses.replace(frame, captured_at=due)


def counted(frames: Iterable[Frame], stats: LiveStats) -> Iterator[Frame]:
    """Count every frame taken from the source; closes the wrapped iterator when closed."""
    it = iter(frames)
    try:
        for frame in it:
            stats.add("frames_in")
            yield frame
    finally:
        close = getattr(it, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------


def _signal_setup(stage: Stage) -> threading.Event:
    """An event set once ``stage.setup()`` has returned (or raised) on the stage's thread."""
    done = threading.Event()
    setup = stage.setup

    def setup_then_signal() -> None:
        try:
            setup()
        finally:
            done.set()

    stage.setup = setup_then_signal  # type: ignore[method-assign]
    return done


class LivePipeline(Pipeline):
    """:class:`Pipeline` with live channels: capture and the encoder inbox drop after a budget.

    Capture starts only once every stage is set up (model loaded, kernels compiled, at most
    ``SETUP_TIMEOUT_S``): a camera's first frames would otherwise queue behind start-up and
    start the run seconds late.

    Same contract as the file pipeline: one stop event; a failing stage stops the run and
    :meth:`run` raises the first error; stopping drains the stages and closes the output.
    Frames are counted into ``stats`` as they are read (``frames_in``), dropped and written.

    Example:
        >>> LivePipeline(frames, stages, live=True, policy=LiveConfig(), stats=stats).run()
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        stages: Sequence[Stage],
        *,
        live: bool,
        policy: LiveConfig,
        stats: LiveStats,
        queue_size: int = 8,
        stop: threading.Event | None = None,
        label: str = "live",
    ) -> None:
        super().__init__(
            counted(frames, stats),
            stages,
            queue_size=policy.queue_size if live else queue_size,
            stop=stop,
            label=label,
        )
        self.live = live
        self.policy = policy
        self.stats = stats
        self.channels: list[Channel] = []
        self._ready: list[threading.Event] = []

    def _channels(self) -> list[Channel]:
        """Channel i is the inbox of stage i. Live: every one drops once full for its budget.

        Whichever stage is the slowest, the frames that do not fit in front of it are dropped
        (counted under its name) instead of backing up through every queue before it, so the
        latency is set by that one queue and not by the sum of all of them.
        """
        if not self.live:
            return [Channel(self.queue_size) for _ in self.stages]
        channels: list[Channel] = []
        p = self.policy
        for i, stage in enumerate(self.stages):
            size, budget = (
                (p.detect_queue_size, p.capture_budget_s)
                if i == 0
                else (
                    self.queue_size,
                    p.drop_budget_s,
                )
            )
            channels.append(
                LiveChannel(
                    size,
                    budget,
                    self._on_drop(stage.name),
                    startup_s=p.startup_s,
                    startup_budget_s=p.startup_budget_s,
                )
            )
        return channels

    def _on_drop(self, stage: str) -> Callable[[Any], None]:
        def on_drop(_item: Any) -> None:
            self.stats.drop(stage)

        return on_drop

    def _read_when_ready(self, outbox: Channel, ready: Sequence[threading.Event]) -> None:
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        for event in ready:
            while not event.wait(JOIN_POLL_S):
                if self.stop.is_set() or time.monotonic() > deadline:
                    break
        self._read(outbox)

    def _make_channels(self) -> list[Channel]:
        # Hook every stage's setup before the threads start, so capture can wait for them.
        self._ready = [_signal_setup(stage) for stage in self.stages]
        self.channels = self._channels()
        if self.live:
            for i, stage in enumerate(self.stages):
                if isinstance(stage, LiveDetectStage):
                    stage.downstream = self.channels[i + 1 :]
        return self.channels

    def _capture(self, outbox: Channel) -> None:
        self._read_when_ready(outbox, self._ready)
