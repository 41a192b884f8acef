"""What a worker runs: one chunk of a video, or one whole file. No Ray in here.

Both take a task (plain data that pickles), anonymize into a private temporary folder and return
the encoded bytes with the stats: the driver alone writes into the output folder, so a worker
that dies leaves nothing behind, and the output folder need not be shared with the workers.
The input must be readable by the worker at the same path (a shared filesystem) or be a URL.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamdeid.batch.plan import ChunkSpec
from streamdeid.build import background_nice, build_stages, encoder_settings
from streamdeid.config import Config, parse_config
from streamdeid.errors import ChunkMismatchError
from streamdeid.io.chunk_source import ChunkSource
from streamdeid.io.sink import VideoSink
from streamdeid.pipeline.runner import Pipeline
from streamdeid.pipeline.stages import SinkStage
from streamdeid.types import FramePacket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkTask:
    """Anonymize frames ``spec.start .. spec.end - 1`` of ``input`` into a ``suffix`` file."""

    input: str
    suffix: str
    config: dict[str, Any]  # Config.model_dump(mode="json"): plain data, whatever the worker
    spec: ChunkSpec


@dataclass(frozen=True)
class FileTask:
    """Anonymize all of ``input`` with :func:`streamdeid.api.anonymize_file` as ``name``.

    ``keys`` holds the reviewers' public key files by name: the workers need not see the
    driver's files, so the keys travel with the task.
    """

    input: str
    name: str
    config: dict[str, Any]
    keys: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkResult:
    """Encoded outputs by the suffix added to the output name ("" for the video itself)."""

    files: dict[str, bytes]
    stats: dict[str, Any]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WindowSinkStage(SinkStage):
    """Writes only the chunk's own frames; warm-up and tail frames are masked and dropped.

    Counts what the written frames carry, so the stats of the chunks of a file add up to those
    of its frames (warm-up and tail frames are counted by the chunk they belong to). Checks that
    the frames written are those the plan expects, by index and pts.
    """

    def __init__(self, sink: VideoSink, spec: ChunkSpec) -> None:
        super().__init__(sink)
        self.spec = spec
        self.faces = 0
        self.regions = 0
        self.track_ids: set[int] = set()
        self.last_pts: int | None = None

    def process(self, packet: FramePacket) -> None:
        frame, spec = packet.frame, self.spec
        if not spec.start <= frame.index < spec.end:
            return None
        expected = spec.first_pts if frame.index == spec.start else None
        if (expected is not None and frame.pts != expected) or (
            self.last_pts is not None and (frame.pts or 0) <= self.last_pts
        ):
            raise ChunkMismatchError(
                f"chunk {spec.index}: expected frame {frame.index} at pts "
                f"{expected if expected is not None else f'> {self.last_pts}'}, got {frame.pts}"
            )
        self.last_pts = frame.pts
        self.faces += len(packet.detections) if packet.detections is not None else 0
        self.regions += len(packet.regions)
        self.track_ids.update(t.track_id for t in packet.tracks)
        self.sink.write(frame)
        return None


def run_chunk(task: ChunkTask) -> WorkResult:
    """Anonymize one chunk (warm-up and tail included) and return its encoded video.

    Raises:
        ChunkMismatchError: the decoded frames are not those of the plan (the driver then runs
            the file whole).
        StreamDeidError: any other expected failure, as in a whole-file run.
    """
    config, spec, t0 = parse_config(task.config, "batch config"), task.spec, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamdeid-chunk-") as tmp:
        out = Path(tmp) / f"chunk{task.suffix}"
        with ChunkSource(task.input) as source:
            sink = VideoSink(
                out, source.info, encoder_settings(config), rotation=lambda: source.rotation
            )
            built = build_stages(config, "file")
            # Frames carry the packets' pts plus the source's shift (a start before 0).
            shift = source.pts_shift
            write = WindowSinkStage(
                sink,
                replace(spec, first_pts=spec.first_pts + shift, last_pts=spec.last_pts + shift),
            )
            frames = (f for f in source.frames_from(spec.key, spec.key_pts, spec.feed_end))
            warm = (f for f in frames if f.index >= spec.warm)
            Pipeline(
                warm,
                [built.detect, built.track, built.obscure, write],
                queue_size=config.pipeline.queue_size,
                label=f"{Path(task.input).name}#{spec.index}",
                background_nice=background_nice(config, source.info.height),
            ).run()
        if sink.frames_written != spec.frames or write.last_pts != write.spec.last_pts:
            raise ChunkMismatchError(
                f"chunk {spec.index} of '{task.input}': expected {spec.frames} frames ending at "
                f"pts {write.spec.last_pts}, wrote {sink.frames_written} ending at "
                f"{write.last_pts}"
            )
        data = out.read_bytes()
    seconds = time.perf_counter() - t0
    stats = {
        "frames": sink.frames_written,
        "frames_fed": spec.feed_end - spec.warm,
        "faces_detected": write.faces,
        "regions": write.regions,
        # Look-ahead masks a frame whole when no detector run came before it (or after it):
        # the warm-up exists so that this stays 0, as in a whole-file run.
        "frames_masked_whole": getattr(built.track, "whole_frames", 0),
        "tracks": len(write.track_ids),
        "detector_runs": built.detect.runs,
        "detection_failures": built.detect.failures,
        "corrupt_packets": source.corrupt_frames,
        "seconds": round(seconds, 3),
        "bytes": len(data),
        "worker": f"{os.uname().nodename}:{os.getpid()}",
    }
    return WorkResult({"": data}, stats)


def run_file(task: FileTask) -> WorkResult:
    """Anonymize a whole file (video or image, reversible or not) and return every output."""
    from streamdeid.api import anonymize_file, sidecar_path

    with tempfile.TemporaryDirectory(prefix="streamdeid-file-") as tmp:
        config = _with_local_keys(parse_config(task.config, "batch config"), task.keys, tmp)
        out = Path(tmp) / "out" / task.name
        out.parent.mkdir()
        stats = anonymize_file(task.input, out, config).to_dict()
        files = {"": out.read_bytes()}
        sidecar = sidecar_path(out)
        if sidecar.exists():
            files[sidecar.name[len(out.name) :]] = sidecar.read_bytes()
    stats.update(
        bytes=len(files[""]), worker=f"{os.uname().nodename}:{os.getpid()}", input=task.input
    )
    stats.pop("output", None)
    return WorkResult(files, stats)


def _with_local_keys(config: Config, keys: dict[str, bytes], tmp: str) -> Config:
    """``config`` reading the reviewers' public keys from copies in ``tmp``."""
    if not keys:
        return config
    folder = Path(tmp) / "keys"
    folder.mkdir()
    paths = []
    for i, (name, data) in enumerate(sorted(keys.items())):
        path = folder / f"{i}-{Path(name).name}"
        path.write_bytes(data)
        paths.append(str(path))
    return config.override({"reversible.recipients": paths})
