"""Turn raw detections and tracks into the pixel regions that get obscured.

The union is deliberate: a raw detection is masked even if the tracker has not matched it yet,
and a track is masked even when the detector missed it on this frame. Boxes are padded by
``mask_scale`` (detector boxes are tight, hair and ears identify people too), enlarged to a
minimum size (a 3-px face is still a face), rounded outwards and clipped to the frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from streamdeid.types import Detections, Region, Track, TrackState

Box = tuple[int, int, int, int]
Face = tuple[float, float, float, float]


def whole_frame(width: int, height: int) -> list[Region]:
    """The one region that masks everything (detector failed, or nobody looked at the frame)."""
    return [Region((0, 0, width, height))]


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


GHOST_IOU = 0.1
"""A coasting track overlapping a seen one by more than this names no face on its region, so
a face-drawing method does not draw a second face beside the real one where the old track's
prediction drifted (crowd clip, surrogate: faces found again by dlib 83 -> 87 of 112, mean of
8 seeded runs). Masking is unchanged: the region is there either way."""


def _face(track: Track) -> Face:
    x1, y1, x2, y2 = (float(v) for v in track.xyxy)
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
    """Regions for one frame: every detection ∪ every track, or the whole frame on failure.

    A coasting track whose box overlaps a track the detector still sees is most often the
    same person, followed anew after a jump the tracker could not match: its region is
    masked like any other, but it names no face (see :data:`GHOST_IOU`).
    """
    if detection_failed:
        return whole_frame(width, height)
    boxes: list[tuple[Box, int | None]] = []
    faces: dict[int, Face] = {}
    with_faces = [(t, _face(t)) for t in tracks]
    seen = [face for t, face in with_faces if t.state != TrackState.COASTING]
    for t, face in with_faces:
        box = pad_box(t.xyxy, width, height, mask_scale, min_size_px)
        if box is not None:
            boxes.append((box, t.track_id))
            if t.state != TrackState.COASTING or not any(_iou(face, s) > GHOST_IOU for s in seen):
                faces[t.track_id] = face
    if detections is not None:
        for xyxy in detections.xyxy:
            box = pad_box(xyxy, width, height, mask_scale, min_size_px)
            if box is not None:
                boxes.append((box, None))
    return merge_regions(boxes, faces)


def merge_regions(
    boxes: Iterable[tuple[Box, int | None]], faces: Mapping[int, Face] | None = None
) -> list[Region]:
    """One region per face: boxes of the same face are replaced by the box around them.

    A matched detection and its track's box are the same face a few pixels apart, and a
    skipped frame adds the face's boxes before and after (:mod:`streamdeid.pipeline.lookahead`).
    Blurring each would blur most pixels of the face two or three times (measured on a 720p
    crowd: 30-37% of the blurred area). The box around both covers everything either did, so
    merging never masks less. Two boxes are the same face when they carry the same track id
    and the box around them is no larger than the two together, or when one has no track id
    (a raw detection) and they overlap with IoU >= 0.5. Boxes of two different tracks are
    never merged: a region belongs to one person, whose reveal must not show a neighbour.
    Boxes lying inside another are dropped (already masked). A region of a track named in
    ``faces`` carries that face box, and the faces of other tracks dropped inside it (see
    :class:`~streamdeid.types.Region`).
    """
    faces = faces or {}
    merged: list[list] = []  # [box, track_id]
    for box, track_id in boxes:
        for item in merged:
            if _same_face(item[0], item[1], box, track_id):
                item[0] = box_around(item[0], box)
                if item[1] is None:
                    item[1] = track_id
                break
        else:
            merged.append([box, track_id])
    holders = [
        [j for j, (other, _) in enumerate(merged) if _holds(other, j, box, i)]
        for i, (box, _) in enumerate(merged)
    ]
    inner: dict[int, dict[int, Face]] = {}
    for (_, track_id), held_by in zip(merged, holders, strict=True):
        face = faces.get(track_id) if track_id is not None else None
        if face is None:
            continue
        for j in held_by:
            if not holders[j] and merged[j][1] != track_id:
                inner.setdefault(j, {})[track_id] = face
    kept = []
    for i, (box, track_id) in enumerate(merged):
        if not holders[i]:
            face = faces.get(track_id) if track_id is not None else None
            kept.append(Region(box, track_id, face, tuple(inner.get(i, {}).items())))
    return kept


def _holds(other: Box, j: int, box: Box, i: int) -> bool:
    """Whether merged box ``j`` holds box ``i`` (of two equal boxes the first holds the other)."""
    return j != i and _contains(other, box) and (other != box or j < i)


def _same_face(a: Box, a_id: int | None, b: Box, b_id: int | None) -> bool:
    if a_id is not None and b_id is not None:
        return a_id == b_id and _area(box_around(a, b)) <= _area(a) + _area(b)
    return _iou(a, b) >= 0.5


def box_around(a: Box, b: Box) -> Box:
    """The smallest box holding both."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _area(b: Face) -> float:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _iou(a: Face, b: Face) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union else 0.0


def _contains(outer: Box, inner: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and outer[2] >= inner[2]
        and outer[3] >= inner[3]
    )
