"""Writing and reading the encrypted sidecar that makes masking reversible.

The writer runs inside the anonymizer with only reviewers' public keys: it draws a random content
key, wraps it for each reviewer in the header, and appends one AES-256-GCM record per masked
region, encrypted under a per-track key derived from the content key. The file is append-only and
every record is self-contained, so a flush per frame is all it takes for a killed process to leave
a file readable up to its last frame. ``close()`` appends an authenticated end marker; its absence
is how a reader tells a cut file from a complete one.

The reader verifies everything it returns: a record is yielded only after its tag checks, and its
position (sequence number) and the end marker's counts expose removed, duplicated, reordered or
foreign records. Records of tracks the key does not open are parsed but cannot be authenticated.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.codec import CodecError, decode, encode
from streamdeid.crypto.errors import (
    CryptoError,
    FormatError,
    GrantMismatchError,
    LockedError,
    SidecarIOError,
    TamperedError,
    TruncatedError,
    UnknownTrackError,
    WrongKeyError,
)
from streamdeid.crypto.grants import TrackGrant, load_grant
from streamdeid.crypto.keys import fingerprint
from streamdeid.types import Region

log = logging.getLogger(__name__)

_MAX_I64 = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class RevealedRegion:
    """Original pixels of one masked region, authenticated and decrypted.

    ``pixels`` is (y2 - y1, x2 - x1, 3) uint8 BGR; pasting it at ``xyxy`` into the decoded frame
    with the same ``pts`` undoes the mask. ``track_id`` 0 means the region had no track.
    """

    pts: int
    time_base: Fraction
    track_id: int
    xyxy: tuple[int, int, int, int]
    pixels: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One person in a sidecar, from the cleartext record fields (nothing is decrypted)."""

    track_id: int
    first_pts: int
    last_pts: int
    count: int
    time_base: Fraction


@dataclass(frozen=True, slots=True)
class _Recipient:
    fingerprint: bytes
    ephemeral: bytes
    nonce: bytes
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class _RegionChunk:
    offset: int
    fields: fmt.RegionFields
    packed: bytes
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class _EndChunk:
    offset: int
    total: int
    entries: dict[int, tuple[int, bytes]]  # track id -> (count, per-track MAC)
    body: bytes  # everything the end MAC covers
    mac: bytes
    trailing: int  # bytes after the end marker (0 in an intact file)


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
        tb_num, tb_den = _check_time_base(time_base)
        if isinstance(pts, bool) or not isinstance(pts, int | np.integer) or abs(pts) > _MAX_I64:
            raise ValueError(f"pts must be a 64-bit int, but got {pts!r}")
        _check_image(image)
        height, width = image.shape[:2]
        chunks: list[bytes] = []
        seq = self._seq
        added: dict[int, int] = {}
        for region in regions:
            x1, y1, x2, y2 = (int(v) for v in region.xyxy)
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                raise ValueError(
                    f"region must lie inside the {width}x{height} frame and be non-empty, "
                    f"but got {region.xyxy}"
                )
            track_id = fmt.UNTRACKED_ID if region.track_id is None else int(region.track_id)
            if not 0 <= track_id <= _MAX_I64:
                raise ValueError(f"track_id must be a non-negative int64, but got {track_id}")
            try:
                codec, plain = encode(image[y1:y2, x1:x2], self._lossy)
            except CodecError as e:
                raise CryptoError(f"cannot compress region {region.xyxy}: {e}") from None
            fields = fmt.RegionFields(
                seq, int(pts), tb_num, tb_den, track_id, x1, y1, x2, y2, int(codec)
            )
            packed = fields.pack()
            nonce = os.urandom(fmt.NONCE_SIZE)
            aad = fmt.region_aad(self._recording_id, packed)
            ciphertext = self._track_aead(track_id).encrypt(nonce, plain, aad)
            body = packed + nonce + ciphertext
            chunks.append(fmt.CHUNK_HEAD.pack(fmt.CHUNK_REGION, len(body)) + body)
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


