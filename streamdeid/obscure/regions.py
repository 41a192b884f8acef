"""Turn raw detections and tracks into the pixel regions that get obscured.

The union is deliberate: a raw detection is masked even if the tracker has not matched it yet,
and a track is masked even when the detector missed it on this frame. Boxes are padded by
``mask_scale`` (detector boxes are tight, hair and ears identify people too), enlarged to a
minimum size (a 3-px face is still a face), rounded outwards and clipped to the frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from streamdeid.types import Detections, Region, Track


def pad_box(
    xyxy: Iterable[float], width: int, height: int, mask_scale: float, min_size_px: int
) -> tuple[int, int, int, int] | None:
    """Padded, clipped integer box, or None when it lies entirely outside the frame.

    A box cut by the frame edge is a face entering or leaving: its visible part is narrower
    than the face, and it will widen inwards before the next detection. Such boxes are first
    restored to at least a square, extended away from the edge.
    """
    x1, y1, x2, y2 = _restore_edge_cut(*(float(v) for v in xyxy), width, height)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w = max((x2 - x1) * mask_scale, float(min_size_px))
    h = max((y2 - y1) * mask_scale, float(min_size_px))
    bx1 = max(0, math.floor(cx - w / 2))
    by1 = max(0, math.floor(cy - h / 2))
    bx2 = min(width, math.ceil(cx + w / 2))
    by2 = min(height, math.ceil(cy + h / 2))
    if bx2 <= bx1 or by2 <= by1:
        return None
    return bx1, by1, bx2, by2


def _restore_edge_cut(
    x1: float, y1: float, x2: float, y2: float, width: int, height: int, margin: float = 1.0
) -> tuple[float, float, float, float]:
    w, h = x2 - x1, y2 - y1
    if w < h:
        if x2 >= width - margin:
            x1 = min(x1, x2 - h)
        elif x1 <= margin:
            x2 = max(x2, x1 + h)
    elif h < w:
        if y2 >= height - margin:
            y1 = min(y1, y2 - w)
        elif y1 <= margin:
            y2 = max(y2, y1 + w)
    return x1, y1, x2, y2


def build_regions(
    detections: Detections | None,
    tracks: Iterable[Track],
    width: int,
    height: int,
    mask_scale: float = 1.3,
    min_size_px: int = 12,
    detection_failed: bool = False,
) -> list[Region]:
    """Regions for one frame: every detection ∪ every track, or the whole frame on failure."""
    if detection_failed:
        return [Region((0, 0, width, height))]
    regions: list[Region] = []
    seen: set[tuple[int, int, int, int]] = set()

    def add(xyxy: np.ndarray, track_id: int | None) -> None:
        box = pad_box(xyxy, width, height, mask_scale, min_size_px)
        if box is None or box in seen:
            return
        if track_id is None and any(_contains(r.xyxy, box) for r in regions):
            return  # already masked (and stored) as part of its track's region
        seen.add(box)
        regions.append(Region(box, track_id))

    for t in tracks:
        add(t.xyxy, t.track_id)
    if detections is not None:
        for xyxy in detections.xyxy:
            add(xyxy, None)
    return regions


def _contains(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and outer[2] >= inner[2]
        and outer[3] >= inner[3]
    )
