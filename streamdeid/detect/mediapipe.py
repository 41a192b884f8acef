"""MediaPipe BlazeFace, run on the whole frame and on overlapping tiles.

We use the legacy ``mediapipe.solutions`` graph of ``mediapipe==0.10.14`` because its wheel ships
the BlazeFace short- and full-range models: the Tasks API of later releases downloads models at
run time, which fails offline. BlazeFace sees only 128 (short) or 192 (full) pixels, so a whole
720p frame shrinks a 30-px face to 8 px: tiles are what make it find CCTV-sized faces.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import cv2
import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.detect.tiling import merge_boxes, tile_grid
from streamdeid.errors import DetectorError
from streamdeid.types import Detections, Frame

log = logging.getLogger(__name__)

_INPUT_SIZE = {"full": 192, "short": 128}


def _quiet_native_logs() -> None:
    # TFLite/absl log to stderr from C++; keep the terminal for our progress bar.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence C++ start-up chatter (XNNPACK, absl) that bypasses Python logging.

    Only wraps graph creation and the first inference, never steady state, so a real native
    error later still reaches the user.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, embedded interpreters
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class MediaPipeDetector(Detector):
    """BlazeFace face detector with tiled inference.

    Args:
        model: "full" (full-range) or "short" (short-range) BlazeFace.
        confidence: minimum score kept; low by default because misses are leaks.
        tile_size: tile edge in source pixels, or None for whole-frame only.
        tile_overlap: fraction of overlap between neighbouring tiles.
        whole_frame: also run once on the whole frame (for faces larger than a tile).
        nms_iou: overlap above which boxes from different passes are merged.
    """

    name = "mediapipe"

    def __init__(
        self,
        model: Literal["full", "short"] = "full",
        confidence: float = 0.3,
        tile_size: int | None = 384,
        tile_overlap: float = 0.25,
        whole_frame: bool = True,
        nms_iou: float = 0.3,
    ) -> None:
        if model not in _INPUT_SIZE:
            raise ValueError(f"model must be 'full' or 'short', got {model!r}")
        if tile_size is None and not whole_frame:
            raise ValueError("tile_size is None and whole_frame is False: nothing would be run")
        _quiet_native_logs()
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as e:  # pragma: no cover - dependency is required
            raise DetectorError(f"mediapipe is not installed or broken: {e}") from e
        try:
            with _stderr_silenced():
                self._graph: Any = face_detection.FaceDetection(
                    model_selection=1 if model == "full" else 0,
                    min_detection_confidence=confidence,
                )
                self._graph.process(np.zeros((_INPUT_SIZE[model],) * 2 + (3,), np.uint8))
        except Exception as e:  # native graph errors have no common base class
            raise DetectorError(f"cannot load the BlazeFace {model}-range model: {e}") from e
        self.model = model
        self.input_size = _INPUT_SIZE[model]
        self.confidence = confidence
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.whole_frame = whole_frame
        self.nms_iou = nms_iou
        self._grid_cache: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}

    def windows(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Every window the detector looks through for a frame of this size."""
        key = (width, height)
        if key not in self._grid_cache:
            wins: list[tuple[int, int, int, int]] = []
            if self.whole_frame:
                wins.append((0, 0, width, height))
            if self.tile_size is not None and max(width, height) > self.tile_size * 1.25:
                wins.extend(tile_grid(width, height, self.tile_size, self.tile_overlap))
            if not wins:
                wins.append((0, 0, width, height))
            self._grid_cache[key] = wins
        return self._grid_cache[key]

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        image = as_image(frame)
        h, w = image.shape[:2]
        boxes: list[np.ndarray] = []
        scores: list[float] = []
        for x1, y1, x2, y2 in self.windows(w, h):
            found_xyxy, found_scores = self._run_window(image[y1:y2, x1:x2])
            if len(found_scores):
                found_xyxy[:, [0, 2]] += x1
                found_xyxy[:, [1, 3]] += y1
                boxes.append(found_xyxy)
                scores.extend(found_scores)
        if not boxes:
            return Detections.empty()
        xyxy, conf = merge_boxes(
            np.concatenate(boxes), np.asarray(scores, np.float32), self.nms_iou
        )
        return Detections(xyxy, conf)

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, list[float]]:
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
            return np.zeros((0, 4), np.float32), []
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
        return out, scores

    def close(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()
