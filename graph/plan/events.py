"""Events of a tracking plan through GraphQL: `events(projectId:, filter:, orderBy:, ...)` (a
keyset-paged connection), `event(id:)`, `tags(projectId:)`, and the mutations `eventCreate`,
`eventUpdate`, `eventDelete`, `eventsBulkCreate`, `eventsBulkUpdate`, `eventsBulkDelete`,
`eventsReorder`, `eventMove`. Thin: IDs are decoded here, every rule lives in
server/domains/plan/events.py.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, load_one, to_global_id
from graph.plan.types import Event, EventStatus, Project
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import events, loaders
from server.domains.plan.models import Event as EventRow
from server.domains.plan.models import EventStatus as EventStatusEnum
from server.errors import DomainError, DomainErrors, ErrorCode, invalid, not_found

# --- ids -----------------------------------------------------------------------------------------


class Ids:
    """Decodes many global IDs, collecting every malformed one (with its input path) before failing."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def one(self, gid: str, type_name: str, *path: str | int) -> uuid.UUID:
        try:
            return decode_id(gid, type_name)
        except DomainError as e:
            self.errors.append(DomainError(ErrorCode.VALIDATION, e.message, [str(p) for p in path]))
            return uuid.UUID(int=0)

    def maybe(self, gid: str | None, type_name: str, *path: str | int) -> uuid.UUID | None:
        return None if gid is None else self.one(gid, type_name, *path)

    def many(self, gids: list[str], type_name: str, *path: str | int) -> list[uuid.UUID]:
        return [self.one(g, type_name, *path, i) for i, g in enumerate(gids)]

    def check(self) -> None:
        if self.errors:
            raise DomainErrors(self.errors)


# --- inputs --------------------------------------------------------------------------------------

@strawberry.input(description="A value for one of the event type's fields.")
class FieldValueInput:
    field_id: strawberry.ID = strawberry.field(description="A field of the event's type.")
    value: str = strawberry.field(description="For an ENUM field one of its options (or a `${variable}` reference).")


@strawberry.input(description="A value for one of the project's meta fields.")
class MetaValueInput:
    meta_field_id: strawberry.ID
    value: str = strawberry.field(description="For an ENUM meta field one of its options (or a `${variable}` reference).")


@strawberry.input
class EventCreateInput:
    event_type_id: strawberry.ID = strawberry.field(description="The event's type; the event joins its project.")
    name: str = strawberry.field(description="1 to 500 characters, unique in the event type ignoring case.")
    description: str = ""
    status: EventStatus = EventStatusEnum.DRAFT
    sunset_at: datetime | None = None
    owner_id: strawberry.ID | None = strawberry.field(default=None, description="A member of the organization (a User ID).")
    reviewed: bool = False
    metric_breakdown_columns: list[str] = strawberry.field(default_factory=list)
    tags: list[str] = strawberry.field(default_factory=list, description="Non-blank; trimmed, duplicates dropped.")
    field_values: list[FieldValueInput] = strawberry.field(default_factory=list)
    meta_values: list[MetaValueInput] = strawberry.field(default_factory=list)


@strawberry.input(description="Absent fields stay as they are.")
class EventUpdateInput:
    id: strawberry.ID
    name: strawberry.Maybe[str | None] = strawberry.field(description="1 to 500 characters; cannot be null.")
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")
    status: strawberry.Maybe[EventStatus | None] = strawberry.field(description="Cannot be null.")
    sunset_at: strawberry.Maybe[datetime | None] = strawberry.field(description="Null clears it.")
    owner_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Null: no owner.")
    reviewed: strawberry.Maybe[bool | None] = strawberry.field(description="Cannot be null.")
    metric_breakdown_columns: strawberry.Maybe[list[str] | None] = strawberry.field(
        description="Replaces the list; null clears it.")
    tags: strawberry.Maybe[list[str] | None] = strawberry.field(description="Replaces the list; null clears it.")
    field_values: strawberry.Maybe[list[FieldValueInput] | None] = strawberry.field(
        description="Replaces all field values; null clears them.")
    meta_values: strawberry.Maybe[list[MetaValueInput] | None] = strawberry.field(
        description="Replaces all meta values; null clears them.")


