"""One camera, start to end: open the input, wire the live pipeline, run it, close everything."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamdeid.build import build_stages
from streamdeid.config import Config
from streamdeid.crypto.keeper import PacketKeeper, SourceKeeper
from streamdeid.crypto.writer import SidecarWriter
from streamdeid.detect.base import Detector
from streamdeid.errors import ConfigError
from streamdeid.io.frame_sink import FrameSink
from streamdeid.live.channels import LatencyClock
from streamdeid.live.endpoints import LiveInput, OutputSpec, SinkFactory, check_outputs, open_input
from streamdeid.live.policy import LiveConfig
from streamdeid.live.reversible import CaptureOriginalsStage, Originals
from streamdeid.live.runner import LivePipeline
from streamdeid.live.segment_originals import GopFeed
from streamdeid.live.stages import LiveSinkStage
from streamdeid.live.stats import LiveStats
from streamdeid.types import Frame

RECORDED = ("file", "segments")  # outputs that reversible masking can put a sidecar beside

log = logging.getLogger(__name__)


@dataclass
class Camera:
    """A camera ready to run: every setting resolved and validated.

    Defined here, beside :func:`run_camera` which runs it, rather than with the cameras file
    that builds it (:func:`~streamdeid.live.cameras.load_cameras`): the supervisor
    (:mod:`streamdeid.live.supervisor`) needs run_camera, and neither it nor the cameras file
    should pull in the other just for the type.
    """

    name: str
    source: str
    outputs: list[OutputSpec]
    config: Config
    live: LiveConfig
    realtime: bool = False


def run_camera(
    camera: Camera,
    stats: LiveStats,
    stop: threading.Event,
    *,
    detector_factory: Callable[[], Detector] | None = None,
    clock: LatencyClock | None = None,
    overwrite: bool = True,
    make_sink: Callable[[Frame], FrameSink] | None = None,
) -> LivePipeline:
    """Run ``camera`` until its source ends or ``stop`` is set; outputs are always closed.

    Args:
        camera: resolved settings (see :func:`streamdeid.live.cameras.load_cameras`).
        stats: counters this run adds to (shared across restarts of the camera).
        stop: set it to stop; the pipeline sets it too when a stage fails.
        detector_factory: replaces the configured detector (tests); called on the detect thread.
        clock: capture→encoded latency clock (default: the source's capture time if known).
        overwrite: replace an existing output file.
        make_sink: replaces the camera's outputs (tests, embedding); called with the first
            masked frame on the encode thread.

    Raises:
        StreamDeidError: one-line errors: bad outputs, unreachable source, a failed stage.
    """
    originals = _reversible_originals(camera, make_sink)
    if make_sink is None:
        check_outputs(camera.outputs, overwrite=overwrite)
    extra = {"camera": camera.name}
    source = _open_source(camera, stop, extra)
    stats.attach_source(source.source)
    sidecars: dict[str, SidecarWriter] = {}
    feed: GopFeed | None = None
    try:
        if originals is not None:
            sidecars, feed = _open_sidecars(camera, source, originals)
        sinks = make_sink or SinkFactory(
            camera.outputs,
            camera.config,
            source,
            prefix=camera.name,
            on_event=_output_events(extra),
            originals=originals,
            sidecars=sidecars,
            segment_feed=feed,
        )
        encode = LiveSinkStage(sinks, stats, clock)
        pipeline = _wire(camera, source, stats, stop, detector_factory, encode, originals)
        log.info(
            "running (%s policy)",
            "live" if source.live else "file",
            extra={**extra, "event": "pipeline_start", "live": source.live},
        )
        pipeline.run()
    finally:
        source.close()
        for writer in sidecars.values():
            writer.close()  # idempotent: the file output closed it already, unless never opened
    return pipeline


def _wire(
    camera: Camera,
    source: LiveInput,
    stats: LiveStats,
    stop: threading.Event,
    detector_factory: Callable[[], Detector] | None,
    encode: LiveSinkStage,
    originals: Originals | None = None,
) -> LivePipeline:
    """The camera's pipeline: the stages :func:`streamdeid.build.build_stages` makes for its
    mode, then the encoder. A file read as fast as it decodes is a file: pipeline.* schedules
    it, as in ``run``."""
    config, live = camera.config, source.live
    stages = build_stages(
        config,
        "live" if live else "file",
        detector_factory=detector_factory,
        live=camera.live,
        stats=stats,
    )
    capture = [] if originals is None else [CaptureOriginalsStage(originals)]
    return LivePipeline(
        source.frames,
        [stages.detect, stages.track, *capture, stages.obscure, encode],
        live=live,
        policy=camera.live,
        stats=stats,
        queue_size=config.pipeline.queue_size,
        stop=stop,
        label=camera.name,
    )


def _reversible_originals(
    camera: Camera, make_sink: Callable[[Frame], FrameSink] | None
) -> Originals | None:
    """The crop store of a reversible camera; refused without a file or segments output to put
    the originals beside."""
    if not camera.config.reversible.enabled:
        return None
    if make_sink is None and not any(spec.kind in RECORDED for spec in camera.outputs):
        raise ConfigError(
            f"camera {camera.name}: reversible masking writes OUTPUT.sdeid beside a file or "
            "segments output, but this camera has none (an RTSP push gets no sidecar): add one"
        )
    return Originals()


def _open_sidecars(
    camera: Camera, source: LiveInput, originals: Originals
) -> tuple[dict[str, SidecarWriter], GopFeed | None]:
    """One sidecar per file output, opened before the camera connects: its packets are kept
    from the first one on; segments take theirs from a feed that buffers them."""
    from streamdeid.api import open_sidecar

    writers = {
        spec.target: open_sidecar(spec.target, camera.config)
        for spec in camera.outputs
        if spec.kind == "file"
    }
    feed = GopFeed() if any(spec.kind == "segments" for spec in camera.outputs) else None
    keepers: list[PacketKeeper] = [*writers.values(), *([feed] if feed else [])]

    def crops_not_needed() -> None:
        originals.pixels = False

    SourceKeeper(keepers, crops_not_needed).attach(source.source)
    if feed is not None:
        source.source.frame_hook = feed.decoded
    return writers, feed


def _open_source(camera: Camera, stop: threading.Event, extra: dict[str, Any]) -> LiveInput:
    """The camera's input, its reconnects logged with the camera's name and an event name."""

    def on_event(kind: str, detail: Any = None) -> None:
        # The source logs the details itself; this adds the camera and a machine-readable event.
        level = logging.WARNING if kind == "gave_up" else logging.INFO
        log.log(level, "source %s: %s", kind, detail or "", extra={**extra, "event": kind})

    return open_input(
        camera.source,
        realtime=camera.realtime,
        options=camera.live.source,
        stop=stop,
        on_event=on_event,
    )


def _output_events(extra: dict[str, Any]) -> Callable[[str, Any], None]:
    def output_event(kind: str, detail: Any = None) -> None:
        log.info("output %s: %s", kind, detail or "", extra={**extra, "event": f"output_{kind}"})

    return output_event
