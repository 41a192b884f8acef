"""Landmark displacement: does the anonymized face keep the pose and expression of the original?

An anonymizer that replaces a face (``surrogate``) should change who it is, not where the eyes,
nose and mouth are. The measure: dlib's 68-point shape predictor is run on the original frame and
on the paired output frame, both times in the *original's* face box (the independent detector's
box for a face it found in both). Holding the box fixed means only the picture can move the
points; the output's own box would add the detector's jitter to the figure.

A face's displacement is the mean distance, over the 68 points, between its original and output
points, divided by its inter-ocular distance: the distance between the outer eye corners (points
36 and 45, counted from 0) of the original's points. That normalisation is the usual one for 68
points (300-W), so a figure reads as "fractions of an eye-to-eye distance" at any face size.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from streamdeid.evaluate.reid import import_face_models

log = logging.getLogger(__name__)

POINTS = 68
OUTER_EYE_CORNERS = (36, 45)  # 0-based indices in the 68-point (iBUG 300-W) layout
MIN_INTEROCULAR_PX = 2.0  # below this the normalisation is meaningless: the face is skipped


def _import_models() -> tuple[Any, Any]:
    return import_face_models("the landmark check (--utility)", "leave out --utility")


def check_available() -> None:
    """Raise :class:`MissingExtraError` now, before any long work, when dlib is missing."""
    _import_models()


class LandmarkPredictor:
    """dlib's 68-point shape predictor (from ``face_recognition_models``) on given face boxes.

    Raises:
        MissingExtraError: dlib or face_recognition_models is not installed.
    """

    def __init__(self) -> None:
        dlib, models = _import_models()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(models.pose_predictor_model_location())

    def points(self, bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """(n, 68, 2) float32 points of the faces at ``xyxy`` (n, 4) in the BGR image."""
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        out = np.zeros((len(boxes), POINTS, 2), np.float32)
        if len(boxes) == 0:
            return out
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        h, w = rgb.shape[:2]
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            left, top = int(np.clip(round(x1), 0, w - 1)), int(np.clip(round(y1), 0, h - 1))
            right = int(np.clip(round(x2) - 1, left, w - 1))  # dlib: right/bottom inclusive
            bottom = int(np.clip(round(y2) - 1, top, h - 1))
            shape = self._shape(rgb, self._dlib.rectangle(left, top, right, bottom))
            out[k] = [(p.x, p.y) for p in shape.parts()]
        return out


def interocular(points: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance of each face in ``points`` (n, 68, 2), as (n,)."""
    p = np.asarray(points, np.float64).reshape(-1, POINTS, 2)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(p[:, a] - p[:, b], axis=1)


def displacement(original: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Mean point distance per face, in inter-ocular distances of the original, as (n,).

    Faces whose original inter-ocular distance is under ``MIN_INTEROCULAR_PX`` get NaN (the
    predictor collapsed; dividing by it would make any noise huge).

    Example:
        >>> face = np.zeros((1, 68, 2)); face[0, 45] = (40, 0)  # eyes 40 px apart
        >>> displacement(face, face + (4, 3)).round(3)  # every point moved 5 px
        array([0.125])
    """
    a = np.asarray(original, np.float64).reshape(-1, POINTS, 2)
    b = np.asarray(output, np.float64).reshape(-1, POINTS, 2)
    iod = interocular(a)
    mean = np.linalg.norm(a - b, axis=2).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(iod >= MIN_INTEROCULAR_PX, mean / iod, np.nan)
