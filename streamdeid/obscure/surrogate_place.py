"""Where a drawn surrogate goes in a frame: one region per tracked face, and the part of the
drawn face that lies inside it.

Kept apart from the filter (:mod:`streamdeid.obscure.surrogate`) because it is pure geometry on
boxes and arrays: a track can have several regions, a face can sit inside another track's
region, and a face drawn once per fit is moved with its track on the frames in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamdeid.obscure.filters import pixel_regions
from streamdeid.obscure.regions import Box, Face, intersections
from streamdeid.types import Region


@dataclass(slots=True)
class Drawn:
    """A surrogate warped onto one fit, with its opacity and colour transfer: drawn once per
    fit and moved with the track on the frames in between."""

    x0: int  # where face[0, 0] goes in the frame, for the fit as fitted (not shifted)
    y0: int
    face: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32
    gain: np.ndarray  # (3,) float32
    bias: np.ndarray  # (3,) float32


@dataclass(slots=True)
class Plan:
    """A surrogate ready to blend into one region once the frame has been blurred."""

    region: Box
    original: np.ndarray  # (h, w, 3) uint8 copy of the region before blurring
    x1: int  # where face[0, 0] goes in the frame (the part of the face inside the region)
    y1: int
    face: np.ndarray  # (fh, fw, 3) float32, C-contiguous
    alpha: np.ndarray  # (fh, fw) float32
    gain: np.ndarray
    bias: np.ndarray
    face_box: Box  # the tracked face box, in frame pixels (checked where it is in the region)


def centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def one_per_face(image: np.ndarray, regions: Sequence[Region]) -> list[tuple[Box, Region]]:
    """The regions a surrogate may be drawn in: one per tracked face, the one holding the
    face's centre (a track whose boxes were too far apart to merge has several regions, and
    the face is in one of them), plus every region without a face (counted, never drawn).

    A face whose box lies inside another track's region (:attr:`Region.inner`) is drawn in
    that region: between two runs a span around a moving face often holds a neighbour, which
    otherwise stayed blurred (measured: most of the faces dlib lost on such frames)."""
    chosen: dict[int, tuple[Box, Region]] = {}
    out: list[tuple[Box, Region]] = []
    for box, region in pixel_regions(image, regions):
        inner = [Region(region.xyxy, track_id, face) for track_id, face in region.inner]
        for r in (region, *inner):
            if r.track_id is None or r.face is None:
                out.append((box, r))
                continue
            cx, cy = centre(r.face)
            holds = box[0] <= cx < box[2] and box[1] <= cy < box[3]
            if r.track_id not in chosen or holds:
                chosen[r.track_id] = (box, r)
    return out + list(chosen.values())


COVERED = 0.5
"""A tracked face whose box lies more than this share inside the boxes of other tracked faces
of about its size (:data:`COVERING_SIZE`) draws no face: it stays blurred, and adds nothing to
the gallery. In a crowd the detector sometimes reports a box straddling two neighbours, the
halves of two faces taken for one; its track then drew a third face over both (crowd clip: dlib
lost the man behind such a box on every frame between two runs)."""

COVERING_SIZE = 1.5
"""Only boxes up to this many times a face box's area count as covering it. A real face often
lies inside a much larger box (a track whose size went wrong, a coasting prediction): that box
is not a face beside it, and counting it dropped real faces (crowd clip, dlib: 6 faces lost)."""


def covered(faces: dict[int, Face]) -> set[int]:
    """Tracks whose face box lies mostly inside the boxes of others of about its size (see
    :data:`COVERED`).

    Greedy, most covered first, against the faces still kept: of two boxes on one face, one is
    kept; of a box between two faces, the two are kept.
    """
    ids = list(faces)
    boxes = np.array([faces[t] for t in ids], np.float64).reshape(-1, 4)
    inter = intersections(boxes, boxes)
    area = inter.diagonal().copy()  # a box's overlap with itself
    # Row i: the boxes that may cover box i (overlapping it, not much larger, not itself).
    may = (inter > 0) & (area[None, :] <= COVERING_SIZE * area[:, None])
    np.fill_diagonal(may, False)
    # The union is at most the sum of the overlaps: only these boxes can be over the bar.
    candidates = set(np.flatnonzero((inter * may).sum(axis=1) > COVERED * area).tolist())
    kept = np.ones(len(ids), np.bool_)
    out: set[int] = set()
    while candidates:
        share = {i: _inside(boxes[i], boxes[may[i] & kept]) for i in candidates}
        worst = max(share, key=share.__getitem__)
        if share[worst] <= COVERED:
            break
        kept[worst] = False
        candidates.discard(worst)
        out.add(ids[worst])
    return out


def _inside(box: np.ndarray, others: np.ndarray) -> float:
    """Share of ``box``'s area inside the union of ``others`` (exact, on their edges' grid)."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    if area <= 0 or len(others) == 0:
        return 0.0
    clip = np.clip(others, [x1, y1, x1, y1], [x2, y2, x2, y2])
    clip = clip[(clip[:, 2] > clip[:, 0]) & (clip[:, 3] > clip[:, 1])]
    if len(clip) == 0:
        return 0.0
    xs, ys = np.unique(clip[:, [0, 2]]), np.unique(clip[:, [1, 3]])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    hit = np.zeros((len(cy), len(cx)), np.bool_)
    for bx1, by1, bx2, by2 in clip:
        hit |= ((cy > by1) & (cy < by2))[:, None] & ((cx > bx1) & (cx < bx2))[None, :]
    cells = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    return float((cells * hit).sum() / area)


def place(
    image: np.ndarray, box: Box, drawn: Drawn, dx: int, dy: int, face: Sequence[float]
) -> Plan | None:
    """The part of ``drawn``, moved by ``dx, dy``, that lies inside the region ``box``
    (which holds the tracked face box ``face``)."""
    x1, y1, x2, y2 = box
    h, w = drawn.alpha.shape
    ox, oy = drawn.x0 + dx, drawn.y0 + dy
    ix1, iy1, ix2, iy2 = max(x1, ox), max(y1, oy), min(x2, ox + w), min(y2, oy + h)
    if ix2 <= ix1 or iy2 <= iy1:
        return None
    sub = (slice(iy1 - oy, iy2 - oy), slice(ix1 - ox, ix2 - ox))
    face_img = np.ascontiguousarray(drawn.face[sub])
    alpha = np.ascontiguousarray(drawn.alpha[sub])
    original = image[y1:y2, x1:x2].copy()
    face_box = (round(face[0]), round(face[1]), round(face[2]), round(face[3]))
    return Plan(box, original, ix1, iy1, face_img, alpha, drawn.gain, drawn.bias, face_box)
