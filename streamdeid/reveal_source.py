"""Restoring faces from originals kept as the input's packets (:mod:`streamdeid.crypto.source`).

Three streams advance together as the masked video plays: its frames, the sidecar's index of
masked boxes, and the original frames decoded from the sidecar's packets. The index is in the
video's order and carries the video's timestamp of each frame, so each masked frame takes the
entry at its own time; an entry that falls between frames means another or an edited video and
is refused. The entry names its original by decode count, so frames a live camera dropped (and
packets demuxed past the last frame written) are simply decoded and passed over. Only the boxes
of the selected tracks are copied from the original; every other pixel stays as masked.

Both sidecar passes are lazy: memory holds one run of compressed packets and one decoded frame,
whatever the length of the recording.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from streamdeid.crypto import CryptoError, SidecarReader
from streamdeid.crypto.verify_packets import FrameBoxes
from streamdeid.errors import StreamDeidError
from streamdeid.io.packet_decoder import decode_runs
from streamdeid.io.source import FileSource
from streamdeid.media import DEFAULT_FRAME_RATE
from streamdeid.reveal_records import RevealError
from streamdeid.types import Frame

log = logging.getLogger(__name__)


class SourceRevealError(RevealError):
    """The kept source does not match the masked video (another video, or edited)."""


def paste_from_source(
    video: str,
    reader: SidecarReader,
    wanted: list[int] | None,
    stats: dict[str, object] | None,
) -> Iterator[Frame]:
    """Frames of the masked ``video`` with the boxes of ``wanted`` tracks (None: all) restored.

    A truncated or tampered sidecar stops the restoring where it breaks; the rest of the video
    is still yielded, masked, and the error is raised after the last frame.
    """
    state = _Lockstep(reader, wanted)
    restored, times = 0, []
    with FileSource(video) as source:
        half = Fraction(1, 2) / (source.info.frame_rate or DEFAULT_FRAME_RATE)
        for frame in source.frames():
            boxes = state.boxes_at(_time(frame), half, video)
            original = None if boxes is None else state.original(boxes.frame_index)
            if boxes is not None and original is not None:
                _check_size(frame, original.shape, video)
                for _, (x1, y1, x2, y2) in boxes.boxes:
                    frame.image[y1:y2, x1:x2] = original[y1:y2, x1:x2]
                restored += len(boxes.boxes)
                times.append(float(boxes.pts * boxes.time_base))
            yield frame
    if stats is not None:
        stats.update(
            regions=restored, first_s=min(times, default=None), last_s=max(times, default=None)
        )
    state.finish(video)


def _time(frame: Frame) -> Fraction:
    return Fraction(frame.pts or 0) * (frame.time_base or Fraction(1))


class _Lockstep:
    """The sidecar side, pulled forward as the masked video plays.

    Index entries are in the video's order and carry its timestamps, so each masked frame takes
    the entry at its own time (frames a camera dropped have none). An entry names the decoded
    original by its index, and originals are decoded forward to it; the packets of frames that
    never reached the video are decoded and passed over.
    """

    def __init__(self, reader: SidecarReader, wanted: list[int] | None) -> None:
        self._originals = decode_runs(reader.source_runs())
        self._index = reader.frame_boxes(wanted)
        self._pending: FrameBoxes | None = None
        self._index_done = False
        self._sources_done = False
        self.failure: CryptoError | StreamDeidError | None = None

    def boxes_at(self, t: Fraction, half: Fraction, video: str) -> FrameBoxes | None:
        """The index entry of the masked frame at time ``t``, or None when it has none.

        Raises:
            SourceRevealError: An entry falls between frames (another or an edited video).
        """
        if self._pending is None and not self._index_done:
            try:
                self._pending = next(self._index, None)
            except (CryptoError, StreamDeidError) as e:
                self.failure = self.failure or e
            self._index_done = self._pending is None
        entry = self._pending
        if entry is None:
            return None
        rt = Fraction(entry.pts) * entry.time_base
        if rt > t + half:
            return None
        if rt < t - half:
            raise SourceRevealError(
                f"the sidecar's frame {entry.frame_index} at {float(rt):.3f} s has no frame in "
                f"'{video}' (edited or different video?)"
            )
        self._pending = None
        return entry

    def original(self, index: int) -> np.ndarray | None:
        """The decoded original with this index, or None once the kept source ends or breaks."""
        while not self._sources_done:
            try:
                item = next(self._originals, None)
            except (CryptoError, StreamDeidError) as e:
                self.failure = self.failure or e
                item = None
            if item is None:
                self._sources_done = True
                break
            if item[0] == index:
                return item[1]
            if item[0] > index:
                break  # the source skipped it (cannot happen with an intact file)
        return None

    def finish(self, video: str) -> None:
        """Drain the index (which verifies the end marker) and report entries past the video.

        More *packets* than frames is normal: a camera drops frames, and a run stopped by
        Ctrl-C has demuxed ahead of the frames it wrote. Index entries past the last frame are
        not: the video was cut short or is another one.
        """
        if self.failure is not None:
            raise self.failure
        extra = self._pending or (None if self._index_done else next(self._index, None))
        for _ in self._index:
            pass
        if extra is not None:
            raise SourceRevealError(
                f"the sidecar names frame {extra.frame_index} (at "
                f"{float(extra.pts * extra.time_base):.3f} s), past the end of '{video}' (video "
                "cut short, or another video?)"
            )


def _check_size(frame: Frame, shape: tuple[int, ...], video: str) -> None:
    if shape != frame.image.shape:
        raise SourceRevealError(
            f"the kept source has {shape[1]}x{shape[0]} frames, '{video}' has "
            f"{frame.image.shape[1]}x{frame.image.shape[0]}: another video?"
        )
