"""Errors of reversible masking, so callers can tell "wrong key" from "file attacked" from "cut".

They all derive from :class:`CryptoError`, itself a :class:`~streamdeid.errors.StreamDeidError`,
so the CLI prints them as one line. The distinction matters to the people handling them: a wrong
key is a routine mistake, a tampered sidecar is evidence of an attack or of disk corruption, and a
truncated one is usually a recording that was killed and still holds everything before the cut.
Messages never contain key material or pixel data.
"""

from __future__ import annotations

from streamdeid.errors import StreamDeidError


class CryptoError(StreamDeidError):
    """Base of every reversible-masking error."""


class KeyFileError(CryptoError):
    """A key or grant file is missing, unreadable, malformed, of the wrong kind, or exists."""


class WrongPassphraseError(CryptoError):
    """The passphrase does not decrypt the private key file."""


class WeakPassphraseError(CryptoError, ValueError):
    """The passphrase offered for a new private key is unusable (under 12 characters)."""


class WrongKeyError(CryptoError):
    """The private key is not one of the sidecar's recipients."""


class GrantMismatchError(WrongKeyError):
    """A per-track grant was issued for a different recording than this sidecar."""


class LockedError(CryptoError):
    """An operation needs a key that has not been given (unlock first, or unlock fully)."""


class UnknownTrackError(CryptoError):
    """The requested track id does not occur in the sidecar."""


class SidecarIOError(CryptoError, OSError):
    """The sidecar file cannot be created, opened, read or written (the OS error is chained)."""


class FormatError(CryptoError):
    """The file is not a sidecar, has an unsupported version, or its structure is malformed."""


class TamperedError(CryptoError):
    """Authentication failed: the file was modified, records moved, or mixed with another file.

    Attributes:
        seq: Sequence number of the offending record, or None for the header and end marker.
        pts: Presentation timestamp of the offending record, or None when unknown.
    """

    def __init__(self, message: str, *, seq: int | None = None, pts: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.pts = pts


class TruncatedError(CryptoError):
    """The file ends early: the writer was killed or the file was cut.

    Every record before the cut has already been yielded (and verified) when this is raised.

    Attributes:
        records_read: Number of complete records found before the cut (all tracks).
        offset: Byte offset where the first incomplete chunk (or the missing end marker) starts.
    """

    def __init__(self, message: str, *, records_read: int, offset: int) -> None:
        super().__init__(message)
        self.records_read = records_read
        self.offset = offset
