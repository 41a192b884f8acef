"""What a focused-detection schedule must satisfy before it runs.

Apart from :mod:`streamdeid.detect.focus` because these are refusals, not scheduling: settings
that the inner detector cannot run, or that would leave new faces unsearched between two full
passes, are errors at start-up rather than silent gaps in the masking.
"""

from __future__ import annotations

from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError
from streamdeid.limits import (
    MAX_INPUT_HEIGHT,
    MAX_MOTION_THRESHOLD,
    MAX_TILE_SIZE,
    MIN_FOCUS_TILE_SIZE,
    MIN_MOTION_THRESHOLD,
)


def check_focus_arguments(
    inner: Detector,
    *,
    full_scan_every: int,
    tile_size: int,
    threshold: int,
    memory_frames: int | None,
    coarse_height: int,
    motion: bool,
    follow_confidence: float,
    full_scan_parts: int,
) -> None:
    """Refuse what the inner detector cannot run, and schedules that leave faces unsearched."""
    label = f"{type(inner).__name__} {getattr(inner, 'name', '?')!r}"
    if not callable(getattr(inner, "detect_windows", None)):
        raise ConfigError(
            "detector.focus.enabled: focused detection needs a detector with "
            f"detect_windows(image, windows) (the tiled backends and the ensemble), got "
            f"{label}; disable detector.focus or pick another backend"
        )
    if coarse_height and not callable(getattr(inner, "detect_at", None)):
        raise ConfigError(
            "detector.focus.coarse_height: a cheap whole-frame pass needs a fully "
            f"convolutional backend (retinaface, centerface), got {label}; set it to 0 or "
            "pick another backend"
        )
    if not coarse_height and not motion:
        raise ConfigError(
            "detector.focus: with neither a cheap pass (coarse_height) nor motion windows, "
            "nothing would find a new face between two full passes; set one of them or "
            "disable detector.focus"
        )
    if full_scan_every < 1:
        raise ValueError(f"full_scan_every must be >= 1, got {full_scan_every}")
    if not MIN_FOCUS_TILE_SIZE <= tile_size <= MAX_TILE_SIZE:
        raise ValueError(
            f"tile_size must be in {MIN_FOCUS_TILE_SIZE}..{MAX_TILE_SIZE}, got {tile_size}"
        )
    if not MIN_MOTION_THRESHOLD <= threshold <= MAX_MOTION_THRESHOLD:
        raise ValueError(
            f"threshold must be in {MIN_MOTION_THRESHOLD}..{MAX_MOTION_THRESHOLD}, got {threshold}"
        )
    if memory_frames is not None and memory_frames < 0:
        raise ValueError(f"memory_frames must be >= 0 or None, got {memory_frames}")
    if full_scan_parts < 1:
        raise ValueError(f"full_scan_parts must be >= 1, got {full_scan_parts}")
    if not 0.0 <= follow_confidence <= 1.0:
        raise ValueError(f"follow_confidence must be in 0..1, got {follow_confidence}")
    if not 0 <= coarse_height <= MAX_INPUT_HEIGHT:
        raise ValueError(f"coarse_height must be in 0..{MAX_INPUT_HEIGHT}, got {coarse_height}")
