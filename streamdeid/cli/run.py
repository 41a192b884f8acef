"""``streamdeid run``: anonymize a video, an image, or every file of a folder.

The outputs are the result; the one-line summary per file and the progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from streamdeid.argtypes import positive_int
from streamdeid.cli._common import (
    Subparsers,
    add_common,
    bar_per_file,
    bundled_names,
    confidence_defaults,
    config_overrides,
    detect_every_default,
    examples,
    one_bar,
    show_progress,
    stop_on_signals,
    write_json,
)
from streamdeid.config import Config, load_config
from streamdeid.errors import ConfigError, StreamDeidError

log = logging.getLogger("streamdeid")


def register(sub: Subparsers) -> None:
    """Add ``run``; it shows the top-level examples too, as most users start here."""
    configs = bundled_names()
    run = sub.add_parser(
        "run",
        help="anonymize a video, an image, or every file in a folder",
        description="Anonymize INPUT into OUTPUT. A folder INPUT is processed file by file into "
        "the OUTPUT folder, keeping file names. Flags override the config file.",
        epilog=examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "input",
        metavar="INPUT",
        help="video file (mp4, mkv, avi, mov, ts, gif, …), image (jpg, png, …) or folder",
    )
    run.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output file (its extension picks the container) or folder",
    )
    run.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"YAML config file, or the name of a bundled one ({configs}); "
        "default: built-in defaults (same as 'default')",
    )
    _add_masking(run)
    _add_encoding(run)
    _add_reversible(run)
    o = run.add_argument_group("output and reporting")
    o.add_argument("-y", "--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("--stats", metavar="FILE.json", help="write a JSON report of the run")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(run)
    run.set_defaults(handler=cmd_run)


def _add_masking(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("masking")
    g.add_argument(
        "--method",
        choices=["blur", "pixelate", "solid", "surrogate"],
        help="how faces are obscured (default: blur, strength grows with face size; surrogate: "
        "blur, then the mean face of --surrogate-k other people of the video drawn over the "
        "face, in its pose)",
    )
    g.add_argument(
        "--surrogate-k",
        type=positive_int,
        metavar="K",
        help="surrogate: people averaged into each face, >= 2 (default 5); until K others "
        "have been seen a face stays blurred",
    )
    g.add_argument(
        "--surrogate-gallery",
        metavar="DIR",
        help="surrogate: a folder of portraits (one person per image, never people who may be "
        "filmed) that count as other people from the first frame; more faces get a surrogate, "
        "a few percent of them re-identifiable (README)",
    )
    g.add_argument(
        "--surrogate-epsilon",
        type=float,
        metavar="E",
        help="surrogate: noise dial, smaller = more noise on the face's texture and shape "
        "(default: none; not differential privacy)",
    )
    g.add_argument("--shape", choices=["box", "ellipse"], help="mask shape (default: box)")
    g.add_argument(
        "--mask-scale",
        type=float,
        metavar="X",
        help="grow each face box by this factor to cover hair and chin (default 1.3)",
    )
    g.add_argument(
        "--detect-every",
        type=positive_int,
        metavar="N",
        help="run the detector on every N-th frame (and the last); a frame in between is "
        "masked with its tracks and the faces of the runs before and after it "
        f"(default {detect_every_default()}; 1 looks at every frame)",
    )
    g.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help="minimum detector score, for every backend the config runs (defaults: "
        f"{confidence_defaults()}; lower masks more)",
    )


def _add_encoding(run: argparse.ArgumentParser) -> None:
    e = run.add_argument_group("encoding")
    e.add_argument(
        "--codec",
        choices=["h264", "h265", "vp9", "av1", "gif"],
        help="video codec (default: h264, or what the container needs)",
    )
    e.add_argument(
        "--crf", type=int, metavar="Q", help="constant quality, lower is better (default 20)"
    )
    e.add_argument(
        "--bitrate", type=int, metavar="BPS", help="target bitrate in bits/s (replaces --crf)"
    )
    e.add_argument(
        "--preset",
        metavar="NAME",
        help="encoder speed preset (default veryfast; live: ultrafast from 720p, superfast below)",
    )
    e.add_argument(
        "--pix-fmt", metavar="FMT", help="pixel format (default yuv420p; yuv444p for odd sizes)"
    )
    e.add_argument(
        "--audio", choices=["copy", "reencode", "drop"], help="audio handling (default copy)"
    )
    e.add_argument(
        "--keep-exif",
        action="store_true",
        default=None,
        help="images: keep EXIF metadata (default: stripped, it may hold GPS data)",
    )


def _add_reversible(run: argparse.ArgumentParser) -> None:
    r = run.add_argument_group("reversible masking (authorized review)")
    r.add_argument(
        "--reversible",
        action="store_true",
        default=None,
        help="also encrypt each face's original pixels into OUTPUT.sdeid, so a key "
        "holder can restore them with 'streamdeid reveal'",
    )
    r.add_argument(
        "--recipient",
        action="append",
        metavar="KEY.pub",
        help="reviewer public key (repeat for several); implies --reversible",
    )
    r.add_argument(
        "--lossy-regions",
        action="store_true",
        default=None,
        help="store per-region crops as JPEG q95 instead of lossless PNG (3x smaller)",
    )
    r.add_argument(
        "--originals",
        choices=["auto", "regions"],
        default=None,
        help="auto (default): keep the input's own packets when it is H.264/HEVC/VP9/AV1/..., "
        "bit-exact and about the input's size; regions: one encrypted crop per face and frame "
        "(10-100x larger; grants then need no package)",
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Anonymize; exit code 1 when any file of a folder failed (the others are written)."""
    config = load_config(args.config).override(config_overrides(args))
    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise StreamDeidError(f"input not found: expected an existing file or folder, got '{inp}'")
    show = show_progress(args)
    stop = threading.Event()
    with stop_on_signals(stop):
        if inp.is_dir():
            _check_overwrite_folder(inp, out, args.overwrite)
            results = _run_folder(inp, out, config, show, stop)
        else:
            if out.exists() and not args.overwrite:
                raise ConfigError(f"output '{out}' exists: pass --overwrite (-y) to replace it")
            results = [_run_file(inp, out, config, show, stop)]
    done = [r for r in results if not isinstance(r, StreamDeidError)]
    failed = len(results) - len(done)
    if args.stats:
        payload: Any = (
            done[0].to_dict()
            if len(results) == 1 and done
            else {"files": [r.to_dict() for r in done], "failed": failed}
        )
        write_json(args.stats, payload)
    if failed:
        print(f"streamdeid: {failed} of {len(results)} files failed", file=sys.stderr)
        return 1
    return 0


