"""Turn raw detections and tracks into the pixel regions that get obscured.

The union is deliberate: a raw detection is masked even if the tracker has not matched it yet,
and a track is masked even when the detector missed it on this frame. Boxes are padded by
``mask_scale`` (detector boxes are tight, hair and ears identify people too), enlarged to a
minimum size (a 3-px face is still a face), rounded outwards and clipped to the frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from streamdeid.obscure.region_merge import merge_same_faces
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
    tracks = list(tracks)
    ghosts = _ghosts(tracks)
    for t, ghost in zip(tracks, ghosts, strict=True):
        box = pad_box(t.xyxy, width, height, mask_scale, min_size_px)
        if box is not None:
            boxes.append((box, t.track_id))
            if not ghost:
                faces[t.track_id] = _face(t)
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
    items = list(boxes)
    if not items:
        return []
    merged, has_id, ids, holds = merge_same_faces(
        np.array([box for box, _ in items], np.int64).reshape(-1, 4),
        np.array([track_id is not None for _, track_id in items], np.bool_),
        np.array([track_id or 0 for _, track_id in items], np.int64),
    )
    track_ids = [int(t) if h else None for h, t in zip(has_id.tolist(), ids.tolist(), strict=True)]
    free = ~holds.any(axis=1)
    inner: dict[int, dict[int, Face]] = {}
    for i, track_id in enumerate(track_ids):
        face = faces.get(track_id) if track_id is not None else None
        if face is None:
            continue
        for j in np.flatnonzero(holds[i] & free).tolist():
            if track_ids[j] != track_id:
                inner.setdefault(j, {})[track_id] = face
    kept = []
    for i, (box, track_id) in enumerate(zip(merged.tolist(), track_ids, strict=True)):
        if free[i]:
            face = faces.get(track_id) if track_id is not None else None
            kept.append(Region(tuple(box), track_id, face, tuple(inner.get(i, {}).items())))
    return kept


def box_around(a: Box, b: Box) -> Box:
    """The smallest box holding both."""
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _ghosts(tracks: list[Track]) -> list[bool]:
    """Per track: a coasting track overlapping a seen one by IoU > :data:`GHOST_IOU`.

    All pairs at once in float64, the same operations in the same order as a scalar IoU, so
    the same answer (a crowd has tens of coasting tracks against tens of seen ones per frame).
    """
    coasting = np.array([t.state == TrackState.COASTING for t in tracks], np.bool_)
    if not coasting.any() or coasting.all():
        return [False] * len(tracks)
    faces = np.array([_face(t) for t in tracks], np.float64).reshape(-1, 4)
    a, b = faces[coasting][:, None, :], faces[~coasting][None, :, :]
    inter = intersections(faces[coasting], faces[~coasting])
    union = _area_of(a[..., :2], a[..., 2:]) + _area_of(b[..., :2], b[..., 2:]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union != 0, inter / np.where(union != 0, union, 1.0), 0.0)
    out = np.zeros(len(tracks), np.bool_)
    out[coasting] = (iou > GHOST_IOU).any(axis=1)
    return out.tolist()


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of the xyxy boxes ``a`` (n, 4) and ``b`` (m, 4), as (n, m)."""
    a, b = a[:, None, :], b[None, :, :]
    return _area_of(np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:]))


def _area_of(top_left: np.ndarray, bottom_right: np.ndarray) -> np.ndarray:
    wh = np.maximum(0.0, bottom_right - top_left)
    return wh[..., 0] * wh[..., 1]
