"""Restoring faces from per-region crops: records stored in frame order, pasted in lockstep.

The masked video and the sidecar are read together: records are stored in frame order, so each
decoded frame takes the records whose timestamp is its own. This is how sidecars of images,
intra-only input and grant packages are restored (:mod:`streamdeid.reveal_source` handles
originals kept as source packets).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

from streamdeid.crypto import CryptoError, RevealedRegion, SidecarReader
from streamdeid.errors import StreamDeidError
from streamdeid.io.source import FileSource
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.types import Frame


class RevealError(StreamDeidError):
    """The sidecar does not belong to this video, or a record has no frame to go to."""


def paste_records(
    video: str, reader: SidecarReader, wanted: list[int] | None, stats: dict[str, object] | None
) -> Iterator[Frame]:
    records = reader._verified_records(wanted)
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
        except ZeroDivisionError:
            raise RevealError(f"a record of '{reader.path}' has a zero time base") from None

    pending = next_record()
    restored = 0
    times: list[float] = []
    with FileSource(video) as source:
        half = Fraction(1, 2) / (source.info.frame_rate or DEFAULT_FRAME_RATE)
        for frame in source.frames():
            t = Fraction(frame.pts or 0) * (frame.time_base or Fraction(1))
            while pending is not None:
                rt = _record_time(pending)
                if rt > t + half:
                    break
                if rt < t - half:
                    raise RevealError(
                        f"record at {float(rt):.3f} s has no frame in '{video}' "
                        "(edited or different video?)"
                    )
                _paste(frame, pending, video)
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


def _record_time(record: RevealedRegion) -> Fraction:
    tb = record.time_base
    if not tb.denominator or tb <= 0:
        raise RevealError(f"record at pts {record.pts} has an invalid time base {tb}")
    return Fraction(record.pts) * tb


def _paste(frame: Frame, record: RevealedRegion, video: str) -> None:
    """Put a record's pixels back; a box that does not fit the frame is refused, not clipped."""
    h, w = frame.image.shape[:2]
    x1, y1, x2, y2 = record.xyxy
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h) or record.pixels.shape[:2] != (
        y2 - y1,
        x2 - x1,
    ):
        raise RevealError(
            f"record at pts {record.pts} (track {record.track_id}) has box {record.xyxy}, "
            f"outside the {w}x{h} frames of '{video}' (wrong video or a writer bug)"
        )
    frame.image[y1:y2, x1:x2] = record.pixels
