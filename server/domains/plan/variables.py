"""Variables of a tracking plan and their values (seed 003, tag `variables`).

A variable is a named placeholder events refer to in their field (or meta) values as `${name}`
(`screen_view` with `screen_name = "${screen_name}"`). Rules, as the seed states them:

- name 1..100 characters matching `^[a-z][a-z0-9_]*$`, unique in the project (CONFLICT otherwise,
  also when two requests race: the unique constraint decides);
- type one of VariableType, `string` by default; description, "" by default;
- update is a patch: name and type cannot be null, a null description clears it. Renaming a
  variable rewrites `${old}` to `${new}` in every event of the project (one UPDATE), so its
  references follow it.

Usage is computed from the plan, never stored by a request: `event_count` is how many events
refer to the variable, `context_count` in how many places (an event's field or meta field; one
context per (event, field)), split into low-cardinality contexts (the field is an ENUM or BOOLEAN:
a bounded set of values) and high-cardinality ones (everything else). One GROUP BY statement
answers it for a whole batch of variables (`load_variable_usage`).

Values are the values a variable takes (observed by scans, or entered here): text 1..1000
characters, unique per variable, checked against the variable's type (NUMBER a number, BOOLEAN
`true`/`false`, DATE/DATETIME ISO 8601, JSON a JSON document; an array type's values are its
elements). `sample_values` are the most frequent ones (`load_variable_samples`).

Every change goes through changes.plan_changed (audit entry + `planChanged` after commit); value
changes are announced as an update of their variable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import ARRAY, Select, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.db.paging import Page, PageRequest
from server.domains.accounts.grouped_pages import keyset_pages_by, shared_counts
from server.domains.accounts.validation import collect
from server.domains.plan.access import changeable_project, readable_project, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.events import history_row, write_history
from server.domains.plan.models import Variable, VariableType, VariableValue
from server.errors import DomainError, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

NAME_MAX = 100
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
_NAME = re.compile(NAME_PATTERN)
VALUE_MAX = 1000
SAMPLE_SIZE = 10
UNSET: Any = object()

# A reference to a variable inside a field value: `${name}`.
REFERENCE_PATTERN = r"\$\{([a-z][a-z0-9_]*)\}"


def reference(name: str) -> str:
    return "${" + name + "}"


def snapshot(v: Variable) -> dict:
    """What the audit log keeps of a variable."""
    return {"name": v.name, "variableType": v.variable_type.value, "description": v.description}


# --- validation ------------------------------------------------------------------------------

def clean_name(value: str | None, field: list[str]) -> str:
    name = value or ""
    if not 1 <= len(name) <= NAME_MAX:
        raise invalid(f"name must be 1 to {NAME_MAX} characters", field)
    if not _NAME.match(name):
        raise invalid("name must start with a lower-case letter and contain only lower-case letters, digits "
                      "and underscores (e.g. `page_name`)", field)
    return name


def clean_type(value: VariableType | None, field: list[str]) -> VariableType:
    if value is None:
        raise invalid("variableType cannot be null", field)
    return VariableType(value)


def clean_value(value: str | None, variable_type: VariableType, field: list[str]) -> str:
    """A value of a variable of this type, as text. Array types take one element per value."""
    v = value if value is not None else ""
    if not 1 <= len(v) <= VALUE_MAX:
        raise invalid(f"value must be 1 to {VALUE_MAX} characters", field)
    t = variable_type
    try:
        if t in (VariableType.NUMBER, VariableType.NUMBER_ARRAY):
            number = float(v)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
        elif t is VariableType.BOOLEAN:
            if v not in ("true", "false"):
                raise ValueError
        elif t is VariableType.DATE:
            date.fromisoformat(v)
        elif t is VariableType.DATETIME:
            datetime.fromisoformat(v.replace("Z", "+00:00"))
        elif t is VariableType.JSON:
            orjson.loads(v)
    except ValueError:
        expected = {VariableType.NUMBER: "a number", VariableType.NUMBER_ARRAY: "a number",
                    VariableType.BOOLEAN: "`true` or `false`", VariableType.DATE: "an ISO 8601 date (2024-05-31)",
                    VariableType.DATETIME: "an ISO 8601 date and time (2024-05-31T12:00:00Z)",
                    VariableType.JSON: "a JSON document"}[t]
        raise invalid(f"a {t.value} variable's value must be {expected}", field) from None
    return v


def _conflict(message: str, field: list[str]) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message, field)


def _name_taken(name: str) -> DomainError:
    return _conflict(f"this project already has a variable named `{name}`", ["input", "name"])


def _value_taken(value: str) -> DomainError:
    return _conflict(f"the variable already has the value `{value[:100]}`", ["input", "value"])


# --- commands --------------------------------------------------------------------------------

async def create_variable(rt: Runtime, principal: Principal, project_id: uuid.UUID, *, name: str,
                          variable_type: VariableType | None = VariableType.STRING, description: str | None = "",
                          request_id: str | None = None) -> Variable:
    name, variable_type = collect(lambda: clean_name(name, ["input", "name"]),
                                  lambda: clean_type(variable_type, ["input", "variableType"]))
    try:
        async with rt.db.unit_of_work() as uow:
            project = await changeable_project(uow.session, principal, project_id, ["input", "projectId"])
            if (await uow.session.execute(select(Variable.id).where(
                    Variable.project_id == project.id, Variable.name == name))).first():
                raise _name_taken(name)
            now = utcnow()
            variable = Variable(id=uuid.uuid4(), organization_id=project.organization_id, project_id=project.id,
                                name=name, variable_type=variable_type, description=description or "",
                                sample_values=[], created_at=now, updated_at=now)
            uow.session.add(variable)
            await uow.session.flush()
            plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                         entity=PlanEntity.VARIABLE, action=PlanAction.CREATED, entity_ids=variable.id,
                         summary=f"created variable {name}", after=snapshot(variable), request_id=request_id)
    except IntegrityError as e:
        if "uq_variables_project_name" in str(e.orig):
            raise _name_taken(name) from None
        raise
    return variable


async def _changeable_variable(session: Any, principal: Principal, variable_id: uuid.UUID,
                               field: list[str]) -> Variable:
    """The variable (locked) if the principal may change its project, else NOT_FOUND/FORBIDDEN."""
    variable = (await session.execute(
        select(Variable).where(Variable.id == variable_id, *visible(Variable, principal))
        .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if variable is None:
        raise not_found("variable", field)
    await changeable_project(session, principal, variable.project_id, field)
    return variable


async def update_variable(rt: Runtime, principal: Principal, variable_id: uuid.UUID, *, name: Any = UNSET,
                          variable_type: Any = UNSET, description: Any = UNSET,
                          request_id: str | None = None) -> Variable:
    """A patch: only the arguments given change."""
    checks = []
    if name is not UNSET:
        checks.append(lambda: ("name", clean_name(name, ["input", "name"])))
    if variable_type is not UNSET:
        checks.append(lambda: ("variable_type", clean_type(variable_type, ["input", "variableType"])))
    if description is not UNSET:
        checks.append(lambda: ("description", description or ""))
    changes = dict(collect(*checks))
    try:
        async with rt.db.unit_of_work() as uow:
            variable = await _changeable_variable(uow.session, principal, variable_id, ["input", "id"])
            before = snapshot(variable)
            old_name = variable.name
            new_name = changes.get("name", old_name)
            if new_name != old_name and (await uow.session.execute(select(Variable.id).where(
                    Variable.project_id == variable.project_id, Variable.name == new_name,
                    Variable.id != variable.id))).first():
                raise _name_taken(new_name)
            for key, value in changes.items():
                setattr(variable, key, value)
            after = snapshot(variable)
            if after != before:
                variable.updated_at = utcnow()
                await uow.session.flush()
                delta_after = {k: v for k, v in after.items() if before[k] != v}
                if new_name != old_name:
                    rewritten = await _rewrite_references(uow.session, principal, variable.project_id, old_name,
                                                           new_name)
                    if rewritten:
                        delta_after["referencesRewritten"] = len(rewritten)
                        plan_changed(uow, rt, principal, organization_id=variable.organization_id,
                                     project_id=variable.project_id, entity=PlanEntity.EVENT,
                                     action=PlanAction.UPDATED, entity_ids=rewritten, verb="variable_rename",
                                     summary=f"renamed ${{{old_name}}} to ${{{new_name}}} in {len(rewritten)} "
                                             f"event(s)", activity=False, request_id=request_id)
                plan_changed(uow, rt, principal, organization_id=variable.organization_id,
                             project_id=variable.project_id, entity=PlanEntity.VARIABLE, action=PlanAction.UPDATED,
                             entity_ids=variable.id, summary=f"changed variable {variable.name}",
                             before={k: v for k, v in before.items() if after[k] != v}, after=delta_after,
                             request_id=request_id)
    except IntegrityError as e:
        if "uq_variables_project_name" in str(e.orig):
            raise _name_taken(changes["name"]) from None
        raise
    return variable


_REWRITE = text("""
UPDATE events AS e
SET field_values = replace(o.field_values::text, :old_ref, :new_ref)::jsonb,
    meta_values = replace(o.meta_values::text, :old_ref, :new_ref)::jsonb,
    updated_at = :now
