"""Live outputs: rotating recording segments, an RTSP push, and a tee feeding both from one encode.

A live run has to keep recording through things a file run never meets: the process gets killed,
the RTSP server restarts, the disk fills up for a while. Three rules follow.

* Every file can be played on its own, even after SIGKILL. MP4 segments are fragmented (a fragment
  at least every second), MKV clusters are short, and each segment starts on a keyframe with the
  SPS/PPS inside it.
* One encode feeds every output. libx264 runs once, with zero latency and no B-frames, and the
  same packets are muxed into each output container. Recording and streaming together therefore
  cost one encode. An output only asks the encoder for a keyframe when it needs one: a new segment,
  or an RTSP reconnect.
* An output that fails does not stop the others. The RTSP push does its network I/O (connect,
  ANNOUNCE, writes) on its own thread behind a bounded queue. It reconnects with capped
  exponential backoff and never blocks the encoder. A segment that fails to write is abandoned,
  and a fresh one starts at the next keyframe.

All sinks here share VideoSink's shape: they are set up lazily from the first frame,
``write(frame)`` adds a frame, and ``close()`` flushes and writes trailers (safe to call twice).
Each sink is also callable with a :class:`FramePacket`, so ``SinkStage(sink)`` takes it through
its callable form.
That form does not close the sink: the caller must close it, in a ``finally``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.video.frame import PictureType

from streamdeid.errors import ConfigError, OutputNotWritableError, SinkError
from streamdeid.io.live_source import mask_url
from streamdeid.io.pixfmt import to_video_frame
from streamdeid.io.sink import LIVE_PRESET, EncoderSettings
from streamdeid.types import Frame, FramePacket

log = logging.getLogger(__name__)

EventCallback = Callable[[str, str], None]

_H264_NAMES = frozenset({None, "h264", "libx264"})
_CONTAINERS = {"mp4": "mp4", "mkv": "matroska"}
# Fragmented MP4: a moov with no samples up front, then self-contained fragments, cut at every
# keyframe and at least once a second. A killed writer loses at most the last second.
_MP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": "1000000",
    "flush_packets": "1",
}
_MKV_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
_STAMP = "%Y%m%dT%H%M%SZ"
_POLL_S = 0.1
_SEGMENT_RETRY_S = 1.0  # after a write error, wait this long before starting a new segment


def _wall_time(frame: Frame) -> float:
    """Capture time on the wall clock: LiveFrame's ``wall_time``, else now."""
    return float(getattr(frame, "wall_time", 0.0) or time.time())


