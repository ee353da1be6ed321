"""Events of a tracking plan (seed 003, tag `events`): create, bulk create, update, bulk update,
delete, bulk delete, reorder, move, and the per-event history.

Rules, as the seed states them (each failure a user error naming the input field; for the bulk
operations the path carries the item's index, `["input", "events", "3", "name"]`, and the message
starts with `events[3]`):
- an event belongs to an event type of its project (NOT_FOUND otherwise, also for another tenant's);
- name 1..500 characters (trimmed), unique in its event type ignoring case (CONFLICT; also within
  one bulk list, and when two requests race: the unique index decides);
- description "" by default; status one of EventStatus, DRAFT by default; reviewed false by default;
- owner: a member of the project's organization (NOT_FOUND otherwise), or none;
- tags and metric breakdown columns: lists of non-blank strings (trimmed, duplicates dropped);
- field values `{fieldId, value}`: the field must be a field of the event's type, at most once,
  and an ENUM field's value one of its options (or a `${variable}` reference, which the variables
  domain resolves); stored as `{"field_id": "<uuid>", "value": "<text>"}`;
- meta values `{metaFieldId, value}`: the meta field must be one of the project's, at most once,
  an ENUM meta field's value one of its options (or a reference); stored as
  `{"meta_field_id": "<uuid>", "value": "<text>"}`;
- `lastSeenAt` and `driftCount` are written by scans, never by these commands.

Bulk operations are all or nothing: every item is checked (against data loaded in a constant
number of statements: the event types, fields, meta fields, owners and taken names of the whole
list at once) before anything is written, and the rows are written with one multi-row INSERT
(or one UPDATE / DELETE), so 1,000 events cost the same few statements as one.

Every change writes `event_history` rows (who, when, action, `{field: {old, new}}`) in the same
transaction, and goes through changes.plan_changed (one audit entry per mutation; planChanged per
event, or one `entityId: null` message when a bulk operation touched more than MAX_MESSAGES).
Order changes (reorder, move) are history entries too, for the events whose position changed.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import ARRAY, DateTime, Integer, Select, Text, bindparam, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.db.engine import UnitOfWork
from server.domains.accounts.models import Membership, Role
from server.domains.plan.access import changeable_project, require_plan_role, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed
from server.domains.plan.models import Event, EventStatus, EventType, Field, FieldType, MetaField, MetaFieldType, Project
from server.domains.plan.photos import forget_files
from server.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

NAME_MAX = 500
BULK_MAX = 1000  # items per bulk mutation: one INSERT of 1,000 rows stays far below PostgreSQL's bind-parameter limit
SILENT_DAYS_MAX = 36500
AUDIT_IDS_MAX = 40  # event IDs listed in a bulk operation's audit entry (its `count` is always there)
UNSET: Any = object()

_REFERENCE = re.compile(r"^\$\{[a-z][a-z0-9_]*\}$")  # a `${variable}` reference (variables.REFERENCE_PATTERN)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Path = list[str]


class Direction(str, enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass
class ValueIn:
    """A field value (`ref_id` a field) or a meta value (`ref_id` a meta field) as given."""

    ref_id: uuid.UUID
    value: str


@dataclass
class EventSpec:
    """What a create gives (GraphQL applies the seed's defaults; None means the default here too)."""

    event_type_id: uuid.UUID
    name: str
    description: str | None = ""
    status: EventStatus | None = EventStatus.DRAFT
    sunset_at: datetime | None = None
    owner_id: uuid.UUID | None = None
    reviewed: bool | None = False
    metric_breakdown_columns: list[str] | None = None
    tags: list[str] | None = None
    field_values: list[ValueIn] | None = None
    meta_values: list[ValueIn] | None = None


# --- errors ------------------------------------------------------------------------------------

class Problems:
    """Every failure of an input (or of every item of a bulk input), reported at once."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, code: ErrorCode, message: str, at: Path) -> None:
        self.errors.append(DomainError(code, message, at))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainErrors(self.errors)


@dataclass
class Where:
    """Where an item sits in the input: `path("name")` -> its field path, `label` the message prefix."""

    base: Path
    label: str = ""

    def path(self, *parts: str | int) -> Path:
        return [*self.base, *(str(p) for p in parts)]

    def say(self, message: str) -> str:
        return f"{self.label}: {message}" if self.label else message


def single() -> Where:
    return Where(["input"])


def item(list_name: str, index: int) -> Where:
    return Where(["input", list_name, str(index)], f"{list_name}[{index}]")


# --- snapshots ---------------------------------------------------------------------------------

SNAPSHOT_KEYS = ("name", "description", "status", "sunsetAt", "ownerId", "reviewed", "metricBreakdownColumns",
                 "tags", "fieldValues", "metaValues")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(e: Event | dict) -> dict:
    """An event's content as JSON (history entries, audit before/after). Accepts a row or the
    column dict of a row about to be inserted."""
    get = e.get if isinstance(e, dict) else lambda k: getattr(e, k)
    status = get("status")
    owner = get("owner_id")
    return {"name": get("name"), "description": get("description") or "",
            "status": status.value if isinstance(status, EventStatus) else status,
            "sunsetAt": _iso(get("sunset_at")), "ownerId": str(owner) if owner else None,
            "reviewed": bool(get("reviewed")), "metricBreakdownColumns": list(get("metric_breakdown_columns") or []),
            "tags": list(get("tags") or []), "fieldValues": list(get("field_values") or []),
            "metaValues": list(get("meta_values") or [])}


def diff(before: dict, after: dict) -> dict:
    """`{key: {"old": ..., "new": ...}}` for the keys whose value changed."""
    return {k: {"old": before.get(k), "new": after.get(k)} for k in after if before.get(k) != after.get(k)}


def history_row(e_org: uuid.UUID, project_id: uuid.UUID, event_id: uuid.UUID, principal: Principal, action: str,
                changes: dict, now: datetime) -> dict:
    return {"id": uuid.uuid4(), "organization_id": e_org, "project_id": project_id, "event_id": event_id,
            "actor_user_id": principal.user_id, "actor_email": principal.email, "action": action,
            "changed_at": now, "changes": changes}


# Many rows in one INSERT with ONE parameter: the rows as a JSON array, unpacked by PostgreSQL
# (jsonb_to_recordset turns JSON arrays into the text[] columns). The statement text is the same for
# 1 or 1,000 rows, so it is compiled and prepared once; a multi-row VALUES list would be compiled
# anew for each row count, with one bind parameter per value (most of the time of a bulk create).
_INSERT_EVENTS = text("""
INSERT INTO events (id, organization_id, project_id, event_type_id, name, description, status, sunset_at, owner_id,
                    reviewed, metric_breakdown_columns, tags, field_values, meta_values, sort_order, drift_count,
                    created_at, updated_at)
SELECT r.id, r.organization_id, r.project_id, r.event_type_id, r.name, r.description, CAST(r.status AS event_status),
       r.sunset_at, r.owner_id, r.reviewed, r.metric_breakdown_columns, r.tags, r.field_values, r.meta_values,
       r.sort_order, 0, r.created_at, r.updated_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    id uuid, organization_id uuid, project_id uuid, event_type_id uuid, name text, description text, status text,
    sunset_at timestamptz, owner_id uuid, reviewed boolean, metric_breakdown_columns text[], tags text[],
    field_values jsonb, meta_values jsonb, sort_order integer, created_at timestamptz, updated_at timestamptz)
