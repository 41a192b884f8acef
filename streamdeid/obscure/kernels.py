"""Pixel kernels that obscure one rectangular region of a BGR frame in place.

Each operation exists twice: a numba kernel here, run per frame in the pipeline, and a plain numpy
reference (``*_ref`` in :mod:`streamdeid.obscure.kernels_ref`) that is slow but obviously right.
The two must agree bit for bit, which is why every step uses integer arithmetic with a stated
rounding rule instead of floats: float results could legitimately differ by one grey level between
numba and numpy and then nothing could be checked exactly. The rules both follow (ellipse test,
argument checks, exact division, bilinear taps) are written once in
:mod:`streamdeid.obscure.kernel_rules`.

Conventions shared by every function here:

* ``img`` is a writable, C-contiguous ``(H, W, 3)`` uint8 array and is modified in place.
* ``x1, y1, x2, y2`` is a non-empty box inside ``img`` with ``x2``/``y2`` exclusive.
* ``ellipse=True`` replaces only the pixels inside the ellipse inscribed in the box (see
  :func:`~streamdeid.obscure.kernel_rules.in_ellipse`); the value written is still computed from
  the whole box, so the ellipse only decides *where* results land, never *what* they are.

The kernels check their arguments and raise ``ValueError`` because numba does no bounds checking:
a bad box would otherwise corrupt memory silently instead of failing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streamdeid.obscure.kernel_rules import (
    BAD_BLOCK,
    BAD_BOX,
    BAD_FACTOR,
    BAD_RADIUS,
    DIV_SHIFT,
    bilinear_taps,
    box_ok,
    in_ellipse,
    radius_ok,
    reciprocal,
)

__all__ = [
    "blur_region",
    "blur_region_coarse",
    "fill_region",
    "pixelate_region",
]

_in_ellipse_nb = njit(nogil=True, cache=True, inline="always")(in_ellipse)
_bilinear_taps_nb = njit(nogil=True, cache=True, inline="always")(bilinear_taps)
_box_ok_nb = njit(nogil=True, cache=True)(box_ok)
_radius_ok_nb = njit(nogil=True, cache=True)(radius_ok)
_reciprocal_nb = njit(nogil=True, cache=True)(reciprocal)


@njit(nogil=True, cache=True)
def _copy_in(img: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """Copy the box into an int32 ``(h, w*3)`` work buffer (channels interleaved)."""
    h = y2 - y1
    w = x2 - x1
    out = np.empty((h, w * 3), np.int32)
    for j in range(h):
        for i in range(w):
            for c in range(3):
                out[j, i * 3 + c] = img[y1 + j, x1 + i, c]
    return out


@njit(nogil=True, cache=True)
def _write_back(img: np.ndarray, buf: np.ndarray, x1: int, y1: int, ellipse: bool) -> None:
    """Store ``buf`` (``(h, w*3)``) into the box, only inside the ellipse when asked."""
    h = buf.shape[0]
    w = buf.shape[1] // 3
    for j in range(h):
        v = 2 * j + 1 - h
        for i in range(w):
            if ellipse and not _in_ellipse_nb(2 * i + 1 - w, v, w, h):
                continue
            for c in range(3):
                img[y1 + j, x1 + i, c] = buf[j, i * 3 + c]


@njit(nogil=True, cache=True)
def _box_rows(src: np.ndarray, dst: np.ndarray, r: int) -> None:
    """Horizontal box filter of radius ``r`` with clamped edges, ``src`` -> ``dst``.

    A running sum makes each output cost O(1) whatever ``r`` is. Samples beyond the ends repeat the
    end pixel, which is what lets ``r`` exceed the region size without reading outside it. The
    three channels are summed side by side in one walk along the row (1.7x faster than one walk
    per channel, whose stride-3 reads dominated the blur).
    """
    h = src.shape[0]
    w = src.shape[1] // 3
    k = 2 * r + 1
    inv = _reciprocal_nb(k)
    last = w - 1
    m = min(r, last)
    for j in range(h):
        row = src[j]
        out = dst[j]
        s0 = (r + 1) * np.int64(row[0]) + (r - m) * np.int64(row[last * 3])
        s1 = (r + 1) * np.int64(row[1]) + (r - m) * np.int64(row[last * 3 + 1])
        s2 = (r + 1) * np.int64(row[2]) + (r - m) * np.int64(row[last * 3 + 2])
        for t in range(1, m + 1):
            s0 += row[t * 3]
            s1 += row[t * 3 + 1]
            s2 += row[t * 3 + 2]
        for i in range(w):
            out[i * 3] = ((s0 + r) * inv) >> DIV_SHIFT
            out[i * 3 + 1] = ((s1 + r) * inv) >> DIV_SHIFT
            out[i * 3 + 2] = ((s2 + r) * inv) >> DIV_SHIFT
            add = min(i + r + 1, last) * 3
            sub = max(i - r, 0) * 3
            s0 += row[add] - row[sub]
            s1 += row[add + 1] - row[sub + 1]
            s2 += row[add + 2] - row[sub + 2]


@njit(nogil=True, cache=True)
def _box_cols(src: np.ndarray, dst: np.ndarray, r: int) -> None:
    """Vertical counterpart of :func:`_box_rows`, walking whole rows to stay cache friendly."""
    h, w3 = src.shape
    k = 2 * r + 1
    inv = _reciprocal_nb(k)
    last = h - 1
    m = min(r, last)
    s = np.empty(w3, np.int64)
    for q in range(w3):
        s[q] = (r + 1) * src[0, q] + (r - m) * src[last, q]
    for t in range(1, m + 1):
        for q in range(w3):
            s[q] += src[t, q]
    for j in range(h):
        add = src[min(j + r + 1, last)]
        sub = src[max(j - r, 0)]
        for q in range(w3):
            dst[j, q] = ((s[q] + r) * inv) >> DIV_SHIFT
            s[q] += add[q] - sub[q]


@njit(nogil=True, cache=True)
def blur_region(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, radius: int, passes: int, ellipse: bool
) -> None:
    """Iterated box blur of one region, in place.

    One pass is a horizontal then a vertical box filter of width ``2*radius + 1``; three passes are
    close to a gaussian. Only pixels of the region feed the result (edges are clamped to the region)
    so the blur never pulls in, or depends on, what lies outside the face box. Each 1-D step rounds
    to the nearest integer with ``(sum + radius) // (2*radius + 1)``; the divisor is odd, so there
    are no ties to break. (The kernel computes that quotient with an exact reciprocal multiply.)

    Args:
        img: ``(H, W, 3)`` uint8 C-contiguous image, modified in place.
        x1: Left edge (inclusive).
        y1: Top edge (inclusive).
        x2: Right edge (exclusive).
        y2: Bottom edge (exclusive).
        radius: Box radius in pixels, ``0 <= radius < 2**22``; may exceed the region size.
        passes: Number of box passes, ``>= 0``.
        ellipse: Replace only pixels inside the inscribed ellipse.

    Raises:
        ValueError: If the box is empty or outside ``img``, or ``radius``/``passes`` is out of
            range.
    """
    if not _box_ok_nb(img, x1, y1, x2, y2):
        raise ValueError(BAD_BOX)
    if not _radius_ok_nb(radius, passes):
        raise ValueError(BAD_RADIUS)
    a = _copy_in(img, x1, y1, x2, y2)
    b = np.empty_like(a)
    for _ in range(passes):
        _box_rows(a, b, radius)
        _box_cols(b, a, radius)
    _write_back(img, a, x1, y1, ellipse)


@njit(nogil=True, cache=True)
def _shrink_nb(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, f: int) -> np.ndarray:
    """Mean of every ``f`` x ``f`` cell of the box (cut cells at the far edges), rounded half
    up, into an int32 ``(ceil(h/f), ceil(w/f)*3)`` work buffer.

    Rows are summed first, whole rows at a time (a loop the compiler vectorizes), and each band
    of ``f`` summed rows is then cut into cells: 2-4x faster than summing cell by cell.
    """
    h = y2 - y1
    w = x2 - x1
    sh = (h + f - 1) // f
    sw = (w + f - 1) // f
    band = np.empty(w * 3, np.int64)
    out = np.empty((sh, sw * 3), np.int32)
    for cj in range(sh):
        band[:] = 0
        nh = min(f, h - cj * f)
        for j in range(cj * f, cj * f + nh):
            src = img[y1 + j, x1:x2].reshape(w * 3)
            for q in range(w * 3):
                band[q] += src[q]
        for ci in range(sw):
            nw = min(f, w - ci * f)
            n = nh * nw
            for c in range(3):
                total = np.int64(0)
                for x in range(ci * f, ci * f + nw):
                    total += band[x * 3 + c]
                out[cj, ci * 3 + c] = (total + n // 2) // n
    return out


@njit(nogil=True, cache=True)
def _enlarge_back(
    img: np.ndarray, small: np.ndarray, x1: int, y1: int, w: int, h: int, f: int, ellipse: bool
) -> None:
    """Bilinear enlargement of ``small`` by ``f`` into the ``w`` x ``h`` box, only inside the
    ellipse when asked: along rows first (every small row to full width), then between rows,
    with the 8-bit weights of :func:`bilinear_taps`."""
    sh = small.shape[0]
    sw = small.shape[1] // 3
    cols = np.empty((w, 3), np.int64)
    for i in range(w):
        left, right, weight = _bilinear_taps_nb(i, f, sw)
        cols[i, 0] = left * 3
        cols[i, 1] = right * 3
        cols[i, 2] = weight
    wide = np.empty((sh, w * 3), np.int32)
    for r in range(sh):
        row = small[r]
        out = wide[r]
        for i in range(w):
            left = cols[i, 0]
            right = cols[i, 1]
            wr = cols[i, 2]
            wl = 256 - wr
            for c in range(3):
                out[i * 3 + c] = wl * row[left + c] + wr * row[right + c]
    for j in range(h):
        top, bottom, wb = _bilinear_taps_nb(j, f, sh)
        wt = 256 - wb
        upper = wide[top]
        lower = wide[bottom]
        if not ellipse:  # the whole row: one flat loop, which the compiler vectorizes
            dst = img[y1 + j, x1 : x1 + w].reshape(w * 3)
            for q in range(w * 3):
                dst[q] = (wt * upper[q] + wb * lower[q] + 32768) >> 16
            continue
        v = 2 * j + 1 - h
        for i in range(w):
            if not _in_ellipse_nb(2 * i + 1 - w, v, w, h):
                continue
            for c in range(3):
                q = i * 3 + c
                img[y1 + j, x1 + i, c] = (wt * upper[q] + wb * lower[q] + 32768) >> 16


@njit(nogil=True, cache=True)
def blur_region_coarse(
    img: np.ndarray,
    x1: int,
    y1: int,
    x2: int,
    y2: int,
    radius: int,
    passes: int,
    ellipse: bool,
    factor: int,
) -> None:
    """:func:`blur_region` computed on a copy shrunk ``factor`` times, enlarged back, in place.

    A blur of radius ``r`` keeps nothing finer than about ``r`` pixels, so a copy with one pixel
    per ``factor`` x ``factor`` cell (``factor`` well below ``r``) holds all that survives it.
    The box is shrunk by cell means, blurred with radius ``ceil(radius / factor)``, and enlarged
    back bilinearly: ``factor**2`` fewer pixels to blur, for a result within a few grey levels
    of the full-size blur. As with :func:`blur_region`, only pixels of the region feed it.

    Args:
        img: ``(H, W, 3)`` uint8 C-contiguous image, modified in place.
        x1, y1, x2, y2: The box (``x2``/``y2`` exclusive).
        radius: Box radius in source pixels, ``0 <= radius < 2**22``.
        passes: Number of box passes, ``>= 0``.
        ellipse: Replace only pixels inside the inscribed ellipse.
        factor: Cell side of the shrunk copy, ``>= 1`` (1 = no shrinking, still bit-exact with
            the reference).

    Raises:
        ValueError: If the box is empty or outside ``img``, or an argument is out of range.
    """
    if not _box_ok_nb(img, x1, y1, x2, y2):
        raise ValueError(BAD_BOX)
    if not _radius_ok_nb(radius, passes):
        raise ValueError(BAD_RADIUS)
    if factor < 1:
        raise ValueError(BAD_FACTOR)
    a = _shrink_nb(img, x1, y1, x2, y2, factor)
    b = np.empty_like(a)
    small_radius = (radius + factor - 1) // factor
    for _ in range(passes):
        _box_rows(a, b, small_radius)
        _box_cols(b, a, small_radius)
    _enlarge_back(img, a, x1, y1, x2 - x1, y2 - y1, factor, ellipse)


@njit(nogil=True, cache=True)
def pixelate_region(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, block: int, ellipse: bool
) -> None:
    """Replace each ``block`` x ``block`` cell of the region by its mean colour, in place.

    Cells are anchored at ``(x1, y1)``; the last column/row of cells is cut by the region edge and
    may be smaller. The mean is taken over the whole cell (also when ``ellipse`` is set) and rounded
    half up: ``(sum + n // 2) // n`` for a cell of ``n`` pixels.

    Args:
        img: ``(H, W, 3)`` uint8 C-contiguous image, modified in place.
        x1: Left edge (inclusive).
        y1: Top edge (inclusive).
        x2: Right edge (exclusive).
        y2: Bottom edge (exclusive).
        block: Cell side in pixels, ``>= 1``.
        ellipse: Replace only pixels inside the inscribed ellipse.

    Raises:
        ValueError: If the box is empty or outside ``img``, or ``block < 1``.
    """
    if not _box_ok_nb(img, x1, y1, x2, y2):
        raise ValueError(BAD_BOX)
    if block < 1:
        raise ValueError(BAD_BLOCK)
    w = x2 - x1
    h = y2 - y1
    for cy in range(y1, y2, block):
        ye = min(cy + block, y2)
        for cx in range(x1, x2, block):
            xe = min(cx + block, x2)
            n = (ye - cy) * (xe - cx)
            s0 = 0
            s1 = 0
            s2 = 0
            for y in range(cy, ye):
                for x in range(cx, xe):
                    s0 += img[y, x, 0]
                    s1 += img[y, x, 1]
                    s2 += img[y, x, 2]
            m0 = (s0 + n // 2) // n
            m1 = (s1 + n // 2) // n
            m2 = (s2 + n // 2) // n
            for y in range(cy, ye):
                v = 2 * (y - y1) + 1 - h
                for x in range(cx, xe):
                    if ellipse and not _in_ellipse_nb(2 * (x - x1) + 1 - w, v, w, h):
                        continue
                    img[y, x, 0] = m0
                    img[y, x, 1] = m1
                    img[y, x, 2] = m2


@njit(nogil=True, cache=True)
def fill_region(
    img: np.ndarray, x1: int, y1: int, x2: int, y2: int, b: int, g: int, r: int, ellipse: bool
) -> None:
    """Paint the region (or its inscribed ellipse) with the BGR colour ``(b, g, r)``, in place.

    Args:
        img: ``(H, W, 3)`` uint8 C-contiguous image, modified in place.
        x1: Left edge (inclusive).
        y1: Top edge (inclusive).
        x2: Right edge (exclusive).
        y2: Bottom edge (exclusive).
        b: Blue, 0..255.
        g: Green, 0..255.
        r: Red, 0..255.
        ellipse: Replace only pixels inside the inscribed ellipse.

    Raises:
        ValueError: If the box is empty or outside ``img``.
    """
    if not _box_ok_nb(img, x1, y1, x2, y2):
        raise ValueError(BAD_BOX)
    w = x2 - x1
    h = y2 - y1
    for y in range(y1, y2):
        v = 2 * (y - y1) + 1 - h
        for x in range(x1, x2):
            if ellipse and not _in_ellipse_nb(2 * (x - x1) + 1 - w, v, w, h):
                continue
            img[y, x, 0] = b
            img[y, x, 1] = g
            img[y, x, 2] = r
