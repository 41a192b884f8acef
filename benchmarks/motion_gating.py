"""Motion-gated detection (``detector.focus.motion``) against the plain detector, on real clips.

For each clip and config, the same decoded frames go through two detectors built from the same
config: the plain one (``detector.focus.enabled: false``) and the same backend wrapped in
:class:`~streamdeid.detect.focus.FocusDetector` with the config's motion settings. Only
``detect`` calls are timed (decoding is not), and the two runs are interleaved repeat by repeat,
so the ratio gated/plain holds on a noisy shared machine even when absolute ms do not.

The backend is forced to BlazeFace unless ``--backend`` says otherwise (``config`` keeps each
config's own). ``--set KEY=VALUE`` overrides any config field, e.g. the fixed-camera BlazeFace
settings: ``--set detector.tile_size=256 --set detector.tile_overlap=0.3 --set
detector.max_tiles_per_frame=1000 --set detector.confidence=0.25`` (every tile on every frame;
config overrides ignore null).

Per run it reports:

* how the gated detector spent its frames: whole-frame passes (first frame, periodic, scene
  change, and *fallbacks*: frames where its windows would have cost as much as the inner
  pass), gated calls, and frames skipped without any inference;
* model windows and megapixels per frame (every ``detect_windows`` window, whole-frame passes
  included) for both detectors, and the gated detector's own windows per frame (gated calls
  only). Windows are the cost of fixed-input models (BlazeFace resizes each to 192 px),
  megapixels that of fully convolutional ones (CenterFace); both do not depend on the load of
  the machine, unlike ms;
* detector ms per frame for both, and the gating overhead (background model and window
  planning: the gated run's time minus its inner detector's time);
* agreement: the share of the plain detector's boxes that the gated one also returned on that
  frame (IoU ≥ 0.3), and the share at least half inside a gated box grown by the config's
  ``mask_scale`` (what would be masked): a detector-level proxy for what gating misses. The
  tracker, which carries masks between detections, is not involved; ``leak_check.py`` with a
  motion-enabled YAML config measures the whole pipeline.

Clips (``--clips``): ``classroom`` and ``store`` (fixed CCTV cameras, 480×270 GIF previews of
the Intel sample videos), ``walking`` (fixed corridor camera, same source), ``facenet`` (1080p
street crowd, moving camera: the case gating is not for), ``bottles`` (640×360, 1189 frames,
no face: a hand moves bottles on a table; use ``--limit``), or any video path.
``--size 1280x720`` resizes every frame first, to see gating at the size of an HD camera.

Example:
    .venv/bin/python benchmarks/motion_gating.py --configs default cctv --repeat 2 \
        --json motion.json
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from _common import data_root, iou_matrix, machine_info, need_file, table, write_json

CLIPS = {
    "classroom": "intel-iot-devkit__sample-videos/preview/classroom.gif",
    "store": "intel-iot-devkit__sample-videos/preview/store-aisle-detection.gif",
    "walking": "intel-iot-devkit__sample-videos/preview/face-demographics-walking.gif",
    "facenet": "timesler__facenet-pytorch/examples/video.mp4",
    "bottles": "intel-iot-devkit__sample-videos/bottle-detection.mp4",
}
MATCH_IOU = 0.3


@dataclass
class Run:
    """One detector over one clip."""

    frames: int = 0
    seconds: float = 0.0
    inner_seconds: float = 0.0
    model_windows: int = 0
    model_pixels: int = 0
    boxes: int = 0
    full_scans: int = 0
    fallbacks: int = 0
    gated_calls: int = 0
    skipped_frames: int = 0
    gated_windows: int = 0

    def per_frame(self, value: float) -> float:
        return value / self.frames if self.frames else float("nan")


def decode(path: Path, size: tuple[int, int] | None, limit: int | None) -> Iterator[np.ndarray]:
    """BGR frames of ``path``, resized to ``size`` when given."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, frame in enumerate(container.decode(stream)):
            if limit is not None and n >= limit:
                break
            image = frame.to_ndarray(format="bgr24")
            if size is not None and (image.shape[1], image.shape[0]) != size:
                interp = cv2.INTER_AREA if image.shape[1] > size[0] else cv2.INTER_CUBIC
                image = cv2.resize(image, size, interpolation=interp)
            yield image


