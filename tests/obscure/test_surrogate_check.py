"""The surrogate's last check: a drawn face is kept only where it masks the face box too."""

from __future__ import annotations

import numpy as np

from streamdeid.obscure.surrogate import MIN_CHANGED, SurrogateFilter
from streamdeid.obscure.surrogate_blend import changed_in
from streamdeid.obscure.surrogate_place import Plan

from helpers import masked_share

FACE = (20, 20, 80, 80)  # the tracked face box; the region is the whole 100x100 image


def plan(image: np.ndarray, drawn_rows: int) -> Plan:
    """A surrogate patch over the face box's top ``drawn_rows`` rows, far from the input."""
    x1, y1, x2, _ = FACE
    patch = 255.0 - image[y1 : y1 + drawn_rows, x1:x2].astype(np.float32)
    alpha = np.ones(patch.shape[:2], np.float32)
    one, zero = np.ones(3, np.float32), np.zeros(3, np.float32)
    return Plan((0, 0, 100, 100), image.copy(), x1, y1, patch, alpha, one, zero, FACE)


def test_a_surrogate_that_leaves_half_the_face_box_unchanged_is_undone() -> None:
    # The mesh's own box is fully changed; the old check, on that box alone, kept this face.
    image = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    out = image.copy()
    assert not SurrogateFilter._blend_checked(out, plan(image, 30))
    np.testing.assert_array_equal(out, image)


def test_a_surrogate_over_the_whole_face_box_is_kept() -> None:
    image = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    out = image.copy()
    assert SurrogateFilter._blend_checked(out, plan(image, 60))
    assert masked_share(image, out, FACE) > MIN_CHANGED


def test_the_share_is_of_the_part_of_the_box_inside_the_region() -> None:
    before = np.zeros((40, 40, 3), np.uint8)
    after = before.copy()
    after[:, :20] = 200  # the region's left half changed
    region = (100, 100, 140, 140)
    assert changed_in(before, after, region, (100, 100, 120, 140)) == 1.0
    assert changed_in(before, after, region, (80, 100, 120, 140)) == 1.0  # clipped at x=100
    assert changed_in(before, after, region, (110, 90, 130, 150)) == 0.5
