"""The live pipeline: bounded latency with a slow detector, and never a face let through for it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamdeid.config import Config
from streamdeid.live import channels as live_channels
from streamdeid.live import runner as live_runner
from streamdeid.live.channels import LatencyClock, LiveChannel
from streamdeid.live.endpoints import classify_output
from streamdeid.live.policy import LiveConfig
from streamdeid.live.runner import LivePipeline, paced
from streamdeid.live.session import Camera, run_camera
from streamdeid.live.stages import LiveDetectStage, LiveTrackStage
from streamdeid.live.stats import LiveStats
from streamdeid.pipeline.stage import Channel
from streamdeid.track.iou import IoUTracker
from streamdeid.types import Detections, EndOfStream, Frame, FramePacket

from helpers import ScriptedDetector, decode_frames, masked_share, probe

REPO = Path(__file__).resolve().parents[2]
# The policy tests reason frame by frame: the detector is scheduled on every frame.
SOLID = Config().override({"obscure.method": "solid", "pipeline.detect_every": 1})


class SlowDetector(ScriptedDetector):
    """Ground-truth boxes, but 100 ms per call: 2.5 frame periods at 25 fps."""

    def __init__(self, script: list, delay_s: float = 0.1) -> None:
        super().__init__(script)
        self.delay_s = delay_s

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        time.sleep(self.delay_s)
        return super().detect(frame)


class CollectSink:
    """A sink that keeps every written frame (pixels copied) and can be slow."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.frames: list[Frame] = []
        self.closed = False

    def write(self, frame: Frame) -> None:
        time.sleep(self.delay_s)
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


class CountingSink(CollectSink):
    """A slow sink that reads the run's counters as each frame comes in and as it is written.

    What it notes is counted in frames, not seconds, so a busy machine changes the numbers
    (more drops, fewer writes) but not the rules they obey.
    """

    def __init__(self, stats: LiveStats, delay_s: float) -> None:
        super().__init__(delay_s)
        self.stats = stats
        self.in_flight: list[int] = []  # captured, neither written nor dropped, as a write starts
        self.encode_drops: list[int] = []  # dropped in front of the encoder when a write ends

    def write(self, frame: Frame) -> None:
        s = self.stats.snapshot()  # one consistent reading
        self.in_flight.append(s.frames_in - len(self.frames) - s.dropped)
        super().write(frame)
        self.encode_drops.append(self.stats.snapshot().drops["encode"])


def unmasked(original: list[np.ndarray], written: dict[int, np.ndarray], gt: list[dict]) -> list:
    """(frame, box, share) for every ground-truth box less than 60 % changed in the output."""
    misses = []
    for i, image in written.items():
        for box in gt[i]["boxes"]:
            share = masked_share(original[i], image, box)
            if share < 0.6:
                misses.append((i, box, round(share, 2)))
    return misses


def camera(
    clip: Path,
    out: str,
    *,
    realtime: bool,
    live: LiveConfig | None = None,
    config: Config = SOLID,
) -> Camera:
    return Camera(
        "cam", str(clip), [classify_output(out)], config, live or LiveConfig(), realtime=realtime
    )


# --------------------------------------------------------------------------------------------------
# End to end through real codecs
# --------------------------------------------------------------------------------------------------


def test_slow_detector_keeps_latency_bounded_and_masks_every_face(synthetic, tmp_path) -> None:
    clip, gt = synthetic
    detector = SlowDetector([f["boxes"] for f in gt])
    out = tmp_path / "out.mkv"
    stats = LiveStats("cam")
    run_camera(
        camera(clip, str(out), realtime=True),
        stats,
        threading.Event(),
        detector_factory=lambda: detector,
    )
    s = stats.snapshot()
    # The detector cannot run on every frame at 25 fps, and the policy skipped (and counted)
    # the frames it had no time for instead of queueing them: every frame was either looked at
    # or skipped on its way through. Blocking on the detector instead would fill the capture
    # queue within the clip (10 fps against 25), and the capture would then drop frames.
    assert len(detector.calls) < 0.6 * len(gt)
    assert s.detect_skipped > 0 and s.detect_runs == len(detector.calls)
    assert s.detect_runs + s.detect_skipped == s.frames_in
    assert s.frames_in == s.frames_out == len(gt) and s.dropped == 0
    # (Latency in seconds is measured by benchmarks/live_latency.py, not asserted here.)
    # No frame went out with a face visible, including the one re-entering from the edge
    # between two detector runs (frames 37-40) and the first and last frames.
    written = decode_frames(out)
    assert len(written) == len(gt)
    assert unmasked(decode_frames(clip), dict(enumerate(written)), gt) == []


