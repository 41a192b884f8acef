"""numpy references of the obscuring kernels: slow, literal transcriptions of their definitions.

They exist for the tests, which check that every numba kernel in :mod:`streamdeid.obscure.kernels`
matches its reference here bit for bit; the pipeline never calls them. Same arguments, same
argument checks and messages (from :mod:`streamdeid.obscure.kernel_rules`), same result.
"""

from __future__ import annotations

import numpy as np

from streamdeid.obscure.kernel_rules import (
    BAD_BLOCK,
    BAD_BOX,
    BAD_FACTOR,
    BAD_RADIUS,
    bilinear_taps,
    box_ok,
    ellipse_mask,
    radius_ok,
)

__all__ = [
    "blur_region_coarse_ref",
    "blur_region_ref",
    "fill_region_ref",
    "pixelate_region_ref",
]


def _check_ref_args(img: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
    """Fail like the kernels do, so both sides reject the same inputs."""
    if not box_ok(img, x1, y1, x2, y2):
        raise ValueError(BAD_BOX)


def _paste(img: np.ndarray, values: np.ndarray, x1: int, y1: int, ellipse: bool) -> None:
    """Write ``values`` (``(h, w, 3)``) into the box, only inside the ellipse when asked."""
    h, w = values.shape[:2]
    view = img[y1 : y1 + h, x1 : x1 + w]
    if ellipse:
        mask = ellipse_mask(w, h)
        view[mask] = values[mask]
    else:
        view[...] = values


def _box_1d_ref(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Box filter along ``axis`` by padding with edge copies and summing every shifted window."""
    n = a.shape[axis]
    widths = [(0, 0)] * a.ndim
    widths[axis] = (r, r)
    padded = np.pad(a, widths, mode="edge")
    total = np.zeros_like(a)
    for t in range(2 * r + 1):
        total += np.take(padded, np.arange(t, t + n), axis=axis)
    return (total + r) // (2 * r + 1)


def blur_region_ref(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, radius: int, passes: int, ellipse: bool
) -> None:
    """numpy reference for :func:`blur_region` (same arguments, same result bit for bit)."""
    _check_ref_args(img, x1, y1, x2, y2)
    if not radius_ok(radius, passes):
        raise ValueError(BAD_RADIUS)
    a = img[y1:y2, x1:x2].astype(np.int64)
    for _ in range(passes):
        a = _box_1d_ref(a, radius, axis=1)
        a = _box_1d_ref(a, radius, axis=0)
    _paste(img, a.astype(np.uint8), x1, y1, ellipse)


def blur_region_coarse_ref(
    img: np.ndarray,
    x1: int,
    y1: int,
    x2: int,
    y2: int,
    radius: int,
    passes: int,
    ellipse: bool,
    factor: int,
) -> None:
    """numpy reference for :func:`blur_region_coarse` (same arguments, same result bit for bit)."""
    _check_ref_args(img, x1, y1, x2, y2)
    if not radius_ok(radius, passes):
        raise ValueError(BAD_RADIUS)
    if factor < 1:
        raise ValueError(BAD_FACTOR)
    region = img[y1:y2, x1:x2].astype(np.int64)
    h, w = region.shape[:2]
    rows = np.arange(0, h, factor)
    cols = np.arange(0, w, factor)
    sums = np.add.reduceat(np.add.reduceat(region, rows, axis=0), cols, axis=1)
    counts = np.minimum(factor, h - rows)[:, None] * np.minimum(factor, w - cols)[None, :]
    small = (sums + (counts // 2)[..., None]) // counts[..., None]
    r = (radius + factor - 1) // factor
    for _ in range(passes):
        small = _box_1d_ref(small, r, axis=1)
        small = _box_1d_ref(small, r, axis=0)
    ty = np.array([bilinear_taps(j, factor, len(rows)) for j in range(h)]).reshape(-1, 3)
    tx = np.array([bilinear_taps(i, factor, len(cols)) for i in range(w)]).reshape(-1, 3)
    wx = tx[:, 2][None, :, None]
    wide = (256 - wx) * small[:, tx[:, 0]] + wx * small[:, tx[:, 1]]
    wy = ty[:, 2][:, None, None]
    value = ((256 - wy) * wide[ty[:, 0]] + wy * wide[ty[:, 1]] + 32768) >> 16
    _paste(img, value.astype(np.uint8), x1, y1, ellipse)


def pixelate_region_ref(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, block: int, ellipse: bool
) -> None:
    """numpy reference for :func:`pixelate_region` (same arguments, same result bit for bit)."""
    _check_ref_args(img, x1, y1, x2, y2)
    if block < 1:
        raise ValueError(BAD_BLOCK)
    region = img[y1:y2, x1:x2]
    out = region.copy()
    for cy in range(0, y2 - y1, block):
        for cx in range(0, x2 - x1, block):
            cell = region[cy : cy + block, cx : cx + block]
            n = cell.shape[0] * cell.shape[1]
            total = cell.sum(axis=(0, 1), dtype=np.int64)
            out[cy : cy + block, cx : cx + block] = (total + n // 2) // n
    _paste(img, out, x1, y1, ellipse)


def fill_region_ref(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, b: int, g: int, r: int, ellipse: bool
) -> None:
    """numpy reference for :func:`fill_region` (same arguments, same result bit for bit)."""
    _check_ref_args(img, x1, y1, x2, y2)
    colour = np.array([b, g, r], dtype=np.uint8)
    _paste(img, np.broadcast_to(colour, (y2 - y1, x2 - x1, 3)), x1, y1, ellipse)
