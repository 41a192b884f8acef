"""The passphrase-protected private key file: scrypt + AES-256-GCM over the raw X25519 key.

PKCS#8 PEM as written by ``cryptography`` uses PBKDF2-HMAC-SHA256 with 2048 iterations: about
1,800 passphrase guesses per second per core, so a stolen key file with a short passphrase falls
in hours. This format derives the key with scrypt, which is memory-hard (128 MiB per guess at the
default cost), so guessing on GPUs and ASICs gains little over a CPU. scrypt rather than Argon2id
because ``cryptography`` only has Argon2id from version 44 and only with some OpenSSL builds; the
KDF id in the header leaves room for it.

The file is armored like PEM::

    -----BEGIN STREAMDEID PRIVATE KEY-----
    base64 of: header | AES-256-GCM(raw 32-byte private key) with the header as associated data
    -----END STREAMDEID PRIVATE KEY-----

    header = magic "SDEIDKEY" | version u16 | kdf id u8 (1 = scrypt) | log2(n) u8 | r u8 | p u8
             | salt (16) | nonce (12)                                   (integers big-endian)

The header is authenticated, so a changed cost or salt fails like a wrong passphrase. Its cost
fields are still read before anything is authenticated, so they are bounded first: a forged file
must not make the reader allocate gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from streamdeid.crypto.errors import KeyFileError, WeakPassphraseError, WrongPassphraseError

BEGIN = b"-----BEGIN STREAMDEID PRIVATE KEY-----"
END = b"-----END STREAMDEID PRIVATE KEY-----"
MAGIC = b"SDEIDKEY"
VERSION = 1
KDF_SCRYPT = 1
HEADER = struct.Struct(">8sHBBBB16s12s")
RAW_KEY_SIZE = 32
BODY_SIZE = HEADER.size + RAW_KEY_SIZE + 16  # header, ciphertext, GCM tag

MIN_PASSPHRASE_CHARS = 12


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt parameters: n = 2**log2_n, block size r, parallelism p (memory 128 * r * n)."""

    log2_n: int
    r: int
    p: int

    @property
    def memory(self) -> int:
        return 128 * self.r * (1 << self.log2_n)


# What new files get: 128 MiB and ~0.4 s per derivation on one core. Tests lower it by
# monkeypatching this constant; nothing else (no environment variable, no flag) can.
KDF_COST = ScryptCost(log2_n=17, r=8, p=1)
# What a file may ask of the reader before it is authenticated: 1 GiB, 16 lanes.
MAX_LOG2_N = 20
MAX_R = 32
MAX_P = 16
MAX_MEMORY = 1 << 30


def check_passphrase(passphrase: object) -> bytes:
    """Return ``passphrase`` if it may protect a new key file.

    Raises:
        WeakPassphraseError: Not bytes, or fewer than :data:`MIN_PASSPHRASE_CHARS` characters.
    """
    if not isinstance(passphrase, bytes):
        raise WeakPassphraseError(
            f"expected the passphrase as bytes, but got {type(passphrase).__name__}"
        )
    chars = len(passphrase.decode("utf-8", errors="replace"))
    if chars < MIN_PASSPHRASE_CHARS:
        raise WeakPassphraseError(
            f"a key passphrase needs at least {MIN_PASSPHRASE_CHARS} characters, "
            f"but this one has {chars}"
        )
    return passphrase


def seal(raw_key: bytes, passphrase: bytes) -> bytes:
    """The armored key file protecting ``raw_key`` with ``passphrase`` at :data:`KDF_COST`."""
    cost = KDF_COST
    header = HEADER.pack(
        MAGIC, VERSION, KDF_SCRYPT, cost.log2_n, cost.r, cost.p, os.urandom(16), os.urandom(12)
    )
    salt, nonce = header[-28:-12], header[-12:]
    body = header + AESGCM(_derive(passphrase, salt, cost)).encrypt(nonce, raw_key, header)
    lines = [base64.b64encode(body[i : i + 48]) for i in range(0, len(body), 48)]
    return b"\n".join([BEGIN, *lines, END]) + b"\n"


def is_sealed(data: bytes) -> bool:
    return BEGIN in data


def read_cost(data: bytes, where: object) -> ScryptCost:
    """The KDF cost a key file asks for, after checking it is within the reader's bounds.

    Raises:
        KeyFileError: Not this format, an unknown version or KDF, or a cost out of bounds.
    """
    return _parse(data, where)[1]


def unseal(data: bytes, passphrase: bytes, where: object) -> bytes:
    """The raw private key in the armored file ``data`` (``where`` names it in errors).

    Raises:
        KeyFileError: Malformed file, unknown version or KDF, or a cost beyond the bounds.
        WrongPassphraseError: The passphrase does not open it (or the file was modified).
    """
    body, cost = _parse(data, where)
    header, ciphertext = body[: HEADER.size], body[HEADER.size :]
    salt, nonce = header[-28:-12], header[-12:]
    try:
        return AESGCM(_derive(passphrase, salt, cost)).decrypt(nonce, ciphertext, header)
    except InvalidTag:
        raise WrongPassphraseError(
            f"could not decrypt private key {where}: wrong passphrase (or the file was modified)"
        ) from None


def _parse(data: bytes, where: object) -> tuple[bytes, ScryptCost]:
    start, stop = data.find(BEGIN), data.find(END)
    if start < 0 or stop < start:
        raise KeyFileError(f"expected a streamdeid private key in {where}, but found no armor")
    try:
        body = base64.b64decode(b"".join(data[start + len(BEGIN) : stop].split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(
            f"expected base64 between the armor lines of {where}, but it does not decode"
        ) from None
    if len(body) != BODY_SIZE:
        raise KeyFileError(
            f"expected a {BODY_SIZE}-byte private key body in {where}, but found {len(body)}"
        )
    magic, version, kdf, log2_n, r, p, _, _ = HEADER.unpack_from(body)
    if magic != MAGIC or version != VERSION or kdf != KDF_SCRYPT:
        raise KeyFileError(
            f"expected a version {VERSION} scrypt key file in {where}, but found magic "
            f"{magic!r}, version {version}, KDF {kdf}"
        )
    cost = ScryptCost(log2_n, r, p)
    if not (
        1 <= log2_n <= MAX_LOG2_N
        and 1 <= r <= MAX_R
        and 1 <= p <= MAX_P
        and cost.memory <= MAX_MEMORY
    ):
        raise KeyFileError(
            f"expected scrypt cost within n <= 2^{MAX_LOG2_N}, r <= {MAX_R}, p <= {MAX_P}, "
            f"memory <= {MAX_MEMORY >> 20} MiB in {where}, but found n = 2^{log2_n}, r = {r}, "
            f"p = {p}"
        )
    return body, cost


def _derive(passphrase: bytes, salt: bytes, cost: ScryptCost) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=1 << cost.log2_n, r=cost.r, p=cost.p)
    return kdf.derive(passphrase)
