"""What a live source URL points at, how it is opened, and what its failures mean.

Kept apart from the reader (:mod:`streamdeid.io.live_source`) because these are decisions about
a URL and an error, not about a thread: which FFmpeg input and options a URL needs, how to print
it without its password, and whether a failure means "nobody answered" (retry, and report a
timeout) or something a retry cannot fix.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from typing import Any

import av
import av.error

from streamdeid.errors import (
    ConfigError,
    InputNotFoundError,
    NotAVideoError,
    SourceError,
    SourceTimeoutError,
)
from streamdeid.media import NETWORK_SCHEMES, url_scheme

_WEBCAM_RE = re.compile(r"^webcam:(\d+)$")
_CREDENTIALS_RE = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_QUERY_RE = re.compile(r"(?i)([?&](?:password|passwd|pwd|pass|token|auth)=)[^&]*")
# Errors that mean "nobody answered": worth retrying, and reported as a timeout at the end.
_NO_ANSWER_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNRESET,
        errno.EPIPE,
    }
)
# Probe only half a second of stream on open: the default (up to 5 s) only refines the frame
# rate estimate, and every reconnect would pay it again.
_PROBE_OPTIONS = {"analyzeduration": "500000"}


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` and password-like query values replaced by ``***``.

    Example:
        >>> mask_url("rtsp://admin:hunter2@10.0.0.5:554/stream1")
        'rtsp://***@10.0.0.5:554/stream1'
    """
    return _SECRET_QUERY_RE.sub(r"\1***", _CREDENTIALS_RE.sub("***@", url))


@dataclass(frozen=True, slots=True)
class Target:
    """What to hand to ``av.open`` for a URL, and whether it behaves like a camera."""

    path: str
    format: str | None
    live: bool
    network: bool


def resolve(url: str) -> Target:
    """The input behind ``url``: a V4L2 device, a network stream, or an existing file.

    Raises:
        ConfigError: A scheme FFmpeg is not asked to read live.
        InputNotFoundError: A file path that does not exist.
    """
    match = _WEBCAM_RE.match(url)
    if match:
        return Target(f"/dev/video{match.group(1)}", "v4l2", live=True, network=False)
    if url.startswith("/dev/video"):
        return Target(url, "v4l2", live=True, network=False)
    scheme = url_scheme(url)
    if scheme in NETWORK_SCHEMES:
        return Target(url, None, live=True, network=True)
    if scheme == "file":
        url = url[len("file://") :]
    elif scheme:
        raise ConfigError(
            f"live source: expected rtsp://, another network URL, webcam:N, /dev/videoN or a "
            f"file, got scheme '{scheme}://' in '{mask_url(url)}'"
        )
    if not os.path.exists(url):
        raise InputNotFoundError(f"input not found: expected an existing file, got '{url}'")
    return Target(url, None, live=False, network=False)


def check_options(
    *,
    transport: str,
    open_timeout_s: float,
    read_timeout_s: float,
    backoff_initial_s: float,
    backoff_max_s: float,
    jitter: float,
    max_reconnects: int | None,
) -> None:
    """Reject reconnect settings that cannot work, before any thread starts.

    Raises:
        ConfigError: One line naming the setting, what was expected and what was given.
    """
    if transport not in ("tcp", "udp"):
        raise ConfigError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
    for name, value in (
        ("open_timeout_s", open_timeout_s),
        ("read_timeout_s", read_timeout_s),
        ("backoff_initial_s", backoff_initial_s),
        ("backoff_max_s", backoff_max_s),
    ):
        if not value > 0:
            raise ConfigError(f"{name}: expected a number of seconds > 0, got {value!r}")
    if backoff_max_s < backoff_initial_s:
        raise ConfigError(
            f"backoff_max_s: expected >= backoff_initial_s ({backoff_initial_s}), "
            f"got {backoff_max_s}"
        )
    if not 0 <= jitter <= 1:
        raise ConfigError(f"jitter: expected a fraction in [0, 1], got {jitter!r}")
    if max_reconnects is not None and max_reconnects < 0:
        raise ConfigError(f"max_reconnects: expected None or >= 0, got {max_reconnects!r}")


def open_video(
    target: Target, name: str, *, transport: str, open_timeout_s: float, read_timeout_s: float
) -> Any:
    """``av.open`` the target with the options a camera needs; it must have a video stream.

    RTSP gets its transport and a socket timeout: without one, a camera that stops sending
    blocks the read forever, and ``read_timeout_s`` is the only bound FFmpeg enforces there.

    Raises:
        NotAVideoError: The input opened but holds no video stream.
        av.error.FFmpegError, OSError: Opening failed (the caller decides whether to retry).
    """
    options = dict(_PROBE_OPTIONS) if target.live else {}
    if target.path.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = transport
        options["timeout"] = str(int(read_timeout_s * 1_000_000))  # socket I/O, µs
    container = av.open(
        target.path,
        mode="r",
        format=target.format,
        options=options,
        timeout=(open_timeout_s, read_timeout_s),
    )
    if not container.streams.video:
        streams = len(container.streams)
        container.close()
        raise NotAVideoError(
            f"'{name}' has no video stream: expected a video, found {streams} non-video stream(s)"
        )
    return container


def is_no_answer(error: BaseException) -> bool:
    """True when ``error`` means nobody answered (refused, unreachable, timed out)."""
    if isinstance(error, (av.error.ExitError, TimeoutError, ConnectionError)):
        return True
    return getattr(error, "errno", None) in _NO_ANSWER_ERRNOS


def describe(error: BaseException) -> str:
    """One line for ``error``, without credentials; FFmpeg's interrupt reads "timed out"."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if isinstance(error, av.error.ExitError):
        text = "timed out"
    return mask_url(" ".join(str(text).split()))


def give_up_error(
    name: str,
    *,
    live: bool,
    error: BaseException,
    reason: str,
    timed_out: bool,
    attempts: int,
    elapsed_s: float,
    open_timeout_s: float,
) -> SourceError:
    """The error a source raises once it stops retrying: a timeout only if nobody answered.

    A file that cannot be opened is not a video; a camera that never answered is a timeout
    (the supervisor and the exit code tell the two apart); anything else is a source error.
    """
    if not live:
        return NotAVideoError(
            f"cannot open '{name}' as video: expected a media file FFmpeg can read, "
            f"got error: {reason}"
        )
    what = f"live source {name}: {attempts} attempt(s) in {elapsed_s:.1f} s, last error: {reason}"
    if timed_out or is_no_answer(error):
        return SourceTimeoutError(
            f"{what} (expected a video stream within open_timeout_s={open_timeout_s:g})"
        )
    return SourceError(what)