""")
_INSERT_HISTORY = text("""
INSERT INTO event_history (id, organization_id, project_id, event_id, actor_user_id, actor_email, action, changed_at,
                           changes)
SELECT r.id, r.organization_id, r.project_id, r.event_id, r.actor_user_id, r.actor_email, r.action, r.changed_at,
       r.changes
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    id uuid, organization_id uuid, project_id uuid, event_id uuid, actor_user_id uuid, actor_email text, action text,
    changed_at timestamptz, changes jsonb)
""")


def _rows_json(rows: list[dict]) -> str:
    return orjson.dumps(rows, default=str).decode()  # aware datetimes, enums natively; asyncpg UUIDs by str


async def insert_events(session: AsyncSession, rows: list[dict]) -> None:
    """Event rows (column dicts) in one INSERT."""
    if rows:
        await session.execute(_INSERT_EVENTS, {"rows": _rows_json(rows)})


async def write_history(session: AsyncSession, rows: list[dict]) -> None:
    """All history rows of a change in one INSERT."""
    if rows:
        await session.execute(_INSERT_HISTORY, {"rows": _rows_json(rows)})


# --- validation --------------------------------------------------------------------------------

def clean_name(value: str | None, at: Where, problems: Problems) -> str | None:
    name = (value or "").strip()
    if not 1 <= len(name) <= NAME_MAX:
        problems.add(ErrorCode.VALIDATION, at.say(f"name must be 1 to {NAME_MAX} characters"), at.path("name"))
        return None
    return name


def clean_strings(values: Sequence[str] | None, what: str, key: str, at: Where, problems: Problems) -> list[str]:
    """Trimmed, non-blank, duplicates dropped (first one kept)."""
    out: list[str] = []
    for i, v in enumerate(values or []):
        v = (v or "").strip()
        if not v:
            problems.add(ErrorCode.VALIDATION, at.say(f"{what} must not be blank"), at.path(key, i))
        elif v not in out:
            out.append(v)
    return out


def clean_sunset(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # a time without an offset is UTC
    return value


def _value_allowed(kind: Any, options: list[str] | None, value: str) -> bool:
    if kind not in (FieldType.ENUM, MetaFieldType.ENUM):
        return True
    return value in (options or []) or bool(_REFERENCE.match(value))


def clean_field_values(values: Sequence[ValueIn] | None, event_type: EventType | None, cat: "Catalog",
                       at: Where, problems: Problems) -> list[dict]:
    out, seen = [], set()
    for i, v in enumerate(values or []):
        f = cat.fields.get(v.ref_id)
        if f is None or (event_type is not None and f.event_type_id != event_type.id):
            what = f"event type `{event_type.name}`" if event_type is not None else "the event's type"
            problems.add(ErrorCode.VALIDATION, at.say(f"field values[{i}]: not a field of {what}"),
                         at.path("fieldValues", i, "fieldId"))
            continue
        if f.id in seen:
            problems.add(ErrorCode.VALIDATION, at.say(f"field `{f.name}` is given twice"),
                         at.path("fieldValues", i, "fieldId"))
            continue
        seen.add(f.id)
        if not _value_allowed(f.field_type, f.enum_options, v.value):
            problems.add(ErrorCode.VALIDATION,
                         at.say(f"`{v.value}` is not an option of enum field `{f.name}` "
                                f"({', '.join(f.enum_options or [])})"),
                         at.path("fieldValues", i, "value"))
            continue
        out.append({"field_id": str(f.id), "value": v.value})
    return out


def clean_meta_values(values: Sequence[ValueIn] | None, cat: "Catalog", at: Where, problems: Problems) -> list[dict]:
    out, seen = [], set()
    for i, v in enumerate(values or []):
        m = cat.meta_fields.get(v.ref_id)
        if m is None:
            problems.add(ErrorCode.VALIDATION, at.say(f"meta values[{i}]: not a meta field of this project"),
                         at.path("metaValues", i, "metaFieldId"))
            continue
        if m.id in seen:
            problems.add(ErrorCode.VALIDATION, at.say(f"meta field `{m.name}` is given twice"),
                         at.path("metaValues", i, "metaFieldId"))
            continue
        seen.add(m.id)
        if not _value_allowed(m.field_type, m.enum_options, v.value):
            problems.add(ErrorCode.VALIDATION,
                         at.say(f"`{v.value}` is not an option of enum meta field `{m.name}` "
                                f"({', '.join(m.enum_options or [])})"),
                         at.path("metaValues", i, "value"))
            continue
        out.append({"meta_field_id": str(m.id), "value": v.value})
    return out


# --- what validation needs, loaded in bulk -------------------------------------------------------

@dataclass
class Catalog:
    """The project's rows an input refers to, loaded with one statement per kind whatever the
    number of items: event types, fields, meta fields, owners (members), and the names taken."""

    project: Project
    types: dict[uuid.UUID, EventType] = field(default_factory=dict)
    fields: dict[uuid.UUID, Field] = field(default_factory=dict)
    meta_fields: dict[uuid.UUID, MetaField] = field(default_factory=dict)
    members: set[uuid.UUID] = field(default_factory=set)
    taken: dict[tuple[uuid.UUID, str], uuid.UUID] = field(default_factory=dict)  # (type, lower name) -> event


async def load_catalog(session: AsyncSession, project: Project, *, type_ids: Iterable[uuid.UUID] = (),
                       field_ids: Iterable[uuid.UUID] = (), meta_field_ids: Iterable[uuid.UUID] = (),
                       owner_ids: Iterable[uuid.UUID] = (), names: Iterable[tuple[uuid.UUID, str]] = ()) -> Catalog:
    cat = Catalog(project)
    type_ids, field_ids = list(set(type_ids)), list(set(field_ids))
    meta_field_ids, owner_ids = list(set(meta_field_ids)), list(set(owner_ids))
    if type_ids:
        rows = await session.execute(select(EventType).where(EventType.id.in_(type_ids),
                                                             EventType.project_id == project.id))
        cat.types = {t.id: t for t in rows.scalars()}
    if field_ids:
        rows = await session.execute(select(Field).where(Field.id.in_(field_ids), Field.project_id == project.id))
        cat.fields = {f.id: f for f in rows.scalars()}
    if meta_field_ids:
        rows = await session.execute(select(MetaField).where(MetaField.id.in_(meta_field_ids),
                                                             MetaField.project_id == project.id))
        cat.meta_fields = {m.id: m for m in rows.scalars()}
    if owner_ids:
        rows = await session.execute(select(Membership.user_id).where(
            Membership.user_id.in_(owner_ids), Membership.organization_id == project.organization_id))
        cat.members = {r[0] for r in rows}
    wanted = {(t, n.lower()) for t, n in names if t in cat.types}
    if wanted:
        lowered = func.lower(Event.name)
        rows = await session.execute(select(Event.event_type_id, lowered, Event.id).where(
            Event.event_type_id.in_({t for t, _ in wanted}), lowered.in_({n for _, n in wanted})))
        cat.taken = {(t, n): i for t, n, i in rows if (t, n) in wanted}
    return cat


def _name_conflict(event_type: EventType, name: str, at: Where, problems: Problems, other: str = "") -> None:
    problems.add(ErrorCode.CONFLICT,
                 at.say(f"event type `{event_type.name}` already has an event named `{name}`{other}"), at.path("name"))


def _is_name_conflict(e: IntegrityError) -> bool:
    return "uq_events_type_name_lower" in str(e.orig)


def _duplicate_name() -> DomainError:
    return DomainError(ErrorCode.CONFLICT, "another event of the same event type has this name (ignoring case)",
                       ["input", "name"])


# --- loading events for a change ------------------------------------------------------------------

async def _changeable_event(session: AsyncSession, principal: Principal, event_id: uuid.UUID, at: Path,
                            lock: bool = True) -> Event:
    principal.require_user()
    q = select(Event).where(Event.id == event_id, *visible(Event, principal))
    if lock:
        q = q.with_for_update()
    event = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if event is None:
        raise not_found("event", at)
    require_plan_role(principal, event.organization_id, event.project_id, Role.editor, "event", at)
    return event


async def _project_events(session: AsyncSession, project: Project, ids: Sequence[uuid.UUID], list_name: str,
                          lock: bool = True) -> dict[uuid.UUID, Event]:
    """The listed events of the project (one statement), or NOT_FOUND naming every missing index."""
    if not ids:
        raise invalid(f"`{list_name}` must not be empty", ["input", list_name])
    if len(ids) > BULK_MAX:
        raise invalid(f"at most {BULK_MAX} events at a time", ["input", list_name])
    q = select(Event).where(Event.id.in_(set(ids)), Event.project_id == project.id)
    if lock:
        q = q.order_by(Event.id).with_for_update()  # id order: concurrent bulk changes lock in the same order
    found = {e.id: e for e in (await session.execute(q.execution_options(populate_existing=True))).scalars()}
    problems = Problems()
    for i, event_id in enumerate(ids):
        if event_id not in found:
            problems.add(ErrorCode.NOT_FOUND, f"{list_name}[{i}]: event not found in this project",
                         ["input", list_name, str(i)])
    problems.raise_if_any()
    return found


def _audit_ids(ids: Sequence[uuid.UUID]) -> list[str]:
    return [str(i) for i in ids[:AUDIT_IDS_MAX]]


def _jsonable(v: Any) -> Any:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, enum.Enum):
        return v.value
    return v


# --- create ------------------------------------------------------------------------------------

def _catalog_refs(specs: Sequence[EventSpec]) -> dict[str, Any]:
    return {"type_ids": [s.event_type_id for s in specs],
            "field_ids": [v.ref_id for s in specs for v in s.field_values or []],
            "meta_field_ids": [v.ref_id for s in specs for v in s.meta_values or []],
            "owner_ids": [s.owner_id for s in specs if s.owner_id is not None],
            "names": [(s.event_type_id, (s.name or "").strip()) for s in specs]}


def _clean_spec(spec: EventSpec, at: Where, cat: Catalog, problems: Problems,
                batch_names: dict[tuple[uuid.UUID, str], int], index: int) -> dict | None:
    before = len(problems.errors)
    event_type = cat.types.get(spec.event_type_id)
    if event_type is None:
        problems.add(ErrorCode.NOT_FOUND, at.say("event type not found in this project"), at.path("eventTypeId"))
    name = clean_name(spec.name, at, problems)
    if name is not None and event_type is not None:
        key = (event_type.id, name.lower())
        if key in cat.taken:
            _name_conflict(event_type, name, at, problems)
        elif key in batch_names:
            _name_conflict(event_type, name, at, problems, f" (events[{batch_names[key]}] of this list)")
        else:
            batch_names[key] = index
    if spec.owner_id is not None and spec.owner_id not in cat.members:
        problems.add(ErrorCode.NOT_FOUND, at.say("owner not found among the organization's members"),
                     at.path("ownerId"))
    tags = clean_strings(spec.tags, "tags", "tags", at, problems)
    columns = clean_strings(spec.metric_breakdown_columns, "metric breakdown columns", "metricBreakdownColumns", at,
                            problems)
    field_values = clean_field_values(spec.field_values, event_type, cat, at, problems) if event_type else []
    meta_values = clean_meta_values(spec.meta_values, cat, at, problems)
    if len(problems.errors) > before:
        return None
    return {"event_type_id": event_type.id, "name": name, "description": spec.description or "",
            "status": spec.status or EventStatus.DRAFT, "sunset_at": clean_sunset(spec.sunset_at),
            "owner_id": spec.owner_id, "reviewed": bool(spec.reviewed), "metric_breakdown_columns": columns,
            "tags": tags, "field_values": field_values, "meta_values": meta_values}


async def _next_order(session: AsyncSession, project_id: uuid.UUID) -> int:
    """New events go after the project's last one."""
    return (await session.execute(select(func.coalesce(func.max(Event.sort_order), -1) + 1)
                                  .where(Event.project_id == project_id))).scalar_one()


