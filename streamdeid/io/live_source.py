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
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np

from streamdeid.errors import (
    ConfigError,
    InputNotFoundError,
    NotAVideoError,
    SourceError,
    SourceTimeoutError,
)
from streamdeid.io.source import SourceInfo
from streamdeid.live.policy import hand_over
from streamdeid.media import (
    DEFAULT_FRAME_RATE,
    NETWORK_SCHEMES,
    PTS_TIME_BASE,
    backoff_delay,
    url_scheme,
)
from streamdeid.types import Frame

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], None]

# Event kinds passed to ``on_event``.
CONNECTED = "connected"
DISCONNECTED = "disconnected"
RECONNECTING = "reconnecting"
GAVE_UP = "gave_up"

_WEBCAM_RE = re.compile(r"^webcam:(\d+)$")
_CREDENTIALS_RE = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_QUERY_RE = re.compile(r"(?i)([?&](?:password|passwd|pwd|pass|token|auth)=)[^&]*")
# Errors that mean "nobody answered": worth retrying, and reported as a timeout at the end.
_NO_ANSWER_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNRESET,
        errno.EPIPE,
    }
)
# live: 1 s at 25 fps (absorbs the burst a server sends on connect), then the oldest is dropped
_QUEUE_SIZE = 25
_POLL_S = 0.1  # how often waiting code re-checks the stop event
# Probe only half a second of stream on open: the default (up to 5 s) only refines the frame
# rate estimate, and every reconnect would pay it again.
_PROBE_OPTIONS = {"analyzeduration": "500000"}


