"""``streamdeid batch`` against ``streamdeid run`` on the same files, and chunked against whole.

Two measurements, interleaved repeat by repeat in one process (the machine's speed drifts):

* **Files**: the real clips of ``../shared/data`` listed in ``FILES`` plus one long clip, run one
  after another with :func:`streamdeid.anonymize_file` (what ``streamdeid run`` does for a
  folder), and as one batch on a local Ray instance (``run_batch``, no address: one task per
  core). Batch time is reported with and without Ray's start and stop.
* **One long file**: the long clip alone, run whole (``anonymize_file``), as one batch task
  (``--chunk-seconds`` larger than the clip) and in chunks (``--chunk-seconds``).

The long clip is the hamilton clip (640x360, 30 fps, 10 s) played ``--loops`` times and
re-encoded (crf 18, keyframe every ``--gop`` frames), so it has real faces and a known length.

Example:
    .venv/bin/python benchmarks/batch.py --repeat 2 --json batch.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_root, machine_info, need_file, table, write_json

from streamdeid import anonymize_file
from streamdeid.batch import run_batch

HAMILTON = "ageitgey__face_recognition/examples/short_hamilton_clip.mp4"
FILES = [
    HAMILTON,
    "timesler__facenet-pytorch/examples/video.mp4",
    "davisking__dlib/dlib/test/ffmpeg_data/MOT20-05-raw_even_shorter.mp4",
    "intel-iot-devkit__sample-videos/asl_gestures/again.mkv",
    "intel-iot-devkit__sample-videos/asl_gestures/book.mkv",
    "intel-iot-devkit__sample-videos/asl_gestures/brother.mkv",
]


def looped_clip(src: Path, dst: Path, loops: int, gop: int) -> int:
    """``src`` played ``loops`` times into ``dst`` (no audio); returns the frame count."""
    with av.open(str(src)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        rate = c.streams.video[0].average_rate or 30
    h, w = frames[0].shape[:2]
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, int(rate))
        stream.options = {"crf": "18", "g": str(gop), "preset": "veryfast"}
        for i in range(loops * len(frames)):
            vf = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="bgr24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return loops * len(frames)


def run_each(files: list[Path], out: Path) -> dict[str, float]:
    """``streamdeid run`` on each file in turn: wall seconds and frames."""
    out.mkdir()
    t0, frames = time.perf_counter(), 0
    for f in files:
        frames += anonymize_file(f, out / f.name).frames
    return {"seconds": time.perf_counter() - t0, "frames": frames}


def batch(files: list[Path], out: Path, chunk_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = run_batch(files, out, chunk_seconds=chunk_s)
    wall = time.perf_counter() - t0
    if report.failed:
        sys.exit(f"error: batch failed: {[(f.input, f.error) for f in report.failed]}")
    totals = report.totals()
    return {
        "seconds": wall,
        "seconds_in_batch": report.seconds,
        "frames": totals["frames"],
        "chunked_files": totals["chunked"],
        "chunks": sum(f.chunks for f in report.files),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--chunk-seconds", type=float, default=12.0)
    p.add_argument("--loops", type=int, default=6)
    p.add_argument("--gop", type=int, default=150)
    p.add_argument("--json")
    args = p.parse_args()
    root = data_root(args.data)
    files = [need_file(root, rel) for rel in FILES]
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        long_clip = work / "hamilton_long.mp4"
        n = looped_clip(files[0], long_clip, args.loops, args.gop)
        print(f"long clip: {n} frames", file=sys.stderr)
        cases = {
            "files: run each": lambda o: run_each([*files, long_clip], o),
            "files: batch": lambda o: batch([*files, long_clip], o, args.chunk_seconds),
            "long: run": lambda o: run_each([long_clip], o),
            "long: batch whole": lambda o: batch([long_clip], o, 1e6),
            "long: batch chunked": lambda o: batch([long_clip], o, args.chunk_seconds),
        }
        for r in range(args.repeat):
            for name, case in cases.items():
                result = case(work / f"{r}-{len(results.get(name, []))}-{abs(hash(name))}")
                result["fps"] = result["frames"] / result["seconds"]
                results.setdefault(name, []).append(result)
                print(f"{name}: {result}", file=sys.stderr)
    rows = []
    for name, runs in results.items():
        best = max(runs, key=lambda x: x["fps"])
        inner = best.get("seconds_in_batch")
        rows.append(
            [
                name,
                best["frames"],
                best["seconds"],
                best["fps"],
                best["frames"] / inner if inner else float("nan"),
                best.get("chunks", ""),
            ]
        )
    headers = ["case", "frames", "wall s", "fps (wall)", "fps (without Ray start/stop)", "chunks"]
    print(table(headers, rows))
    write_json(args.json, {"machine": machine_info(), "cpus": os.cpu_count(), "results": results})


if __name__ == "__main__":
    main()