Also = Callable[[UnitOfWork, list[uuid.UUID]], Awaitable[None]]


async def _create(rt: Runtime, principal: Principal, project_id: uuid.UUID, specs: Sequence[EventSpec],
                  where: Callable[[int], Where], *, bulk: bool, request_id: str | None,
                  project_field: Path, also: Also | None = None) -> list[Event]:
    try:
        async with rt.db.unit_of_work() as uow:
            s = uow.session
            project = await changeable_project(s, principal, project_id, project_field)
            cat = await load_catalog(s, project, **_catalog_refs(specs))
            problems, batch_names, cleaned = Problems(), {}, []
            for i, spec in enumerate(specs):
                cleaned.append(_clean_spec(spec, where(i), cat, problems, batch_names, i))
            problems.raise_if_any()
            order, now = await _next_order(s, project.id), utcnow()
            rows = [{**c, "id": uuid.uuid4(), "organization_id": project.organization_id, "project_id": project.id,
                     "sort_order": order + i, "created_at": now, "updated_at": now}
                    for i, c in enumerate(cleaned)]
            await insert_events(s, rows)
            await write_history(s, [
                history_row(project.organization_id, project.id, r["id"], principal, "created",
                            {k: {"old": None, "new": v} for k, v in snapshot(r).items()}, now) for r in rows])
            ids = [r["id"] for r in rows]
            if bulk:
                after = {"count": len(rows), "ids": _audit_ids(ids)}
                summary = f"created {len(rows)} events"
            else:
                after, summary = snapshot(rows[0]), f"created event {rows[0]['name']}"
            plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                         entity=PlanEntity.EVENT, action=PlanAction.CREATED, entity_ids=ids, summary=summary,
                         verb="bulk_create" if bulk else None, after=after, request_id=request_id)
            if also is not None:
                await also(uow, ids)
    except IntegrityError as e:
        if _is_name_conflict(e):  # a concurrent request took a name between our check and our insert
            raise DomainError(ErrorCode.CONFLICT, "an event of the same event type was just given one of these names",
                              ["input", "events"] if bulk else ["input", "name"]) from None
        raise
    # What GraphQL reads of the new rows (plain objects: 1,000 ORM instances would cost more than the INSERT)
    return [SimpleNamespace(**r, last_seen_at=None, drift_count=0) for r in rows]  # type: ignore[misc]