def build(config: Any, gated: bool) -> tuple[Any, Any]:
    """(detector, inner) for a config with motion off; the inner is warmed up (model loaded)."""
    from streamdeid.build import make_detector
    from streamdeid.detect.focus import FocusDetector

    inner = make_detector(config.override({"detector.focus.enabled": False}))
    inner.detect(np.zeros((270, 480, 3), np.uint8))  # first inference allocates; not timed
    if not gated:
        return inner, inner
    m = config.detector.focus
    detector = FocusDetector(
        inner, full_scan_every=m.full_scan_every, tile_size=m.tile_size, threshold=m.threshold
    )
    return detector, inner


def run_once(
    path: Path, config: Any, gated: bool, size: tuple[int, int] | None, limit: int | None
) -> tuple[Run, list[np.ndarray]]:
    """Time ``detect`` on every frame; returns the counts and each frame's boxes."""
    from streamdeid.types import Frame

    detector, inner = build(config, gated)
    run = Run()
    inner_time = 0.0
    depth = 0  # inner.detect calls its own detect_windows: time the outer call only

    def timed(method: Any, count_windows: bool) -> Any:
        def call(*args: Any) -> Any:
            nonlocal inner_time, depth
            if count_windows:
                run.model_windows += len(args[1])
                run.model_pixels += sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in args[1])
            depth += 1
            t0 = time.perf_counter()
            try:
                return method(*args)
            finally:
                depth -= 1
                if depth == 0:
                    inner_time += time.perf_counter() - t0

        return call

    # Instance attributes shadow the methods, also for the inner's own self.detect_windows call.
    inner.detect_windows = timed(inner.detect_windows, True)
    inner.detect = timed(inner.detect, False)
    found: list[np.ndarray] = []
    try:
        for i, image in enumerate(decode(path, size, limit)):
            frame = Frame(i, image, i, None, time.monotonic())
            t0 = time.perf_counter()
            boxes = detector.detect(frame).xyxy
            run.seconds += time.perf_counter() - t0
            run.frames += 1
            run.boxes += len(boxes)
            found.append(boxes)
    finally:
        detector.close()
    run.inner_seconds = inner_time
    if gated:
        run.full_scans = detector.full_scans
        run.fallbacks = detector.fallbacks
        run.gated_calls = detector.gated_calls
        run.skipped_frames = detector.skipped_frames
        run.gated_windows = detector.windows_run
    return run, found


def agreement(
    plain: list[np.ndarray], gated: list[np.ndarray], mask_scale: float
) -> tuple[float, float]:
    """How many of the plain detector's boxes the gated one also has, on the same frame.

    Returns (kept, covered): the share of plain boxes with a gated box at IoU ≥ 0.3, and the
    share with at least half their area inside a gated box grown by ``mask_scale`` (what the
    obscure stage would mask; a different box on the same face still counts there).
    """
    total = kept = covered = 0
    for a, b in zip(plain, gated, strict=True):
        total += len(a)
        if not (len(a) and len(b)):
            continue
        kept += int((iou_matrix(a, b).max(axis=1) >= MATCH_IOU).sum())
        centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) * mask_scale / 2
        grown = np.concatenate([centre - half, centre + half], axis=1)
        w = np.minimum(a[:, None, 2], grown[None, :, 2]) - np.maximum(
            a[:, None, 0], grown[None, :, 0]
        )
        h = np.minimum(a[:, None, 3], grown[None, :, 3]) - np.maximum(
            a[:, None, 1], grown[None, :, 1]
        )
        inside = np.clip(w, 0, None) * np.clip(h, 0, None)
        area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9)
        covered += int((inside.max(axis=1) / area >= 0.5).sum())
    if not total:
        return float("nan"), float("nan")
    return kept / total, covered / total


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(
            f"error: --size expects WIDTHxHEIGHT, e.g. 1280x720, got '{text}'"
        ) from None
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise SystemExit(f"error: --size expects even sizes of at least 2, got '{text}'")
    return w, h


