"""Restore masked faces for authorized review: decrypt sidecar regions back into the video.

The masked video and its sidecar are read in lockstep: records are stored in frame order, so each
decoded frame takes the records whose timestamp is its own. Only the tracks the key (or grant)
opens, and that the reviewer asked for, are restored; everyone else stays masked.

Every reveal and grant first appends a signed entry to the recording's audit log
(:mod:`streamdeid.audit`) and decrypts nothing if that fails. A restored video is created 0600
with ``O_EXCL`` and removed again if the reveal fails (except after a truncated sidecar: then the
whole video is written, the faces after the cut stay masked, and the error is raised at the end).

Example:
    >>> from streamdeid.audit import AuditContext
    >>> from streamdeid.crypto.signing import load_signing_key
    >>> from streamdeid.reveal import open_sidecar_for_review, reveal_file
    >>> reader, who = open_sidecar_for_review("o.mp4", key="r.key", passphrase=b"x")
    >>> ctx = AuditContext(load_signing_key("site.sign.key", b"..."))  # doctest: +SKIP
    >>> reveal_file("o.mp4", "revealed.mkv", reader, who, audit_ctx=ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streamdeid import audit
from streamdeid.api import sidecar_path
from streamdeid.audit import AuditContext
from streamdeid.crypto import (
    CryptoError,
    RevealedRegion,
    SidecarReader,
    TrackSummary,
    TruncatedError,
    fingerprint,
    load_private_key,
)
from streamdeid.crypto.reader import write_grant
from streamdeid.grant_package import package_path, source_regions, write_package
from streamdeid.io.sink import EncoderSettings, VideoSink
from streamdeid.io.source import FileSource
from streamdeid.reveal_records import RevealError, paste_records
from streamdeid.reveal_source import paste_from_source
from streamdeid.types import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RevealStats:
    frames: int
    regions_restored: int
    tracks: list[int]
    first_s: float | None
    last_s: float | None
    audit_head: str


def sidecar_for(video: str | os.PathLike[str]) -> Path:
    path = sidecar_path(video)
    if not path.exists():
        raise RevealError(f"no sidecar for '{video}': expected '{path}' (was it run --reversible?)")
    return path


def open_sidecar_for_review(
    video: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str] | None = None,
    passphrase: bytes | None = None,
    grants: Iterable[str | os.PathLike[str]] = (),
) -> tuple[SidecarReader, str]:
    """Open and unlock ``video``'s sidecar; returns the reader and who unlocked it (for audit).

    A grant for a recording that keeps its originals as source packets opens the package
    written beside the grant (:mod:`streamdeid.grant_package`) instead of the sidecar.
    """
    reader = SidecarReader(sidecar_for(video))
    grants = list(grants)
    if key is None and grants and reader.keeps_source():
        reader = _package_reader(reader, grants)
    who = []
    if key is not None:
        private = load_private_key(key, passphrase)
        reader.unlock(private)
        who.append(f"key:{fingerprint(private.public_key())}")
    for grant in grants:
        reader.unlock_track(grant)
        who.append(f"grant:{Path(grant).name}")
    if not who:
        raise RevealError("nothing to unlock with: give a private key or a grant file")
    return reader, ",".join(who)


def _package_reader(reader: SidecarReader, grants: list[str | os.PathLike[str]]) -> SidecarReader:
    if len(grants) > 1:
        raise RevealError(
            "this recording keeps its originals as source packets: reveal one grant at a time"
        )
    package = package_path(grants[0])
    if not package.exists():
        raise RevealError(
            f"this recording keeps its originals as source packets, which no grant opens: "
            f"expected the grant's package '{package}' beside it (written by 'streamdeid grant')"
        )
    return SidecarReader(package, log_anchor=reader.path)


def _check_recording(video: str, reader: SidecarReader) -> None:
    """The masked video carries its recording id; a sidecar from another run is refused."""
    import av

    with av.open(video) as container:
        comment = container.metadata.get("comment", "")
    expected = f"streamdeid recording {reader.recording_id}"
    if comment and comment != expected:
        raise RevealError(
            f"sidecar belongs to another video: expected '{expected}', the video says '{comment}'"
        )
    if not comment:
        log.warning("'%s' carries no recording id; cannot confirm it matches the sidecar", video)


def audit_log_for(
    video: str | os.PathLike[str], explicit: str | os.PathLike[str] | None = None
) -> Path:
    """Where reveals of ``video`` are logged (keyed by the recording id in its sidecar)."""
    reader = SidecarReader(sidecar_for(video))
    return audit.log_path(reader.path, reader.recording_id, explicit)


def _span(reader: SidecarReader, chosen: list[int] | None) -> tuple[float | None, float | None]:
    """Time range of the tracks to reveal, from the cleartext summaries (no key needed)."""
    spans = [
        (float(t.first_pts * t.time_base), float(t.last_pts * t.time_base))
        for t in reader.tracks()
        if (chosen is None and reader.can_open(t.track_id)) or (chosen and t.track_id in chosen)
    ]
    if not spans:
        return None, None
    return min(a for a, _ in spans), max(b for _, b in spans)


def _reveal_entry(
    reader: SidecarReader, who: str, chosen: list[int] | None, output: str | None
) -> dict[str, object]:
    try:
        first_s, last_s = _span(reader, chosen)
    except (CryptoError, ZeroDivisionError):
        first_s = last_s = None  # malformed cleartext: the reveal itself will report it
    entry = audit.entry("reveal", who, chosen, from_s=first_s, to_s=last_s)
    if output is not None:
        entry["output"] = output
    return entry


def revealed_regions(
    reader: SidecarReader,
    tracks: Iterable[int] | None = None,
    *,
    audit_ctx: AuditContext | None = None,
    who: str = "python api",
) -> Iterator[RevealedRegion]:
    """The verified original pixels of the selected tracks' regions, in frame order, from either
    kind of sidecar (source packets or per-region crops). Logged first, like every decryption.

    Raises:
        AuditRequiredError, AuditError: no audit context, or the entry cannot be written.
        CryptoError: a record was tampered with, or the sidecar is truncated.
    """
    if not reader.keeps_source():
        return reader.records(tracks, audit_ctx=audit_ctx, who=who)
    wanted = None if tracks is None else sorted({int(t) for t in tracks})
    audit.log_first(reader, audit_ctx, audit.entry("decrypt", who, wanted))
    return source_regions(reader, wanted)


def reveal_frames(
    video: str | os.PathLike[str],
    reader: SidecarReader,
    tracks: Iterable[int] | None = None,
    stats: dict[str, object] | None = None,
    *,
    audit_ctx: AuditContext | None = None,
    who: str = "python api",
) -> Iterator[Frame]:
    """Decoded frames of the masked ``video`` with the selected tracks' original pixels pasted.

    A signed entry is appended to the audit log when this is called, before anything is
    decrypted; ``audit_ctx`` is required.

    Raises:
        AuditRequiredError, AuditError: no audit context, or the entry cannot be written.
        RevealError: a record's timestamp has no frame in the video (wrong or edited video), or
            its box does not fit the frame.
        CryptoError: a record was tampered with, or the sidecar is truncated (after every
            intact frame has been yielded).
    """
    wanted = None if tracks is None else sorted({int(t) for t in tracks})
    audit.log_first(reader, audit_ctx, _reveal_entry(reader, who, wanted, None))
    return _paste_frames(os.fspath(video), reader, wanted, stats)


def _paste_frames(
    video: str, reader: SidecarReader, wanted: list[int] | None, stats: dict[str, object] | None
) -> Iterator[Frame]:
    """Restored frames, from the kept source packets or from per-region crops."""
    if reader.keeps_source():
        return paste_from_source(video, reader, wanted, stats)
    return paste_records(video, reader, wanted, stats)


def reveal_file(
    video: str | os.PathLike[str],
    output: str | os.PathLike[str],
    reader: SidecarReader,
    who: str,
    tracks: Iterable[int] | None = None,
    settings: EncoderSettings | None = None,
    *,
    audit_ctx: AuditContext | None = None,
) -> RevealStats:
    """Log the reveal, then write ``output`` (new file, 0600) with the selected tracks restored.

    A ``.mkv`` output is lossless (FFV1) by default, so restored faces are bit-exact. If the
    audit entry cannot be written nothing is decrypted and no file is created; if the reveal
    fails the output is removed, except after a truncated sidecar (see the module docstring).
    """
    video = os.fspath(video)
    _check_recording(video, reader)
    chosen = _chosen_tracks(video, reader, tracks)
    if settings is None:
        lossless = Path(output).suffix.lower() == ".mkv"
        settings = EncoderSettings(codec="ffv1") if lossless else EncoderSettings()
    if os.path.lexists(output):  # refused before logging; O_EXCL below closes the race
        raise RevealError(f"output '{output}' exists: remove it first")
    entry = _reveal_entry(reader, who, chosen, os.path.basename(os.fspath(output)))
    head = audit.log_first(reader, audit_ctx, entry)
    _create_private(output)
    info: dict[str, object] = {}
    try:
        frames, error = _write_revealed(video, output, reader, chosen, settings, info)
    except BaseException:
        Path(output).unlink(missing_ok=True)
        raise
    if error is not None:
        raise error
    return RevealStats(
        frames,
        int(info.get("regions") or 0),
        chosen or [],  # type: ignore[arg-type]
        info.get("first_s"),
        info.get("last_s"),
        head,
    )  # type: ignore[arg-type]


def _create_private(output: str | os.PathLike[str]) -> None:
    """Create the output empty, 0600, never over an existing file (or a planted symlink)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(output, flags, 0o600)
    except FileExistsError:
        raise RevealError(
            f"output '{output}' exists: remove it first (revealed footage is never overwritten)"
        ) from None
    except OSError as e:
        raise RevealError(f"cannot create output '{output}': {e.strerror}") from None
    os.fchmod(fd, 0o600)
    os.close(fd)


