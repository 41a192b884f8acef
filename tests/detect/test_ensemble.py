"""Ensemble: the union of its members' boxes, never less; failures propagate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamdeid.build import make_detector
from streamdeid.config import load_config
from streamdeid.detect.base import Detector
from streamdeid.detect.blazeface import BlazeFaceDetector
from streamdeid.detect.ensemble import EnsembleDetector
from streamdeid.detect.tiled import TiledDetector
from streamdeid.errors import MissingExtraError
from streamdeid.types import Detections, Frame

from helpers import ScriptedDetector

T1 = "pypi__insightface-2.1/insightface/data/images/t1.jpg"
CITY = "ORB-HD__deface/examples/city.jpg"


class Fixed(Detector):
    """Returns the same boxes for any input and records what it was given."""

    def __init__(self, boxes: list[list[float]], scores: list[float], name: str = "fixed") -> None:
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(scores, np.float32)
        self.name = name
        self.seen: list[object] = []
        self.closed = False

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        self.seen.append(frame)
        return Detections(self.boxes.copy(), self.scores.copy())

    def close(self) -> None:
        self.closed = True


class Recording(Detector):
    """Wraps a real detector and keeps its last output, to compare with the ensemble's."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.name = inner.name
        self.last = Detections.empty()

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        self.last = self.inner.detect(frame)
        return self.last


class WindowRecorder(TiledDetector):
    """A tiled member that finds one box in every window it is asked about."""

    name = "windows"

    def __init__(self, **tiling: object) -> None:
        super().__init__(**({"tile_size": None} | tiling))  # type: ignore[arg-type]
        self.windows_seen: list[tuple[int, int, int, int]] = []

    def detect_windows(self, image, windows):  # type: ignore[no-untyped-def]
        self.windows_seen += windows
        return super().detect_windows(image, windows)

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[1, 1, 5, 5]], np.float32), np.array([0.5], np.float32)


