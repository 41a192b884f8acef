"""Encode anonymized frames back into a file with PyAV, keeping what the input had.

The contract is "nothing lost, nothing corrupted": every frame is written with its input pts in the
input's time base (no resampling to constant frame rate, no dropped or duplicated frames), at the
input's exact size (odd sizes switch to 4:4:4 rather than pad), with the input's rotation, and with
the input's audio copied packet for packet (re-encoded only when the output container cannot carry
the codec). The encoder is set up lazily from the first frame, as the writer in vidgear does, and
is always flushed and closed, so an interrupted run still leaves a playable file.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from streamdeid.errors import OutputNotWritableError, SinkError
from streamdeid.io.frame_sink import FrameSink
from streamdeid.io.pixfmt import choose_pix_fmt, to_video_frame
from streamdeid.io.pts import RisingPts, jump_limit
from streamdeid.io.source import SourceInfo
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.types import Frame

log = logging.getLogger(__name__)

# User-facing codec names → FFmpeg encoders. AV1 uses SVT-AV1: libaom is 10-50× slower on CPU.
CODECS = {
    "h264": "libx264",
    "h265": "libx265",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "gif": "gif",
    "mpeg4": "mpeg4",
    "ffv1": "ffv1",  # lossless (planar RGB): revealed footage for review, bit-exact
}

# Output containers whose muxer cannot carry H.264 get their own default codec.
# AVI gets MPEG-4 Part 2: FFmpeg reads H.264-in-AVI back with every pts shifted by one frame.
_DEFAULT_CODEC_BY_SUFFIX = {".webm": "vp9", ".gif": "gif", ".avi": "mpeg4"}
_AUDIO_FALLBACK = {".webm": "libopus", ".avi": "libmp3lame", ".mp3": "libmp3lame"}
_NO_PTS_CONTAINERS = frozenset({".avi", ".flv"})
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 6: "5.1", 8: "7.1"}
# FFmpeg's MPEG-TS muxer has no codec table, so PyAV's supported_codecs under-reports it.
_TS_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"})
_EXTRA_AUDIO = {".ts": _TS_AUDIO, ".mts": _TS_AUDIO, ".m2ts": _TS_AUDIO}


# x264/x265 presets when the config names none. Files: veryfast, the quality a file keeps. A
# camera cannot wait for its encoder: at 1080p superfast costs 18 instead of 29 ms of CPU per
# frame (x264, zerolatency, measured on the 2-core dev machine) for 17 % more bits. Above 720p
# even that leaves the detector too little of two cores: a 1080p25 RTSP camera, 60 s, had the
# detector on 50-52 % of frames at latency p95 250-265 ms with superfast, and on 71 % at 185 ms
# with ultrafast (11 ms of CPU per frame), for 1.7x the bits (12 instead of 7 Mbit/s masked).
# 720p too, since 2026-12-04 (AMD EPYC host): three alternated pairs of 60-s runs of a 720p25
# camera had the detector on 80, 71 and 92 % of frames with superfast, on 92, 96 and 94 % with
# ultrafast (p95 175/205/140 against 125/105/115 ms), which costs 5.4 instead of 7.8 ms of CPU
# per frame and 2.5x the bits (unmasked test footage, crf 20: 9.4 against 3.8 Mbit/s). A site
# that stores the video and has the CPU to spare sets encoder.preset: superfast.
FILE_PRESET = "veryfast"
LIVE_PRESET = "superfast"
LIVE_PRESET_LARGE = "ultrafast"
LIVE_LARGE_PIXELS = 1280 * 720


def live_preset(width: int, height: int) -> str:
    """The camera preset for frames of this size when the config names none."""
    return LIVE_PRESET_LARGE if width * height >= LIVE_LARGE_PIXELS else LIVE_PRESET


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """Encoder choices; ``codec=None`` picks one that suits the output container."""

    codec: str | None = None
    crf: int | None = 20
    bitrate: int | None = None  # bits/s; when set, replaces crf
    preset: str | None = None  # None = FILE_PRESET (files), live_preset() (cameras)
    pix_fmt: str | None = None  # None = yuv420p, or yuv444p when the size is odd
    audio: str = "copy"  # copy | reencode | drop
    threads: int = 0  # 0 = let FFmpeg choose


def check_output_writable(path: str | os.PathLike[str]) -> None:
    """Fail before any decoding if the output cannot be created."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputNotWritableError(
            f"cannot write output '{p}': expected an existing folder, '{parent}' does not exist"
        )
    if p.is_dir():
        raise OutputNotWritableError(
            f"cannot write output '{p}': expected a file path, got a folder"
        )
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputNotWritableError(f"cannot write output '{p}': permission denied")


def resolve_codec(settings: EncoderSettings, output: str) -> str:
    suffix = Path(output).suffix.lower()
    name = settings.codec or _DEFAULT_CODEC_BY_SUFFIX.get(suffix, "h264")
    encoder = CODECS.get(name, name)
    if encoder not in av.codecs_available:
        raise SinkError(f"encoder '{name}' is not available in this FFmpeg build")
    return encoder


