"""LiveSource against a real RTSP server: reading, reconnecting, stopping, giving up."""

from __future__ import annotations

import itertools
import queue
import re
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
from streamdeid.io import live_source
from streamdeid.io.live_source import LiveFrame, LiveSource
from streamdeid.io.live_url import mask_url


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


class Reader:
    """Iterates ``source.frames()`` on a thread, handing each frame (then None) to ``got``.

    The test thread can then wait for frames, or for the end, with a timeout that only guards
    against hanging; a source stuck after it should have ended fails the test instead.
    """

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.got: queue.Queue[LiveFrame | None] = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for frame in self.source.frames():
                self.got.put(frame)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            self.error = e
        finally:
            self.got.put(None)

    def ended(self, timeout_s: float = 30) -> bool:
        """True once ``frames()`` has returned (or raised); False after ``timeout_s``."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.source.close()  # don't leave it running past a failed test
            return False
        if self.error is not None:
            raise self.error
        return True

    def take(self, n: int, timeout_s: float = 30) -> list[LiveFrame | None]:
        return [self.got.get(timeout=timeout_s) for _ in range(n)]

    def rest(self) -> list[LiveFrame]:
        """Every frame not taken yet (call after :meth:`ended`)."""
        frames = []
        while (frame := self.got.get_nowait()) is not None:
            frames.append(frame)
        return frames


class StoppedClock:
    """Stands in for ``time`` in :mod:`streamdeid.io.live_source`; only the test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_reads_a_served_clip_at_native_rate_with_increasing_pts(
    rtsp_server: Any, transport: str
) -> None:
    events = Events()
    source = LiveSource(
        f"{rtsp_server.url}/cam", transport=transport, reconnect=False, on_event=events
    )
    started, started_wall = time.monotonic(), time.time()
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
    # wall_time is the wall clock at capture: inside the read, in order.
    assert started_wall <= frames[0].wall_time <= frames[-1].wall_time <= time.time()
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
    hang_guard = threading.Timer(60, stop.set)  # a source that never comes back fails below
    hang_guard.start()
    try:
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == 25:
                ready_at = rtsp_server.restart(down_s=0.5)
            if ready_at is not None and frame.captured_at > ready_at and len(frames) > 60:
                stop.set()  # enough frames from the new connection
    finally:
        hang_guard.cancel()

    assert ready_at is not None
    # The outage is where pts jump; the frames after it come from the server started again.
    jump = max(range(1, len(frames)), key=lambda i: frames[i].pts - frames[i - 1].pts)
    before, after = frames[:jump], frames[jump:]
    assert after[0].captured_at > ready_at and len(after) > 20, "frames keep coming after it"
    recovery_s = after[0].captured_at - ready_at
    print(f"reconnect: first new frame {recovery_s:.2f} s after the server was back")
    assert source.reconnects == 1
    assert "disconnected" in events.kinds() and events.kinds().count("connected") == 2
    # It came back on its backoff schedule: no retry was put off longer than backoff_max_s
    # (1.0 s, +10 % jitter). How long the reconnect took is the machine's business.
    retries = [detail for _, kind, detail in events.items if kind == "reconnecting"]
    delays = [float(re.findall(r" in ([\d.]+) s", detail)[0]) for detail in retries]
    assert delays and max(delays) <= 1.1, retries
    assert_strictly_increasing(frames)
    # The pts gap across the outage is the time the source was away: at least from the moment
    # it lost the stream to the moment it was connected again, at most the wall time between
    # the two frames (plus, for frames dropped at the outage, their own pts).
    (lost_at,) = [t for t, kind, _ in events.items if kind == "disconnected"]
    back_at = [t for t, kind, _ in events.items if kind == "connected"][-1]
    tick = float(after[0].time_base)
    slack = tick + source.frames_dropped / 25
    pts_gap_s = float((after[0].pts - before[-1].pts) * after[0].time_base)
    wall_gap_s = after[0].captured_at - before[-1].captured_at
    assert back_at - lost_at - tick <= pts_gap_s <= wall_gap_s + slack


def test_stop_ends_a_read_blocked_on_a_frozen_server_before_its_timeout(
    rtsp_server: Any,
) -> None:
    stop = threading.Event()
    # Reads time out far later than the reader is waited for below: only the stop can end it.
    source = LiveSource(f"{rtsp_server.url}/cam", read_timeout_s=120, stop=stop)
    reader = Reader(source)
    try:
        assert None not in reader.take(10)
        rtsp_server.pause()  # the socket stays open; the next reads block
        # Let the reader use up what was already on its way until it is stuck in a read: no
        # frame decoded for half a second. (Were it still busy, the stop must work all the same.)
        decoded, deadline = -1, time.monotonic() + 30
        while source.frames_read != decoded and time.monotonic() < deadline:
            decoded = source.frames_read
            time.sleep(0.5)
        stop.set()
        assert reader.ended(), "stop did not end the read"
    finally:
        rtsp_server.resume()
    # How much was in flight when the server froze depends on how far behind the reader was;
    # that the freeze cut the 100-frame clip short does not.
    assert 10 + len(reader.rest()) < 100


def test_stop_ends_an_open_blocked_on_a_silent_server_before_its_timeout() -> None:
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(30)
        port = listener.getsockname()[1]
        # Opens and reads time out far later than the reader is waited for below.
        source = LiveSource(
            f"rtsp://127.0.0.1:{port}/cam", open_timeout_s=120, read_timeout_s=120, stop=stop
        )
        reader = Reader(source)
        conn, _ = listener.accept()  # the source is connected, waiting for an answer
        with conn:
            stop.set()
            assert reader.ended(), "stop did not end the open"
    assert reader.rest() == []


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


def test_file_without_realtime_is_read_once_as_fast_as_possible(
    live_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The source's clock stands still: waiting for any frame's presentation time would never
    # end, so every frame arriving shows that nothing was paced. (Speed is for benchmarks.)
    monkeypatch.setattr(live_source, "time", StoppedClock())
    source = LiveSource(str(live_clip))
    reader = Reader(source)
    assert reader.ended(), "no pacing without realtime=True"
    frames = reader.rest()
    assert len(frames) == 100
    assert [f.index for f in frames] == list(range(100))
    assert_strictly_increasing(frames)
    assert source.reconnects == 0 and source.frames_dropped == 0
    assert source.info is not None and source.info.frames == 100


def test_file_with_realtime_is_paced_like_a_camera(
    tmp_path: Path, make_h264_clip: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = make_h264_clip(tmp_path / "short.mp4", n_frames=20, size=(320, 180))
    # On a clock only the test moves, frame i (due i/25 s after the first) comes once the
    # clock has passed its time, and not before.
    clock = StoppedClock()
    monkeypatch.setattr(live_source, "time", clock)
    reader = Reader(LiveSource(str(clip), realtime=True))
    first = reader.take(1)  # due at once
    clock.now += 9.5 / 25  # halfway between frames 9 and 10
    early = reader.take(9)
    with pytest.raises(queue.Empty):
        reader.got.get(timeout=0.5)  # the 10th waits for its time
    clock.now += 10 / 25  # past the last frame's time
    assert reader.ended()
    frames = [f for f in (*first, *early, *reader.rest()) if f is not None]
    assert [f.index for f in frames] == list(range(20))
    assert all(f.captured_at >= 1000.0 + f.index / 25 for f in frames)  # none before its time


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
