"""Several cameras in one process: the cameras file, one pipeline per camera, a supervisor.

The cameras file (``configs/cameras.example.yml``) lists cameras; each gets a full, validated
:class:`~streamdeid.config.Config` made of the base config plus its own ``overrides``, and a
:class:`~streamdeid.live.policy.LiveConfig` made of the file's ``live`` plus its own, resolved
into a :class:`~streamdeid.live.session.Camera`. Unknown keys
are errors, and every error names the camera and the field, because a typo in a privacy setting
must not be silently ignored for one camera out of twenty.

Each camera runs on its own supervisor thread (``streamdeid.camera:<name>``). A camera that
fails (unreachable URL, source gave up, a stage crashed) is logged and restarted with backoff up
to ``live.restart_limit`` times, then marked failed; the others are not touched. There is one stop
event for the process; each camera gets a child event it may set itself (a failing stage sets its
pipeline's stop), so one camera's failure never stops another, while the process's stop stops all.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from streamdeid.config import Config, load_config, parse_config
from streamdeid.config_base import Loc, StrictModel, describe_errors
from streamdeid.detect.base import Detector
from streamdeid.errors import (
    ConfigError,
    InputNotFoundError,
    MissingExtraError,
    NotAVideoError,
    OutputNotWritableError,
    StreamDeidError,
)
from streamdeid.live.endpoints import OutputSpec, classify_output, redact
from streamdeid.live.policy import LiveConfig
from streamdeid.live.session import Camera
from streamdeid.live.session import run_camera as run_one
from streamdeid.live.stats import LiveStats
from streamdeid.media import backoff_delay

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

# Errors that a restart cannot fix: fail the camera at once.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    OutputNotWritableError,
    MissingExtraError,
    InputNotFoundError,
    NotAVideoError,
)
MAX_RESTART_BACKOFF_S = 60.0


class CameraEntry(StrictModel):
    """One camera as written in the cameras file."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Short unique name: thread names, log lines, metric labels, output folder.",
    )
    source: str = Field(
        min_length=1,
        description="rtsp://, http://, udp://… URL, a /dev/video device, or a file (tests).",
    )
    output: str | list[str] | None = Field(
        default=None,
        description="File, segments folder, or rtsp:// URL (a list writes to each); default: "
        "segments in <output_dir>/<name>/.",
    )
    segment_time: float | None = Field(
        default=None, gt=0, le=86400, description="Seconds per segment for a folder output."
    )
    realtime: bool = Field(
        default=False,
        description="Files only: read at the file's own frame rate, like a camera, and apply "
        "the live policy (URLs are always live).",
    )
    enabled: bool = Field(default=True, description="false = listed but not started.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-camera overrides of the config sections (detector, tracker, obscure, "
        "encoder, pipeline), merged over the base config.",
    )
    live: dict[str, Any] = Field(
        default_factory=dict, description="Per-camera overrides of the live policy."
    )


class CamerasFile(StrictModel):
    """The whole cameras file."""

    config: str | None = Field(
        default=None,
        description="Base config for every camera: a YAML file (relative to this file) or a "
        "bundled name like 'cctv'; default: built-in defaults.",
    )
    output_dir: str | None = Field(
        default=None,
        description="Where cameras without an 'output' write segments (<output_dir>/<name>/).",
    )
    segment_time: float = Field(
        default=60.0, gt=0, le=86400, description="Default seconds per segment."
    )
    live: dict[str, Any] = Field(
        default_factory=dict, description="Live policy for every camera (see LiveConfig)."
    )
    cameras: list[CameraEntry] = Field(min_length=1, description="The cameras.")

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: list[CameraEntry]) -> list[CameraEntry]:
        seen: set[str] = set()
        for c in cameras:
            if c.name in seen:
                raise ValueError(f"camera names must be unique, got '{c.name}' twice")
            seen.add(c.name)
        return cameras


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _entry_error(e: ValidationError, raw: Any, where: str) -> ConfigError:
    """Name the camera (not its list index) in errors from the file model."""

    def locate(loc: Loc) -> tuple[str, Loc]:
        if len(loc) >= 2 and loc[0] == "cameras" and isinstance(loc[1], int):
            i = loc[1]
            entry = raw.get("cameras", [])[i] if isinstance(raw, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            return (f"camera '{name}': " if name else f"camera #{i + 1}: "), loc[2:]
        return "", loc

    return ConfigError(f"invalid cameras file ({where}): {describe_errors(e, locate=locate)}")


def load_cameras(
    path: str | Path, base: Config | None = None, overrides: dict[str, Any] | None = None
) -> list[Camera]:
    """Read and validate a cameras file; every camera gets its own resolved config.

    Precedence, lowest first: the base config, the camera's ``overrides``, then ``overrides``
    given here (command-line flags, which apply to every camera).

    Args:
        path: the YAML cameras file.
        base: base config (e.g. from ``--config``); replaces the file's ``config`` key.
        overrides: dotted overrides such as ``{"obscure.method": "solid"}``; None values ignored.

    Raises:
        ConfigError: one line naming the camera and the field.
    """
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"cameras file not found: '{p}'") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read cameras file '{p}': {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"cameras file '{p}' is not valid YAML: {e}".splitlines()[0]) from e
    if not isinstance(raw, dict):
        raise ConfigError(
            f"invalid cameras file ({p}): expected a mapping with a 'cameras' list, "
            f"got {type(raw).__name__}"
        )
    try:
        spec = CamerasFile.model_validate(raw)
    except ValidationError as e:
        raise _entry_error(e, raw, str(p)) from e
    if base is None:
        if spec.config is None:
            base = Config()
        else:
            local = p.parent / spec.config
            base = load_config(local if local.exists() else spec.config)
    cameras = []
    for entry in spec.cameras:
        if not entry.enabled:
            log.info("camera disabled", extra={"camera": entry.name, "event": "disabled"})
            continue
        cameras.append(_resolve(entry, spec, base, p, overrides or {}))
    if not cameras:
        raise ConfigError(f"invalid cameras file ({p}): every camera is disabled")
    return cameras