FROM (SELECT id, field_values, meta_values FROM events
      WHERE project_id = :project_id
        AND (strpos(field_values::text, :old_ref) > 0 OR strpos(meta_values::text, :old_ref) > 0)
      FOR UPDATE) AS o
WHERE e.id = o.id
RETURNING e.id, e.organization_id, o.field_values, o.meta_values, e.field_values, e.meta_values
""")


async def _rewrite_references(session: Any, principal: Principal, project_id: uuid.UUID, old: str,
                              new: str) -> list[uuid.UUID]:
    """`${old}` -> `${new}` in the field and meta values of the project's events, in one UPDATE,
    with an event history entry for each event changed (one multi-row INSERT). A plain text
    replace on the JSON is exact: names are `[a-z0-9_]`, nothing JSON escapes, and the closing
    brace keeps `${page}` from matching inside `${page_name}`."""
    now = utcnow()
    rows = (await session.execute(_REWRITE, {"old_ref": reference(old), "new_ref": reference(new),
                                             "project_id": project_id, "now": now})).all()
    history = []
    for event_id, org_id, old_fv, old_mv, new_fv, new_mv in rows:
        changes = {key: {"old": before, "new": after_}
                   for key, before, after_ in (("fieldValues", old_fv, new_fv), ("metaValues", old_mv, new_mv))
                   if before != after_}
        history.append(history_row(org_id, project_id, event_id, principal, "updated", changes, now))
    await write_history(session, history)
    return [r[0] for r in rows]


async def delete_variable(rt: Runtime, principal: Principal, variable_id: uuid.UUID, *,
                          request_id: str | None = None) -> Variable:
    """Its values go with it (ON DELETE CASCADE); events keep their `${name}` text."""
    async with rt.db.unit_of_work() as uow:
        variable = await _changeable_variable(uow.session, principal, variable_id, ["input", "id"])
        await uow.session.delete(variable)
        plan_changed(uow, rt, principal, organization_id=variable.organization_id, project_id=variable.project_id,
                     entity=PlanEntity.VARIABLE, action=PlanAction.DELETED, entity_ids=variable.id,
                     summary=f"deleted variable {variable.name}", before=snapshot(variable), request_id=request_id)
    return variable


async def add_value(rt: Runtime, principal: Principal, variable_id: uuid.UUID, value: str, *,
                    request_id: str | None = None) -> VariableValue:
    """Enter a value of the variable (a scan records the ones it observes)."""
    try:
        async with rt.db.unit_of_work() as uow:
            variable = await _changeable_variable(uow.session, principal, variable_id, ["input", "variableId"])
            value = clean_value(value, variable.variable_type, ["input", "value"])
            if (await uow.session.execute(select(VariableValue.id).where(
                    VariableValue.variable_id == variable.id, VariableValue.value == value))).first():
                raise _value_taken(value)
            row = VariableValue(id=uuid.uuid4(), organization_id=variable.organization_id,
                                project_id=variable.project_id, variable_id=variable.id, value=value,
                                event_count=0, occurrences=0, first_seen_at=utcnow())
            uow.session.add(row)
            await uow.session.flush()
            plan_changed(uow, rt, principal, organization_id=variable.organization_id,
                         project_id=variable.project_id, entity=PlanEntity.VARIABLE, action=PlanAction.UPDATED,
                         entity_ids=variable.id, verb="value_add",
                         summary=f"added value {value[:100]} to variable {variable.name}",
                         after={"value": value[:200]}, request_id=request_id)
    except IntegrityError as e:
        if "uq_variable_values_variable_value" in str(e.orig):
            raise _value_taken(value) from None
        raise
    return row


async def remove_value(rt: Runtime, principal: Principal, value_id: uuid.UUID, *,
                       request_id: str | None = None) -> VariableValue:
    async with rt.db.unit_of_work() as uow:
        row = (await uow.session.execute(select(VariableValue).where(
            VariableValue.id == value_id, *visible(VariableValue, principal)))).scalar_one_or_none()
        if row is None:
            raise not_found("variable value", ["input", "id"])
        variable = await _changeable_variable(uow.session, principal, row.variable_id, ["input", "id"])
        await uow.session.delete(row)
        plan_changed(uow, rt, principal, organization_id=variable.organization_id,
                     project_id=variable.project_id, entity=PlanEntity.VARIABLE, action=PlanAction.UPDATED,
                     entity_ids=variable.id, verb="value_remove",
                     summary=f"removed value {row.value[:100]} from variable {variable.name}",
                     before={"value": row.value[:200]}, request_id=request_id)
    return row


# --- queries ---------------------------------------------------------------------------------

async def variables_query(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Select:
    """The project's variables (NOT_FOUND when the caller may not read the project)."""
    async with rt.db.session() as s:
        await readable_project(s, principal, project_id, ["projectId"])
    return select(Variable).where(Variable.project_id == project_id, *visible(Variable, principal))


