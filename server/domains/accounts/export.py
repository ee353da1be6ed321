"""The accounts part of an organization export (called by the platform export job).

Plain JSON-ready values only, and nothing secret: no password hashes, invite tokens or API key
hashes. API keys included: those bound to the organization, plus its members' unbound keys
(which can act in it).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select

from server.domains.accounts.invites import invite_status
from server.domains.accounts.models import ApiKey, Invite, Membership, Organization, User
from server.errors import not_found
from server.runtime import Runtime


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_organization(rt: Runtime, organization_id: uuid.UUID) -> dict:
    async with rt.db.session() as s:
        org = await s.get(Organization, organization_id)
        if org is None:
            raise not_found("organization")
        members = (await s.execute(
            select(Membership, User).join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id).order_by(Membership.created_at, Membership.id))).all()
        invites = (await s.execute(select(Invite).where(Invite.organization_id == organization_id)
                                   .order_by(Invite.created_at, Invite.id))).scalars().all()
        member_ids = select(Membership.user_id).where(Membership.organization_id == organization_id)
        keys = (await s.execute(
            select(ApiKey, User.email).join(User, User.id == ApiKey.user_id).where(or_(
                ApiKey.organization_id == organization_id,
                and_(ApiKey.organization_id.is_(None), ApiKey.user_id.in_(member_ids)),
            )).order_by(ApiKey.created_at, ApiKey.id))).all()
    return {
        "organization": {"id": str(org.id), "name": org.name, "createdAt": _iso(org.created_at)},
        "members": [{"email": u.email, "name": u.name, "role": m.role.value, "joinedAt": _iso(m.created_at)}
                    for m, u in members],
        "invites": [{"email": i.email, "role": i.role.value, "status": invite_status(i).value,
                     "createdAt": _iso(i.created_at), "expiresAt": _iso(i.expires_at),
                     "acceptedAt": _iso(i.accepted_at)} for i in invites],
        "apiKeys": [{"name": k.name, "prefix": k.prefix, "scope": k.scope.value, "ownerEmail": email,
                     "organizationBound": k.organization_id is not None,
                     "projectId": str(k.project_id) if k.project_id else None,
                     "createdAt": _iso(k.created_at), "expiresAt": _iso(k.expires_at),
                     "lastUsedAt": _iso(k.last_used_at), "revokedAt": _iso(k.revoked_at)} for k, email in keys],
    }
