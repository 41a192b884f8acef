"""The box arithmetic of :func:`streamdeid.obscure.regions.merge_regions`, compiled.

Between two detector runs a held frame carries its own tracks, every face of the runs before and
after it, and the path joining each face's two positions: on a 1080p crowd that is about a
hundred boxes, merged pairwise. Written as Python loops over tuples this was most of the track
stage's 9 ms of CPU per frame on the 1080p crowd camera, all of it holding the interpreter lock
that the other stages' Python needs; so the two quadratic loops run here, on integer arrays,
without the lock.

The rules are the ones ``merge_regions`` documents; every comparison is on integers except the
IoU, whose two integer areas are divided in float64 exactly as Python divides two ints (both
convert exactly below 2**53), so the result is the same merge, box for box
(``tests/obscure/test_regions.py`` checks it against a plain-Python reference).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, inline="always")
def _area(x1: int, y1: int, x2: int, y2: int) -> int:
    return max(0, x2 - x1) * max(0, y2 - y1)


@njit(nogil=True, cache=True)
def _same_face(
    a: np.ndarray, a_has: bool, a_id: int, b: np.ndarray, b_has: bool, b_id: int
) -> bool:
    if a_has and b_has:
        if a_id != b_id:
            return False
        around = _area(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        return around <= _area(a[0], a[1], a[2], a[3]) + _area(b[0], b[1], b[2], b[3])
    inter = _area(max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    union = _area(a[0], a[1], a[2], a[3]) + _area(b[0], b[1], b[2], b[3]) - inter
    if union == 0:
        return False
    return inter / union >= 0.5


@njit(nogil=True, cache=True)
def merge_same_faces(
    boxes: np.ndarray, has_id: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy merge in input order, then which merged box holds which.

    Args:
        boxes: ``(n, 4)`` int64 ``x1, y1, x2, y2``.
        has_id: ``(n,)`` bool, False for a raw detection (no track id).
        ids: ``(n,)`` int64 track ids (ignored where ``has_id`` is False).

    Returns:
        ``(merged (m, 4), has_id (m,), ids (m,), holds (m, m))`` where ``holds[i, j]`` says
        merged box ``j`` holds box ``i`` (of two equal boxes the first holds the other).
    """
    n = boxes.shape[0]
    out = np.empty((n, 4), np.int64)
    out_has = np.zeros(n, np.bool_)
    out_ids = np.zeros(n, np.int64)
    m = 0
    for k in range(n):
        b = boxes[k]
        merged = False
        for i in range(m):
            a = out[i]
            if _same_face(a, out_has[i], out_ids[i], b, has_id[k], ids[k]):
                a[0], a[1] = min(a[0], b[0]), min(a[1], b[1])
                a[2], a[3] = max(a[2], b[2]), max(a[3], b[3])
                if not out_has[i]:
                    out_has[i], out_ids[i] = has_id[k], ids[k]
                merged = True
                break
        if not merged:
            out[m] = b
            out_has[m], out_ids[m] = has_id[k], ids[k]
            m += 1
    holds = np.zeros((m, m), np.bool_)
    for i in range(m):
        b = out[i]
        for j in range(m):
            if j == i:
                continue
            a = out[j]
            if a[0] <= b[0] and a[1] <= b[1] and a[2] >= b[2] and a[3] >= b[3]:
                same = a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and a[3] == b[3]
                holds[i, j] = not same or j < i
    return out[:m], out_has[:m], out_ids[:m], holds
