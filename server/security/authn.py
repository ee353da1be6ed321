"""Turn request credentials (JWT, session cookie, API key) into a `Principal`.

Accepted: `Authorization: Bearer <jwt|insk_key>`, `Authorization: Token <insk_key>`, or the session
cookie. An expired, revoked or unknown credential is an error, never silently anonymous, so a
client learns at once that its token went stale.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from server.db.base import utcnow
from server.db.engine import Database
from server.domains.accounts.models import ApiKey, Membership, Session, User
from server.errors import DomainError, ErrorCode
from server.security.principal import Principal
from server.security.tokens import API_KEY_PREFIX, read_session_jwt, sha256_hex

LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthenticationFailed(DomainError):
    def __init__(self, message: str):
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


def credential_from(authorization: str | None, cookie: str | None) -> tuple[str, str] | None:
    """('key'|'jwt', token) from the Authorization header, else from the cookie."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("bearer", "token") or not token:
            raise AuthenticationFailed("Authorization must be 'Bearer <token>' or 'Token <api key>'")
        return ("key" if token.startswith(API_KEY_PREFIX) else "jwt", token)
    if cookie:
        return ("jwt", cookie)
    return None


async def authenticate(db: Database, signing_key: str, authorization: str | None, cookie: str | None,
                       address: str | None = None) -> Principal:
    cred = credential_from(authorization, cookie)
    if cred is None:
        return Principal(address=address)
    kind, token = cred
    async with db.session() as s:
        now = utcnow()
        if kind == "key":
            key = (await s.execute(select(ApiKey).where(ApiKey.key_hash == sha256_hex(token)))).scalar_one_or_none()
            if key is None or key.revoked_at is not None:
                raise AuthenticationFailed("unknown or revoked API key")
            if key.expires_at is not None and key.expires_at <= now:
                raise AuthenticationFailed("API key expired")
            user = await s.get(User, key.user_id)
            principal = Principal(user_id=key.user_id, email=user.email if user else None, api_key_id=key.id,
                                  scope=key.scope, key_organization_id=key.organization_id,
                                  key_project_id=key.project_id, address=address)
            if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
                await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
                await s.commit()
        else:
            claims = read_session_jwt(signing_key, token)
            if claims is None:
                raise AuthenticationFailed("invalid or expired session token")
            session_id, user_id = claims
            row = (await s.execute(
                select(Session, User.email).join(User, User.id == Session.user_id).where(Session.id == session_id)
            )).one_or_none()
            if row is None or row[0].revoked_at is not None or row[0].expires_at <= now or row[0].user_id != user_id:
                raise AuthenticationFailed("session expired or signed out")
            principal = Principal(user_id=user_id, email=row[1], session_id=session_id, address=address)
        principal.roles = await load_roles(s, principal.user_id)
    return principal


async def load_roles(s, user_id: uuid.UUID) -> dict:  # noqa: ANN001
    rows = await s.execute(select(Membership.organization_id, Membership.role).where(Membership.user_id == user_id))
    return {org: role for org, role in rows}
