"""Throughput of streamdeid relative to a plain PyAV decode → libx264 encode of the same clip.

Both are measured in the same process and the same run, interleaved repeat by repeat, so the
ratio ours/plain holds on a noisy shared machine even when absolute fps do not.

The plain baseline uses the encoder settings streamdeid uses by default (libx264, preset veryfast,
crf 20, yuv420p, the input's time base and pts, FFmpeg-chosen encoder threads) and the same
decoder set-up (thread_type AUTO). It is measured twice:

* ``plain+nd``: every frame converted to a bgr24 ndarray and back, as streamdeid's pipeline does
  (this is the fair baseline for the ratio);
* ``plain``: decoded frames handed straight to the encoder (no colour conversion).

Audio is not copied in the baselines (streamdeid copies it packet by packet, a negligible cost).

Each run also reports the process's CPU time per frame (all threads, user + system): on a
machine whose speed drifts, what our pipeline costs on top of the plain transcode is steadier in
CPU milliseconds than in fps.

Example:
    .venv/bin/python benchmarks/throughput.py --configs default cctv --repeat 2 --json t.json
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from _common import data_root, machine_info, need_file, table, write_json

CLIPS = {
    "hamilton": "ageitgey__face_recognition/examples/short_hamilton_clip.mp4",
    "720p": None,  # made on the fly from the 1080p clip
    "1080p": "timesler__facenet-pytorch/examples/video.mp4",
}
SOURCE_720P = CLIPS["1080p"]

# streamdeid's default encoder settings (streamdeid/config.py EncoderConfig + io/sink.py).
ENCODER = "libx264"
ENCODER_OPTIONS = {"crf": "20", "preset": "veryfast"}
PIX_FMT = "yuv420p"


def make_720p(src: Path, dst: Path) -> Path:
    """Downscale ``src`` to 1280×720 with PyAV (libx264 crf 18), keeping every frame and pts."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        os_ = out.add_stream("libx264", rate=rate)
        os_.width, os_.height, os_.pix_fmt = 1280, 720, "yuv420p"
        os_.time_base = vs.time_base
        os_.codec_context.time_base = vs.time_base
        os_.options = {"crf": "18", "preset": "medium"}
        n = 0
        for frame in inp.decode(vs):
            small = frame.reformat(width=1280, height=720, format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = frame.pts, frame.time_base
            small.pict_type = av.video.frame.PictureType.NONE
            out.mux(os_.encode(small))
            n += 1
        out.mux(os_.encode(None))
    print(f"made {dst.name}: 1280x720, {n} frames from {src.name}", flush=True)
    return dst


def plain_transcode(src: Path, dst: Path, ndarray_roundtrip: bool) -> dict[str, Any]:
    """Decode → (bgr24 ndarray → frame) → libx264 encode; returns frames and wall seconds."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        tb = vs.time_base or Fraction(1, 90000)
        os_: Any = None
        for frame in inp.decode(vs):
            if os_ is None:
                os_ = out.add_stream(ENCODER, rate=rate)
                os_.width, os_.height = frame.width, frame.height
                os_.time_base = tb
                os_.codec_context.time_base = tb
                os_.pix_fmt = PIX_FMT
                os_.options = dict(ENCODER_OPTIONS)
                os_.thread_count = 0
            if ndarray_roundtrip:
                image = frame.to_ndarray(format="bgr24")
                enc = av.VideoFrame.from_ndarray(image, format="bgr24")
                enc.pts, enc.time_base = frame.pts, tb
            else:
                enc = frame
                enc.pict_type = av.video.frame.PictureType.NONE  # do not force the input's I-frames
            out.mux(os_.encode(enc))
            frames += 1
        if os_ is not None:
            out.mux(os_.encode(None))
    seconds = time.perf_counter() - t0
    cpu_ms = (_cpu_seconds() - cpu0) * 1000 / max(1, frames)
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
        "cpu_ms_per_frame": cpu_ms,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (decoder, encoder, detector), user + system."""
    t = os.times()
    return t.user + t.system


def run_ours(src: Path, dst: Path, config: Any) -> dict[str, Any]:
    import streamdeid

    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    stats = streamdeid.anonymize_file(src, dst, config)
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {
        "frames": stats.frames,
        "seconds": stats.seconds,
        "fps": stats.fps,
        "wall_seconds": wall,
        "cpu_ms_per_frame": cpu * 1000 / max(1, stats.frames),
        "faces_detected": stats.faces_detected,
        "detector_runs": stats.detector_runs,
        "stage_seconds": stats.stage_seconds,
    }


def warm_up(src: Path, tmp: Path) -> None:
    """Load models and JIT-compile the numba kernels once, outside every measurement."""
    import streamdeid
    from streamdeid.errors import Interrupted

    stop = threading.Event()

    def progress(done: int, _total: int | None) -> None:
        if done >= 30:
            stop.set()

    try:
        streamdeid.anonymize_file(
            src, tmp / "warmup.mp4", streamdeid.load_config("default"), progress=progress, stop=stop
        )
    except Interrupted:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument(
        "--clips",
        nargs="+",
        default=list(CLIPS),
        help=f"clip names ({', '.join(CLIPS)}) or paths to video files",
    )
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["default"],
        help="streamdeid configs (names in configs/ or YAML paths)",
    )
    ap.add_argument(
        "--detect-every",
        nargs="+",
        type=int,
        default=None,
        metavar="N",
        help="also run each config with pipeline.detect_every = N (one run per N)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs per measurement")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--keep", help="keep the outputs in this folder instead of a temp dir")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import streamdeid

    root = data_root(args.data)
    configs: list[tuple[str, Any]] = []
    for name in args.configs:
        base = streamdeid.load_config(name)
        if not args.detect_every:
            configs.append((name, base))
            continue
        for n in args.detect_every:
            try:
                configs.append((f"{name}/every{n}", base.override({"pipeline.detect_every": n})))
            except streamdeid.StreamDeidError as e:
                print(f"skipping {name} with detect_every={n}: {e}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="sd-throughput-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        clips: list[tuple[str, Path]] = []
        for name in args.clips:
            if name == "720p":
                clips.append((name, make_720p(need_file(root, SOURCE_720P), tmp / "clip720p.mp4")))
            elif name in CLIPS:
                clips.append((name, need_file(root, CLIPS[name])))
            elif Path(name).is_file():
                clips.append((Path(name).stem, Path(name)))
            else:
                sys.exit(f"error: unknown clip '{name}': expected one of {list(CLIPS)} or a file")

        print("warming up (model load, numba JIT)...", flush=True)
        warm_up(clips[0][1], tmp)

        results: list[dict[str, Any]] = []
        rows = []
        for clip_name, path in clips:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                size = f"{s.codec_context.width}x{s.codec_context.height}"
            runs: dict[str, list[dict[str, Any]]] = {}
            for r in range(args.repeat):
                for variant, rt in (("plain+nd", True), ("plain", False)):
                    res = plain_transcode(path, tmp / f"{clip_name}.{variant}.mp4", rt)
                    runs.setdefault(variant, []).append(res)
                    print(
                        f"  [{clip_name} run {r + 1}] {variant}: {res['fps']:.1f} fps, "
                        f"CPU {res['cpu_ms_per_frame']:.0f} ms/frame",
                        flush=True,
                    )
                for cname, cfg in configs:
                    res = run_ours(path, tmp / f"{clip_name}.{cname.replace('/', '_')}.mp4", cfg)
                    runs.setdefault(cname, []).append(res)
                    print(
                        f"  [{clip_name} run {r + 1}] {cname}: {res['fps']:.1f} fps, "
                        f"CPU {res['cpu_ms_per_frame']:.0f} ms/frame "
                        f"(frames {res['frames']}, stages {res['stage_seconds']})",
                        flush=True,
                    )
            best = {k: max(v, key=lambda x: x["fps"]) for k, v in runs.items()}
            base_nd, base_raw = best["plain+nd"]["fps"], best["plain"]["fps"]
            rows.append(
                [
                    clip_name,
                    size,
                    best["plain"]["frames"],
                    "plain (no ndarray)",
                    base_raw,
                    best["plain"]["cpu_ms_per_frame"],
                    base_raw / base_nd,
                    1.0,
                ]
            )
            rows.append(
                [
                    clip_name,
                    size,
                    best["plain+nd"]["frames"],
                    "plain + ndarray",
                    base_nd,
                    best["plain+nd"]["cpu_ms_per_frame"],
                    1.0,
                    base_nd / base_raw,
                ]
            )
            for cname, _ in configs:
                b = best[cname]
                rows.append(
                    [
                        clip_name,
                        size,
                        b["frames"],
                        f"streamdeid {cname}",
                        b["fps"],
                        b["cpu_ms_per_frame"],
                        b["fps"] / base_nd,
                        b["fps"] / base_raw,
                    ]
                )
            results.append(
                {
                    "clip": clip_name,
                    "path": str(path),
                    "size": size,
                    "best": best,
                    "runs": runs,
                    "ratios_vs_plain_nd": {k: best[k]["fps"] / base_nd for k in best},
                    "ratios_vs_plain": {k: best[k]["fps"] / base_raw for k in best},
                }
            )

    print(f"\nbest of {args.repeat}; ratios are to plain runs measured in the same run\n")
    print(
        table(
            ["clip", "size", "frames", "pipeline", "fps", "CPU ms/frame", "÷ plain+nd", "÷ plain"],
            rows,
        )
    )
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "repeat": args.repeat,
            "encoder": {"codec": ENCODER, **ENCODER_OPTIONS, "pix_fmt": PIX_FMT},
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