def test_file_input_without_realtime_blocks_and_detects_every_frame(synthetic, tmp_path) -> None:
    clip, gt = synthetic
    detector = SlowDetector([f["boxes"] for f in gt], delay_s=0.02)
    sink = CollectSink()
    cam = camera(clip, str(tmp_path / "unused.mp4"), realtime=False)
    stats = LiveStats("cam")
    run_camera(
        cam,
        stats,
        threading.Event(),
        detector_factory=lambda: detector,
        make_sink=lambda frame: sink,
    )
    s = stats.snapshot()
    assert detector.calls == list(range(len(gt)))
    assert s.detect_skipped == 0 and s.dropped == 0 and s.blind_frames == 0
    assert [f.index for f in sink.frames] == list(range(len(gt))) and sink.closed


def test_file_input_with_detect_every_3_masks_between_runs_and_detects_the_last(
    synthetic, tmp_path
) -> None:
    # A file read as fast as it decodes is masked as `streamdeid run` masks it: frames between
    # two runs are held and masked with both runs' faces, and the last frame is always a run.
    clip, gt = synthetic
    detector = SlowDetector([f["boxes"] for f in gt], delay_s=0.0)
    out = tmp_path / "out.mkv"
    every_3 = SOLID.override({"pipeline.detect_every": 3})
    cam = camera(clip, str(out), realtime=False, config=every_3)
    stats = LiveStats("cam")
    run_camera(cam, stats, threading.Event(), detector_factory=lambda: detector)
    last = len(gt) - 1
    assert last % 3 and detector.calls == [*range(0, len(gt), 3), last]
    assert stats.snapshot().blind_frames == 0
    written = decode_frames(out)
    assert len(written) == len(gt)
    assert unmasked(decode_frames(clip), dict(enumerate(written)), gt) == []


def test_cameras_follow_the_live_schedule_not_the_file_one(synthetic, tmp_path) -> None:
    # pipeline.detect_every (3 by default) is for files: holding frames for a fixed schedule
    # costs a camera latency, and the live policy skips the detector by itself when behind.
    clip, gt = synthetic
    detector = SlowDetector([f["boxes"] for f in gt], delay_s=0.0)
    every_3 = SOLID.override({"pipeline.detect_every": 3})
    cam = camera(clip, str(tmp_path / "o.mkv"), realtime=True, config=every_3)
    assert cam.live.detect_every == 1
    stats = LiveStats("cam")
    run_camera(cam, stats, threading.Event(), detector_factory=lambda: detector)
    s = stats.snapshot()
    # Every frame that reached the detector was scheduled: it either ran or was skipped for
    # being late (how many of each depends on the machine's speed). Every 3rd frame would
    # leave two in three frames neither.
    assert s.detect_runs + s.detect_skipped == s.frames_in - s.drops["detect"] > 0
    assert s.detect_runs == len(detector.calls) > 0


