"""Box overlap for the measurements, written independently of the detectors' own helpers.

The evaluation must not share code with what it measures: a bug in the detectors' IoU would
otherwise hide itself in the numbers that are meant to catch it.
"""

from __future__ import annotations

import numpy as np

MATCH_IOU = 0.3  # a detection "is" a face (or "the same face") at this overlap or more


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box in ``a`` (n, 4) with every box in ``b`` (m, 4), as (n, m).

    Example:
        >>> iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 5], [20, 20, 30, 30]]))
        array([[0.5, 0. ]])
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def best_match(a: np.ndarray, b: np.ndarray, iou: float = MATCH_IOU) -> np.ndarray:
    """For each box of ``a``, the index of the box of ``b`` overlapping it most, or -1.

    -1 also when the best overlap is below ``iou``.
    """
    m = iou_matrix(a, b)
    if m.shape[1] == 0:
        return np.full(m.shape[0], -1, np.int64)
    best = m.argmax(axis=1)
    return np.where(m[np.arange(len(best)), best] >= iou, best, -1).astype(np.int64)
