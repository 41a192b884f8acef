"""Command line: ``streamdeid run``, ``streamdeid validate-config``.

Expected failures print one line, ``streamdeid: error: …``, and return a non-zero code; a
traceback appears only with ``--debug``. Exit codes: 0 ok, 1 failed, 2 bad usage or config,
130 interrupted (the output written so far is closed and playable).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamdeid import __version__
from streamdeid.argtypes import positive_int
from streamdeid.cli._common import close_bar, progress_bar, stop_on_signals
from streamdeid.config import Config, bundled_configs, load_config
from streamdeid.errors import ConfigError, StreamDeidError

log = logging.getLogger("streamdeid")

EXAMPLES = """\
examples:
  streamdeid run lobby.mp4 -o lobby_anon.mp4
      mask every face with the default config:
      {default}
  streamdeid run archive/ -o archive_anon/ --config cctv
      every video and image in a folder, tuned for small distant CCTV faces
  streamdeid run cam.mkv -o out.mkv --method solid --detect-every 2 --stats stats.json
      solid boxes, detector on every 2nd frame (tracks and the next run cover the others)
  streamdeid validate-config my.yaml
      check a config file and print the full resolved settings
  streamdeid keygen reviewer
      reviewer key pair: reviewer.pub for the anonymizer, reviewer.key (passphrase) to review
  streamdeid run cam.mp4 -o out.mp4 --recipient reviewer.pub
      reversible: faces masked, originals encrypted into out.mp4.sdeid
  streamdeid reveal out.mp4 -o review.mkv --key reviewer.key --track 7
      restore one person (lossless .mkv); logged in out.mp4.audit.jsonl

