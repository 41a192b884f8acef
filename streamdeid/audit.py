"""Append-only, signed, hash-chained audit log of reveals and grants.

Every reveal, grant or library decryption appends one JSON line *before* anything is decrypted:
who (key fingerprint), what (recording id, tracks, time range, output name), when, the SHA-256 of
the previous line, the fingerprint of the operator's Ed25519 signing key and an Ed25519 signature
over all of that. If the entry cannot be written and fsynced, :func:`append` raises and the
caller reveals nothing (fail closed).

Where the log lives. One log per *recording*, named by the recording id from the sidecar header
(``<recording id>.audit.jsonl``), in ``$STREAMDEID_AUDIT_DIR`` when the site sets it, else beside
the sidecar; ``--audit-log PATH`` (or :attr:`AuditContext.log`) names a file explicitly. Keying by
the recording id rather than by the video's file name means a renamed or copied video still logs
into the same file when an audit directory is configured, and a site can put that directory on
storage reviewers cannot rewrite.

What is detected. Editing, reordering or deleting any line breaks a signature or the chain at
the line that follows, and recomputing the hashes does not help without the signing key:
:func:`verify` names the first bad line. Cutting off the newest lines cannot be seen from the
file alone; :func:`verify` returns the head hash so an operator can keep it elsewhere (a ticket,
an e-mail) and later check with ``expect_head`` that the log still contains it.

Honest limit. Whoever holds a reviewer's private key and the sidecar bytes can always decrypt with
their own code; no log can stop that. What this module guarantees is narrower: *our* tools (the
CLI and the public Python API) never reveal a pixel without first writing a signed entry, and a
rewritten or truncated log is detected (truncation only against a kept head). Secrets never enter
an entry: only fingerprints of keys.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streamdeid.errors import StreamDeidError

GENESIS = "0" * 64
AUDIT_DIR_ENV = "STREAMDEID_AUDIT_DIR"


class AuditError(StreamDeidError):
    """The audit log cannot be written or read, or its chain or a signature is broken."""


class AuditRequiredError(AuditError):
    """A decrypting call was made without an audit context (signing key and log)."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    entries: int
    head_sha256: str


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every decrypting call needs: the operator's signing key and where to log.

    Attributes:
        signing_key: Ed25519 key of the operator or site running the reveal.
        log: Explicit log file; None = the default for the recording (see :func:`log_path`).
    """

    signing_key: Ed25519PrivateKey
    log: Path | None = None

    def log_for(self, sidecar: str | os.PathLike[str], recording_id: str) -> Path:
        return log_path(sidecar, recording_id, self.log)


class Recording(Protocol):
    """What the gate needs of a sidecar reader: where it is and which recording it holds.

    ``log_anchor`` is the recording's own sidecar, beside which the log lives by default; for a
    grant package it is the recording's sidecar, not the package.
    """

    @property
    def path(self) -> Path: ...

    @property
    def log_anchor(self) -> Path: ...

    @property
    def recording_id(self) -> str: ...


def log_first(
    recording: Recording, audit_ctx: AuditContext | None, entry: dict[str, object]
) -> str:
    """The gate of every decrypting call: append a signed entry for ``recording`` or raise.

    Raises:
        AuditRequiredError: ``audit_ctx`` is None.
        AuditError: The entry cannot be written; the message says nothing was revealed.
    """
    if audit_ctx is None:
        raise AuditRequiredError(
            f"decrypting {recording.path} needs an audit context (signing key and log): "
            "every reveal is logged first"
        )
    log = audit_ctx.log_for(recording.log_anchor, recording.recording_id)
    try:
        return append(log, audit_ctx.signing_key, {"recording_id": recording.recording_id, **entry})
    except AuditError as e:
        raise AuditError(f"{e}; nothing was revealed") from None


def entry(action: str, who: str, tracks: list[int] | None, **more: object) -> dict[str, object]:
    """The fields every entry carries (who did what to which tracks; None = all the key opens),
    plus ``more`` (output name, time range)."""
    return {
        "action": action,
        "by": who,
        "tracks": "all unlocked" if tracks is None else tracks,
        **more,
    }


def log_path(
    sidecar: str | os.PathLike[str], recording_id: str, explicit: str | os.PathLike[str] | None
) -> Path:
    """The log of a recording: ``explicit``, else ``$STREAMDEID_AUDIT_DIR/<id>.audit.jsonl``,
    else ``<id>.audit.jsonl`` beside the sidecar."""
    if explicit is not None:
        return Path(explicit)
    folder = os.environ.get(AUDIT_DIR_ENV) or Path(sidecar).parent
    return Path(folder) / f"{recording_id}.audit.jsonl"


def signer_fingerprint(public_key: Ed25519PublicKey) -> str:
    """First 16 hex chars of SHA-256 of the raw public key (names the signer in each entry)."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _canonical(record: dict[str, object]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def append(
    log: str | os.PathLike[str], signing_key: Ed25519PrivateKey, entry: dict[str, object]
) -> str:
    """Sign and append one entry, chained to the last line, and fsync it; returns the new head.

    The file is locked while the last line is read and the new one written, so two reveals at
    once cannot fork the chain.

    Raises:
        AuditError: The log cannot be created, locked, read or written (nothing was appended).
    """
    path = Path(log)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        created = not path.exists()
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        raise AuditError(f"cannot write the audit log '{path}': {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = _read_all(fd).splitlines()
        body = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **entry,
            "prev_sha256": _sha(lines[-1]) if lines else GENESIS,
            "signer": signer_fingerprint(signing_key.public_key()),
        }
        signature = signing_key.sign(_canonical(body))
        line = _canonical({**body, "sig": base64.b64encode(signature).decode()})
        os.write(fd, line + b"\n")
        os.fsync(fd)
        if created:
            _fsync_dir(path.parent)
    except OSError as e:
        raise AuditError(f"cannot write the audit log '{path}': {e.strerror}") from None
    finally:
        os.close(fd)
    return _sha(line)


