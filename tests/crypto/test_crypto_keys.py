from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamdeid.crypto import (
    CryptoError,
    KeyFileError,
    WeakPassphraseError,
    WrongPassphraseError,
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from streamdeid.errors import StreamDeidError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_and_load_round_trip(tmp_path: Path) -> None:
    pub = generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"correct horse")
    priv = load_private_key(tmp_path / "r.key", b"correct horse")
    loaded_pub = load_public_key(tmp_path / "r.pub")
    assert priv.public_key().public_bytes_raw() == pub.public_bytes_raw()
    assert loaded_pub.public_bytes_raw() == pub.public_bytes_raw()
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "r.key").read_bytes()


def test_private_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"pw")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "r.key") == 0o600
    assert _mode(tmp_path / "r.pub") == 0o644


@pytest.mark.parametrize("existing", ["r.key", "r.pub"])
def test_refuses_to_overwrite_either_file(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="overwrite"):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"pw")
    assert (tmp_path / existing).read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


def test_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"right")
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        load_private_key(tmp_path / "r.key", b"wrong")
    with pytest.raises(WrongPassphraseError, match="no passphrase"):
        load_private_key(tmp_path / "r.key", None)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphraseError, match="non-empty"):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"")
    assert not list(tmp_path.iterdir())


def test_bad_key_files_give_key_file_errors(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"pw")
    (tmp_path / "garbage").write_bytes(b"not a key\n")
    ed = Ed25519PrivateKey.generate()
    (tmp_path / "ed.pub").write_bytes(
        ed.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "ed.key").write_bytes(
        ed.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cases = [
        (load_public_key, tmp_path / "missing.pub", "not found"),
        (load_public_key, tmp_path / "garbage", "does not parse"),
        (load_public_key, tmp_path / "r.key", "does not parse"),
        (load_public_key, tmp_path / "ed.pub", "Ed25519"),
        (load_public_key, tmp_path, "directory"),
        (lambda p: load_private_key(p, b"pw"), tmp_path / "missing.key", "not found"),
        (lambda p: load_private_key(p, b"pw"), tmp_path / "garbage", "does not parse"),
        (lambda p: load_private_key(p, b"pw"), tmp_path / "r.pub", "does not parse"),
        (lambda p: load_private_key(p, None), tmp_path / "ed.key", "Ed25519"),
    ]
    for load, path, message in cases:
        with pytest.raises(KeyFileError, match=message) as info:
            load(path)
        assert isinstance(info.value, CryptoError) and isinstance(info.value, StreamDeidError)
        assert "\n" not in str(info.value)


def test_exposed_private_key_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"pw")
    os.chmod(tmp_path / "r.key", 0o644)
    with caplog.at_level(logging.WARNING, logger="streamdeid.crypto"):
        load_private_key(tmp_path / "r.key", b"pw")
    assert "expected 0600" in caplog.text


def test_fingerprint_is_16_hex_chars_and_tells_keys_apart(tmp_path: Path) -> None:
    a = generate_keypair(tmp_path / "a.key", tmp_path / "a.pub", b"pw")
    b = generate_keypair(tmp_path / "b.key", tmp_path / "b.pub", b"pw")
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(a))
    assert fingerprint(a) == fingerprint(load_public_key(tmp_path / "a.pub"))
    assert fingerprint(a) != fingerprint(b)
