"""Fields of an event type (seed 003, tag `fields`): create, bulk create, update, reorder, delete,
and the list loader behind `EventType.fields`.

Rules (each a VALIDATION user error naming the input field; duplicates are CONFLICT):
- name 1..100 characters (trimmed), unique in the event type, fixed once created;
- display name 1..255 characters (trimmed);
- type one of FieldType (changeable); ENUM needs a non-empty list of distinct, non-blank options
  (at most ENUM_OPTIONS_MAX, each at most ENUM_OPTION_MAX characters); other types take none
  (switching a field away from ENUM drops its options);
- required false and sensitivity NONE by default;
- data contract: `contractRequiredMaxNullRate` 0..1 and only on required fields, `contractRegex` a
  regular expression that compiles (at most REGEX_MAX characters; blank means none),
  `contractMinValue <= contractMaxValue`, `contractMaxBadRate` 0..1 (0 by default);
- `order`: where the field goes; absent, it goes after the type's last field.

Editors change fields; every change is audited and announced (changes.plan_changed). Deleting a
field also removes its values from the events of its type and the relations that join on it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Uuid, cast, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import utcnow
from server.domains.plan.access import visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed, update_recorded
from server.domains.plan.models import Event, EventType, Field, FieldType, Relation, Sensitivity
from server.domains.plan.projects import UNSET
from server.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

NAME_MAX = 100
DISPLAY_NAME_MAX = 255
ENUM_OPTIONS_MAX = 1000
ENUM_OPTION_MAX = 255
REGEX_MAX = 1000
BULK_MAX = 1000
ORDER_MAX = 2**31 - 1  # `order` is a GraphQL Int and an INTEGER column


def after_last(last: int | None) -> int:
    """The order of an item appended after `last` (the largest order so far, None for none)."""
    return 0 if last is None else min(last + 1, ORDER_MAX)

Path = list[str]


def conflict(message: str, field: Path | None = None) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message, field)


# --- checks shared with event types and meta fields -------------------------------------------

class Errors:
    """Collects validation failures so one answer names every bad input field."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def check(self, fn: Any, *args: Any, default: Any = None) -> Any:
        try:
            return fn(*args)
        except DomainErrors as e:
            self.errors.extend(e.errors)
        except DomainError as e:
            self.errors.append(e)
        return default

    def add(self, error: DomainError) -> None:
        self.errors.append(error)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainErrors(self.errors)


def clean_name(value: str | None, at: Path, maximum: int = NAME_MAX) -> str:
    name = (value or "").strip()
    if not 1 <= len(name) <= maximum:
        raise invalid(f"name must be 1 to {maximum} characters", at)
    return name


def clean_display_name(value: str | None, at: Path) -> str:
    name = (value or "").strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX:
        raise invalid(f"display name must be 1 to {DISPLAY_NAME_MAX} characters", at)
    return name


def not_null(value: Any, what: str, at: Path) -> Any:
    if value is None:
        raise invalid(f"{what} cannot be null", at)
    return value


def clean_enum_options(options: Sequence[str] | None, is_enum: bool, at: Path) -> list[str] | None:
    """ENUM types need distinct, non-blank options; other types take none."""
    if not is_enum:
        if options:
            raise invalid("enum options apply to ENUM fields only", at)
        return None
    if not options:
        raise invalid("an ENUM field needs at least one enum option", at)
    if len(options) > ENUM_OPTIONS_MAX:
        raise invalid(f"at most {ENUM_OPTIONS_MAX} enum options", at)
    seen: set[str] = set()
    for i, option in enumerate(options):
        if not option.strip() or len(option) > ENUM_OPTION_MAX:
            raise invalid(f"enum options must be 1 to {ENUM_OPTION_MAX} characters and not blank", [*at, str(i)])
        if option in seen:
            raise invalid(f"enum option `{option}` is listed twice", [*at, str(i)])
        seen.add(option)
    return list(options)


def _rate(value: float | None, what: str, at: Path) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise invalid(f"{what} must be between 0 and 1", at)
    return value


def _regex(value: str | None, at: Path) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > REGEX_MAX:
        raise invalid(f"the regular expression must be at most {REGEX_MAX} characters", at)
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as e:
        raise invalid(f"not a valid regular expression: {e}", at) from None
    return value


# --- cleaned definitions ---------------------------------------------------------------------