async def create_event(rt: Runtime, principal: Principal, spec: EventSpec, *, request_id: str | None = None,
                       also: Also | None = None) -> Event:
    """Create one event; its project is its event type's. `also(uow, [new event id])`: the caller's
    own writes in the same transaction (its error rolls the event back too)."""
    principal.require_user()
    async with rt.db.session() as s:
        project_id = (await s.execute(select(EventType.project_id).where(
            EventType.id == spec.event_type_id, *visible(EventType, principal)))).scalar_one_or_none()
    if project_id is None:
        raise not_found("event type", ["input", "eventTypeId"])
    return (await _create(rt, principal, project_id, [spec], lambda _: single(), bulk=False, request_id=request_id,
                          project_field=["input", "eventTypeId"], also=also))[0]


async def bulk_create_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, specs: Sequence[EventSpec], *,
                             request_id: str | None = None) -> list[Event]:
    """Create all the events or none; every failing item is named by its index."""
    if not specs:
        raise invalid("`events` must not be empty", ["input", "events"])
    if len(specs) > BULK_MAX:
        raise invalid(f"at most {BULK_MAX} events per call", ["input", "events"])
    return await _create(rt, principal, project_id, specs, lambda i: item("events", i), bulk=True,
                         request_id=request_id, project_field=["input", "projectId"])


