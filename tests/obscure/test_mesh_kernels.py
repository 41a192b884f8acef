"""The surrogate's numba kernels against what they are defined to do, written in numpy."""

from __future__ import annotations

import numpy as np

from streamdeid.obscure.mesh_kernels import blend_region, warp_mesh
from streamdeid.obscure.surrogate_blend import changed_share, feathered


def grid_mesh(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on a 5x5 grid over a ``side`` square and two triangles per cell."""
    ticks = np.linspace(0, side - 1, 5, dtype=np.float32)
    pts = np.array([(x, y) for y in ticks for x in ticks], np.float32)
    tris = []
    for r in range(4):
        for c in range(4):
            a = r * 5 + c
            tris += [(a, a + 1, a + 5), (a + 1, a + 6, a + 5)]
    return pts, np.array(tris, np.int32)


def test_identity_warp_copies_every_pixel() -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    pts, tris = grid_mesh(40)
    dst, mask = np.zeros((40, 40, 3), np.float32), np.zeros((40, 40), np.uint8)
    warp_mesh(dst, mask, pts, src, pts, tris)
    assert mask.all()
    np.testing.assert_allclose(dst, src, atol=1e-3)


def test_shifted_warp_moves_the_picture_and_stays_inside_the_mesh() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    pts, tris = grid_mesh(20)
    dst, mask = np.zeros((40, 40, 3), np.float32), np.zeros((40, 40), np.uint8)
    warp_mesh(dst, mask, pts + np.float32([10, 5]), src, pts, tris)
    assert mask[5:25, 10:30].all() and mask.sum() == 255 * 20 * 20
    np.testing.assert_allclose(dst[5:25, 10:30], src[0:20, 0:20], atol=1e-3)
    assert not dst[mask == 0].any()


def test_blend_matches_its_formula() -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    face = rng.uniform(-20, 280, (10, 12, 3)).astype(np.float32)
    alpha = rng.uniform(-0.2, 1.0, (10, 12)).astype(np.float32)
    gain, bias = np.float32([0.5, 1.0, 2.0]), np.float32([10, -5, 0])
    expected = img.astype(np.float64)
    a = np.clip(alpha, 0, None)[..., None]
    value = np.clip(face * gain + bias, 0, 255)
    view = expected[3:13, 4:16]
    view[...] = np.where(a > 0, (1 - a) * view + a * value, view)
    blend_region(img, 4, 3, face, alpha, gain, bias)
    np.testing.assert_allclose(img, np.floor(expected + 0.5), atol=1)


def test_feather_is_zero_at_and_outside_the_mesh_edge() -> None:
    mask = np.zeros((60, 60), np.uint8)
    mask[10:50, 10:50] = 255
    alpha = feathered(mask, 4)
    assert alpha[mask == 0].max() == 0 and alpha[10, 10:50].max() == 0
    assert alpha[30, 30] == 1.0


def test_changed_share_is_the_evaluation_criterion() -> None:
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:6] = 13  # 60 % of pixels moved by 13 grey levels, the rest by none
    assert changed_share(a, b) == 0.6
    b[:6] = 12  # exactly 12 is not "more than 12"
    assert changed_share(a, b) == 0.0


def test_changed_share_matches_numpy_on_random_frames() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    for x, y in [(a, b), (a[1:, 1:], b[1:, 1:]), (b, a)]:
        grey = np.abs(x.astype(np.int16).sum(axis=2) - y.astype(np.int16).sum(axis=2)) / 3
        # Sums, not float means: a mean difference of exactly 12 can round to 12.000001.
        assert changed_share(x, y) == (grey > 12).mean()
        assert 0.3 < changed_share(x, y) < 1
