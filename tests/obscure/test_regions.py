from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamdeid.obscure.regions import GHOST_IOU, build_regions, merge_regions, pad_box
from streamdeid.types import Detections, Region, Track, TrackState


def confirmed(track_id: int, xyxy: list[float]) -> Track:
    return Track(track_id, np.array(xyxy, np.float32), TrackState.CONFIRMED, misses=0)


def coasting(track_id: int, xyxy: list[float]) -> Track:
    return Track(track_id, np.array(xyxy, np.float32), TrackState.COASTING, misses=1)


def test_pad_box_scales_around_centre_and_rounds_outwards() -> None:
    assert pad_box((100, 100, 200, 200), 1000, 1000, 1.3, 1) == (85, 85, 215, 215)


def test_pad_box_clips_to_frame_and_drops_outside_boxes() -> None:
    assert pad_box((-20, -20, 30, 30), 100, 80, 1.0, 1) == (0, 0, 30, 30)
    assert pad_box((95, 70, 140, 120), 100, 80, 1.0, 1) == (90, 70, 100, 80)
    assert pad_box((200, 200, 220, 220), 100, 80, 1.0, 1) is None


def test_tiny_box_is_enlarged_not_skipped() -> None:
    x1, y1, x2, y2 = pad_box((50, 50, 51, 51), 100, 100, 1.3, 12)
    assert x2 - x1 >= 12 and y2 - y1 >= 12


def test_regions_are_union_of_detections_and_tracks() -> None:
    d = Detections(np.array([[10, 10, 30, 30]], np.float32), np.ones(1, np.float32))
    t = Track(
        track_id=7, xyxy=np.array([60, 10, 80, 30], np.float32), state=TrackState.COASTING, misses=2
    )
    regions = build_regions(d, [t], 100, 100, mask_scale=1.0, min_size_px=1)
    assert {r.xyxy for r in regions} == {(10, 10, 30, 30), (60, 10, 80, 30)}
    assert {r.track_id for r in regions} == {None, 7}


def test_detection_failure_masks_the_whole_frame() -> None:
    regions = build_regions(None, [], 64, 48, detection_failed=True)
    assert [r.xyxy for r in regions] == [(0, 0, 64, 48)]


def test_face_cut_by_the_frame_edge_is_restored_inwards() -> None:
    # A 2-px sliver of a face entering on the right: mask a full face width inside the frame.
    assert pad_box((638, 85, 640, 146), 640, 360, 1.0, 1) == (579, 85, 640, 146)
    assert pad_box((0, 85, 3, 146), 640, 360, 1.0, 1) == (0, 85, 61, 146)
    assert pad_box((100, 0, 150, 10), 640, 360, 1.0, 1) == (100, 0, 150, 50)
    assert pad_box((100, 100, 110, 160), 640, 360, 1.0, 1) == (100, 100, 110, 160)


def test_detection_inside_its_track_region_is_not_repeated() -> None:
    d = Detections(
        np.array([[20, 20, 40, 40], [70, 70, 90, 90]], np.float32), np.ones(2, np.float32)
    )
    t = confirmed(3, [18, 18, 42, 42])
    regions = build_regions(d, [t], 100, 100, mask_scale=1.0, min_size_px=1)
    assert [(r.xyxy, r.track_id) for r in regions] == [
        ((18, 18, 42, 42), 3),
        ((70, 70, 90, 90), None),
    ]


def test_detection_and_its_track_box_become_one_region_around_both() -> None:
    # The same face a few pixels apart: blurring both boxes would blur most of it twice.
    d = Detections(np.array([[22, 20, 42, 40]], np.float32), np.ones(1, np.float32))
    t = confirmed(5, [20, 21, 40, 41])
    regions = build_regions(d, [t], 100, 100, mask_scale=1.0, min_size_px=1)
    assert [(r.xyxy, r.track_id) for r in regions] == [((20, 20, 42, 41), 5)]


