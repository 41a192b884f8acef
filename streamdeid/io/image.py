"""Still images: read with EXIF orientation applied, write back in the same format and size.

OpenCV is used here because it reads and writes JPEG/PNG/WebP/TIFF with orientation handling in
one call. Metadata is dropped on write (EXIF can hold GPS position and camera serial numbers);
``keep_exif`` copies a JPEG's EXIF segment verbatim, in which case pixels stay in stored
orientation so the copied orientation tag still means what it says.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from streamdeid.errors import NotAVideoError, OutputNotWritableError, SinkError
from streamdeid.io.sink import check_output_writable
from streamdeid.io.source import _check_exists
from streamdeid.types import Frame

log = logging.getLogger(__name__)

_JPEG = {".jpg", ".jpeg"}


def read_image(path: str | os.PathLike[str], keep_exif: bool = False) -> Frame:
    p = os.fspath(path)
    _check_exists(p)
    data = np.fromfile(p, dtype=np.uint8)
    flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION if keep_exif else 0)
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise NotAVideoError(f"cannot decode '{p}': expected an image file, got unreadable data")
    return Frame(
        index=0,
        image=np.ascontiguousarray(image),
        pts=0,
        time_base=None,
        captured_at=time.monotonic(),
    )


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    exif_from: str | os.PathLike[str] | None = None,
    jpeg_quality: int = 95,
) -> None:
    p = Path(path)
    check_output_writable(p)
    suffix = p.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in _JPEG else []
    ok, buf = cv2.imencode(suffix or ".png", image, params)
    if not ok:
        raise SinkError(f"cannot encode image as '{suffix}'")
    data = buf.tobytes()
    if exif_from is not None:
        if suffix in _JPEG:
            exif = _jpeg_exif_segment(Path(exif_from).read_bytes())
            if exif:
                data = data[:2] + exif + data[2:]
        else:
            log.warning("keep_exif: EXIF is only copied for JPEG, '%s' written without it", p)
    try:
        p.write_bytes(data)
    except OSError as e:
        raise OutputNotWritableError(f"cannot write output '{p}': {e.strerror or e}") from e


def _jpeg_exif_segment(data: bytes) -> bytes | None:
    """Return the raw APP1 'Exif' segment (marker included) of a JPEG, if any."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return data[i : i + 2 + length]
        if marker == 0xDA:  # start of scan: no more headers
            return None
        i += 2 + length
    return None