def parse_sets(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set expects KEY=VALUE, got '{item}'")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument(
        "--clips",
        nargs="+",
        default=["classroom", "store", "facenet"],
        help=f"clip names ({', '.join(CLIPS)}) or video paths",
    )
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["default", "cctv"],
        help="streamdeid configs (names in configs/ or YAML paths)",
    )
    ap.add_argument(
        "--backend",
        default="blazeface",
        choices=["blazeface", "centerface", "mediapipe", "ensemble", "config"],
        help="detector backend forced on every config ('config': as configured)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field in every config, e.g. detector.focus.tile_size=256 "
        "(YAML value; repeatable)",
    )
    ap.add_argument("--size", help="resize every frame to WIDTHxHEIGHT first (e.g. 1280x720)")
    ap.add_argument("--limit", type=int, help="only the first N frames of each clip")
    ap.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from streamdeid.config import load_config

    size = parse_size(args.size)
    backend = {} if args.backend == "config" else {"detector.backend": args.backend}
    overrides = {**backend, **parse_sets(args.set)}
    root = data_root(args.data)
    clips = {c: need_file(root, CLIPS[c]) if c in CLIPS else Path(c) for c in args.clips}
    rows, results = [], []
    for clip, path in clips.items():
        for name in args.configs:
            config = load_config(None if name == "default" else name).override(overrides)
            best: dict[bool, tuple[Run, list[np.ndarray]]] = {}
            for _ in range(args.repeat):
                for gated in (False, True):
                    run, found = run_once(path, config, gated, size, args.limit)
                    if gated not in best or run.seconds < best[gated][0].seconds:
                        best[gated] = (run, found)
            (plain, plain_boxes), (gated_run, gated_boxes) = best[False], best[True]
            kept, covered = agreement(plain_boxes, gated_boxes, config.obscure.mask_scale)
            n = gated_run.frames
            row = {
                "clip": clip,
                "size": f"{size[0]}x{size[1]}" if size else "native",
                "config": name,
                "frames": n,
                "full_scans": gated_run.full_scans,
                "fallbacks": gated_run.fallbacks,
                "gated_calls": gated_run.gated_calls,
                "skipped_share": gated_run.skipped_frames / n if n else float("nan"),
                "gated_windows_per_frame": gated_run.per_frame(gated_run.gated_windows),
                "model_windows_per_frame_plain": plain.per_frame(plain.model_windows),
                "model_windows_per_frame_gated": gated_run.per_frame(gated_run.model_windows),
                "model_mpx_per_frame_plain": plain.per_frame(plain.model_pixels) / 1e6,
                "model_mpx_per_frame_gated": gated_run.per_frame(gated_run.model_pixels) / 1e6,
                "ms_per_frame_plain": 1000 * plain.per_frame(plain.seconds),
                "ms_per_frame_gated": 1000 * gated_run.per_frame(gated_run.seconds),
                "overhead_ms_per_frame": 1000
                * gated_run.per_frame(gated_run.seconds - gated_run.inner_seconds),
                "boxes_per_frame_plain": plain.per_frame(plain.boxes),
                "boxes_per_frame_gated": gated_run.per_frame(gated_run.boxes),
                "plain_boxes_kept": kept,
                "plain_boxes_covered": covered,
                "plain": asdict(plain),
                "gated": asdict(gated_run),
            }
            row["time_ratio"] = row["ms_per_frame_gated"] / row["ms_per_frame_plain"]
            results.append(row)
            rows.append(
                [
                    clip,
                    row["size"],
                    name,
                    n,
                    f"{row['full_scans']} ({row['fallbacks']})",
                    row["gated_calls"],
                    f"{row['skipped_share']:.0%}",
                    row["gated_windows_per_frame"],
                    f"{row['model_windows_per_frame_plain']:.1f} → "
                    f"{row['model_windows_per_frame_gated']:.1f}",
                    f"{row['model_mpx_per_frame_plain']:.2f} → "
                    f"{row['model_mpx_per_frame_gated']:.2f}",
                    f"{row['ms_per_frame_plain']:.1f} → {row['ms_per_frame_gated']:.1f}",
                    row["time_ratio"],
                    row["overhead_ms_per_frame"],
                    f"{kept:.0%} / {covered:.0%}",
                ]
            )
            print(
                f"{clip} {name}: {row['ms_per_frame_plain']:.1f} → "
                f"{row['ms_per_frame_gated']:.1f} ms/frame, skipped {row['skipped_share']:.0%}",
                flush=True,
            )
    print(
        f"\nMotion gating, backend: {args.backend}. full (fb) = whole-frame passes (of which "
        "fallbacks); windows = gated windows per frame; model win / Mpx = every model window "
        "per frame and its megapixels (the cost for fully convolutional models), plain → gated; "
        f"kept / covered = plain boxes also found gated (IoU ≥ {MATCH_IOU}) / at least half "
        "inside a gated box grown by mask_scale.\n"
    )
    print(
        table(
            [
                "clip",
                "size",
                "config",
                "frames",
                "full (fb)",
                "gated",
                "skipped",
                "windows",
                "model win",
                "model Mpx",
                "ms/frame",
                "ratio",
                "overhead ms",
                "kept / covered",
            ],
            rows,
        )
    )
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "match_iou": MATCH_IOU,
            "overrides": overrides,
            "runs": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
