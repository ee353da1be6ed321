"""Event types and their owners: `eventTypes(projectId:)`, `eventTypeCreate`, `eventTypeUpdate`,
`eventTypeDelete`, `eventTypeOwnerAdd`, `eventTypeOwnerRemove` (server/domains/plan/event_types.py).
`EventType.fields` and `EventType.owners` are resolved in graph/plan/types.py through dataloaders."""

from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, to_global_id
from graph.plan.fields import FieldDefinitionInput
from graph.plan.mutations import decode_input_id, maybe
from graph.plan.types import EventType, EventTypeOwner
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import event_types, loaders
from server.domains.plan.models import DEFAULT_COLOR


@strawberry.input(description="A new event type of a project, optionally with its fields (editors).")
class EventTypeCreateInput:
    project_id: strawberry.ID
    name: str = strawberry.field(description="1 to 100 characters, unique in the project ignoring case; fixed once created.")
    display_name: str = strawberry.field(description="1 to 255 characters.")
    description: str = ""
    color: str = strawberry.field(default=DEFAULT_COLOR, description="`#rrggbb` (`^#[0-9a-fA-F]{6}$`).")
    order: int | None = strawberry.field(default=None, description="Position; absent: after the project's last type.")
    fields: list[FieldDefinitionInput] | None = strawberry.field(
        default=None, description="Its field definitions (at most 1000); an error names the item's index: "
                                  "[\"input\", \"fields\", \"3\", \"name\"].")


@strawberry.input(description="Absent fields stay as they are; the name is fixed once created.")
class EventTypeUpdateInput:
    id: strawberry.ID
    display_name: strawberry.Maybe[str | None] = strawberry.field(description="1 to 255 characters; cannot be null.")
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")
    color: strawberry.Maybe[str | None] = strawberry.field(description="`#rrggbb`; null resets it to `#6366f1`.")
    order: strawberry.Maybe[int | None] = strawberry.field(description="Cannot be null.")


@strawberry.input
class EventTypeDeleteInput:
    id: strawberry.ID
    cascade: bool = strawberry.field(
        default=False, description="Also delete its events. Without it, deleting a type that has events is refused.")


@strawberry.input(description="Make a member of the organization an owner of an event type (organization owners).")
class EventTypeOwnerAddInput:
    event_type_id: strawberry.ID
    user_id: strawberry.ID


@strawberry.input
class EventTypeOwnerRemoveInput:
    id: strawberry.ID = strawberry.field(description="The EventTypeOwner to remove (organization owners).")


@strawberry.type
class EventTypeCreatePayload:
    event_type: EventType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventTypeUpdatePayload:
    event_type: EventType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventTypeDeletePayload:
    deleted_event_type_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventTypeOwnerAddPayload:
    owner: EventTypeOwner | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventTypeOwnerRemovePayload:
    deleted_owner_id: strawberry.ID | None = None
    event_type: EventType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EventTypesQuery:
    @strawberry.field(description="Event types of a project, by `order` (ties by ID). Members of its organization.")
    async def event_types(self, info: strawberry.Info, project_id: strawberry.ID, first: int | None = None,
                          after: str | None = None, last: int | None = None,
                          before: str | None = None) -> Connection[EventType]:
        ctx = info.context
        query = await event_types.event_types_query(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, query, event_types.ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        # `fields { eventType }` and the like find these rows without loading them again.
        ctx.loader(loaders.load_event_types).prime_many({row.id: row for row in page.items})
        return connection_from_page(page, EventType.from_row)


@strawberry.type
class EventTypesMutation:
    @strawberry.mutation(description="Create an event type, with its fields if given (all or nothing). Editors and owners.")
    async def event_type_create(self, info: strawberry.Info, input: EventTypeCreateInput) -> EventTypeCreatePayload:
        ctx = info.context

        async def work() -> EventTypeCreatePayload:
            row = await event_types.create_event_type(
                ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project", "projectId"), name=input.name,
                display_name=input.display_name, description=input.description, color=input.color,
                order=input.order, fields=[f.spec() for f in input.fields or []], request_id=ctx.request_id)
            return EventTypeCreatePayload(event_type=EventType.from_row(row))

        return await mutate(EventTypeCreatePayload, work)

    @strawberry.mutation(description="Change an event type's display name, description, color or order (absent inputs "
                                     "stay). Editors and owners.")
    async def event_type_update(self, info: strawberry.Info, input: EventTypeUpdateInput) -> EventTypeUpdatePayload:
        ctx = info.context

        async def work() -> EventTypeUpdatePayload:
            row = await event_types.update_event_type(
                ctx.rt, ctx.principal, decode_input_id(input.id, "EventType", "id"),
                display_name=maybe(input.display_name), description=maybe(input.description),
                color=maybe(input.color), order=maybe(input.order), request_id=ctx.request_id)
            return EventTypeUpdatePayload(event_type=EventType.from_row(row))

        return await mutate(EventTypeUpdatePayload, work)

    @strawberry.mutation(description="Delete an event type with its fields and owners; refused while it has events "
                                     "unless `cascade: true`. Editors and owners.")
    async def event_type_delete(self, info: strawberry.Info, input: EventTypeDeleteInput) -> EventTypeDeletePayload:
        ctx = info.context

        async def work() -> EventTypeDeletePayload:
            row = await event_types.delete_event_type(ctx.rt, ctx.principal, decode_input_id(input.id, "EventType", "id"),
                                                      cascade=input.cascade, request_id=ctx.request_id)
            return EventTypeDeletePayload(deleted_event_type_id=to_global_id("EventType", row.id))

        return await mutate(EventTypeDeletePayload, work)

    @strawberry.mutation(description="Make a member of the organization an owner of an event type. Organization owners.")
    async def event_type_owner_add(self, info: strawberry.Info, input: EventTypeOwnerAddInput) -> EventTypeOwnerAddPayload:
        ctx = info.context

        async def work() -> EventTypeOwnerAddPayload:
            row = await event_types.add_owner(
                ctx.rt, ctx.principal, decode_input_id(input.event_type_id, "EventType", "eventTypeId"),
                decode_input_id(input.user_id, "User", "userId"), request_id=ctx.request_id)
            return EventTypeOwnerAddPayload(owner=EventTypeOwner.from_row(row))

        return await mutate(EventTypeOwnerAddPayload, work)

    @strawberry.mutation(description="Remove an owner of an event type. Organization owners.")
    async def event_type_owner_remove(self, info: strawberry.Info,
                                      input: EventTypeOwnerRemoveInput) -> EventTypeOwnerRemovePayload:
        ctx = info.context

        async def work() -> EventTypeOwnerRemovePayload:
            owner, event_type = await event_types.remove_owner(
                ctx.rt, ctx.principal, decode_input_id(input.id, "EventTypeOwner", "id"), request_id=ctx.request_id)
            return EventTypeOwnerRemovePayload(deleted_owner_id=to_global_id("EventTypeOwner", owner.id),
                                               event_type=EventType.from_row(event_type))

        return await mutate(EventTypeOwnerRemovePayload, work)


__all__ = ["EventTypesMutation", "EventTypesQuery"]
