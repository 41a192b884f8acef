"""Read live video (RTSP cameras, webcams, files played as if live) into :class:`LiveFrame` objects.

A camera is not a file: it drops, reboots and changes its clock. :class:`LiveSource` keeps the
frame stream going through that. A named reader thread owns the PyAV container. When a read fails
or the stream ends, it logs a warning, waits a capped exponential backoff with jitter (the stop
event interrupts the wait), reopens and carries on. The consumer sees one stream whose ``index``
and ``pts`` keep increasing across reconnects.

The reader hands frames over through a small queue. For a live input, a full queue drops the
oldest frame and counts it, so a slow consumer never stalls the socket (frigate does the same).
A file never drops. The consumer waits on that queue with a short timeout, so ``frames()``
returns within about 0.1 s of the stop event being set. That holds even while the reader is
stuck in a network read. The reader then leaves on its own within ``read_timeout_s``, the one
timeout FFmpeg can enforce on a blocked read.

Why this module is ~445 lines, over the project's ~400: what is left is one class whose reader
methods share its stop event, counters, timeline and queue; opening (``live_url``), timestamps
(``live_timeline``) and the hand-over queue (``live_handover``) are already apart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import av.error
import numpy as np

from streamdeid.errors import NotAVideoError, SourceError, SourceTimeoutError
from streamdeid.io.live_handover import END, Failure, HandOver
from streamdeid.io.live_timeline import (
    LiveFrame,
    Timeline,
    stream_info,
    stream_rate,
    stream_time_base,
)
from streamdeid.io.live_url import (
    check_options,
    describe,
    give_up_error,
    mask_url,
    open_video,
    resolve,
)
from streamdeid.io.source import SourceInfo
from streamdeid.media import backoff_delay

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], None]

# Event kinds passed to ``on_event``.
CONNECTED = "connected"
DISCONNECTED = "disconnected"
RECONNECTING = "reconnecting"
GAVE_UP = "gave_up"

# live: 1 s at 25 fps (absorbs the burst a server sends on connect), then the oldest is dropped
_QUEUE_SIZE = 25
_POLL_S = 0.1  # how often waiting code re-checks the stop event


class LiveSource:
    """Frames from a camera, a webcam or a file played in real time, through reconnects.

    ``url`` is ``rtsp://...`` (or another network URL FFmpeg reads), ``webcam:N`` or
    ``/dev/videoN`` (V4L2), or a file path. A file is read once. With ``realtime=True`` it is
    paced to its timestamps, like a camera. The end of a file is the end of the stream. The end
    of a live stream, or an error on it, means reconnect (unless ``reconnect=False``).

    Timestamps: ``pts`` are in :attr:`info` ``.time_base``, which is the first connection's
    stream time base. Each connection's pts are rebased to follow on from the last frame
    delivered. The gap between the two is the wall-clock time the source was away, and at least
    one frame period, so pts keep measuring real time and never go backwards. ``index`` counts
    decoded frames from 0 across reconnects. A frame dropped because the consumer was slow
    leaves a gap in ``index``.

    ``max_reconnects`` bounds the retries: the source gives up after ``1 + max_reconnects``
    consecutive failed opens, at the start or after a lost connection (None = never give up;
    only ``stop`` ends it). Then ``frames()`` raises :class:`SourceTimeoutError` if nothing
    answered in time, else :class:`SourceError`.

    ``on_event(kind, detail)`` is called from the reader thread with kind ``"connected"``,
    ``"disconnected"``, ``"reconnecting"`` or ``"gave_up"``. Keep it short. Its exceptions are
    logged, not raised.

    Example:
        >>> stop = threading.Event()
        >>> with LiveSource("rtsp://cam.local/stream1", stop=stop) as src:  # doctest: +SKIP
        ...     for frame in src.frames():
        ...         latency_s = time.monotonic() - frame.captured_at
    """

    def __init__(
        self,
        url: str,
        *,
        transport: str = "tcp",
        open_timeout_s: float = 5,
        read_timeout_s: float = 5,
        reconnect: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10,
        jitter: float = 0.25,
        max_reconnects: int | None = None,
        realtime: bool = False,
        stop: threading.Event | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        check_options(
            transport=transport,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            jitter=jitter,
            max_reconnects=max_reconnects,
        )
        self.url = url
        self.name = mask_url(url)
        self._target = resolve(url)
        self.transport = transport
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.reconnect = reconnect
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.jitter = float(jitter)
        self.max_reconnects = max_reconnects
        self.realtime = realtime
        self.stop = stop if stop is not None else threading.Event()
        self.on_event = on_event

        self.info: SourceInfo | None = None  # set on the first connection
        self.connected = False
        self.reconnects = 0  # successful reopens after a lost connection
        self.frames_read = 0  # frames decoded
        self.corrupt_packets = 0
        # Reversible masking keeps the packets: called on each connection (stream, index of its
        # first frame) and with each demuxed packet, on the reader thread.
        self.connect_hook: Callable[[Any, int], None] | None = None
        self.packet_hook: Callable[[Any], None] | None = None
        self.frame_hook: Callable[[int | None, int], None] | None = None  # (stream pts, index)

        self._handover = HandOver(_QUEUE_SIZE, live=self.live, stopped=self._stopped)
        self._halt = threading.Event()  # our own stop: close() / the consumer went away
        self._ready = threading.Event()  # first connection made (or given up)
        self._thread: threading.Thread | None = None
        self._index = 0
        self._timeline: Timeline | None = None  # made with info, on the first connection

    @property
    def frames_dropped(self) -> int:
        """Frames decoded but dropped because the consumer was behind (live sources only)."""
        return self._handover.dropped

    @property
    def live(self) -> bool:
        """True for cameras and network streams: they reconnect and drop frames when behind."""
        return self._target.live

    # ----------------------------------------------------------------- consumer side

    def start(self) -> LiveSource:
        """Start the reader thread (``frames()`` does it too); returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"streamdeid.capture:{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def wait_ready(self, timeout_s: float) -> SourceInfo:
        """Start, and block until the first connection is made; return :attr:`info`.

        Raises:
            SourceTimeoutError: No connection within ``timeout_s``.
            SourceError: The reader gave up before connecting.
        """
        self.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(_POLL_S):
            if self._stopped() or time.monotonic() > deadline:
                break
        if self.info is None:
            failure = self._handover.peek_failure()
            if failure is not None:
                raise failure
            raise SourceTimeoutError(
                f"live source {self.name}: expected a connection within {timeout_s:g} s, got none"
            )
        return self.info

    def frames(self) -> Iterator[LiveFrame]:
        """Yield frames until the stream ends, ``stop`` is set, or the source gives up.

        Raises:
            SourceTimeoutError: The source never answered within ``max_reconnects``.
            SourceError: Opening or decoding failed for another reason.
        """
        self.start()
        try:
            while True:
                if self._stopped():
                    return
                try:
                    item = self._handover.get(_POLL_S)
                except queue.Empty:
                    continue
                if item is END:
                    return
                if isinstance(item, Failure):
                    raise item.error
                yield item
        finally:
            # Don't join here: a reader stuck in a network read would hold up the consumer.
            self._halt.set()
            self._handover.drain()

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the reader and wait up to ``timeout_s`` for it; safe to call twice.

        A reader blocked in a network read cannot be interrupted. It is left to finish on its
        own, which takes at most ``read_timeout_s``, and then it closes its container.
        """
        self._halt.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        self._handover.drain()  # unblocks a file reader waiting on a full queue
        thread.join(timeout_s)
        if thread.is_alive():
            log.debug("%s: reader still finishing a blocked read; it exits by itself", self.name)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stopped(self) -> bool:
        return self.stop.is_set() or self._halt.is_set()

    # ----------------------------------------------------------------- reader thread

    def _run(self) -> None:
        try:
            self._read_loop()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises
            self._handover.finish(Failure(e))
        else:
            self._handover.finish(END)
        finally:
            self.connected = False
            self._ready.set()

    def _read_loop(self) -> None:
        failures = 0  # consecutive failed opens
        first_failure_at: float | None = None
        ever_connected = False
        while not self._stopped():
            attempt_at = time.monotonic()
            try:
                container = open_video(
                    self._target,
                    self.name,
                    transport=self.transport,
                    open_timeout_s=self.open_timeout_s,
                    read_timeout_s=self.read_timeout_s,
                )
            except (av.error.FFmpegError, OSError) as e:
                if isinstance(e, SourceError):
                    raise
                failures += 1
                first_failure_at = first_failure_at or attempt_at
                # An open cut short by the timeout surfaces as whatever FFmpeg was parsing
                # ("Invalid data..."), so judge by the clock too.
                timed_out = time.monotonic() - attempt_at >= 0.9 * self.open_timeout_s
                reason = "no answer" if timed_out else describe(e)
                if not self._may_retry(failures):
                    elapsed = time.monotonic() - first_failure_at
                    raise self._give_up(e, reason, timed_out, failures, elapsed) from e
                delay = self._backoff(failures)
                log.warning(
                    "%s: cannot open (%s); retry %d in %.1f s", self.name, reason, failures, delay
                )
                self._emit(RECONNECTING, f"attempt {failures} in {delay:.1f} s: {reason}")
                self._sleep(delay)
                continue
            if ever_connected:
                self.reconnects += 1
            ever_connected = True
            failures, first_failure_at = 0, None
            reason = self._pump(container)
            if not self.live or self._stopped():
                return  # end of a file, or stopped
            if not self.reconnect:
                if reason is None:
                    return  # the stream ended and we were asked not to come back
                raise SourceError(f"live source {self.name}: stream lost ({reason})")
            reason = reason or "end of stream"
            log.warning("%s: stream lost (%s); reconnecting", self.name, reason)
            self._emit(DISCONNECTED, reason)
            delay = self._backoff(1)
            self._emit(RECONNECTING, f"attempt 1 in {delay:.1f} s")
            self._sleep(delay)

    def _may_retry(self, failures: int) -> bool:
        if not self.live or not self.reconnect:
            return False
        return self.max_reconnects is None or failures <= self.max_reconnects

    def _give_up(
        self, error: BaseException, reason: str, timed_out: bool, attempts: int, elapsed_s: float
    ) -> SourceError:
        self._emit(GAVE_UP, f"{attempts} attempt(s): {reason}")
        return give_up_error(
            self.name,
            live=self.live,
            error=error,
            reason=reason,
            timed_out=timed_out,
            attempts=attempts,
            elapsed_s=elapsed_s,
            open_timeout_s=self.open_timeout_s,
        )

    def _backoff(self, failures: int) -> float:
        """Capped exponential delay, spread by ±``jitter`` so cameras don't retry in lockstep."""
        return backoff_delay(failures, self.backoff_initial_s, self.backoff_max_s, self.jitter)

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True when stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._halt.wait(min(remaining, _POLL_S))
        return True

    def _emit(self, kind: str, detail: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, detail)
        except Exception:  # a broken callback must not kill the capture
            log.exception("%s: on_event(%r) failed", self.name, kind)

    def _pump(self, container: Any) -> str | None:
        """Decode one connection into the queue; return the read error, or None at its end."""
        try:
            stream = container.streams.video[0]
            # Frame threading holds frames back, one per thread: fine for files, not for live.
            stream.thread_type = "SLICE" if self.live else "AUTO"
            info = self._connected(container, stream)
            if self.connect_hook is not None:  # reversible masking: a new decoder starts here
                self.connect_hook(stream, self._index)
            return self._decode(container, stream, info)
        finally:
            self.connected = False
            try:
                container.close()
            except (av.error.FFmpegError, OSError) as e:  # the connection is gone anyway
                log.debug("%s: closing: %s", self.name, describe(e))

    def _connected(self, container: Any, stream: Any) -> SourceInfo:
        cc = stream.codec_context
        rate = stream_rate(stream)
        if self.info is None:
            self.info = stream_info(container, stream, self.name, live=self.live)
            self._timeline = Timeline(self.info.time_base)
        elif (cc.width, cc.height) != (self.info.width, self.info.height):
            log.warning(
                "%s: reconnected at %dx%d, was %dx%d",
                self.name,
                cc.width,
                cc.height,
                self.info.width,
                self.info.height,
            )
        self.connected = True
        self._ready.set()
        detail = f"{self.name} {cc.width}x{cc.height} {cc.name} @ {float(rate):.3g} fps"
        log.info("connected to %s", detail)
        self._emit(CONNECTED, detail)
        return self.info

    def _decode(self, container: Any, stream: Any, info: SourceInfo) -> str | None:
        timeline = self._timeline
        assert timeline is not None  # made by _connected, with info
        timeline.begin(stream_time_base(stream), stream_rate(stream, info.frame_rate))
        paced_from: float | None = None  # realtime files: monotonic time of pts 0
        try:
            for packet in container.demux(stream):
                if self._stopped():
                    return None
                if self.packet_hook is not None and packet.size:
                    self.packet_hook(packet)
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as e:
                    self.corrupt_packets += 1
                    log.warning("%s: skipped a corrupt packet (%s)", self.name, describe(e))
                    continue
                for vf in decoded:
                    pts = timeline.place(vf.pts, time.monotonic())
                    if self.realtime and not self.live:
                        paced_from = paced_from or time.monotonic()
                        due = paced_from + float(pts * info.time_base)
                        if self._sleep(due - time.monotonic()):
                            return None
                    self._deliver(vf, pts, timeline)
        except (av.error.FFmpegError, OSError) as e:
            if not self.live:
                raise SourceError(
                    f"'{self.name}': decoding failed after {self.frames_read} frames: {describe(e)}"
                ) from e
            return describe(e)
        if self.live:
            return None
        if self.frames_read == 0:
            raise NotAVideoError(f"'{self.name}': expected at least one video frame, decoded 0")
        return None

    def _deliver(self, vf: Any, pts: int, timeline: Timeline) -> None:
        if self.frame_hook is not None:
            self.frame_hook(vf.pts, self._index)
        now = time.monotonic()
        frame = LiveFrame(
            index=self._index,
            image=np.ascontiguousarray(vf.to_ndarray(format="bgr24")),
            pts=pts,
            time_base=timeline.time_base,
            captured_at=now,
            wall_time=time.time(),
        )
        self._index += 1
        self.frames_read += 1
        timeline.delivered(pts, now)
        self._handover.put(frame)  # a camera never waits; a file waits, never drops