@dataclass
class FieldSpec:
    """A field definition as a client sent it (create) or as it would be after a patch (update)."""

    name: str | None = None
    display_name: str | None = None
    field_type: FieldType | None = None
    is_required: bool | None = False
    enum_options: list[str] | None = None
    description: str | None = ""
    order: int | None = None
    sensitivity: Sensitivity | None = Sensitivity.NONE
    contract_required_max_null_rate: float | None = None
    contract_regex: str | None = None
    contract_min_value: float | None = None
    contract_max_value: float | None = None
    contract_max_bad_rate: float | None = 0.0


_INPUT_NAMES = {
    "name": "name", "display_name": "displayName", "field_type": "fieldType", "is_required": "isRequired",
    "enum_options": "enumOptions", "description": "description", "order": "order", "sensitivity": "sensitivity",
    "contract_required_max_null_rate": "contractRequiredMaxNullRate", "contract_regex": "contractRegex",
    "contract_min_value": "contractMinValue", "contract_max_value": "contractMaxValue",
    "contract_max_bad_rate": "contractMaxBadRate",
}


def _clean_body(spec: FieldSpec, at: Path, errors: Errors, *, with_name: bool) -> dict[str, Any]:
    """Every rule of a field definition, on the whole (merged) definition; the cleaned columns."""
    def p(key: str) -> Path:
        return [*at, _INPUT_NAMES[key]]

    out: dict[str, Any] = {}
    if with_name:
        out["name"] = errors.check(clean_name, spec.name, p("name"))
    out["display_name"] = errors.check(clean_display_name, spec.display_name, p("display_name"))
    field_type = errors.check(not_null, spec.field_type, "the field type", p("field_type"))
    out["field_type"] = field_type
    out["is_required"] = errors.check(not_null, spec.is_required, "isRequired", p("is_required"))
    if field_type is not None:
        out["enum_options"] = errors.check(clean_enum_options, spec.enum_options, field_type == FieldType.ENUM,
                                           p("enum_options"))
    out["description"] = spec.description or ""
    out["sensitivity"] = spec.sensitivity if spec.sensitivity is not None else Sensitivity.NONE
    null_rate = errors.check(_rate, spec.contract_required_max_null_rate, "contractRequiredMaxNullRate",
                             p("contract_required_max_null_rate"))
    if null_rate is not None and out["is_required"] is False:
        errors.add(invalid("contractRequiredMaxNullRate applies to required fields only (set isRequired, "
                           "or clear it)", p("contract_required_max_null_rate")))
    out["contract_required_max_null_rate"] = null_rate
    out["contract_regex"] = errors.check(_regex, spec.contract_regex, p("contract_regex"))
    low, high = spec.contract_min_value, spec.contract_max_value
    if low is not None and high is not None and low > high:
        errors.add(invalid("contractMinValue must not exceed contractMaxValue", p("contract_min_value")))
    out["contract_min_value"], out["contract_max_value"] = low, high
    bad_rate = spec.contract_max_bad_rate if spec.contract_max_bad_rate is not None else 0.0
    out["contract_max_bad_rate"] = errors.check(_rate, bad_rate, "contractMaxBadRate", p("contract_max_bad_rate"))
    return out


ItemPath = Callable[[int], Path]


def list_item(at: Path) -> ItemPath:
    """Item i of the list at `at`: `["input", "fields", "3"]`."""
    return lambda i: [*at, str(i)]


def clean_definitions(specs: Sequence[FieldSpec], item_at: ItemPath) -> list[dict[str, Any]]:
    """Clean new field definitions; `item_at(i)` is where item i sits in the input (so every error
    names its index); a name given twice is a CONFLICT at the later item."""
    errors = Errors()
    cleaned: list[dict[str, Any]] = []
    first_at: dict[str, int] = {}
    for i, spec in enumerate(specs):
        item = _clean_body(spec, item_at(i), errors, with_name=True)
        item["sort_order"] = spec.order
        name = item["name"]
        if name is not None:
            if name in first_at:
                errors.add(conflict(f"field `{name}` is defined twice (items {first_at[name]} and {i})",
                                    [*item_at(i), "name"]))
            else:
                first_at[name] = i
        cleaned.append(item)
    errors.raise_if_any()
    return cleaned


