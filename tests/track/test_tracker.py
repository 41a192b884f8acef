from __future__ import annotations

import numpy as np
import pytest

from streamdeid.track.iou import IoUTracker
from streamdeid.types import Detections, TrackState


def dets(*boxes: tuple[float, float, float, float]) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def test_new_face_is_reported_on_its_first_frame() -> None:
    tracker = IoUTracker(min_hits=3)
    tracks = tracker.update(dets((10, 10, 50, 60)))
    assert len(tracks) == 1
    assert tracks[0].state is TrackState.TENTATIVE
    np.testing.assert_allclose(tracks[0].xyxy, (10, 10, 50, 60), atol=1)


def test_low_confidence_face_is_still_tracked() -> None:
    tracker = IoUTracker()
    d = Detections(np.array([[0, 0, 20, 20]], np.float32), np.array([0.05], np.float32))
    assert len(tracker.update(d)) == 1


def test_track_confirms_after_min_hits_and_keeps_its_id() -> None:
    tracker = IoUTracker(min_hits=3)
    ids, states = set(), []
    for i in range(4):
        tracks = tracker.update(dets((10 + 2 * i, 10, 50 + 2 * i, 60)))
        ids |= {t.track_id for t in tracks}
        states.append(tracks[0].state)
    assert ids == {1}
    assert states == [
        TrackState.TENTATIVE,
        TrackState.TENTATIVE,
        TrackState.CONFIRMED,
        TrackState.CONFIRMED,
    ]


def test_lost_face_coasts_with_growing_box_then_ends() -> None:
    tracker = IoUTracker(max_coast_frames=5, coast_growth=0.1)
    for _ in range(3):
        tracker.update(dets((100, 100, 140, 150)))
    widths = []
    for _ in range(5):
        (track,) = tracker.update(dets())
        assert track.state is TrackState.COASTING
        widths.append(float(track.xyxy[2] - track.xyxy[0]))
    assert widths == sorted(widths) and widths[-1] > widths[0] > 40
    assert tracker.update(dets()) == []


def test_moving_face_is_followed_between_detector_runs() -> None:
    # Detector runs every 3rd frame (None in between): the predicted box must keep up.
    tracker = IoUTracker(max_coast_frames=5)
    for i in range(30):
        x = 10 + 5 * i
        truth = np.array([x, 50, x + 40, 100], np.float32)
        tracks = tracker.update(dets(tuple(truth)) if i % 3 == 0 else None)
        assert len(tracks) == 1
        box = tracks[0].xyxy
        if i > 6:  # after the velocity has been learnt, the truth lies inside the box
            assert box[0] <= truth[0] + 4 and box[2] >= truth[2] - 4, (i, box, truth)


def test_two_trackers_do_not_share_ids() -> None:
    a, b = IoUTracker(), IoUTracker()
    assert a.update(dets((0, 0, 10, 10)))[0].track_id == 1
    assert b.update(dets((0, 0, 10, 10)))[0].track_id == 1


@pytest.mark.parametrize(
    "kwargs", [{"iou_threshold": 0}, {"min_hits": 0}, {"max_coast_frames": -1}]
)
def test_bad_arguments_are_named(kwargs) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        IoUTracker(**kwargs)
