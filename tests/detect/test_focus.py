"""Motion-gated detection: where the model runs, and that a face that stops moving stays masked."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamdeid.detect.base import Detector
from streamdeid.detect.focus import FocusDetector
from streamdeid.detect.tiled import TiledDetector
from streamdeid.types import Detections, Frame

DoesNotRaise = contextlib.nullcontext
W, H = 1280, 720
WHOLE = (0, 0, W, H)


class FakeInner(Detector):
    """Records every call; finds the boxes in ``faces`` that a call can see.

    ``detect`` sees all of them; ``detect_windows`` only those entirely inside one window.
    """

    name = "fake"

    def __init__(self, faces: list[tuple[float, float, float, float]] | None = None) -> None:
        self.faces = list(faces or [])
        self.full: list[int] = []
        self.windowed: list[list[tuple[int, int, int, int]]] = []
        self.closed = False

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        self.full.append(frame.index if isinstance(frame, Frame) else -1)
        return _boxes(self.faces)

    def detect_windows(
        self, image: np.ndarray, windows: list[tuple[int, int, int, int]]
    ) -> Detections:
        self.windowed.append(list(windows))
        seen = [f for f in self.faces if any(_inside(f, w) for w in windows)]
        return _boxes(seen)

    def close(self) -> None:
        self.closed = True


class PeriodicInner(FakeInner):
    """A fake with a tile rotation period, like a TiledDetector with a tile budget."""

    def tile_period(self, width: int, height: int) -> int:
        return 4


class BudgetedInner(FakeInner):
    """A fixed-input model (one inference per window) whose own pass runs two windows."""

    input_size = 192

    def windows(self, width: int, height: int, index: int = 0) -> list[tuple[int, int, int, int]]:
        return [(0, 0, width, height), (0, 0, width // 2, height // 2)]


class WholeFrameInner(FakeInner):
    """A fully convolutional model (cost in pixels) whose own pass is the whole frame."""

    def windows(self, width: int, height: int, index: int = 0) -> list[tuple[int, int, int, int]]:
        return [(0, 0, width, height)]


class NoWindows(Detector):
    name = "whole-only"

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        return Detections.empty()


def _boxes(faces: list[tuple[float, float, float, float]]) -> Detections:
    return Detections(np.asarray(faces, np.float32).reshape(-1, 4), np.ones(len(faces), np.float32))


def _inside(box: tuple[float, ...], window: tuple[int, ...]) -> bool:
    return (
        window[0] <= box[0] and window[1] <= box[1] and box[2] <= window[2] and box[3] <= window[3]
    )


def background(seed: int = 0) -> np.ndarray:
    """A textured static scene (texture so that a shift or a cut changes most pixels)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (H // 16, W // 16, 3), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)


def noisy(image: np.ndarray, rng: np.random.Generator, level: int = 3) -> np.ndarray:
    """Sensor-like noise below the motion threshold."""
    noise = rng.integers(-level, level + 1, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def frame(index: int, image: np.ndarray) -> Frame:
    return Frame(index, image, index, None, 0.0)


def test_static_scene_runs_the_model_only_on_periodic_full_scans() -> None:
    inner = FakeInner()
    gated = FocusDetector(inner, full_scan_every=12)
    rng = np.random.default_rng(1)
    scene = background()
    for i in range(40):
        assert len(gated.detect(frame(i, noisy(scene, rng)))) == 0
    assert inner.full == [0, 12, 24, 36]
    assert inner.windowed == []
    assert (gated.full_scans, gated.gated_calls, gated.skipped_frames) == (4, 0, 36)


def test_moving_blob_is_searched_in_windows_around_it_not_the_whole_frame() -> None:
    inner = FakeInner()
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    blobs = []
    for i in range(20):
        image = scene.copy()
        blob = (300 + 12 * i, 200, 340 + 12 * i, 250)
        image[blob[1] : blob[3], blob[0] : blob[2]] = 255
        blobs.append(blob)
        gated.detect(frame(i, image))
    assert inner.full == [0]
    assert len(inner.windowed) == 19 and gated.gated_calls == 19
    for i, windows in enumerate(inner.windowed, start=1):
        assert WHOLE not in windows and len(windows) <= 8
        assert any(_inside(blobs[i], w) for w in windows), f"frame {i}: blob not in a window"
        assert all(min(w[2] - w[0], w[3] - w[1]) >= 192 for w in windows)
        # Only near where the blob is or has just been (the background still remembers it).
        near = (300 - 192, 200 - 192, blobs[i][2] + 192, 250 + 192)
        assert all(_inside(w, near) for w in windows), f"frame {i}: {windows}"
    assert gated.windows_run == sum(len(w) for w in inner.windowed)


class FixedInputInner(FakeInner):
    """Like BlazeFace: every window is resized to one model input."""

    input_size = 192


@pytest.mark.parametrize(("inner_type", "cells"), [(FixedInputInner, True), (FakeInner, False)])
def test_big_moving_blob_gets_small_cells_only_for_fixed_input_models(
    inner_type: type[FakeInner], cells: bool
) -> None:
    # A fixed-input model would see a small face inside a 500-px window shrunk 2.6x: the
    # tile-sized cells under the blob keep it at full scale. A fully convolutional model sees
    # every window at the frame's scale, so the one big window is enough.
    inner = inner_type()
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    moved = scene.copy()
    moved[200:600, 300:700] = 255 - moved[200:600, 300:700]
    gated.detect(frame(0, scene))
    gated.detect(frame(1, moved))
    ((big, *rest),) = inner.windowed
    assert _inside((300, 200, 700, 600), big)
    assert all(w[2] - w[0] == 192 and w[3] - w[1] == 192 for w in rest)
    assert (len(rest) >= 9) if cells else (rest == [])


def test_face_that_stops_moving_is_searched_on_every_frame() -> None:
    # Found by the first full scan, then nothing moves: the model must still look at the face
    # on every frame (not only until the tracker's coast time runs out).
    face = (600.0, 300.0, 640.0, 350.0)
    inner = FakeInner([face])
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    for i in range(100):
        found = gated.detect(frame(i, scene))
        np.testing.assert_allclose(found.xyxy, [face])
    assert inner.full == [0] and gated.skipped_frames == 0 and len(inner.windowed) == 99
    for windows in inner.windowed:
        (window,) = windows
        x1, y1, x2, y2 = window
        assert _inside(face, window)
        assert min(x2 - x1, y2 - y1) >= max(192, 2.5 * 50)


def test_window_around_a_large_known_face_gives_it_context() -> None:
    face = (500.0, 200.0, 700.0, 440.0)  # 200 x 240 px
    inner = FakeInner([face])
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    gated.detect(frame(0, scene))
    gated.detect(frame(1, scene))
    ((window,),) = inner.windowed
    assert _inside(face, window)
    assert min(window[2] - window[0], window[3] - window[1]) >= 2.5 * 240


def test_nearby_small_faces_share_one_window() -> None:
    # A seated row: one window sees them all, rather than one model call per face.
    faces = [(400.0 + 50 * k, 300.0, 420.0 + 50 * k, 324.0) for k in range(3)]
    far = (1000.0, 600.0, 1020.0, 624.0)
    inner = FakeInner([*faces, far])
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    gated.detect(frame(0, scene))
    gated.detect(frame(1, scene))
    ((first, second),) = inner.windowed
    assert all(_inside(f, first) for f in faces) and _inside(far, second)
    for face, window in [*((f, first) for f in faces), (far, second)]:
        margin = min(face[0] - window[0], face[1] - window[1])
        margin = min(margin, window[2] - face[2], window[3] - face[3])
        assert margin >= 0.25 * 24  # context around every face


def test_gating_that_would_cost_more_inferences_than_the_inner_pass_runs_that_pass() -> None:
    faces = [(100.0, 100.0, 120.0, 124.0), (600.0, 300.0, 620.0, 324.0), (1100, 600, 1120, 624)]
    inner = BudgetedInner(faces)
    gated = FocusDetector(inner, full_scan_every=1000)
    scene = background()
    for i in range(5):
        assert len(gated.detect(frame(i, scene))) == 3
    assert inner.full == [0, 1, 2, 3, 4] and inner.windowed == []  # 3 windows >= 2
    assert gated.fallbacks == 4 and gated.gated_calls == 0


def test_gating_is_costed_in_pixels_for_a_whole_frame_model() -> None:
    # Three small faces: three 192-px windows are far fewer pixels than the frame, so gated.
    # Three large ones: their windows hold more pixels than the frame, so the whole frame.
    small = [(100.0, 100.0, 120.0, 124.0), (600.0, 300.0, 620.0, 324.0), (1100, 600, 1120, 624)]
    large = [(100.0, 100.0, 380.0, 400.0), (500.0, 100.0, 780.0, 400.0), (900, 300, 1180, 600)]
    scene = background()
    for faces, gated_calls in [(small, 4), (large, 0)]:
        inner = WholeFrameInner(faces)
        gated = FocusDetector(inner, full_scan_every=1000)
        for i in range(5):
            assert len(gated.detect(frame(i, scene))) == 3
        assert gated.gated_calls == gated_calls
        assert gated.fallbacks == 4 - gated_calls


faces_strategy = st.lists(
    st.tuples(
        st.floats(-30, W - 10), st.floats(-30, H - 10), st.floats(8, 400), st.floats(0.7, 1.4)
    ).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[2] * t[3])),
    min_size=1,
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(faces=faces_strategy)
def test_every_known_face_is_searched_whole_with_context(
    faces: list[tuple[float, float, float, float]],
) -> None:
    # Whatever the layout: each face lies in some window at least 2.5x its size and at least
    # tile_size (both capped by the frame), with a quarter-face margin where the frame allows.
    inner = FakeInner(faces)
    gated = FocusDetector(inner, full_scan_every=1000, tile_size=192)
    scene = background()
    gated.detect(frame(0, scene))
    gated.detect(frame(1, scene))
    ((*windows,),) = inner.windowed
    for face in faces:
        edge = max(face[2] - face[0], face[3] - face[1])
        m = 0.25 * edge
        need = (max(0, face[0] - m), max(0, face[1] - m), min(W, face[2] + m), min(H, face[3] + m))
        fits = [
            w
            for w in windows
            if _inside(need, w)
            and w[2] - w[0] >= min(W, max(192, 2.5 * edge)) - 1e-6  # float noise: 2.5 *
            and w[3] - w[1] >= min(H, max(192, 2.5 * edge)) - 1e-6  # 220.00000000000003
        ]
        assert fits, f"face {face} not searched whole with context in {windows}"


def test_known_face_is_forgotten_after_memory_frames_without_a_detection() -> None:
    face = (600.0, 300.0, 640.0, 350.0)
    inner = FakeInner([face])
    gated = FocusDetector(inner, full_scan_every=1000, memory_frames=5)
    scene = background()
    gated.detect(frame(0, scene))
    inner.faces = []  # the model stops finding it (face turned away, out of the scene...)
    for i in range(1, 12):
        gated.detect(frame(i, scene))
    assert len(inner.windowed) == 5  # searched again on frames 1..5, then dropped
    assert gated.skipped_frames == 6


def test_scene_cut_gets_a_full_scan_and_a_new_background() -> None:
    inner = FakeInner()
    gated = FocusDetector(inner, full_scan_every=1000)
    first, second = background(0), background(1)
    for i in range(10):
        gated.detect(frame(i, first if i < 5 else second))
    assert inner.full == [0, 5]  # the cut, not a frame of gated windows
    assert inner.windowed == []  # after the cut the new picture is the background
    assert gated.skipped_frames == 8


def test_new_frame_size_or_rewound_index_starts_over() -> None:
    inner = FakeInner([(600.0, 300.0, 640.0, 350.0)])
    gated = FocusDetector(inner, full_scan_every=1000)
    scene = background()
    small = np.ascontiguousarray(scene[:360, :640])
    for i, image in enumerate([scene, scene, small, small]):
        gated.detect(frame(i, image))
    gated.detect(frame(0, small))  # a new stream through the same detector
    assert inner.full == [0, 2, 0]
    assert len(inner.windowed) == 2  # frames 1 and 3 (the face is known again after frame 2)


def test_global_lighting_change_gets_a_full_scan_not_gated_windows() -> None:
    inner = FakeInner()
    gated = FocusDetector(inner, full_scan_every=1000, threshold=10)
    scene = background()
    brighter = np.clip(scene.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    for i in range(8):
        gated.detect(frame(i, scene if i < 4 else brighter))
    assert inner.full == [0, 4]
    assert inner.windowed == []


def test_full_scans_are_coprime_with_the_inner_tile_rotation() -> None:
    # Scans 12 frames apart over a 4-phase tile rotation would visit phase 0 only; a still
    # small face in another phase would never be searched. The interval drops to 11.
    inner = PeriodicInner()
    gated = FocusDetector(inner, full_scan_every=12)
    scene = background()
    for i in range(50):
        gated.detect(frame(i, scene))
    assert inner.full == [0, 11, 22, 33, 44]
    assert {i % 4 for i in inner.full} == {0, 1, 2, 3}


class SilentTiled(TiledDetector):
    """A real TiledDetector (scheduling, tile budget) whose model finds nothing."""

    name = "silent"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.full: list[int] = []

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        self.full.append(frame.index if isinstance(frame, Frame) else -1)
        return super().detect(frame)

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


def test_real_tiled_inner_gets_every_tile_phase_from_its_full_scans() -> None:
    # 1080p, 256-px tiles, 4 per frame: a 15-frame rotation. Scans 12 frames apart would only
    # ever run phases 0, 3, 6, 9 and 12; 11 apart they run all 15.
    inner = SilentTiled(tile_size=256, tile_overlap=0.25, max_tiles_per_frame=4)
    assert inner.tile_period(1920, 1080) == 15
    gated = FocusDetector(inner, full_scan_every=12)
    scene = np.zeros((1080, 1920, 3), np.uint8)
    for i in range(166):
        gated.detect(frame(i, scene))
    assert inner.full == list(range(0, 166, 11))
    assert {i % 15 for i in inner.full} == set(range(15))


def test_bare_image_always_gets_the_inner_detect() -> None:
    inner = FakeInner()
    gated = FocusDetector(inner)
    for _ in range(3):
        gated.detect(background())
    assert inner.full == [-1, -1, -1] and inner.windowed == []


def test_name_and_close_delegate_to_the_inner_detector() -> None:
    inner = FakeInner()
    with FocusDetector(inner) as gated:
        assert gated.name == "focus(fake)"
    assert inner.closed


def test_inner_detector_without_detect_windows_is_rejected() -> None:
    with pytest.raises(ValueError, match="detect_windows"):
        FocusDetector(NoWindows())


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        pytest.param({}, DoesNotRaise(), id="defaults"),
        pytest.param({"full_scan_every": 1, "threshold": 255}, DoesNotRaise(), id="bounds"),
        pytest.param({"full_scan_every": 0}, pytest.raises(ValueError), id="full_scan_every"),
        pytest.param({"tile_size": 0}, pytest.raises(ValueError), id="tile_size"),
        pytest.param({"threshold": 0}, pytest.raises(ValueError), id="threshold-low"),
        pytest.param({"threshold": 256}, pytest.raises(ValueError), id="threshold-high"),
        pytest.param({"memory_frames": -1}, pytest.raises(ValueError), id="memory_frames"),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, int], expectation: object) -> None:
    with expectation:  # type: ignore[attr-defined]
        FocusDetector(FakeInner(), **kwargs)