def _fsync_dir(folder: Path) -> None:
    """Make a new log's directory entry durable too (best effort: not every FS allows it)."""
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def head(log: str | os.PathLike[str]) -> str:
    """SHA-256 of the last line (the chain head), without verifying anything."""
    path = Path(log)
    lines = _read(path).splitlines()
    return _sha(lines[-1]) if lines else GENESIS


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"no audit log at '{path}'") from None
    except OSError as e:
        raise AuditError(f"cannot read the audit log '{path}': {e.strerror}") from None


def verify(
    log: str | os.PathLike[str],
    public_keys: Sequence[Ed25519PublicKey],
    expect_head: str | None = None,
    recording_id: str | None = None,
) -> AuditReport:
    """Check every signature and the whole chain; names the first bad line.

    Args:
        log: The audit log file.
        public_keys: Signing keys trusted to write entries (at least one).
        expect_head: A head kept from earlier; the log must still contain it (truncation check).
        recording_id: If given, every entry must be about this recording (a log copied over from
            another recording is refused).

    Raises:
        AuditError: Missing log, unparsable line, broken chain, unknown signer, bad signature,
            or ``expect_head`` not found.
    """
    path = Path(log)
    if not public_keys:
        raise AuditError("verifying the audit log needs at least one signing public key")
    keys = {signer_fingerprint(k): k for k in public_keys}
    prev = GENESIS
    seen = {GENESIS}
    lines = _read(path).splitlines()
    for number, line in enumerate(lines, 1):
        record = _check_line(path, number, line, prev, keys)
        if recording_id is not None and record.get("recording_id") != recording_id:
            raise AuditError(
                f"{path}: line {number} is about recording {record.get('recording_id')}, "
                f"not {recording_id} (a log of another recording?)"
            )
        prev = _sha(line)
        seen.add(prev)
    if expect_head is not None and expect_head.strip().lower() not in seen:
        raise AuditError(
            f"{path}: the kept head {expect_head.strip()[:16]}… is not in the log "
            f"({len(lines)} entries): entries were cut off or the log was replaced"
        )
    return AuditReport(entries=len(lines), head_sha256=prev)


def _check_line(
    path: Path, number: int, line: bytes, prev: str, keys: dict[str, Ed25519PublicKey]
) -> dict[str, object]:
    where = f"{path}: line {number}"
    try:
        record = json.loads(line)
    except ValueError:
        raise AuditError(f"{where} is not valid JSON (edited?)") from None
    if not isinstance(record, dict):
        raise AuditError(f"{where} is not a JSON object (edited?)")
    found = record.get("prev_sha256")
    if found != prev:
        raise AuditError(
            f"{where}: chain broken: expected prev_sha256 {prev[:16]}…, found {str(found)[:16]}…"
        )
    signature = record.pop("sig", None)
    key = keys.get(str(record.get("signer")))
    if key is None:
        raise AuditError(
            f"{where}: signed by {record.get('signer')!r}, not by any of the given public keys"
        )
    try:
        key.verify(base64.b64decode(str(signature), validate=True), _canonical(record))
    except (InvalidSignature, ValueError):
        raise AuditError(
            f"{where}: signature does not verify (the entry or the one before it was "
            "edited, deleted or re-chained)"
        ) from None
    return record
