"""Leak check of an anonymized video against its original, with an independent detector.

Method (EVALUATION.md "methods that hold up"):

1. A detector the anonymizer did not use finds faces in the ORIGINAL (on every ``every``-th frame).
   The default is dlib's HOG detector (:mod:`streamdeid.evaluate.dlib_hog`): independent of every
   config and with very few false positives. BlazeFace at 0.5 fires on hands, jackets, pillars
   and candles; those non-faces are (rightly) left as they are, so they would count as "still
   detectable" and even "re-identified" (they match themselves). Frames taller than 720 px are
   downscaled for dlib, so it finds faces from ~40 px × (frame height / 720).
2. Each sampled original frame is paired with the ANONYMIZED frame shown at the same time
   (timestamps in seconds, nearest within half a frame interval), never by index: an output
   that dropped or added frames must not shift the comparison.
3. An original face is *still detectable* when the same detector finds a face at the same place
   in the paired output frame (IoU ≥ 0.3).
4. Optionally (dlib, the ``eval`` extra), a still-detectable face is *re-identified* when the
   embedding of the face found in the output points back to the right person (see
   :mod:`streamdeid.evaluate.reid`). Only faces a detector found are embedded. The same
   embeddings give rank-1 identification among the clustered people (:mod:`.utility`).
5. Optionally (``landmarks``), dlib's 68 points are compared on faces found in both
   (:mod:`streamdeid.evaluate.landmarks`): does the output keep pose and expression?

Faces on sampled frames that have no output frame at their time are counted apart
(``faces_unpaired``): they are not shown at all, so they cannot leak.

Example:
    >>> from streamdeid.evaluate import video_leak
    >>> r = video_leak("in.mp4", "in_anon.mp4", detector="dlib")  # doctest: +SKIP
    >>> r.all.detectable_share, r.large.reidentified_share  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError, NotAVideoError, StreamDeidError
from streamdeid.evaluate.dlib_hog import DlibDetector
from streamdeid.evaluate.independent import (
    check_detector_options,
    independent_detector,
)
from streamdeid.evaluate.leak_report import VideoLeakReport
from streamdeid.evaluate.measure import FaceLedger
from streamdeid.evaluate.pairing import pair_by_time, timed_frames
from streamdeid.io.source import VIDEO_SUFFIXES, FileSource
from streamdeid.media import DEFAULT_FRAME_RATE

log = logging.getLogger(__name__)

AUTO_MAX_FRAMES = 300  # --every default: every frame up to this many, else ~this many sampled
PADDING_PX = 16  # size differences up to this are encoder padding (coordinates unchanged)

__all__ = [
    "AUTO_MAX_FRAMES",
    "PADDING_PX",
    "auto_every",
    "pair_folders",
    "video_leak",
    "video_leak_many",
]

ProgressFn = Callable[[int, int | None], None]


# --- the check ----------------------------------------------------------------------------------


def video_leak(
    original: str | os.PathLike[str],
    anonymized: str | os.PathLike[str],
    *,
    detector: Detector | str = "dlib",
    threshold: float | None = None,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
    reid: bool = True,
    landmarks: bool = False,
    every: int | None = None,
    progress: ProgressFn | None = None,
) -> VideoLeakReport:
    """How many faces of ``original`` a detector still finds in ``anonymized`` (and re-identifies).

    Args:
        original: the input video.
        anonymized: the anonymizer's output for it.
        detector: ``"dlib"`` (default) / ``"centerface"`` / ``"blazeface"`` (see
            :func:`independent_detector`) or a ready :class:`Detector` (not closed here). It is
            called with bare BGR arrays.
        threshold: score threshold of a named detector (default: dlib's ``adjust_threshold``
            0.0, CenterFace 0.4, BlazeFace 0.5).
        dlib_upsample: dlib only: times the image is doubled before the HOG scan (default 1).
        max_height: dlib only: frames taller are downscaled to this first (default 720,
            0 = never); faces then need ~40 px × (frame height / 720) to be found.
        reid: also run the dlib re-identification check (and rank-1 identification).
        landmarks: also measure the landmark displacement of faces found in both.
        every: check every N-th original frame; None = every frame up to 300 frames, else a
            step that samples about 300 frames evenly.
        progress: called with (original frames decoded, estimated total or None).

    Raises:
        MissingExtraError: ``reid`` or ``landmarks`` is set or the detector is ``"dlib"``, and
            dlib is missing
            (raised before any decoding).
        ConfigError: unknown detector name, or an option out of range or of another detector.
        StreamDeidError: unreadable inputs, unavailable detector (one-line messages).
    """
    ledger = _prepare(detector, threshold, dlib_upsample, max_height, reid, every, landmarks)
    owned = isinstance(detector, str)
    label = detector if isinstance(detector, str) else _name(detector)
    t0 = time.perf_counter()
    with FileSource(original) as src, FileSource(anonymized) as out:
        if isinstance(detector, str):
            detector = independent_detector(
                detector, threshold, dlib_upsample=dlib_upsample, max_height=max_height
            )
        try:
            report = _check(src, out, detector, label, every, ledger, progress)
        finally:
            if owned:
                detector.close()
    report.seconds = time.perf_counter() - t0
    return report


def _prepare(
    detector: Detector | str,
    threshold: float | None,
    dlib_upsample: int | None,
    max_height: int | None,
    reid: bool,
    every: int | None,
    landmarks: bool = False,
) -> FaceLedger:
    """Check the arguments and load the dlib models before any decoding, so that a mistake or a
    missing extra fails in a second, not after minutes of video."""
    if every is not None and every < 1:
        raise ConfigError(f"--every: expected a number >= 1, got {every}")
    ledger = FaceLedger()
    if reid:
        from streamdeid.evaluate.reid import FaceEmbedder

        ledger.embedder = FaceEmbedder()
    if landmarks:
        from streamdeid.evaluate.landmarks import LandmarkPredictor

        ledger.predictor = LandmarkPredictor()
    if isinstance(detector, str):
        check_detector_options(
            detector, threshold, dlib_upsample=dlib_upsample, max_height=max_height
        )
    elif dlib_upsample is not None or max_height is not None:
        raise ConfigError("dlib_upsample / max_height apply to detector='dlib' only")
    return ledger


def _name(detector: Detector) -> str:
    return getattr(detector, "name", "") or type(detector).__name__


def auto_every(estimated_frames: int | None) -> int:
    if not estimated_frames or estimated_frames <= AUTO_MAX_FRAMES:
        return 1
    return math.ceil(estimated_frames / AUTO_MAX_FRAMES)


def _check(
    src: FileSource,
    out: FileSource,
    detector: Detector,
    label: str,
    every: int | None,
    ledger: FaceLedger,
    progress: ProgressFn | None,
) -> VideoLeakReport:
    total = src.estimated_frames
    step = every or auto_every(total)
    report = _new_report(src, out, detector, label, step, ledger.embedder is not None)
    scale = _output_scale(report.size_original, report.size_anonymized, out.path)
    rate = float(src.info.frame_rate or DEFAULT_FRAME_RATE)
    tolerance = 0.5 / rate
    counter = {"original": 0, "anonymized": 0}

    def sampled() -> Iterator[tuple[Fraction, tuple[int, np.ndarray]]]:
        for index, t, image in timed_frames(src):
            counter["original"] += 1
            if progress is not None:
                progress(index + 1, total)
            if index % step == 0:
                yield t, (index, image)

    def outputs() -> Iterator[tuple[Fraction, tuple[int, np.ndarray]]]:
        for index, t, image in timed_frames(out):
            counter["anonymized"] += 1
            yield t, (index, image)

    output_frames = outputs()
    for (_i, image), paired in pair_by_time(sampled(), output_frames, tolerance):
        boxes = detector.detect(image).xyxy.astype(np.float64)
        if paired is None:
            report.frames_unpaired += 1
            report.faces_unpaired += len(boxes)
            continue
        report.frames_checked += 1
        if len(boxes):
            found = detector.detect(paired[1]).xyxy.astype(np.float64) * scale
            ledger.record(image, boxes, paired[1], found, scale)
    for _ in output_frames:  # decode the rest of the output too: its frame count is reported
        pass
    report.frames_original = counter["original"]
    report.frames_anonymized = counter["anonymized"]
    ledger.tally(report)
    return report


def _new_report(
    src: FileSource, out: FileSource, detector: Detector, label: str, step: int, reid: bool
) -> VideoLeakReport:
    """An empty report for this pair of files, with dlib's settings when dlib does the looking."""
    report = VideoLeakReport(
        original=src.path,
        anonymized=out.path,
        detector=label,
        every=step,
        reid=reid,
        size_original=(src.info.width, src.info.height),
        size_anonymized=(out.info.width, out.info.height),
    )
    if isinstance(detector, DlibDetector):
        height = src.info.height
        report.detector_scale = detector.scale_for(height)
        report.min_face_px = detector.min_face_px(height)
        report.detector_settings = detector.describe(height)
    return report


