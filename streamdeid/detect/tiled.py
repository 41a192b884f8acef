"""Whole-frame + tiled inference for small-input face models, with a per-frame tile budget.

BlazeFace sees 128 or 192 pixels and finds faces down to roughly a tenth of its input, so a whole
720p frame only yields faces taller than ~100 px; overlapping tiles bring smaller faces into
range. Tiles cost one model call each, which at 720p and above is more than a frame's time budget.
With ``max_tiles_per_frame`` the whole-frame pass still runs on every frame (large faces are the
most identifiable and move the most pixels), while the tile grid is spread over a few frames:
small, distant faces move few pixels per frame, and the tracker carries their masks between two
visits of their tile. Tiles that held a face on the previous frame are searched again on every
frame, so a known face is re-detected each frame and only the discovery of new small faces waits
for the rotation. The first frame, and the first frame after a shot change, get every tile at
once: there no track exists yet to carry a face until its tile comes round.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.detect.tiling import merge_boxes, tile_grid
from streamdeid.limits import MAX_TILE_OVERLAP, MAX_TILE_SIZE, MIN_CONFIDENCE, MIN_TILE_SIZE
from streamdeid.types import Detections, Frame

Window = tuple[int, int, int, int]


class TiledDetector(Detector):
    """Shared window scheduling; backends implement :meth:`_run_window` only.

    Args:
        confidence: minimum score kept; low by default because misses are leaks.
        tile_size: tile edge in source pixels, or None for whole-frame only.
        tile_overlap: fraction of overlap between neighbouring tiles.
        whole_frame: also run once on the whole frame (for faces larger than a tile).
        nms_iou: overlap above which boxes from different windows are merged.
        max_tiles_per_frame: spread the tile grid over several frames so that at most this many
            tiles run per frame; None runs every tile on every frame.
    """

    def __init__(
        self,
        confidence: float = 0.3,
        tile_size: int | None = 384,
        tile_overlap: float = 0.25,
        whole_frame: bool = True,
        nms_iou: float = 0.3,
        max_tiles_per_frame: int | None = None,
    ) -> None:
        if tile_size is None and not whole_frame:
            raise ValueError("tile_size is None and whole_frame is False: nothing would be run")
        if not MIN_CONFIDENCE <= confidence <= 1.0:
            raise ValueError(f"confidence must be in {MIN_CONFIDENCE}..1, got {confidence}")
        if tile_size is not None and not MIN_TILE_SIZE <= tile_size <= MAX_TILE_SIZE:
            raise ValueError(
                f"tile_size must be in {MIN_TILE_SIZE}..{MAX_TILE_SIZE} or None, got {tile_size}"
            )
        if not 0.0 <= tile_overlap < MAX_TILE_OVERLAP:
            raise ValueError(f"tile_overlap must be in [0, {MAX_TILE_OVERLAP}), got {tile_overlap}")
        if max_tiles_per_frame is not None and max_tiles_per_frame < 1:
            raise ValueError(f"max_tiles_per_frame must be >= 1 or None, got {max_tiles_per_frame}")
        self.confidence = confidence
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.whole_frame = whole_frame
        self.nms_iou = nms_iou
        self.max_tiles_per_frame = max_tiles_per_frame
        self._plans: dict[tuple[int, int], list[list[Window]]] = {}
        self._tiles: dict[tuple[int, int], list[Window]] = {}
        self._thumb: np.ndarray | None = None
        self._last_centres = np.zeros((0, 2), np.float32)
        self.full_scans = 0

    def tile_period(self, width: int, height: int) -> int:
        """Frames needed to visit every tile once (1 = every tile on every frame)."""
        return len(self._plan(width, height))

    def windows(self, width: int, height: int, index: int = 0) -> list[Window]:
        """The windows scheduled for frame ``index`` of a video of this size (a new list)."""
        plan = self._plan(width, height)
        return list(plan[index % len(plan)])

    def _plan(self, width: int, height: int) -> list[list[Window]]:
        key = (width, height)
        if key not in self._plans:
            whole: list[Window] = [(0, 0, width, height)] if self.whole_frame else []
            tiles: list[Window] = []
            if self.tile_size is not None and max(width, height) > self.tile_size:
                tiles = tile_grid(width, height, self.tile_size, self.tile_overlap)
            if not tiles:
                self._plans[key] = [whole or [(0, 0, width, height)]]
            else:
                per = self.max_tiles_per_frame or len(tiles)
                period = math.ceil(len(tiles) / per)
                # Interleave (tile i goes to phase i % period) so each phase spans the frame.
                self._plans[key] = [whole + tiles[p::period] for p in range(period)]
            # Tiles in visiting order (phase by phase), the order refresh tiles take turns in.
            self._tiles[key] = [t for phase in self._plans[key] for t in phase[len(whole) :]]
        return self._plans[key]

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        """Detect on the windows scheduled for this frame (all windows for a bare image)."""
        image = as_image(frame)
        h, w = image.shape[:2]
        if isinstance(frame, Frame) and not self._new_shot(image):
            scheduled = self.windows(w, h, frame.index)
            windows = scheduled + self._refresh_tiles(w, h, frame.index, set(scheduled))
        else:
            self.full_scans += 1
            windows = [win for phase in self._plan(w, h) for win in phase]
        found = self.detect_windows(image, list(dict.fromkeys(windows)))
        self._last_centres = _centres(found.xyxy)
        return found

    def _refresh_tiles(
        self, width: int, height: int, index: int, exclude: set[Window]
    ) -> list[Window]:
        """Up to half the tile budget again, for tiles that held a face on the last frame.

        In a crowd most tiles hold a face; refreshing them all would undo the budget, so they
        take turns (the tracker carries each face in between, as for any tile).
        """
        tiles = [t for t in self._tiles_with_faces(width, height) if t not in exclude]
        if not tiles:
            return []
        extra = max(1, (self.max_tiles_per_frame or len(tiles)) // 2)
        if len(tiles) <= extra:
            return tiles
        start = (index * extra) % len(tiles)
        return [tiles[(start + k) % len(tiles)] for k in range(extra)]

    def _tiles_with_faces(self, width: int, height: int) -> list[Window]:
        """For each face of the previous frame, the tile it sits most centrally in."""
        if len(self._plan(width, height)) == 1 or len(self._last_centres) == 0:
            return []
        tiles = self._tiles[(width, height)]
        centres = _centres(np.asarray(tiles, np.float32))
        dist = np.abs(self._last_centres[:, None, :] - centres[None, :, :]).max(axis=2)
        return [tiles[i] for i in np.unique(dist.argmin(axis=1))]

    def _new_shot(self, image: np.ndarray, threshold: float = 24.0) -> bool:
        """True on the first frame and when the picture changes wholesale (a cut)."""
        if len(self._plan(image.shape[1], image.shape[0])) == 1:
            return False  # every tile runs every frame anyway
        thumb = cv2.resize(image, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            return True
        return float(np.abs(thumb - previous).mean()) > threshold

    def detect_windows(self, image: np.ndarray, windows: list[Window]) -> Detections:
        return self._each_window(image, windows, lambda crop, _: self._run_window(crop))

    def _each_window(
        self,
        image: np.ndarray,
        windows: Sequence[Window],
        run: Callable[[np.ndarray, Window], tuple[np.ndarray, np.ndarray]],
    ) -> Detections:
        """``run`` on the crop of each window, boxes moved to frame pixels and merged across
        windows (a face cut by a window border is covered whole by the union)."""
        boxes, scores = [], []
        for window in windows:
            x1, y1, x2, y2 = window
            found, conf = run(image[y1:y2, x1:x2], window)
            if len(conf):
                found[:, [0, 2]] += x1
                found[:, [1, 3]] += y1
                boxes.append(found)
                scores.append(conf)
        if not boxes:
            return Detections.empty()
        xyxy, conf = merge_boxes(np.concatenate(boxes), np.concatenate(scores), self.nms_iou)
        return Detections(xyxy, conf)

    @abstractmethod
    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one BGR window: (n, 4) xyxy in window pixels and (n,) scores."""


def _centres(xyxy: np.ndarray) -> np.ndarray:
    """(n, 2) box centres of (n, 4) xyxy boxes."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)
