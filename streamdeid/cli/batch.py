"""``streamdeid batch``: many files, and long files in chunks, on a Ray cluster.

Needs the ``cluster`` extra (Ray); without it the command says what to install and exits 2.
The outputs are the result; progress, the summary and each failure go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from streamdeid.argtypes import positive_float
from streamdeid.cli._common import (
    Subparsers,
    add_common,
    bundled_names,
    config_overrides,
    show_progress,
    stop_on_signals,
)
from streamdeid.config import load_config

EPILOG = """\
examples:
  streamdeid batch archive/ -o archive_anon/
      every video and image below archive/, on a local Ray instance (one worker per core)
  streamdeid batch cams.txt -o anon/ --address auto --chunk-seconds 120
      the paths or URLs listed in cams.txt, on the Ray cluster this node belongs to
  streamdeid batch archive/ -o archive_anon/ --resume
      continue after a crash or Ctrl-C: finished files and chunks are not redone
  streamdeid batch archive/ -o anon/ --recipient reviewer.pub
      reversible: one OUTPUT.sdeid per output; these files run whole, not in chunks

Every node must run streamdeid with the same Ray version and read the inputs at the same paths
(or URLs); only the machine running this command writes OUT_DIR. OUT_DIR gets
streamdeid-batch.sqlite (the manifest: state, attempts, stats and SHA-256 of every file and
chunk) and streamdeid-batch.json (the report, with per-file stats). Exit code 1 when a file
failed (the others are written), 2 for bad usage or without Ray, 130 after Ctrl-C.
"""


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "batch",
        help="anonymize many files on a Ray cluster (long videos in chunks)",
        description="Anonymize every INPUT into OUT_DIR on a Ray cluster: a local one by "
        "default, or the cluster at --address. Videos longer than about twice --chunk-seconds "
        "are cut at keyframes, run in parallel and joined without re-encoding. Needs the "
        "cluster extra: pip install 'streamdeid[cluster]'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video or image file, folder (searched recursively), or a text file listing "
        "paths or URLs, one per line",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"YAML config file, or the name of a bundled one ({bundled_names()})",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join: 'auto' (this node's cluster), HOST:PORT or "
        "ray://HOST:10001; default: start a local Ray instance for this run",
    )
    p.add_argument(
        "--chunk-seconds",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="cut videos into chunks of about S seconds at keyframes (default 60)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the batch whose manifest is in OUT_DIR"
    )
    p.add_argument(
        "--recipient",
        action="append",
        metavar="KEY.pub",
        help="reversible masking for this reviewer's public key (repeat for several): each "
        "output gets OUTPUT.sdeid; such files run whole, one task per file, not in chunks",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(p)
    p.set_defaults(handler=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch; exit code 1 when any file failed (the others are written)."""
    from streamdeid.batch import run_batch

    config = load_config(args.config).override(config_overrides(args))
    stop = threading.Event()
    bar = _Bar(show_progress(args))
    try:
        with stop_on_signals(stop):
            report = run_batch(
                args.inputs,
                args.output,
                config,
                address=args.address,
                chunk_seconds=args.chunk_seconds,
                resume=args.resume,
                progress=bar.update,
                stop=stop,
            )
    finally:
        bar.close()
    print(report.summary(), file=sys.stderr)
    for f in report.failed:
        print(f"  failed: {f.input}: {f.error}", file=sys.stderr)
    print(f"report: {args.output}/streamdeid-batch.json", file=sys.stderr)
    return 1 if report.failed else 0


class _Bar:
    """One tqdm bar over the frames of the batch, with files and chunks in its label."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm  # only when drawn: keeps --help fast

            self._bar = tqdm(unit="frame", dynamic_ncols=True, file=sys.stderr, total=0)

    def update(self, p: Any) -> None:
        if self._bar is None:
            return
        self._bar.set_description(
            f"files {p.files_done + p.files_failed}/{p.files_total}"
            + (f" chunks {p.chunks_done}/{p.chunks_total}" if p.chunks_total else "")
            + (f" failed {p.files_failed}" if p.files_failed else ""),
            refresh=False,
        )
        if p.frames_total != self._bar.total:
            self._bar.total = p.frames_total
        self._bar.update(p.frames_done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
