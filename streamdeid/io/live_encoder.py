"""The encode side of the live outputs: one zero-latency H.264 encode, fanned out to outputs.

A live run has to keep recording through things a file run never meets: the process gets killed,
the RTSP server restarts, the disk fills up for a while. Two rules live here; the outputs
(:mod:`~streamdeid.io.segment_sink`, :mod:`~streamdeid.io.rtsp_sink`) add their own.

* One encode feeds every output. libx264 runs once, with zero latency and no B-frames, and the
  same packets are muxed into each output container. Recording and streaming together therefore
  cost one encode. An output only asks the encoder for a keyframe when it needs one: a new segment,
  or an RTSP reconnect.
* An output that fails does not stop the others (in a :class:`~streamdeid.io.tee_sink.TeeSink`):
  it is counted and skipped for that packet, and retries by itself.

:class:`LiveSink` is the base of the segment and RTSP sinks: each is a :class:`PacketOutput`
(it muxes packets) that can also run alone as a :class:`~streamdeid.io.frame_sink.FrameSink`,
with an encoder of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import av
import av.error
from av.video.frame import PictureType

from streamdeid.errors import ConfigError, SinkError
from streamdeid.io.frame_sink import FrameSink
from streamdeid.io.pixfmt import choose_pix_fmt, to_video_frame
from streamdeid.io.pts import RisingPts
from streamdeid.io.sink import EncoderSettings, live_preset
from streamdeid.types import Frame

log = logging.getLogger(__name__)

_H264_NAMES = frozenset({None, "h264", "libx264"})


def wall_time(frame: Frame) -> float:
    """Capture time on the wall clock: LiveFrame's ``wall_time``, else now."""
    return float(getattr(frame, "wall_time", 0.0) or time.time())


class LiveEncoder:
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
        self._rising = RisingPts()
        self._t0 = 0.0
        self._warned_size = False

    def prepare(self, frame: Frame) -> int:
        """Open on the first frame; return this frame's pts in :attr:`time_base`, rising.

        Frames keep their own pts when they have one. Frames without pts are timed by
        ``captured_at``. A pts that does not rise is restamped (:class:`RisingPts`).
        """
        if self.ctx is None:
            self._open(frame)
        if frame.pts is not None and frame.time_base == self.time_base:
            pts = int(frame.pts)
        elif frame.pts is not None and frame.time_base:
            pts = round(frame.pts * frame.time_base / self.time_base)
        else:
            pts = round((frame.captured_at - self._t0) / self.time_base)
        return self._rising(pts)

    def _open(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        s = self.settings
        if frame.pts is not None and frame.time_base:
            self.time_base = Fraction(frame.time_base)
        self._t0 = frame.captured_at
        pix_fmt = choose_pix_fmt("libx264", w, h, s.pix_fmt)
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
        ctx.time_base = self.time_base
        ctx.framerate = Fraction(self.frame_rate).limit_denominator(1001)
        ctx.gop_size = max(1, round(self.gop_s * self.frame_rate))
        ctx.max_b_frames = 0
        ctx.thread_count = s.threads
        preset = s.preset or live_preset(w, h)
        options = {"tune": "zerolatency", "preset": preset, "forced-idr": "1"}
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


class PacketOutput:
    """Something that muxes the encoder's packets. Subclasses implement the four hooks."""

    name = "output"
    _encoder: LiveEncoder | None = None

    def bind(self, encoder: LiveEncoder) -> None:
        """The encoder is open: its size and time base are known."""
        self._encoder = encoder

    @property
    def encoder(self) -> LiveEncoder:
        if self._encoder is None:
            raise SinkError(f"{self.name}: used before its encoder was opened")
        return self._encoder

    def wants_keyframe(self, pts: int) -> bool:
        """Asked once per frame before it is encoded; True forces a keyframe."""
        return False

    def put(self, packet: Any, pts: int, dts: int, wall_time: float) -> None:
        """Mux ``packet`` (``pts``/``dts`` in the encoder's time base); SinkError on failure."""
        raise NotImplementedError

    def finish(self) -> None:
        """Write trailers and release everything; SinkError on failure."""


class Fanout:
    """The encode loop shared by every live sink: one encoder, one or more outputs.

    With ``isolate`` (the tee), an output that raises is logged and counted, and the others go
    on. Only a packet that no output could take is an error.
    """

    def __init__(
        self,
        outputs: Sequence[PacketOutput],
        settings: EncoderSettings,
        frame_rate: float,
        gop_s: float,
        *,
        isolate: bool,
    ) -> None:
        self.outputs = list(outputs)
        self.encoder = LiveEncoder(settings, frame_rate, gop_s)
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
                output.bind(self.encoder)
        # Ask every output (no short-circuit): asking is how RtspSink consumes its request.
        keyframe = any([output.wants_keyframe(pts) for output in self.outputs])
        self._wall = wall_time(frame)
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
                    output.put(packet, pts, dts, self._wall)
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
                output.finish()
            except SinkError as e:
                errors.append(e)
        if errors:
            raise SinkError(f"{self._names()}: closing failed: {errors[0]}") from errors[0]

    def _names(self) -> str:
        return ", ".join(o.name for o in self.outputs)


class LiveSink(PacketOutput, FrameSink):
    """A live output that can also run on its own, with its own encoder.

    In a :class:`~streamdeid.io.tee_sink.TeeSink` the tee drives it instead: writing to a member
    directly is an error, and closing it is left to the tee.
    """

    def __init__(self, settings: EncoderSettings | None, frame_rate: float, gop_s: float) -> None:
        if not frame_rate > 0:
            raise ConfigError(f"frame_rate: expected > 0, got {frame_rate!r}")
        if not gop_s > 0:
            raise ConfigError(f"gop_s: expected seconds > 0, got {gop_s!r}")
        self.settings = settings or EncoderSettings()
        self.frame_rate = float(frame_rate)
        self.gop_s = float(gop_s)
        self.fanout: Fanout | None = None
        self.in_tee = False

    @property
    def frames_written(self) -> int:
        return self.fanout.frames_written if self.fanout is not None else 0

    def write(self, frame: Frame) -> None:
        """Encode and write one frame (the encoder opens on the first)."""
        if self.in_tee:
            raise SinkError(f"{self.name} belongs to a TeeSink: write to the tee instead")
        self._own_fanout().write(frame)

    def close(self) -> None:
        """Flush the encoder and close the output; safe to call twice."""
        if self.in_tee:
            return  # the tee closes its members
        self._own_fanout().close()

    def _own_fanout(self) -> Fanout:
        if self.fanout is None:
            self.fanout = Fanout([self], self.settings, self.frame_rate, self.gop_s, isolate=False)
        return self.fanout