def _write_revealed(
    video: str,
    output: str | os.PathLike[str],
    reader: SidecarReader,
    chosen: list[int] | None,
    settings: EncoderSettings,
    info: dict[str, object],
) -> tuple[int, TruncatedError | None]:
    """Encode the revealed frames; a truncated sidecar is returned (the file is complete)."""
    frames = 0
    error: TruncatedError | None = None
    with FileSource(video) as source:
        sink = VideoSink(
            output, source.info, settings, audio_from=video, rotation=lambda: source.rotation
        )
        try:
            for frame in _paste_frames(video, reader, chosen, info):
                sink.write(frame)
                frames += 1
        except TruncatedError as e:
            error = e  # every frame is written; frames after the cut stay masked
        finally:
            sink.close()
    return frames, error


def _chosen_tracks(
    video: str, reader: SidecarReader, tracks: Iterable[int] | None
) -> list[int] | None:
    """The requested tracks, sorted, once each (None = all the key opens); checked before any
    decoding, so a wrong track number fails at once rather than after writing a file."""
    chosen = sorted(set(tracks)) if tracks is not None else None
    if chosen is not None:
        known = {t.track_id for t in reader.tracks()}
        for track_id in chosen:
            if track_id not in known:
                raise RevealError(
                    f"track {track_id} is not in this recording "
                    f"(tracks: see 'streamdeid tracks {video}')"
                )
            if not reader.can_open(track_id):
                raise RevealError(f"track {track_id}: your key or grant does not open it")
    return chosen


