"""Obscuring filters: what the pipeline calls to hide every face region of a frame.

A filter turns a list of :class:`~streamdeid.types.Region` into in-place pixel changes using the
kernels in :mod:`streamdeid.obscure.kernels`. Strength scales with the region: a blur radius or a
pixel block that hides a 40 px face leaves a 400 px face recognisable, so both are derived from the
region size rather than fixed.

Privacy comes before looks. A region whose smaller side is under :data:`MIN_OBSCURABLE_SIDE`
pixels cannot be meaningfully blurred or pixelated (a 1 px region would come out unchanged), so
the blur and pixelate filters paint such regions solid instead.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Literal, TypeGuard, get_args

import numpy as np

from streamdeid.errors import ConfigError
from streamdeid.obscure.kernels import (
    blur_region,
    blur_region_coarse,
    fill_region,
    pixelate_region,
)
from streamdeid.types import Region

__all__ = [
    "MIN_OBSCURABLE_SIDE",
    "BlurFilter",
    "Filter",
    "PixelateFilter",
    "Shape",
    "SolidFilter",
    "check_image",
    "make_filter",
    "pixel_regions",
    "warm_up",
]

log = logging.getLogger(__name__)

Shape = Literal["box", "ellipse"]
BGR = tuple[int, int, int]

MIN_OBSCURABLE_SIDE = 4
"""Regions with a smaller side (px) below this are filled solid by blur and pixelate."""

COARSE_RADIUS = 8
"""The blur runs on a copy shrunk so that its radius still spans this many pixels."""

_FALLBACK_COLOR: BGR = (0, 0, 0)


# --------------------------------------------------------------------------------------------------
# Argument checks. Filters are built from user configuration, so every message names the argument
# and says what was expected and what was found.
# --------------------------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int | np.integer]:
    # bool is an int subclass, but `passes=True` is a config mistake, not the number 1.
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_shape(shape: object) -> bool:
    """Validate ``shape`` and return whether it asks for an ellipse."""
    choices = get_args(Shape)
    if shape not in choices:
        raise ValueError(f"shape must be one of {', '.join(map(repr, choices))}, but got {shape!r}")
    return shape == "ellipse"


def _check_int(name: str, value: object, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {value!r}")
    return int(value)


def _check_fraction(name: str, value: object) -> float:
    real = (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, real) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], but got {value!r}")
    return float(value)


def _check_color(name: str, value: object) -> BGR:
    """Accept any 3-sequence of 0..255 integers (YAML gives lists) and return a tuple."""
    is_triple = isinstance(value, (tuple, list)) and len(value) == 3
    if is_triple and all(_is_int(c) and 0 <= c <= 255 for c in value):
        b, g, r = (int(c) for c in value)
        return (b, g, r)
    raise ValueError(f"{name} must be 3 integers in 0..255 (B, G, R), but got {value!r}")


def check_image(image: object) -> None:
    """Reject images the kernels cannot write in place, instead of silently copying them."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a np.ndarray, but got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 array, but got {image.shape} {image.dtype}"
        )
    if not image.flags.c_contiguous or not image.flags.writeable:
        raise ValueError(
            "image must be C-contiguous and writeable, but got "
            f"c_contiguous={image.flags.c_contiguous} writeable={image.flags.writeable}"
        )


def pixel_regions(
    image: np.ndarray, regions: Sequence[Region]
) -> Iterator[tuple[tuple[int, int, int, int], Region]]:
    """Yield each region's box as plain ints, clipped to the image, with the region.

    Regions should already be clipped; clipping again is cheap and keeps a stale box (for example
    one from a frame of another size) from reaching a kernel that does no bounds checking.
    """
    height, width = image.shape[:2]
    for region in regions:
        x1, y1, x2, y2 = region.xyxy
        cx1, cy1 = max(int(x1), 0), max(int(y1), 0)
        cx2, cy2 = min(int(x2), width), min(int(y2), height)
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            log.debug("region %s clipped to frame %dx%d", region.xyxy, width, height)
        if cx2 > cx1 and cy2 > cy1:
            yield (cx1, cy1, cx2, cy2), region


# --------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------


