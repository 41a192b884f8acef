"""WIDER FACE-style ground truth: the official text format and the research subset's JSON.

Both formats become the same :class:`GroundTruthImage` list, so scoring
(:mod:`streamdeid.evaluate.wider`) never sees which one was read. Parsing is most of the work
(every malformed line gets a message naming it), which is why it is kept apart from scoring.

* text (``wider_face_val_bbx_gt.txt``): a line with the image path, a line with the face count
  N, then N lines ``x y w h blur expression illumination invalid occlusion pose`` (an image with
  no face has count 0 followed by one all-zero line). Only ``x y w h`` are required; ``invalid``
  is read when present. No difficulty labels: one level, ``all``.
* JSON: ``{"images": [{"file": ..., "faces": [{"xywh_stored": [...], "invalid": 0, "easy": true,
  ...}]}]}``. Boxes are taken from ``xywh_stored``, else ``xywh``, else ``xywh_orig``; the
  ``easy``/``medium``/``hard`` flags give the difficulty levels, reported beside ``all``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamdeid.errors import InputNotFoundError, StreamDeidError

log = logging.getLogger(__name__)

DIFFICULTIES = ("easy", "medium", "hard")
ALL = "all"
INVALID_FIELD = 7  # 0-based index of ``invalid`` in a WIDER text face line


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

    def skip_blank(k: int) -> int:
        while k < len(lines) and not lines[k].strip():
            k += 1
        return k

    i = skip_blank(0)
    while i < len(lines):
        name = lines[i].strip()
        name_line = i
        if _numbers(name) is not None:
            raise GroundTruthError(
                f"ground-truth file '{gt}' {_line(i)}: expected an image path, got numbers "
                f"{name!r} (is the face count above it wrong?)"
            )
        count = _text_count(lines, i + 1, name, gt)
        boxes, invalid = _text_faces(lines, i + 2, count, name, gt)
        i += 2 + count
        if count == 0 and i < len(lines) and _numbers(lines[i]) is not None:
            i += 1  # the official file follows a count of 0 with one all-zero face line
        path = _find_image(root, [name], gt, _line(name_line))
        images.append(_make_image(name, path, boxes, invalid, {}))
        i = skip_blank(i)
    return images


def _line(k: int) -> str:
    """How messages name the 0-based line ``k`` (1-based, as editors show it)."""
    return f"line {k + 1}"


def _text_count(lines: list[str], i: int, name: str, gt: Path) -> int:
    """The face count on line ``i``, below the path of image ``name``."""
    if i >= len(lines):
        raise GroundTruthError(
            f"ground-truth file '{gt}' {_line(i)}: expected the face count of '{name}', "
            "got end of file"
        )
    try:
        count = int(lines[i].strip())
    except ValueError:
        raise GroundTruthError(
            f"ground-truth file '{gt}' {_line(i)}: expected the face count of '{name}' "
            f"(a whole number), got {lines[i].strip()!r}"
        ) from None
    if count < 0:
        raise GroundTruthError(
            f"ground-truth file '{gt}' {_line(i)}: expected a face count >= 0, got {count}"
        )
    return count


def _text_faces(
    lines: list[str], first: int, count: int, name: str, gt: Path
) -> tuple[list[list[float]], list[bool]]:
    """The ``count`` face lines from line ``first``: xyxy boxes and their ``invalid`` flags."""
    boxes: list[list[float]] = []
    invalid: list[bool] = []
    for i in range(first, first + count):
        values = _numbers(lines[i]) if i < len(lines) else None
        if values is None or len(values) < 4:
            got = repr(lines[i].strip()) if i < len(lines) else "end of file"
            raise GroundTruthError(
                f"ground-truth file '{gt}' {_line(i)}: expected a face line 'x y w h "
                f"[blur expression illumination invalid occlusion pose]' "
                f"({len(boxes) + 1} of {count} for '{name}'), got {got}"
            )
        x, y, w, h = values[:4]
        if w < 0 or h < 0:
            raise GroundTruthError(
                f"ground-truth file '{gt}' {_line(i)}: expected a box with w, h >= 0, "
                f"got w={w:g} h={h:g}"
            )
        boxes.append([x, y, x + w, y + h])
        invalid.append(len(values) > INVALID_FIELD and values[INVALID_FIELD] != 0)
    return boxes, invalid


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