# --- update ------------------------------------------------------------------------------------

def _not_null(patch: dict, key: str, what: str, problems: Problems) -> None:
    if key in patch and patch[key] is None:
        problems.add(ErrorCode.VALIDATION, f"{what} cannot be null", ["input", key])


async def update_event(rt: Runtime, principal: Principal, event_id: uuid.UUID, patch: dict[str, Any], *,
                       request_id: str | None = None) -> Event:
    """A patch (keys: GraphQL input names; absent keys stay). Name, status and reviewed cannot be
    null; null clears the description, sunset time, owner and the lists."""
    problems = Problems()
    for key, what in (("name", "name"), ("status", "status"), ("reviewed", "reviewed")):
        _not_null(patch, key, what, problems)
    problems.raise_if_any()
    at = single()
    try:
        async with rt.db.unit_of_work() as uow:
            s = uow.session
            event = await _changeable_event(s, principal, event_id, ["input", "id"])
            project = await s.get(Project, event.project_id)
            name = (patch["name"] or "").strip() if "name" in patch else event.name
            fvs, mvs = patch.get("fieldValues") or [], patch.get("metaValues") or []
            cat = await load_catalog(
                s, project, type_ids=[event.event_type_id], field_ids=[v.ref_id for v in fvs],
                meta_field_ids=[v.ref_id for v in mvs],
                owner_ids=[patch["ownerId"]] if patch.get("ownerId") else [],
                names=[(event.event_type_id, name)] if "name" in patch else [])
            changes: dict[str, Any] = {}
            if "name" in patch:
                cleaned = clean_name(patch["name"], at, problems)
                taken_by = cat.taken.get((event.event_type_id, (cleaned or "").lower()))
                if cleaned is not None and taken_by not in (None, event.id):
                    _name_conflict(cat.types[event.event_type_id], cleaned, at, problems)
                changes["name"] = cleaned
            if "description" in patch:
                changes["description"] = patch["description"] or ""
            if "status" in patch:
                changes["status"] = patch["status"]
            if "sunsetAt" in patch:
                changes["sunset_at"] = clean_sunset(patch["sunsetAt"])
            if "ownerId" in patch:
                if patch["ownerId"] is not None and patch["ownerId"] not in cat.members:
                    problems.add(ErrorCode.NOT_FOUND, "owner not found among the organization's members",
                                 ["input", "ownerId"])
                changes["owner_id"] = patch["ownerId"]
            if "reviewed" in patch:
                changes["reviewed"] = bool(patch["reviewed"])
            if "tags" in patch:
                changes["tags"] = clean_strings(patch["tags"], "tags", "tags", at, problems)
            if "metricBreakdownColumns" in patch:
                changes["metric_breakdown_columns"] = clean_strings(
                    patch["metricBreakdownColumns"], "metric breakdown columns", "metricBreakdownColumns", at,
                    problems)
            if "fieldValues" in patch:
                changes["field_values"] = clean_field_values(fvs, cat.types.get(event.event_type_id), cat, at,
                                                             problems)
            if "metaValues" in patch:
                changes["meta_values"] = clean_meta_values(mvs, cat, at, problems)
            problems.raise_if_any()
            before = snapshot(event)
            for key, value in changes.items():
                setattr(event, key, value)
            after = snapshot(event)
            delta = diff(before, after)
            if delta:
                now = utcnow()
                event.updated_at = now
                await s.flush()
                await write_history(s, [history_row(event.organization_id, event.project_id, event.id, principal,
                                                    "updated", delta, now)])
                plan_changed(uow, rt, principal, organization_id=event.organization_id, project_id=event.project_id,
                             entity=PlanEntity.EVENT, action=PlanAction.UPDATED, entity_ids=event.id,
                             summary=f"changed event {event.name}",
                             before={k: v["old"] for k, v in delta.items()},
                             after={k: v["new"] for k, v in delta.items()}, request_id=request_id)
    except IntegrityError as e:
        if _is_name_conflict(e):
            raise _duplicate_name() from None
        raise
    return event


