"""Fixtures of the reversible-masking tests: reviewer keys (generated in memory, fast)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


@pytest.fixture(scope="session")
def alice() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def bob() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="session")
def mallory() -> X25519PrivateKey:
    return X25519PrivateKey.generate()
