"""The surrogate method: each masked face is replaced by a mean face of other people.

Blur, pixelate and solid destroy what analysts need: that there is a face, where it looks, its
expression. Here each region is first blurred whole, as ``method: blur`` does but at least at
:data:`SURROUND_BLUR`, and then a surrogate face is drawn over the face inside it: the
landmark-aligned mean of ``k`` other identities of the same recording
(:mod:`streamdeid.obscure.surrogate_gallery`), warped onto the target's 468-point face mesh
(:mod:`streamdeid.obscure.landmarks`) so it keeps pose and expression, colour-matched to the
target (mean and standard deviation per channel inside the mesh) and blended with a feathered
edge that reaches zero inside the mesh.

Privacy first, in that order: every region is blurred on every frame before anything is drawn,
so hair, ears and background inside the box never show, and a frame where the mesh cannot be
fitted, a region without a track, a face box lying mostly inside other tracked faces' boxes
(:data:`~streamdeid.obscure.surrogate_place.COVERED`), or a gallery with fewer than ``k`` other
identities leaves the region blurred (counted in :class:`SurrogateCounts`). The surrogate only
ever adds pixels that come from other people's mean.

Speed: the mesh is fitted on frames where the detector ran (the region is a fresh face box
there); on the frames in between, the track's last fit is moved with its region's centre.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamdeid.obscure.face_shape import deform, mean_shape_posed
from streamdeid.obscure.filters import BlurFilter, Filter, Shape, check_image
from streamdeid.obscure.landmarks import FIT_MARGIN, FaceFit, LandmarkFitter
from streamdeid.obscure.mesh_kernels import blend_region, count_changed, warp_mesh
from streamdeid.obscure.regions import Face
from streamdeid.obscure.site_gallery import load_site_faces
from streamdeid.obscure.surrogate_blend import (
    CHANGED_LEVEL,
    changed_in,
    colour_transfer,
    feathered,
)
from streamdeid.obscure.surrogate_gallery import Gallery, Surrogate
from streamdeid.obscure.surrogate_place import (
    Box,
    Drawn,
    Plan,
    centre,
    covered,
    one_per_face,
    place,
)
from streamdeid.types import Region

log = logging.getLogger(__name__)

FEATHER = 0.05
"""Feather width as a fraction of the region's smaller side: the blend fades out over it."""

FORGET_FRAMES = 150
"""A track's last fit is dropped when its region has not been seen for this many frames."""

FRAGMENT_FRAMES = 50
"""A new track that begins within this many frames of another track's last sighting, and
within one face size of where it was, is taken for the same person (the tracker lost them)."""

SHAPE_WEIGHT = 0.75
"""How far the drawn face's landmarks move from the target's own towards the contributors' mean
shape (put in the target's pose): the target's proportions identify it even under another
texture, so they are averaged too, as k-Same-M does. Measured with a site gallery on the crowd
clip (dlib, re-identified / faces kept): 0.5 -> 3.6% / 58%, 0.75 -> 1.8% / 60%, 1.0 -> 0.9% /
62%; a quarter of the target's own deviation is kept for its expression."""

SURROUND_BLUR = 1.0
"""The blur every region gets first, as a ``blur_fraction`` (at least; a stronger setting is
kept). ``method: blur``'s default, 0.5, leaves a soft head outline and hair colour around the
drawn face, and those carry identity the mean face does not cover. Crowd clip with a site
gallery, seeds 1-32 (the same draws either way), 0.5 -> 1.0: dlib re-identified 135 -> 105 of
3584 faces, found again 92.1 -> 92.4 of 112 per run, rank-1 10.3% -> 9.4%."""

MIN_FACE_PX = 24
"""Faces smaller than this (face box side x FIT_MARGIN) are left blurred: a mesh there is
guesswork."""