# -- the cheap pass (coarse_height) --------------------------------------------------------------


class ConvInner(FakeInner):
    """A fully convolutional fake: any scale, ``detect_at`` sees faces at least ``min_px``
    network pixels tall that lie wholly inside a window; its own pass sees the frame at
    ``scales`` (with a ``min_input_height`` floor), like the real backends."""

    nms_iou = 0.3

    def __init__(
        self,
        faces: list[tuple[float, float, float, float]] | None = None,
        scales: tuple[float, ...] = (1.0,),
        min_input_height: int = 0,
        min_px: float = 10.0,
    ) -> None:
        super().__init__(faces)
        self.scales = scales
        self.min_input_height = min_input_height
        self.min_px = min_px
        self.at: list[tuple[int, list[tuple[int, int, int, int]], float]] = []  # (call, wins, s)
        self.calls = 0

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        self.calls += 1
        return super().detect(frame)

    def windows(self, width: int, height: int, index: int = 0) -> list[tuple[int, int, int, int]]:
        return [(0, 0, width, height)]

    def detect_at(
        self, image: np.ndarray, windows: list[tuple[int, int, int, int]], scale: float
    ) -> Detections:
        self.at.append((self.calls, list(windows), scale))
        seen = [
            f
            for f in self.faces
            if (f[3] - f[1]) * scale >= self.min_px and any(_inside(f, w) for w in windows)
        ]
        return _boxes(seen)


