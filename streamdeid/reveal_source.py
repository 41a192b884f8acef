"""Restoring faces from originals kept as the input's packets (:mod:`streamdeid.crypto.source`).

Three streams advance in lockstep, one frame at a time: the masked video, the original frames
decoded from the sidecar's packets, and the sidecar's index of masked boxes. Frame *i* of each
is the same moment: the anonymizer writes one output frame per decoded input frame, and the index
names its frames by that count. The index also carries each frame's timestamp, which must agree
with the masked frame's, so a sidecar paired with another video is refused. Only the boxes of the
selected tracks are copied from the original; every other pixel stays as masked.

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
            boxes = state.boxes_for(frame.index)
            original = state.original()
            if boxes is not None and boxes.boxes and original is not None:
                _check_pairing(frame, boxes, original.shape, half, video)
                for _, (x1, y1, x2, y2) in boxes.boxes:
                    frame.image[y1:y2, x1:x2] = original[y1:y2, x1:x2]
                restored += len(boxes.boxes)
                times.append(float(boxes.pts * boxes.time_base))
            yield frame
    if stats is not None:
        stats.update(
            regions=restored, first_s=min(times, default=None), last_s=max(times, default=None)
        )
    state.finish(video, frame_count=state.frames_seen)


class _Lockstep:
    """The sidecar side: decoded originals and index entries, each pulled once per frame."""

    def __init__(self, reader: SidecarReader, wanted: list[int] | None) -> None:
        self._originals = decode_runs(reader.source_runs())
        self._index = reader.frame_boxes(wanted)
        self._pending: FrameBoxes | None = None
        self._index_done = False
        self.alive = True  # originals still coming
        self.failure: CryptoError | StreamDeidError | None = None
        self.frames_seen = 0

    def original(self) -> np.ndarray | None:
        """The next decoded original frame, or None once the kept source ends or breaks, or
        once no selected box is left (the rest of the source is then never decrypted)."""
        if not self.alive:
            return None
        if self._index_done and self._pending is None:
            self.alive = False
            return None
        try:
            image = next(self._originals, None)
        except (CryptoError, StreamDeidError) as e:
            self.failure = self.failure or e
            image = None
        if image is None:
            self.alive = False
        return image

    def boxes_for(self, index: int) -> FrameBoxes | None:
        """The index entry of frame ``index``, or None when nothing was masked on it."""
        self.frames_seen = index + 1
        while not self._index_done and (self._pending is None or self._pending.frame_index < index):
            try:
                self._pending = next(self._index, None)
            except (CryptoError, StreamDeidError) as e:
                self.failure = self.failure or e
                self._pending = None
            if self._pending is None:
                self._index_done = True
        if self._pending is not None and self._pending.frame_index == index:
            return self._pending
        return None

    def finish(self, video: str, frame_count: int) -> None:
        """Drain the index (which verifies the end marker) and report entries past the video.

        More *packets* than frames is normal: a run stopped by Ctrl-C has demuxed ahead of the
        frames it wrote. Index entries past the last frame are not: the video was cut short or
        is another one.
        """
        if self.failure is not None:
            raise self.failure
        pending = self._pending
        extra = pending if pending and pending.frame_index >= frame_count else None
        extra = extra or (None if self._index_done else next(self._index, None))
        for _ in self._index:
            pass
        if extra is not None:
            raise SourceRevealError(
                f"the sidecar names frame {extra.frame_index}, past the {frame_count} frames of "
                f"'{video}' (video cut short, or another video?)"
            )


def _check_pairing(
    frame: Frame, boxes: FrameBoxes, shape: tuple[int, ...], half: Fraction, video: str
) -> None:
    if shape != frame.image.shape:
        raise SourceRevealError(
            f"the kept source has {shape[1]}x{shape[0]} frames, '{video}' has "
            f"{frame.image.shape[1]}x{frame.image.shape[0]}: another video?"
        )
    t = Fraction(frame.pts or 0) * (frame.time_base or Fraction(1))
    rt = Fraction(boxes.pts) * boxes.time_base
    if abs(rt - t) > half:
        raise SourceRevealError(
            f"frame {frame.index} of '{video}' is at {float(t):.3f} s, but the sidecar's frame "
            f"{boxes.frame_index} is at {float(rt):.3f} s (edited or different video?)"
        )
