"""Reversible masking: the original pixels of masked faces, encrypted into a sidecar file.

Before a region is blurred its original pixels are compressed (PNG, bit-exact; or JPEG q95) and
encrypted into ``<video>.sdeid`` beside the masked video. Reviewers hold X25519 key pairs; the
anonymizer needs only their public keys. A reviewer can restore everything, or export a grant that
opens one track (one person) and nothing else.

Threat model. Protected: confidentiality of the original pixels against anyone holding the masked
video and sidecar (including whoever controls the anonymizer host after the run: it never holds a
private key), and integrity of everything a key opens (edited, swapped, replayed, reordered,
removed, foreign or appended records, and an edited header, are all detected). Not protected:
metadata in the clear (number of recipients and their fingerprints, pts, boxes, track ids, crop
sizes; the masked video shows most of it anyway), a compromised anonymizer *during* the run (it
sees the pixels), secrets left in Python memory, and the end of a file cut exactly at a record
boundary *before* the end marker is written, which is reported as truncation, not tampering. A
grant holder can verify only its own track's records plus the header it pins.

File layout (big-endian integers)::

    header
      8   magic "SDEIDCAR"          2   version (1)
      16  recording id (random)     2   n recipients (>= 1)
      n x 100  recipient: 8 fingerprint | 32 ephemeral X25519 public key | 12 nonce
                         | 48 content key wrapped with AES-256-GCM (32 + 16 tag)
      32  HMAC-SHA256 of the header so far, key HKDF(content key, "streamdeid header" + rid)
    chunks, each: 1 type | 4 body length | body
      type 1, region record, one per frame and region (82 bytes + the compressed crop):
        8 seq (0, 1, 2, ... in file order) | 8 pts (signed) | 4 time_base num | 4 den
        | 8 track id (0 = no track) | 4 x1 | 4 y1 | 4 x2 | 4 y2 | 1 codec (1 PNG, 2 JPEG)
        | 12 nonce | AES-256-GCM ciphertext of the compressed crop + 16 tag
      type 2, end marker (written by close(); nothing may follow it):
        8 total records | 4 n tracks | n x (8 track id | 8 count | 16 per-track MAC)
        | 32 HMAC-SHA256 over the marker, key HKDF(content key, "streamdeid end" + rid)

Keys. wrap key = HKDF(X25519(ephemeral, recipient), salt = rid, info = "streamdeid wrap" +
ephemeral pub + recipient pub), AAD = magic + version + rid + fingerprint. Track key =
HKDF(content key, info = "streamdeid track" + rid + track id as int64). A region record's AAD is
magic + version + rid + its 49 cleartext field bytes (seq to codec). The per-track MAC is
HMAC(HKDF(track key, "streamdeid track end" + rid), magic + version + rid + total + track + count)
truncated to 16 bytes. A grant file (114 bytes): "SDEIDGRT" | 2 version | 16 rid | 32 SHA-256 of
the header | 8 track id | 32 track key | 16 checksum.
"""

from __future__ import annotations

from streamdeid.crypto.errors import (
    CryptoError,
    FormatError,
    GrantMismatchError,
    KeyFileError,
    LockedError,
    SidecarIOError,
    TamperedError,
    TruncatedError,
    UnknownTrackError,
    WeakPassphraseError,
    WrongKeyError,
    WrongPassphraseError,
)
from streamdeid.crypto.grants import TrackGrant, load_grant
from streamdeid.crypto.keys import (
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    rewrap_private_key,
)
from streamdeid.crypto.parse import TrackSummary
from streamdeid.crypto.reader import SidecarReader, export_grant
from streamdeid.crypto.verify import RevealedRegion
from streamdeid.crypto.writer import SidecarWriter

__all__ = [
    "CryptoError",
    "FormatError",
    "GrantMismatchError",
    "KeyFileError",
    "LockedError",
    "RevealedRegion",
    "SidecarIOError",
    "SidecarReader",
    "SidecarWriter",
    "TamperedError",
    "TrackGrant",
    "TrackSummary",
    "TruncatedError",
    "UnknownTrackError",
    "WeakPassphraseError",
    "WrongKeyError",
    "WrongPassphraseError",
    "export_grant",
    "fingerprint",
    "generate_keypair",
    "load_grant",
    "load_private_key",
    "load_public_key",
    "rewrap_private_key",
]
