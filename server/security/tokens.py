"""Session JWTs, opaque random tokens (API keys, invites) and their hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

import jwt

ALGORITHM = "HS256"
API_KEY_PREFIX = "insk_"


def issue_session_jwt(key: str, session_id: uuid.UUID, user_id: uuid.UUID, expires_at: datetime) -> str:
    return jwt.encode({"sid": str(session_id), "sub": str(user_id), "exp": expires_at}, key, algorithm=ALGORITHM)


def read_session_jwt(key: str, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(session id, user id) of a valid, unexpired token; None for anything else."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sid", "sub"]})
        return uuid.UUID(claims["sid"]), uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError, KeyError):
        return None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
