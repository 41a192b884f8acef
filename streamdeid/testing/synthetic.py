"""Synthetic clips with exact face ground truth, for tests, benchmarks and the shipped sample.

Real footage with faces cannot be shipped (licensing, consent), and hand-labelled boxes drift by a
few pixels. Here we paste real, detectable face photos (the public-domain / CC0 crops in
``streamdeid/testing/faces``, package data) onto a procedural background seen through a virtual
panning and zooming camera, so every frame's face boxes are known to the pixel.
``samples/make_sample.py`` and the tests share this one code path, so the sample clip and the
test clips cannot disagree on how a face is drawn.

Conventions: images are BGR ``uint8``; boxes are ``(x1, y1, x2, y2)`` integer pixels of the output
frame with ``x2``/``y2`` exclusive; ground-truth ``pts`` are frame indices in a ``1/fps`` time base.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import av
import cv2
import numpy as np

logger = logging.getLogger(__name__)

# Package data, read through importlib.resources so a wheel install has them too.
FACES_PACKAGE = "streamdeid.testing"
FACES_JSON = "faces.json"

Box = tuple[int, int, int, int]

AUDIO_RATE = 48_000
# -20 dBFS: audible when checking a clip by ear, quiet enough not to startle anyone.
AUDIO_AMPLITUDE = 0.1
# A visible part thinner than this is not a face any detector or viewer could recognise.
MIN_VISIBLE_PX = 2
# The background covers the home view this many times over in each direction, so that panning
# and zooming out stay on real texture instead of mirrored border.
_TEXTURE_SPAN = 3


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
        ox, oy = (_TEXTURE_SPAN - 1) / 2 * w, (_TEXTURE_SPAN - 1) / 2 * h
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


def background_texture(size: tuple[int, int], seed: int) -> np.ndarray:
    """A seeded, colourful, cloudy texture covering the world around the home view.

    Made of value noise at several scales (fractal clouds) plus a faint grid of tiles, so that
    a pan is obviously visible everywhere, yet nothing resembles a face. Mid and low frequencies
    dominate because fine noise is expensive to encode and would bloat the shipped sample.
    """
    w, h = size
    tw, th = _TEXTURE_SPAN * w, _TEXTURE_SPAN * h
    rng = np.random.default_rng(seed)
    texture = np.zeros((th, tw, 3), np.float32)
    total = 0.0
    for cell, weight in ((240, 1.0), (120, 0.6), (60, 0.4), (24, 0.3), (8, 0.2), (3, 0.1)):
        grid = rng.random((th // cell + 3, tw // cell + 3, 3), dtype=np.float32)
        up = cv2.resize(
            grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC
        )
        texture += weight * up[cell : cell + th, cell : cell + tw]
        total += weight
    texture /= total
    # Stretch the (centre-heavy) noise histogram and tint it so the channels do not look grey.
    lo, hi = np.percentile(texture, (1, 99))
    texture = np.clip((texture - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    tint = rng.uniform(0.55, 1.0, size=3).astype(np.float32)
    texture = 40.0 + 170.0 * texture * tint
    ys, xs = np.mgrid[0:th, 0:tw]
    tiles = ((xs // 80 + ys // 80) % 2).astype(np.float32)
    texture += (tiles * 10.0 - 5.0)[..., None]
    return np.clip(texture, 0, 255).astype(np.uint8)


def _paste(
    frame: np.ndarray, labels: np.ndarray, path: FacePath, index: int, label: int
) -> Box | None:
    """Alpha-blend ``path``'s sprite into ``frame`` and mark its face pixels in ``labels``.

    Returns the unclipped, integer face box, or None when the sprite is entirely off-frame.
    """
    fh, fw = frame.shape[:2]
    sprite = path.sprite
    sh, sw = sprite.image.shape[:2]
    s = float(path.scales[index])
    nw, nh = max(1, round(sw * s)), max(1, round(sh * s))
    sx, sy = nw / sw, nh / sh
    fx1, fy1, fx2, fy2 = sprite.face_xyxy
    cx, cy = path.centers[index]
    ox = round(cx - (fx1 + fx2) / 2 * sx)
    oy = round(cy - (fy1 + fy2) / 2 * sy)
    # Visible window of the sprite in frame coordinates.
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + nw, fw), min(oy + nh, fh)
    if x1 <= x0 or y1 <= y0:
        return None
    interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sprite.image, (nw, nh), interpolation=interpolation)
    alpha = cv2.resize(sprite.alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
    window = (slice(y0, y1), slice(x0, x1))
    local = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    a = alpha[local][..., None]
    under = frame[window].astype(np.float32)
    frame[window] = np.rint(under + (image[local].astype(np.float32) - under) * a).astype(np.uint8)
    # Whatever this sprite covers hides faces drawn before it; then its own face is on top.
    labels[window][alpha[local] >= 0.5] = -1
    face = (ox + round(fx1 * sx), oy + round(fy1 * sy), ox + round(fx2 * sx), oy + round(fy2 * sy))
    labels[max(face[1], 0) : max(face[3], 0), max(face[0], 0) : max(face[2], 0)] = label
    return face


def _visible_box(labels: np.ndarray, face: Box, label: int) -> Box | None:
    """Bounding box of the pixels of ``face`` still showing on the final frame, if big enough."""
    h, w = labels.shape
    x1, y1 = min(max(face[0], 0), w), min(max(face[1], 0), h)
    x2, y2 = min(max(face[2], 0), w), min(max(face[3], 0), h)
    if x2 - x1 < MIN_VISIBLE_PX or y2 - y1 < MIN_VISIBLE_PX:
        return None
    mine = labels[y1:y2, x1:x2] == label
    cols = np.flatnonzero(mine.any(axis=0))
    rows = np.flatnonzero(mine.any(axis=1))
    if cols.size == 0:
        return None
    box = (x1 + int(cols[0]), y1 + int(rows[0]), x1 + int(cols[-1]) + 1, y1 + int(rows[-1]) + 1)
    if box[2] - box[0] < MIN_VISIBLE_PX or box[3] - box[1] < MIN_VISIBLE_PX:
        return None
    return box


def render_frames(
    size: tuple[int, int],
    n_frames: int,
    paths: Sequence[FacePath],
    seed: int = 0,
    camera: CameraPath | None = None,
) -> Iterator[tuple[np.ndarray, list[Box]]]:
    """Yield ``(frame, boxes)``: BGR frames and the visible face boxes on each.

    Sprites are drawn in ``paths`` order, later ones on top. A box is the part of a face that is
    inside the frame and not covered by a later sprite; faces whose visible part is less than
    ``MIN_VISIBLE_PX`` wide or tall are left out. Boxes keep ``paths`` order. The background
    depends only on ``size``, ``seed`` and ``camera``, so rendering with ``paths=[]`` gives the
    same frames without faces, which is how tests prove a face was really drawn.

    Args:
        size: Output ``(width, height)``.
        n_frames: Number of frames to yield; every path (and the camera) must be at least as long.
        paths: Face motions.
        seed: Seed of the background texture.
        camera: Background camera motion; defaults to :func:`default_camera`.

    Raises:
        ValueError: On a bad size, or a path or camera shorter than ``n_frames``. Raised by this
            call, not on the first ``next()``, so a broken scenario fails where it is written.
    """
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive (width, height), but got {size}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, but got {n_frames}")
    camera = camera if camera is not None else default_camera((w, h), n_frames)
    if tuple(camera.size) != (w, h):
        raise ValueError(f"camera was made for size {camera.size}, but frames are {(w, h)}")
    for name, length in [("camera", len(camera))] + [
        (f"paths[{i}]", len(p)) for i, p in enumerate(paths)
    ]:
        if length < n_frames:
            raise ValueError(f"{name} covers {length} frames, but {n_frames} were requested")
    return _render(w, h, n_frames, paths, seed, camera)


def _render(
    w: int, h: int, n_frames: int, paths: Sequence[FacePath], seed: int, camera: CameraPath
) -> Iterator[tuple[np.ndarray, list[Box]]]:
    texture = background_texture((w, h), seed)
    for index in range(n_frames):
        frame = cv2.warpAffine(
            texture,
            camera.affine(index),
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        labels = np.full((h, w), -1, np.int16)
        faces = [_paste(frame, labels, path, index, label) for label, path in enumerate(paths)]
        boxes = []
        for label, face in enumerate(faces):
            box = None if face is None else _visible_box(labels, face, label)
            if box is not None:
                boxes.append(box)
        yield frame, boxes


class _Chirp:
    """A quiet tone whose pitch glides up and down, generated in consecutive chunks.

    A glide rather than a constant tone makes audio/video drift audible; the phase is computed
    from the absolute sample index so chunks join without clicks, whatever their sizes.
    """

    def __init__(
        self, rate: int, low_hz: float = 330.0, high_hz: float = 660.0, period_s: float = 2.0
    ):
        self.rate = rate
        self.low_hz = low_hz
        self.high_hz = high_hz
        self.period_s = period_s

    def samples(self, start: int, count: int) -> np.ndarray:
        t = (start + np.arange(count, dtype=np.float64)) / self.rate
        mid = (self.low_hz + self.high_hz) / 2
        depth = (self.high_hz - self.low_hz) / 2
        omega = 2 * math.pi / self.period_s
        # Instantaneous frequency mid - depth*cos(omega t); phase is its integral.
        phase = 2 * math.pi * (mid * t - depth * np.sin(omega * t) / omega)
        fade = np.clip(t / 0.05, 0.0, 1.0)  # 50 ms fade-in: no click at the start
        return (AUDIO_AMPLITUDE * fade * np.sin(phase)).astype(np.float32)


def _check_image(image: object, expected: tuple[int, int] | None, index: int) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"frame {index} must be an (h, w, 3) BGR array, but got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"frame {index} must be uint8, but got {image.dtype}")
    size = (int(image.shape[1]), int(image.shape[0]))
    if expected is not None and size != expected:
        raise ValueError(
            f"frame {index} is {size[0]}x{size[1]}, but frame 0 was {expected[0]}x{expected[1]}"
        )
    return size


def write_clip(
    path: str | Path,
    frames_iter: Iterable[tuple[np.ndarray, Sequence[Box]]],
    fps: int = 25,
    codec: str = "libx264",
    crf: int = 18,
    audio: bool = True,
) -> list[dict]:
    """Encode ``(frame, boxes)`` pairs to a video file and return the per-frame ground truth.

    The container follows the file extension (``.mp4``, ``.mkv``, ...). Video is yuv420p with
    ``pts`` = frame index in a ``1/fps`` time base (muxers may rescale it; compare decoded
    ``pts * time_base`` with ``index / fps``). The optional audio is a mono AAC chirp of exactly
    the video's duration, interleaved frame by frame, so pipelines that pass audio through are
    exercised too.

    Args:
        path: Output file; overwritten.
        frames_iter: ``(BGR uint8 frame, boxes)`` pairs, e.g. from :func:`render_frames`.
        fps: Frame rate (integer, so ``1/fps`` is an exact time base).
        codec: FFmpeg video encoder name.
        crf: Constant rate factor, used by the x264/x265 encoders only.
        audio: Whether to add the audio track.

    Returns:
        One ``{"pts": index, "boxes": [[x1, y1, x2, y2], ...]}`` per frame, JSON-ready.

    Raises:
        ValueError: No frames, frames of different sizes or odd dimensions (yuv420p cannot
            represent them), or ``fps`` < 1.
    """
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive integer, but got {fps!r}")
    iterator = iter(frames_iter)
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError("write_clip needs at least one frame, but got none") from None
    width, height = _check_image(first[0], None, 0)
    if width % 2 or height % 2:
        raise ValueError(f"frame size must be even for yuv420p, but got {width}x{height}")

    time_base = Fraction(1, fps)
    chirp = _Chirp(AUDIO_RATE)
    ground_truth: list[dict] = []
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.time_base = time_base
        if codec in ("libx264", "libx265"):
            video.options = {"crf": str(crf)}
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        samples_done = 0
        for index, (image, boxes) in enumerate(itertools.chain([first], iterator)):
            _check_image(image, (width, height), index)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            picture.pts = index
            picture.time_base = time_base
            for packet in video.encode(picture):
                container.mux(packet)
            if sound is not None:
                # Keep audio level with video: the end of this frame, in samples.
                until = (index + 1) * AUDIO_RATE // fps
                chunk = chirp.samples(samples_done, until - samples_done)
                block = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                block.sample_rate = AUDIO_RATE
                block.pts = samples_done
                block.time_base = Fraction(1, AUDIO_RATE)
                samples_done = until
                for packet in sound.encode(block):
                    container.mux(packet)
            ground_truth.append({"pts": index, "boxes": [[int(v) for v in box] for box in boxes]})
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            for packet in sound.encode():
                container.mux(packet)
    logger.debug("wrote %d frames of %dx%d to %s", len(ground_truth), width, height, path)
    return ground_truth


def default_face_paths(
    size: tuple[int, int], n_frames: int, sprites: Sequence[FaceSprite] | None = None
) -> list[FacePath]:
    """The default test scenario: one face moving and scaling, one leaving and coming back.

    Sprites are the astronaut (first) and the cameraman (second) from :func:`load_sample_faces`.
    The astronaut drifts right while its face grows from 1/6 to ~2/5 of the frame height and
    shrinks back (60 -> 140 -> 80 px at 360 p). The cameraman (~45-65 px at 360 p) walks out of
    the right edge during the first third, stays out until about 55 % of the clip, then comes
    back. He is drawn first and keeps to the right so the astronaut, drawn on top, never hides
    his face. Positions and sizes scale with ``size``, timings with ``n_frames``.
    """
    if sprites is None:
        sprites = load_sample_faces()
    if len(sprites) < 2:
        raise ValueError(f"the default scenario needs 2 face sprites, but got {len(sprites)}")
    astronaut, cameraman = sprites[0], sprites[1]
    w, h = size
    last = max(n_frames - 1, 1)
    walker = FacePath.from_keyframes(
        cameraman,
        n_frames,
        [
            (0, 0.78 * w, 0.32 * h, 0.125 * h),
            (0.33 * last, 1.25 * w, 0.30 * h, 0.14 * h),
            (0.55 * last, 1.25 * w, 0.30 * h, 0.16 * h),
            (last, 0.80 * w, 0.35 * h, 0.18 * h),
        ],
    )
    zoomer = FacePath.from_keyframes(
        astronaut,
        n_frames,
        [
            (0, 0.25 * w, 0.45 * h, h / 6),
            (0.5 * last, 0.33 * w, 0.50 * h, 0.39 * h),
            (last, 0.38 * w, 0.48 * h, 0.22 * h),
        ],
    )
    return [walker, zoomer]


def synthetic_clip(
    path: str | Path,
    n_frames: int = 50,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
    audio: bool = True,
) -> list[dict]:
    """Write the default scenario (:func:`default_face_paths`) to ``path`` and return its GT.

    Encoded at 25 fps with near-transparent quality (crf 18), so detectors see the faces as they
    were drawn and a test failure points at the code under test, not at compression.
    """
    paths = default_face_paths(size, n_frames)
    return write_clip(path, render_frames(size, n_frames, paths, seed=seed), audio=audio)
