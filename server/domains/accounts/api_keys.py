"""Personal API keys: created and revoked by their owner only, from a signed-in session.

The token (`insk_...`) is returned once; only its SHA-256 and a visible prefix are stored. A key
may be bound to one organization and, within it, to one project; it can then do what its owner's
role there and its scope both allow (see `Principal`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, select

from server.db.base import utcnow
from server.domains.accounts.models import ApiKey, KeyScope
from server.domains.accounts.validation import clean_required_name, collect
from server.domains.platform import audit
from server.errors import invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal
from server.security.tokens import new_api_key, sha256_hex

NAME_MAX = 100
PREFIX_LENGTH = 12
EXPIRY_DAYS_MAX = 3650


def key_snapshot(key: ApiKey) -> dict:
    """What the audit log keeps of a key: never the token or its hash."""
    return {"name": key.name, "prefix": key.prefix, "scope": key.scope.value,
            "organizationId": str(key.organization_id) if key.organization_id else None,
            "projectId": str(key.project_id) if key.project_id else None,
            "expiresAt": key.expires_at.isoformat() if key.expires_at else None}


def _check_expiry(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= EXPIRY_DAYS_MAX:
        raise invalid(f"expiresInDays must be between 1 and {EXPIRY_DAYS_MAX}", ["input", "expiresInDays"])
    return days


def _check_binding(organization_id: uuid.UUID | None, project_id: uuid.UUID | None) -> None:
    if project_id is not None and organization_id is None:
        raise invalid("a project-bound key must also be bound to the project's organization", ["input", "projectId"])


async def create_api_key(rt: Runtime, principal: Principal, name: str, scope: KeyScope = KeyScope.read,
                         expires_in_days: int | None = None, organization_id: uuid.UUID | None = None,
                         project_id: uuid.UUID | None = None, *, request_id: str | None = None) -> tuple[ApiKey, str]:
    """Returns the key row and its token; the token is never readable again."""
    user_id = principal.require_interactive()
    name, _, _ = collect(lambda: clean_required_name(name, ["input", "name"], NAME_MAX),
                         lambda: _check_expiry(expires_in_days),
                         lambda: _check_binding(organization_id, project_id))
    if organization_id is not None and principal.role_in(organization_id) is None:
        raise not_found("organization", ["input", "organizationId"])
    token = new_api_key()
    now = utcnow()
    key = ApiKey(id=uuid.uuid4(), user_id=user_id, organization_id=organization_id, project_id=project_id,
                 name=name, prefix=token[:PREFIX_LENGTH], key_hash=sha256_hex(token), scope=scope, created_at=now,
                 expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None)
    async with rt.db.unit_of_work() as uow:
        uow.session.add(key)
        audit.record(uow, principal, "api_key.create", organization_id=organization_id, project_id=project_id,
                     target_type="ApiKey", target_id=key.id, summary=f"created API key {name} ({scope.value})",
                     after=key_snapshot(key), request_id=request_id)
    return key, token


async def revoke_api_key(rt: Runtime, principal: Principal, key_id: uuid.UUID, *,
                         request_id: str | None = None) -> ApiKey:
    """Owner only (anyone else's key is NOT_FOUND). Revoking a revoked key changes nothing."""
    user_id = principal.require_interactive()
    async with rt.db.unit_of_work() as uow:
        key = (await uow.session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
                                         .with_for_update())).scalar_one_or_none()
        if key is None:
            raise not_found("API key", ["input", "id"])
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            audit.record(uow, principal, "api_key.revoke", organization_id=key.organization_id,
                         project_id=key.project_id, target_type="ApiKey", target_id=key.id,
                         summary=f"revoked API key {key.name}", before=key_snapshot(key),
                         after={"revokedAt": key.revoked_at.isoformat()}, request_id=request_id)
    return key


def api_keys_query(principal: Principal) -> Select:
    """The caller's own keys, revoked ones included (they show `revokedAt`)."""
    return select(ApiKey).where(ApiKey.user_id == principal.require_user())
