"""The synthetic clips must contain exactly what their ground truth claims.

Every detector, tracker and obscurer test downstream trusts these boxes, so here we check them
against the encoded file itself (decoded frames, timestamps, audio) and prove the faces are real,
detectable faces rather than patches that merely differ from the background.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamdeid.testing.clip import AUDIO_RATE, write_clip
from streamdeid.testing.paths import CameraPath, FacePath
from streamdeid.testing.render import render_frames
from streamdeid.testing.sprites import FaceSprite, load_sample_faces
from streamdeid.testing.synthetic import default_face_paths, synthetic_clip

N_FRAMES = 50
SIZE = (640, 360)
FPS = 25
SEED = 0


def iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    path = tmp_path_factory.mktemp("synthetic") / "clip.mp4"
    return path, synthetic_clip(path, n_frames=N_FRAMES, size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def decoded(clip: tuple[Path, list[dict]]) -> list[av.VideoFrame]:
    with av.open(str(clip[0])) as container:
        return list(container.decode(video=0))


@pytest.fixture(scope="module")
def backgrounds() -> list[np.ndarray]:
    """The default scenario's frames rendered without any face."""
    return [frame for frame, _ in render_frames(SIZE, N_FRAMES, [], seed=SEED)]


@pytest.mark.slow
def test_clip_decodes_to_every_frame_at_its_time(
    clip: tuple[Path, list[dict]], decoded: list[av.VideoFrame]
) -> None:
    _, gt = clip
    assert len(decoded) == N_FRAMES
    assert [frame["pts"] for frame in gt] == list(range(N_FRAMES))
    for index, frame in enumerate(decoded):
        assert (frame.width, frame.height) == SIZE
        # The muxer may rescale pts (mp4 uses 1/12800), but the time must be index / fps.
        assert float(frame.pts * frame.time_base) == pytest.approx(index / FPS, abs=1e-6)


