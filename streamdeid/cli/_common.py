"""What the commands share: help text, common flags, logging, errors, Ctrl-C and progress bars.

Every command module imports these from here, never from another command, so the commands do
not depend on each other and the CLI has no import cycle. Expected failures print one line,
``streamdeid: error: …``, and return a non-zero code; a traceback appears only with ``--debug``.
Exit codes: 0 ok, 1 failed, 2 bad usage or config, 130 interrupted (the output written so far
is closed and playable).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from streamdeid.config import Config, bundled_configs, load_config
from streamdeid.errors import ConfigError, StreamDeidError

log = logging.getLogger("streamdeid")

# What ``parser.add_subparsers()`` returns; each command module's ``register`` adds to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# A command: parsed arguments in, exit code out (expected failures raise StreamDeidError).
Handler: TypeAlias = Callable[[argparse.Namespace], int]

EXAMPLES = """\
examples:
  streamdeid run lobby.mp4 -o lobby_anon.mp4
      mask every face with the default config:
      {default}
  streamdeid run archive/ -o archive_anon/ --config cctv
      every video and image in a folder, tuned for small distant CCTV faces
  streamdeid run cam.mkv -o out.mkv --method solid --detect-every 2 --stats stats.json
      solid boxes, detector on every 2nd frame (tracks and the next run cover the others)
  streamdeid batch archive/ -o archive_anon/ --address auto
      every file on a Ray cluster, long videos cut into chunks (pip install 'streamdeid[cluster]')
  streamdeid validate-config my.yaml
      check a config file and print the full resolved settings
  streamdeid keygen reviewer
      reviewer key pair: reviewer.pub for the anonymizer, reviewer.key (passphrase) to review
  streamdeid run cam.mp4 -o out.mp4 --recipient reviewer.pub
      reversible: faces masked, originals encrypted into out.mp4.sdeid
  streamdeid reveal out.mp4 -o review.mkv --key reviewer.key --track 7 --signing-key site.sign.key
      restore one person (lossless .mkv), after a signed entry in the recording's audit log

configs: {configs}
"""


def bundled_names() -> str:
    """The bundled config names, for help texts."""
    return ", ".join(bundled_configs()) or "(none found)"


def _default_summary() -> str:
    """What the default config does, read from it (a help text that cannot drift from it)."""
    try:
        summary = load_config("default").summary()
    except ConfigError as e:  # a broken install must still print --help
        summary = f"(default config unreadable: {e})"
    return textwrap.fill(summary, width=94, subsequent_indent="      ")


def _default_config() -> Config:
    """The bundled default config for help texts; the model's defaults if it cannot be read
    (a broken install must still print --help)."""
    try:
        return load_config("default")
    except ConfigError:
        return Config()


def confidence_defaults() -> str:
    """The backends' thresholds in the default config, so help cannot drift from it."""
    d = _default_config().detector
    return (
        f"RetinaFace {d.retinaface.confidence:g} (the default detector), CenterFace "
        f"{d.centerface.confidence:g}, BlazeFace {d.confidence:g}"
    )


def detect_every_default() -> int:
    """Files' detector schedule in the default config."""
    return _default_config().pipeline.detect_every


def examples() -> str:
    """The examples shown by ``streamdeid --help`` and ``streamdeid run --help``."""
    return EXAMPLES.format(configs=bundled_names(), default=_default_summary())


def add_common(p: argparse.ArgumentParser) -> None:
    """``-v`` and ``--debug``, which every command takes (after its own arguments)."""
    p.add_argument("-v", "--verbose", action="store_true", help="log more (INFO)")
    p.add_argument("--debug", action="store_true", help="log everything and show tracebacks")


def setup_logging(args: argparse.Namespace) -> None:
    """Set up logging once, before any command runs, at the level ``-v``/``--debug`` ask for.

    Commands with ``--log-format`` (``live``) log through the camera-aware formats of
    :mod:`streamdeid.live.logs`; JSON logs are at least INFO, as camera events are their point.
    """
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    fmt = getattr(args, "log_format", None)
    if fmt is None:
        logging.basicConfig(
            level=level,
            format="streamdeid: %(levelname)s: %(message)s",
            stream=sys.stderr,
            force=True,
        )
        return
    from streamdeid.live.logs import setup_logging as setup_live_logging

    if fmt == "json":
        level = min(level, logging.INFO)
    setup_live_logging(level, fmt)


