"""``streamdeid live``: anonymize cameras in real time (one, or many from a cameras file).

Only the standard library and light parts of streamdeid are imported at import time, so
``streamdeid --help`` stays fast; the live pipeline is loaded when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from streamdeid.argtypes import port, positive_float, positive_int
from streamdeid.cli._common import (
    Subparsers,
    add_common,
    confidence_defaults,
    config_overrides,
    stop_on_signals,
    write_json,
)
from streamdeid.cli._live_report import emitter, print_summaries, report
from streamdeid.errors import ConfigError, Interrupted, StreamDeidError

log = logging.getLogger("streamdeid.live")

LIVE_EXAMPLES = """\
examples:
  streamdeid live rtsp://cam.local:554/stream -o lobby/ --segment-time 60
      mask a camera into 60-s MP4 segments in lobby/ (reconnects on its own)
  streamdeid live rtsp://cam.local/stream -o rtsp://127.0.0.1:8554/anon -o lobby.mkv
      republish the masked stream over RTSP and record it at the same time
  streamdeid live --cameras cameras.yaml --metrics-port 9108 --log-format json
      every camera of a cameras file (see configs/cameras.example.yml), Prometheus
      metrics at http://127.0.0.1:9108/metrics, one JSON object per log line
  streamdeid live clip.mp4 -o out.mkv --realtime --duration 30
      play a file at its own frame rate, as a camera would (try the live policy)

latency policy: when the detector falls behind, frames it has no time for are not detected;
known faces are masked by their tracks, faces appearing in between by the next detection
(look-ahead), and after 0.5 s without a detection whole frames are masked. A frame is never
sent unmasked because the detector was late. Frames are dropped (and counted) only when the
encoder cannot keep up, always before encoding.

