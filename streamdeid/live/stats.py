"""Per-camera live counters, latency quantiles, and the once-a-second stats line.

Counters are cumulative over the whole process (a restarted camera keeps counting), as Prometheus
counters must be. Rates and latency quantiles are over a sliding window, so the stats line and the
``/metrics`` gauges say how the camera is doing now, not on average since start. A fixed-bucket
histogram keeps the whole-run latency quantiles in bounded memory for the final summary.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Where frames can be dropped: by the source (its reader queue) or at the inbox of a stage.
DROP_STAGES = ("source", "detect", "track", "obscure", "encode")

# Whole-run latency histogram: 5 ms buckets up to 30 s (6000 ints), the rest in the last bucket.
_BUCKET_S = 0.005
_BUCKETS = 6000


COUNTERS = (
    "frames_in",
    "frames_out",
    "detect_skipped",
    "detect_runs",
    "faces",
    "blind_frames",
    "restarts",
)


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """One consistent reading of a camera's stats."""

    camera: str
    state: str
    frames_in: int
    frames_out: int
    drops: dict[str, int]  # by stage: "source", or the stage whose inbox overflowed
    detect_skipped: int
    detect_runs: int
    faces: int
    blind_frames: int
    restarts: int
    reconnects: int
    fps_in: float
    fps_out: float
    latency_p50_s: float  # NaN until a frame went out
    latency_p95_s: float
    latency_max_s: float
    # Encoded packets an output did not send (RTSP publisher, policy rule 5), by output name;
    # empty when no output can drop. Packets, not frames: they are not part of ``dropped``.
    packets_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def packets_dropped_total(self) -> int:
        return sum(self.packets_dropped.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropped"] = self.dropped
        d["drops"] = dict(self.drops)
        d["packets_dropped"] = dict(self.packets_dropped)
        d["packets_dropped_total"] = self.packets_dropped_total
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    def line(self) -> str:
        """The ffmpeg-like one-liner: ``cam: in 25.0 fps out 25.0 fps latency 80/120 ms …``.

        ``pkt_drop`` (packets the RTSP publisher did not send) appears once there is a publisher.
        """
        packets = f" pkt_drop={self.packets_dropped_total}" if self.packets_dropped else ""
        return (
            f"{self.camera}: {self.state} in={self.frames_in} ({self.fps_in:.1f} fps) "
            f"out={self.frames_out} ({self.fps_out:.1f} fps) "
            f"latency p50={_ms(self.latency_p50_s)} p95={_ms(self.latency_p95_s)} "
            f"drop={self.dropped} skip={self.detect_skipped} faces={self.faces} "
            f"reconnects={self.reconnects}{packets}"
        )


def _source_count(source: Any, name: str) -> int:
    return int(getattr(source, name, 0) or 0) if source is not None else 0


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}ms"