def covering(outer: np.ndarray, inner: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """(n,) for each inner box: is it inside some outer box?"""
    inside = (outer[None, :, :2] <= inner[:, None, :2] + tol).all(axis=2)
    inside &= (outer[None, :, 2:] >= inner[:, None, 2:] - tol).all(axis=2)
    return inside.any(axis=1)


def test_overlapping_boxes_merge_into_their_union_with_the_best_score() -> None:
    a = Fixed([[10, 10, 50, 50], [200, 200, 230, 230]], [0.9, 0.4], "a")
    b = Fixed([[14, 6, 56, 48], [400, 10, 420, 30]], [0.3, 0.8], "b")
    found = EnsembleDetector([a, b]).detect(np.zeros((480, 640, 3), np.uint8))
    order = np.argsort(found.xyxy[:, 0])
    assert found.xyxy[order].tolist() == [
        [10, 6, 56, 50],  # the union of the two views of one face, not a compromise
        [200, 200, 230, 230],
        [400, 10, 420, 30],
    ]
    assert found.confidence[order].tolist() == pytest.approx([0.9, 0.4, 0.8])


def test_empty_members_give_empty_detections() -> None:
    ensemble = EnsembleDetector([Fixed([], []), Fixed([], [])])
    assert len(ensemble.detect(np.zeros((10, 10, 3), np.uint8))) == 0


def test_frame_is_passed_through_to_every_member() -> None:
    # ScriptedDetector refuses bare arrays: it schedules by frame index.
    scripted = ScriptedDetector([[[5, 5, 20, 20]], [[30, 30, 60, 60]]])
    fixed = Fixed([[100, 100, 120, 120]], [0.7])
    ensemble = EnsembleDetector([scripted, fixed])
    frame = Frame(1, np.zeros((120, 160, 3), np.uint8), 1, None, 0.0)
    found = ensemble.detect(frame)
    assert scripted.calls == [1] and fixed.seen == [frame]
    assert sorted(found.xyxy[:, 0].tolist()) == [30, 100]


def test_a_failing_member_propagates_instead_of_shrinking_coverage() -> None:
    failing = ScriptedDetector([[[0, 0, 4, 4]]], raise_on=[0])
    ensemble = EnsembleDetector([Fixed([[1, 1, 9, 9]], [0.9]), failing])
    with pytest.raises(RuntimeError, match="scripted failure"):
        ensemble.detect(Frame(0, np.zeros((16, 16, 3), np.uint8), 0, None, 0.0))


def test_detect_windows_delegates_and_window_less_members_see_the_whole_image() -> None:
    tiled, plain = WindowRecorder(), Fixed([[300, 300, 320, 320]], [0.6])
    ensemble = EnsembleDetector([tiled, plain])
    image = np.zeros((480, 640, 3), np.uint8)
    windows = [(0, 0, 100, 100), (200, 100, 300, 200)]
    found = ensemble.detect_windows(image, windows)
    assert tiled.windows_seen == windows
    assert len(plain.seen) == 1 and plain.seen[0] is image
    assert sorted(found.xyxy.tolist()) == [[1, 1, 5, 5], [201, 101, 205, 105], [300, 300, 320, 320]]


def test_tile_period_is_the_lcm_of_the_members() -> None:
    four = WindowRecorder(tile_size=384, max_tiles_per_frame=4)  # 1280x720: 15 tiles
    five = WindowRecorder(tile_size=384, max_tiles_per_frame=3)
    assert four.tile_period(1280, 720) == 4 and five.tile_period(1280, 720) == 5
    ensemble = EnsembleDetector([four, five, Fixed([], [])])
    assert ensemble.tile_period(1280, 720) == 20
    assert EnsembleDetector([Fixed([], [])]).tile_period(1280, 720) == 1


def test_close_closes_every_member_even_when_one_fails() -> None:
    class Broken(Fixed):
        def close(self) -> None:
            raise OSError("cannot close")

    first, broken, last = Fixed([], []), Broken([], []), Fixed([], [])
    with pytest.raises(OSError, match="cannot close"):
        EnsembleDetector([first, broken, last]).close()
    assert first.closed and last.closed


def test_needs_members() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleDetector([])


@pytest.fixture(scope="module")
def members() -> tuple[Detector, Detector]:
    from streamdeid.detect.centerface import CenterFaceDetector

    try:
        cf = CenterFaceDetector()
    except MissingExtraError as e:
        pytest.skip(str(e))
    return cf, BlazeFaceDetector(tile_size=256, max_tiles_per_frame=None)


@pytest.mark.parametrize("photo", [T1, CITY], ids=["t1", "city"])
def test_real_photo_ensemble_covers_every_member_box(shared_data: Path, members, photo) -> None:
    image = cv2.imread(str(shared_data / photo))
    recorded = [Recording(m) for m in members]
    ensemble = EnsembleDetector(recorded)
    assert ensemble.name == "ensemble(centerface+blazeface)"
    found = ensemble.detect(image)
    centre, blaze = (r.last for r in recorded)
    assert len(centre) >= 6 and len(blaze) >= 4  # both members really found faces
    for member in (centre, blaze):
        assert covering(found.xyxy, member.xyxy).all()
    # Merging happened (a face seen by both is one box), yet nothing beyond the union remains.
    assert max(len(centre), len(blaze)) <= len(found) < len(centre) + len(blaze)
    # Each ensemble box is the bounding box of member boxes: its edges are member box edges.
    both = np.concatenate([centre.xyxy, blaze.xyxy])
    for box in found.xyxy:
        assert np.isin(box[:2], both[:, :2]).all() and np.isin(box[2:], both[:, 2:]).all()


def test_make_detector_builds_the_configured_ensemble(shared_data: Path, members) -> None:
    config = load_config("default").override(
        {"detector.backend": "ensemble", "detector.focus.enabled": False}
    )
    detector = make_detector(config)
    try:
        assert isinstance(detector, EnsembleDetector)
        assert detector.name == "ensemble(centerface+blazeface)"
        found = detector.detect(cv2.imread(str(shared_data / T1)))
        assert int((found.confidence >= 0.5).sum()) >= 6
    finally:
        detector.close()


def test_motion_gate_can_wrap_the_ensemble(members) -> None:
    from streamdeid.detect.focus import FocusDetector
    from streamdeid.detect.tiling import box_iou
    from streamdeid.testing.render import render_frames
    from streamdeid.testing.synthetic import default_face_paths

    config = load_config("default").override(
        {
            "detector.backend": "ensemble",
            "detector.focus.enabled": True,
            "detector.focus.coarse_height": 0,
            "detector.focus.motion": True,
        }
    )
    detector = make_detector(config)
    assert isinstance(detector, FocusDetector)
    assert isinstance(detector.inner, EnsembleDetector)
    frames = render_frames((640, 360), 8, default_face_paths((640, 360), 8))
    try:
        for i, (image, boxes) in enumerate(frames):
            found = detector.detect(Frame(i, image, i, None, 0.0))
            truth = np.asarray(boxes, np.float32)
            hit = (box_iou(truth, found.xyxy) >= 0.5).any(axis=1) | covering(found.xyxy, truth)
            assert hit.all(), f"frame {i}: a face has no box"
    finally:
        detector.close()
