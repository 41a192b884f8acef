"""A crowd scenario: eight different people at once, for the surrogate method.

The surrogate method averages the faces of ``k`` (5) *other* people of a recording, so it only
draws a face once six or more people have been seen. The package ships two face crops;
scikit-image (a dev dependency, not needed to run streamdeid) ships ``lfw_subset``: 100 25x25
grey faces of different people from Labeled Faces in the Wild, inside its wheel (nothing is
downloaded). Enlarged to ~100 px they are soft but real faces, found by the detector and the
face mesh. The crowd is the two shipped faces and six LFW faces, in two rows, drifting right.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamdeid.testing.clip import write_clip
from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import FaceSprite, load_sample_faces

FACE_PX = 100  # enlarged LFW face side
MARGIN = 30  # grey border around it, so the sprite's feathered edge stays off the face


def lfw_faces(n: int, size: int = FACE_PX) -> list[np.ndarray]:
    """The first ``n`` (<= 100) LFW faces of scikit-image, enlarged to ``size`` px, as BGR.

    Raises:
        ImportError: scikit-image is not installed (``pip install scikit-image``).
    """
    from skimage import data

    faces = data.lfw_subset()[: min(n, 100)]  # the first 100 are faces, the rest are not
    out = []
    for face in faces:
        grey = (face * 255).astype(np.uint8)
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_CUBIC)
        out.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    return out


def write_site_gallery(folder: Path, n: int, first: int = 20, size: int = 120) -> Path:
    """``n`` LFW portraits, from the ``first``-th face on, as PNG files in a new ``folder``:
    a site gallery for the surrogate method made of people not in the crowd scenario (which
    uses the first faces), each with a grey border so the detector sees some picture round it.
    """
    folder.mkdir(parents=True)
    for i, face in enumerate(lfw_faces(first + n, size)[first:]):
        border = size // 2
        portrait = cv2.copyMakeBorder(face, *[border] * 4, cv2.BORDER_CONSTANT, value=(120,) * 3)
        cv2.imwrite(str(folder / f"person{i:02d}.png"), portrait)
    return folder


def lfw_sprites(n: int) -> list[FaceSprite]:
    """LFW faces as sprites whose face box is the whole enlarged face."""
    sprites = []
    for i, face in enumerate(lfw_faces(n)):
        image = cv2.copyMakeBorder(face, *[MARGIN] * 4, cv2.BORDER_CONSTANT, value=(128,) * 3)
        box = (MARGIN, MARGIN, MARGIN + FACE_PX, MARGIN + FACE_PX)
        sprites.append(FaceSprite(image, box, name=f"lfw{i}"))
    return sprites


def crowd_paths(size: tuple[int, int], n_frames: int) -> list[FacePath]:
    """Eight people in two rows of four, faces 1/5 of the frame high, drifting right."""
    w, h = size
    sprites = load_sample_faces() + lfw_sprites(6)
    last = max(n_frames - 1, 1)
    paths = []
    for i, sprite in enumerate(sprites):
        cx, cy = (0.1 + 0.22 * (i % 4)) * w, (0.3 + 0.45 * (i // 4)) * h
        keys = [(0, cx, cy, 0.2 * h), (last, cx + 0.04 * w, cy, 0.21 * h)]
        paths.append(FacePath.from_keyframes(sprite, n_frames, keys))
    return paths


def crowd_clip(path: str | Path, n_frames: int, size: tuple[int, int]) -> list[dict]:
    """Write the crowd (still camera, no audio) to ``path``; returns its ground truth."""
    camera = CameraPath.still(size, n_frames)
    frames = render_frames(size, n_frames, crowd_paths(size, n_frames), camera=camera)
    return write_clip(path, frames, audio=False)