MIN_CHANGED = 0.65
"""A surrogate is kept only where more than this share of the face's own box (the mesh's
bounding box), and of the tracked face box, differs from the input by more than
:data:`CHANGED_LEVEL` grey levels: the black-box "masked" test of EVALUATION.md (60%), with a
margin for encoding. Both boxes, because the mesh box can sit inside the face box (a chin or
forehead the mesh leaves out is only blurred) and a test by ground truth uses the larger. A mean
face colour-matched to its target can come that close on flat skin; the region then stays blurred.
The rest of the region is blurred whichever way: a region grown around a moving face holds
flat background that blur does not change either, so it is not part of the test."""


@dataclass
class SurrogateCounts:
    """What the filter did with each region it was handed (``--stats``).

    A face lying inside another track's region (:attr:`Region.inner`) counts as one more
    region: it gets its own surrogate, or falls back to blur, like any other.
    """

    surrogate: int = 0  # regions that got a surrogate face (blurred around it)
    too_few_identities: int = 0  # blurred: fewer than k other identities seen so far
    no_fit: int = 0  # blurred: the face mesh could not be fitted (or the face is tiny)
    no_track: int = 0  # blurred: a raw detection (no track), or a region with no face position
    too_close: int = 0  # blurred: the surrogate changed too few pixels of the input (MIN_CHANGED)
    covered: int = 0  # blurred: the face box lies mostly inside other tracked faces' (COVERED)

    @property
    def blurred(self) -> int:
        """Regions where the surrogate fell back to blur."""
        return self.too_few_identities + self.no_fit + self.no_track + self.too_close + self.covered


@dataclass(slots=True)
class _LastFit:
    fit: FaceFit | None  # None: the fit failed; retried on the next detector frame
    centre: tuple[float, float]  # of the face box the fit was made in
    side: float
    frame: int
    drawn: Drawn | None = None


