"""Reversible masking end to end: encrypt on anonymize, reveal per track, audit, no leaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamdeid import anonymize_file, audit
from streamdeid.config import Config
from streamdeid.crypto.parse import SourceChunk, read_header, scan_chunks
from streamdeid.crypto.signing import load_verify_key
from streamdeid.reveal import (
    RevealError,
    audit_log_for,
    open_sidecar_for_review,
    reveal_file,
    reveal_frames,
    revealed_regions,
)

from helpers import PASS, ScriptedDetector, decode_frames, reversible_recording

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recording(synthetic, tmp_path_factory) -> dict:
    """A masked clip + sidecar made with ground-truth boxes, outputs in their own folder."""
    return reversible_recording(synthetic, tmp_path_factory.mktemp("rec"))


def test_reveal_is_bit_exact_in_boxes_and_masked_elsewhere(recording) -> None:
    source = decode_frames(recording["clip"])
    masked = decode_frames(recording["masked"])
    reader, _ = open_sidecar_for_review(recording["masked"], key=recording["key"], passphrase=PASS)
    boxes: dict[int, list] = {}
    for r in revealed_regions(reader, audit_ctx=recording["ctx"]):
        boxes.setdefault(r.pts, []).append(r.xyxy)
    revealed = list(reveal_frames(recording["masked"], reader, audit_ctx=recording["ctx"]))
    assert len(revealed) == len(source) == len(masked)
    pts = sorted(boxes)
    assert len(pts) > 40
    frame_pts = [f.pts for f in revealed]
    checked = 0
    for frame in revealed:
        i = frame_pts.index(frame.pts)
        outside = np.ones(frame.image.shape[:2], bool)
        for x1, y1, x2, y2 in boxes.get(frame.pts, []):
            np.testing.assert_array_equal(frame.image[y1:y2, x1:x2], source[i][y1:y2, x1:x2])
            outside[y1:y2, x1:x2] = False
            checked += 1
        np.testing.assert_array_equal(frame.image[outside], masked[i][outside])
    assert checked > 50


def test_one_track_revealed_others_stay_masked(recording) -> None:
    masked = decode_frames(recording["masked"])
    source = decode_frames(recording["clip"])
    reader, _ = open_sidecar_for_review(recording["masked"], key=recording["key"], passphrase=PASS)
    tracks = [t.track_id for t in reader.tracks() if t.track_id != 0]
    assert len(tracks) >= 2
    chosen = tracks[0]
    mine = {r.pts: r.xyxy for r in revealed_regions(reader, [chosen], audit_ctx=recording["ctx"])}
    revealed = list(
        reveal_frames(recording["masked"], reader, [chosen], audit_ctx=recording["ctx"])
    )
    changed = 0
    for i, frame in enumerate(revealed):
        diff = np.any(frame.image != masked[i], axis=2)
        if frame.pts in mine:
            x1, y1, x2, y2 = mine[frame.pts]
            np.testing.assert_array_equal(frame.image[y1:y2, x1:x2], source[i][y1:y2, x1:x2])
            diff[y1:y2, x1:x2] = False
            changed += 1
        assert not diff.any(), f"frame {i}: pixels outside track {chosen} changed"
    assert changed > 10


def test_reveal_file_writes_lossless_mkv_and_audits(recording, tmp_path: Path) -> None:
    reader, who = open_sidecar_for_review(
        recording["masked"], key=recording["key"], passphrase=PASS
    )
    out = tmp_path / "review.mkv"
    stats = reveal_file(recording["masked"], out, reader, who, audit_ctx=recording["ctx"])
    in_memory = list(reveal_frames(recording["masked"], reader, audit_ctx=recording["ctx"]))
    on_disk = decode_frames(out)
    assert stats.frames == len(on_disk) == len(in_memory)
    for a, b in zip(in_memory, on_disk, strict=True):
        np.testing.assert_array_equal(a.image, b)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    log = audit_log_for(recording["masked"])
    report = audit.verify(log, [load_verify_key(recording["sign_pub"])])
    assert report.entries >= 2 and report.head_sha256 == audit.head(log)
    assert '"output":"review.mkv"' in log.read_text()


def test_sidecar_of_another_recording_is_refused(recording, synthetic, tmp_path: Path) -> None:
    clip, gt = synthetic
    other = tmp_path / "other.mp4"
    config = Config().override(
        {"reversible.enabled": True, "reversible.recipients": [str(recording["pub"])]}
    )
    anonymize_file(
        clip, other, config, detector_factory=lambda: ScriptedDetector([f["boxes"] for f in gt])
    )
    shutil.copy(recording["masked"].with_name("masked.mp4.sdeid"), f"{other}.sdeid")
    reader, who = open_sidecar_for_review(other, key=recording["key"], passphrase=PASS)
    with pytest.raises(RevealError, match="another video"):
        reveal_file(other, tmp_path / "x.mkv", reader, who, audit_ctx=recording["ctx"])


def test_plaintext_faces_never_reach_disk(recording) -> None:
    source = decode_frames(recording["clip"])
    reader, _ = open_sidecar_for_review(recording["masked"], key=recording["key"], passphrase=PASS)
    needles = []
    for r in revealed_regions(reader, audit_ctx=recording["ctx"]):
        if r.pixels.shape[0] > 8 and r.pixels.shape[1] > 8:
            row = r.pixels[r.pixels.shape[0] // 2]
            needles.append(row.tobytes()[:24])
        if len(needles) > 40:
            break
    assert needles and source
    for path in recording["out_dir"].iterdir():
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"raw face pixels found in {path.name}"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamdeid", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_cli_keygen_run_reveal_grant_audit(synthetic, tmp_path: Path) -> None:
    clip, _ = synthetic
    sign = {"STREAMDEID_SIGNING_PASSPHRASE": "site-passphrase"}
    ok = {"STREAMDEID_PASSPHRASE": "s3cret-passphrase", **sign}
    bad = {"STREAMDEID_PASSPHRASE": "wrong-passphrase", **sign}
    key, site = tmp_path / "rev", tmp_path / "site"
    assert run_cli("keygen", str(key), env=ok).returncode == 0
    assert oct(os.stat(f"{key}.key").st_mode & 0o777) == "0o600"
    r = run_cli("keygen", "--signing", str(site), env={"STREAMDEID_PASSPHRASE": "site-passphrase"})
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(f"{site}.sign.key").st_mode & 0o777) == "0o600"
    signing = ["--signing-key", f"{site}.sign.key"]
    masked = tmp_path / "m.mp4"
    r = run_cli(
        "run", str(clip), "-o", str(masked), "--recipient", f"{key}.pub", "--method", "solid"
    )
    assert r.returncode == 0, r.stderr
    tracks = run_cli("tracks", str(masked))
    assert tracks.returncode == 0 and "track" in tracks.stdout
    r = run_cli("reveal", str(masked), "-o", str(tmp_path / "a.mkv"), "--key", f"{key}.key", env=ok)
    assert r.returncode == 2 and "--signing-key" in r.stderr  # no signing key, no reveal
    assert not (tmp_path / "a.mkv").exists()
    r = run_cli(
        "reveal",
        str(masked),
        "-o",
        str(tmp_path / "a.mkv"),
        "--key",
        f"{key}.key",
        *signing,
        env=bad,
    )
    assert r.returncode == 1 and "wrong passphrase" in r.stderr and "Traceback" not in r.stderr
    grant = ["--track", "1", "-o", str(tmp_path / "t1.grant")]
    r = run_cli("grant", str(masked), "--key", f"{key}.key", *grant, *signing, env=ok)
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "reveal",
        str(masked),
        "-o",
        str(tmp_path / "t1.mkv"),
        "--grant",
        str(tmp_path / "t1.grant"),
        *signing,
        env=sign,
    )
    assert r.returncode == 0, r.stderr
    assert oct(os.stat(tmp_path / "t1.mkv").st_mode & 0o777) == "0o600"
    verify = ["audit", str(masked), "--public-key", f"{site}.sign.pub"]
    r = run_cli(*verify)
    assert r.returncode == 0 and "2 entries" in r.stdout, r.stderr
    check_tamper_and_log_edit(masked, tmp_path, [*signing, "--key", f"{key}.key"], verify, ok)


def check_tamper_and_log_edit(
    masked: Path, tmp_path: Path, unlock: list[str], verify: list[str], ok: dict[str, str]
) -> None:
    """A tampered sidecar fails cleanly and leaves no output; an edited log line is named."""
    # tamper with the sidecar: one flipped byte in the middle
    sidecar = Path(f"{masked}.sdeid")
    data = bytearray(sidecar.read_bytes())
    data[len(data) // 2] ^= 0x40
    sidecar.write_bytes(bytes(data))
    out = tmp_path / "b.mkv"
    r = run_cli("reveal", str(masked), "-o", str(out), *unlock, env=ok)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1
    assert not out.exists()  # the partial reveal is removed
    # edit the audit log: the signature of the edited line fails
    (log,) = tmp_path.glob("*.audit.jsonl")
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    lines[0] = lines[0].replace('"grant"', '"reveal"')
    log.write_text("\n".join(lines) + "\n")
    r = run_cli(*verify)
    assert r.returncode == 1 and "line 1: signature does not verify" in r.stderr


def test_truncated_sidecar_reveals_the_intact_prefix(recording, tmp_path: Path) -> None:
    from streamdeid.crypto import TruncatedError

    masked = tmp_path / "cut.mp4"
    shutil.copy(recording["masked"], masked)
    sidecar = Path(f"{recording['masked']}.sdeid")
    data = sidecar.read_bytes()
    # Cut inside the last run of source packets: the runs before it restore, the rest is lost.
    header = read_header(sidecar)
    runs = [c.offset for c in scan_chunks(sidecar, len(header.raw)) if isinstance(c, SourceChunk)]
    assert len(runs) >= 2
    Path(f"{masked}.sdeid").write_bytes(data[: runs[-1] + 40])
    reader, who = open_sidecar_for_review(masked, key=recording["key"], passphrase=PASS)
    out = tmp_path / "cut.mkv"
    with pytest.raises(TruncatedError):
        reveal_file(masked, out, reader, who, audit_ctx=recording["ctx"])
    source, masked_frames = decode_frames(recording["clip"]), decode_frames(masked)
    revealed = decode_frames(out)
    assert len(revealed) == len(source)  # the whole video is written
    first_diff = [not np.array_equal(a, b) for a, b in zip(revealed, masked_frames, strict=True)]
    assert first_diff[0] and not first_diff[-1]  # early faces restored, late ones still masked
