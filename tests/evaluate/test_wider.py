"""WIDER recall: ground-truth parsing (text and JSON), scoring with stub detectors, real subset."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamdeid.errors import InputNotFoundError
from streamdeid.evaluate import GroundTruthError, load_wider_gt, wider_recall

from eval_helpers import QueueDetector, face_images, xyxy

SUBSET = "derived/wider_val_subset"
SUBSET_IMAGES = (
    "vishalw-iitk__Widerface_Yolov5/Model_compression/Quantization/Pytorch/PTQ/"
    "representative_dataset"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list]]:
    folder = tmp_path_factory.mktemp("wider_images")
    return folder, face_images(folder, count=3)


@pytest.fixture
def wider_set(generated, tmp_path: Path) -> tuple[Path, Path, list[list]]:
    """Three generated images (flat folder) and an official-format GT file naming them with
    WIDER's ``event/`` prefix; one extra invalid face on image 1, and an image with no face."""
    source, boxes = generated
    images = tmp_path / "images"
    shutil.copytree(source, images)
    (images / "empty.jpg").write_bytes((images / "img_0.jpg").read_bytes())
    lines = []
    for k, faces in enumerate(boxes):
        extra = [[250.5, 200.25, 20.0, 20.0, 0, 0, 0, 1, 0, 0]] if k == 1 else []
        lines += [f"0--Parade/img_{k}.jpg", str(len(faces) + len(extra))]
        lines += [f"{x} {y} {w} {h} 0 0 0 0 0 0 " for x, y, w, h in faces]
        lines += [" ".join(str(v) for v in e) for e in extra]
    lines += ["0--Parade/empty.jpg", "0", "0 0 0 0 0 0 0 0 0 0 "]
    gt = tmp_path / "wider_face_val_bbx_gt.txt"
    gt.write_text("\n".join(lines) + "\n")
    return images, gt, boxes


def gt_script(boxes: list[list], extra: dict[int, list] | None = None) -> list[np.ndarray]:
    script = [xyxy(b) for b in boxes] + [np.zeros((0, 4))]
    for k, more in (extra or {}).items():
        script[k] = np.concatenate([script[k], np.asarray(more, np.float32)])
    return script


def test_text_format_is_parsed_with_invalid_faces_and_empty_images(wider_set) -> None:
    images, gt, boxes = wider_set
    parsed = load_wider_gt(gt, images)
    assert [p.name for p in parsed] == [
        "0--Parade/img_0.jpg",
        "0--Parade/img_1.jpg",
        "0--Parade/img_2.jpg",
        "0--Parade/empty.jpg",
    ]
    assert parsed[0].path == images / "img_0.jpg"  # found by file name in the flat folder
    np.testing.assert_allclose(parsed[0].xyxy, xyxy(boxes[0]))
    assert parsed[1].invalid.tolist() == [False, False, True]
    np.testing.assert_allclose(parsed[1].xyxy[2], [250.5, 200.25, 270.5, 220.25])
    assert len(parsed[3].xyxy) == 0
    assert list(parsed[0].levels) == ["all"]  # no difficulty labels in the text format


def test_ground_truth_detector_has_recall_one(wider_set) -> None:
    images, gt, boxes = wider_set
    report = wider_recall(images, gt, detector=QueueDetector(gt_script(boxes)))
    assert list(report.levels) == ["all"]
    assert report.levels["all"].recall == 1.0
    assert report.levels["all"].total == 6  # the invalid face is not counted
    assert report.false_positives == 0
    assert report.images == 4
    assert report.ms_per_image >= 0


def test_empty_detector_has_recall_zero(wider_set) -> None:
    images, gt, _ = wider_set
    report = wider_recall(images, gt, detector=QueueDetector([]))
    assert report.levels["all"].recall == 0.0
    assert report.levels["all"].found == 0
    assert report.false_positives == 0
    assert report.detections == 0


def test_false_positives_are_detections_on_no_annotated_face(wider_set) -> None:
    images, gt, boxes = wider_set
    far = [[300, 230, 318, 238], [0, 200, 10, 210]]
    on_invalid = [[251, 201, 270, 220]]  # matches the invalid face: not a false positive
    near_miss = [[0, 0, 4, 4]]  # IoU < 0.3 with every face
    script = gt_script(boxes, {0: far, 1: on_invalid, 3: near_miss})
    report = wider_recall(images, gt, detector=QueueDetector(script))
    assert report.levels["all"].recall == 1.0
    assert report.false_positives == 3
    assert report.false_positives_per_image == pytest.approx(3 / 4)
    assert report.detections == 6 + 4
    d = report.to_dict()
    assert d["false_positives"] == 3 and d["recall"] == {"all": 1.0}


