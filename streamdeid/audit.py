"""Append-only, hash-chained audit log of reveals, kept next to the recording.

Every reveal appends one JSON line: who (key fingerprint), what (recording id, tracks, time
range), when, and the SHA-256 of the previous line. Editing, reordering or deleting any line but
the last breaks the chain at the next line, which :func:`verify` reports by line number. Cutting
off the newest lines cannot be seen from the file alone; :func:`verify` returns the head hash so
an operator can anchor it elsewhere (a ticket, an e-mail) and compare later.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from streamdeid.errors import StreamDeidError

GENESIS = "0" * 64


class AuditError(StreamDeidError):
    """The audit log is missing, unreadable or its chain is broken."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    entries: int
    head_sha256: str


def audit_path(recording: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(recording)}.audit.jsonl")


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _last_hash(path: Path) -> str:
    if not path.exists():
        return GENESIS
    lines = path.read_bytes().splitlines()
    return _sha(lines[-1]) if lines else GENESIS


def append(recording: str | os.PathLike[str], entry: dict[str, object]) -> str:
    """Append one entry (chained to the previous line); returns the new head hash."""
    path = audit_path(recording)
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **entry,
        "prev_sha256": _last_hash(path),
    }
    line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return _sha(line)


def verify(recording: str | os.PathLike[str]) -> AuditReport:
    """Check the whole chain; raises :class:`AuditError` naming the first broken line."""
    path = audit_path(recording)
    if not path.exists():
        raise AuditError(f"no audit log: expected '{path}' next to the recording")
    prev = GENESIS
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError as e:
            raise AuditError(f"{path}: line {number} is not valid JSON (edited?)") from e
        found = record.get("prev_sha256") if isinstance(record, dict) else None
        if found != prev:
            raise AuditError(
                f"{path}: chain broken at line {number}: expected prev_sha256 {prev[:16]}…, "
                f"found {str(found)[:16]}…"
            )
        prev = _sha(line)
    return AuditReport(entries=len(lines), head_sha256=prev)
