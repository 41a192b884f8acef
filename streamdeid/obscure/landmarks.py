"""MediaPipe's 468-point face mesh, run directly with LiteRT (no MediaPipe graph).

The surrogate method needs the shape of each masked face (pose and expression) to warp another
face onto it. ``face_landmark.tflite`` ships in the ``mediapipe==0.10.14`` wheel; it is read from
the installed ``mediapipe`` package, like the BlazeFace models of
:mod:`streamdeid.detect.blazeface`, never from the repository or the network.

Model contract (MediaPipe's face_landmark graph): input (1, 192, 192, 3) float32 RGB in [0, 1],
a square crop around the face with ~25% margin on each side; outputs 468 (x, y, z) points in
crop pixels and one face-presence logit. The crop here is upright (MediaPipe rotates it by the
eye line first): strongly tilted faces fit worse or fail the presence score (not measured),
and a failed fit only means the region stays blurred.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamdeid.detect.litert import load_interpreter
from streamdeid.errors import DetectorError

log = logging.getLogger(__name__)

INPUT_SIZE = 192
N_POINTS = 468
CROP_SCALE = 1.15
"""Crop side / larger side of the region. Regions are face boxes padded by ``mask_scale``
(1.3), so this gives the ~1.5x face box the model was trained on."""

FIT_MARGIN = 1.3
"""A detector's tight face box is grown by this before :meth:`LandmarkFitter.fit_face` (the
``mask_scale`` padding of a region): with CROP_SCALE, the ~1.5x face box the model was trained
on."""

MIN_PRESENCE = 0.5
"""Fits whose face-presence probability is lower are failures (the region is only blurred)."""


@dataclass(frozen=True, slots=True)
class FaceFit:
    """One fitted face: 468 landmark (x, y) positions in frame pixels and the presence score.

    ``depth`` is the model's z per point (frame pixels, relative; smaller is nearer the camera):
    with it a turned face can be laid out as seen from the front
    (:func:`streamdeid.obscure.face_shape.frontal`).
    """

    points: np.ndarray  # (468, 2) float32, frame pixels
    presence: float
    depth: np.ndarray | None = None  # (468,) float32, frame pixels


def model_path() -> Path:
    """``face_landmark.tflite`` inside the installed mediapipe package."""
    try:
        import mediapipe
    except ImportError as e:  # pragma: no cover - required dependency
        raise DetectorError(f"mediapipe (which ships the face mesh model) is missing: {e}") from e
    return Path(mediapipe.__file__).parent / "modules" / "face_landmark" / "face_landmark.tflite"


class LandmarkFitter:
    """Fits the face mesh inside a region box; one interpreter, used by one thread.

    Args:
        threads: interpreter threads; 1 leaves the other core to decode and encode.
        min_presence: face-presence probability below which :meth:`fit` returns None.
    """

    def __init__(self, threads: int = 1, min_presence: float = MIN_PRESENCE) -> None:
        self.min_presence = min_presence
        self._interpreter = self._load(threads)

    def _load(self, threads: int) -> Any:
        path = model_path()
        interpreter, inp, outs = load_interpreter(path, threads, "face mesh")
        found = (tuple(inp["shape"]), tuple(outs[0]["shape"]))
        expected = ((1, INPUT_SIZE, INPUT_SIZE, 3), (1, 1, 1, N_POINTS * 3))
        if found != expected:
            raise DetectorError(f"{path.name}: expected input/output {expected}, got {found}")
        self._input = inp["index"]
        self._points, self._presence = outs[0]["index"], outs[1]["index"]
        return interpreter

    def fit(self, image: np.ndarray, box: tuple[int, int, int, int]) -> FaceFit | None:
        """Landmarks of the face in ``box`` of ``image`` (BGR), or None when no face is found."""
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * CROP_SCALE
        if side < 4:
            return None
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        k = INPUT_SIZE / side
        half = INPUT_SIZE / 2
        m = np.array([[k, 0, half - cx * k], [0, k, half - cy * k]], np.float32)
        crop = cv2.warpAffine(
            image,
            m,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
        it = self._interpreter
        it.set_tensor(self._input, tensor[None])
        it.invoke()
        logit = float(it.get_tensor(self._presence).ravel()[0])
        presence = 1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))
        if presence < self.min_presence:
            return None
        raw = it.get_tensor(self._points).reshape(N_POINTS, 3)
        points = (raw[:, :2] - half) / k + np.float32([cx, cy])
        depth = raw[:, 2] / k
        return FaceFit(points.astype(np.float32), float(presence), depth.astype(np.float32))

    def fit_face(
        self, image: np.ndarray, face: tuple[float, float, float, float]
    ) -> FaceFit | None:
        """Landmarks of the face whose tight (detector or tracker) box is ``face``: fitted in
        the square :data:`FIT_MARGIN` times its longer side, on the same centre."""
        cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
        half = max(face[2] - face[0], face[3] - face[1]) * FIT_MARGIN / 2
        box = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
        return self.fit(image, box)
