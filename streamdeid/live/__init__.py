"""Live cameras: real-time anonymization with bounded latency, metrics, and many cameras.

* :mod:`~streamdeid.live.policy`: the back-pressure rules (what is skipped, masked whole, dropped).
* :mod:`~streamdeid.live.runner`: the live pipeline, wiring the stages
  (:mod:`~streamdeid.live.stages`) and channels (:mod:`~streamdeid.live.channels`) that apply them.
* :mod:`~streamdeid.live.session`: one camera from open to close (:func:`run_camera`).
* :mod:`~streamdeid.live.cameras`: the cameras file; :mod:`~streamdeid.live.supervisor`: runs
  many cameras, restarting the ones that fail.
* :mod:`~streamdeid.live.stats`, :mod:`~streamdeid.live.metrics`, :mod:`~streamdeid.live.logs`:
  the stats line, ``/metrics`` in Prometheus format, JSON logs.

The ``streamdeid live`` command itself is :mod:`streamdeid.cli.live`.

Names are imported lazily, so that loading one module of this package (the log formats the
CLI sets up, say) does not pay for PyAV and the pipeline.

Example:
    >>> from streamdeid.live import LiveStats, load_cameras, run_camera  # doctest: +SKIP
    >>> for cam in load_cameras("cameras.yaml"):  # doctest: +SKIP
    ...     run_camera(cam, LiveStats(cam.name), stop)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LiveStats": "streamdeid.live.stats",
    "Camera": "streamdeid.live.session",
    "load_cameras": "streamdeid.live.cameras",
    "run_camera": "streamdeid.live.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamdeid.live' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
