"""Rendering synthetic frames: a textured background through the camera, face sprites on top.

Each frame comes with the boxes of the faces still visible on it (inside the frame, not covered
by a later sprite), which is the ground truth every test and benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from streamdeid.testing.paths import TEXTURE_SPAN, CameraPath, FacePath, default_camera

Box = tuple[int, int, int, int]

# A visible part thinner than this is not a face any detector or viewer could recognise.
MIN_VISIBLE_PX = 2


def background_texture(size: tuple[int, int], seed: int) -> np.ndarray:
    """A seeded, colourful, cloudy texture covering the world around the home view.

    Made of value noise at several scales (fractal clouds) plus a faint grid of tiles, so that
    a pan is obviously visible everywhere, yet nothing resembles a face. Mid and low frequencies
    dominate because fine noise is expensive to encode and would bloat the shipped sample.
    """
    w, h = size
    tw, th = TEXTURE_SPAN * w, TEXTURE_SPAN * h
    rng = np.random.default_rng(seed)
    texture = np.zeros((th, tw, 3), np.float32)
    total = 0.0
    for cell, weight in ((240, 1.0), (120, 0.6), (60, 0.4), (24, 0.3), (8, 0.2), (3, 0.1)):
        grid = rng.random((th // cell + 3, tw // cell + 3, 3), dtype=np.float32)
        up = cv2.resize(
            grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC
        )
        texture += weight * up[cell : cell + th, cell : cell + tw]
        total += weight
    texture /= total
    # Stretch the (centre-heavy) noise histogram and tint it so the channels do not look grey.
    lo, hi = np.percentile(texture, (1, 99))
    texture = np.clip((texture - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    tint = rng.uniform(0.55, 1.0, size=3).astype(np.float32)
    texture = 40.0 + 170.0 * texture * tint
    ys, xs = np.mgrid[0:th, 0:tw]
    tiles = ((xs // 80 + ys // 80) % 2).astype(np.float32)
    texture += (tiles * 10.0 - 5.0)[..., None]
    return np.clip(texture, 0, 255).astype(np.uint8)


def _paste(
    frame: np.ndarray, labels: np.ndarray, path: FacePath, index: int, label: int
) -> Box | None:
    """Alpha-blend ``path``'s sprite into ``frame`` and mark its face pixels in ``labels``.

    Returns the unclipped, integer face box, or None when the sprite is entirely off-frame.
    """
    fh, fw = frame.shape[:2]
    sprite = path.sprite
    sh, sw = sprite.image.shape[:2]
    s = float(path.scales[index])
    nw, nh = max(1, round(sw * s)), max(1, round(sh * s))
    sx, sy = nw / sw, nh / sh
    fx1, fy1, fx2, fy2 = sprite.face_xyxy
    cx, cy = path.centers[index]
    ox = round(cx - (fx1 + fx2) / 2 * sx)
    oy = round(cy - (fy1 + fy2) / 2 * sy)
    # Visible window of the sprite in frame coordinates.
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + nw, fw), min(oy + nh, fh)
    if x1 <= x0 or y1 <= y0:
        return None
    interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sprite.image, (nw, nh), interpolation=interpolation)
    alpha = cv2.resize(sprite.alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
    window = (slice(y0, y1), slice(x0, x1))
    local = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    a = alpha[local][..., None]
    under = frame[window].astype(np.float32)
    frame[window] = np.rint(under + (image[local].astype(np.float32) - under) * a).astype(np.uint8)
    # Whatever this sprite covers hides faces drawn before it; then its own face is on top.
    labels[window][alpha[local] >= 0.5] = -1
    face = (ox + round(fx1 * sx), oy + round(fy1 * sy), ox + round(fx2 * sx), oy + round(fy2 * sy))
    labels[max(face[1], 0) : max(face[3], 0), max(face[0], 0) : max(face[2], 0)] = label
    return face


def _visible_box(labels: np.ndarray, face: Box, label: int) -> Box | None:
    """Bounding box of the pixels of ``face`` still showing on the final frame, if big enough."""
    h, w = labels.shape
    x1, y1 = min(max(face[0], 0), w), min(max(face[1], 0), h)
    x2, y2 = min(max(face[2], 0), w), min(max(face[3], 0), h)
    if x2 - x1 < MIN_VISIBLE_PX or y2 - y1 < MIN_VISIBLE_PX:
        return None
    mine = labels[y1:y2, x1:x2] == label
    cols = np.flatnonzero(mine.any(axis=0))
    rows = np.flatnonzero(mine.any(axis=1))
    if cols.size == 0:
        return None
    box = (x1 + int(cols[0]), y1 + int(rows[0]), x1 + int(cols[-1]) + 1, y1 + int(rows[-1]) + 1)
    if box[2] - box[0] < MIN_VISIBLE_PX or box[3] - box[1] < MIN_VISIBLE_PX:
        return None
    return box


def render_frames(
    size: tuple[int, int],
    n_frames: int,
    paths: Sequence[FacePath],
    seed: int = 0,
    camera: CameraPath | None = None,
) -> Iterator[tuple[np.ndarray, list[Box]]]:
    """Yield ``(frame, boxes)``: BGR frames and the visible face boxes on each.

    Sprites are drawn in ``paths`` order, later ones on top. A box is the part of a face that is
    inside the frame and not covered by a later sprite; faces whose visible part is less than
    ``MIN_VISIBLE_PX`` wide or tall are left out. Boxes keep ``paths`` order. The background
    depends only on ``size``, ``seed`` and ``camera``, so rendering with ``paths=[]`` gives the
    same frames without faces, which is how tests prove a face was really drawn.

    Args:
        size: Output ``(width, height)``.
        n_frames: Number of frames to yield; every path (and the camera) must be at least as long.
        paths: Face motions.
        seed: Seed of the background texture.
        camera: Background camera motion; defaults to :func:`default_camera`.

    Raises:
        ValueError: On a bad size, or a path or camera shorter than ``n_frames``. Raised by this
            call, not on the first ``next()``, so a broken scenario fails where it is written.
    """
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive (width, height), but got {size}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, but got {n_frames}")
    camera = camera if camera is not None else default_camera((w, h), n_frames)
    if tuple(camera.size) != (w, h):
        raise ValueError(f"camera was made for size {camera.size}, but frames are {(w, h)}")
    for name, length in [("camera", len(camera))] + [
        (f"paths[{i}]", len(p)) for i, p in enumerate(paths)
    ]:
        if length < n_frames:
            raise ValueError(f"{name} covers {length} frames, but {n_frames} were requested")
    return _render(w, h, n_frames, paths, seed, camera)


def _render(
    w: int, h: int, n_frames: int, paths: Sequence[FacePath], seed: int, camera: CameraPath
) -> Iterator[tuple[np.ndarray, list[Box]]]:
    texture = background_texture((w, h), seed)
    for index in range(n_frames):
        frame = cv2.warpAffine(
            texture,
            camera.affine(index),
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        labels = np.full((h, w), -1, np.int16)
        faces = [_paste(frame, labels, path, index, label) for label, path in enumerate(paths)]
        boxes = []
        for label, face in enumerate(faces):
            box = None if face is None else _visible_box(labels, face, label)
            if box is not None:
                boxes.append(box)
        yield frame, boxes
