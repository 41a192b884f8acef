"""Can a cheap score tell which surrogate draws dlib will take for their target? (#14)

With a site gallery, the surrogate of a track is the least alike of 8 random draws of ``k``
contributors, judged by the gallery's own texture descriptor. Re-identification still comes in
lumps on a few draws. This script asks whether any cheap score could have picked better, by
putting each candidate next to what dlib itself says.

Method: one seeded run of the crowd clip with the dev site gallery; its gallery (each track's and
portrait's aligned mean texture, in memory only) is kept. For each track that counts as an
identity, ``--draws`` random sets of ``k`` portraits are averaged and colour-matched to the
track's texture (``colour_transfer``, as the filter does). The "oracle" is the dlib distance
between that surrogate texture and the track's own texture, each enlarged on a grey canvas and
embedded the same way: dlib's "same person" threshold is 0.6. A score is useful when it ranks the
draws as the oracle does (Spearman's rho of likeness against closeness; 1 = same order, 0 = no
relation). Scores: the gallery's descriptor (what the filter uses), uniform LBP histograms
(chi-square), HOG, and a band-pass correlation. Also printed: how close to each target the mean
of all portraits is, and how close each draw is to its nearest contributor.

Texture level only: the frame adds the target's pose, a quarter of its proportions and the blur
around the drawn face, so a distance here is not a re-identification, only a ranking of draws.

Example:
    .venv/bin/python benchmarks/surrogate_draw_oracle.py --draws 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import data_root, need_file, table
from _surrogate_trace import Trace
from anonymization_utility import dev_portraits
from scipy.stats import spearmanr
from surrogate_reid_seeds import CLIP, seeded_run

CANVAS, FACE = 288, 192  # dlib sees the texture at FACE px on a CANVAS px grey square


class Oracle:
    """dlib embeddings of aligned textures (see the module docstring)."""

    def __init__(self, coverage: np.ndarray) -> None:
        from streamdeid.evaluate.reid import FaceEmbedder

        self.embedder = FaceEmbedder()
        self.inside = cv2.resize(coverage.astype(np.uint8), (FACE, FACE)) > 0
        self.coverage = coverage.astype(np.uint8)

    def embed(self, texture: np.ndarray) -> np.ndarray:
        big = cv2.resize(np.clip(texture, 0, 255).astype(np.uint8), (FACE, FACE), cv2.INTER_CUBIC)
        canvas = np.full((CANVAS, CANVAS, 3), 110, np.uint8)
        at = (CANVAS - FACE) // 2
        canvas[at : at + FACE, at : at + FACE] = np.where(self.inside[..., None], big, 110)
        box = np.array([[at + 10, at + 10, at + FACE - 10, at + FACE - 10]])
        return self.embedder.embed(canvas, box)[0]

    def matched(self, mean: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``mean`` with the target's colour statistics, as the filter draws it."""
        from streamdeid.obscure.surrogate_blend import colour_transfer

        gain, bias = colour_transfer(mean, target, self.coverage)
        return (mean * gain + bias) * self.coverage[..., None]


def scores(gallery: Any, mean: np.ndarray, target: np.ndarray) -> list[float]:
    """Likeness of a draw's mean to the target by each cheap score (higher = more alike)."""
    from skimage.feature import hog, local_binary_pattern

    inside = gallery.mesh.coverage

    def lbp(t: np.ndarray) -> np.ndarray:
        codes = local_binary_pattern(t.mean(axis=2).astype(np.uint8), 8, 1, "uniform")
        cells = [
            np.bincount(
                codes[y : y + 8, x : x + 8][inside[y : y + 8, x : x + 8]].astype(int), None, 10
            )
            for y in range(0, 64, 8)
            for x in range(0, 64, 8)
        ]
        return np.concatenate([c / max(c.sum(), 1) for c in cells])

    def band(t: np.ndarray) -> np.ndarray:
        g = t.mean(axis=2) * inside
        v = ((cv2.GaussianBlur(g, (0, 0), 1) - cv2.GaussianBlur(g, (0, 0), 4)) * inside).ravel()
        v = v - v.mean()
        return v / max(float(np.linalg.norm(v)), 1e-6)

    la, lb = lbp(mean), lbp(target)
    return [
        float(gallery.descriptor(mean) @ gallery.descriptor(target)),
        -float(((la - lb) ** 2 / (la + lb + 1e-9)).sum()),
        -float(np.linalg.norm(hog(mean.mean(axis=2)) - hog(target.mean(axis=2)))),
        float(band(mean) @ band(target)),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="research data folder (default: ../shared/data)")
    p.add_argument("--seed", type=int, default=17, help="seed of the anonymization run")
    p.add_argument("--draws", type=int, default=40, help="random draws per track")
    args = p.parse_args(argv)

    import streamdeid

    root = data_root(args.data)
    src = need_file(root, CLIP)
    with tempfile.TemporaryDirectory(prefix="sdeid-draw-oracle-") as tmp_name:
        tmp = Path(tmp_name)
        dev_portraits(root, tmp / "site")
        config = streamdeid.load_config("default").override(
            {"obscure.method": "surrogate", "obscure.surrogate_gallery": str(tmp / "site")}
        )
        with Trace() as trace:
            seeded_run(src, tmp / "out.mp4", config, args.seed)
    gallery = trace.filter.gallery
    entries = gallery._entries
    k = gallery.k
    site = [i for i, e in entries.items() if e.site]
    tracks = [i for i, e in entries.items() if not e.site and gallery._counts(e)]
    oracle = Oracle(gallery.mesh.coverage)
    own = {i: oracle.embed(entries[i].texture) for i in site + tracks}
    every = np.mean([entries[i].texture for i in site], axis=0)
    rng = np.random.default_rng(0)
    names = ["gallery descriptor (used)", "LBP chi-square", "HOG", "band-pass"]
    rows, nearest_contributor, rhos = [], [], []
    for t in tracks:
        target = entries[t].texture
        closeness, likeness = [], []
        for _ in range(args.draws):
            ids = rng.choice(site, k, replace=False)
            mean = np.mean([entries[i].texture for i in ids], axis=0)
            e = oracle.embed(oracle.matched(mean, target))
            closeness.append(-float(np.linalg.norm(e - own[t])))
            nearest_contributor.append(min(float(np.linalg.norm(e - own[i])) for i in ids))
            likeness.append(scores(gallery, mean, target))
        d = -np.array(closeness)
        all_mean = float(np.linalg.norm(oracle.embed(oracle.matched(every, target)) - own[t]))
        rho = [float(spearmanr(closeness, np.array(likeness)[:, j])[0]) for j in range(len(names))]
        rhos.append(rho)
        rows.append(
            [
                t,
                f"{np.median(d):.2f}",
                f"{d.min():.2f}",
                f"{(d < 0.6).mean():.0%}",
                f"{all_mean:.2f}",
            ]
            + [f"{r:+.2f}" for r in rho]
        )
    print(f"seed {args.seed}: {len(tracks)} tracks, {len(site)} portraits, k = {k}\n")
    print(
        table(
            ["track", "oracle median", "min", "< 0.6", "mean of all"] + [f"rho {n}" for n in names],
            rows,
        )
    )
    mean_rho = ", ".join(f"{n} {r:+.2f}" for n, r in zip(names, np.mean(rhos, axis=0), strict=True))
    print(f"\nmean rho over tracks: {mean_rho}")
    near = np.array(nearest_contributor)
    print(
        f"distance of a draw to its nearest contributor: median {np.median(near):.2f}, "
        f"below 0.6 in {(near < 0.6).mean():.0%} of {len(near)} draws"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
