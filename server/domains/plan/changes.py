"""The one call every plan mutation makes: `plan_changed(...)`.

It does the two things each plan change owes, in the caller's transaction:
- writes the audit entry (server/domains/platform/audit.py), tagged with the project so the
  project activity feed and `auditLog(filter: {projectId})` find it;
- after commit, publishes on `project:{project_id}:plan` one message per changed entity

      {"entityType": "EventType", "entityId": "<uuid>" | null, "action": "CREATED" | "UPDATED" | "DELETED"}

  for the `planChanged(projectId:)` subscription. A message only says what changed; clients
  refetch what they show. A change of more than MAX_MESSAGES entities (bulk operations) sends one
  message with `entityId: null`: "many of this type changed, refetch the list".

All messages of one call go out in one Redis round trip, after commit (a subscriber never hears
of a row it cannot read yet; a rolled-back change announces nothing). Publishing is best effort,
as everywhere: a lost message costs a client one refresh, never data.
"""

from __future__ import annotations

import enum
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.exceptions import RedisError

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.platform import audit
from server.domains.platform.models import AuditEntry
from server.runtime import Runtime
from server.security.principal import Principal

log = logging.getLogger("insights.plan")

MAX_MESSAGES = 100


class PlanEntity(str, enum.Enum):
    """What changed; the value is the GraphQL type name (so `entityId` is that type's global ID)."""

    PROJECT = "Project"
    EVENT_TYPE = "EventType"
    EVENT_TYPE_OWNER = "EventTypeOwner"
    FIELD = "Field"
    META_FIELD = "MetaField"
    EVENT = "Event"
    VARIABLE = "Variable"
    RELATION = "Relation"
    EVENT_PHOTO = "EventPhoto"
    PHOTO_COMMENT = "PhotoComment"

    @property
    def audit_name(self) -> str:
        """`EventTypeOwner` -> `event_type_owner`: the audit action's prefix."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.value).lower()


class PlanAction(str, enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


_VERBS = {PlanAction.CREATED: "create", PlanAction.UPDATED: "update", PlanAction.DELETED: "delete"}


def plan_channel(project_id: uuid.UUID | str) -> str:
    return f"project:{project_id}:plan"


async def update_recorded(uow: UnitOfWork, rt: Runtime, principal: Principal, row: Any, changes: dict[str, Any],
                          snapshot: Callable[[Any], dict], *, entity: PlanEntity, summary: Callable[[Any], str],
                          project_id: uuid.UUID | None = None, request_id: str | None = None) -> bool:
    """Set `changes` on `row` (a plan entity: organization_id, project_id unless given, updated_at);
    when that changed what `snapshot` shows, bump `updated_at`, flush, and record the update
    (`plan_changed`) with only the changed keys before and after. False, and nothing written or
    recorded, when nothing changed. `summary(row)` describes the row as it now is."""
    before = snapshot(row)
    for key, value in changes.items():
        setattr(row, key, value)
    after = snapshot(row)
    if after == before:
        return False
    row.updated_at = utcnow()
    await uow.session.flush()
    plan_changed(uow, rt, principal, organization_id=row.organization_id, project_id=project_id or row.project_id,
                 entity=entity, action=PlanAction.UPDATED, entity_ids=row.id, summary=summary(row),
                 before={k: v for k, v in before.items() if after[k] != v},
                 after={k: v for k, v in after.items() if before[k] != v}, request_id=request_id)
    return True


def plan_changed(uow: UnitOfWork, rt: Runtime, principal: Principal, *, organization_id: uuid.UUID,
                 project_id: uuid.UUID, entity: PlanEntity, action: PlanAction,
                 entity_ids: uuid.UUID | Iterable[uuid.UUID], summary: str, verb: str | None = None,
                 before: dict | None = None, after: dict | None = None, activity: bool = True,
                 request_id: str | None = None) -> AuditEntry:
    """Audit one plan change and announce it after commit.

    - `entity_ids`: the changed entity (or entities, for bulk operations).
    - Audit action: `{entity.audit_name}.{verb}`, `verb` defaulting to create/update/delete after
      `action` (pass e.g. `verb="bulk_update"`, `"reorder"`, `"move"` for the special ones).
    - `before`/`after`: small snapshots of what changed (large ones are dropped by the audit log).
    - `activity=False` keeps the entry out of the activity feeds (noise such as reorders).
    """
    ids = [entity_ids] if isinstance(entity_ids, uuid.UUID) else list(dict.fromkeys(entity_ids))
    entry = audit.record(uow, principal, f"{entity.audit_name}.{verb or _VERBS[action]}",
                         organization_id=organization_id, project_id=project_id, target_type=entity.value,
                         target_id=ids[0] if len(ids) == 1 else None, summary=summary[:500], before=before,
                         after=after if after is not None or len(ids) <= 1 else {"count": len(ids)},
                         activity=activity, request_id=request_id)
    if len(ids) > MAX_MESSAGES:
        messages = [{"entityType": entity.value, "entityId": None, "action": action.value}]
    else:
        messages = [{"entityType": entity.value, "entityId": str(i), "action": action.value} for i in ids]
    channel = plan_channel(project_id)

    async def send() -> None:
        try:
            async with rt.redis.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(channel, orjson.dumps(message))
                await pipe.execute()
        except (RedisError, OSError) as e:
            log.warning("publishing %d plan changes on %s failed: %s", len(messages), channel, e)

    if messages:
        uow.after_commit(send)
    return entry


__all__ = ["MAX_MESSAGES", "PlanAction", "PlanEntity", "plan_changed", "plan_channel"]
