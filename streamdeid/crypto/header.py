"""Creating a sidecar file and its header: recipients checked, content key wrapped for each.

Kept apart from :mod:`~streamdeid.crypto.writer` so that the one-time setup (key agreement,
exclusive creation) does not crowd the per-frame appending.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import SidecarIOError
from streamdeid.crypto.keys import fingerprint


def check_recipients(recipients: list[X25519PublicKey]) -> list[bytes]:
    if not recipients:
        raise ValueError("expected at least one recipient public key, but got none")
    if len(recipients) > 0xFFFF:
        raise ValueError(f"expected at most 65535 recipients, but got {len(recipients)}")
    fingerprints: list[bytes] = []
    for key in recipients:
        if not isinstance(key, X25519PublicKey):
            raise ValueError(f"expected X25519PublicKey recipients, but got {type(key).__name__}")
        fp = bytes.fromhex(fingerprint(key))
        if fp in fingerprints:
            raise ValueError(f"expected distinct recipients, but key {fp.hex()} is given twice")
        fingerprints.append(fp)
    return fingerprints


def build_header(
    recording_id: bytes,
    content_key: bytes,
    recipients: list[X25519PublicKey],
    fingerprints: list[bytes],
) -> bytes:
    """Header with the content key wrapped for each recipient (ephemeral-static X25519)."""
    parts = [fmt.HEADER_FIXED.pack(fmt.MAGIC, fmt.VERSION, recording_id, len(recipients))]
    for public, fp in zip(recipients, fingerprints, strict=True):
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(public)
        except ValueError as e:
            raise ValueError(f"recipient key {fp.hex()} is not a usable X25519 key") from e
        kek = fmt.wrap_key(shared, recording_id, ephemeral_raw, public.public_bytes_raw())
        nonce = os.urandom(fmt.NONCE_SIZE)
        wrapped = AESGCM(kek).encrypt(nonce, content_key, fmt.wrap_aad(recording_id, fp))
        parts.append(fmt.RECIPIENT.pack(fp, ephemeral_raw, nonce, wrapped))
    body = b"".join(parts)
    return body + fmt.header_mac(content_key, recording_id, body)


def create_sidecar(path: Path, overwrite: bool, mode: int = 0o644) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
    except FileExistsError as e:
        raise SidecarIOError(f"refusing to overwrite existing sidecar {path}") from e
    except OSError as e:
        raise SidecarIOError(f"cannot create sidecar {path}: {e.strerror}") from e
    return os.fdopen(fd, "wb")
