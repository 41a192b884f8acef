"""Parsing a sidecar's bytes without any key: the header, its recipients, and the chunk stream.

Everything here works on cleartext structure only, so it is shared by every way of reading a
sidecar: summarising its tracks before any key is given, unlocking the header, and verifying
records. It rejects what is structurally wrong (not a sidecar, unknown version, a corrupt chunk)
and reports where a cut file ends; authenticity is the caller's business. The byte layout itself
comes from :mod:`streamdeid.crypto.format`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import FormatError, SidecarIOError, TruncatedError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One header entry: the content key wrapped for the key with this fingerprint."""

    fingerprint: bytes
    ephemeral: bytes
    nonce: bytes
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class SidecarHeader:
    """The header as read from disk; ``raw`` is every byte of it, including the MAC."""

    raw: bytes
    recording_id: bytes
    recipients: list[Recipient]


@dataclass(frozen=True, slots=True)
class RegionChunk:
    """One region record: cleartext fields (``packed`` as stored, for the AAD) and ciphertext."""

    offset: int
    fields: fmt.RegionFields
    packed: bytes
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """A run of the input's packets: cleartext fields (``packed``, for the AAD) and ciphertext."""

    offset: int
    seq: int
    first_packet: int
    n_packets: int
    keyframe: bool
    packed: bytes
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class IndexChunk:
    """The masked boxes of one frame, in the clear; ``body`` is what the record MAC covers."""

    offset: int
    seq: int
    frame_index: int
    pts: int
    tb_num: int
    tb_den: int
    boxes: list[tuple[int, tuple[int, int, int, int]]]  # (track id, (x1, y1, x2, y2))
    body: bytes
    mac: bytes


Chunk = RegionChunk | SourceChunk | IndexChunk


@dataclass(frozen=True, slots=True)
class EndChunk:
    """The end marker, split into what its MACs cover and the MACs themselves."""

    offset: int
    total: int
    entries: dict[int, tuple[int, bytes]]  # track id -> (count, per-track MAC)
    body: bytes  # everything the end MAC covers
    mac: bytes
    trailing: int  # bytes after the end marker (0 in an intact file)


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """One person in a sidecar, from the cleartext record fields (nothing is decrypted)."""

    track_id: int
    first_pts: int
    last_pts: int
    count: int
    time_base: Fraction
    first_xyxy: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the track was first masked


