"""Encoding synthetic frames to a video file (with an optional audio chirp) and its ground truth.

Kept apart from rendering so that any ``(frame, boxes)`` source, not only
:func:`~streamdeid.testing.render.render_frames`, can be written as a test clip.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamdeid.testing.render import Box

logger = logging.getLogger(__name__)

AUDIO_RATE = 48_000
# -20 dBFS: audible when checking a clip by ear, quiet enough not to startle anyone.
AUDIO_AMPLITUDE = 0.1


class _Chirp:
    """A quiet tone whose pitch glides up and down, generated in consecutive chunks.

    A glide rather than a constant tone makes audio/video drift audible; the phase is computed
    from the absolute sample index so chunks join without clicks, whatever their sizes.
    """

    def __init__(
        self, rate: int, low_hz: float = 330.0, high_hz: float = 660.0, period_s: float = 2.0
    ):
        self.rate = rate
        self.low_hz = low_hz
        self.high_hz = high_hz
        self.period_s = period_s

    def samples(self, start: int, count: int) -> np.ndarray:
        t = (start + np.arange(count, dtype=np.float64)) / self.rate
        mid = (self.low_hz + self.high_hz) / 2
        depth = (self.high_hz - self.low_hz) / 2
        omega = 2 * math.pi / self.period_s
        # Instantaneous frequency mid - depth*cos(omega t); phase is its integral.
        phase = 2 * math.pi * (mid * t - depth * np.sin(omega * t) / omega)
        fade = np.clip(t / 0.05, 0.0, 1.0)  # 50 ms fade-in: no click at the start
        return (AUDIO_AMPLITUDE * fade * np.sin(phase)).astype(np.float32)


def _check_image(image: object, expected: tuple[int, int] | None, index: int) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"frame {index} must be an (h, w, 3) BGR array, but got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"frame {index} must be uint8, but got {image.dtype}")
    size = (int(image.shape[1]), int(image.shape[0]))
    if expected is not None and size != expected:
        raise ValueError(
            f"frame {index} is {size[0]}x{size[1]}, but frame 0 was {expected[0]}x{expected[1]}"
        )
    return size


def write_clip(
    path: str | Path,
    frames_iter: Iterable[tuple[np.ndarray, Sequence[Box]]],
    fps: int = 25,
    codec: str = "libx264",
    crf: int = 18,
    audio: bool = True,
    gop: int | None = None,
) -> list[dict]:
    """Encode ``(frame, boxes)`` pairs to a video file and return the per-frame ground truth.

    The container follows the file extension (``.mp4``, ``.mkv``, ...). Video is yuv420p with
    ``pts`` = frame index in a ``1/fps`` time base (muxers may rescale it; compare decoded
    ``pts * time_base`` with ``index / fps``). The optional audio is a mono AAC chirp of exactly
    the video's duration, interleaved frame by frame, so pipelines that pass audio through are
    exercised too.

    Args:
        path: Output file; overwritten.
        frames_iter: ``(BGR uint8 frame, boxes)`` pairs, e.g. from :func:`render_frames`.
        fps: Frame rate (integer, so ``1/fps`` is an exact time base).
        codec: FFmpeg video encoder name.
        crf: Constant rate factor, used by the x264/x265 encoders only.
        audio: Whether to add the audio track.
        gop: Frames from one keyframe to the next (the encoder's default when None); tests
            that cut clips at keyframes use short ones.

    Returns:
        One ``{"pts": index, "boxes": [[x1, y1, x2, y2], ...]}`` per frame, JSON-ready.

    Raises:
        ValueError: No frames, frames of different sizes or odd dimensions (yuv420p cannot
            represent them), or ``fps`` < 1.
    """
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive integer, but got {fps!r}")
    iterator = iter(frames_iter)
    first, (width, height) = _first_frame(iterator)
    time_base = Fraction(1, fps)
    ground_truth: list[dict] = []
    with av.open(str(path), mode="w") as container:
        video = _add_video(container, codec, fps, (width, height), crf, gop)
        sound = _AudioTrack(container, fps) if audio else None
        for index, (image, boxes) in enumerate(itertools.chain([first], iterator)):
            _check_image(image, (width, height), index)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            picture.pts = index
            picture.time_base = time_base
            for packet in video.encode(picture):
                container.mux(packet)
            if sound is not None:
                sound.write_until(index + 1)
            ground_truth.append({"pts": index, "boxes": [[int(v) for v in box] for box in boxes]})
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            sound.flush()
    logger.debug("wrote %d frames of %dx%d to %s", len(ground_truth), width, height, path)
    return ground_truth


def _first_frame(
    iterator: Iterator[tuple[np.ndarray, Sequence[Box]]],
) -> tuple[tuple[np.ndarray, Sequence[Box]], tuple[int, int]]:
    """The first ``(frame, boxes)`` pair and the clip size it sets, checked before the file is
    opened so a bad first frame leaves no half-written clip behind."""
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError("write_clip needs at least one frame, but got none") from None
    width, height = _check_image(first[0], None, 0)
    if width % 2 or height % 2:
        raise ValueError(f"frame size must be even for yuv420p, but got {width}x{height}")
    return first, (width, height)


def _add_video(
    container: av.container.OutputContainer,
    codec: str,
    fps: int,
    size: tuple[int, int],
    crf: int,
    gop: int | None = None,
) -> av.VideoStream:
    """The yuv420p video stream, timed in ``1/fps`` so ``pts`` is the frame index."""
    video = container.add_stream(codec, rate=fps)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    video.time_base = Fraction(1, fps)
    if codec in ("libx264", "libx265"):
        video.options = {"crf": str(crf)}
    if gop is not None:
        video.options = {**video.options, "g": str(gop)}
    return video


class _AudioTrack:
    """The clip's mono AAC chirp, written in step with the video so the two stay interleaved."""

    def __init__(self, container: av.container.OutputContainer, fps: int) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        self.chirp = _Chirp(AUDIO_RATE)
        self.fps = fps
        self.samples_done = 0

    def write_until(self, frames: int) -> None:
        """Add the audio up to the end of video frame ``frames - 1``, in samples."""
        until = frames * AUDIO_RATE // self.fps
        chunk = self.chirp.samples(self.samples_done, until - self.samples_done)
        block = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        block.sample_rate = AUDIO_RATE
        block.pts = self.samples_done
        block.time_base = Fraction(1, AUDIO_RATE)
        self.samples_done = until
        for packet in self.stream.encode(block):
            self.container.mux(packet)

    def flush(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
