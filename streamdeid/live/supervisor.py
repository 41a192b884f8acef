"""Several cameras in one process: one supervisor thread per camera, restarting failed ones.

Each camera runs on its own supervisor thread (``streamdeid.camera:<name>``). A camera that
fails (unreachable URL, source gave up, a stage crashed) is logged and restarted with backoff up
to ``live.restart_limit`` times, then marked failed; the others are not touched. There is one stop
event for the process; each camera gets a child event it may set itself (a failing stage sets its
pipeline's stop), so one camera's failure never stops another, while the process's stop stops all.

The cameras it runs come from the cameras file (:func:`streamdeid.live.cameras.load_cameras`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamdeid.detect.base import Detector
from streamdeid.errors import (
    ConfigError,
    InputNotFoundError,
    MissingExtraError,
    NotAVideoError,
    OutputNotWritableError,
    StreamDeidError,
)
from streamdeid.live.endpoints import OutputSpec, redact
from streamdeid.live.session import Camera
from streamdeid.live.session import run_camera as run_one
from streamdeid.live.stats import LiveStats
from streamdeid.media import backoff_delay

# The name the supervisor logged under before it had its own module: JSON logs carry it as
# "logger", and log filters may select it.
log = logging.getLogger("streamdeid.live.cameras")

# Errors that a restart cannot fix: fail the camera at once.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    OutputNotWritableError,
    MissingExtraError,
    InputNotFoundError,
    NotAVideoError,
)
MAX_RESTART_BACKOFF_S = 60.0


@dataclass
class CameraResult:
    """How a camera ended: ``finished`` (source ended), ``stopped`` (stop event) or ``failed``."""

    name: str
    state: str = "starting"
    error: BaseException | None = None
    restarts: int = 0


RunCamera = Callable[[Camera, LiveStats, threading.Event], None]


def for_restart(camera: Camera, restart: int) -> Camera:
    """The camera as restarted the ``restart``-th time: file outputs get a new name.

    Reopening ``lobby.mkv`` would truncate what the failed run recorded; ``lobby.r1.mkv`` keeps
    it. Segments (named by start time) and RTSP outputs need no new name.
    """
    outputs = [
        OutputSpec(str(Path(o.target).with_suffix(f".r{restart}{Path(o.target).suffix}")), o.kind)
        if o.kind == "file"
        else o
        for o in camera.outputs
    ]
    return dataclasses.replace(camera, outputs=outputs)


class Supervisor:
    """Runs every camera on its own thread, restarting failed ones, until all end or stop.

    Args:
        cameras: the resolved cameras.
        stop: the process's single stop event (SIGINT/SIGTERM, ``--duration``).
        run_camera: runs one camera to its end (defaults to
            :func:`streamdeid.live.session.run_camera`); raising means failure.
        stats: per-camera stats, created when not given.
        detector_factory: replaces the configured detector (tests).
        log_failures: log a failed camera at ERROR (off when the caller reports it itself).
    """

    def __init__(
        self,
        cameras: Sequence[Camera],
        stop: threading.Event,
        *,
        run_camera: RunCamera | None = None,
        stats: dict[str, LiveStats] | None = None,
        detector_factory: Callable[[], Detector] | None = None,
        log_failures: bool = True,
    ) -> None:
        self.cameras = list(cameras)
        # A single camera's failure is the caller's one-line error: no second copy in the log.
        self._fail_level = logging.ERROR if log_failures else logging.DEBUG
        self.stop = stop
        self.stats = stats or {c.name: LiveStats(c.name) for c in self.cameras}
        self.results = {c.name: CameraResult(c.name) for c in self.cameras}
        if run_camera is None:

            def run_camera(cam: Camera, stats: LiveStats, stop: threading.Event) -> None:
                run_one(cam, stats, stop, detector_factory=detector_factory)

        self._run_camera = run_camera
        self._stops = {c.name: threading.Event() for c in self.cameras}
        self._threads: list[threading.Thread] = []

    def start(self) -> Supervisor:
        for cam in self.cameras:
            t = threading.Thread(
                target=self._supervise,
                args=(cam,),
                name=f"streamdeid.camera:{cam.name}",
                daemon=True,
            )
            self._threads.append(t)
            t.start()
        relay = threading.Thread(target=self._relay_stop, name="streamdeid.stop", daemon=True)
        relay.start()
        return self

    def _relay_stop(self) -> None:
        while not self.stop.wait(0.2):
            if not self.alive():
                return
        for event in self._stops.values():
            event.set()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for every camera; False when ``timeout_s`` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for t in self._threads:
            while t.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                t.join(0.2 if left is None else min(0.2, left))
        return True

    def _supervise(self, cam: Camera) -> None:
        """Run ``cam`` until it finishes, is stopped, or fails for good; restart it otherwise."""
        stats, result, stop = self.stats[cam.name], self.results[cam.name], self._stops[cam.name]
        extra = {"camera": cam.name}
        failures = 0
        while True:
            stop.clear()  # before the check: a stop relayed after it is then not lost
            if self.stop.is_set():
                result.state = "stopped"
                break
            result.state = "running"
            stats.set_state("running")
            log.info("starting %s", redact(cam.source), extra={**extra, "event": "camera_start"})
            try:
                self._run_camera(cam if failures == 0 else for_restart(cam, failures), stats, stop)
            except PERMANENT_ERRORS as e:
                result.error = e
                result.state = "failed"
                log.log(self._fail_level, "%s", e, extra={**extra, "event": "camera_failed"})
                break
            except Exception as e:  # noqa: BLE001 - any crash is restarted; _restart logs it
                failures += 1
                if self._restart(cam, e, failures):
                    continue
                break
            result.error = None
            result.state = "stopped" if self.stop.is_set() else "finished"
            log.info("camera %s", result.state, extra={**extra, "event": f"camera_{result.state}"})
            break
        stats.set_state(result.state)

    def _restart(self, cam: Camera, error: Exception, failures: int) -> bool:
        """After the ``failures``-th failure: wait the backoff and say True to run ``cam`` again.

        False when the camera is done instead: the process is stopping (``stopped``), or the
        camera failed more than ``live.restart_limit`` times (``failed``).
        """
        stats, result = self.stats[cam.name], self.results[cam.name]
        extra = {"camera": cam.name}
        limit = cam.live.restart_limit
        result.error = error
        if not isinstance(error, StreamDeidError):
            log.debug("camera crashed", exc_info=True, extra=extra)
        if self.stop.is_set():
            result.state = "stopped"
            return False
        if limit is not None and failures > limit:
            result.state = "failed"
            log.log(
                self._fail_level,
                "%s (gave up after %d restarts)",
                error,
                failures - 1,
                extra={**extra, "event": "camera_failed", "restarts": failures - 1},
            )
            return False
        # No jitter: one camera restarting has no crowd to spread out.
        wait = backoff_delay(failures, cam.live.restart_backoff_s, MAX_RESTART_BACKOFF_S, 0)
        log.warning(
            "%s; restarting in %.1f s (%d/%s)",
            error,
            wait,
            failures,
            "∞" if limit is None else limit,
            extra={**extra, "event": "camera_restart", "restarts": failures},
        )
        result.restarts = failures
        stats.add("restarts")
        stats.set_state("restarting")
        if self.stop.wait(wait):
            result.state = "stopped"
            return False
        return True
