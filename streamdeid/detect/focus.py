"""Spend the detector's pixels where faces can be: full passes, a cheap pass, windows.

A face detector finds faces down to a fixed size in *network* pixels, so its cost grows with the
resolution it sees while most of that resolution finds nothing new: large faces are found at a
fraction of the frame's size, and small faces do not appear out of nowhere; they are found once
and then stay near where they were. :class:`FocusDetector` spends the resolution accordingly.
It asks the inner detector about

* the whole frame at the inner detector's own (fine) resolution through its ``detect``: on the
  first frame, every ``full_scan_every`` frames and whenever most of the picture changes at once
  (a shot cut, a camera bump, the lights going on). This is what finds a small face the first
  time, and the safety net for one that every other pass missed;
* optionally (``coarse_height``, fully convolutional backends) the whole frame at a low
  resolution on every other call: a cheap pass that finds new faces big enough for it wherever
  they appear, from the first frame they show;
* the places where a face was found recently, at the fine resolution, on every call, whether the
  face moves or not: a small face, once found, is seen at the resolution that found it until it
  leaves. With a cheap pass, only faces too small for that pass get such a window;
* optionally (``motion``, for fixed cameras) the places where the picture changed: a face that
  enters, leaves or turns moves pixels. A cheap background model finds them; a frame with no
  motion and no recent face then costs no inference at all.

Where windows go, and why, is described in :mod:`streamdeid.detect.windows`.

When the windows (and the cheap pass) would cost as much as the inner detector's own pass on
this frame (a busy scene, a small frame), that pass runs instead, so focusing never costs more
than a full pass. Cost is counted as the inner model spends it: one inference per window for
models that resize every window to a fixed input (BlazeFace), pixels for fully convolutional
ones (CenterFace, RetinaFace, whose own pass is the whole frame).

A false face that the model keeps finding is searched every frame like a still person (the
two cannot be told apart), so a threshold that yields many false faces eats the saving; so
does a moving camera under motion gating, where most frames count as a scene change.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from streamdeid.detect.base import Detector, as_image
from streamdeid.detect.focus_rules import check_focus_arguments
from streamdeid.detect.fullconv import ALIGN
from streamdeid.detect.scene import SceneModel, shrink
from streamdeid.detect.tiling import merge_boxes, tile_grid
from streamdeid.detect.windows import (
    Window,
    band_overlap,
    bands,
    blob_boxes,
    by_scale,
    contains,
    edge,
    face_windows,
    same_place,
    target_windows,
)
from streamdeid.types import Detections, Frame

log = logging.getLogger(__name__)


class FocusDetector(Detector):
    """Runs ``inner`` on the whole frame periodically and, in between, only where faces can be.

    Args:
        inner: the detector doing the work; it must offer ``detect_windows(image, windows)``
            (every tiled backend and the ensemble do), and ``detect_at(image, windows, scale)``
            for a cheap pass (the fully convolutional backends).
        full_scan_every: frames between two whole-frame scans through ``inner.detect``. It is
            shortened to be coprime with the inner tile rotation period (if the inner has one),
            so that successive full scans visit every tile phase rather than the same few.
        coarse_height: between full scans, also run ``inner`` on the whole frame seen this many
            rows tall; 0 = no cheap pass. Where that is no less than the full scan sees (small
            video), every call is a full scan.
        motion: between full scans, also search where the picture changed (fixed cameras).
        tile_size: edge of the windows in source pixels.
        threshold: grey-level difference from the background that counts as motion.
        memory_frames: frames a face is searched for again after it was last found; None =
            ``full_scan_every`` with a cheap pass (the next full scan finds it again), twice
            that without (a still person under motion gating must stay searched).
        follow_confidence: only faces found with at least this score are searched again in
            windows (every face is returned, whatever its score).
        full_scan_parts: run each periodic full scan in this many horizontal parts, one per
            call (beside the cheap pass), instead of all at once: live cameras, where one
            whole pass would hold up the frames behind it. First frames and cuts still get the
            whole pass at once, and so does every periodic pass without a cheap one (a part
            border could cut a large face that nothing else would find).

    Attributes:
        full_scans: calls of ``inner.detect`` (first frame, periodic, scene change, fallback,
            bare images).
        fallbacks: full scans run because the windows would have cost as much as the inner
            detector's own pass (only known for inners with ``windows()``).
        coarse_passes: cheap whole-frame passes.
        gated_calls: calls of ``inner.detect_windows``; ``windows_run`` windows in total.
        skipped_frames: frames answered without any inference (no motion, no recent face).

    Raises:
        ConfigError: ``inner`` cannot run what is asked of it (a ValueError).
        ValueError: an argument is out of range.

    Example:
        >>> from streamdeid.detect.retinaface import RetinaFaceDetector  # doctest: +SKIP
        >>> focused = FocusDetector(RetinaFaceDetector(), coarse_height=360)  # doctest: +SKIP
        >>> focused.name  # doctest: +SKIP
        'focus(retinaface)'
    """

    def __init__(
        self,
        inner: Detector,
        full_scan_every: int = 12,
        tile_size: int = 192,
        threshold: int = 10,
        memory_frames: int | None = None,
        *,
        coarse_height: int = 0,
        motion: bool = True,
        follow_confidence: float = 0.0,
        full_scan_parts: int = 1,
    ) -> None:
        check_focus_arguments(
            inner,
            full_scan_every=full_scan_every,
            tile_size=tile_size,
            threshold=threshold,
            memory_frames=memory_frames,
            coarse_height=coarse_height,
            motion=motion,
            follow_confidence=follow_confidence,
            full_scan_parts=full_scan_parts,
        )
        self.inner = inner
        self.name = f"focus({getattr(inner, 'name', type(inner).__name__)})"
        self.full_scan_every = full_scan_every
        self.coarse_height = coarse_height
        self.motion = motion
        self.follow_confidence = follow_confidence
        self.full_scan_parts = full_scan_parts
        self._parts: list[Window] = []  # parts of a periodic full pass still to run
        self.tile_size = tile_size
        self.threshold = threshold
        if memory_frames is None:
            memory_frames = full_scan_every if coarse_height else 2 * full_scan_every
        self.memory_frames = memory_frames
        self.full_scans = 0
        self.coarse_passes = 0
        self.gated_calls = 0
        self.skipped_frames = 0
        self.windows_run = 0
        self.fallbacks = 0
        self.last_windows: list[Window] = []  # windows of this frame's gated call, if any
        self._scene = SceneModel(threshold, motion)
        self._last_full = -1
        self._intervals: dict[tuple[int, int], int] = {}
        self._grids: dict[tuple[int, int, float], np.ndarray] = {}
        self._known = np.zeros((0, 4), np.float32)  # recent face boxes
        self._seen = np.zeros((0,), np.int64)  # frame index each was last found on
        self._kernel = np.ones((3, 3), np.uint8)
        self._fixed_input = _fixed_input(inner)

    # -- the Detector interface ---------------------------------------------------------------

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        """Faces on this frame; see the module docstring for where the model is run."""
        image = as_image(frame)
        if not isinstance(frame, Frame):
            # A still image has no background and no next frame: search all of it.
            self.full_scans += 1
            return self.inner.detect(frame)
        h, w = image.shape[:2]
        index = frame.index
        grey, scale = shrink(image)
        if not self._scene.knows(w, h) or index < self._last_full:
            self._known, self._seen = self._known[:0], self._seen[:0]  # boxes of another stream
            return self._full_scan(frame, grey, "start of a stream")
        moved, cut = self._scene.change(grey)
        if cut:
            return self._full_scan(frame, grey, cut)
        coarse = self._coarse_scale(h)
        if index - self._last_full >= self._interval(w, h):
            if self.full_scan_parts == 1 or not coarse:
                return self._full_scan(frame, None, "periodic")
            # Live cameras: the periodic pass in parts, one per call beside the cheap pass, so
            # no frame waits for a whole full-resolution pass (130 ms at 1080p).
            self._last_full = index
            self._parts = bands(w, h, self.full_scan_parts, band_overlap(coarse))
        self._forget(index)
        if self.coarse_height and not coarse:
            # The frame is so small that the cheap pass would see as much as the full one: the
            # full pass it is, every time (skipping both would leave new faces to the next scan).
            return self._full_scan(frame, None, "the cheap pass would cost a full one")
        windows = self._windows(moved, scale, w, h, with_faces=not coarse)
        fine = self._fine_scale(h)
        scaled = face_windows(self._known, coarse, fine, w, h) if coarse else []
        budget = self._inner_cost(w, h, index)
        cost = self._cost(windows) + sum(edge(win) ** 2 * (s / fine) ** 2 for win, s in scaled)
        cost += w * h * (coarse / fine) ** 2
        if budget is not None and (windows or coarse) and cost >= budget:
            # Focusing would cost at least what the inner detector's own pass costs: run that.
            self.fallbacks += 1
            return self._full_scan(frame, None, f"{len(windows)} windows cost >= the inner pass")
        return self._focused(image, index, windows, coarse, scaled)

    def _focused(
        self,
        image: np.ndarray,
        index: int,
        windows: list[Window],
        coarse: float,
        scaled: list[tuple[Window, float]],
    ) -> Detections:
        """This call's share of a full pass in parts, the cheap pass and the windows."""
        h, w = image.shape[:2]
        found = []
        if self._parts:
            part = self._parts.pop(0)
            self.full_scans += not self._parts  # counted when the last part has run
            found.append(self.inner.detect_windows(image, [part]))  # type: ignore[attr-defined]
            # The part sees its pixels at the full pass's scale, which no window exceeds: a
            # window wholly inside it would look again at what it just saw.
            every = np.asarray(windows + [win for win, _ in scaled], np.float64).reshape(-1, 4)
            seen = contains(np.asarray([part], np.float64), every)[0]
            windows, scaled = (
                [win for win, held in zip(windows, seen[: len(windows)], strict=True) if not held],
                [ws for ws, held in zip(scaled, seen[len(windows) :], strict=True) if not held],
            )
        self.last_windows = windows + [win for win, _ in scaled]
        if coarse:
            self.coarse_passes += 1
            found.append(self.inner.detect_at(image, [(0, 0, w, h)], coarse))  # type: ignore[attr-defined]
            for scale_, group in by_scale(scaled).items():
                found.append(self.inner.detect_at(image, group, scale_))  # type: ignore[attr-defined]
        if windows:
            found.append(self.inner.detect_windows(image, windows))  # type: ignore[attr-defined]
        if windows or scaled:
            self.gated_calls += 1
            self.windows_run += len(self.last_windows)
        if not found:
            self.skipped_frames += 1
            return Detections.empty()
        result = found[0] if len(found) == 1 else _union(found, self.inner)
        self._remember(result, index)
        return result

    def _full_scan(self, frame: Frame, reset_to: np.ndarray | None, reason: str) -> Detections:
        """The inner detector's own whole-frame detection; a new scene resets the background."""
        log.debug("frame %d: full scan (%s)", frame.index, reason)
        self._parts = []
        if reset_to is not None:
            self._scene.reset(reset_to, frame.width, frame.height)
        self._last_full = frame.index
        self.full_scans += 1
        self.last_windows = []
        found = self.inner.detect(frame)
        self._remember(found, frame.index)
        return found

    def close(self) -> None:
        self.inner.close()

    # -- scheduling ---------------------------------------------------------------------------

    def _interval(self, width: int, height: int) -> int:
        """``full_scan_every``, shortened to be coprime with the inner tile period.

        A tiled inner detector with a tile budget visits tile phase ``index % period``. Scans
        ``n`` frames apart with ``gcd(n, period) = g > 1`` would only ever see ``1/g`` of the
        phases, so a small face sitting still in another phase would never be found.
        """
        key = (width, height)
        if key not in self._intervals:
            n = self.full_scan_every
            period_of = getattr(self.inner, "tile_period", None)
            if callable(period_of):
                period = max(1, int(period_of(width, height)))
                while n > 1 and math.gcd(n, period) != 1:
                    n -= 1
            self._intervals[key] = n
        return self._intervals[key]

    def _fine_scale(self, height: int) -> float:
        """The largest scale the inner's own pass sees a frame this tall at (1 if it has none)."""
        scales = getattr(self.inner, "scales", None) or (1.0,)
        floor = getattr(self.inner, "min_input_height", 0) / max(1, height)
        return max(max(scales), floor)

    def _coarse_scale(self, height: int) -> float:
        """Scale of the cheap pass, or 0 when there is none or it would be no cheaper.

        A frame no taller than ``coarse_height`` is seen at about its size or larger, and the
        network sees it ``coarse_height`` rounded to the *nearest* multiple of :data:`ALIGN`
        tall, not the next one up: a 360-row frame was stretched to 384 rows (8% more work per
        pass, 12.9 against 11.9 ms on the 360p dev clip) where 352 rows shrink its faces by 2%.
        Taller frames are shrunk to ``coarse_height`` and rounded up as before: rounding those
        down too put more faces of the 720p dev clip under the cheap pass's size limit (33%
        more tracks) and saved no time.
        """
        if not self.coarse_height:
            return 0.0
        h, fine = max(1, height), self._fine_scale(height)
        coarse = self.coarse_height / h
        if coarse >= fine:
            return 0.0
        if h <= self.coarse_height:
            rounded = max(ALIGN, round(self.coarse_height / ALIGN) * ALIGN) / h
            coarse = rounded if rounded < fine else coarse
        return coarse

    def _inner_cost(self, width: int, height: int, index: int) -> float | None:
        """Cost of the inner detector's own pass on this frame, when it can tell (tiled ones)."""
        windows_of = getattr(self.inner, "windows", None)
        if not callable(windows_of):
            return None
        return self._cost(windows_of(width, height, index))

    def _cost(self, windows: Sequence[Window]) -> float:
        """Model work for these windows: one inference each for fixed-input models (BlazeFace
        resizes every window to 192 px), pixels for fully convolutional ones (CenterFace)."""
        if self._fixed_input:
            return float(len(windows))
        return float(sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in windows))

    # -- windows --------------------------------------------------------------------------------

    def _windows(
        self,
        moved: np.ndarray | None,
        scale: tuple[float, float],
        width: int,
        height: int,
        *,
        with_faces: bool = True,
    ) -> list[Window]:
        """Windows covering the motion blobs and (``with_faces``) the recent faces."""
        return target_windows(
            blob_boxes(moved, scale, self._kernel) if moved is not None else [],
            self._known.tolist() if with_faces else [],
            self.tile_size,
            width,
            height,
            cells=self._grid,
            fixed_input=self._fixed_input,
        )

    def _grid(self, width: int, height: int, overlap: float) -> np.ndarray:
        key = (width, height, overlap)
        if key not in self._grids:
            cells = tile_grid(width, height, self.tile_size, overlap)
            self._grids[key] = np.asarray(cells, np.int64).reshape(-1, 4)
        return self._grids[key]

    # -- face memory ----------------------------------------------------------------------------

    def _remember(self, found: Detections, index: int) -> None:
        """Found faces replace the remembered ones at the same place; the others keep their age.

        Same place = overlapping (IoU >= 0.3) or one box's centre inside the other: boxes of a
        small face jitter by more than a third of their size from one window to the next, and
        each stale copy would otherwise cost a window until it expires.
        """
        if self.follow_confidence:
            keep = found.confidence >= self.follow_confidence
            found = Detections(found.xyxy[keep], found.confidence[keep])
        if len(found) and len(self._known):
            old = ~same_place(self._known, found.xyxy).any(axis=1)
            self._known, self._seen = self._known[old], self._seen[old]
        self._known = np.concatenate([found.xyxy, self._known]).astype(np.float32)
        self._seen = np.concatenate([np.full(len(found), index, np.int64), self._seen])
        self._forget(index)

    def _forget(self, index: int) -> None:
        keep = (index - self._seen) <= self.memory_frames
        self._known, self._seen = self._known[keep], self._seen[keep]


def _union(found: list[Detections], inner: Detector) -> Detections:
    """One face list from several passes: the same face seen twice is merged, never shrunk."""
    xyxy = np.concatenate([f.xyxy for f in found])
    conf = np.concatenate([f.confidence for f in found])
    if not len(conf):
        return Detections.empty()
    return Detections(*merge_boxes(xyxy, conf, getattr(inner, "nms_iou", 0.3)))


def _fixed_input(detector: object) -> bool:
    """True when the model resizes every window to one input size (BlazeFace, MediaPipe), or an
    ensemble has such a member: a big window then shrinks its faces, and costs one inference.
    Fully convolutional models (CenterFace) see any window at the frame's own scale."""
    spec = getattr(detector, "spec", None)
    if getattr(spec, "size", None) or getattr(detector, "input_size", None):
        return True
    return any(_fixed_input(m) for m in getattr(detector, "members", ()))
