"""numba kernels of the surrogate method: piecewise-affine mesh warp and colour-matched blend.

Why numba: OpenCV has no mesh warp; with OpenCV it is one ``warpAffine`` of the triangle's
bounding rectangle plus one mask per triangle, ~900 triangles per face. Measured on a 200-px
face (``benchmarks/surrogate_speed.py --kernels``): 1.1 ms here, 30 ms for that OpenCV loop. The
blend is one pass that applies the colour transfer and the feathered alpha together, instead of
four numpy temporaries of the crop.

Coordinates: pixel ``(x, y)`` of an array sits at the point ``(x, y)``; mesh points use the same
frame, so a point list shifted by a crop's origin addresses the crop.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _sample(src: np.ndarray, x: float, y: float, out: np.ndarray) -> None:
    """Bilinear sample of ``src`` (uint8, H x W x 3) at ``(x, y)``, clamped to its border."""
    h, w = src.shape[0], src.shape[1]
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0, y0 = int(x), int(y)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    for c in range(3):
        top = src[y0, x0, c] * (1.0 - fx) + src[y0, x1, c] * fx
        bottom = src[y1, x0, c] * (1.0 - fx) + src[y1, x1, c] * fx
        out[c] = top * (1.0 - fy) + bottom * fy


@njit(nogil=True, cache=True)
def warp_mesh(
    dst: np.ndarray,
    mask: np.ndarray,
    dst_pts: np.ndarray,
    src: np.ndarray,
    src_pts: np.ndarray,
    tris: np.ndarray,
) -> None:
    """Draw ``src`` into ``dst`` so that each triangle of ``src_pts`` lands on ``dst_pts``.

    Args:
        dst: ``(H, W, 3)`` float32, written inside the triangles only.
        mask: ``(H, W)`` uint8, set to 255 where a triangle was drawn.
        dst_pts: ``(n, 2)`` float32 mesh points in ``dst`` pixels.
        src: ``(h, w, 3)`` uint8 image the pixels come from.
        src_pts: ``(n, 2)`` float32 the same mesh points in ``src`` pixels.
        tris: ``(m, 3)`` int32 point indices of each triangle.
    """
    h, w = dst.shape[0], dst.shape[1]
    px = np.empty(3, np.float32)
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, ay = dst_pts[a, 0], dst_pts[a, 1]
        bx, by = dst_pts[b, 0], dst_pts[b, 1]
        cx, cy = dst_pts[c, 0], dst_pts[c, 1]
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(den) < 1e-6:
            continue
        xlo = max(int(np.floor(min(ax, bx, cx))), 0)
        xhi = min(int(np.ceil(max(ax, bx, cx))), w - 1)
        ylo = max(int(np.floor(min(ay, by, cy))), 0)
        yhi = min(int(np.ceil(max(ay, by, cy))), h - 1)
        for y in range(ylo, yhi + 1):
            for x in range(xlo, xhi + 1):
                wa = ((by - cy) * (x - cx) + (cx - bx) * (y - cy)) / den
                wb = ((cy - ay) * (x - cx) + (ax - cx) * (y - cy)) / den
                wc = 1.0 - wa - wb
                if wa < -1e-4 or wb < -1e-4 or wc < -1e-4:
                    continue
                sx = wa * src_pts[a, 0] + wb * src_pts[b, 0] + wc * src_pts[c, 0]
                sy = wa * src_pts[a, 1] + wb * src_pts[b, 1] + wc * src_pts[c, 1]
                _sample(src, sx, sy, px)
                dst[y, x, 0] = px[0]
                dst[y, x, 1] = px[1]
                dst[y, x, 2] = px[2]
                mask[y, x] = 255


@njit(nogil=True, cache=True)
def blend_region(
    img: np.ndarray,
    x1: int,
    y1: int,
    face: np.ndarray,
    alpha: np.ndarray,
    gain: np.ndarray,
    bias: np.ndarray,
) -> None:
    """``img = (1 - alpha) * img + alpha * clip(face * gain + bias)`` over the crop at (x1, y1).

    Args:
        img: ``(H, W, 3)`` uint8 frame, modified in place (the crop must lie inside it).
        x1: Left edge of the crop in ``img``.
        y1: Top edge of the crop in ``img``.
        face: ``(h, w, 3)`` float32 warped surrogate.
        alpha: ``(h, w)`` float32 opacity in [0, 1].
        gain: ``(3,)`` float32 per-channel contrast of the colour transfer.
        bias: ``(3,)`` float32 per-channel offset of the colour transfer.
    """
    h, w = alpha.shape[0], alpha.shape[1]
    for y in range(h):
        for x in range(w):
            a = alpha[y, x]
            if a <= 0.0:
                continue
            for c in range(3):
                v = min(max(face[y, x, c] * gain[c] + bias[c], 0.0), 255.0)
                out = (1.0 - a) * img[y1 + y, x1 + x, c] + a * v
                img[y1 + y, x1 + x, c] = np.uint8(min(max(out + 0.5, 0.0), 255.0))


@njit(nogil=True, cache=True)
def count_changed(before: np.ndarray, after: np.ndarray, level: int) -> int:
    """Pixels whose grey level (mean of the 3 channels) differs by more than ``level``.

    Compared as channel sums against ``3 * level``, which is the same test without rounding.
    """
    n = 0
    for y in range(before.shape[0]):
        for x in range(before.shape[1]):
            # Signed: numba's int() of a uint8 is unsigned, and a - b would wrap around.
            a = np.int64(before[y, x, 0]) + np.int64(before[y, x, 1]) + np.int64(before[y, x, 2])
            b = np.int64(after[y, x, 0]) + np.int64(after[y, x, 1]) + np.int64(after[y, x, 2])
            if abs(a - b) > 3 * level:
                n += 1
    return n
