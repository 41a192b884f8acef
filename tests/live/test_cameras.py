"""Several cameras in one process: the cameras file, its errors, and the supervisor."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import nullcontext as does_not_raise
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamdeid.config import Config
from streamdeid.errors import ConfigError, SourceError
from streamdeid.live.cameras import load_cameras
from streamdeid.live.endpoints import classify_output
from streamdeid.live.policy import LiveConfig
from streamdeid.live.session import Camera
from streamdeid.live.stats import LiveStats
from streamdeid.live.supervisor import Supervisor

from helpers import probe

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "configs" / "cameras.example.yml"


def write_yaml(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "cameras.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_example_file_resolves_every_camera_with_its_overrides() -> None:
    cams = {c.name: c for c in load_cameras(EXAMPLE)}
    assert set(cams) == {"entrance", "lobby", "car-park"}  # loading-dock is disabled
    lobby, entrance, park = cams["lobby"], cams["entrance"], cams["car-park"]
    assert lobby.config.detector.retinaface.confidence == 0.03
    assert lobby.config.obscure.method == "pixelate"
    assert lobby.live.source.rtsp_transport == "udp"
    assert [o.kind for o in lobby.outputs] == ["file", "rtsp"]
    # Overrides stay with their camera; the others keep the base config.
    assert entrance.config.detector.retinaface.confidence == 0.05
    assert entrance.config.obscure.method == "blur"
    assert entrance.live.source.rtsp_transport == "tcp"
    assert entrance.outputs[0].kind == "segments" and entrance.outputs[0].segment_time_s == 60
    assert entrance.outputs[0].target.endswith("recordings/entrance/")
    assert park.outputs[0].segment_time_s == 300
    focus = park.config.detector.focus
    assert (focus.full_scan_every, focus.coarse_height, focus.motion) == (12, 0, True)


def test_command_line_flags_apply_to_every_camera() -> None:
    flags = {"obscure.method": "solid", "detector.backends.confidence": None}
    cams = load_cameras(EXAMPLE, overrides=flags)
    assert {c.config.obscure.method for c in cams} == {"solid"}
    assert {c.name: c.config.detector.retinaface.confidence for c in cams}["lobby"] == 0.03
    flags["detector.backends.confidence"] = 0.1  # --confidence: every camera's backend
    assert {
        c.config.detector.retinaface.confidence for c in load_cameras(EXAMPLE, overrides=flags)
    } == {0.1}


GOOD = {"name": "cam", "source": "rtsp://127.0.0.1:1/x", "output": "out.mkv"}


@pytest.mark.parametrize(
    ("data", "expectation"),
    [
        ({"cameras": [GOOD]}, does_not_raise()),
        (
            {"cameras": [{**GOOD, "overrides": {"detector": {"confidense": 0.2}}}]},
            pytest.raises(ConfigError, match=r"camera 'cam'.*unknown field 'detector.confidense'"),
        ),
        (
            {"cameras": [{**GOOD, "overrides": {"obscure": {"mask_scale": 0.5}}}]},
            pytest.raises(ConfigError, match=r"camera 'cam'.*field 'obscure.mask_scale'"),
        ),
        (
            {"cameras": [GOOD, {**GOOD, "name": "b", "sorce": "x"}]},
            pytest.raises(ConfigError, match=r"camera 'b': unknown field 'sorce'"),
        ),
        (
            {"cameras": [{**GOOD, "segment_time": -1}]},
            pytest.raises(ConfigError, match=r"camera 'cam': field 'segment_time'"),
        ),
        (
            {"cameras": [{**GOOD, "name": "my camera"}]},
            pytest.raises(ConfigError, match=r"camera 'my camera': field 'name'"),
        ),
        (
            {"cameras": [GOOD, GOOD]},
            pytest.raises(ConfigError, match=r"unique, got 'cam' twice"),
        ),
        (
            {"cameras": [{**GOOD, "live": {"blind_sec": 1}}]},
            pytest.raises(ConfigError, match=r"camera 'cam'.*unknown field 'live.blind_sec'"),
        ),
        (
            {"cameras": [{**GOOD, "overrides": {"pipeline": {"detect_every": 20}}}]},
            pytest.raises(ConfigError, match=r"camera 'cam'.*blind_frames \(12\) must be >="),
        ),
        (
            {"cameras": [{k: v for k, v in GOOD.items() if k != "output"}]},
            pytest.raises(ConfigError, match=r"camera 'cam'.*expected 'output'"),
        ),
        (
            {"cameras": [{**GOOD, "output": "ftp://x/y"}]},
            pytest.raises(ConfigError, match=r"expected a file, a folder or an rtsp:// URL"),
        ),
        (
            {"cameras": []},
            pytest.raises(ConfigError, match=r"field 'cameras'"),
        ),
        (
            {"camera": [GOOD]},
            pytest.raises(ConfigError, match=r"unknown field 'camera'"),
        ),
    ],
)
def test_cameras_file_errors_name_the_camera_and_field(
    tmp_path: Path, data: dict[str, Any], expectation: Any
) -> None:
    with expectation:
        load_cameras(write_yaml(tmp_path, data))


def test_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cameras file not found"):
        load_cameras(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cameras(bad)


# --------------------------------------------------------------------------------------------------
# Supervisor
# --------------------------------------------------------------------------------------------------


def cam(name: str, **live: Any) -> Camera:
    policy = LiveConfig(**{"restart_backoff_s": 0.02, **live})
    return Camera(name, f"{name}.mp4", [classify_output(f"{name}.mkv")], Config(), policy)


def test_failing_cameras_restart_or_fail_without_stopping_the_others() -> None:
    attempts: dict[str, int] = {}
    steady_saw_stop = threading.Event()

    def run(camera: Camera, stats: LiveStats, stop: threading.Event) -> None:
        n = attempts[camera.name] = attempts.get(camera.name, 0) + 1
        if camera.name == "flaky" and n <= 2:
            raise SourceError("connection refused")
        if camera.name == "dead":
            stop.set()  # what a failing pipeline does to its own stop event
            raise SourceError("connection refused")
        if camera.name == "misconfigured":
            raise ConfigError("bad output")
        if camera.name == "steady":
            # Runs until the process stops; the others' failures must not reach it.
            while not stop.wait(0.02):
                pass
            steady_saw_stop.set()

    stop = threading.Event()
    cams = [cam("flaky"), cam("dead", restart_limit=1), cam("misconfigured"), cam("steady")]
    sup = Supervisor(cams, stop, run_camera=run).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = {n: r.state for n, r in sup.results.items()}
        if states["flaky"] == "finished" and states["dead"] == states["misconfigured"] == "failed":
            break
        time.sleep(0.02)
    assert not steady_saw_stop.is_set() and sup.results["steady"].state == "running"
    stop.set()
    assert sup.join(5)
    r = sup.results
    assert r["flaky"].state == "finished" and r["flaky"].restarts == 2
    assert r["dead"].state == "failed" and attempts["dead"] == 2  # first run + 1 restart
    assert isinstance(r["dead"].error, SourceError)
    assert r["misconfigured"].state == "failed" and attempts["misconfigured"] == 1  # no retry
    assert r["steady"].state == "stopped" and steady_saw_stop.is_set()
    assert sup.stats["flaky"].count("restarts") == 2


def test_a_restarted_camera_does_not_overwrite_its_earlier_recording() -> None:
    seen: list[list[str]] = []

    def run(camera: Camera, stats: LiveStats, stop: threading.Event) -> None:
        seen.append([o.target for o in camera.outputs])
        if len(seen) < 3:
            raise SourceError("lost")

    camera = Camera(
        "gate", "rtsp://127.0.0.1:1/x",
        [classify_output("rec/gate.mkv"), classify_output("rec/gate/"),
         classify_output("rtsp://127.0.0.1:1/out")],
        Config(), LiveConfig(restart_backoff_s=0.01),
    )  # fmt: skip
    sup = Supervisor([camera], threading.Event(), run_camera=run).start()
    assert sup.join(5)
    assert seen == [
        ["rec/gate.mkv", "rec/gate/", "rtsp://127.0.0.1:1/out"],
        ["rec/gate.r1.mkv", "rec/gate/", "rtsp://127.0.0.1:1/out"],
        ["rec/gate.r2.mkv", "rec/gate/", "rtsp://127.0.0.1:1/out"],
    ]
    assert sup.results["gate"].state == "finished"


class WatchedStats(LiveStats):
    """A camera's stats that tell the test when the supervisor starts waiting to restart it."""

    def __init__(self, camera: str) -> None:
        super().__init__(camera)
        self.restarting = threading.Event()

    def set_state(self, state: str) -> None:
        super().set_state(state)
        if state == "restarting":
            self.restarting.set()


