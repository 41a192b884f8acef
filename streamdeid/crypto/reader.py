"""Verifying and decrypting a sidecar, with a private key (all tracks) or per-track grants.

:class:`SidecarReader` ties the steps together, each in its own module: keyless parsing of the
header and chunk stream (:mod:`~streamdeid.crypto.parse`), unwrapping the content key with a
private key (:mod:`~streamdeid.crypto.unwrap`), and authenticating and decrypting the records
(:mod:`~streamdeid.crypto.verify`). Issuing a grant lives here because it needs an unlocked reader.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid import audit
from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import (
    CryptoError,
    FormatError,
    GrantMismatchError,
    LockedError,
    TamperedError,
    UnknownTrackError,
)
from streamdeid.crypto.grants import TrackGrant, load_grant
from streamdeid.crypto.keys import fingerprint, write_exclusive
from streamdeid.crypto.parse import (
    Chunk,
    EndChunk,
    IndexChunk,
    RegionChunk,
    SourceChunk,
    TrackSummary,
    read_header,
    scan_chunks,
    summarise_tracks,
)
from streamdeid.crypto.unwrap import unwrap_content_key
from streamdeid.crypto.verify import RecordVerifier, RevealedRegion, TrackKeys
from streamdeid.crypto.verify_packets import FrameBoxes, SourceRun

log = logging.getLogger(__name__)


class SidecarReader:
    """Verify and decrypt a sidecar, all tracks (private key) or single tracks (grants).

    The header is parsed on construction; records are read lazily and the file is reopened for
    every pass, so a sidecar still being written can be read up to its last flush.

    Raises:
        SidecarIOError: The file cannot be opened.
        FormatError: Not a sidecar, or an unsupported version.
        TruncatedError: The file ends inside the header.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, log_anchor: str | os.PathLike[str] | None = None
    ) -> None:
        self._path = Path(path)
        self._log_anchor = Path(log_anchor) if log_anchor is not None else self._path
        self._header = read_header(self._path)
        self._keys = TrackKeys(self._header.recording_id)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def log_anchor(self) -> Path:
        """The recording's sidecar, beside which its audit log lives by default (for a grant
        package opened with ``log_anchor``, the recording's sidecar rather than the package)."""
        return self._log_anchor

    @property
    def recording_id(self) -> str:
        return self._header.recording_id.hex()

    @property
    def recipients(self) -> list[str]:
        """Fingerprints of the keys the header says can unlock it (unauthenticated until unlock)."""
        return [r.fingerprint.hex() for r in self._header.recipients]

    @property
    def header_size(self) -> int:
        return len(self._header.raw)

    def unlock(self, private_key: X25519PrivateKey) -> None:
        """Unwrap the content key with a reviewer's private key and authenticate the header.

        Raises:
            WrongKeyError: The key is not one of the recipients.
            TamperedError: The key's header entry or the header MAC does not verify.
        """
        self._keys.content_key = unwrap_content_key(self._path, self._header, private_key)
        log.debug(
            "unlocked sidecar %s with key %s", self._path, fingerprint(private_key.public_key())
        )

    def unlock_track(self, grant: TrackGrant | str | os.PathLike[str]) -> None:
        """Add a per-track grant (object or file); several grants may be added.

        Raises:
            KeyFileError: The grant file cannot be read.
            GrantMismatchError: The grant belongs to another recording.
            TamperedError: The sidecar header differs from the one the grant was issued for.
        """
        if not isinstance(grant, TrackGrant):
            grant = load_grant(grant)
        if grant.recording_id != self._header.recording_id:
            raise GrantMismatchError(
                f"expected a grant for recording {self.recording_id} (sidecar {self._path}), "
                f"but the grant is for recording {grant.recording_id.hex()}"
            )
        if not hmac.compare_digest(grant.header_digest, fmt.header_digest(self._header.raw)):
            raise TamperedError(
                f"sidecar {self._path}: the header differs from the one the grant for track "
                f"{grant.track_id} was issued for: the header was modified"
            )
        self._keys.add_grant(grant.track_id, grant.key)
        log.debug("unlocked track %d of sidecar %s with a grant", grant.track_id, self._path)

    def make_grant(self, track_id: int) -> TrackGrant:
        """Derive the grant for one track, in memory and unlogged: hand it out only through
        :func:`export_grant` or :func:`streamdeid.reveal.grant_track`, which log it first.

        Raises:
            LockedError: Not unlocked with a private key.
            UnknownTrackError: No record of the sidecar has this track id.
        """
        if self._keys.content_key is None:
            raise LockedError(
                f"expected sidecar {self._path} unlocked with a private key to issue a grant, "
                "but it is locked or opened with grants only"
            )
        known = [t.track_id for t in self.tracks()]
        if track_id not in known:
            raise UnknownTrackError(
                f"expected one of the track ids {known} of sidecar {self._path}, but got {track_id}"
            )
        entry = self._keys.get(track_id)
        assert entry is not None  # a content key derives every track's key
        digest = fmt.header_digest(self._header.raw)
        return TrackGrant(self._header.recording_id, digest, int(track_id), entry[0])

    def tracks(self) -> list[TrackSummary]:
        """Summarise the tracks from cleartext fields, without a key and without verifying.

        A truncated file is summarised up to the cut (a warning is logged, nothing raised): this
        is what a reviewer looks at first to decide which grant to issue.

        Raises:
            FormatError: The chunk structure is malformed.
        """
        return summarise_tracks(self._scan())

    def can_open(self, track_id: int) -> bool:
        """Whether the keys given so far decrypt ``track_id`` (without reading any record)."""
        return self._keys.can_open(int(track_id))

    def records(
        self,
        track_ids: Iterable[int] | None = None,
        *,
        audit_ctx: audit.AuditContext | None = None,
        who: str = "python api",
    ) -> Iterator[RevealedRegion]:
        """Yield the verified, decrypted regions of every track the keys open, in file order.

        The decryption is first logged: a signed entry is appended to the recording's audit log
        (see :mod:`streamdeid.audit`) *before* this returns; if it cannot be written, nothing is
        decrypted. Every record is authenticated before anything of it is returned. Errors are
        raised at the point they are found, after all earlier intact records were yielded: a file
        cut by a crash yields everything it holds and then raises :class:`TruncatedError`.

        Args:
            track_ids: Only yield these tracks (the others the key opens are still verified).
            audit_ctx: Signing key and log location; required.
            who: Who decrypts, for the log entry (a name or key fingerprint; never a secret).

        Raises:
            AuditRequiredError: No ``audit_ctx`` was given.
            AuditError: The audit entry cannot be written (nothing was decrypted).
            LockedError: Neither :meth:`unlock` nor :meth:`unlock_track` was called.
            TamperedError: A record, its position, or the end marker fails verification.
            TruncatedError: The file ends before the end marker (raised last).
            FormatError: The chunk structure is malformed.
        """
        self._check_unlocked()
        if self.keeps_source():
            raise FormatError(
                f"sidecar {self._path} keeps its originals as source packets, which only decode "
                "with a video decoder: use streamdeid.reveal.revealed_regions (or reveal_frames)"
            )
        wanted = None if track_ids is None else sorted({int(t) for t in track_ids})
        audit.log_first(self, audit_ctx, audit.entry("decrypt", who, wanted))
        return self._verified_records(wanted)

    def _verified_records(self, track_ids: Iterable[int] | None) -> Iterator[RevealedRegion]:
        """The decrypting pass itself, without logging: only for callers that logged already
        (:mod:`streamdeid.reveal` writes its own, more detailed entry first)."""
        self._check_unlocked()
        wanted = None if track_ids is None else {int(t) for t in track_ids}
        verifier = RecordVerifier(self._path, self._header.recording_id, self._keys)
        return verifier.verify(self._scan(), wanted)

    def keeps_source(self) -> bool:
        """Whether the originals are kept as the input's packets (read without a key, up to the
        first packet run, index or region record)."""
        try:
            for chunk in self._scan():
                if isinstance(chunk, SourceChunk | IndexChunk | RegionChunk):
                    return not isinstance(chunk, RegionChunk)
        except CryptoError:
            pass  # structural damage: the verifying pass reports it
        return False

    def source_runs(self) -> Iterator[SourceRun]:
        """The input's packets, verified and decrypted, in order (full key only; no logging:
        for callers that logged already, like :mod:`streamdeid.reveal`)."""
        self._check_content_key("read the source packets")
        verifier = RecordVerifier(self._path, self._header.recording_id, self._keys)
        for item in verifier.verify(self._scan(), set(), source=True):
            if isinstance(item, SourceRun):
                yield item

    def frame_boxes(self, track_ids: Iterable[int] | None) -> Iterator[FrameBoxes]:
        """The verified masked boxes per frame, of ``track_ids`` (None: all), in frame order;
        frames without a box of those tracks are left out. The whole file is verified, end
        marker included, when the iterator is exhausted."""
        self._check_content_key("read the frame index")
        wanted = None if track_ids is None else {int(t) for t in track_ids}
        verifier = RecordVerifier(self._path, self._header.recording_id, self._keys)
        for item in verifier.verify(self._scan(), wanted, index=True):
            if isinstance(item, FrameBoxes) and item.boxes:
                yield item

    def package_keys(self) -> tuple[bytes, bytes, bytes]:
        """(header bytes, recording id, content key): only for writing a grant package
        (:mod:`streamdeid.grant_package`), which must verify under this recording's keys."""
        self._check_content_key("write a grant package")
        assert self._keys.content_key is not None
        return self._header.raw, self._header.recording_id, self._keys.content_key

    def _check_content_key(self, what: str) -> None:
        if self._keys.content_key is None:
            raise LockedError(
                f"expected sidecar {self._path} unlocked with a private key to {what}, "
                "but it is locked or opened with grants only"
            )

    def _check_unlocked(self) -> None:
        if not self._keys.unlocked:
            raise LockedError(
                f"expected sidecar {self._path} to be unlocked before reading records, "
                "but no private key or grant was given"
            )

    def _scan(self) -> Iterator[Chunk | EndChunk]:
        return scan_chunks(self._path, len(self._header.raw))


