"""The small Python API beside the CLI: anonymize a file, a folder, or one image in memory.

Example:
    >>> from streamdeid import anonymize_file, load_config
    >>> stats = anonymize_file("in.mp4", "out.mp4", load_config("cctv"))  # doctest: +SKIP
    >>> stats.frames, stats.fps  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

# What a run is built from lives in streamdeid.build; this module only runs it.
from streamdeid.build import (
    Stages,
    background_nice,
    build_stages,
    encoder_settings,
    make_detector,
    make_obscure_filter,
    make_tracker,
)
from streamdeid.config import Config
from streamdeid.crypto.keeper import SourceKeeper
from streamdeid.crypto.writer import SidecarWriter
from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError, Interrupted, NotAVideoError, StreamDeidError
from streamdeid.io.image import read_image, write_image
from streamdeid.io.sink import VideoSink, check_output_writable
from streamdeid.io.source import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FileSource, is_image_path
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.obscure.filters import Filter
from streamdeid.obscure.surrogate import surrogate_counts, surrogate_summary
from streamdeid.pipeline.runner import Pipeline
from streamdeid.pipeline.stage import Stage
from streamdeid.pipeline.stages import (
    DetectStage,
    EncryptStage,
    ObscureStage,
    SinkStage,
    TrackStage,
)
from streamdeid.track.iou import IoUTracker
from streamdeid.types import Frame, FramePacket

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]  # (frames done, total or None)


@dataclass
class RunStats:
    """What one run did; ``--stats FILE.json`` writes this."""

    input: str
    output: str
    frames: int = 0
    faces_detected: int = 0
    tracks: int = 0
    regions: int = 0
    detector_runs: int = 0
    detection_failures: int = 0
    corrupt_packets: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    # What was wrong with the input and repaired (FileSource.repairs); counts for scripts.
    timing_repaired: int = 0
    clock_restarts: int = 0
    damaged_frames: int = 0
    repairs: list[str] = field(default_factory=list)
    # method surrogate only: regions that got a surrogate face, and those left blurred, by why.
    surrogate: dict[str, int] | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        line = (
            f"{self.output}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps), "
            f"{self.faces_detected} face detections, {self.tracks} tracks, "
            f"{self.regions} regions masked"
        )
        if self.repairs:
            line += "\n  input repaired: " + "; ".join(self.repairs)
        if self.surrogate is not None:
            line += "\n  " + surrogate_summary(self.surrogate)
        return line


def anonymize_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    config: Config | None = None,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    detector_factory: Callable[[], Detector] | None = None,
) -> RunStats:
    """Anonymize one video or image file into ``output_path``.

    Args:
        input_path: any FFmpeg-readable video, or a jpg/png/webp/tiff image.
        output_path: destination; its extension picks the container (or image format).
        config: settings; defaults to :class:`Config()`.
        progress: called after each written frame with (done, estimated total or None).
        stop: set it to finish early; the output is still closed cleanly and playable.
        detector_factory: replaces the configured detector (tests, custom backends). Called on
            the detector's own thread.

    Raises:
        StreamDeidError: with a one-line message for every expected failure.
    """
    config = config or Config()
    src, dst = os.fspath(input_path), os.fspath(output_path)
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise ConfigError(f"output '{dst}' is the input file: refusing to overwrite it")
    factory = detector_factory or (lambda: make_detector(config))
    if is_image_path(src):
        return _anonymize_image(src, dst, config, factory)
    return _anonymize_video(src, dst, config, factory, progress, stop)


def sidecar_path(output: str | os.PathLike[str]) -> Path:
    """Where the encrypted original regions of ``output`` are kept."""
    return Path(f"{os.fspath(output)}.sdeid")


def open_sidecar(output: str | os.PathLike[str], config: Config) -> SidecarWriter:
    from streamdeid.crypto import load_public_key

    keys = [load_public_key(p) for p in config.reversible.recipients]
    return SidecarWriter(sidecar_path(output), keys, lossy=config.reversible.lossy, overwrite=True)


def _anonymize_video(
    src: str,
    dst: str,
    config: Config,
    factory: Callable[[], Detector],
    progress: ProgressFn | None,
    stop: threading.Event | None,
) -> RunStats:
    check_output_writable(dst)
    stats = RunStats(input=src, output=dst)
    t0 = time.perf_counter()
    with FileSource(src) as source:
        total = source.estimated_frames
        # Rotation is known once the first frame is decoded, which precedes the first write.
        sink = VideoSink(
            dst,
            source.info,
            encoder_settings(config),
            audio_from=src,
            rotation=lambda: source.rotation,
        )
        built = build_stages(config, "file", detector_factory=factory)
        stages: list[Stage] = [
            built.detect,
            built.track,
            *_encrypt_stage(config, dst, source, sink),
        ]

        def on_frame(packet: FramePacket) -> None:
            if progress is not None:
                progress(packet.frame.index + 1, total)

        write = SinkStage(sink, on_frame=on_frame)
        pipeline = Pipeline(
            source.frames(),
            [*stages, built.obscure, write],
            queue_size=config.pipeline.queue_size,
            stop=stop,
            label=Path(src).name,
            background_nice=background_nice(config, source.info.height),
        )
        try:
            pipeline.run()
        finally:
            _fill_video_stats(stats, built, source, sink, pipeline, t0)
        if stop is not None and stop.is_set():
            stats.interrupted = True
            raise Interrupted(f"interrupted: '{dst}' closed cleanly after {stats.frames} frames")
    return stats


def _encrypt_stage(config: Config, dst: str, source: FileSource, sink: VideoSink) -> list[Stage]:
    """The sidecar stage in reversible mode, else none; the video's metadata names the recording."""
    if not config.reversible.enabled:
        return []
    writer = open_sidecar(dst, config)
    sink.metadata["comment"] = f"streamdeid recording {writer.recording_id}"
    if config.reversible.originals == "auto":
        SourceKeeper([writer]).attach(source)  # inter-frame input: its packets, not crops
    return [EncryptStage(writer, Fraction(1) / (source.info.frame_rate or DEFAULT_FRAME_RATE))]


