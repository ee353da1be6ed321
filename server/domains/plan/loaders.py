"""Batch loaders of the plan domain: `async def load_x(rt, principal, keys) -> list`, one SQL
statement per batch, results in key order, None for whatever the principal may not see
(another tenant's row, or another project's for a project-bound API key: access.visible).

The by-ID loaders back `node(id:)` and every relation between plan objects; add list loaders
(children of many parents in one statement) next to them, keyed like the incidents' PageKey.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, func, literal, null, select, union_all

from server.domains.plan.access import visible
from server.domains.plan.models import (
    Event,
    EventPhoto,
    EventStatus,
    EventType,
    EventTypeOwner,
    Field,
    MetaField,
    PhotoComment,
    Project,
    Relation,
    Variable,
)
from server.runtime import Runtime
from server.security.principal import Principal


async def visible_by_id(rt: Runtime, principal: Principal, model: Any, ids: list[uuid.UUID]) -> list[Any]:
    """Rows of a project-scoped `model` by id, in key order, None where the principal may not see
    them (access.visible); the warehouse's project rows follow the same rule and use it too."""
    if not ids or not principal.authenticated or not principal.organization_ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(model).where(model.id.in_(ids), *visible(model, principal)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


async def load_projects(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Project | None]:
    return await visible_by_id(rt, principal, Project, ids)


async def load_event_types(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[EventType | None]:
    return await visible_by_id(rt, principal, EventType, ids)


async def load_event_type_owners(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[EventTypeOwner | None]:
    return await visible_by_id(rt, principal, EventTypeOwner, ids)


async def load_fields(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Field | None]:
    return await visible_by_id(rt, principal, Field, ids)


async def load_meta_fields(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[MetaField | None]:
    return await visible_by_id(rt, principal, MetaField, ids)


async def load_events(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Event | None]:
    return await visible_by_id(rt, principal, Event, ids)


async def load_variables(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Variable | None]:
    return await visible_by_id(rt, principal, Variable, ids)


async def load_relations(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Relation | None]:
    return await visible_by_id(rt, principal, Relation, ids)


async def load_event_photos(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[EventPhoto | None]:
    return await visible_by_id(rt, principal, EventPhoto, ids)


async def load_photo_comments(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[PhotoComment | None]:
    return await visible_by_id(rt, principal, PhotoComment, ids)


# --- project summaries ------------------------------------------------------------------------

@dataclass
class ProjectSummary:
    """What a project holds, counted in SQL (GROUP BY), never by loading rows."""

    event_type_count: int = 0
    event_count: int = 0
    events_by_status: dict[EventStatus, int] = field(default_factory=dict)
    field_count: int = 0
    meta_field_count: int = 0
    variable_count: int = 0
    relation_count: int = 0


_COUNTED = {"event_type_count": EventType, "field_count": Field, "meta_field_count": MetaField,
            "variable_count": Variable, "relation_count": Relation}


async def load_project_summaries(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[ProjectSummary]:
    """Summaries of many projects in one statement: a UNION ALL of one GROUP BY per counted table
    (each served by an index leading with project_id). Each part carries the visibility
    conditions, so another tenant's project counts as empty rather than costing a lookup."""
    wanted = list(dict.fromkeys(ids))
    if not wanted or not principal.authenticated or not principal.organization_ids:
        return [ProjectSummary() for _ in ids]
    parts = [
        select(model.project_id, literal(name).label("kind"), cast(null(), String).label("status"),
               func.count().label("n"))
        .where(model.project_id.in_(wanted), *visible(model, principal)).group_by(model.project_id)
        for name, model in _COUNTED.items()
    ]
    parts.append(select(Event.project_id, literal("events").label("kind"), cast(Event.status, String).label("status"),
                        func.count().label("n")).where(Event.project_id.in_(wanted), *visible(Event, principal))
                 .group_by(Event.project_id, Event.status))
    async with rt.db.session() as s:
        rows = (await s.execute(union_all(*parts))).all()
    summaries = {pid: ProjectSummary() for pid in wanted}
    for project_id, kind, status, n in rows:
        summary = summaries[project_id]
        if kind == "events":
            summary.events_by_status[EventStatus(status)] = n
            summary.event_count += n
        else:
            setattr(summary, kind, n)
    return [summaries[i] for i in ids]


__all__ = [
    "ProjectSummary", "load_event_photos", "load_event_type_owners", "load_event_types", "load_events",
    "load_fields", "load_meta_fields", "load_photo_comments", "load_project_summaries", "load_projects",
    "load_relations", "load_variables",
]
