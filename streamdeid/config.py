"""Validated configuration: pydantic models, loaded from YAML, overridden by CLI flags.

Unknown keys are rejected (``extra="forbid"``) because a misspelt privacy setting that is silently
ignored leaves faces visible. Every validation failure becomes one :class:`ConfigError` whose
message names the field by its dotted path.

The ``detector`` section's models are in :mod:`streamdeid.config_detector` (re-exported here);
this module holds the other sections, the top-level :class:`Config` with the checks that span
sections, and the loading.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from streamdeid.config_base import StrictModel, describe_errors
from streamdeid.config_detector import (
    BACKEND_OPTIONS,
    CONFIDENCE_OF_BACKENDS,
    CONVOLUTIONAL,
    TILED_OPTIONS,
    CenterFaceConfig,
    DetectorConfig,
    FocusConfig,
    RetinaFaceConfig,
    SingleBackend,
)
from streamdeid.config_schedule import DetectEvery, FileQueueSize, Lookahead, SkipGrow
from streamdeid.errors import ConfigError

# The detector section lives in streamdeid.config_detector; its names are re-exported here so
# that ``from streamdeid.config import ...`` keeps naming every part of the config.
__all__ = [
    "BACKEND_OPTIONS",
    "CONFIDENCE_OF_BACKENDS",
    "CONFIG_PACKAGE",
    "CONVOLUTIONAL",
    "TILED_OPTIONS",
    "CenterFaceConfig",
    "Config",
    "DetectorConfig",
    "EncoderConfig",
    "FocusConfig",
    "ObscureConfig",
    "PipelineConfig",
    "RetinaFaceConfig",
    "ReversibleConfig",
    "SingleBackend",
    "TrackerConfig",
    "bundled_configs",
    "load_config",
    "parse_config",
]

# The top-level configs/ folder, installed as this package (package-dir mapping in pyproject.toml).
CONFIG_PACKAGE = "streamdeid.configs"


def bundled_configs() -> dict[str, str]:
    """Names of the configs that ship with streamdeid (``cctv``…) and their YAML text.

    Read through :mod:`importlib.resources` rather than a path beside the source, so they are
    found wherever the package is installed (wheel, zip, editable checkout).
    """
    found = {}
    for entry in resources.files(CONFIG_PACKAGE).iterdir():
        if entry.name.endswith(".yaml") and entry.is_file():
            found[entry.name.removesuffix(".yaml")] = entry.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


class TrackerConfig(StrictModel):
    iou_threshold: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Minimum IoU to match a detection to a track."
    )
    min_hits: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Detections before a track is 'confirmed' (masked from the first one anyway).",
    )
    max_coast_frames: int = Field(
        default=25,
        ge=0,
        le=10000,
        description="Frames a track keeps being masked after the detector last saw it.",
    )
    coast_growth: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="Relative growth of a coasting box per frame since last seen, covering the "
        "uncertainty of the predicted position.",
    )


class ObscureConfig(StrictModel):
    method: Literal["blur", "pixelate", "solid", "surrogate"] = Field(
        default="blur",
        description="How face regions are obscured. surrogate: blur the region, then draw the "
        "landmark-aligned mean face of surrogate_k other people (of the recording, or of "
        "surrogate_gallery) over the face, in its pose; blur until that many have been seen.",
    )
    shape: Literal["box", "ellipse"] = Field(
        default="box", description="Mask shape inside each padded region."
    )
    mask_scale: float = Field(
        default=1.3,
        ge=1.0,
        le=4.0,
        description="Region size relative to the detected face box, so hair, ears and chin are "
        "covered too.",
    )
    min_size_px: int = Field(
        default=12,
        ge=1,
        le=512,
        description="Regions smaller than this are enlarged to it (tiny faces still get masked).",
    )
    blur_fraction: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Blur radius as a fraction of the region's smaller side (the surrogate "
        "method blurs its regions at 1.0 when this is lower: see README).",
    )
    blocks_across: int = Field(
        default=6, ge=1, le=64, description="Pixelate: number of mosaic blocks across a region."
    )
    color: tuple[int, int, int] = Field(default=(0, 0, 0), description="Solid fill colour, BGR.")
    surrogate_k: int = Field(
        default=5,
        ge=2,
        le=64,
        description="Surrogate: identities (tracks) averaged into each surrogate face. At least 2, "
        "since a mean of one face is that face; 5 by default, so no one contributor dominates.",
    )
    surrogate_gallery: str | None = Field(
        default=None,
        min_length=1,
        description="Surrogate: a folder of portraits, one person per image, added to the people "
        "each surrogate is averaged from, so scenes with fewer than surrogate_k + 1 people get "
        "surrogates too (measured: a few percent of those faces re-identified by dlib; see "
        "README). Never photos of people who may appear in the footage. Read once, kept in "
        "memory only.",
    )
    surrogate_epsilon: float | None = Field(
        default=None,
        gt=0.0,
        le=100.0,
        description="Surrogate: noise dial, smaller = more Laplace noise on the surrogate's "
        "texture and on the target's landmark shape; null = none. Not differential privacy.",
    )

    @model_validator(mode="after")
    def _check_color(self) -> ObscureConfig:
        if any(not 0 <= c <= 255 for c in self.color):
            raise ValueError(f"color must be 3 values in 0..255, got {self.color}")
        return self


class EncoderConfig(StrictModel):
    codec: Literal["h264", "h265", "hevc", "vp9", "av1", "mpeg4", "ffv1", "gif"] | None = Field(
        default=None,
        description="Video codec; null = H.264, or what the output container needs (.webm → "
        "VP9, .gif → GIF, .avi → MPEG-4).",
    )
    crf: int | None = Field(
        default=20, ge=0, le=63, description="Constant quality (lower = better, bigger)."
    )
    bitrate: int | None = Field(
        default=None, ge=10_000, description="Target bits/s; replaces crf when set."
    )
    preset: str | None = Field(
        default=None,
        description="Encoder speed preset (x264/x265 names, SVT-AV1 0-13); null = veryfast for "
        "files; for live cameras (which cannot wait for their encoder) superfast up to 720p "
        "and ultrafast above (a 1080p25 camera on two cores: detector on 71% instead of 50% "
        "of frames, latency p95 185 instead of 250 ms, for 1.7x the bits).",
    )
    pix_fmt: str | None = Field(
        default=None, description="Pixel format; null = yuv420p (yuv444p for odd sizes)."
    )
    audio: Literal["copy", "reencode", "drop"] = Field(
        default="copy", description="Audio: copy the input's packets, re-encode, or drop."
    )


class PipelineConfig(StrictModel):
    """How a file is run: the detector's schedule for files, and what images keep.

    The four schedule settings are shared with cameras (``live.*``, see
    :mod:`streamdeid.config_schedule`); these ``pipeline.*`` values apply to files and images
    only. A file can wait for its detector, so by default it runs on every 5th frame, lookahead
    covers the frames in between (the last frame is always detected), and 8 frames are queued
    between stages.
    """

    detect_every: DetectEvery = 5
    lookahead: Lookahead = True
    skip_grow: SkipGrow = 1.25
    queue_size: FileQueueSize = 8
    background_nice: int = Field(
        default=19,
        ge=0,
        le=19,
        description="On video the detector enlarges (shorter than its min_input_height), "
        "lower the priority (Linux nice) of every pipeline thread but the detector's by this "
        "much: the detector then sets the file's pace and gets a core when it wants one (9% "
        "faster at 360p on two cores with 10; 19 halved the detector's remaining wait for a "
        "core; at 720p and 1080p, where it is not applied, it cost 2-4%). 0 = off.",
    )
    keep_exif: bool = Field(
        default=False,
        description="Images: keep EXIF metadata (stripped by default: it may "
        "hold GPS position and camera serial).",
    )


class ReversibleConfig(StrictModel):
    enabled: bool = Field(
        default=False,
        description="Encrypt each face region's original pixels into a sidecar file next to the "
        "output, so a key holder can restore them (streamdeid reveal).",
    )
    recipients: list[str] = Field(
        default_factory=list,
        description="Reviewers' public key files (streamdeid keygen). Only public keys are "
        "needed here: the anonymizing host cannot reveal anything itself.",
    )
    originals: Literal["auto", "regions"] = Field(
        default="auto",
        description="How originals are kept. auto: the input's own compressed packets when its "
        "codec is inter-frame (H.264, HEVC, VP8/9, AV1, MPEG-2/4): bit-exact and about the "
        "size of the input; grants then come with a package of the track's regions. Otherwise, "
        "and with 'regions': one encrypted crop per region and frame (PNG, or JPEG with lossy), "
        "10-100x larger, but a grant opens the recording's own sidecar.",
    )
    lossy: bool = Field(
        default=False,
        description="Store per-region crops as JPEG q95 (4:4:4) instead of lossless PNG "
        "(smaller, not bit-exact). Kept source packets are always bit-exact.",
    )

    @model_validator(mode="after")
    def _needs_recipients(self) -> ReversibleConfig:
        if self.enabled and not self.recipients:
            raise ValueError(
                "reversible.recipients: expected at least one public key file when "
                "reversible.enabled is true, got none"
            )
        return self


class Config(StrictModel):
    """Everything a run needs besides input and output paths."""

    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    obscure: ObscureConfig = Field(default_factory=ObscureConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    reversible: ReversibleConfig = Field(default_factory=ReversibleConfig)

    @model_validator(mode="after")
    def _coarse_pass_needs_a_convolutional_backend(self) -> Config:
        d = self.detector
        if d.focus.enabled and not d.focus.coarse_height and not d.focus.motion:
            raise ValueError(
                "detector.focus: with coarse_height 0 and motion false nothing would find a new "
                "face between two full passes; set one of them or detector.focus.enabled: false"
            )
        if d.focus.enabled and d.focus.coarse_height and d.backend not in CONVOLUTIONAL:
            raise ValueError(
                f"detector.focus.coarse_height ({d.focus.coarse_height}) needs a fully "
                f"convolutional backend ({' or '.join(CONVOLUTIONAL)}), got detector.backend "
                f"{d.backend!r}: set detector.focus.coarse_height: 0 or "
                "detector.focus.enabled: false"
            )
        return self

    @model_validator(mode="after")
    def _options_of_other_backends(self) -> Config:
        problems = self.detector.unused_options()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _coasting_covers_skipped_frames(self) -> Config:
        # Between two detector runs only tracks mask a face: they must outlive the gap.
        if self.tracker.max_coast_frames < self.pipeline.detect_every - 1:
            raise ValueError(
                f"tracker.max_coast_frames ({self.tracker.max_coast_frames}) must be >= "
                f"pipeline.detect_every - 1 ({self.pipeline.detect_every - 1}), or faces would "
                "go unmasked between detector runs"
            )
        return self

    def summary(self) -> str:
        """One line saying what this config does, for help texts (so they follow the configs).

        Example:
            >>> Config().override({"obscure.method": "solid"}).summary()  # doctest: +SKIP
            'solid, RetinaFace (whole frame every 25 frames and after cuts, a 360-row pass ...'
        """
        d = self.detector
        names = {"retinaface": "RetinaFace", "centerface": "CenterFace", "blazeface": "BlazeFace"}
        names["mediapipe"] = "MediaPipe"
        what = " + ".join(names[b] for b in d.backends())
        f = d.focus
        if f.enabled:
            between = [f"a {f.coarse_height}-row pass"] if f.coarse_height else []
            between += ["where the picture moved"] if f.motion else []
            between += ["around recent faces"]
            what += (
                f" (whole frame every {f.full_scan_every} frames and after cuts, "
                f"{', '.join(between)} in between)"
            )
        every = self.pipeline.detect_every
        schedule = "every frame" if every == 1 else f"every {_ordinal(every)} frame"
        return f"{self.obscure.method}, {what}, detector on {schedule}"

    def override(self, dotted: dict[str, Any]) -> Config:
        """Return a copy with ``{"obscure.method": "solid"}``-style overrides, validated.

        ``None`` values are skipped (a flag not given). :data:`CONFIDENCE_OF_BACKENDS` sets the
        minimum score of every backend the result runs, wherever each keeps it.
        """
        data = self.model_dump()
        for key, value in dotted.items():
            if value is None or key == CONFIDENCE_OF_BACKENDS:
                continue
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        score = dotted.get(CONFIDENCE_OF_BACKENDS)
        if score is not None:
            d = data["detector"]
            members = dict.fromkeys(d["ensemble"]) if d["backend"] == "ensemble" else [d["backend"]]
            for backend in members:
                (d[backend] if backend in CONVOLUTIONAL else d)["confidence"] = score
        return parse_config(data, source="command line")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def parse_config(data: Any, source: str = "config") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid config ({source}): expected a mapping of sections, got {type(data).__name__}"
        )
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid config ({source}): {describe_errors(e)}") from e


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load a YAML config file; a bare name like ``cctv`` means the bundled ``cctv.yaml``.

    A file of that name in the working directory wins over the bundled config.
    """
    if path is None:
        return Config()
    p = Path(path)
    if not p.exists() and not p.suffix and p.name == str(p):
        bundled = resources.files(CONFIG_PACKAGE) / f"{p}.yaml"
        if bundled.is_file():  # only the one asked for is read
            return _parse_yaml(bundled.read_text(encoding="utf-8"), f"bundled config '{p}'")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: '{p}'") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file '{p}': {e}") from e
    return _parse_yaml(text, str(p))


def _parse_yaml(text: str, source: str) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config '{source}' is not valid YAML: {e}".splitlines()[0]) from e
    return parse_config(data, source=source)
