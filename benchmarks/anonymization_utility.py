"""Privacy and utility per obscure method on the dev clips (issue #14): one table to compare.

For each method of ``--methods`` the default config, with ``obscure.method`` set to it,
anonymizes each clip; ``streamdeid.evaluate.video_leak`` then checks the output against the
original with an independent detector (default dlib HOG, which no config runs):

* re-identified: original faces whose face found again in the output has, as nearest original
  face embedding (dlib ResNet), one of the same person within 0.6 (people clustered from the
  original faces, chinese whispers 0.5). Only faces the detector found are embedded.
* rank-1: of the faces found again, those whose nearest original face is their own person,
  however far (closed-set identification among the clip's k people; chance 1/k).
* kept (utility): original faces the detector finds again at IoU ≥ 0.3 in the output frame
  with the same timestamp. Next to it the published detector-AP-kept figure (DeepPrivacy).
* landmarks: dlib's 68 points in the original's box on both pictures, mean distance divided
  by the original's outer-eye-corner distance, over the faces found in both.

A method the installed config does not accept (``surrogate`` before it lands) is skipped with a
line saying so. ``none`` is a plain re-encode: the anchor where everything is kept and found.
``--stills`` does the same on dlib's "johns" identity set (5 people × 11 aligned crops, each
padded onto a grey canvas): there the people are the folder names, not clusters.

Example:
    .venv/bin/python benchmarks/anonymization_utility.py --json utility.json
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import DEFAULT_DATA, REPO, data_root, machine_info, table, write_json

CLIPS = {
    "hamilton": "ageitgey__face_recognition/examples/short_hamilton_clip.mp4",
    "1080p": "timesler__facenet-pytorch/examples/video.mp4",
    "mot20": "davisking__dlib/dlib/test/ffmpeg_data/MOT20-05-raw_even_shorter.mp4",
}
SAMPLE = REPO / "samples" / "astronaut_pan.mp4"
JOHNS = "davisking__dlib/examples/johns"
STILL_PAD = 75  # px of grey around each 150-px crop: detectors need some picture round a face
DEFAULT_METHODS = "none,blur,pixelate,solid,surrogate"


def method_configs(methods: list[str]) -> list[tuple[str, Any]]:
    """(method, config) for each method the installed config accepts; ``none`` → None."""
    import streamdeid

    runs: list[tuple[str, Any]] = []
    for m in methods:
        if m == "none":
            runs.append((m, None))
            continue
        try:
            runs.append((m, streamdeid.load_config("default").override({"obscure.method": m})))
        except streamdeid.StreamDeidError as e:
            first = str(e).splitlines()[0]
            print(f"skipped method {m!r}: this streamdeid does not accept it ({first})")
    return runs


def site_gallery_run(tmp: Path, args: argparse.Namespace) -> tuple[str, Any]:
    """('surrogate+site', config): the surrogate method with a site gallery (research data,
    assembled in ``tmp``, never shipped)."""
    import streamdeid

    if args.site_gallery_dir:
        folder = Path(args.site_gallery_dir)
    else:
        folder = tmp / f"site-gallery-{args.site_gallery}"
        if not folder.exists():
            if args.site_gallery == "lfw":
                from streamdeid.testing.crowd import write_site_gallery

                write_site_gallery(folder, 30)
            else:
                dev_portraits(data_root(args.data), folder)
    overrides = {"obscure.method": "surrogate", "obscure.surrogate_gallery": str(folder)}
    return "surrogate+site", streamdeid.load_config("default").override(overrides)


DEV_PORTRAITS = [
    "ageitgey__face_recognition/examples/knn_examples/train/biden/biden.jpg",
    "ageitgey__face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
    "ageitgey__face_recognition/examples/knn_examples/train/obama/obama.jpg",
    "ageitgey__face_recognition/examples/knn_examples/train/rose_leslie/img1.jpg",
    "open-mmlab__mmpose/tests/data/300w/indoor_020.png",
    "open-mmlab__mmpose/tests/data/300w/indoor_029.png",
    "open-mmlab__mmpose/tests/data/cofw/001766.jpg",
    "open-mmlab__mmpose/tests/data/cofw/001805.jpg",
]
PASCAL = "davisking__dlib/examples/faces"


def dev_portraits(root: Path, folder: Path) -> None:
    """Colour portraits of people in none of the dev clips (alex_lacamoire and Lin-Manuel
    Miranda are left out: they perform in the Hamilton clip), plus each PASCAL face of dlib's
    ``training.xml`` cropped with one face size of margin."""
    import xml.etree.ElementTree as ET

    folder.mkdir(parents=True)
    for i, rel in enumerate(DEV_PORTRAITS):
        image = cv2.imread(str(root / rel))
        cv2.imwrite(str(folder / f"portrait{i:02d}.png"), image)
    n = 0
    for node in ET.parse(root / PASCAL / "training.xml").getroot().iter("image"):
        image = cv2.imread(str(root / PASCAL / node.get("file", "")))
        for box in node.iter("box"):
            x, y, w, h = (int(box.get(k, 0)) for k in ("left", "top", "width", "height"))
            crop = image[max(0, y - w) : y + h + w, max(0, x - w) : x + w + w]
            cv2.imwrite(str(folder / f"pascal{n:02d}.png"), crop)
            n += 1


def clip_paths(args: argparse.Namespace) -> list[Path]:
    """The dev clips when the data folder is there, else the bundled sample clip."""
    if args.data is None and not (DEFAULT_DATA / "MANIFEST.md").is_file():
        print(f"no research data at {DEFAULT_DATA}: using the bundled sample {SAMPLE.name}")
        return [SAMPLE]
    root = data_root(args.data)
    paths = []
    for name in args.clips:
        p = Path(name) if name not in CLIPS else root / CLIPS[name]
        if not p.is_file():
            sys.exit(f"error: clip {name!r}: expected a file at '{p}', found none")
        paths.append(p)
    return paths


def anonymize(src: Path, out: Path, config: Any) -> None:
    """The method's output for ``src``; ``none`` (config None) is a plain re-encode."""
    if config is None:
        from throughput import plain_transcode

        plain_transcode(src, out, ndarray_roundtrip=True)
    else:
        import streamdeid

        streamdeid.anonymize_file(src, out, config)


