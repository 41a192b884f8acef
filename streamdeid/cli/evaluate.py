"""``streamdeid eval``: the privacy report (the measurements are in :mod:`streamdeid.evaluate`).

Results are the command's output, so tables go to stdout; progress bars and notes go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from streamdeid.argtypes import finite_number, non_negative_int, positive_int
from streamdeid.cli._common import (
    Subparsers,
    add_common,
    bar_per_file,
    one_bar,
    show_progress,
    write_json,
)
from streamdeid.errors import ConfigError, InputNotFoundError, StreamDeidError

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  streamdeid eval wider images/ wider_face_val_bbx_gt.txt --config default
      detector recall per WIDER difficulty, false positives and ms per image
  streamdeid eval video lobby.mp4 lobby_anon.mp4
      faces dlib's HOG detector finds in lobby.mp4 that it still finds in lobby_anon.mp4, and
      how many of those dlib re-identifies (the target for faces >= 40 px is zero)
  streamdeid eval video originals/ anonymized/ --detector blazeface --every 5 --json leak.json
      every video of a folder against the file of the same name in the other
  streamdeid eval run lobby.mp4 --config cctv
      anonymize to a temporary file, then run the video check on it
  streamdeid eval run lobby.mp4 --utility
      also what the output keeps: share of faces an independent detector still finds (for
      blur/pixelate/solid low is good; for a replacement face high), rank-1 identification
      among the people of the clip, and how far dlib's 68 landmarks moved
"""


def register(sub: Subparsers) -> None:
    """Add ``eval``; each of its modes (wider, video, run) sets its own handler."""
    ev = sub.add_parser(
        "eval",
        help="measure privacy: detector recall (WIDER) and leaks in anonymized videos",
        description="Measure how well faces are found and hidden: 'wider' scores the detector "
        "on annotated images; 'video' checks an anonymized video against its original with an "
        "independent detector and dlib re-identification; 'run' anonymizes then checks.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    modes = ev.add_subparsers(dest="eval_command", metavar="MODE", required=True)
    _register_wider(modes)
    _register_video(modes)
    _register_run(modes)


def _register_wider(modes: Subparsers) -> None:
    wi = modes.add_parser(
        "wider",
        help="detector recall on images with WIDER FACE ground truth",
        description="Run the configured detector on each image as the pipeline does and "
        "report recall per difficulty (easy/medium/hard when the ground truth has the labels, "
        "else 'all'; a face is found at IoU >= 0.3; invalid faces skipped), false positives "
        "per image and ms per image. GT_FILE: the official wider_face_val_bbx_gt.txt format, "
        "or the research subset's JSON.",
    )
    wi.add_argument("images", metavar="IMAGES_DIR", help="folder holding the images")
    wi.add_argument("gt", metavar="GT_FILE", help="ground truth (WIDER .txt or subset .json)")
    wi.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config whose detector is measured (default: built-in)",
    )
    wi.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images")
    _add_output(wi)
    add_common(wi)
    wi.set_defaults(handler=_cmd_wider)


def _register_video(modes: Subparsers) -> None:
    vi = modes.add_parser(
        "video",
        help="leak check: anonymized video against its original",
        description="An independent detector (default: dlib's HOG face detector) finds faces "
        "in ORIGINAL; a face is still "
        "detectable when the detector finds a face at the same place (IoU >= 0.3) in the "
        "ANONYMIZED frame with the same timestamp. With dlib (pip install 'streamdeid[eval]') "
        "the faces found in the output are also re-identified against identities clustered "
        "from the original faces, and --utility adds what the output keeps (faces found again, "
        "rank-1 identification, landmark displacement). Two folders: every video is paired "
        "with the file of the same name.",
    )
    vi.add_argument("original", metavar="ORIGINAL", help="original video, or a folder of them")
    vi.add_argument("anonymized", metavar="ANONYMIZED", help="anonymized video, or a folder")
    vi.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config the output was made with: --detector centerface/blazeface warns when it "
        "ran the same detector, and --utility names the published figure for its "
        "obscure.method (default: built-in config; the default --detector dlib is "
        "independent of every config)",
    )
    _add_check_options(vi)
    _add_output(vi)
    add_common(vi)
    vi.set_defaults(handler=_cmd_video)


