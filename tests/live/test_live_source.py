"""LiveSource against a real RTSP server: reading, reconnecting, stopping, giving up."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from streamdeid.errors import ConfigError, InputNotFoundError, SourceTimeoutError
from streamdeid.io.live_source import LiveFrame, LiveSource, mask_url


class Events:
    """Collects ``on_event`` calls (they come from the reader thread)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, detail: str) -> None:
        with self._lock:
            self.items.append((time.monotonic(), kind, detail))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for _, kind, _ in self.items]


def assert_strictly_increasing(frames: list[LiveFrame]) -> None:
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts)), pts
    index = [f.index for f in frames]
    assert all(b > a for a, b in itertools.pairwise(index)), index


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_reads_a_served_clip_at_native_rate_with_increasing_pts(
    rtsp_server: Any, transport: str
) -> None:
    events = Events()
    source = LiveSource(
        f"{rtsp_server.url}/cam", transport=transport, reconnect=False, on_event=events
    )
    started = time.monotonic()
    frames = list(source.frames())
    elapsed = time.monotonic() - started

    # The server plays 100 frames at 25 fps; the decoder may skip what precedes a keyframe.
    assert 95 <= len(frames) <= 100
    assert elapsed > 3.0, "a live stream arrives at its native rate, not as fast as a file"
    assert all(isinstance(f, LiveFrame) for f in frames)
    assert frames[0].image.shape == (360, 640, 3)
    assert_strictly_increasing(frames)
    assert source.info is not None
    assert (source.info.width, source.info.height) == (640, 360)
    assert frames[0].time_base == source.info.time_base == Fraction(1, 90_000)
    assert float(source.info.frame_rate) == pytest.approx(25, rel=0.05)
    # pts measure time: 99 frame periods of 40 ms from first to last.
    span_s = float((frames[-1].pts - frames[0].pts) * source.info.time_base)
    assert span_s == pytest.approx((len(frames) - 1) / 25, abs=0.1)
    assert abs(frames[-1].wall_time - time.time()) < 2.0
    assert source.frames_read == len(frames) + source.frames_dropped
    assert source.reconnects == 0 and not source.connected
    assert events.kinds() == ["connected"]


@pytest.mark.slow
def test_reconnects_after_the_server_restarts_on_the_same_port(
    rtsp_server: Any,
) -> None:
    events = Events()
    stop = threading.Event()
    source = LiveSource(
        f"{rtsp_server.url}/cam",
        backoff_initial_s=0.25,
        backoff_max_s=1.0,
        jitter=0.1,
        stop=stop,
        on_event=events,
    )
    frames: list[LiveFrame] = []
    ready_at: float | None = None
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 25:
            ready_at = rtsp_server.restart(down_s=0.5)
        if ready_at is not None and frame.captured_at > ready_at and len(frames) > 60:
            stop.set()  # enough frames from the new connection

    assert ready_at is not None
    after = [f for f in frames if f.captured_at > ready_at]
    assert len(after) > 20, "frames keep coming after the reconnect"
    recovery_s = after[0].captured_at - ready_at
    print(f"reconnect: first new frame {recovery_s:.2f} s after the server was back")
    assert recovery_s < 5.0
    assert source.reconnects == 1
    assert "disconnected" in events.kinds() and events.kinds().count("connected") == 2
    assert_strictly_increasing(frames)
    # The pts gap across the outage is the wall time away (>= the 0.5 s the server was down).
    before = [f for f in frames if f.captured_at <= ready_at]
    pts_gap_s = float((after[0].pts - before[-1].pts) * after[0].time_base)
    wall_gap_s = after[0].captured_at - before[-1].captured_at
    assert pts_gap_s >= 0.5
    assert pts_gap_s == pytest.approx(wall_gap_s, abs=0.25)