def still(n: int, image: np.ndarray | None = None) -> list[Frame]:
    scene = background() if image is None else image
    rng = np.random.default_rng(2)
    return [frame(i, noisy(scene, rng)) for i in range(n)]


def test_cheap_pass_runs_between_full_scans_at_the_coarse_height() -> None:
    big = (100.0, 100.0, 300.0, 320.0)  # 220 px: 110 network px in a 360-row pass
    inner = ConvInner([big])
    focused = FocusDetector(inner, full_scan_every=10, coarse_height=360, motion=False)
    for f in still(25):
        found = focused.detect(f)
        assert len(found) == 1 and np.allclose(found.xyxy[0], big)  # every frame finds it
    assert inner.full == [0, 10, 20]
    coarse = [(wins, s) for _, wins, s in inner.at if wins == [WHOLE]]
    assert len(coarse) == 22 and all(s == 0.5 for _, s in coarse)
    assert focused.coarse_passes == 22
    assert all(wins == [WHOLE] for _, wins, _ in inner.at)  # a big face needs no window


def test_face_too_small_for_the_cheap_pass_gets_a_window_at_its_own_scale() -> None:
    # 20 px is 10 network px in the 360-row pass of a 720p frame: the fake's limit, so only the
    # full scan (1x) finds it; afterwards a window shows it 40 px tall (2x, capped at 1x,
    # the full pass's scale) every frame, and finds it there.
    small = (600.0, 300.0, 616.0, 320.0)
    inner = ConvInner([small], min_px=12)
    focused = FocusDetector(inner, full_scan_every=1000, coarse_height=360, motion=False)
    for f in still(6):
        found = focused.detect(f)
        assert len(found) == 1 and np.allclose(found.xyxy[0], small)
    assert inner.full == [0]
    windows = [(wins, s) for _, wins, s in inner.at if wins != [WHOLE]]
    assert len(windows) == 5 and all(s == 1.0 for _, s in windows)
    for wins, _ in windows:
        ((x1, y1, x2, y2),) = wins
        assert _inside(small, (x1, y1, x2, y2))
        assert (x2 - x1) * (y2 - y1) < 0.02 * W * H  # a window, not a tile of the frame


