"""The audit gate of reveals (issue 12): log first or reveal nothing, signed entries, kept heads,
private outputs that never outlive a failed reveal, clean errors for malformed records."""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamdeid import audit
from streamdeid.audit import AuditContext, AuditError, AuditRequiredError
from streamdeid.cli import main
from streamdeid.crypto import SidecarReader, SidecarWriter, load_public_key
from streamdeid.crypto import inputs as writer_module
from streamdeid.crypto.signing import load_signing_key, load_verify_key
from streamdeid.io.sink import VideoSink
from streamdeid.io.source import FileSource
from streamdeid.reveal import (
    audit_log_for,
    open_sidecar_for_review,
    reveal_file,
    reveal_frames,
    revealed_regions,
)
from streamdeid.types import Region

from helpers import PASS, reversible_recording


@pytest.fixture(scope="module")
def rec(synthetic, tmp_path_factory) -> dict:
    """A reversible recording, a reviewer key and a site signing key."""
    return reversible_recording(synthetic, tmp_path_factory.mktemp("rec"))


@pytest.fixture
def copy(rec, tmp_path: Path) -> Path:
    """A private copy of the recording (video + sidecar), so each test has its own log."""
    video = tmp_path / "v.mp4"
    shutil.copy(rec["masked"], video)
    shutil.copy(f"{rec['masked']}.sdeid", f"{video}.sdeid")
    return video