def test_stalled_encoder_drops_before_encoding_counts_and_never_leaks(synthetic, tmp_path) -> None:
    clip, gt = synthetic
    stats = LiveStats("cam")
    sink = CountingSink(stats, delay_s=0.15)  # 6.7 fps against a 25 fps camera
    policy = LiveConfig(drop_budget_s=0.2)
    cam = camera(clip, str(tmp_path / "unused.mp4"), realtime=True, live=policy)
    run_camera(
        cam,
        stats,
        threading.Event(),
        detector_factory=lambda: ScriptedDetector([f["boxes"] for f in gt]),
        clock=LatencyClock(),
        make_sink=lambda frame: sink,
    )
    s = stats.snapshot()
    assert s.drops["encode"] > 0 and s.drops["detect"] == s.drops["source"] == 0
    assert s.frames_out == len(sink.frames)
    assert s.frames_in == len(gt) and s.frames_out + s.dropped == s.frames_in  # all accounted
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices)
    # Latency is bounded in frames, not promised in seconds (benchmarks/live_latency.py measures
    # those): the queues are bounded, and what overflows them is the oldest frames.
    # Bounded: every frame captured and not yet written or dropped is in one of the four queues,
    # in the track stage's look-ahead hold, or in hand: one each for the capture thread and the
    # four stages, plus, for an instant, one that each queue's writer is evicting. (Without
    # dropping the backlog piles up in front of the capture instead: drops["encode"] catches it.)
    queued = policy.detect_queue_size + 3 * policy.queue_size
    in_hand = 1 + 4 + 4
    assert max(sink.in_flight) <= queued + policy.blind_frames + in_hand, sink.in_flight
    # Oldest first: the frames dropped in front of the encoder while it wrote one frame were all
    # older than the next frame it wrote, so it always takes the freshest. (Refusing the newest
    # instead would drop frames younger than the ones left waiting.) With k frames written
    # before frame x, x - k frames older than x were dropped somewhere.
    for k, (dropped, x) in enumerate(zip(sink.encode_drops[:-1], indices[1:], strict=True), 1):
        assert dropped <= x - k, (k, x, dropped, indices)
    assert indices[-1] == len(gt) - 1  # the newest frame always gets through
    original_frames = decode_frames(clip)
    assert unmasked(original_frames, {f.index: f.image for f in sink.frames}, gt) == []


# --------------------------------------------------------------------------------------------------
# The policy pieces, without threads
# --------------------------------------------------------------------------------------------------


def make_frame(index: int, t: float, size: tuple[int, int] = (320, 240)) -> Frame:
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    return Frame(index=index, image=img, pts=index, time_base=Fraction(1, 25), captured_at=t)


def dets(*boxes: tuple[float, float, float, float]) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def covers(packet: FramePacket, box: tuple[float, float, float, float]) -> bool:
    x1, y1, x2, y2 = box
    return any(
        r.xyxy[0] <= x1 and r.xyxy[1] <= y1 and r.xyxy[2] >= x2 and r.xyxy[3] >= y2
        for r in packet.regions
    )


def is_whole(packet: FramePacket) -> bool:
    f = packet.frame
    return [r.xyxy for r in packet.regions] == [(0, 0, f.width, f.height)]


def track_stage(**policy: object) -> tuple[LiveTrackStage, Channel, LiveStats]:
    stats = LiveStats("t")
    stage = LiveTrackStage(IoUTracker(), 1.3, 12, policy=LiveConfig(**policy), stats=stats)
    outbox = Channel(100)
    stage.outbox = outbox  # what Stage.run sets
    return stage, outbox, stats


def drain(ch: Channel) -> list[FramePacket]:
    out = []
    while ch.qsize():
        out.append(ch.get())
    return out


def test_skipped_frame_is_masked_with_the_next_detection_too() -> None:
    stage, outbox, _ = track_stage()
    t = 100.0
    a = stage.process(FramePacket(make_frame(0, t), detections=dets((50, 50, 90, 90))))
    assert a is not None and covers(a, (50, 50, 90, 90))
    # Frame 1: detector skipped. A face enters at the right edge; nobody has seen it yet.
    assert stage.process(FramePacket(make_frame(1, t + 0.04))) is None  # held
    new_face = (290, 60, 320, 110)
    b = stage.process(
        FramePacket(make_frame(2, t + 0.08), detections=dets((54, 50, 94, 90), new_face))
    )
    (held,) = drain(outbox)
    assert held.frame.index == 1 and b is not None
    assert covers(held, (52, 50, 92, 90))  # the known face, between its two positions
    assert covers(held, (300, 62, 320, 108))  # the new face, from the look-ahead


def test_fast_face_between_far_runs_is_covered_along_its_path() -> None:
    # 25 px per frame, 40 px wide: after 8 skipped frames the tracker sees a new face (no
    # overlap with its prediction), yet every frame between must be covered.
    stage, outbox, _ = track_stage()

    def box(i: int) -> tuple[float, float, float, float]:
        return (10 + 25 * i, 100, 50 + 25 * i, 140)

    stage.process(FramePacket(make_frame(0, 1.0), detections=dets(box(0))))
    for i in range(1, 9):
        assert stage.process(FramePacket(make_frame(i, 1.0 + 0.04 * i))) is None
    stage.process(FramePacket(make_frame(9, 1.36), detections=dets(box(9))))
    held = drain(outbox)
    assert [p.frame.index for p in held] == list(range(1, 9))
    assert all(covers(p, box(p.frame.index)) for p in held)
    assert not any(is_whole(p) for p in held)