def test_stop_ends_a_read_blocked_on_a_frozen_server_within_a_second(
    rtsp_server: Any,
) -> None:
    stop = threading.Event()
    source = LiveSource(f"{rtsp_server.url}/cam", read_timeout_s=5, stop=stop)
    count = 0
    stopped_at: float | None = None
    try:
        for _frame in source.frames():
            count += 1
            if count == 10:
                rtsp_server.pause()  # the socket stays open; the next reads block

                def later() -> None:
                    nonlocal stopped_at
                    time.sleep(0.6)
                    stopped_at = time.monotonic()
                    stop.set()

                threading.Thread(target=later, daemon=True).start()
        ended_at = time.monotonic()
    finally:
        rtsp_server.resume()
    assert stopped_at is not None
    assert ended_at - stopped_at < 1.0
    assert count <= 10 + 8, "no more frames than were already queued when the server froze"


def test_stop_ends_an_open_blocked_on_a_silent_server_within_a_second() -> None:
    stop = threading.Event()
    with silent_listener() as port:
        source = LiveSource(f"rtsp://127.0.0.1:{port}/cam", open_timeout_s=5, stop=stop)
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert list(source.frames()) == []
        assert time.monotonic() - started < 0.3 + 1.0


@pytest.mark.parametrize("server", ["refuses", "never_answers"])
def test_unreachable_url_gives_up_with_a_one_line_masked_timeout(server: str) -> None:
    events = Events()
    with silent_listener() as silent:
        port = closed_port() if server == "refuses" else silent
        url = f"rtsp://admin:s3cret@127.0.0.1:{port}/cam"
        source = LiveSource(
            url,
            open_timeout_s=0.5,
            max_reconnects=2,
            backoff_initial_s=0.05,
            backoff_max_s=0.1,
            on_event=events,
        )
        with pytest.raises(SourceTimeoutError) as caught:
            list(source.frames())
    message = str(caught.value)
    assert "\n" not in message
    assert f"rtsp://***@127.0.0.1:{port}/cam" in message
    assert "s3cret" not in message and "admin" not in message
    assert "3 attempt(s)" in message
    assert events.kinds() == ["reconnecting", "reconnecting", "gave_up"]
    assert all("s3cret" not in detail for _, _, detail in events.items)


def test_file_without_realtime_is_read_once_as_fast_as_possible(live_clip: Path) -> None:
    source = LiveSource(str(live_clip))
    started = time.monotonic()
    frames = list(source.frames())
    assert len(frames) == 100
    assert time.monotonic() - started < 3.0, "no pacing without realtime=True"
    assert [f.index for f in frames] == list(range(100))
    assert_strictly_increasing(frames)
    assert source.reconnects == 0 and source.frames_dropped == 0
    assert source.info is not None and source.info.frames == 100


def test_file_with_realtime_is_paced_like_a_camera(
    tmp_path: Path, make_h264_clip: Callable[..., Path]
) -> None:
    clip = make_h264_clip(tmp_path / "short.mp4", n_frames=20, size=(320, 180))
    source = LiveSource(str(clip), realtime=True)
    frames = list(source.frames())
    assert len(frames) == 20
    spread_s = frames[-1].captured_at - frames[0].captured_at
    assert spread_s == pytest.approx(19 / 25, abs=0.15)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/s1", "rtsp://***@10.0.0.5:554/s1"),
        (
            "rtsp://10.0.0.5/s1?user=a&password=x&ch=1",
            "rtsp://10.0.0.5/s1?user=a&password=***&ch=1",
        ),
        ("rtsp://10.0.0.5/s1", "rtsp://10.0.0.5/s1"),
        ("webcam:0", "webcam:0"),
    ],
)
def test_mask_url_hides_credentials(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"transport": "http"}, ConfigError),
        ({"open_timeout_s": 0}, ConfigError),
        ({"jitter": 1.5}, ConfigError),
        ({"max_reconnects": -1}, ConfigError),
        ({"backoff_initial_s": 2, "backoff_max_s": 1}, ConfigError),
    ],
)
def test_bad_settings_are_rejected_with_their_name(kwargs: dict, error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        LiveSource("rtsp://127.0.0.1:1/cam", **kwargs)


def test_missing_file_and_unknown_scheme_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        LiveSource(str(tmp_path / "nope.mp4"))
    with pytest.raises(ConfigError, match="gopher"):
        LiveSource("gopher://example.org/cam")
