"""A picture of what ``--method surrogate`` does: input, blur and surrogate, one above the other.

Not in the README itself: the surrogate needs ``k + 1`` = 6 people, and the bundled sample has
two; the only scene with more that we can make (``streamdeid.testing.crowd``) uses LFW faces,
news photos published for research, which we do not ship. So the strip is made on your machine
(scikit-image, a dev dependency, holds the LFW faces; nothing is downloaded).

Example:
    .venv/bin/python benchmarks/surrogate_strip.py -o strip.png --frame 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from streamdeid import anonymize_file, load_config
from streamdeid.io.source import FileSource
from streamdeid.testing.crowd import crowd_clip


def frame_at(path: Path, index: int) -> np.ndarray:
    with FileSource(path) as source:
        for frame in source.frames():
            if frame.index == index:
                return frame.image
    raise SystemExit(f"{path.name}: expected a frame {index}, the clip is shorter")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default="surrogate_strip.png", help="PNG to write")
    p.add_argument("--frame", type=int, default=50, help="which frame of the 60-frame crowd clip")
    p.add_argument("--width", type=int, default=640, help="width of each picture in the strip")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "crowd.mp4"
        crowd_clip(clip, 60, (1280, 720))
        pictures = [frame_at(clip, args.frame)]
        for method in ("blur", "surrogate"):
            out = work / f"{method}.mp4"
            config = load_config("default").override({"obscure.method": method})
            anonymize_file(clip, out, config)
            pictures.append(frame_at(out, args.frame))
    height = round(args.width * 720 / 1280)
    strip = np.concatenate([cv2.resize(p, (args.width, height)) for p in pictures], axis=0)
    cv2.imwrite(args.output, strip)
    print(f"wrote {args.output}: input, blur, surrogate (frame {args.frame})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
