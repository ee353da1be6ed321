"""Meta fields of a project (seed 003, tag `meta-fields`): project-wide context fields every event
may carry (owning team, ticket link, launch date, ...). Create, update, delete, list.

Rules (VALIDATION user errors naming the input field; a duplicate name is a CONFLICT):
- name 1..100 characters (trimmed), unique in the project, fixed once created; display name
  1..255 characters (trimmed);
- type one of MetaFieldType; ENUM needs a non-empty list of distinct options, other types take
  none (switching away from ENUM drops them);
- default value (blank means none) valid for the type: STRING at most VALUE_MAX characters, URL an
  absolute http(s) URL, BOOLEAN `true`/`false`, ENUM one of the options, DATE `YYYY-MM-DD`;
- link template (blank means none): an absolute http(s) URL of at most URL_MAX characters once
  `{value}` (the event's value) is filled in, e.g. `https://jira.example.com/browse/{value}`;
- required false and sensitivity NONE by default; order absent: after the project's last one.

Editors change meta fields; every change is audited and announced (changes.plan_changed).
Deleting a meta field also removes its values from the project's events.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from server.db.base import utcnow
from server.domains.accounts.models import Role
from server.domains.plan.access import changeable_project, readable_project, require_plan_role, visible
from server.domains.plan.changes import PlanAction, PlanEntity, plan_changed, update_recorded
from server.domains.plan.fields import (Errors, after_last, clean_display_name, clean_enum_options, clean_name,
                                        conflict, strip_values)
from server.domains.plan.models import Event, MetaField, MetaFieldType, Sensitivity
from server.domains.plan.projects import UNSET
from server.errors import DomainError, invalid, not_found
from server.runtime import Runtime
from server.security.principal import Principal

NAME_MAX = 100
VALUE_MAX = 10_000
URL_MAX = 2000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_INPUT_NAMES = {"display_name": "displayName", "field_type": "fieldType", "is_required": "isRequired",
                "enum_options": "enumOptions", "default_value": "defaultValue", "link_template": "linkTemplate",
                "order": "order", "sensitivity": "sensitivity"}


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)


def clean_default(value: str | None, field_type: MetaFieldType | None, options: list[str] | None,
                  at: list[str]) -> str | None:
    if value is None or not value.strip() or field_type is None:
        return None
    if field_type == MetaFieldType.STRING:
        if len(value) > VALUE_MAX:
            raise invalid(f"the default value must be at most {VALUE_MAX} characters", at)
    elif field_type == MetaFieldType.URL:
        if len(value) > URL_MAX or not is_http_url(value.strip()):
            raise invalid(f"the default value of a URL meta field must be an http(s) URL of at most {URL_MAX} "
                          "characters", at)
        value = value.strip()
    elif field_type == MetaFieldType.BOOLEAN:
        if value.strip().lower() not in ("true", "false"):
            raise invalid("the default value of a BOOLEAN meta field must be `true` or `false`", at)
        value = value.strip().lower()
    elif field_type == MetaFieldType.ENUM:
        if options is not None and value not in options:
            raise invalid(f"the default value `{value[:100]}` is not one of the enum options", at)
    elif field_type == MetaFieldType.DATE:
        try:
            if not _DATE.match(value.strip()):
                raise ValueError
            date.fromisoformat(value.strip())
        except ValueError:
            raise invalid("the default value of a DATE meta field must be a date `YYYY-MM-DD`", at) from None
        value = value.strip()
    return value


def clean_link_template(value: str | None, at: list[str]) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > URL_MAX or not is_http_url(value.replace("{value}", "x")):
        raise invalid(f"the link template must be an http(s) URL of at most {URL_MAX} characters, with `{{value}}` "
                      "where the event's value goes", at)
    return value


def _clean_body(values: dict[str, Any], errors: Errors) -> dict[str, Any]:
    """Every rule on a whole (new or merged) definition; the cleaned columns."""
    def p(key: str) -> list[str]:
        return ["input", _INPUT_NAMES[key]]

    out: dict[str, Any] = {"display_name": errors.check(clean_display_name, values["display_name"], p("display_name"))}
    field_type = values["field_type"]
    out["field_type"] = field_type
    out["is_required"] = values["is_required"]
    options = errors.check(clean_enum_options, values["enum_options"], field_type == MetaFieldType.ENUM,
                           p("enum_options"), default=UNSET)
    out["enum_options"] = None if options is UNSET else options
    out["default_value"] = errors.check(clean_default, values["default_value"], field_type,
                                        None if options is UNSET else options, p("default_value"))
    out["link_template"] = errors.check(clean_link_template, values["link_template"], p("link_template"))
    out["sensitivity"] = values["sensitivity"]
    return out


def snapshot(m: MetaField) -> dict:
    return {"name": m.name, "display_name": m.display_name, "field_type": m.field_type.value,
            "is_required": m.is_required, "enum_options": m.enum_options, "default_value": m.default_value,
            "link_template": m.link_template, "order": m.sort_order, "sensitivity": m.sensitivity.value}


def _name_taken(name: str) -> DomainError:
    return conflict(f"this project already has a meta field named `{name}`", ["input", "name"])


async def create_meta_field(rt: Runtime, principal: Principal, project_id: uuid.UUID, *, name: str | None,
                            display_name: str | None, field_type: MetaFieldType, is_required: bool = False,
                            enum_options: list[str] | None = None, default_value: str | None = None,
                            link_template: str | None = None, order: int | None = None,
                            sensitivity: Sensitivity = Sensitivity.NONE,
                            request_id: str | None = None) -> MetaField:
    errors = Errors()
    name = errors.check(clean_name, name, ["input", "name"], NAME_MAX)
    body = _clean_body({"display_name": display_name, "field_type": field_type, "is_required": bool(is_required),
                        "enum_options": enum_options, "default_value": default_value,
                        "link_template": link_template, "sensitivity": sensitivity or Sensitivity.NONE}, errors)
    errors.raise_if_any()
    try:
        async with rt.db.unit_of_work() as uow:
            project = await changeable_project(uow.session, principal, project_id, ["input", "projectId"], lock=True)
            taken = (await uow.session.execute(select(MetaField.id).where(
                MetaField.project_id == project.id, MetaField.name == name))).first()
            if taken:
                raise _name_taken(name)
            if order is None:
                last = (await uow.session.execute(select(func.max(MetaField.sort_order)).where(
                    MetaField.project_id == project.id))).scalar_one()
                order = after_last(last)
            now = utcnow()
            row = MetaField(id=uuid.uuid4(), organization_id=project.organization_id, project_id=project.id, name=name,
                            sort_order=order, created_at=now, updated_at=now, **body)
            uow.session.add(row)
            await uow.session.flush()
            plan_changed(uow, rt, principal, organization_id=project.organization_id, project_id=project.id,
                         entity=PlanEntity.META_FIELD, action=PlanAction.CREATED, entity_ids=row.id,
                         summary=f"created meta field {name}", after=snapshot(row), request_id=request_id)
    except IntegrityError as e:
        if "uq_meta_fields_project_name" in str(e.orig):
            raise _name_taken(name) from None
        raise
    return row


async def _locked(session: Any, principal: Principal, meta_field_id: uuid.UUID, for_delete: bool = False) -> MetaField:
    principal.require_user()
    q = select(MetaField).where(MetaField.id == meta_field_id, *visible(MetaField, principal))
    q = q.with_for_update() if for_delete else q.with_for_update(key_share=True)
    row = (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()
    if row is None:
        raise not_found("meta field", ["input", "id"])
    require_plan_role(principal, row.organization_id, row.project_id, Role.editor, "meta field", ["input", "id"])
    return row


async def update_meta_field(rt: Runtime, principal: Principal, meta_field_id: uuid.UUID, changes: dict[str, Any], *,
                            request_id: str | None = None) -> MetaField:
    """A patch (`changes` by column name, None for an explicit null; the name is fixed). Null clears
    the enum options, default value and link template; it is refused for the display name, type,
    isRequired, order and sensitivity. The whole result is checked: a default value the new type
    or options no longer allow is an error on `defaultValue` (change or clear it)."""
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    async with rt.db.unit_of_work() as uow:
        row = await _locked(uow.session, principal, meta_field_id)
        errors = Errors()
        for key in ("display_name", "field_type", "is_required", "order", "sensitivity"):
            if key in changes and changes[key] is None:
                errors.add(invalid(f"{_INPUT_NAMES[key]} cannot be null", ["input", _INPUT_NAMES[key]]))
                changes.pop(key)
        merged = {"display_name": row.display_name, "field_type": row.field_type, "is_required": row.is_required,
                  "enum_options": list(row.enum_options) if row.enum_options else None,
                  "default_value": row.default_value, "link_template": row.link_template,
                  "sensitivity": row.sensitivity, **{k: v for k, v in changes.items() if k != "order"}}
        if merged["field_type"] != MetaFieldType.ENUM and "enum_options" not in changes:
            merged["enum_options"] = None
        body = _clean_body(merged, errors)
        errors.raise_if_any()
        if "order" in changes:
            body["sort_order"] = changes["order"]
        await update_recorded(uow, rt, principal, row, body, snapshot, entity=PlanEntity.META_FIELD,
                              summary=lambda m: f"changed meta field {m.name}", request_id=request_id)
    return row


async def delete_meta_field(rt: Runtime, principal: Principal, meta_field_id: uuid.UUID, *,
                            request_id: str | None = None) -> MetaField:
    async with rt.db.unit_of_work() as uow:
        row = await _locked(uow.session, principal, meta_field_id, for_delete=True)
        stripped = await strip_values(uow.session, Event.meta_values, "meta_field_id", row.id,
                                      Event.project_id == row.project_id)
        await uow.session.delete(row)
        await uow.session.flush()
        plan_changed(uow, rt, principal, organization_id=row.organization_id, project_id=row.project_id,
                     entity=PlanEntity.META_FIELD, action=PlanAction.DELETED, entity_ids=row.id,
                     summary=f"deleted meta field {row.name}", before={**snapshot(row), "events_with_values": stripped},
                     request_id=request_id)
    return row


async def meta_fields_query(rt: Runtime, principal: Principal, project_id: uuid.UUID) -> Select:
    """The project's meta fields (NOT_FOUND for a project the caller cannot read)."""
    async with rt.db.session() as s:
        await readable_project(s, principal, project_id, ["projectId"])
    return select(MetaField).where(MetaField.project_id == project_id, *visible(MetaField, principal))


ORDER = [MetaField.sort_order, MetaField.id]

__all__ = ["ORDER", "create_meta_field", "delete_meta_field", "meta_fields_query", "update_meta_field"]
