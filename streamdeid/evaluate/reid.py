"""Re-identification check with dlib's face recognition network (the ``eval`` extra).

Method (EVALUATION.md): an embedding is computed only for a face a detector *found*, in the
original and in the output. Embedding a masked box directly is meaningless: the descriptor of a
black box is degenerate and "matches" someone at chance rates. Identities are clustered from the
original faces (chinese whispers at 0.5); an output face is re-identified when its nearest original
face embedding belongs to the same identity and lies within 0.6.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamdeid.errors import MissingExtraError

log = logging.getLogger(__name__)

CLUSTER_THRESHOLD = 0.5  # chinese-whispers edge threshold for one identity
MATCH_DISTANCE = 0.6  # dlib's usual "same person" distance
EMBEDDING_DIM = 128

INSTALL_HINT = "pip install 'streamdeid[eval]'"


def import_face_models(
    needed_for: str = "the re-identification check", otherwise: str = "pass --no-reid"
) -> tuple[Any, Any]:
    """dlib and face_recognition_models, or a :class:`MissingExtraError` naming the extra, what
    needed them and how to do without (the landmark check shares this)."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as e:
        raise MissingExtraError(
            f"{needed_for} needs dlib and its face models ({e.name or e}): "
            f"install them with {INSTALL_HINT}, or {otherwise}"
        ) from e
    return dlib, face_recognition_models


def check_available() -> None:
    """Raise :class:`MissingExtraError` now, before any long work, when dlib is missing."""
    import_face_models()


class FaceEmbedder:
    """128-d dlib descriptors of face boxes that a detector found.

    Boxes from other detectors (BlazeFace, CenterFace) are tight face boxes; the 5-point landmark
    model aligns the face inside them before the network runs, which is what makes the descriptor
    insensitive to the detector's box convention.

    Raises:
        MissingExtraError: dlib or face_recognition_models is not installed.
    """

    def __init__(self) -> None:
        dlib, models = import_face_models()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def embed(self, bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Descriptors (n, 128) float32 of the faces at ``xyxy`` (n, 4) in the BGR image."""
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        h, w = rgb.shape[:2]
        shapes = self._dlib.full_object_detections()
        for x1, y1, x2, y2 in boxes:
            left, top = int(np.clip(round(x1), 0, w - 1)), int(np.clip(round(y1), 0, h - 1))
            right = int(np.clip(round(x2), left + 1, w))
            bottom = int(np.clip(round(y2), top + 1, h))
            shapes.append(self._shape(rgb, self._dlib.rectangle(left, top, right, bottom)))
        descriptors = self._net.compute_face_descriptor(rgb, shapes)
        return np.asarray([np.asarray(d) for d in descriptors], np.float32).reshape(-1, 128)

    def cluster(self, embeddings: np.ndarray, threshold: float = CLUSTER_THRESHOLD) -> np.ndarray:
        """Identity label per embedding (chinese whispers over the ``threshold`` graph)."""
        if len(embeddings) == 0:
            return np.zeros(0, np.int64)
        vectors = [self._dlib.vector(e.astype(np.float64).tolist()) for e in embeddings]
        return np.asarray(self._dlib.chinese_whispers_clustering(vectors, threshold), np.int64)


def nearest(
    output: np.ndarray, gallery: np.ndarray, identities: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Identity and distance of the gallery face nearest to each output embedding, as (k,), (k,).

    The nearest single face, not a per-identity centroid: an identity seen at many angles is as
    near as its nearest view, which is what an attacker holding those views gets.
    """
    output = np.asarray(output, np.float64).reshape(-1, EMBEDDING_DIM)
    gallery = np.asarray(gallery, np.float64).reshape(-1, EMBEDDING_DIM)
    if len(output) == 0 or len(gallery) == 0:
        return np.full(len(output), -1, np.int64), np.full(len(output), np.inf)
    # |a - b|² = |a|² + |b|² - 2 a·b: no (k, n, 128) temporary for long clips.
    sq = (output**2).sum(axis=1)[:, None] + (gallery**2).sum(axis=1)[None, :]
    dist = np.sqrt(np.clip(sq - 2 * output @ gallery.T, 0, None))
    best = dist.argmin(axis=1)
    return np.asarray(identities)[best].astype(np.int64), dist[np.arange(len(output)), best]


def reidentified(
    output: np.ndarray,
    claimed: Sequence[int] | np.ndarray,
    gallery: np.ndarray,
    identities: np.ndarray,
    max_distance: float = MATCH_DISTANCE,
) -> np.ndarray:
    """Which output embeddings point back to the identity of the face they came from.

    Args:
        output: (k, 128) embeddings of faces found in the output.
        claimed: (k,) identity of the original face each output face sits on.
        gallery: (n, 128) embeddings of every original face.
        identities: (n,) identity of each gallery embedding.
        max_distance: the nearest gallery face must be at most this far.
    """
    who, dist = nearest(output, gallery, identities)
    return (dist <= max_distance) & (who == np.asarray(claimed))


def rank1(
    output: np.ndarray,
    claimed: Sequence[int] | np.ndarray,
    gallery: np.ndarray,
    identities: np.ndarray,
) -> np.ndarray:
    """Which output embeddings are identified as their own person among the gallery's identities.

    Closed-set identification: the nearest gallery face's identity is the answer, however far it
    is. With k identities and nothing left of the face, about 1/k are right by chance; that is
    the bound k-Same-style methods aim for. :func:`reidentified` adds the distance test.
    """
    who, _ = nearest(output, gallery, identities)
    return who == np.asarray(claimed)
