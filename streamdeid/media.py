"""Facts about media streams that sources, sinks and the live code share, each named once.

* :data:`DEFAULT_FRAME_RATE`: what a stream that states no frame rate is taken to run at (PAL's
  25 fps: most CCTV outside North America; a guess off by 20 % only mistimes the sidecar's
  half-frame tolerance and a realtime file's pacing, never which frames are masked).
* :data:`PTS_TIME_BASE`: the 90 kHz clock of MPEG-TS and RTP, for frames that carry no time base.
* :data:`NETWORK_SCHEMES`: URL schemes that are network streams (always live, never paced).
* :func:`backoff_delay`: how long to wait before reconnecting, the same for inputs and outputs.
"""

from __future__ import annotations

import random
from fractions import Fraction

DEFAULT_FRAME_RATE = Fraction(25)
PTS_TIME_BASE = Fraction(1, 90_000)
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")


def url_scheme(url: str) -> str:
    """The lower-case scheme of ``url`` (``"rtsp"``), or ``""`` for a plain path."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def backoff_delay(attempt: int, initial_s: float, max_s: float, jitter: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry).

    Doubles from ``initial_s`` up to ``max_s``, then varies by ``±jitter`` (a fraction) so that
    many cameras dropped by one network outage do not all reconnect in the same instant.
    """
    base = min(max_s, initial_s * 2 ** max(0, attempt - 1))
    return max(0.0, base * (1 + random.uniform(-jitter, jitter)))
