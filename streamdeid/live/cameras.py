"""The cameras file: many cameras in one YAML, each resolved into a validated :class:`Camera`.

The cameras file (``configs/cameras.example.yml``) lists cameras; each gets a full, validated
:class:`~streamdeid.config.Config` made of the base config plus its own ``overrides``, and a
:class:`~streamdeid.live.policy.LiveConfig` made of the file's ``live`` plus its own, resolved
into a :class:`~streamdeid.live.session.Camera`. Unknown keys
are errors, and every error names the camera and the field, because a typo in a privacy setting
must not be silently ignored for one camera out of twenty.

The cameras are then run, each on its own thread and restarted when it fails, by
:class:`streamdeid.live.supervisor.Supervisor`.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from streamdeid.config import Config, load_config, parse_config
from streamdeid.config_base import Loc, StrictModel, describe_errors
from streamdeid.errors import ConfigError
from streamdeid.live.endpoints import OutputSpec, classify_output
from streamdeid.live.policy import LiveConfig
from streamdeid.live.session import Camera

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


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
