"""Face sprites: real face photos with their face box, and the crops shipped with the package.

A sprite is what gets pasted into a synthetic frame; knowing the face box inside it to the pixel
is what makes the ground truth of every rendered frame exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import cv2
import numpy as np

# Package data, read through importlib.resources so a wheel install has them too.
FACES_PACKAGE = "streamdeid.testing"
FACES_JSON = "faces.json"


@dataclass(frozen=True, eq=False)
class FaceSprite:
    """A photo containing one face, and where that face is inside it.

    ``eq=False``: sprites compare by identity, because comparing pixel arrays element-wise is
    neither cheap nor a meaningful equality. The image is stored as a read-only copy since one
    sprite is typically shared by several paths and frames.
    """

    image: np.ndarray  # (h, w, 3) uint8 BGR
    face_xyxy: tuple[int, int, int, int]  # tight face box inside ``image``, x2/y2 exclusive
    name: str = ""

    def __post_init__(self) -> None:
        image = self.image
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"FaceSprite.image must be (h, w, 3), but got {shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"FaceSprite.image must be uint8, but got {image.dtype}")
        h, w = image.shape[:2]
        box = tuple(int(v) for v in self.face_xyxy)
        if len(box) != 4:
            raise ValueError(f"FaceSprite.face_xyxy must have 4 values, but got {self.face_xyxy}")
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ValueError(
                f"FaceSprite.face_xyxy must be a non-empty box inside the {w}x{h} image, "
                f"but got {box}"
            )
        frozen = np.array(image, dtype=np.uint8, order="C", copy=True)
        frozen.setflags(write=False)
        object.__setattr__(self, "image", frozen)
        object.__setattr__(self, "face_xyxy", box)

    @property
    def face_width(self) -> int:
        return self.face_xyxy[2] - self.face_xyxy[0]

    @property
    def face_height(self) -> int:
        return self.face_xyxy[3] - self.face_xyxy[1]

    @cached_property
    def alpha(self) -> np.ndarray:
        """Opacity (h, w) float32 in [0, 1]: opaque inside, feathered towards the edges.

        A hard rectangular edge is a strong, unnatural gradient that would give detectors and
        encoders something to latch onto; feathering hides the seam. The ramp never reaches the
        face box, so the face itself is always drawn at full opacity and the ground truth stays
        exact.
        """
        h, w = self.image.shape[:2]
        x1, y1, x2, y2 = self.face_xyxy
        margin = min(x1, y1, w - x2, h - y2)
        feather = max(1.0, min(0.12 * min(h, w), float(margin)))

        def ramp(n: int) -> np.ndarray:
            centres = np.arange(n, dtype=np.float32) + 0.5
            t = np.clip(np.minimum(centres, n - centres) / feather, 0.0, 1.0)
            return t * t * (3.0 - 2.0 * t)  # smoothstep: no visible kink where the ramp ends

        return np.outer(ramp(h), ramp(w)).astype(np.float32)


def load_sample_faces(faces_dir: Path | Traversable | None = None) -> list[FaceSprite]:
    """Load the shipped face crops listed in ``faces/faces.json``, sorted by file name.

    Args:
        faces_dir: A folder holding ``faces.json`` and the crops it lists; defaults to the ones
            installed with the package.

    Raises:
        FileNotFoundError: The directory, ``faces.json`` or a listed image is missing (they are
            produced by ``samples/make_sample.py``).
        ValueError: ``faces.json`` or an image is malformed.
    """
    if faces_dir is None:
        faces_dir = resources.files(FACES_PACKAGE) / "faces"
    index_path = faces_dir / FACES_JSON
    if not index_path.is_file():
        raise FileNotFoundError(
            f"sample faces index not found at {index_path}; "
            "run `python samples/make_sample.py` to create it"
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{index_path} is not valid JSON: {error}") from error
    if not isinstance(index, dict) or not index:
        raise ValueError(f"{index_path} must map image names to face boxes, but got {index!r}")
    sprites = []
    for name in sorted(index):
        image_path = faces_dir / name
        if not image_path.is_file():
            raise FileNotFoundError(
                f"sample face image {image_path} listed in {index_path} is missing"
            )
        data = np.frombuffer(image_path.read_bytes(), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise ValueError(f"{image_path} could not be decoded as an image")
        sprites.append(FaceSprite(image=image, face_xyxy=tuple(index[name]), name=name))
    return sprites