class VideoSink(FrameSink):
    """Write frames to ``path``; use as a context manager so it is always closed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: SourceInfo,
        settings: EncoderSettings | None = None,
        *,
        rotation: int | Callable[[], int] = 0,
        audio_from: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.name = self.path
        self.info = info
        self.settings = settings or EncoderSettings()
        self.rotation = rotation
        self._audio_from = audio_from if self.settings.audio != "drop" else None
        self._encoder = resolve_codec(self.settings, self.path)
        check_output_writable(self.path)
        try:
            self._container = av.open(self.path, mode="w", options=_mux_options(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise OutputNotWritableError(f"cannot create output '{self.path}': {e}") from e
        self._stream: Any = None
        self._audio: _AudioCopier | None = None
        self.metadata: dict[str, str] = {}  # container tags, written with the header
        self.frames_written = 0
        self._closed = False
        self._rising = RisingPts()
        self.last_pts: int | None = None

    def _open_stream(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        s = self.settings
        if (w, h) != (self.info.width, self.info.height):
            log.debug(
                "first frame is %dx%d, header said %dx%d", w, h, self.info.width, self.info.height
            )
        stream = self._container.add_stream(
            self._encoder, rate=self.info.frame_rate or DEFAULT_FRAME_RATE
        )
        stream.width, stream.height = w, h
        stream.time_base = self.info.time_base
        stream.codec_context.time_base = self.info.time_base
        stream.pix_fmt = choose_pix_fmt(self._encoder, w, h, s.pix_fmt)
        options = self._encoder_options()
        if Path(self.path).suffix.lower() in _NO_PTS_CONTAINERS:
            # These containers store only decode order: B-frames would shift every timestamp.
            options["bf"] = "0"
        stream.options = options
        if s.bitrate:
            stream.bit_rate = s.bitrate
        elif self._encoder == "mpeg4":  # no constant-quality mode: ~0.2 bit per pixel
            stream.bit_rate = int(w * h * float(self.info.frame_rate or DEFAULT_FRAME_RATE) * 0.2)
        stream.thread_count = s.threads
        rotation = self.rotation() if callable(self.rotation) else self.rotation
        if rotation:
            stream.set_display_rotation(rotation)
        self._stream = stream
        self._container.metadata.update(self.metadata)
        if self._audio_from:
            self._audio = _AudioCopier.open(
                self._audio_from,
                self._container,
                self.settings.audio,
                Path(self.path).suffix.lower(),
                self.info,
            )

    def _encoder_options(self) -> dict[str, str]:
        s, enc, opts = self.settings, self._encoder, {}
        if enc in ("libx264", "libx265"):
            if s.crf is not None and not s.bitrate:
                opts["crf"] = str(s.crf)
            opts["preset"] = s.preset or FILE_PRESET
            if enc == "libx265":
                opts["x265-params"] = "log-level=error"
        elif enc == "libvpx-vp9":
            if s.crf is not None and not s.bitrate:
                opts.update(crf=str(s.crf), b="0")
            opts.update({"row-mt": "1", "deadline": "good", "cpu-used": "5"})
        elif enc == "libsvtav1":
            if s.crf is not None and not s.bitrate:
                opts["crf"] = str(s.crf)
            opts["preset"] = s.preset if (s.preset or "").isdigit() else "10"
        return opts

    def write(self, frame: Frame) -> None:
        if self._closed:
            raise SinkError(f"'{self.path}': write after close")
        if self._stream is None:
            self._open_stream(frame)
        vf = to_video_frame(frame.image, self._stream.pix_fmt)
        vf.pts = None if frame.pts is None else self._rising(frame.pts)
        self.last_pts = vf.pts  # what the file says this frame's time is (reversible live)
        vf.time_base = self.info.time_base
        try:
            self._mux(self._stream.encode(vf))
        except av.error.FFmpegError as e:
            raise self._sink_error(e) from e
        except OSError as e:
            raise self._sink_error(e) from e
        self.frames_written += 1

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            if self._audio is not None and packet.pts is not None:
                self._audio.mux_until(float(packet.pts * packet.time_base))
            self._container.mux(packet)

    def _sink_error(self, e: BaseException) -> SinkError:
        code = getattr(e, "errno", None)
        if code == errno.ENOSPC:
            return SinkError(f"'{self.path}': disk full after {self.frames_written} frames")
        return SinkError(f"'{self.path}': writing failed after {self.frames_written} frames: {e}")

    def close(self) -> None:
        """Flush the encoder and write the trailer; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        error: BaseException | None = None
        try:
            if self._stream is not None:
                self._mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.mux_until(float("inf"))
        except (av.error.FFmpegError, OSError) as e:
            error = e
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError) as e:
                error = error or e
            if self._stream is None:
                # Nothing was encoded (the run failed first): an empty file would look like
                # a result, so leave none.
                Path(self.path).unlink(missing_ok=True)
        if error is not None:
            raise self._sink_error(error) from error


