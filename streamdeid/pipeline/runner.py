"""Wire stages with bounded channels, run each on a named thread, stop and re-raise cleanly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from streamdeid.errors import Interrupted, PipelineError, StreamDeidError
from streamdeid.pipeline.priority import lower_this_thread
from streamdeid.pipeline.stage import Channel, Stage
from streamdeid.types import EndOfStream, Frame, FramePacket

log = logging.getLogger(__name__)

JOIN_POLL_S = 0.2


class Pipeline:
    """source → stage → stage → … on one thread each; file mode: every put blocks, nothing drops.

    ``stop`` is the single stop event: set it (e.g. from a SIGINT handler) and the source stops
    reading, the stages drain what is in flight and the last stage closes the output, so an
    interrupted run leaves a playable file. A failing stage sets it too; :meth:`run` then
    raises the first error in pipeline order.

    ``background_nice`` (files): every thread but the pacing stage's (``Stage.paces``, the
    detector) runs this much nicer, so the detector gets a core whenever it wants one (see
    :mod:`streamdeid.pipeline.priority`); 0 leaves priorities alone.

    Example:
        >>> Pipeline(frames, [DetectStage(...), TrackStage(...), ...]).run()  # doctest: +SKIP
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        stages: Sequence[Stage],
        *,
        queue_size: int = 8,
        stop: threading.Event | None = None,
        label: str = "file",
        background_nice: int = 0,
    ) -> None:
        if not stages:
            raise ValueError("stages must not be empty")
        self.frames = frames
        self.stages = list(stages)
        self.queue_size = queue_size
        self.stop = stop or threading.Event()
        self.label = label
        self.background_nice = background_nice
        self.source_error: BaseException | None = None
        self.frames_read = 0
        self.source_busy_s = 0.0

    def _read(self, outbox: Channel) -> None:
        eos = EndOfStream()
        try:
            it = iter(self.frames)
            while not self.stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                self.source_busy_s += time.perf_counter() - t0
                if frame is None:
                    break
                self.frames_read += 1
                if not outbox.put(FramePacket(frame)):
                    break
        except BaseException as e:
            log.debug("source failed", exc_info=True)
            self.source_error = e
            eos = EndOfStream(e)
            self.stop.set()
        finally:
            close = getattr(self.frames, "close", None)
            if callable(close):
                close()
            outbox.put(eos)
            outbox.writer_gone.set()

    def _make_channels(self) -> list[Channel]:
        """The inbox of each stage; file mode: plain blocking channels, nothing drops."""
        return [Channel(self.queue_size) for _ in self.stages]

    def _capture(self, outbox: Channel) -> None:
        """Body of the capture thread (a subclass may wait for something first)."""
        self._read(outbox)

    def _thread(self, paces: bool, body: Callable[..., None], *args: object) -> None:
        """Run ``body`` on this new thread, nicer by ``background_nice`` unless it paces."""
        if not paces:
            lower_this_thread(self.background_nice)
        body(*args)

    def run(self) -> None:
        """Run to the end of the input (or until stopped) and raise the first failure."""
        channels = self._make_channels()
        threads = [
            threading.Thread(
                target=self._thread,
                args=(False, self._capture, channels[0]),
                name=f"streamdeid.capture:{self.label}",
                daemon=True,
            )
        ]
        for i, stage in enumerate(self.stages):
            outbox = channels[i + 1] if i + 1 < len(channels) else None
            threads.append(
                threading.Thread(
                    target=self._thread,
                    args=(stage.paces, stage.run, channels[i], outbox, self.stop),
                    name=f"streamdeid.{stage.name}:{self.label}",
                    daemon=True,
                )
            )
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(JOIN_POLL_S)
        except KeyboardInterrupt:
            # A second Ctrl-C while draining lands here: stop and let the stages finish closing.
            self.stop.set()
            for t in threads:
                t.join(30)
            raise
        self._raise_first_error()

    def _raise_first_error(self) -> None:
        errors = [("capture", self.source_error)] + [(s.name, s.error) for s in self.stages]
        for name, err in errors:
            if err is None:
                continue
            if isinstance(err, StreamDeidError):
                raise err
            raise PipelineError(f"stage '{name}' failed: {type(err).__name__}: {err}") from err

    def raise_if_interrupted(self) -> None:
        if self.stop.is_set():
            raise Interrupted(
                f"interrupted: output was closed cleanly after {self.stages[-1].count} frames"
            )
