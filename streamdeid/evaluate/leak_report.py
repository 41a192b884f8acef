"""What a video leak check counts: faces, still detectable, re-identified, per file and in total.

The counts and their JSON shape are shared by the check (:mod:`streamdeid.evaluate.video`), the
text tables (:mod:`streamdeid.evaluate.report`) and the CLI's totals over a folder, so they live
apart from the decoding and detection that fill them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamdeid.evaluate.boxes import MATCH_IOU
from streamdeid.evaluate.utility import UtilityFigures

SMALL_FACE_PX = 40  # faces shorter than this are reported apart (hard to see, hard to re-identify)


@dataclass
class FaceCounts:
    """Original faces, how many are still detectable in the output, how many re-identified."""

    faces: int = 0
    detectable: int = 0
    reidentified: int = 0

    @property
    def detectable_share(self) -> float:
        return self.detectable / self.faces if self.faces else math.nan

    @property
    def reidentified_share(self) -> float:
        return self.reidentified / self.faces if self.faces else math.nan

    def add(self, other: FaceCounts) -> None:
        self.faces += other.faces
        self.detectable += other.detectable
        self.reidentified += other.reidentified

    def to_dict(self, reid: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "faces": self.faces,
            "still_detectable": self.detectable,
            "still_detectable_share": _round(self.detectable_share),
        }
        if reid:
            d["reidentified"] = self.reidentified
            d["reidentified_share"] = _round(self.reidentified_share)
        return d


@dataclass
class VideoLeakReport:
    """Result of :func:`video_leak` for one pair of files (or the total of several)."""

    original: str
    anonymized: str
    detector: str
    every: int
    reid: bool
    frames_original: int = 0
    frames_anonymized: int = 0
    frames_checked: int = 0  # sampled original frames paired with an output frame
    frames_unpaired: int = 0  # sampled original frames with no output frame at their time
    faces_unpaired: int = 0
    size_original: tuple[int, int] = (0, 0)
    size_anonymized: tuple[int, int] = (0, 0)
    all: FaceCounts = field(default_factory=FaceCounts)
    small: FaceCounts = field(default_factory=FaceCounts)  # original face height < 40 px
    large: FaceCounts = field(default_factory=FaceCounts)  # original face height >= 40 px
    identities: int | None = None  # people clustered from the original faces
    seconds: float = 0.0
    # dlib only: the factor frames are scaled by before detection, the smallest face height it
    # then finds (original pixels), and a one-line description of its settings.
    detector_scale: float | None = None
    min_face_px: float | None = None
    detector_settings: str = ""
    # Rank-1 identification (with reid) and landmark displacement (with landmarks).
    utility: UtilityFigures = field(default_factory=UtilityFigures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "anonymized": self.anonymized,
            "detector": self.detector,
            "detector_settings": self.detector_settings or None,
            "detector_scale": _maybe_round(self.detector_scale, 4),
            "min_face_px": _maybe_round(self.min_face_px, 1),
            "every": self.every,
            "match_iou": MATCH_IOU,
            "frames_original": self.frames_original,
            "frames_anonymized": self.frames_anonymized,
            "frames_checked": self.frames_checked,
            "frames_unpaired": self.frames_unpaired,
            "faces_unpaired": self.faces_unpaired,
            "size_original": list(self.size_original),
            "size_anonymized": list(self.size_anonymized),
            "all": self.all.to_dict(self.reid),
            f"under_{SMALL_FACE_PX}px": self.small.to_dict(self.reid),
            f"from_{SMALL_FACE_PX}px": self.large.to_dict(self.reid),
            "identities": self.identities,
            "seconds": round(self.seconds, 3),
            **self.utility.to_dict(),
        }


def combine(reports: Iterable[VideoLeakReport]) -> VideoLeakReport:
    """Totals over several files (shares are over all their faces together)."""
    reports = list(reports)
    if not reports:
        raise ValueError("combine needs at least one report, got none")
    total = VideoLeakReport(
        original="(total)",
        anonymized="(total)",
        detector=reports[0].detector,
        every=reports[0].every,
        reid=all(r.reid for r in reports),
    )
    total.utility = UtilityFigures(
        reid=total.reid, landmarks=all(r.utility.landmarks for r in reports)
    )
    for r in reports:
        for name in (
            "frames_original",
            "frames_anonymized",
            "frames_checked",
            "frames_unpaired",
            "faces_unpaired",
            "seconds",
        ):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        total.all.add(r.all)
        total.small.add(r.small)
        total.large.add(r.large)
        total.utility.add(r.utility)
    if total.reid:
        total.identities = sum(r.identities or 0 for r in reports)
    for name in ("detector_scale", "min_face_px", "detector_settings"):
        values = {getattr(r, name) for r in reports}
        if len(values) == 1:  # the same for every file (else per file only)
            setattr(total, name, values.pop())
    return total


def _round(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)


def _maybe_round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)
