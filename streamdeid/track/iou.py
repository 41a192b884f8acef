"""IoU tracker with a Kalman motion model that never withholds a face.

Unlike trackers built for counting (which hide tracks until they are "activated"), this one
returns every live track on every frame: tentative ones from their first detection, confirmed
ones, and coasting ones whose detector lost them, at their predicted position grown by the
uncertainty. Masking decisions belong to the region builder; the tracker only remembers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from streamdeid.detect.tiling import box_iou
from streamdeid.track import kalman
from streamdeid.types import Detections, Track, TrackState


@dataclass(slots=True)
class _State:
    track_id: int
    mean: np.ndarray
    cov: np.ndarray
    last_xyxy: np.ndarray
    hits: int = 1
    misses: int = 0
    frames_since_seen: int = 0
    age: int = 0


class IoUTracker:
    """Associates detections to tracks by IoU against Kalman-predicted boxes.

    Args:
        iou_threshold: minimum IoU for a detection to continue a track.
        min_hits: matched detections before a track counts as confirmed.
        max_coast_frames: frames a track lives on after its last detection.
        coast_growth: per-frame relative growth of a coasting box (capped at 2×).
    """

    def __init__(
        self,
        iou_threshold: float = 0.2,
        min_hits: int = 3,
        max_coast_frames: int = 25,
        coast_growth: float = 0.03,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if max_coast_frames < 0:
            raise ValueError(f"max_coast_frames must be >= 0, got {max_coast_frames}")
        self.iou_threshold = iou_threshold
        self.min_hits = min_hits
        self.max_coast_frames = max_coast_frames
        self.coast_growth = coast_growth
        self._ids = itertools.count(1)  # per instance: two trackers never share ids
        self._tracks: list[_State] = []
        self.total_tracks = 0

    def update(self, detections: Detections | None) -> list[Track]:
        """Advance one frame. ``None`` means the detector did not run on this frame."""
        for t in self._tracks:
            t.mean, t.cov = kalman.predict(t.mean, t.cov)
            t.frames_since_seen += 1
            t.age += 1
        if detections is not None:
            self._associate(detections)
        self._tracks = [t for t in self._tracks if t.frames_since_seen <= self.max_coast_frames]
        return [self._report(t) for t in self._tracks]

    def _associate(self, detections: Detections) -> None:
        boxes = detections.xyxy
        predicted = np.array([kalman.z_to_xyxy(t.mean) for t in self._tracks], np.float32)
        ious = box_iou(predicted.reshape(-1, 4), boxes)
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        # Greedy by IoU: with faces rarely overlapping, it agrees with Hungarian in practice.
        for flat in np.argsort(-ious, axis=None):
            ti, di = np.unravel_index(flat, ious.shape)
            if ious[ti, di] < self.iou_threshold:
                break
            if ti in matched_tracks or di in matched_dets:
                continue
            matched_tracks.add(int(ti))
            matched_dets.add(int(di))
            t = self._tracks[ti]
            t.mean, t.cov = kalman.update(t.mean, t.cov, boxes[di])
            t.last_xyxy = boxes[di].copy()
            t.hits += 1
            t.misses = 0
            t.frames_since_seen = 0
        for ti, t in enumerate(self._tracks):
            if ti not in matched_tracks:
                t.misses += 1
        for di in range(len(boxes)):
            if di not in matched_dets:
                mean, cov = kalman.initiate(boxes[di])
                self._tracks.append(_State(next(self._ids), mean, cov, boxes[di].copy()))
                self.total_tracks += 1

    def _report(self, t: _State) -> Track:
        if t.frames_since_seen == 0:
            # Seen on this frame: cover both where it was detected and the smoothed estimate.
            est = kalman.z_to_xyxy(t.mean)
            xyxy = np.concatenate(
                [np.minimum(est[:2], t.last_xyxy[:2]), np.maximum(est[2:], t.last_xyxy[2:])]
            ).astype(np.float32)
        else:
            # Predicted box grown with the uncertainty, joined with where the face was last
            # seen: a velocity learnt from a face entering the frame (its visible box growing)
            # can overshoot, and a person who stopped is still where they were.
            grow = min(2.0, 1.0 + self.coast_growth * t.frames_since_seen)
            cx, cy, w, h = t.mean[:4]
            pred = kalman.z_to_xyxy(np.array([cx, cy, w * grow, h * grow]))
            xyxy = np.concatenate(
                [np.minimum(pred[:2], t.last_xyxy[:2]), np.maximum(pred[2:], t.last_xyxy[2:])]
            ).astype(np.float32)
        if t.misses > 0:
            state = TrackState.COASTING
        elif t.hits >= self.min_hits:
            state = TrackState.CONFIRMED
        else:
            state = TrackState.TENTATIVE
        return Track(track_id=t.track_id, xyxy=xyxy, state=state, misses=t.misses, age=t.age)