def _output_scale(size_in: tuple[int, int], size_out: tuple[int, int], path: str) -> np.ndarray:
    """Factor mapping output pixel coordinates to original ones (1 unless resized)."""
    if all(abs(a - b) <= PADDING_PX for a, b in zip(size_in, size_out, strict=True)):
        if size_in != size_out:
            log.info("%s: size %s vs %s: taken as padding", path, size_out, size_in)
        return np.ones(4)
    log.warning(
        "%s is %dx%d, the original %dx%d: comparing with output boxes scaled to the original",
        path,
        *size_out,
        *size_in,
    )
    sx, sy = size_in[0] / size_out[0], size_in[1] / size_out[1]
    return np.array([sx, sy, sx, sy])


# --- folders ------------------------------------------------------------------------------------


def pair_folders(
    original_dir: str | os.PathLike[str], anonymized_dir: str | os.PathLike[str]
) -> list[tuple[Path, Path]]:
    """Videos of ``original_dir`` with their counterpart in ``anonymized_dir`` (same file name,
    else same stem with another video extension). Originals without one are logged and skipped.

    Raises:
        NotAVideoError: no pair at all.
    """
    orig, anon = Path(original_dir), Path(anonymized_dir)
    if not anon.is_dir():
        raise ConfigError(
            f"'{original_dir}' is a folder, so ANONYMIZED must be one too, got '{anon}'"
        )
    videos = sorted(p for p in orig.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(anon.iterdir()):
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            by_stem.setdefault(p.stem, []).append(p)
    pairs = []
    for v in videos:
        match = anon / v.name if (anon / v.name).is_file() else None
        if match is None and by_stem.get(v.stem):
            match = by_stem[v.stem][0]
        if match is None:
            log.warning("%s: no anonymized counterpart in '%s', skipped", v.name, anon)
            continue
        pairs.append((v, match))
    if not pairs:
        raise NotAVideoError(
            f"no video of '{orig}' has a counterpart with the same name in '{anon}'"
        )
    return pairs


def video_leak_many(
    pairs: Iterable[tuple[Path, Path]],
    *,
    progress_for: Callable[[Path], ProgressFn | None] | None = None,
    on_error: Callable[[Path, StreamDeidError], None] | None = None,
    **kwargs: Any,
) -> list[VideoLeakReport]:
    """:func:`video_leak` on each pair; a failing pair is reported to ``on_error`` and skipped
    (without ``on_error`` the error propagates)."""
    reports = []
    for original, anonymized in pairs:
        try:
            reports.append(
                video_leak(
                    original,
                    anonymized,
                    progress=progress_for(original) if progress_for else None,
                    **kwargs,
                )
            )
        except StreamDeidError as e:
            if on_error is None:
                raise
            on_error(original, e)
    return reports
