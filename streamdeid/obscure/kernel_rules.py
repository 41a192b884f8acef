"""The rules the obscuring kernels and their numpy references share, written once.

Plain Python that works on scalars (compiled into the numba kernels of
:mod:`streamdeid.obscure.kernels`) and on numpy arrays (in the references of
:mod:`streamdeid.obscure.kernels_ref`), so both implementations use literally the same
expressions, argument checks and error messages, and can agree bit for bit.
"""

from __future__ import annotations

import numpy as np

IntOrArray = int | np.ndarray


def in_ellipse(u: IntOrArray, v: IntOrArray, w: int, h: int) -> bool | np.ndarray:
    """Whether a pixel lies inside the ellipse inscribed in a ``w`` x ``h`` box.

    The ellipse has its centre at the box centre and semi-axes ``w/2`` and ``h/2``; a pixel counts
    when its centre (``+0.5``) satisfies ``(dx/(w/2))**2 + (dy/(h/2))**2 <= 1``. Doubling every
    coordinate turns that into the integer test used here, so there is no float rounding to disagree
    about: ``u = 2*i + 1 - w`` and ``v = 2*j + 1 - h`` for local column ``i`` and row ``j``, and the
    pixel is inside when ``u²h² + v²w² <= w²h²``.

    The central pixel(s) always pass (``|u| <= 1`` and ``|v| <= 1`` there, and a side of 1 px has
    ``u == 0``), so even a 1 px or 2 px thin region is never left entirely untouched. The products
    fit int64 for boxes up to about 50000 px a side.

    Args:
        u: Doubled horizontal offset of the pixel centre from the box centre.
        v: Doubled vertical offset of the pixel centre from the box centre.
        w: Box width in pixels.
        h: Box height in pixels.

    Returns:
        A bool, or a bool array when ``u``/``v`` are arrays.
    """
    return u * u * h * h + v * v * w * w <= w * w * h * h


def box_ok(img: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> bool:
    """Whether the box is non-empty and lies inside a 3-channel image."""
    return (
        img.ndim == 3
        and img.shape[2] == 3
        and 0 <= x1 < x2 <= img.shape[1]
        and 0 <= y1 < y2 <= img.shape[0]
    )


def bilinear_taps(k: int, f: int, n: int) -> tuple[int, int, int]:
    """Where output pixel ``k`` of an ``f``-times enlargement of ``n`` cells samples them.

    Its centre lies at cell coordinate ``(k + 0.5) / f - 0.5 = (2k + 1 - f) / (2f)``: the two
    neighbouring cells ``lo`` and ``hi``, and the weight of ``hi`` in 256ths (rounded half up).
    Before the first cell centre and after the last one the nearest cell is taken whole.
    """
    num = 2 * k + 1 - f
    d = 2 * f
    if num < 0:
        return 0, min(1, n - 1), 0
    lo = num // d
    if lo >= n - 1:
        return n - 1, n - 1, 0
    return lo, lo + 1, ((num - lo * d) * 256 + f) // d


BAD_BOX = "box must be non-empty and inside an (H, W, 3) image"
BAD_RADIUS = "radius and passes must be >= 0 and radius < 2**22"
BAD_BLOCK = "block must be >= 1"
BAD_FACTOR = "factor must be >= 1"


# Integer division is the slowest step of the blur, so the kernel divides by the (fixed) box width
# k with a multiply and a shift instead. With S = 54 and m = ceil(2**S / k), m*k = 2**S + e for some
# 0 <= e < k. For x = q*k + rho with 0 <= x < 256*k (a box sum of uint8 plus the rounding term):
# x*m / 2**S = q + (rho + x*e / 2**S) / k, and x*e < 256*k*k <= 2**54 when k < 2**23, so the bracket
# stays below k and the floor is exactly q. x*m < 2**62 + 256*k, so nothing overflows int64.
DIV_SHIFT = 54
MAX_RADIUS = (1 << 22) - 1  # keeps k = 2r + 1 < 2**23


def radius_ok(radius: int, passes: int) -> bool:
    """Whether blur parameters are in the range where the reciprocal division is exact."""
    return 0 <= radius <= MAX_RADIUS and passes >= 0


def reciprocal(k: int) -> int:
    """Multiplier ``m`` with ``(x * m) >> 54 == x // k`` for every ``0 <= x < 256 * k``."""
    return ((1 << DIV_SHIFT) + k - 1) // k


def ellipse_mask(w: int, h: int) -> np.ndarray:
    """Boolean ``(h, w)`` mask of the pixels :func:`in_ellipse` accepts in a ``w`` x ``h`` box."""
    u = 2 * np.arange(w, dtype=np.int64)[None, :] + 1 - w
    v = 2 * np.arange(h, dtype=np.int64)[:, None] + 1 - h
    return in_ellipse(u, v, w, h)