@dataclass(frozen=True, slots=True)
class LiveFrame(Frame):
    """A :class:`Frame` that also knows when it was captured on the wall clock.

    ``captured_at`` (inherited) is ``time.monotonic()`` when the frame was decoded, or when it
    was due for a file played in real time. Use it for latency inside this process. ``wall_time``
    is ``time.time()`` at that same instant (UTC seconds since the epoch). Use it for names and
    logs that people read, such as segment file names.
    """

    wall_time: float


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` and password-like query values replaced by ``***``.

    Example:
        >>> mask_url("rtsp://admin:hunter2@10.0.0.5:554/stream1")
        'rtsp://***@10.0.0.5:554/stream1'
    """
    return _SECRET_QUERY_RE.sub(r"\1***", _CREDENTIALS_RE.sub("***@", url))


@dataclass(frozen=True, slots=True)
class _Target:
    """What to hand to ``av.open`` for a URL, and whether it behaves like a camera."""

    path: str
    format: str | None
    live: bool
    network: bool


def _resolve(url: str) -> _Target:
    match = _WEBCAM_RE.match(url)
    if match:
        return _Target(f"/dev/video{match.group(1)}", "v4l2", live=True, network=False)
    if url.startswith("/dev/video"):
        return _Target(url, "v4l2", live=True, network=False)
    scheme = url_scheme(url)
    if scheme in NETWORK_SCHEMES:
        return _Target(url, None, live=True, network=True)
    if scheme == "file":
        url = url[len("file://") :]
    elif scheme:
        raise ConfigError(
            f"live source: expected rtsp://, another network URL, webcam:N, /dev/videoN or a "
            f"file, got scheme '{scheme}://' in '{mask_url(url)}'"
        )
    if not os.path.exists(url):
        raise InputNotFoundError(f"input not found: expected an existing file, got '{url}'")
    return _Target(url, None, live=False, network=False)


def _is_no_answer(error: BaseException) -> bool:
    if isinstance(error, (av.error.ExitError, TimeoutError, ConnectionError)):
        return True
    return getattr(error, "errno", None) in _NO_ANSWER_ERRNOS


def _describe(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if isinstance(error, av.error.ExitError):
        text = "timed out"
    return mask_url(" ".join(str(text).split()))


class _Failure:
    """Carries the reader thread's exception to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


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
        if transport not in ("tcp", "udp"):
            raise ConfigError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
        for name, value in (
            ("open_timeout_s", open_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("backoff_initial_s", backoff_initial_s),
            ("backoff_max_s", backoff_max_s),
        ):
            if not value > 0:
                raise ConfigError(f"{name}: expected a number of seconds > 0, got {value!r}")
        if backoff_max_s < backoff_initial_s:
            raise ConfigError(
                f"backoff_max_s: expected >= backoff_initial_s ({backoff_initial_s}), "
                f"got {backoff_max_s}"
            )
        if not 0 <= jitter <= 1:
            raise ConfigError(f"jitter: expected a fraction in [0, 1], got {jitter!r}")
        if max_reconnects is not None and max_reconnects < 0:
            raise ConfigError(f"max_reconnects: expected None or >= 0, got {max_reconnects!r}")
        self.url = url
        self.name = mask_url(url)
        self._target = _resolve(url)
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
        self.frames_dropped = 0  # decoded but dropped because the consumer was behind
        self.corrupt_packets = 0

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._halt = threading.Event()  # our own stop: close() / the consumer went away
        self._ready = threading.Event()  # first connection made (or given up)
        self._thread: threading.Thread | None = None
        self._index = 0
        self._last_pts: int | None = None  # last pts handed out, in info.time_base
        self._last_frame_at: float | None = None  # monotonic time of that frame

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
            failure = self._peek_failure()
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
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            # Don't join here: a reader stuck in a network read would hold up the consumer.
            self._halt.set()
            self._drain()

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the reader and wait up to ``timeout_s`` for it; safe to call twice.

        A reader blocked in a network read cannot be interrupted. It is left to finish on its
        own, which takes at most ``read_timeout_s``, and then it closes its container.
        """
        self._halt.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        self._drain()  # unblocks a file reader waiting on a full queue
        thread.join(timeout_s)
        if thread.is_alive():
            log.debug("%s: reader still finishing a blocked read; it exits by itself", self.name)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stopped(self) -> bool:
        return self.stop.is_set() or self._halt.is_set()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _peek_failure(self) -> BaseException | None:
        with self._queue.mutex:
            for item in self._queue.queue:
                if isinstance(item, _Failure):
                    return item.error
        return None

    # ----------------------------------------------------------------- reader thread

    def _run(self) -> None:
        try:
            self._read_loop()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises
            self._finish(_Failure(e))
        else:
            self._finish(_END)
        finally:
            self.connected = False
            self._ready.set()

    def _finish(self, item: object) -> None:
        """Put the final item, making room if needed: it must reach a consumer still reading."""
        while not self._stopped():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if hand_over(live=self.live, queue_full=True) == "drop_oldest":
                    self._drop_oldest()

    def _read_loop(self) -> None:
        failures = 0  # consecutive failed opens
        first_failure_at: float | None = None
        ever_connected = False
        while not self._stopped():
            attempt_at = time.monotonic()
            try:
                container = self._open()
            except (av.error.FFmpegError, OSError) as e:
                if isinstance(e, SourceError):
                    raise
                failures += 1
                first_failure_at = first_failure_at or attempt_at
                # An open cut short by the timeout surfaces as whatever FFmpeg was parsing
                # ("Invalid data..."), so judge by the clock too.
                timed_out = time.monotonic() - attempt_at >= 0.9 * self.open_timeout_s
                reason = "no answer" if timed_out else _describe(e)
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
        if not self.live:
            return NotAVideoError(
                f"cannot open '{self.name}' as video: expected a media file FFmpeg can read, "
                f"got error: {reason}"
            )
        what = (
            f"live source {self.name}: {attempts} attempt(s) in {elapsed_s:.1f} s, "
            f"last error: {reason}"
        )
        if timed_out or _is_no_answer(error):
            return SourceTimeoutError(
                f"{what} (expected a video stream within open_timeout_s={self.open_timeout_s:g})"
            )
        return SourceError(what)

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

    def _open(self) -> Any:
        target = self._target
        options = dict(_PROBE_OPTIONS) if target.live else {}
        if target.path.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.transport
            options["timeout"] = str(int(self.read_timeout_s * 1_000_000))  # socket I/O, µs
        container = av.open(
            target.path,
            mode="r",
            format=target.format,
            options=options,
            timeout=(self.open_timeout_s, self.read_timeout_s),
        )
        if not container.streams.video:
            streams = len(container.streams)
            container.close()
            raise NotAVideoError(
                f"'{self.name}' has no video stream: expected a video, "
                f"found {streams} non-video stream(s)"
            )
        return container

    def _pump(self, container: Any) -> str | None:
        """Decode one connection into the queue; return the read error, or None at its end."""
        try:
            stream = container.streams.video[0]
            # Frame threading holds frames back, one per thread: fine for files, not for live.
            stream.thread_type = "SLICE" if self.live else "AUTO"
            info = self._connected(container, stream)
            return self._decode(container, stream, info)
        finally:
            self.connected = False
            try:
                container.close()
            except (av.error.FFmpegError, OSError) as e:  # the connection is gone anyway
                log.debug("%s: closing: %s", self.name, _describe(e))

    def _connected(self, container: Any, stream: Any) -> SourceInfo:
        cc = stream.codec_context
        in_tb = Fraction(stream.time_base or PTS_TIME_BASE)
        rate = Fraction(stream.guessed_rate or stream.average_rate or DEFAULT_FRAME_RATE)
        if self.info is None:
            duration = None
            if not self.live and stream.duration is not None:
                duration = float(stream.duration * in_tb)
            self.info = SourceInfo(
                path=self.name,
                format_name=container.format.name,
                width=cc.width,
                height=cc.height,
                time_base=in_tb,
                frame_rate=rate,
                frames=0 if self.live else int(stream.frames or 0),
                duration_s=duration,
                codec=cc.name,
                has_audio=bool(container.streams.audio),
            )
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
        in_tb = Fraction(stream.time_base or PTS_TIME_BASE)
        out_tb = info.time_base
        rate = Fraction(stream.guessed_rate or stream.average_rate or info.frame_rate)
        step_out = max(1, round(1 / (out_tb * rate)))
        step_in = max(1, round(1 / (in_tb * rate)))
        anchor_in: int | None = None  # first input pts of this run, and where it maps to
        anchor_out = 0
        prev_in: int | None = None
        paced_from: float | None = None  # realtime files: monotonic time of pts 0
        try:
            for packet in container.demux(stream):
                if self._stopped():
                    return None
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as e:
                    self.corrupt_packets += 1
                    log.warning("%s: skipped a corrupt packet (%s)", self.name, _describe(e))
                    continue
                for vf in decoded:
                    pts_in = vf.pts
                    if pts_in is None:  # RTSP gives none until the first RTCP report
                        pts_in = 0 if prev_in is None else prev_in + step_in
                    if anchor_in is None or (prev_in is not None and pts_in < prev_in):
                        # New connection, or the camera's clock jumped back: re-anchor.
                        anchor_in, anchor_out = pts_in, self._next_base(out_tb, step_out)
                    prev_in = pts_in
                    pts = anchor_out + round((pts_in - anchor_in) * in_tb / out_tb)
                    if self._last_pts is not None:
                        pts = max(pts, self._last_pts + 1)
                    if self.realtime and not self.live:
                        paced_from = paced_from or time.monotonic()
                        if self._sleep(paced_from + float(pts * out_tb) - time.monotonic()):
                            return None
                    self._deliver(vf, pts, out_tb)
        except (av.error.FFmpegError, OSError) as e:
            if not self.live:
                raise SourceError(
                    f"'{self.name}': decoding failed after {self.frames_read} frames: "
                    f"{_describe(e)}"
                ) from e
            return _describe(e)
        if self.live:
            return None
        if self.frames_read == 0:
            raise NotAVideoError(f"'{self.name}': expected at least one video frame, decoded 0")
        return None

    def _next_base(self, out_tb: Fraction, step_out: int) -> int:
        """Where a new run of pts starts: after the last frame, by the wall time away."""
        if self._last_pts is None or self._last_frame_at is None:
            return 0
        away = round((time.monotonic() - self._last_frame_at) / out_tb)
        return self._last_pts + max(step_out, away)

    def _deliver(self, vf: Any, pts: int, time_base: Fraction) -> None:
        now = time.monotonic()
        frame = LiveFrame(
            index=self._index,
            image=np.ascontiguousarray(vf.to_ndarray(format="bgr24")),
            pts=pts,
            time_base=time_base,
            captured_at=now,
            wall_time=time.time(),
        )
        self._index += 1
        self.frames_read += 1
        self._last_pts, self._last_frame_at = pts, now
        while not self._stopped():
            if hand_over(live=self.live, queue_full=self._queue.full()) == "drop_oldest":
                self._drop_oldest()  # a camera never waits; a file waits, never drops
            try:
                self._queue.put(frame, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _drop_oldest(self) -> None:
        try:
            self._queue.get_nowait()
            self.frames_dropped += 1
        except queue.Empty:
            pass
