"""Privacy measurements: detector recall on WIDER FACE and leak checks on anonymized videos.

The library side of ``streamdeid eval`` (EVALUATION.md describes the methods). Results are
dataclasses with ``to_dict()`` for JSON.

Example:
    >>> from streamdeid.evaluate import video_leak, wider_recall
    >>> r = video_leak("in.mp4", "out.mp4", detector="dlib")  # doctest: +SKIP
    >>> r.large.reidentified  # target: 0  # doctest: +SKIP
"""

from __future__ import annotations

from streamdeid.evaluate.boxes import iou_matrix
from streamdeid.evaluate.dlib_hog import DlibDetector
from streamdeid.evaluate.independent import independent_detector, independent_for
from streamdeid.evaluate.leak_report import VideoLeakReport, combine
from streamdeid.evaluate.pairing import pair_by_time
from streamdeid.evaluate.video import pair_folders, video_leak
from streamdeid.evaluate.wider import WiderReport, wider_recall
from streamdeid.evaluate.wider_gt import GroundTruthError, load_wider_gt

__all__ = [
    "DlibDetector",
    "GroundTruthError",
    "VideoLeakReport",
    "WiderReport",
    "combine",
    "independent_detector",
    "independent_for",
    "iou_matrix",
    "load_wider_gt",
    "pair_by_time",
    "pair_folders",
    "video_leak",
    "wider_recall",
]