class LiveStats:
    """Counters of one camera; every method is safe to call from any thread.

    Example:
        >>> s = LiveStats("lobby")
        >>> s.add("frames_in")
        >>> s.snapshot().frames_in
        1
    """

    def __init__(self, camera: str, window_s: float = 5.0) -> None:
        self.camera = camera
        self.window_s = window_s
        self.state = "starting"
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._drops = dict.fromkeys(DROP_STAGES, 0)
        self._in_times: deque[float] = deque(maxlen=4096)
        self._out: deque[tuple[float, float]] = deque(maxlen=4096)  # (time, latency)
        self._hist = [0] * _BUCKETS
        self._reconnects_base = 0
        self._source_drops_base = 0
        self._source: Any = None
        self._packet_drops_base: dict[str, int] = {}
        self._sink: Any = None
        self.started = time.monotonic()
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
            if name == "frames_in":
                now = time.monotonic()
                self._in_times.append(now)
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.last_frame_at = now

    @property
    def active_s(self) -> float:
        """Seconds from the first frame read to the last one (0 before two frames)."""
        if self.first_frame_at is None or self.last_frame_at is None:
            return 0.0
        return self.last_frame_at - self.first_frame_at

    def drop(self, stage: str, n: int = 1) -> None:
        """``n`` frames dropped, never emitted, at the inbox of ``stage``."""
        with self._lock:
            self._drops[stage] = self._drops.get(stage, 0) + n

    def frame_out(self, latency_s: float) -> None:
        """One frame encoded, ``latency_s`` after it was captured."""
        now = time.monotonic()
        latency_s = max(0.0, latency_s)
        with self._lock:
            self._counts["frames_out"] += 1
            self._out.append((now, latency_s))
            self._hist[min(_BUCKETS - 1, int(latency_s / _BUCKET_S))] += 1

    def count(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def attach_source(self, source: Any) -> None:
        """Report ``source.reconnects`` and ``.frames_dropped`` live; a replaced source's count.

        The source drops its oldest frame itself when the capture thread does not take frames
        fast enough (a camera cannot be paused); those drops count as ``stage="source"``.
        """
        with self._lock:
            if self._source is not None:
                self._reconnects_base += _source_count(self._source, "reconnects")
                self._source_drops_base += _source_count(self._source, "frames_dropped")
            self._source = source

    def attach_sink(self, sink: Any) -> None:
        """Report the output's packet drops live; a replaced output's count is kept.

        ``sink.packet_drops()`` (see :class:`~streamdeid.io.frame_sink.FrameSink`) is read on
        every snapshot; a sink without it (one given by a test or an embedder) drops nothing. A
        restarted camera gets new outputs under the same names, and its counts go on from the
        old ones': Prometheus counters only grow.
        """
        with self._lock:
            if self._sink is not None:
                self._packet_drops_base = self._packet_drops()
            self._sink = sink

    def _packet_drops(self) -> dict[str, int]:
        """Base plus the current output's counts, by output name (call with the lock held)."""
        drops = dict(self._packet_drops_base)
        report = getattr(self._sink, "packet_drops", None)
        if callable(report):
            for name, n in report().items():
                drops[name] = drops.get(name, 0) + n
        return drops

    def set_state(self, state: str) -> None:
        self.state = state

    def snapshot(self) -> StatsSnapshot:
        now = time.monotonic()
        since = now - self.window_s
        with self._lock:
            counts = dict(self._counts)
            ins = sum(1 for t in self._in_times if t >= since)
            recent = [lat for t, lat in self._out if t >= since]
            reconnects = self._reconnects_base + _source_count(self._source, "reconnects")
            drops = dict(self._drops)
            drops["source"] += self._source_drops_base + _source_count(
                self._source, "frames_dropped"
            )
            packets_dropped = self._packet_drops()
        span = min(self.window_s, max(now - self.started, 1e-3))
        return StatsSnapshot(
            camera=self.camera,
            state=self.state,
            drops=drops,
            reconnects=reconnects,
            fps_in=ins / span,
            fps_out=len(recent) / span,
            latency_p50_s=quantile(recent, 0.5),
            latency_p95_s=quantile(recent, 0.95),
            latency_max_s=max(recent) if recent else math.nan,
            packets_dropped=packets_dropped,
            **counts,
        )

    def run_quantiles(self, qs: Sequence[float] = (0.5, 0.95)) -> list[float]:
        """Latency quantiles over every frame of the run (5 ms resolution, upper bucket edge)."""
        with self._lock:
            hist = list(self._hist)
        total = sum(hist)
        if not total:
            return [math.nan for _ in qs]
        out = []
        for q in qs:
            rank, seen = q * total, 0
            for i, n in enumerate(hist):
                seen += n
                if seen >= rank:
                    out.append((i + 1) * _BUCKET_S)
                    break
        return out


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile; NaN for no values (so "no data" is never read as 0 ms)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class StatsReporter:
    """Calls ``emit`` with every camera's snapshot once per ``interval_s`` on a named thread.

    The stats line is for people watching a terminal, so it is the CLI that decides how to print
    it (``emit``); this class only keeps the rhythm and survives a failing ``emit``.
    """

    def __init__(
        self,
        stats: Sequence[LiveStats],
        emit: Callable[[list[StatsSnapshot]], None],
        interval_s: float = 1.0,
    ) -> None:
        self.stats = stats
        self.emit = emit
        self.interval_s = interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="streamdeid.stats", daemon=True)

    def start(self) -> StatsReporter:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                self.emit([s.snapshot() for s in self.stats])
            except Exception:
                log.debug("stats emit failed", exc_info=True)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)