async def bulk_update_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, ids: Sequence[uuid.UUID],
                             patch: dict[str, Any], *, request_id: str | None = None,
                             list_name: str = "ids") -> list[Event]:
    """Set status, sunset time, owner and/or reviewed on all the listed events, or on none.
    Status and reviewed cannot be null; null clears the sunset time and the owner. `list_name`:
    the input's name of `ids` (errors name it and the index)."""
    problems = Problems()
    _not_null(patch, "status", "status", problems)
    _not_null(patch, "reviewed", "reviewed", problems)
    if not patch:
        problems.add(ErrorCode.VALIDATION, "give at least one of status, sunsetAt, ownerId, reviewed", ["input"])
    problems.raise_if_any()
    columns = {"status": "status", "sunsetAt": "sunset_at", "ownerId": "owner_id", "reviewed": "reviewed"}
    values = {columns[k]: (clean_sunset(v) if k == "sunsetAt" else v) for k, v in patch.items()}
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        project = await changeable_project(s, principal, project_id, ["input", "projectId"])
        found = await _project_events(s, project, ids, list_name)
        if values.get("owner_id") is not None:
            cat = await load_catalog(s, project, owner_ids=[values["owner_id"]])
            if values["owner_id"] not in cat.members:
                raise not_found("owner among the organization's members", ["input", "ownerId"])
        now = utcnow()
        befores = {i: snapshot(e) for i, e in found.items()}
        changed = [i for i, e in found.items() if any(getattr(e, c) != v for c, v in values.items())]
        if changed:
            rows = (await s.execute(update(Event).where(Event.id.in_(changed)).values(**values, updated_at=now)
                                    .returning(Event).execution_options(populate_existing=True))).scalars().all()
            for e in rows:
                found[e.id] = e
            await write_history(s, [history_row(project.organization_id, project.id, i, principal, "updated",
                                                diff(befores[i], snapshot(found[i])), now) for i in changed])
            plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                         entity=PlanEntity.EVENT, action=PlanAction.UPDATED, entity_ids=changed,
                         verb="bulk_update", summary=f"changed {len(changed)} events",
                         after={"count": len(changed), "ids": _audit_ids(changed),
                                "set": {k: _jsonable(v) for k, v in patch.items()}},
                         request_id=request_id)
    return [found[i] for i in dict.fromkeys(ids)]


# --- delete ------------------------------------------------------------------------------------

