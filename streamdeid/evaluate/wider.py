"""Detector recall on still images with WIDER FACE-style ground truth.

Ground truth (WIDER's text format or the research subset's JSON) is read by
:mod:`streamdeid.evaluate.wider_gt`.

Scoring: a valid ground-truth face is *found* when a detection overlaps it with IoU ≥ 0.3;
``invalid`` faces are not counted, but a detection on one is not a false positive either. A
detection overlapping no ground-truth box at IoU ≥ 0.3 is a false positive (WIDER does not label
every face in a crowd, so this is an upper bound). The detector runs as the pipeline runs it on a
still image: ``make_detector(config).detect(image)`` on the whole BGR picture.

Example:
    >>> from streamdeid.evaluate import wider_recall
    >>> report = wider_recall("images/", "wider_face_val_bbx_gt.txt")  # doctest: +SKIP
    >>> report.levels["all"].recall  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamdeid.config import Config
from streamdeid.detect.base import Detector
from streamdeid.evaluate.boxes import MATCH_IOU, iou_matrix
from streamdeid.evaluate.wider_gt import GroundTruthImage, level_names, load_wider_gt
from streamdeid.io.image import read_image

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]


@dataclass
class LevelRecall:
    level: str
    found: int = 0
    total: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else math.nan


@dataclass
class WiderReport:
    """Result of :func:`wider_recall`; ``to_dict()`` is what ``--json`` writes."""

    images_dir: str
    gt_file: str
    detector: str
    images: int = 0
    levels: dict[str, LevelRecall] = field(default_factory=dict)
    detections: int = 0
    false_positives: int = 0
    seconds: float = 0.0
    match_iou: float = MATCH_IOU

    @property
    def false_positives_per_image(self) -> float:
        return self.false_positives / self.images if self.images else math.nan

    @property
    def detections_per_image(self) -> float:
        return self.detections / self.images if self.images else math.nan

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.seconds / self.images if self.images else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "images_dir": self.images_dir,
            "gt_file": self.gt_file,
            "detector": self.detector,
            "match_iou": self.match_iou,
            "images": self.images,
            "recall": {k: _nan_to_none(v.recall) for k, v in self.levels.items()},
            "found": {k: v.found for k, v in self.levels.items()},
            "faces": {k: v.total for k, v in self.levels.items()},
            "detections": self.detections,
            "detections_per_image": _nan_to_none(self.detections_per_image),
            "false_positives": self.false_positives,
            "false_positives_per_image": _nan_to_none(self.false_positives_per_image),
            "ms_per_image": _nan_to_none(self.ms_per_image),
        }


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 6)


# --- scoring ------------------------------------------------------------------------------------


def score_image(
    image: GroundTruthImage, xyxy_gt: np.ndarray, found: np.ndarray, iou: float = MATCH_IOU
) -> tuple[dict[str, tuple[int, int]], int]:
    """Per level (found, total) for one image, and its number of false positives."""
    m = iou_matrix(xyxy_gt, found)
    hit = (m.max(axis=1) >= iou) if m.shape[1] else np.zeros(len(xyxy_gt), bool)
    counts = {lvl: (int((hit & f).sum()), int(f.sum())) for lvl, f in image.levels.items()}
    false_pos = int((m.max(axis=0) < iou).sum()) if m.shape[0] else m.shape[1]
    return counts, false_pos


def wider_recall(
    images_dir: str | os.PathLike[str],
    gt_file: str | os.PathLike[str],
    config: Config | None = None,
    *,
    detector: Detector | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
) -> WiderReport:
    """Recall per difficulty, false positives and speed of a detector on WIDER-style data.

    Args:
        images_dir: folder holding the images named in ``gt_file``.
        gt_file: ground truth, WIDER text format or the research subset's JSON.
        config: the detector is ``make_detector(config)`` (default config when None).
        detector: use this detector instead (tests, custom backends); not closed here.
        limit: only the first N images.
        progress: called after each image with (done, total).

    Raises:
        InputNotFoundError, GroundTruthError: bad paths or ground truth (one-line messages).
    """
    images = load_wider_gt(gt_file, images_dir)[:limit]
    owned = detector is None
    if detector is None:
        detector, label = _default_detector(config)
    else:
        label = getattr(detector, "name", "") or type(detector).__name__
    report = WiderReport(
        images_dir=os.fspath(images_dir),
        gt_file=os.fspath(gt_file),
        detector=label,
        levels={lvl: LevelRecall(lvl) for lvl in level_names(images)},
    )
    try:
        if owned:  # model load and first-call setup are not part of the per-image time
            detector.detect(read_image(images[0].path).image)
        beyond = _score_images(report, images, detector, progress)
    finally:
        if owned:
            detector.close()
    if beyond:
        log.warning(
            "%d of %d images have ground-truth boxes reaching beyond the picture: is the ground "
            "truth for another image size (original WIDER vs resized copies)?",
            beyond,
            report.images,
        )
    return report


def _default_detector(config: Config | None) -> tuple[Detector, str]:
    """``make_detector`` for ``config`` (the default config when None), and its label."""
    from streamdeid.build import make_detector

    config = config or Config()
    return make_detector(config), config.detector.backend


def _score_images(
    report: WiderReport,
    images: list[GroundTruthImage],
    detector: Detector,
    progress: ProgressFn | None,
) -> int:
    """Detect on every image and add its scores and detection time to ``report``.

    Returns how many images have ground truth reaching beyond the picture.
    """
    beyond = 0
    for n, im in enumerate(images, 1):
        bgr = read_image(im.path).image
        t0 = time.perf_counter()
        found = detector.detect(bgr).xyxy
        report.seconds += time.perf_counter() - t0
        xyxy = im.boxes_for(bgr.shape[1], bgr.shape[0])
        beyond += _beyond(xyxy, bgr.shape[1], bgr.shape[0])
        counts, false_pos = score_image(im, xyxy, found)
        for lvl, acc in report.levels.items():
            f, t = counts[lvl]
            acc.found += f
            acc.total += t
        report.images += 1
        report.detections += len(found)
        report.false_positives += false_pos
        if progress is not None:
            progress(n, len(images))
    return beyond


def _beyond(xyxy: np.ndarray, width: int, height: int) -> bool:
    """Boxes reaching well past the image: ground truth made for another image size."""
    return bool(len(xyxy)) and bool(
        xyxy[:, 2].max() > 1.05 * width or xyxy[:, 3].max() > 1.05 * height
    )
