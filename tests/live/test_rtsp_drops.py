"""The RTSP publisher's drops: policy rule 5, and every dropped packet counted."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from streamdeid.io.frame_sink import SinkGroup
from streamdeid.io.rtsp_sink import RtspSink
from streamdeid.live.metrics import render
from streamdeid.live.policy import rtsp_sends
from streamdeid.live.stages import LiveSinkStage
from streamdeid.live.stats import LiveStats
from streamdeid.types import Frame, FramePacket


@pytest.mark.parametrize(
    ("keyframe", "after_gap", "sent"),
    [
        (True, False, True),
        (False, False, True),  # the stream goes on
        (True, True, True),  # a viewer can resume here
        (False, True, False),  # would show a picture without its reference: dropped
    ],
)
def test_rtsp_sends(keyframe: bool, after_gap: bool, sent: bool) -> None:
    assert rtsp_sends(keyframe, after_gap=after_gap) is sent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_full_queue_drops_until_the_next_keyframe_and_counts_every_packet() -> None:
    sink = RtspSink(f"rtsp://127.0.0.1:{closed_port()}/out", queue_s=0.08)  # 2 packets
    stop = threading.Event()
    # A sender that never sends: the queue fills as when the server is slower than the stream.
    sink._thread = threading.Thread(target=stop.wait, daemon=True)
    sink._thread.start()
    sink._encoder = SimpleNamespace(time_base=Fraction(1, 1000))  # type: ignore[assignment]

    ticks = itertools.count(0, 40)

    def put(keyframe: bool) -> None:
        packet = av.Packet(b"\x00\x00\x00\x01")
        packet.is_keyframe = keyframe
        pts = next(ticks)
        sink.put(packet, pts, pts, 0.0)

    try:
        for key in (True, False):
            put(key)  # queued
        sink.wants_keyframe(0)  # the first keyframe request is consumed
        put(False)  # queue full: dropped, and a keyframe is asked for
        assert sink.packets_dropped == 1 and sink.wants_keyframe(0)
        put(False)  # after the gap, only a keyframe may go
        assert sink.packets_dropped == 2
        sink._queue.get_nowait()  # the server took one
        put(False)
        assert sink.packets_dropped == 3, "still waiting for a keyframe"
        put(True)  # resumes on it
        assert sink.packets_dropped == 3 and sink._queue.qsize() == 2
    finally:
        stop.set()


def test_every_packet_not_sent_while_nobody_listens_is_counted_and_shown() -> None:
    sink = RtspSink(
        f"rtsp://127.0.0.1:{closed_port()}/out", backoff_initial_s=0.05, backoff_max_s=0.1
    )
    # Through the live encode stage, as a camera writes: the drops reach the camera's stats.
    stats = LiveStats("cam")
    encode = LiveSinkStage(lambda frame: SinkGroup([sink]), stats)
    rng = np.random.default_rng(0)
    for i in range(30):
        image = rng.integers(0, 255, (64, 96, 3), np.uint8)
        frame = Frame(i, image, i * 3600, Fraction(1, 90_000), time.monotonic())
        encode.process(FramePacket(frame))
    encode.teardown()
    assert sink.packets_sent == 0 and sink.failures >= 1
    assert sink.packets_dropped == sink.frames_written == 30
    snap = stats.snapshot()
    assert snap.packets_dropped == {sink.name: 30} and "pkt_drop=30" in snap.line()
    output = f'output="{sink.name}"'
    assert f'streamdeid_packets_dropped_total{{camera="cam",{output}}} 30' in render([snap])
