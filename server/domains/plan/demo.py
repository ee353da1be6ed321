"""`projectCreateDemo`: a new project holding the demo tracking plan of demo_data.py, so a newcomer
sees a full plan at once.

Everything is written in ONE transaction with one multi-row INSERT per table (the project, event
types, their owners, fields, meta fields, events and their history, variables, variable values,
relations: a dozen statements whatever the size of the demo), then one audit entry and one
`planChanged` for the project. The creating user owns every event type and every event.

The name is optional (`Demo tracking plan`); the slug is derived from it (lower case ASCII letters
and digits joined by hyphens) and made unique within the organization by a suffix: `-2`, `-3`, ...
A concurrent request taking the same slug makes the transaction retry with the next one.

The demo warehouse comes with it (server/domains/warehouse/demo_warehouse.py): a DuckDB file of
generated events for this plan, a DUCKDB data source naming it, the scan config `demo` and its
first scan job, in the same transaction (the file is removed when the transaction fails). The
audit entry's `after` names the data source and scan config.

The project row is inserted here rather than through projects.create_project, which commits its
own transaction: the demo must appear whole or not at all. Its rules (editor role, name) are the
same functions.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.plan import demo_data as data
from server.domains.plan.access import require_org_plan_role
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.events import history_row, snapshot as event_snapshot, write_history
from server.domains.plan.models import (Event, EventStatus, EventType, EventTypeOwner, Field, FieldType, MetaField,
                                        MetaFieldType, Project, Relation, Sensitivity, Variable, VariableType,
                                        VariableValue)
from server.domains.plan.projects import SLUG_MAX, clean_name, snapshot as project_snapshot
from server.runtime import Runtime
from server.security.principal import Principal

ATTEMPTS = 5  # slug races lost before giving up (each retry takes the next free suffix)
_SUFFIX_ROOM = 8  # "-" and up to 7 digits


def slugify(name: str) -> str:
    """`Démo plan #2` -> `demo-plan-2`; `demo` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")
    return slug[:SLUG_MAX - _SUFFIX_ROOM].strip("-") or "demo"