def _mux_options(path: str) -> dict[str, str]:
    """Matroska stores negative timestamps (a block's time is signed), but by default FFmpeg
    shifts every stream so the first audio priming packet (-21 ms for AAC) starts at 0: the
    video would then start 21 ms late, a timestamp the input never had (and a reveal that
    pairs frames by time would refuse the file). Keep the input's times instead."""
    if Path(path).suffix.lower() in (".mkv", ".webm"):
        return {"avoid_negative_ts": "disabled"}
    return {}


def _named_layout(layout: Any) -> Any:
    """``layout``, or the usual one for its channel count when its channel order is unknown.

    G.711 and PCM audio in AVI (DVR exports) often say only "1 channels"; encoders refuse that.
    """
    if not layout.name.endswith("channels"):
        return layout
    return _LAYOUTS.get(layout.nb_channels, layout)


class _AudioCopier:
    """Re-reads the input's audio packets and interleaves them by time with the video.

    A second demuxer on the same file keeps audio out of the frame pipeline entirely, so audio
    costs no queue slots and memory stays bounded however far the video lags behind.
    """

    def __init__(
        self, source: Any, in_stream: Any, out_stream: Any, encode: bool, info: SourceInfo
    ) -> None:
        self._source = source
        self._in = in_stream
        self._out = out_stream
        self._encode = encode
        self._packets = source.demux(in_stream)
        self._pending: Any = None
        self._done = False
        # The video's timing rule and shift, so a clock restart or a shifted start moves the
        # audio with the pictures.
        tb = Fraction(in_stream.time_base or Fraction(1, in_stream.codec_context.sample_rate))
        self._rising = RisingPts(jump_limit(tb, info.clock_restarts), round(info.start_shift / tb))
        self._last_duration = 0
        self._next_sample: int | None = None  # re-encoding: pts of the next decoded frame
        self.skipped = 0  # damaged packets left out

    @classmethod
    def open(
        cls, path: str, container: Any, mode: str, suffix: str, info: SourceInfo
    ) -> _AudioCopier | None:
        try:
            source = av.open(path, mode="r")
        except av.error.FFmpegError as e:
            log.warning("audio not kept: cannot reopen '%s' (%s)", path, e)
            return None
        if not source.streams.audio:
            source.close()
            return None
        in_stream = source.streams.audio[0]
        codec = in_stream.codec_context.name
        allowed = container.supported_codecs | _EXTRA_AUDIO.get(suffix, frozenset())
        if mode == "copy" and codec in allowed:
            out_stream = container.add_stream_from_template(in_stream)
            return cls(source, in_stream, out_stream, False, info)
        encoder = _AUDIO_FALLBACK.get(suffix, "aac")
        if av.codec.Codec(encoder, "w").name not in allowed:
            log.warning("audio dropped: output container takes neither %s nor %s", codec, encoder)
            source.close()
            return None
        log.info("audio %s re-encoded to %s for this container", codec, encoder)
        out_stream = container.add_stream(encoder, rate=in_stream.codec_context.sample_rate)
        out_stream.layout = _named_layout(in_stream.codec_context.layout)
        return cls(source, in_stream, out_stream, True, info)

    def mux_until(self, t_s: float) -> None:
        """Mux audio up to time ``t_s`` (seconds); the muxer interleaves the rest."""
        while not self._done:
            packet = self._pending or self._next_packet()
            self._pending = None
            if packet is None:
                self._done = True
                if self._encode:
                    self._out.container.mux(self._out.encode(None))
                return
            if float(packet.dts * packet.time_base) > t_s:
                self._pending = packet
                return
            self._write(packet)

    def _next_packet(self) -> Any:
        """The next audio packet with data, retimed by the video's rule; None at the end."""
        for packet in self._packets:
            if packet.dts is None or packet.size == 0:
                continue
            dts = self._rising(packet.dts, self._last_duration or None)
            if packet.pts is not None:
                packet.pts += dts - packet.dts
            packet.dts = dts
            self._last_duration = packet.duration or 0
            return packet
        return None

    def _write(self, packet: Any) -> None:
        container = self._out.container
        if not self._encode:
            packet.stream = self._out
            try:
                container.mux(packet)
            except av.error.InvalidDataError as e:
                # A damaged audio packet the output's bitstream filter cannot convert (e.g. a
                # corrupt ADTS header from MPEG-TS into MP4/MKV): skip it, as its decoder would.
                self.skipped += 1
                log.warning("audio: skipped a damaged packet at dts %s (%s)", packet.dts, e)
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return
        if self._next_sample is None:  # from the first packet's time, not from 0
            rate = self._in.codec_context.sample_rate
            self._next_sample = round((packet.pts or 0) * packet.time_base * rate)
        for frame in frames:
            # Sample counts without gaps: PyAV re-frames audio for the encoder's frame size and
            # refuses a pts that does not follow on.
            frame.pts = self._next_sample
            frame.time_base = Fraction(1, frame.sample_rate)
            self._next_sample += frame.samples
            container.mux(self._out.encode(frame))

    def close(self) -> None:
        self._source.close()