@pytest.mark.slow
def test_clip_has_mono_aac_audio_as_long_as_the_video(clip: tuple[Path, list[dict]]) -> None:
    with av.open(str(clip[0])) as container:
        assert len(container.streams.audio) == 1
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.layout.nb_channels == 1
        samples = sum(frame.samples for frame in container.decode(audio=0))
    # AAC works in 1024-sample blocks: allow one block of padding either way.
    assert abs(samples - N_FRAMES * AUDIO_RATE // FPS) <= 1024


@pytest.mark.slow
def test_gt_boxes_are_inside_the_frame(clip: tuple[Path, list[dict]]) -> None:
    _, gt = clip
    width, height = SIZE
    assert len(gt) == N_FRAMES
    assert sum(len(frame["boxes"]) for frame in gt) > 0
    for frame in gt:
        for x1, y1, x2, y2 in frame["boxes"]:
            assert 0 <= x1 < x2 <= width
            assert 0 <= y1 < y2 <= height
            assert x2 - x1 >= 2 and y2 - y1 >= 2


@pytest.mark.slow
def test_faces_are_in_the_decoded_pixels_inside_their_boxes(
    clip: tuple[Path, list[dict]], decoded: list[av.VideoFrame], backgrounds: list[np.ndarray]
) -> None:
    _, gt = clip
    checked = 0
    for frame, truth, background in zip(decoded, gt, backgrounds, strict=True):
        image = frame.to_ndarray(format="bgr24").astype(np.int16)
        diff = np.abs(image - background.astype(np.int16)).mean(axis=2)
        # Mostly background, and the decoded background matches the face-less rendering, so a
        # difference inside a box is the face and not misaligned or re-coloured video.
        assert np.median(diff) < 4
        for x1, y1, x2, y2 in truth["boxes"]:
            assert diff[y1:y2, x1:x2].mean() > 20, (truth["pts"], (x1, y1, x2, y2))
            checked += 1
    assert checked > N_FRAMES


def test_leaving_face_disappears_and_comes_back() -> None:
    paths = default_face_paths(SIZE, N_FRAMES)
    boxes = [b for _, b in render_frames(SIZE, N_FRAMES, paths, seed=SEED)]
    counts = [len(b) for b in boxes]
    assert counts[0] == 2 and counts[-1] == 2
    gone = [i for i, c in enumerate(counts) if c == 1]
    assert gone, counts
    assert 0 < gone[0] and gone[-1] < N_FRAMES - 1
    # The face that stays is the astronaut (drawn last, so listed last when both are visible).
    for i in gone:
        assert iou(boxes[i][0], boxes[i - 1][-1]) > 0.5


def test_default_faces_are_between_40_and_150_px_tall() -> None:
    paths = default_face_paths(SIZE, N_FRAMES)
    heights = [y2 - y1 for _, b in render_frames(SIZE, N_FRAMES, paths) for _, y1, _, y2 in b]
    fully_visible = [h for h in heights if h > 10]
    assert 40 <= min(fully_visible) and max(heights) <= 150


def test_rendering_is_deterministic_and_seeded() -> None:
    paths = default_face_paths(SIZE, 3)
    first = [f for f, _ in render_frames(SIZE, 3, paths, seed=7)]
    again = [f for f, _ in render_frames(SIZE, 3, paths, seed=7)]
    other = [f for f, _ in render_frames(SIZE, 3, paths, seed=8)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_background_is_textured_and_moves() -> None:
    frames = [f for f, _ in render_frames(SIZE, 10, [], seed=SEED)]
    assert frames[0].std() > 15
    assert np.abs(frames[0].astype(np.int16) - frames[-1]).mean() > 5


def test_face_partly_outside_is_clipped_to_its_visible_part() -> None:
    sprite = FaceSprite(np.full((40, 30, 3), 200, np.uint8), (5, 10, 25, 30))
    # Face 20x20 centred on the left edge: the right half shows.
    path = FacePath(sprite, [[0.0, 50.0]], [1.0])
    ((_, boxes),) = render_frames((100, 100), 1, [path], camera=CameraPath.still((100, 100), 1))
    assert boxes == [(0, 40, 10, 60)]
    hidden = FacePath(sprite, [[-9.0, 50.0]], [1.0])  # only one pixel column left
    ((_, boxes),) = render_frames((100, 100), 1, [hidden], camera=CameraPath.still((100, 100), 1))
    assert boxes == []


def test_a_face_covered_by_a_later_sprite_is_hidden_from_gt() -> None:
    small = FaceSprite(np.full((40, 30, 3), 200, np.uint8), (5, 10, 25, 30))
    big = FaceSprite(np.full((100, 100, 3), 50, np.uint8), (40, 40, 60, 60))
    camera = CameraPath.still((200, 200), 1)
    under = FacePath(small, [[100.0, 80.0]], [1.0])  # inside the opaque part of `over`
    over = FacePath(big, [[100.0, 100.0]], [1.0])
    ((_, boxes),) = render_frames((200, 200), 1, [under, over], camera=camera)
    assert boxes == [(90, 90, 110, 110)]
    # Moved up, its top rows peek out above the feathered edge of `over`: only those are listed.
    peeking = FacePath(small, [[100.0, 60.0]], [1.0])
    ((_, boxes),) = render_frames((200, 200), 1, [peeking, over], camera=camera)
    assert boxes == [(90, 50, 110, 56), (90, 90, 110, 110)]


def test_face_path_from_keyframes_interpolates_and_holds() -> None:
    sprite = FaceSprite(np.zeros((40, 30, 3), np.uint8), (5, 10, 25, 30))
    path = FacePath.from_keyframes(sprite, 5, [(1, 0.0, 10.0, 20.0), (3, 100.0, 30.0, 40.0)])
    np.testing.assert_allclose(path.centers[:, 0], [0, 0, 50, 100, 100])
    np.testing.assert_allclose(path.scales * sprite.face_height, [20, 20, 30, 40, 40])
    assert path.face_box(2) == pytest.approx((35.0, 5.0, 65.0, 35.0))
    with pytest.raises(ValueError, match="strictly increasing"):
        FacePath.from_keyframes(sprite, 5, [(3, 0, 0, 20), (1, 0, 0, 20)])
    with pytest.raises(ValueError, match="> 0"):
        FacePath(sprite, [[0.0, 0.0]], [0.0])


def test_face_sprite_rejects_a_box_outside_the_image() -> None:
    with pytest.raises(ValueError, match="inside"):
        FaceSprite(np.zeros((40, 30, 3), np.uint8), (5, 10, 35, 30))


def test_load_sample_faces_reads_both_crops() -> None:
    sprites = load_sample_faces()
    assert [s.name for s in sprites] == ["astronaut.png", "cameraman.png"]
    for sprite in sprites:
        assert sprite.image.dtype == np.uint8 and sprite.image.shape[2] == 3
        assert 40 <= sprite.face_height <= 120


def test_load_sample_faces_explains_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"make_sample\.py"):
        load_sample_faces(tmp_path)


@pytest.mark.slow
def test_write_clip_mkv_without_audio(tmp_path: Path) -> None:
    frames = [(np.full((48, 64, 3), i * 20, np.uint8), [(1, 2, 10, 12)]) for i in range(5)]
    path = tmp_path / "tiny.mkv"
    gt = write_clip(path, iter(frames), fps=10, audio=False)
    assert gt == [{"pts": i, "boxes": [[1, 2, 10, 12]]} for i in range(5)]
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0
        times = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    assert times == pytest.approx([i / 10 for i in range(5)])


def test_write_clip_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        write_clip(tmp_path / "empty.mp4", [])
    with pytest.raises(ValueError, match="even"):
        write_clip(tmp_path / "odd.mp4", [(np.zeros((47, 64, 3), np.uint8), [])])
    assert not (tmp_path / "empty.mp4").exists() and not (tmp_path / "odd.mp4").exists()


@pytest.mark.slow
def test_mediapipe_full_range_finds_the_astronaut_crop() -> None:
    mp = pytest.importorskip("mediapipe")
    sprite = next(s for s in load_sample_faces() if s.name == "astronaut.png")
    h, w = sprite.image.shape[:2]
    rgb = cv2.cvtColor(sprite.image, cv2.COLOR_BGR2RGB)
    with mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=0.5
    ) as detector:
        result = detector.process(rgb)
    found = []
    for detection in result.detections or []:
        box = detection.location_data.relative_bounding_box
        x1, y1 = box.xmin * w, box.ymin * h
        found.append((x1, y1, x1 + box.width * w, y1 + box.height * h))
    assert found, "no face detected in the bundled astronaut crop"
    assert max(iou(sprite.face_xyxy, box) for box in found) >= 0.3
