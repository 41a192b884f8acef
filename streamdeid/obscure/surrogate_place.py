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
from streamdeid.obscure.regions import Box
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