def test_frames_before_the_first_detection_and_blind_gaps_are_masked_whole() -> None:
    stage, outbox, stats = track_stage(blind_s=0.5, blind_frames=12)
    first = stage.process(FramePacket(make_frame(0, 10.0)))
    assert first is not None and is_whole(first)
    stage.process(FramePacket(make_frame(1, 10.04), detections=dets((10, 10, 40, 40))))
    assert stage.process(FramePacket(make_frame(2, 10.08))) is None  # held, within the window
    late = stage.process(FramePacket(make_frame(3, 10.7)))  # 0.62 s without a detection
    (held,) = drain(outbox)
    assert late is not None and is_whole(late) and is_whole(held)
    # 13 frames after the last run is blind too, even if the clock says otherwise.
    stage.process(FramePacket(make_frame(4, 10.72), detections=dets((10, 10, 40, 40))))
    far = stage.process(FramePacket(make_frame(17, 10.73)))
    assert far is not None and is_whole(far)
    assert stats.count("blind_frames") == 4


def test_frames_still_held_at_end_of_stream_are_masked_whole() -> None:
    stage, outbox, _ = track_stage()
    stage.process(FramePacket(make_frame(0, 1.0), detections=dets((10, 10, 40, 40))))
    assert stage.process(FramePacket(make_frame(1, 1.04))) is None
    stage.teardown()
    (held,) = drain(outbox)
    assert is_whole(held)


def test_detect_stage_skips_when_behind_and_runs_when_blind_too_long() -> None:
    stats = LiveStats("t")
    detector = ScriptedDetector([[(1, 1, 9, 9)]] * 10)
    stage = LiveDetectStage(lambda: detector, 1, policy=LiveConfig(), stats=stats)
    inbox = Channel(8)
    stage._inbox = inbox
    stage.setup()
    now = time.monotonic()
    fresh = stage.process(FramePacket(make_frame(0, now)))
    assert fresh.detections is not None  # on time, nothing waiting: detect
    inbox.put(FramePacket(make_frame(2, now)))
    waiting = stage.process(FramePacket(make_frame(1, now)))
    assert waiting.detections is None and not waiting.detection_failed  # newer frame waiting
    inbox.get()
    old = stage.process(FramePacket(make_frame(2, now - 1.0)))
    assert old.detections is None  # older than the age budget
    stage._last_run = time.monotonic() - 1.0  # blind for 1 s: look, whatever the backlog
    inbox.put(FramePacket(make_frame(4, now)))
    forced = stage.process(FramePacket(make_frame(3, now)))
    assert forced.detections is not None
    assert stats.count("detect_skipped") == 2 and stats.count("detect_runs") == 2
    assert detector.calls == [0, 3]


def test_detect_stage_skips_while_a_later_stage_is_the_bottleneck() -> None:
    # On two cores the model's run takes the CPU a slow encoder needs: while a later stage's
    # inbox is full the detector skips (tracks and look-ahead mask the frame), and looks again
    # as soon as there is room; blind too long, it looks whatever the backlog.
    stats = LiveStats("t")
    detector = ScriptedDetector([[(1, 1, 9, 9)]] * 10)
    stage = LiveDetectStage(lambda: detector, 1, policy=LiveConfig(), stats=stats)
    stage._inbox = Channel(8)
    encoder_inbox = Channel(2)
    stage.downstream = [Channel(2), encoder_inbox]
    stage.setup()
    now = time.monotonic()
    assert stage.process(FramePacket(make_frame(0, now))).detections is not None
    encoder_inbox.put("a")
    encoder_inbox.put("b")  # full
    assert stage.process(FramePacket(make_frame(1, now))).detections is None
    encoder_inbox.get()
    assert stage.process(FramePacket(make_frame(2, now))).detections is not None
    encoder_inbox.put("c")  # full again
    stage._last_run = time.monotonic() - 1.0
    assert stage.process(FramePacket(make_frame(3, now))).detections is not None
    assert detector.calls == [0, 2, 3] and stats.count("detect_skipped") == 1