async def delete_event(rt: Runtime, principal: Principal, event_id: uuid.UUID, *,
                       request_id: str | None = None) -> Event:
    """Its history and photos go with it (ON DELETE CASCADE; the photos' stored files after commit);
    the audit entry keeps its content."""
    async with rt.db.unit_of_work() as uow:
        event = await _changeable_event(uow.session, principal, event_id, ["input", "id"])
        await forget_files(uow, rt, event_ids=[event.id])  # its stored photo files go after commit
        await uow.session.delete(event)
        plan_changed(uow, rt, principal, organization_id=event.organization_id, project_id=event.project_id,
                     entity=PlanEntity.EVENT, action=PlanAction.DELETED, entity_ids=event.id,
                     summary=f"deleted event {event.name}", before=snapshot(event), request_id=request_id)
    return event


async def bulk_delete_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, ids: Sequence[uuid.UUID], *,
                             request_id: str | None = None) -> list[uuid.UUID]:
    """Delete all the listed events or none (NOT_FOUND names each index that is not an event of
    the project). One DELETE statement."""
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        project = await changeable_project(s, principal, project_id, ["input", "projectId"])
        found = await _project_events(s, project, ids, "ids")
        unique = list(dict.fromkeys(ids))
        await forget_files(uow, rt, event_ids=unique)
        await s.execute(delete(Event).where(Event.id.in_(unique)).execution_options(synchronize_session=False))
        plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                     entity=PlanEntity.EVENT, action=PlanAction.DELETED, entity_ids=unique, verb="bulk_delete",
                     summary=f"deleted {len(unique)} events",
                     before={"count": len(unique), "names": [found[i].name for i in unique[:AUDIT_IDS_MAX]]},
                     after={"count": len(unique), "ids": _audit_ids(unique)}, request_id=request_id)
    return unique


# --- order ---------------------------------------------------------------------------------------

_RENUMBER = text("""
UPDATE events SET sort_order = v.ord
FROM unnest(CAST(:ids AS uuid[]), CAST(:ords AS integer[])) AS v(id, ord)
WHERE events.id = v.id AND events.sort_order IS DISTINCT FROM v.ord
""").bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))), bindparam("ords", type_=ARRAY(Integer)))


