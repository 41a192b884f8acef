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
# 2: per-record MAC under a content-key-only key (grant holders cannot forge records) and padded
# plaintexts. Version 1 files are refused: their records are forgeable by any grant holder.
VERSION = 2
PREFIX = MAGIC + struct.pack(">H", VERSION)  # bound into every AAD and MAC

RECORDING_ID_SIZE = 16
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
FINGERPRINT_SIZE = 8  # raw bytes of the 16-hex-char fingerprint
HEADER_MAC_SIZE = 32
END_MAC_SIZE = 32
TRACK_END_MAC_SIZE = 16
RECORD_MAC_SIZE = 32

# magic, version, recording id, number of recipients
HEADER_FIXED = struct.Struct(">8sH16sH")
# fingerprint, ephemeral X25519 public key, wrap nonce, wrapped content key (+ GCM tag)
RECIPIENT = struct.Struct(f">{FINGERPRINT_SIZE}s32s{NONCE_SIZE}s{KEY_SIZE + TAG_SIZE}s")

# Every chunk after the header: type, body length.
CHUNK_HEAD = struct.Struct(">BI")
CHUNK_REGION = 1
CHUNK_END = 2
CHUNK_SOURCE = 3  # a run of the input's compressed video packets (see streamdeid.crypto.source)
CHUNK_INDEX = 4  # which boxes of which frame were masked, for originals kept as source packets
CHUNK_TYPES = (CHUNK_REGION, CHUNK_END, CHUNK_SOURCE, CHUNK_INDEX)
MAX_CHUNK_BODY = 1 << 28  # 256 MiB: far above any face crop, far below "length field flipped"

# seq, pts, time_base num, time_base den, track id, x1, y1, x2, y2, codec; then nonce,
# ciphertext (with its GCM tag) and the record MAC. Parsing splits off fields and nonce; the record
# MAC is the last RECORD_MAC_SIZE bytes of what follows (see split_sealed).
REGION_FIELDS = struct.Struct(">QqIIqIIIIB")
# seq, index of the first packet, number of packets, 1 if the first is a keyframe; then nonce,
# ciphertext (source key) and record MAC, as for a region record.
SOURCE_FIELDS = struct.Struct(">QQIB")
# seq, frame index, pts, time_base num, den, number of boxes; then that many INDEX_BOX entries
# (track id, x1, y1, x2, y2), then the record MAC. Cleartext, like a region record's fields.
INDEX_FIELDS = struct.Struct(">QQqIII")
INDEX_BOX = struct.Struct(">qIIII")

# total number of region records, number of track entries; then entries, then the end MAC
END_FIXED = struct.Struct(">QI")
END_ENTRY = struct.Struct(f">qQ{TRACK_END_MAC_SIZE}s")  # track id, record count, per-track MAC

UNTRACKED_ID = 0  # track id stored for regions the tracker did not (yet) assign to a person
TRACK_ID = struct.Struct(">q")
MAX_U32 = (1 << 32) - 1

# The encrypted plaintext of a record: real length, compressed crop, zeros up to a bucket size.
PAD_LENGTH = struct.Struct(">I")
PAD_MIN = 256  # every bucket is a multiple of this

GRANT_MAGIC = b"SDEIDGRT"
# Unchanged by sidecar version 2: a grant still holds one track key (never the record MAC key).
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


def source_key(content_key: bytes, recording_id: bytes) -> bytes:
    """Key of the source packets: whole frames, so derived from the content key and never from a
    track key; no grant opens them."""
    return hkdf(content_key, b"streamdeid source" + recording_id)


def index_mac(mac_key: bytes, recording_id: bytes, body: bytes) -> bytes:
    """MAC of a cleartext index record (everything before the MAC), under the record MAC key."""
    return hmac.digest(mac_key, PREFIX + recording_id + b"index" + body, "sha256")


def record_mac_key(content_key: bytes, recording_id: bytes) -> bytes:
    """Key of the per-record MACs: derived from the content key only, never part of a grant."""
    return hkdf(content_key, b"streamdeid record" + recording_id)


def record_mac(
    mac_key: bytes, recording_id: bytes, packed_fields: bytes, nonce: bytes, ciphertext: bytes
) -> bytes:
    """MAC over everything a record holds, so only the content key's holders can write one.

    A track key (what a grant hands out) encrypts records that pass GCM; this MAC is what tells a
    full-key reader that the anonymizer wrote them. Fields and nonce are fixed-size, so the
    concatenation is unambiguous.
    """
    msg = PREFIX + recording_id + packed_fields + nonce + ciphertext
    return hmac.digest(mac_key, msg, "sha256")


def split_sealed(sealed: bytes) -> tuple[bytes, bytes]:
    """Split what follows a record's nonce into (GCM ciphertext with tag, record MAC)."""
    return sealed[:-RECORD_MAC_SIZE], sealed[-RECORD_MAC_SIZE:]


def padded_size(n: int) -> int:
    """Bucket for an ``n``-byte plaintext: Padme (Nikitin et al., PETS 2019), min. 256-multiple.

    Padme rounds to a multiple of 2^(E - floor(log2 E) - 1) for E = floor(log2 n): 16 buckets
    per doubling, at most ~6% overhead above 4 KiB. Below that every multiple of 256 is a bucket.
    """
    n = max(n, 1)
    e = n.bit_length() - 1
    step = max(PAD_MIN, 1 << max(e - e.bit_length(), 0))
    return -(-n // step) * step


def pad(plain: bytes) -> bytes:
    """Length-prefix ``plain`` and zero-pad it to its bucket before encryption."""
    body = PAD_LENGTH.pack(len(plain)) + plain
    return body + bytes(padded_size(len(body)) - len(body))


def unpad(padded: bytes) -> bytes:
    """Inverse of :func:`pad`, insisting on its exact output (length, zeros, bucket).

    Raises:
        ValueError: ``padded`` is not something :func:`pad` produces.
    """
    if len(padded) < PAD_LENGTH.size:
        raise ValueError(f"padded plaintext of {len(padded)} bytes has no length prefix")
    (n,) = PAD_LENGTH.unpack_from(padded)
    end = PAD_LENGTH.size + n
    if end > len(padded) or len(padded) != padded_size(end) or padded[end:].strip(b"\0"):
        raise ValueError(f"padded plaintext of {len(padded)} bytes does not hold {n} bytes")
    return padded[PAD_LENGTH.size : end]


def region_aad(recording_id: bytes, packed_fields: bytes) -> bytes:
    """Associated data of a region record: format, recording and every cleartext field."""
    return PREFIX + recording_id + packed_fields


def header_digest(header: bytes) -> bytes:
    """SHA-256 of the full header; a grant pins it so a grant holder detects header edits."""
    return hashlib.sha256(header).digest()
