"""Utility figures (faces kept, rank-1, landmark displacement): each must fail the right way.

Anchors on the generated two-face clip: the clip against itself keeps everything (displacement
exactly 0); a re-encode keeps nearly everything; a copy with the picture shifted keeps the faces
but moves the landmarks; solid boxes keep nothing and identify no one.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from streamdeid.api import anonymize_file
from streamdeid.cli import main
from streamdeid.config import Config
from streamdeid.evaluate.landmarks import displacement, interocular
from streamdeid.evaluate.leak_report import combine
from streamdeid.evaluate.reid import nearest, rank1, reidentified
from streamdeid.evaluate.utility import PUBLISHED_UTILITY, UtilityFigures, published

from eval_helpers import reencode

SHIFT_PX = 6


def face_points(eye_distance: float = 40.0) -> np.ndarray:
    """One (1, 68, 2) face whose outer eye corners are ``eye_distance`` apart."""
    points = np.random.default_rng(0).uniform(0, eye_distance, (1, 68, 2))
    points[0, 36], points[0, 45] = (0.0, 0.0), (eye_distance, 0.0)
    return points


# --- plain numbers ------------------------------------------------------------------------------


def test_displacement_is_zero_for_the_same_points_and_scales_with_the_eyes() -> None:
    face = face_points(40.0)
    assert interocular(face).tolist() == [40.0]
    assert displacement(face, face).tolist() == [0.0]
    assert displacement(face, face + np.array([4, 3])) == pytest.approx([5 / 40])
    # The same 5-px move on a face twice the size is half the displacement.
    assert displacement(face * 2, face * 2 + np.array([4, 3])) == pytest.approx([5 / 80])


def test_displacement_of_a_collapsed_face_is_nan_not_huge() -> None:
    collapsed = np.zeros((1, 68, 2))
    assert math.isnan(displacement(collapsed, collapsed + 1)[0])


def test_rank1_is_closed_set_and_reidentified_adds_the_distance() -> None:
    gallery = np.zeros((4, 128))
    gallery[:2, 0], gallery[2:, 1] = 1.0, 1.0  # person 0 along axis 0, person 1 along axis 1
    identities = np.array([0, 0, 1, 1])
    near0, far0 = np.zeros((1, 128)), np.zeros((1, 128))
    near0[0, 0], far0[0, 0] = 1.1, 3.0  # both nearest to person 0; far0 is 2.0 away
    probes = np.concatenate([near0, far0])
    who, dist = nearest(probes, gallery, identities)
    assert who.tolist() == [0, 0] and dist == pytest.approx([0.1, 2.0])
    assert rank1(probes, [0, 0], gallery, identities).tolist() == [True, True]
    assert rank1(probes, [1, 1], gallery, identities).tolist() == [False, False]
    assert reidentified(probes, [0, 0], gallery, identities).tolist() == [True, False]


def test_nothing_to_compare_identifies_no_one() -> None:
    empty = np.zeros((0, 128))
    assert rank1(np.ones((2, 128)), [0, 1], empty, np.zeros(0, np.int64)).tolist() == [
        False,
        False,
    ]
    assert nearest(empty, np.ones((3, 128)), np.zeros(3))[0].shape == (0,)


def test_figures_add_up_and_say_how_they_are_normalised() -> None:
    a = UtilityFigures(reid=True, landmarks=True, probes=4, rank1=1, identities=2)
    a.displacements = [0.1, 0.3]
    b = UtilityFigures(reid=True, landmarks=True, probes=0, rank1=0, identities=3)
    b.displacements = [math.nan]
    total = UtilityFigures(reid=True, landmarks=True)  # as combine() starts a total
    total.add(a)
    total.add(b)
    d = total.to_dict()
    assert d["rank1"] == {
        "faces_found_again": 4,
        "identified": 1,
        "share": 0.25,
        "identities": None,  # each file's faces were identified among its own people
        "chance": None,
    }
    assert d["landmark_displacement"]["faces"] == 2  # the NaN face is left out
    assert d["landmark_displacement"]["mean"] == pytest.approx(0.2)
    assert "outer-eye-corner" in d["landmark_displacement"]["normalised_by"]
    assert UtilityFigures().to_dict() == {}  # both off: the leak JSON is unchanged


def test_published_figures_are_the_deepprivacy_ones() -> None:
    assert {m: v for m, (_, v) in PUBLISHED_UTILITY.items()} == {
        "surrogate": 0.993,
        "pixelate": 0.967,
        "blur": 0.905,
        "solid": 0.414,
    }
    assert published("blur") == "90.5% (heavy blur)"
    assert published("no-such-method") == "–"


# --- on video (dlib) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def utility_reports(synthetic, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """video_leak with landmarks on: the clip against itself, a re-encode, a shifted copy and
    solid boxes (every 5th frame: 10 frames, two faces on most)."""
    pytest.importorskip("dlib", reason="dlib (pip install 'streamdeid[eval]') is not installed")
    from streamdeid.evaluate import video_leak

    clip, _ = synthetic
    folder = tmp_path_factory.mktemp("utility")
    paths = {"same": clip}
    paths["reencoded"] = folder / "reencoded.mp4"
    reencode(clip, paths["reencoded"])
    paths["shifted"] = folder / "shifted.mp4"
    reencode(clip, paths["shifted"], transform=lambda im: np.roll(im, SHIFT_PX, axis=1))
    paths["solid"] = folder / "solid.mp4"
    anonymize_file(clip, paths["solid"], Config().override({"obscure.method": "solid"}))
    return {
        name: video_leak(clip, path, detector="dlib", landmarks=True, every=5)
        for name, path in paths.items()
    }


def test_the_clip_against_itself_keeps_everything(utility_reports) -> None:
    r = utility_reports["same"]
    assert r.all.faces >= 10
    assert r.all.detectable == r.all.faces  # utility 1
    assert r.all.reidentified == r.all.faces
    assert r.utility.probes == r.all.faces and r.utility.rank1 == r.all.faces
    assert len(r.utility.displacements) == r.all.faces
    assert r.utility.displacement_mean == 0.0  # the same pictures: the very same points


def test_a_reencode_keeps_nearly_everything(utility_reports) -> None:
    r = utility_reports["reencoded"]
    assert r.all.detectable_share >= 0.9
    assert r.all.reidentified_share >= 0.8
    assert r.utility.rank1_share >= 0.9
    assert r.utility.displacement_mean < 0.05  # compression noise, a twentieth of the eyes


def test_a_shifted_face_is_kept_but_its_landmarks_move(utility_reports) -> None:
    r = utility_reports["shifted"]
    assert r.all.detectable_share >= 0.9  # 6 px on ~100-px faces: still the same place
    same = utility_reports["reencoded"].utility.displacement_mean
    assert r.utility.displacement_mean > 0.05
    assert r.utility.displacement_mean > 2 * same


def test_solid_keeps_nothing_and_identifies_no_one(utility_reports) -> None:
    r = utility_reports["solid"]
    assert r.all.faces >= 10
    assert r.all.detectable == 0 and r.all.reidentified == 0
    assert r.utility.probes == 0 and r.utility.rank1 == 0
    assert math.isnan(r.utility.rank1_share)  # nobody to identify, not "0% correct"
    assert r.utility.displacements == []


def test_totals_keep_the_utility_figures(utility_reports) -> None:
    same, solid = utility_reports["same"], utility_reports["solid"]
    total = combine([same, solid])
    assert total.utility.probes == same.utility.probes
    assert same.utility.identities >= 2 and total.utility.identities == 0  # per file only
    assert total.to_dict()["landmark_displacement"]["faces"] == len(same.utility.displacements)


def test_eval_video_utility_table_and_json(synthetic, tmp_path: Path, capsys) -> None:
    pytest.importorskip("dlib", reason="dlib (pip install 'streamdeid[eval]') is not installed")
    clip, _ = synthetic
    out = tmp_path / "utility.json"
    args = ["eval", "video", str(clip), str(clip), "--utility", "--every", "25"]
    code = main([*args, "--no-progress", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Utility:" in captured.out and "rank-1" in captured.out
    assert "90.5% (heavy blur)" in captured.out  # the default config blurs
    (report,) = json.loads(out.read_text())["reports"]
    assert report["landmark_displacement"]["mean"] == 0.0
    assert report["rank1"]["share"] == 1.0


def test_eval_help_teaches_utility(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "video", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--utility" in text and "rank-1" in text and "landmark" in text


# --- labelled identities (shared data) ----------------------------------------------------------


def test_labelled_people_are_identified_by_folder_name(shared_data: Path) -> None:
    """dlib's johns: with the folder names as people, unmasked crops are all rank-1 right."""
    pytest.importorskip("dlib", reason="dlib (pip install 'streamdeid[eval]') is not installed")
    import cv2

    from streamdeid.evaluate import independent_detector
    from streamdeid.evaluate.leak_report import VideoLeakReport
    from streamdeid.evaluate.measure import FaceLedger
    from streamdeid.evaluate.reid import FaceEmbedder

    people = sorted(p for p in (shared_data / "davisking__dlib/examples/johns").iterdir())
    detector = independent_detector("dlib")
    ledger = FaceLedger(embedder=FaceEmbedder())
    for k, person in enumerate(people):
        for f in sorted(person.glob("*.jpg"))[:3]:
            image = cv2.copyMakeBorder(cv2.imread(str(f)), *(75,) * 4, cv2.BORDER_CONSTANT)
            boxes = detector.detect(image).xyxy.astype(np.float64)
            ledger.record(image, boxes, image, boxes, np.ones(4), label=k)
    report = VideoLeakReport("johns", "johns", "dlib", 1, True)
    ledger.tally(report)
    assert report.identities == 5  # the labels, not clusters
    assert report.all.faces >= 12
    assert report.utility.rank1 == report.utility.probes == report.all.faces


def test_utility_without_dlib_fails_first_and_names_the_extra(
    monkeypatch, synthetic, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    clip, _ = synthetic
    args = ["eval", "video", str(clip), str(clip), "--no-reid", "--utility", "--no-progress"]
    assert main([*args, "--detector", "centerface"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "pip install 'streamdeid[eval]'" in err and "leave out --utility" in err
