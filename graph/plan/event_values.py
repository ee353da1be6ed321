"""The list-valued parts of `Event` (graph/plan/types.py delegates its resolvers here): its field
values with their field definitions, its meta values with their meta fields, its photos and its
history. Each goes through the operation's dataloaders, so a page of events costs one statement per
kind of relation, whatever its size.

The nested lists take an optional `first` (at most that many items). It also prices them for the
query cost limit (graph/core/cost.py): without it a nested list counts as the default page size.
"""

from __future__ import annotations

import enum
import functools
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from graph.accounts.types import User
from graph.core.connections import Connection, connection_from_page
from graph.core.node import load_one, to_global_id
from graph.core.scalars import JSON
from server.domains.accounts import loaders as account_loaders
from server.domains.plan import event_loaders, loaders
from server.domains.plan.models import EventHistory as EventHistoryRow
from server.errors import invalid
from server.runtime import Runtime
from server.security.principal import Principal

if TYPE_CHECKING:
    from graph.plan.types import EventPhoto, Field, MetaField

LazyField = Annotated["Field", strawberry.lazy("graph.plan.types")]
LazyMetaField = Annotated["MetaField", strawberry.lazy("graph.plan.types")]
LazyEventPhoto = Annotated["EventPhoto", strawberry.lazy("graph.plan.types")]
NESTED_MAX = 500


@strawberry.type(description="The value an event gives one of its event type's fields.")
class EventFieldValue:
    field: LazyField
    value: str = strawberry.field(description="As entered; may hold `${variable}` references.")


@strawberry.type(description="The value an event gives one of the project's meta fields.")
class EventMetaValue:
    meta_field: LazyMetaField
    value: str


@strawberry.enum(name="EventHistoryAction", description="What kind of change an event history entry records.")
class EventHistoryAction(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    MOVED = "moved"
    REORDERED = "reordered"


_ACTIONS = {a.value: a for a in EventHistoryAction}


def _gid(type_name: str, raw: Any) -> Any:
    try:
        return to_global_id(type_name, uuid.UUID(str(raw)))
    except (TypeError, ValueError):
        return raw


def _present(key: str, value: Any) -> Any:
    """A stored history value as the API shows it elsewhere: global IDs, UPPER enum values and
    `{fieldId|metaFieldId, value}` objects (the history stores database values)."""
    if value is None:
        return None
    if key == "status" and isinstance(value, str):
        return value.upper()
    if key == "ownerId":
        return _gid("User", value)
    if key in ("fieldValues", "metaValues") and isinstance(value, list):
        ref, type_name, out_key = (("field_id", "Field", "fieldId") if key == "fieldValues"
                                   else ("meta_field_id", "MetaField", "metaFieldId"))
        return [{out_key: _gid(type_name, v.get(ref)), "value": v.get("value")} if isinstance(v, dict) else v
                for v in value]
    return value


@strawberry.type(description="One change of an event: who, when, and the old and new value of each changed property.")
class EventHistoryEntry:
    action: EventHistoryAction
    changed_at: datetime
    actor_email: str | None = strawberry.field(description="Who made the change, as they were known then.")
    changes: JSON = strawberry.field(
        description="`{property: {old, new}}` for each property that changed (`name`, `description`, `status`, "
                    "`sunsetAt`, `ownerId`, `reviewed`, `metricBreakdownColumns`, `tags`, `fieldValues`, "
                    "`metaValues`, `order`), with IDs as global IDs; on creation every property with `old: null`.")
    actor_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: EventHistoryRow) -> "EventHistoryEntry":
        changes = {k: {"old": _present(k, v.get("old")), "new": _present(k, v.get("new"))}
                   for k, v in (row.changes or {}).items() if isinstance(v, dict)}
        return cls(action=_ACTIONS.get(row.action, EventHistoryAction.UPDATED), changed_at=row.changed_at,
                   actor_email=row.actor_email, changes=changes, actor_row_id=row.actor_user_id)

    @strawberry.field(description="The member who made the change (null once they left your organizations).")
    async def actor(self, info: strawberry.Info) -> User | None:
        return await load_one(info, account_loaders.load_users, User, self.actor_row_id)


def _limit(first: int | None) -> int | None:
    if first is not None and not 0 <= first <= NESTED_MAX:
        raise invalid(f"`first` must be between 0 and {NESTED_MAX}", ["first"])
    return first


@functools.lru_cache(maxsize=65536)
def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)  # the same few field IDs recur in every event of a page


def _ids(values: list[Any], key: str) -> list[tuple[uuid.UUID, str]]:
    out = []
    for v in values or []:
        try:
            out.append((_uuid(v[key]), str(v.get("value", ""))))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not the stored shape: skip it rather than fail the whole list
    return out


# Per-operation loaders of the GraphQL objects themselves (one `Field` object per field row of
# the operation, however many events show it), over the domain's tenant-checked batch loaders.

async def _field_nodes(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Any]:
    from graph.plan.types import Field

    return [Field.from_row(r) if r is not None else None for r in await loaders.load_fields(rt, principal, ids)]


async def _meta_field_nodes(rt: Runtime, principal: Principal, ids: list[uuid.UUID]) -> list[Any]:
    from graph.plan.types import MetaField

    return [MetaField.from_row(r) if r is not None else None
            for r in await loaders.load_meta_fields(rt, principal, ids)]


def _ordered(nodes: list[Any], pairs: list[tuple[uuid.UUID, str]]) -> list[tuple[Any, str]]:
    found = [(node, value) for node, (_, value) in zip(nodes, pairs) if node is not None]
    found.sort(key=lambda nv: (nv[0].order, nv[0].name))
    return found


async def field_values_of(info: strawberry.Info, raw: list[Any], first: int | None) -> list[EventFieldValue]:
    """The stored values whose field still exists, in the fields' order."""
    first = _limit(first)
    pairs = _ids(raw, "field_id")
    nodes = await info.context.loader(_field_nodes).load_many([i for i, _ in pairs])
    return [EventFieldValue(field=node, value=value) for node, value in _ordered(nodes, pairs)][:first]


async def meta_values_of(info: strawberry.Info, raw: list[Any], first: int | None) -> list[EventMetaValue]:
    """The stored meta values whose meta field still exists, in the meta fields' order."""
    first = _limit(first)
    pairs = _ids(raw, "meta_field_id")
    nodes = await info.context.loader(_meta_field_nodes).load_many([i for i, _ in pairs])
    return [EventMetaValue(meta_field=node, value=value) for node, value in _ordered(nodes, pairs)][:first]


async def photos_of(info: strawberry.Info, event_id: uuid.UUID, first: int | None) -> list["EventPhoto"]:
    from graph.plan.types import EventPhoto

    first = _limit(first)
    rows = await info.context.loader(event_loaders.load_event_photo_lists).load(event_id)
    return [EventPhoto.from_row(r) for r in rows][:first]


async def history_of(info: strawberry.Info, event_id: uuid.UUID, first: int | None, after: str | None,
                     last: int | None, before: str | None) -> Connection[EventHistoryEntry]:
    page = await info.context.loader(event_loaders.load_event_history_pages).load((event_id, first, after, last, before))
    return connection_from_page(page, EventHistoryEntry.from_row)


__all__ = ["EventFieldValue", "EventHistoryAction", "EventHistoryEntry", "EventMetaValue", "field_values_of",
           "history_of", "meta_values_of", "photos_of"]
