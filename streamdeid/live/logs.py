"""Structured logs for unattended cameras: one JSON object per line (``--log-format json``).

Log calls in the live package pass ``extra={"camera": ..., "event": ...}`` (plus any details), so
a log shipper can filter by camera and event without parsing prose. The text format shows the
same records the usual way, prefixed with the camera.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"ts": …, "level": …, "logger": …, "thread": …, "msg": …, "camera": …, "event": …}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``streamdeid: WARNING: [camera] message`` — the CLI's usual format, camera-aware."""

    def format(self, record: logging.LogRecord) -> str:
        camera = getattr(record, "camera", None)
        prefix = f"[{camera}] " if camera else ""
        text = f"streamdeid: {record.levelname}: {prefix}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: int, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Route every log record to ``stream`` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