class Filter(ABC):
    """Something that hides the content of regions of a frame."""

    @abstractmethod
    def apply(self, image: np.ndarray, regions: Sequence[Region]) -> None:
        """Obscure every region of ``image`` in place.

        Args:
            image: ``(H, W, 3)`` uint8 BGR, C-contiguous and writeable.
            regions: Boxes to obscure; parts outside the image are ignored.

        Raises:
            TypeError: If ``image`` is not a numpy array.
            ValueError: If ``image`` cannot be modified in place as a BGR uint8 frame.
        """

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Load models and compile kernels now, on the stage's thread, not on the first face."""

    def next_frame(self, detector_ran: bool) -> None:  # noqa: B027 - optional hook
        """Called by the obscure stage before each frame's :meth:`apply`.

        The box filters keep no state between frames and ignore it; the surrogate filter fits
        face meshes afresh only on frames where the detector ran (``detector_ran``).
        """


class _BoxFilter(Filter):
    """Shared loop: validate the frame once, then obscure the regions one by one."""

    def __init__(self, shape: Shape) -> None:
        self._ellipse = _check_shape(shape)
        self.shape: Shape = shape

    def apply(self, image: np.ndarray, regions: Sequence[Region]) -> None:
        check_image(image)
        for (x1, y1, x2, y2), _ in pixel_regions(image, regions):
            self._obscure(image, x1, y1, x2, y2)

    @abstractmethod
    def _obscure(self, image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
        """Obscure one clipped, non-empty box."""

    def _fill(self, image: np.ndarray, x1: int, y1: int, x2: int, y2: int, color: BGR) -> None:
        b, g, r = color
        fill_region(image, x1, y1, x2, y2, b, g, r, self._ellipse)

    def _too_small(self, x1: int, y1: int, x2: int, y2: int) -> bool:
        """Whether the box is too thin to blur/pixelate, so it must be filled instead."""
        small = min(x2 - x1, y2 - y1) < MIN_OBSCURABLE_SIDE
        if small:
            log.debug("region %s too small for %r; filling solid", (x1, y1, x2, y2), self)
        return small


class BlurFilter(_BoxFilter):
    """Blur each region with an iterated box blur whose radius follows the region size.

    Args:
        blur_fraction: Radius as a fraction of the region's smaller side, in (0, 1].
        passes: Box-blur passes; 3 approximates a gaussian, more is smoother and slower.
        shape: ``"box"`` blurs the whole region, ``"ellipse"`` only its inscribed ellipse.

    Raises:
        ValueError: If an argument is out of range (the message names it).
    """

    def __init__(self, blur_fraction: float = 0.25, passes: int = 3, shape: Shape = "box") -> None:
        super().__init__(shape)
        self.blur_fraction = _check_fraction("blur_fraction", blur_fraction)
        self.passes = _check_int("passes", passes, 1)

    def radius_for(self, width: int, height: int) -> int:
        """Blur radius for a region: ``max(2, ceil(smaller side * blur_fraction))``."""
        return max(2, math.ceil(min(width, height) * self.blur_fraction))

    @staticmethod
    def factor_for(radius: int) -> int:
        """Cell side of the shrunk copy the blur is computed on (see ``blur_region_coarse``).

        The copy keeps at least ``COARSE_RADIUS`` cells per blur radius, which is all a blur of
        that radius lets through: a 200-px region blurred at radius 100 is computed on 17x17
        cells of 12 px, 4x faster than at full size (2.4 vs 10-16 ns per pixel), within a few
        grey levels of it. Radii under ``2 * COARSE_RADIUS`` (regions under ~32 px) are blurred
        at full size, where it costs little: with 6 cells per radius, a borderline 25-px face
        of the dev clips stayed detectable (CenterFace 0.40) after a blur on 2-px cells, and
        not after the full-size blur.
        """
        return max(1, radius // COARSE_RADIUS)

    def _obscure(self, image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
        if self._too_small(x1, y1, x2, y2):
            self._fill(image, x1, y1, x2, y2, _FALLBACK_COLOR)
            return
        radius = self.radius_for(x2 - x1, y2 - y1)
        factor = self.factor_for(radius)
        blur_region_coarse(image, x1, y1, x2, y2, radius, self.passes, self._ellipse, factor)

    def __repr__(self) -> str:
        return (
            f"BlurFilter(blur_fraction={self.blur_fraction!r}, passes={self.passes!r}, "
            f"shape={self.shape!r})"
        )


class PixelateFilter(_BoxFilter):
    """Replace each region by a grid of flat blocks whose size follows the region size.

    Args:
        blocks_across: Number of blocks along the region's longer side (>= 1).
        shape: ``"box"`` pixelates the whole region, ``"ellipse"`` only its inscribed ellipse.

    Raises:
        ValueError: If an argument is out of range (the message names it).
    """

    def __init__(self, blocks_across: int = 6, shape: Shape = "box") -> None:
        super().__init__(shape)
        self.blocks_across = _check_int("blocks_across", blocks_across, 1)

    def block_for(self, width: int, height: int) -> int:
        """Block side for a region: ``max(2, ceil(longer side / blocks_across))``."""
        return max(2, math.ceil(max(width, height) / self.blocks_across))

    def _obscure(self, image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
        if self._too_small(x1, y1, x2, y2):
            self._fill(image, x1, y1, x2, y2, _FALLBACK_COLOR)
            return
        block = self.block_for(x2 - x1, y2 - y1)
        pixelate_region(image, x1, y1, x2, y2, block, self._ellipse)

    def __repr__(self) -> str:
        return f"PixelateFilter(blocks_across={self.blocks_across!r}, shape={self.shape!r})"


class SolidFilter(_BoxFilter):
    """Paint each region a flat colour: the strongest option, works at any region size.

    Args:
        color: BGR colour, three integers in 0..255 (a list is accepted for YAML configs).
        shape: ``"box"`` paints the whole region, ``"ellipse"`` only its inscribed ellipse.

    Raises:
        ValueError: If an argument is out of range (the message names it).
    """

    def __init__(self, color: BGR = (0, 0, 0), shape: Shape = "box") -> None:
        super().__init__(shape)
        self.color = _check_color("color", color)

    def _obscure(self, image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
        self._fill(image, x1, y1, x2, y2, self.color)

    def __repr__(self) -> str:
        return f"SolidFilter(color={self.color!r}, shape={self.shape!r})"


_FILTERS: dict[str, type[_BoxFilter]] = {
    "blur": BlurFilter,
    "pixelate": PixelateFilter,
    "solid": SolidFilter,
}


def make_filter(method: str, **params: object) -> Filter:
    """Build a filter from configuration.

    Every failure becomes a :class:`~streamdeid.errors.ConfigError` (still a ``ValueError``) so the
    CLI reports it as a configuration problem with a message that names the culprit.

    Args:
        method: ``"blur"``, ``"pixelate"`` or ``"solid"``.
        **params: Constructor arguments of the chosen filter.

    Returns:
        The configured filter.

    Raises:
        ConfigError: If the method is unknown, a parameter does not belong to it, or a value is
            out of range.
    """
    cls = _FILTERS.get(method) if isinstance(method, str) else None
    if cls is None:
        choices = ", ".join(map(repr, _FILTERS))
        raise ConfigError(f"obscure method must be one of {choices}, but got {method!r}")
    accepted = list(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for obscure method {method!r}: "
            f"expected any of {', '.join(accepted)}"
        )
    try:
        return cls(**params)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"obscure method {method!r}: {e}") from e


def warm_up() -> None:
    """Compile (or load from cache) every kernel now, so the first face is not late.

    numba compiles on first call, which takes seconds; without this the first frame that contains a
    face would stall the pipeline. The arguments use the same types the filters pass (uint8 C
    array, Python ints and bools) so the compiled signatures are the ones used later.
    """
    start = time.perf_counter()
    image = np.zeros((8, 8, 3), np.uint8)
    blur_region(image, 0, 0, 8, 8, 2, 1, False)
    blur_region_coarse(image, 0, 0, 8, 8, 2, 1, False, 2)
    pixelate_region(image, 0, 0, 8, 8, 2, True)
    fill_region(image, 0, 0, 8, 8, 0, 0, 0, False)
    log.debug("obscure kernels ready in %.2f s", time.perf_counter() - start)
