"""``streamdeid eval`` as a user meets it: tables on stdout, JSON, one-line errors, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from streamdeid.cli import main

from eval_helpers import face_images


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("streamdeid: error")]


@pytest.fixture(scope="module")
def wider_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli_wider")
    boxes = face_images(folder / "images", count=2)
    lines = []
    for k, faces in enumerate(boxes):
        lines += [f"img_{k}.jpg", str(len(faces))]
        lines += [f"{x} {y} {w} {h} 0 0 0 0 0 0" for x, y, w, h in faces]
    gt = folder / "gt.txt"
    gt.write_text("\n".join(lines) + "\n")
    return folder / "images", gt


def test_eval_wider_prints_a_table_and_writes_json(wider_files, tmp_path: Path, capsys) -> None:
    images, gt = wider_files
    out = tmp_path / "wider.json"
    code = main(["eval", "wider", str(images), str(gt), "--config", "default", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "level" in captured.out and "recall" in captured.out
    assert "false positives/image" in captured.out
    data = json.loads(out.read_text())
    assert data["config"] == "default"
    assert data["images"] == 2 and data["faces"] == {"all": 4}
    assert data["recall"]["all"] >= 0.75  # large frontal sample faces: BlazeFace finds them
    assert {"false_positives_per_image", "ms_per_image", "detector"} <= set(data)


def test_eval_video_prints_a_table_and_writes_json(synthetic, tmp_path: Path, capsys) -> None:
    clip, _ = synthetic
    out = tmp_path / "leak.json"
    args = ["eval", "video", str(clip), str(clip), "--detector", "centerface", "--no-reid"]
    code = main([*args, "--every", "10", "--json", str(out), "--config", "archive"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "still detectable" in captured.out and "two_faces.mp4" in captured.out
    data = json.loads(out.read_text())
    assert data["independent"] is False  # the archive config runs CenterFace too
    assert "NOT independent" in captured.out
    (report,) = data["reports"]
    assert report["every"] == 10 and report["frames_checked"] == 5
    assert report["all"]["still_detectable_share"] == 1.0  # the clip against itself
    assert "reidentified" not in report["all"]
    assert data["total"]["all"]["faces"] == report["all"]["faces"]


def test_eval_run_anonymizes_then_checks(synthetic, tmp_path: Path, capsys) -> None:
    """The default check detector is dlib (independent of the default config's RetinaFace)."""
    clip, _ = synthetic
    kept, out = tmp_path / "anon.mp4", tmp_path / "run.json"
    args = ["eval", "run", str(clip), "--config", "default"]
    code = main([*args, "--no-reid", "--every", "10", "--keep", str(kept), "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert kept.is_file()
    assert "Leak check: detector dlib;" in captured.out
    assert "NOT independent" not in captured.out
    data = json.loads(out.read_text())
    assert data["independent"] is True
    (report,) = data["reports"]
    assert report["detector"] == "dlib" and report["all"]["faces"] >= 5
    assert report["all"]["still_detectable"] == 0  # nothing still detectable after masking
    assert main([*args, "--no-reid", "--keep", str(kept)]) == 2  # --keep never overwrites
    assert "exists" in error_lines(capsys.readouterr().err)[0]


def test_eval_video_detector_dlib_with_its_options(synthetic, tmp_path: Path, capsys) -> None:
    clip, _ = synthetic
    out = tmp_path / "dlib.json"
    args = ["eval", "video", str(clip), str(clip), "--detector", "dlib", "--no-reid"]
    args += ["--max-height", "180", "--dlib-upsample", "1", "--threshold", "-0.2"]
    code = main([*args, "--every", "10", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "det. scale" in captured.out and "×0.5" in captured.out and "~80px" in captured.out
    assert "detector: dlib HOG, upsample 1, threshold -0.2: 360 px frames run at 180 px" in (
        captured.out
    )
    (report,) = json.loads(out.read_text())["reports"]
    assert report["detector"] == "dlib"
    assert report["detector_scale"] == 0.5 and report["min_face_px"] == 80.0
    assert report["all"]["faces"] >= 4 and report["all"]["still_detectable_share"] == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--detector", "centerface", "--max-height", "500"], "--max-height applies to"),
        (["--detector", "blazeface", "--dlib-upsample", "2"], "--dlib-upsample applies to"),
        (["--detector", "blazeface", "--threshold", "1.5"], "score in (0, 1] for blazeface"),
    ],
)
def test_detector_option_errors_exit_2(synthetic, capsys, extra, message) -> None:
    clip, _ = synthetic
    assert main(["eval", "run", str(clip), "--no-reid", *extra]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert message in line


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["eval", "video", "{tmp}/missing.mp4", "{clip}", "--no-reid"], 1, "input not found"),
        (["eval", "video", "{clip}", "{tmp}/missing.mp4", "--no-reid"], 1, "input not found"),
        (["eval", "wider", "{tmp}", "{tmp}/missing.txt"], 1, "ground-truth file not found"),
        (["eval", "wider", "{tmp}/nope", "{tmp}/gt.txt"], 1, "images folder not found"),
        (["eval", "wider", "{tmp}", "{tmp}/bad.txt"], 1, "line 2: expected the face count"),
        (["eval", "run", "{tmp}/missing.mp4", "--no-reid"], 1, "input not found"),
        (["eval", "video", "{tmp}", "{clip}", "--no-reid"], 2, "ANONYMIZED must be one too"),
        (["eval", "video", "{clip}", "{clip}", "-c", "{tmp}/none.yaml"], 2, "config file"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    synthetic, tmp_path: Path, capsys, argv: list[str], code: int, message: str
) -> None:
    clip, _ = synthetic
    (tmp_path / "gt.txt").write_text("a.jpg\n0\n")
    (tmp_path / "bad.txt").write_text("a.jpg\nmany\n")
    argv = [a.format(tmp=tmp_path, clip=clip) for a in argv]
    assert main(argv) == code
    (line,) = error_lines(capsys.readouterr().err)
    assert message in line


def test_missing_dlib_exits_2_naming_the_extra(monkeypatch, synthetic, capsys) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    clip, _ = synthetic
    assert main(["eval", "video", str(clip), str(clip), "--detector", "blazeface"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "pip install 'streamdeid[eval]'" in line and "--no-reid" in line
    # Without re-identification the default detector (dlib) still needs it, before any work.
    assert main(["eval", "run", str(clip), "--no-reid"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "--detector dlib needs dlib" in line and "pip install 'streamdeid[eval]'" in line


def test_eval_needs_a_mode(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval"])
    assert info.value.code == 2
    assert "required: MODE" in capsys.readouterr().err
