"""End to end through real codecs: every ground-truth face is obscured on every frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdeid import anonymize_file
from streamdeid.config import load_config

from helpers import ScriptedDetector, decode_frames, solid, split_by_edge, unmasked


def test_scripted_faces_masked_between_detector_runs(synthetic, tmp_path: Path) -> None:
    # The detector sees the truth only on every 3rd frame (and the last); tracks and look-ahead
    # (the runs before and after a skipped frame) must cover the rest while the faces move,
    # scale, leave and come back, including a face that enters between two runs.
    clip, gt = synthetic
    every = 3
    detector = ScriptedDetector([f["boxes"] for f in gt])
    out = tmp_path / "out.mp4"
    anonymize_file(
        clip, out, solid(**{"pipeline.detect_every": every}), detector_factory=lambda: detector
    )
    assert len(detector.calls) < len(gt) * 0.6  # the detector really skipped frames
    assert (len(gt) - 1) % every and detector.calls[-1] == len(gt) - 1  # the last frame is seen
    assert unmasked(decode_frames(clip), decode_frames(out), gt) == []


def test_without_lookahead_a_face_entering_between_runs_shows(synthetic, tmp_path: Path) -> None:
    # Control for the test above: with the tracker alone, a face that enters between two runs
    # shows until the next run (and nothing else leaks), so the measurement can fail.
    clip, gt = synthetic
    every = 3
    detector = ScriptedDetector([f["boxes"] for f in gt])
    out = tmp_path / "out.mp4"
    config = solid(**{"pipeline.detect_every": every, "pipeline.lookahead": False})
    anonymize_file(clip, out, config, detector_factory=lambda: detector)
    misses = unmasked(decode_frames(clip), decode_frames(out), gt)
    assert misses
    for i, _, _ in misses:
        last_run = max(c for c in detector.calls if c <= i)
        assert len(gt[last_run]["boxes"]) < len(gt[i]["boxes"]), f"frame {i} leaked"
        assert i - last_run < every


def test_scripted_detector_misses_are_covered_by_coasting(synthetic, tmp_path: Path) -> None:
    clip, gt = synthetic
    script = [[] if i % 4 == 2 else f["boxes"] for i, f in enumerate(gt)]
    out = tmp_path / "out.mp4"
    config = solid(**{"pipeline.detect_every": 1})  # the detector looks at every frame
    anonymize_file(clip, out, config, detector_factory=lambda: ScriptedDetector(script))
    assert unmasked(decode_frames(clip), decode_frames(out), gt) == []


def test_missed_face_is_visible_without_tracking(synthetic, tmp_path: Path) -> None:
    # Control for the two tests above: with coasting off, a skipped detection does leak,
    # so the measurement can fail.
    clip, gt = synthetic
    script = [[] if i % 4 == 2 else f["boxes"] for i, f in enumerate(gt)]
    out = tmp_path / "out.mp4"
    config = solid(**{"tracker.max_coast_frames": 0, "pipeline.detect_every": 1})
    anonymize_file(clip, out, config, detector_factory=lambda: ScriptedDetector(script))
    misses = unmasked(decode_frames(clip), decode_frames(out), gt)
    assert misses and all(i % 4 == 2 for i, _, _ in misses)


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["default", "cctv"])
def test_real_detector_masks_every_face_on_every_frame(
    synthetic, tmp_path: Path, config_name: str
) -> None:
    clip, gt = synthetic
    out = tmp_path / "out.mp4"
    stats = anonymize_file(clip, out, solid(load_config(config_name)))
    assert stats.frames == len(gt)
    whole, _ = split_by_edge(gt, 640, 360)
    assert sum(len(f["boxes"]) for f in whole) > 60
    assert unmasked(decode_frames(clip), decode_frames(out), whole) == []


@pytest.mark.slow
def test_720p_with_tile_budget_masks_every_whole_face(tmp_path: Path) -> None:
    # At 720p the default config visits the tile grid over several frames; tracks must cover
    # faces between visits.
    from streamdeid.testing.synthetic import synthetic_clip

    clip = tmp_path / "720p.mp4"
    gt = synthetic_clip(clip, n_frames=60, size=(1280, 720), seed=1, audio=False)
    out = tmp_path / "out.mp4"
    config = solid(load_config("default"))
    assert config.detector.max_tiles_per_frame is not None
    anonymize_file(clip, out, config)
    whole, _ = split_by_edge(gt, 1280, 720)
    assert unmasked(decode_frames(clip), decode_frames(out), whole) == []


@pytest.mark.slow
def test_bundled_sample_fully_masked(sample_clip, tmp_path: Path) -> None:
    clip, gt = sample_clip
    out = tmp_path / "sample.mp4"
    anonymize_file(clip, out, solid())
    whole, _ = split_by_edge(gt, 640, 360)
    assert unmasked(decode_frames(clip), decode_frames(out), whole) == []


@pytest.mark.slow
def partly_visible(gt: list[dict], width: int, height: int, min_visible: float) -> list[dict]:
    """Edge-cut faces of which a strip at least ``min_visible`` × the uncut side shows.

    A box cut by the left/right edge keeps its full height (and vice versa), so the uncut side
    says how big the face is and the cut side how much of it is in the frame.
    """
    _, edge = split_by_edge(gt, width, height)

    def shows_enough(b: list[int]) -> bool:
        w, h = b[2] - b[0], b[3] - b[1]
        cut_x = b[0] <= 0 or b[2] >= width
        cut_y = b[1] <= 0 or b[3] >= height
        if cut_x and cut_y:
            return min(w, h) >= min_visible * max(w, h)
        return (w >= min_visible * h) if cut_x else (h >= min_visible * w)

    return [{**f, "boxes": [b for b in f["boxes"] if shows_enough(b)]} for f in edge]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["sample", "synthetic"])
def test_faces_entering_at_the_edge_are_masked(
    which: str, sample_clip, synthetic, tmp_path: Path
) -> None:
    # Half a face at the frame edge: CenterFace's mirror padding completes it, so it is masked
    # from the first frames it shows. Slivers under a third of a face wide (an ear, a cheek)
    # can still go unmasked for a frame or two: the limit is measured here, not hidden.
    clip, gt = sample_clip if which == "sample" else synthetic
    out = tmp_path / "out.mp4"
    anonymize_file(clip, out, solid())
    edge = partly_visible(gt, 640, 360, min_visible=1 / 3)
    assert sum(len(f["boxes"]) for f in edge) >= 3
    assert unmasked(decode_frames(clip), decode_frames(out), edge) == []


def test_detector_that_raises_masks_whole_frames(synthetic, tmp_path: Path) -> None:
    clip, gt = synthetic
    out = tmp_path / "out.mp4"
    detector = ScriptedDetector([f["boxes"] for f in gt], raise_on=[0, 10])
    config = solid(**{"pipeline.detect_every": 1})
    stats = anonymize_file(clip, out, config, detector_factory=lambda: detector)
    frames = decode_frames(out)
    assert stats.detection_failures == 2
    assert frames[0].max() < 20 and frames[10].max() < 20  # whole frame solid black
    assert frames[5].max() > 100
