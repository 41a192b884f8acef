"""Frames of an original video and of its anonymized output, paired by presentation time.

Pairing by time rather than by index is what keeps a leak check honest when the output dropped
or added frames; it is kept apart so that rule can be tested on plain numbers, without video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import TypeVar

import numpy as np

from streamdeid.io.source import FileSource

T = TypeVar("T")


def timed_frames(source: FileSource) -> Iterator[tuple[int, Fraction, np.ndarray]]:
    """(index, presentation time in seconds, BGR image) of every frame of an open source."""
    for frame in source.frames():
        tb = frame.time_base or source.info.time_base
        yield frame.index, Fraction(frame.pts or 0) * Fraction(tb), frame.image


def pair_by_time(
    originals: Iterable[tuple[Fraction, T]],
    outputs: Iterable[tuple[Fraction, T]],
    tolerance_s: float,
) -> Iterator[tuple[T, T | None]]:
    """Pair each original item with the output item nearest in time, within ``tolerance_s``.

    Both inputs must be in presentation order. Output items are consumed lazily (a frame is
    kept only while it may still be the nearest), so whole videos are never held in memory.
    Yields ``(original, output or None)`` for every original item.
    """
    it = iter(outputs)
    buffer: deque[tuple[Fraction, T]] = deque()
    exhausted = False
    for t, item in originals:
        tf = float(t)
        while not exhausted and (not buffer or float(buffer[-1][0]) <= tf + tolerance_s):
            try:
                buffer.append(next(it))
            except StopIteration:
                exhausted = True
        while buffer and float(buffer[0][0]) < tf - tolerance_s:
            buffer.popleft()
        best = min(buffer, key=lambda b: abs(float(b[0]) - tf), default=None)
        if best is not None and abs(float(best[0]) - tf) <= tolerance_s:
            yield item, best[1]
        else:
            yield item, None