# Flag (argparse dest) -> the config keys it overrides; --confidence sets every backend's.
_FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "method": ("obscure.method",),
    "shape": ("obscure.shape",),
    "surrogate_k": ("obscure.surrogate_k",),
    "surrogate_epsilon": ("obscure.surrogate_epsilon",),
    "surrogate_gallery": ("obscure.surrogate_gallery",),
    "mask_scale": ("obscure.mask_scale",),
    "detect_every": ("pipeline.detect_every",),
    "confidence": ("detector.backends.confidence",),  # config.CONFIDENCE_OF_BACKENDS
    "codec": ("encoder.codec",),
    "crf": ("encoder.crf",),
    "bitrate": ("encoder.bitrate",),
    "preset": ("encoder.preset",),
    "pix_fmt": ("encoder.pix_fmt",),
    "audio": ("encoder.audio",),
    "keep_exif": ("pipeline.keep_exif",),
    "recipient": ("reversible.recipients",),
    "lossy_regions": ("reversible.lossy",),
    "originals": ("reversible.originals",),
}


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config overrides from the flags of ``args``, for :meth:`Config.override`.

    One table for every command, so a flag that ``run`` and ``live`` share sets the same keys.
    A flag the command does not have, or did not get, is None, which overrides nothing.
    """
    out = {key: getattr(args, dest, None) for dest, keys in _FLAG_KEYS.items() for key in keys}
    # --recipient implies --reversible; None (not False) leaves the config's choice alone.
    reversible = getattr(args, "reversible", None) or out["reversible.recipients"]
    out["reversible.enabled"] = True if reversible else None
    return out


def write_json(path: str, payload: Any, what: str = "stats file") -> None:
    """Write a command's JSON report; a failure is one line naming the file."""
    try:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise StreamDeidError(f"cannot write {what} '{path}': {e.strerror}") from e


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command; expected failures become one line and their exit code, bugs a short note."""
    try:
        return handler(args)
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


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """First SIGINT/SIGTERM asks for a clean stop; a second SIGINT aborts the drain."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning(
            "%s received: finishing the current output cleanly (Ctrl-C again to abort)",
            signal.Signals(signum).name,
        )
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def progress_bar(label: str, enabled: bool) -> Any:
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr, or None when off."""
    if not enabled:
        return None
    from tqdm import tqdm  # only when a bar is drawn: keeps ``--help`` fast

    bar = tqdm(desc=label, unit="frame", dynamic_ncols=True, leave=False, file=sys.stderr)

    def update(done: int, total: int | None) -> None:
        if total and bar.total != total and done <= total:
            bar.total = total
        bar.update(done - bar.n)

    update.bar = bar  # type: ignore[attr-defined]
    return update


def close_bar(update: Any) -> None:
    """Close a bar made by :func:`progress_bar` (None, when bars are off, is fine)."""
    if update is not None:
        update.bar.close()


def show_progress(args: argparse.Namespace) -> bool:
    """Bars only on a terminal: in a log file or a pipe they would be noise."""
    return not args.no_progress and sys.stderr.isatty()


@contextmanager
def one_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A :func:`progress_bar` that is closed however the work ends."""
    bar = progress_bar(label, enabled)
    try:
        yield bar
    finally:
        close_bar(bar)


@contextmanager
def bar_per_file(enabled: bool) -> Iterator[Callable[[Path], Any]]:
    """``progress_for(path)`` for the library's folder functions: one bar per file.

    Each file's bar replaces the previous one, so only one is on screen, and the last is
    closed however the run ends.
    """
    bars: list[Any] = []

    def progress_for(path: Path) -> Any:
        for b in bars:
            close_bar(b)
        bars[:] = [progress_bar(path.name, enabled)]
        return bars[0]

    try:
        yield progress_for
    finally:
        for b in bars:
            close_bar(b)