@pytest.fixture
def env(rec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMDEID_PASSPHRASE", PASS.decode())
    monkeypatch.setenv("STREAMDEID_SIGNING_PASSPHRASE", PASS.decode())
    monkeypatch.delenv("STREAMDEID_AUDIT_DIR", raising=False)


def ctx(rec, log: Path | None = None) -> AuditContext:
    return AuditContext(load_signing_key(rec["signing"], PASS), log)


def unlocked(rec, video: Path):
    return open_sidecar_for_review(video, key=rec["keys"] / "r.key", passphrase=PASS)


def cli_reveal(rec, video: Path, out: Path, *extra: str) -> int:
    key = ["--key", str(rec["keys"] / "r.key"), "--signing-key", str(rec["signing"])]
    return main(["reveal", str(video), "-o", str(out), *key, *extra])


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1 and lines[0].startswith("streamdeid: error:"), err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def test_unwritable_audit_location_reveals_nothing(rec, copy, tmp_path, env, capsys) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    out = tmp_path / "r.mkv"
    assert cli_reveal(rec, copy, out, "--audit-log", str(blocker / "a.jsonl")) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "audit log" in line and "nothing was revealed" in line
    assert not out.exists()
    reader, who = unlocked(rec, copy)
    bad = ctx(rec, blocker / "a.jsonl")
    with pytest.raises(AuditError, match="nothing was revealed"):
        reveal_file(copy, out, reader, who, audit_ctx=bad)
    with pytest.raises(AuditError):
        reveal_frames(copy, reader, audit_ctx=bad)  # raises on the call, before any frame
    with pytest.raises(AuditError):
        revealed_regions(reader, audit_ctx=bad)
    assert not out.exists()


def test_read_only_folder_beside_the_sidecar(rec, copy, tmp_path, env, capsys, monkeypatch) -> None:
    """The reviewer's case: the default log location is read-only (EROFS, as on a read-only
    mount; simulated because the tests may run as root, who ignores directory modes)."""
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".audit.jsonl"):
            raise OSError(30, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(audit.os, "open", read_only)
    out = tmp_path / "r.mkv"
    assert cli_reveal(rec, copy, out) == 1
    assert "Read-only file system" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    grant = tmp_path / "t.grant"
    args = ["--track", "1", "-o", str(grant), "--key", str(rec["keys"] / "r.key")]
    assert main(["grant", str(copy), *args, "--signing-key", str(rec["signing"])]) == 1
    assert not grant.exists()


def test_reveal_without_signing_key_is_refused(rec, copy, tmp_path, env, capsys) -> None:
    out = tmp_path / "r.mkv"
    assert main(["reveal", str(copy), "-o", str(out), "--key", str(rec["keys"] / "r.key")]) == 2
    assert "--signing-key" in one_error_line(capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob("*.audit.jsonl"))


def test_library_api_needs_an_audit_context_and_logs_first(rec, copy) -> None:
    reader, _ = unlocked(rec, copy)
    with pytest.raises(AuditRequiredError):
        revealed_regions(reader)
    with pytest.raises(AuditRequiredError):
        reveal_frames(copy, reader)
    log = audit_log_for(copy)
    assert log.parent == copy.parent and log.name == f"{reader.recording_id}.audit.jsonl"
    assert not log.exists()
    revealed_regions(reader, [1], audit_ctx=ctx(rec))  # logged on the call, before iterating
    reveal_frames(copy, reader, audit_ctx=ctx(rec))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["decrypt", "reveal"]
    assert entries[0]["tracks"] == [1] and entries[0]["recording_id"] == reader.recording_id
    assert audit.verify(log, [load_verify_key(rec["keys"] / "site.sign.pub")]).entries == 2


def test_log_follows_the_recording_not_the_copy(rec, copy, tmp_path, monkeypatch) -> None:
    central = tmp_path / "audit"
    central.mkdir()
    monkeypatch.setenv("STREAMDEID_AUDIT_DIR", str(central))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "renamed.mp4"
    shutil.copy(copy, moved)
    shutil.copy(f"{copy}.sdeid", f"{moved}.sdeid")
    assert audit_log_for(moved) == audit_log_for(copy)
    reader, _ = unlocked(rec, moved)
    revealed_regions(reader, audit_ctx=ctx(rec))
    assert audit_log_for(copy).parent == central and audit_log_for(copy).exists()
    assert not list(elsewhere.glob("*.audit.jsonl"))


def signed_log(rec, tmp_path: Path, n: int = 4, rid: str | None = None) -> Path:
    """A log of ``n`` signed entries about ``rid`` (default: the fixture's recording)."""
    log = tmp_path / "a.jsonl"
    key = load_signing_key(rec["signing"], PASS)
    rid = rid or SidecarReader(f"{rec['masked']}.sdeid").recording_id
    for i in range(n):
        entry = {"action": "reveal", "by": f"key:{i}", "tracks": [i], "recording_id": rid}
        audit.append(log, key, entry)
    return log


def rechain_without(log: Path, drop: int) -> None:
    """What an editor without the signing key can do: delete a line, recompute every hash."""
    lines = log.read_bytes().splitlines()
    del lines[drop]
    prev = audit.GENESIS
    out = []
    for line in lines:
        record = json.loads(line)
        record["prev_sha256"] = prev
        new = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        out.append(new)
        prev = audit.hashlib.sha256(new).hexdigest()
    log.write_bytes(b"\n".join(out) + b"\n")


def test_deleted_and_rechained_line_is_named(rec, copy, tmp_path, env, capsys) -> None:
    pub = load_verify_key(rec["keys"] / "site.sign.pub")
    log = signed_log(rec, tmp_path)
    assert audit.verify(log, [pub]).entries == 4
    rechain_without(log, 1)
    with pytest.raises(AuditError, match=r"line 2: signature does not verify"):
        audit.verify(log, [pub])
    cli = ["audit", str(copy), "--public-key", str(rec["keys"] / "site.sign.pub")]
    assert main([*cli, "--audit-log", str(log)]) == 1
    assert "line 2" in one_error_line(capsys.readouterr().err)


def test_truncated_log_is_detected_against_a_kept_head(rec, copy, tmp_path, env, capsys) -> None:
    log = signed_log(rec, tmp_path)
    cli = ["audit", str(copy), "--public-key", str(rec["keys"] / "site.sign.pub")]
    cli += ["--audit-log", str(log)]
    assert main([*cli, "--head"]) == 0
    kept = capsys.readouterr().out.strip()
    assert kept == audit.head(log) and len(kept) == 64
    assert main([*cli, "--expect-head", kept]) == 0
    capsys.readouterr()
    log.write_bytes(b"\n".join(log.read_bytes().splitlines()[:-1]) + b"\n")  # cut the newest
    assert main(cli) == 0  # the file alone cannot show it ...
    capsys.readouterr()
    assert main([*cli, "--expect-head", kept]) == 1  # ... the kept head does
    assert "not in the log" in one_error_line(capsys.readouterr().err)


def test_wrong_public_key_fails(rec, tmp_path) -> None:
    log = signed_log(rec, tmp_path, n=1)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(AuditError, match=r"line 1: signed by .* not by any of the given"):
        audit.verify(log, [other])


def test_restored_video_is_0600_even_with_a_lax_umask(rec, copy, tmp_path) -> None:
    reader, who = unlocked(rec, copy)
    out = tmp_path / "r.mkv"
    old = os.umask(0)
    try:
        reveal_file(copy, out, reader, who, tracks=[1], audit_ctx=ctx(rec))
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_failure_mid_reveal_removes_the_partial_output(rec, copy, tmp_path, monkeypatch) -> None:
    real_write = VideoSink.write
    written = []

    def failing_write(self, frame):
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        written.append(frame.pts)
        return real_write(self, frame)

    monkeypatch.setattr(VideoSink, "write", failing_write)
    reader, who = unlocked(rec, copy)
    out = tmp_path / "r.mkv"
    with pytest.raises(OSError, match="No space"):
        reveal_file(copy, out, reader, who, audit_ctx=ctx(rec))
    assert len(written) == 5 and not out.exists()
    assert audit_log_for(copy).read_text().count('"action":"reveal"') == 1


def crafted(rec, tmp_path: Path, image_hw: tuple[int, int], box: tuple[int, ...]) -> Path:
    """A validly encrypted sidecar, made with the real writer, beside a copy of the source clip
    (640x360, no recording id), with one region at the first frame."""
    video = tmp_path / "clip.mp4"
    shutil.copy(rec["clip"], video)
    with FileSource(video) as source:
        first = next(iter(source.frames()))
    image = np.random.default_rng(0).integers(0, 256, (*image_hw, 3), dtype=np.uint8)
    writer = SidecarWriter(f"{video}.sdeid", [load_public_key(rec["keys"] / "r.pub")])
    writer.write_regions(
        first.pts or 0, first.time_base or Fraction(1, 25), image, [Region(box, 1)]
    )
    writer.close()
    return video


def check_clean_failure(rec, video: Path, tmp_path: Path, capsys, what: str) -> None:
    out = tmp_path / "r.mkv"
    assert cli_reveal(rec, video, out) == 1
    assert what in one_error_line(capsys.readouterr().err).lower()
    assert not out.exists()
    (entry,) = audit_log_for(video).read_text().splitlines()  # the key was used: logged
    assert json.loads(entry)["action"] == "reveal"


def test_box_outside_the_frame_is_a_clean_error(rec, tmp_path, env, capsys) -> None:
    video = crafted(rec, tmp_path, (400, 720), (630, 350, 660, 380))
    check_clean_failure(rec, video, tmp_path, capsys, "outside")


def test_zero_time_base_is_a_clean_error(rec, tmp_path, env, capsys, monkeypatch) -> None:
    monkeypatch.setattr(writer_module, "check_time_base", lambda tb: (1, 0))
    video = crafted(rec, tmp_path, (360, 640), (10, 10, 50, 50))
    monkeypatch.undo()
    monkeypatch.setenv("STREAMDEID_PASSPHRASE", PASS.decode())
    monkeypatch.setenv("STREAMDEID_SIGNING_PASSPHRASE", PASS.decode())
    check_clean_failure(rec, video, tmp_path, capsys, "time base")


def test_log_of_another_recording_is_refused(rec, copy, tmp_path, env, capsys) -> None:
    log = signed_log(rec, tmp_path, n=2, rid="0" * 32)  # validly signed, other recording
    cli = ["audit", str(copy), "--public-key", str(rec["keys"] / "site.sign.pub")]
    assert main([*cli, "--audit-log", str(log)]) == 1
    assert "line 1 is about recording" in one_error_line(capsys.readouterr().err)


def test_exporting_a_grant_through_the_library_is_logged_first(rec, copy, tmp_path) -> None:
    from streamdeid.crypto import export_grant

    reader, _ = unlocked(rec, copy)
    with pytest.raises(AuditRequiredError):
        export_grant(reader, 1, tmp_path / "t.grant")
    assert not (tmp_path / "t.grant").exists()
    export_grant(reader, 1, tmp_path / "t.grant", audit_ctx=ctx(rec))
    entries = [json.loads(line) for line in audit_log_for(copy).read_text().splitlines()]
    assert [e["action"] for e in entries] == ["grant"] and entries[0]["tracks"] == [1]
