"""Verifying and decrypting a sidecar, with a private key (all tracks) or per-track grants.

The reader verifies everything it returns: a record is yielded only after its tag checks, and its
position (sequence number) and the end marker's counts expose removed, duplicated, reordered or
foreign records. Records of tracks the key does not open are parsed but cannot be authenticated.
"""

from __future__ import annotations

import dataclasses
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
from streamdeid.crypto.codec import CodecError, decode
from streamdeid.crypto.errors import (
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
from streamdeid.crypto.keys import fingerprint, write_exclusive

log = logging.getLogger(__name__)


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
    first_xyxy: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the track was first masked


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
        """Derive the grant for one track (see :func:`export_grant`).

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
                t,
                first[t].pts,
                last_pts[t],
                counts[t],
                Fraction(first[t].tb_num, first[t].tb_den),
                (first[t].x1, first[t].y1, first[t].x2, first[t].y2),
            )
            for t in sorted(first)
        ]

    def can_open(self, track_id: int) -> bool:
        """Whether the keys given so far decrypt ``track_id`` (without reading any record)."""
        return self._content_key is not None or int(track_id) in self._keys

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
        return self._iter_records(wanted)

    def _iter_records(self, wanted: set[int] | None) -> Iterator[RevealedRegion]:
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
            elif self._content_key is None:
                self._check_not_relabelled(chunk)
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

    def _check_not_relabelled(self, chunk: _RegionChunk) -> None:
        """Grant holders: refuse one of their records whose track id was changed to hide it.

        The changed id puts the record out of the grant's reach, so without this check its loss
        would only surface at the end marker, after later records were already shown. Trying the
        granted keys with the original id restored costs one failing GCM check per record.
        """
        f = chunk.fields
        for track_id, (_, aead) in self._keys.items():
            packed = dataclasses.replace(f, track_id=track_id).pack()
            try:
                aead.decrypt(
                    chunk.nonce, chunk.ciphertext, fmt.region_aad(self._recording_id, packed)
                )
            except InvalidTag:
                continue
            raise TamperedError(
                f"sidecar {self._path}: record seq {f.seq} (pts {f.pts}, byte {chunk.offset}) "
                f"of track {track_id} is labelled track {f.track_id}: it was modified",
                seq=f.seq,
                pts=f.pts,
            )

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
                found = repr(magic) if fixed else "an empty file"
                raise FormatError(
                    f"expected a streamdeid sidecar (magic {fmt.MAGIC!r}) at {self._path}, "
                    f"but found {found}"
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


def export_grant(
    reader_unlocked: SidecarReader, track_id: int, path: str | os.PathLike[str]
) -> TrackGrant:
    """Write a grant opening only ``track_id`` of the reader's recording (mode 0600, no overwrite).

    Args:
        reader_unlocked: A reader unlocked with a private key (a grant cannot issue grants).
        track_id: The person to hand out; 0 is the bucket of untracked regions.
        path: New file to create.

    Returns:
        The grant written.

    Raises:
        LockedError: The reader was not unlocked with a private key.
        UnknownTrackError: The track does not occur in the sidecar.
        KeyFileError: ``path`` exists or cannot be written.
    """
    grant = reader_unlocked.make_grant(track_id)
    path = Path(path)
    write_exclusive(path, grant.to_bytes(), 0o600)
    log.info(
        "wrote grant %s for track %d of recording %s", path, track_id, grant.recording_id.hex()
    )
    return grant