def check_clip(src: Path, method: str, config: Any, tmp: Path, args: argparse.Namespace) -> Any:
    from streamdeid.evaluate import video_leak

    out = tmp / f"{src.stem}.{method}.mp4"
    t0 = time.perf_counter()
    anonymize(src, out, config)
    t1 = time.perf_counter()
    report = video_leak(
        src, out, detector=args.detector, reid=True, landmarks=True, every=args.every
    )
    print(
        f"  {src.name} {method}: anonymized in {t1 - t0:.1f} s, checked in "
        f"{report.seconds:.1f} s ({report.frames_checked} frames, {report.all.faces} faces)",
        flush=True,
    )
    return report


def load_stills(root: Path) -> list[tuple[int, str, np.ndarray]]:
    """(person index, person, padded BGR crop) of every image of the johns identity set."""
    folder = root / JOHNS
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    if not people:
        sys.exit(f"error: expected one folder per person under '{folder}', found none")
    stills = []
    for k, person in enumerate(people):
        for f in sorted(person.glob("*.jpg")):
            crop = cv2.imread(str(f))
            padded = cv2.copyMakeBorder(
                crop, *(STILL_PAD,) * 4, cv2.BORDER_CONSTANT, value=(127, 127, 127)
            )
            stills.append((k, person.name, padded))
    return stills


def check_stills(
    stills: list[tuple[int, str, np.ndarray]], method: str, config: Any, tmp: Path, detector: Any
) -> Any:
    """Every still anonymized alone; the people are the folder names (not clusters)."""
    from streamdeid.evaluate.landmarks import LandmarkPredictor
    from streamdeid.evaluate.leak_report import VideoLeakReport
    from streamdeid.evaluate.measure import FaceLedger
    from streamdeid.evaluate.reid import FaceEmbedder

    t0 = time.perf_counter()
    ledger = FaceLedger(embedder=FaceEmbedder(), predictor=LandmarkPredictor())
    report = VideoLeakReport(
        original="johns stills",
        anonymized=method,
        detector=detector_name(detector),
        every=1,
        reid=True,
    )
    for n, (k, _person, image) in enumerate(stills):
        src, out = tmp / f"still{n}.png", tmp / f"still{n}.{method}.png"
        cv2.imwrite(str(src), image)
        if config is None:
            cv2.imwrite(str(out), image)
        else:
            import streamdeid

            streamdeid.anonymize_file(src, out, config)
        output = cv2.imread(str(out))
        boxes = detector.detect(image).xyxy.astype(np.float64)
        report.frames_checked += 1
        if len(boxes):
            found = detector.detect(output).xyxy.astype(np.float64)
            ledger.record(image, boxes, output, found, np.ones(4), label=k)
    ledger.tally(report)
    report.seconds = time.perf_counter() - t0
    print(f"  johns stills {method}: {report.seconds:.1f} s, {report.all.faces} faces", flush=True)
    return report


