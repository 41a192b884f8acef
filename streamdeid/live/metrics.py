"""A ``/metrics`` endpoint in the Prometheus text format, with the standard library only.

One label, ``camera``, on every series, so one scrape covers a multi-camera process. Counters end
in ``_total`` and only ever grow (a restarted camera keeps counting); rates and latency quantiles
are gauges over the last few seconds (see :mod:`streamdeid.live.stats`).

The server binds 127.0.0.1 unless told otherwise: the numbers say when and how often people were
on camera, which is not for the whole network by default.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamdeid.errors import ConfigError
from streamdeid.live.stats import StatsSnapshot

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric, type, help, value of a snapshot); drops are split by where they happened.
_SERIES: list[tuple[str, str, str, Callable[[StatsSnapshot], float]]] = [
    (
        "streamdeid_frames_in_total",
        "counter",
        "Frames read from the source.",
        lambda s: s.frames_in,
    ),
    (
        "streamdeid_frames_out_total",
        "counter",
        "Frames masked and encoded into the output.",
        lambda s: s.frames_out,
    ),
    (
        "streamdeid_detect_skipped_total",
        "counter",
        "Frames the detector skipped to keep latency bounded (tracks and wider masks cover them).",
        lambda s: s.detect_skipped,
    ),
    (
        "streamdeid_detect_runs_total",
        "counter",
        "Frames the detector ran on.",
        lambda s: s.detect_runs,
    ),
    (
        "streamdeid_faces_total",
        "counter",
        "Face detections (summed over detector runs).",
        lambda s: s.faces,
    ),
    (
        "streamdeid_blind_frames_total",
        "counter",
        "Frames masked whole because the detector had not looked at them in time.",
        lambda s: s.blind_frames,
    ),
    (
        "streamdeid_reconnects_total",
        "counter",
        "Times the source was reconnected.",
        lambda s: s.reconnects,
    ),
    (
        "streamdeid_restarts_total",
        "counter",
        "Times the camera pipeline was restarted after a failure.",
        lambda s: s.restarts,
    ),
    ("streamdeid_fps_in", "gauge", "Input frame rate over the last seconds.", lambda s: s.fps_in),
    (
        "streamdeid_fps_out",
        "gauge",
        "Output frame rate over the last seconds.",
        lambda s: s.fps_out,
    ),
    (
        "streamdeid_camera_up",
        "gauge",
        "1 while the camera pipeline runs, 0 when failed, restarting or finished.",
        lambda s: 1.0 if s.state == "running" else 0.0,
    ),
]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return str(v)


def render(snapshots: Sequence[StatsSnapshot]) -> str:
    """Every camera's snapshot as Prometheus text exposition (version 0.0.4)."""
    lines: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")

    for name, kind, help_, value in _SERIES:
        family(name, kind, help_)
        for s in snapshots:
            lines.append(f'{name}{{camera="{_escape(s.camera)}"}} {_number(value(s))}')
    family(
        "streamdeid_dropped_frames_total",
        "counter",
        "Frames dropped, never emitted: by the source's reader (capture late), or at the "
        "inbox of the stage that could not keep up (detect, track, obscure, encode).",
    )
    for s in snapshots:
        cam = _escape(s.camera)
        for stage, n in sorted(s.drops.items()):
            lines.append(f'streamdeid_dropped_frames_total{{camera="{cam}",stage="{stage}"}} {n}')
    family(
        "streamdeid_packets_dropped_total",
        "counter",
        "Encoded packets an output did not send (an RTSP publisher whose server is slow or "
        "away; recordings get every packet), by output.",
    )
    for s in snapshots:
        cam = _escape(s.camera)
        for output, n in sorted(s.packets_dropped.items()):
            lines.append(
                f'streamdeid_packets_dropped_total{{camera="{cam}",output="{_escape(output)}"}} {n}'
            )
    family(
        "streamdeid_latency_seconds",
        "gauge",
        "Capture-to-encoded latency quantiles over the last seconds (NaN before any output).",
    )
    for s in snapshots:
        cam = _escape(s.camera)
        for q, v in (("0.5", s.latency_p50_s), ("0.95", s.latency_p95_s)):
            lines.append(
                f'streamdeid_latency_seconds{{camera="{cam}",quantile="{q}"}} {_number(v)}'
            )
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves ``render(snapshots())`` at ``/metrics`` on a daemon thread.

    Args:
        snapshots: called per scrape, on the server's request thread.
        host: bind address (default loopback only).
        port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).

    Example:
        >>> server = MetricsServer(lambda: [s.snapshot() for s in stats], port=9108).start()
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        snapshots: Callable[[], Sequence[StatsSnapshot]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.snapshots = snapshots
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        snapshots = self.snapshots

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path != "/metrics":
                    body = b"streamdeid: scrape /metrics\n"
                    self._send(404, body, "text/plain; charset=utf-8")
                    return
                try:
                    body = render(snapshots()).encode()
                except Exception as e:  # noqa: BLE001 - a scrape must never kill the process
                    log.warning("metrics: rendering failed: %s", e)
                    self._send(500, f"error: {e}\n".encode(), "text/plain; charset=utf-8")
                    return
                self._send(200, body, CONTENT_TYPE)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics: " + format, *args)

        try:
            server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as e:
            raise ConfigError(
                f"--metrics-port: cannot serve metrics on {self.host}:{self.port}: "
                f"{e.strerror or e}"
            ) from e
        server.daemon_threads = True
        server.timeout = 1.0
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="streamdeid.metrics",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics at http://%s:%d/metrics", self.host, self.port)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = None
