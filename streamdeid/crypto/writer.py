"""Appending encrypted originals to a new sidecar: the input's packets, or per-region crops.

The writer runs inside the anonymizer with only reviewers' public keys: it draws a random content
key and wraps it for each reviewer in the header. Then it appends AES-256-GCM records: runs of
the input's packets plus an index of masked boxes (:mod:`~streamdeid.crypto.source`), or one
crop per region under a per-track key. Plaintexts are padded to size buckets, and every record
carries a MAC under a content-key-only key, so a grant holder cannot forge one. The file is
append-only and flushed per frame and per run, so a killed process leaves it readable up to
there; ``close()`` appends the authenticated end marker that tells a complete file from a cut one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import SidecarIOError
from streamdeid.crypto.header import build_header, check_recipients, create_sidecar
from streamdeid.crypto.inputs import (
    check_frame,
    check_pts,
    check_region,
    check_time_base,
    compress,
)
from streamdeid.crypto.source import RunBuffer, SourcePacket, StreamParams, pack_run
from streamdeid.types import Region

log = logging.getLogger(__name__)


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
        fingerprints = check_recipients(recipients)
        recording_id = os.urandom(fmt.RECORDING_ID_SIZE)
        content_key = AESGCM.generate_key(bit_length=256)
        header = build_header(recording_id, content_key, recipients, fingerprints)
        self._open(Path(path), header, recording_id, content_key, lossy, overwrite, fsync)
        log.info(
            "reversible masking: sidecar %s, recording %s, recipients %s%s",
            self._path,
            self._recording_id.hex(),
            ", ".join(f.hex() for f in fingerprints),
            " (lossy)" if lossy else "",
        )

    @classmethod
    def for_package(
        cls,
        path: str | os.PathLike[str],
        header: bytes,
        recording_id: bytes,
        content_key: bytes,
        lossy: bool = False,
    ) -> SidecarWriter:
        """A new sidecar under an existing recording's header and content key.

        For grant packages (:mod:`streamdeid.grant_package`): one track's crops, cut from the
        kept source by a full-key holder, that the recording's grants and keys open as usual.
        """
        writer = cls.__new__(cls)
        writer._open(Path(path), header, recording_id, content_key, lossy, False, False, 0o600)
        return writer

    def _open(
        self,
        path: Path,
        header: bytes,
        recording_id: bytes,
        content_key: bytes,
        lossy: bool,
        overwrite: bool,
        fsync: bool,
        mode: int = 0o644,
    ) -> None:
        self._path = path
        self._lossy = lossy
        self._fsync = fsync
        self._recording_id = recording_id
        self._content_key = content_key
        self._record_mac_key = fmt.record_mac_key(content_key, recording_id)
        self._track_keys: dict[int, tuple[bytes, AESGCM]] = {}
        self._counts: dict[int, int] = {}
        self._seq = 0
        # Packets arrive from the decoding thread, regions from the pipeline's encrypt stage.
        self._lock = threading.RLock()
        self._source: tuple[StreamParams, AESGCM] | None = None
        self._runs = RunBuffer()
        self._closed = True  # until the header is on disk
        self._file = create_sidecar(path, overwrite, mode)
        self._closed = False
        self._write(header)
        self.flush()

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
        tb_num, tb_den = check_frame(pts, time_base, image)
        height, width = image.shape[:2]
        crops = []
        for region in regions:
            box, track_id = check_region(region, width, height)
            x1, y1, x2, y2 = box
            crops.append((box, track_id, compress(image[y1:y2, x1:x2], self._lossy, region)))
        self._write_crops(int(pts), tb_num, tb_den, crops)

    def write_crops(
        self,
        pts: int,
        time_base: Fraction | tuple[int, int],
        size: tuple[int, int],
        crops: Iterable[tuple[Region, np.ndarray]],
    ) -> None:
        """Like :meth:`write_regions`, from crops copied earlier: (region, its original pixels)
        for a frame of ``size`` (width, height). Live outputs use it to write originals only
        for frames that reached the video.

        Raises:
            ValueError: Writer closed, or a pts, time base, box or crop out of range.
            SidecarIOError: The file could not be written; the writer is closed.
        """
        if self._closed:
            raise ValueError(f"cannot write to sidecar {self._path}: the writer is closed")
        tb_num, tb_den = check_time_base(time_base)
        check_pts(pts)
        checked = []
        for region, crop in crops:
            box, track_id = check_region(region, *size)
            if crop.shape != (box[3] - box[1], box[2] - box[0], 3) or crop.dtype != np.uint8:
                raise ValueError(f"crop of shape {crop.shape} does not fit region {region.xyxy}")
            checked.append((box, track_id, compress(crop, self._lossy, region)))
        self._write_crops(int(pts), tb_num, tb_den, checked)

    def _write_crops(
        self, pts: int, tb_num: int, tb_den: int, crops: list[tuple[tuple, int, tuple]]
    ) -> None:
        if not crops:
            return
        with self._lock:
            chunks: list[bytes] = []
            for i, (box, track_id, (codec, plain)) in enumerate(crops):
                fields = fmt.RegionFields(self._seq + i, pts, tb_num, tb_den, track_id, *box, codec)
                packed = fields.pack()
                aad = fmt.region_aad(self._recording_id, packed)
                aead = self._track_aead(track_id)
                chunks.append(self._seal(fmt.CHUNK_REGION, packed, fmt.pad(plain), aead, aad))
            self._append(chunks, [t for _, t, _ in crops])

    @property
    def keeps_source(self) -> bool:
        """Whether originals are kept as source packets (:meth:`begin_source` was called)."""
        return self._source is not None

    def begin_source(self, params: StreamParams, first_frame: int = 0) -> None:
        """Keep the originals as the input's packets from here on (:mod:`~.source`).

        Call before the first packet, and again whenever the anonymizer opens a new decoder
        (a camera reconnected), with the index its first frame will get; in between, use
        :meth:`write_packet` for every packet the demuxer reads and :meth:`write_index` for
        every frame with regions.
        """
        key = fmt.source_key(self._content_key, self._recording_id)
        with self._lock:
            if self._runs.packets:
                self._seal_run()
            self._source = (replace(params, first_frame=int(first_frame)), AESGCM(key))

    def write_packet(self, packet: SourcePacket) -> None:
        """Buffer one input packet; a run is sealed, written and flushed at each keyframe.

        Thread-safe: the decoding thread calls this while the pipeline writes the index.

        Raises:
            ValueError: Writer closed, or :meth:`begin_source` was not called.
            SidecarIOError: The file could not be written; the writer is closed.
        """
        if self._source is None or self._closed:
            raise ValueError(f"sidecar {self._path}: not keeping source packets, or closed")
        with self._lock:
            if self._runs.due(packet):
                self._seal_run()
            self._runs.add(packet)

    def write_index(
        self,
        frame_index: int,
        pts: int,
        time_base: Fraction | tuple[int, int],
        size: tuple[int, int],
        regions: Iterable[Region],
    ) -> None:
        """Record which boxes of frame ``frame_index`` (0-based, decode order of the source)
        were masked; the pixels are in the source packets. ``size`` is (width, height).

        Raises:
            ValueError: Writer closed, or a pts, time base or box out of range.
            SidecarIOError: The file could not be written; the writer is closed.
        """
        if self._closed:
            raise ValueError(f"cannot write to sidecar {self._path}: the writer is closed")
        tb_num, tb_den = check_time_base(time_base)
        check_pts(pts)
        boxes = [check_region(r, *size) for r in regions]
        if not boxes:
            return
        with self._lock:
            head = fmt.INDEX_FIELDS.pack(
                self._seq, int(frame_index), int(pts), tb_num, tb_den, len(boxes)
            )
            body = head + b"".join(fmt.INDEX_BOX.pack(t, *box) for box, t in boxes)
            body += fmt.index_mac(self._record_mac_key, self._recording_id, body)
            chunk = fmt.CHUNK_HEAD.pack(fmt.CHUNK_INDEX, len(body)) + body
            self._append([chunk], [t for _, t in boxes], records=1)

    def flush(self) -> None:
        """Push written records to the OS (and to disk with ``fsync``); call once per frame.

        Raises:
            ValueError: The writer is closed.
            SidecarIOError: The OS refused the data; the writer is closed.
        """
        if self._closed:
            raise ValueError(f"cannot flush sidecar {self._path}: the writer is closed")
        try:
            with self._lock:
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
        with self._lock:
            if self._runs.packets:
                self._seal_run()
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

    def _seal(self, kind: int, packed: bytes, padded: bytes, aead: AESGCM, aad: bytes) -> bytes:
        """One encrypted chunk: cleartext fields, a fresh nonce, the ciphertext of the padded
        plaintext, and the record MAC over all of it."""
        nonce = os.urandom(fmt.NONCE_SIZE)
        ciphertext = aead.encrypt(nonce, padded, aad)
        mac = fmt.record_mac(self._record_mac_key, self._recording_id, packed, nonce, ciphertext)
        body = packed + nonce + ciphertext + mac
        return fmt.CHUNK_HEAD.pack(kind, len(body)) + body

    def _seal_run(self) -> None:
        """Encrypt and write the buffered packets as one source chunk, then flush (lock held)."""
        assert self._source is not None
        params, aead = self._source
        self._source = (replace(params, first_frame=-1), aead)  # later runs continue it
        first, packets = self._runs.take()
        packed = fmt.SOURCE_FIELDS.pack(self._seq, first, len(packets), int(packets[0].keyframe))
        aad = fmt.region_aad(self._recording_id, packed)
        chunk = self._seal(fmt.CHUNK_SOURCE, packed, fmt.pad(pack_run(params, packets)), aead, aad)
        self._append([chunk], [], records=1)
        self.flush()

    def _append(self, chunks: list[bytes], track_ids: list[int], records: int = 0) -> None:
        """Write whole chunks and count them (lock held); ``track_ids`` has one entry per box."""
        self._write(b"".join(chunks))
        self._seq += records or len(chunks)
        for track_id in track_ids:
            self._counts[track_id] = self._counts.get(track_id, 0) + 1

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

    def abort(self) -> None:
        """Close without the end marker (after a failure; the caller removes the file)."""
        self._abort()

    def _abort(self) -> None:
        """Stop after an I/O error: a half-written record would make every later one unreadable."""
        self._closed = True
        try:
            self._file.close()
        except OSError:
            log.debug("closing sidecar %s after a write error failed too", self._path)