def _resolve(
    entry: CameraEntry, spec: CamerasFile, base: Config, path: Path, flags: dict[str, Any]
) -> Camera:
    where = f"{path}, camera '{entry.name}'"
    config = parse_config(_merge(base.model_dump(), entry.overrides), source=where)
    if any(v is not None for v in flags.values()):
        config = config.override(flags)
    try:
        live = LiveConfig.model_validate(_merge(spec.live, entry.live))
        if flags.get("pipeline.detect_every") is not None:  # --detect-every: cameras too
            live.detect_every = flags["pipeline.detect_every"]
        live.check_against(config.pipeline.detect_every)
    except ValidationError as e:
        raise ConfigError(f"invalid config ({where}): {describe_errors(e, prefix='live.')}") from e
    except ValueError as e:
        raise ConfigError(f"invalid config ({where}): {e}") from e
    if config.reversible.enabled:
        raise ConfigError(
            f"invalid config ({where}): reversible masking is not supported for live cameras yet"
        )
    targets = entry.output
    if targets is None:
        if spec.output_dir is None:
            raise ConfigError(
                f"invalid cameras file ({where}): expected 'output' "
                "(or a top-level 'output_dir'), got neither"
            )
        targets = str(Path(spec.output_dir) / entry.name) + "/"
    outputs = [
        classify_output(t, entry.segment_time if entry.segment_time else None)
        for t in ([targets] if isinstance(targets, str) else targets)
    ]
    outputs = [
        OutputSpec(o.target, o.kind, o.segment_time_s or spec.segment_time)
        if o.kind == "segments"
        else o
        for o in outputs
    ]
    return Camera(
        name=entry.name,
        source=entry.source,
        outputs=outputs,
        config=config,
        live=live,
        realtime=entry.realtime,
    )


# --------------------------------------------------------------------------------------------------
# Supervisor
# --------------------------------------------------------------------------------------------------


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
        stats, result, stop = self.stats[cam.name], self.results[cam.name], self._stops[cam.name]
        extra = {"camera": cam.name}
        failures = 0
        limit = cam.live.restart_limit
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
            except Exception as e:
                result.error = e
                failures += 1
                if not isinstance(e, StreamDeidError):
                    log.debug("camera crashed", exc_info=True, extra=extra)
                if self.stop.is_set():
                    result.state = "stopped"
                    break
                if limit is not None and failures > limit:
                    result.state = "failed"
                    log.log(
                        self._fail_level,
                        "%s (gave up after %d restarts)",
                        e,
                        failures - 1,
                        extra={**extra, "event": "camera_failed", "restarts": failures - 1},
                    )
                    break
                # No jitter: one camera restarting has no crowd to spread out.
                wait = backoff_delay(failures, cam.live.restart_backoff_s, MAX_RESTART_BACKOFF_S, 0)
                log.warning(
                    "%s; restarting in %.1f s (%d/%s)",
                    e,
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
                    break
                continue
            result.error = None
            result.state = "stopped" if self.stop.is_set() else "finished"
            log.info("camera %s", result.state, extra={**extra, "event": f"camera_{result.state}"})
            break
        stats.set_state(result.state)
