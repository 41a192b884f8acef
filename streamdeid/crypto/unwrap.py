"""Recovering a sidecar's content key with a reviewer's private key, and authenticating the header.

The writer wrapped the content key once per recipient (ephemeral-static X25519, see
:mod:`streamdeid.crypto.format`). Unwrapping is the only step that touches a private key, so it
is kept apart from parsing and record verification; the key and the content key are never logged.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid.crypto import format as fmt
from streamdeid.crypto.errors import TamperedError, WrongKeyError
from streamdeid.crypto.keys import fingerprint
from streamdeid.crypto.parse import Recipient, SidecarHeader


def unwrap_content_key(path: Path, header: SidecarHeader, private_key: X25519PrivateKey) -> bytes:
    """Return the content key of the sidecar at ``path`` once its header authenticates.

    Raises:
        TypeError: ``private_key`` is not an X25519 private key.
        WrongKeyError: The key is not one of the recipients.
        TamperedError: The key's header entry or the header MAC does not verify.
    """
    if not isinstance(private_key, X25519PrivateKey):
        raise TypeError(f"expected an X25519PrivateKey, but got {type(private_key).__name__}")
    public = private_key.public_key()
    public_raw = public.public_bytes_raw()
    fp_hex = fingerprint(public)
    fp = bytes.fromhex(fp_hex)
    matching = [r for r in header.recipients if r.fingerprint == fp]
    # Also try the other entries: if our entry's fingerprint field was altered the unwrap still
    # succeeds (the AAD uses the real fingerprint), which proves tampering rather than blaming
    # the reviewer's key.
    others = [r for r in header.recipients if r.fingerprint != fp]
    for entry in matching + others:
        content_key = _unwrap(private_key, public_raw, fp, header.recording_id, entry)
        if content_key is not None:
            break
    else:
        if matching:
            raise TamperedError(
                f"sidecar {path}: the header entry for key {fp_hex} failed "
                "authentication: the header was modified"
            )
        listed = ", ".join(r.fingerprint.hex() for r in header.recipients)
        raise WrongKeyError(
            f"expected a private key for one of {listed} to unlock "
            f"sidecar {path}, but got key {fp_hex}"
        )
    if entry.fingerprint != fp:
        raise TamperedError(
            f"sidecar {path}: the header entry for key {fp_hex} names fingerprint "
            f"{entry.fingerprint.hex()}: the header was modified"
        )
    _check_header_mac(path, header, content_key)
    return content_key


def _check_header_mac(path: Path, header: SidecarHeader, content_key: bytes) -> None:
    body, mac = header.raw[: -fmt.HEADER_MAC_SIZE], header.raw[-fmt.HEADER_MAC_SIZE :]
    if not hmac.compare_digest(fmt.header_mac(content_key, header.recording_id, body), mac):
        raise TamperedError(
            f"sidecar {path}: the header failed authentication: its recipient list "
            "or recording id was modified"
        )


def _unwrap(
    private_key: X25519PrivateKey,
    public_raw: bytes,
    fp: bytes,
    recording_id: bytes,
    entry: Recipient,
) -> bytes | None:
    """The content key if ``entry`` was wrapped for ``private_key``, else None."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(entry.ephemeral))
    except ValueError:  # low-order point: only a forged header contains one
        return None
    kek = fmt.wrap_key(shared, recording_id, entry.ephemeral, public_raw)
    try:
        return AESGCM(kek).decrypt(entry.nonce, entry.wrapped, fmt.wrap_aad(recording_id, fp))
    except InvalidTag:
        return None
