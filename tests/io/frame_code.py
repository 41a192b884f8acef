"""Each picture's number, drawn along its bottom edge, and a detector that reads it.

A test can tell which picture a decoded frame is, even when the file lost frames or its
timestamps lie, and the detector returns that picture's true face boxes, so what a test
measures is the handling of the input, not a detector's recall.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.testing.render import Box
from streamdeid.types import Detections, Frame

# The frame number: a white start cell, CODE_BITS bits (white = 1), the same bits inverted, a
# black end. A damaged picture (a corrupt packet) must not read as another number.
CODE_BITS = 9
CELL_W, CELL_H = 12, 10
CODE_MARGIN = 4


def _code_cells(number: int) -> list[bool]:
    bits = [bool(number >> b & 1) for b in range(CODE_BITS)]
    return [True, *bits, *(not b for b in bits), False]


def stamp_code(image: np.ndarray, number: int) -> None:
    """Draw ``number`` into the bottom-left corner of ``image`` (BGR, changed in place)."""
    y1 = image.shape[0] - CODE_MARGIN - CELL_H
    for k, white in enumerate(_code_cells(number)):
        x1 = CODE_MARGIN + k * CELL_W
        image[y1 : y1 + CELL_H, x1 : x1 + CELL_W] = 235 if white else 20


def read_code(image: np.ndarray) -> int | None:
    """The number drawn by :func:`stamp_code`, or None when the cells do not check out."""
    y1 = image.shape[0] - CODE_MARGIN - CELL_H
    cells = []
    for k in range(2 * CODE_BITS + 2):
        x1 = CODE_MARGIN + k * CELL_W
        core = image[y1 + 3 : y1 + CELL_H - 3, x1 + 3 : x1 + CELL_W - 3]
        mean = float(core.mean())
        if 70 < mean < 185:  # neither black nor white: damaged
            return None
        cells.append(mean > 128)
    number = sum(1 << b for b, white in enumerate(cells[1 : CODE_BITS + 1]) if white)
    return number if cells == _code_cells(number) else None


class CodeDetector(Detector):
    """Returns the true face boxes of the picture whose code it reads (none if unreadable)."""

    name = "frame-code-truth"

    def __init__(self, boxes: Sequence[Sequence[Box]]) -> None:
        self.boxes = boxes
        self.unreadable = 0

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        number = read_code(as_image(frame))
        if number is None or number >= len(self.boxes):
            self.unreadable += 1
            found = np.zeros((0, 4), np.float32)
        else:
            found = np.asarray(self.boxes[number], np.float32).reshape(-1, 4)
        return Detections(found, np.ones(len(found), np.float32))