@dataclass
class SurrogateFilter(Filter):
    """Blur every region, then draw a ``k``-identity mean face over each tracked face.

    Args:
        k: identities averaged into every surrogate (>= 2; 5 by default).
        epsilon: noise dial, see :mod:`streamdeid.obscure.surrogate_gallery`; None = no noise.
        blur_fraction: blur of the whole region, as for ``method: blur``, but at least
            :data:`SURROUND_BLUR`.
        shape: mask shape of that blur (``box`` covers the whole region).
        fitter: the face-mesh model (built on first use when None; tests pass a fake).
        site_gallery: a folder of portraits added as identities at start-up
            (:mod:`streamdeid.obscure.site_gallery`); None = the recording's own people only.
        rng: noise randomness (seeded from the OS when None).
    """

    k: int = 5
    epsilon: float | None = None
    blur_fraction: float = 0.5
    shape: Shape = "box"
    fitter: LandmarkFitter | None = None
    site_gallery: Path | None = None
    rng: np.random.Generator | None = None
    counts: SurrogateCounts = field(default_factory=SurrogateCounts)
    _fresh: bool = True
    _frame: int = 0
    _fits: dict[int, _LastFit] = field(default_factory=dict)
    _present: set[int | None] = field(default_factory=set)
    _covered: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._blur = BlurFilter(max(self.blur_fraction, SURROUND_BLUR), shape=self.shape)
        rng = self.rng if self.rng is not None else np.random.default_rng()
        self.gallery = Gallery(self.k, self.epsilon, rng)

    def prepare(self) -> None:
        """Load the face mesh model and compile the mesh kernels (seconds on a cold cache)."""
        if self.fitter is None:
            self.fitter = LandmarkFitter()
        if self.site_gallery is not None:
            added = sum(
                self.gallery.add_site(face.image, face.fit)
                for face in load_site_faces(self.site_gallery, self.fitter)
            )
            log.info("surrogate: %d site-gallery identities", added)
        tris = np.array([[0, 1, 2]], np.int32)
        pts = np.array([[0, 0], [3, 0], [0, 3]], np.float32)
        face, mask = np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8)
        warp_mesh(face, mask, pts, np.zeros((4, 4, 3), np.uint8), pts, tris)
        one, image = np.ones(3, np.float32), np.zeros((4, 4, 3), np.uint8)
        blend_region(image, 0, 0, face, mask.astype(np.float32), one, one)
        count_changed(image, image[1:, 1:], CHANGED_LEVEL)

    def next_frame(self, detector_ran: bool) -> None:
        """Called once per frame before :meth:`apply`: fit meshes afresh when the detector ran."""
        self._frame += 1
        self._fresh = detector_ran
        if self._frame % FORGET_FRAMES == 0:
            old = [t for t, f in self._fits.items() if self._frame - f.frame > FORGET_FRAMES]
            for track_id in old:
                del self._fits[track_id]

    def apply(self, image: np.ndarray, regions: Sequence[Region]) -> None:
        check_image(image)
        self._present = {r.track_id for r in regions} | {t for r in regions for t, _ in r.inner}
        # Plans are made on the original pixels (fits, colour), before any region is blurred.
        faces = one_per_face(image, regions)
        self._covered = covered(
            {r.track_id: r.face for _, r in faces if r.track_id is not None and r.face is not None}
        )
        plans = [self._plan(image, box, r) for box, r in faces]
        self._blur.apply(image, regions)
        # Nearer faces are larger and hide the ones behind them: draw the largest last, on top.
        for plan in sorted((p for p in plans if p is not None), key=lambda p: p.alpha.size):
            if self._blend_checked(image, plan):
                self.counts.surrogate += 1
            else:
                self.counts.too_close += 1

    @staticmethod
    def _blend_checked(image: np.ndarray, p: Plan) -> bool:
        """Blend the surrogate into the blurred region; undo it (keep the blur) when the result
        would not count as masked, in the mesh's box or in the tracked face box (which is what
        a detector, or a reviewer's ground truth, calls the face)."""
        x1, y1, x2, y2 = p.region
        crop = image[y1:y2, x1:x2]
        blurred = crop.copy()
        blend_region(image, p.x1, p.y1, p.face, p.alpha, p.gain, p.bias)
        fh, fw = p.alpha.shape
        mesh_box = (p.x1, p.y1, p.x1 + fw, p.y1 + fh)
        boxes = (mesh_box, p.face_box)
        if all(changed_in(p.original, crop, p.region, b) > MIN_CHANGED for b in boxes):
            return True
        crop[...] = blurred
        return False

    def _plan(self, image: np.ndarray, box: Box, region: Region) -> Plan | None:
        track_id, face = region.track_id, region.face
        if track_id is None or face is None:
            self.counts.no_track += 1
            return None
        if track_id in self._covered:
            self.counts.covered += 1
            return None
        if not self._worth_fitting(track_id):
            self.counts.too_few_identities += 1
            return None
        last = self._fit(image, face, track_id)
        if last is None or last.fit is None:
            self.counts.no_fit += 1
            return None
        surrogate = self.gallery.surrogate_for(track_id, image, last.fit)
        if surrogate is None:
            self.counts.too_few_identities += 1
            return None
        cx, cy = centre(face)
        dx, dy = round(cx - last.centre[0]), round(cy - last.centre[1])
        if last.drawn is None:
            last.drawn = self._draw(image, last.fit, surrogate, dx, dy)
        plan = place(image, box, last.drawn, dx, dy, face) if last.drawn is not None else None
        if plan is None:
            self.counts.no_fit += 1
        return plan

    def _worth_fitting(self, track_id: int) -> bool:
        """False for a track whose gallery entry is complete while no surrogate can be made for
        it yet: a fit would only be thrown away (the region stays blurred either way)."""
        return not (
            self.gallery.complete(track_id) and self.gallery.surrogate_for(track_id) is None
        )

    def _fit(self, image: np.ndarray, face: Face, track_id: int) -> _LastFit | None:
        """A fresh fit on detector frames (added to the gallery), else the last one.

        The mesh is fitted around the tracked face, not the region: a region also holds the
        face's boxes before and after a skipped frame, and its centre is not the face's.
        """
        side = float(min(face[2] - face[0], face[3] - face[1])) * FIT_MARGIN
        if side < MIN_FACE_PX:
            return None
        last = self._fits.get(track_id)
        if last is not None and not self._fresh:
            last.frame = self._frame
            return last
        if self.fitter is None:
            self.fitter = LandmarkFitter()
        at = centre(face)
        fit = self.fitter.fit_face(image, face)
        self._fits[track_id] = _LastFit(fit, at, side, self._frame)
        if fit is not None:
            same_as = None if last is not None else self._broken_off(track_id, at, side)
            self.gallery.add(track_id, image, fit, same_as)
        return self._fits[track_id]

    def _broken_off(self, track_id: int, at: tuple[float, float], side: float) -> int | None:
        """The track that ended where and shortly before ``track_id`` began, if any."""
        best, best_d = None, side
        for other, last in self._fits.items():
            if other == track_id or other in self._present:
                continue
            if self._frame - last.frame > FRAGMENT_FRAMES:
                continue
            d = float(np.hypot(at[0] - last.centre[0], at[1] - last.centre[1]))
            if d <= max(best_d, last.side):
                best, best_d = other, d
        return best

    @staticmethod
    def landmarks_drawn(fit: FaceFit, surrogate: Surrogate) -> np.ndarray:
        """Where the surrogate's landmarks go for ``fit``: the fit's pose, its proportions moved
        towards the contributors' mean (:data:`SHAPE_WEIGHT`), then the ε dial's deformation."""
        points = fit.points
        if surrogate.shape is not None and SHAPE_WEIGHT:
            points = mean_shape_posed(points, surrogate.shape, SHAPE_WEIGHT)
        return deform(points, surrogate.shape_noise)

    def _draw(
        self, image: np.ndarray, fit: FaceFit, surrogate: Surrogate, dx: int, dy: int
    ) -> Drawn | None:
        """Warp the surrogate onto ``fit``, feather it, and match its colour to the face
        (which is ``dx, dy`` away from where it was fitted on this frame)."""
        mesh = self.gallery.mesh
        if mesh is None:
            return None
        points = self.landmarks_drawn(fit, surrogate)
        x0, y0 = (int(v) for v in np.floor(points.min(axis=0)))
        x1, y1 = (int(v) + 2 for v in np.ceil(points.max(axis=0)))
        h, w = y1 - y0, x1 - x0
        face = np.zeros((h, w, 3), np.float32)
        mask = np.zeros((h, w), np.uint8)
        local = (points - np.float32([x0, y0])).astype(np.float32)
        warp_mesh(face, mask, local, surrogate.texture, mesh.points, mesh.tris)
        alpha = feathered(mask, max(1, round(FEATHER * min(h, w))))
        # Colour statistics of the face where it is now, inside the frame.
        ih, iw = image.shape[:2]
        cx0, cy0 = max(x0 + dx, 0), max(y0 + dy, 0)
        cx1, cy1 = min(x1 + dx, iw), min(y1 + dy, ih)
        if cx1 <= cx0 or cy1 <= cy0:
            return None
        sub = (slice(cy0 - y0 - dy, cy1 - y0 - dy), slice(cx0 - x0 - dx, cx1 - x0 - dx))
        inside = (alpha[sub] > 0).view(np.uint8)
        if not inside.any():
            return None
        gain, bias = colour_transfer(face[sub], image[cy0:cy1, cx0:cx1], inside)
        return Drawn(x0, y0, face, alpha, gain, bias)


def surrogate_counts(filter_: Filter) -> dict[str, int] | None:
    """The run-stats entry of a surrogate filter (None for the other methods)."""
    if not isinstance(filter_, SurrogateFilter):
        return None
    c = filter_.counts
    return {
        "surrogate": c.surrogate,
        "blurred": c.blurred,
        "too_few_identities": c.too_few_identities,
        "no_fit": c.no_fit,
        "no_track": c.no_track,
        "too_close": c.too_close,
        "covered": c.covered,
    }


def surrogate_summary(counts: dict[str, int]) -> str:
    """One line for the run summary, e.g. ``surrogate fell back to blur on 12 regions``."""
    return (
        f"surrogate face on {counts['surrogate']} regions; surrogate fell back to blur on "
        f"{counts['blurred']} regions ({counts['too_few_identities']} with too few identities, "
        f"{counts['no_fit']} without a face mesh, {counts['no_track']} without a track, "
        f"{counts['too_close']} too close to the input, "
        f"{counts['covered']} inside other faces)"
    )
