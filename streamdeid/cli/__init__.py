"""Command line: ``streamdeid run``, ``batch``, ``live``, ``eval``, the review commands,
``validate-config``.

Each command is a module with ``register(subparsers)``, which adds its parser and sets its
handler; what commands share (logging, errors and exit codes, Ctrl-C, progress bars) is in
:mod:`streamdeid.cli._common`. The CLI imports the library, never the reverse. Command modules
import only the standard library and light parts of streamdeid at import time, so that
``streamdeid --help`` does not load PyAV or the detectors.

Expected failures print one line, ``streamdeid: error: …``, and return a non-zero code; a
traceback appears only with ``--debug``. Exit codes: 0 ok, 1 failed, 2 bad usage or config,
130 interrupted (the output written so far is closed and playable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streamdeid import __version__
from streamdeid.cli import batch, evaluate, live, review, run, validate
from streamdeid.cli._common import examples, run_handler, setup_logging

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole parser; commands are listed in ``--help`` in the order registered here."""
    parser = argparse.ArgumentParser(
        prog="streamdeid",
        description="Anonymize faces in video files and images: detect, track and obscure every "
        "face, keeping frame count, timestamps, resolution and audio.",
        epilog=examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamdeid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (run, batch, review, evaluate, live, validate):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: parse, set up logging, run the command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args)
    return run_handler(args.handler, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
