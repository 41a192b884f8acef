"""Plain-text tables of evaluation results (what ``streamdeid eval`` prints on stdout)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from streamdeid.evaluate.boxes import MATCH_IOU
from streamdeid.evaluate.leak_report import SMALL_FACE_PX, FaceCounts, VideoLeakReport, combine
from streamdeid.evaluate.utility import NORMALISED_BY, published
from streamdeid.evaluate.wider import WiderReport


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.1%})" if whole else "–"


def _num(v: float, digits: int = 3) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def format_wider(report: WiderReport, config_label: str | None = None) -> str:
    head = (
        f"WIDER recall: {report.images} images, detector {report.detector}"
        + (f" (config {config_label})" if config_label else "")
        + f", a face is found at IoU ≥ {report.match_iou}"
    )
    rows = [[lvl, str(r.total), str(r.found), _num(r.recall)] for lvl, r in report.levels.items()]
    foot = (
        f"detections/image {_num(report.detections_per_image, 2)}, false positives/image "
        f"{_num(report.false_positives_per_image, 2)} (detections on no annotated face), "
        f"{_num(report.ms_per_image, 1)} ms/image"
    )
    return "\n".join([head, "", table(["level", "faces", "found", "recall"], rows), "", foot])


def format_video(reports: Sequence[VideoLeakReport], independent: bool = True) -> str:
    """One row per file, plus a total row when there are several."""
    if not reports:
        return "no video checked"
    first = reports[0]
    reid = all(r.reid for r in reports)
    head = (
        f"Leak check: detector {first.detector}"
        + ("" if independent else " (NOT independent: the run used it too)")
        + f"; an original face is still detectable when found at IoU ≥ {MATCH_IOU} in the "
        f"output frame at the same time"
        + (
            "; re-identified = dlib embedding of that face points back to the same person"
            if reid
            else ""
        )
    )
    scaled = any(r.detector_scale is not None for r in reports)
    headers = ["file", "frames in→out", "checked"]
    if scaled:  # dlib: the scale frames were detected at, and the smallest face it then finds
        headers += ["det. scale", "min face"]
    headers += ["faces", "still detectable", f"<{SMALL_FACE_PX}px", f"≥{SMALL_FACE_PX}px"]
    if reid:
        headers += ["re-identified", f"re-id ≥{SMALL_FACE_PX}px", "people"]
    rows_of = list(reports) + ([combine(reports)] if len(reports) > 1 else [])
    rows = [_video_row(r, reid, scaled) for r in rows_of]
    notes = []
    settings = list(dict.fromkeys(r.detector_settings for r in reports if r.detector_settings))
    notes += [f"detector: {s}" for s in settings]
    if scaled:
        notes.append(
            "faces smaller than 'min face' (original px) are beyond the detector, so not counted"
        )
    unpaired = sum(r.frames_unpaired for r in reports)
    if unpaired:
        faces = sum(r.faces_unpaired for r in reports)
        notes.append(
            f"{unpaired} sampled original frame(s) ({faces} faces) have no output frame at "
            "their time: not counted"
        )
    resized = [r for r in reports if r.size_original != r.size_anonymized]
    for r in resized:
        notes.append(
            f"{Path(r.anonymized).name}: size {r.size_anonymized[0]}x{r.size_anonymized[1]}, "
            f"original {r.size_original[0]}x{r.size_original[1]}"
        )
    every = sorted({r.every for r in reports})
    notes.append(
        "every "
        + "/".join(str(e) for e in every)
        + " frame(s) checked; "
        + f"{sum(r.seconds for r in reports):.1f} s"
    )
    return "\n".join([head, "", table(headers, rows), "", *notes])


def _video_row(r: VideoLeakReport, reid: bool, scaled: bool = False) -> list[str]:
    name = r.original if r.original == "(total)" else Path(r.original).name
    row = [name, f"{r.frames_original}→{r.frames_anonymized}", str(r.frames_checked)]
    if scaled:
        row += [
            "–" if r.detector_scale is None else f"×{r.detector_scale:.3g}",
            "–" if r.min_face_px is None else f"~{r.min_face_px:.0f}px",
        ]
    row += [
        str(r.all.faces),
        share(r.all.detectable, r.all.faces),
        _pair(r.small),
        _pair(r.large),
    ]
    if reid:
        row += [
            share(r.all.reidentified, r.all.faces),
            share(r.large.reidentified, r.large.faces),
            "–" if r.identities is None else str(r.identities),
        ]
    return row


def _pair(c: FaceCounts) -> str:
    return f"{c.detectable}/{c.faces}"


def format_utility(reports: Sequence[VideoLeakReport], method: str | None = None) -> str:
    """The ``--utility`` table: what the output keeps (faces a detector finds again, landmark
    positions) and rank-1 identification, one row per file plus a total, with the published
    figure for ``method`` (the config's ``obscure.method``) beside it."""
    if not reports:
        return "no video checked"
    rows_of = list(reports) + ([combine(reports)] if len(reports) > 1 else [])
    rows = []
    for r in rows_of:
        u = r.utility
        name = r.original if r.original == "(total)" else Path(r.original).name
        rank1 = share(u.rank1, u.probes) if u.reid else "–"
        if u.reid and u.identities:
            rank1 += f", chance 1/{u.identities}"
        moved = (
            f"{_num(u.displacement_mean)} / {_num(u.displacement_median)}" if u.landmarks else "–"
        )
        rows.append([name, str(r.all.faces), share(r.all.detectable, r.all.faces), rank1, moved])
    head = (
        f"Utility: faces {reports[0].detector} finds in the original and again at the same place "
        f"in the output (kept); rank-1 = faces found again whose nearest original face is their "
        f"own person; landmarks = mean distance of dlib's 68 points in the original's box, in "
        f"units of the {NORMALISED_BY}"
    )
    headers = ["file", "faces", "kept", "rank-1", "landmarks mean / median"]
    foot = f"published (detector AP kept, DeepPrivacy paper) for {method or '?'}: " + (
        published(method) if method else "–"
    )
    return "\n".join([head, "", table(headers, rows), "", foot])
