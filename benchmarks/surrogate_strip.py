"""A picture of what ``--method surrogate`` does: input, blur and surrogate, one above the other.

``--scene sample`` (the default) uses the bundled sample, ``samples/astronaut_pan.mp4``. It holds
two people and a surrogate is the mean of ``k`` = 5 others, so the surrogate run is given a
site gallery of portraits we may redistribute (:mod:`_free_portraits`: fetched from the package
registry into ``--cache``, never committed). The picture is a frame where every surrogate kept
is the mean of site portraits only (not of another track of the clip, which may be the same
person tracked twice), and the script prints whose faces went into it.

``--scene crowd`` uses the eight-person scene of :mod:`streamdeid.testing.crowd` without a
gallery. Its faces are LFW news photos published for research (from scikit-image, a dev
dependency): made on your machine, not for shipping.

Example:
    .venv/bin/python benchmarks/surrogate_strip.py -o samples/surrogate_strip.jpg
    .venv/bin/python benchmarks/surrogate_strip.py --scene crowd -o crowd_strip.png --frame 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _free_portraits import CREDITS, free_portraits
from _surrogate_trace import Trace

from streamdeid import anonymize_file, load_config
from streamdeid.io.source import FileSource
from streamdeid.testing.crowd import crowd_clip

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "astronaut_pan.mp4"


def frame_at(path: Path, index: int) -> np.ndarray:
    with FileSource(path) as source:
        for frame in source.frames():
            if frame.index == index:
                return frame.image
    raise SystemExit(f"{path.name}: expected a frame {index}, the clip is shorter")


def site_only_frame(trace: Trace, wanted: int | None) -> tuple[int, list]:
    """``wanted``, or the frame with the most surrogates that all come from site portraits
    (site entries have negative ids); with each face box planned there (drawn, or undone as
    too close) and its contributors."""
    chosen = trace.filter.gallery._chosen
    planned = ("drawn", "undone as too close")
    per_frame = {
        f: [(s.box, tuple(chosen[s.track_id].identities)) for s in seen if s.what in planned]
        for f, seen in trace.faces.items()
    }
    if wanted is not None:
        return wanted, per_frame.get(wanted, [])
    good = [f for f, d in per_frame.items() if d and all(i < 0 for _, ids in d for i in ids)]
    if not good:
        raise SystemExit("no frame where every surrogate comes from site portraits only")
    best = max(good, key=lambda f: (len(per_frame[f]), -f))
    return best, per_frame[best]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="surrogate_strip.png", help="image to write")
    p.add_argument("--scene", choices=("sample", "crowd"), default="sample")
    p.add_argument("--frame", type=int, help="which frame (default: chosen, see above; crowd: 50)")
    p.add_argument("--width", type=int, default=640, help="width of each picture in the strip")
    p.add_argument(
        "--cache",
        default=str(Path.home() / ".cache" / "streamdeid-bench"),
        help="where the portraits' source package is kept",
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        overrides: dict[str, Any] = {"obscure.method": "surrogate"}
        if args.scene == "sample":
            clip = SAMPLE
            portraits = free_portraits(work / "gallery", Path(args.cache))
            overrides["obscure.surrogate_gallery"] = str(work / "gallery")
        else:
            clip = work / "crowd.mp4"
            crowd_clip(clip, 60, (1280, 720))
        outputs = {}
        for method in ("blur", "surrogate"):
            outputs[method] = work / f"{method}.mp4"
            config = load_config("default").override(
                overrides if method == "surrogate" else {"obscure.method": method}
            )
            with Trace() as trace:
                anonymize_file(clip, outputs[method], config)
        wanted = 50 if args.frame is None and args.scene == "crowd" else args.frame
        frame, contributors = site_only_frame(trace, wanted)
        site = sum(e.site for e in trace.filter.gallery._entries.values())
        if args.scene == "sample" and site != len(portraits):
            raise SystemExit("not every portrait gave a face: the names below would be wrong")
        pictures = [frame_at(path, frame) for path in (clip, *outputs.values())]
    h, w = pictures[0].shape[:2]
    height = round(args.width * h / w)
    strip = np.concatenate([cv2.resize(p, (args.width, height)) for p in pictures], axis=0)
    cv2.imwrite(args.output, strip)
    print(f"wrote {args.output}: input, blur, surrogate (frame {frame})")
    print(f"surrogates drawn there: {len(contributors)}")
    for face, ids in contributors:
        names = [CREDITS[-i - 1] if args.scene == "sample" and i < 0 else f"track {i}" for i in ids]
        where = ", ".join(str(round(v)) for v in face)
        print(f"  the face at ({where}) is the mean of:\n    " + "\n    ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