def test_live_pipeline_hands_the_detect_stage_the_queues_after_it() -> None:
    stats = LiveStats("t")
    detect = LiveDetectStage(lambda: ScriptedDetector([]), 1, policy=LiveConfig(), stats=stats)
    track = LiveTrackStage(IoUTracker(), 1.3, 12, policy=LiveConfig(), stats=stats)
    pipeline = LivePipeline([], [detect, track], live=True, policy=LiveConfig(), stats=stats)
    channels = pipeline._make_channels()
    assert list(detect.downstream) == channels[1:] and len(channels) == 2


class FakeClock:
    """Stands in for ``time`` in :mod:`streamdeid.live.channels` or :mod:`~streamdeid.live.runner`.

    Only the test moves it.

    Each reading is counted, so the test can wait until code that polls the clock has looked
    at it again (it is still waiting) instead of sleeping and hoping.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.readings = 0
        self._read = threading.Condition()

    def monotonic(self) -> float:
        with self._read:
            self.readings += 1
            self._read.notify_all()
            return self.now

    def advance(self, seconds: float) -> None:
        with self._read:
            self.now += seconds

    def wait_readings(self, more: int, timeout_s: float = 30) -> bool:
        """Wait (at most ``timeout_s``, a hang guard) for ``more`` readings after this call."""
        with self._read:
            target = self.readings + more
            return self._read.wait_for(lambda: self.readings >= target, timeout_s)


class Put:
    """``channel.put(item)`` on a thread of its own, so the test can watch it wait."""

    def __init__(self, channel: Channel, item: object) -> None:
        self.returned: list[bool] = []
        self._thread = threading.Thread(
            target=lambda: self.returned.append(channel.put(item)), daemon=True
        )
        self._thread.start()

    def result(self, timeout_s: float = 30) -> bool | None:
        """What ``put`` returned, or None while it is still waiting after ``timeout_s``."""
        self._thread.join(timeout_s)
        return self.returned[0] if self.returned else None


def test_live_channel_evicts_the_oldest_after_budget_but_never_end_of_stream(monkeypatch) -> None:
    # The budget is read on the channel's clock, which only this test moves: what is checked is
    # what the channel does before and after the budget is spent, not how fast it does it.
    clock = FakeClock()
    monkeypatch.setattr(live_channels, "time", clock)
    drops: list[int] = []
    ch = LiveChannel(2, budget_s=0.1, on_drop=drops.append)
    try:
        assert ch.put(1) and ch.put(2)
        put = Put(ch, 3)  # full: waits for the budget...
        assert clock.wait_readings(3) and put.result(timeout_s=0) is None and drops == []
        clock.advance(0.1)
        assert put.result() is True and drops == [1]  # ...then evicts the oldest
        assert Put(ch, 4).result() is True  # still full since then: evicts with no more waiting
        assert drops == [1, 2] and ch.dropped == 2
        assert ch.get() == 3  # the consumer gets the freshest frames, in order
        assert ch.put(5)  # there was room: accepted, and the full clock is reset...
        put = Put(ch, 6)  # ...so full again, the put waits a whole budget again
        assert clock.wait_readings(3) and put.result(timeout_s=0) is None
        assert ch.get() == 4  # a consumer back within the budget: nothing is dropped
        assert put.result() is True and drops == [1, 2]
        clock.advance(60)  # long past any budget: end of stream waits as long as it takes
        put = Put(ch, EndOfStream())
        assert put.result(timeout_s=0.5) is None and drops == [1, 2]  # evicts nothing
        assert ch.get() == 5 and put.result() is True
        assert ch.get() == 6 and isinstance(ch.get(), EndOfStream) and drops == [1, 2]
    finally:
        ch.reader_gone.set()  # frees a put left waiting by a failed assertion


class FakeStop:
    """The stop event of :func:`paced` on a fake clock: waiting moves the clock, at once."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.clock.advance(timeout)
        return False


