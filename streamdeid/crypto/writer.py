"""Appending encrypted original pixels of masked regions to a new sidecar.

The writer runs inside the anonymizer with only reviewers' public keys: it draws a random content
key, wraps it for each reviewer in the header, and appends one AES-256-GCM record per masked
region, encrypted under a per-track key derived from the content key. Each plaintext is padded to
a size bucket (its length no longer confirms a guessed original), and each record carries a MAC
under a content-key-only key, so a grant holder (who has a track key) cannot forge one. The file
is append-only and every record is self-contained, so a flush per frame is all it takes for a
killed process to leave a file readable up to its last frame. ``close()`` appends an
authenticated end marker; its absence is how a reader tells a cut file from a complete one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.codec import CodecError, encode
from streamdeid.crypto.errors import CryptoError, SidecarIOError
from streamdeid.crypto.keys import fingerprint
from streamdeid.types import Region

log = logging.getLogger(__name__)

_MAX_I64 = (1 << 63) - 1


class SidecarWriter:
    """Append encrypted original pixels of masked regions to a new sidecar file.

    Args:
        path: Sidecar to create (refused if it exists, unless ``overwrite``).
        recipients: Reviewers' public keys; each one alone can unlock the whole recording.
        lossy: Store JPEG (quality 95, 4:4:4) instead of bit-exact PNG: ~3x smaller, ~41 dB.
        overwrite: Replace an existing file at ``path``.
        fsync: Also ``fsync`` on every :meth:`flush`. Flushing alone survives the process being
            killed; ``fsync`` survives power loss too, at the cost of a disk sync per frame.

    Raises:
        ValueError: No recipients, a duplicate recipient, or a non-X25519 key.
        SidecarIOError: The file exists (without ``overwrite``) or cannot be created.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        recipients: Iterable[X25519PublicKey],
        lossy: bool = False,
        *,
        overwrite: bool = False,
        fsync: bool = False,
    ) -> None:
        recipients = list(recipients)
        fingerprints = _check_recipients(recipients)
        self._path = Path(path)
        self._lossy = lossy
        self._fsync = fsync
        self._recording_id = os.urandom(fmt.RECORDING_ID_SIZE)
        self._content_key = AESGCM.generate_key(bit_length=256)
        self._record_mac_key = fmt.record_mac_key(self._content_key, self._recording_id)
        self._track_keys: dict[int, tuple[bytes, AESGCM]] = {}
        self._counts: dict[int, int] = {}
        self._seq = 0
        self._closed = True  # until the header is on disk
        header = _build_header(self._recording_id, self._content_key, recipients, fingerprints)
        self._file = _create(self._path, overwrite)
        self._closed = False
        self._write(header)
        self.flush()
        log.info(
            "reversible masking: sidecar %s, recording %s, recipients %s%s",
            self._path,
            self._recording_id.hex(),
            ", ".join(f.hex() for f in fingerprints),
            " (lossy)" if lossy else "",
        )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def recording_id(self) -> str:
        """Hex id of this recording; grants and readers name it in their errors."""
        return self._recording_id.hex()

    @property
    def records_written(self) -> int:
        return self._seq

    def write_regions(
        self,
        pts: int,
        time_base: Fraction | tuple[int, int],
        image: np.ndarray,
        regions: Iterable[Region],
    ) -> None:
        """Encrypt the original pixels of each region of one frame and append them.

        Must be called with the frame as decoded, *before* any region is masked (overlapping
        regions are each stored from the original). All records of the call are written in one
        piece, so an invalid region leaves the file unchanged.

        Args:
            pts: Presentation timestamp of the frame; pass the frame index when it has none.
            time_base: Unit of ``pts``; pass ``Fraction(1, fps)`` (or 1/1) when there is none.
            image: (H, W, 3) uint8 BGR frame.
            regions: Boxes to store; ``track_id`` None is stored as 0 (the "untracked" bucket,
                which a grant for track 0 opens). The tracker numbers tracks from 1.

        Raises:
            ValueError: Writer closed, or a pts, time base, image or box out of range.
            SidecarIOError: The file could not be written; the writer is closed.
        """
        if self._closed:
            raise ValueError(f"cannot write to sidecar {self._path}: the writer is closed")
        tb_num, tb_den = _check_frame(pts, time_base, image)
        height, width = image.shape[:2]
        chunks: list[bytes] = []
        seq = self._seq
        added: dict[int, int] = {}
        for region in regions:
            (x1, y1, x2, y2), track_id = _check_region(region, width, height)
            codec, plain = _compress(image[y1:y2, x1:x2], self._lossy, region)
            fields = fmt.RegionFields(
                seq, int(pts), tb_num, tb_den, track_id, x1, y1, x2, y2, codec
            )
            chunks.append(self._encrypt_record(fields, plain))
            seq += 1
            added[track_id] = added.get(track_id, 0) + 1
        if not chunks:
            return
        self._write(b"".join(chunks))
        self._seq = seq
        for track_id, n in added.items():
            self._counts[track_id] = self._counts.get(track_id, 0) + n

    def flush(self) -> None:
        """Push written records to the OS (and to disk with ``fsync``); call once per frame.

        Raises:
            ValueError: The writer is closed.
            SidecarIOError: The OS refused the data; the writer is closed.
        """
        if self._closed:
            raise ValueError(f"cannot flush sidecar {self._path}: the writer is closed")
        try:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError as e:
            self._abort()
            raise SidecarIOError(f"cannot write sidecar {self._path}: {e.strerror}") from e

    def close(self) -> None:
        """Append the end marker, sync to disk and close. Idempotent.

        The end marker certifies how many records each track has; without it a reader reports
        the file as truncated (after yielding every record it holds).
        """
        if self._closed:
            return
        try:
            self._write(self._end_chunk())
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            self._abort()
            raise SidecarIOError(f"cannot finish sidecar {self._path}: {e.strerror}") from e
        self._closed = True
        self._file.close()
        log.info(
            "sidecar %s closed: %d records in %d tracks", self._path, self._seq, len(self._counts)
        )

    def __enter__(self) -> SidecarWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # The end marker is written even when the pipeline failed: it certifies the records that
        # exist, which are all valid; the masked video is equally complete up to that point.
        self.close()

    def _track_aead(self, track_id: int) -> AESGCM:
        entry = self._track_keys.get(track_id)
        if entry is None:
            key = fmt.track_key(self._content_key, self._recording_id, track_id)
            entry = self._track_keys[track_id] = (key, AESGCM(key))
        return entry[1]

    def _encrypt_record(self, fields: fmt.RegionFields, plain: bytes) -> bytes:
        """One region chunk: cleartext fields (also the AAD), a fresh nonce, the ciphertext of
        the padded crop, and the record MAC over all of it."""
        packed = fields.pack()
        nonce = os.urandom(fmt.NONCE_SIZE)
        aad = fmt.region_aad(self._recording_id, packed)
        ciphertext = self._track_aead(fields.track_id).encrypt(nonce, fmt.pad(plain), aad)
        mac = fmt.record_mac(self._record_mac_key, self._recording_id, packed, nonce, ciphertext)
        body = packed + nonce + ciphertext + mac
        return fmt.CHUNK_HEAD.pack(fmt.CHUNK_REGION, len(body)) + body

    def _end_chunk(self) -> bytes:
        total = self._seq
        parts = [fmt.END_FIXED.pack(total, len(self._counts))]
        for track_id, count in sorted(self._counts.items()):
            self._track_aead(track_id)
            key = self._track_keys[track_id][0]
            mac = fmt.track_end_mac(key, self._recording_id, total, track_id, count)
            parts.append(fmt.END_ENTRY.pack(track_id, count, mac))
        body = b"".join(parts)
        body += fmt.end_mac(self._content_key, self._recording_id, body)
        return fmt.CHUNK_HEAD.pack(fmt.CHUNK_END, len(body)) + body

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            self._abort()
            raise SidecarIOError(f"cannot write sidecar {self._path}: {e.strerror}") from e

    def _abort(self) -> None:
        """Stop after an I/O error: a half-written record would make every later one unreadable."""
        self._closed = True
        try:
            self._file.close()
        except OSError:
            log.debug("closing sidecar %s after a write error failed too", self._path)


