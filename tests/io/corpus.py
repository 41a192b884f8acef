"""Input files shaped like real-world archives, made with PyAV (no ffmpeg CLI needed).

Every clip shows the default synthetic scenario (two real faces moving, one leaving and coming
back) with its frame number drawn as a code along the bottom edge (frame_code.py). A test can
tell which picture a decoded frame is, even when the file lost frames or its timestamps lie,
and check that every face on that picture was masked. The faces never reach the bottom strip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import pytest

from streamdeid.testing.render import render_frames
from streamdeid.testing.synthetic import default_face_paths

from frame_code import stamp_code

SIZE = (320, 240)
FRAMES = 30  # 1.2 s at 25 fps
RATE = 25


def scene(size: tuple[int, int] = SIZE, n: int = FRAMES) -> tuple[list[np.ndarray], list[list]]:
    """The pictures (numbered) and the face boxes on each."""
    images, boxes = [], []
    for number, (image, faces) in enumerate(render_frames(size, n, default_face_paths(size, n))):
        stamp_code(image, number)
        images.append(image)
        boxes.append([list(b) for b in faces])
    return images, boxes


@dataclass
class VideoSpec:
    """How the video stream of a corpus file is encoded."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = field(default_factory=dict)
    time_base: Fraction = Fraction(1, RATE)
    rotation: int = 0


@dataclass
class AudioSpec:
    codec: str = "aac"
    rate: int = 48_000


_SAMPLE_TYPES = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}


class _Tone:
    """A quiet sine from ``start_s`` on, in the encoder's own sample format and frame size."""

    def __init__(
        self, container: av.container.OutputContainer, spec: AudioSpec, start_s: float
    ) -> None:
        self.stream = container.add_stream(spec.codec, rate=spec.rate, layout="mono")
        self.container = container
        self.rate = spec.rate
        self.chunk = self.stream.codec_context.frame_size or 1024
        self.start = round(start_s * spec.rate)
        self.done = 0

    def write_until(self, t_s: float) -> None:
        fmt = self.stream.codec_context.format
        kind = _SAMPLE_TYPES[fmt.name.rstrip("p")]
        while self.start + self.done < round(t_s * self.rate):
            t = (self.done + np.arange(self.chunk)) / self.rate
            wave = 0.1 * np.sin(2 * np.pi * 440 * t)
            if np.issubdtype(kind, np.integer):
                wave = wave * np.iinfo(kind).max
            block = av.AudioFrame.from_ndarray(
                wave.astype(kind)[None, :], format=fmt.name, layout="mono"
            )
            block.sample_rate = self.rate
            block.pts = self.start + self.done
            block.time_base = Fraction(1, self.rate)
            self.done += self.chunk
            for packet in self.stream.encode(block):
                self.container.mux(packet)

    def flush(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)


