"""The live stages: detect when on time, mask what was skipped, encode and time each frame.

They are the file pipeline's stages (:mod:`streamdeid.pipeline.stages`,
:mod:`streamdeid.pipeline.lookahead`) with the live policy's rules 1 to 3
(:mod:`streamdeid.live.policy`) and the live counters (:class:`~streamdeid.live.stats.LiveStats`)
added. :func:`streamdeid.build.build_stages` makes the first two for a live run;
:class:`LiveSinkStage` is the encoder at the end of every live pipeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from streamdeid.detect.base import Detector
from streamdeid.io.frame_sink import FrameSink
from streamdeid.live.channels import LatencyClock
from streamdeid.live.policy import LiveConfig, masked_whole, skip_detection
from streamdeid.live.stats import LiveStats
from streamdeid.pipeline.lookahead import DetectorRun, LookaheadTrackStage
from streamdeid.pipeline.stage import Channel, Stage
from streamdeid.pipeline.stages import DetectStage
from streamdeid.track.iou import IoUTracker
from streamdeid.types import Frame, FramePacket

_MODEL_LOAD_LOCK = threading.Lock()


class LiveDetectStage(DetectStage):
    """:class:`DetectStage` that skips the model on frames it is too late for (policy rule 1).

    A scheduled run that was skipped is owed: it happens on the next frame that is on time, even
    when ``detect_every`` would not schedule that frame.
    """

    def __init__(
        self,
        make_detector: Callable[[], Detector],
        detect_every: int = 1,
        *,
        policy: LiveConfig,
        stats: LiveStats,
        live: bool = True,
        lookahead: bool = True,
    ) -> None:
        # A file read as fast as it decodes is masked as `streamdeid run` masks it: look-ahead
        # (when configured), with the last frame always detected. A camera cannot wait for a
        # frame that may not come.
        super().__init__(make_detector, detect_every, lookahead=lookahead and not live)
        self.policy = policy
        self.stats = stats
        self.live = live
        self.skipped = 0
        self._inbox: Channel | None = None
        self.downstream: Sequence[Channel] = ()  # inboxes of the stages after this one
        self._owed = False
        self._last_run: float | None = None

    def run(self, inbox: Channel, outbox: Channel | None, stop: threading.Event) -> None:
        self._inbox = inbox  # the backlog is what "behind" means
        super().run(inbox, outbox, stop)

    def setup(self) -> None:
        # One model load at a time in the process: the backends silence native start-up logs
        # by pointing fd 2 at /dev/null and back, which two concurrent loads (two cameras)
        # interleave into a stderr left on /dev/null for good.
        with _MODEL_LOAD_LOCK:
            super().setup()
        # Blind time counts from when the model is ready: loading it may take seconds.
        self._last_run = time.monotonic()

    def _behind(self, frame: Frame) -> bool:
        now = time.monotonic()
        return skip_detection(
            since_run_s=None if self._last_run is None else now - self._last_run,
            backlog=self._inbox.qsize() if self._inbox is not None else 0,
            downstream_full=any(channel.full() for channel in self.downstream),
            frame_age_s=now - frame.captured_at,
            policy=self.policy,
        )

    def _scheduled(self, packet: FramePacket) -> FramePacket:
        frame = packet.frame
        scheduled = self._owed or self._burst > 0 or frame.index % self.detect_every == 0
        if not scheduled:
            return packet
        if self.live and self._behind(frame):
            self.skipped += 1
            self.stats.add("detect_skipped")
            self._owed = True
            return packet
        if self._owed:
            self._burst = max(self._burst, 1)  # make DetectStage run on this off-schedule frame
            self._owed = False
        return super()._scheduled(packet)

    def detect(self, packet: FramePacket) -> FramePacket:
        faces = self.faces
        out = super().detect(packet)
        self._last_run = time.monotonic()
        self.stats.add("detect_runs")
        self.stats.add("faces", self.faces - faces)
        return out


class LiveTrackStage(LookaheadTrackStage):
    """:class:`LookaheadTrackStage` with the live blind rule (policy rules 2 and 3).

    Frames before the detector's first run, and frames too far from a run (``blind_s`` or
    ``blind_frames``), are masked whole. A file read as fast as it decodes (``live=False``)
    is never blind: its detect stage runs on the last frame, as in ``streamdeid run``.
    """

    def __init__(
        self,
        tracker: IoUTracker,
        mask_scale: float,
        min_size_px: int,
        *,
        policy: LiveConfig,
        stats: LiveStats,
        live: bool = True,
        grow: float | None = None,
        hold: bool | None = None,
    ) -> None:
        # grow/hold: the schedule's settings (streamdeid.build.schedule_for); default the policy's.
        super().__init__(
            tracker,
            mask_scale,
            min_size_px,
            grow=policy.skip_grow if grow is None else grow,
            hold=policy.lookahead if hold is None else hold,
        )
        self.policy = policy
        self.stats = stats
        self.live = live

    def blind(self, start: DetectorRun, index: int, t: float) -> bool:
        if not self.live:
            return False
        return masked_whole(
            frames_since_run=index - start.index, seconds_since_run=t - start.t, policy=self.policy
        )

    def mask_whole(self, packet: FramePacket) -> None:
        super().mask_whole(packet)
        self.stats.add("blind_frames")


class LiveSinkStage(Stage):
    """Writes masked frames to a sink opened on the first frame; closes it always.

    The sink is made lazily because a live source only knows its size and time base once it has
    delivered a frame. A frame whose pts does not rise (a source that restarted its clock after a
    reconnect) is restamped by the sink itself (:class:`~streamdeid.io.pts.RisingPts`).
    """

    name = "encode"

    def __init__(
        self,
        make_sink: Callable[[Frame], FrameSink],
        stats: LiveStats,
        clock: LatencyClock | None = None,
    ) -> None:
        super().__init__()
        self.make_sink = make_sink
        self.stats = stats
        self.clock = clock or LatencyClock()
        self.sink: FrameSink | None = None
        self.frames_written = 0

    def process(self, packet: FramePacket) -> None:
        frame = packet.frame
        if self.sink is None:
            self.sink = self.make_sink(frame)
            self.stats.attach_sink(self.sink)  # the publisher's packet drops (rule 5)
        self.sink.write(frame)
        self.frames_written += 1
        self.stats.frame_out(self.clock.latency_s(frame))
        return None

    def teardown(self) -> None:
        if self.sink is not None:
            self.sink.close()
