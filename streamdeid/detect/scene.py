"""What changed since the last frame: the motion map and the scene-cut test of focused detection.

Kept apart from :mod:`streamdeid.detect.focus`, which decides where the model looks: this module
only answers "where did the picture move" and "is this a new scene", on a small grey copy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# The background model works on a copy whose long side is at most this many pixels: enough
# for a 15 px face at 480 px wide to be several model pixels, cheap at any input size.
MODEL_EDGE = 320
# Share of pixels that may change at once before the frame counts as a new scene.
CUT_FRACTION = 0.4
# Without motion gating: mean grey-level change of a 32x18 thumbnail that counts as a cut.
CUT_GREY = 24.0
# Background learning rate per frame: a change is forgotten after roughly 1 / rate frames,
# long enough that a slow walker stands out, short enough to absorb light drifting.
LEARNING_RATE = 0.1


def shrink(image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Grey, downscaled copy of ``image`` and the (x, y) source pixels per model pixel.

    A plain INTER_AREA resize of a 720p frame costs ~1 ms; shrinking with INTER_LINEAR to
    twice the target first (at an integer ratio it averages pixel pairs) and then halving
    with INTER_AREA gives the same averaging for a fifth of that.
    """
    h, w = image.shape[:2]
    factor = max(1, math.ceil(max(w, h) / MODEL_EDGE))
    size = (max(1, w // factor), max(1, h // factor))
    if factor >= 4:
        image = cv2.resize(image, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (w / size[0], h / size[1])


def _thumbnail(grey: np.ndarray) -> np.ndarray:
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


class SceneModel:
    """The picture so far (a running background with ``motion``, else the last frame).

    Args:
        threshold: grey levels a model pixel must change by to count as moved.
        motion: keep a background and report where the picture moved (fixed cameras); without
            it only cuts are detected, from a thumbnail, so a panning camera is no cut.
    """

    def __init__(self, threshold: int, motion: bool) -> None:
        self.threshold = threshold
        self.motion = motion
        self._background: np.ndarray | None = None  # float32 grey, model size
        self._size: tuple[int, int] | None = None  # source (width, height) it belongs to

    def knows(self, width: int, height: int) -> bool:
        """True when there is a picture of a stream this size to compare with."""
        return self._background is not None and self._size == (width, height)

    def reset(self, grey: np.ndarray, width: int, height: int) -> None:
        """Start over from this picture (a full scan of a new scene or stream)."""
        self._background = grey.astype(np.float32)
        self._size = (width, height)

    def change(self, grey: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """Where the picture moved (motion gating, else None), and why this frame is a new
        scene (None when it is not). Call only after :meth:`knows` is True."""
        background = self._background
        if background is None:
            raise RuntimeError("SceneModel.change() before reset()")
        if self.motion:
            diff = cv2.absdiff(grey.astype(np.float32), background)
            moved = cv2.compare(diff, float(self.threshold), cv2.CMP_GT)
            share = cv2.countNonZero(moved) / moved.size
            if share > CUT_FRACTION:
                return moved, f"{share:.0%} of the picture changed"
            cv2.accumulateWeighted(grey, background, LEARNING_RATE)
            return moved, None
        # Cuts only, from a thumbnail of the last call's picture: a camera that pans or follows
        # someone changes most pixels but little of the thumbnail, and keeps its cheap passes;
        # a cut changes the thumbnail wholesale.
        change = float(cv2.absdiff(_thumbnail(grey), _thumbnail(background)).mean())
        self._background = grey.astype(np.float32)
        return None, (f"thumbnail changed by {change:.0f} levels" if change > CUT_GREY else None)
