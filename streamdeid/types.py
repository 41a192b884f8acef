"""Core value types that travel between stages.

Boxes are always ``xyxy`` in pixels of the frame they belong to. Arrays are validated on
construction so that a malformed detector output fails loudly where it is made, not as a silent
unmasked face three stages later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded picture. ``image`` is owned by the pipeline; only the obscure stage writes it."""

    index: int
    image: np.ndarray  # (H, W, 3) uint8 BGR, C-contiguous
    pts: int | None
    time_base: Fraction | None
    captured_at: float  # time.monotonic() when decoded

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def validate_boxes(xyxy: np.ndarray, confidence: np.ndarray) -> None:
    """Raise ValueError unless ``xyxy`` is (n, 4) float and ``confidence`` is (n,)."""
    if not isinstance(xyxy, np.ndarray) or xyxy.ndim != 2 or xyxy.shape[1] != 4:
        shape = getattr(xyxy, "shape", type(xyxy).__name__)
        raise ValueError(f"xyxy must be a 2D np.ndarray with shape (n, 4), but got {shape}")
    n = xyxy.shape[0]
    if not isinstance(confidence, np.ndarray) or confidence.shape != (n,):
        shape = getattr(confidence, "shape", type(confidence).__name__)
        raise ValueError(f"confidence must be a np.ndarray with shape ({n},), but got {shape}")
    if n and not np.all(np.isfinite(xyxy)):
        raise ValueError("xyxy must be finite, but got NaN or inf")


@dataclass(slots=True)
class Detections:
    """Raw detector output for one frame, parallel arrays."""

    xyxy: np.ndarray  # (n, 4) float32
    confidence: np.ndarray  # (n,) float32

    def __post_init__(self) -> None:
        validate_boxes(self.xyxy, self.confidence)
        self.xyxy = self.xyxy.astype(np.float32, copy=False)
        self.confidence = self.confidence.astype(np.float32, copy=False)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])


class TrackState(Enum):
    """Lifecycle of a track. Every state is masked; the state only drives bookkeeping."""

    TENTATIVE = 1
    CONFIRMED = 2
    COASTING = 3


@dataclass(slots=True)
class Track:
    """A face followed across frames. ``xyxy`` is the box to mask on the current frame."""

    track_id: int
    xyxy: np.ndarray  # (4,) float32
    state: TrackState
    misses: int  # consecutive detector runs without a match
    age: int = 0  # frames since the track was created


@dataclass(frozen=True, slots=True)
class Region:
    """A padded, clipped, non-empty pixel rectangle to obscure (x2, y2 exclusive).

    ``face`` is where its track's face is on this frame (the unpadded, unclipped box): the
    tracker's box on a detector frame, between two runs the face's two boxes interpolated. Only
    a method that draws a replacement face needs it (``surrogate``); it is None for raw
    detections, whole-frame masks, regions read back from a sidecar, and a coasting track that
    overlaps a track the detector still sees (the same person followed anew, see
    :data:`streamdeid.obscure.regions.GHOST_IOU`).

    ``inner`` holds the (track id, face) of other tracks whose boxes lie wholly inside this one
    and were therefore not given a region of their own (already masked): between two runs a
    region spans a moving face's positions before and after, and a neighbour's face often lies
    inside that span. A method that draws faces draws those too.
    """

    xyxy: tuple[int, int, int, int]
    track_id: int | None = None
    face: tuple[float, float, float, float] | None = None
    inner: tuple[tuple[int, tuple[float, float, float, float]], ...] = ()

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.xyxy
        if not (x2 > x1 and y2 > y1 and x1 >= 0 and y1 >= 0):
            raise ValueError(f"Region must be non-empty with x1,y1 >= 0, but got {self.xyxy}")


@dataclass(slots=True)
class FramePacket:
    """What flows between stages: a frame plus everything learned about it so far."""

    frame: Frame
    detections: Detections | None = None  # None = detector skipped this frame
    detection_failed: bool = False  # True = detector raised; the whole frame gets masked
    tracks: list[Track] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """Sentinel that follows the last packet; ``error`` is set when the producer failed."""

    error: BaseException | None = None