def open_sidecar_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading, turning OS errors into :class:`SidecarIOError`."""
    try:
        return path.open("rb")
    except FileNotFoundError as e:
        raise SidecarIOError(f"sidecar not found: {path}") from e
    except OSError as e:
        raise SidecarIOError(f"cannot read sidecar {path}: {e.strerror}") from e


def read_header(path: Path) -> SidecarHeader:
    """Read and structurally check the header (its MAC needs the content key: not checked here).

    Raises:
        SidecarIOError: The file cannot be opened.
        FormatError: Not a sidecar, an unsupported version, or no recipients.
        TruncatedError: The file ends inside the header.
    """
    with open_sidecar_file(path) as f:
        fixed = f.read(fmt.HEADER_FIXED.size)
        magic = fixed[: len(fmt.MAGIC)]
        if magic != fmt.MAGIC[: len(magic)] or not fixed:
            found = repr(magic) if fixed else "an empty file"
            raise FormatError(
                f"expected a streamdeid sidecar (magic {fmt.MAGIC!r}) at {path}, but found {found}"
            )
        if len(fixed) < fmt.HEADER_FIXED.size:
            raise _truncated_header(path, len(fixed))
        _, version, recording_id, n = fmt.HEADER_FIXED.unpack(fixed)
        if version != fmt.VERSION:
            raise FormatError(
                f"expected sidecar format version {fmt.VERSION} at {path}, but found {version}"
            )
        if n == 0:
            raise FormatError(f"expected at least one recipient in sidecar {path}, but found 0")
        rest_size = n * fmt.RECIPIENT.size + fmt.HEADER_MAC_SIZE
        rest = f.read(rest_size) if rest_size <= _remaining(f) else b""
    if len(rest) < rest_size:
        raise _truncated_header(path, len(fixed) + len(rest))
    recipients = [
        Recipient(*fmt.RECIPIENT.unpack_from(rest, i * fmt.RECIPIENT.size)) for i in range(n)
    ]
    return SidecarHeader(fixed + rest, recording_id, recipients)


def scan_chunks(path: Path, header_size: int) -> Iterator[Chunk | EndChunk]:
    """Parse the chunks after the header, in file order, without keys.

    The file is reopened on every call, so a sidecar still being written is read up to its last
    flush. The end marker, when present, is the last chunk yielded.

    Raises:
        FormatError: The chunk structure is malformed.
        TruncatedError: The file ends before the end marker (raised after every whole record).
    """
    with open_sidecar_file(path) as f:
        offset = f.seek(header_size)
        n = 0
        while True:
            head = f.read(fmt.CHUNK_HEAD.size)
            if len(head) < fmt.CHUNK_HEAD.size:
                raise _truncated(path, n, offset, mid_chunk=bool(head))
            kind, length = fmt.CHUNK_HEAD.unpack(head)
            if kind not in fmt.CHUNK_TYPES or length > fmt.MAX_CHUNK_BODY:
                raise FormatError(
                    f"sidecar {path}: expected a chunk (type 1 to 4, at most "
                    f"{fmt.MAX_CHUNK_BODY} bytes) at byte {offset}, but found type {kind} "
                    f"of {length} bytes: the file is corrupt"
                )
            # A length field says how much to allocate: never more than the file still holds.
            if length > _remaining(f):
                raise _truncated(path, n, offset, mid_chunk=True)
            body = f.read(length)
            if len(body) < length:
                raise _truncated(path, n, offset, mid_chunk=True)
            if kind != fmt.CHUNK_END:
                yield _PARSERS[kind](path, offset, body)
                n += 1
            else:
                # Whatever follows the marker is only counted (from the file size), never read:
                # a sparse 1 GiB tail must not become 1 GiB of memory.
                yield _parse_end(path, offset, body, _remaining(f))
                return
            offset += fmt.CHUNK_HEAD.size + length


def summarise_tracks(chunks: Iterator[Chunk | EndChunk]) -> list[TrackSummary]:
    """One summary per track id, sorted, from the region records before the end marker.

    A truncated file is summarised up to the cut (a warning is logged, nothing raised): this is
    what a reviewer looks at first to decide which grant to issue.

    Raises:
        FormatError: A record has a time base out of range, or the chunk structure is malformed.
    """
    first: dict[int, tuple[int, Fraction, tuple[int, int, int, int]]] = {}
    last_pts: dict[int, int] = {}
    counts: dict[int, int] = {}
    try:
        for chunk in chunks:
            if isinstance(chunk, EndChunk):
                break
            for track_id, pts, tb_num, tb_den, box in _boxes_of(chunk):
                try:
                    tb = check_time_base(tb_num, tb_den)
                except FormatError as e:
                    seq = chunk.fields.seq if isinstance(chunk, RegionChunk) else chunk.seq
                    raise FormatError(f"record seq {seq}: {e}") from None
                first.setdefault(track_id, (pts, tb, box))
                last_pts[track_id] = pts
                counts[track_id] = counts.get(track_id, 0) + 1
    except TruncatedError as e:
        log.warning("%s; summarising the %d complete records", e, e.records_read)
    return [
        TrackSummary(t, first[t][0], last_pts[t], counts[t], first[t][1], first[t][2])
        for t in sorted(first)
    ]


def _boxes_of(chunk: Chunk) -> list[tuple[int, int, int, int, tuple[int, int, int, int]]]:
    """(track id, pts, time base num, den, box) of every masked box a chunk names."""
    if isinstance(chunk, RegionChunk):
        f = chunk.fields
        return [(f.track_id, f.pts, f.tb_num, f.tb_den, (f.x1, f.y1, f.x2, f.y2))]
    if isinstance(chunk, IndexChunk):
        return [(t, chunk.pts, chunk.tb_num, chunk.tb_den, box) for t, box in chunk.boxes]
    return []


def check_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """Return ``box`` (x1, y1, x2, y2) if it is non-empty and inside a ``width`` x ``height`` frame.

    For cleartext record fields before they index an image: without a key they are
    unauthenticated (``tracks``), and even authenticated ones may not fit the video at hand.

    Raises:
        FormatError: The box is empty, inverted or reaches outside the frame.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise FormatError(
            f"expected a box with 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height}, "
            f"got {(x1, y1, x2, y2)}"
        )
    return x1, y1, x2, y2


def check_time_base(num: int, den: int) -> Fraction:
    """Return ``num/den`` as a Fraction if both are in 1..2**32-1 (what a record can hold).

    Raises:
        FormatError: Either is zero, negative or too large (no ZeroDivisionError escapes).
    """
    if not (0 < num <= fmt.MAX_U32 and 0 < den <= fmt.MAX_U32):
        raise FormatError(
            f"expected a time base num/den with both in 1..{fmt.MAX_U32}, got {num}/{den}"
        )
    return Fraction(num, den)


