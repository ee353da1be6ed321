"""Relations between event types in GraphQL: `relations(projectId:)`, `relationCreate`,
`relationUpdate`, `relationDelete`. Thin: IDs are decoded here, the rules are in
server/domains/plan/relations.py."""

from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, to_global_id
from graph.plan.mutations import decode_input_id
from graph.plan.types import Relation
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import relations as service
from server.domains.plan.models import DEFAULT_RELATION_TYPE
from server.errors import DomainError, DomainErrors


@strawberry.input
class RelationCreateInput:
    source_event_type_id: strawberry.ID
    source_field_id: strawberry.ID = strawberry.field(description="A field of the source event type.")
    target_event_type_id: strawberry.ID = strawberry.field(description="An event type of the same project.")
    target_field_id: strawberry.ID = strawberry.field(description="A field of the target event type.")
    relation_type: str = strawberry.field(default=DEFAULT_RELATION_TYPE,
                                          description="Free text, 1 to 100 characters; `belongs_to` by default.")
    description: str = ""


@strawberry.input(description="Absent fields stay as they are; the relation after the change is checked like a new one.")
class RelationUpdateInput:
    id: strawberry.ID
    source_event_type_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Cannot be null.")
    source_field_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Cannot be null.")
    target_event_type_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Cannot be null.")
    target_field_id: strawberry.Maybe[strawberry.ID | None] = strawberry.field(description="Cannot be null.")
    relation_type: strawberry.Maybe[str | None] = strawberry.field(description="Cannot be null.")
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")


@strawberry.input
class RelationDeleteInput:
    id: strawberry.ID


@strawberry.type
class RelationCreatePayload:
    relation: Relation | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RelationUpdatePayload:
    relation: Relation | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RelationDeletePayload:
    deleted_relation_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


_ENDS = (("source_event_type_id", "EventType", "sourceEventTypeId"), ("source_field_id", "Field", "sourceFieldId"),
         ("target_event_type_id", "EventType", "targetEventTypeId"), ("target_field_id", "Field", "targetFieldId"))


def _decode_ends(input: RelationCreateInput | RelationUpdateInput, patch: bool) -> dict:
    """The four ends as UUIDs (absent ones as service.UNSET and null ones as None in a patch),
    every malformed ID reported at once."""
    ends, errors = {}, []
    for attr, type_name, name in _ENDS:
        value = getattr(input, attr)
        if patch:
            if value is None:
                ends[attr] = service.UNSET
                continue
            value = value.value
            if value is None:
                ends[attr] = None
                continue
        try:
            ends[attr] = decode_input_id(value, type_name, name)
        except DomainError as e:
            errors.append(e)
    if errors:
        raise DomainErrors(errors)
    return ends


def _maybe(value):  # noqa: ANN001, ANN202
    return service.UNSET if value is None else value.value


@strawberry.type
class RelationsQuery:
    @strawberry.field(description="The relations between a project's event types, oldest first. Members.")
    async def relations(self, info: strawberry.Info, project_id: strawberry.ID, first: int | None = None,
                        after: str | None = None, last: int | None = None,
                        before: str | None = None) -> Connection[Relation]:
        ctx = info.context
        stmt = await service.relations_query(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, stmt, service.RELATION_ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Relation.from_row)


@strawberry.type
class RelationsMutation:
    @strawberry.mutation(description="Relate a field of one event type to a field of another (or the same) event "
                                     "type of the project. Editors and owners.")
    async def relation_create(self, info: strawberry.Info, input: RelationCreateInput) -> RelationCreatePayload:
        ctx = info.context

        async def work() -> RelationCreatePayload:
            row = await service.create_relation(ctx.rt, ctx.principal, **_decode_ends(input, patch=False),
                                                relation_type=input.relation_type, description=input.description,
                                                request_id=ctx.request_id)
            return RelationCreatePayload(relation=Relation.from_row(row))

        return await mutate(RelationCreatePayload, work)

    @strawberry.mutation(description="Change a relation (absent fields stay). Editors and owners.")
    async def relation_update(self, info: strawberry.Info, input: RelationUpdateInput) -> RelationUpdatePayload:
        ctx = info.context

        async def work() -> RelationUpdatePayload:
            row = await service.update_relation(ctx.rt, ctx.principal, decode_input_id(input.id, "Relation", "id"),
                                                **_decode_ends(input, patch=True),
                                                relation_type=_maybe(input.relation_type),
                                                description=_maybe(input.description), request_id=ctx.request_id)
            return RelationUpdatePayload(relation=Relation.from_row(row))

        return await mutate(RelationUpdatePayload, work)

    @strawberry.mutation(description="Delete a relation. Editors and owners.")
    async def relation_delete(self, info: strawberry.Info, input: RelationDeleteInput) -> RelationDeletePayload:
        ctx = info.context

        async def work() -> RelationDeletePayload:
            row = await service.delete_relation(ctx.rt, ctx.principal, decode_input_id(input.id, "Relation", "id"),
                                                request_id=ctx.request_id)
            return RelationDeletePayload(deleted_relation_id=to_global_id("Relation", row.id))

        return await mutate(RelationDeletePayload, work)