def _check_recipients(recipients: list[X25519PublicKey]) -> list[bytes]:
    if not recipients:
        raise ValueError("expected at least one recipient public key, but got none")
    if len(recipients) > 0xFFFF:
        raise ValueError(f"expected at most 65535 recipients, but got {len(recipients)}")
    fingerprints: list[bytes] = []
    for key in recipients:
        if not isinstance(key, X25519PublicKey):
            raise ValueError(f"expected X25519PublicKey recipients, but got {type(key).__name__}")
        fp = bytes.fromhex(fingerprint(key))
        if fp in fingerprints:
            raise ValueError(f"expected distinct recipients, but key {fp.hex()} is given twice")
        fingerprints.append(fp)
    return fingerprints


def _build_header(
    recording_id: bytes,
    content_key: bytes,
    recipients: list[X25519PublicKey],
    fingerprints: list[bytes],
) -> bytes:
    """Header with the content key wrapped for each recipient (ephemeral-static X25519)."""
    parts = [fmt.HEADER_FIXED.pack(fmt.MAGIC, fmt.VERSION, recording_id, len(recipients))]
    for public, fp in zip(recipients, fingerprints, strict=True):
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(public)
        except ValueError as e:
            raise ValueError(f"recipient key {fp.hex()} is not a usable X25519 key") from e
        kek = fmt.wrap_key(shared, recording_id, ephemeral_raw, public.public_bytes_raw())
        nonce = os.urandom(fmt.NONCE_SIZE)
        wrapped = AESGCM(kek).encrypt(nonce, content_key, fmt.wrap_aad(recording_id, fp))
        parts.append(fmt.RECIPIENT.pack(fp, ephemeral_raw, nonce, wrapped))
    body = b"".join(parts)
    return body + fmt.header_mac(content_key, recording_id, body)


