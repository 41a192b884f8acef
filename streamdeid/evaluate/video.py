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
   :mod:`streamdeid.evaluate.reid`). Only faces a detector found are embedded.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from streamdeid.config import Config, parse_config
from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError, DetectorError, NotAVideoError, StreamDeidError
from streamdeid.evaluate.boxes import MATCH_IOU, best_match
from streamdeid.evaluate.dlib_hog import DEFAULT_MAX_HEIGHT, DEFAULT_UPSAMPLE, DlibDetector
from streamdeid.io.source import VIDEO_SUFFIXES, FileSource
from streamdeid.media import DEFAULT_FRAME_RATE

if TYPE_CHECKING:
    from streamdeid.evaluate.reid import FaceEmbedder

log = logging.getLogger(__name__)

SMALL_FACE_PX = 40  # faces shorter than this are reported apart (hard to see, hard to re-identify)
AUTO_MAX_FRAMES = 300  # --every default: every frame up to this many, else ~this many sampled
PADDING_PX = 16  # size differences up to this are encoder padding (coordinates unchanged)
# Independent detectors in order of preference: dlib first (no streamdeid config runs it, and
# its HOG detector has very few false positives), then the anonymizer's own families.
INDEPENDENT = ("dlib", "centerface", "blazeface")
# Thresholds of the independent detectors. CenterFace / BlazeFace: scores in (0, 1], higher than
# the anonymizer's own (0.2 / 0.3), so that a false positive in the original (not a face, so
# rightly not masked) is rarely counted as a leak. dlib: its ``adjust_threshold`` (an SVM margin,
# any number; dlib's own default 0.0).
DEFAULT_THRESHOLD = {"dlib": 0.0, "centerface": 0.4, "blazeface": 0.5}

ProgressFn = Callable[[int, int | None], None]
T = TypeVar("T")


@dataclass
class FaceCounts:
    """Original faces, how many are still detectable in the output, how many re-identified."""

    faces: int = 0
    detectable: int = 0
    reidentified: int = 0

    @property
    def detectable_share(self) -> float:
        return self.detectable / self.faces if self.faces else math.nan

    @property
    def reidentified_share(self) -> float:
        return self.reidentified / self.faces if self.faces else math.nan

    def add(self, other: FaceCounts) -> None:
        self.faces += other.faces
        self.detectable += other.detectable
        self.reidentified += other.reidentified

    def to_dict(self, reid: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "faces": self.faces,
            "still_detectable": self.detectable,
            "still_detectable_share": _round(self.detectable_share),
        }
        if reid:
            d["reidentified"] = self.reidentified
            d["reidentified_share"] = _round(self.reidentified_share)
        return d


@dataclass
class VideoLeakReport:
    """Result of :func:`video_leak` for one pair of files (or the total of several)."""

    original: str
    anonymized: str
    detector: str
    every: int
    reid: bool
    frames_original: int = 0
    frames_anonymized: int = 0
    frames_checked: int = 0  # sampled original frames paired with an output frame
    frames_unpaired: int = 0  # sampled original frames with no output frame at their time
    faces_unpaired: int = 0
    size_original: tuple[int, int] = (0, 0)
    size_anonymized: tuple[int, int] = (0, 0)
    all: FaceCounts = field(default_factory=FaceCounts)
    small: FaceCounts = field(default_factory=FaceCounts)  # original face height < 40 px
    large: FaceCounts = field(default_factory=FaceCounts)  # original face height >= 40 px
    identities: int | None = None  # people clustered from the original faces
    seconds: float = 0.0
    # dlib only: the factor frames are scaled by before detection, the smallest face height it
    # then finds (original pixels), and a one-line description of its settings.
    detector_scale: float | None = None
    min_face_px: float | None = None
    detector_settings: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "anonymized": self.anonymized,
            "detector": self.detector,
            "detector_settings": self.detector_settings or None,
            "detector_scale": _maybe_round(self.detector_scale, 4),
            "min_face_px": _maybe_round(self.min_face_px, 1),
            "every": self.every,
            "match_iou": MATCH_IOU,
            "frames_original": self.frames_original,
            "frames_anonymized": self.frames_anonymized,
            "frames_checked": self.frames_checked,
            "frames_unpaired": self.frames_unpaired,
            "faces_unpaired": self.faces_unpaired,
            "size_original": list(self.size_original),
            "size_anonymized": list(self.size_anonymized),
            "all": self.all.to_dict(self.reid),
            f"under_{SMALL_FACE_PX}px": self.small.to_dict(self.reid),
            f"from_{SMALL_FACE_PX}px": self.large.to_dict(self.reid),
            "identities": self.identities,
            "seconds": round(self.seconds, 3),
        }


