"""dlib's HOG detector as the leak check's independent detector: scale limit, threshold, options."""

from __future__ import annotations

import numpy as np
import pytest

from streamdeid.errors import ConfigError
from streamdeid.evaluate import DlibDetector, iou_matrix
from streamdeid.io.source import FileSource


@pytest.fixture(scope="module")
def frame(synthetic) -> np.ndarray:
    """Frame 25 of the generated clip: one frontal face about 130 px high."""
    clip, _ = synthetic
    with FileSource(clip) as src:
        for f in src.frames():
            if f.index == 25:
                return f.image
    raise AssertionError("the synthetic clip has fewer than 26 frames")


def test_finds_the_face_with_scores_over_the_threshold(frame) -> None:
    found = DlibDetector().detect(frame)
    assert len(found) >= 1
    assert np.all(found.confidence >= 0.0)
    heights = found.xyxy[:, 3] - found.xyxy[:, 1]
    assert heights.max() > 80


def test_threshold_is_dlibs_adjust_threshold(frame) -> None:
    default = DlibDetector().detect(frame)
    looser = DlibDetector(adjust_threshold=-0.5).detect(frame)
    assert len(looser) >= len(default)
    assert len(DlibDetector(adjust_threshold=3.0).detect(frame)) == 0  # face scores are ~1-1.5


def test_tall_frames_are_downscaled_and_boxes_scaled_back(frame) -> None:
    full = DlibDetector(max_height=None).detect(frame)
    half = DlibDetector(max_height=180)
    assert half.scale_for(360) == 0.5 and half.scale_for(180) == 1.0
    assert half.min_face_px(360) == 80.0  # the 40-px limit doubles at half scale
    found = half.detect(frame)
    assert len(found) >= 1
    # The same face at the same place in frame coordinates, not at half its size.
    assert iou_matrix(full.xyxy, found.xyxy).max() >= 0.5
    assert "360 px frames run at 180 px (×0.5), faces from ~80 px" in half.describe(360)


def test_upsample_lowers_the_smallest_face(frame) -> None:
    assert DlibDetector(upsample=0).min_face_px(360) == 80.0
    assert DlibDetector(upsample=2).min_face_px(1080) == pytest.approx(30.0)  # 20 px at 720
    grey = DlibDetector().detect(frame[:, :, 0].copy())  # a grey image is accepted as is
    assert len(grey) >= 1


def test_empty_frame_finds_nothing() -> None:
    found = DlibDetector().detect(np.zeros((120, 160, 3), np.uint8))
    assert found.xyxy.shape == (0, 4) and found.confidence.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upsample": -1}, "--dlib-upsample"),
        ({"upsample": 1.5}, "--dlib-upsample"),
        ({"adjust_threshold": float("nan")}, "--threshold"),
        ({"max_height": -5}, "--max-height"),
    ],
)
def test_bad_parameters(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DlibDetector(**kwargs)
