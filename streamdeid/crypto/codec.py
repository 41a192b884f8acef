"""Compression of face crops before encryption (ciphertext does not compress afterwards).

Lossless is PNG: bit-exact, self-describing (it carries its own width, height and channel count)
and about 35% smaller than zlib on raw BGR for faces, at ~1 ms per 100x120 crop with compression
level 1 (higher levels cost 2-6x the time for 1-3% fewer bytes). Lossy is JPEG quality 95 with
4:4:4 chroma: ~41 dB PSNR on real faces, 3x smaller than PNG and ~20x faster to encode than WebP,
which matters because encoding runs on the pipeline's hot path. Everything stays in memory:
OpenCV's ``imencode``/``imdecode`` never touch the file system.
"""

from __future__ import annotations

from enum import IntEnum

import cv2
import numpy as np

PNG_LEVEL = 1
# RLE strategy: measured on face crops, 10% smaller and a little faster than the default filter.
PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    PNG_LEVEL,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
]
JPEG_QUALITY = 95


class Codec(IntEnum):
    """Codec id stored (and authenticated) in every region record."""

    PNG = 1
    JPEG = 2


class CodecError(Exception):
    """Internal: encoding or decoding failed; callers translate it to their own error."""


def encode(pixels: np.ndarray, lossy: bool) -> tuple[Codec, bytes]:
    """Compress an (h, w, 3) uint8 BGR crop.

    Returns:
        The codec used and the compressed bytes.

    Raises:
        CodecError: OpenCV refused to encode the crop.
    """
    if lossy:
        codec = Codec.JPEG
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            JPEG_QUALITY,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
        ok, buf = cv2.imencode(".jpg", pixels, params)
    else:
        codec = Codec.PNG
        ok, buf = cv2.imencode(".png", pixels, PNG_PARAMS)
    if not ok:
        raise CodecError(f"OpenCV could not encode a {pixels.shape} crop as {codec.name}")
    return codec, buf.tobytes()


def decode(codec_id: int, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Decompress a crop and check it has the ``shape`` its record announced.

    Raises:
        CodecError: Unknown codec, undecodable data, or a shape other than ``shape``.
    """
    if codec_id not in (Codec.PNG, Codec.JPEG):
        raise CodecError(f"expected codec id 1 (PNG) or 2 (JPEG), but found {codec_id}")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CodecError(f"{Codec(codec_id).name} data does not decode")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape != shape or pixels.dtype != np.uint8:
        raise CodecError(
            f"expected a decoded crop of shape {shape} uint8, but found {pixels.shape} "
            f"{pixels.dtype}"
        )
    return pixels