def test_small_face_window_is_enlarged_when_the_full_pass_is() -> None:
    # A 360p frame whose full pass is floored to 720 rows (2x): a 16-px face is looked at with
    # the scale that shows it 40 px tall (2.5x), at most 2x.
    small = (300.0, 150.0, 316.0, 166.0)
    image = np.ascontiguousarray(background()[:360, :640])
    inner = ConvInner([small], min_input_height=720, min_px=24)
    focused = FocusDetector(inner, full_scan_every=1000, coarse_height=360, motion=False)
    for f in still(4, image):
        assert len(focused.detect(f)) == 1
    scales = {s for _, wins, s in inner.at if wins != [(0, 0, 640, 360)]}
    assert scales == {2.0}


def test_cheap_pass_is_skipped_when_it_would_see_no_less_than_the_full_pass() -> None:
    image = np.ascontiguousarray(background()[:360, :640])
    inner = ConvInner([(100.0, 100.0, 200.0, 220.0)])  # own pass at 1x: 360 rows
    focused = FocusDetector(inner, full_scan_every=1000, coarse_height=360, motion=False)
    for f in still(5, image):
        focused.detect(f)
    # ... so every call is a full pass: skipping both would leave a new face to the next scan.
    assert focused.coarse_passes == 0 and inner.at == []
    assert inner.full == [0, 1, 2, 3, 4]