def snapshot(f: Field) -> dict:
    """What the audit log keeps of a field."""
    return {"name": f.name, "display_name": f.display_name, "field_type": f.field_type.value,
            "is_required": f.is_required, "enum_options": f.enum_options, "description": f.description,
            "order": f.sort_order, "sensitivity": f.sensitivity.value,
            "contract_required_max_null_rate": f.contract_required_max_null_rate,
            "contract_regex": f.contract_regex, "contract_min_value": f.contract_min_value,
            "contract_max_value": f.contract_max_value, "contract_max_bad_rate": f.contract_max_bad_rate}


# --- shared with event types -----------------------------------------------------------------

async def changeable_event_type(session: AsyncSession, principal: Principal, event_type_id: uuid.UUID,
                                field: Path | None, *, lock: str | None = None, minimum: Any = None,
                                what: str = "event type") -> EventType:
    """The event type if the principal may change it (editors; `minimum` another role), else
    NOT_FOUND (strangers, other projects of a bound key) or FORBIDDEN. `lock`: "share" (children
    are added: FOR NO KEY UPDATE, which still lets events reference the type) or "update" (the type
    is deleted: FOR UPDATE, which also waits for and then blocks new children)."""
    from server.domains.accounts.models import Role
    from server.domains.plan.access import require_plan_role

    principal.require_user()
    q = select(EventType).where(EventType.id == event_type_id, *visible(EventType, principal))
    if lock == "share":
        q = q.with_for_update(key_share=True)
    elif lock == "update":
        q = q.with_for_update()
    row = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if row is None:
        raise not_found(what, field)
    require_plan_role(principal, row.organization_id, row.project_id, minimum or Role.editor, what, field)
    return row


async def insert_fields(session: AsyncSession, event_type: EventType, cleaned: list[dict[str, Any]],
                        item_at: ItemPath) -> list[Field]:
    """Insert cleaned definitions into a (locked) event type: names already in the type are a
    CONFLICT naming the item; items without an order go after the type's last field, in the
    order given."""
    names = [c["name"] for c in cleaned]
    taken = set((await session.execute(select(Field.name).where(
        Field.event_type_id == event_type.id, Field.name.in_(names)))).scalars().all())
    if taken:
        raise DomainErrors([conflict(f"event type `{event_type.name}` already has a field `{c['name']}`",
                                     [*item_at(i), "name"]) for i, c in enumerate(cleaned) if c["name"] in taken])
    next_order = 0
    if any(c["sort_order"] is None for c in cleaned):
        last = (await session.execute(select(func.max(Field.sort_order)).where(
            Field.event_type_id == event_type.id))).scalar_one()
        next_order = after_last(last)
    now = utcnow()
    rows = []
    for c in cleaned:
        order = c.pop("sort_order")
        if order is None:
            order, next_order = next_order, after_last(next_order)
        rows.append(Field(id=uuid.uuid4(), organization_id=event_type.organization_id,
                          project_id=event_type.project_id, event_type_id=event_type.id, sort_order=order,
                          created_at=now, updated_at=now, **c))
    session.add_all(rows)
    await session.flush()
    return rows


def _is_name_conflict(e: IntegrityError) -> bool:
    return "uq_fields_type_name" in str(e.orig)


async def _locked_field(session: AsyncSession, principal: Principal, field_id: uuid.UUID, *,
                        for_delete: bool = False) -> Field:
    from server.domains.accounts.models import Role
    from server.domains.plan.access import require_plan_role

    principal.require_user()
    q = select(Field).where(Field.id == field_id, *visible(Field, principal))
    q = q.with_for_update() if for_delete else q.with_for_update(key_share=True)
    row = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if row is None:
        raise not_found("field", ["input", "id"])
    require_plan_role(principal, row.organization_id, row.project_id, Role.editor, "field", ["input", "id"])
    return row


def _announce_created(uow: Any, rt: Runtime, principal: Principal, event_type: EventType, rows: list[Field],
                      verb: str | None, request_id: str | None) -> None:
    names = [r.name for r in rows]
    plan_changed(uow, rt, principal, organization_id=event_type.organization_id, project_id=event_type.project_id,
                 entity=PlanEntity.FIELD, action=PlanAction.CREATED, entity_ids=[r.id for r in rows],
                 summary=(f"added field {names[0]} to event type {event_type.name}" if len(rows) == 1 else
                          f"added {len(rows)} fields to event type {event_type.name}"),
                 verb=verb, after=snapshot(rows[0]) if len(rows) == 1 else {"count": len(rows), "names": names[:100]},
                 request_id=request_id)


