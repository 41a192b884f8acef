"""MediaPipe BlazeFace, run on the whole frame and on overlapping tiles.

We use the legacy ``mediapipe.solutions`` graph of ``mediapipe==0.10.14`` because its wheel ships
the BlazeFace short- and full-range models: the Tasks API of later releases downloads models at
run time, which fails offline. BlazeFace sees only 128 (short) or 192 (full) pixels, so a whole
720p frame shrinks a 30-px face to 8 px: tiles are what make it find CCTV-sized faces.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import cv2
import numpy as np

from streamdeid.detect.native_logs import quiet_native_logs, stderr_silenced
from streamdeid.detect.tiled import TiledDetector
from streamdeid.errors import DetectorError

log = logging.getLogger(__name__)

_INPUT_SIZE = {"full": 192, "short": 128}


class MediaPipeDetector(TiledDetector):
    """BlazeFace through MediaPipe's own graph (``mediapipe.solutions.face_detection``).

    Kept as the reference for :class:`BlazeFaceDetector`, which runs the same model files about 2×
    faster without the graph.

    Args:
        model: "full" (full-range) or "short" (short-range) BlazeFace.
        **tiling: see :class:`TiledDetector`.
    """

    name = "mediapipe"

    def __init__(self, model: Literal["full", "short"] = "full", **tiling: Any) -> None:
        if model not in _INPUT_SIZE:
            raise ValueError(f"model must be 'full' or 'short', got {model!r}")
        super().__init__(**tiling)
        quiet_native_logs()
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as e:  # pragma: no cover - dependency is required
            raise DetectorError(f"mediapipe is not installed or broken: {e}") from e
        try:
            with stderr_silenced():
                self._graph: Any = face_detection.FaceDetection(
                    model_selection=1 if model == "full" else 0,
                    min_detection_confidence=self.confidence,
                )
                self._graph.process(np.zeros((_INPUT_SIZE[model],) * 2 + (3,), np.uint8))
        except Exception as e:  # native graph errors have no common base class
            raise DetectorError(f"cannot load the BlazeFace {model}-range model: {e}") from e
        self.model = model
        self.input_size = _INPUT_SIZE[model]

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wh, ww = window.shape[:2]
        # Downscale ourselves (area filter, on the small copy only): cheaper than letting the
        # graph convert the full-size window, and anti-aliased so small faces keep their shape.
        scale = self.input_size / max(wh, ww)
        if scale < 1.0:
            size = (max(1, round(ww * scale)), max(1, round(wh * scale)))
            small = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
        else:
            small = window
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        result = self._graph.process(rgb)
        if not result.detections:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        out = np.empty((len(result.detections), 4), np.float32)
        scores = []
        for i, det in enumerate(result.detections):
            bb = det.location_data.relative_bounding_box
            out[i] = (
                bb.xmin * ww,
                bb.ymin * wh,
                (bb.xmin + bb.width) * ww,
                (bb.ymin + bb.height) * wh,
            )
            scores.append(float(det.score[0]) if det.score else 1.0)
        return out, np.asarray(scores, np.float32)

    def close(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()
