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


@pytest.fixture(scope="module", params=["int8", "int8-w7", "fp32"])
def precision(request: pytest.FixtureRequest) -> str:
    """Every bundled model (package data: present in every install, never skipped)."""
    return request.param


@pytest.fixture(scope="module")
def detector(precision: str) -> RetinaFaceDetector:
    return RetinaFaceDetector(confidence=0.5, precision=precision)


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


def test_finds_most_small_faces_in_a_street_crowd(shared_data: Path) -> None:
    # ~20 faces of 12-47 px. The same photo through CenterFace (the former default) as the
    # yardstick: RetinaFace at 2x finds at least as many. The published (float) network; the
    # int8 ones are held to it below.
    image = read(shared_data, CITY)
    found = RetinaFaceDetector(confidence=0.3, scales=(2.0,), precision="fp32").detect(image)
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


def test_a_scale_above_one_finds_faces_too_small_for_native_size(precision: str) -> None:
    image, truth = one_face(0, 10)
    assert len(RetinaFaceDetector(precision=precision).detect(image)) == 0  # the control
    found = RetinaFaceDetector(scales=(3.0,), precision=precision).detect(image)
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


def test_the_float_model_is_not_taken_for_the_int8_one() -> None:
    with pytest.raises(DetectorError, match="quantize_retinaface") as info:
        RetinaFaceDetector(precision="int8", weights=load_weights(variant="fp32"))
    assert "retinaface_mnet025_int8.onnx" in str(info.value)
    with pytest.raises(DetectorError, match="precision must be one of"):
        RetinaFaceDetector(precision="int4")  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["int8", "int8-w7"])
def test_int8_finds_the_faces_fp32_finds_in_the_same_places(shared_data: Path, variant) -> None:
    """The quantized models are the same detector: on a real crowd of small faces, every face
    that the published float model scores 0.3 or more, they score 0.2 or more (quantization
    moves a score by a few hundredths: the product's threshold, 0.05, is far below both), with
    the box in the same place."""
    image = read(shared_data, CITY)
    fp32 = RetinaFaceDetector(confidence=0.3, scales=(2.0,), precision="fp32").detect(image)
    int8 = RetinaFaceDetector(confidence=0.2, scales=(2.0,), precision=variant).detect(image)
    assert len(fp32) >= 17
    assert (box_iou(fp32.xyxy, int8.xyxy).max(axis=1) > 0.6).all()


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "variant"),
    [
        ("x86_64", "flags\t: fpu sse avx2 avx512f avx512_vnni sha_ni", "int8"),
        ("x86_64", "flags\t: fpu sse avx2 avx_vnni", "int8"),
        ("x86_64", "flags\t: fpu sse avx2 fma avx512f", "int8-w7"),  # saturating 16-bit sums
        ("x86_64", None, "int8-w7"),  # flags unknown: the model that is right everywhere
        ("aarch64", None, "int8"),
    ],
)
def test_int8_weights_suit_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, machine: str, cpuinfo, variant: str
) -> None:
    fake = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        fake.write_text(cpuinfo + "\n", encoding="ascii")
    real_path = retinaface.Path
    monkeypatch.setattr(retinaface.platform, "machine", lambda: machine)
    monkeypatch.setattr(
        retinaface, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p)
    )
    retinaface.int8_variant.cache_clear()
    try:
        assert retinaface.int8_variant() == variant
    finally:
        retinaface.int8_variant.cache_clear()


def test_close_releases_the_model(precision: str) -> None:
    detector = RetinaFaceDetector(precision=precision)
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
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetinaFaceDetector(**kwargs)


def _deleted(name: str) -> bytes:
    raise FileNotFoundError(name)  # as if the file were deleted


def test_missing_model_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retinaface, "_bundled_model", _deleted)
    with pytest.raises(DetectorError) as info:
        RetinaFaceDetector()
    message = str(info.value)
    assert "streamdeid/detect/models/retinaface_mnet025_int8.onnx" in message
    assert "reinstall streamdeid" in message and "\n" not in message


def test_missing_onnxruntime_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match="pip install onnxruntime"):
        RetinaFaceDetector()


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


@pytest.mark.parametrize("size", [(1920, 1080), (1921, 1081), (1280, 720)])
def test_network_resize_averages_like_area_and_never_aliases(size: tuple[int, int]) -> None:
    """Shrunk ~3x, every source pixel counts, whichever path the resize takes (halving first,
    or odd sides): 1-px stripes come out grey (a plain bilinear shrink samples only white or
    only black columns), and a photo as area averaging gives it."""
    from streamdeid.detect.fullconv import resize_for_network

    w, h = size
    stripes = np.zeros((h, w, 3), np.uint8)
    stripes[:, ::2] = 255
    grey = resize_for_network(stripes, 640, 384)
    assert grey.shape == (384, 640, 3)
    assert abs(float(grey.mean()) - 127.5) < 3 and 60 < grey.min() and grey.max() < 195
    photo = cv2.resize(load_sample_faces()[0].image, (w, h), interpolation=cv2.INTER_LINEAR)
    area = cv2.resize(photo, (640, 384), interpolation=cv2.INTER_AREA)
    assert np.abs(resize_for_network(photo, 640, 384).astype(np.int16) - area).mean() < 1.5
