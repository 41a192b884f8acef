"""Pixel rules of the surrogate's blend: its feathered opacity, its colour transfer, and the
test that it changed enough of the face to count as masked.

Apart from :mod:`streamdeid.obscure.surrogate` (which decides where and what to draw) because
these are plain image functions of their inputs, tested on their own.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdeid.obscure.mesh_kernels import count_changed

CHANGED_LEVEL = 12
"""Grey levels a pixel must move by to count as changed (EVALUATION.md's "masked" test)."""


def changed_share(before: np.ndarray, after: np.ndarray, level: int = CHANGED_LEVEL) -> float:
    """Share of pixels whose grey level (mean of B, G, R) moved by more than ``level``."""
    pixels = before.shape[0] * before.shape[1]
    return count_changed(before, after, level) / pixels if pixels else 1.0


def changed_in(
    before: np.ndarray, after: np.ndarray, region: tuple[int, ...], box: tuple[int, ...]
) -> float:
    """:func:`changed_share` of the part of ``box`` inside ``region`` (both in frame pixels),
    where ``before`` and ``after`` are the region's crops."""
    x1, y1, x2, y2 = region
    bx1, by1 = max(box[0], x1) - x1, max(box[1], y1) - y1
    bx2, by2 = min(box[2], x2) - x1, min(box[3], y2) - y1
    return changed_share(before[by1:by2, bx1:bx2], after[by1:by2, bx1:bx2])


def feathered(mask: np.ndarray, width: int) -> np.ndarray:
    """Opacity from a coverage mask that is 1 deep inside and falls to 0 ``width`` px inside
    the mask's edge, so the blend never reaches a pixel the mesh does not cover."""
    kernel = np.ones((2 * width + 3, 2 * width + 3), np.uint8)  # w + 1 in: the blur spreads w
    inner = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    soft = cv2.blur(inner, (2 * width + 1, 2 * width + 1), borderType=cv2.BORDER_CONSTANT)
    alpha = soft.astype(np.float32) * (1 / 255)
    alpha[mask == 0] = 0.0
    return alpha


def colour_transfer(
    face: np.ndarray, target: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and bias mapping ``face``'s mean and std onto ``target``'s, inside the
    ``inside`` mask (uint8).

    Only statistics of the target cross over (its lighting and skin tone), never its pixels;
    the gain is bounded so a flat surrogate is not stretched into noise.
    """
    f_mean, f_std = (v.ravel() for v in cv2.meanStdDev(face, mask=inside))
    t_mean, t_std = (v.ravel() for v in cv2.meanStdDev(target, mask=inside))
    gain = np.clip(t_std / np.maximum(f_std, 1.0), 0.5, 2.0).astype(np.float32)
    bias = (t_mean - gain * f_mean).astype(np.float32)
    return gain, bias
