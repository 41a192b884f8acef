"""The numba kernels must match their numpy references exactly and touch only their region."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamdeid.obscure.kernel_rules import (
    DIV_SHIFT,
    MAX_RADIUS,
    ellipse_mask,
    in_ellipse,
    reciprocal,
)
from streamdeid.obscure.kernels import blur_region, blur_region_coarse, fill_region, pixelate_region
from streamdeid.obscure.kernels_ref import (
    blur_region_coarse_ref,
    blur_region_ref,
    fill_region_ref,
    pixelate_region_ref,
)

DoesNotRaise = contextlib.nullcontext

H, W = 37, 53  # odd sizes so nothing lines up with blocks or centres by accident

REGIONS = {
    "whole-frame": (0, 0, W, H),
    "interior": (5, 4, 30, 29),
    "left-edge": (0, 10, 12, 20),
    "top-edge": (10, 0, 25, 9),
    "right-edge": (40, 10, W, 22),
    "bottom-edge": (10, 30, 22, H),
    "bottom-right-corner": (45, 30, W, H),
    "1x1": (20, 20, 21, 21),
    "1xN": (7, 3, 8, 33),
    "Nx1": (2, 17, 50, 18),
    "2x2": (9, 9, 11, 11),
    "2xN": (30, 2, 32, 35),
    "3x3": (0, 34, 3, H),
}

BLUR_PARAMS = [(0, 1), (1, 1), (2, 3), (5, 2), (60, 3)]  # (radius, passes); 60 > every region
BLOCKS = [1, 2, 3, 5, 100]  # 100 > every region: one cell covers it all
COLORS = [(0, 0, 0), (255, 128, 7)]

Kernel = Callable[..., None]
KERNEL_PAIRS: dict[str, tuple[Kernel, Kernel, tuple[int, ...]]] = {
    "blur": (blur_region, blur_region_ref, (3, 3)),
    # The shrunk blur with its cell side last, as the other kernels take (..., ellipse) last.
    "blur-coarse": (
        lambda img, *a: blur_region_coarse(img, *a, 3),
        lambda img, *a: blur_region_coarse_ref(img, *a, 3),
        (9, 3),
    ),
    "pixelate": (pixelate_region, pixelate_region_ref, (4,)),
    "fill": (fill_region, fill_region_ref, (200, 100, 50)),
}


@pytest.fixture
def texture() -> np.ndarray:
    """Noise over a gradient: every neighbourhood differs, so any averaging shows."""
    rng = np.random.default_rng(1234)
    gradient = np.add.outer(np.arange(H) * 3, np.arange(W) * 2)[..., None] % 256
    noise = rng.integers(0, 256, (H, W, 3))
    return ((gradient + noise) % 256).astype(np.uint8)


def _run_both(
    kernel: Kernel, ref: Kernel, image: np.ndarray, box: tuple[int, int, int, int], *args: Any
) -> tuple[np.ndarray, np.ndarray]:
    fast, slow = image.copy(), image.copy()
    kernel(fast, *box, *args)
    ref(slow, *box, *args)
    return fast, slow


def _inside_mask(box: tuple[int, int, int, int], ellipse: bool) -> np.ndarray:
    """(H, W) mask of the pixels a kernel is allowed to change."""
    x1, y1, x2, y2 = box
    mask = np.zeros((H, W), bool)
    mask[y1:y2, x1:x2] = ellipse_mask(x2 - x1, y2 - y1) if ellipse else True
    return mask


# ---------------------------------------------------------------------------- numba == reference


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize(("radius", "passes"), BLUR_PARAMS)
@pytest.mark.parametrize("box", REGIONS.values(), ids=REGIONS.keys())
def test_blur_matches_reference(
    texture: np.ndarray, box: tuple[int, int, int, int], radius: int, passes: int, ellipse: bool
) -> None:
    fast, slow = _run_both(blur_region, blur_region_ref, texture, box, radius, passes, ellipse)
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize("factor", [1, 2, 3, 7, 100])
@pytest.mark.parametrize(("radius", "passes"), BLUR_PARAMS)
@pytest.mark.parametrize("box", REGIONS.values(), ids=REGIONS.keys())
def test_coarse_blur_matches_reference(
    texture: np.ndarray,
    box: tuple[int, int, int, int],
    radius: int,
    passes: int,
    factor: int,
    ellipse: bool,
) -> None:
    fast, slow = _run_both(
        blur_region_coarse, blur_region_coarse_ref, texture, box, radius, passes, ellipse, factor
    )
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize(("radius", "passes"), BLUR_PARAMS)
def test_coarse_blur_with_unit_cells_is_the_blur(
    texture: np.ndarray, radius: int, passes: int, ellipse: bool
) -> None:
    box = REGIONS["interior"]
    coarse, full = _run_both(
        lambda img, *a: blur_region_coarse(img, *a, 1),
        blur_region,
        texture,
        box,
        radius,
        passes,
        ellipse,
    )
    np.testing.assert_array_equal(coarse, full)


def test_coarse_blur_is_close_to_the_full_size_blur() -> None:
    # A real face, 240 px, blurred at radius 60 (blur_fraction 0.25): on cells of 10 px the
    # result stays within a few grey levels of the full-size blur, and far from the original.
    from streamdeid.testing.sprites import load_sample_faces

    sprite = load_sample_faces()[0]
    x1, y1, x2, y2 = sprite.face_xyxy
    face = cv2.resize(sprite.image[y1:y2, x1:x2], (240, 240), interpolation=cv2.INTER_CUBIC)
    full, coarse = face.copy(), face.copy()
    blur_region(full, 0, 0, 240, 240, 60, 3, False)
    blur_region_coarse(coarse, 0, 0, 240, 240, 60, 3, False, 10)
    diff = np.abs(full.astype(np.int16) - coarse)
    assert diff.mean() < 2.5 and diff.max() <= 16
    assert np.abs(face.astype(np.int16) - coarse).mean() > 8 * diff.mean()


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("box", REGIONS.values(), ids=REGIONS.keys())
def test_pixelate_matches_reference(
    texture: np.ndarray, box: tuple[int, int, int, int], block: int, ellipse: bool
) -> None:
    fast, slow = _run_both(pixelate_region, pixelate_region_ref, texture, box, block, ellipse)
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize("color", COLORS)
@pytest.mark.parametrize("box", REGIONS.values(), ids=REGIONS.keys())
def test_fill_matches_reference(
    texture: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int], ellipse: bool
) -> None:
    fast, slow = _run_both(fill_region, fill_region_ref, texture, box, *color, ellipse)
    np.testing.assert_array_equal(fast, slow)
    assert np.all(fast[_inside_mask(box, ellipse)] == color)


@st.composite
def _boxes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    x1 = draw(st.integers(0, W - 1))
    y1 = draw(st.integers(0, H - 1))
    return x1, y1, draw(st.integers(x1 + 1, W)), draw(st.integers(y1 + 1, H))


@settings(max_examples=150, deadline=None)
@given(
    box=_boxes(),
    radius=st.integers(0, 40),
    passes=st.integers(0, 4),
    block=st.integers(1, 60),
    ellipse=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_regions_match_reference(
    box: tuple[int, int, int, int], radius: int, passes: int, block: int, ellipse: bool, seed: int
) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    fast, slow = _run_both(blur_region, blur_region_ref, image, box, radius, passes, ellipse)
    np.testing.assert_array_equal(fast, slow)
    fast, slow = _run_both(pixelate_region, pixelate_region_ref, image, box, block, ellipse)
    np.testing.assert_array_equal(fast, slow)
    factor = 1 + seed % 9
    fast, slow = _run_both(
        blur_region_coarse, blur_region_coarse_ref, image, box, radius, passes, ellipse, factor
    )
    np.testing.assert_array_equal(fast, slow)


# ---------------------------------------------------------------------- where pixels may change


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize("box", REGIONS.values(), ids=REGIONS.keys())
@pytest.mark.parametrize("name", KERNEL_PAIRS)
def test_pixels_outside_region_unchanged(
    texture: np.ndarray, name: str, box: tuple[int, int, int, int], ellipse: bool
) -> None:
    kernel, ref, args = KERNEL_PAIRS[name]
    fast, slow = _run_both(kernel, ref, texture, box, *args, ellipse)
    outside = ~_inside_mask(box, ellipse)
    np.testing.assert_array_equal(fast[outside], texture[outside])
    np.testing.assert_array_equal(slow[outside], texture[outside])


@pytest.mark.parametrize("ellipse", [False, True], ids=["box", "ellipse"])
@pytest.mark.parametrize(
    "box", [REGIONS[k] for k in ("whole-frame", "interior", "left-edge", "bottom-right-corner")]
)
@pytest.mark.parametrize("name", KERNEL_PAIRS)
def test_textured_region_changes(
    texture: np.ndarray, name: str, box: tuple[int, int, int, int], ellipse: bool
) -> None:
    kernel, _, args = KERNEL_PAIRS[name]
    out = texture.copy()
    kernel(out, *box, *args, ellipse)
    inside = _inside_mask(box, ellipse)
    changed = np.any(out != texture, axis=2)[inside]
    assert changed.mean() > 0.97, f"only {changed.mean():.1%} of the region changed"


# --------------------------------------------------------------- exact values worked out by hand


def test_blur_known_values() -> None:
    # One row [0, 0, 255], radius 1: windows (clamped) sum to 0, 255, 510; /3 rounded = 0, 85, 170.
    # The vertical step on a 1-row region averages three copies of the same value: no change.
    image = np.zeros((1, 3, 3), np.uint8)
    image[0, 2] = 255
    for kernel in (blur_region, blur_region_ref):
        out = image.copy()
        kernel(out, 0, 0, 3, 1, 1, 1, False)
        np.testing.assert_array_equal(out[0, :, 0], [0, 85, 170])


def test_blur_known_values_vertical() -> None:
    # Column [10, 20, 40, 80], radius 1: sums 40, 70, 140, 200 -> 13, 23, 47, 67 (nearest).
    image = np.zeros((4, 1, 3), np.uint8)
    image[:, 0, 1] = [10, 20, 40, 80]
    for kernel in (blur_region, blur_region_ref):
        out = image.copy()
        kernel(out, 0, 0, 1, 4, 1, 1, False)
        np.testing.assert_array_equal(out[:, 0, 1], [13, 23, 47, 67])


@pytest.mark.parametrize("kernel", [blur_region, blur_region_ref])
def test_blur_keeps_flat_region_flat(kernel: Kernel) -> None:
    image = np.full((20, 30, 3), (17, 130, 254), np.uint8)
    out = image.copy()
    kernel(out, 0, 0, 30, 20, 7, 3, False)
    np.testing.assert_array_equal(out, image)


def test_blur_accepts_the_largest_radius() -> None:
    # Numba only: the reference would pad by millions of pixels. A flat region must stay flat,
    # which checks the reciprocal division at its largest divisor.
    image = np.full((6, 9, 3), (255, 1, 77), np.uint8)
    out = image.copy()
    blur_region(out, 1, 1, 8, 5, MAX_RADIUS, 2, False)
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("kernel", [pixelate_region, pixelate_region_ref])
def test_pixelate_known_values(kernel: Kernel) -> None:
    # 3x2 region, block 2: cells {10,11,12,14} (mean 11.75 -> 12) and {1,2} (1.5 rounds up to 2).
    image = np.zeros((2, 3, 3), np.uint8)
    image[:, :, 2] = [[10, 11, 1], [12, 14, 2]]
    kernel(image, 0, 0, 3, 2, 2, False)
    np.testing.assert_array_equal(image[:, :, 2], [[12, 12, 2], [12, 12, 2]])


@pytest.mark.parametrize("k", [1, 3, 5, 9, 201, 4001, 65537, 2 * MAX_RADIUS + 1])
def test_reciprocal_division_is_exact(k: int) -> None:
    # The blur kernel divides box sums (< 256 * k) by multiplying; it must equal floor division.
    if 256 * k <= 5_000_000:
        x = np.arange(256 * k, dtype=np.int64)
    else:  # every quotient's first, last and a random member, plus the top of the range
        q = np.arange(256, dtype=np.int64)
        rng = np.random.default_rng(k)
        x = np.concatenate([q * k, q * k + k - 1, q * k + rng.integers(0, k, 256), [256 * k - 1]])
    np.testing.assert_array_equal((x * reciprocal(k)) >> DIV_SHIFT, x // k)


# ------------------------------------------------------------------------------------- ellipse


def test_ellipse_mask_known_shape() -> None:
    expected = np.array(
        [
            [0, 1, 1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(ellipse_mask(7, 5), expected)


@pytest.mark.parametrize(
    ("w", "h"), [(1, 1), (1, 2), (2, 1), (2, 2), (1, 9), (9, 1), (2, 9), (100, 1)]
)
def test_thin_ellipse_keeps_centre(w: int, h: int) -> None:
    mask = ellipse_mask(w, h)
    centre_rows = {(h - 1) // 2, h // 2}
    centre_cols = {(w - 1) // 2, w // 2}
    for j, i in itertools.product(centre_rows, centre_cols):
        assert mask[j, i], f"centre pixel ({i}, {j}) of a {w}x{h} box is outside"


@pytest.mark.parametrize(("w", "h"), [(5, 5), (7, 5), (40, 13), (64, 64), (3, 100)])
def test_ellipse_mask_matches_geometry(w: int, h: int) -> None:
    # The integer rule must be the textbook one: pixel centre (+0.5) inside the inscribed ellipse.
    ys, xs = np.mgrid[0:h, 0:w]
    value = ((xs + 0.5 - w / 2) / (w / 2)) ** 2 + ((ys + 0.5 - h / 2) / (h / 2)) ** 2
    decided = np.abs(value - 1.0) > 1e-9  # exactly-on-the-rim pixels are a matter of convention
    np.testing.assert_array_equal(ellipse_mask(w, h)[decided], (value <= 1.0)[decided])
    mask = ellipse_mask(w, h)
    np.testing.assert_array_equal(mask, mask[::-1, :])
    np.testing.assert_array_equal(mask, mask[:, ::-1])


def test_in_ellipse_scalar_and_array_agree() -> None:
    w, h = 11, 6
    mask = ellipse_mask(w, h)
    for j, i in itertools.product(range(h), range(w)):
        assert bool(in_ellipse(2 * i + 1 - w, 2 * j + 1 - h, w, h)) == mask[j, i]


# ------------------------------------------------------------------------------------- bad args

BAD_ARGS = [
    pytest.param("blur", (0, 0, W, H, 1, 1), DoesNotRaise(), id="blur-ok"),
    pytest.param(
        "blur", (0, 0, W + 1, H, 1, 1), pytest.raises(ValueError, match=r"box"), id="wide"
    ),
    pytest.param(
        "blur", (0, 0, W, H + 1, 1, 1), pytest.raises(ValueError, match=r"box"), id="tall"
    ),
    pytest.param("blur", (-1, 0, 5, 5, 1, 1), pytest.raises(ValueError, match=r"box"), id="neg-x"),
    pytest.param("blur", (5, 5, 5, 9, 1, 1), pytest.raises(ValueError, match=r"box"), id="empty"),
    pytest.param("blur", (0, 0, 5, 5, -1, 1), pytest.raises(ValueError, match=r"radius"), id="r<0"),
    pytest.param("blur", (0, 0, 5, 5, 1, -1), pytest.raises(ValueError, match=r"passes"), id="p<0"),
    pytest.param(
        "blur",
        (0, 0, 5, 5, MAX_RADIUS + 1, 1),
        pytest.raises(ValueError, match=r"radius"),
        id="r-big",
    ),
    pytest.param(
        "blur-coarse", (0, 0, 5, 5, -1, 1), pytest.raises(ValueError, match="radius"), id="c-r<0"
    ),
    pytest.param(
        "blur-coarse", (0, 0, W + 1, H, 9, 3), pytest.raises(ValueError, match="box"), id="c-box"
    ),
    pytest.param("pixelate", (0, 0, 5, 5, 1), DoesNotRaise(), id="pixelate-ok"),
    pytest.param("pixelate", (0, 0, 5, 5, 0), pytest.raises(ValueError, match=r"block"), id="b=0"),
    pytest.param("pixelate", (3, 3, 2, 5, 2), pytest.raises(ValueError, match=r"box"), id="x2<x1"),
    pytest.param("fill", (0, 0, 5, 5, 1, 2, 3), DoesNotRaise(), id="fill-ok"),
    pytest.param(
        "fill", (0, 0, 5, H + 3, 1, 2, 3), pytest.raises(ValueError, match=r"box"), id="y2"
    ),
]


@pytest.mark.parametrize("impl", [0, 1], ids=["numba", "numpy"])
@pytest.mark.parametrize(("name", "args", "expectation"), BAD_ARGS)
def test_bad_arguments_raise(
    texture: np.ndarray,
    name: str,
    args: tuple[int, ...],
    expectation: contextlib.AbstractContextManager[Any],
    impl: int,
) -> None:
    kernel = KERNEL_PAIRS[name][impl]
    before = texture.copy()
    with expectation as raised:
        kernel(texture, *args, False)
    if raised is not None:
        np.testing.assert_array_equal(texture, before)
