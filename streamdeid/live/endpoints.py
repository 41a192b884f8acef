"""Where a live run reads from and writes to: cameras or paced files in, files/segments/RTSP out.

Inputs: a URL (``rtsp://``, ``http://``, ``udp://`` …, or a ``/dev/video`` device) opens a
reconnecting :class:`~streamdeid.io.live_source.LiveSource`; a file is read by
:class:`~streamdeid.io.source.FileSource`, paced at its own frame rate with ``realtime`` (a
stand-in camera, and then the live policy applies) or as fast as it decodes without.

Outputs (one or several, several go through a tee): ``rtsp://…`` publishes, a folder (existing,
ending in ``/``, or any path with ``segment_time``) gets rolling segments, anything else is one
file.
Outputs are checked before the source is opened, so a typo fails in a second with one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from streamdeid.build import encoder_settings
from streamdeid.config import Config
from streamdeid.errors import ConfigError, OutputNotWritableError
from streamdeid.io.frame_sink import FrameSink, SinkGroup
from streamdeid.io.sink import VideoSink, check_output_writable, live_preset
from streamdeid.io.source import VIDEO_SUFFIXES, FileSource, SourceInfo
from streamdeid.live.policy import LiveSourceConfig
from streamdeid.live.runner import paced
from streamdeid.media import DEFAULT_FRAME_RATE, NETWORK_SCHEMES, PTS_TIME_BASE, url_scheme
from streamdeid.types import Frame

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_S = 60.0


def is_live_url(source: str) -> bool:
    """True for network streams and capture devices (never paced, always live)."""
    return (
        url_scheme(source) in NETWORK_SCHEMES
        or source.startswith("/dev/video")
        or source.startswith("webcam:")
    )


def redact(url: str) -> str:
    """``url`` without credentials (``rtsp://***@host/x``): logs must not hold passwords."""
    from streamdeid.io.live_url import mask_url

    return mask_url(url)


@dataclass
class LiveInput:
    """An opened input: its frames, what it looks like, and whether the live policy applies."""

    frames: Iterable[Frame]
    live: bool
    source: Any  # the object with ``.reconnects`` (stats), ``.info`` and ``close()``
    name: str

    @property
    def info(self) -> Any:
        return getattr(self.source, "info", None)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if callable(close):
            close()


def open_input(
    source: str,
    *,
    realtime: bool,
    options: LiveSourceConfig,
    stop: Any,
    on_event: Callable[[str, Any], None] | None = None,
) -> LiveInput:
    """Open ``source``; raises :class:`SourceError` (one line) when it cannot be opened."""
    if is_live_url(source):
        from streamdeid.io.live_source import LiveSource

        live = LiveSource(
            source,
            transport=options.rtsp_transport,
            open_timeout_s=options.open_timeout_s,
            read_timeout_s=options.read_timeout_s,
            reconnect=options.reconnect,
            backoff_initial_s=options.backoff_initial_s,
            backoff_max_s=options.backoff_max_s,
            max_reconnects=options.max_reconnects,
            stop=stop,
            on_event=on_event,
        )
        return LiveInput(_connected_frames(live, options.open_timeout_s), True, live, live.name)
    file = FileSource(source)
    frames: Iterable[Frame] = file.frames()
    if realtime:
        frames = paced(frames, stop, fallback_rate=file.info.frame_rate or DEFAULT_FRAME_RATE)
    return LiveInput(frames, realtime, file, Path(source).name)


def _connected_frames(source: Any, timeout_s: float) -> Iterator[Frame]:
    """Connect on first use (on the capture thread, once every stage is set up), then read.

    Connecting only when the pipeline is ready means no frame is dropped while the model
    loads. The first connection must come within ``timeout_s`` however the source retries: an
    unreachable camera is a one-line error (or a supervised restart), not a hang.
    """
    try:
        source.wait_ready(timeout_s)
        yield from source.frames()
    finally:
        source.close()


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputSpec:
    """One output target, classified."""

    target: str
    kind: str  # "file" | "segments" | "rtsp"
    segment_time_s: float | None = None


def classify_output(target: str, segment_time_s: float | None = None) -> OutputSpec:
    """Tell an output's kind from its spelling (see the module docstring)."""
    low = target.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return OutputSpec(target, "rtsp")
    if "://" in target:
        raise ConfigError(
            f"output '{redact(target)}': expected a file, a folder or an rtsp:// URL, "
            f"got scheme '{target.split('://', 1)[0]}'"
        )
    if (
        segment_time_s is not None
        or "{start}" in target
        or target.endswith(("/", os.sep))
        or Path(target).is_dir()
    ):
        return OutputSpec(target, "segments", segment_time_s)
    return OutputSpec(target, "file")


def segment_pattern(target: str) -> tuple[str, str]:
    """(folder with a trailing separator, or a ``{start}`` pattern; container) for segments.

    ``rec/`` → files in ``rec/``; ``rec/door_{start}.mkv`` as is; ``rec/door.mp4`` →
    ``rec/door_{start}.mp4`` (a file name with ``--segment-time`` means "segments named so").
    """
    path = Path(target)
    suffix = path.suffix.lower()
    if "{start}" in path.name:
        return target, suffix.lstrip(".") or "mp4"
    if suffix in (".mp4", ".mkv") and not path.is_dir():
        return str(path.with_name(f"{path.stem}_{{start}}{suffix}")), suffix.lstrip(".")
    return str(path) + os.sep, "mp4"


def check_outputs(specs: Sequence[OutputSpec], overwrite: bool = True) -> None:
    """Fail fast, before connecting to any camera, on outputs that cannot be written.

    A segments folder that does not exist yet is created (with its parents).
    """
    seen: set[str] = set()
    for spec in specs:
        key = os.path.abspath(spec.target) if spec.kind != "rtsp" else spec.target
        if key in seen:
            raise ConfigError(f"output '{redact(spec.target)}' is given twice")
        seen.add(key)
        if spec.kind == "file":
            if Path(spec.target).suffix.lower() not in VIDEO_SUFFIXES:
                raise ConfigError(
                    f"output '{spec.target}': expected a video file name (.mkv, .mp4, .ts, …), "
                    "a folder ending in '/' for segments, or an rtsp:// URL"
                )
            check_output_writable(spec.target)
            if not overwrite and Path(spec.target).exists():
                raise ConfigError(
                    f"output '{spec.target}' exists: pass --overwrite (-y) to replace it"
                )
        elif spec.kind == "segments":
            pattern, container = segment_pattern(spec.target)
            if container not in ("mp4", "mkv"):
                raise ConfigError(
                    f"output '{spec.target}': segments are .mp4 or .mkv, got .{container}"
                )
            folder = Path(pattern).parent if not pattern.endswith(os.sep) else Path(pattern)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputNotWritableError(
                    f"cannot create segments folder '{folder}': {e.strerror or e}"
                ) from e
            if not os.access(folder, os.W_OK):
                raise OutputNotWritableError(
                    f"cannot write segments to '{folder}': permission denied"
                )


def _output_info(source_info: Any, frame: Frame, name: str) -> SourceInfo:
    """A :class:`SourceInfo` for the encoder, from the source's (when it has one) and the frame."""
    rate = getattr(source_info, "frame_rate", None) or DEFAULT_FRAME_RATE
    tb = frame.time_base or getattr(source_info, "time_base", None) or PTS_TIME_BASE
    return SourceInfo(
        path=name,
        format_name=str(getattr(source_info, "format_name", "live")),
        width=frame.width,
        height=frame.height,
        time_base=Fraction(tb),
        frame_rate=Fraction(rate),
        frames=0,
        duration_s=None,
        codec=str(getattr(source_info, "codec", "")),
        has_audio=False,
    )


@dataclass
class SinkFactory:
    """Makes the output(s) on the first masked frame (live sources know their size only then).

    Live outputs (segments, RTSP) share one zero-latency H.264 encode through a tee; plain file
    outputs get their own encoder (:class:`~streamdeid.io.sink.VideoSink`).
    """

    specs: Sequence[OutputSpec]
    config: Config
    input: LiveInput
    prefix: str = "cam"
    on_event: Callable[[str, str], None] | None = None
    originals: Any = None  # live.reversible.Originals when reversible masking is on
    sidecars: dict[str, Any] = field(default_factory=dict)  # file target -> its SidecarWriter
    segment_feed: Any = None  # live.segment_originals.GopFeed: the camera's packets for segments
    made: list[Any] = field(default_factory=list)

    def __call__(self, frame: Frame) -> FrameSink:
        from streamdeid.io.rtsp_sink import RtspSink
        from streamdeid.io.segment_sink import SegmentSink
        from streamdeid.io.tee_sink import TeeSink

        info = _output_info(self.input.info, frame, self.input.name)
        settings = encoder_settings(self.config)
        if self.input.live and settings.preset is None:
            # A camera cannot wait for its encoder, whatever the output (see live_preset).
            settings = replace(settings, preset=live_preset(frame.width, frame.height))
        rate = float(info.frame_rate or DEFAULT_FRAME_RATE)
        live: list[Any] = []
        files: list[FrameSink] = []
        for spec in self.specs:
            if spec.kind == "file":
                files.append(self._file(spec.target, info, replace(settings, audio="drop")))
            elif spec.kind == "segments":
                pattern, container = segment_pattern(spec.target)
                live.append(
                    SegmentSink(
                        pattern,
                        segment_time_s=spec.segment_time_s or DEFAULT_SEGMENT_S,
                        container=container,
                        settings=settings,
                        prefix=self.prefix,
                        frame_rate=rate,
                    )
                )
            else:
                live.append(
                    RtspSink(spec.target, settings, frame_rate=rate, on_event=self.on_event)
                )
        sinks: list[FrameSink] = files
        if len(live) == 1:
            sinks = [self._reversible(live[0], live), *files]
        elif live:
            sinks = [self._reversible(TeeSink(live, settings), live), *files]
        if self.originals is not None:  # each sidecar-writing output takes every frame's crops
            self.originals.consumers = _sidecar_outputs(sinks)
        self.made = sinks
        return sinks[0] if len(sinks) == 1 else SinkGroup(sinks)

    def _reversible(self, sink: FrameSink, members: list[Any]) -> FrameSink:
        """``sink`` (segments, perhaps teed with RTSP), with one sidecar per segment when
        reversible masking is on."""
        from streamdeid.io.segment_sink import SegmentSink

        segments = [m for m in members if isinstance(m, SegmentSink)]
        if self.originals is None or not segments:
            return sink
        from streamdeid.api import open_sidecar
        from streamdeid.live.segment_originals import ReversibleSegments

        def open_writer(path: Path) -> Any:
            return open_sidecar(path, self.config)

        return ReversibleSegments(sink, segments[0], self.originals, open_writer, self.segment_feed)

    def _file(self, target: str, info: Any, settings: Any) -> FrameSink:
        """A file output; with reversible masking, one that writes ``TARGET.sdeid`` beside it."""
        sink = VideoSink(target, info, settings)
        if self.originals is None or target not in self.sidecars:
            return sink
        from streamdeid.live.reversible import ReversibleFileSink

        return ReversibleFileSink(sink, self.sidecars[target], self.originals)


def _sidecar_outputs(sinks: Sequence[FrameSink]) -> int:
    from streamdeid.live.reversible import ReversibleFileSink
    from streamdeid.live.segment_originals import ReversibleSegments

    return sum(isinstance(s, ReversibleFileSink | ReversibleSegments) for s in sinks)
