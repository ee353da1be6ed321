"""The audit log (every mutation) and the activity feed (the entries worth showing people)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from server.db.engine import UnitOfWork
from server.domains.platform.models import AuditEntry
from server.security.principal import Principal

SMALL = 2000  # before/after snapshots larger than this (as text) are not kept


def _small(value: dict | None) -> dict | None:
    if value is None:
        return None
    return value if len(repr(value)) <= SMALL else {"truncated": True}


def record(uow: UnitOfWork, principal: Principal, action: str, *, organization_id: uuid.UUID | None = None,
           project_id: uuid.UUID | None = None, target_type: str | None = None, target_id: Any = None,
           summary: str | None = None, before: dict | None = None, after: dict | None = None,
           activity: bool = True, request_id: str | None = None) -> AuditEntry:
    """Add an audit entry to the same transaction as the change it describes."""
    entry = AuditEntry(
        organization_id=organization_id, project_id=project_id, actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id, actor_email=principal.email, action=action,
        target_type=target_type, target_id=str(target_id) if target_id is not None else None,
        summary=summary, in_activity=activity, before=_small(before), after=_small(after), request_id=request_id,
    )
    uow.session.add(entry)
    return entry


def audit_query(principal: Principal, organization_id: uuid.UUID, *, action: str | None = None,
                user_email: str | None = None, project_id: uuid.UUID | None = None,
                since: datetime | None = None, until: datetime | None = None, activity_only: bool = False) -> Select:
    q = select(AuditEntry).where(AuditEntry.organization_id == organization_id)
    if principal.key_project_id is not None:
        q = q.where(AuditEntry.project_id == principal.key_project_id)
    if action:
        q = q.where(AuditEntry.action.startswith(action)) if action.endswith(".") else q.where(AuditEntry.action == action)
    if user_email:
        q = q.where(AuditEntry.actor_email.ilike(user_email))
    if project_id:
        q = q.where(AuditEntry.project_id == project_id)
    if since:
        q = q.where(AuditEntry.created_at >= since)
    if until:
        q = q.where(AuditEntry.created_at < until)
    if activity_only:
        q = q.where(AuditEntry.in_activity.is_(True))
    return q


def entry_dict(e: AuditEntry) -> dict:
    return {"id": str(e.id), "action": e.action, "actorEmail": e.actor_email, "targetType": e.target_type,
            "targetId": e.target_id, "summary": e.summary, "before": e.before, "after": e.after,
            "projectId": str(e.project_id) if e.project_id else None, "createdAt": e.created_at.isoformat()}
