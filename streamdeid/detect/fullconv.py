"""What every fully convolutional backend shares: scales, a size floor, mirror padding.

CenterFace and RetinaFace read any input size whose sides are multiples of 32, so they see a
window at a chosen scale of its source pixels rather than squeezed into a fixed input. This
module holds the part both do the same way: pick the network size for a scale, resize, pad the
border with its mirror image, map boxes back to window pixels, merge the scales. A backend only
implements :meth:`FullyConvolutionalDetector._forward`: the model on one prepared BGR image.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from streamdeid.detect.tiled import TiledDetector, Window
from streamdeid.detect.tiling import weighted_nms
from streamdeid.errors import DetectorError
from streamdeid.limits import MAX_EDGE_PAD, MAX_INPUT_HEIGHT, MAX_SCALE, MIN_SCALE
from streamdeid.types import Detections

ALIGN = 32  # total downsampling of both networks: input sides must be multiples of it


def onnx_session(ort: Any, model: bytes, threads: int, label: str) -> Any:
    """An onnxruntime CPU session that leaves the other core to the decoder and encoder.

    Spinning worker threads would take CPU from the decoder and x264 threads, which on two
    cores costs more than the wake-up latency it saves.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise DetectorError(f"onnxruntime cannot load {label}: {e}") from e


def aligned(side: float) -> int:
    """``side`` network pixels rounded up to a multiple of :data:`ALIGN` (at least one).

    A scale made to hit a multiple exactly (``832 / h`` times ``h`` rows) lands a rounding
    error above it for some ``h`` (358, 361 ...): a plain ceil then adds 32 rows of work.
    """
    return max(ALIGN, math.ceil(side / ALIGN - 1e-6) * ALIGN)