stats line (stderr, every second): frames and fps in/out, latency p50/p95 (capture to encoded),
drop (frames dropped), skip (frames not detected), faces, reconnects.
Ctrl-C or SIGTERM: outputs are flushed and closed (playable), exit code 130.
"""


def register(sub: Subparsers) -> None:
    """Add ``live``."""
    p = sub.add_parser(
        "live",
        help="anonymize live cameras (RTSP/HTTP/UDP) in real time",
        description="Anonymize a live SOURCE into OUTPUT(s) with bounded latency, or every camera "
        "listed in a cameras file. Runs until the source ends, --duration passes, or "
        "Ctrl-C/SIGTERM (outputs are closed cleanly).",
        epilog=LIVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="rtsp://… (or http://, udp://, srt://) URL, /dev/videoN, or a video file",
    )
    p.add_argument(
        "-o",
        "--output",
        action="append",
        metavar="OUTPUT",
        help="file (.mkv/.ts survive a crash best), folder for segments, or rtsp:// URL to "
        "publish to; repeat to write several",
    )
    p.add_argument(
        "--cameras",
        metavar="FILE.yaml",
        help="run every camera of this file instead of SOURCE (see configs/cameras.example.yml)",
    )
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="YAML config or bundled name (the base config of every camera with --cameras)",
    )
    _add_input_output(p)
    _add_masking(p)
    _add_reversible(p)
    _add_monitoring(p)
    add_common(p)
    p.set_defaults(handler=cmd_live)


def _add_reversible(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("reversible masking (authorized review)")
    r.add_argument(
        "--recipient",
        action="append",
        metavar="KEY.pub",
        help="reviewer public key (repeat for several): each file OUTPUT, and each segment, gets "
        "OUTPUT.sdeid with the original pixels of every masked face, encrypted (needs a file or "
        "segments output; an RTSP push gets none)",
    )
    r.add_argument(
        "--lossy-regions",
        action="store_true",
        default=None,
        help="store the crops as JPEG q95 instead of lossless PNG (3x smaller, less CPU)",
    )


def _add_input_output(p: argparse.ArgumentParser) -> None:
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--segment-time",
        type=positive_float,
        metavar="S",
        help="write OUTPUT as a folder of S-second segments",
    )
    io.add_argument(
        "--rtsp-transport",
        choices=["tcp", "udp"],
        help="RTSP transport (default tcp: survives packet loss and firewalls)",
    )
    io.add_argument(
        "--open-timeout",
        type=positive_float,
        metavar="S",
        help="give up connecting to SOURCE after S seconds (default 10)",
    )
    io.add_argument(
        "--realtime",
        action="store_true",
        help="a file SOURCE is played at its own frame rate, like a camera, and the live "
        "latency policy applies (URLs are always live)",
    )
    io.add_argument("-y", "--overwrite", action="store_true", help="replace an existing OUTPUT")


def _add_masking(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("masking")
    g.add_argument(
        "--method", choices=["blur", "pixelate", "solid", "surrogate"], help="default blur"
    )
    g.add_argument(
        "--detect-every",
        type=positive_int,
        metavar="N",
        help="schedule the detector on every N-th frame (default 1; the policy may skip more)",
    )
    g.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help=f"detector threshold, every backend (defaults: {confidence_defaults()})",
    )
    g.add_argument("--mask-scale", type=float, metavar="X", help="grow face boxes (1.3)")


def _add_monitoring(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("monitoring")
    r.add_argument(
        "--duration", type=positive_float, metavar="S", help="stop cleanly after S seconds"
    )
    r.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve Prometheus metrics at http://HOST:P/metrics",
    )
    r.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address to serve metrics on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    r.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: one JSON object per log line (camera, event, …), for log shippers",
    )
    r.add_argument(
        "--stats-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between stats lines on stderr (0 = none)",
    )
    r.add_argument("--stats", metavar="FILE.json", help="write a JSON report at the end")


def _camera_name(source: str) -> str:
    import re

    if "://" in source:
        rest = source.split("://", 1)[1].split("@")[-1]
        stem = rest.split("?")[0].strip("/").replace("/", "_").replace(":", "_")
    else:
        stem = Path(source).stem
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip("._-")[:64]
    return name or "camera"


def _single_camera(args: argparse.Namespace) -> Any:
    from streamdeid.config import load_config
    from streamdeid.live.endpoints import classify_output
    from streamdeid.live.policy import LiveConfig
    from streamdeid.live.session import Camera

    config = load_config(args.config).override(config_overrides(args))
    source_opts: dict[str, Any] = {}
    if args.rtsp_transport:
        source_opts["rtsp_transport"] = args.rtsp_transport
    if args.open_timeout:
        source_opts["open_timeout_s"] = args.open_timeout
    # One camera: no restarts (its error is the command's), and the blind window never
    # shorter than the scheduled detector gap.
    # --detect-every sets the schedule for cameras as well as for files.
    every = args.detect_every or LiveConfig().detect_every
    live = LiveConfig(
        restart_limit=0,
        detect_every=every,
        blind_frames=max(LiveConfig().blind_frames, every, config.pipeline.detect_every),
        source=source_opts,
    )
    outputs = [classify_output(o, args.segment_time) for o in args.output]
    return Camera(
        name=_camera_name(args.source),
        source=args.source,
        outputs=outputs,
        config=config,
        live=live,
        realtime=args.realtime,
    )


def cmd_live(args: argparse.Namespace) -> int:
    """Run ``streamdeid live``; returns the exit code (errors raise StreamDeidError)."""
    from streamdeid.live.stats import LiveStats
    from streamdeid.live.supervisor import Supervisor

    cameras, single = _cameras(args)
    stop = threading.Event()
    stats = {c.name: LiveStats(c.name) for c in cameras}
    supervisor = Supervisor(cameras, stop, stats=stats, log_failures=not single)
    timed_out = _supervise(args, supervisor, stats, stop, one_camera=len(cameras) == 1)
    results = supervisor.results
    print_summaries(args.log_format, cameras, stats, results, single)
    if args.stats:
        write_json(args.stats, {"cameras": [report(stats[c.name], results) for c in cameras]})
    if stop.is_set() and not timed_out:
        written = ", ".join(
            f"{c.name}: {stats[c.name].count('frames_out')} frames" for c in cameras
        )
        raise Interrupted(f"interrupted: outputs closed cleanly ({written})")
    _raise_failures(cameras, results, single)
    return 0


def _cameras(args: argparse.Namespace) -> tuple[list[Any], bool]:
    """The cameras to run, and whether they are one SOURCE (whose error is the command's)."""
    from streamdeid.config import load_config
    from streamdeid.live.cameras import load_cameras
    from streamdeid.live.endpoints import check_outputs

    if args.cameras:
        if args.source or args.output:
            raise ConfigError("live: give either SOURCE -o OUTPUT or --cameras FILE, not both")
        base = load_config(args.config) if args.config else None
        cameras = load_cameras(args.cameras, base, overrides=config_overrides(args))
        single = False
    else:
        if not args.source:
            raise ConfigError("live: expected SOURCE -o OUTPUT or --cameras FILE, got neither")
        if not args.output:
            raise ConfigError("live: expected an output (-o OUTPUT) for SOURCE")
        cameras = [_single_camera(args)]
        single = True
    for cam in cameras:
        check_outputs(cam.outputs, overwrite=args.overwrite)
    return cameras, single


def _supervise(
    args: argparse.Namespace,
    supervisor: Any,
    stats: dict[str, Any],
    stop: threading.Event,
    one_camera: bool,
) -> bool:
    """Run the cameras with metrics and stats lines; True when ``--duration`` stopped them."""
    from streamdeid.live.metrics import MetricsServer
    from streamdeid.live.stats import StatsReporter

    metrics = None
    if args.metrics_port is not None:
        metrics = MetricsServer(
            lambda: [s.snapshot() for s in stats.values()], args.metrics_host, args.metrics_port
        ).start()
        print(f"streamdeid: metrics at {metrics.url}", file=sys.stderr, flush=True)
    reporter = None
    if args.stats_interval > 0:
        reporter = StatsReporter(
            list(stats.values()),
            emitter(args.log_format),
            args.stats_interval,
        ).start()
    try:
        return _wait(supervisor, stop, args.duration)
    finally:
        if reporter is not None:
            reporter.stop()
            if sys.stderr.isatty() and args.log_format == "text" and one_camera:
                sys.stderr.write("\n")  # end the stats line redrawn in place
        if metrics is not None:
            metrics.stop()


def _wait(supervisor: Any, stop: threading.Event, duration: float | None) -> bool:
    """Until every camera ends; a signal or ``duration`` sets ``stop`` and lets them drain."""
    timed_out = False
    deadline = time.monotonic() + duration if duration else None
    with stop_on_signals(stop):
        supervisor.start()
        try:
            while not supervisor.join(0.2):
                if deadline is not None and not stop.is_set() and time.monotonic() > deadline:
                    timed_out = True
                    log.info("duration reached", extra={"event": "duration"})
                    stop.set()
        except KeyboardInterrupt:
            stop.set()
            supervisor.join(10)
            raise
    return timed_out


def _raise_failures(cameras: list[Any], results: dict[str, Any], single: bool) -> None:
    """One camera's error is the command's own; of several, one line names each failed one."""
    failed = [results[c.name] for c in cameras if results[c.name].state == "failed"]
    if not failed:
        return
    if single:
        err = failed[0].error
        if isinstance(err, StreamDeidError):
            raise err
        raise StreamDeidError(f"{failed[0].name}: {type(err).__name__}: {err}") from err
    names = ", ".join(f"{r.name} ({r.error})" for r in failed)
    raise StreamDeidError(f"{len(failed)} of {len(cameras)} cameras failed: {names}")
