from __future__ import annotations

import base64
import logging
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import (
    CryptoError,
    KeyFileError,
    WeakPassphraseError,
    WrongPassphraseError,
    fingerprint,
    generate_keypair,
    keyfile,
    load_private_key,
    load_public_key,
    rewrap_private_key,
)
from streamdeid.errors import StreamDeidError

PASS = b"correct horse battery"
PRODUCTION_COST = keyfile.KDF_COST  # read at import, before the conftest fixture lowers it


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_and_load_round_trip(tmp_path: Path) -> None:
    pub = generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    priv = load_private_key(tmp_path / "r.key", PASS)
    loaded_pub = load_public_key(tmp_path / "r.pub")
    assert priv.public_key().public_bytes_raw() == pub.public_bytes_raw()
    assert loaded_pub.public_bytes_raw() == pub.public_bytes_raw()
    assert b"BEGIN STREAMDEID PRIVATE KEY" in (tmp_path / "r.key").read_bytes()


def test_private_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "r.key") == 0o600
    assert _mode(tmp_path / "r.pub") == 0o644


@pytest.mark.parametrize("existing", ["r.key", "r.pub"])
def test_refuses_to_overwrite_either_file(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="overwrite"):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    assert (tmp_path / existing).read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


def test_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        load_private_key(tmp_path / "r.key", b"wrong")
    with pytest.raises(WrongPassphraseError, match="no passphrase"):
        load_private_key(tmp_path / "r.key", None)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphraseError, match="at least 12 characters"):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"")
    assert not list(tmp_path.iterdir())


def test_bad_key_files_give_key_file_errors(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
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
        (lambda p: load_private_key(p, PASS), tmp_path / "missing.key", "not found"),
        (lambda p: load_private_key(p, PASS), tmp_path / "garbage", "does not parse"),
        (lambda p: load_private_key(p, PASS), tmp_path / "r.pub", "does not parse"),
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
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    os.chmod(tmp_path / "r.key", 0o644)
    with caplog.at_level(logging.WARNING, logger="streamdeid.crypto"):
        load_private_key(tmp_path / "r.key", PASS)
    assert "expected 0600" in caplog.text


def test_fingerprint_is_16_hex_chars_and_tells_keys_apart(tmp_path: Path) -> None:
    a = generate_keypair(tmp_path / "a.key", tmp_path / "a.pub", PASS)
    b = generate_keypair(tmp_path / "b.key", tmp_path / "b.pub", PASS)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(a))
    assert fingerprint(a) == fingerprint(load_public_key(tmp_path / "a.pub"))
    assert fingerprint(a) != fingerprint(b)


def _key_file_header(path: Path) -> tuple:
    """The fields of a key file's header, decoded from the documented layout."""
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == keyfile.BEGIN and lines[-2] == keyfile.END
    body = base64.b64decode(b"".join(lines[1:-2]))
    return keyfile.HEADER.unpack_from(body)


def test_new_key_file_uses_scrypt_at_the_production_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(keyfile, "KDF_COST", PRODUCTION_COST)
    assert PRODUCTION_COST.log2_n >= 17 and PRODUCTION_COST.memory >= 128 << 20
    pub = generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    magic, version, kdf, log2_n, r, p, salt, _ = _key_file_header(tmp_path / "r.key")
    assert (magic, version, kdf) == (b"SDEIDKEY", 1, keyfile.KDF_SCRYPT)
    assert (log2_n, r, p) == (17, 8, 1)
    assert salt != bytes(16)
    with caplog.at_level(logging.WARNING, logger="streamdeid.crypto"):
        priv = load_private_key(tmp_path / "r.key", PASS)
    assert priv.public_key().public_bytes_raw() == pub.public_bytes_raw()
    assert "weak" not in caplog.text
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        load_private_key(tmp_path / "r.key", PASS + b"!")


@pytest.mark.parametrize("passphrase", [b"a", b"eleven char"])
def test_short_passphrase_is_refused_with_the_rule(tmp_path: Path, passphrase: bytes) -> None:
    with pytest.raises(WeakPassphraseError, match="at least 12 characters") as info:
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", passphrase)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"twelve chars")


def test_passphrase_length_counts_characters_not_bytes(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphraseError, match="has 6"):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", "ééééé!".encode())


def _legacy_key_file(path: Path, passphrase: bytes) -> X25519PrivateKey:
    """A private key as earlier versions wrote it: PKCS#8 PEM, PBKDF2 + AES-CBC."""
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def test_old_pbkdf2_key_file_still_loads_and_says_it_is_weak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = _legacy_key_file(tmp_path / "old.key", b"a")
    with caplog.at_level(logging.WARNING, logger="streamdeid.crypto"):
        key = load_private_key(tmp_path / "old.key", b"a")
    assert key.private_bytes_raw() == old.private_bytes_raw()
    assert "weak" in caplog.text and f"--rewrap {tmp_path / 'old.key'}" in caplog.text
    assert "'a'" not in caplog.text and "b'a'" not in caplog.text
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        load_private_key(tmp_path / "old.key", b"b")


