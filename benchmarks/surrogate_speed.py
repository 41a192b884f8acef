"""Speed of ``--method surrogate`` against ``--method blur`` on the same clip, in the same run.

Both runs use the default config except ``obscure.method``, interleaved repeat by repeat (best of
``--repeat``), so the ratio holds on a shared machine even when absolute fps drift. Reported per
clip: fps of each, surrogate fps ÷ blur fps, CPU ms per frame of each (all threads) and what the
surrogate filter did with the regions (drawn / fell back to blur), since a clip with fewer than
k + 1 people only ever takes the blur path.

Clips: the default synthetic scenario (two faces) and the crowd (eight people: the package's two
faces and six LFW faces from scikit-image), each at 1280x720 and 640x360; with the shared data,
the Hamilton clip (640x360) and the 1080p dev clip downscaled to 720p.

``--kernels`` instead times the mesh warp (numba) against the same piecewise-affine warp done
with OpenCV, one warpAffine and one mask per triangle.

Example:
    .venv/bin/python benchmarks/surrogate_speed.py --repeat 2 --json surrogate.json
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import DEFAULT_DATA, table, write_json

REAL = {
    "hamilton 360p": "ageitgey__face_recognition/examples/short_hamilton_clip.mp4",
    "dev 720p": "timesler__facenet-pytorch/examples/video.mp4",  # downscaled from 1080p
}


def make_clips(tmp: Path, frames: int, data: Path) -> dict[str, Path]:
    from streamdeid.testing.crowd import crowd_clip
    from streamdeid.testing.synthetic import synthetic_clip

    clips = {}
    for name, size in [("720p", (1280, 720)), ("360p", (640, 360))]:
        clips[f"synthetic {name}"] = tmp / f"synthetic_{name}.mp4"
        synthetic_clip(clips[f"synthetic {name}"], n_frames=frames, size=size, audio=False)
        clips[f"crowd {name}"] = tmp / f"crowd_{name}.mp4"
        crowd_clip(clips[f"crowd {name}"], frames, size)
    for name, rel in REAL.items():
        if (data / rel).exists():
            src = data / rel
            if name == "dev 720p":
                from throughput import make_720p

                src = make_720p(src, tmp / "dev_720p.mp4")
            clips[name] = src
    return clips


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def run_once(src: Path, dst: Path, method: str) -> dict[str, Any]:
    import streamdeid

    config = streamdeid.load_config("default").override({"obscure.method": method})
    cpu0 = _cpu_seconds()
    stats = streamdeid.anonymize_file(src, dst, config)
    cpu = _cpu_seconds() - cpu0
    return {
        "fps": stats.fps,
        "frames": stats.frames,
        "cpu_ms_per_frame": cpu * 1000 / max(1, stats.frames),
        "surrogate": stats.surrogate,
    }


def measure(clips: dict[str, Path], tmp: Path, repeat: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, src in clips.items():
        best: dict[str, dict[str, Any]] = {}
        for _ in range(repeat):
            for method in ("blur", "surrogate"):
                r = run_once(src, tmp / f"out_{method}.mp4", method)
                if method not in best or r["fps"] > best[method]["fps"]:
                    best[method] = r
        results[name] = best
        b, s = best["blur"], best["surrogate"]
        print(f"{name}: blur {b['fps']:.1f} fps, surrogate {s['fps']:.1f} fps", flush=True)
    return results


def report(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, r in results.items():
        b, s = r["blur"], r["surrogate"]
        counts = s["surrogate"] or {}
        rows.append(
            [
                f"{name} ({b['frames']})",
                round(b["fps"], 1),
                round(s["fps"], 1),
                round(s["fps"] / b["fps"], 2),
                round(b["cpu_ms_per_frame"], 1),
                round(s["cpu_ms_per_frame"], 1),
                f"{counts.get('surrogate', 0)} / {counts.get('blurred', 0)}",
            ]
        )
    headers = [
        "clip (frames)",
        "blur fps",
        "surrogate fps",
        "surrogate ÷ blur",
        "blur CPU ms/frame",
        "surrogate CPU ms/frame",
        "regions drawn / blurred",
    ]
    return table(headers, rows)


def kernel_timing(side: int = 200, repeat: int = 20) -> dict[str, float]:
    """ms per face: the numba mesh warp against one OpenCV warpAffine + mask per triangle."""
    import cv2

    from streamdeid.obscure.mesh_kernels import warp_mesh
    from streamdeid.obscure.surrogate_gallery import Mesh

    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 468)
    radii = np.sqrt(rng.uniform(0, 1, 468))
    shape = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1) * 0.45 + 0.5
    mesh = Mesh.from_fit((shape * side).astype(np.float32))
    texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    target = (shape * side + rng.normal(0, 1.0, shape.shape)).astype(np.float32)

    def numba_warp() -> None:
        face = np.zeros((side, side, 3), np.float32)
        warp_mesh(face, np.zeros((side, side), np.uint8), target, texture, mesh.points, mesh.tris)

    def opencv_warp() -> None:
        # The usual OpenCV recipe: per triangle, warp only its bounding rectangle, then copy
        # the pixels inside the triangle.
        face = np.zeros((side, side, 3), np.float32)
        src = texture.astype(np.float32)
        for tri in mesh.tris:
            dst_tri = target[tri]
            x, y, w, h = cv2.boundingRect(np.round(dst_tri).astype(np.int32))
            x, y = max(x, 0), max(y, 0)
            w, h = min(w, side - x), min(h, side - y)
            if w <= 0 or h <= 0:
                continue
            m = cv2.getAffineTransform(mesh.points[tri], dst_tri - np.float32([x, y]))
            patch = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR)
            mask = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(mask, np.round(dst_tri - [x, y]).astype(np.int32), 1)
            view = face[y : y + h, x : x + w]
            view[mask > 0] = patch[mask > 0]

    out = {}
    for name, fn in [("numba", numba_warp), ("opencv", opencv_warp)]:
        fn()
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        out[name] = (time.perf_counter() - t0) * 1000 / repeat
    out["triangles"] = float(len(mesh.tris))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data)")
    ap.add_argument("--frames", type=int, default=100, help="frames of each synthetic clip")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs per measurement")
    ap.add_argument("--only", nargs="*", help="clip names to run (default: all available)")
    ap.add_argument("--kernels", action="store_true", help="time the mesh warp kernels only")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.kernels:
        timing = kernel_timing()
        print(
            f"mesh warp of a {200}-px face, {timing['triangles']:.0f} triangles: numba "
            f"{timing['numba']:.2f} ms, OpenCV per triangle {timing['opencv']:.2f} ms"
        )
        if args.json:
            write_json(args.json, timing)
        return 0
    data = Path(args.data) if args.data else DEFAULT_DATA
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips = make_clips(tmp, args.frames, data)
        if args.only:
            clips = {k: v for k, v in clips.items() if k in args.only}
        first = next(iter(clips.values()))
        run_once(first, tmp / "warm.mp4", "surrogate")  # models and kernels, outside the timing
        results = measure(clips, tmp, args.repeat)
    print(report(results))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