def detector_name(detector: Any) -> str:
    return getattr(detector, "name", "") or type(detector).__name__


def row(clip: str, method: str, r: Any) -> list[Any]:
    from streamdeid.evaluate.report import share
    from streamdeid.evaluate.utility import published

    u = r.utility
    rank1 = share(u.rank1, u.probes) + (f", chance 1/{u.identities}" if u.identities else "")
    moved = "–"
    if u.displacements:
        moved = f"{u.displacement_mean:.3f} / {u.displacement_median:.3f}"
    return [
        clip,
        method,
        r.all.faces,
        share(r.all.reidentified, r.all.faces),
        rank1,
        share(r.all.detectable, r.all.faces),
        moved,
        published(method) if method != "none" else "– (unmasked re-encode)",
    ]


HEADERS = [
    "clip",
    "method",
    "faces",
    "re-identified",
    "rank-1 (of faces found again)",
    "utility: kept by independent detector",
    "landmark displacement mean / median (IOD)",
    "published (AP kept)",
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default: ../shared/data from the repo)")
    ap.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated obscure methods, 'none' = plain re-encode (default "
        f"{DEFAULT_METHODS}); one the config rejects is skipped",
    )
    ap.add_argument(
        "--clips",
        nargs="+",
        default=list(CLIPS),
        help=f"{', '.join(CLIPS)} or video paths (default: all three)",
    )
    ap.add_argument("--every", type=int, default=1, help="check every N-th original frame")
    ap.add_argument("--detector", default="dlib", help="independent detector (dlib/centerface)")
    ap.add_argument("--stills", action="store_true", help="also the johns identity set")
    ap.add_argument("--no-video", action="store_true", help="skip the clips (with --stills)")
    ap.add_argument(
        "--site-gallery",
        choices=["dev", "lfw"],
        help="also run 'surrogate+site': the surrogate method with a site gallery made in the "
        "temp folder: 'dev' = 26 colour portraits of people not in the dev clips (MANIFEST "
        "section 4 and 3.2-3.4: four knn_examples people, 300-W, COFW, dlib's PASCAL faces), "
        "'lfw' = 30 LFW faces of scikit-image (25 px, grey)",
    )
    ap.add_argument(
        "--site-gallery-dir",
        metavar="DIR",
        help="as --site-gallery, with the portraits in DIR (one person per image; never people "
        "of the dev data)",
    )
    ap.add_argument("--keep", help="keep the outputs in this folder instead of a temp dir")
    ap.add_argument("--json", help="write all numbers to this JSON file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    from streamdeid.evaluate.reid import check_available

    check_available()  # dlib and its models (streamdeid[eval]) before any long work
    runs = method_configs([m.strip() for m in args.methods.split(",") if m.strip()])
    clips = [] if args.no_video else clip_paths(args)
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="sd-utility-") as tmpdir:
        tmp = Path(args.keep) if args.keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        if args.site_gallery or args.site_gallery_dir:
            runs.append(site_gallery_run(tmp, args))
        for src in clips:
            print(f"{src.name}:", flush=True)
            for method, config in runs:
                r = check_clip(src, method, config, tmp, args)
                rows.append(row(src.name, method, r))
                results.append({"clip": str(src), "method": method, **r.to_dict()})
        if args.stills:
            from streamdeid.evaluate import independent_detector

            stills = load_stills(data_root(args.data))
            detector = independent_detector(args.detector)
            for method, config in runs:
                r = check_stills(stills, method, config, tmp, detector)
                rows.append(row("johns 5×11 stills", method, r))
                results.append({"clip": "johns", "method": method, **r.to_dict()})
    print(
        f"\nindependent detector {args.detector}, every {args.every} frame(s); landmark "
        "displacement in outer-eye-corner distances of the original (IOD)\n"
    )
    print(table(HEADERS, rows))
    write_json(args.json, {"machine": machine_info(), "every": args.every, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
