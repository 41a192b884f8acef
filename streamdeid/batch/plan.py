"""Where a long video is cut into chunks, and which frames each chunk reads, masks and writes.

Pure functions of the packet list (:func:`streamdeid.io.chunk_source.probe_packets`); no Ray,
no decoding. A chunk writes frames ``start .. end - 1``, but it feeds the detector and tracker
more than that:

* **Warm-up** (``warm .. start - 1``): ``warmup_s`` of frames before the chunk, and at least
  ``warmup_frames`` (the tracker's memory: a track coasts that long), are decoded, detected,
  tracked and masked, and not written. A face that crosses the boundary is then a known track
  at ``start``, as it is in a whole-file run, and the frames before the chunk's first detector
  run are masked with the run before them instead of whole. ``warm`` is rounded down to a
  multiple of ``detect_every``, so the detector runs on the frames a whole-file run runs it on.
  (Its first run is a full pass, wherever a whole-file run had its last one: the full passes
  of the focus detector also follow cuts and its own cost rule, so their phase cannot be
  matched, and aligning to it would only lengthen the warm-up.)
* **Tail** (``end .. feed_end - 1``): frames up to the next scheduled detector run after the
  chunk are fed too, so the chunk's last frames are masked with the run after them (look-ahead),
  not only with the run before.
* Decoding starts at ``key``, the last clean keyframe at or before ``warm``.

A cut is *clean* at a keyframe when every packet before it in decode order is shown before it
and every packet after it is shown after it (a closed GOP): the frames before the cut are then
exactly the packets before it, so frame indices and pts are known without decoding.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from streamdeid.io.chunk_source import VideoPackets


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """The frames one chunk decodes, feeds and writes (indices in the whole file)."""

    index: int  # the chunk's number in its file
    start: int  # first frame written
    end: int  # one past the last frame written
    warm: int  # first frame fed to the detector (<= start)
    key: int  # keyframe decoding starts at (<= warm)
    key_pts: int
    feed_end: int  # one past the last frame fed (>= end)
    first_pts: int  # pts of frame ``start``
    last_pts: int  # pts of frame ``end - 1``

    @property
    def frames(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkSpec:
        return cls(**{k: int(v) for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class Plan:
    """A file's chunks; fewer than two means it runs whole, and ``reason`` says why."""

    frames: int
    chunks: list[ChunkSpec]
    reason: str = ""

    @property
    def chunked(self) -> bool:
        return len(self.chunks) > 1


def clean_cuts(pts: Sequence[int | None], keyframe: Sequence[bool]) -> list[int] | None:
    """Decode positions (= frame indices) of the keyframes where a file can be cut cleanly.

    None when some packet has no pts or two packets share one: frame order is then not known
    from the packets alone.

    Example:
        >>> clean_cuts([0, 3, 1, 2, 4, 7, 5, 6], [1, 0, 0, 0, 1, 0, 0, 0])
        [0, 4]
        >>> clean_cuts([0, 3, 1, 2, 6, 4, 5], [1, 0, 0, 0, 1, 0, 0])  # 6 shown after 4 and 5
        [0]
    """
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        return None
    values = [int(p) for p in pts if p is not None]
    suffix_min = values[:]
    for d in range(len(values) - 2, -1, -1):
        suffix_min[d] = min(values[d], suffix_min[d + 1])
    cuts, prefix_max = [], -math.inf
    for d, p in enumerate(values):
        if keyframe[d] and prefix_max < p and p == suffix_min[d]:
            cuts.append(d)
        prefix_max = max(prefix_max, p)
    return cuts


def plan_chunks(
    packets: VideoPackets,
    chunk_s: float,
    *,
    warmup_s: float = 2.0,
    warmup_frames: int = 0,
    detect_every: int = 1,
) -> Plan:
    """Cut at clean keyframes about every ``chunk_s`` seconds (see the module docstring).

    A last chunk shorter than half of ``chunk_s`` is joined to the one before it.
    """
    n = len(packets.pts)
    cuts = clean_cuts(packets.pts, packets.keyframe)
    if cuts is None:
        return Plan(n, [], "its packets lack pts or repeat one")
    if n == 0 or not packets.time_base:
        return Plan(n, [], "it has no timed video packets")
    order = sorted(int(p) for p in packets.pts if p is not None)
    times = [float(p * packets.time_base) for p in order]
    starts = [0]
    for c in cuts:
        if c > 0 and times[c] - times[starts[-1]] >= chunk_s:
            starts.append(c)
    if len(starts) > 1 and times[-1] - times[starts[-1]] < chunk_s / 2:
        starts.pop()
    if len(starts) < 2:
        return Plan(n, [], f"it has no clean keyframe {chunk_s:g} s or more after its start")
    ends = [*starts[1:], n]
    keys = sorted({0, *cuts})
    chunks = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        warm = 0
        if start > 0:
            by_time = bisect_right(times, times[start] - warmup_s) - 1
            warm = max(0, min(by_time, start - warmup_frames))
            warm = warm // detect_every * detect_every
        key = keys[bisect_right(keys, warm) - 1]
        feed_end = n if end == n else min(n, -(-end // detect_every) * detect_every + 1)
        chunks.append(
            ChunkSpec(i, start, end, warm, key, order[key], feed_end, order[start], order[end - 1])
        )
    return Plan(n, chunks)