def test_cut_gets_a_full_scan_but_a_pan_keeps_the_cheap_pass() -> None:
    inner = ConvInner()
    focused = FocusDetector(inner, full_scan_every=1000, coarse_height=360, motion=False)
    scene = background(0)
    # A cut: another shot, with its light and dark parts elsewhere.
    other = scene // 4
    other[:, : W // 2] += 180
    # A pan: the scene shifts 24 px per frame, most pixels change, the thumbnail barely.
    for i in range(6):
        focused.detect(frame(i, np.ascontiguousarray(np.roll(scene, 24 * i, axis=1))))
    assert inner.full == [0]
    focused.detect(frame(6, other))
    assert inner.full == [0, 6]


def test_windows_costing_more_than_the_full_pass_fall_back_to_it() -> None:
    # A crowd of tiny faces over the whole frame: their windows would cost more than one pass.
    faces = [
        (float(x), float(y), x + 12.0, y + 12.0)
        for x in range(20, 1240, 60)
        for y in range(20, 700, 60)
    ]
    inner = ConvInner(faces, min_px=1)
    focused = FocusDetector(inner, full_scan_every=1000, coarse_height=360, motion=False)
    for f in still(3):
        assert len(focused.detect(f)) == len(faces)
    assert inner.full == [0, 1, 2] and focused.fallbacks == 2


def test_periodic_full_pass_in_parts_covers_the_frame_over_consecutive_calls() -> None:
    # Live: the periodic pass runs as 3 bands on 3 calls beside the cheap pass; a small face
    # that only the full resolution finds is found by the band that holds it.
    small = (600.0, 650.0, 612.0, 664.0)  # 14 px, bottom band: 7 network px in the cheap pass
    inner = ConvInner([], min_px=12)
    focused = FocusDetector(
        inner, full_scan_every=10, coarse_height=360, motion=False, full_scan_parts=3
    )
    frames = still(14)
    for f in frames[:10]:
        focused.detect(f)
    inner.faces = [small]  # appears after the first full pass, without moving
    found = [len(focused.detect(f)) for f in frames[10:14]]
    assert inner.full == [0]  # no whole pass after the first frame
    bands = [w for wins in inner.windowed for w in wins]
    assert len(bands) == 3 and all(b[0] == 0 and b[2] == W for b in bands)
    assert bands[0][1] == 0 and bands[-1][3] == H
    assert all(a[3] > b[1] for a, b in itertools.pairwise(bands))  # neighbours overlap
    assert found == [0, 0, 1, 1]  # the third part finds it; a window follows it after
    assert focused.full_scans == 2


def test_a_part_of_the_full_pass_replaces_the_face_windows_it_holds() -> None:
    # Two small faces followed in windows, one in the top band and one in the bottom band: on
    # a part's call the window inside that part is not run again (the part saw its pixels at
    # the full pass's scale), the other one is, and both faces are found on every call.
    top, bottom = (600.0, 100.0, 616.0, 120.0), (300.0, 600.0, 316.0, 620.0)
    inner = ConvInner([top, bottom], min_px=12)
    focused = FocusDetector(
        inner, full_scan_every=10, coarse_height=360, motion=False, full_scan_parts=3
    )
    frames = still(14)
    for f in frames[:10]:
        focused.detect(f)
    followed: list[list[tuple[float, ...]]] = []
    for f in frames[10:14]:  # three parts, then a call without one
        inner.at.clear()
        assert len(focused.detect(f)) == 2
        windows = [w for _, wins, _ in inner.at for w in wins if w != WHOLE]
        followed.append([face for face in (top, bottom) if any(_inside(face, w) for w in windows)])
    bands = [wins[0] for wins in inner.windowed[-3:]]
    assert _inside(top, bands[0]) and _inside(bottom, bands[2])  # the layout this relies on
    assert followed == [[bottom], [top, bottom], [top], [top, bottom]]


def test_without_a_cheap_pass_the_periodic_pass_runs_whole() -> None:
    # A part border could cut a large face, and only the cheap pass would find it again.
    inner = ConvInner()
    focused = FocusDetector(inner, full_scan_every=5, coarse_height=0, full_scan_parts=3)
    for f in still(11):
        focused.detect(f)
    assert inner.full == [0, 5, 10]


def test_cheap_pass_needs_a_fully_convolutional_inner() -> None:
    with pytest.raises(ValueError, match="coarse_height"):
        FocusDetector(FakeInner(), coarse_height=360)


def test_focus_with_nothing_between_full_passes_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing would find a new face"):
        FocusDetector(ConvInner(), coarse_height=0, motion=False)


# -- end to end, real detector -----------------------------------------------------------------


STILL_CAMERA = {
    # BlazeFace as a fixed camera would run it: every 256-px tile on every frame. The threshold
    # is raised because the synthetic cloud texture yields ~25 false faces per 720p frame at
    # 0.25, enough windows that gating would hand every frame back to the full pass.
    "blazeface": {
        "detector.backend": "blazeface",
        "detector.tile_size": 256,
        "detector.tile_overlap": 0.3,
        "detector.max_tiles_per_frame": 1000,  # every tile (override ignores None)
        "detector.confidence": 0.5,
    },
    # CenterFace: the whole frame at native size.
    "centerface": {"detector.backend": "centerface", "detector.centerface.scales": [1.0]},
    # RetinaFace as the cctv config runs it (the frame enlarged to 832 rows).
    "retinaface": {"detector.backend": "retinaface"},
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(STILL_CAMERA))
def test_face_that_walks_in_and_stands_still_stays_masked(tmp_path: Path, backend: str) -> None:
    # A fixed 720p camera. One face walks in from the left and then stands perfectly still for
    # 3x the tracker's coast time; another sits still from the first frame on. Periodic full
    # scans are off: what keeps a still face masked must be the windows around known faces.
    from streamdeid.api import anonymize_file
    from streamdeid.build import make_detector
    from streamdeid.config import load_config
    from streamdeid.errors import MissingExtraError
    from streamdeid.testing.clip import write_clip
    from streamdeid.testing.paths import CameraPath, FacePath
    from streamdeid.testing.render import render_frames
    from streamdeid.testing.sprites import load_sample_faces

    from helpers import decode_frames, split_by_edge, unmasked

    config = load_config(None).override(
        {
            **STILL_CAMERA[backend],
            "detector.focus.enabled": True,
            "detector.focus.full_scan_every": 1000,
            "detector.focus.coarse_height": 0,
            "detector.focus.motion": True,
            "detector.focus.follow_confidence": 0.0,
            "tracker.max_coast_frames": 25,
            "obscure.method": "solid",
            "pipeline.detect_every": 1,  # windows are checked on every frame
        }
    )
    try:
        make_detector(config).close()
    except MissingExtraError as e:
        pytest.skip(str(e))
    size, walk = (1280, 720), 25
    n = walk + 3 * config.tracker.max_coast_frames + 5
    astronaut, cameraman = load_sample_faces()[:2]
    walker = FacePath.from_keyframes(
        astronaut, n, [(0, -60, 360, 90), (walk, 500, 360, 90), (n - 1, 500, 360, 90)]
    )
    sitter = FacePath.from_keyframes(cameraman, n, [(0, 1000, 300, 60)])
    clip = tmp_path / "still.mp4"
    gt = write_clip(
        clip,
        render_frames(size, n, [sitter, walker], camera=CameraPath.still(size, n)),
        audio=False,
    )
    windows: dict[int, list[tuple[int, int, int, int]]] = {}  # frame -> gated windows

    def factory() -> Detector:
        gated = make_detector(config)
        assert isinstance(gated, FocusDetector) and gated.name == f"focus({backend})"
        detect = gated.detect

        def recording(frame: Frame | np.ndarray) -> Detections:
            calls = gated.gated_calls
            found = detect(frame)
            if gated.gated_calls > calls and isinstance(frame, Frame):
                windows[frame.index] = gated.last_windows
            return found

        gated.detect = recording  # type: ignore[method-assign]
        return gated

    out = tmp_path / "out.mp4"
    anonymize_file(clip, out, config, detector_factory=factory)
    whole, _ = split_by_edge(gt, *size)
    assert unmasked(decode_frames(clip), decode_frames(out), whole) == []
    # The faces stayed masked for longer than the coast time with no whole-frame pass at all:
    # only windows ran, and every one of those frames searched both faces.
    last_full_pass = max(i for i in range(n) if i not in windows)
    assert n - 1 - last_full_pass > config.tracker.max_coast_frames
    for i in range(walk + 1, n):
        assert len(whole[i]["boxes"]) == 2
        for box in whole[i]["boxes"] if i in windows else []:
            assert any(_inside(box, w) for w in windows[i]), f"frame {i}: {box} not searched"
