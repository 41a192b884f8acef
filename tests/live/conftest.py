"""Fixtures for the live tests: a real GStreamer RTSP server in a subprocess, and clips to serve.

The server runs under the system Python (``/usr/bin/python3``), which has PyGObject from Debian.
Without it the RTSP tests are skipped, with the apt command to run. In CI they fail instead:
``.ci/run`` installs the packages and sets ``STREAMDEID_REQUIRE_RTSP=1`` (``CI`` counts too),
so a broken install shows up as a failure, not as a quiet skip.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
# The same list as .ci/run. No plugins-bad: the server needs no parser (rtph264pay takes
# qtdemux's avc output directly), and that package alone pulls in GTK and ~80 libraries.
APT_PACKAGES = "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good python3-gi"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
CLIP_FPS = 25
CLIP_GOP = 25  # a keyframe every second: a reconnecting client waits at most that long


def rtsp_required() -> bool:
    """True where a missing RTSP server must fail the run (CI), not skip the tests."""
    return bool(os.environ.get("STREAMDEID_REQUIRE_RTSP") or os.environ.get("CI"))


@functools.cache
def _gst_rtsp_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    check = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        " from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        " missing = [e for e in ('qtdemux', 'rtph264pay', 'rtph264depay', 'rtpbin',"
        " 'appsrc', 'appsink') if Gst.ElementFactory.find(e) is None];"
        " assert not missing, f'missing GStreamer elements: {missing}'"
    )
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "checking for GStreamer's RTSP server timed out"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit code {done.returncode}"
    return None


@pytest.fixture(scope="session")
def gst_rtsp() -> None:
    """Skip (or, in CI, fail) unless GStreamer's RTSP server can run with the system Python."""
    problem = _gst_rtsp_problem()
    if problem is None:
        return
    reason = (
        f"GStreamer RTSP server unavailable ({problem}); install it with "
        f"`apt-get install -y {APT_PACKAGES}`"
    )
    if rtsp_required():
        pytest.fail(f"{reason} [STREAMDEID_REQUIRE_RTSP/CI is set]", pytrace=False)
    pytest.skip(reason)


class RtspServer:
    """One ``rtsp_server.py`` process; can be stopped and started again on the same port."""

    def __init__(self, workdir: Path, clip: Path | None = None) -> None:
        self.workdir = workdir
        self.clip = clip
        self.port = 0
        self.ready_at: float | None = None  # monotonic time of the last READY line
        self._proc: subprocess.Popen[str] | None = None
        self._starts = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, port: int | None = None, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start and wait for READY; ``port`` None reuses the last port (0 at first = free)."""
        if self.running:
            raise RuntimeError(f"RTSP server already running on port {self.port}")
        wanted = self.port if port is None else port
        deadline = time.monotonic() + timeout_s
        while True:
            error = self._try_start(wanted, deadline)
            if error is None:
                return
            # Right after a stop the port can still be held by the old process's sockets.
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start on port {wanted}: {error}")
            time.sleep(0.1)

    def _try_start(self, port: int, deadline: float) -> str | None:
        self._starts += 1
        log_path = self.workdir / f"rtsp_server.{self._starts}.log"
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(port)]
        if self.clip is not None:
            args += ["--file", str(self.clip)]
        with open(log_path, "w") as stderr:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = proc.stdout.readline()
                if not line:  # exited before READY
                    proc.wait(STOP_TIMEOUT_S)
                    return log_path.read_text().strip()[-500:] or f"exit {proc.returncode}"
                if line.startswith("READY "):
                    self._proc = proc
                    self.port = int(line.split()[1].rsplit(":", 1)[1])
                    self.ready_at = time.monotonic()
                    return None
        self._kill(proc)
        return f"no READY line within the timeout; log: {log_path}"

    def stop(self) -> None:
        """SIGTERM, and wait for a clean exit (SIGKILL if it hangs)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise RuntimeError("RTSP server ignored SIGTERM") from None
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        if code != 0:
            raise RuntimeError(f"RTSP server exited with {code} on SIGTERM")

    def restart(self, down_s: float = 0.0) -> float:
        """Stop, stay down ``down_s`` seconds, start on the same port; return READY time."""
        self.stop()
        time.sleep(down_s)
        self.start()
        assert self.ready_at is not None
        return self.ready_at

    def pause(self) -> None:
        """SIGSTOP: the sockets stay open but nothing is sent, so clients block in reads."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    @staticmethod
    def _kill(proc: subprocess.Popen[str]) -> None:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def rtsp_server_factory(gst_rtsp: None, tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """``make(clip=None) -> RtspServer``, started; every server is stopped at teardown."""
    servers: list[RtspServer] = []

    def make(clip: Path | None = None) -> RtspServer:
        server = RtspServer(tmp_path, clip)
        servers.append(server)
        server.start(port=0)
        return server

    yield make
    for server in servers:
        if server.running:
            server.resume()  # in case a test left it paused
        server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_factory: Callable[..., RtspServer], live_clip: Path) -> RtspServer:
    """A running server: ``/cam`` plays ``live_clip``, ``/out`` records, ``/relay`` plays it."""
    return rtsp_server_factory(live_clip)


def write_h264_clip(path: Path, n_frames: int, size: tuple[int, int] = (640, 360)) -> Path:
    """An H.264 MP4 of the synthetic face scenario: 25 fps, a keyframe every 25 frames."""
    from streamdeid.testing.render import render_frames
    from streamdeid.testing.synthetic import default_face_paths

    frames = render_frames(size, n_frames, default_face_paths(size, n_frames))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, CLIP_FPS)
        stream.options = {"preset": "ultrafast", "crf": "23", "g": str(CLIP_GOP), "bf": "0"}
        for index, (image, _boxes) in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def make_h264_clip() -> Callable[..., Path]:
    """:func:`write_h264_clip`, for tests (a conftest is not importable by name)."""
    return write_h264_clip


@pytest.fixture(scope="session")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s (100-frame) 640x360 clip with two faces, for the server to play."""
    return write_h264_clip(tmp_path_factory.mktemp("live") / "faces_4s.mp4", n_frames=100)