def test_rewrap_keeps_the_key_and_protects_it_with_scrypt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = _legacy_key_file(tmp_path / "old.key", b"a")
    with pytest.raises(WeakPassphraseError):
        rewrap_private_key(tmp_path / "old.key", b"a", tmp_path / "n.key", tmp_path / "n.pub", b"a")
    pub = rewrap_private_key(
        tmp_path / "old.key", b"a", tmp_path / "n.key", tmp_path / "n.pub", PASS
    )
    assert pub.public_bytes_raw() == old.public_key().public_bytes_raw()
    assert _key_file_header(tmp_path / "n.key")[2] == keyfile.KDF_SCRYPT
    assert _mode(tmp_path / "n.key") == 0o600
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="streamdeid.crypto"):
        new = load_private_key(tmp_path / "n.key", PASS)
    assert new.private_bytes_raw() == old.private_bytes_raw() and "weak" not in caplog.text
    assert load_public_key(tmp_path / "n.pub").public_bytes_raw() == pub.public_bytes_raw()


def _edit_header(path: Path, **fields: int | bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    body = bytearray(base64.b64decode(b"".join(lines[1:-2])))
    names = ["magic", "version", "kdf", "log2_n", "r", "p", "salt", "nonce"]
    values = dict(zip(names, keyfile.HEADER.unpack_from(body), strict=True)) | fields
    body[: keyfile.HEADER.size] = keyfile.HEADER.pack(*values.values())
    path.write_bytes(b"\n".join([lines[0], base64.b64encode(bytes(body)), lines[-2], b""]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"log2_n": 30}, "n = 2\\^30"),
        ({"r": 200}, "r = 200"),
        ({"p": 255}, "p = 255"),
        ({"log2_n": 20, "r": 16}, "memory <= 1024 MiB"),
        ({"kdf": 9}, "KDF 9"),
        ({"version": 2}, "version 2"),
    ],
)
def test_key_file_cost_is_bounded_before_any_derivation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict, message: str
) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    _edit_header(tmp_path / "r.key", **fields)

    def no_derivation(*_: object) -> bytes:
        raise AssertionError("the KDF ran on unchecked parameters")

    monkeypatch.setattr(keyfile, "_derive", no_derivation)
    with pytest.raises(KeyFileError, match=message) as info:
        load_private_key(tmp_path / "r.key", PASS)
    assert "\n" not in str(info.value)


def test_edited_salt_or_cost_fails_like_a_wrong_passphrase(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", PASS)
    original = (tmp_path / "r.key").read_bytes()
    for fields in ({"salt": bytes(16)}, {"log2_n": 11}):
        (tmp_path / "r.key").write_bytes(original)
        _edit_header(tmp_path / "r.key", **fields)
        with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
            load_private_key(tmp_path / "r.key", PASS)


def test_malformed_key_file_bodies(tmp_path: Path) -> None:
    path = tmp_path / "r.key"
    for body, message in [
        (b"!!not base64!!", "does not decode"),
        (base64.b64encode(b"short"), "found 5"),
    ]:
        path.write_bytes(b"\n".join([keyfile.BEGIN, body, keyfile.END, b""]))
        path.chmod(0o600)
        with pytest.raises(KeyFileError, match=message):
            load_private_key(path, PASS)


def test_cli_keygen_rewrap_and_short_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamdeid.cli import main

    monkeypatch.delenv("STREAMDEID_PASSPHRASE", raising=False)
    old = _legacy_key_file(tmp_path / "old.key", b"a")
    (tmp_path / "old.pass").write_bytes(b"a\n")
    (tmp_path / "short.pass").write_bytes(b"short\n")
    (tmp_path / "new.pass").write_bytes(PASS + b"\n")
    new = str(tmp_path / "new")
    rewrap = ["keygen", new, "--rewrap", str(tmp_path / "old.key")]
    rewrap += ["--old-passphrase-file", str(tmp_path / "old.pass")]
    assert main([*rewrap, "--passphrase-file", str(tmp_path / "short.pass")]) == 1
    err = capsys.readouterr().err
    assert "at least 12 characters" in err and "Traceback" not in err
    assert not (tmp_path / "new.key").exists()
    assert main([*rewrap, "--passphrase-file", str(tmp_path / "new.pass")]) == 0
    key = load_private_key(tmp_path / "new.key", PASS)
    assert key.private_bytes_raw() == old.private_bytes_raw()
    assert _key_file_header(tmp_path / "new.key")[2] == keyfile.KDF_SCRYPT
