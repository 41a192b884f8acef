"""Verifying the records of originals kept as source packets: the packet runs and the index.

Split from :mod:`~streamdeid.crypto.verify`, which walks the record stream and calls
:func:`verify_packets` for these two kinds. Only a full-key reader can authenticate them: a run
holds whole frames (no grant opens it), and an index record's MAC is under the content-key-only
record MAC key. A grant holder only counts its track's boxes, for the end marker.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import FormatError, TamperedError
from streamdeid.crypto.parse import IndexChunk, SourceChunk
from streamdeid.crypto.source import SourcePacket, StreamParams, unpack_run


@dataclass(frozen=True, slots=True)
class SourceRun:
    """Authenticated, decrypted input packets (see :mod:`streamdeid.crypto.source`)."""

    first_packet: int
    params: StreamParams
    packets: list[SourcePacket] = field(repr=False)


@dataclass(frozen=True, slots=True)
class FrameBoxes:
    """Authenticated boxes masked on one frame; the pixels are in the source packets."""

    frame_index: int
    pts: int
    time_base: Fraction
    boxes: list[tuple[int, tuple[int, int, int, int]]]  # (track id, box) of wanted tracks


class PacketVerifier:
    """Authenticates and opens source and index records for one pass over a sidecar.

    The record MAC key and the source key are derived once here, not per record: index records
    come one per frame. ``content_key`` is None for a reader holding grants only.
    """

    def __init__(self, path: Path, recording_id: bytes, content_key: bytes | None) -> None:
        self._path = path
        self._rid = recording_id
        self._mac_key = (
            None if content_key is None else fmt.record_mac_key(content_key, recording_id)
        )
        self._source = (
            None if content_key is None else AESGCM(fmt.source_key(content_key, recording_id))
        )

    def verify(
        self,
        chunk: SourceChunk | IndexChunk,
        counts: dict[int, int],
        wanted: set[int] | None,
        source: bool,
        index: bool,
    ) -> SourceRun | FrameBoxes | None:
        """Authenticate a source or index record (full key: its MAC), and with ``source`` or
        ``index`` return it decrypted or filtered to ``wanted`` tracks; adds boxes to
        ``counts``.

        Raises:
            TamperedError: The record MAC fails.
            FormatError: An authentic record that does not hold what the writer writes.
        """
        path = self._path
        if isinstance(chunk, IndexChunk):
            for track_id, _ in chunk.boxes:
                counts[track_id] = counts.get(track_id, 0) + 1
            if self._mac_key is None:
                return None
            _check_index_mac(chunk, path, self._rid, self._mac_key)
            return _frame_boxes(chunk, path, wanted) if index else None
        if self._mac_key is None or self._source is None:
            return None
        ciphertext, mac = fmt.split_sealed(chunk.ciphertext)
        expected = fmt.record_mac(self._mac_key, self._rid, chunk.packed, chunk.nonce, ciphertext)
        if not hmac.compare_digest(expected, mac):
            raise TamperedError(
                f"sidecar {path}: source record seq {chunk.seq} (byte {chunk.offset}) failed its "
                "record MAC: it was modified or comes from another recording",
                seq=chunk.seq,
            )
        if not source:
            return None
        aad = fmt.region_aad(self._rid, chunk.packed)
        try:
            plain = fmt.unpad(self._source.decrypt(chunk.nonce, ciphertext, aad))
            params, packets = unpack_run(plain, chunk.n_packets)
        except (InvalidTag, ValueError) as e:
            raise FormatError(
                f"sidecar {path}: source record seq {chunk.seq} (byte {chunk.offset}) passed its "
                f"MAC but does not decrypt to packets: {e or 'bad tag'}"
            ) from None
        return SourceRun(chunk.first_packet, params, packets)


def _check_index_mac(chunk: IndexChunk, path: Path, recording_id: bytes, mac_key: bytes) -> None:
    expected = fmt.index_mac(mac_key, recording_id, chunk.body)
    if not hmac.compare_digest(expected, chunk.mac):
        raise TamperedError(
            f"sidecar {path}: index record seq {chunk.seq} (frame {chunk.frame_index}, byte "
            f"{chunk.offset}) failed its MAC: it was modified",
            seq=chunk.seq,
            pts=chunk.pts,
        )


def _frame_boxes(chunk: IndexChunk, path: Path, wanted: set[int] | None) -> FrameBoxes:
    if not (chunk.tb_num and chunk.tb_den):
        raise FormatError(
            f"sidecar {path}: index record seq {chunk.seq} has a time base of "
            f"{chunk.tb_num}/{chunk.tb_den}"
        )
    boxes = [(t, b) for t, b in chunk.boxes if wanted is None or t in wanted]
    return FrameBoxes(chunk.frame_index, chunk.pts, Fraction(chunk.tb_num, chunk.tb_den), boxes)
