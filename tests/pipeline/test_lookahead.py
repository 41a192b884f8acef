from __future__ import annotations

from streamdeid.pipeline.lookahead import grow_box, lookahead_regions, scaled_grow
from streamdeid.types import Region


def test_margin_grows_with_the_distance_from_the_run_that_saw_the_face() -> None:
    # A face that appeared two frames before the next run had two frames to move: with
    # detect_every 3 its box must be grown twice as much there as one frame before the run.
    # Both held frames get that margin: one mask for the whole gap.
    b = Region((100, 100, 140, 140), 9)
    one_before = lookahead_regions([], [], [b], 2, 1, 1.25, 640, 360)
    two_before = lookahead_regions([], [], [b], 1, 2, 1.25, 640, 360)
    assert [r.xyxy for r in two_before] == [grow_box(b.xyxy, 1.5, 640, 360)]
    assert [r.xyxy for r in one_before] == [r.xyxy for r in two_before]
    # Without a next run (a live camera's blind rule), the frame's own distance is all there is.
    alone = lookahead_regions([], [b], [], 2, 0, 1.25, 640, 360)
    assert [r.xyxy for r in alone] == [grow_box(b.xyxy, 1.5, 640, 360)]


def test_every_frame_of_a_gap_shares_one_mask_holding_its_own_margins() -> None:
    # detect_every 4: three held frames, 1, 2 and 3 frames after A. Each is masked with the
    # same boxes, and each box holds what the frame's own distance from A and from B asked for.
    a = Region((100, 100, 140, 140), 1)
    b = Region((130, 110, 170, 150), 1)
    new = Region((400, 200, 440, 240), 2)
    masks = [
        sorted(r.xyxy for r in lookahead_regions([], [a], [b, new], k, 4 - k, 1.25, 640, 360))
        for k in (1, 2, 3)
    ]
    assert masks[0] == masks[1] == masks[2]
    for k in (1, 2, 3):
        for r, frames in ((a, k), (b, 4 - k), (new, 4 - k)):
            own = grow_box(r.xyxy, scaled_grow(1.25, frames), 640, 360)
            assert any(_inside(own, m) for m in masks[0]), (k, r.xyxy)


def _inside(inner, outer) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )


def test_scaled_growth_is_capped_but_never_below_the_configured_factor() -> None:
    assert scaled_grow(1.25, 1) == 1.25
    assert scaled_grow(1.25, 3) == 1.75
    assert scaled_grow(1.25, 11) == 3.75  # a live detector far behind: 11 frames
    assert scaled_grow(1.25, 40) == 4.0
    assert scaled_grow(3.0, 1) == 3.0


def test_face_seen_by_both_runs_is_covered_along_its_path() -> None:
    a = Region((100, 100, 140, 140), 4)
    b = Region((160, 100, 200, 140), 4)  # moved 60 px in 3 frames
    regions = lookahead_regions([], [a], [b], 1, 2, 1.25, 640, 360)
    for x in (120, 140, 160):  # positions on the straight path
        assert any(r.xyxy[0] <= x and r.xyxy[2] >= x + 40 for r in regions)


def test_a_face_seen_by_both_runs_is_placed_between_them_in_proportion() -> None:
    a = Region((90, 90, 150, 150), 4, (100.0, 100.0, 140.0, 140.0))
    b = Region((150, 90, 210, 150), 4, (160.0, 100.0, 200.0, 140.0))
    own = Region((95, 90, 155, 150), 4, (105.0, 100.0, 145.0, 140.0))  # extrapolated from a
    regions = lookahead_regions([own], [a], [b], 1, 2, 1.25, 640, 360)
    faces = {r.face for r in regions if r.track_id == 4}
    assert faces == {(120.0, 100.0, 160.0, 140.0)}  # one third of the way from a to b
    # Only the run before is known (a live camera that does not wait): the tracker's own box.
    alone = lookahead_regions([own], [a], [], 1, 0, 1.25, 640, 360)
    assert {r.face for r in alone if r.track_id == 4} == {own.face}
    # A face that appeared before the next run found it: where that run saw it.
    new = Region((400, 90, 460, 150), 8, (410.0, 100.0, 450.0, 140.0))
    appeared = lookahead_regions([own], [a], [b, new], 2, 1, 1.25, 640, 360)
    assert {r.face for r in appeared if r.track_id == 8} == {new.face}


def test_a_face_inside_another_tracks_region_keeps_its_place_between_runs() -> None:
    # A walker's face lies inside a neighbour's wide region on this frame and at the next run,
    # so it has no region of its own there, only an entry in that region's ``inner``. It must
    # still be placed between the runs (a face-drawing method draws it), not lost.
    a = Region((90, 90, 150, 150), 4, (100.0, 100.0, 140.0, 140.0))
    wide = (0, 0, 400, 360)
    b = Region(wide, 9, (10.0, 10.0, 390.0, 350.0), ((4, (160.0, 100.0, 200.0, 140.0)),))
    own = Region(wide, 9, (10.0, 10.0, 390.0, 350.0), ((4, (105.0, 100.0, 145.0, 140.0)),))
    regions = lookahead_regions([own], [a], [b], 1, 2, 1.25, 640, 360)
    faces = {f for r in regions for t, f in ((r.track_id, r.face), *r.inner) if t == 4}
    assert faces == {(120.0, 100.0, 160.0, 140.0)}  # one third of the way, as for its own region


def test_a_face_seen_only_inside_other_regions_is_still_named_and_masks_stay() -> None:
    # The walker's face is inside the neighbour's wide region at both runs and on the frame
    # itself: no region of its own anywhere, yet it must be placed (and drawn) between them,
    # without changing what is masked.
    face9 = (10.0, 10.0, 390.0, 350.0)
    wide = (0, 0, 400, 360)

    def inside(face: tuple[float, float, float, float]) -> Region:
        return Region(wide, 9, face9, ((4, face),))

    a = inside((100.0, 100.0, 140.0, 140.0))
    b = inside((160.0, 100.0, 200.0, 140.0))
    own = inside((105.0, 100.0, 145.0, 140.0))
    regions = lookahead_regions([own], [a], [b], 1, 2, 1.25, 640, 360)
    faces = {f for r in regions for t, f in ((r.track_id, r.face), *r.inner) if t == 4}
    assert faces == {(120.0, 100.0, 160.0, 140.0)}
    alone = [Region(wide, 9, face9)]
    plain = lookahead_regions(alone, alone, alone, 1, 2, 1.25, 640, 360)
    assert [r.xyxy for r in regions] == [r.xyxy for r in plain]