def _register_run(modes: Subparsers) -> None:
    rn = modes.add_parser(
        "run",
        help="anonymize INPUT to a temporary file, then run the video check",
        description="Anonymize INPUT with the config (as 'streamdeid run' would), then check "
        "the result against INPUT like 'eval video'.",
    )
    rn.add_argument("input", metavar="INPUT", help="video file")
    rn.add_argument("-c", "--config", metavar="FILE", help="anonymization config")
    rn.add_argument(
        "--keep", metavar="OUTPUT", help="write the anonymized video here instead of a temp file"
    )
    _add_check_options(rn)
    _add_output(rn)
    add_common(rn)
    rn.set_defaults(handler=_cmd_run)


def _add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detector",
        choices=["dlib", "centerface", "blazeface"],
        help="independent detector (default: dlib, HOG frontal face detector, needs "
        "streamdeid[eval]: independent of every config and with few false positives; "
        "BlazeFace fires on hands and clothes, which then count as leaks)",
    )
    p.add_argument(
        "--threshold",
        type=finite_number,
        metavar="P",
        help="its minimum score (default: dlib 0.0, its adjust_threshold, any number, lower "
        "finds more; CenterFace 0.4 and BlazeFace 0.5, in (0, 1])",
    )
    p.add_argument(
        "--dlib-upsample",
        type=non_negative_int,
        metavar="N",
        help="dlib: double the image N times before the HOG scan (default 1: faces from "
        "~40 px; each step halves that and costs ~4x the time)",
    )
    p.add_argument(
        "--max-height",
        type=non_negative_int,
        metavar="PX",
        help="dlib: downscale taller frames to this height first, boxes scaled back (default "
        "720, 0 = never); faces then need ~40 px x (frame height / 720), e.g. 60 px at 1080p",
    )
    p.add_argument(
        "--reid",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-identification check with dlib (default: on; needs streamdeid[eval])",
    )
    p.add_argument(
        "--utility",
        action="store_true",
        help="also print the utility table: faces kept (found again by the independent "
        "detector), rank-1 identification among the clip's people (chance 1/k), and landmark "
        "displacement (dlib 68 points in the original's box, in outer-eye-corner distances); "
        "needs streamdeid[eval]",
    )
    p.add_argument(
        "--every",
        type=positive_int,
        metavar="N",
        help="check every N-th original frame (default: all frames of clips up to 300 "
        "frames, else a step that checks about 300)",
    )


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="OUT.json", help="also write every number to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        write_json(path, payload, what="JSON file")


def _cmd_wider(args: argparse.Namespace) -> int:
    from streamdeid.config import load_config
    from streamdeid.evaluate.report import format_wider
    from streamdeid.evaluate.wider import wider_recall

    config = load_config(args.config)
    with one_bar(Path(args.gt).name, show_progress(args)) as bar:
        report = wider_recall(args.images, args.gt, config, limit=args.limit, progress=bar)
    print(format_wider(report, args.config or "built-in default"))
    _write_json(args.json, {"config": args.config, **report.to_dict()})
    return 0


def _check_detector(args: argparse.Namespace, config: Any) -> tuple[str, bool]:
    from streamdeid.evaluate.independent import (
        backends_used,
        check_detector_options,
        independent_for,
    )

    name = args.detector or independent_for(config)[0]
    check_detector_options(
        name, args.threshold, dlib_upsample=args.dlib_upsample, max_height=args.max_height
    )
    independent = name not in backends_used(config)
    if not independent:
        log.warning(
            "the anonymizing config uses %s too: faces it misses in the run it may also miss "
            "here, so the check can under-count leaks",
            name,
        )
    return name, independent