@strawberry.input
class EventDeleteInput:
    id: strawberry.ID


@strawberry.input
class EventsBulkCreateInput:
    project_id: strawberry.ID
    events: list[EventCreateInput] = strawberry.field(
        description="1 to 1,000 events, each of an event type of the project. All are created or none.")


@strawberry.input(description="Sets the given properties on every listed event; absent ones stay.")
class EventsBulkUpdateInput:
    project_id: strawberry.ID
    ids: list[strawberry.ID] = strawberry.field(description="1 to 1,000 events of the project.")
    status: strawberry.Maybe[EventStatus | None] = strawberry.field(description="Cannot be null.")
    sunset_at: strawberry.Maybe[datetime | None] = strawberry.field(description="Null clears it.")
    owner_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Null: no owner.")
    reviewed: strawberry.Maybe[bool | None] = strawberry.field(description="Cannot be null.")


@strawberry.input
class EventsBulkDeleteInput:
    project_id: strawberry.ID
    ids: list[strawberry.ID] = strawberry.field(description="1 to 1,000 events of the project. All are deleted or none.")


@strawberry.input
class EventsReorderInput:
    project_id: strawberry.ID
    ids: list[strawberry.ID] = strawberry.field(
        description="Every event of the project, each once, in the new order (`order` becomes 0, 1, 2, ...).")


@strawberry.enum(name="MoveDirection")
class MoveDirection(enum.Enum):
    UP = "up"
    DOWN = "down"


@strawberry.input
class EventMoveInput:
    id: strawberry.ID
    direction: MoveDirection
    visible_event_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The list the client shows (a filtered view), in display order: the event swaps "
                                  "places with its neighbour in it. Absent: the project's whole list.")


@strawberry.input(description="Every given condition must hold.")
class EventFilter:
    event_type_id: strawberry.ID | None = None
    search: str | None = strawberry.field(default=None, description="Part of the name, ignoring case.")
    statuses: list[EventStatus] | None = strawberry.field(default=None, description="Any of these statuses.")
    tag: str | None = strawberry.field(default=None, description="Events carrying this tag.")
    silent_since_days: int | None = strawberry.field(
        default=None, description="Events no scan has seen for this many days (or ever); 0 to 36500.")
    field_value: str | None = strawberry.field(default=None, description="Events with a field value equal to this.")
    meta_value: str | None = strawberry.field(default=None, description="Events with a meta value equal to this.")


@strawberry.enum(name="EventOrder", description="Sort order of `events`; ties are broken by ID.")
class EventOrder(enum.Enum):
    ORDER_ASC = "order_asc"
    NAME_ASC = "name_asc"
    CREATED_AT_DESC = "created_at_desc"
    UPDATED_AT_DESC = "updated_at_desc"
    LAST_SEEN_AT_DESC = "last_seen_at_desc"

    @property
    def columns(self) -> list:
        return {
            "order_asc": [EventRow.sort_order, EventRow.id],
            "name_asc": [EventRow.name, EventRow.id],
            "created_at_desc": [EventRow.created_at, EventRow.id],
            "updated_at_desc": [EventRow.updated_at, EventRow.id],
            "last_seen_at_desc": [events.LAST_SEEN, EventRow.id],  # never seen: last
        }[self.value]

    @property
    def descending(self) -> bool:
        return self.value.endswith("_desc")

    def key(self, row: EventRow) -> list:
        if self is EventOrder.LAST_SEEN_AT_DESC:
            return [row.last_seen_at or events.EPOCH, row.id]
        return [getattr(row, c.key) for c in self.columns]


@strawberry.type(description="A tag of the project's events and how many events carry it.")
class TagCount:
    tag: str
    count: int