def first_free(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def create_demo_project(rt: Runtime, principal: Principal, organization_id: uuid.UUID, *,
                              name: str | None = None, request_id: str | None = None) -> tuple[Project, Any]:
    """(the project, its demo warehouse: server/domains/warehouse/demo_warehouse.DemoWarehouse)."""
    require_org_plan_role(principal, organization_id, Role.editor)
    name = clean_name(data.DEFAULT_NAME if name is None else name, ["input", "name"])
    base = slugify(name)
    for attempt in range(ATTEMPTS):
        try:
            return await _build(rt, principal, organization_id, name, base, request_id)
        except IntegrityError as e:
            if "uq_projects_org_slug" not in str(e.orig) or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _build(rt: Runtime, principal: Principal, organization_id: uuid.UUID, name: str, base: str,
                 request_id: str | None) -> tuple[Project, Any]:
    from server.domains.warehouse import demo_warehouse  # the demo plan brings its demo warehouse along

    now = utcnow()
    owner = principal.user_id
    warehouse: demo_warehouse.DemoWarehouse | None = None
    try:
        async with rt.db.unit_of_work() as uow:
            s = uow.session
            taken = set((await s.execute(select(Project.slug).where(
                Project.organization_id == organization_id,
                or_(Project.slug == base, Project.slug.like(f"{base}-%"))))).scalars())
            project = Project(id=uuid.uuid4(), organization_id=organization_id, name=name, slug=first_free(base, taken),
                              description=data.DESCRIPTION, created_by_id=owner, created_at=now, updated_at=now)
            s.add(project)
            await s.flush()
            scope = {"organization_id": organization_id, "project_id": project.id}
            rows = plan_rows(scope, owner, now)
            for model in (EventType, EventTypeOwner, Field, MetaField, Event, Variable, VariableValue, Relation):
                if rows[model]:
                    await s.execute(insert(model).values(rows[model]))
            await write_history(s, [history_row(organization_id, project.id, e["id"], principal, "created",
                                                {k: {"old": None, "new": v} for k, v in event_snapshot(e).items()}, now)
                                    for e in rows[Event]])
            warehouse = await demo_warehouse.add_to_demo(uow, rt, principal, project, now)
            counts = {"eventTypes": len(rows[EventType]), "events": len(rows[Event]), "fields": len(rows[Field]),
                      "metaFields": len(rows[MetaField]), "variables": len(rows[Variable]),
                      "relations": len(rows[Relation]), "dataSourceId": str(warehouse.data_source.id),
                      "scanConfigId": str(warehouse.scan_config.id), "warehouseRows": warehouse.rows}
            plan_changed(uow, rt, principal, organization_id=organization_id, project_id=project.id,
                         entity=PlanEntity.PROJECT, action=PlanAction.CREATED, entity_ids=project.id,
                         verb="create_demo", summary=f"created demo project {name}",
                         after={**project_snapshot(project), **counts}, request_id=request_id)
    except BaseException:
        if warehouse is not None:
            warehouse.discard()
        raise
    return project, warehouse


def plan_rows(scope: dict, owner: uuid.UUID | None, now: Any) -> dict[type, list[dict]]:
    """The rows of every table for one demo plan (IDs made here, so rows can refer to each other)."""
    def row(**values: Any) -> dict:
        return {"id": uuid.uuid4(), **scope, **values}

    stamps = {"created_at": now, "updated_at": now}
    types: dict[str, dict] = {}
    fields: dict[tuple[str, str], dict] = {}
    out: dict[type, list[dict]] = {m: [] for m in (EventType, EventTypeOwner, Field, MetaField, Event, Variable,
                                                   VariableValue, Relation)}
    for order, (type_name, display, description, color, field_specs) in enumerate(data.EVENT_TYPES):
        t = row(name=type_name, display_name=display, description=description, color=color, sort_order=order,
                **stamps)
        types[type_name] = t
        out[EventType].append(t)
        if owner is not None:
            out[EventTypeOwner].append(row(event_type_id=t["id"], user_id=owner, granted_by_id=owner, created_at=now))
        for f_order, (f_name, f_display, f_type, required, options, f_description, sensitivity) in enumerate(field_specs):
            f = row(event_type_id=t["id"], name=f_name, display_name=f_display, field_type=FieldType(f_type),
                    is_required=required, enum_options=options, description=f_description, sort_order=f_order,
                    sensitivity=Sensitivity(sensitivity), contract_required_max_null_rate=0.01 if required else None,
                    contract_regex=None, contract_min_value=0.0 if f_type == "number" else None,
                    contract_max_value=None, contract_max_bad_rate=0.0, **stamps)
            fields[(type_name, f_name)] = f
            out[Field].append(f)

    metas: dict[str, dict] = {}
    for order, (m_name, m_display, m_type, required, options, default, link, sensitivity) in enumerate(data.META_FIELDS):
        m = row(name=m_name, display_name=m_display, field_type=MetaFieldType(m_type), is_required=required,
                enum_options=options, default_value=default, link_template=link, sort_order=order,
                sensitivity=Sensitivity(sensitivity), **stamps)
        metas[m_name] = m
        out[MetaField].append(m)

    seen = {EventStatus.LIVE: timedelta(minutes=20), EventStatus.IMPLEMENTED: timedelta(hours=6),
            EventStatus.DEPRECATED: timedelta(days=3)}
    for order, (type_name, e_name, status, tags, values, meta_values, reviewed, description) in enumerate(data.EVENTS):
        st = EventStatus(status)
        out[Event].append(row(
            event_type_id=types[type_name]["id"], name=e_name, description=description, status=st,
            sunset_at=now + timedelta(days=60) if st is EventStatus.DEPRECATED else None, owner_id=owner,
            reviewed=reviewed, metric_breakdown_columns=data.BREAKDOWNS.get(type_name, []) if st is EventStatus.LIVE
            else [], tags=tags,
            field_values=[{"field_id": str(fields[(type_name, k)]["id"]), "value": v} for k, v in values.items()],
            meta_values=[{"meta_field_id": str(metas[k]["id"]), "value": v} for k, v in meta_values.items()],
            sort_order=order, last_seen_at=now - seen[st] if st in seen else None, drift_count=0, **stamps))

    for v_name, v_type, v_description, values in data.VARIABLES:
        v = row(name=v_name, source_name=f"properties.{v_name}", variable_type=VariableType(v_type),
                description=v_description, event_count=0, context_count=0, low_context_count=0, high_context_count=0,
                sample_values=[], **stamps)
        out[Variable].append(v)
        for value, occurrences, event_count in values:
            out[VariableValue].append(row(variable_id=v["id"], value=value, occurrences=occurrences,
                                          event_count=event_count, first_seen_at=now - timedelta(days=30),
                                          last_seen_at=now - timedelta(hours=1) if occurrences else None))

    for source, target, relation_type, description in data.RELATIONS:
        (s_type, s_field), (t_type, t_field) = source.split("."), target.split(".")
        out[Relation].append(row(source_event_type_id=types[s_type]["id"], source_field_id=fields[(s_type, s_field)]["id"],
                                 target_event_type_id=types[t_type]["id"], target_field_id=fields[(t_type, t_field)]["id"],
                                 relation_type=relation_type, description=description, **stamps))
    return out


__all__ = ["create_demo_project", "first_free", "plan_rows", "slugify"]
