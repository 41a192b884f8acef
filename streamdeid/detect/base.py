"""The one interface every face detector backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from streamdeid.limits import MAX_THREADS
from streamdeid.types import Detections, Frame


def as_image(frame: Frame | np.ndarray) -> np.ndarray:
    """Backends accept a Frame (the pipeline) or a bare BGR array (notebooks, benchmarks)."""
    return frame.image if isinstance(frame, Frame) else frame


class Detector(ABC):
    """Finds faces in a BGR frame. Not thread-safe: one instance belongs to one stage thread."""

    name: str = "detector"

    @abstractmethod
    def detect(self, frame: Frame | np.ndarray) -> Detections:
        """Return face boxes in frame pixels (xyxy), unclipped, scores in [0, 1].

        Takes the whole :class:`Frame` so that backends may use its index or timestamp
        (video-mode models, scripted test doubles).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release native resources."""

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_threads(threads: int) -> None:
    """Refuse a thread count the config would refuse (see :mod:`streamdeid.limits`)."""
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be in 1..{MAX_THREADS}, got {threads}")
