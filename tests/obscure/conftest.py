"""Faces of many different people, for the surrogate tests (which need more than k identities).

The package ships two face crops; scikit-image (a dev dependency) ships ``lfw_subset``: 100
25x25 grey faces of different people from Labeled Faces in the Wild, in its wheel (no download).
Enlarged to ~100 px they are soft but real faces: the detector and the face mesh both find them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.sprites import FaceSprite, load_sample_faces

FACE_PX = 100  # enlarged LFW face side
MARGIN = 30  # background-coloured border around it, so the sprite's feather misses the face


def lfw_faces(n: int, size: int = FACE_PX) -> list[np.ndarray]:
    """The first ``n`` LFW faces of scikit-image, enlarged to ``size`` px, as BGR."""
    data = pytest.importorskip("skimage.data")
    faces = data.lfw_subset()[:n]  # the first 100 are faces, the rest are not
    out = []
    for face in faces:
        grey = cv2.resize(
            (face * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC
        )
        out.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    return out


def lfw_sprites(n: int) -> list[FaceSprite]:
    sprites = []
    for i, face in enumerate(lfw_faces(n)):
        image = cv2.copyMakeBorder(face, *[MARGIN] * 4, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        box = (MARGIN, MARGIN, MARGIN + FACE_PX, MARGIN + FACE_PX)
        sprites.append(FaceSprite(image, box, name=f"lfw{i}"))
    return sprites


def crowd_paths(size: tuple[int, int], n_frames: int) -> list[FacePath]:
    """Eight people in two rows (the two shipped faces and six LFW faces), drifting right."""
    w, h = size
    sprites = load_sample_faces() + lfw_sprites(6)
    paths = []
    for i, sprite in enumerate(sprites):
        cx, cy = (0.1 + 0.22 * (i % 4)) * w, (0.3 + 0.45 * (i // 4)) * h
        keys = [(0, cx, cy, 0.2 * h), (n_frames - 1, cx + 0.04 * w, cy, 0.21 * h)]
        paths.append(FacePath.from_keyframes(sprite, n_frames, keys))
    return paths


@pytest.fixture(scope="session")
def crowd_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A 24-frame 960x540 clip of eight different people (still camera) and its ground truth."""
    from streamdeid.testing.clip import write_clip
    from streamdeid.testing.render import render_frames

    size, n = (960, 540), 24
    path = tmp_path_factory.mktemp("crowd") / "crowd.mp4"
    frames = render_frames(size, n, crowd_paths(size, n), camera=CameraPath.still(size, n))
    return path, write_clip(path, frames, audio=False)