def _remaining(f: BinaryIO) -> int:
    """Bytes of ``f`` after the current position, from its size (nothing is read)."""
    return max(0, os.fstat(f.fileno()).st_size - f.tell())


def _truncated_header(path: Path, size: int) -> TruncatedError:
    return TruncatedError(
        f"sidecar {path} ends inside its header at byte {size}: 0 records read",
        records_read=0,
        offset=size,
    )


def _truncated(path: Path, n: int, offset: int, mid_chunk: bool) -> TruncatedError:
    how = "ends inside a record" if mid_chunk else "has no end marker"
    return TruncatedError(
        f"sidecar {path} {how} at byte {offset}, after {n} complete records: the "
        "writer was killed before closing it, or the file was cut",
        records_read=n,
        offset=offset,
    )


def _parse_region(path: Path, offset: int, body: bytes) -> RegionChunk:
    packed, nonce, sealed = _split(path, offset, body, fmt.REGION_FIELDS.size, "a record")
    return RegionChunk(offset, fmt.RegionFields.unpack(packed), packed, nonce, sealed)


def _parse_source(path: Path, offset: int, body: bytes) -> SourceChunk:
    packed, nonce, sealed = _split(path, offset, body, fmt.SOURCE_FIELDS.size, "a source record")
    seq, first, n, key = fmt.SOURCE_FIELDS.unpack(packed)
    return SourceChunk(offset, seq, first, n, bool(key), packed, nonce, sealed)


def _split(
    path: Path, offset: int, body: bytes, fields: int, what: str
) -> tuple[bytes, bytes, bytes]:
    """(cleartext fields, nonce, ciphertext + tag + record MAC) of an encrypted record."""
    least = fields + fmt.NONCE_SIZE + fmt.TAG_SIZE + fmt.RECORD_MAC_SIZE
    if len(body) < least:
        raise FormatError(
            f"sidecar {path}: expected {what} of at least {least} bytes at byte {offset}, "
            f"but found {len(body)}: the file is corrupt"
        )
    return body[:fields], body[fields : fields + fmt.NONCE_SIZE], body[fields + fmt.NONCE_SIZE :]


def _parse_index(path: Path, offset: int, body: bytes) -> IndexChunk:
    fixed = fmt.INDEX_FIELDS.size
    n = fmt.INDEX_FIELDS.unpack_from(body)[5] if len(body) >= fixed else 0
    expected = fixed + n * fmt.INDEX_BOX.size + fmt.RECORD_MAC_SIZE
    if len(body) < fixed or len(body) != expected:
        raise FormatError(
            f"sidecar {path}: expected an index record of {expected} bytes at byte {offset}, "
            f"but found {len(body)}: the file is corrupt"
        )
    seq, frame_index, pts, tb_num, tb_den, _ = fmt.INDEX_FIELDS.unpack_from(body)
    boxes = []
    for i in range(n):
        track_id, *box = fmt.INDEX_BOX.unpack_from(body, fixed + i * fmt.INDEX_BOX.size)
        boxes.append((track_id, tuple(box)))
    mac_at = len(body) - fmt.RECORD_MAC_SIZE
    return IndexChunk(
        offset, seq, frame_index, pts, tb_num, tb_den, boxes, body[:mac_at], body[mac_at:]
    )


def _parse_end(path: Path, offset: int, body: bytes, trailing: int) -> EndChunk:
    fixed = fmt.END_FIXED.size
    if len(body) >= fixed:
        total, n = fmt.END_FIXED.unpack_from(body)
        expected = fixed + n * fmt.END_ENTRY.size + fmt.END_MAC_SIZE
    else:
        total, n, expected = 0, 0, fixed + fmt.END_MAC_SIZE
    if len(body) != expected:
        raise FormatError(
            f"sidecar {path}: expected an end marker of {expected} bytes at byte "
            f"{offset}, but found {len(body)}: the file is corrupt"
        )
    entries: dict[int, tuple[int, bytes]] = {}
    for i in range(n):
        track_id, count, mac = fmt.END_ENTRY.unpack_from(body, fixed + i * fmt.END_ENTRY.size)
        if track_id in entries:
            raise FormatError(f"sidecar {path}: the end marker lists track {track_id} twice")
        entries[track_id] = (count, mac)
    mac_at = len(body) - fmt.END_MAC_SIZE
    return EndChunk(offset, total, entries, body[:mac_at], body[mac_at:], trailing)


_PARSERS = {
    fmt.CHUNK_REGION: _parse_region,
    fmt.CHUNK_SOURCE: _parse_source,
    fmt.CHUNK_INDEX: _parse_index,
}