def test_boxes_of_two_people_are_never_merged() -> None:
    # Per-person reveal decrypts a track's regions: a region must not hold a neighbour's face.
    a = confirmed(1, [10, 10, 30, 30])
    b = confirmed(2, [12, 11, 32, 31])
    new_face = Detections(np.array([[26, 10, 46, 30]], np.float32), np.ones(1, np.float32))
    regions = build_regions(new_face, [a, b], 100, 100, mask_scale=1.0, min_size_px=1)
    assert sorted((r.xyxy, r.track_id) for r in regions) == [
        ((10, 10, 30, 30), 1),
        ((12, 11, 32, 31), 2),
        ((26, 10, 46, 30), None),  # IoU 0.33 with track 2: another face, kept apart
    ]


def test_merged_regions_cover_every_input_box() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        xy = rng.integers(0, 80, (8, 2))
        wh = rng.integers(4, 30, (8, 2))
        boxes = [
            ((int(x), int(y), int(x + w), int(y + h)), int(rng.integers(0, 3)) or None)
            for (x, y), (w, h) in zip(xy, wh, strict=True)
        ]
        regions = merge_regions(boxes)
        for box, _ in boxes:
            assert any(
                r.xyxy[0] <= box[0]
                and r.xyxy[1] <= box[1]
                and r.xyxy[2] >= box[2]
                and r.xyxy[3] >= box[3]
                for r in regions
            ), box


def test_a_track_region_carries_its_unpadded_face_a_raw_detection_none() -> None:
    # The surrogate method draws at the face, so the region must say where the face is: its
    # box is padded, clipped and merged with the detection of the same face.
    d = Detections(np.array([[58, 12, 82, 32], [5, 5, 15, 15]], np.float32), np.ones(2, np.float32))
    regions = build_regions(d, [confirmed(7, [60, 10, 80, 30])], 100, 100, mask_scale=1.3)
    by_id = {r.track_id: r for r in regions}
    assert by_id[7].face == (60.0, 10.0, 80.0, 30.0)
    assert by_id[None].face is None


def test_a_track_box_dropped_inside_another_region_hands_its_face_to_that_region() -> None:
    # Track 1's span holds track 2's box (and a raw detection): both are dropped as already
    # masked, but a method that draws faces must still know where track 2's face is.
    span, inner, raw = (0, 0, 200, 100), (120, 20, 160, 60), (20, 20, 50, 50)
    faces = {1: (5.0, 5.0, 40.0, 45.0), 2: (126.0, 26.0, 154.0, 54.0)}
    regions = merge_regions([(span, 1), (inner, 2), (raw, None), (inner, 2)], faces)
    assert [(r.xyxy, r.track_id, r.face, r.inner) for r in regions] == [
        (span, 1, faces[1], ((2, faces[2]),))
    ]
    # A box of the region's own track inside it is the same face: nothing is added.
    (own,) = merge_regions([(span, 1), ((10, 10, 30, 30), 1)], faces)
    assert own.inner == ()


def test_a_coasting_track_over_a_seen_one_is_masked_but_names_no_face() -> None:
    # The same person followed anew after a jump: the old track coasts where it predicted the
    # face, beside the new one. Both are masked; only the seen one says where a face is, so
    # a face-drawing method does not draw a second face beside the real one.
    new = confirmed(2, [100, 100, 140, 140])
    ghost = coasting(1, [112, 104, 152, 144])
    alone = coasting(3, [300, 100, 340, 140])
    regions = build_regions(None, [ghost, new, alone], 640, 360, mask_scale=1.3)
    by_id = {r.track_id: r for r in regions}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1].face is None
    assert by_id[2].face == (100.0, 100.0, 140.0, 140.0)
    assert by_id[3].face == (300.0, 100.0, 340.0, 140.0)  # nobody else there: still a face


# --------------------------------------------------------------------------------------------------
# The compiled merge against the rules written out as plain Python (the loops it replaced).
# --------------------------------------------------------------------------------------------------


