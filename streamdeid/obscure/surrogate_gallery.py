"""The in-memory gallery the surrogate faces are averaged from, and the per-track choice.

**Identity = track.** A recording has no names, so each track of the same recording (camera)
stands for one person. That is an approximation both ways: one person lost and found again gets
a second track, and two people can swap tracks in a crowd. The first case is the dangerous one
(the "k identities" would hold the same face twice, or the target's own face), so a track is
not a new identity when the caller says it began where another broke off (``same_as``), or when
its aligned face correlates with a kept one above :data:`ALIAS_CORRELATION` (that check
recognises a person tracked twice in the same scene and light, not a person in general: see
:meth:`Gallery.descriptor`), and entries that close to a target never go into its surrogate. A
track counts only after :data:`MIN_SAMPLES` sure fits, so a false detection the mesh accepts
once is not an identity.

**Privacy.** Textures are faces: they live in this object only, are never written, logged or
returned by the filter, and go when the run ends. A surrogate is the mean of ``k`` distinct
identities' landmark-aligned textures, never one person's face; until ``k`` identities other
than the target (and its aliases) have been seen, :meth:`Gallery.surrogate_for` returns None and
the caller blurs.

**Stability.** A track's surrogate (its ``k`` contributors, the mean texture and the noise) is
chosen once, on the first frame it can be, and kept for the life of the run, so the face does
not flicker as the gallery grows. The contributors are ``k`` identities drawn at random among
the others (the target, its aliases and look-alikes left out). Taking the ``k`` *nearest* the
target's own face blended better but built a look-alike: with sharp contributors (a site
gallery) dlib re-identified 12.5% of the crowd clip's faces that way, 0.9-1.8% with random
contributors and the mean shape below.

**Shape.** Each entry also keeps its mean landmark shape with place, size and in-plane rotation
taken out (:meth:`Gallery.canonical`), and a surrogate carries its contributors' mean shape:
the target's own proportions identify it under any texture, so the filter draws on landmarks
moved towards that mean (:func:`mean_shape_posed`), as k-Same-M averages shape too.

**The ε dial** (``epsilon``; None = no noise). Two kinds of Laplace noise, drawn once per track:
appearance noise on the mean texture with scale ``(255 / k) / ε`` grey levels per pixel (the
scale of the Laplace mechanism for one pixel of a mean of ``k`` faces), and a smooth random
deformation of the target's landmark shape (3x3 control displacements, scale ``0.05 / ε`` of the
face size, clipped at 0.2) so the output does not carry the target's exact face geometry.
Smaller ε, more noise. This is NOT differential privacy: the per-pixel calibration does not
compose over thousands of correlated pixels, the target's pose, expression and skin colour are
passed through on purpose, and the noise is fixed per track rather than fresh per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamdeid.obscure.face_shape import frontal, similarity_fit
from streamdeid.obscure.landmarks import FaceFit
from streamdeid.obscure.mesh_kernels import warp_mesh

log = logging.getLogger(__name__)

TEXTURE_SIZE = 64
"""Side of the canonical texture (px). 128 kept more faces detectable (66% against 62% on the
crowd clip with a site gallery) but rank-1 identification rose to 32% against a chance of 14%:
on a sharper face dlib reads more of what is left of the target (its pose, a quarter of its
proportions, its colour)."""

MAX_SAMPLES = 5
"""Fits of one track averaged into its texture (steadier than one frame, still one person)."""

MIN_SAMPLES = 3
"""Fits (on detector frames) before a track counts as an identity: a false detection on
background texture that the face mesh accepts once rarely passes three times."""

MIN_PRESENCE = 0.9
"""Fits less sure than this are drawn on but not added to the gallery."""

MAX_ENTRIES = 256
"""Tracks kept per run; later tracks are still masked, they only stop adding to the gallery."""

ALIAS_CORRELATION = 0.95
"""Aligned-face correlation above which two tracks are taken for the same person."""

DESCRIPTOR_SIZE = 32
DESCRIPTOR_HIGH_PASS = 3.0  # sigma (texture px) of the shading removed before comparing
SHAPE_NOISE_SCALE = 0.05
SHAPE_NOISE_CLIP = 0.2
DRAWS = 8
"""With a site gallery a random draw of ``k`` others sometimes still reads as the target (crowd
clip: dlib re-identified 0-11 of 112, rank-1 above chance in every run); the least alike of this
many draws is kept: 0-3 of 112 in four runs, 56-62% kept instead of 63%. Eight seeded runs later
gave 0-2 in six and 13 and 22 in two: an elderly target drawn with elderly contributors still
reads as herself. dlib does tell such draws apart, but this descriptor ranks draws almost at
random, as do LBP, HOG and a band-pass (mean Spearman's rho with dlib's distance +0.07 to +0.09
for it, +0.05 to +0.13 for the others: ``benchmarks/surrogate_draw_oracle.py``). With fewer than
``2k`` others draws share most people, and the first is kept."""


@dataclass(frozen=True, slots=True)
class Mesh:
    """The canonical face mesh: where each landmark sits in the texture, and the triangles."""

    points: np.ndarray  # (468, 2) float32, texture pixels
    tris: np.ndarray  # (m, 3) int32
    coverage: np.ndarray  # (T, T) bool: texture pixels inside the mesh

    @classmethod
    def from_fit(
        cls, points: np.ndarray, size: int = TEXTURE_SIZE, depth: np.ndarray | None = None
    ) -> Mesh:
        """Scale and move one fitted shape into a ``size`` square (5% margin) and triangulate.

        The first fit of the run defines the texture layout. Its geometry never reaches the
        output (a surrogate is drawn on the target's landmarks); it only decides which texture
        pixel holds which part of the face. So it is laid out as seen from the front when its
        ``depth`` is known: the first fit of a run is often a turned face, and its far half
        then got a sliver of the texture, which every surrogate of the run stretched back
        over half a face as streaks (seen on the crowd clip).
        """
        from scipy.spatial import Delaunay

        if depth is not None:
            points = frontal(points, depth)
        lo, hi = points.min(axis=0), points.max(axis=0)
        scale = 0.9 * size / float(max(hi - lo))
        canon = ((points - (lo + hi) / 2) * scale + size / 2).astype(np.float32)
        tris = Delaunay(canon).simplices.astype(np.int32)
        dummy = np.zeros((size, size, 3), np.float32)
        mask = np.zeros((size, size), np.uint8)
        warp_mesh(dummy, mask, canon, np.zeros((2, 2, 3), np.uint8), canon * 0, tris)
        return cls(canon, tris, mask > 0)


@dataclass(slots=True)
class _Entry:
    track_id: int
    texture_sum: np.ndarray  # (T, T, 3) float32
    descriptor: np.ndarray  # of the current texture, see Gallery.descriptor
    shape_sum: np.ndarray  # (468, 2) float32: fits moved onto the canonical mesh (similarity)
    samples: int = 1
    alias_of: int | None = None
    site: bool = False  # a site-gallery portrait: an identity from the start, never a target

    @property
    def texture(self) -> np.ndarray:
        return self.texture_sum / self.samples

    @property
    def shape(self) -> np.ndarray:
        return self.shape_sum / self.samples


@dataclass(frozen=True, slots=True)
class Surrogate:
    """What a track is drawn with, fixed once chosen."""

    identities: tuple[int, ...]  # contributing track ids
    texture: np.ndarray  # (T, T, 3) uint8, mean of the contributors plus appearance noise
    shape_noise: np.ndarray | None  # (3, 3, 2) float32 displacements in face sizes, or None
    shape: np.ndarray | None = None  # (468, 2) float32 contributors' mean canonical shape


@dataclass
class Gallery:
    """Aligned faces of this run's tracks, and the surrogate chosen for each track.

    Args:
        k: identities averaged into every surrogate (>= 2).
        epsilon: noise dial (see the module docstring); None for no noise.
        rng: randomness of the noise; the default is seeded from the OS, so the noise of a
            recording cannot be replayed and subtracted.
    """

    k: int = 5
    epsilon: float | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    mesh: Mesh | None = None
    _entries: dict[int, _Entry] = field(default_factory=dict)
    _chosen: dict[int, Surrogate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k must be >= 2 (a mean of one face is that face), but got {self.k}")
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0 or None, but got {self.epsilon}")

    @property
    def identities(self) -> int:
        """Distinct identities seen so far (tracks that are not aliases of another)."""
        return sum(1 for e in self._entries.values() if self._counts(e))

    @staticmethod
    def _counts(entry: _Entry) -> bool:
        return entry.alias_of is None and (entry.site or entry.samples >= MIN_SAMPLES)

    def add_site(self, image: np.ndarray, fit: FaceFit) -> bool:
        """Add one site-gallery portrait as an identity of its own (see
        :mod:`streamdeid.obscure.site_gallery`); False when the fit is not sure enough or the
        face duplicates one already kept."""
        if fit.presence < MIN_PRESENCE or len(self._entries) >= MAX_ENTRIES:
            return False
        self._lay_out(fit)
        texture = self.aligned(image, fit.points)
        entry = _Entry(
            -1 - len(self._entries),
            texture,
            self.descriptor(texture),
            self.canonical(fit.points),
            site=True,
        )
        if self._alias_of(entry) is not None:
            return False
        self._entries[entry.track_id] = entry
        return True

    def add(
        self, track_id: int, image: np.ndarray, fit: FaceFit, same_as: int | None = None
    ) -> None:
        """Add one fitted face of ``track_id`` (its first :data:`MAX_SAMPLES` fits count).

        ``same_as``: a track the caller takes for the same person (a track that broke off where
        and when this one began); the new track is then an alias of it.
        """
        if fit.presence < MIN_PRESENCE:
            return
        self._lay_out(fit)
        entry = self._entries.get(track_id)
        if entry is not None and entry.samples >= MAX_SAMPLES:
            return
        if entry is None and len(self._entries) >= MAX_ENTRIES:
            return
        texture = self.aligned(image, fit.points)
        shape = self.canonical(fit.points)
        if entry is None:
            entry = _Entry(track_id, texture, self.descriptor(texture), shape)
            entry.alias_of = self._root(same_as) if same_as in self._entries else None
            if entry.alias_of is None:
                entry.alias_of = self._alias_of(entry)
            self._entries[track_id] = entry
            if entry.alias_of is not None:
                log.debug(
                    "track %d looks like track %d: not a new identity", track_id, entry.alias_of
                )
        else:
            entry.texture_sum += texture
            entry.shape_sum += shape
            entry.samples += 1
            entry.descriptor = self.descriptor(entry.texture)

    def complete(self, track_id: int) -> bool:
        """Whether the track's entry has all the samples it will take."""
        entry = self._entries.get(track_id)
        return entry is not None and entry.samples >= MAX_SAMPLES

    def texture_of(self, track_id: int) -> np.ndarray | None:
        """The track's aligned mean face (float32), for in-memory checks; never written."""
        entry = self._entries.get(track_id)
        return None if entry is None else entry.texture

    def aligned(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The face at ``points`` of ``image`` warped onto the canonical mesh, float32."""
        mesh = self._mesh()
        size = mesh.coverage.shape[0]
        out = np.zeros((size, size, 3), np.float32)
        mask = np.zeros((size, size), np.uint8)
        warp_mesh(out, mask, mesh.points, image, points.astype(np.float32), mesh.tris)
        return out

    def canonical(self, points: np.ndarray) -> np.ndarray:
        """``points`` moved onto the canonical mesh by the similarity (rotation, scale, shift)
        that fits them best: what is left is the face's shape, not its place or size."""
        return similarity_fit(points, self._mesh().points)(points)

    def _lay_out(self, fit: FaceFit) -> None:
        """The texture layout comes from the first fit the gallery is given (see Mesh.from_fit)."""
        if self.mesh is None:
            self.mesh = Mesh.from_fit(fit.points, depth=fit.depth)

    def _mesh(self) -> Mesh:
        if self.mesh is None:
            raise ValueError("the gallery has no mesh yet: expected add() before any other call")
        return self.mesh

    def descriptor(self, texture: np.ndarray) -> np.ndarray:
        """Zero-mean, unit-norm, high-passed grey thumbnail of the face inside the mesh.

        High-passed (features, not shading): on aligned faces a plain thumbnail correlates
        0.97-0.98 between different people. Measured on 17 faces (10 LFW, 7 of the dev
        photos): the same photo at another size and brightness >= 0.98, different people
        <= 0.87, but two different photos of one person only 0.68-0.99. So it recognises a
        person tracked twice in the same scene and light, not a person in general.
        """
        grey = texture.mean(axis=2) * self._mesh().coverage
        grey = grey - cv2.GaussianBlur(grey, (0, 0), DESCRIPTOR_HIGH_PASS)
        small = cv2.resize(grey, (DESCRIPTOR_SIZE, DESCRIPTOR_SIZE), interpolation=cv2.INTER_AREA)
        v = small.ravel() - small.mean()
        return v / max(float(np.linalg.norm(v)), 1e-6)

    def _alias_of(self, new: _Entry) -> int | None:
        for other in self._entries.values():
            if other.alias_of is None and self._likeness(new, other) > ALIAS_CORRELATION:
                return other.track_id
        return None

    def _root(self, track_id: int | None) -> int | None:
        entry = self._entries.get(track_id) if track_id is not None else None
        if entry is None:
            return None
        return entry.alias_of if entry.alias_of is not None else entry.track_id

    @staticmethod
    def _likeness(a: _Entry, b: _Entry) -> float:
        return float(a.descriptor @ b.descriptor)

    def surrogate_for(
        self, track_id: int, image: np.ndarray | None = None, fit: FaceFit | None = None
    ) -> Surrogate | None:
        """The track's surrogate, chosen now if it can be; None while too few identities.

        A track not in the gallery (its fits were not sure enough to keep, or it has been seen
        only once, as in a photo) is compared by its face at ``fit`` in ``image``, when given:
        with a site gallery there may be enough other people all the same.
        """
        chosen = self._chosen.get(track_id)
        if chosen is not None:
            return chosen
        target = self._entries.get(track_id)
        if target is None:
            if image is None or fit is None or self.mesh is None:
                return None
            texture = self.aligned(image, fit.points)
            target = _Entry(track_id, texture, self.descriptor(texture), self.canonical(fit.points))
            target.alias_of = self._alias_of(target)
        ids = self._others(target)
        if len(ids) < self.k:
            return None
        chosen = self._least_alike(target, ids)
        self._chosen[track_id] = chosen
        log.debug("track %d: surrogate of %d identities chosen", track_id, self.k)
        return chosen

    def _others(self, target: _Entry) -> list[int]:
        """Other identities in random order; the target, its aliases and look-alikes left out."""
        root = target.alias_of if target.alias_of is not None else target.track_id
        ids = [
            e.track_id
            for e in self._entries.values()
            if self._counts(e)
            and e.track_id != root
            and self._likeness(target, e) <= ALIAS_CORRELATION
        ]
        return [ids[i] for i in self.rng.permutation(len(ids))]

    def _least_alike(self, target: _Entry, ids: list[int]) -> Surrogate:
        """The first ``k`` of ``ids`` (random order) or, with at least ``2k`` to draw from,
        the least alike of :data:`DRAWS` random draws (see there)."""
        if len(ids) < 2 * self.k:
            return self._make(tuple(ids[: self.k]))
        draws = [tuple(ids[: self.k])]
        for _ in range(DRAWS - 1):
            draws.append(tuple(ids[i] for i in self.rng.permutation(len(ids))[: self.k]))
        made = [self._make(draw) for draw in dict.fromkeys(draws)]
        likeness = [float(self.descriptor(m.texture) @ target.descriptor) for m in made]
        return made[int(np.argmin(likeness))]

    def _make(self, ids: tuple[int, ...]) -> Surrogate:
        mean = np.mean([self._entries[i].texture for i in ids], axis=0)
        shape_noise = None
        if self.epsilon is not None:
            mean = mean + self.rng.laplace(0.0, 255.0 / self.k / self.epsilon, mean.shape)
            scale = SHAPE_NOISE_SCALE / self.epsilon
            grid = self.rng.laplace(0.0, scale, (3, 3, 2))
            shape_noise = np.clip(grid, -SHAPE_NOISE_CLIP, SHAPE_NOISE_CLIP).astype(np.float32)
        texture = np.clip(mean + 0.5, 0, 255).astype(np.uint8)
        shape = np.mean([self._entries[i].shape for i in ids], axis=0).astype(np.float32)
        return Surrogate(ids, texture, shape_noise, shape)
