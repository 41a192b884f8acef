"""What ``streamdeid live`` prints: stats lines while it runs, a summary per camera at the end.

Kept apart from :mod:`streamdeid.cli.live`, which parses the flags and runs the cameras, so
each reads on its own. Stats and summaries go to stderr (or the JSON log); ``--stats`` gets
:func:`report`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("streamdeid.live")


def emitter(fmt: str) -> Callable[[list[Any]], None]:
    """Stats lines: one JSON record per camera, or the text line (redrawn in place on a TTY)."""
    tty = sys.stderr.isatty()

    def emit(snapshots: list[Any]) -> None:
        for s in snapshots:
            if fmt == "text" and s.frames_in == 0:  # still connecting or loading
                continue
            if fmt == "json":
                log.info("stats", extra={"event": "stats", **s.to_dict()})
            elif tty and len(snapshots) == 1:
                sys.stderr.write("\r" + s.line() + "\x1b[K")
                sys.stderr.flush()
            else:
                print(s.line(), file=sys.stderr, flush=True)

    return emit


def print_summaries(
    fmt: str,
    cameras: list[Any],
    stats: dict[str, Any],
    results: dict[str, Any],
    single: bool,
) -> None:
    """The end-of-run line of each camera on stderr, or a ``summary`` record in JSON logs."""
    for c in cameras:
        if single and results[c.name].state == "failed" and not stats[c.name].count("frames_in"):
            continue  # nothing ran: the error line says it all
        if fmt == "json":
            log.info("summary", extra={"event": "summary", **report(stats[c.name], results)})
        else:
            print(_summary(stats[c.name], results[c.name].state), file=sys.stderr)


def report(stats: Any, results: dict[str, Any]) -> dict[str, Any]:
    """A camera's figures for the whole run, for ``--stats`` and the JSON summary record."""
    snap = stats.snapshot()
    p50, p95 = stats.run_quantiles((0.5, 0.95))
    result = results[stats.camera]
    d = snap.to_dict()
    active = stats.active_s
    d.update(
        active_s=round(active, 3),
        run_fps_in=round(snap.frames_in / active, 3) if active else None,
        run_fps_out=round(snap.frames_out / active, 3) if active else None,
        state=result.state,
        error=None if result.error is None else str(result.error),
        run_latency_p50_s=None if math.isnan(p50) else p50,
        run_latency_p95_s=None if math.isnan(p95) else p95,
    )
    return d


def _summary(stats: Any, state: str) -> str:
    s = stats.snapshot()
    p50, p95 = stats.run_quantiles((0.5, 0.95))
    lat = "-" if math.isnan(p50) else f"{p50 * 1000:.0f}/{p95 * 1000:.0f} ms"
    # Only with an RTSP output: the one place encoded packets may be dropped (policy rule 5).
    packets = f", {s.packets_dropped_total} packets not sent" if s.packets_dropped else ""
    return (
        f"{stats.camera}: {state}: {s.frames_in} frames in, {s.frames_out} out, "
        f"{s.dropped} dropped, {s.detect_skipped} not detected ({s.blind_frames} masked whole), "
        f"{s.faces} faces, latency p50/p95 {lat}, {s.reconnects} reconnects{packets}"
    )