def test_a_box_overlapping_too_little_does_not_count(wider_set) -> None:
    images, gt, boxes = wider_set
    shifted = [xyxy(b) + np.array([0.6, 0, 0.6, 0]) * xyxy(b)[:, 2:3] for b in boxes]
    # Shifted right by 60 % of x2: far outside IoU 0.3 for every face.
    report = wider_recall(images, gt, detector=QueueDetector(shifted))
    assert report.levels["all"].recall == 0.0
    assert report.false_positives == 6


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a.jpg\nabc\n", "line 2: expected the face count of 'a.jpg'"),
        ("a.jpg\n-1\n", "line 2: expected a face count >= 0"),
        ("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n1 2 3\n", r"line 4: expected a face line .*2 of 2"),
        ("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", "line 4: .*got end of file"),
        ("a.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n", "line 3: expected a box with w, h >= 0"),
        ("a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n5\n", "line 4: expected an image path"),
        ("a.jpg\n", "line 2: expected the face count of 'a.jpg', got end of file"),
        ('{"images": [{"file": "a.jpg", "faces": [{"xywh": [1, 2]}]}]}', r"images\[0\]\.faces"),
        ('{"images": [', "line 1: not valid JSON"),
        ("", "expected at least one image"),
    ],
)
def test_malformed_ground_truth_names_the_line(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    gt = tmp_path / "gt.txt"
    gt.write_text(text)
    with pytest.raises(GroundTruthError, match=match) as info:
        load_wider_gt(gt, tmp_path)
    assert "\n" not in str(info.value)
    assert str(gt) in str(info.value)


def test_missing_paths_are_clear_errors(wider_set, tmp_path: Path) -> None:
    images, gt, _ = wider_set
    with pytest.raises(InputNotFoundError, match="ground-truth file not found"):
        load_wider_gt(tmp_path / "nope.txt", images)
    with pytest.raises(InputNotFoundError, match="images folder not found"):
        load_wider_gt(gt, tmp_path / "nope")
    (images / "img_2.jpg").unlink()
    with pytest.raises(GroundTruthError, match=r"line 10: image '0--Parade/img_2\.jpg' not found"):
        load_wider_gt(gt, images)


def test_json_format_reports_each_difficulty(tmp_path: Path) -> None:
    images = tmp_path / "images"
    boxes = face_images(images, count=2)
    entries = []
    for k, faces in enumerate(boxes):
        # Face 0 is easy (so medium and hard too), face 1 is hard only.
        flags = [(True, True, True), (False, False, True)]
        entries.append(
            {
                "file": f"some/source/img_{k}.jpg",
                "faces": [
                    {"xywh_stored": b, "invalid": 0, "easy": e, "medium": m, "hard": h}
                    for b, (e, m, h) in zip(faces, flags, strict=True)
                ],
            }
        )
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": entries}))
    only_first = [xyxy(b[:1]) for b in boxes]
    report = wider_recall(images, gt, detector=QueueDetector(only_first))
    recall = {k: v.recall for k, v in report.levels.items()}
    assert recall == {"easy": 1.0, "medium": 1.0, "hard": 0.5, "all": 0.5}


def test_json_boxes_follow_the_image_size(tmp_path: Path) -> None:
    """An image at its original WIDER size is scored against ``xywh_orig``."""
    images = tmp_path / "images"
    boxes = face_images(images, count=1, size=(320, 240))
    faces = [{"xywh_orig": b, "xywh_stored": [v / 2 for v in b], "invalid": 0} for b in boxes[0]]
    entry = {"file": "img_0.jpg", "orig_size": [320, 240], "stored_size": [160, 120]}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": [entry | {"faces": faces}]}))
    report = wider_recall(images, gt, detector=QueueDetector([xyxy(boxes[0])]))
    assert report.levels["all"].recall == 1.0


@pytest.mark.slow
def test_research_subset_with_default_config(shared_data: Path) -> None:
    """Recall of the default config on the WIDER subset, in a band around what it measured
    (RetinaFace default, 2026-12, first 40 images: easy 0.95, medium 0.88, hard 0.70, 34
    unmatched boxes per image, mostly unannotated crowd faces); the text and JSON ground truth
    of the same images must agree."""
    from streamdeid.config import load_config

    images = shared_data / SUBSET_IMAGES
    config = load_config("default")
    j = wider_recall(images, shared_data / SUBSET / "wider_val_subset_gt.json", config, limit=40)
    t = wider_recall(
        images, shared_data / SUBSET / "wider_face_val_bbx_gt.subset_416x416.txt", config, limit=40
    )
    assert list(j.levels) == ["easy", "medium", "hard", "all"]
    assert j.images == 40
    assert 0.9 <= j.levels["easy"].recall <= 1.0
    assert 0.83 <= j.levels["medium"].recall <= 1.0
    assert 0.65 <= j.levels["hard"].recall <= 1.0
    assert j.levels["easy"].recall >= j.levels["medium"].recall >= j.levels["hard"].recall
    assert j.false_positives_per_image < 45
    assert t.levels["all"].total == j.levels["all"].total
    assert t.levels["all"].found == j.levels["all"].found
    assert not math.isnan(j.ms_per_image)


def test_ground_truth_for_another_image_size_is_warned(wider_set, caplog) -> None:
    images, _, _ = wider_set
    gt = images.parent / "big.txt"
    gt.write_text("img_0.jpg\n1\n900 700 40 40 0 0 0 0 0 0\n")  # far outside the 320x240 image
    with caplog.at_level("WARNING", logger="streamdeid.evaluate.wider"):
        wider_recall(images, gt, detector=QueueDetector([]))
    assert "1 of 1 images have ground-truth boxes reaching beyond the picture" in caplog.text
