"""Synthetic clips with exact face ground truth, for tests, benchmarks and the shipped sample.

Real footage with faces cannot be shipped (licensing, consent), and hand-labelled boxes drift by a
few pixels. Here we paste real, detectable face photos (the public-domain / CC0 crops in
``streamdeid/testing/faces``, package data) onto a procedural background seen through a virtual
panning and zooming camera, so every frame's face boxes are known to the pixel.
``samples/make_sample.py`` and the tests share this one code path, so the sample clip and the
test clips cannot disagree on how a face is drawn.

Conventions: images are BGR ``uint8``; boxes are ``(x1, y1, x2, y2)`` integer pixels of the output
frame with ``x2``/``y2`` exclusive; ground-truth ``pts`` are frame indices in a ``1/fps`` time base.

The parts, one job each: :mod:`~streamdeid.testing.sprites` (face photos and their boxes),
:mod:`~streamdeid.testing.paths` (face and camera motion), :mod:`~streamdeid.testing.render`
(frames and visible boxes), :mod:`~streamdeid.testing.clip` (encoding, audio, ground truth). This
module holds the default scenario the tests share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streamdeid.testing.clip import write_clip
from streamdeid.testing.paths import FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import FaceSprite, load_sample_faces


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
    gop: int | None = None,
) -> list[dict]:
    """Write the default scenario (:func:`default_face_paths`) to ``path`` and return its GT.

    Encoded at 25 fps with near-transparent quality (crf 18), so detectors see the faces as they
    were drawn and a test failure points at the code under test, not at compression. ``gop``
    sets the keyframe interval in frames (tests that cut clips at keyframes want short ones).
    """
    paths = default_face_paths(size, n_frames)
    frames = render_frames(size, n_frames, paths, seed=seed)
    return write_clip(path, frames, audio=audio, gop=gop)
