"""The live pipeline: capture → detect → track → obscure → encode, with bounded latency.

The pieces that apply the live policy (:mod:`streamdeid.live.policy`) live beside it:

* :class:`~streamdeid.live.channels.LiveChannel` drops (and counts) instead of blocking once a
  budget is spent;
* :class:`~streamdeid.live.stages.LiveDetectStage` skips the model when it is behind;
* :class:`~streamdeid.live.stages.LiveTrackStage` masks skipped frames with look-ahead, or
  whole when blind;
* :class:`~streamdeid.live.stages.LiveSinkStage` writes to any sink and measures
  capture→encoded latency.

This module wires them: :class:`LivePipeline` gives every stage a live inbox and starts capture
once the stages are set up; :func:`paced` plays a file like a camera; :func:`counted` counts
what the source delivered.

With ``live=False`` (a file read as fast as it decodes) every piece behaves as in
``streamdeid run``: puts block, every scheduled detection runs, nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Any

from streamdeid.live.channels import LiveChannel
from streamdeid.live.policy import LiveConfig
from streamdeid.live.stages import LiveDetectStage
from streamdeid.live.stats import LiveStats
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.pipeline.runner import JOIN_POLL_S, Pipeline
from streamdeid.pipeline.stage import Channel, Stage
from streamdeid.types import Frame

SETUP_TIMEOUT_S = 120.0


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