def _fill_video_stats(
    stats: RunStats,
    built: Stages,
    source: FileSource,
    sink: VideoSink,
    pipeline: Pipeline,
    t0: float,
) -> None:
    """Copy the counters of a finished (or failed) run into ``stats``; they are valid either way."""
    stats.frames = sink.frames_written
    stats.faces_detected = built.detect.faces
    stats.detector_runs = built.detect.runs
    stats.detection_failures = built.detect.failures
    stats.tracks = built.track.tracker.total_tracks
    stats.regions = built.track.regions
    stats.corrupt_packets = source.corrupt_frames
    stats.timing_repaired = source.clock.repaired
    stats.clock_restarts = source.clock.jumps
    stats.damaged_frames = source.damaged_frames
    stats.repairs = source.repairs()
    stats.surrogate = surrogate_counts(built.obscure.filter)
    stats.stage_seconds = {"decode": round(pipeline.source_busy_s, 3)} | {
        s.name: round(s.busy_s, 3) for s in pipeline.stages
    }
    stats.seconds = time.perf_counter() - t0
    stats.fps = stats.frames / stats.seconds if stats.seconds else 0.0


def _anonymize_image(
    src: str, dst: str, config: Config, factory: Callable[[], Detector]
) -> RunStats:
    if not is_image_path(dst):
        raise ConfigError(
            f"output '{dst}': expected an image extension ({', '.join(sorted(IMAGE_SUFFIXES))}) "
            "for an image input"
        )
    t0 = time.perf_counter()
    frame = read_image(src, keep_exif=config.pipeline.keep_exif)
    detector = factory()
    writer = open_sidecar(dst, config) if config.reversible.enabled else None
    filter_ = make_obscure_filter(config)
    try:
        filter_.prepare()  # models, kernels, a site gallery
        packet = anonymize_frame(frame, detector, make_tracker(config), filter_, config, writer)
    finally:
        detector.close()
        if writer is not None:
            writer.close()
    write_image(dst, frame.image, exif_from=src if config.pipeline.keep_exif else None)
    seconds = time.perf_counter() - t0
    return RunStats(
        input=src,
        output=dst,
        frames=1,
        faces_detected=len(packet.detections) if packet.detections else 0,
        tracks=len(packet.tracks),
        regions=len(packet.regions),
        detector_runs=1,
        detection_failures=int(packet.detection_failed),
        seconds=seconds,
        fps=1 / seconds if seconds else 0.0,
        surrogate=surrogate_counts(filter_),  # blurred, and counted, without a site gallery
    )


def anonymize_frame(
    frame: Frame,
    detector: Detector,
    tracker: IoUTracker,
    filter_: Filter,
    config: Config,
    writer: SidecarWriter | None = None,
) -> FramePacket:
    """Run every stage on one frame in the calling thread (the building block for custom loops).

    ``frame.image`` is obscured in place; the returned packet says what was found. With a
    ``writer`` the original regions are encrypted first (reversible mode).
    """
    detect = DetectStage(lambda: detector, 1)
    detect.detector = detector
    out = detect.process(FramePacket(frame))
    out = TrackStage(tracker, config.obscure.mask_scale, config.obscure.min_size_px).process(out)
    if writer is not None:
        out = EncryptStage(writer, Fraction(1)).process(out)
    return ObscureStage(filter_).process(out)


def find_media(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Videos and images directly inside ``folder``, sorted by name."""
    for p in sorted(Path(folder).iterdir()):
        if p.is_file() and p.suffix.lower() in (VIDEO_SUFFIXES | IMAGE_SUFFIXES):
            yield p


def anonymize_folder(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: Config | None = None,
    *,
    on_file: Callable[[Path, RunStats | StreamDeidError], None] | None = None,
    progress_for: Callable[[Path], ProgressFn | None] | None = None,
    stop: threading.Event | None = None,
) -> list[RunStats | StreamDeidError]:
    """Anonymize every video and image in a folder into ``output_dir``, keeping file names.

    One bad file does not stop the batch: its error is returned in its place.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output '{out}': expected a folder for a folder input, got a file")
    out.mkdir(parents=True, exist_ok=True)
    files = list(find_media(input_dir))
    if not files:
        raise NotAVideoError(f"'{input_dir}': expected videos or images in the folder, found none")
    results: list[RunStats | StreamDeidError] = []
    for path in files:
        if stop is not None and stop.is_set():
            break
        try:
            result: RunStats | StreamDeidError = anonymize_file(
                path,
                out / path.name,
                config,
                progress=progress_for(path) if progress_for else None,
                stop=stop,
            )
        except Interrupted:
            raise
        except StreamDeidError as e:
            result = e
        results.append(result)
        if on_file is not None:
            on_file(path, result)
    return results


__all__ = ["RunStats", "anonymize_file", "anonymize_folder", "anonymize_frame"]
