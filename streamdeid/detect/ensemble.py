"""Several detectors on the same frame, keeping the union of what they find.

Detectors miss different faces: BlazeFace is strong on large frontal faces, CenterFace on small
and turned ones. A miss is a leak while a false box only costs a mask, so the ensemble keeps every
box of every member. Overlapping boxes (the same face seen by two members) are merged into their
union box, never a compromise between them: a merged box covers each box it absorbed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from streamdeid.detect.base import Detector
from streamdeid.detect.tiling import merge_boxes
from streamdeid.types import Detections, Frame

log = logging.getLogger(__name__)

Window = tuple[int, int, int, int]


class EnsembleDetector(Detector):
    """Runs every member and merges their boxes by union.

    A member that raises is not skipped: the exception propagates, so the pipeline masks the
    whole frame instead of emitting it with only the other members' coverage.

    Args:
        members: the detectors to run, in order; the ensemble owns them (``close`` closes them).
        nms_iou: boxes overlapping more than this (or mostly inside one another) are merged.

    Example:
        >>> members = [CenterFaceDetector(), BlazeFaceDetector()]  # doctest: +SKIP
        >>> ensemble = EnsembleDetector(members)  # doctest: +SKIP
        >>> ensemble.name  # doctest: +SKIP
        'ensemble(centerface+blazeface)'
    """

    def __init__(self, members: Sequence[Detector], nms_iou: float = 0.3) -> None:
        if not members:
            raise ValueError("EnsembleDetector needs at least one member, got none")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        self.members = list(members)
        self.nms_iou = nms_iou
        self.name = f"ensemble({'+'.join(m.name for m in self.members)})"

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        """Every member on the frame (the Frame itself, so members can schedule by index)."""
        return self._union([m.detect(frame) for m in self.members])

    def detect_windows(self, image: np.ndarray, windows: list[Window]) -> Detections:
        """Members search only ``windows`` (for a motion gate wrapping the ensemble).

        A member without window support runs on the whole image instead: that costs time but
        never coverage.
        """
        found = []
        for member in self.members:
            run = getattr(member, "detect_windows", None)
            if callable(run):
                found.append(run(image, windows))
            else:
                log.debug("%s cannot search windows: running it on the whole image", member.name)
                found.append(member.detect(image))
        return self._union(found)

    def tile_period(self, width: int, height: int) -> int:
        """Frames until every member has visited every one of its tiles (lcm of the periods).

        A motion gate spaces its full scans coprime to this, so that they meet every tile phase
        of every member.
        """
        period = 1
        for member in self.members:
            period_of = getattr(member, "tile_period", None)
            if callable(period_of):
                period = math.lcm(period, max(1, int(period_of(width, height))))
        return period

    def _union(self, found: list[Detections]) -> Detections:
        found = [d for d in found if len(d)]
        if not found:
            return Detections.empty()
        xyxy = np.concatenate([d.xyxy for d in found])
        scores = np.concatenate([d.confidence for d in found])
        # merge_boxes grows each cluster's best box to the cluster's bounding box and keeps the
        # best score, so no member box loses coverage.
        return Detections(*merge_boxes(xyxy, scores, self.nms_iou))

    def close(self) -> None:
        """Close every member, even if one of them fails to close (the first error is raised)."""
        error: Exception | None = None
        for member in self.members:
            try:
                member.close()
            except Exception as e:  # noqa: BLE001 - keep closing the others, re-raise below
                log.warning("closing %s failed: %s", member.name, e)
                error = error or e
        if error is not None:
            raise error
