"""Builders shared by the reversible-masking tests: textured frames, small sidecars, layout."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.audit import AuditContext
from streamdeid.crypto import CryptoError, RevealedRegion, SidecarReader, SidecarWriter, TrackGrant
from streamdeid.crypto import format as fmt
from streamdeid.crypto.parse import RegionChunk, scan_chunks
from streamdeid.types import Region

TIME_BASE = Fraction(1, 90000)
# Decrypting is always logged (streamdeid.audit); these tests look at the cryptography, so their
# entries go to a throwaway log signed with a throwaway key.
AUDIT = AuditContext(
    Ed25519PrivateKey.generate(), Path(tempfile.mkdtemp(prefix="sdeid-audit-")) / "audit.jsonl"
)


@dataclass(frozen=True)
class Expected:
    """What a reader must give back for one written region."""

    pts: int
    track_id: int
    xyxy: tuple[int, int, int, int]
    pixels: np.ndarray


def textured_frame(seed: int, height: int, width: int) -> np.ndarray:
    """Random noise: incompressible, so any pixel error or leak is unmistakable."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_sidecar(
    path: Path,
    recipients: Sequence[X25519PrivateKey],
    frames: Sequence[tuple[int, np.ndarray, Sequence[Region]]],
    lossy: bool = False,
    close: bool = True,
) -> list[Expected]:
    """Write ``(pts, image, regions)`` frames; return the regions in file order."""
    expected: list[Expected] = []
    writer = SidecarWriter(path, [k.public_key() for k in recipients], lossy=lossy)
    for pts, image, regions in frames:
        writer.write_regions(pts, TIME_BASE, image, regions)
        writer.flush()
        for r in regions:
            x1, y1, x2, y2 = r.xyxy
            track = 0 if r.track_id is None else r.track_id
            expected.append(Expected(pts, track, r.xyxy, image[y1:y2, x1:x2].copy()))
    if close:
        writer.close()
    return expected


def small_sidecar(
    path: Path, recipients: Sequence[X25519PrivateKey], seed: int = 0
) -> list[Expected]:
    """Two 8x6 frames, three tracks (1, 7, untracked), tiny regions: a few hundred bytes."""
    frames = []
    for i in range(2):
        image = textured_frame(seed + i, 6, 8)
        regions = [
            Region((0, 0, 3, 2), 1),
            Region((7, 5, 8, 6), 7),
            Region((2, 3, 4, 5), None),
        ]
        frames.append((1000 * i, image, regions))
    return write_sidecar(path, recipients, frames)


def assert_matches(got: Sequence[RevealedRegion], expected: Sequence[Expected]) -> None:
    """Bit-exact comparison of revealed regions with what was written, in order."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert (g.pts, g.track_id, g.xyxy, g.time_base) == (e.pts, e.track_id, e.xyxy, TIME_BASE)
        assert g.pixels.dtype == np.uint8
        np.testing.assert_array_equal(g.pixels, e.pixels)


def read_all(
    path: Path, key: X25519PrivateKey | None = None, grant: TrackGrant | None = None
) -> tuple[list[RevealedRegion], CryptoError | None]:
    """Everything a reader yields before it stops, and the error it stopped with."""
    got: list[RevealedRegion] = []
    try:
        reader = SidecarReader(path)
        if key is not None:
            reader.unlock(key)
        if grant is not None:
            reader.unlock_track(grant)
        got.extend(reader.records(audit_ctx=AUDIT))
    except CryptoError as e:
        return got, e
    return got, None


def chunk_spans(data: bytes, header_size: int) -> list[tuple[int, int, int]]:
    """(type, start, end) of every chunk after the header, from the documented layout."""
    spans = []
    pos = header_size
    while pos + fmt.CHUNK_HEAD.size <= len(data):
        kind, length = fmt.CHUNK_HEAD.unpack_from(data, pos)
        end = pos + fmt.CHUNK_HEAD.size + length
        spans.append((kind, pos, end))
        pos = end
    return spans


def header_size(n_recipients: int) -> int:
    return fmt.HEADER_FIXED.size + n_recipients * fmt.RECIPIENT.size + fmt.HEADER_MAC_SIZE


def region_chunks(path: Path, n_recipients: int) -> list[RegionChunk]:
    """The region records of a complete sidecar, parsed without a key."""
    return [c for c in scan_chunks(path, header_size(n_recipients)) if isinstance(c, RegionChunk)]


def forge_chunk(
    recording_id: bytes,
    track_key: bytes,
    fields: fmt.RegionFields,
    plain: bytes,
    mac: bytes | None = None,
    padded: bool = True,
) -> bytes:
    """A region chunk a grant holder can make: valid GCM under its track key, any content.

    The record MAC it cannot compute; by default it uses the best it has, an HMAC under the
    track key.
    """
    packed = fields.pack()
    nonce = os.urandom(fmt.NONCE_SIZE)
    aad = fmt.region_aad(recording_id, packed)
    ciphertext = AESGCM(track_key).encrypt(nonce, fmt.pad(plain) if padded else plain, aad)
    if mac is None:
        mac = fmt.record_mac(track_key, recording_id, packed, nonce, ciphertext)
    body = packed + nonce + ciphertext + mac
    return fmt.CHUNK_HEAD.pack(fmt.CHUNK_REGION, len(body)) + body
