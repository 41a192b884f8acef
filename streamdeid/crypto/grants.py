"""Per-track grants: a small bearer file that opens one person's records in one recording.

A reviewer who must show one data subject their own footage (or hand one person's pixels to an
investigator) should not have to hand over a key that reveals everyone. The grant holds the
HKDF-derived key of a single track, which opens nothing else: track keys are one-way derived
from the content key, so no track key yields another. It also pins the recording id and a digest
of the sidecar header, so it is refused on any other recording and detects an edited header.

The grant is a secret in the clear (like an unencrypted key file): it is written mode 0600 and the
recipient must protect it. Its checksum only catches accidental corruption with a clear error;
integrity against an attacker comes from the sidecar's authenticated records.

A track key is symmetric, so a grant holder could encrypt records of its own. It never holds the
record MAC key (derived from the content key under its own label), so a full-key reader refuses
anything it writes. A reader holding only grants cannot check that MAC: it trusts GCM under the
track key, and so cannot tell the anonymizer's records from a forgery by another holder of the
same grant. See the threat model in :mod:`streamdeid.crypto`.

Issuing a grant needs an unlocked :class:`~streamdeid.crypto.reader.SidecarReader`, so
:func:`~streamdeid.crypto.reader.export_grant` lives with the reader; this module only knows the
grant file, which the reader needs to open a track.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from streamdeid.crypto.errors import KeyFileError
from streamdeid.crypto.format import (
    GRANT_BODY,
    GRANT_CHECKSUM_SIZE,
    GRANT_MAGIC,
    GRANT_SIZE,
    GRANT_VERSION,
)
from streamdeid.crypto.keys import warn_if_exposed

log = logging.getLogger(__name__)

_MAX_READ = 4096


@dataclass(frozen=True, slots=True)
class TrackGrant:
    """What a grant file holds. ``key`` is excluded from ``repr`` so it cannot end up in logs."""

    recording_id: bytes
    header_digest: bytes
    track_id: int
    key: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        body = GRANT_BODY.pack(
            GRANT_MAGIC,
            GRANT_VERSION,
            self.recording_id,
            self.header_digest,
            self.track_id,
            self.key,
        )
        return body + _checksum(body)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "grant") -> TrackGrant:
        """Parse a grant file's content.

        Raises:
            KeyFileError: Wrong size, magic, version or checksum.
        """
        if len(data) != GRANT_SIZE:
            raise KeyFileError(
                f"expected a {GRANT_SIZE}-byte grant file at {source}, "
                f"but it has {len(data)}{'+' if len(data) >= _MAX_READ else ''} bytes"
            )
        body, checksum = data[: GRANT_BODY.size], data[GRANT_BODY.size :]
        magic, version, recording_id, digest, track_id, key = GRANT_BODY.unpack(body)
        if magic != GRANT_MAGIC:
            raise KeyFileError(
                f"expected a streamdeid grant at {source} (magic {GRANT_MAGIC!r}), "
                f"but found magic {magic!r}"
            )
        if version != GRANT_VERSION:
            raise KeyFileError(
                f"expected grant version {GRANT_VERSION} at {source}, but found {version}"
            )
        if _checksum(body) != checksum:
            raise KeyFileError(f"grant file {source} is corrupt: its checksum does not match")
        return cls(recording_id, digest, track_id, key)


def load_grant(path: str | os.PathLike[str]) -> TrackGrant:
    """Read a grant file written by :func:`streamdeid.crypto.reader.export_grant`.

    Raises:
        KeyFileError: Missing, unreadable or malformed grant file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_READ)
    except FileNotFoundError as e:
        raise KeyFileError(f"grant file not found: {path}") from e
    except OSError as e:
        raise KeyFileError(f"cannot read grant file {path}: {e.strerror}") from e
    warn_if_exposed(path, "grant")
    return TrackGrant.from_bytes(data, str(path))


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()[:GRANT_CHECKSUM_SIZE]
