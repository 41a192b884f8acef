"""Detector backends: window scheduling, and real faces found by the real models."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamdeid.detect.blazeface import BlazeFaceDetector
from streamdeid.detect.mediapipe import MediaPipeDetector
from streamdeid.detect.tiled import TiledDetector
from streamdeid.detect.tiling import box_iou
from streamdeid.types import Frame

REPO = Path(__file__).resolve().parents[2]


class CountingDetector(TiledDetector):
    name = "counting"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[int, int]] = []

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(window.shape[:2])
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


def frame(index: int, w: int = 1280, h: int = 720) -> Frame:
    return Frame(index, np.zeros((h, w, 3), np.uint8), index, None, 0.0)


def test_tile_budget_visits_every_tile_once_per_period_and_whole_frame_always() -> None:
    d = CountingDetector(tile_size=384, tile_overlap=0.25, max_tiles_per_frame=4)
    all_tiles = CountingDetector(tile_size=384, tile_overlap=0.25).windows(1280, 720)[1:]
    period = d.tile_period(1280, 720)
    assert period == 4 and len(all_tiles) == 15
    visited = []
    for i in range(period):
        wins = d.windows(1280, 720, i)
        assert wins[0] == (0, 0, 1280, 720) and len(wins) <= 5
        visited += wins[1:]
    assert sorted(visited) == sorted(all_tiles)
    assert d.windows(1280, 720, period) == d.windows(1280, 720, 0)


def test_frame_index_drives_the_schedule_and_images_get_every_window() -> None:
    d = CountingDetector(tile_size=384, max_tiles_per_frame=4)
    d.detect(frame(0))
    assert len(d.seen) == 16  # first frame: no tracks yet, so every tile at once
    d.seen.clear()
    d.detect(frame(1))
    assert len(d.seen) == 5
    d.seen.clear()
    d.detect(np.zeros((720, 1280, 3), np.uint8))
    assert len(d.seen) == 16  # a still image has no next frame: all windows at once


class OneFaceDetector(CountingDetector):
    """Finds a face at a fixed place whenever its window covers it."""

    face = (700.0, 500.0, 740.0, 540.0)

    def _run_window(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(window.shape[:2])
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)

    def detect_windows(self, image, windows):  # type: ignore[no-untyped-def]
        self.last_windows = windows
        from streamdeid.types import Detections

        x1, y1, x2, y2 = self.face
        inside = [
            w
            for w in windows
            if w[0] <= x1 and w[1] <= y1 and w[2] >= x2 and w[3] >= y2 and w != (0, 0, 1280, 720)
        ]
        if not inside:
            return Detections.empty()
        return Detections(np.array([self.face], np.float32), np.ones(1, np.float32))


def test_tiles_holding_a_face_are_searched_every_frame() -> None:
    d = OneFaceDetector(tile_size=384, max_tiles_per_frame=4)
    for i in range(40):
        assert len(d.detect(frame(i))) == 1, f"face lost on frame {i}"
        assert i == 0 or len(d.last_windows) <= 1 + 4 + 2  # frame 0 is a full scan


def test_refresh_of_face_tiles_stays_within_half_the_budget() -> None:
    d = CountingDetector(tile_size=256, max_tiles_per_frame=4)
    d.detect(frame(0))
    # a crowd: a face in every tile of the previous frame
    tiles = d.windows(1280, 720, 0)[1:] + d.windows(1280, 720, 1)[1:]
    d._last_centres = np.array([((a + c) / 2, (b + e) / 2) for a, b, c, e in tiles], np.float32)
    d.seen.clear()
    d.detect(frame(1))
    assert len(d.seen) <= 1 + 4 + 2


def test_a_shot_change_gets_a_full_scan() -> None:
    d = CountingDetector(tile_size=384, max_tiles_per_frame=4)
    dark, bright = frame(0), Frame(1, np.full((720, 1280, 3), 200, np.uint8), 1, None, 0.0)
    d.detect(dark)
    d.detect(frame(1))
    assert d.full_scans == 1
    d.detect(bright)  # cut to a different picture
    assert d.full_scans == 2


def test_small_frames_use_whole_frame_only() -> None:
    d = CountingDetector(tile_size=384)
    assert d.windows(320, 240) == [(0, 0, 320, 240)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile_size": None, "whole_frame": False}, "nothing would be run"),
        ({"confidence": 0.0}, "confidence"),
        ({"max_tiles_per_frame": 0}, "max_tiles_per_frame"),
    ],
)
def test_bad_tiling_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CountingDetector(**kwargs)


def sample_face() -> tuple[np.ndarray, np.ndarray]:
    image = cv2.imread(str(REPO / "streamdeid" / "testing" / "faces" / "astronaut.png"))
    box = json.loads((REPO / "streamdeid" / "testing" / "faces" / "faces.json").read_text())[
        "astronaut.png"
    ]
    return image, np.asarray([box], np.float32)


@pytest.mark.parametrize("backend", [BlazeFaceDetector, MediaPipeDetector])
@pytest.mark.parametrize("model", ["full", "short"])
def test_backends_find_the_sample_face(backend: type[TiledDetector], model: str) -> None:
    image, truth = sample_face()
    found = backend(model=model, tile_size=None).detect(image)
    assert len(found) >= 1
    assert box_iou(truth, found.xyxy).max() >= 0.5


def test_litert_backend_agrees_with_mediapipe_graph_on_real_photos(shared_data: Path) -> None:
    names = [
        "ageitgey__face_recognition/examples/two_people.jpg",
        "pypi__insightface-2.1/insightface/data/images/t1.jpg",
        "pypi__ultralytics-8.4.190/ultralytics/assets/bus.jpg",
    ]
    lite, graph = BlazeFaceDetector(tile_size=None), MediaPipeDetector(tile_size=None)
    for name in names:
        image = cv2.imread(str(shared_data / name))
        a, b = graph.detect(image), lite.detect(image)
        assert len(a) >= 2, name
        # every face the reference graph finds, the direct backend finds at the same place
        assert box_iou(a.xyxy, b.xyxy).max(axis=1).min() >= 0.5, name


def test_tiles_find_faces_the_whole_frame_misses(shared_data: Path) -> None:
    image = cv2.imread(str(shared_data / "ORB-HD__deface/examples/city.jpg"))
    whole = BlazeFaceDetector(tile_size=None).detect(image)
    tiled = BlazeFaceDetector(tile_size=256, max_tiles_per_frame=None).detect(image)
    assert len(tiled) > len(whole) + 3


def test_stderr_silencing_is_safe_across_threads(monkeypatch, tmp_path) -> None:
    # Two detectors loading at once (two cameras) must leave stderr as it was, not on /dev/null.
    import os
    import sys
    import threading

    from streamdeid.detect.native_logs import stderr_silenced

    stream = open(tmp_path / "stderr.txt", "w")  # a real fd, as outside pytest's capture
    monkeypatch.setattr(sys, "stderr", stream)
    before = os.fstat(stream.fileno())
    barrier = threading.Barrier(4)

    def load() -> None:
        with stderr_silenced():
            barrier.wait(timeout=5)  # all four are inside at once

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = os.fstat(stream.fileno())
    stream.close()
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