async def _current_order(session: AsyncSession, project_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    """The project's events as (id, sort_order) in list order (one statement)."""
    rows = await session.execute(select(Event.id, Event.sort_order).where(Event.project_id == project_id)
                                 .order_by(Event.sort_order, Event.id))
    return [(r[0], r[1]) for r in rows]


async def _apply_order(s: AsyncSession, principal: Principal, project: Project, current: list[tuple[uuid.UUID, int]],
                       new_ids: list[uuid.UUID], action: str, record: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Give `new_ids` the orders 0..n-1 (one UPDATE, touching only rows whose order differs) and
    write history for the events whose position changed (or only those in `record`). Returns them."""
    old_pos = {event_id: pos for pos, (event_id, _) in enumerate(current)}
    old_order = dict(current)
    moved = [i for pos, i in enumerate(new_ids) if old_pos[i] != pos and (record is None or i in record)]
    if any(old_order[i] != pos for pos, i in enumerate(new_ids)):
        await s.execute(_RENUMBER, {"ids": new_ids, "ords": list(range(len(new_ids)))})
    now = utcnow()
    new_pos = {i: pos for pos, i in enumerate(new_ids)}
    await write_history(s, [history_row(project.organization_id, project.id, i, principal, action,
                                        {"order": {"old": old_order[i], "new": new_pos[i]}}, now) for i in moved])
    return moved


async def reorder_events(rt: Runtime, principal: Principal, project_id: uuid.UUID, ids: Sequence[uuid.UUID], *,
                         request_id: str | None = None) -> int:
    """`ids` is the full ordered list of the project's events: each event once, no other. The
    events take the orders 0..n-1 in that sequence. Returns how many changed position."""
    if not ids:
        raise invalid("`ids` must not be empty", ["input", "ids"])
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        project = await changeable_project(s, principal, project_id, ["input", "projectId"], lock=True)
        current = await _current_order(s, project.id)
        known, seen, problems = {i for i, _ in current}, set(), Problems()
        for i, event_id in enumerate(ids):
            if event_id not in known:
                problems.add(ErrorCode.NOT_FOUND, f"ids[{i}]: event not found in this project", ["input", "ids", str(i)])
            elif event_id in seen:
                problems.add(ErrorCode.VALIDATION, f"ids[{i}]: event listed twice", ["input", "ids", str(i)])
            seen.add(event_id)
        missing = len(known - seen)
        if missing:
            problems.add(ErrorCode.VALIDATION, f"the list must hold every event of the project: {missing} missing "
                                               f"(someone may have added events: refetch the list)", ["input", "ids"])
        problems.raise_if_any()
        moved = await _apply_order(s, principal, project, current, list(ids), "reordered")
        plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                     entity=PlanEntity.EVENT, action=PlanAction.UPDATED, entity_ids=moved, verb="reorder",
                     summary=f"reordered events ({len(moved)} moved)",
                     after={"count": len(moved), "ids": _audit_ids(moved)}, activity=False, request_id=request_id)
    return len(moved)


async def move_event(rt: Runtime, principal: Principal, event_id: uuid.UUID, direction: str,
                     visible_ids: Sequence[uuid.UUID] | None = None, *, request_id: str | None = None) -> Event:
    """Swap the event with its neighbour above (`up`) or below (`down`) in the list the client
    shows: `visible_ids` in display order (a filtered view; IDs that are not events of the project
    are ignored), or the whole project's list when absent. At the top (bottom) nothing changes.
    The project's orders are renumbered 0..n-1 on the way, so ties never block a move."""
    async with rt.db.unit_of_work() as uow:
        s = uow.session
        event = await _changeable_event(s, principal, event_id, ["input", "id"], lock=False)
        project = await changeable_project(s, principal, event.project_id, ["input", "id"], lock=True)
        current = await _current_order(s, project.id)
        full = [i for i, _ in current]
        if event.id not in set(full):
            raise not_found("event", ["input", "id"])
        known = set(full)
        shown = full if visible_ids is None else [i for i in dict.fromkeys(visible_ids) if i in known]
        if event.id not in shown:
            raise invalid("the event is not in `visibleEventIds`", ["input", "visibleEventIds"])
        at = shown.index(event.id)
        other = at - 1 if direction == Direction.UP else at + 1
        if 0 <= other < len(shown):
            neighbour = shown[other]
            new = list(full)
            a, b = new.index(event.id), new.index(neighbour)
            new[a], new[b] = new[b], new[a]
            moved = await _apply_order(s, principal, project, current, new, "moved", {event.id, neighbour})
            if moved:
                plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                             entity=PlanEntity.EVENT, action=PlanAction.UPDATED, entity_ids=moved, verb="move",
                             summary=f"moved event {event.name} {direction}", after={"direction": direction},
                             activity=False, request_id=request_id)
    async with rt.db.session() as s:
        return (await s.execute(select(Event).where(Event.id == event.id))).scalar_one()


# --- queries -------------------------------------------------------------------------------------

@dataclass
class EventFilter:
    event_type_id: uuid.UUID | None = None
    search: str | None = None  # part of the name, ignoring case
    statuses: list[EventStatus] = field(default_factory=list)
    tag: str | None = None
    silent_since_days: int | None = None  # not seen by a scan for this many days, or never
    field_value: str | None = None  # some field value equals this
    meta_value: str | None = None  # some meta value equals this


def _like_escape(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def events_query(principal: Principal, project_id: uuid.UUID, f: EventFilter | None = None,
                 now: datetime | None = None) -> Select:
    """The project's events matching `f` (the caller's access to the project is checked by the
    caller: GraphQL loads the project first). Each filter is served by an index of models.py."""
    f = f or EventFilter()
    q = select(Event).where(Event.project_id == project_id, *visible(Event, principal))
    if f.event_type_id is not None:
        q = q.where(Event.event_type_id == f.event_type_id)
    if f.search and f.search.strip():
        q = q.where(Event.name.ilike(f"%{_like_escape(f.search.strip())}%", escape="\\"))
    if f.statuses:
        q = q.where(Event.status.in_(f.statuses))
    if f.tag is not None:
        q = q.where(Event.tags.bool_op("@>")(bindparam(None, [f.tag], type_=PG_ARRAY(Text))))  # the GIN index
    if f.silent_since_days is not None:
        if not 0 <= f.silent_since_days <= SILENT_DAYS_MAX:
            raise invalid(f"silentSinceDays must be 0 to {SILENT_DAYS_MAX}", ["filter", "silentSinceDays"])
        cutoff = (now or utcnow()) - timedelta(days=f.silent_since_days)
        q = q.where(Event.last_seen_at.is_(None) | (Event.last_seen_at < cutoff))
    if f.field_value is not None:
        q = q.where(Event.field_values.contains([{"value": f.field_value}]))
    if f.meta_value is not None:
        q = q.where(Event.meta_values.contains([{"value": f.meta_value}]))
    return q


LAST_SEEN = func.coalesce(Event.last_seen_at, literal(EPOCH, DateTime(timezone=True)))


async def tag_counts(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> list[tuple[str, int]]:
    """The project's distinct tags with how many events carry each, by tag (one GROUP BY)."""
    tag = func.unnest(Event.tags).label("tag")
    sub = select(tag).where(Event.project_id == project_id, *visible(Event, principal)).subquery()
    async with rt.db.session() as s:
        rows = await s.execute(select(sub.c.tag, func.count()).group_by(sub.c.tag).order_by(sub.c.tag))
    return [(r[0], r[1]) for r in rows]


__all__ = [
    "BULK_MAX", "NAME_MAX", "Catalog", "Direction", "EventFilter", "EventSpec", "LAST_SEEN", "UNSET", "ValueIn",
    "bulk_create_events", "bulk_delete_events", "bulk_update_events", "create_event", "delete_event", "diff",
    "events_query", "move_event", "reorder_events", "snapshot", "tag_counts", "update_event",
]
