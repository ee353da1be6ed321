"""Event types of a project (seed 003, tags `event-types` and `event-type-owners`): create (with
field definitions), update, delete (refused while the type has events unless `cascade`), the
owners of a type, and the queries and list loader behind `eventTypes(projectId:)` and
`EventType.owners`.

Rules (VALIDATION user errors naming the input field; duplicates are CONFLICT):
- name 1..100 characters (trimmed), unique in the project ignoring case, fixed once created;
- display name 1..255 characters (trimmed); description free text ("" by default);
- color `#rrggbb` (COLOR_PATTERN), `#6366f1` by default;
- order: where the type goes; absent, it goes after the project's last type;
- field definitions follow the rules of server/domains/plan/fields.py, their errors naming
  `input.fields.<index>.<field>`.

Editors change event types; owners of the organization add and remove event-type owners, who
must be members of the organization. Every change is audited and announced (changes.plan_changed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.accounts.organizations import current_role
from server.domains.plan.access import changeable_project, readable_project, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.fields import (Errors, FieldSpec, after_last, changeable_event_type, clean_definitions,
                                        clean_display_name, clean_name, conflict, insert_fields, list_item)
from server.domains.plan.models import DEFAULT_COLOR, Event, EventType, EventTypeOwner, Relation
from server.domains.plan.photos import forget_files
from server.domains.plan.projects import UNSET
from server.errors import DomainError, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

NAME_MAX = 100
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
_COLOR = re.compile(COLOR_PATTERN)
FIELDS_MAX = 1000


def clean_color(value: str | None, at: list[str]) -> str:
    """A null or absent color is the default one."""
    if value is None:
        return DEFAULT_COLOR
    if not _COLOR.match(value):
        raise invalid("color must be `#` and six hexadecimal digits, e.g. `#6366f1`", at)
    return value


def snapshot(t: EventType) -> dict:
    """What the audit log keeps of an event type."""
    return {"name": t.name, "display_name": t.display_name, "description": t.description, "color": t.color,
            "order": t.sort_order}


def _name_taken(name: str) -> DomainError:
    return conflict(f"this project already has an event type named `{name}` (names ignore case)", ["input", "name"])


def _is_name_conflict(e: IntegrityError) -> bool:
    return "uq_event_types_project_name_lower" in str(e.orig)


# --- event types -----------------------------------------------------------------------------

async def create_event_type(rt: Runtime, principal: Principal, project_id: uuid.UUID, *, name: str | None,
                            display_name: str | None, description: str | None = "", color: str | None = None,
                            order: int | None = None, fields: Sequence[FieldSpec] | None = None,
                            request_id: str | None = None) -> EventType:
    """A new event type, with its field definitions if given (all or nothing)."""
    errors = Errors()
    name = errors.check(clean_name, name, ["input", "name"], NAME_MAX)
    display_name = errors.check(clean_display_name, display_name, ["input", "displayName"])
    color = errors.check(clean_color, color, ["input", "color"])
    cleaned_fields: list[dict] = []
    if fields:
        if len(fields) > FIELDS_MAX:
            errors.add(invalid(f"at most {FIELDS_MAX} fields", ["input", "fields"]))
        else:
            cleaned_fields = errors.check(clean_definitions, fields, list_item(["input", "fields"]), default=[])
    errors.raise_if_any()
    try:
        async with rt.db.unit_of_work() as uow:
            # The project lock serializes creations: the name check and the "after the last" order hold.
            project = await changeable_project(uow.session, principal, project_id, ["input", "projectId"], lock=True)
            taken = (await uow.session.execute(select(EventType.id).where(
                EventType.project_id == project.id, func.lower(EventType.name) == name.lower()))).first()
            if taken:
                raise _name_taken(name)
            if order is None:
                last = (await uow.session.execute(select(func.max(EventType.sort_order)).where(
                    EventType.project_id == project.id))).scalar_one()
                order = after_last(last)
            now = utcnow()
            event_type = EventType(id=uuid.uuid4(), organization_id=project.organization_id, project_id=project.id,
                                   name=name, display_name=display_name, description=description or "",
                                   color=color, sort_order=order, created_at=now, updated_at=now)
            uow.session.add(event_type)
            await uow.session.flush()
            added = await insert_fields(uow.session, event_type, cleaned_fields, list_item(["input", "fields"])) \
                if cleaned_fields else []
            plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                         entity=PlanEntity.EVENT_TYPE, action=PlanAction.CREATED, entity_ids=event_type.id,
                         summary=f"created event type {name}" + (f" with {len(added)} fields" if added else ""),
                         after={**snapshot(event_type), "fields": [f.name for f in added][:100]},
                         request_id=request_id)
    except IntegrityError as e:
        if _is_name_conflict(e):
            raise _name_taken(name) from None
        raise
    return event_type


async def update_event_type(rt: Runtime, principal: Principal, event_type_id: uuid.UUID, *,
                            display_name: Any = UNSET, description: Any = UNSET, color: Any = UNSET,
                            order: Any = UNSET, request_id: str | None = None) -> EventType:
    """A patch (the name is fixed once created). Null clears the description and resets the color
    to the default; a null display name or order is refused."""
    errors = Errors()
    changes: dict[str, Any] = {}
    if display_name is not UNSET:
        changes["display_name"] = errors.check(clean_display_name, display_name, ["input", "displayName"])
    if description is not UNSET:
        changes["description"] = description or ""
    if color is not UNSET:
        changes["color"] = errors.check(clean_color, color, ["input", "color"])
    if order is not UNSET:
        if order is None:
            errors.add(invalid("order cannot be null", ["input", "order"]))
        changes["sort_order"] = order
    errors.raise_if_any()
    async with rt.db.unit_of_work() as uow:
        event_type = await changeable_event_type(uow.session, principal, event_type_id, ["input", "id"], lock="share")
        before = snapshot(event_type)
        for key, value in changes.items():
            setattr(event_type, key, value)
        after = snapshot(event_type)
        if after != before:
            event_type.updated_at = utcnow()
            await uow.session.flush()
            plan_changed(uow, rt, principal, organization_id=event_type.organization_id,
                         project_id=event_type.project_id, entity=PlanEntity.EVENT_TYPE, action=PlanAction.UPDATED,
                         entity_ids=event_type.id, summary=f"changed event type {event_type.name}",
                         before={k: v for k, v in before.items() if after[k] != v},
                         after={k: v for k, v in after.items() if before[k] != v}, request_id=request_id)
    return event_type


async def delete_event_type(rt: Runtime, principal: Principal, event_type_id: uuid.UUID, *, cascade: bool = False,
                            request_id: str | None = None) -> EventType:
    """Delete an event type with its fields and owners. While it has events this is a CONFLICT
    unless `cascade`, which deletes the events too (and the relations that join on the type);
    those are announced as deleted as well."""
    async with rt.db.unit_of_work() as uow:
        # FOR UPDATE: waits for, then blocks, events being added to the type, so the count holds.
        event_type = await changeable_event_type(uow.session, principal, event_type_id, ["input", "id"],
                                                 lock="update")
        event_ids = list((await uow.session.execute(select(Event.id).where(
            Event.event_type_id == event_type.id))).scalars().all())
        if event_ids and not cascade:
            raise DomainError(ErrorCode.CONFLICT,
                              f"event type `{event_type.name}` has {len(event_ids)} event(s); delete them first, or "
                              "pass `cascade: true` to delete them with it", ["input", "cascade"])
        relation_ids = list((await uow.session.execute(select(Relation.id).where(or_(
            Relation.source_event_type_id == event_type.id, Relation.target_event_type_id == event_type.id)))
        ).scalars().all())
        if event_ids:
            await forget_files(uow, rt, event_ids=event_ids)  # their stored photo files go after commit
        await uow.session.delete(event_type)
        await uow.session.flush()
        scope = {"organization_id": event_type.organization_id, "project_id": event_type.project_id,
                 "request_id": request_id}
        plan_changed(uow, rt, principal, **scope, entity=PlanEntity.EVENT_TYPE, action=PlanAction.DELETED,
                     entity_ids=event_type.id, summary=f"deleted event type {event_type.name}"
                     + (f" with its {len(event_ids)} event(s)" if event_ids else ""),
                     before={**snapshot(event_type), "events": len(event_ids), "relations": len(relation_ids)})
        if event_ids:
            plan_changed(uow, rt, principal, **scope, entity=PlanEntity.EVENT, action=PlanAction.DELETED,
                         entity_ids=event_ids, verb="cascade_delete", activity=False,
                         summary=f"{len(event_ids)} event(s) went with event type {event_type.name}",
                         after={"count": len(event_ids)})
        if relation_ids:
            plan_changed(uow, rt, principal, **scope, entity=PlanEntity.RELATION, action=PlanAction.DELETED,
                         entity_ids=relation_ids, verb="cascade_delete", activity=False,
                         summary=f"relations of event type {event_type.name} went with it")
    return event_type


# --- owners ----------------------------------------------------------------------------------

async def add_owner(rt: Runtime, principal: Principal, event_type_id: uuid.UUID, user_id: uuid.UUID, *,
                    request_id: str | None = None) -> EventTypeOwner:
    """Owners of the organization make a member of it an owner of the type (once)."""
    async with rt.db.unit_of_work() as uow:
        event_type = await changeable_event_type(uow.session, principal, event_type_id, ["input", "eventTypeId"],
                                                 lock="share", minimum=Role.owner)
        if await current_role(uow, event_type.organization_id, user_id) is None:
            raise not_found("member of this organization", ["input", "userId"])
        taken = (await uow.session.execute(select(EventTypeOwner.id).where(
            EventTypeOwner.event_type_id == event_type.id, EventTypeOwner.user_id == user_id))).first()
        if taken:
            raise conflict("this member already owns the event type", ["input", "userId"])
        owner = EventTypeOwner(id=uuid.uuid4(), organization_id=event_type.organization_id,
                               project_id=event_type.project_id, event_type_id=event_type.id, user_id=user_id,
                               granted_by_id=principal.user_id, created_at=utcnow())
        uow.session.add(owner)
        await uow.session.flush()
        plan_changed(uow, rt, principal, organization_id=event_type.organization_id, project_id=event_type.project_id,
                     entity=PlanEntity.EVENT_TYPE_OWNER, action=PlanAction.CREATED, entity_ids=owner.id,
                     summary=f"added an owner to event type {event_type.name}",
                     after={"event_type": event_type.name, "user_id": str(user_id)}, request_id=request_id)
    return owner


async def remove_owner(rt: Runtime, principal: Principal, owner_id: uuid.UUID, *,
                       request_id: str | None = None) -> tuple[EventTypeOwner, EventType]:
    async with rt.db.unit_of_work() as uow:
        principal.require_user()
        owner = (await uow.session.execute(select(EventTypeOwner).where(
            EventTypeOwner.id == owner_id, *visible(EventTypeOwner, principal)))).scalar_one_or_none()
        if owner is None:
            raise not_found("event type owner", ["input", "id"])
        event_type = await changeable_event_type(uow.session, principal, owner.event_type_id, ["input", "id"],
                                                 lock="share", minimum=Role.owner, what="event type owner")
        deleted = (await uow.session.execute(
            EventTypeOwner.__table__.delete().where(EventTypeOwner.id == owner.id))).rowcount
        if not deleted:  # removed by someone else meanwhile
            raise not_found("event type owner", ["input", "id"])
        plan_changed(uow, rt, principal, organization_id=owner.organization_id, project_id=owner.project_id,
                     entity=PlanEntity.EVENT_TYPE_OWNER, action=PlanAction.DELETED, entity_ids=owner.id,
                     summary=f"removed an owner of event type {event_type.name}",
                     before={"event_type": event_type.name, "user_id": str(owner.user_id)}, request_id=request_id)
    return owner, event_type


# --- queries and loaders ---------------------------------------------------------------------

async def event_types_query(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Select:
    """The project's event types (NOT_FOUND for a project the caller cannot read)."""
    async with rt.db.session() as s:
        await readable_project(s, principal, project_id, ["projectId"])
    return select(EventType).where(EventType.project_id == project_id, *visible(EventType, principal))


ORDER = [EventType.sort_order, EventType.id]


async def load_owners_by_event_type(rt: Runtime, principal: Principal,
                                    event_type_ids: list[uuid.UUID]) -> list[list[EventTypeOwner]]:
    """The owners of many event types in one statement, each list oldest grant first."""
    if not event_type_ids or not principal.authenticated:
        return [[] for _ in event_type_ids]
    async with rt.db.session() as s:
        rows = (await s.execute(select(EventTypeOwner).where(
            EventTypeOwner.event_type_id.in_(event_type_ids), *visible(EventTypeOwner, principal))
            .order_by(EventTypeOwner.event_type_id, EventTypeOwner.created_at, EventTypeOwner.id))).scalars().all()
    by_type: dict[uuid.UUID, list[EventTypeOwner]] = {}
    for r in rows:
        by_type.setdefault(r.event_type_id, []).append(r)
    return [by_type.get(i, []) for i in event_type_ids]


__all__ = [
    "COLOR_PATTERN", "ORDER", "add_owner", "create_event_type", "delete_event_type", "event_types_query",
    "load_owners_by_event_type", "remove_owner", "update_event_type",
]