def combine(reports: Iterable[VideoLeakReport]) -> VideoLeakReport:
    """Totals over several files (shares are over all their faces together)."""
    reports = list(reports)
    if not reports:
        raise ValueError("combine needs at least one report, got none")
    total = VideoLeakReport(
        original="(total)",
        anonymized="(total)",
        detector=reports[0].detector,
        every=reports[0].every,
        reid=all(r.reid for r in reports),
    )
    for r in reports:
        for name in (
            "frames_original",
            "frames_anonymized",
            "frames_checked",
            "frames_unpaired",
            "faces_unpaired",
            "seconds",
        ):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        total.all.add(r.all)
        total.small.add(r.small)
        total.large.add(r.large)
    if total.reid:
        total.identities = sum(r.identities or 0 for r in reports)
    for name in ("detector_scale", "min_face_px", "detector_settings"):
        values = {getattr(r, name) for r in reports}
        if len(values) == 1:  # the same for every file (else per file only)
            setattr(total, name, values.pop())
    return total


def _round(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


def _maybe_round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


# --- independent detector -----------------------------------------------------------------------


def check_detector_options(
    name: str,
    threshold: float | None = None,
    *,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
) -> None:
    """Validate a named independent detector and its options without building it (cheap: the
    CLI calls it before any long work). For ``dlib`` this also checks that dlib is installed.

    Raises:
        ConfigError: unknown name, option of another detector, or value out of range.
        MissingExtraError: ``dlib`` is chosen and not installed (names ``streamdeid[eval]``).
    """
    if name not in INDEPENDENT:
        raise ConfigError(f"--detector: expected one of {', '.join(INDEPENDENT)}, got {name!r}")
    if name != "dlib":
        for option, value in (("--dlib-upsample", dlib_upsample), ("--max-height", max_height)):
            if value is not None:
                raise ConfigError(f"{option} applies to --detector dlib only, got {name!r}")
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ConfigError(
                f"--threshold: expected a score in (0, 1] for {name}, got {threshold}"
            )
        return
    if threshold is not None and not math.isfinite(threshold):
        raise ConfigError(f"--threshold: expected a finite number for dlib, got {threshold}")
    if dlib_upsample is not None and dlib_upsample < 0:
        raise ConfigError(f"--dlib-upsample: expected a whole number >= 0, got {dlib_upsample}")
    if max_height is not None and max_height < 0:
        raise ConfigError(f"--max-height: expected a whole number >= 0, got {max_height}")
    from streamdeid.evaluate.dlib_hog import _import_dlib

    _import_dlib()


def independent_detector(
    name: str,
    threshold: float | None = None,
    *,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
) -> Detector:
    """A detector for checking outputs, configured for thoroughness rather than speed.

    ``dlib`` is dlib's HOG frontal face detector on the grey frame, upsampled ``dlib_upsample``
    times (default 1) after downscaling frames taller than ``max_height`` (default 720; 0 = never),
    so it finds faces from ~40 px × (frame height / 720); ``threshold`` is its
    ``adjust_threshold`` (default 0.0). ``centerface`` runs at native size; ``blazeface`` runs
    the full-range model on the whole frame plus every 256-px tile (frames are passed as bare
    arrays, so no tile budget applies). None is motion-gated.

    Raises:
        ConfigError: unknown name, option of another detector, or value out of range.
        DetectorError: the backend is not available (MissingExtraError names the extra).
    """
    check_detector_options(name, threshold, dlib_upsample=dlib_upsample, max_height=max_height)
    score = DEFAULT_THRESHOLD[name] if threshold is None else threshold
    if name == "dlib":
        return DlibDetector(
            upsample=DEFAULT_UPSAMPLE if dlib_upsample is None else dlib_upsample,
            adjust_threshold=score,
            max_height=DEFAULT_MAX_HEIGHT if max_height is None else max_height,
        )
    if name == "centerface":
        det: dict[str, Any] = {
            "backend": "centerface",
            "centerface": {"confidence": score, "scales": [1.0]},
        }
    else:
        det = {
            "backend": "blazeface",
            "model": "full",
            "confidence": score,
            "whole_frame": True,
            "tile_size": 256,
            "tile_overlap": 0.25,
            "max_tiles_per_frame": None,
        }
    det["focus"] = {"enabled": False}  # the checker looks at all of every frame it checks
    config = parse_config({"detector": det}, source=f"eval {name} detector")
    from streamdeid.api import make_detector

    try:
        return make_detector(config)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("streamdeid."):
            raise DetectorError(
                f"the {name} backend is not part of this streamdeid build ({e.name} missing): "
                f"expected one of {', '.join(INDEPENDENT)} to be available"
            ) from e
        raise


def backends_used(config: Config) -> set[str]:
    """Detector families a config runs (MediaPipe runs BlazeFace's models: same family)."""
    d = config.detector
    used = set(d.ensemble) if d.backend == "ensemble" else {d.backend}
    return {"blazeface" if b == "mediapipe" else b for b in used}


def independent_for(config: Config) -> tuple[str, bool]:
    """The check detector for outputs made with ``config``, and whether it is truly independent.

    dlib for every config (no streamdeid backend runs it, so it is independent of CenterFace,
    BlazeFace/MediaPipe and any ensemble of them); the loop keeps the rule general.
    """
    used = backends_used(config)
    for name in INDEPENDENT:
        if name not in used:
            return name, True
    return INDEPENDENT[0], False


# --- frames paired by time ----------------------------------------------------------------------


def timed_frames(source: FileSource) -> Iterator[tuple[int, Fraction, np.ndarray]]:
    """(index, presentation time in seconds, BGR image) of every frame of an open source."""
    for frame in source.frames():
        tb = frame.time_base or source.info.time_base
        yield frame.index, Fraction(frame.pts or 0) * Fraction(tb), frame.image


def pair_by_time(
    originals: Iterable[tuple[Fraction, T]],
    outputs: Iterable[tuple[Fraction, T]],
    tolerance_s: float,
) -> Iterator[tuple[T, T | None]]:
    """Pair each original item with the output item nearest in time, within ``tolerance_s``.

    Both inputs must be in presentation order. Output items are consumed lazily (a frame is
    kept only while it may still be the nearest), so whole videos are never held in memory.
    Yields ``(original, output or None)`` for every original item.
    """
    it = iter(outputs)
    buffer: deque[tuple[Fraction, T]] = deque()
    exhausted = False
    for t, item in originals:
        tf = float(t)
        while not exhausted and (not buffer or float(buffer[-1][0]) <= tf + tolerance_s):
            try:
                buffer.append(next(it))
            except StopIteration:
                exhausted = True
        while buffer and float(buffer[0][0]) < tf - tolerance_s:
            buffer.popleft()
        best = min(buffer, key=lambda b: abs(float(b[0]) - tf), default=None)
        if best is not None and abs(float(best[0]) - tf) <= tolerance_s:
            yield item, best[1]
        else:
            yield item, None


# --- the check ----------------------------------------------------------------------------------


@dataclass
class _Faces:
    """Per original face: height, still detectable, and (with re-id) embedding bookkeeping."""

    heights: list[float] = field(default_factory=list)
    detectable: list[bool] = field(default_factory=list)
    gallery: list[np.ndarray] = field(default_factory=list)  # original embeddings, per frame
    probes: list[np.ndarray] = field(default_factory=list)  # output embeddings, per frame
    probe_faces: list[int] = field(default_factory=list)  # original face index of each probe


def video_leak(
    original: str | os.PathLike[str],
    anonymized: str | os.PathLike[str],
    *,
    detector: Detector | str = "dlib",
    threshold: float | None = None,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
    reid: bool = True,
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
        reid: also run the dlib re-identification check.
        every: check every N-th original frame; None = every frame up to 300 frames, else a
            step that samples about 300 frames evenly.
        progress: called with (original frames decoded, estimated total or None).

    Raises:
        MissingExtraError: ``reid`` is set or the detector is ``"dlib"``, and dlib is missing
            (raised before any decoding).
        ConfigError: unknown detector name, or an option out of range or of another detector.
        StreamDeidError: unreadable inputs, unavailable detector (one-line messages).
    """
    if every is not None and every < 1:
        raise ConfigError(f"--every: expected a number >= 1, got {every}")
    embedder: FaceEmbedder | None = None
    if reid:
        from streamdeid.evaluate.reid import FaceEmbedder

        embedder = FaceEmbedder()
    if isinstance(detector, str):
        check_detector_options(
            detector, threshold, dlib_upsample=dlib_upsample, max_height=max_height
        )
    elif dlib_upsample is not None or max_height is not None:
        raise ConfigError("dlib_upsample / max_height apply to detector='dlib' only")
    owned = isinstance(detector, str)
    label = detector if isinstance(detector, str) else _name(detector)
    t0 = time.perf_counter()
    with FileSource(original) as src, FileSource(anonymized) as out:
        if isinstance(detector, str):
            detector = independent_detector(
                detector, threshold, dlib_upsample=dlib_upsample, max_height=max_height
            )
        try:
            report = _check(src, out, detector, label, every, embedder, progress)
        finally:
            if owned:
                detector.close()
    report.seconds = time.perf_counter() - t0
    return report


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
    embedder: FaceEmbedder | None,
    progress: ProgressFn | None,
) -> VideoLeakReport:
    total = src.estimated_frames
    step = every or auto_every(total)
    report = VideoLeakReport(
        original=src.path,
        anonymized=out.path,
        detector=label,
        every=step,
        reid=embedder is not None,
        size_original=(src.info.width, src.info.height),
        size_anonymized=(out.info.width, out.info.height),
    )
    if isinstance(detector, DlibDetector):
        height = src.info.height
        report.detector_scale = detector.scale_for(height)
        report.min_face_px = detector.min_face_px(height)
        report.detector_settings = detector.describe(height)
    scale = _output_scale(report.size_original, report.size_anonymized, out.path)
    rate = float(src.info.frame_rate or DEFAULT_FRAME_RATE)
    tolerance = 0.5 / rate
    faces = _Faces()
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
        if len(boxes) == 0:
            continue
        found = detector.detect(paired[1]).xyxy.astype(np.float64) * scale
        match = best_match(boxes, found)
        first = len(faces.heights)
        faces.heights.extend((boxes[:, 3] - boxes[:, 1]).tolist())
        faces.detectable.extend((match >= 0).tolist())
        if embedder is not None:
            faces.gallery.append(embedder.embed(image, boxes))
            hits = np.flatnonzero(match >= 0)
            if len(hits):
                faces.probes.append(embedder.embed(paired[1], found[match[hits]] / scale))
                faces.probe_faces.extend((first + hits).tolist())
    for _ in output_frames:  # decode the rest of the output too: its frame count is reported
        pass
    report.frames_original = counter["original"]
    report.frames_anonymized = counter["anonymized"]
    _tally(report, faces, embedder)
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


def _tally(report: VideoLeakReport, faces: _Faces, embedder: FaceEmbedder | None) -> None:
    heights = np.asarray(faces.heights, np.float64)
    detectable = np.asarray(faces.detectable, bool)
    reidentified = np.zeros(len(heights), bool)
    if embedder is not None:
        from streamdeid.evaluate.reid import reidentified as reid_match

        gallery = np.concatenate(faces.gallery) if faces.gallery else np.zeros((0, 128))
        identities = embedder.cluster(gallery)
        report.identities = len(set(identities.tolist()))
        if faces.probes:
            probe_faces = np.asarray(faces.probe_faces, np.int64)
            hit = reid_match(
                np.concatenate(faces.probes), identities[probe_faces], gallery, identities
            )
            reidentified[probe_faces[hit]] = True
    small = heights < SMALL_FACE_PX
    for counts, mask in (
        (report.all, np.ones_like(small)),
        (report.small, small),
        (report.large, ~small),
    ):
        counts.faces = int(mask.sum())
        counts.detectable = int((detectable & mask).sum())
        counts.reidentified = int((reidentified & mask).sum())


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
