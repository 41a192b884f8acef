"""The surrogate method through the real parts: CLI, detector, tracker, codecs, reversible mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamdeid import anonymize_file
from streamdeid.audit import AuditContext
from streamdeid.cli import main
from streamdeid.config import Config
from streamdeid.crypto import generate_keypair
from streamdeid.crypto.signing import generate_signing_key, load_signing_key
from streamdeid.reveal import open_sidecar_for_review, reveal_frames, revealed_regions

from helpers import ScriptedDetector, decode_frames, unmasked

PASS = b"correct horse battery staple"

# The crowd's ground truth for its LFW people is the whole enlarged LFW crop, hair and
# background included: one of them reaches 34 px past the right edge of the 75-px face the
# detector finds. At the default mask scale (1.3) blur itself changes only 65-70% of such a
# box on the frames the detector runs on (the 60% test's margin is thin for every method),
# and a surrogate a few points less: one CI run got just under 60% there. These tests are
# about the surrogate covering what the regions cover, so the regions are grown to hold it.
CROP_SCALE = ["--mask-scale", "1.6"]


@pytest.mark.slow
def test_cli_run_surrogate_covers_every_face(crowd_clip, tmp_path: Path) -> None:
    clip, gt = crowd_clip
    out, stats_path = tmp_path / "out.mp4", tmp_path / "stats.json"
    argv = ["run", str(clip), "-o", str(out), "--method", "surrogate", "--surrogate-k", "5"]
    argv += ["--no-progress", *CROP_SCALE]
    assert main([*argv, "--stats", str(stats_path)]) == 0
    source, masked = decode_frames(clip), decode_frames(out)
    assert len(masked) == len(source) == len(gt)
    assert all(len(f["boxes"]) == 8 for f in gt)  # eight people on every frame
    assert unmasked(source, masked, gt) == []
    counts = json.loads(stats_path.read_text())["surrogate"]
    assert counts["surrogate"] > 0  # real surrogates were drawn, not only blur
    assert counts["blurred"] == sum(
        v for k, v in counts.items() if k not in ("surrogate", "blurred")
    )


@pytest.mark.slow
def test_reversible_surrogate_restores_the_originals(crowd_clip, tmp_path: Path) -> None:
    # Originals are kept before the obscure stage runs, so a surrogate changes nothing there.
    clip, gt = crowd_clip
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    generate_signing_key(tmp_path / "s.key", tmp_path / "s.pub", PASS)
    masked = tmp_path / "masked.mp4"
    config = Config().override(
        {
            "obscure.method": "surrogate",
            "reversible.enabled": True,
            "reversible.recipients": [str(tmp_path / "r.pub")],
        }
    )
    script = ScriptedDetector([f["boxes"] for f in gt])
    stats = anonymize_file(clip, masked, config, detector_factory=lambda: script)
    assert stats.surrogate is not None and stats.surrogate["surrogate"] > 0
    source, output = decode_frames(clip), decode_frames(masked)
    assert unmasked(source, output, gt) == []
    ctx = AuditContext(load_signing_key(tmp_path / "s.key", PASS))
    reader, _ = open_sidecar_for_review(masked, key=tmp_path / "r.key", passphrase=PASS)
    boxes: dict[int, list] = {}
    for r in revealed_regions(reader, audit_ctx=ctx):
        boxes.setdefault(r.pts, []).append(r.xyxy)
    revealed = list(reveal_frames(masked, reader, audit_ctx=ctx))
    assert len(revealed) == len(source)
    checked = 0
    for i, frame in enumerate(revealed):
        for x1, y1, x2, y2 in boxes.get(frame.pts, []):
            np.testing.assert_array_equal(frame.image[y1:y2, x1:x2], source[i][y1:y2, x1:x2])
            checked += 1
    assert checked >= 8 * len(source)


@pytest.mark.slow
def test_live_surrogate_covers_every_face(crowd_clip, tmp_path: Path) -> None:
    # `streamdeid live` builds its obscure stage from the same config: a file as a camera.
    clip, gt = crowd_clip
    out = tmp_path / "live.mkv"
    assert main(["live", str(clip), "-o", str(out), "--method", "surrogate", *CROP_SCALE]) == 0
    source, masked = decode_frames(clip), decode_frames(out)
    assert len(masked) == len(source)
    assert unmasked(source, masked, gt) == []


def test_a_photo_has_no_gallery_so_it_is_blurred_and_counted(tmp_path: Path) -> None:
    import cv2

    from streamdeid.testing.sprites import load_sample_faces

    sprite = load_sample_faces()[0]
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(src), sprite.image)
    stats = anonymize_file(src, dst, Config().override({"obscure.method": "surrogate"}))
    assert stats.surrogate is not None and stats.surrogate["surrogate"] == 0
    assert stats.surrogate["blurred"] == stats.regions >= 1
    box = sprite.face_xyxy
    assert unmasked([sprite.image], [cv2.imread(str(dst))], [{"boxes": [box]}]) == []


def test_a_photo_gets_a_surrogate_from_a_site_gallery_through_the_cli(tmp_path: Path) -> None:
    import cv2

    pytest.importorskip("skimage", reason="the LFW portraits come with scikit-image (dev extra)")
    from streamdeid.testing.crowd import write_site_gallery
    from streamdeid.testing.sprites import load_sample_faces

    site = write_site_gallery(tmp_path / "site", 10)
    sprite = load_sample_faces()[0]
    src, dst, stats_path = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "stats.json"
    cv2.imwrite(str(src), sprite.image)
    argv = ["run", str(src), "-o", str(dst), "--method", "surrogate", "--no-progress"]
    argv += ["--surrogate-gallery", str(site), "--stats", str(stats_path)]
    assert main(argv) == 0
    counts = json.loads(stats_path.read_text())["surrogate"]
    assert counts["surrogate"] >= 1  # without the gallery a photo is only blurred (test above)
    box = sprite.face_xyxy
    assert unmasked([sprite.image], [cv2.imread(str(dst))], [{"boxes": [box]}]) == []
    # A missing gallery is the user's mistake: one line naming the setting, exit 2.
    assert main([*argv[:-2], "--surrogate-gallery", str(tmp_path / "nope")]) != 0
