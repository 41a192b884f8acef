"""Reviewer key pairs (X25519): a public PEM file and a passphrase-protected private key file.

The anonymizer only ever needs a reviewer's *public* key, so it can run on an untrusted edge box:
whoever steals that box and its sidecars still cannot see a face. The private key stays with the
reviewer, encrypted at rest with a passphrase (scrypt, see :mod:`~streamdeid.crypto.keyfile`),
and is written with restrictive permissions from the first byte (``os.open`` with mode 0600 and
``O_EXCL``), because a ``chmod`` after ``open`` leaves a window in which another user could open
the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from streamdeid.crypto import keyfile
from streamdeid.crypto.errors import KeyFileError, WrongPassphraseError
from streamdeid.crypto.keyfile import check_passphrase

log = logging.getLogger(__name__)

FINGERPRINT_HEX_CHARS = 16
_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_MAX_KEY_FILE = 64 * 1024  # a PEM key is < 1 KiB; refuse to slurp a video by mistake


def fingerprint(public_key: X25519PublicKey) -> str:
    """Short, stable name of a public key: first 16 hex chars of SHA-256 of its raw 32 bytes.

    64 bits is plenty to tell a handful of reviewers apart and to pick the right header entry; it
    is not a security boundary (unwrapping the content key is what proves the key is right).
    """
    digest = hashlib.sha256(public_key.public_bytes_raw()).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


def generate_keypair(
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str],
    passphrase: bytes,
) -> X25519PublicKey:
    """Create a reviewer key pair: encrypted private key file (mode 0600) and public PEM.

    Existing files are never overwritten: losing a private key makes every sidecar encrypted to it
    unreadable forever, so a typo in a path must not destroy one.

    Args:
        private_path: Where to write the private key (scrypt + AES-GCM, see
            :mod:`~streamdeid.crypto.keyfile`).
        public_path: Where to write the public key (SubjectPublicKeyInfo PEM) for the anonymizer.
        passphrase: At least 12 characters (UTF-8) protecting the private key at rest.

    Returns:
        The new public key (its :func:`fingerprint` is logged).

    Raises:
        WeakPassphraseError: ``passphrase`` is shorter than 12 characters or not bytes.
        KeyFileError: Either file already exists or cannot be written.
    """
    check_passphrase(passphrase)
    private_path, public_path = Path(private_path), Path(public_path)
    key = X25519PrivateKey.generate()
    _write_pair(key, private_path, public_path, passphrase)
    log.info("generated key pair %s (fingerprint %s)", public_path, fingerprint(key.public_key()))
    return key.public_key()


def load_public_key(path: str | os.PathLike[str]) -> X25519PublicKey:
    """Read a reviewer's public key PEM.

    Raises:
        KeyFileError: Missing or unreadable file, not PEM, or not an X25519 public key.
    """
    data = _read_key_file(Path(path))
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise KeyFileError(
            f"expected an X25519 public key PEM in {path}, but it does not parse as one"
        ) from e
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(
            f"expected an X25519 public key in {path}, but found {type(key).__name__}"
        )
    return key


def load_private_key(path: str | os.PathLike[str], passphrase: bytes | None) -> X25519PrivateKey:
    """Read and decrypt a reviewer's private key file.

    Files written by :func:`generate_keypair` (scrypt) are read, and so are the PKCS#8 PEM files of
    earlier versions (PBKDF2 with 2048 iterations): those load with a warning naming the command
    that re-protects them, since their passphrase can be guessed ~1,800 times a second per core.

    Args:
        path: Key file written by :func:`generate_keypair` or an earlier version.
        passphrase: The passphrase it was encrypted with (None only for an unencrypted PEM).

    Raises:
        KeyFileError: Missing, unreadable or malformed file, a cost out of bounds, or not X25519.
        WrongPassphraseError: The passphrase does not decrypt the key (or none was given).
    """
    path = Path(path)
    data = _read_key_file(path)
    warn_if_exposed(path, "private key")
    if keyfile.is_sealed(data):
        cost = keyfile.read_cost(data, path)
        if not passphrase:
            raise WrongPassphraseError(
                f"private key {path} is encrypted, but no passphrase was given"
            )
        key = X25519PrivateKey.from_private_bytes(keyfile.unseal(data, passphrase, path))
        if cost.memory < keyfile.KDF_COST.memory:
            _warn_weak(path, f"scrypt with n = 2^{cost.log2_n}, r = {cost.r}")
        return key
    return _load_legacy_pem(path, data, passphrase)


def rewrap_private_key(
    old_path: str | os.PathLike[str],
    old_passphrase: bytes | None,
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str],
    passphrase: bytes,
) -> X25519PublicKey:
    """Re-protect an existing private key in the current format, as a new pair of files.

    The old file is left alone (deleting it is the reviewer's decision, once the new one opens);
    the key itself, and so every sidecar encrypted to it, stays the same.

    Raises:
        WeakPassphraseError: ``passphrase`` is shorter than 12 characters or not bytes.
        WrongPassphraseError: ``old_passphrase`` does not open ``old_path``.
        KeyFileError: ``old_path`` cannot be read, or a new file exists or cannot be written.
    """
    check_passphrase(passphrase)
    key = load_private_key(old_path, old_passphrase)
    _write_pair(key, Path(private_path), Path(public_path), passphrase)
    log.info("re-protected %s as %s", old_path, private_path)
    return key.public_key()


def _write_pair(
    key: X25519PrivateKey, private_path: Path, public_path: Path, passphrase: bytes
) -> None:
    if private_path.resolve() == public_path.resolve():
        raise KeyFileError(f"private and public key paths must differ, but both are {private_path}")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"refusing to overwrite existing key file {path}")
    private_file = keyfile.seal(key.private_bytes_raw(), passphrase)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_exclusive(private_path, private_file, 0o600)
    try:
        write_exclusive(public_path, public_pem, 0o644)
    except KeyFileError:
        # Without its public half the private key is useless to the user and only confusing.
        private_path.unlink(missing_ok=True)
        raise


def _warn_weak(path: Path, how: str) -> None:
    log.warning(
        "private key %s is protected by %s, which is weak against passphrase guessing; "
        "re-protect it: streamdeid keygen NEW --rewrap %s (then use NEW.key)",
        path,
        how,
        path,
    )


def _load_legacy_pem(path: Path, data: bytes, passphrase: bytes | None) -> X25519PrivateKey:
    """PKCS#8 PEM as written before the scrypt format (or unencrypted)."""
    encrypted = _ENCRYPTED_PEM in data
    if encrypted and not passphrase:
        raise WrongPassphraseError(f"private key {path} is encrypted, but no passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError as e:
        if encrypted:
            # OpenSSL cannot tell a wrong passphrase from a corrupted ciphertext; the former is
            # far more common, so name it first.
            raise WrongPassphraseError(
                f"could not decrypt private key {path}: wrong passphrase (or the file is corrupt)"
            ) from e
        raise KeyFileError(
            f"expected an X25519 private key PEM in {path}, but it does not parse as one"
        ) from e
    except TypeError as e:
        raise KeyFileError(f"could not load private key {path}: {e}") from e
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(
            f"expected an X25519 private key in {path}, but found {type(key).__name__}"
        )
    _warn_weak(path, "PBKDF2 (PKCS#8 PEM)" if encrypted else "nothing (unencrypted PEM)")
    return key


def write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start and write ``data``; never overwrite.

    ``O_EXCL`` also refuses a pre-planted symlink, so an attacker cannot redirect the secret.
    Used for private keys and grants, which must never exist even briefly with wider permissions.

    Raises:
        KeyFileError: The file exists or cannot be created or written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as e:
        raise KeyFileError(f"refusing to overwrite existing file {path}") from e
    except OSError as e:
        raise KeyFileError(f"cannot create {path}: {e.strerror}") from e
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits; it can never have added any
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {path}: {e.strerror}") from e


def _read_key_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > _MAX_KEY_FILE:
            raise KeyFileError(
                f"expected a key file of at most {_MAX_KEY_FILE} bytes at {path}, but it has {size}"
            )
        return path.read_bytes()
    except FileNotFoundError as e:
        raise KeyFileError(f"key file not found: {path}") from e
    except IsADirectoryError as e:
        raise KeyFileError(f"expected a key file at {path}, but found a directory") from e
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from e


def warn_if_exposed(path: Path, what: str) -> None:
    """Warn (like ssh does) when a secret file is readable by group or others.

    A warning, not an error: the file may sit on a file system without Unix permissions, and
    refusing to open it would lock the reviewer out of their own recordings.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s %s has mode %o; expected 0600 (readable by its owner only)", what, path, mode
        )
