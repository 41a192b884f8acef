"""The CLI as a user meets it: one-line errors, exit codes, folders, images, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from streamdeid.cli import main
from streamdeid.config import load_config

from helpers import probe

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamdeid", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("streamdeid: error")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text("obscure:\n  mask_scale: 0.5\n")
    return p


def test_errors_are_one_line_with_exit_codes(tmp_path: Path, synthetic, bad_config) -> None:
    clip, _ = synthetic
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("obscure:\n  methd: blur\n")
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"x")
    cases = [
        (
            ["run", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")],
            1,
            "input not found",
        ),
        (["run", str(fake), "-o", str(tmp_path / "o.mp4")], 1, "cannot open"),
        (["run", str(clip), "-o", str(tmp_path / "no" / "dir" / "o.mp4")], 1, "does not exist"),
        (
            ["run", str(clip), "-o", str(tmp_path / "o.mp4"), "-c", str(bad_config)],
            2,
            "obscure.mask_scale",
        ),
        (
            ["run", str(clip), "-o", str(tmp_path / "o.mp4"), "-c", str(unknown)],
            2,
            "unknown field 'obscure.methd'",
        ),
        (["run", str(clip), "-o", str(existing)], 2, "--overwrite"),
        (["validate-config", str(unknown)], 2, "obscure.methd"),
    ]
    for args, code, message in cases:
        result = run_cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert message in error_line(result), (args, result.stderr)


def test_bad_flag_value_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "x.mp4", "-o", "y.mp4", "--detect-every", "0"])
    assert e.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err


def test_help_teaches(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for needle in ("--detect-every", "--method", "examples:", "cctv", "--stats"):
        assert needle in out


def test_option_help_gives_the_defaults_the_config_has(capsys) -> None:
    # --detect-every once said "default 3" and --confidence named CenterFace and BlazeFace
    # only, long after the default became every 4th frame and RetinaFace at 0.05. The numbers
    # come from the bundled default config, as the summary above the examples does.
    config = load_config("default")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    run_help = " ".join(capsys.readouterr().out.split())
    assert f"(default {config.pipeline.detect_every}; 1 looks at every frame)" in run_help
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    live_help = " ".join(capsys.readouterr().out.split())
    for text in (run_help, live_help):
        assert f"RetinaFace {config.detector.retinaface.confidence:g}" in text
        assert "default 3" not in text


def test_option_help_follows_an_edited_default_config(monkeypatch, capsys) -> None:
    from streamdeid.cli import _common

    edited = load_config("default").override(
        {"pipeline.detect_every": 6, "detector.retinaface.confidence": 0.07}
    )
    monkeypatch.setattr(_common, "load_config", lambda name: edited)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default 6; 1 looks at every frame)" in out
    assert "RetinaFace 0.07" in out


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "detector.backend": "blazeface",
            "detector.focus.enabled": False,
            "pipeline.detect_every": 1,
            "obscure.method": "solid",
        },
    ],
)
def test_help_describes_the_default_config_as_it_is(
    monkeypatch: pytest.MonkeyPatch, capsys, overrides: dict
) -> None:
    # The example text is read from configs/default.yaml, so it follows the config when the
    # config changes (it once said "MediaPipe on tiles, every frame" long after it was not).
    # The help text is built in streamdeid.cli._common, which reads the config there.
    from streamdeid.cli import _common

    config = load_config("default").override(overrides)
    monkeypatch.setattr(_common, "load_config", lambda name: config)
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert config.summary() in out
    backend = {"retinaface": "RetinaFace", "blazeface": "BlazeFace"}[config.detector.backend]
    assert f"{config.obscure.method}, {backend}" in out
    every = config.pipeline.detect_every
    assert ("every frame" if every == 1 else f"every {every}") in config.summary()


def test_validate_config_prints_resolved_settings(capsys) -> None:
    assert main(["validate-config", "cctv"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "tile_size: 256" in out


def test_run_writes_stats_json(synthetic, tmp_path: Path) -> None:
    clip, gt = synthetic
    stats_path = tmp_path / "stats.json"
    out = tmp_path / "out.mp4"
    assert (
        main(
            [
                "run",
                str(clip),
                "-o",
                str(out),
                "--method",
                "pixelate",
                "--detect-every",
                "2",
                "--stats",
                str(stats_path),
            ]
        )
        == 0
    )
    stats = json.loads(stats_path.read_text())
    assert stats["frames"] == len(gt) == len(probe(str(out))["pts"])
    assert stats["faces_detected"] > 0 and stats["tracks"] >= 2
    assert stats["detector_runs"] < len(gt)
    assert set(stats["stage_seconds"]) == {"decode", "detect", "track", "obscure", "encode"}


def test_folder_mode_keeps_names_and_reports_bad_files(synthetic, tmp_path: Path) -> None:
    clip, _ = synthetic
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clip, src / "a.mp4")
    face = cv2.imread(str(REPO / "streamdeid" / "testing" / "faces" / "astronaut.png"))
    cv2.imwrite(str(src / "b.png"), face)
    (src / "c.mp4").write_text("broken")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = run_cli("run", str(src), "-o", str(out))
    assert result.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.png"]
    assert "c.mp4" in result.stderr and "1 of 3 files failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_is_written_same_format_and_size_with_face_obscured(tmp_path: Path) -> None:
    sprite = cv2.imread(str(REPO / "streamdeid" / "testing" / "faces" / "astronaut.png"))
    box = json.loads((REPO / "streamdeid" / "testing" / "faces" / "faces.json").read_text())[
        "astronaut.png"
    ]
    src = tmp_path / "face.jpg"
    exif = b"\xff\xe1\x00\x10Exif\x00\x00" + b"MM\x00*\x00\x00\x00\x08"
    ok, buf = cv2.imencode(".jpg", sprite, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    src.write_bytes(buf.tobytes()[:2] + exif + buf.tobytes()[2:])
    out = tmp_path / "anon.jpg"
    assert main(["run", str(src), "-o", str(out), "--method", "solid"]) == 0
    result = cv2.imread(str(out))
    assert result.shape == sprite.shape
    x1, y1, x2, y2 = box
    assert result[y1:y2, x1:x2].max() < 30  # solid black over the face
    assert b"Exif" not in out.read_bytes()
    kept = tmp_path / "kept.jpg"
    assert main(["run", str(src), "-o", str(kept), "--keep-exif"]) == 0
    assert b"Exif" in kept.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_a_playable_prefix(sample_clip, tmp_path: Path, sig: int) -> None:
    clip, gt = sample_clip
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdeid", "run", str(clip), "-o", str(out), "--config", "cctv"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "closed cleanly" in stderr and "Traceback" not in stderr
    written = probe(str(out))
    src = probe(str(clip))
    assert 0 < len(written["pts"]) < len(gt)
    assert written["times"] == src["times"][: len(written["times"])]


def test_no_command_prints_help(capsys) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().err


def test_output_same_as_input_is_refused(synthetic, tmp_path: Path) -> None:
    clip, _ = synthetic
    copy = tmp_path / "c.mp4"
    shutil.copy(clip, copy)
    assert main(["run", str(copy), "-o", str(copy), "-y"]) == 2
    assert copy.stat().st_size == os.path.getsize(clip)