async def create_fields(rt: Runtime, principal: Principal, event_type_id: uuid.UUID, specs: Sequence[FieldSpec], *,
                        single: bool = False, request_id: str | None = None) -> tuple[EventType, list[Field]]:
    """`fieldCreate` (`single`: errors name `input.<field>`) and `fieldsBulkCreate` (errors name
    `input.fields.<index>.<field>`; non-empty, at most BULK_MAX, all or nothing)."""
    item_at: ItemPath = (lambda i: ["input"]) if single else list_item(["input", "fields"])
    if not single:
        if not specs:
            raise invalid("give at least one field", ["input", "fields"])
        if len(specs) > BULK_MAX:
            raise invalid(f"at most {BULK_MAX} fields at once", ["input", "fields"])
    cleaned = clean_definitions(specs, item_at)
    try:
        async with rt.db.unit_of_work() as uow:
            event_type = await changeable_event_type(uow.session, principal, event_type_id, ["input", "eventTypeId"],
                                                     lock="share")
            rows = await insert_fields(uow.session, event_type, cleaned, item_at)
            _announce_created(uow, rt, principal, event_type, rows, None if single else "bulk_create", request_id)
    except IntegrityError as e:
        if _is_name_conflict(e):  # a concurrent insert the type lock did not cover (should not happen)
            raise conflict("another field of this event type took one of these names just now",
                           ["input", "name"] if single else ["input", "fields"]) from None
        raise
    return event_type, rows


def _spec_of(row: Field) -> FieldSpec:
    return FieldSpec(name=row.name, display_name=row.display_name, field_type=row.field_type,
                     is_required=row.is_required, enum_options=list(row.enum_options) if row.enum_options else None,
                     description=row.description, order=row.sort_order, sensitivity=row.sensitivity,
                     contract_required_max_null_rate=row.contract_required_max_null_rate,
                     contract_regex=row.contract_regex, contract_min_value=row.contract_min_value,
                     contract_max_value=row.contract_max_value, contract_max_bad_rate=row.contract_max_bad_rate)


async def update_field(rt: Runtime, principal: Principal, field_id: uuid.UUID, changes: dict[str, Any], *,
                       request_id: str | None = None) -> Field:
    """A patch: `changes` maps FieldSpec attributes (not `name`: fixed once created) to new values,
    None for an explicit null. Null clears the description and the contract bounds, resets
    `contractMaxBadRate` to 0, and is refused for the display name, type, isRequired, order and
    sensitivity. The whole resulting definition is checked (an ENUM keeps needing options, a
    null-rate contract needs a required field); leaving ENUM drops the options."""
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    async with rt.db.unit_of_work() as uow:
        row = await _locked_field(uow.session, principal, field_id)
        spec = _spec_of(row)
        errors = Errors()
        for key in ("display_name", "field_type", "is_required", "order", "sensitivity"):
            if key in changes and changes[key] is None:
                errors.add(invalid(f"{_INPUT_NAMES[key]} cannot be null", ["input", _INPUT_NAMES[key]]))
                changes.pop(key)
        for key, value in changes.items():
            setattr(spec, key, value)
        if spec.field_type != FieldType.ENUM and "enum_options" not in changes:
            spec.enum_options = None
        cleaned = _clean_body(spec, ["input"], errors, with_name=False)
        errors.raise_if_any()
        cleaned["sort_order"] = spec.order
        await update_recorded(uow, rt, principal, row, cleaned, snapshot, entity=PlanEntity.FIELD,
                              summary=lambda f: f"changed field {f.name}", request_id=request_id)
    return row


