"""Audit entries and activity items."""

from __future__ import annotations

from datetime import datetime

import uuid

import strawberry

from graph.accounts.types import User
from graph.core.node import Node, load_one, to_global_id
from server.domains.accounts.loaders import load_users
from graph.core.scalars import JSON
from server.domains.platform.models import AuditEntry as AuditRow

MISSING = object()  # prefetched, and not visible to the caller


@strawberry.type(description="One recorded change: who did what to which object, when.")
class AuditEntry(Node):
    action: str
    actor_email: str | None
    actor_id: strawberry.ID | None
    api_key_id: strawberry.ID | None
    target_type: str | None
    target_id: str | None
    project_id: strawberry.ID | None
    summary: str | None
    before: JSON | None
    after: JSON | None
    request_id: str | None
    created_at: datetime
    actor_row_id: strawberry.Private[uuid.UUID | None]
    prefetched_actor: strawberry.Private[object] = None

    @strawberry.field(description="Who made the change; null once they no longer share an organization with you.")
    def actor(self, info: strawberry.Info) -> User | None:
        # Synchronous when the list resolver prefetched it (graph.core.selection), else batched.
        if self.actor_row_id is None:
            return None
        if self.prefetched_actor is not None:
            return self.prefetched_actor if isinstance(self.prefetched_actor, User) else None
        return load_one(info, load_users, User, self.actor_row_id)

    @classmethod
    async def prefetch_actors(cls, info: strawberry.Info, entries: list["AuditEntry"]) -> None:
        """Load every entry's actor in one batch (see graph.core.selection)."""
        ids = list({e.actor_row_id for e in entries if e.actor_row_id})
        rows = await info.context.loader(load_users).load_many(ids)
        users = {i: User.from_row(r) for i, r in zip(ids, rows) if r}
        for e in entries:
            if e.actor_row_id:
                e.prefetched_actor = users.get(e.actor_row_id, MISSING)

    @classmethod
    def from_row(cls, r: AuditRow) -> "AuditEntry":
        return cls(id=to_global_id("AuditEntry", r.id), action=r.action, actor_email=r.actor_email,
                   actor_row_id=r.actor_user_id,
                   actor_id=to_global_id("User", r.actor_user_id) if r.actor_user_id else None,
                   api_key_id=to_global_id("ApiKey", r.actor_api_key_id) if r.actor_api_key_id else None,
                   target_type=r.target_type, target_id=r.target_id,
                   project_id=to_global_id("Project", r.project_id) if r.project_id else None,
                   summary=r.summary, before=r.before, after=r.after, request_id=r.request_id,
                   created_at=r.created_at)


@strawberry.type(description="A change shown in an organization's or project's activity feed.")
class ActivityItem:
    id: strawberry.ID
    action: str
    actor_email: str | None
    summary: str | None
    target_type: str | None
    target_id: str | None
    project_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def from_row(cls, r: AuditRow) -> "ActivityItem":
        return cls(id=to_global_id("AuditEntry", r.id), action=r.action, actor_email=r.actor_email,
                   summary=r.summary, target_type=r.target_type, target_id=r.target_id,
                   project_id=to_global_id("Project", r.project_id) if r.project_id else None,
                   created_at=r.created_at)
