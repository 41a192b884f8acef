"""streamdeid: real-time face anonymization for video files, cameras and images.

Example:
    >>> import streamdeid
    >>> stats = streamdeid.anonymize_file("in.mp4", "out.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

# The API of README's "Python API" section, and the types its functions take and return.

from streamdeid.api import RunStats, anonymize_file, anonymize_folder, anonymize_frame
from streamdeid.config import Config, load_config
from streamdeid.errors import StreamDeidError
from streamdeid.types import Frame, FramePacket

__all__ = [
    "Config",
    "Frame",
    "FramePacket",
    "RunStats",
    "StreamDeidError",
    "__version__",
    "anonymize_file",
    "anonymize_folder",
    "anonymize_frame",
    "load_config",
]