def _create(path: Path, overwrite: bool) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError as e:
        raise SidecarIOError(f"refusing to overwrite existing sidecar {path}") from e
    except OSError as e:
        raise SidecarIOError(f"cannot create sidecar {path}: {e.strerror}") from e
    return os.fdopen(fd, "wb")


def _check_frame(
    pts: int, time_base: Fraction | tuple[int, int], image: np.ndarray
) -> tuple[int, int]:
    """Validate one frame's stamp and image; return the time base as (num, den)."""
    tb = _check_time_base(time_base)
    if isinstance(pts, bool) or not isinstance(pts, int | np.integer) or abs(pts) > _MAX_I64:
        raise ValueError(f"pts must be a 64-bit int, but got {pts!r}")
    _check_image(image)
    return tb


def _check_region(region: Region, width: int, height: int) -> tuple[tuple[int, int, int, int], int]:
    """The region's integer box (inside the frame, non-empty) and stored track id."""
    x1, y1, x2, y2 = (int(v) for v in region.xyxy)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(
            f"region must lie inside the {width}x{height} frame and be non-empty, "
            f"but got {region.xyxy}"
        )
    track_id = fmt.UNTRACKED_ID if region.track_id is None else int(region.track_id)
    if not 0 <= track_id <= _MAX_I64:
        raise ValueError(f"track_id must be a non-negative int64, but got {track_id}")
    return (x1, y1, x2, y2), track_id


def _compress(crop: np.ndarray, lossy: bool, region: Region) -> tuple[int, bytes]:
    """Compress one crop in memory (never to disk); ``region`` only names it in the error."""
    try:
        codec, plain = encode(crop, lossy)
    except CodecError as e:
        raise CryptoError(f"cannot compress region {region.xyxy}: {e}") from None
    return int(codec), plain


def _check_time_base(time_base: Fraction | tuple[int, int]) -> tuple[int, int]:
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


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image must be a uint8 np.ndarray, but got {kind}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), but got {image.shape}")
