"""Where things are on each frame of a synthetic clip: face paths and the virtual camera.

Scenarios are written as a few keyframes; these classes interpolate them to one position, size
and zoom per frame, and map the camera's world onto the screen. No pixels are drawn here (see
:mod:`streamdeid.testing.render`), so motion can be checked on plain numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamdeid.testing.sprites import FaceSprite

# The background covers the home view this many times over in each direction, so that panning
# and zooming out stay on real texture instead of mirrored border.
TEXTURE_SPAN = 3


def _as_float_array(values: object, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """``values`` as a finite float64 array of shape ``(n, *shape_tail)``, or ValueError."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        expected = ("n", *shape_tail)
        raise ValueError(f"{what} must have shape {expected}, but got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, but got NaN or inf")
    return array


def _interpolate_keyframes(
    n_frames: int, keyframes: Sequence[Sequence[float]], what: str
) -> np.ndarray:
    """Linearly interpolate (frame, v1, v2, ...) keyframes to (n_frames, k) values.

    Frames before the first / after the last keyframe hold its values, so a scenario only needs
    keyframes where something changes.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, but got {n_frames}")
    keys = np.asarray(keyframes, dtype=np.float64)
    if keys.ndim != 2 or keys.shape[0] < 1 or keys.shape[1] < 2:
        raise ValueError(
            f"{what} keyframes must be a non-empty list of tuples, but got {keys.shape}"
        )
    if np.any(np.diff(keys[:, 0]) <= 0):
        raise ValueError(
            f"{what} keyframe frames must be strictly increasing, but got {keys[:, 0]}"
        )
    frames = np.arange(n_frames, dtype=np.float64)
    return np.stack([np.interp(frames, keys[:, 0], keys[:, j]) for j in range(1, keys.shape[1])], 1)


@dataclass
class FacePath:
    """Where a sprite's face is on each frame: its centre in output pixels and the sprite scale.

    Centres may lie outside the frame, which is how a face leaves and re-enters the picture.
    """

    sprite: FaceSprite
    centers: np.ndarray  # (n, 2) float64: face-box centre (x, y) in output pixels
    scales: np.ndarray  # (n,) float64: resize factor applied to the whole sprite, > 0

    def __post_init__(self) -> None:
        self.centers = _as_float_array(self.centers, (2,), "FacePath.centers")
        self.scales = _as_float_array(self.scales, (), "FacePath.scales")
        if self.centers.shape[0] != self.scales.shape[0]:
            raise ValueError(
                f"FacePath needs one centre per scale, but got {self.centers.shape[0]} centres "
                f"and {self.scales.shape[0]} scales"
            )
        if np.any(self.scales <= 0):
            raise ValueError(f"FacePath.scales must be > 0, but got min {self.scales.min()}")

    def __len__(self) -> int:
        return int(self.scales.shape[0])

    @classmethod
    def from_keyframes(
        cls,
        sprite: FaceSprite,
        n_frames: int,
        keyframes: Sequence[tuple[float, float, float, float]],
    ) -> FacePath:
        """Build a path from ``(frame, cx, cy, face_height_px)`` keyframes.

        Keyframes give the face *height in output pixels* rather than a scale, because scenarios
        are written in terms of how large a face looks (what a detector sees), independent of how
        large it happens to be in a particular crop.
        """
        values = _interpolate_keyframes(n_frames, keyframes, "FacePath")
        if values.shape[1] != 3:
            raise ValueError(
                f"FacePath keyframes must be (frame, cx, cy, face_height), but got "
                f"{values.shape[1] + 1} values"
            )
        if np.any(values[:, 2] <= 0):
            raise ValueError("FacePath keyframe face heights must be > 0")
        return cls(sprite, values[:, :2], values[:, 2] / sprite.face_height)

    def face_box(self, index: int) -> tuple[float, float, float, float]:
        """The unclipped face box on frame ``index`` (ignoring pixel rounding and occlusion)."""
        cx, cy = self.centers[index]
        s = float(self.scales[index])
        half_w = self.sprite.face_width * s / 2
        half_h = self.sprite.face_height * s / 2
        return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


@dataclass
class CameraPath:
    """A virtual camera over the background: what it looks at, and how far it is zoomed in.

    World coordinates are output pixels of the *home view* (camera at the frame centre, zoom 1),
    so with a still camera world and screen coordinates coincide. Use :meth:`project` to pin an
    object (a face) to the world, so it pans and grows with the camera.
    """

    size: tuple[int, int]  # output (width, height)
    centers: np.ndarray  # (n, 2) float64: world point shown at the frame centre
    zooms: np.ndarray  # (n,) float64: screen pixels per world pixel, > 0

    def __post_init__(self) -> None:
        self.centers = _as_float_array(self.centers, (2,), "CameraPath.centers")
        self.zooms = _as_float_array(self.zooms, (), "CameraPath.zooms")
        if self.centers.shape[0] != self.zooms.shape[0]:
            raise ValueError(
                f"CameraPath needs one centre per zoom, but got {self.centers.shape[0]} centres "
                f"and {self.zooms.shape[0]} zooms"
            )
        if np.any(self.zooms <= 0):
            raise ValueError(f"CameraPath.zooms must be > 0, but got min {self.zooms.min()}")

    def __len__(self) -> int:
        return int(self.zooms.shape[0])

    @classmethod
    def from_keyframes(
        cls,
        size: tuple[int, int],
        n_frames: int,
        keyframes: Sequence[tuple[float, float, float, float]],
    ) -> CameraPath:
        """Build a camera path from ``(frame, cx, cy, zoom)`` keyframes in world coordinates."""
        values = _interpolate_keyframes(n_frames, keyframes, "CameraPath")
        if values.shape[1] != 3:
            raise ValueError(
                f"CameraPath keyframes must be (frame, cx, cy, zoom), but got "
                f"{values.shape[1] + 1} values"
            )
        return cls(size, values[:, :2], values[:, 2])

    @classmethod
    def still(cls, size: tuple[int, int], n_frames: int) -> CameraPath:
        """A camera that never moves: world coordinates are screen coordinates."""
        w, h = size
        return cls.from_keyframes(size, n_frames, [(0, w / 2, h / 2, 1.0)])

    def project(self, index: int, x: float, y: float) -> tuple[float, float]:
        """Screen position on frame ``index`` of the world point ``(x, y)``."""
        w, h = self.size
        cx, cy = self.centers[index]
        z = float(self.zooms[index])
        return ((x - cx) * z + w / 2, (y - cy) * z + h / 2)

    def affine(self, index: int) -> np.ndarray:
        """2x3 matrix mapping background-texture pixels to screen pixels on frame ``index``."""
        w, h = self.size
        cx, cy = self.centers[index]
        z = float(self.zooms[index])
        # Texture pixel (u, v) is world point (u - w, v - h): the home view sits in its middle.
        ox, oy = (TEXTURE_SPAN - 1) / 2 * w, (TEXTURE_SPAN - 1) / 2 * h
        return np.array(
            [[z, 0.0, w / 2 - z * (cx + ox)], [0.0, z, h / 2 - z * (cy + oy)]], dtype=np.float64
        )


def default_camera(size: tuple[int, int], n_frames: int) -> CameraPath:
    """A gentle pan to the right with a slow zoom in and back out.

    Enough motion that every background pixel changes (a static background would let an
    obscurer or tracker pass tests it should fail), little enough to keep clips small.
    """
    w, h = size
    last = max(n_frames - 1, 1)
    return CameraPath.from_keyframes(
        size,
        max(n_frames, 1),
        [
            (0, 0.45 * w, 0.5 * h, 1.0),
            (last / 2, 0.5 * w, 0.5 * h, 1.15),
            (last, 0.55 * w, 0.5 * h, 1.0),
        ],
    )
