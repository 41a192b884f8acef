"""Originals kept as the input's packets: compact, bit-exact, grants through packages.

Real files end to end: a synthetic clip with two real faces is anonymized with the ground-truth
boxes, then revealed with the full key, with a grant and its package, and after tampering.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from streamdeid import anonymize_file
from streamdeid.cli import main
from streamdeid.config import Config
from streamdeid.crypto import FormatError, SidecarReader, TamperedError
from streamdeid.crypto.parse import IndexChunk, SourceChunk, read_header, scan_chunks
from streamdeid.grant_package import package_path
from streamdeid.reveal import (
    RevealError,
    grant_track,
    open_sidecar_for_review,
    reveal_frames,
    revealed_regions,
)

from helpers import PASS, ScriptedDetector, decode_frames, reversible_recording


@pytest.fixture(scope="module")
def rec(synthetic, tmp_path_factory) -> dict:
    return reversible_recording(synthetic, tmp_path_factory.mktemp("rec"))


def copy_of(rec: dict, folder: Path) -> Path:
    video = folder / "v.mp4"
    shutil.copy(rec["masked"], video)
    shutil.copy(f"{rec['masked']}.sdeid", f"{video}.sdeid")
    return video


def chunks(sidecar: Path) -> list:
    return list(scan_chunks(sidecar, len(read_header(sidecar).raw)))[:-1]


def test_video_input_keeps_its_packets_at_about_its_own_size(rec) -> None:
    sidecar = Path(f"{rec['masked']}.sdeid")
    kinds = {type(c) for c in chunks(sidecar)}
    assert kinds == {SourceChunk, IndexChunk}  # no per-region crops at all
    # The packets cost what the input costs (here ~1x the masked video); PNG crops of the same
    # recording cost 20-100x.
    assert sidecar.stat().st_size < 1.5 * os.path.getsize(rec["clip"])
    assert sidecar.stat().st_size < 3 * rec["masked"].stat().st_size


def test_full_key_restores_every_box_bit_exact_and_nothing_else(rec) -> None:
    source, masked = decode_frames(rec["clip"]), decode_frames(rec["masked"])
    reader, _ = open_sidecar_for_review(rec["masked"], key=rec["key"], passphrase=PASS)
    regions = list(revealed_regions(reader, audit_ctx=rec["ctx"]))
    by_pts: dict[int, list] = {}
    for r in regions:
        by_pts.setdefault(r.pts, []).append(r)
    revealed = list(reveal_frames(rec["masked"], reader, audit_ctx=rec["ctx"]))
    assert len(revealed) == len(source) == len(masked) == 50
    boxes = 0
    for i, frame in enumerate(revealed):
        outside = np.ones(frame.image.shape[:2], bool)
        for r in by_pts.get(frame.pts, []):
            x1, y1, x2, y2 = r.xyxy
            np.testing.assert_array_equal(frame.image[y1:y2, x1:x2], source[i][y1:y2, x1:x2])
            np.testing.assert_array_equal(r.pixels, source[i][y1:y2, x1:x2])
            outside[y1:y2, x1:x2] = False
            boxes += 1
        np.testing.assert_array_equal(frame.image[outside], masked[i][outside])
    assert boxes > 80


def test_records_api_points_to_the_decoding_one(rec) -> None:
    reader, _ = open_sidecar_for_review(rec["masked"], key=rec["key"], passphrase=PASS)
    with pytest.raises(FormatError, match="revealed_regions"):
        reader.records(audit_ctx=rec["ctx"])


def test_grant_package_opens_one_track_only(rec, tmp_path: Path) -> None:
    video = copy_of(rec, tmp_path)
    source, masked = decode_frames(rec["clip"]), decode_frames(video)
    reader, who = open_sidecar_for_review(video, key=rec["key"], passphrase=PASS)
    tracks = [t.track_id for t in reader.tracks() if t.track_id]
    chosen = tracks[0]
    grant = tmp_path / "t.grant"
    grant_track(video, reader, who, chosen, grant, audit_ctx=rec["ctx"])
    package = package_path(grant)
    assert package.exists() and (package.stat().st_mode & 0o777) == 0o600
    # the grant holder: the package, never the recording's source packets
    holder, _ = open_sidecar_for_review(video, grants=[grant])
    assert holder.path == package
    assert [t.track_id for t in holder.tracks()] == [chosen]
    mine = {r.pts: r.xyxy for r in holder.records(audit_ctx=rec["ctx"])}
    assert len(mine) > 10
    for i, frame in enumerate(reveal_frames(video, holder, audit_ctx=rec["ctx"])):
        diff = np.any(frame.image != masked[i], axis=2)
        if frame.pts in mine:
            x1, y1, x2, y2 = mine[frame.pts]
            np.testing.assert_array_equal(frame.image[y1:y2, x1:x2], source[i][y1:y2, x1:x2])
            diff[y1:y2, x1:x2] = False
        assert not diff.any(), f"frame {i}: pixels outside track {chosen} changed"
    # the full key verifies the package too (same record MACs)
    full = SidecarReader(package)
    full.unlock(_private(rec))
    assert len(list(full.records(audit_ctx=rec["ctx"]))) == len(mine)
    # the log of a package reveal is the recording's, not one beside the package
    assert len(list(tmp_path.glob("*.audit.jsonl"))) == 1


def _private(rec: dict):
    from streamdeid.crypto import load_private_key

    return load_private_key(rec["key"], PASS)


def test_grant_without_its_package_is_a_clear_error(rec, tmp_path: Path) -> None:
    video = copy_of(rec, tmp_path)
    reader, who = open_sidecar_for_review(video, key=rec["key"], passphrase=PASS)
    grant = tmp_path / "t.grant"
    grant_track(video, reader, who, 1, grant, audit_ctx=rec["ctx"])
    package_path(grant).unlink()
    with pytest.raises(RevealError, match="package"):
        open_sidecar_for_review(video, grants=[grant])


def test_cli_grant_and_reveal_with_a_package(rec, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STREAMDEID_PASSPHRASE", PASS.decode())
    monkeypatch.setenv("STREAMDEID_SIGNING_PASSPHRASE", PASS.decode())
    video = copy_of(rec, tmp_path)
    grant = tmp_path / "t.grant"
    sign = ["--signing-key", str(rec["signing"])]
    args = ["grant", str(video), "--track", "1", "-o", str(grant), "--key", str(rec["key"])]
    assert main([*args, "--lossy", *sign]) == 0
    assert "package" in capsys.readouterr().err
    out = tmp_path / "t1.mkv"
    assert main(["reveal", str(video), "-o", str(out), "--grant", str(grant), *sign]) == 0
    assert len(decode_frames(out)) == 50


@pytest.mark.parametrize("kind", [SourceChunk, IndexChunk])
def test_a_flipped_bit_in_source_or_index_is_refused(rec, tmp_path: Path, kind) -> None:
    video = copy_of(rec, tmp_path)
    sidecar = Path(f"{video}.sdeid")
    target = next(c for c in chunks(sidecar) if isinstance(c, kind))
    data = bytearray(sidecar.read_bytes())
    data[target.offset + 5 + 30] ^= 0x01  # inside the fields / packet ciphertext
    sidecar.write_bytes(bytes(data))
    reader, _ = open_sidecar_for_review(video, key=rec["key"], passphrase=PASS)
    with pytest.raises((TamperedError, FormatError)):
        list(revealed_regions(reader, audit_ctx=rec["ctx"]))
    with pytest.raises((TamperedError, FormatError)):
        list(reveal_frames(video, reader, audit_ctx=rec["ctx"]))


def test_intra_only_input_keeps_per_region_crops(synthetic, rec, tmp_path: Path) -> None:
    """MJPEG packets cost more than crops: such input falls back to one crop per region."""
    clip, gt = synthetic
    mjpeg = tmp_path / "cam.avi"
    with av.open(str(clip)) as src, av.open(str(mjpeg), "w") as dst:
        stream = dst.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuvj420p"
        for frame in src.decode(video=0):
            for p in stream.encode(frame.reformat(format="yuvj420p")):
                dst.mux(p)
        for p in stream.encode():
            dst.mux(p)
    pub = rec["key"].with_suffix(".pub")
    config = Config().override({"reversible.enabled": True, "reversible.recipients": [str(pub)]})
    out = tmp_path / "cam_anon.mkv"
    anonymize_file(
        mjpeg, out, config, detector_factory=lambda: ScriptedDetector([f["boxes"] for f in gt])
    )
    reader = SidecarReader(f"{out}.sdeid")
    assert not reader.keeps_source() and reader.tracks()


def test_an_interrupted_run_reveals_what_it_wrote(synthetic, rec, tmp_path: Path) -> None:
    """Ctrl-C mid-run: the sidecar holds packets demuxed ahead of the last written frame."""
    import threading

    clip, gt = synthetic
    stop = threading.Event()
    out = tmp_path / "cut.mp4"
    pub = rec["key"].with_suffix(".pub")
    config = Config().override({"reversible.enabled": True, "reversible.recipients": [str(pub)]})

    def progress(done: int, total: int | None) -> None:
        # Early: up to ~30 frames already in the pipeline's queues still get written.
        if done >= 5:
            stop.set()

    from streamdeid.errors import Interrupted

    with pytest.raises(Interrupted):
        anonymize_file(
            clip,
            out,
            config,
            progress=progress,
            stop=stop,
            detector_factory=lambda: ScriptedDetector([f["boxes"] for f in gt]),
        )
    source, masked = decode_frames(clip), decode_frames(out)
    assert 5 <= len(masked) < 50
    reader, _ = open_sidecar_for_review(out, key=rec["key"], passphrase=PASS)
    revealed = list(reveal_frames(out, reader, audit_ctx=rec["ctx"]))
    assert len(revealed) == len(masked)
    assert any(not np.array_equal(r.image, m) for r, m in zip(revealed, masked, strict=True))
    for r in revealed:
        changed = np.any(r.image != masked[r.index], axis=2)
        np.testing.assert_array_equal(r.image[changed], source[r.index][changed])
