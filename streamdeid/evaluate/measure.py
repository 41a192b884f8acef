"""What the leak check records about each original face, and the counts it makes of them.

Kept apart from :mod:`streamdeid.evaluate.video`, which decodes and pairs frames: this module
sees one pair of pictures at a time, so the rules (which faces are embedded, where landmarks are
taken) can be read, and tested, without video.

Per original face: its height, whether the independent detector finds it again in the output
(IoU ≥ 0.3), and optionally

* embeddings (``embedder``): of every original face (the gallery) and of the output face the
  detector found over it (the probe). Only faces a detector found are embedded (EVALUATION.md).
  People are clustered from the gallery, unless every face came with a known ``label`` (an
  identity set such as dlib's "johns", where folder names say who is who).
* landmarks (``predictor``): on faces found in both, in the original's box on both pictures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from streamdeid.evaluate.boxes import best_match
from streamdeid.evaluate.leak_report import SMALL_FACE_PX, VideoLeakReport

if TYPE_CHECKING:
    from streamdeid.evaluate.landmarks import LandmarkPredictor
    from streamdeid.evaluate.reid import FaceEmbedder


@dataclass
class FaceLedger:
    """Everything recorded about the original faces of one check, until :meth:`tally`."""

    embedder: FaceEmbedder | None = None
    predictor: LandmarkPredictor | None = None
    heights: list[float] = field(default_factory=list)
    detectable: list[bool] = field(default_factory=list)
    gallery: list[np.ndarray] = field(default_factory=list)  # original embeddings, per frame
    probes: list[np.ndarray] = field(default_factory=list)  # output embeddings, per frame
    probe_faces: list[int] = field(default_factory=list)  # original face index of each probe
    displacements: list[float] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)  # known identity per face, if any

    def record(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        output: np.ndarray,
        found: np.ndarray,
        scale: np.ndarray,
        label: int | None = None,
    ) -> None:
        """One original frame's faces ``boxes`` against the boxes ``found`` in the paired
        ``output`` frame (``found`` already scaled to original pixels by ``scale``); ``label``
        is the known identity of every face of this picture, if known."""
        match = best_match(boxes, found)
        first = len(self.heights)
        self.heights.extend((boxes[:, 3] - boxes[:, 1]).tolist())
        self.labels.extend([label] * len(boxes))
        self.detectable.extend((match >= 0).tolist())
        hits = np.flatnonzero(match >= 0)
        if self.embedder is not None:
            self.gallery.append(self.embedder.embed(image, boxes))
            if len(hits):
                self.probes.append(self.embedder.embed(output, found[match[hits]] / scale))
                self.probe_faces.extend((first + hits).tolist())
        if self.predictor is not None and len(hits):
            from streamdeid.evaluate.landmarks import displacement

            before = self.predictor.points(image, boxes[hits])
            after = self.predictor.points(output, boxes[hits] / scale) * scale[:2]
            self.displacements.extend(displacement(before, after).tolist())

    def tally(self, report: VideoLeakReport) -> None:
        """Fill the report's counts: detectable, re-identified, rank-1, displacement."""
        heights = np.asarray(self.heights, np.float64)
        detectable = np.asarray(self.detectable, bool)
        reidentified = np.zeros(len(heights), bool)
        if self.embedder is not None:
            reidentified = self._identify(self.embedder, report, len(heights))
        report.utility.landmarks = self.predictor is not None
        report.utility.displacements = list(self.displacements)
        small = heights < SMALL_FACE_PX
        for counts, mask in (
            (report.all, np.ones_like(small)),
            (report.small, small),
            (report.large, ~small),
        ):
            counts.faces = int(mask.sum())
            counts.detectable = int((detectable & mask).sum())
            counts.reidentified = int((reidentified & mask).sum())

    def _identify(self, embedder: FaceEmbedder, report: VideoLeakReport, faces: int) -> np.ndarray:
        """Cluster the gallery into people, then re-identify and rank-1 identify the probes."""
        from streamdeid.evaluate.reid import EMBEDDING_DIM, rank1, reidentified

        gallery = np.concatenate(self.gallery) if self.gallery else np.zeros((0, EMBEDDING_DIM))
        known = bool(self.labels) and all(v is not None for v in self.labels)
        identities = np.asarray(self.labels, np.int64) if known else embedder.cluster(gallery)
        report.identities = len(set(identities.tolist()))
        report.utility.reid = True
        report.utility.identities = report.identities
        found = np.zeros(faces, bool)
        if self.probes:
            probe_faces = np.asarray(self.probe_faces, np.int64)
            probes, claimed = np.concatenate(self.probes), identities[probe_faces]
            found[probe_faces[reidentified(probes, claimed, gallery, identities)]] = True
            report.utility.probes = len(probe_faces)
            report.utility.rank1 = int(rank1(probes, claimed, gallery, identities).sum())
        return found