VARIABLE_ORDER = [Variable.name, Variable.id]
VALUE_ORDER = [VariableValue.occurrences, VariableValue.id]  # most frequent first (descending)


# --- loaders (one statement per batch, results in key order) ----------------------------------

@dataclass(frozen=True)
class Usage:
    event_count: int = 0
    context_count: int = 0
    low_context_count: int = 0
    high_context_count: int = 0


_ids = bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))
_orgs = bindparam("orgs", type_=ARRAY(PG_UUID(as_uuid=True)))

# Every `${name}` reference of the variables' projects, found once per project whatever the number
# of variables asked (regexp over each field/meta value), then joined to the variables by name.
# Low-cardinality contexts are those whose field (or meta field) is an ENUM or a BOOLEAN.
_USAGE = text("""
WITH v AS (
    SELECT id, project_id, name FROM variables
    WHERE id = ANY(:ids) AND organization_id = ANY(:orgs) AND (CAST(:key_project AS uuid) IS NULL
                                                              OR project_id = CAST(:key_project AS uuid))
), projects_asked AS (
    SELECT DISTINCT project_id FROM v
), low AS (
    SELECT id::text AS ref_id FROM fields
    WHERE project_id IN (SELECT project_id FROM projects_asked) AND field_type::text IN ('enum', 'boolean')
    UNION ALL
    SELECT id::text FROM meta_fields
    WHERE project_id IN (SELECT project_id FROM projects_asked) AND field_type::text IN ('enum', 'boolean')
), refs AS (
    SELECT DISTINCT e.project_id, e.id AS event_id, r.ref_id, m[1] AS name
    FROM events e
    CROSS JOIN LATERAL (
        SELECT x->>'field_id' AS ref_id, x->>'value' AS value
        FROM jsonb_array_elements(CASE jsonb_typeof(e.field_values) WHEN 'array' THEN e.field_values
                                  ELSE '[]'::jsonb END) x
        UNION ALL
        SELECT x->>'meta_field_id', x->>'value'
        FROM jsonb_array_elements(CASE jsonb_typeof(e.meta_values) WHEN 'array' THEN e.meta_values
                                  ELSE '[]'::jsonb END) x
    ) r
    CROSS JOIN LATERAL regexp_matches(r.value, :pattern, 'g') m
    WHERE e.project_id IN (SELECT project_id FROM projects_asked)
      AND strpos(e.field_values::text || e.meta_values::text, '${') > 0
      AND strpos(r.value, '${') > 0
)
SELECT v.id, count(DISTINCT refs.event_id) AS events, count(*) AS contexts,
       count(*) FILTER (WHERE refs.ref_id IN (SELECT ref_id FROM low)) AS low
FROM v
JOIN refs ON refs.project_id = v.project_id AND refs.name = v.name
GROUP BY v.id
""").bindparams(_ids, _orgs, bindparam("key_project"), bindparam("pattern"))


