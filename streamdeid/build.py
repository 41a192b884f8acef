"""What a run is built from a resolved config: detector, tracker, filter, encoder, stages.

One place, used by files (:mod:`streamdeid.api`), cameras (:mod:`streamdeid.live.session`) and
batches, so that the same config means the same masking wherever it runs. The mode decides only
what must differ:

* ``file``: every frame is waited for; ``pipeline.*`` schedules the detector (look-ahead, the
  last frame always detected). A file given to ``streamdeid live`` without pacing is a file.
* ``live``: a camera does not wait; ``live.*`` schedules the detector, and the live stages add
  the skip and blind rules of :mod:`streamdeid.live.policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streamdeid.config import Config, PipelineConfig
from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError
from streamdeid.io.sink import EncoderSettings
from streamdeid.live.policy import LiveConfig
from streamdeid.live.stats import LiveStats
from streamdeid.obscure.filters import Filter, make_filter
from streamdeid.pipeline.lookahead import LookaheadTrackStage
from streamdeid.pipeline.stages import DetectStage, ObscureStage, TrackStage
from streamdeid.track.iou import IoUTracker

Mode = Literal["file", "live"]


def make_detector(config: Config, default_threads: int = 1) -> Detector:
    """The detector a config asks for: one backend or an ensemble, optionally focused.
    ``default_threads``: inference threads where ``detector.threads`` is not set."""
    d = config.detector
    if d.backend == "ensemble":
        from streamdeid.detect.ensemble import EnsembleDetector

        members = [_single_detector(config, name, default_threads) for name in d.backends()]
        detector: Detector = EnsembleDetector(members, nms_iou=d.nms_iou)
    else:
        detector = _single_detector(config, d.backend, default_threads)
    if d.focus.enabled:
        from streamdeid.detect.focus import FocusDetector

        f = d.focus
        detector = FocusDetector(
            detector,
            full_scan_every=f.full_scan_every,
            tile_size=f.tile_size,
            threshold=f.threshold,
            coarse_height=f.coarse_height,
            motion=f.motion,
            follow_confidence=f.follow_confidence,
            full_scan_parts=f.full_scan_parts,
            memory_frames=f.memory_frames,
        )
    return detector


def retinaface_precision(config: Config) -> str:
    """The RetinaFace model a config runs: as set, else int8 (1.5x faster per call, the same
    masked recall), except float for the surrogate method, whose drawn faces follow the
    detections closely enough that int8's slightly different boxes let dlib re-identify more
    of them (crowd clip, 8 seeds: 44 against 18 of 896)."""
    set_to = config.detector.retinaface.precision
    if set_to is not None:
        return set_to
    return "fp32" if config.obscure.method == "surrogate" else "int8"


def _single_detector(config: Config, backend: str, default_threads: int) -> Detector:
    # Each backend gets exactly the options the config says it reads (BACKEND_OPTIONS), so an
    # option it would ignore is refused by the config rather than dropped here.
    kwargs = config.detector.backend_kwargs(backend, default_threads)
    if backend == "blazeface":
        from streamdeid.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(**kwargs)
    if backend == "mediapipe":
        from streamdeid.detect.mediapipe import MediaPipeDetector

        return MediaPipeDetector(**kwargs)
    if backend == "retinaface":
        from streamdeid.detect.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(**{**kwargs, "precision": retinaface_precision(config)})
    if backend == "centerface":
        from streamdeid.detect.centerface import CenterFaceDetector

        return CenterFaceDetector(**kwargs)
    raise ConfigError(f"field 'detector.backend': unknown backend {backend!r}")  # pragma: no cover


def make_tracker(config: Config) -> IoUTracker:
    t = config.tracker
    return IoUTracker(
        iou_threshold=t.iou_threshold,
        min_hits=t.min_hits,
        max_coast_frames=t.max_coast_frames,
        coast_growth=t.coast_growth,
    )


def make_obscure_filter(config: Config) -> Filter:
    o = config.obscure
    if o.method == "surrogate":
        from streamdeid.obscure.surrogate import SurrogateFilter

        return SurrogateFilter(
            k=o.surrogate_k,
            epsilon=o.surrogate_epsilon,
            site_gallery=Path(o.surrogate_gallery) if o.surrogate_gallery else None,
            blur_fraction=o.blur_fraction,
            shape=o.shape,
        )
    params: dict[str, object] = {"shape": o.shape}
    if o.method == "blur":
        params["blur_fraction"] = o.blur_fraction
    elif o.method == "pixelate":
        params["blocks_across"] = o.blocks_across
    else:
        params["color"] = tuple(o.color)
    return make_filter(o.method, **params)


def encoder_settings(config: Config) -> EncoderSettings:
    e = config.encoder
    return EncoderSettings(
        codec=e.codec,
        crf=e.crf,
        bitrate=e.bitrate,
        preset=e.preset,
        pix_fmt=e.pix_fmt,
        audio=e.audio,
    )


def background_nice(config: Config, height: int) -> int:
    """How much nicer a file pipeline's other threads run than its detector: only on video the
    detector enlarges, where it paces the run (see :mod:`streamdeid.pipeline.priority`)."""
    return config.pipeline.background_nice if config.detector.enlarges(height) else 0


@dataclass(frozen=True)
class Schedule:
    """When the detector runs and how skipped frames are covered, for one mode."""

    detect_every: int
    lookahead: bool
    skip_grow: float
    queue_size: int


def schedule_for(config: Config, mode: Mode, live: LiveConfig | None = None) -> Schedule:
    """``pipeline.*`` for files, ``live.*`` (the camera's policy) for live input.

    Both sections hold the same four settings (:mod:`streamdeid.config_schedule`), with
    different defaults.
    """
    chosen: PipelineConfig | LiveConfig = (
        (live or LiveConfig()) if mode == "live" else config.pipeline
    )
    return Schedule(chosen.detect_every, chosen.lookahead, chosen.skip_grow, chosen.queue_size)


@dataclass
class Stages:
    """The stages between the source and the sink, in order (encryption, when configured, goes
    between ``track`` and ``obscure``: it must read the faces before they are masked)."""

    detect: DetectStage
    track: TrackStage
    obscure: ObscureStage


def build_stages(
    config: Config,
    mode: Mode,
    *,
    detector_factory: Callable[[], Detector] | None = None,
    live: LiveConfig | None = None,
    stats: LiveStats | None = None,
) -> Stages:
    """Detect, track and obscure stages for ``config`` in ``mode``.

    Args:
        detector_factory: replaces the configured detector (tests); called on the detect thread.
        live: the camera's live policy (``live`` mode; also read by a live run's file input).
        stats: live counters. Given, the live stages are used (``streamdeid live``), with the
            policy's rules only in ``live`` mode; without, the plain file stages.
    """
    # A camera's decode and encode leave part of a core idle (live.detector_threads); a file's
    # pipeline keeps both cores busy, so its detector gets one thread.
    threads = (live or LiveConfig()).detector_threads if mode == "live" else 1
    factory = detector_factory or (lambda: make_detector(config, threads))
    schedule = schedule_for(config, mode, live)
    o = config.obscure
    detect: DetectStage
    track: TrackStage
    if stats is not None:
        from streamdeid.live.stages import LiveDetectStage, LiveTrackStage

        policy, is_live = live or LiveConfig(), mode == "live"
        detect = LiveDetectStage(
            factory,
            schedule.detect_every,
            policy=policy,
            stats=stats,
            live=is_live,
            lookahead=schedule.lookahead,
        )
        track = LiveTrackStage(
            make_tracker(config),
            o.mask_scale,
            o.min_size_px,
            policy=policy,
            stats=stats,
            live=is_live,
            grow=schedule.skip_grow,
            hold=schedule.lookahead,
        )
    else:
        detect = DetectStage(factory, schedule.detect_every, lookahead=schedule.lookahead)
        if schedule.lookahead:
            track = LookaheadTrackStage(
                make_tracker(config), o.mask_scale, o.min_size_px, grow=schedule.skip_grow
            )
        else:
            track = TrackStage(make_tracker(config), o.mask_scale, o.min_size_px)
    return Stages(detect, track, ObscureStage(make_obscure_filter(config)))