def test_paced_frames_arrive_at_their_presentation_time(monkeypatch) -> None:
    frames = [make_frame(i, 0.0) for i in range(6)]  # pts i at 1/25 s
    t0 = time.monotonic()
    out = list(paced(frames, threading.Event()))
    assert time.monotonic() - t0 > 0.18  # it really waits: 5 frame periods
    gaps = np.diff([f.captured_at for f in out])
    assert np.allclose(gaps, 0.04, atol=1e-6)
    # On a clock only the test moves: each frame comes out exactly when due, no earlier and no
    # later, and once the consumer is late, late frames come out at once, stamped as due.
    clock = FakeClock(now=100.0)
    monkeypatch.setattr(live_runner, "time", clock)
    stop = FakeStop(clock)
    stamped, yielded_at = [], []
    for frame in paced(frames, stop):  # type: ignore[arg-type]
        stamped.append(frame.captured_at)
        yielded_at.append(clock.now)
        if frame.index == 2:
            clock.advance(0.5)  # the consumer falls 12 frames behind
    assert stop.waits == pytest.approx([0.04, 0.04])
    assert yielded_at == pytest.approx([100.0, 100.04, 100.08, 100.58, 100.58, 100.58])
    assert stamped == pytest.approx([100.0, 100.04, 100.08, 100.12, 100.16, 100.2])


# --------------------------------------------------------------------------------------------------
# The CLI, as a user meets it: stats, /metrics, JSON logs, SIGINT
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """10 s at 25 fps, 320x180: long enough to be interrupted in the middle."""
    from streamdeid.testing.synthetic import synthetic_clip

    path = tmp_path_factory.mktemp("live") / "long.mp4"
    gt = synthetic_clip(path, n_frames=250, size=(320, 180), seed=1, audio=False)
    return path, gt


