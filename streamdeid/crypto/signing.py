"""Ed25519 signing keys of the operator or site that runs reveals (they sign the audit log).

Stored like reviewer keys: the private half as passphrase-encrypted PKCS#8 PEM created 0600 with
``O_EXCL`` (:func:`~streamdeid.crypto.keys.write_exclusive`), the public half as PEM for whoever
verifies the log (``streamdeid audit --public-key``).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streamdeid.crypto.errors import KeyFileError, WeakPassphraseError, WrongPassphraseError
from streamdeid.crypto.keys import warn_if_exposed, write_exclusive

_MAX_KEY_FILE = 64 * 1024


def generate_signing_key(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str], passphrase: bytes
) -> Ed25519PublicKey:
    """Write NAME.sign.key (encrypted, 0600) and NAME.sign.pub; never overwrites.

    Raises:
        WeakPassphraseError: Empty passphrase.
        KeyFileError: A file exists or cannot be written.
    """
    if not isinstance(passphrase, bytes) or not passphrase:
        raise WeakPassphraseError("passphrase must be non-empty bytes")
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"refusing to overwrite existing key file {path}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_exclusive(private_path, pem, 0o600)
    try:
        write_exclusive(public_path, pub, 0o644)
    except KeyFileError:
        private_path.unlink(missing_ok=True)
        raise
    return key.public_key()


def load_signing_key(path: str | os.PathLike[str], passphrase: bytes | None) -> Ed25519PrivateKey:
    """Read and decrypt a signing key written by :func:`generate_signing_key`.

    Raises:
        KeyFileError: Missing, unreadable, or not an Ed25519 private key.
        WrongPassphraseError: The passphrase does not decrypt it.
    """
    path = Path(path)
    data = _read(path)
    warn_if_exposed(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, passphrase or None)
    except TypeError as e:
        raise WrongPassphraseError(f"signing key {path}: {e}") from None
    except ValueError:
        raise WrongPassphraseError(
            f"could not decrypt signing key {path}: wrong passphrase (or the file is corrupt)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"expected an Ed25519 signing key in {path}, found {type(key).__name__}")
    return key


def load_verify_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a signing public key (NAME.sign.pub).

    Raises:
        KeyFileError: Missing, unreadable, or not an Ed25519 public key.
    """
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError:
        raise KeyFileError(f"expected an Ed25519 public key PEM in {path}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"expected an Ed25519 public key in {path}, found {type(key).__name__}")
    return key


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise KeyFileError(f"expected a small key file at {path}, but it is too large")
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file not found: {path}") from None
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
