"""Byte layout of sidecar and grant files, and the key schedule shared by writer and reader.

Kept apart from the writer and reader so that the two can never disagree on an offset or a label:
every struct, HKDF label and associated-data builder lives here once. All integers are big-endian.
See :mod:`streamdeid.crypto` for the layout as a table.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SDEIDCAR"
VERSION = 1
PREFIX = MAGIC + struct.pack(">H", VERSION)  # bound into every AAD and MAC

RECORDING_ID_SIZE = 16
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
FINGERPRINT_SIZE = 8  # raw bytes of the 16-hex-char fingerprint
HEADER_MAC_SIZE = 32
END_MAC_SIZE = 32
TRACK_END_MAC_SIZE = 16

# magic, version, recording id, number of recipients
HEADER_FIXED = struct.Struct(">8sH16sH")
# fingerprint, ephemeral X25519 public key, wrap nonce, wrapped content key (+ GCM tag)
RECIPIENT = struct.Struct(f">{FINGERPRINT_SIZE}s32s{NONCE_SIZE}s{KEY_SIZE + TAG_SIZE}s")

# Every chunk after the header: type, body length.
CHUNK_HEAD = struct.Struct(">BI")
CHUNK_REGION = 1
CHUNK_END = 2
MAX_CHUNK_BODY = 1 << 28  # 256 MiB: far above any face crop, far below "length field flipped"

# seq, pts, time_base num, time_base den, track id, x1, y1, x2, y2, codec; then nonce, ciphertext
REGION_FIELDS = struct.Struct(">QqIIqIIIIB")
REGION_MIN_BODY = REGION_FIELDS.size + NONCE_SIZE + TAG_SIZE
# total number of region records, number of track entries; then entries, then the end MAC
END_FIXED = struct.Struct(">QI")
END_ENTRY = struct.Struct(f">qQ{TRACK_END_MAC_SIZE}s")  # track id, record count, per-track MAC

UNTRACKED_ID = 0  # track id stored for regions the tracker did not (yet) assign to a person
TRACK_ID = struct.Struct(">q")
MAX_U32 = (1 << 32) - 1

GRANT_MAGIC = b"SDEIDGRT"
GRANT_VERSION = 1
# magic, version, recording id, sha256(header), track id, track key; then a 16-byte checksum
GRANT_BODY = struct.Struct(f">8sH{RECORDING_ID_SIZE}s32sq{KEY_SIZE}s")
GRANT_CHECKSUM_SIZE = 16
GRANT_SIZE = GRANT_BODY.size + GRANT_CHECKSUM_SIZE


@dataclass(frozen=True, slots=True)
class RegionFields:
    """The cleartext (authenticated, not encrypted) part of a region record."""

    seq: int
    pts: int
    tb_num: int
    tb_den: int
    track_id: int
    x1: int
    y1: int
    x2: int
    y2: int
    codec: int

    def pack(self) -> bytes:
        return REGION_FIELDS.pack(
            self.seq,
            self.pts,
            self.tb_num,
            self.tb_den,
            self.track_id,
            self.x1,
            self.y1,
            self.x2,
            self.y2,
            self.codec,
        )

    @classmethod
    def unpack(cls, data: bytes) -> RegionFields:
        return cls(*REGION_FIELDS.unpack(data))


def hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 to a 32-byte key; ``info`` labels make every derived key single-purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(ikm)


def wrap_key(
    shared: bytes, recording_id: bytes, ephemeral_pub: bytes, recipient_pub: bytes
) -> bytes:
    """Key-encryption key for one recipient, bound to both public keys (as in ECIES/HPKE)."""
    return hkdf(shared, b"streamdeid wrap" + ephemeral_pub + recipient_pub, salt=recording_id)


def wrap_aad(recording_id: bytes, fingerprint: bytes) -> bytes:
    return PREFIX + recording_id + fingerprint


def track_key(content_key: bytes, recording_id: bytes, track_id: int) -> bytes:
    """Per-track key: a grant hands out exactly this, so it opens one person and nothing else."""
    return hkdf(content_key, b"streamdeid track" + recording_id + TRACK_ID.pack(track_id))


def header_mac(content_key: bytes, recording_id: bytes, header_body: bytes) -> bytes:
    """MAC over the whole header, so no recipient entry can be edited, added or removed."""
    key = hkdf(content_key, b"streamdeid header" + recording_id)
    return hmac.digest(key, header_body, "sha256")


def end_mac(content_key: bytes, recording_id: bytes, end_body: bytes) -> bytes:
    """MAC over the end marker, so a key holder can tell a complete file from a cut one."""
    key = hkdf(content_key, b"streamdeid end" + recording_id)
    return hmac.digest(key, end_body, "sha256")


def track_end_mac(
    track_key_bytes: bytes, recording_id: bytes, total: int, track_id: int, count: int
) -> bytes:
    """Per-track MAC in the end marker: lets a grant holder prove none of its records are gone."""
    key = hkdf(track_key_bytes, b"streamdeid track end" + recording_id)
    msg = PREFIX + recording_id + struct.pack(">QqQ", total, track_id, count)
    return hmac.digest(key, msg, "sha256")[:TRACK_END_MAC_SIZE]


def region_aad(recording_id: bytes, packed_fields: bytes) -> bytes:
    """Associated data of a region record: format, recording and every cleartext field."""
    return PREFIX + recording_id + packed_fields


def header_digest(header: bytes) -> bytes:
    """SHA-256 of the full header; a grant pins it so a grant holder detects header edits."""
    return hashlib.sha256(header).digest()