async def reorder_fields(rt: Runtime, principal: Principal, event_type_id: uuid.UUID, field_ids: list[uuid.UUID], *,
                         request_id: str | None = None) -> EventType:
    """`fieldIds` must list every field of the type exactly once; field i gets order i."""
    async with rt.db.unit_of_work() as uow:
        event_type = await changeable_event_type(uow.session, principal, event_type_id, ["input", "eventTypeId"],
                                                 lock="share")
        current = set((await uow.session.execute(select(Field.id).where(
            Field.event_type_id == event_type.id))).scalars().all())
        errors, seen = Errors(), set()
        for i, fid in enumerate(field_ids):
            if fid in seen:
                errors.add(invalid("this field is listed twice", ["input", "fieldIds", str(i)]))
            elif fid not in current:
                errors.add(invalid("not a field of this event type", ["input", "fieldIds", str(i)]))
            seen.add(fid)
        missing = len(current - seen)
        if missing:
            errors.add(invalid(f"list every field of the event type: {missing} missing", ["input", "fieldIds"]))
        errors.raise_if_any()
        if field_ids:
            position = func.array_position(literal(list(field_ids), ARRAY(Uuid)), Field.id) - 1
            result = await uow.session.execute(
                update(Field).where(Field.event_type_id == event_type.id, Field.sort_order != position)
                .values(sort_order=position, updated_at=utcnow()).execution_options(synchronize_session=False))
            if result.rowcount:
                plan_changed(uow, rt, principal, organization_id=event_type.organization_id,
                             project_id=event_type.project_id, entity=PlanEntity.FIELD, action=PlanAction.UPDATED,
                             entity_ids=field_ids, summary=f"reordered the fields of event type {event_type.name}",
                             verb="reorder", after={"order": [str(i) for i in field_ids][:100]}, activity=False,
                             request_id=request_id)
    return event_type


async def delete_field(rt: Runtime, principal: Principal, field_id: uuid.UUID, *,
                       request_id: str | None = None) -> Field:
    """Delete a field; its values leave the events of its type, and relations joining on it go
    (announced as deleted relations)."""
    async with rt.db.unit_of_work() as uow:
        row = await _locked_field(uow.session, principal, field_id, for_delete=True)
        relation_ids = list((await uow.session.execute(select(Relation.id).where(
            or_(Relation.source_field_id == row.id, Relation.target_field_id == row.id)))).scalars().all())
        stripped = await strip_values(uow.session, Event.field_values, "field_id", row.id,
                                      Event.event_type_id == row.event_type_id)
        await uow.session.delete(row)
        await uow.session.flush()
        plan_changed(uow, rt, principal, organization_id=row.organization_id, project_id=row.project_id,
                     entity=PlanEntity.FIELD, action=PlanAction.DELETED, entity_ids=row.id,
                     summary=f"deleted field {row.name}",
                     before={**snapshot(row), "events_with_values": stripped, "relations": len(relation_ids)},
                     request_id=request_id)
        if relation_ids:
            plan_changed(uow, rt, principal, organization_id=row.organization_id, project_id=row.project_id,
                         entity=PlanEntity.RELATION, action=PlanAction.DELETED, entity_ids=relation_ids,
                         summary=f"relations on field {row.name} went with it", verb="cascade_delete",
                         activity=False, request_id=request_id)
    return row


async def strip_values(session: AsyncSession, column: Any, key: str, removed_id: uuid.UUID, scope: Any) -> int:
    """Remove `{key: removed_id, ...}` entries from a JSONB list column of the events in `scope`
    (one UPDATE, found through the column's GIN index); how many events changed."""
    probe = cast(func.jsonb_build_array(func.jsonb_build_object(key, str(removed_id))), JSONB)
    element = func.jsonb_array_elements(column).table_valued("value").alias("v")
    kept = (select(func.coalesce(func.jsonb_agg(element.c.value), cast(text("'[]'"), JSONB)))
            .select_from(element)
            .where(element.c.value.op("->>")(key).is_distinct_from(str(removed_id)))
            .scalar_subquery())
    result = await session.execute(update(Event).where(scope, column.bool_op("@>")(probe))
                                   .values({column.key: kept}).execution_options(synchronize_session=False))
    return result.rowcount or 0


# --- loaders ---------------------------------------------------------------------------------

async def load_fields_by_event_type(rt: Runtime, principal: Principal,
                                    event_type_ids: list[uuid.UUID]) -> list[list[Field]]:
    """The fields of many event types in one statement, each list by (order, id)."""
    if not event_type_ids or not principal.authenticated:
        return [[] for _ in event_type_ids]
    async with rt.db.session() as s:
        rows = (await s.execute(select(Field).where(Field.event_type_id.in_(event_type_ids), *visible(Field, principal))
                                .order_by(Field.event_type_id, Field.sort_order, Field.id))).scalars().all()
    by_type: dict[uuid.UUID, list[Field]] = {}
    for r in rows:
        by_type.setdefault(r.event_type_id, []).append(r)
    return [by_type.get(i, []) for i in event_type_ids]


__all__ = [
    "BULK_MAX", "FieldSpec", "changeable_event_type", "clean_definitions", "create_fields", "delete_field",
    "insert_fields", "list_item", "load_fields_by_event_type", "reorder_fields", "strip_values", "update_field",
]
