"""One exception hierarchy, so callers (and the CLI) can tell our failures from bugs.

Every message says what was expected and what was found; the CLI prints ``str(error)`` as a single
line and exits non-zero, so the text must stand on its own without a traceback.
"""

from __future__ import annotations


class StreamDeidError(Exception):
    """Base of every error streamdeid raises on purpose."""

    exit_code: int = 1


class ConfigError(StreamDeidError, ValueError):
    """A configuration value is missing, unknown or out of bounds (message names the field)."""

    exit_code = 2


class SourceError(StreamDeidError, OSError):
    """The input cannot be opened or read as video."""


class InputNotFoundError(SourceError, FileNotFoundError):
    """The input path does not exist."""


class NotAVideoError(SourceError):
    """The input exists but FFmpeg finds no decodable video or image in it."""


class SourceTimeoutError(SourceError, TimeoutError):
    """A live source did not answer within its timeout."""


class SinkError(StreamDeidError, OSError):
    """The output cannot be created, encoded or written."""


class OutputNotWritableError(SinkError, PermissionError):
    """The output location does not exist or refuses writes."""


class DetectorError(StreamDeidError):
    """The face detector could not be loaded or failed on a frame."""


class MissingExtraError(DetectorError, ImportError):
    """An optional backend needs packages that are not installed (message names the extra)."""

    exit_code = 2


class PipelineError(StreamDeidError):
    """A pipeline stage failed; the message names the stage and the cause."""


class Interrupted(StreamDeidError):
    """The run was stopped by a signal; whatever was written so far is a playable file."""

    exit_code = 130


class BatchError(StreamDeidError):
    """A batch cannot be planned, resumed or finished (the message names the file or chunk)."""


class ChunkMismatchError(BatchError):
    """A chunk did not decode to the frames its plan expected; its file is then run whole."""


class MissingClusterError(BatchError, ImportError):
    """``streamdeid batch`` needs Ray, which is not installed (the message names the extra)."""

    exit_code = 2
