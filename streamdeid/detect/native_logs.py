"""Keep native (C++) start-up chatter of TFLite/MediaPipe off the user's terminal."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def quiet_native_logs() -> None:
    # TFLite/absl log to stderr from C++; keep the terminal for our progress bar.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)


_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None


@contextmanager
def stderr_silenced() -> Iterator[None]:
    """Silence C++ start-up chatter (XNNPACK, absl) that bypasses Python logging.

    Only wraps graph creation and the first inference, never steady state, so a real native
    error later still reaches the user. Reference-counted under a lock: fd 2 is process-wide,
    and two detectors loading at once (two cameras) must not save each other's /dev/null as
    "the real stderr", which would silence the process for good.
    """
    global _depth, _saved_fd
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, embedded interpreters
        yield
        return
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved_fd = os.dup(fd)
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), fd)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_fd is not None:
                os.dup2(_saved_fd, fd)
                os.close(_saved_fd)
                _saved_fd = None