class StderrReader:
    """Collects a subprocess's stderr lines on a thread, so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared in stderr: {self.lines}")

    def join(self) -> None:
        self._thread.join(10)


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_sigint_closes_a_playable_output_and_exits_130(long_clip, tmp_path) -> None:
    clip, gt = long_clip
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdeid",
            "live",
            str(clip),
            "-o",
            str(out),
            "--realtime",
            "--method",
            "solid",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            "--stats-interval",
            "0.5",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    reader = StderrReader(proc)
    try:
        url = reader.wait_for("streamdeid: metrics at").split("metrics at ", 1)[1].strip()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = scrape(url)
            if samples.get('streamdeid_frames_out_total{camera="long"}', 0) >= 25:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no frames came out")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join()
    assert proc.returncode == 130, reader.lines
    errors = [ln for ln in reader.lines if ln.startswith("streamdeid: error")]
    assert len(errors) == 1 and "closed cleanly" in errors[0]
    assert not any("Traceback" in ln for ln in reader.lines)
    # --log-format json: every other line is one JSON object naming camera and event.
    records = [json.loads(ln) for ln in reader.lines if ln.startswith("{")]
    assert len(records) + 2 == len(reader.lines)  # + the metrics URL and the error line
    events = {r.get("event") for r in records}
    assert {"camera_start", "stats", "summary"} <= events
    assert all(r["camera"] == "long" for r in records if r.get("event") == "stats")
    # The output is playable, ends where we stopped, and every face in it is masked.
    info = probe(str(out))
    n = len(info["pts"])  # type: ignore[arg-type]
    assert sorted(info["pts"]) == info["pts"]  # type: ignore[type-var]
    assert 20 <= n < len(gt)
    written = decode_frames(out)
    original = decode_frames(clip)
    times = info["times"]
    by_index = {round(t * 25): image for t, image in zip(times, written, strict=True)}  # type: ignore[call-overload]
    assert unmasked(original, by_index, gt) == []


# --------------------------------------------------------------------------------------------------
# Through a real RTSP server (GStreamer, tests/live/conftest.py)
# --------------------------------------------------------------------------------------------------


class TimedDetector(SlowDetector):
    """Ground truth looked up by presentation time: RTSP frames carry no clip index."""

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        assert isinstance(frame, Frame) and frame.pts is not None and frame.time_base
        index = round(float(frame.pts * frame.time_base) * 25)
        return super().detect(dataclasses.replace(frame, index=index))


def test_rtsp_camera_is_masked_live_into_a_playable_file(rtsp_server, live_clip, tmp_path) -> None:
    from streamdeid.testing.render import render_frames
    from streamdeid.testing.synthetic import default_face_paths

    n, size = 100, (640, 360)
    gt = [{"boxes": boxes} for _, boxes in render_frames(size, n, default_face_paths(size, n))]
    detector = TimedDetector([f["boxes"] for f in gt])
    out = tmp_path / "cam.mkv"
    policy = LiveConfig(source={"reconnect": False, "open_timeout_s": 5})  # end with the clip
    cam = Camera("cam", f"{rtsp_server.url}/cam", [classify_output(str(out))], SOLID, policy)
    stats = LiveStats("cam")
    run_camera(cam, stats, threading.Event(), detector_factory=lambda: detector)
    s = stats.snapshot()
    assert s.frames_out >= 0.9 * n and s.frames_out + s.dropped == s.frames_in
    # The 100 ms detector was skipped on the frames it had no time for, not queued for.
    assert s.detect_skipped > 0 and s.detect_runs < 0.6 * s.frames_in
    assert s.detect_runs + s.detect_skipped == s.frames_in - s.drops["detect"]
    info = probe(str(out))
    original = decode_frames(live_clip)
    written = decode_frames(out)
    times = info["times"]
    assert len(written) == s.frames_out and sorted(times) == times  # type: ignore[type-var]
    by_index = {round(t * 25): image for t, image in zip(times, written, strict=True)}  # type: ignore[call-overload]
    assert unmasked(original, by_index, gt) == []


class RecordingClock(LatencyClock):
    """Remembers the pts of every frame written, in order (segments restart pts at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[Frame] = []

    def latency_s(self, frame: Frame) -> float:
        self.written.append(frame)
        return super().latency_s(frame)


def test_rtsp_in_segments_and_rtsp_out_read_back(rtsp_server, live_clip, tmp_path) -> None:
    from streamdeid.testing.render import render_frames
    from streamdeid.testing.synthetic import default_face_paths

    n, size = 100, (640, 360)
    gt = [{"boxes": boxes} for _, boxes in render_frames(size, n, default_face_paths(size, n))]
    segments = tmp_path / "segments"
    outputs = [
        classify_output(f"{segments}/", segment_time_s=1.0),
        classify_output(f"{rtsp_server.url}/out"),
    ]
    policy = LiveConfig(source={"reconnect": False})
    cam = Camera("door", f"{rtsp_server.url}/cam", outputs, SOLID, policy)
    stats, clock = LiveStats("door"), RecordingClock()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_camera(
                cam, stats, threading.Event(),
                detector_factory=lambda: TimedDetector([f["boxes"] for f in gt], delay_s=0.06),
                clock=clock,
            )  # fmt: skip
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            errors.append(e)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 20
    while stats.count("frames_out") < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Read the republished stream back through a real RTSP client.
    import av

    relayed = []
    with av.open(
        f"{rtsp_server.url}/relay", options={"rtsp_transport": "tcp"}, timeout=(5, 5)
    ) as c:
        for frame in c.decode(video=0):
            relayed.append((frame.width, frame.height))
            if len(relayed) >= 10:
                break
    runner.join(30)
    assert not runner.is_alive() and errors == []
    assert relayed == [size] * 10
    files = sorted(segments.glob("door_*.mp4"))
    assert len(files) >= 3  # 4 s of video in 1-s segments, each playable on its own
    written = [image for f in files for image in decode_frames(f)]
    assert len(written) == len(clock.written) == stats.count("frames_out")
    original = decode_frames(live_clip)
    by_index = {
        round(float(f.pts * f.time_base) * 25): image  # type: ignore[operator]
        for f, image in zip(clock.written, written, strict=True)
    }
    assert unmasked(original, by_index, gt) == []


@pytest.mark.parametrize(("live", "motion_search"), [(True, b"me=dia"), (False, b"me=hex")])
def test_a_camera_written_to_a_file_encodes_with_the_live_preset(
    tmp_path: Path, live: bool, motion_search: bytes
) -> None:
    # A camera cannot wait for its encoder whatever the output is (superfast: x264 writes
    # me=dia into the stream); a file read as fast as it decodes is encoded as `streamdeid run`
    # would (veryfast: me=hex). A preset named in the config wins (ultrafast: subme=0).
    from streamdeid.live.endpoints import LiveInput, SinkFactory

    source = LiveInput(frames=[], live=live, source=None, name="cam")

    def written(config: Config, name: str) -> bytes:
        out = tmp_path / name
        sink = SinkFactory([classify_output(str(out))], config, source)(
            make_frame(0, 0.0, (96, 64))
        )
        for i in range(3):
            sink.write(make_frame(i, i / 25, (96, 64)))
        sink.close()
        return out.read_bytes()

    assert motion_search in written(SOLID, "default.mkv")
    assert b"subme=0" in written(SOLID.override({"encoder.preset": "ultrafast"}), "named.mkv")
