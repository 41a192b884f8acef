"""The independent detector a leak check looks with: which one, with what settings.

A leak check is only meaningful when the detector that looks for faces in the output is not the
one that decided what to mask, so the choice (and the validation of its options, done before any
long work) lives apart from the check itself.
"""

from __future__ import annotations

import math
from typing import Any

from streamdeid.config import Config, parse_config
from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError, DetectorError
from streamdeid.evaluate.dlib_hog import DEFAULT_MAX_HEIGHT, DEFAULT_UPSAMPLE, DlibDetector

# Independent detectors in order of preference: dlib first (no streamdeid config runs it, and
# its HOG detector has very few false positives), then the anonymizer's own families.
INDEPENDENT = ("dlib", "centerface", "blazeface")
# Thresholds of the independent detectors. CenterFace / BlazeFace: scores in (0, 1], higher than
# the anonymizer's own (0.2 / 0.3), so that a false positive in the original (not a face, so
# rightly not masked) is rarely counted as a leak. dlib: its ``adjust_threshold`` (an SVM margin,
# any number; dlib's own default 0.0).
DEFAULT_THRESHOLD = {"dlib": 0.0, "centerface": 0.4, "blazeface": 0.5}


def check_detector_options(
    name: str,
    threshold: float | None = None,
    *,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
) -> None:
    """Validate a named independent detector and its options without building it (cheap: the
    CLI calls it before any long work). For ``dlib`` this also checks that dlib is installed.

    Raises:
        ConfigError: unknown name, option of another detector, or value out of range.
        MissingExtraError: ``dlib`` is chosen and not installed (names ``streamdeid[eval]``).
    """
    if name not in INDEPENDENT:
        raise ConfigError(f"--detector: expected one of {', '.join(INDEPENDENT)}, got {name!r}")
    if name != "dlib":
        for option, value in (("--dlib-upsample", dlib_upsample), ("--max-height", max_height)):
            if value is not None:
                raise ConfigError(f"{option} applies to --detector dlib only, got {name!r}")
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ConfigError(
                f"--threshold: expected a score in (0, 1] for {name}, got {threshold}"
            )
        return
    if threshold is not None and not math.isfinite(threshold):
        raise ConfigError(f"--threshold: expected a finite number for dlib, got {threshold}")
    if dlib_upsample is not None and dlib_upsample < 0:
        raise ConfigError(f"--dlib-upsample: expected a whole number >= 0, got {dlib_upsample}")
    if max_height is not None and max_height < 0:
        raise ConfigError(f"--max-height: expected a whole number >= 0, got {max_height}")
    from streamdeid.evaluate.dlib_hog import _import_dlib

    _import_dlib()


def independent_detector(
    name: str,
    threshold: float | None = None,
    *,
    dlib_upsample: int | None = None,
    max_height: int | None = None,
) -> Detector:
    """A detector for checking outputs, configured for thoroughness rather than speed.

    ``dlib`` is dlib's HOG frontal face detector on the grey frame, upsampled ``dlib_upsample``
    times (default 1) after downscaling frames taller than ``max_height`` (default 720; 0 = never),
    so it finds faces from ~40 px × (frame height / 720); ``threshold`` is its
    ``adjust_threshold`` (default 0.0). ``centerface`` runs at native size; ``blazeface`` runs
    the full-range model on the whole frame plus every 256-px tile (frames are passed as bare
    arrays, so no tile budget applies). None is motion-gated.

    Raises:
        ConfigError: unknown name, option of another detector, or value out of range.
        DetectorError: the backend is not available (MissingExtraError names the extra).
    """
    check_detector_options(name, threshold, dlib_upsample=dlib_upsample, max_height=max_height)
    score = DEFAULT_THRESHOLD[name] if threshold is None else threshold
    if name == "dlib":
        return DlibDetector(
            upsample=DEFAULT_UPSAMPLE if dlib_upsample is None else dlib_upsample,
            adjust_threshold=score,
            max_height=DEFAULT_MAX_HEIGHT if max_height is None else max_height,
        )
    if name == "centerface":
        det: dict[str, Any] = {
            "backend": "centerface",
            "centerface": {"confidence": score, "scales": [1.0]},
        }
    else:
        det = {
            "backend": "blazeface",
            "model": "full",
            "confidence": score,
            "whole_frame": True,
            "tile_size": 256,
            "tile_overlap": 0.25,
            "max_tiles_per_frame": None,
        }
    det["focus"] = {"enabled": False}  # the checker looks at all of every frame it checks
    config = parse_config({"detector": det}, source=f"eval {name} detector")
    from streamdeid.build import make_detector

    try:
        return make_detector(config)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("streamdeid."):
            raise DetectorError(
                f"the {name} backend is not part of this streamdeid build ({e.name} missing): "
                f"expected one of {', '.join(INDEPENDENT)} to be available"
            ) from e
        raise


def backends_used(config: Config) -> set[str]:
    """Detector families a config runs (MediaPipe runs BlazeFace's models: same family)."""
    d = config.detector
    used = set(d.ensemble) if d.backend == "ensemble" else {d.backend}
    return {"blazeface" if b == "mediapipe" else b for b in used}


def independent_for(config: Config) -> tuple[str, bool]:
    """The check detector for outputs made with ``config``, and whether it is truly independent.

    dlib for every config (no streamdeid backend runs it, so it is independent of CenterFace,
    BlazeFace/MediaPipe and any ensemble of them); the loop keeps the rule general.
    """
    used = backends_used(config)
    for name in INDEPENDENT:
        if name not in used:
            return name, True
    return INDEPENDENT[0], False