def write_video(
    path: Path,
    images: Sequence[np.ndarray],
    pts: Sequence[int],
    video: VideoSpec,
    audio: AudioSpec | None = None,
    fmt: str | None = None,
) -> None:
    """Encode ``images`` with the given ``pts`` (in ``video.time_base``); audio follows them."""
    for codec in (video.codec, audio.codec if audio else None):
        try:
            av.codec.Codec(codec or "rawvideo", "w")
        except av.error.FFmpegError:
            pytest.skip(f"this FFmpeg build has no {codec} encoder to make the test file with")
    h, w = images[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(video.codec, rate=RATE)
        stream.width, stream.height = w, h
        stream.pix_fmt = video.pix_fmt
        stream.time_base = video.time_base
        stream.codec_context.time_base = video.time_base
        stream.options = dict(video.options)
        if video.rotation:
            stream.set_display_rotation(video.rotation)
        start_s = float(pts[0] * video.time_base)
        tone = _Tone(container, audio, start_s) if audio is not None else None
        for image, t in zip(images, pts, strict=True):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            picture.pts = t
            picture.time_base = video.time_base
            for packet in stream.encode(picture):
                container.mux(packet)
            if tone is not None:
                tone.write_until(float(t * video.time_base) + 1 / RATE)
        for packet in stream.encode():
            container.mux(packet)
        if tone is not None:
            tone.flush()


@dataclass(frozen=True)
class Clip:
    """One corpus file and what the tests need to know about it."""

    name: str
    path: Path
    boxes: list[list]  # face boxes by frame number
    audio: bool


def _cfr(n: int, start: int = 0, step: int = 1) -> list[int]:
    return [start + i * step for i in range(n)]


def dvr_avi(folder: Path, size: tuple[int, int] = SIZE, n: int = FRAMES) -> Clip:
    """A DVR export: H.264 with B-frames in AVI, which stores no presentation times, and G.711
    audio (a channel count, no layout) that MP4 and MKV cannot hold."""
    images, boxes = scene(size, n)
    path = folder / f"dvr_bframes_{size[0]}x{size[1]}.avi"
    spec = VideoSpec(options={"bf": "3", "g": "12", "preset": "veryfast"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec("pcm_mulaw", 8000))
    return Clip("avi_h264_bframes", path, boxes, True)


def _raw_h264(folder: Path) -> Clip:
    # A raw H.264 stream (DVRs export ".264" files): no container, so no timestamps at all.
    images, boxes = scene()
    path = folder / "raw.h264"
    spec = VideoSpec(options={"bf": "3", "g": "12"})
    write_video(path, images, _cfr(len(images)), spec, fmt="h264")
    return Clip("h264_raw_no_pts", path, boxes, False)


def _mjpeg_avi(folder: Path) -> Clip:
    images, boxes = scene()
    path = folder / "mjpeg.avi"
    spec = VideoSpec("mjpeg", "yuvj420p", {"q:v": "4"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec("pcm_s16le", 16000))
    return Clip("avi_mjpeg", path, boxes, True)


def _vfr_mp4(folder: Path) -> Clip:
    # A phone recording: frame intervals between 20 and 100 ms.
    images, boxes = scene()
    steps = [20, 40, 33, 100, 40, 60, 25]
    pts = np.cumsum([0] + [steps[i % len(steps)] for i in range(len(images) - 1)]).tolist()
    path = folder / "vfr.mp4"
    write_video(path, images, pts, VideoSpec(time_base=Fraction(1, 1000)), AudioSpec())
    return Clip("mp4_vfr", path, boxes, True)


def _ts_segments(folder: Path, name: str, starts_s: Sequence[float]) -> tuple[Path, list[list]]:
    """MPEG-TS recordings of consecutive parts of the scene, joined byte by byte (``cat``)."""
    images, boxes = scene()
    cut = np.linspace(0, len(images), len(starts_s) + 1).astype(int)
    path = folder / name
    tb = Fraction(1, 90_000)
    with path.open("wb") as joined:
        for k, start_s in enumerate(starts_s):
            part = folder / f"{name}.part{k}"
            pts = _cfr(cut[k + 1] - cut[k], round(start_s * 90_000), 3600)
            spec = VideoSpec(options={"bf": "2", "g": "12"}, time_base=tb)
            write_video(part, images[cut[k] : cut[k + 1]], pts, spec, AudioSpec(), fmt="mpegts")
            joined.write(part.read_bytes())
            part.unlink()
    return path, boxes


def _ts_discontinuity(folder: Path) -> Clip:
    # Three recordings joined: the clock jumps an hour ahead, then back to 5 s.
    path, boxes = _ts_segments(folder, "joined.ts", [10.0, 3610.0, 5.0])
    return Clip("ts_discontinuity", path, boxes, True)


def _ts_wrap(folder: Path) -> Clip:
    # The 33-bit pts (26.5 h at 90 kHz) wraps to 0 half a second into the clip.
    path, boxes = _ts_segments(folder, "wrap.ts", [2**33 / 90_000 - 0.5])
    return Clip("ts_pts_wrap", path, boxes, True)


def _hevc_mkv(folder: Path) -> Clip:
    images, boxes = scene()
    path = folder / "hevc.mkv"
    spec = VideoSpec("libx265", options={"x265-params": "log-level=error:bframes=3"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec("libopus"))
    return Clip("mkv_hevc", path, boxes, True)


def _ten_bit(folder: Path) -> Clip:
    images, boxes = scene()
    path = folder / "ten_bit.mkv"
    write_video(path, images, _cfr(len(images)), VideoSpec(pix_fmt="yuv420p10le"))
    return Clip("mkv_h264_10bit", path, boxes, False)


def _interlaced(folder: Path) -> Clip:
    # A DVD or broadcast capture: interlaced MPEG-2 in an MPEG program stream with MP2 audio.
    images, boxes = scene()
    path = folder / "interlaced.mpg"
    spec = VideoSpec("mpeg2video", options={"flags": "+ildct+ilme", "b": "2M", "bf": "2"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec("mp2"), fmt="vob")
    return Clip("mpg_interlaced_mpeg2", path, boxes, True)


def _mov_g711_late(folder: Path) -> Clip:
    # An IP camera's export: QuickTime with G.711 audio (which MP4 and MKV cannot hold, so it
    # is re-encoded), starting 2 s into the camera's clock.
    images, boxes = scene()
    path = folder / "camera.mov"
    audio = AudioSpec("pcm_mulaw", 8000)
    write_video(path, images, _cfr(len(images), 2 * RATE), VideoSpec(), audio)
    return Clip("mov_g711_late_start", path, boxes, True)


def _rotated(folder: Path) -> Clip:
    images, boxes = scene()
    path = folder / "rotated.mp4"
    write_video(path, images, _cfr(len(images)), VideoSpec(rotation=90), AudioSpec())
    return Clip("mp4_rotated", path, boxes, True)


def _odd_size(folder: Path) -> Clip:
    images, boxes = scene((321, 241))
    path = folder / "odd.mkv"
    write_video(path, images, _cfr(len(images)), VideoSpec(pix_fmt="yuv444p"), AudioSpec())
    return Clip("mkv_odd_321x241", path, boxes, True)


def _truncated(folder: Path) -> Clip:
    # A recording cut off while writing: the last group of pictures is incomplete.
    images, boxes = scene()
    path = folder / "truncated.mkv"
    spec = VideoSpec(options={"bf": "2", "g": "10"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.85)])
    return Clip("mkv_truncated", path, boxes, True)


def _damage(path: Path, seed: int, runs: Sequence[tuple[float, int]]) -> None:
    """Overwrite ``runs`` of (where, as a share of the file; how many bytes) with noise."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for at, size in runs:
        start = int(len(data) * at)
        data[start : start + size] = rng.integers(0, 256, size, np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _corrupt_ts(folder: Path) -> Clip:
    # Bad sectors in a transport stream: the decoder conceals the damaged pictures.
    images, boxes = scene()
    path = folder / "corrupt.ts"
    spec = VideoSpec(options={"bf": "2", "g": "10"}, time_base=Fraction(1, 90_000))
    write_video(path, images, _cfr(len(images), 90_000, 3600), spec, AudioSpec(), fmt="mpegts")
    _damage(path, 13, [(0.35, 600), (0.5, 600), (0.65, 600)])
    return Clip("ts_corrupt_packets", path, boxes, True)


def _corrupt_mp4(folder: Path) -> Clip:
    # Bad sectors inside an MP4's media data: some packets no longer decode at all.
    images, boxes = scene()
    path = folder / "corrupt.mp4"
    spec = VideoSpec(options={"bf": "2", "g": "10"})
    write_video(path, images, _cfr(len(images)), spec, AudioSpec())
    _damage(path, 0, [(0.5, 2000)])
    return Clip("mp4_corrupt_packets", path, boxes, True)


MAKERS: dict[str, Callable[[Path], Clip]] = {
    "avi_h264_bframes": dvr_avi,
    "h264_raw_no_pts": _raw_h264,
    "avi_mjpeg": _mjpeg_avi,
    "mp4_vfr": _vfr_mp4,
    "ts_discontinuity": _ts_discontinuity,
    "ts_pts_wrap": _ts_wrap,
    "mkv_hevc": _hevc_mkv,
    "mkv_h264_10bit": _ten_bit,
    "mpg_interlaced_mpeg2": _interlaced,
    "mp4_rotated": _rotated,
    "mov_g711_late_start": _mov_g711_late,
    "mkv_odd_321x241": _odd_size,
    "mkv_truncated": _truncated,
    "ts_corrupt_packets": _corrupt_ts,
    "mp4_corrupt_packets": _corrupt_mp4,
}


def outputs(name: str) -> tuple[str, ...]:
    """The containers a corpus file is anonymized into: MP4 and MKV, and AVI for AVI input."""
    return (".mp4", ".mkv", ".avi") if name.startswith("avi_") else (".mp4", ".mkv")


def audio_only(path: Path) -> Path:
    """An M4A with AAC and no video stream."""
    with av.open(str(path), "w", format="mp4") as container:
        tone = _Tone(container, AudioSpec(), 0.0)
        tone.write_until(1.0)
        tone.flush()
    return path


def zero_frames(path: Path) -> Path:
    """An AVI whose header lists a video stream (codec, size) and audio, but no packet at all."""
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        container.add_stream("aac", rate=48_000)
        container.start_encoding()
    return path


def undecodable(path: Path) -> Path:
    """An MJPEG AVI whose every packet is noise: it opens, and no frame decodes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=RATE)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuvj420p"
        for i in range(10):
            packet = av.Packet(rng.integers(0, 256, 3000, np.uint8).tobytes())
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, RATE)
            container.mux(packet)
    return path


def decode(path: Path, strict: bool = False) -> tuple[list[np.ndarray], list[float | None]]:
    """Every frame FFmpeg decodes, and each frame's time in seconds (None without a pts).

    Packets that fail to decode are skipped, as the ``ffmpeg`` tool does, unless ``strict``:
    then the first one raises.
    """
    images, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                if strict:
                    raise
                continue
            for f in frames:
                images.append(f.to_ndarray(format="bgr24"))
                times.append(None if f.pts is None else float(f.pts * f.time_base))
    return images, times
