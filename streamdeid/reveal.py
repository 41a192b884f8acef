"""Restore masked faces for authorized review: decrypt sidecar regions back into the video.

The masked video and its sidecar are read in lockstep: records are stored in frame order, so each
decoded frame takes the records whose timestamp is its own. Only the tracks the key (or grant)
opens, and that the reviewer asked for, are restored; everyone else stays masked. Every reveal
and grant is appended to the recording's hash-chained audit log.

Example:
    >>> from streamdeid.reveal import open_sidecar_for_review, reveal_file
    >>> reader = open_sidecar_for_review("out.mp4", key="reviewer.key", passphrase=b"...")
    >>> reveal_file("out.mp4", "revealed.mkv", reader, tracks=[7])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamdeid import audit
from streamdeid.api import sidecar_path
from streamdeid.crypto import (
    CryptoError,
    RevealedRegion,
    SidecarReader,
    TrackSummary,
    export_grant,
    fingerprint,
    load_private_key,
)
from streamdeid.errors import StreamDeidError
from streamdeid.io.sink import EncoderSettings, VideoSink
from streamdeid.io.source import FileSource
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.types import Frame

log = logging.getLogger(__name__)


class RevealError(StreamDeidError):
    """The sidecar does not belong to this video, or a record has no frame to go to."""


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
    """Open and unlock ``video``'s sidecar; returns the reader and who unlocked it (for audit)."""
    reader = SidecarReader(sidecar_for(video))
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


def reveal_frames(
    video: str | os.PathLike[str],
    reader: SidecarReader,
    tracks: Iterable[int] | None = None,
    stats: dict[str, object] | None = None,
) -> Iterator[Frame]:
    """Decoded frames of the masked ``video`` with the selected tracks' original pixels pasted.

    Raises:
        RevealError: a record's timestamp has no frame in the video (wrong or edited video).
        CryptoError: a record was tampered with, or the sidecar is truncated (after every
            intact frame has been yielded).
    """
    wanted = None if tracks is None else set(tracks)
    records = reader.records(wanted)
    failure: CryptoError | None = None

    def next_record() -> RevealedRegion | None:
        # A tampered or truncated sidecar stops the reveal where it breaks; the rest of the
        # video still plays, masked, and the error is raised once every frame is out.
        nonlocal failure
        try:
            return next(records, None)
        except CryptoError as e:
            failure = e
            return None

    pending = next_record()
    restored = 0
    times: list[float] = []
    with FileSource(video) as source:
        half = Fraction(1, 2) / (source.info.frame_rate or DEFAULT_FRAME_RATE)
        for frame in source.frames():
            t = Fraction(frame.pts or 0) * (frame.time_base or Fraction(1))
            while pending is not None:
                rt = Fraction(pending.pts) * pending.time_base
                if rt > t + half:
                    break
                if rt < t - half:
                    raise RevealError(
                        f"record at {float(rt):.3f} s has no frame in '{video}' "
                        "(edited or different video?)"
                    )
                x1, y1, x2, y2 = pending.xyxy
                frame.image[y1:y2, x1:x2] = pending.pixels
                restored += 1
                times.append(float(rt))
                pending = next_record()
            yield frame
    if stats is not None:
        stats.update(
            regions=restored, first_s=min(times, default=None), last_s=max(times, default=None)
        )
    if failure is not None:
        raise failure
    if pending is not None:
        raise RevealError(f"records continue past the end of '{video}' (video cut short?)")


def reveal_file(
    video: str | os.PathLike[str],
    output: str | os.PathLike[str],
    reader: SidecarReader,
    who: str,
    tracks: Iterable[int] | None = None,
    settings: EncoderSettings | None = None,
) -> RevealStats:
    """Write ``output`` with the selected tracks restored, and log the reveal in the audit log.

    A ``.mkv`` output is lossless (FFV1) by default, so restored faces are bit-exact.
    """
    video = os.fspath(video)
    _check_recording(video, reader)
    chosen = _chosen_tracks(video, reader, tracks)
    if settings is None:
        lossless = Path(output).suffix.lower() == ".mkv"
        settings = EncoderSettings(codec="ffv1") if lossless else EncoderSettings()
    info: dict[str, object] = {}
    frames = 0
    error: CryptoError | None = None
    with FileSource(video) as source:
        sink = VideoSink(
            output, source.info, settings, audio_from=video, rotation=lambda: source.rotation
        )
        try:
            for frame in reveal_frames(video, reader, chosen, info):
                sink.write(frame)
                frames += 1
        except CryptoError as e:
            error = e  # every frame is written; frames after the damage stay masked
        finally:
            sink.close()
    head = _log_reveal(video, output, reader, who, chosen, info, error)
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


def _log_reveal(
    video: str,
    output: str | os.PathLike[str],
    reader: SidecarReader,
    who: str,
    chosen: list[int] | None,
    info: dict[str, object],
    error: CryptoError | None,
) -> str:
    """Append the reveal to the audit log (also a failed one: faces may have been restored)."""
    return audit.append(
        video,
        {
            "action": "reveal",
            "by": who,
            "recording_id": reader.recording_id,
            "tracks": chosen if chosen is not None else "all unlocked",
            "from_s": info.get("first_s"),
            "to_s": info.get("last_s"),
            "regions": info.get("regions"),
            "output": os.path.basename(os.fspath(output)),
            **({"error": str(error)} if error is not None else {}),
        },
    )


def grant_track(
    video: str | os.PathLike[str],
    reader: SidecarReader,
    who: str,
    track_id: int,
    path: str | os.PathLike[str],
) -> None:
    """Export a key that opens only ``track_id`` of this recording, and log it."""
    export_grant(reader, track_id, path)
    audit.append(
        video,
        {
            "action": "grant",
            "by": who,
            "recording_id": reader.recording_id,
            "tracks": [track_id],
            "output": os.path.basename(os.fspath(path)),
        },
    )


def list_tracks(video: str | os.PathLike[str]) -> list[TrackSummary]:
    """Tracks in the sidecar (no key needed: ids, time ranges and boxes are not secret)."""
    return SidecarReader(sidecar_for(video)).tracks()


def track_thumbnails(
    video: str | os.PathLike[str], summaries: list[TrackSummary], folder: str | os.PathLike[str]
) -> list[Path]:
    """Crop each track's first box (grown 2×) from the *masked* video into PNGs."""
    import cv2

    by_pts = {s.first_pts: [] for s in summaries}  # type: dict[int, list[TrackSummary]]
    for s in summaries:
        by_pts[s.first_pts].append(s)
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with FileSource(video) as source:
        for frame in source.frames():
            for s in by_pts.get(frame.pts if frame.pts is not None else -1, []):
                x1, y1, x2, y2 = s.first_xyxy
                w, h = x2 - x1, y2 - y1
                crop = frame.image[
                    max(0, y1 - h // 2) : y2 + h // 2, max(0, x1 - w // 2) : x2 + w // 2
                ]
                path = out_dir / f"track_{s.track_id}.png"
                cv2.imwrite(str(path), crop)
                written.append(path)
    return written


__all__ = [
    "RevealError",
    "RevealStats",
    "grant_track",
    "list_tracks",
    "open_sidecar_for_review",
    "reveal_file",
    "reveal_frames",
    "track_thumbnails",
]
