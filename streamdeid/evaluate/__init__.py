"""Privacy measurements: detector recall on WIDER FACE and leak checks on anonymized videos.

The library side of ``streamdeid eval`` (EVALUATION.md describes the methods). Results are
dataclasses with ``to_dict()`` for JSON.

Example:
    >>> from streamdeid.evaluate import video_leak, wider_recall
    >>> r = video_leak("in.mp4", "out.mp4", detector="dlib")  # doctest: +SKIP
    >>> r.large.reidentified  # target: 0  # doctest: +SKIP
"""

from __future__ import annotations

from streamdeid.evaluate.boxes import MATCH_IOU, iou_matrix
from streamdeid.evaluate.dlib_hog import DlibDetector
from streamdeid.evaluate.independent import (
    check_detector_options,
    independent_detector,
    independent_for,
)
from streamdeid.evaluate.leak_report import FaceCounts, VideoLeakReport, combine
from streamdeid.evaluate.pairing import pair_by_time
from streamdeid.evaluate.video import pair_folders, video_leak, video_leak_many
from streamdeid.evaluate.wider import LevelRecall, WiderReport, wider_recall
from streamdeid.evaluate.wider_gt import GroundTruthError, GroundTruthImage, load_wider_gt

__all__ = [
    "MATCH_IOU",
    "DlibDetector",
    "FaceCounts",
    "GroundTruthError",
    "GroundTruthImage",
    "LevelRecall",
    "VideoLeakReport",
    "WiderReport",
    "check_detector_options",
    "combine",
    "independent_detector",
    "independent_for",
    "iou_matrix",
    "load_wider_gt",
    "pair_by_time",
    "pair_folders",
    "video_leak",
    "video_leak_many",
    "wider_recall",
]
