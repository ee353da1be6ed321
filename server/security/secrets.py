"""Secrets that must be read back (webhook HMAC secrets, data source passwords, channel tokens),
encrypted at rest with Fernet under a key derived from the server's secret key."""

from __future__ import annotations

import base64
import hashlib
import functools

from cryptography.fernet import Fernet, InvalidToken


@functools.lru_cache(maxsize=8)
def _fernet(signing_key: str) -> Fernet:
    derived = hashlib.sha256(b"insights-secrets-v1:" + signing_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(signing_key: str, plaintext: str) -> str:
    return _fernet(signing_key).encrypt(plaintext.encode()).decode()


def decrypt_secret(signing_key: str, token: str) -> str | None:
    """The plaintext, or None when the server key changed since it was stored."""
    try:
        return _fernet(signing_key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None