class SidecarReader:
    """Verify and decrypt a sidecar, all tracks (private key) or single tracks (grants).

    The header is parsed on construction; records are read lazily and the file is reopened for
    every pass, so a sidecar still being written can be read up to its last flush.

    Raises:
        SidecarIOError: The file cannot be opened.
        FormatError: Not a sidecar, or an unsupported version.
        TruncatedError: The file ends inside the header.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        header, recording_id, recipients = self._read_header()
        self._header = header
        self._recording_id = recording_id
        self._recipients = recipients
        self._content_key: bytes | None = None
        self._keys: dict[int, tuple[bytes, AESGCM]] = {}  # track id -> key (cached or granted)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def recording_id(self) -> str:
        return self._recording_id.hex()

    @property
    def recipients(self) -> list[str]:
        """Fingerprints of the keys the header says can unlock it (unauthenticated until unlock)."""
        return [r.fingerprint.hex() for r in self._recipients]

    @property
    def header_size(self) -> int:
        return len(self._header)

    def unlock(self, private_key: X25519PrivateKey) -> None:
        """Unwrap the content key with a reviewer's private key and authenticate the header.

        Raises:
            WrongKeyError: The key is not one of the recipients.
            TamperedError: The key's header entry or the header MAC does not verify.
        """
        if not isinstance(private_key, X25519PrivateKey):
            raise TypeError(f"expected an X25519PrivateKey, but got {type(private_key).__name__}")
        public = private_key.public_key()
        public_raw = public.public_bytes_raw()
        fp_hex = fingerprint(public)
        fp = bytes.fromhex(fp_hex)
        matching = [r for r in self._recipients if r.fingerprint == fp]
        # Also try the other entries: if our entry's fingerprint field was altered the unwrap
        # still succeeds (the AAD uses the real fingerprint), which proves tampering rather than
        # blaming the reviewer's key.
        others = [r for r in self._recipients if r.fingerprint != fp]
        for entry in matching + others:
            content_key = self._unwrap(private_key, public_raw, fp, entry)
            if content_key is not None:
                break
        else:
            if matching:
                raise TamperedError(
                    f"sidecar {self._path}: the header entry for key {fp_hex} failed "
                    "authentication: the header was modified"
                )
            raise WrongKeyError(
                f"expected a private key for one of {', '.join(self.recipients)} to unlock "
                f"sidecar {self._path}, but got key {fp_hex}"
            )
        if entry.fingerprint != fp:
            raise TamperedError(
                f"sidecar {self._path}: the header entry for key {fp_hex} names fingerprint "
                f"{entry.fingerprint.hex()}: the header was modified"
            )
        body, mac = self._header[: -fmt.HEADER_MAC_SIZE], self._header[-fmt.HEADER_MAC_SIZE :]
        if not hmac.compare_digest(fmt.header_mac(content_key, self._recording_id, body), mac):
            raise TamperedError(
                f"sidecar {self._path}: the header failed authentication: its recipient list "
                "or recording id was modified"
            )
        self._content_key = content_key
        log.debug("unlocked sidecar %s with key %s", self._path, fp_hex)

    def unlock_track(self, grant: TrackGrant | str | os.PathLike[str]) -> None:
        """Add a per-track grant (object or file); several grants may be added.

        Raises:
            KeyFileError: The grant file cannot be read.
            GrantMismatchError: The grant belongs to another recording.
            TamperedError: The sidecar header differs from the one the grant was issued for.
        """
        if not isinstance(grant, TrackGrant):
            grant = load_grant(grant)
        if grant.recording_id != self._recording_id:
            raise GrantMismatchError(
                f"expected a grant for recording {self.recording_id} (sidecar {self._path}), "
                f"but the grant is for recording {grant.recording_id.hex()}"
            )
        if not hmac.compare_digest(grant.header_digest, fmt.header_digest(self._header)):
            raise TamperedError(
                f"sidecar {self._path}: the header differs from the one the grant for track "
                f"{grant.track_id} was issued for: the header was modified"
            )
        self._keys[grant.track_id] = (grant.key, AESGCM(grant.key))
        log.debug("unlocked track %d of sidecar %s with a grant", grant.track_id, self._path)

    def make_grant(self, track_id: int) -> TrackGrant:
        """Derive the grant for one track (see :func:`~streamdeid.crypto.grants.export_grant`).

        Raises:
            LockedError: Not unlocked with a private key.
            UnknownTrackError: No record of the sidecar has this track id.
        """
        if self._content_key is None:
            raise LockedError(
                f"expected sidecar {self._path} unlocked with a private key to issue a grant, "
                "but it is locked or opened with grants only"
            )
        known = [t.track_id for t in self.tracks()]
        if track_id not in known:
            raise UnknownTrackError(
                f"expected one of the track ids {known} of sidecar {self._path}, but got {track_id}"
            )
        key = self._track_key(track_id)[0]
        return TrackGrant(self._recording_id, fmt.header_digest(self._header), int(track_id), key)

    def tracks(self) -> list[TrackSummary]:
        """Summarise the tracks from cleartext fields, without a key and without verifying.

        A truncated file is summarised up to the cut (a warning is logged, nothing raised): this
        is what a reviewer looks at first to decide which grant to issue.

        Raises:
            FormatError: The chunk structure is malformed.
        """
        first: dict[int, fmt.RegionFields] = {}
        last_pts: dict[int, int] = {}
        counts: dict[int, int] = {}
        try:
            for chunk in self._scan():
                if isinstance(chunk, _EndChunk):
                    break
                f = chunk.fields
                if f.tb_den == 0 or f.tb_num == 0:
                    raise FormatError(
                        f"expected a positive time base in record seq {f.seq}, "
                        f"found {f.tb_num}/{f.tb_den}"
                    )
                first.setdefault(f.track_id, f)
                last_pts[f.track_id] = f.pts
                counts[f.track_id] = counts.get(f.track_id, 0) + 1
        except TruncatedError as e:
            log.warning("%s; summarising the %d complete records", e, e.records_read)
        return [
            TrackSummary(
                t, first[t].pts, last_pts[t], counts[t], Fraction(first[t].tb_num, first[t].tb_den)
            )
            for t in sorted(first)
        ]

    def records(self, track_ids: Iterable[int] | None = None) -> Iterator[RevealedRegion]:
        """Yield the verified, decrypted regions of every track the keys open, in file order.

        Every record is authenticated before anything of it is returned. Errors are raised at the
        point they are found, after all earlier intact records were yielded: a file cut by a
        crash yields everything it holds and then raises :class:`TruncatedError`.

        Args:
            track_ids: Only yield these tracks (the others the key opens are still verified).

        Raises:
            LockedError: Neither :meth:`unlock` nor :meth:`unlock_track` was called.
            TamperedError: A record, its position, or the end marker fails verification.
            TruncatedError: The file ends before the end marker (raised last).
            FormatError: The chunk structure is malformed.
        """
        if self._content_key is None and not self._keys:
            raise LockedError(
                f"expected sidecar {self._path} to be unlocked before reading records, "
                "but no private key or grant was given"
            )
        wanted = None if track_ids is None else {int(t) for t in track_ids}
        expected_seq = 0
        counts: dict[int, int] = {}
        for chunk in self._scan():
            if isinstance(chunk, _EndChunk):
                self._verify_end(chunk, expected_seq, counts)
                return
            f = chunk.fields
            keys = self._track_key(f.track_id)
            plain = None
            if keys is not None:
                aad = fmt.region_aad(self._recording_id, chunk.packed)
                try:
                    plain = keys[1].decrypt(chunk.nonce, chunk.ciphertext, aad)
                except InvalidTag:
                    raise TamperedError(
                        f"sidecar {self._path}: record seq {f.seq} (pts {f.pts}, track "
                        f"{f.track_id}, byte {chunk.offset}) failed authentication: it was "
                        "modified or comes from another recording",
                        seq=f.seq,
                        pts=f.pts,
                    ) from None
            if f.seq != expected_seq:
                raise TamperedError(
                    f"sidecar {self._path}: expected record seq {expected_seq} at byte "
                    f"{chunk.offset}, but found seq {f.seq} (pts {f.pts}): records were "
                    "removed, duplicated or reordered",
                    seq=f.seq,
                    pts=f.pts,
                )
            expected_seq += 1
            counts[f.track_id] = counts.get(f.track_id, 0) + 1
            if plain is not None and (wanted is None or f.track_id in wanted):
                yield self._reveal(f, plain)

    def _reveal(self, f: fmt.RegionFields, plain: bytes) -> RevealedRegion:
        shape = (f.y2 - f.y1, f.x2 - f.x1, 3)
        try:
            pixels = decode(f.codec, plain, shape)
        except CodecError as e:
            # Authentic data that does not decode: a writer bug or a newer format, not an attack.
            raise FormatError(
                f"sidecar {self._path}: record seq {f.seq} (pts {f.pts}) is authentic but its "
                f"pixels do not decode: {e}"
            ) from None
        return RevealedRegion(
            f.pts, Fraction(f.tb_num, f.tb_den), f.track_id, (f.x1, f.y1, f.x2, f.y2), pixels
        )

    def _verify_end(self, end: _EndChunk, total: int, counts: dict[int, int]) -> None:
        where = f"sidecar {self._path}: the end marker (byte {end.offset})"
        if self._content_key is not None:
            mac = fmt.end_mac(self._content_key, self._recording_id, end.body)
            if not hmac.compare_digest(mac, end.mac):
                raise TamperedError(f"{where} failed authentication: it was modified")
            listed = {t: c for t, (c, _) in end.entries.items()}
            if end.total != total or listed != counts:
                raise TamperedError(
                    f"{where} lists {end.total} records, but {total} were found (or the per-track "
                    "counts differ): records were removed or added"
                )
        else:
            for track_id in sorted(self._keys):
                seen = counts.get(track_id, 0)
                entry = end.entries.get(track_id)
                if entry is None:
                    if seen:
                        raise TamperedError(
                            f"{where} does not list track {track_id}, but {seen} of its records "
                            "were found: it was modified"
                        )
                    continue
                count, mac = entry
                key = self._keys[track_id][0]
                expected = fmt.track_end_mac(key, self._recording_id, end.total, track_id, count)
                if not hmac.compare_digest(expected, mac):
                    raise TamperedError(
                        f"{where} failed authentication for track {track_id}: it was modified"
                    )
                if count != seen or end.total != total:
                    raise TamperedError(
                        f"{where} lists {count} records of track {track_id} out of {end.total}, "
                        f"but {seen} out of {total} were found: records were removed or added"
                    )
        if end.trailing:
            raise TamperedError(
                f"{where} is followed by {end.trailing} more bytes: data was appended"
            )

    def _track_key(self, track_id: int) -> tuple[bytes, AESGCM] | None:
        entry = self._keys.get(track_id)
        if entry is None and self._content_key is not None:
            key = fmt.track_key(self._content_key, self._recording_id, track_id)
            entry = self._keys[track_id] = (key, AESGCM(key))
        return entry

    def _unwrap(
        self, private_key: X25519PrivateKey, public_raw: bytes, fp: bytes, entry: _Recipient
    ) -> bytes | None:
        try:
            shared = private_key.exchange(X25519PublicKey.from_public_bytes(entry.ephemeral))
        except ValueError:  # low-order point: only a forged header contains one
            return None
        kek = fmt.wrap_key(shared, self._recording_id, entry.ephemeral, public_raw)
        try:
            return AESGCM(kek).decrypt(
                entry.nonce, entry.wrapped, fmt.wrap_aad(self._recording_id, fp)
            )
        except InvalidTag:
            return None

    def _open(self) -> BinaryIO:
        try:
            return self._path.open("rb")
        except FileNotFoundError as e:
            raise SidecarIOError(f"sidecar not found: {self._path}") from e
        except OSError as e:
            raise SidecarIOError(f"cannot read sidecar {self._path}: {e.strerror}") from e

    def _read_header(self) -> tuple[bytes, bytes, list[_Recipient]]:
        with self._open() as f:
            fixed = f.read(fmt.HEADER_FIXED.size)
            magic = fixed[: len(fmt.MAGIC)]
            if magic != fmt.MAGIC[: len(magic)] or not fixed:
                raise FormatError(
                    f"expected a streamdeid sidecar (magic {fmt.MAGIC!r}) at {self._path}, "
                    f"but found {magic!r}"
                )
            if len(fixed) < fmt.HEADER_FIXED.size:
                raise self._truncated_header(len(fixed))
            _, version, recording_id, n = fmt.HEADER_FIXED.unpack(fixed)
            if version != fmt.VERSION:
                raise FormatError(
                    f"expected sidecar format version {fmt.VERSION} at {self._path}, "
                    f"but found {version}"
                )
            if n == 0:
                raise FormatError(
                    f"expected at least one recipient in sidecar {self._path}, but found 0"
                )
            rest_size = n * fmt.RECIPIENT.size + fmt.HEADER_MAC_SIZE
            rest = f.read(rest_size)
        if len(rest) < rest_size:
            raise self._truncated_header(len(fixed) + len(rest))
        recipients = [
            _Recipient(*fmt.RECIPIENT.unpack_from(rest, i * fmt.RECIPIENT.size)) for i in range(n)
        ]
        return fixed + rest, recording_id, recipients

    def _truncated_header(self, size: int) -> TruncatedError:
        return TruncatedError(
            f"sidecar {self._path} ends inside its header at byte {size}: 0 records read",
            records_read=0,
            offset=size,
        )

    def _scan(self) -> Iterator[_RegionChunk | _EndChunk]:
        """Parse chunks without keys; raise TruncatedError when the end marker is missing."""
        with self._open() as f:
            offset = f.seek(len(self._header))
            n = 0
            while True:
                head = f.read(fmt.CHUNK_HEAD.size)
                if len(head) < fmt.CHUNK_HEAD.size:
                    raise self._truncated(n, offset, mid_chunk=bool(head))
                kind, length = fmt.CHUNK_HEAD.unpack(head)
                if kind not in (fmt.CHUNK_REGION, fmt.CHUNK_END) or length > fmt.MAX_CHUNK_BODY:
                    raise FormatError(
                        f"sidecar {self._path}: expected a chunk (type 1 or 2, at most "
                        f"{fmt.MAX_CHUNK_BODY} bytes) at byte {offset}, but found type {kind} "
                        f"of {length} bytes: the file is corrupt"
                    )
                body = f.read(length)
                if len(body) < length:
                    raise self._truncated(n, offset, mid_chunk=True)
                if kind == fmt.CHUNK_REGION:
                    yield self._parse_region(offset, body)
                    n += 1
                else:
                    trailing = len(f.read())
                    yield self._parse_end(offset, body, trailing)
                    return
                offset += fmt.CHUNK_HEAD.size + length

    def _truncated(self, n: int, offset: int, mid_chunk: bool) -> TruncatedError:
        how = "ends inside a record" if mid_chunk else "has no end marker"
        return TruncatedError(
            f"sidecar {self._path} {how} at byte {offset}, after {n} complete records: the "
            "writer was killed before closing it, or the file was cut",
            records_read=n,
            offset=offset,
        )

    def _parse_region(self, offset: int, body: bytes) -> _RegionChunk:
        if len(body) < fmt.REGION_MIN_BODY:
            raise FormatError(
                f"sidecar {self._path}: expected a record of at least {fmt.REGION_MIN_BODY} "
                f"bytes at byte {offset}, but found {len(body)}: the file is corrupt"
            )
        size = fmt.REGION_FIELDS.size
        packed = body[:size]
        return _RegionChunk(
            offset,
            fmt.RegionFields.unpack(packed),
            packed,
            body[size : size + fmt.NONCE_SIZE],
            body[size + fmt.NONCE_SIZE :],
        )

    def _parse_end(self, offset: int, body: bytes, trailing: int) -> _EndChunk:
        fixed = fmt.END_FIXED.size
        if len(body) >= fixed:
            total, n = fmt.END_FIXED.unpack_from(body)
            expected = fixed + n * fmt.END_ENTRY.size + fmt.END_MAC_SIZE
        else:
            total, n, expected = 0, 0, fixed + fmt.END_MAC_SIZE
        if len(body) != expected:
            raise FormatError(
                f"sidecar {self._path}: expected an end marker of {expected} bytes at byte "
                f"{offset}, but found {len(body)}: the file is corrupt"
            )
        entries: dict[int, tuple[int, bytes]] = {}
        for i in range(n):
            track_id, count, mac = fmt.END_ENTRY.unpack_from(body, fixed + i * fmt.END_ENTRY.size)
            if track_id in entries:
                raise FormatError(
                    f"sidecar {self._path}: the end marker lists track {track_id} twice"
                )
            entries[track_id] = (count, mac)
        mac_at = len(body) - fmt.END_MAC_SIZE
        return _EndChunk(offset, total, entries, body[:mac_at], body[mac_at:], trailing)


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