def export_grant(
    reader_unlocked: SidecarReader,
    track_id: int,
    path: str | os.PathLike[str],
    *,
    audit_ctx: audit.AuditContext | None = None,
    who: str = "python api",
) -> TrackGrant:
    """Log, then write a grant opening only ``track_id`` of the reader's recording (mode 0600,
    no overwrite). Handing out a key is logged like a decryption: no entry, no grant.

    Args:
        reader_unlocked: A reader unlocked with a private key (a grant cannot issue grants).
        track_id: The person to hand out; 0 is the bucket of untracked regions.
        path: New file to create.
        audit_ctx: Signing key and log; required.
        who: Who issues it, for the log entry.

    Returns:
        The grant written.

    Raises:
        AuditRequiredError, AuditError: No ``audit_ctx``, or the entry cannot be written.
        LockedError: The reader was not unlocked with a private key.
        UnknownTrackError: The track does not occur in the sidecar.
        KeyFileError: ``path`` exists or cannot be written.
    """
    grant = reader_unlocked.make_grant(track_id)  # locked or unknown track: fail before logging
    output = os.path.basename(os.fspath(path))
    audit.log_first(
        reader_unlocked, audit_ctx, audit.entry("grant", who, [int(track_id)], output=output)
    )
    return write_grant(grant, path)


def write_grant(grant: TrackGrant, path: str | os.PathLike[str]) -> TrackGrant:
    """Write ``grant`` (mode 0600, no overwrite) without logging: only for callers that logged
    the grant already (:func:`streamdeid.reveal.grant_track`).

    Raises:
        KeyFileError: ``path`` exists or cannot be written.
    """
    path = Path(path)
    write_exclusive(path, grant.to_bytes(), 0o600)
    log.info(
        "wrote grant %s for track %d of recording %s",
        path,
        grant.track_id,
        grant.recording_id.hex(),
    )
    return grant
