"""Checking what callers hand the sidecar writer, before anything is encrypted or written.

A bad box or time base must fail the call and leave the file as it was, so every value is
checked (and every crop compressed) before the writer takes its lock.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from streamdeid.crypto import format as fmt
from streamdeid.crypto.codec import CodecError, encode
from streamdeid.crypto.errors import CryptoError
from streamdeid.types import Region

MAX_I64 = (1 << 63) - 1


def check_frame(
    pts: int, time_base: Fraction | tuple[int, int], image: np.ndarray
) -> tuple[int, int]:
    """Validate one frame's stamp and image; return the time base as (num, den)."""
    tb = check_time_base(time_base)
    check_pts(pts)
    check_image(image)
    return tb


def check_pts(pts: int) -> None:
    if isinstance(pts, bool) or not isinstance(pts, int | np.integer) or abs(pts) > MAX_I64:
        raise ValueError(f"pts must be a 64-bit int, but got {pts!r}")


def check_region(region: Region, width: int, height: int) -> tuple[tuple[int, int, int, int], int]:
    """The region's integer box (inside the frame, non-empty) and stored track id."""
    x1, y1, x2, y2 = (int(v) for v in region.xyxy)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(
            f"region must lie inside the {width}x{height} frame and be non-empty, "
            f"but got {region.xyxy}"
        )
    track_id = fmt.UNTRACKED_ID if region.track_id is None else int(region.track_id)
    if not 0 <= track_id <= MAX_I64:
        raise ValueError(f"track_id must be a non-negative int64, but got {track_id}")
    return (x1, y1, x2, y2), track_id


def compress(crop: np.ndarray, lossy: bool, region: Region) -> tuple[int, bytes]:
    """Compress one crop in memory (never to disk); ``region`` only names it in the error."""
    try:
        codec, plain = encode(crop, lossy)
    except CodecError as e:
        raise CryptoError(f"cannot compress region {region.xyxy}: {e}") from None
    return int(codec), plain


def check_time_base(time_base: Fraction | tuple[int, int]) -> tuple[int, int]:
    try:
        tb = Fraction(*time_base) if isinstance(time_base, tuple) else Fraction(time_base)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(
            f"time_base must be a positive Fraction or (num, den), but got {time_base!r}"
        ) from None
    if not 0 < tb.numerator <= fmt.MAX_U32 or not 0 < tb.denominator <= fmt.MAX_U32:
        raise ValueError(
            f"time_base must be positive with 32-bit numerator and denominator, but got {tb}"
        )
    return tb.numerator, tb.denominator


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image must be a uint8 np.ndarray, but got {kind}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), but got {image.shape}")
