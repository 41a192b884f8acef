"""Where windows go: squares around motion and faces, per-face windows, bands of a full pass.

Pure geometry for :mod:`streamdeid.detect.focus`: boxes in, windows (x1, y1, x2, y2, in source
pixels, inside the frame) out.

Windows (the choice, and why). Everything the model must see whole is a *target*: a motion
blob grown by a quarter of its size (so a head whose edges alone moved is whole in it), or a
recent face grown by a quarter of its size (context). Small targets are covered greedily by
``tile_size`` squares, picking the square that holds the most targets first, from a fixed grid
with 50 % overlap (any target up to half a tile fits in one) plus a square centred on each
target: one window then serves a seated row or a group, where one window per face would run
the model a dozen times over the same pixels, and a lone target gets a centred window. A
``tile_size`` square is at least 2.5x a face it is used for (larger faces get their own 2.5x
window) and no coarser than the inner detectors' own tiles (192 against 256 px by default).
A blob too big for one square gets one window around it, for the large faces in it, plus (for
models with a fixed input size, which shrink a big window) the cells of a fixed ``tile_size``
grid with 25 % overlap (as the inner detectors use) that it touches, for the small faces that
the big window would shrink out of the model's reach.
Boxes around blobs rather than grid cells that merely contain motion keep a moving head whole
in one window; the fixed grids keep the choice stable from frame to frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from streamdeid.detect.fullconv import aligned
from streamdeid.detect.tiling import box_iou

Window = tuple[int, int, int, int]

# A window around a known face is at least this many times the face: context for the model.
FACE_CONTEXT = 2.5
# Faces at least this many network pixels tall in the cheap pass are found by it again; smaller
# ones get a window of their own. RetinaFace finds 75 % of WIDER faces at 24 network pixels, 85 %
# at 32-48 and 89 % above (benchmarks: recall by size).
COARSE_FACE = 24
# A face window shows its face this many network pixels tall (or as tall as the full pass does).
FACE_NET = 40
# A face window is at least this many network pixels wide: 96 costs 0.4 ms, 160 1.1 ms per call.
WINDOW_NET = 96

# Overlap of the cells laid under big blobs, as in the inner detectors' own tile grids.
CELL_OVERLAP = 0.25
# Overlap of the squares small targets are gathered into: up to half a tile fits in one.
COVER_OVERLAP = 0.5
# Blobs with fewer changed pixels (of the downscaled model) are noise: palette dithering,
# codec flicker. A moving head, even 15 px at 480 px wide, changes more; a face too small
# for that is too small for the model in a motion window anyway and waits for a full scan.
MIN_BLOB_PIXELS = 3
# Targets (blobs, faces) are grown by this share of their size on each side.
MARGIN = 0.25
# A blob window up to this many tile sizes needs no cells under it: 4/3 of the default 192 is
# 256, the inner detectors' default tile, so up to there it is no coarser than their tiles.
CELLS_ABOVE = 4 / 3


Box = tuple[float, float, float, float]


def blob_boxes(moved: np.ndarray, scale: tuple[float, float], kernel: np.ndarray) -> list[Box]:
    """Boxes (source pixels) of the motion blobs in a downscaled ``moved`` mask; noise dropped.

    The mask is dilated so that a head whose edges alone moved is one blob, and a blob counts
    only with at least MIN_BLOB_PIXELS changed pixels of its own.
    """
    mask = cv2.dilate(moved, kernel, iterations=2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    changed = np.bincount(labels[moved > 0], minlength=count)
    sx, sy = scale
    return [
        (x * sx, y * sy, (x + bw) * sx, (y + bh) * sy)
        for (x, y, bw, bh, _area), n in zip(stats[1:], changed[1:], strict=True)
        if n >= MIN_BLOB_PIXELS
    ]


def target_windows(
    blobs: Sequence[Box],
    faces: Sequence[Sequence[float]],
    tile: int,
    width: int,
    height: int,
    *,
    cells: Callable[[int, int, float], np.ndarray],
    fixed_input: bool,
) -> list[Window]:
    """Windows covering motion blobs and recent faces, chosen as the module docstring says.

    Args:
        cells: ``(width, height, overlap) -> (n, 4)`` grid of ``tile`` squares (cached by the
            caller: the grid of a stream is the same on every frame).
        fixed_input: the model resizes every window to one size, so a big blob also gets the
            grid cells under it for the small faces the big window would shrink.
    """
    fixed: list[Window] = []  # windows that serve one large target each
    small: list[Box] = []  # targets that fit a tile
    for box in blobs:
        target = grow(box, MARGIN)
        if edge(target) <= tile:
            small.append(target)
            continue
        window = fit(target, tile, width, height)
        fixed.append(window)
        if fixed_input and edge(window) > CELLS_ABOVE * tile:
            fixed.extend(touching(cells(width, height, CELL_OVERLAP), box))
    for face in faces:
        if FACE_CONTEXT * edge(face) <= tile:
            small.append(grow(face, MARGIN))
        else:
            fixed.append(fit(square(face, FACE_CONTEXT), tile, width, height))
    fixed = list(dict.fromkeys(fixed))
    fine = [w for w in fixed if edge(w) <= CELLS_ABOVE * tile]
    grid = cells(width, height, COVER_OVERLAP)
    return list(dict.fromkeys(fixed + cover(small, fine, grid, tile, width, height)))


def cover(
    targets: Sequence[Sequence[float]],
    fine: list[Window],
    grid: np.ndarray,
    tile: int,
    width: int,
    height: int,
) -> list[Window]:
    """Few ``tile`` squares that hold every target not already in a ``fine`` window.

    Greedy set cover: take the square holding the most targets still uncovered, the one most
    centred on them among equals; candidates are ``grid`` (the 50 %-overlap grid of ``tile``
    squares) and a square centred on each target, so every target has at least one square
    holding it.
    """
    if not targets:
        return []
    regions = np.asarray(targets, np.float64)
    regions = np.clip(regions, 0, [width, height, width, height])
    if fine:
        left = ~contains(np.asarray(fine, np.float64), regions).any(axis=0)
        regions = regions[left]
    if not len(regions):
        return []
    own = [fit(r, tile, width, height) for r in regions.tolist()]
    squares = np.concatenate([grid, own]).astype(np.float64)
    holds = contains(squares, regions)  # (squares, targets)
    centres = (regions[:, :2] + regions[:, 2:]) / 2
    square_centres = (squares[:, :2] + squares[:, 2:]) / 2
    chosen: list[Window] = []
    todo = np.ones(len(regions), bool)
    while todo.any():
        useful = holds & todo
        counts = useful.sum(axis=1)
        if not counts.any():  # cannot happen (each target has its own square); never loop
            chosen.extend(own[i] for i in np.flatnonzero(todo))
            break
        mean = (useful @ centres) / np.maximum(counts, 1)[:, None]
        off = np.abs(mean - square_centres).max(axis=1)
        best = int(np.argmax(counts * 1e6 - off))
        chosen.append(tuple(int(v) for v in squares[best]))  # type: ignore[arg-type]
        todo &= ~holds[best]
    return list(dict.fromkeys(chosen))


def face_windows(
    faces: np.ndarray, coarse: float, fine: float, width: int, height: int
) -> list[tuple[Window, float]]:
    """Windows around the ``faces`` too small for a cheap pass at ``coarse``, each with its scale.

    A face is looked at with the scale that shows it ``FACE_NET`` network pixels tall (at most
    ``fine``, the full pass's), in a square of ``FACE_CONTEXT`` times its size but at least
    ``WINDOW_NET`` network pixels: a 20-px face in a 360p frame then costs a 128-px network
    input (0.7 ms) instead of a tile of the full pass. Smallest faces first; a window also
    serves every other face wholly inside it that needs no larger scale.
    """
    faces = faces[(faces[:, 3] - faces[:, 1]) * coarse < COARSE_FACE]
    if not len(faces):
        return []
    edges = np.maximum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]).clip(1, None)
    needs = np.minimum(fine, FACE_NET / edges)
    # Quantised upwards so that neighbours share a scale (and a model call).
    needs = np.minimum(fine, np.ceil(needs * 8) / 8)
    order = np.argsort(-needs, kind="stable")
    covered = np.zeros(len(faces), bool)
    out: list[tuple[Window, float]] = []
    for i in order:
        if covered[i]:
            continue
        scale = float(needs[i])
        side = max(FACE_CONTEXT * edges[i], WINDOW_NET / scale)
        side = aligned(side * scale) / scale  # no network pixel wasted on rounding
        window = fit(square(faces[i], side / edges[i]), 1, width, height)
        inside = contains(np.asarray([window], np.float64), faces.astype(np.float64))[0]
        covered |= inside & (needs <= scale)
        covered[i] = True
        out.append((window, scale))
    return out


def fit(box: Sequence[float], min_edge: int, width: int, height: int) -> Window:
    """``box`` grown to ``min_edge`` on each side around its centre, then moved into the frame.

    A window is shifted rather than cut at the frame edge, so it keeps its size (and the face
    its scale) near the border; it is cut only where the frame itself is smaller.
    """

    def span(lo: float, hi: float, limit: int) -> tuple[int, int]:
        # Whole pixels outward, so the window always holds the box (when the frame can).
        first, last = math.floor(lo), math.ceil(hi)
        length = min(limit, max(min_edge, last - first))
        start = min(max((first + last - length) // 2, 0), limit - length)
        return start, start + length

    x1, x2 = span(box[0], box[2], width)
    y1, y2 = span(box[1], box[3], height)
    return (x1, y1, x2, y2)


def edge(box: Sequence[float]) -> float:
    return max(box[2] - box[0], box[3] - box[1])


def grow(box: Sequence[float], share: float) -> tuple[float, float, float, float]:
    """``box`` grown on each side by ``share`` of its longer side."""
    pad = share * edge(box)
    return (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)


def square(box: Sequence[float], times: float) -> tuple[float, float, float, float]:
    """The square ``times`` the longer side of ``box``, on the same centre."""
    cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, times * edge(box) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def touching(cells: np.ndarray, box: Sequence[float]) -> list[Window]:
    x1, y1, x2, y2 = box
    hit = (cells[:, 0] < x2) & (cells[:, 2] > x1) & (cells[:, 1] < y2) & (cells[:, 3] > y1)
    return [(int(c[0]), int(c[1]), int(c[2]), int(c[3])) for c in cells[hit]]


def same_place(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) bool: box a[i] and box b[j] overlap a lot or one holds the other's centre."""
    ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    b_in_a = (a[:, None, :2] <= cb[None]).all(axis=2) & (cb[None] <= a[:, None, 2:]).all(axis=2)
    a_in_b = (b[None, :, :2] <= ca[:, None]).all(axis=2) & (ca[:, None] <= b[None, :, 2:]).all(
        axis=2
    )
    return (box_iou(a, b) >= 0.3) | b_in_a | a_in_b


def contains(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, m) bool: window i holds box j entirely."""
    return (
        (windows[:, None, 0] <= boxes[None, :, 0])
        & (windows[:, None, 1] <= boxes[None, :, 1])
        & (windows[:, None, 2] >= boxes[None, :, 2])
        & (windows[:, None, 3] >= boxes[None, :, 3])
    )


def band_overlap(coarse: float) -> int:
    """Rows two parts of a split full pass share: a face the cheap pass cannot see (under
    ``COARSE_FACE`` network pixels there), padded as masks are, is whole in one part."""
    return math.ceil(1.5 * COARSE_FACE / coarse)


def bands(width: int, height: int, parts: int, overlap: int) -> list[Window]:
    """``parts`` full-width horizontal bands covering the frame, neighbours sharing ``overlap``
    rows."""
    step = math.ceil(height / parts)
    return [
        (0, max(0, k * step - overlap // 2), width, min(height, (k + 1) * step + overlap // 2))
        for k in range(parts)
    ]


def by_scale(scaled: list[tuple[Window, float]]) -> dict[float, list[Window]]:
    """Windows grouped by the scale they are seen at (one model call per scale)."""
    groups: dict[float, list[Window]] = {}
    for window, scale in scaled:
        groups.setdefault(scale, []).append(window)
    return groups
