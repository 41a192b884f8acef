"""Filters: strength follows region size, tiny regions stay hidden, bad config fails clearly."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest

from streamdeid.errors import ConfigError
from streamdeid.obscure.filters import (
    MIN_OBSCURABLE_SIDE,
    BlurFilter,
    Filter,
    PixelateFilter,
    SolidFilter,
    make_filter,
    warm_up,
)
from streamdeid.obscure.kernel_rules import ellipse_mask
from streamdeid.obscure.kernels import blur_region, fill_region, pixelate_region
from streamdeid.obscure.kernels_ref import blur_region_coarse_ref, pixelate_region_ref
from streamdeid.types import Region

DoesNotRaise = contextlib.nullcontext

H, W = 90, 160
SKIN = (200, 100, 50)  # any non-black colour: the fallback fill must visibly differ from it

ALL_FILTERS = {
    "blur-box": lambda: BlurFilter(),
    "blur-ellipse": lambda: BlurFilter(shape="ellipse"),
    "pixelate-box": lambda: PixelateFilter(),
    "pixelate-ellipse": lambda: PixelateFilter(shape="ellipse"),
    "solid-box": lambda: SolidFilter(),
    "solid-ellipse": lambda: SolidFilter(shape="ellipse"),
    "solid-red": lambda: SolidFilter(color=(0, 0, 255)),
}


@pytest.fixture
def texture() -> np.ndarray:
    return np.random.default_rng(99).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _mask(boxes: list[tuple[int, int, int, int]], ellipse: bool = False) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    for x1, y1, x2, y2 in boxes:
        mask[y1:y2, x1:x2] |= ellipse_mask(x2 - x1, y2 - y1) if ellipse else True
    return mask


# ---------------------------------------------------------------------------- what gets changed


@pytest.mark.parametrize("box", [(70, 40, 71, 41), (0, 0, 1, 1), (W - 1, H - 1, W, H)])
@pytest.mark.parametrize("make", ALL_FILTERS.values(), ids=ALL_FILTERS.keys())
def test_one_pixel_region_is_changed(make: Any, box: tuple[int, int, int, int]) -> None:
    # A flat canvas is the worst case: blurring or pixelating it would change nothing at all.
    image = np.full((H, W, 3), SKIN, np.uint8)
    make().apply(image, [Region(box)])
    x1, y1 = box[:2]
    assert tuple(image[y1, x1]) != SKIN
    assert np.count_nonzero(np.any(image != SKIN, axis=2)) == 1


@pytest.mark.parametrize(
    "box", [(10, 10, 11, 60), (10, 10, 90, 11), (10, 10, 13, 60), (10, 10, 12, 12)]
)
@pytest.mark.parametrize("make", [BlurFilter, PixelateFilter])
def test_thin_region_is_filled_black(make: type[Filter], box: tuple[int, int, int, int]) -> None:
    image = np.full((H, W, 3), SKIN, np.uint8)
    make().apply(image, [Region(box)])
    np.testing.assert_array_equal(image[_mask([box])], 0)
    assert np.all(image[~_mask([box])] == SKIN)


@pytest.mark.parametrize("shape", ["box", "ellipse"])
@pytest.mark.parametrize(
    "box",
    [(20, 20, 20 + MIN_OBSCURABLE_SIDE, 60), (0, 0, W, H), (5, 7, 45, 71), (120, 50, W, H)],
)
def test_blur_filter_is_the_blur_kernel(
    texture: np.ndarray, box: tuple[int, int, int, int], shape: str
) -> None:
    # At and above the minimum side the filter must really blur, with the documented radius,
    # on the documented shrunk copy.
    f = BlurFilter(blur_fraction=0.3, passes=2, shape=shape)  # type: ignore[arg-type]
    x1, y1, x2, y2 = box
    expected = texture.copy()
    radius = f.radius_for(x2 - x1, y2 - y1)
    factor = f.factor_for(radius)
    blur_region_coarse_ref(expected, x1, y1, x2, y2, radius, 2, shape == "ellipse", factor)
    f.apply(texture, [Region(box)])
    np.testing.assert_array_equal(texture, expected)


@pytest.mark.parametrize("shape", ["box", "ellipse"])
@pytest.mark.parametrize("box", [(20, 20, 24, 30), (0, 0, W, H), (5, 7, 45, 71)])
def test_pixelate_filter_is_the_pixelate_kernel(
    texture: np.ndarray, box: tuple[int, int, int, int], shape: str
) -> None:
    f = PixelateFilter(blocks_across=5, shape=shape)  # type: ignore[arg-type]
    x1, y1, x2, y2 = box
    expected = texture.copy()
    block = f.block_for(x2 - x1, y2 - y1)
    pixelate_region_ref(expected, x1, y1, x2, y2, block, shape == "ellipse")
    f.apply(texture, [Region(box)])
    np.testing.assert_array_equal(texture, expected)


@pytest.mark.parametrize("make", ALL_FILTERS.values(), ids=ALL_FILTERS.keys())
def test_only_regions_change(texture: np.ndarray, make: Any) -> None:
    boxes = [(0, 0, 30, 40), (50, 10, 90, 50), (60, 40, 100, 80), (W - 12, H - 9, W, H)]
    f = make()
    out = texture.copy()
    f.apply(out, [Region(b, track_id=i) for i, b in enumerate(boxes)])
    allowed = _mask(boxes, ellipse=f.shape == "ellipse")
    np.testing.assert_array_equal(out[~allowed], texture[~allowed])
    changed = np.any(out != texture, axis=2)[allowed]
    assert changed.mean() > 0.97


@pytest.mark.parametrize("make", ALL_FILTERS.values(), ids=ALL_FILTERS.keys())
def test_ellipse_leaves_corners(texture: np.ndarray, make: Any) -> None:
    f = make()
    out = texture.copy()
    f.apply(out, [Region((10, 10, 70, 80))])
    corner_changed = not np.array_equal(out[10, 10], texture[10, 10])
    assert corner_changed == (f.shape == "box")


def test_no_regions_no_change(texture: np.ndarray) -> None:
    out = texture.copy()
    BlurFilter().apply(out, [])
    np.testing.assert_array_equal(out, texture)


@pytest.mark.parametrize(
    ("box", "visible"),
    [
        ((W - 10, H - 10, W + 50, H + 50), (W - 10, H - 10, W, H)),
        ((W + 5, 0, W + 40, 30), None),
    ],
    ids=["partly-outside", "fully-outside"],
)
def test_region_beyond_frame_is_clipped(
    texture: np.ndarray, box: tuple[int, int, int, int], visible: tuple[int, int, int, int] | None
) -> None:
    out = texture.copy()
    SolidFilter().apply(out, [Region(box)])
    allowed = _mask([visible] if visible else [])
    np.testing.assert_array_equal(out[allowed], 0)
    np.testing.assert_array_equal(out[~allowed], texture[~allowed])


# ------------------------------------------------------------------------------------ strength


@pytest.mark.parametrize(
    ("w", "h", "radius"),
    [
        (4, 4, 2),
        (8, 8, 2),
        (9, 40, 3),
        (16, 10, 3),
        (100, 120, 25),
        (400, 400, 100),
        (41, 1000, 11),
    ],
)
def test_blur_radius_table(w: int, h: int, radius: int) -> None:
    assert BlurFilter().radius_for(w, h) == radius


@pytest.mark.parametrize(
    ("w", "h", "block"),
    [(4, 4, 2), (12, 5, 2), (13, 5, 3), (60, 60, 10), (100, 120, 20), (400, 400, 67)],
)
def test_pixelate_block_table(w: int, h: int, block: int) -> None:
    assert PixelateFilter().block_for(w, h) == block


def test_strength_never_shrinks_with_size() -> None:
    blur, pixelate = BlurFilter(), PixelateFilter()
    radii = [blur.radius_for(s, s) for s in range(4, 800)]
    blocks = [pixelate.block_for(s, s) for s in range(4, 800)]
    assert radii == sorted(radii) and radii[-1] > radii[0] * 50
    assert blocks == sorted(blocks) and blocks[-1] > blocks[0] * 50


def test_bigger_region_is_blurred_harder() -> None:
    # Same noise, a small and a large square: the large one must lose more of its texture.
    image = np.random.default_rng(5).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    small, large = image.copy(), image.copy()
    BlurFilter().apply(small, [Region((0, 0, 16, 16))])
    BlurFilter().apply(large, [Region((0, 0, 320, 320))])
    std_small = small[:16, :16].astype(float).std()
    std_large = large[:320, :320].astype(float).std()
    assert std_large < std_small / 3, (std_small, std_large)


@pytest.mark.parametrize("side", [60, 120, 300])
def test_pixelate_has_the_same_block_count_at_any_size(side: int) -> None:
    # A horizontal ramp makes neighbouring cell means differ, so every cell boundary shows.
    ramp = (np.arange(side) * 255 // side).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (side, side, 3)))
    PixelateFilter(blocks_across=6).apply(image, [Region((0, 0, side, side))])
    first_row = image[0, :, 0]
    runs = 1 + np.count_nonzero(np.diff(first_row.astype(int)))
    assert runs == 6


# ------------------------------------------------------------------------------------ bad input

CONSTRUCTORS = [
    pytest.param(BlurFilter, {}, DoesNotRaise(), id="blur-defaults"),
    pytest.param(BlurFilter, {"blur_fraction": 1, "passes": 1}, DoesNotRaise(), id="blur-edge"),
    pytest.param(
        BlurFilter,
        {"blur_fraction": 0},
        pytest.raises(ValueError, match=r"blur_fraction .*\(0, 1\].* 0"),
        id="fraction-0",
    ),
    pytest.param(
        BlurFilter,
        {"blur_fraction": 25},
        pytest.raises(ValueError, match=r"blur_fraction.*got 25"),
        id="percent",
    ),
    pytest.param(
        BlurFilter,
        {"blur_fraction": float("nan")},
        pytest.raises(ValueError, match=r"blur_fraction"),
        id="nan",
    ),
    pytest.param(
        BlurFilter,
        {"blur_fraction": "0.2"},
        pytest.raises(ValueError, match=r"blur_fraction"),
        id="str",
    ),
    pytest.param(
        BlurFilter,
        {"passes": 0},
        pytest.raises(ValueError, match=r"passes.*>= 1.*got 0"),
        id="passes-0",
    ),
    pytest.param(
        BlurFilter,
        {"passes": 2.5},
        pytest.raises(ValueError, match=r"passes.*2.5"),
        id="passes-float",
    ),
    pytest.param(
        BlurFilter, {"passes": True}, pytest.raises(ValueError, match=r"passes"), id="passes-bool"
    ),
    pytest.param(
        BlurFilter,
        {"shape": "circle"},
        pytest.raises(ValueError, match=r"shape.*'box', 'ellipse'.*'circle'"),
        id="shape",
    ),
    pytest.param(PixelateFilter, {"blocks_across": 1}, DoesNotRaise(), id="pixelate-1"),
    pytest.param(
        PixelateFilter,
        {"blocks_across": 0},
        pytest.raises(ValueError, match=r"blocks_across.*got 0"),
        id="blocks-0",
    ),
    pytest.param(
        PixelateFilter, {"shape": None}, pytest.raises(ValueError, match=r"shape"), id="shape-none"
    ),
    pytest.param(SolidFilter, {"color": [255, 255, 255]}, DoesNotRaise(), id="color-list"),
    pytest.param(
        SolidFilter,
        {"color": (0, 0, 256)},
        pytest.raises(ValueError, match=r"color.*0\.\.255.*256"),
        id="color-256",
    ),
    pytest.param(
        SolidFilter, {"color": (0, 0)}, pytest.raises(ValueError, match=r"color"), id="color-2"
    ),
    pytest.param(
        SolidFilter, {"color": "black"}, pytest.raises(ValueError, match=r"color"), id="color-str"
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "expectation"), CONSTRUCTORS)
def test_constructor_validation(
    cls: type[Filter], kwargs: dict[str, Any], expectation: contextlib.AbstractContextManager[Any]
) -> None:
    with expectation:
        cls(**kwargs)


def test_color_list_becomes_tuple() -> None:
    assert SolidFilter(color=[1, 2, 3]).color == (1, 2, 3)  # type: ignore[arg-type]


IMAGES = [
    pytest.param(np.zeros((4, 4, 3), np.uint8), DoesNotRaise(), id="ok"),
    pytest.param(
        np.zeros((4, 4, 3), np.float32), pytest.raises(ValueError, match=r"uint8"), id="float"
    ),
    pytest.param(
        np.zeros((4, 4), np.uint8), pytest.raises(ValueError, match=r"\(H, W, 3\)"), id="gray"
    ),
    pytest.param(
        np.zeros((4, 4, 4), np.uint8), pytest.raises(ValueError, match=r"\(H, W, 3\)"), id="bgra"
    ),
    pytest.param(
        np.zeros((4, 8, 3), np.uint8)[:, ::2],
        pytest.raises(ValueError, match=r"contiguous"),
        id="strided",
    ),
    pytest.param([[0]], pytest.raises(TypeError, match=r"np.ndarray.*list"), id="list"),
]


@pytest.mark.parametrize(("image", "expectation"), IMAGES)
def test_apply_rejects_unusable_images(
    image: Any, expectation: contextlib.AbstractContextManager[Any]
) -> None:
    with expectation:
        SolidFilter().apply(image, [Region((0, 0, 2, 2))])


def test_apply_rejects_read_only_image() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image.flags.writeable = False
    with pytest.raises(ValueError, match=r"writeable=False"):
        BlurFilter().apply(image, [Region((0, 0, 4, 4))])


def test_filter_is_abstract() -> None:
    with pytest.raises(TypeError):
        Filter()  # type: ignore[abstract]


# --------------------------------------------------------------------------------- make_filter

MAKE = [
    pytest.param("blur", {}, DoesNotRaise(), BlurFilter, id="blur"),
    pytest.param("pixelate", {"blocks_across": 8}, DoesNotRaise(), PixelateFilter, id="pixelate"),
    pytest.param(
        "solid", {"color": [0, 0, 255], "shape": "ellipse"}, DoesNotRaise(), SolidFilter, id="solid"
    ),
    pytest.param(
        "gaussian",
        {},
        pytest.raises(ConfigError, match=r"'blur', 'pixelate', 'solid'.*'gaussian'"),
        None,
        id="unknown-method",
    ),
    pytest.param("Blur", {}, pytest.raises(ConfigError, match=r"'Blur'"), None, id="case"),
    pytest.param(None, {}, pytest.raises(ConfigError, match=r"None"), None, id="none"),
    pytest.param(
        "blur",
        {"radius": 3},
        pytest.raises(ConfigError, match=r"radius.*'blur'.*blur_fraction"),
        None,
        id="param",
    ),
    pytest.param(
        "blur", {"passes": 0}, pytest.raises(ConfigError, match=r"'blur'.*passes"), None, id="value"
    ),
    pytest.param(
        "solid", {"color": "red"}, pytest.raises(ConfigError, match=r"color"), None, id="color"
    ),
]


@pytest.mark.parametrize(("method", "params", "expectation", "cls"), MAKE)
def test_make_filter(
    method: str,
    params: dict[str, Any],
    expectation: contextlib.AbstractContextManager[Any],
    cls: type[Filter] | None,
) -> None:
    with expectation:
        made = make_filter(method, **params)
        assert type(made) is cls
        for name, value in params.items():
            expected = tuple(value) if isinstance(value, list) else value
            assert getattr(made, name) == expected


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        make_filter("blur", blur_fraction=2.0)


def test_warm_up_compiles_every_kernel() -> None:
    warm_up()
    for kernel in (blur_region, pixelate_region, fill_region):
        assert len(kernel.signatures) >= 1
