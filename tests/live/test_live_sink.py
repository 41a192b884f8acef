"""Live outputs through real codecs, real files and a real RTSP server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from streamdeid.errors import ConfigError, OutputNotWritableError, SinkError
from streamdeid.io import live_encoder
from streamdeid.io.live_source import LiveFrame, LiveSource
from streamdeid.io.rtsp_sink import RtspSink
from streamdeid.io.segment_sink import SegmentSink
from streamdeid.io.tee_sink import TeeSink
from streamdeid.pipeline.stages import SinkStage
from streamdeid.types import FramePacket

FPS = 25
TB = Fraction(1, 90_000)
SIZE = (320, 180)
REPO = Path(__file__).resolve().parents[2]


def make_frames(n: int, *, start_wall: float | None = None) -> Iterator[LiveFrame]:
    """Moving colour bars at 25 fps, stamped like LiveSource stamps them."""
    w, h = SIZE
    x = np.arange(w, dtype=np.int32)[None, :, None]
    y = np.arange(h, dtype=np.int32)[:, None, None]
    wall0 = time.time() if start_wall is None else start_wall
    for i in range(n):
        image = ((x * 3 + y + i * 8 + np.array([0, 85, 170])) % 256).astype(np.uint8)
        yield LiveFrame(
            index=i,
            image=np.ascontiguousarray(image),
            pts=i * 3600,
            time_base=TB,
            captured_at=time.monotonic(),
            wall_time=wall0 + i / FPS,
        )


def paced(frames: Iterator[LiveFrame]) -> Iterator[LiveFrame]:
    """Hand frames out at 25 fps, like a camera would."""
    t0 = time.monotonic()
    for i, frame in enumerate(frames):
        time.sleep(max(0.0, t0 + i / FPS - time.monotonic()))
        yield frame


def decode(path: Path) -> tuple[list[Any], Any]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return frames, container.format.name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_segments_rotate_on_keyframes_and_each_file_plays_alone(
    tmp_path: Path, container: str
) -> None:
    sink = SegmentSink(tmp_path, segment_time_s=2, container=container, prefix="cam1")
    for frame in make_frames(150, start_wall=1_795_000_000.0):  # 6 s of media
        sink.write(frame)
    sink.close()
    sink.close()  # idempotent

    assert [p.name for p in sink.segments] == [
        f"cam1_20261118T{t}Z.{container}" for t in ("110640", "110642", "110644")
    ]
    total = 0
    for path in sink.segments:
        frames, _ = decode(path)
        assert frames[0].key_frame, f"{path.name} must start on a keyframe"
        assert frames[0].pts == 0, "every segment starts at pts 0"
        assert len(frames) == 50, f"{path.name}: 2 s at 25 fps"
        assert (frames[0].width, frames[0].height) == SIZE
        total += len(frames)
    assert total == 150 == sink.frames_written


def test_segment_pattern_names_files_and_bad_targets_are_refused(tmp_path: Path) -> None:
    sink = SegmentSink(tmp_path / "door_{start}.mkv", segment_time_s=60, container="mkv")
    for frame in make_frames(5, start_wall=1_795_000_000.0):
        sink.write(frame)
    sink.close()
    assert [p.name for p in sink.segments] == ["door_20261118T110640Z.mkv"]

    with pytest.raises(ConfigError, match="start"):
        SegmentSink(tmp_path / "door.mp4")
    with pytest.raises(ConfigError, match=r"\.mp4"):
        SegmentSink(tmp_path / "door_{start}.mkv", container="mp4")
    with pytest.raises(ConfigError, match="container"):
        SegmentSink(tmp_path, container="avi")
    with pytest.raises(OutputNotWritableError, match="missing"):
        SegmentSink(tmp_path / "missing" / "x_{start}.mp4")


WRITER = textwrap.dedent(
    """
    import sys, time
    from fractions import Fraction
    import numpy as np
    from streamdeid.io.segment_sink import SegmentSink
    from streamdeid.types import Frame

    sink = SegmentSink(sys.argv[1], segment_time_s=600)
    for i in range(100_000):
        image = np.full((180, 320, 3), (i * 8) % 256, np.uint8)
        image[:, (i * 4) % 320] = 255
        sink.write(Frame(i, image, i * 3600, Fraction(1, 90000), time.monotonic()))
        if i % 25 == 24:
            print("WROTE", i + 1, flush=True)
            time.sleep(0.05)
    """
)


@pytest.mark.slow
def test_sigkilled_writer_leaves_a_playable_fragmented_mp4(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        written = 0
        while written < 100 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            written = int(line.split()[1])
        assert written >= 100, "the writer did not get going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

    (path,) = tmp_path.glob("cam_*.mp4")
    frames, format_name = decode(path)
    assert "mp4" in format_name
    # Fragments are cut at least every second: at most the last one (25 frames) is lost.
    assert len(frames) >= written - 25
    assert frames[0].key_frame


def test_rtsp_sink_publishes_and_a_live_source_reads_it_back(
    rtsp_server_factory: Callable[..., Any],
) -> None:
    server = rtsp_server_factory()
    got: list[LiveFrame] = []
    stop = threading.Event()
    reader = LiveSource(f"{server.url}/relay", stop=stop, open_timeout_s=5)

    def read() -> None:
        for frame in reader.frames():
            got.append(frame)

    thread = threading.Thread(target=read, name="test-relay-reader")
    thread.start()
    sink = RtspSink(f"{server.url}/out")
    written = 0
    try:
        # Publish until 50 frames came back: the reader joins the relay whenever it manages to.
        # The cap (30 s of frames) only keeps a broken relay from hanging the test.
        for frame in paced(make_frames(30 * FPS)):
            sink.write(frame)
            written += 1
            if len(got) >= 50:
                break
        assert sink.connected
    finally:
        sink.close()
        stop.set()
        thread.join(30)

    assert not thread.is_alive()
    assert len(got) >= 50, "what is published comes back through the relay"
    assert sink.packets_sent == written and sink.packets_dropped == 0
    assert sink.packet_drops() == {sink.name: 0}
    assert sink.reconnects == 0 and sink.failures == 0
    assert got[0].image.shape == (SIZE[1], SIZE[0], 3)
    assert reader.info is not None and reader.info.codec == "h264"


def test_rtsp_sink_never_blocks_or_raises_while_nobody_listens() -> None:
    events: list[str] = []
    threads: set[str] = set()

    def on_event(kind: str, detail: str) -> None:
        events.append(f"{kind} {detail}")
        threads.add(threading.current_thread().name)

    sink = RtspSink(
        f"rtsp://user:pw@127.0.0.1:{closed_port()}/out",
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
        on_event=on_event,
    )
    for frame in paced(make_frames(25)):
        sink.write(frame)
    sink.close()
    assert not sink.connected and sink.packets_sent == 0
    assert sink.failures >= 2, "it kept retrying"
    assert events and all(e.startswith("reconnecting") for e in events)
    assert not any("pw" in e for e in events)
    # Never blocks: connecting, failing and backing off all happen on the sender's own thread,
    # never on the thread that writes (how fast the writes went is not the point).
    assert {name.split(":", 1)[0] for name in threads} == {"streamdeid.rtsp-out"}


@pytest.mark.slow
def test_tee_encodes_once_for_segments_and_rtsp_and_outlives_the_server(
    rtsp_server_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoders: list[Any] = []

    class CountingEncoder(live_encoder.LiveEncoder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            encoders.append(self)

    monkeypatch.setattr(live_encoder, "LiveEncoder", CountingEncoder)
    server = rtsp_server_factory()
    segments = SegmentSink(tmp_path, segment_time_s=2)
    push = RtspSink(f"{server.url}/out", backoff_initial_s=0.2, backoff_max_s=0.5)
    tee = TeeSink([segments, push])
    frames = paced(make_frames(1_000_000))

    def write_until(done: Callable[[], bool], what: str) -> LiveFrame:
        """Write frames at 25 fps until ``done()``; the 30 s cap only guards against a hang."""
        for _ in range(30 * FPS):
            frame = next(frames)
            tee.write(frame)
            if done():
                return frame
        raise AssertionError(f"30 s of frames and still not {what}")

    with tee:
        write_until(lambda: push.packets_sent >= FPS, "publishing")  # a second is out
        server.stop()
        write_until(lambda: not push.connected, "noticing the server is gone")
        sent = push.packets_sent
        down = tee.frames_written
        write_until(lambda: tee.frames_written >= down + 2 * FPS, "recording")  # 2 s away
        assert push.packets_sent == sent  # nobody to send them to
        server.start()  # same port
        back = write_until(lambda: push.connected, "connected again")
        write_until(lambda: push.packets_sent >= sent + FPS, "publishing again")
        with pytest.raises(SinkError, match="belongs to a TeeSink"):
            segments.write(back)

    assert len(encoders) == 1, "two outputs, one encode"
    decoded = sum(len(decode(path)[0]) for path in segments.segments)
    assert decoded == tee.frames_written, "the recording lost nothing while the server was away"
    assert len(segments.segments) >= 2 and all(decode(p)[0][0].key_frame for p in segments.segments)
    assert push.failures >= 1 and push.reconnects == 1
    assert tee.errors == {segments.name: 0, push.name: 0}


def test_sink_stage_drives_a_live_sink(tmp_path: Path) -> None:
    sink = SegmentSink(tmp_path, segment_time_s=60)
    stage = SinkStage(sink)
    for frame in make_frames(10):
        stage.process(FramePacket(frame=frame))
    sink.close()
    with pytest.raises(SinkError, match="after close"):
        sink.write(next(make_frames(1)))
    (path,) = sink.segments
    assert len(decode(path)[0]) == 10
    assert re.fullmatch(r"cam_\d{8}T\d{6}Z\.mp4", path.name)