async def load_variable_usage(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Usage]:
    wanted = list(dict.fromkeys(ids))
    if not wanted or not principal.authenticated or not principal.organization_ids:
        return [Usage() for _ in ids]
    async with rt.db.session() as s:
        rows = (await s.execute(_USAGE, {"ids": wanted, "orgs": principal.organization_ids,
                                         "key_project": principal.key_project_id,
                                         "pattern": REFERENCE_PATTERN})).all()
    found = {vid: Usage(events, contexts, low, contexts - low) for vid, events, contexts, low in rows}
    return [found.get(i, Usage()) for i in ids]


async def load_variable_samples(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[list[str]]:
    """The SAMPLE_SIZE most frequent values of each variable (ties by value), one window query."""
    wanted = list(dict.fromkeys(ids))
    if not wanted or not principal.authenticated or not principal.organization_ids:
        return [[] for _ in ids]
    rank = func.row_number().over(partition_by=VariableValue.variable_id,
                                  order_by=[VariableValue.occurrences.desc(), VariableValue.value]).label("rank")
    sub = (select(VariableValue.variable_id, VariableValue.value, rank)
           .where(VariableValue.variable_id.in_(wanted), *visible(VariableValue, principal)).subquery())
    async with rt.db.session() as s:
        rows = (await s.execute(select(sub.c.variable_id, sub.c.value).where(sub.c.rank <= SAMPLE_SIZE)
                                .order_by(sub.c.variable_id, sub.c.rank))).all()
    found: dict[uuid.UUID, list[str]] = {}
    for variable_id, value in rows:
        found.setdefault(variable_id, []).append(value)
    return [found.get(i, []) for i in ids]


async def load_variable_values(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[VariableValue | None]:
    """By ID (for `node(id:)`)."""
    if not ids or not principal.authenticated or not principal.organization_ids:
        return [None] * len(ids)
    async with rt.db.session() as s:
        rows = (await s.execute(select(VariableValue).where(
            VariableValue.id.in_(ids), *visible(VariableValue, principal)))).scalars().all()
    found = {r.id: r for r in rows}
    return [found.get(i) for i in ids]


PageKey = tuple[uuid.UUID, int | None, str | None, int | None, str | None]


def _empty_page() -> Page:
    async def zero() -> int:
        return 0

    return Page(items=[], cursors=[], has_next_page=False, has_previous_page=False, count=zero)


async def load_value_pages(rt: Runtime, principal: Principal, keys: list[PageKey]) -> list[Page]:
    """`Variable.values` of many variables: one query per distinct page request, most frequent first,
    plus one GROUP BY for the batch's `totalCount`s when asked."""
    orgs = principal.organization_ids if principal.authenticated else []
    by_request: dict[tuple, list[uuid.UUID]] = {}
    for parent, *request in keys:
        by_request.setdefault(tuple(request), []).append(parent)
    results: dict[PageKey, Page] = {}
    for request, parents in by_request.items():
        ids = list(dict.fromkeys(parents))
        pages: dict[Hashable, Page] = {}
        if orgs:
            conditions = visible(VariableValue, principal)

            async def fetch_counts(ids: list[uuid.UUID] = ids, conditions: list = conditions) -> dict[Hashable, int]:
                async with rt.db.session() as s:
                    rows = await s.execute(select(VariableValue.variable_id, func.count())
                                           .where(VariableValue.variable_id.in_(ids), *conditions)
                                           .group_by(VariableValue.variable_id))
                return dict(rows.all())

            st = rt.settings
            pages = await keyset_pages_by(rt.db, VariableValue, select(VariableValue).where(*conditions),
                                          VariableValue.variable_id, ids, VALUE_ORDER, PageRequest(*request),
                                          shared_counts(fetch_counts), descending=True,
                                          default=st.page_size_default, maximum=st.page_size_max)
        for parent in parents:
            results[(parent, *request)] = pages.get(parent) or _empty_page()
    return [results[k] for k in keys]


__all__ = [
    "NAME_MAX", "NAME_PATTERN", "REFERENCE_PATTERN", "SAMPLE_SIZE", "UNSET", "Usage", "VALUE_MAX", "VALUE_ORDER",
    "VARIABLE_ORDER", "add_value", "clean_name", "clean_value", "create_variable", "delete_variable",
    "load_value_pages", "load_variable_samples", "load_variable_usage", "load_variable_values", "reference",
    "remove_value", "update_variable", "variables_query",
]
