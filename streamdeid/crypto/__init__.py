"""Reversible masking: the original pixels of masked faces, encrypted into a sidecar file.

For video input in an inter-frame codec the sidecar ``<video>.sdeid`` keeps the input's own
compressed packets, encrypted in runs, plus a cleartext (MACed) index of the boxes masked on each
frame (:mod:`~streamdeid.crypto.source`): bit-exact, about the input's size. Otherwise, before a
region is blurred its original pixels are compressed (PNG, bit-exact; or JPEG q95) and encrypted
as one record per region. Reviewers hold X25519 key pairs; the
anonymizer needs only their public keys. A reviewer can restore everything, or export a grant that
opens one track (one person) and nothing else.

Threat model (format 2), by who holds what:

* **Masked video only**: sees what the video shows, with the faces masked; no original pixels.
* **Sidecar without a key** (anyone who copies it; also the anonymizing host once the run is
  over, as it never holds a private key): learns the cleartext metadata, i.e. the recording id,
  the number of recipients and their fingerprints, and per record the pts, time base, track id,
  box and codec, plus the ciphertext length *rounded up to a padding bucket* (Padme: 16 buckets
  per doubling, multiples of 256 bytes below 4 KiB; ~2% overhead measured). A guessed original
  can no longer be confirmed by its exact compressed length. A guess whose length falls in
  another bucket is still ruled out, and the box size is in the clear anyway. Cannot read pixels.
  Cannot edit, add, remove, reorder, duplicate or splice anything, header included, without a
  key holder noticing. The one exception is cutting off the tail with the end marker: a key
  holder sees a truncated file, as after a crash.
* **Grant holder** (the key of one track): reads that track's region records. Source packets
  hold whole frames and are encrypted under a content-key-only key ("streamdeid source"), so no
  grant opens them; for such recordings a grant comes with a package, a sidecar under the same
  header and keys holding only that track's regions, cut from the packets by a full-key holder.
  A grant reader checks the header (the grant pins its digest), the GCM tag of its track's
  records, the sequence numbers of all records, and its track's entry in the end marker. It
  cannot read other tracks, and it cannot write a record, header or end marker that a full-key
  reader accepts. Each record carries an
  HMAC under a key derived from the content key ("streamdeid record"), and the header and end
  marker MACs use their own content-key labels; no grant contains any of these keys. What a
  grant reader *cannot* check is that record MAC. So it cannot tell the anonymizer's records
  from records forged, or a tail cut and re-counted, by another holder of the same track key
  (the same grant, or a full-key holder). Against outsiders and holders of other tracks'
  grants its checks hold.
* **Full-key holder** (a recipient's private key): reads everything and issues grants. Detects
  any record not written with the content key, whether forged with a track key, edited, foreign,
  replayed, reordered or removed. Record MACs cover the recording id and the sequence number.
  Detects an edited header or end marker too. All recipients share the content key and nothing
  is signed, so "authentic" means "written by a holder of the content key": a recipient could
  forge a sidecar for the others.
* **Anonymizing host**: during the run it sees every pixel in the clear and could write
  anything; a compromised host defeats all of the above. After the run it holds public keys
  only.
* **Key compromise**: a recipient's private key opens every sidecar it was a recipient of, past
  and future (stored data has no forward secrecy; revoking means leaving the key out of future
  runs). A leaked grant opens one track of one recording. Content keys are per recording.

Not protected: the cleartext metadata above, secrets left in Python memory, and the integrity of
the masked video itself (only its pairing with the sidecar, through the recording id). The
reveal audit log (:mod:`streamdeid.audit`) is a separate boundary. It records what this tool
revealed, and a hash chain exposes edits to past entries. It cannot show that no other reveal
happened: a key or grant opens the sidecar with any software, and no entry gets written.

Format 1 (no record MAC, unpadded) is refused with a :class:`FormatError`. Its records can be
forged by any grant holder, and its lengths leak the crops, so reading it "with a warning" would
hand out the very guarantee it lacks. The release that wrote a format-1 file still reads it.

File layout (big-endian integers)::

    header
      8   magic "SDEIDCAR"          2   version (2)
      16  recording id (random)     2   n recipients (>= 1)
      n x 100  recipient: 8 fingerprint | 32 ephemeral X25519 public key | 12 nonce
                         | 48 content key wrapped with AES-256-GCM (32 + 16 tag)
      32  HMAC-SHA256 of the header so far, key HKDF(content key, "streamdeid header" + rid)
    chunks, each: 1 type | 4 body length | body
      type 1, region record, one per frame and region (114 bytes + the padded crop):
        8 seq (0, 1, 2, ... in file order) | 8 pts (signed) | 4 time_base num | 4 den
        | 8 track id (0 = no track) | 4 x1 | 4 y1 | 4 x2 | 4 y2 | 1 codec (1 PNG, 2 JPEG)
        | 12 nonce | AES-256-GCM ciphertext of the padded crop + 16 tag | 32 record MAC
        padded crop: 4 length | compressed crop | zeros up to padded_size(4 + length)
      type 3, source run: 8 seq | 8 index of its first packet | 4 n packets | 1 starts at a
        keyframe | 12 nonce | AES-256-GCM (source key) of the padded run + 16 tag | 32 record MAC
        run: 1 codec name length | name | 4 extradata length | extradata | 4 width | 4 height
        | 4 time_base num | 4 den | n x (8 pts | 8 dts | 1 keyframe | 4 size | packet)
      type 4, frame index (cleartext): 8 seq | 8 frame index (decode order) | 8 pts | 4 time_base
        num | 4 den | 4 n | n x (8 track id | 4 x1 | 4 y1 | 4 x2 | 4 y2) | 32 HMAC under the
        record MAC key over "index" + all of it
      type 2, end marker (written by close(); nothing may follow it):
        8 total records | 4 n tracks | n x (8 track id | 8 count | 16 per-track MAC)
        | 32 HMAC-SHA256 over the marker, key HKDF(content key, "streamdeid end" + rid)

Counts: the end marker's total counts records of every type; a track's count is its boxes (one
per region record, one per index entry). Source key = HKDF(content key, "streamdeid source" +
rid); a run's AAD is magic + version + rid + its 21 cleartext field bytes.

Keys. wrap key = HKDF(X25519(ephemeral, recipient), salt = rid, info = "streamdeid wrap" +
ephemeral pub + recipient pub), AAD = magic + version + rid + fingerprint. Track key =
HKDF(content key, info = "streamdeid track" + rid + track id as int64). A region record's AAD is
magic + version + rid + its 49 cleartext field bytes (seq to codec). Its record MAC is
HMAC-SHA256(HKDF(content key, "streamdeid record" + rid), magic + version + rid + fields + nonce
+ ciphertext). The per-track MAC is HMAC(HKDF(track key, "streamdeid track end" + rid), magic +
version + rid + total + track + count) truncated to 16 bytes. A grant file (114 bytes):
"SDEIDGRT" | 2 version (1) | 16 rid | 32 SHA-256 of the header | 8 track id | 32 track key | 16
checksum.
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
