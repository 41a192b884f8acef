"""Tiled, multi-scale inference helpers shared by detector backends.

Small-input face models (BlazeFace sees 128 or 192 px) lose faces that are a few percent of a
720p frame. Cutting the frame into overlapping tiles lets the model see those faces at a usable
size; overlap guarantees that a face on a tile border is whole in some tile.
"""

from __future__ import annotations

import math

import numpy as np


def tile_grid(
    width: int, height: int, tile: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """Square tiles (x1, y1, x2, y2) covering the frame, evenly spread, clipped to the frame."""

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        stride = max(1, int(tile * (1.0 - overlap)))
        n = math.ceil((length - tile) / stride) + 1
        return [round(i * (length - tile) / (n - 1)) for i in range(n)]

    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in starts(height)
        for x in starts(width)
    ]


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of (n, 4) and (m, 4) xyxy arrays → (n, m)."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)


def _area(a: np.ndarray) -> np.ndarray:
    return (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy arrays → (n, m)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return (inter / np.maximum(union, 1e-6)).astype(np.float32)


def merge_boxes(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy NMS that keeps the best box of each cluster but grows it to the cluster's union.

    Plain NMS throws the other boxes away; when a face is cut by a tile border the best-scoring
    box may be the cut one, so taking the union keeps the whole face covered.
    """
    if len(xyxy) == 0:
        return xyxy.reshape(0, 4).astype(np.float32), scores.astype(np.float32)
    order = np.argsort(-scores)
    xyxy, scores = xyxy[order], scores[order]
    ious = box_iou(xyxy, xyxy)
    # A small box mostly inside a bigger one is the same face seen in a tile and a full pass,
    # when the two are of a size (a face cut by a tile border is about half of it). A box many
    # times larger is another object: a crowd's faces inside a low-score body or group box
    # stay separate boxes, each masked and tracked on its own.
    inter_small = _containment(xyxy)
    area = _area(xyxy)
    inter_small[
        np.minimum(area[:, None], area[None, :]) < 0.2 * np.maximum(area[:, None], area[None, :])
    ] = 0
    taken = np.zeros(len(xyxy), bool)
    out_boxes, out_scores = [], []
    for i in range(len(xyxy)):
        if taken[i]:
            continue
        members = ~taken & ((ious[i] > iou) | (inter_small[i] > 0.7))
        members[i] = True
        taken |= members
        group = xyxy[members]
        out_boxes.append(np.concatenate([group[:, :2].min(0), group[:, 2:].max(0)]))
        out_scores.append(scores[i])
    return np.asarray(out_boxes, np.float32), np.asarray(out_scores, np.float32)


def weighted_nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Blend each cluster of overlapping boxes into their score-weighted mean.

    For one model pass: SSD anchors fire several times around one face, and their weighted
    mean is a steadier box than any single anchor (MediaPipe's own post-processing does this).
    """
    if len(xyxy) == 0:
        return xyxy.reshape(0, 4).astype(np.float32), scores.astype(np.float32)
    order = np.argsort(-scores)
    xyxy, scores = xyxy[order], scores[order]
    ious = box_iou(xyxy, xyxy)
    taken = np.zeros(len(xyxy), bool)
    out_boxes, out_scores = [], []
    for i in range(len(xyxy)):
        if taken[i]:
            continue
        members = ~taken & (ious[i] > iou)
        members[i] = True
        taken |= members
        w = scores[members]
        out_boxes.append((xyxy[members] * w[:, None]).sum(0) / w.sum())
        out_scores.append(scores[i])
    return np.asarray(out_boxes, np.float32), np.asarray(out_scores, np.float32)


def _containment(xyxy: np.ndarray) -> np.ndarray:
    """(n, n): intersection over the smaller box's area."""
    area = _area(xyxy)
    smaller = np.minimum(area[:, None], area[None, :])
    return _intersection(xyxy, xyxy) / np.maximum(smaller, 1e-6)