def resize_for_network(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height`` without aliasing small faces away.

    Bilinear is area averaging for shrinks down to 1/2 (it reads every source pixel) and 6x
    cheaper; beyond 1/2 it would skip pixels, so the image is first halved by exact 2x2 means
    (OpenCV's fast path for whole factors) until at most a 2x shrink is left. A 1080p frame to
    the 640x384 cheap pass: 1.1 ms, against 6.5 ms for one area resize at that ratio (whose
    general path is slow), within 0.6 grey levels of it on average.
    """
    h, w = image.shape[:2]
    while (width * 2 < w or height * 2 < h) and w % 2 == 0 and h % 2 == 0:
        w, h = w // 2, h // 2
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    far = width * 2 < w or height * 2 < h  # odd sides: area averaging for the rest
    interp = cv2.INTER_AREA if far else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def nchw_blob(
    image: np.ndarray, mean: tuple[float, float, float] = (0.0, 0.0, 0.0), *, rgb: bool = False
) -> np.ndarray:
    """(1, 3, h, w) float32 network input from a BGR image, minus a per-channel mean.

    One plane at a time through OpenCV: 4x faster than ``cv2.dnn.blobFromImage`` or a numpy
    transpose at 1080p (2 vs 9 ms), bit-identical.
    """
    planes = cv2.split(image)
    if rgb:
        planes = planes[::-1]
    blob = np.empty((1, 3, *image.shape[:2]), np.float32)
    for c, plane in enumerate(planes):
        cv2.subtract(plane, mean[c], dst=blob[0, c], dtype=cv2.CV_32F)
    return blob


class FullyConvolutionalDetector(TiledDetector):
    """A model that takes any input size, run on each window at one or more scales.

    Args:
        confidence: minimum score kept.
        scales: input scales relative to each window, each run and merged: <1 is cheaper and
            enough for large faces, >1 finds tiny ones.
        nms_iou: boxes from different scales/windows overlapping more than this are merged.
        edge_pad: network pixels of mirror padding around each window (multiple of 16 keeps
            the sides multiples of 32).
        min_input_height: scales are raised so the network sees the *frame* at least this
            tall; small video is never shrunk below it.
        tile_size, tile_overlap, whole_frame, max_tiles_per_frame: see :class:`TiledDetector`.
    """

    def __init__(
        self,
        confidence: float,
        scales: Sequence[float] = (1.0,),
        nms_iou: float = 0.3,
        *,
        edge_pad: int = 16,
        min_input_height: int = 0,
        tile_size: int | None = None,
        tile_overlap: float = 0.25,
        whole_frame: bool = True,
        max_tiles_per_frame: int | None = None,
    ) -> None:
        super().__init__(
            confidence=confidence,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            whole_frame=whole_frame,
            nms_iou=nms_iou,
            max_tiles_per_frame=max_tiles_per_frame,
        )
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or any(not MIN_SCALE <= s <= MAX_SCALE for s in self.scales):
            raise ValueError(
                f"scales must be non-empty, each in {MIN_SCALE}..{MAX_SCALE}, got {list(scales)}"
            )
        if not 0 <= edge_pad <= MAX_EDGE_PAD:
            raise ValueError(
                f"edge_pad must be in 0..{MAX_EDGE_PAD} network pixels, got {edge_pad}"
            )
        self.edge_pad = int(edge_pad)
        if not 0 <= min_input_height <= MAX_INPUT_HEIGHT:
            raise ValueError(
                f"min_input_height must be in 0..{MAX_INPUT_HEIGHT}, got {min_input_height}"
            )
        self.min_input_height = int(min_input_height)
        self._scale_floor = 0.0

    def detect_windows(self, image: np.ndarray, windows: list[Window]) -> Detections:
        # The floor comes from the frame, not the window: a motion-gated crop of a 270p frame
        # must be seen at the same pixel scale as the whole frame, so its faces stay in range.
        self._scale_floor = self.min_input_height / max(1, image.shape[0])
        return self._detect(image, windows, self.effective_scales())

    def detect_at(self, image: np.ndarray, windows: Sequence[Window], scale: float) -> Detections:
        """Faces in ``windows`` of ``image``, each seen at ``scale`` (no floor, no other scale).

        For schedulers that choose the resolution per window themselves (a cheap pass over the
        whole frame, a fine one around known faces).
        """
        return self._detect(image, windows, (scale,))

    def effective_scales(self) -> tuple[float, ...]:
        """``scales`` raised to the frame's floor (``min_input_height``), duplicates dropped.

        Half scale suits 720p and up, but on a 270p camera it would halve 20-px faces out of
        range; the floor keeps the network input at least ``min_input_height`` tall.
        """
        return tuple(dict.fromkeys(max(s, self._scale_floor) for s in self.scales))

    def _detect(
        self, image: np.ndarray, windows: Sequence[Window], scales: Sequence[float]
    ) -> Detections:
        height, width = image.shape[:2]

        def run(crop: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
            # Mirror padding only across the frame's own edges: inside the frame a window's
            # border has real pixels around it, and the window was chosen to hold its faces.
            x1, y1, x2, y2 = window
            return self._run_scales(crop, scales, x1 == 0 or x2 == width, y1 == 0 or y2 == height)

        return self._each_window(image, windows, run)

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._run_scales(window, self.effective_scales(), True, True)

    def _run_scales(
        self, window: np.ndarray, scales: Sequence[float], pad_x: bool, pad_y: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = [], []
        for scale in scales:
            found, conf = self._run_scale(window, scale, pad_x, pad_y)
            boxes.append(found)
            scores.append(conf)
        xyxy, conf = np.concatenate(boxes), np.concatenate(scores)
        if len(scales) > 1 and len(conf):
            xyxy, conf = weighted_nms(xyxy, conf, self.nms_iou)
        return xyxy, conf

    def _run_scale(
        self, window: np.ndarray, scale: float, pad_x: bool = True, pad_y: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one window seen at ``scale``: window-pixel xyxy clipped to it, scores."""
        h, w = window.shape[:2]
        net_w, net_h = aligned(w * scale), aligned(h * scale)
        if (net_w, net_h) != (w, h):
            window = resize_for_network(window, net_w, net_h)
        px, py = self.edge_pad * pad_x, self.edge_pad * pad_y
        if px or py:
            # A face entering the frame is cut in half, and half a face is rarely detected. The
            # mirror image across the edge completes it into a (symmetric) whole face, found
            # from the first frame it shows.
            window = cv2.copyMakeBorder(window, py, py, px, px, cv2.BORDER_REFLECT_101)
        xyxy, conf = self._forward(window)
        if len(conf) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        xyxy = xyxy - np.array([px, py, px, py], np.float32)
        # Network pixels → window pixels (each side was stretched to a multiple of 32).
        xyxy *= np.array([w / net_w, h / net_h, w / net_w, h / net_h], np.float32)
        np.clip(xyxy, 0, [w, h, w, h], out=xyxy)
        xyxy = xyxy.astype(np.float32)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return weighted_nms(xyxy[keep], conf[keep].astype(np.float32), self.nms_iou)

    @abstractmethod
    def _forward(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model on one BGR image whose sides are multiples of 32: every box above
        ``confidence`` in image pixels (n, 4) and its score (n,), before any NMS."""
