"""Authenticating and decrypting a sidecar's record stream with the keys a reader holds.

With the content key, every record's MAC (under a key no grant contains) is checked before
anything else: a record that a grant holder re-encrypted with its track key fails here. Then the
GCM tag is checked, and the position (sequence number) and the end marker's counts expose removed,
duplicated, reordered or foreign records. With grants only, the record MAC cannot be checked: a
granted record is authenticated by GCM under its track key, which every holder of that grant
also has (see the threat model in :mod:`streamdeid.crypto`). Records of tracks the keys do not
open are parsed but cannot be authenticated. Decrypted pixels stay in memory: nothing here writes
a file, and no key or plaintext is logged.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.codec import CodecError, decode
from streamdeid.crypto.errors import FormatError, TamperedError
from streamdeid.crypto.parse import Chunk, EndChunk, RegionChunk
from streamdeid.crypto.verify_packets import FrameBoxes, PacketVerifier, SourceRun


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


class TrackKeys:
    """The keys a reader holds: the content key (opens every track) and/or per-track grants.

    Track keys derived from the content key are cached beside the granted ones, and so is the
    record MAC key. Attributes are slots and there is no custom ``repr``, so printing or logging
    this object shows no key.
    """

    __slots__ = ("_content_key", "_keys", "_recording_id", "record_mac_key")

    def __init__(self, recording_id: bytes) -> None:
        self._recording_id = recording_id
        self._content_key: bytes | None = None
        self.record_mac_key: bytes | None = None  # only with the content key
        self._keys: dict[int, tuple[bytes, AESGCM]] = {}  # track id -> key (cached or granted)

    @property
    def content_key(self) -> bytes | None:
        return self._content_key

    @content_key.setter
    def content_key(self, key: bytes | None) -> None:
        self._content_key = key
        self.record_mac_key = None if key is None else fmt.record_mac_key(key, self._recording_id)

    @property
    def unlocked(self) -> bool:
        """Whether any key (content key or grant) was given."""
        return self.content_key is not None or bool(self._keys)

    @property
    def granted(self) -> dict[int, tuple[bytes, AESGCM]]:
        """Track id -> key; without a content key, exactly the tracks granted."""
        return self._keys

    def add_grant(self, track_id: int, key: bytes) -> None:
        self._keys[track_id] = (key, AESGCM(key))

    def can_open(self, track_id: int) -> bool:
        return self.content_key is not None or track_id in self._keys

    def get(self, track_id: int) -> tuple[bytes, AESGCM] | None:
        """The key of ``track_id`` (derived from the content key if needed), or None."""
        entry = self._keys.get(track_id)
        if entry is None and self.content_key is not None:
            key = fmt.track_key(self.content_key, self._recording_id, track_id)
            entry = self._keys[track_id] = (key, AESGCM(key))
        return entry


class RecordVerifier:
    """Verify one pass over a sidecar's chunks and yield the regions the keys open.

    Args:
        path: The sidecar, named in every error.
        recording_id: From its header; bound into every record's associated data.
        keys: What the reader was unlocked with.
    """

    def __init__(self, path: Path, recording_id: bytes, keys: TrackKeys) -> None:
        self._path = path
        self._recording_id = recording_id
        self._keys = keys
        self._packets = PacketVerifier(path, recording_id, keys.content_key)

    def verify(
        self,
        chunks: Iterator[Chunk | EndChunk],
        wanted: set[int] | None,
        *,
        source: bool = False,
        index: bool = False,
    ) -> Iterator[RevealedRegion | SourceRun | FrameBoxes]:
        """Yield the decrypted regions of ``wanted`` tracks (None: all the keys open), and with
        ``source``/``index`` the source runs and frame boxes (full key only).

        Every record is authenticated as far as the keys allow, whatever is yielded.

        Raises:
            TamperedError: A record, its position, or the end marker fails verification.
        """
        expected_seq = 0
        counts: dict[int, int] = {}
        for chunk in chunks:
            if isinstance(chunk, EndChunk):
                self._verify_end(chunk, expected_seq, counts)
                return
            if not isinstance(chunk, RegionChunk):
                self._check_seq(chunk.seq, expected_seq, chunk.offset)
                expected_seq += 1
                item = self._packets.verify(chunk, counts, wanted, source, index)
                if item is not None:
                    yield item
                continue
            f = chunk.fields
            if self._keys.record_mac_key is not None:
                self._check_record_mac(chunk, self._keys.record_mac_key)
            keys = self._keys.get(f.track_id)
            plain = None
            if keys is not None:
                plain = self._decrypt(chunk, keys[1])
            elif self._keys.content_key is None:
                self._check_not_relabelled(chunk)
            self._check_seq(f.seq, expected_seq, chunk.offset, f.pts)
            expected_seq += 1
            counts[f.track_id] = counts.get(f.track_id, 0) + 1
            if plain is not None and (wanted is None or f.track_id in wanted):
                yield self._reveal(chunk, plain)

    def _check_seq(self, seq: int, expected: int, offset: int, pts: int | None = None) -> None:
        """Records are numbered 0, 1, 2, ... in file order, whatever their kind."""
        if seq != expected:
            at = "" if pts is None else f" (pts {pts})"
            raise TamperedError(
                f"sidecar {self._path}: expected record seq {expected} at byte {offset}, but "
                f"found seq {seq}{at}: records were removed, duplicated or reordered",
                seq=seq,
                pts=pts,
            )

    def _where(self, chunk: RegionChunk) -> str:
        f = chunk.fields
        return (
            f"sidecar {self._path}: record seq {f.seq} (pts {f.pts}, track {f.track_id}, "
            f"byte {chunk.offset})"
        )

    def _check_record_mac(self, chunk: RegionChunk, mac_key: bytes) -> None:
        """Full-key readers: the record was written by the anonymizer, not by a grant holder."""
        ciphertext, mac = fmt.split_sealed(chunk.ciphertext)
        expected = fmt.record_mac(
            mac_key, self._recording_id, chunk.packed, chunk.nonce, ciphertext
        )
        if not hmac.compare_digest(expected, mac):
            raise TamperedError(
                f"{self._where(chunk)} failed its record MAC: it was not written by the "
                "anonymizer (forged with a track key, modified, or from another recording)",
                seq=chunk.fields.seq,
                pts=chunk.fields.pts,
            )

    def _decrypt(self, chunk: RegionChunk, aead: AESGCM) -> bytes:
        f = chunk.fields
        aad = fmt.region_aad(self._recording_id, chunk.packed)
        ciphertext = fmt.split_sealed(chunk.ciphertext)[0]
        try:
            padded = aead.decrypt(chunk.nonce, ciphertext, aad)
        except InvalidTag:
            raise TamperedError(
                f"{self._where(chunk)} failed authentication: it was modified or comes from "
                "another recording",
                seq=f.seq,
                pts=f.pts,
            ) from None
        try:
            return fmt.unpad(padded)
        except ValueError as e:
            raise self._malformed(chunk, f"its padding is invalid: {e}") from None

    def _malformed(self, chunk: RegionChunk, what: str) -> FormatError | TamperedError:
        """An authentic-looking record whose content is wrong.

        With the content key the record MAC passed, so the anonymizer wrote it: a writer bug or a
        newer format. With grants only, any holder of the track key could have made it.
        """
        f = chunk.fields
        if self._keys.content_key is not None:
            return FormatError(f"{self._where(chunk)} is authentic but {what}")
        return TamperedError(
            f"{self._where(chunk)} decrypts under the granted track key but {what}: a holder "
            "of that key forged it",
            seq=f.seq,
            pts=f.pts,
        )

    def _check_not_relabelled(self, chunk: RegionChunk) -> None:
        """Grant holders: refuse one of their records whose track id was changed to hide it.

        The changed id puts the record out of the grant's reach, so without this check its loss
        would only surface at the end marker, after later records were already shown. Trying the
        granted keys with the original id restored costs one failing GCM check per record.
        """
        f = chunk.fields
        for track_id, (_, aead) in self._keys.granted.items():
            packed = dataclasses.replace(f, track_id=track_id).pack()
            try:
                aead.decrypt(
                    chunk.nonce,
                    fmt.split_sealed(chunk.ciphertext)[0],
                    fmt.region_aad(self._recording_id, packed),
                )
            except InvalidTag:
                continue
            raise TamperedError(
                f"sidecar {self._path}: record seq {f.seq} (pts {f.pts}, byte {chunk.offset}) "
                f"of track {track_id} is labelled track {f.track_id}: it was modified",
                seq=f.seq,
                pts=f.pts,
            )

    def _reveal(self, chunk: RegionChunk, plain: bytes) -> RevealedRegion:
        f = chunk.fields
        # What the writer never stores; reachable only with grants (the record MAC stops it).
        if f.tb_num == 0 or f.tb_den == 0:
            raise self._malformed(chunk, f"its time base {f.tb_num}/{f.tb_den} is not positive")
        if f.x2 <= f.x1 or f.y2 <= f.y1 or not plain:
            raise self._malformed(chunk, f"its box {(f.x1, f.y1, f.x2, f.y2)} or crop is empty")
        shape = (f.y2 - f.y1, f.x2 - f.x1, 3)
        try:
            pixels = decode(f.codec, plain, shape)
        except CodecError as e:
            raise self._malformed(chunk, f"its pixels do not decode: {e}") from None
        return RevealedRegion(
            f.pts, Fraction(f.tb_num, f.tb_den), f.track_id, (f.x1, f.y1, f.x2, f.y2), pixels
        )

    def _verify_end(self, end: EndChunk, total: int, counts: dict[int, int]) -> None:
        where = f"sidecar {self._path}: the end marker (byte {end.offset})"
        if self._keys.content_key is not None:
            self._verify_end_with_content_key(end, total, counts, where, self._keys.content_key)
        else:
            self._verify_end_with_grants(end, total, counts, where)
        if end.trailing:
            raise TamperedError(
                f"{where} is followed by {end.trailing} more bytes: data was appended"
            )

    def _verify_end_with_content_key(
        self, end: EndChunk, total: int, counts: dict[int, int], where: str, content_key: bytes
    ) -> None:
        """Check the whole marker: its MAC, the total and every track's count."""
        mac = fmt.end_mac(content_key, self._recording_id, end.body)
        if not hmac.compare_digest(mac, end.mac):
            raise TamperedError(f"{where} failed authentication: it was modified")
        listed = {t: c for t, (c, _) in end.entries.items()}
        if end.total != total or listed != counts:
            raise TamperedError(
                f"{where} lists {end.total} records, but {total} were found (or the per-track "
                "counts differ): records were removed or added"
            )

    def _verify_end_with_grants(
        self, end: EndChunk, total: int, counts: dict[int, int], where: str
    ) -> None:
        """Check the entry of each granted track with its per-track MAC (all a grant can check)."""
        for track_id in sorted(self._keys.granted):
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
            key = self._keys.granted[track_id][0]
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
