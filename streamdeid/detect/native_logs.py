"""Keep native (C++) start-up chatter of TFLite/MediaPipe off the user's terminal."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def quiet_native_logs() -> None:
    # TFLite/absl log to stderr from C++; keep the terminal for our progress bar.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)


@contextmanager
def stderr_silenced() -> Iterator[None]:
    """Silence C++ start-up chatter (XNNPACK, absl) that bypasses Python logging.

    Only wraps graph creation and the first inference, never steady state, so a real native
    error later still reaches the user.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, embedded interpreters
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
