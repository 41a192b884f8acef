"""Publishing to an RTSP server (ANNOUNCE/RECORD) that may be slow, restart, or go away.

Network I/O (connect, ANNOUNCE, writes) runs on its own thread behind a bounded queue, so the
encoder, and the recording it feeds, never wait for the network. The publisher reconnects with
capped exponential backoff. What it cannot send in time is dropped, counted, and the viewers
resume on the next keyframe: see rule 5 in :mod:`streamdeid.live.policy`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import av.error

from streamdeid.errors import ConfigError, SinkError
from streamdeid.io.live_encoder import LiveEncoder, LiveSink
from streamdeid.io.live_url import mask_url
from streamdeid.io.sink import EncoderSettings
from streamdeid.live.policy import rtsp_sends
from streamdeid.media import DEFAULT_FRAME_RATE, backoff_delay, url_scheme

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], None]

_POLL_S = 0.1
_CLOSE = object()


class RtspSink(LiveSink):
    """Publish to an RTSP server (ANNOUNCE/RECORD), and come back after the server does.

    Network I/O runs on a named thread behind a queue of ``queue_s`` seconds of packets, so a
    slow or vanished server never blocks the encoder. When the server goes away, the connection
    is dropped, and packets are discarded until the next attempt, which comes after a capped
    exponential backoff with jitter. At that point the encoder is asked for a keyframe, and the
    session starts again on it. A full queue drops packets until the next keyframe, so viewers
    never see a broken GOP. Both are the live policy's rule 5
    (:func:`streamdeid.live.policy.rtsp_sends`); recordings fed by the same encoder lose nothing.

    Counters: ``connected``, ``reconnects`` (sessions after the first), ``failures`` (failed
    connects and lost sessions), ``packets_sent``, ``packets_dropped`` (every encoded packet not
    sent: queue full, waiting for a keyframe, or no server).
    """

    def __init__(
        self,
        url: str,
        settings: EncoderSettings | None = None,
        *,
        transport: str = "tcp",
        open_timeout_s: float = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10,
        jitter: float = 0.25,
        frame_rate: float = DEFAULT_FRAME_RATE,
        gop_s: float = 1,
        queue_s: float = 2,
        on_event: EventCallback | None = None,
    ) -> None:
        super().__init__(settings, frame_rate, gop_s)
        if url_scheme(url) not in ("rtsp", "rtsps"):
            raise ConfigError(f"RTSP output: expected an rtsp:// URL, got '{mask_url(url)}'")
        if transport not in ("tcp", "udp"):
            raise ConfigError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
        if not open_timeout_s > 0 or not backoff_initial_s > 0 or backoff_max_s < backoff_initial_s:
            raise ConfigError(
                "RTSP output: expected open_timeout_s > 0 and 0 < backoff_initial_s <= "
                f"backoff_max_s, got {open_timeout_s}, {backoff_initial_s}, {backoff_max_s}"
            )
        if not 0 <= jitter <= 1:
            raise ConfigError(f"jitter: expected a fraction in [0, 1], got {jitter!r}")
        self.url = url
        self.name = f"rtsp:{mask_url(url)}"
        self.transport = transport
        self.open_timeout_s = float(open_timeout_s)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.jitter = float(jitter)
        self.on_event = on_event
        self.connected = False
        self.reconnects = 0
        self.failures = 0
        self.packets_sent = 0
        self.packets_dropped = 0  # added to from both threads, under _count_lock
        self._count_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(2, round(queue_s * frame_rate)))
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._next_attempt_at = 0.0  # monotonic; no connect attempt before this
        self._need_keyframe = True
        self._drop_until_key = False
        self._sessions = 0
        self._attempts = 0  # consecutive failed attempts

    def bind(self, encoder: LiveEncoder) -> None:
        super().bind(encoder)
        self._thread = threading.Thread(
            target=self._run, name=f"streamdeid.rtsp-out:{mask_url(self.url)}", daemon=True
        )
        self._thread.start()

    def wants_keyframe(self, pts: int) -> bool:
        # Only when a (re)connect attempt is due: no keyframe storm while the server is down.
        if self._need_keyframe and time.monotonic() >= self._next_attempt_at:
            self._need_keyframe = False
            return True
        return False

    def put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise SinkError(f"{self.name}: sender thread is not running")
        key = packet.is_keyframe
        if not rtsp_sends(key, after_gap=self._drop_until_key):
            self._dropped()
            return
        copy = av.Packet(bytes(packet))  # the sender thread owns its own packet
        copy.pts, copy.dts, copy.is_keyframe = pts, dts, key
        copy.time_base = self.encoder.time_base
        try:
            self._queue.put_nowait(copy)
            self._drop_until_key = False
        except queue.Full:
            self._dropped()
            self._drop_until_key = True
            self._need_keyframe = True
            log.warning(
                "%s: the server takes packets slower than they come; dropping until the next "
                "keyframe (%d dropped so far, the recording is not affected)",
                self.name,
                self.packets_dropped,
            )

    def packet_drops(self) -> dict[str, int]:
        """This publisher's ``packets_dropped``, under its name (credentials masked)."""
        return {self.name: self.packets_dropped}

    def _dropped(self) -> None:
        """Count one encoded packet not sent (policy rule 5)."""
        with self._count_lock:
            self.packets_dropped += 1

    def finish(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._closing.set()
        try:
            self._queue.put(_CLOSE, timeout=1.0)
        except queue.Full:
            log.warning("%s: sender is stuck; closing without flushing", self.name)
        thread.join(self.open_timeout_s)
        if thread.is_alive():
            log.warning("%s: sender still blocked on the network; left to time out", self.name)
        if self.packets_dropped:
            log.info(
                "%s: %d packets sent, %d not sent (server slow or away; recordings are complete)",
                self.name,
                self.packets_sent,
                self.packets_dropped,
            )

    # ----------------------------------------------------------------- sender thread

    def _run(self) -> None:
        out: Any = None
        stream: Any = None
        start_pts = 0
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._closing.is_set():
                        return  # closed, and the sentinel could not be queued
                    continue
                if item is _CLOSE:
                    return
                if out is None:
                    due = time.monotonic() >= self._next_attempt_at
                    if not (due and rtsp_sends(item.is_keyframe, after_gap=True)):
                        self._dropped()  # down: until an attempt is due and a keyframe comes
                        continue
                    out, stream = self._connect()
                    if out is None:
                        self._dropped()
                        continue
                    start_pts = item.pts
                try:
                    item.pts, item.dts = item.pts - start_pts, item.dts - start_pts
                    item.stream = stream
                    out.mux(item)  # the first one sends ANNOUNCE/SETUP/RECORD
                except (av.error.FFmpegError, OSError, ValueError) as e:
                    self._dropped()
                    self._lost(out, e)
                    out = None
                    continue
                if not self.connected:
                    self._on_connected()
                self.packets_sent += 1
        finally:
            if out is not None:
                self._close_quietly(out)
            self.connected = False

    def _connect(self) -> tuple[Any, Any]:
        enc = self.encoder
        try:
            out = av.open(
                self.url,
                mode="w",
                format="rtsp",
                # "timeout" bounds every socket write too: a server that stops reading
                # without closing ends the session instead of blocking the sender forever.
                options={
                    "rtsp_transport": self.transport,
                    "timeout": str(int(self.open_timeout_s * 1_000_000)),
                },
                timeout=(self.open_timeout_s, None),
            )
            stream = out.add_mux_stream(
                "h264",
                rate=Fraction(enc.frame_rate).limit_denominator(1001),
                width=enc.width,
                height=enc.height,
            )
        except (av.error.FFmpegError, OSError) as e:
            self._failed(f"cannot connect: {mask_url(str(e))}")
            return None, None
        return out, stream

    def _on_connected(self) -> None:
        self.connected = True
        self._attempts = 0
        self._sessions += 1
        if self._sessions > 1:
            self.reconnects += 1
        log.info("%s: publishing", self.name)
        self._emit("connected", self.name)

    def _lost(self, out: Any, error: BaseException) -> None:
        self._close_quietly(out)
        was_connected, self.connected = self.connected, False
        reason = mask_url(getattr(error, "strerror", None) or str(error))
        if was_connected:
            self._emit("disconnected", reason)
        self._failed(("lost the server: " if was_connected else "cannot publish: ") + reason)

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self._attempts += 1
        delay = backoff_delay(
            self._attempts, self.backoff_initial_s, self.backoff_max_s, self.jitter
        )
        self._next_attempt_at = time.monotonic() + delay
        self._need_keyframe = True
        log.warning("%s: %s; retry in %.1f s", self.name, reason, delay)
        self._emit("reconnecting", f"attempt {self._attempts} in {delay:.1f} s: {reason}")

    def _emit(self, kind: str, detail: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, detail)
        except Exception:  # a broken callback must not stop the stream
            log.exception("%s: on_event(%r) failed", self.name, kind)

    def _close_quietly(self, out: Any) -> None:
        try:
            out.close()
        except (av.error.FFmpegError, OSError, ValueError) as e:
            log.debug("%s: closing the session: %s", self.name, e)
