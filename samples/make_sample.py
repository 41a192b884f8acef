"""Build the shipped sample material: two face crops and a short clip with exact face boxes.

Run from a checkout where the package is installed with its dev extras
(``pip install -e .[dev]``: scikit-image is needed by this script only)::

    python samples/make_sample.py

Everything is derived from two images bundled with scikit-image that we may redistribute:
``astronaut`` (NASA portrait of Eileen Collins, public domain) and ``camera`` (the "cameraman",
CC0). Nothing else goes into the outputs, and the background is procedural, so the sample can
ship under the project's own license. Outputs (all deterministic):

* ``streamdeid/testing/faces/astronaut.png``, ``…/cameraman.png``: head-and-shoulders crops.
* ``streamdeid/testing/faces/faces.json`` (package data): the tight face box inside each crop.
* ``samples/astronaut_pan.mp4``: 640x360, 25 fps, 6 s, H.264 + mono AAC chirp.
* ``samples/astronaut_pan.json``: per-frame visible face boxes of that clip.

The clip is composited by ``streamdeid.testing`` (render, clip), the same code the tests use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from streamdeid.testing.clip import write_clip
from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import load_sample_faces

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO_ROOT / "samples"
FACES_DIR = REPO_ROOT / "streamdeid" / "testing" / "faces"
CLIP_PATH = SAMPLES_DIR / "astronaut_pan.mp4"
GT_PATH = SAMPLES_DIR / "astronaut_pan.json"

SIZE = (640, 360)
FPS = 25
N_FRAMES = 6 * FPS
SEED = 20240611
CRF = 23

# Face boxes (x1, y1, x2, y2) in the 512x512 source images, found once with
# mediapipe.solutions.face_detection.FaceDetection(model_selection=1) on the full image and
# rounded to whole pixels:
#   astronaut: score 0.91, box (173.7, 67.8, 277.6, 171.7)
#   camera:    score 0.87, box (199.6, 122.7, 275.6, 198.7)
# Hard-coded so the outputs do not depend on the detector version; check_source_boxes() re-runs
# the detector and warns if it no longer agrees.
SOURCE_FACES = {
    "astronaut.png": (174, 68, 278, 172),
    "cameraman.png": (200, 123, 276, 199),
}
# Head-and-shoulders crop (x1, y1, x2, y2) in the source, and the factor it is then resized by.
# The astronaut crop is shrunk so that both PNGs stay a few tens of KB and both faces are about
# 75 px tall in their crop.
CROPS = {
    "astronaut.png": ((110, 5, 346, 285), 0.7),
    "cameraman.png": ((124, 40, 352, 300), 1.0),
}
MIN_AGREEMENT_IOU = 0.5


def load_sources() -> dict[str, np.ndarray]:
    """The two source images as BGR uint8 (the cameraman is greyscale, so replicate it)."""
    from skimage import data  # dev-only dependency, needed by this script alone

    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    cameraman = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return {"astronaut.png": astronaut, "cameraman.png": cameraman}


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect_faces(image_bgr: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """MediaPipe full-range detections as (x1, y1, x2, y2, score) in pixels."""
    import mediapipe as mp

    h, w = image_bgr.shape[:2]
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    with mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    ) as detector:
        result = detector.process(rgb)
    found = []
    for detection in result.detections or []:
        box = detection.location_data.relative_bounding_box
        x1, y1 = box.xmin * w, box.ymin * h
        found.append((x1, y1, x1 + box.width * w, y1 + box.height * h, detection.score[0]))
    return found


def check_box(label: str, image: np.ndarray, expected: tuple[float, ...]) -> None:
    """Warn (not fail) if MediaPipe no longer finds a face where we say it is.

    A newer detector may place boxes slightly differently; the stored boxes stay authoritative
    because the tests' ground truth must not change with the detector.
    """
    found = detect_faces(image)
    best = max((iou(expected, f[:4]) for f in found), default=0.0)
    if best < MIN_AGREEMENT_IOU:
        print(
            f"WARNING: {label}: detector disagrees with the stored face box {expected} "
            f"(best IoU {best:.2f}, detections {[tuple(round(v, 1) for v in f) for f in found]})"
        )
    else:
        print(f"{label}: detector agrees with stored face box (IoU {best:.2f})")


def make_crops(sources: dict[str, np.ndarray]) -> None:
    """Cut, resize and save the crops, and write the face box inside each to faces.json."""
    FACES_DIR.mkdir(parents=True, exist_ok=True)
    boxes: dict[str, list[int]] = {}
    for name, image in sources.items():
        check_box(f"source {name}", image, SOURCE_FACES[name])
        (cx1, cy1, cx2, cy2), factor = CROPS[name]
        crop = image[cy1:cy2, cx1:cx2]
        size = (round(crop.shape[1] * factor), round(crop.shape[0] * factor))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if factor != 1 else crop
        fx1, fy1, fx2, fy2 = SOURCE_FACES[name]
        face = [
            round((fx1 - cx1) * factor),
            round((fy1 - cy1) * factor),
            round((fx2 - cx1) * factor),
            round((fy2 - cy1) * factor),
        ]
        boxes[name] = face
        out = FACES_DIR / name
        if not cv2.imwrite(str(out), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise OSError(f"could not write {out}")
        print(
            f"wrote {out.relative_to(REPO_ROOT)}: {crop.shape[1]}x{crop.shape[0]}, face {face}, "
            f"{out.stat().st_size} bytes"
        )
        check_box(f"crop {name}", crop, tuple(face))
    entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(box)}" for name, box in boxes.items())
    (FACES_DIR / "faces.json").write_text(f"{{\n{entries}\n}}\n", encoding="utf-8")


def make_paths() -> tuple[CameraPath, list[FacePath]]:
    """Camera and face motion of the sample clip.

    Both faces live in world coordinates, so the camera's pan and zoom move and scale them
    consistently with the background: the astronaut stays in shot and grows and shrinks with the
    zoom (about 60-150 px); the cameraman walks right out of shot during the zoom-in, and comes
    back from the right as the camera pans after him.
    """
    last = N_FRAMES - 1
    camera = CameraPath.from_keyframes(
        SIZE,
        N_FRAMES,
        [
            (0, 320, 180, 1.0),
            (50, 290, 195, 1.85),  # zoom in on the astronaut
            (100, 360, 180, 0.8),  # pull back and pan right
            (last, 420, 170, 1.15),
        ],
    )
    sprites = {sprite.name: sprite for sprite in load_sample_faces(FACES_DIR)}
    frames = np.arange(N_FRAMES)
    # Astronaut: face 80 px tall at zoom 1, swaying gently where she stands.
    astro_world = np.stack(
        [230 + 12 * np.sin(2 * math.pi * frames / 90), 190 + 5 * np.sin(2 * math.pi * frames / 55)],
        1,
    )
    astro_height = np.full(N_FRAMES, 80.0)
    # Cameraman: face 55 px tall at zoom 1, walking right, turning around off-screen.
    walk_keys = [(0, 430, 110), (60, 560, 100), (90, 700, 100), (100, 640, 110), (last, 560, 130)]
    walk_keys = np.asarray(walk_keys, dtype=np.float64)
    walker_world = np.stack(
        [np.interp(frames, walk_keys[:, 0], walk_keys[:, j]) for j in (1, 2)], 1
    )
    walker_height = np.full(N_FRAMES, 55.0)

    def to_screen(name: str, world: np.ndarray, height: np.ndarray) -> FacePath:
        sprite = sprites[name]
        centers = np.array([camera.project(i, *world[i]) for i in range(N_FRAMES)])
        scales = height * camera.zooms[:N_FRAMES] / sprite.face_height
        return FacePath(sprite, centers, scales)

    # The cameraman is further away: drawn first, so the astronaut would be in front of him.
    return camera, [
        to_screen("cameraman.png", walker_world, walker_height),
        to_screen("astronaut.png", astro_world, astro_height),
    ]


def make_clip() -> None:
    camera, paths = make_paths()
    frames = render_frames(SIZE, N_FRAMES, paths, seed=SEED, camera=camera)
    gt = write_clip(CLIP_PATH, frames, fps=FPS, codec="libx264", crf=CRF, audio=True)
    # One frame per line: readable, and diffs show which frames changed.
    lines = ",\n".join("    " + json.dumps(frame) for frame in gt)
    GT_PATH.write_text(
        f'{{"width": {SIZE[0]}, "height": {SIZE[1]}, "fps": {FPS}, "frames": [\n{lines}\n]}}\n',
        encoding="utf-8",
    )
    heights = [b[3] - b[1] for frame in gt for b in frame["boxes"]]
    counts = [len(frame["boxes"]) for frame in gt]
    print(
        f"wrote {CLIP_PATH.relative_to(REPO_ROOT)}: {len(gt)} frames, "
        f"{CLIP_PATH.stat().st_size} bytes; faces per frame {min(counts)}-{max(counts)}, "
        f"face heights {min(heights)}-{max(heights)} px"
    )
    single = [frame["pts"] for frame in gt if len(frame["boxes"]) < 2]
    if single:
        print(f"one face visible on frames {single[0]}-{single[-1]} ({len(single)} frames)")
    print(f"wrote {GT_PATH.relative_to(REPO_ROOT)}")


def main() -> None:
    make_crops(load_sources())
    make_clip()


if __name__ == "__main__":
    main()
