"""What the commands share: Ctrl-C handling and progress bars.

Every command module imports these from here, never from another command, so the commands do
not depend on each other and the CLI has no import cycle.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("streamdeid")


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
