from __future__ import annotations

import numpy as np

from streamdeid.detect.tiling import box_iou, merge_boxes, tile_grid


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = tile_grid(1280, 720, 384, 0.25)
    covered = np.zeros((720, 1280), bool)
    for x1, y1, x2, y2 in tiles:
        assert x2 - x1 == 384 and y2 - y1 == 384
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    assert tile_grid(300, 200, 384, 0.25) == [(0, 0, 300, 200)]


def test_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0]], rtol=1e-6)


def test_merge_keeps_the_union_of_a_cluster_and_separate_faces() -> None:
    boxes = np.array([[10, 10, 50, 50], [12, 12, 56, 52], [100, 100, 120, 120]], np.float32)
    scores = np.array([0.9, 0.6, 0.5], np.float32)
    merged, kept = merge_boxes(boxes, scores, 0.3)
    assert merged.tolist() == [[10, 10, 56, 52], [100, 100, 120, 120]]
    assert kept.tolist() == [np.float32(0.9), np.float32(0.5)]
    # a tile-cut half face inside the whole-frame box is the same face
    merged, _ = merge_boxes(
        np.array([[0, 0, 40, 40], [20, 0, 40, 40]], np.float32),
        np.array([0.5, 0.9], np.float32),
        0.6,
    )
    assert merged.tolist() == [[0, 0, 40, 40]]
