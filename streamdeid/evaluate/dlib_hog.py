"""dlib's HOG frontal face detector as the independent detector of the leak check.

Why dlib: it shares nothing with the anonymizer's detectors (CenterFace, BlazeFace/MediaPipe), so
it is independent of every config; it has very few false positives (BlazeFace at 0.5 fires on
hands, jackets, pillars and candles, which are rightly left unmasked and then count as "still
detectable", even "re-identified" since they match themselves); and it is the detector an
attacker using dlib's face recognizer would run first.

Size limit: the HOG window is 80 px, so with ``upsample`` 1 (the default) faces down to ~40 px
(box height) are found. HOG is slow at 1080p, so frames taller than ``max_height`` (default 720)
are downscaled before detection and the boxes scaled back: a face then needs about
``40 × frame height / 720`` px in the original frame (60 px at 1080p);
:meth:`DlibDetector.min_face_px` gives the figure for a frame height.

Scores are dlib's raw SVM margins (not in [0, 1]); ``adjust_threshold`` keeps detections scoring
at least that much (dlib's own default is 0.0; negative values find more, with more errors).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.errors import ConfigError, MissingExtraError
from streamdeid.types import Detections, Frame

HOG_WINDOW_PX = 80  # smallest face dlib's frontal detector finds without upsampling
DEFAULT_UPSAMPLE = 1
DEFAULT_MAX_HEIGHT = 720
DEFAULT_ADJUST_THRESHOLD = 0.0
INSTALL_HINT = "pip install 'streamdeid[eval]'"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as e:
        raise MissingExtraError(
            f"--detector dlib needs dlib ({e.name or e}): install it with {INSTALL_HINT}, "
            "or choose --detector centerface or blazeface"
        ) from e
    return dlib


class DlibDetector(Detector):
    """dlib's HOG frontal face detector on the grey frame, downscaled to ``max_height``.

    Args:
        upsample: times dlib doubles the image before scanning (each halves the smallest face
            found and roughly quadruples the time); 0 or more.
        adjust_threshold: minimum SVM score (dlib's ``adjust_threshold``), any finite number.
        max_height: frames taller than this are downscaled to it first (None or 0: never).

    Raises:
        MissingExtraError: dlib is not installed (names ``streamdeid[eval]``).
        ConfigError: a parameter out of range.
    """

    name = "dlib"

    def __init__(
        self,
        upsample: int = DEFAULT_UPSAMPLE,
        adjust_threshold: float = DEFAULT_ADJUST_THRESHOLD,
        max_height: int | None = DEFAULT_MAX_HEIGHT,
    ) -> None:
        if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 0:
            raise ConfigError(f"--dlib-upsample: expected a whole number >= 0, got {upsample!r}")
        if not math.isfinite(adjust_threshold):
            raise ConfigError(f"--threshold: expected a finite number, got {adjust_threshold}")
        if max_height is not None and (
            isinstance(max_height, bool) or not isinstance(max_height, int) or max_height < 0
        ):
            raise ConfigError(f"--max-height: expected a whole number >= 0, got {max_height!r}")
        dlib = _import_dlib()
        self.upsample = upsample
        self.adjust_threshold = float(adjust_threshold)
        self.max_height = max_height or None
        self._detector = dlib.get_frontal_face_detector()

    def scale_for(self, height: int) -> float:
        """Factor applied to a frame ``height`` px high before detection (1 = full size)."""
        if self.max_height is None or height <= self.max_height:
            return 1.0
        return self.max_height / height

    def min_face_px(self, height: int) -> float:
        """About the smallest face height (original pixels) found in a frame this tall."""
        return HOG_WINDOW_PX / 2**self.upsample / self.scale_for(height)

    def describe(self, height: int) -> str:
        """One line for reports: settings, scale at this frame height, smallest face found."""
        scale = self.scale_for(height)
        size = (
            f"{height} px frames run at {round(height * scale)} px (×{scale:.3g})"
            if scale < 1
            else f"{height} px frames at full size"
        )
        return (
            f"dlib HOG, upsample {self.upsample}, threshold {self.adjust_threshold:g}: {size}, "
            f"faces from ~{self.min_face_px(height):.0f} px found"
        )

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        image = as_image(frame)
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        h, w = grey.shape[:2]
        scale = self.scale_for(h)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        sx, sy = grey.shape[1] / w, grey.shape[0] / h
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(grey), self.upsample, self.adjust_threshold
        )
        if not rects:
            return Detections.empty()
        # dlib rectangles are inclusive of right/bottom; xyxy here is exclusive.
        boxes = np.array(
            [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64
        )
        boxes /= np.array([sx, sy, sx, sy])
        return Detections(boxes.astype(np.float32), np.asarray(scores, np.float32))
