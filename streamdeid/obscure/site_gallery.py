"""A site gallery: faces the operator supplies, so surrogates need not wait for k people.

Without it a surrogate is the mean of ``k`` other people *of the same recording*, so a scene
with fewer than ``k + 1`` people (a corridor camera, a two-person interview, a single photo) is
only ever blurred, and a crowded one is blurred until enough tracks have been fitted. A folder
of portraits (staff who agreed to it, or licensed stock photos; never people who may appear in
the footage, whose own face could then contribute to theirs) gives every target ``k`` other
identities from the first frame.

Each image file is one identity: the largest face the detector finds in it, fitted with the
same face mesh as the footage. The folder is read once at start-up; the aligned faces live in
the filter's in-memory gallery only, like the recording's own (never written or logged).
Files that are not images, or hold no face the mesh accepts, are skipped with a warning that
names them; a folder that gives no face at all is an error, since the user asked for one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamdeid.errors import ConfigError
from streamdeid.io.source import is_image_path
from streamdeid.obscure.landmarks import FaceFit, LandmarkFitter

log = logging.getLogger(__name__)

MAX_FILES = 200
"""Enough people to draw k from; every portrait costs a detector and a mesh run at start-up."""
MAX_PIXELS = 40_000_000
"""Larger files are skipped: a portrait needs far fewer, and decoding costs memory."""


@dataclass(frozen=True, slots=True)
class SiteFace:
    """One portrait of the gallery: the image and the mesh fitted to its largest face."""

    name: str  # file name, for messages only
    image: np.ndarray
    fit: FaceFit


def load_site_faces(folder: Path, fitter: LandmarkFitter) -> list[SiteFace]:
    """The fitted faces of the images in ``folder`` (not recursive), sorted by file name.

    Raises:
        ConfigError: the folder does not exist, is not a folder, or gives no usable face.
    """
    label = "obscure.surrogate_gallery"
    if not folder.is_dir():
        raise ConfigError(f"{label}: expected a folder of face photos, '{folder}' is not one")
    files = sorted(p for p in folder.iterdir() if is_image_path(p))
    if len(files) > MAX_FILES:
        log.warning("%s: using the first %d of %d images", label, MAX_FILES, len(files))
        files = files[:MAX_FILES]
    detector = _detector()
    faces = []
    try:
        for path in files:
            face = _fit_file(path, detector, fitter)
            if face is not None:
                faces.append(face)
    finally:
        detector.close()
    if not faces:
        raise ConfigError(
            f"{label}: expected photos with one clear face each in '{folder}', found "
            f"{len(files)} image file(s) and no face the face mesh accepts"
        )
    log.info("%s: %d of %d photos give a face", label, len(faces), len(files))
    return faces


def _detector():
    from streamdeid.detect.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(confidence=0.5, min_input_height=320)


def _fit_file(path: Path, detector, fitter: LandmarkFitter) -> SiteFace | None:
    image = _read(path)
    if image is None:
        return None
    found = detector.detect(image)
    if not len(found):
        log.warning("surrogate gallery: no face found in '%s', skipped", path.name)
        return None
    sides = np.maximum(found.xyxy[:, 2] - found.xyxy[:, 0], found.xyxy[:, 3] - found.xyxy[:, 1])
    x1, y1, x2, y2 = (float(v) for v in found.xyxy[int(np.argmax(sides))])
    fit = fitter.fit_face(image, (x1, y1, x2, y2))
    if fit is None:
        log.warning("surrogate gallery: the face in '%s' could not be fitted, skipped", path.name)
        return None
    return SiteFace(path.name, image, fit)


def _read(path: Path) -> np.ndarray | None:
    data = np.fromfile(path, np.uint8)
    header = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)  # size check before full decode
    if header is None:
        log.warning("surrogate gallery: '%s' is not an image OpenCV can read, skipped", path.name)
        return None
    if header.size * 64 > MAX_PIXELS:
        log.warning("surrogate gallery: '%s' has over %d pixels, skipped", path.name, MAX_PIXELS)
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)
