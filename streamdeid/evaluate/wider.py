"""Detector recall on still images with WIDER FACE-style ground truth.

Two ground-truth formats are read:

* the official ``wider_face_val_bbx_gt.txt`` text format: a line with the image path, a line with
  the face count N, then N lines ``x y w h blur expression illumination invalid occlusion pose``
  (an image with no face has count 0 followed by one all-zero line). Only ``x y w h`` are
  required; ``invalid`` is read when present. No difficulty labels: one level, ``all``.
* the JSON of the research subset: ``{"images": [{"file": ..., "faces": [{"xywh_stored": [...],
  "invalid": 0, "easy": true, ...}]}]}``. Boxes are taken from ``xywh_stored`` (the images are kept
  resized), else ``xywh``, else ``xywh_orig``; the ``easy``/``medium``/``hard`` flags give the
  difficulty levels, reported beside ``all``.

Scoring: a valid ground-truth face is *found* when a detection overlaps it with IoU ≥ 0.3;
``invalid`` faces are not counted, but a detection on one is not a false positive either. A
detection overlapping no ground-truth box at IoU ≥ 0.3 is a false positive (WIDER does not label
every face in a crowd, so this is an upper bound). The detector runs as the pipeline runs it on a
still image: ``make_detector(config).detect(image)`` on the whole BGR picture.

Example:
    >>> from streamdeid.evaluate import wider_recall
    >>> report = wider_recall("images/", "wider_face_val_bbx_gt.txt")  # doctest: +SKIP
    >>> report.levels["all"].recall  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamdeid.config import Config
from streamdeid.detect.base import Detector
from streamdeid.errors import InputNotFoundError, StreamDeidError
from streamdeid.evaluate.boxes import MATCH_IOU, iou_matrix
from streamdeid.io.image import read_image

log = logging.getLogger(__name__)

DIFFICULTIES = ("easy", "medium", "hard")
ALL = "all"
INVALID_FIELD = 7  # 0-based index of ``invalid`` in a WIDER text face line

ProgressFn = Callable[[int, int | None], None]


class GroundTruthError(StreamDeidError, ValueError):
    """A ground-truth file is malformed or names images that cannot be found."""


@dataclass(frozen=True)
class GroundTruthImage:
    """One annotated image: every face box (invalid ones included) and its level flags."""

    name: str  # as written in the ground-truth file
    path: Path  # the image on disk
    xyxy: np.ndarray  # (n, 4) float64, every annotated face
    invalid: np.ndarray  # (n,) bool
    levels: dict[str, np.ndarray]  # level -> (n,) bool, valid faces of that level
    alt_xyxy: np.ndarray | None = None  # boxes for the other image size (JSON ``xywh_orig``)
    sizes: tuple[tuple[int, int], tuple[int, int]] | None = None  # (size of xyxy, of alt_xyxy)

    def boxes_for(self, width: int, height: int) -> np.ndarray:
        """The boxes that belong to an image of this size (stored vs original WIDER size)."""
        if self.alt_xyxy is not None and self.sizes is not None:
            if (width, height) == self.sizes[1] != self.sizes[0]:
                return self.alt_xyxy
        return self.xyxy


@dataclass
class LevelRecall:
    level: str
    found: int = 0
    total: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else math.nan


@dataclass
class WiderReport:
    """Result of :func:`wider_recall`; ``to_dict()`` is what ``--json`` writes."""

    images_dir: str
    gt_file: str
    detector: str
    images: int = 0
    levels: dict[str, LevelRecall] = field(default_factory=dict)
    detections: int = 0
    false_positives: int = 0
    seconds: float = 0.0
    match_iou: float = MATCH_IOU

    @property
    def false_positives_per_image(self) -> float:
        return self.false_positives / self.images if self.images else math.nan

    @property
    def detections_per_image(self) -> float:
        return self.detections / self.images if self.images else math.nan

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.seconds / self.images if self.images else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "images_dir": self.images_dir,
            "gt_file": self.gt_file,
            "detector": self.detector,
            "match_iou": self.match_iou,
            "images": self.images,
            "recall": {k: _nan_to_none(v.recall) for k, v in self.levels.items()},
            "found": {k: v.found for k, v in self.levels.items()},
            "faces": {k: v.total for k, v in self.levels.items()},
            "detections": self.detections,
            "detections_per_image": _nan_to_none(self.detections_per_image),
            "false_positives": self.false_positives,
            "false_positives_per_image": _nan_to_none(self.false_positives_per_image),
            "ms_per_image": _nan_to_none(self.ms_per_image),
        }


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 6)


# --- ground truth -------------------------------------------------------------------------------


def load_wider_gt(
    gt_file: str | os.PathLike[str], images_dir: str | os.PathLike[str]
) -> list[GroundTruthImage]:
    """Parse a WIDER text or JSON ground-truth file and find each image under ``images_dir``.

    An image is looked up as ``images_dir/<path in file>``, then ``images_dir/<file name>`` (the
    research subset keeps WIDER's ``event/name.jpg`` images flat in one folder).

    Raises:
        InputNotFoundError: the ground-truth file or the images folder does not exist.
        GroundTruthError: the file is malformed (the message names the line or entry), or an
            image it lists is not found.
    """
    gt = Path(gt_file)
    root = Path(images_dir)
    if not gt.is_file():
        raise InputNotFoundError(f"ground-truth file not found: expected a file, got '{gt}'")
    if not root.is_dir():
        raise InputNotFoundError(f"images folder not found: expected a folder, got '{root}'")
    try:
        text = gt.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GroundTruthError(f"cannot read ground-truth file '{gt}': {e}") from e
    if text.lstrip().startswith(("{", "[")):
        images = _parse_json(text, gt, root)
    else:
        images = _parse_text(text, gt, root)
    if not images:
        raise GroundTruthError(f"ground-truth file '{gt}': expected at least one image, got none")
    return images


def _find_image(root: Path, names: list[str], gt: Path, where: str) -> Path:
    tried: list[Path] = []
    for name in names:
        for candidate in (root / name, root / Path(name).name):
            if candidate in tried:
                continue
            if candidate.is_file():
                return candidate
            tried.append(candidate)
    raise GroundTruthError(
        f"ground-truth file '{gt}' {where}: image '{names[0]}' not found under '{root}' "
        f"(tried {', '.join(str(t) for t in tried)})"
    )


def _parse_text(text: str, gt: Path, root: Path) -> list[GroundTruthImage]:
    lines = text.splitlines()
    images: list[GroundTruthImage] = []
    i = 0

    def where(k: int) -> str:
        return f"line {k + 1}"

    def skip_blank(k: int) -> int:
        while k < len(lines) and not lines[k].strip():
            k += 1
        return k

    i = skip_blank(i)
    while i < len(lines):
        name = lines[i].strip()
        name_line = i
        if _numbers(name) is not None:
            raise GroundTruthError(
                f"ground-truth file '{gt}' {where(i)}: expected an image path, got numbers "
                f"{name!r} (is the face count above it wrong?)"
            )
        i += 1
        if i >= len(lines):
            raise GroundTruthError(
                f"ground-truth file '{gt}' {where(i)}: expected the face count of '{name}', "
                "got end of file"
            )
        try:
            count = int(lines[i].strip())
        except ValueError:
            raise GroundTruthError(
                f"ground-truth file '{gt}' {where(i)}: expected the face count of '{name}' "
                f"(a whole number), got {lines[i].strip()!r}"
            ) from None
        if count < 0:
            raise GroundTruthError(
                f"ground-truth file '{gt}' {where(i)}: expected a face count >= 0, got {count}"
            )
        i += 1
        boxes: list[list[float]] = []
        invalid: list[bool] = []
        for _ in range(count):
            values = _numbers(lines[i]) if i < len(lines) else None
            if values is None or len(values) < 4:
                got = repr(lines[i].strip()) if i < len(lines) else "end of file"
                raise GroundTruthError(
                    f"ground-truth file '{gt}' {where(i)}: expected a face line 'x y w h "
                    f"[blur expression illumination invalid occlusion pose]' "
                    f"({len(boxes) + 1} of {count} for '{name}'), got {got}"
                )
            x, y, w, h = values[:4]
            if w < 0 or h < 0:
                raise GroundTruthError(
                    f"ground-truth file '{gt}' {where(i)}: expected a box with w, h >= 0, "
                    f"got w={w:g} h={h:g}"
                )
            boxes.append([x, y, x + w, y + h])
            invalid.append(len(values) > INVALID_FIELD and values[INVALID_FIELD] != 0)
            i += 1
        if count == 0 and i < len(lines) and _numbers(lines[i]) is not None:
            i += 1  # the official file follows a count of 0 with one all-zero face line
        path = _find_image(root, [name], gt, where(name_line))
        images.append(_make_image(name, path, boxes, invalid, {}))
        i = skip_blank(i)
    return images


def _numbers(line: str) -> list[float] | None:
    parts = line.split()
    if not parts:
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _make_image(
    name: str,
    path: Path,
    boxes: list[list[float]],
    invalid: list[bool],
    flags: dict[str, list[bool]],
    alt_boxes: list[list[float]] | None = None,
    sizes: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> GroundTruthImage:
    xyxy = np.asarray(boxes, np.float64).reshape(-1, 4)
    bad = np.asarray(invalid, bool).reshape(-1)
    # A zero-area box cannot be matched by any detection; count it like an invalid face.
    empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
    if empty.any():
        log.info("%s: %d zero-area ground-truth box(es) ignored", name, int(empty.sum()))
    bad = bad | empty
    levels = {lvl: np.asarray(f, bool) & ~bad for lvl, f in flags.items()}
    levels[ALL] = ~bad
    alt = None if alt_boxes is None else np.asarray(alt_boxes, np.float64).reshape(-1, 4)
    return GroundTruthImage(name, path, xyxy, bad, levels, alt, sizes)


def _parse_json(text: str, gt: Path, root: Path) -> list[GroundTruthImage]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise GroundTruthError(
            f"ground-truth file '{gt}' line {e.lineno}: not valid JSON: {e.msg}"
        ) from e
    entries = data.get("images") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise GroundTruthError(
            f"ground-truth file '{gt}': expected a JSON list of images or an object with "
            f"'images', got {type(entries).__name__}"
        )
    images = []
    for k, entry in enumerate(entries):
        where = f"images[{k}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise GroundTruthError(
                f"ground-truth file '{gt}' {where}: expected an object with a 'file' path"
            )
        faces = entry.get("faces", [])
        if not isinstance(faces, list):
            raise GroundTruthError(f"ground-truth file '{gt}' {where}: 'faces' must be a list")
        key = next((k for k in ("xywh_stored", "xywh", "xywh_orig") if faces and k in faces[0]), "")
        boxes, alt, invalid = [], [], []
        flags: dict[str, list[bool]] = {}
        labelled = [d for d in DIFFICULTIES if faces and all(d in f for f in faces)]
        for j, face in enumerate(faces):
            box = face.get(key) if isinstance(face, dict) else None
            if not _is_xywh(box):
                raise GroundTruthError(
                    f"ground-truth file '{gt}' {where}.faces[{j}]: expected '{key or 'xywh'}' "
                    f"as [x, y, w, h] with w, h >= 0, got {box!r}"
                )
            x, y, w, h = (float(v) for v in box)
            boxes.append([x, y, x + w, y + h])
            orig = face.get("xywh_orig")
            if key == "xywh_stored" and _is_xywh(orig):
                ox, oy, ow, oh = (float(v) for v in orig)
                alt.append([ox, oy, ox + ow, oy + oh])
            invalid.append(bool(face.get("invalid", 0)))
            for d in labelled:
                flags.setdefault(d, []).append(bool(face[d]))
        sizes = None
        if len(alt) == len(boxes) and boxes and "stored_size" in entry and "orig_size" in entry:
            sizes = (tuple(entry["stored_size"]), tuple(entry["orig_size"]))
        names = [entry["file"]] + ([entry["wider_path"]] if "wider_path" in entry else [])
        path = _find_image(root, names, gt, where)
        images.append(
            _make_image(entry["file"], path, boxes, invalid, flags, alt if sizes else None, sizes)
        )
    return images


def _is_xywh(box: object) -> bool:
    return (
        isinstance(box, list | tuple)
        and len(box) == 4
        and all(isinstance(v, int | float) and math.isfinite(v) for v in box)
        and box[2] >= 0
        and box[3] >= 0
    )


def level_names(images: list[GroundTruthImage]) -> list[str]:
    """Difficulty levels every image is labelled with, in WIDER order, then ``all``."""
    common = [d for d in DIFFICULTIES if images and all(d in im.levels for im in images)]
    return [*common, ALL]


# --- scoring ------------------------------------------------------------------------------------


def score_image(
    image: GroundTruthImage, xyxy_gt: np.ndarray, found: np.ndarray, iou: float = MATCH_IOU
) -> tuple[dict[str, tuple[int, int]], int]:
    """Per level (found, total) for one image, and its number of false positives."""
    m = iou_matrix(xyxy_gt, found)
    hit = (m.max(axis=1) >= iou) if m.shape[1] else np.zeros(len(xyxy_gt), bool)
    counts = {lvl: (int((hit & f).sum()), int(f.sum())) for lvl, f in image.levels.items()}
    false_pos = int((m.max(axis=0) < iou).sum()) if m.shape[0] else m.shape[1]
    return counts, false_pos


def wider_recall(
    images_dir: str | os.PathLike[str],
    gt_file: str | os.PathLike[str],
    config: Config | None = None,
    *,
    detector: Detector | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
) -> WiderReport:
    """Recall per difficulty, false positives and speed of a detector on WIDER-style data.

    Args:
        images_dir: folder holding the images named in ``gt_file``.
        gt_file: ground truth, WIDER text format or the research subset's JSON.
        config: the detector is ``make_detector(config)`` (default config when None).
        detector: use this detector instead (tests, custom backends); not closed here.
        limit: only the first N images.
        progress: called after each image with (done, total).

    Raises:
        InputNotFoundError, GroundTruthError: bad paths or ground truth (one-line messages).
    """
    images = load_wider_gt(gt_file, images_dir)[:limit]
    owned = detector is None
    if detector is None:
        from streamdeid.api import make_detector

        config = config or Config()
        detector = make_detector(config)
        label = config.detector.backend
    else:
        label = getattr(detector, "name", "") or type(detector).__name__
    report = WiderReport(
        images_dir=os.fspath(images_dir),
        gt_file=os.fspath(gt_file),
        detector=label,
        levels={lvl: LevelRecall(lvl) for lvl in level_names(images)},
    )
    beyond = 0
    try:
        if owned:  # model load and first-call setup are not part of the per-image time
            detector.detect(read_image(images[0].path).image)
        for n, im in enumerate(images, 1):
            bgr = read_image(im.path).image
            t0 = time.perf_counter()
            found = detector.detect(bgr).xyxy
            report.seconds += time.perf_counter() - t0
            xyxy = im.boxes_for(bgr.shape[1], bgr.shape[0])
            beyond += _beyond(xyxy, bgr.shape[1], bgr.shape[0])
            counts, false_pos = score_image(im, xyxy, found)
            for lvl, acc in report.levels.items():
                f, t = counts[lvl]
                acc.found += f
                acc.total += t
            report.images += 1
            report.detections += len(found)
            report.false_positives += false_pos
            if progress is not None:
                progress(n, len(images))
    finally:
        if owned:
            detector.close()
    if beyond:
        log.warning(
            "%d of %d images have ground-truth boxes reaching beyond the picture: is the ground "
            "truth for another image size (original WIDER vs resized copies)?",
            beyond,
            report.images,
        )
    return report


def _beyond(xyxy: np.ndarray, width: int, height: int) -> bool:
    """Boxes reaching well past the image: ground truth made for another image size."""
    return bool(len(xyxy)) and bool(
        xyxy[:, 2].max() > 1.05 * width or xyxy[:, 3].max() > 1.05 * height
    )