def grant_track(
    video: str | os.PathLike[str],
    reader: SidecarReader,
    who: str,
    track_id: int,
    path: str | os.PathLike[str],
    *,
    audit_ctx: AuditContext | None = None,
    lossy: bool = False,
) -> None:
    """Log, then export a key that opens only ``track_id`` of this recording.

    When the recording keeps its originals as source packets, the track's regions are first
    cut into a package beside the grant (``PATH.sdeid``; PNG, or JPEG with ``lossy``), which the
    grant holder needs too.

    Raises:
        AuditRequiredError, AuditError: no audit context, or the entry cannot be written (no
            grant is written then).
    """
    reader.make_grant(track_id)  # locked reader or unknown track: fail before logging
    if os.path.lexists(path):
        raise RevealError(f"grant '{path}' exists: remove it first")
    output = os.path.basename(os.fspath(path))
    audit.log_first(reader, audit_ctx, audit.entry("grant", who, [int(track_id)], output=output))
    if reader.keeps_source():
        write_package(reader, track_id, path, lossy=lossy)
    try:
        write_grant(reader.make_grant(track_id), path)
    except BaseException:
        package_path(path).unlink(missing_ok=True)
        raise


def list_tracks(video: str | os.PathLike[str]) -> list[TrackSummary]:
    """Tracks in the sidecar (no key needed: ids, time ranges and boxes are not secret)."""
    return SidecarReader(sidecar_for(video)).tracks()


__all__ = [
    "AuditContext",
    "RevealError",
    "RevealStats",
    "audit_log_for",
    "grant_track",
    "list_tracks",
    "open_sidecar_for_review",
    "reveal_file",
    "reveal_frames",
    "revealed_regions",
]