class _Encoder:
    """One libx264 encoder set up for live output: zero latency, no B-frames, keyframes on demand.

    Without a global header, x264 repeats SPS/PPS in front of every keyframe. Any keyframe can
    therefore start a new file or a new RTSP session, and muxers take the extradata from it.
    """

    def __init__(self, settings: EncoderSettings, frame_rate: float, gop_s: float) -> None:
        if settings.codec not in _H264_NAMES:
            raise ConfigError(
                f"live outputs encode H.264: expected codec 'h264', got {settings.codec!r}"
            )
        if "libx264" not in av.codecs_available:
            raise SinkError("encoder 'libx264' is not available in this FFmpeg build")
        self.settings = settings
        self.frame_rate = frame_rate
        self.gop_s = gop_s
        self.ctx: Any = None
        self.time_base = Fraction(1, 1000)
        self.width = self.height = 0
        self._last_pts: int | None = None
        self._t0 = 0.0
        self._warned_size = False

    def prepare(self, frame: Frame) -> int:
        """Open on the first frame; return this frame's pts in :attr:`time_base`, increasing.

        Frames keep their own pts when they have one. Frames without pts are timed by
        ``captured_at``. A pts that does not increase is nudged forward, because encoders and
        muxers reject a repeated or backward timestamp.
        """
        if self.ctx is None:
            self._open(frame)
        if frame.pts is not None and frame.time_base == self.time_base:
            pts = int(frame.pts)
        elif frame.pts is not None and frame.time_base:
            pts = round(frame.pts * frame.time_base / self.time_base)
        else:
            pts = round((frame.captured_at - self._t0) / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def _open(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        s = self.settings
        if frame.pts is not None and frame.time_base:
            self.time_base = Fraction(frame.time_base)
        self._t0 = frame.captured_at
        odd = w % 2 or h % 2
        pix_fmt = s.pix_fmt or ("yuv444p" if odd else "yuv420p")
        if odd and pix_fmt.endswith("420p"):
            raise SinkError(f"pix_fmt {pix_fmt} needs an even size, got {w}x{h}: use yuv444p")
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
        ctx.time_base = self.time_base
        ctx.framerate = Fraction(self.frame_rate).limit_denominator(1001)
        ctx.gop_size = max(1, round(self.gop_s * self.frame_rate))
        ctx.max_b_frames = 0
        ctx.thread_count = s.threads
        options = {"tune": "zerolatency", "preset": s.preset or LIVE_PRESET, "forced-idr": "1"}
        if s.bitrate:
            ctx.bit_rate = s.bitrate
        elif s.crf is not None:
            options["crf"] = str(s.crf)
        ctx.options = options
        ctx.open()
        self.ctx, self.width, self.height = ctx, w, h
        log.info("live encoder: libx264 %dx%d %s, gop %d", w, h, pix_fmt, ctx.gop_size)

    def encode(self, frame: Frame, pts: int, keyframe: bool) -> list[Any]:
        same_size = (frame.width, frame.height) == (self.width, self.height)
        vf = to_video_frame(frame.image, self.ctx.pix_fmt if same_size else None)
        if not same_size:
            # A camera that comes back at another size must not end the recording.
            if not self._warned_size:
                log.warning(
                    "frame is %dx%d, output is %dx%d: scaling",
                    frame.width,
                    frame.height,
                    self.width,
                    self.height,
                )
                self._warned_size = True
            vf = vf.reformat(width=self.width, height=self.height)
        vf.pts = pts
        vf.time_base = self.time_base
        if keyframe:
            vf.pict_type = PictureType.I
        return list(self.ctx.encode(vf))

    def flush(self) -> list[Any]:
        return [] if self.ctx is None else list(self.ctx.encode(None))


class _Output:
    """Something that muxes the encoder's packets. Subclasses implement the four hooks."""

    name = "output"
    _encoder: _Encoder | None = None

    def _bind(self, encoder: _Encoder) -> None:
        """The encoder is open: its size and time base are known."""
        self._encoder = encoder

    @property
    def _enc(self) -> _Encoder:
        if self._encoder is None:
            raise SinkError(f"{self.name}: used before its encoder was opened")
        return self._encoder

    def _wants_keyframe(self, pts: int) -> bool:
        return False

    def _put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        """Mux ``packet`` (``pts``/``dts`` in the encoder's time base); SinkError on failure."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Write trailers and release everything; SinkError on failure."""


class _Fanout:
    """The encode loop shared by every sink: one encoder, one or more outputs.

    With ``isolate`` (the tee), an output that raises is logged and counted, and the others go
    on. Only a packet that no output could take is an error.
    """

    def __init__(
        self,
        outputs: Sequence[_Output],
        settings: EncoderSettings,
        frame_rate: float,
        gop_s: float,
        *,
        isolate: bool,
    ) -> None:
        self.outputs = list(outputs)
        self.encoder = _Encoder(settings, frame_rate, gop_s)
        self.isolate = isolate
        self.errors: dict[str, int] = {o.name: 0 for o in self.outputs}
        self.frames_written = 0
        self.closed = False
        self._wall = time.time()

    def write(self, frame: Frame) -> None:
        if self.closed:
            raise SinkError(f"{self._names()}: write after close")
        first = self.encoder.ctx is None
        pts = self.encoder.prepare(frame)
        if first:
            for output in self.outputs:
                output._bind(self.encoder)
        # Ask every output (no short-circuit): asking is how RtspSink consumes its request.
        keyframe = any([output._wants_keyframe(pts) for output in self.outputs])
        self._wall = _wall_time(frame)
        try:
            packets = self.encoder.encode(frame, pts, keyframe)
        except av.error.FFmpegError as e:
            raise SinkError(f"{self._names()}: encoding failed: {e}") from e
        self._send(packets)
        self.frames_written += 1

    def _send(self, packets: list[Any]) -> None:
        for packet in packets:
            pts = packet.pts
            dts = packet.dts if packet.dts is not None else pts
            failed: list[SinkError] = []
            for output in self.outputs:
                try:
                    output._put(packet, pts, dts, self._wall)
                except SinkError as e:
                    if not self.isolate:
                        raise
                    self.errors[output.name] += 1
                    failed.append(e)
                    log.warning("%s failed (%s); the other outputs go on", output.name, e)
            if failed and len(failed) == len(self.outputs):
                raise SinkError(f"every output failed: {'; '.join(map(str, failed))}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[BaseException] = []
        try:
            self._send(self.encoder.flush())
        except (SinkError, av.error.FFmpegError) as e:
            errors.append(e)
        for output in self.outputs:
            try:
                output._finish()
            except SinkError as e:
                errors.append(e)
        if errors:
            raise SinkError(f"{self._names()}: closing failed: {errors[0]}") from errors[0]

    def _names(self) -> str:
        return ", ".join(o.name for o in self.outputs)


class _LiveSink(_Output):
    """A live output that can also run on its own, with its own encoder."""

    def __init__(self, settings: EncoderSettings | None, frame_rate: float, gop_s: float) -> None:
        if not frame_rate > 0:
            raise ConfigError(f"frame_rate: expected > 0, got {frame_rate!r}")
        if not gop_s > 0:
            raise ConfigError(f"gop_s: expected seconds > 0, got {gop_s!r}")
        self.settings = settings or EncoderSettings()
        self.frame_rate = float(frame_rate)
        self.gop_s = float(gop_s)
        self._fanout: _Fanout | None = None
        self._in_tee = False

    @property
    def frames_written(self) -> int:
        return self._fanout.frames_written if self._fanout is not None else 0

    def write(self, frame: Frame) -> None:
        """Encode and write one frame (the encoder opens on the first)."""
        if self._in_tee:
            raise SinkError(f"{self.name} belongs to a TeeSink: write to the tee instead")
        if self._fanout is None:
            self._fanout = _Fanout(
                [self], self.settings, self.frame_rate, self.gop_s, isolate=False
            )
        self._fanout.write(frame)

    def __call__(self, packet: FramePacket) -> None:
        self.write(packet.frame)

    def close(self) -> None:
        """Flush the encoder and close the output; safe to call twice."""
        if self._in_tee:
            return  # the tee closes its members
        if self._fanout is None:
            self._fanout = _Fanout(
                [self], self.settings, self.frame_rate, self.gop_s, isolate=False
            )
        self._fanout.close()

    def __enter__(self) -> _LiveSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SegmentSink(_LiveSink):
    """Record to back-to-back files of about ``segment_time_s``, each playable on its own.

    ``pattern_or_dir`` is a folder, where files are named ``{prefix}_{start}.{container}``, or a
    path pattern containing ``{start}``, such as ``rec/cam1_{start}.mp4``. ``{start}`` is the
    segment's first frame capture time in UTC, e.g. ``20261123T181500Z``. A name already taken
    gets ``-1``, ``-2``, ... appended. A segment is cut at the first frame at or past
    ``segment_time_s`` of media time, and the encoder is asked for a keyframe there, so segments
    are that long to within a frame.

    Timestamps start at 0 in every segment: each file stands alone, and the file name says when
    it began.

    Example:
        >>> with SegmentSink("rec/", segment_time_s=600, prefix="cam1") as sink:  # doctest: +SKIP
        ...     for frame in source.frames():
        ...         sink.write(frame)
    """

    def __init__(
        self,
        pattern_or_dir: str | os.PathLike[str],
        segment_time_s: float = 600,
        container: str = "mp4",
        settings: EncoderSettings | None = None,
        *,
        prefix: str = "cam",
        frame_rate: float = 25,
        gop_s: float = 2,
    ) -> None:
        super().__init__(settings, frame_rate, gop_s)
        if container not in _CONTAINERS:
            raise ConfigError(f"container: expected 'mp4' or 'mkv', got {container!r}")
        if not segment_time_s > 0:
            raise ConfigError(f"segment_time_s: expected seconds > 0, got {segment_time_s!r}")
        target = Path(pattern_or_dir)
        if target.is_dir() or str(pattern_or_dir).endswith(os.sep):
            pattern = target / f"{prefix}_{{start}}.{container}"
        else:
            pattern = target
            if "{start}" not in target.name:
                raise ConfigError(
                    f"segment pattern: expected a folder or a file name containing '{{start}}', "
                    f"got '{target}'"
                )
            if target.suffix.lower() != f".{container}":
                raise ConfigError(
                    f"segment pattern: expected a '.{container}' name for container="
                    f"{container!r}, got '{target.name}'"
                )
        folder = pattern.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise OutputNotWritableError(
                f"cannot write segments to '{folder}': expected an existing, writable folder"
            )
        self.pattern = pattern
        self.container = container
        self.segment_time_s = float(segment_time_s)
        self.name = f"segments:{pattern}"
        self.segments: list[Path] = []  # every file started, in order
        self.packets_skipped = 0  # waiting for a keyframe after a failed segment
        self._retry_at = 0.0  # after a failure, no new segment (and keyframe) before this
        self._out: Any = None
        self._stream: Any = None
        self._start_pts = 0

    def _wants_keyframe(self, pts: int) -> bool:
        if self._out is None:
            return time.monotonic() >= self._retry_at
        return self._due(pts)

    def _due(self, pts: int) -> bool:
        return (pts - self._start_pts) * self._enc.time_base >= self.segment_time_s

    def _put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        if self._out is not None and packet.is_keyframe and self._due(pts):
            self._close_segment()
        if self._out is None:
            if not packet.is_keyframe or time.monotonic() < self._retry_at:
                self.packets_skipped += 1
                return
            try:
                self._open_segment(pts, wall_time)
            except SinkError:
                self._retry_at = time.monotonic() + _SEGMENT_RETRY_S
                raise
        try:
            packet.time_base = self._enc.time_base
            packet.pts, packet.dts = pts - self._start_pts, dts - self._start_pts
            packet.stream = self._stream
            self._out.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._abandon()
            raise SinkError(f"segment '{self.segments[-1]}': writing failed: {e}") from e

    def _open_segment(self, pts: int, wall_time: float) -> None:
        enc = self._enc
        stamp = datetime.fromtimestamp(wall_time, UTC).strftime(_STAMP)
        path = Path(str(self.pattern).replace("{start}", stamp))
        n = 0
        while path.exists():
            n += 1
            path = Path(str(self.pattern).replace("{start}", f"{stamp}-{n}"))
        options = _MP4_OPTIONS if self.container == "mp4" else _MKV_OPTIONS
        try:
            out = av.open(str(path), mode="w", format=_CONTAINERS[self.container], options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"cannot create segment '{path}': {e}") from e
        try:
            out.metadata["creation_time"] = datetime.fromtimestamp(wall_time, UTC).isoformat()
            stream = out.add_mux_stream(
                "h264",
                rate=Fraction(enc.frame_rate).limit_denominator(1001),
                width=enc.width,
                height=enc.height,
            )
            stream.time_base = enc.time_base
        except (av.error.FFmpegError, ValueError) as e:
            out.close()
            raise SinkError(f"cannot set up segment '{path}': {e}") from e
        self._out, self._stream, self._start_pts = out, stream, pts
        self.segments.append(path)
        log.info("recording segment %s", path)

    def _close_segment(self) -> None:
        out, self._out = self._out, None
        try:
            out.close()
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"closing segment '{self.segments[-1]}' failed: {e}") from e

    def _abandon(self) -> None:
        """Drop a segment that failed; a keyframe after ``_SEGMENT_RETRY_S`` starts a new one."""
        out, self._out = self._out, None
        self._retry_at = time.monotonic() + _SEGMENT_RETRY_S
        try:
            out.close()
        except (av.error.FFmpegError, OSError) as e:
            log.debug("closing a failed segment: %s", e)

    def _finish(self) -> None:
        if self._out is not None:
            self._close_segment()


_CLOSE = object()


class RtspSink(_LiveSink):
    """Publish to an RTSP server (ANNOUNCE/RECORD), and come back after the server does.

    Network I/O runs on a named thread behind a queue of ``queue_s`` seconds of packets, so a
    slow or vanished server never blocks the encoder. When the server goes away, the connection
    is dropped, and packets are discarded until the next attempt, which comes after a capped
    exponential backoff with jitter. At that point the encoder is asked for a keyframe, and the
    session starts again on it. A full queue drops packets until the next keyframe, so viewers
    never see a broken GOP.

    Counters: ``connected``, ``reconnects`` (sessions after the first), ``failures`` (failed
    connects and lost sessions), ``packets_sent``, ``packets_dropped``.
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
        frame_rate: float = 25,
        gop_s: float = 1,
        queue_s: float = 2,
        on_event: EventCallback | None = None,
    ) -> None:
        super().__init__(settings, frame_rate, gop_s)
        if not url.lower().startswith(("rtsp://", "rtsps://")):
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
        self.packets_dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(2, round(queue_s * frame_rate)))
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._next_attempt_at = 0.0  # monotonic; no connect attempt before this
        self._need_keyframe = True
        self._drop_until_key = False
        self._sessions = 0
        self._attempts = 0  # consecutive failed attempts

    def _bind(self, encoder: _Encoder) -> None:
        super()._bind(encoder)
        self._thread = threading.Thread(
            target=self._run, name=f"streamdeid.rtsp-out:{mask_url(self.url)}", daemon=True
        )
        self._thread.start()

    def _wants_keyframe(self, pts: int) -> bool:
        # Only when a (re)connect attempt is due: no keyframe storm while the server is down.
        if self._need_keyframe and time.monotonic() >= self._next_attempt_at:
            self._need_keyframe = False
            return True
        return False

    def _put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise SinkError(f"{self.name}: sender thread is not running")
        key = packet.is_keyframe
        if self._drop_until_key and not key:
            self.packets_dropped += 1
            return
        copy = av.Packet(bytes(packet))  # the sender thread owns its own packet
        copy.pts, copy.dts, copy.is_keyframe = pts, dts, key
        copy.time_base = self._enc.time_base
        try:
            self._queue.put_nowait(copy)
            self._drop_until_key = False
        except queue.Full:
            self.packets_dropped += 1
            self._drop_until_key = True
            self._need_keyframe = True

    def _finish(self) -> None:
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
                    if not item.is_keyframe or time.monotonic() < self._next_attempt_at:
                        continue  # down: discard until an attempt is due and a keyframe comes
                    out, stream = self._connect()
                    if out is None:
                        continue
                    start_pts = item.pts
                try:
                    item.pts, item.dts = item.pts - start_pts, item.dts - start_pts
                    item.stream = stream
                    out.mux(item)  # the first one sends ANNOUNCE/SETUP/RECORD
                except (av.error.FFmpegError, OSError, ValueError) as e:
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
        enc = self._enc
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
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (self._attempts - 1))
        delay = base * (1 + random.uniform(-self.jitter, self.jitter))
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


class TeeSink:
    """Encode once, write to several live sinks (e.g. segments and an RTSP push).

    The encoder settings are ``settings``, else the first sink's. The members' own settings,
    frame rates and GOPs are then ignored, except that the GOP is the shortest member's. A
    member that fails is counted in ``errors[name]`` and skipped for that packet, and retries
    by itself: the next segment, or the next RTSP connection. Only a packet that no member
    could take raises :class:`SinkError`.

    Example:
        >>> rec = SegmentSink("rec/", segment_time_s=600, prefix="cam1")  # doctest: +SKIP
        >>> push = RtspSink("rtsp://127.0.0.1:8554/cam1-anon")  # doctest: +SKIP
        >>> with TeeSink([rec, push]) as tee:  # doctest: +SKIP
        ...     tee.write(frame)
    """

    def __init__(self, sinks: Sequence[_LiveSink], settings: EncoderSettings | None = None) -> None:
        if not sinks:
            raise ConfigError("TeeSink: expected at least one sink, got none")
        for sink in sinks:
            if not isinstance(sink, _LiveSink):
                raise ConfigError(
                    f"TeeSink: expected SegmentSink or RtspSink members, got {type(sink).__name__}"
                )
            if sink._fanout is not None or sink._in_tee:
                raise ConfigError(f"TeeSink: {sink.name} is already in use")
            sink._in_tee = True
        self.sinks = list(sinks)
        first = sinks[0]
        self._fanout = _Fanout(
            self.sinks,
            settings or first.settings,
            first.frame_rate,
            min(s.gop_s for s in sinks),
            isolate=True,
        )

    @property
    def errors(self) -> dict[str, int]:
        return self._fanout.errors

    @property
    def frames_written(self) -> int:
        return self._fanout.frames_written

    def write(self, frame: Frame) -> None:
        self._fanout.write(frame)

    def __call__(self, packet: FramePacket) -> None:
        self.write(packet.frame)

    def close(self) -> None:
        """Flush the one encoder into every sink, then close them all; safe to call twice."""
        self._fanout.close()

    def __enter__(self) -> TeeSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