# --- payloads ------------------------------------------------------------------------------------

@strawberry.type
class EventCreatePayload:
    event: Event | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventUpdatePayload:
    event: Event | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventDeletePayload:
    deleted_event_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventsBulkCreatePayload:
    events: list[Event] | None = strawberry.field(default=None, description="In the order given.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventsBulkUpdatePayload:
    events: list[Event] | None = strawberry.field(default=None, description="In the order given.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventsBulkDeletePayload:
    deleted_event_ids: list[strawberry.ID] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventsReorderPayload:
    project: Project | None = None
    moved_count: int | None = strawberry.field(default=None, description="How many events changed position.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventMovePayload:
    event: Event | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


# --- conversions ---------------------------------------------------------------------------------

def _spec(i: EventCreateInput, ids: Ids, *path: str | int) -> events.EventSpec:
    return events.EventSpec(
        event_type_id=ids.one(i.event_type_id, "EventType", *path, "eventTypeId"), name=i.name,
        description=i.description, status=i.status, sunset_at=i.sunset_at,
        owner_id=ids.maybe(i.owner_id, "User", *path, "ownerId"), reviewed=i.reviewed,
        metric_breakdown_columns=list(i.metric_breakdown_columns or []), tags=list(i.tags or []),
        field_values=[events.ValueIn(ids.one(v.field_id, "Field", *path, "fieldValues", n, "fieldId"), v.value)
                      for n, v in enumerate(i.field_values or [])],
        meta_values=[events.ValueIn(ids.one(v.meta_field_id, "MetaField", *path, "metaValues", n, "metaFieldId"),
                                    v.value) for n, v in enumerate(i.meta_values or [])])


def _given(**fields: Any) -> dict[str, Any]:
    """The Maybe fields that were given, unwrapped (absent ones left out)."""
    return {k: v.value for k, v in fields.items() if v is not None}


def _update_patch(i: EventUpdateInput, ids: Ids) -> dict[str, Any]:
    patch = _given(name=i.name, description=i.description, status=i.status, sunsetAt=i.sunset_at,
                   ownerId=i.owner_id, reviewed=i.reviewed, metricBreakdownColumns=i.metric_breakdown_columns,
                   tags=i.tags, fieldValues=i.field_values, metaValues=i.meta_values)
    if patch.get("ownerId") is not None:
        patch["ownerId"] = ids.one(patch["ownerId"], "User", "input", "ownerId")
    if patch.get("fieldValues") is not None:
        patch["fieldValues"] = [events.ValueIn(ids.one(v.field_id, "Field", "input", "fieldValues", n, "fieldId"),
                                               v.value) for n, v in enumerate(patch["fieldValues"])]
    if patch.get("metaValues") is not None:
        patch["metaValues"] = [events.ValueIn(ids.one(v.meta_field_id, "MetaField", "input", "metaValues", n,
                                                      "metaFieldId"), v.value)
                               for n, v in enumerate(patch["metaValues"])]
    return patch


def _filter(f: EventFilter | None) -> events.EventFilter:
    if f is None:
        return events.EventFilter()
    return events.EventFilter(
        event_type_id=decode_id(f.event_type_id, "EventType", "filter.eventTypeId") if f.event_type_id else None,
        search=f.search, statuses=list(f.statuses or []), tag=f.tag, silent_since_days=f.silent_since_days,
        field_value=f.field_value, meta_value=f.meta_value)


async def _readable_project(info: strawberry.Info, project_id: strawberry.ID) -> uuid.UUID:
    raw = decode_id(project_id, "Project", "projectId")
    if await info.context.loader(loaders.load_projects).load(raw) is None:
        raise not_found("project", ["projectId"])
    return raw


# --- queries -------------------------------------------------------------------------------------

@strawberry.type
class EventsQuery:
    @strawberry.field(description="Events of a project, in the plan's order unless `orderBy` says otherwise. Members "
                                  "of the project's organization.")
    async def events(self, info: strawberry.Info, project_id: strawberry.ID, filter: EventFilter | None = None,
                     order_by: list[EventOrder] | None = None, first: int | None = None, after: str | None = None,
                     last: int | None = None, before: str | None = None) -> Connection[Event]:
        ctx = info.context
        if order_by and len(order_by) > 1:
            raise invalid("give one ordering", ["orderBy"])
        order = order_by[0] if order_by else EventOrder.ORDER_ASC
        f = _filter(filter)
        project = await _readable_project(info, project_id)
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, events.events_query(ctx.principal, project, f), order.columns,
                                 PageRequest(first, after, last, before), descending=order.descending,
                                 default=s.page_size_default, maximum=s.page_size_max, key=order.key)
        return connection_from_page(page, Event.from_row)

    @strawberry.field(description="An event you can see, by ID.")
    async def event(self, info: strawberry.Info, id: strawberry.ID) -> Event | None:
        return await load_one(info, loaders.load_events, Event, decode_id(id, "Event"))

    @strawberry.field(description="The distinct tags of a project's events with how many events carry each, by tag.")
    async def tags(self, info: strawberry.Info, project_id: strawberry.ID) -> list[TagCount]:
        ctx = info.context
        project = await _readable_project(info, project_id)
        return [TagCount(tag=t, count=n) for t, n in await events.tag_counts(ctx.rt, ctx.principal, project)]


# --- mutations -----------------------------------------------------------------------------------

@strawberry.type
class EventsMutation:
    @strawberry.mutation(description="Create an event of an event type. Editors and owners.")
    async def event_create(self, info: strawberry.Info, input: EventCreateInput) -> EventCreatePayload:
        ctx = info.context

        async def work() -> EventCreatePayload:
            ids = Ids()
            spec = _spec(input, ids, "input")
            ids.check()
            row = await events.create_event(ctx.rt, ctx.principal, spec, request_id=ctx.request_id)
            return EventCreatePayload(event=Event.from_row(row))

        return await mutate(EventCreatePayload, work)

    @strawberry.mutation(description="Change an event (absent fields stay). Editors and owners.")
    async def event_update(self, info: strawberry.Info, input: EventUpdateInput) -> EventUpdatePayload:
        ctx = info.context

        async def work() -> EventUpdatePayload:
            ids = Ids()
            event_id = ids.one(input.id, "Event", "input", "id")
            patch = _update_patch(input, ids)
            ids.check()
            row = await events.update_event(ctx.rt, ctx.principal, event_id, patch, request_id=ctx.request_id)
            return EventUpdatePayload(event=Event.from_row(row))

        return await mutate(EventUpdatePayload, work)

    @strawberry.mutation(description="Delete an event with its photos and history. Editors and owners.")
    async def event_delete(self, info: strawberry.Info, input: EventDeleteInput) -> EventDeletePayload:
        ctx = info.context

        async def work() -> EventDeletePayload:
            event_id = decode_id(input.id, "Event", "input.id")
            row = await events.delete_event(ctx.rt, ctx.principal, event_id, request_id=ctx.request_id)
            return EventDeletePayload(deleted_event_id=to_global_id("Event", row.id))

        return await mutate(EventDeletePayload, work)

    @strawberry.mutation(description="Create up to 1,000 events at once: all or none; each failing item is named by "
                                     "its index (`[\"input\", \"events\", \"3\", \"name\"]`). Editors and owners.")
    async def events_bulk_create(self, info: strawberry.Info, input: EventsBulkCreateInput) -> EventsBulkCreatePayload:
        ctx = info.context

        async def work() -> EventsBulkCreatePayload:
            ids = Ids()
            project_id = ids.one(input.project_id, "Project", "input", "projectId")
            specs = [_spec(e, ids, "input", "events", n) for n, e in enumerate(input.events)]
            ids.check()
            rows = await events.bulk_create_events(ctx.rt, ctx.principal, project_id, specs, request_id=ctx.request_id)
            return EventsBulkCreatePayload(events=[Event.from_row(r) for r in rows])

        return await mutate(EventsBulkCreatePayload, work)

    @strawberry.mutation(description="Set status, sunset time, owner and/or reviewed on up to 1,000 events of a project: "
                                     "all or none. Editors and owners.")
    async def events_bulk_update(self, info: strawberry.Info, input: EventsBulkUpdateInput) -> EventsBulkUpdatePayload:
        ctx = info.context

        async def work() -> EventsBulkUpdatePayload:
            ids = Ids()
            project_id = ids.one(input.project_id, "Project", "input", "projectId")
            event_ids = ids.many(input.ids, "Event", "input", "ids")
            patch = _given(status=input.status, sunsetAt=input.sunset_at, ownerId=input.owner_id,
                           reviewed=input.reviewed)
            if patch.get("ownerId") is not None:
                patch["ownerId"] = ids.one(patch["ownerId"], "User", "input", "ownerId")
            ids.check()
            rows = await events.bulk_update_events(ctx.rt, ctx.principal, project_id, event_ids, patch,
                                                   request_id=ctx.request_id)
            return EventsBulkUpdatePayload(events=[Event.from_row(r) for r in rows])

        return await mutate(EventsBulkUpdatePayload, work)

    @strawberry.mutation(description="Delete up to 1,000 events of a project: all or none (each ID that is not an event "
                                     "of the project is named by its index). Editors and owners.")
    async def events_bulk_delete(self, info: strawberry.Info, input: EventsBulkDeleteInput) -> EventsBulkDeletePayload:
        ctx = info.context

        async def work() -> EventsBulkDeletePayload:
            ids = Ids()
            project_id = ids.one(input.project_id, "Project", "input", "projectId")
            event_ids = ids.many(input.ids, "Event", "input", "ids")
            ids.check()
            deleted = await events.bulk_delete_events(ctx.rt, ctx.principal, project_id, event_ids,
                                                      request_id=ctx.request_id)
            return EventsBulkDeletePayload(deleted_event_ids=[to_global_id("Event", i) for i in deleted])

        return await mutate(EventsBulkDeletePayload, work)

    @strawberry.mutation(description="Put the project's events in a new order: `ids` lists every event of the project "
                                     "once. Editors and owners.")
    async def events_reorder(self, info: strawberry.Info, input: EventsReorderInput) -> EventsReorderPayload:
        ctx = info.context

        async def work() -> EventsReorderPayload:
            ids = Ids()
            project_id = ids.one(input.project_id, "Project", "input", "projectId")
            event_ids = ids.many(input.ids, "Event", "input", "ids")
            ids.check()
            moved = await events.reorder_events(ctx.rt, ctx.principal, project_id, event_ids,
                                                request_id=ctx.request_id)
            project = await ctx.loader(loaders.load_projects).load(project_id)
            return EventsReorderPayload(project=Project.from_row(project) if project else None, moved_count=moved)

        return await mutate(EventsReorderPayload, work)

    @strawberry.mutation(description="Move an event one place up or down in the list the client shows (it swaps places "
                                     "with its neighbour there). Editors and owners.")
    async def event_move(self, info: strawberry.Info, input: EventMoveInput) -> EventMovePayload:
        ctx = info.context

        async def work() -> EventMovePayload:
            ids = Ids()
            event_id = ids.one(input.id, "Event", "input", "id")
            visible = (ids.many(input.visible_event_ids, "Event", "input", "visibleEventIds")
                       if input.visible_event_ids is not None else None)
            ids.check()
            row = await events.move_event(ctx.rt, ctx.principal, event_id, events.Direction(input.direction.value),
                                          visible, request_id=ctx.request_id)
            return EventMovePayload(event=Event.from_row(row))

        return await mutate(EventMovePayload, work)
