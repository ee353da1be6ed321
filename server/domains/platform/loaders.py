"""Batch loaders of platform rows, tenant-checked."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from server.domains.accounts.models import Role
from server.domains.platform.models import AuditEntry
from server.runtime import Runtime
from server.security.principal import Principal


def owner_orgs(principal: Principal) -> list[uuid.UUID]:
    return [o for o in principal.organization_ids if principal.roles.get(o) == Role.owner]


async def load_audit_entries(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[AuditEntry | None]:
    """Audit entries are visible to owners of their organization."""
    orgs = owner_orgs(principal)
    if not orgs:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(AuditEntry).where(AuditEntry.id.in_(ids),
                                                         AuditEntry.organization_id.in_(orgs)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]
