"""Relations between event types (seed 003, tag `relations`): `order.user_id` belongs to `user.id`.

A relation joins a field of a source event type to a field of a target event type. Rules:
- both event types exist in the same project (another tenant's = NOT_FOUND, like a missing one);
- each field belongs to its event type: a field of another type is a VALIDATION user error on
  that field ("field of another type in a relation");
- the two fields differ;
- relation type: free text, trimmed, 1..100 characters, `belongs_to` by default; description "" by default;
- the same two fields joined by the same relation type twice is a CONFLICT (a unique constraint
  decides when two requests race).

Update is a patch over the same fields (absent = unchanged; relation type cannot be null, a null
description clears it) and the result is checked as a whole, as on create. Deleting either event
type or field removes the relation (ON DELETE CASCADE).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.domains.plan.access import changeable_project, readable_project, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed, update_recorded
from server.domains.plan.models import DEFAULT_RELATION_TYPE, EventType, Field, Relation
from server.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

RELATION_TYPE_MAX = 100
UNSET: Any = object()
RELATION_ORDER = [Relation.created_at, Relation.id]

_ENDS = ("source_event_type_id", "source_field_id", "target_event_type_id", "target_field_id")
_INPUT_NAMES = {"source_event_type_id": "sourceEventTypeId", "source_field_id": "sourceFieldId",
                "target_event_type_id": "targetEventTypeId", "target_field_id": "targetFieldId"}


def snapshot(r: Relation) -> dict:
    return {"sourceEventTypeId": str(r.source_event_type_id), "sourceFieldId": str(r.source_field_id),
            "targetEventTypeId": str(r.target_event_type_id), "targetFieldId": str(r.target_field_id),
            "relationType": r.relation_type, "description": r.description}


def clean_relation_type(value: str | None, field: list[str]) -> str:
    if value is None:
        raise invalid("relationType cannot be null", field)
    relation_type = value.strip()
    if not 1 <= len(relation_type) <= RELATION_TYPE_MAX:
        raise invalid(f"relationType must be 1 to {RELATION_TYPE_MAX} characters", field)
    return relation_type


def _path(key: str) -> list[str]:
    return ["input", _INPUT_NAMES[key]]


def _duplicate() -> DomainError:
    return DomainError(ErrorCode.CONFLICT, "these two fields are already joined by a relation of this type",
                       ["input", "relationType"])


async def _check_ends(session: AsyncSession, principal: Principal, ends: dict[str, uuid.UUID],
                      project_id: uuid.UUID | None = None) -> uuid.UUID:
    """Check the four ends of a relation; the project they are in. Raises NOT_FOUND for an end
    the caller cannot see, FORBIDDEN below editor, VALIDATION for a field of another type, types
    of two projects (or not the relation's own project) or a field joined to itself."""
    type_ids = [ends["source_event_type_id"], ends["target_event_type_id"]]
    field_ids = [ends["source_field_id"], ends["target_field_id"]]
    types = {t.id: t for t in (await session.execute(select(EventType).where(
        EventType.id.in_(type_ids), *visible(EventType, principal)))).scalars()}
    fields = {f.id: f for f in (await session.execute(select(Field).where(
        Field.id.in_(field_ids), *visible(Field, principal)))).scalars()}
    missing = [not_found("event type" if k.endswith("event_type_id") else "field", _path(k)) for k in _ENDS
               if ends[k] not in (types if k.endswith("event_type_id") else fields)]
    if missing:
        raise DomainErrors(missing)
    source_type, target_type = types[type_ids[0]], types[type_ids[1]]
    project = project_id or source_type.project_id
    # Permission first: a viewer learns nothing more about the ends than that they exist.
    await changeable_project(session, principal, project, _path("source_event_type_id"))
    errors: list[DomainError] = []
    for key, t in (("source_event_type_id", source_type), ("target_event_type_id", target_type)):
        if t.project_id != project:
            errors.append(invalid("the event types of a relation must belong to the same project", _path(key)))
    for key, type_key in (("source_field_id", "source_event_type_id"), ("target_field_id", "target_event_type_id")):
        f, t = fields[ends[key]], types[ends[type_key]]
        if f.event_type_id != t.id:
            errors.append(invalid(f"field `{f.name}` belongs to another event type than `{t.name}`: a relation "
                                  f"joins fields of its own event types", _path(key)))
    if not errors and ends["source_field_id"] == ends["target_field_id"]:
        errors.append(invalid("a relation joins two different fields", _path("target_field_id")))
    if errors:
        raise DomainErrors(errors)
    return project


async def _taken(session: AsyncSession, ends: dict[str, uuid.UUID], relation_type: str,
                 other_than: uuid.UUID | None = None) -> bool:
    q = select(Relation.id).where(Relation.source_field_id == ends["source_field_id"],
                                  Relation.target_field_id == ends["target_field_id"],
                                  Relation.relation_type == relation_type)
    if other_than is not None:
        q = q.where(Relation.id != other_than)
    return (await session.execute(q)).first() is not None


def _is_duplicate(e: IntegrityError) -> bool:
    return "uq_relations_fields_type" in str(e.orig)


async def create_relation(rt: Runtime, principal: Principal, *, source_event_type_id: uuid.UUID,
                          source_field_id: uuid.UUID, target_event_type_id: uuid.UUID, target_field_id: uuid.UUID,
                          relation_type: str | None = DEFAULT_RELATION_TYPE, description: str | None = "",
                          request_id: str | None = None) -> Relation:
    relation_type = clean_relation_type(relation_type, ["input", "relationType"])
    ends = {"source_event_type_id": source_event_type_id, "source_field_id": source_field_id,
            "target_event_type_id": target_event_type_id, "target_field_id": target_field_id}
    try:
        async with rt.db.unit_of_work() as uow:
            s = uow.session
            project_id = await _check_ends(s, principal, ends)
            if await _taken(s, ends, relation_type):
                raise _duplicate()
            source_type = await s.get(EventType, source_event_type_id)
            now = utcnow()
            relation = Relation(id=uuid.uuid4(), organization_id=source_type.organization_id, project_id=project_id,
                                relation_type=relation_type, description=description or "", created_at=now,
                                updated_at=now, **ends)
            s.add(relation)
            await s.flush()
            plan_changed(uow, rt, principal, organization_id=relation.organization_id, project_id=project_id,
                         entity=PlanEntity.RELATION, action=PlanAction.CREATED, entity_ids=relation.id,
                         summary=f"created relation {relation_type}", after=snapshot(relation),
                         request_id=request_id)
    except IntegrityError as e:
        if _is_duplicate(e):
            raise _duplicate() from None
        raise
    return relation


async def _changeable_relation(session: AsyncSession, principal: Principal, relation_id: uuid.UUID) -> Relation:
    relation = (await session.execute(
        select(Relation).where(Relation.id == relation_id, *visible(Relation, principal))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if relation is None:
        raise not_found("relation", ["input", "id"])
    await changeable_project(session, principal, relation.project_id, ["input", "id"])
    return relation


async def update_relation(rt: Runtime, principal: Principal, relation_id: uuid.UUID, *,
                          source_event_type_id: Any = UNSET, source_field_id: Any = UNSET,
                          target_event_type_id: Any = UNSET, target_field_id: Any = UNSET,
                          relation_type: Any = UNSET, description: Any = UNSET,
                          request_id: str | None = None) -> Relation:
    """A patch; the relation after the patch is checked like a new one."""
    given = {"source_event_type_id": source_event_type_id, "source_field_id": source_field_id,
             "target_event_type_id": target_event_type_id, "target_field_id": target_field_id}
    errors = [invalid(f"{_INPUT_NAMES[k]} cannot be null", _path(k)) for k, v in given.items() if v is None]
    changes: dict[str, Any] = {}
    if relation_type is not UNSET:
        try:
            changes["relation_type"] = clean_relation_type(relation_type, ["input", "relationType"])
        except DomainError as e:
            errors.append(e)
    if errors:
        raise DomainErrors(errors)
    if description is not UNSET:
        changes["description"] = description or ""
    changes.update({k: v for k, v in given.items() if v is not UNSET})
    try:
        async with rt.db.unit_of_work() as uow:
            s = uow.session
            relation = await _changeable_relation(s, principal, relation_id)
            ends = {k: changes.get(k, getattr(relation, k)) for k in _ENDS}
            if any(ends[k] != getattr(relation, k) for k in _ENDS):
                await _check_ends(s, principal, ends, relation.project_id)
            new_type = changes.get("relation_type", relation.relation_type)
            if (any(ends[k] != getattr(relation, k) for k in _ENDS) or new_type != relation.relation_type) \
                    and await _taken(s, ends, new_type, relation.id):
                raise _duplicate()
            await update_recorded(uow, rt, principal, relation, changes, snapshot, entity=PlanEntity.RELATION,
                                  summary=lambda r: f"changed relation {r.relation_type}", request_id=request_id)
    except IntegrityError as e:
        if _is_duplicate(e):
            raise _duplicate() from None
        raise
    return relation


async def delete_relation(rt: Runtime, principal: Principal, relation_id: uuid.UUID, *,
                          request_id: str | None = None) -> Relation:
    async with rt.db.unit_of_work() as uow:
        relation = await _changeable_relation(uow.session, principal, relation_id)
        await uow.session.delete(relation)
        plan_changed(uow, rt, principal, organization_id=relation.organization_id, project_id=relation.project_id,
                     entity=PlanEntity.RELATION, action=PlanAction.DELETED, entity_ids=relation.id,
                     summary=f"deleted relation {relation.relation_type}", before=snapshot(relation),
                     request_id=request_id)
    return relation


async def relations_query(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Select:
    """The project's relations, oldest first (NOT_FOUND when the caller may not read the project)."""
    async with rt.db.session() as s:
        await readable_project(s, principal, project_id, ["projectId"])
    return select(Relation).where(Relation.project_id == project_id, *visible(Relation, principal))


__all__ = ["RELATION_ORDER", "RELATION_TYPE_MAX", "UNSET", "clean_relation_type", "create_relation",
           "delete_relation", "relations_query", "update_relation"]
