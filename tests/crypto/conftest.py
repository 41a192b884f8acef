"""Fixtures of the reversible-masking tests: reviewer keys (generated in memory, fast).

Key files written here use a cheap scrypt cost (the module constant is patched for each test,
so it cannot outlive the test); one test in test_crypto_keys.py puts the production cost back.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import keyfile

FAST_COST = keyfile.ScryptCost(log2_n=10, r=8, p=1)


@pytest.fixture(autouse=True)
def _fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyfile, "KDF_COST", FAST_COST)


@pytest.fixture(scope="session")
def alice() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def bob() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def mallory() -> X25519PrivateKey:
    return X25519PrivateKey.generate()
