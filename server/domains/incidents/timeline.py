"""The incident timeline: one entry per change, in order. Entries are plain dicts bulk-inserted
with the change they describe (same transaction)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from server.db.engine import UnitOfWork
from server.domains.incidents.models import TimelineEntry


class TimelineKind(str, enum.Enum):
    CREATED = "created"                  # opened by an alert (or by unlinking one)
    ALERT_CORRELATED = "alert_correlated"  # an alert joined: data {alertId, reason, score, detail}
    ALERT_RESOLVED = "alert_resolved"    # one of its alerts resolved at the source
    ALERT_MOVED_IN = "alert_moved_in"    # a user moved an alert here
    ALERT_MOVED_OUT = "alert_moved_out"  # a user moved or unlinked an alert away
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"                # data {automatic: true} when all alerts resolved
    REOPENED = "reopened"
    UPDATED = "updated"                  # data {changes: {field: {from, to}}}
    MERGED = "merged"                    # another incident was merged into this one
    MERGED_INTO = "merged_into"          # this incident was merged into another


class Timeline:
    """Collects the entries of one transaction; `flush` inserts them in one statement, each a
    microsecond after the previous so they keep their order within the same instant."""

    def __init__(self, organization_id: uuid.UUID, now: datetime):
        self.organization_id = organization_id
        self.now = now
        self.rows: list[dict[str, Any]] = []

    def add(self, incident_id: uuid.UUID, kind: TimelineKind, summary: str, *, actor_user_id: uuid.UUID | None = None,
            data: dict | None = None) -> None:
        at = self.now + timedelta(microseconds=len(self.rows))
        self.rows.append({"id": uuid.uuid4(), "organization_id": self.organization_id, "incident_id": incident_id,
                          "kind": kind.value, "actor_user_id": actor_user_id, "summary": summary[:1000],
                          "data": data or {}, "created_at": at, "updated_at": at})

    async def flush(self, uow: UnitOfWork) -> None:
        if self.rows:
            await uow.session.execute(insert(TimelineEntry.__table__), self.rows)
            self.rows = []