def _video_reports(
    args: argparse.Namespace, pairs: list[tuple[Path, Path]], detector: str
) -> list[Any]:
    from streamdeid.evaluate.video import video_leak_many

    failed: list[str] = []

    def on_error(path: Path, error: StreamDeidError) -> None:
        failed.append(path.name)
        log.error("%s: %s", path.name, error)

    with bar_per_file(show_progress(args)) as progress_for:
        reports = video_leak_many(
            pairs,
            progress_for=progress_for,
            on_error=on_error if len(pairs) > 1 else None,
            detector=detector,
            threshold=args.threshold,
            dlib_upsample=args.dlib_upsample,
            max_height=args.max_height,
            reid=args.reid,
            landmarks=args.utility,
            every=args.every,
        )
    if failed:
        print(f"streamdeid: {len(failed)} of {len(pairs)} videos failed", file=sys.stderr)
    return reports


def _print_video(
    args: argparse.Namespace, reports: list[Any], independent: bool, method: str
) -> None:
    from streamdeid.evaluate.leak_report import combine
    from streamdeid.evaluate.report import format_utility, format_video

    print(format_video(reports, independent))
    if args.utility:
        print()
        print(format_utility(reports, method))
    if reports:
        _write_json(
            args.json,
            {
                "independent": independent,
                "reports": [r.to_dict() for r in reports],
                "total": combine(reports).to_dict(),
            },
        )


def _check_extras(args: argparse.Namespace) -> None:
    """Fail in a second, before any decoding, when dlib is needed and missing."""
    if args.reid:
        from streamdeid.evaluate.reid import check_available

        check_available()
    if args.utility:
        from streamdeid.evaluate.landmarks import check_available as landmarks_available

        landmarks_available()


def _cmd_video(args: argparse.Namespace) -> int:
    from streamdeid.config import load_config
    from streamdeid.evaluate.video import pair_folders

    config = load_config(args.config)
    _check_extras(args)
    orig, anon = Path(args.original), Path(args.anonymized)
    for p in (orig, anon):
        if not p.exists():
            raise InputNotFoundError(
                f"input not found: expected an existing file or folder, got '{p}'"
            )
    if orig.is_dir():
        pairs = pair_folders(orig, anon)
    elif anon.is_dir():
        raise ConfigError(f"'{orig}' is a file, so ANONYMIZED must be a file too, got a folder")
    else:
        pairs = [(orig, anon)]
    name, independent = _check_detector(args, config)
    reports = _video_reports(args, pairs, name)
    _print_video(args, reports, independent, config.obscure.method)
    return 0 if len(reports) == len(pairs) else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from streamdeid.api import anonymize_file
    from streamdeid.config import load_config

    config = load_config(args.config)
    _check_extras(args)
    src = Path(args.input)
    if not src.is_file():
        raise InputNotFoundError(f"input not found: expected an existing video file, got '{src}'")
    name, independent = _check_detector(args, config)
    with tempfile.TemporaryDirectory(prefix="streamdeid-eval-") as tmp:
        # GIF output would re-palettise the whole picture; H.264 keeps the comparison fair.
        suffix = ".mp4" if src.suffix.lower() == ".gif" else src.suffix
        out = Path(args.keep) if args.keep else Path(tmp) / f"anonymized{suffix}"
        if args.keep and out.exists():
            raise ConfigError(f"output '{out}' exists: remove it first or choose another --keep")
        with one_bar(f"anonymize {src.name}", show_progress(args)) as bar:
            stats = anonymize_file(src, out, config, progress=bar)
        print(stats.summary(), file=sys.stderr)
        reports = _video_reports(args, [(src, out)], name)
    _print_video(args, reports, independent, config.obscure.method)
    return 0