def test_stop_during_restart_backoff_ends_at_once() -> None:
    attempts = []

    def run(camera: Camera, stats: LiveStats, stop: threading.Event) -> None:
        attempts.append(camera.name)
        raise SourceError("down")

    stop, stats = threading.Event(), WatchedStats("down")
    # A backoff far longer than the join below: only a stop that cuts it short ends the run.
    down = cam("down", restart_backoff_s=600.0)
    sup = Supervisor([down], stop, run_camera=run, stats={"down": stats}).start()
    assert stats.restarting.wait(30)  # the camera failed and the supervisor waits to restart it
    stop.set()
    assert sup.join(30)  # ends long before the backoff (at least 60 s) would
    assert sup.results["down"].state == "stopped" and sup.results["down"].restarts == 1
    assert attempts == ["down"]  # stopped in the backoff: never started again


def test_cli_runs_cameras_and_a_bad_one_does_not_spoil_the_good_one(synthetic, tmp_path) -> None:
    clip, gt = synthetic
    good_out = tmp_path / "good.mkv"
    cameras = write_yaml(
        tmp_path,
        {
            "live": {"restart_backoff_s": 0.1, "restart_limit": 1},
            "cameras": [
                {"name": "good", "source": str(clip), "output": str(good_out), "realtime": True},
                {
                    "name": "bad",
                    "source": "rtsp://127.0.0.1:9/none",
                    "output": str(tmp_path / "bad.mkv"),
                    "live": {"source": {"open_timeout_s": 0.5}},
                },
            ],
        },
    )
    result = subprocess.run(
        [sys.executable, "-m", "streamdeid", "live", "--cameras", str(cameras), "--method",
         "solid", "--stats-interval", "0"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("streamdeid: error")]
    assert errors == [
        "streamdeid: error: 1 of 2 cameras failed: bad (live source rtsp://127.0.0.1:9/none: "
        "expected a connection within 0.5 s, got none)"
    ]
    assert "good: finished: 50 frames in, 50 out" in result.stderr
    info = probe(str(good_out))
    assert len(info["pts"]) == len(gt)  # type: ignore[arg-type]
    assert not (tmp_path / "bad.mkv").exists()