def _area(b: tuple) -> float:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _iou(a: tuple, b: tuple) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union else 0.0


def _around(a: tuple, b: tuple) -> tuple:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _merge_ref(boxes: list, faces: dict) -> list[Region]:
    def same_face(a: tuple, a_id: int | None, b: tuple, b_id: int | None) -> bool:
        if a_id is not None and b_id is not None:
            return a_id == b_id and _area(_around(a, b)) <= _area(a) + _area(b)
        return _iou(a, b) >= 0.5

    def holds(other: tuple, j: int, box: tuple, i: int) -> bool:
        inside = other[0] <= box[0] and other[1] <= box[1] and other[2] >= box[2]
        return j != i and inside and other[3] >= box[3] and (other != box or j < i)

    merged: list[list] = []
    for box, track_id in boxes:
        for item in merged:
            if same_face(item[0], item[1], box, track_id):
                item[0] = _around(item[0], box)
                item[1] = track_id if item[1] is None else item[1]
                break
        else:
            merged.append([box, track_id])
    holders = [
        [j for j, (other, _) in enumerate(merged) if holds(other, j, box, i)]
        for i, (box, _) in enumerate(merged)
    ]
    inner: dict[int, dict] = {}
    for (_, track_id), held_by in zip(merged, holders, strict=True):
        face = faces.get(track_id) if track_id is not None else None
        for j in held_by if face is not None else []:
            if not holders[j] and merged[j][1] != track_id:
                inner.setdefault(j, {})[track_id] = face
    return [
        Region(
            box, tid, faces.get(tid) if tid is not None else None, tuple(inner.get(i, {}).items())
        )
        for i, (box, tid) in enumerate(merged)
        if not holders[i]
    ]


_boxes = st.lists(
    st.tuples(
        st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 40), st.integers(1, 40)),
        st.one_of(st.none(), st.integers(0, 4)),
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(_boxes, st.sets(st.integers(0, 4)))
@example([((0, 0, 3, 1), None), ((1, 0, 4, 1), 1)], {1})  # IoU exactly 0.5: merged
@example([((0, 0, 3, 1), 2), ((0, 0, 3, 1), 1), ((1, 0, 2, 1), 3)], {1, 2, 3})  # equal boxes
def test_compiled_merge_is_the_plain_rules_box_for_box(raw: list, with_face: set) -> None:
    # Crowded on purpose (60-px field, 40-px boxes, ids 0-4): nested, equal, same-id and raw
    # boxes all occur, so every branch of the rules is compared, in order.
    boxes = [((x, y, x + w, y + h), tid) for (x, y, w, h), tid in raw]
    faces = {tid: (float(tid), 1.0, 20.0 + tid, 21.0) for tid in with_face}
    assert merge_regions(boxes, faces) == _merge_ref(boxes, faces)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.tuples(*[st.floats(0, 80, allow_nan=False)] * 2, *[st.floats(1, 40)] * 2),
            st.sampled_from(list(TrackState)),
        ),
        max_size=12,
    )
)
def test_ghost_rule_is_the_scalar_iou_rule(raw: list) -> None:
    tracks = [
        Track(i, np.array([x, y, x + w, y + h], np.float32), state, misses=0)
        for i, ((x, y, w, h), state) in enumerate(raw)
    ]
    faces = [tuple(float(v) for v in t.xyxy) for t in tracks]
    seen = [f for t, f in zip(tracks, faces, strict=True) if t.state != TrackState.COASTING]
    named = {
        t.track_id: f
        for t, f in zip(tracks, faces, strict=True)
        if t.state != TrackState.COASTING or not any(_iou(f, s) > GHOST_IOU for s in seen)
    }
    boxes = [(pad_box(t.xyxy, 200, 200, 1.0, 1), t.track_id) for t in tracks]
    expected = _merge_ref(boxes, named)
    assert build_regions(None, tracks, 200, 200, mask_scale=1.0, min_size_px=1) == expected
