from __future__ import annotations

import stat
from pathlib import Path

import pytest
from crypto_helpers import AUDIT, assert_matches, chunk_spans, header_size, small_sidecar
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import (
    GrantMismatchError,
    KeyFileError,
    LockedError,
    SidecarReader,
    TamperedError,
    UnknownTrackError,
    export_grant,
    load_grant,
)
from streamdeid.crypto import format as fmt


def _unlocked(path: Path, key: X25519PrivateKey) -> SidecarReader:
    reader = SidecarReader(path)
    reader.unlock(key)
    return reader


def test_grant_opens_its_track_and_nothing_else(tmp_path: Path, alice: X25519PrivateKey) -> None:
    expected = small_sidecar(tmp_path / "s.sdeid", [alice])
    grant = export_grant(
        _unlocked(tmp_path / "s.sdeid", alice), 7, tmp_path / "t7.grant", audit_ctx=AUDIT
    )
    assert stat.S_IMODE((tmp_path / "t7.grant").stat().st_mode) == 0o600
    assert "key=" not in repr(grant) and repr(grant.key) not in repr(grant)  # kept out of logs

    reader = SidecarReader(tmp_path / "s.sdeid")
    reader.unlock_track(tmp_path / "t7.grant")
    assert_matches(list(reader.records(audit_ctx=AUDIT)), [e for e in expected if e.track_id == 7])
    # Asking for another track yields nothing: the grant has no key for it.
    assert list(reader.records(audit_ctx=AUDIT, track_ids=[1])) == []
    with pytest.raises(LockedError, match="private key"):
        export_grant(reader, 1, tmp_path / "t1.grant", audit_ctx=AUDIT)

    g7 = load_grant(tmp_path / "t7.grant")
    assert g7 == grant and g7.track_id == 7
    assert _unlocked(tmp_path / "s.sdeid", alice).make_grant(1).key != g7.key


def test_several_grants_combine_and_untracked_is_track_0(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    expected = small_sidecar(tmp_path / "s.sdeid", [alice])
    full = _unlocked(tmp_path / "s.sdeid", alice)
    reader = SidecarReader(tmp_path / "s.sdeid")
    reader.unlock_track(full.make_grant(0))
    reader.unlock_track(full.make_grant(1))
    assert_matches(
        list(reader.records(audit_ctx=AUDIT)), [e for e in expected if e.track_id in (0, 1)]
    )


def test_grant_for_another_recording_is_refused(tmp_path: Path, alice: X25519PrivateKey) -> None:
    small_sidecar(tmp_path / "a.sdeid", [alice])
    small_sidecar(tmp_path / "b.sdeid", [alice])
    export_grant(_unlocked(tmp_path / "a.sdeid", alice), 7, tmp_path / "a7.grant", audit_ctx=AUDIT)
    reader = SidecarReader(tmp_path / "b.sdeid")
    with pytest.raises(GrantMismatchError, match="expected a grant for recording"):
        reader.unlock_track(tmp_path / "a7.grant")
    with pytest.raises(LockedError):
        list(reader.records(audit_ctx=AUDIT))


def test_unknown_track_existing_file_and_corrupt_grant(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    small_sidecar(tmp_path / "s.sdeid", [alice])
    reader = _unlocked(tmp_path / "s.sdeid", alice)
    with pytest.raises(UnknownTrackError, match=r"\[0, 1, 7\]"):
        export_grant(reader, 3, tmp_path / "t3.grant", audit_ctx=AUDIT)
    assert not (tmp_path / "t3.grant").exists()
    export_grant(reader, 7, tmp_path / "t7.grant", audit_ctx=AUDIT)
    with pytest.raises(KeyFileError, match="overwrite"):
        export_grant(reader, 1, tmp_path / "t7.grant", audit_ctx=AUDIT)

    data = bytearray((tmp_path / "t7.grant").read_bytes())
    data[-20] ^= 1
    (tmp_path / "bad.grant").write_bytes(bytes(data))
    (tmp_path / "short.grant").write_bytes(bytes(data[:-1]))
    for name, message in [("bad", "checksum"), ("short", "bytes"), ("missing", "not found")]:
        with pytest.raises(KeyFileError, match=message):
            load_grant(tmp_path / f"{name}.grant")


def test_grant_holder_detects_a_removed_record_and_an_edited_header(
    tmp_path: Path, alice: X25519PrivateKey, bob: X25519PrivateKey
) -> None:
    expected = small_sidecar(tmp_path / "s.sdeid", [alice, bob])
    grant = _unlocked(tmp_path / "s.sdeid", alice).make_grant(7)
    data = (tmp_path / "s.sdeid").read_bytes()
    spans = chunk_spans(data, header_size(2))

    # Drop the last track-7 record but keep the end marker: the per-track count exposes it.
    idx = max(i for i, e in enumerate(expected) if e.track_id == 7)
    _, start, end = spans[idx]
    (tmp_path / "cut.sdeid").write_bytes(data[:start] + data[end:])
    reader = SidecarReader(tmp_path / "cut.sdeid")
    reader.unlock_track(grant)
    with pytest.raises(TamperedError):
        list(reader.records(audit_ctx=AUDIT))

    # Edit Bob's header entry: Alice's grant pins the header digest.
    edited = bytearray(data)
    edited[fmt.HEADER_FIXED.size + fmt.RECIPIENT.size + 40] ^= 1
    (tmp_path / "hdr.sdeid").write_bytes(bytes(edited))
    with pytest.raises(TamperedError, match="header"):
        SidecarReader(tmp_path / "hdr.sdeid").unlock_track(grant)