def _run_file(inp: Path, out: Path, config: Config, show: bool, stop: threading.Event) -> Any:
    from streamdeid.api import anonymize_file

    with one_bar(inp.name, show) as bar:
        stats = anonymize_file(inp, out, config, progress=bar, stop=stop)
    print(stats.summary(), file=sys.stderr)
    return stats


def _run_folder(
    inp: Path, out: Path, config: Config, show: bool, stop: threading.Event
) -> list[Any]:
    """Every file of ``inp``: a failed file is reported and counted, the others still run."""
    from streamdeid.api import RunStats, anonymize_folder

    results: list[Any] = []

    def report(path: Path, result: RunStats | StreamDeidError) -> None:
        results.append(result)
        if isinstance(result, StreamDeidError):
            log.error("%s: %s", path.name, result)
        else:
            log.info(result.summary())
            print(result.summary(), file=sys.stderr)

    with bar_per_file(show) as progress_for:
        anonymize_folder(inp, out, config, on_file=report, progress_for=progress_for, stop=stop)
    return results


def _check_overwrite_folder(inp: Path, out: Path, overwrite: bool) -> None:
    if out.resolve() == inp.resolve():
        raise ConfigError(f"output folder '{out}' is the input folder: refusing to overwrite")
    if out.is_dir() and not overwrite:
        from streamdeid.api import find_media

        clash = [p.name for p in find_media(inp) if (out / p.name).exists()]
        if clash:
            raise ConfigError(
                f"output '{out / clash[0]}' exists ({len(clash)} file(s) would be "
                "replaced): pass --overwrite (-y)"
            )
