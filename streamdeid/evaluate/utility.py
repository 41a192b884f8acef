"""What an anonymized video keeps and what it gives away, beyond "is a face still detectable".

Three figures sit next to the leak check's counts (:mod:`streamdeid.evaluate.leak_report`):

* **Utility kept** is the leak check's own *still detectable* share read the other way round:
  of the faces an independent detector finds in the original, the share it finds again at the
  same place (IoU ≥ 0.3) in the output frame shown at the same time. For masking a low share is
  the goal; for a replacement face (``surrogate``) a high one, since downstream detectors,
  trackers and counters should still see a face. The published figures below (DeepPrivacy,
  Hukkelås et al. 2019: detector AP on anonymized WIDER relative to the original) measure the
  same thing with another detector and data, so compare trends, not decimals.
* **Rank-1 identification**: of the faces found again, the share whose nearest original face
  (dlib embedding) belongs to their own person among the recording's identities
  (:func:`streamdeid.evaluate.reid.rank1`). Chance is 1/k for k identities.
* **Landmark displacement** (:mod:`streamdeid.evaluate.landmarks`): how far the 68 points moved,
  in inter-ocular distances, on the faces found in both.

They live apart from the counts so that the leak check's JSON stays as it was when they are off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Detector AP kept after anonymization, relative to the original (DeepPrivacy paper, WIDER FACE
# val, Dual Shot Face Detector), quoted in EVALUATION.md. Keys are obscure.method names.
PUBLISHED_UTILITY: dict[str, tuple[str, float]] = {
    "surrogate": ("DeepPrivacy (generated face)", 0.993),
    "pixelate": ("8×8 pixelation", 0.967),
    "blur": ("heavy blur", 0.905),
    "solid": ("black-out", 0.414),
}
NORMALISED_BY = "outer-eye-corner distance of the original face (68-point indices 36, 45)"


def published(method: str) -> str:
    """The published figure for a method as a table cell, or '–' when there is none."""
    name, value = PUBLISHED_UTILITY.get(method, ("", math.nan))
    return f"{value:.1%} ({name})" if name else "–"


@dataclass
class UtilityFigures:
    """Rank-1 counts (with re-identification) and landmark displacements (with ``landmarks``)."""

    reid: bool = False
    landmarks: bool = False
    probes: int = 0  # faces found again in the output and embedded
    rank1: int = 0  # of those, nearest original face is their own person
    identities: int = 0  # k: people among whom they were identified (0 in totals over files)
    displacements: list[float] = field(default_factory=list)  # one per face found in both

    @property
    def rank1_share(self) -> float:
        return self.rank1 / self.probes if self.probes else math.nan

    @property
    def chance(self) -> float:
        return 1 / self.identities if self.identities else math.nan

    @property
    def displacement_mean(self) -> float:
        d = np.asarray(self.displacements, np.float64)
        d = d[np.isfinite(d)]
        return float(d.mean()) if len(d) else math.nan

    @property
    def displacement_median(self) -> float:
        d = np.asarray(self.displacements, np.float64)
        d = d[np.isfinite(d)]
        return float(np.median(d)) if len(d) else math.nan

    def add(self, other: UtilityFigures) -> None:
        """Totals over files: counts add up; k stays 0, as each file's faces were identified
        among that file's people only, so no single chance level applies to the total."""
        self.reid = self.reid and other.reid
        self.landmarks = self.landmarks and other.landmarks
        self.probes += other.probes
        self.rank1 += other.rank1
        self.displacements.extend(other.displacements)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.reid:
            d["rank1"] = {
                "faces_found_again": self.probes,
                "identified": self.rank1,
                "share": _round(self.rank1_share),
                "identities": self.identities or None,
                "chance": _round(self.chance),
            }
        if self.landmarks:
            finite = [v for v in self.displacements if math.isfinite(v)]
            d["landmark_displacement"] = {
                "faces": len(finite),
                "mean": _round(self.displacement_mean),
                "median": _round(self.displacement_median),
                "normalised_by": NORMALISED_BY,
            }
        return d


def _round(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 4)