configs: {configs}
"""


def _default_summary() -> str:
    """What the default config does, read from it (a help text that cannot drift from it)."""
    try:
        summary = load_config("default").summary()
    except ConfigError as e:  # a broken install must still print --help
        summary = f"(default config unreadable: {e})"
    return textwrap.fill(summary, width=94, subsequent_indent="      ")


def build_parser() -> argparse.ArgumentParser:
    configs = ", ".join(bundled_configs()) or "(none found)"
    examples = EXAMPLES.format(configs=configs, default=_default_summary())
    parser = argparse.ArgumentParser(
        prog="streamdeid",
        description="Anonymize faces in video files and images: detect, track and obscure every "
        "face, keeping frame count, timestamps, resolution and audio.",
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamdeid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="anonymize a video, an image, or every file in a folder",
        description="Anonymize INPUT into OUTPUT. A folder INPUT is processed file by file into "
        "the OUTPUT folder, keeping file names. Flags override the config file.",
        epilog=examples,
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
    g = run.add_argument_group("masking")
    g.add_argument(
        "--method",
        choices=["blur", "pixelate", "solid"],
        help="how faces are obscured (default: blur, strength grows with face size)",
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
        "(default 3; 1 looks at every frame)",
    )
    g.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help="minimum detector score, for every backend the config runs (defaults: "
        "CenterFace 0.2, BlazeFace 0.3; lower masks more)",
    )
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
        "--preset", metavar="NAME", help="encoder speed preset (default veryfast; live: superfast)"
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
        help="store regions as JPEG q95 instead of lossless PNG (3x smaller)",
    )
    o = run.add_argument_group("output and reporting")
    o.add_argument("-y", "--overwrite", action="store_true", help="replace existing outputs")
    o.add_argument("--stats", metavar="FILE.json", help="write a JSON report of the run")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_common(run)

    kg = sub.add_parser(
        "keygen",
        help="make a reviewer key pair (NAME.key, NAME.pub)",
        description="Make an X25519 key pair for reviewing reversible recordings. "
        "NAME.pub goes to the anonymizer (--recipient); NAME.key stays with the "
        "reviewer, encrypted with a passphrase, mode 0600.",
    )
    kg.add_argument("name", metavar="NAME", help="path prefix for NAME.key and NAME.pub")
    _add_passphrase(kg)
    _add_common(kg)

    rv = sub.add_parser(
        "reveal",
        help="restore masked faces of a reversible recording",
        description="Write a copy of VIDEO with the original faces restored for "
        "the tracks you choose (all that your key opens by default). A .mkv "
        "output is lossless. Every reveal is recorded in VIDEO.audit.jsonl.",
    )
    rv.add_argument("video", metavar="VIDEO", help="masked video made with --reversible")
    rv.add_argument("-o", "--output", required=True, help="revealed video (.mkv: lossless)")
    rv.add_argument(
        "--track",
        type=int,
        action="append",
        metavar="ID",
        help="restore only this track (repeat for several); see 'streamdeid tracks'",
    )
    _add_unlock(rv)
    _add_common(rv)

    gr = sub.add_parser(
        "grant",
        help="export a key that reveals one track only",
        description="Export a grant file that opens a single track (one "
        "person) of this recording and nothing else, to hand to someone.",
    )
    gr.add_argument("video", metavar="VIDEO")
    gr.add_argument("--track", type=int, required=True, metavar="ID")
    gr.add_argument("-o", "--output", required=True, metavar="FILE.grant")
    gr.add_argument("--key", required=True, metavar="KEY", help="reviewer private key")
    _add_passphrase(gr)
    _add_common(gr)

    tr = sub.add_parser(
        "tracks",
        help="list the tracks (people) of a reversible recording",
        description="List track ids with time ranges (no key needed) and "
        "optionally write a thumbnail of each from the masked video.",
    )
    tr.add_argument("video", metavar="VIDEO")
    tr.add_argument("--thumbnails", metavar="DIR", help="write track_ID.png crops here")
    _add_common(tr)

    au = sub.add_parser(
        "audit",
        help="verify the reveal audit log of a recording",
        description="Check the hash chain of VIDEO.audit.jsonl and print its "
        "head hash (keep it elsewhere to detect later truncation).",
    )
    au.add_argument("video", metavar="VIDEO")
    _add_common(au)

    from streamdeid.cli.evaluate import add_eval_parser

    add_eval_parser(sub, _add_common)

    from streamdeid.cli.live import add_live_parser

    add_live_parser(sub, _add_common)

    val = sub.add_parser(
        "validate-config",
        help="check a config file and print it resolved",
        description="Validate a YAML config (unknown keys and out-of-range "
        "values are errors) and print the full resolved settings.",
    )
    val.add_argument("config", metavar="FILE", help="YAML config file or bundled config name")
    _add_common(val)
    return parser


def _add_passphrase(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="read the key passphrase from FILE (else $STREAMDEID_PASSPHRASE, else a prompt)",
    )


def _add_unlock(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="KEY", help="reviewer private key (NAME.key)")
    p.add_argument(
        "--grant",
        action="append",
        metavar="FILE.grant",
        default=[],
        help="grant file from 'streamdeid grant' (repeatable)",
    )
    _add_passphrase(p)


def _passphrase(args: argparse.Namespace, confirm: bool = False) -> bytes:
    """Secrets only from a file, the environment or the terminal; never from argv (ps shows it)."""
    if args.passphrase_file:
        try:
            return Path(args.passphrase_file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise ConfigError(
                f"cannot read passphrase file '{args.passphrase_file}': {e.strerror}"
            ) from e
    env = os.environ.get("STREAMDEID_PASSPHRASE")
    if env:
        return env.encode()
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("passphrase: ").encode()
        if confirm and getpass.getpass("again: ").encode() != first:
            raise ConfigError("passphrases differ")
        return first
    raise ConfigError(
        "a passphrase is needed: expected --passphrase-file FILE, "
        "$STREAMDEID_PASSPHRASE or a terminal, got none"
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="log more (INFO)")
    p.add_argument("--debug", action="store_true", help="log everything and show tracebacks")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "obscure.method": args.method,
        "obscure.shape": args.shape,
        "obscure.mask_scale": args.mask_scale,
        "pipeline.detect_every": args.detect_every,
        "detector.confidence": args.confidence,
        "detector.centerface.confidence": args.confidence,
        "encoder.codec": args.codec,
        "encoder.crf": args.crf,
        "encoder.bitrate": args.bitrate,
        "encoder.preset": args.preset,
        "encoder.pix_fmt": args.pix_fmt,
        "encoder.audio": args.audio,
        "pipeline.keep_exif": args.keep_exif,
        "reversible.enabled": True if (args.reversible or args.recipient) else None,
        "reversible.recipients": args.recipient,
        "reversible.lossy": args.lossy_regions,
    }


def _cmd_run(args: argparse.Namespace) -> int:
    from streamdeid.api import RunStats, anonymize_file, anonymize_folder

    config = load_config(args.config).override(_overrides(args))
    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise StreamDeidError(f"input not found: expected an existing file or folder, got '{inp}'")
    show = not args.no_progress and sys.stderr.isatty()
    stop = threading.Event()
    results: list[Any] = []
    with stop_on_signals(stop):
        if inp.is_dir():
            _check_overwrite_folder(inp, out, args.overwrite)

            def report(path: Path, result: RunStats | StreamDeidError) -> None:
                results.append(result)
                if isinstance(result, StreamDeidError):
                    log.error("%s: %s", path.name, result)
                else:
                    log.info(result.summary())
                    print(result.summary(), file=sys.stderr)

            bars: list[Any] = []

            def progress_for(path: Path) -> Any:
                for b in bars:
                    close_bar(b)
                bars[:] = [progress_bar(path.name, show)]
                return bars[0]

            try:
                anonymize_folder(
                    inp, out, config, on_file=report, progress_for=progress_for, stop=stop
                )
            finally:
                for b in bars:
                    close_bar(b)
        else:
            if out.exists() and not args.overwrite:
                raise ConfigError(f"output '{out}' exists: pass --overwrite (-y) to replace it")
            bar = progress_bar(inp.name, show)
            try:
                stats = anonymize_file(inp, out, config, progress=bar, stop=stop)
            finally:
                close_bar(bar)
            results.append(stats)
            print(stats.summary(), file=sys.stderr)
    done = [r for r in results if not isinstance(r, StreamDeidError)]
    failed = len(results) - len(done)
    if args.stats:
        payload: Any = (
            done[0].to_dict()
            if len(results) == 1 and done
            else {"files": [r.to_dict() for r in done], "failed": failed}
        )
        try:
            Path(args.stats).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            raise StreamDeidError(f"cannot write stats file '{args.stats}': {e.strerror}") from e
    if failed:
        print(f"streamdeid: {failed} of {len(results)} files failed", file=sys.stderr)
        return 1
    return 0


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


def _cmd_keygen(args: argparse.Namespace) -> int:
    from streamdeid.crypto import fingerprint, generate_keypair

    key, pub = Path(f"{args.name}.key"), Path(f"{args.name}.pub")
    public = generate_keypair(key, pub, _passphrase(args, confirm=True))
    print(
        f"wrote {key} (private, keep it safe) and {pub} (give to the anonymizer); "
        f"fingerprint {fingerprint(public)}",
        file=sys.stderr,
    )
    return 0


def _cmd_reveal(args: argparse.Namespace) -> int:
    from streamdeid.reveal import open_sidecar_for_review, reveal_file

    if args.key is None and not args.grant:
        raise ConfigError("reveal needs --key KEY or --grant FILE")
    out = Path(args.output)
    if out.exists():
        raise ConfigError(
            f"output '{out}' exists: remove it first (revealed footage is "
            "never overwritten silently)"
        )
    passphrase = _passphrase(args) if args.key else None
    reader, who = open_sidecar_for_review(
        args.video, key=args.key, passphrase=passphrase, grants=args.grant
    )
    stats = reveal_file(args.video, out, reader, who, tracks=args.track)
    span = (
        "" if stats.first_s is None else f" between {stats.first_s:.2f} s and {stats.last_s:.2f} s"
    )
    print(
        f"{out}: {stats.frames} frames, {stats.regions_restored} regions restored{span}; "
        f"logged in the audit log",
        file=sys.stderr,
    )
    return 0


def _cmd_grant(args: argparse.Namespace) -> int:
    from streamdeid.reveal import grant_track, open_sidecar_for_review

    reader, who = open_sidecar_for_review(args.video, key=args.key, passphrase=_passphrase(args))
    grant_track(args.video, reader, who, args.track, args.output)
    print(f"wrote {args.output}: opens track {args.track} of this recording only", file=sys.stderr)
    return 0


def _cmd_tracks(args: argparse.Namespace) -> int:
    from streamdeid.reveal import list_tracks, track_thumbnails

    tracks = list_tracks(args.video)
    print(f"{'track':>6}  {'from s':>8}  {'to s':>8}  {'regions':>7}")
    for t in tracks:
        print(
            f"{t.track_id:>6}  {float(t.first_pts * t.time_base):>8.2f}  "
            f"{float(t.last_pts * t.time_base):>8.2f}  {t.count:>7}"
        )
    if args.thumbnails:
        paths = track_thumbnails(args.video, tracks, args.thumbnails)
        print(f"wrote {len(paths)} thumbnails to {args.thumbnails}", file=sys.stderr)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from streamdeid import audit

    report = audit.verify(args.video)
    print(
        f"{audit.audit_path(args.video)}: chain intact, {report.entries} entries, "
        f"head {report.head_sha256}"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from streamdeid.cli.evaluate import run_eval

    return run_eval(args)


def _cmd_live(args: argparse.Namespace) -> int:
    from streamdeid.cli.live import cmd_live

    return cmd_live(args)


def _cmd_validate(args: argparse.Namespace) -> int:
    import yaml

    config: Config = load_config(args.config)
    print(f"# {args.config}: valid")
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    return 0


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="streamdeid: %(levelname)s: %(message)s", stream=sys.stderr, force=True
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args)
    commands = {
        "run": _cmd_run,
        "keygen": _cmd_keygen,
        "reveal": _cmd_reveal,
        "grant": _cmd_grant,
        "tracks": _cmd_tracks,
        "audit": _cmd_audit,
        "validate-config": _cmd_validate,
        "eval": _cmd_eval,
        "live": _cmd_live,
    }
    try:
        return commands[args.command](args)
    except StreamDeidError as e:
        if args.debug:
            log.exception("failed")
        print(f"streamdeid: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("streamdeid: error: aborted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(
            f"streamdeid: internal error: {type(e).__name__}: {e} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
