"""Test doubles and data makers for the evaluation tests (plain functions, not fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.testing.clip import write_clip
from streamdeid.testing.render import background_texture
from streamdeid.testing.sprites import load_sample_faces
from streamdeid.types import Detections, Frame


class QueueDetector(Detector):
    """Returns ``script[k]`` on its k-th call (images are scored in ground-truth order)."""

    name = "queue"

    def __init__(self, script: Sequence[np.ndarray]) -> None:
        self.script = [np.asarray(b, np.float32).reshape(-1, 4) for b in script]
        self.calls = 0

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        boxes = self.script[self.calls] if self.calls < len(self.script) else np.zeros((0, 4))
        self.calls += 1
        return Detections(np.asarray(boxes, np.float32), np.ones(len(boxes), np.float32))


CODE_BITS = 6  # frame index written as 6 black/white 16-px squares along the top edge
CODE_CELL = 16


class FrameCodeDetector(Detector):
    """Reads the frame index drawn by :func:`coded_clip` and returns a box unique to it.

    Boxes of different indices never overlap, so a face "found at the same place" proves that
    the two frames compared are the same picture.
    """

    name = "frame-code"

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        image = as_image(frame)
        cells = [image[:CODE_CELL, b * CODE_CELL : (b + 1) * CODE_CELL] for b in range(CODE_BITS)]
        index = sum(1 << b for b, cell in enumerate(cells) if cell.mean() > 128)
        box = np.array([[100 + 50 * index, 100, 140 + 50 * index, 150]], np.float32)
        return Detections(box, np.ones(1, np.float32))


def coded_clip(path: Path, n_frames: int = 25) -> None:
    """A grey clip with its frame index in binary (white = 1) in squares along the top edge."""

    def frames():
        for i in range(n_frames):
            image = np.full((120, 160, 3), 128, np.uint8)
            for b in range(CODE_BITS):
                value = 230 if i >> b & 1 else 25
                image[:CODE_CELL, b * CODE_CELL : (b + 1) * CODE_CELL] = value
            yield image, []

    write_clip(path, frames(), audio=False)


def reencode(
    src: Path,
    dst: Path,
    drop: Collection[int] = (),
    crf: int = 18,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """A plain H.264 re-encode keeping every frame's timestamp; frames in ``drop`` are left out
    and ``transform`` (if given) changes each picture first.

    This is the null baseline of the leak check: nothing is masked, so (nearly) every face must
    still be found.
    """
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        video = out.add_stream("libx264", rate=stream.average_rate or 25)
        video.width = stream.codec_context.width
        video.height = stream.codec_context.height
        video.pix_fmt = "yuv420p"
        video.time_base = stream.time_base
        video.options = {"crf": str(crf), "preset": "veryfast"}
        for i, frame in enumerate(inp.decode(stream)):
            if i in drop:
                continue
            image = frame.to_ndarray(format="bgr24")
            if transform is not None:
                image = np.ascontiguousarray(transform(image))
            picture = av.VideoFrame.from_ndarray(image, format="bgr24")
            picture.pts = frame.pts
            picture.time_base = frame.time_base or Fraction(stream.time_base)
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)


def face_images(folder: Path, count: int = 3, size: tuple[int, int] = (320, 240)) -> list[list]:
    """Write ``count`` JPEGs with the sample faces pasted on a texture; return their face boxes.

    Boxes are ``[x, y, w, h]`` (WIDER convention) of the tight face box of each pasted photo.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sprites = load_sample_faces()
    w, h = size
    all_boxes = []
    for k in range(count):
        image = background_texture(size, seed=k)[:h, :w].copy()
        boxes = []
        for j, sprite in enumerate(sprites):
            scale = 0.6 + 0.2 * k
            sh, sw = sprite.image.shape[:2]
            nw, nh = round(sw * scale), round(sh * scale)
            ox, oy = 10 + j * (w // 2), 20
            nw, nh = min(nw, w - ox), min(nh, h - oy)
            resized = cv2.resize(sprite.image, (round(sw * scale), round(sh * scale)))
            image[oy : oy + nh, ox : ox + nw] = resized[:nh, :nw]
            x1, y1, x2, y2 = (round(v * scale) for v in sprite.face_xyxy)
            boxes.append([ox + x1, oy + y1, min(x2, nw) - x1, min(y2, nh) - y1])
        cv2.imwrite(str(folder / f"img_{k}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        all_boxes.append(boxes)
    return all_boxes


def xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """WIDER ``[x, y, w, h]`` boxes as an (n, 4) xyxy array."""
    a = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
