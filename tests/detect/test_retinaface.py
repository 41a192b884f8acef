"""RetinaFace backend: real faces found, bundled weights checked, clear errors when broken."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import streamdeid.detect.retinaface as retinaface
from streamdeid.cli import main
from streamdeid.detect.centerface import CenterFaceDetector
from streamdeid.detect.retinaface import RetinaFaceDetector, load_weights
from streamdeid.detect.tiling import box_iou
from streamdeid.errors import DetectorError, MissingExtraError
from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import load_sample_faces

T1 = "pypi__insightface-2.1/insightface/data/images/t1.jpg"
CITY = "ORB-HD__deface/examples/city.jpg"
# Centres of the six cast members' faces in t1.jpg (checked by eye on a drawn copy).
T1_FACES = [(111, 330), (319, 208), (518, 340), (795, 412), (957, 132), (1180, 334)]


@pytest.fixture(scope="module")
def weights() -> bytes:
    return load_weights()  # package data: present in every install, never skipped


@pytest.fixture(scope="module")
def detector(weights: bytes) -> RetinaFaceDetector:
    return RetinaFaceDetector(confidence=0.5, weights=weights)


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
    assert len(found) == 6
    for cx, cy in T1_FACES:
        inside = (found.xyxy[:, 0] < cx) & (cx < found.xyxy[:, 2])
        inside &= (found.xyxy[:, 1] < cy) & (cy < found.xyxy[:, 3])
        assert inside.sum() == 1, f"face at ({cx}, {cy}) not found exactly once"
    heights = found.xyxy[:, 3] - found.xyxy[:, 1]
    assert np.all((heights > 100) & (heights < 190))  # faces are ~130 px


def test_finds_most_small_faces_in_a_street_crowd(shared_data: Path, weights: bytes) -> None:
    # ~20 faces of 12-47 px. The same photo through CenterFace (the former default) as the
    # yardstick: RetinaFace at 2x, at its default threshold, finds at least as many.
    image = read(shared_data, CITY)
    found = RetinaFaceDetector(confidence=0.3, scales=(2.0,), weights=weights).detect(image)
    reference = CenterFaceDetector(confidence=0.3).detect(image)
    assert len(found) >= max(17, len(reference)) and len(found) <= 35
    heights = found.xyxy[:, 3] - found.xyxy[:, 1]
    assert heights.max() < 60  # no box spanning several people
    assert (box_iou(found.xyxy, found.xyxy) > 0.3).sum() == len(found)  # no duplicates left


@pytest.mark.parametrize("sprite", [0, 1], ids=["astronaut", "cameraman"])
@pytest.mark.parametrize("height", [32, 40, 80, 160, 300])
def test_finds_generated_faces_from_32_to_300_px(detector, sprite: int, height: int) -> None:
    image, truth = one_face(sprite, height)
    found = detector.detect(image)
    assert len(found) == 1  # the face, and nothing on the textured background
    assert box_iou(truth, found.xyxy)[0, 0] > 0.5
    x1, y1, x2, y2 = found.xyxy[0]
    assert x1 >= 0 and y1 >= 0 and x2 <= 640 and y2 <= 360


def test_a_scale_above_one_finds_faces_too_small_for_native_size(weights: bytes) -> None:
    image, truth = one_face(0, 10)
    assert len(RetinaFaceDetector(weights=weights).detect(image)) == 0  # the control
    found = RetinaFaceDetector(scales=(3.0,), weights=weights).detect(image)
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.5


def test_detect_at_sees_only_its_windows_at_the_given_scale(detector) -> None:
    image, truth = one_face(0, 40, centre=(500, 100))
    found = detector.detect_at(image, [(400, 0, 640, 240)], 1.0)
    assert len(found) == 1 and box_iou(truth, found.xyxy)[0, 0] > 0.7
    assert len(detector.detect_at(image, [(0, 0, 300, 360)], 1.0)) == 0
    # 40 px at a tenth of the size is 4 network pixels: out of reach.
    assert len(detector.detect_at(image, [(0, 0, 640, 360)], 0.1)) == 0


def test_other_bytes_than_the_known_model_are_refused() -> None:
    with pytest.raises(DetectorError, match="sha256") as info:
        load_weights(b"not a model")
    assert "reinstall streamdeid" in str(info.value) and "\n" not in str(info.value)


def test_close_releases_the_model(weights: bytes) -> None:
    detector = RetinaFaceDetector(weights=weights)
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
        ({"threads": 0}, "threads"),
        ({"confidence": 0.0}, "confidence"),
        ({"edge_pad": -1}, "edge_pad"),
    ],
)
def test_bad_arguments_are_named(weights: bytes, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetinaFaceDetector(weights=weights, **kwargs)


def _deleted() -> bytes:
    raise FileNotFoundError("retinaface_mnet025.onnx")  # as if the file were deleted


def test_missing_model_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retinaface, "_bundled_model", _deleted)
    with pytest.raises(DetectorError) as info:
        RetinaFaceDetector()
    message = str(info.value)
    assert "streamdeid/detect/models/retinaface_mnet025.onnx" in message
    assert "reinstall streamdeid" in message and "\n" not in message


def test_missing_onnxruntime_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, weights: bytes
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match="pip install onnxruntime"):
        RetinaFaceDetector(weights=weights)


def test_cli_run_with_a_broken_model_file_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, synthetic, capsys: pytest.CaptureFixture
) -> None:
    clip, _ = synthetic
    monkeypatch.setattr(retinaface, "_bundled_model", _deleted)
    code = main(["run", str(clip), "-o", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamdeid: error:"), err
    assert "reinstall streamdeid" in lines[0]
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("rows", [293, 334, 358, 360, 361])
def test_network_input_is_never_a_rounding_error_taller(rows: int) -> None:
    """A scale chosen to reach a multiple of 32 exactly must not cost another 32 rows."""
    from streamdeid.detect.fullconv import aligned

    assert aligned(rows * (832 / rows)) == 832
    assert aligned(rows * (352 / rows)) == 352
    assert aligned(rows * 1.0) == -(-rows // 32) * 32


@pytest.mark.parametrize(
    ("size", "rows"), [((640, 360), 352), ((1280, 720), 384), ((480, 270), 352)]
)
def test_default_cheap_pass_is_not_stretched_past_the_nearest_multiple_of_32(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], rows: int
) -> None:
    """A frame no taller than the cheap pass reaches the network 352 rows tall (360 rounded to
    the nearest multiple of 32), not 384 (8% more work per pass); taller ones as before."""
    from streamdeid.build import make_detector
    from streamdeid.config import load_config
    from streamdeid.types import Frame

    config = load_config("default")
    pad = config.detector.retinaface.edge_pad
    shapes: list[tuple[int, int]] = []
    forward = RetinaFaceDetector._forward

    def record(self: RetinaFaceDetector, image: np.ndarray):
        shapes.append(image.shape[:2])
        return forward(self, image)

    monkeypatch.setattr(RetinaFaceDetector, "_forward", record)
    image = np.full((size[1], size[0], 3), 90, np.uint8)
    detector = make_detector(config)
    try:
        for index in range(2):  # a full pass on the first frame, then the cheap pass
            detector.detect(Frame(index, image, index, None, 0.0))
    finally:
        detector.close()
    assert shapes[-1][0] == rows + 2 * pad
