"""Live latency: ``streamdeid live`` on a 25 fps RTSP camera at 720p and 1080p.

A real RTSP server (GStreamer's gst-rtsp-server, the script the live tests use,
``tests/live/rtsp_server.py``, run with the system Python) plays a clip made from the research data
at its native rate, looped for the whole run. ``streamdeid live`` reads it for ``--duration``
seconds with the given config (default: the default config, real detector), writes a file, and
reports through ``--stats FILE.json``:

* fps in / out: frames read from the camera and frames encoded, per second of the run (from the
  first frame read to the last);
* drops: frames never emitted (the source dropped them, or capture, or before the encoder);
* not detected: frames the live policy skipped the detector on (tracks and look-ahead masked
  them), and of those, masked whole (no detection within 0.5 s);
* latency p50 / p95: capture (decoded from the camera) to encoded, over every frame of the run.

The clip: ``timesler__facenet-pytorch/examples/video.mp4`` (1920×1080, 25 fps, 105 frames, 6-10
faces) played forwards then backwards (no jump cut at the loop point), scaled to each size,
H.264 with a keyframe every second and no B-frames, repeated to outlast the run, written to a
temporary folder. Nothing is copied into the repository.

Needs GStreamer's RTSP server for the system Python:
``apt-get install -y gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad python3-gi``.

Example:
    .venv/bin/python benchmarks/live_latency.py --duration 120 --json live.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from _common import REPO, data_root, machine_info, need_file, table, write_json

SOURCE = "timesler__facenet-pytorch/examples/video.mp4"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 25
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = REPO / "tests" / "live" / "rtsp_server.py"
READY_TIMEOUT_S = 15.0


def make_loop_clip(src: Path, dst: Path, size: tuple[int, int], min_s: float) -> float:
    """Write ``src`` forwards then backwards at ``size``, repeated to last ``min_s`` seconds.

    One pass is encoded; the repeats are its packets copied with shifted timestamps (each pass
    starts on a keyframe), so a long camera costs one short encode. Returns the clip's length.
    """
    w, h = size
    frames = []
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in inp.decode(stream):
            frames.append(frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA"))
    sequence = frames + frames[-2:0:-1]
    one_pass = dst.with_name(f"{dst.stem}.pass.mp4")
    with av.open(str(one_pass), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, FPS)
        vs.options = {"crf": "20", "preset": "veryfast", "g": str(FPS), "bf": "0"}
        for i, frame in enumerate(sequence):
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    pass_s = len(sequence) / FPS
    passes = max(1, math.ceil(min_s / pass_s))
    with av.open(str(dst), "w") as out:
        ovs = None
        for k in range(passes):
            with av.open(str(one_pass)) as inp:
                ivs = inp.streams.video[0]
                if ovs is None:
                    ovs = out.add_stream_from_template(ivs)
                shift = round(k * pass_s / ivs.time_base)
                for packet in inp.demux(ivs):
                    if packet.dts is None:
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = ovs
                    out.mux(packet)
    seconds = passes * pass_s
    print(f"made {dst.name}: {w}x{h}, {passes} x {len(sequence)} frames ({seconds:.0f} s)")
    return seconds


class Server:
    """The test suite's RTSP server in a subprocess, stopped with SIGTERM."""

    def __init__(self, clip: Path, log_path: Path) -> None:
        self._log = open(log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), "--file", str(clip)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                self.url = line.split()[1]
                return
        self.stop()
        sys.exit(f"error: the RTSP server did not start; see {log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def check_server() -> None:
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        " from gi.repository import GstRtspServer"
    )
    if (
        not os.path.exists(SYSTEM_PYTHON)
        or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode
    ):
        sys.exit(
            "error: GStreamer's RTSP server is not available for the system Python: "
            "apt-get install -y gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-bad python3-gi"
        )


def run_live(
    url: str, out: Path, stats: Path, config: str, duration: float, extra: list[str]
) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "streamdeid", "live", url, "-o", str(out), "-y",
        "--config", config, "--duration", str(duration), "--stats", str(stats),
        "--stats-interval", "10", *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=duration + 120)
    wall = time.perf_counter() - t0
    for line in done.stderr.splitlines():
        print(f"    {line}", flush=True)
    if done.returncode != 0:
        sys.exit(f"error: streamdeid live exited with {done.returncode}")
    report = json.loads(stats.read_text())["cameras"][0]
    report["wall_s"] = round(wall, 2)
    return report


def _modes(reversible: bool, tmp: Path) -> list[tuple[str, list[str]]]:
    """("", no flags), and with ``reversible`` ("+rev", --recipient with a fresh key)."""
    if not reversible:
        return [("", [])]
    from streamdeid.crypto import generate_keypair

    key = tmp / "bench.pub"
    if not key.exists():
        generate_keypair(tmp / "bench.key", key, b"benchmark-passphrase-only")
    return [("", []), ("+rev", ["--recipient", str(key)])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument(
        "--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="camera sizes"
    )
    ap.add_argument(
        "--duration", type=float, default=120.0, help="seconds of live input per size (120)"
    )
    ap.add_argument("--config", default="default", help="streamdeid config (name or YAML path)")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--keep", help="keep clips and outputs in this folder instead of a temp dir")
    ap.add_argument(
        "--reversible",
        action="store_true",
        help="run each size twice, without and with --recipient (a generated key): the "
        "extra drops and latency of reversible masking",
    )
    args = ap.parse_args(argv)

    check_server()
    src = need_file(data_root(args.data), SOURCE)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sd-live-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        for name in args.sizes:
            clip = tmp / f"camera_{name}.mp4"
            # Long enough for model loading plus the whole run: the camera never ends early.
            make_loop_clip(src, clip, SIZES[name], args.duration + 30)
            for mode, extra in _modes(args.reversible, tmp):
                server = Server(clip, tmp / f"rtsp_server_{name}.log")
                try:
                    url = f"{server.url}/cam"
                    print(f"[{name}{mode}] streamdeid live {url} for {args.duration:g} s")
                    report = run_live(
                        url, tmp / f"out_{name}{mode}.mkv", tmp / f"stats_{name}{mode}.json",
                        args.config, args.duration, extra,
                    )  # fmt: skip
                finally:
                    server.stop()
                report["size"] = name + mode
                results.append(report)

    def ms(v: float | None) -> float:
        return float("nan") if v is None else v * 1000

    rows = [
        [
            r["size"],
            r["run_fps_in"],
            r["run_fps_out"],
            r["frames_in"],
            r["dropped"],
            r["detect_skipped"],
            r["blind_frames"],
            ms(r["run_latency_p50_s"]),
            ms(r["run_latency_p95_s"]),
            r["reconnects"],
        ]
        for r in results
    ]
    print()
    print(
        f"streamdeid live, config '{args.config}', {args.duration:g} s per size, "
        f"25 fps RTSP camera (loopback)"
    )
    print(
        table(
            [
                "size",
                "fps in",
                "fps out",
                "frames in",
                "dropped",
                "not detected",
                "masked whole",
                "p50 ms",
                "p95 ms",
                "reconnects",
            ],
            rows,
        )
    )
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "config": args.config,
            "duration_s": args.duration,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
