"""Meta fields of a project: `metaFields(projectId:)`, `metaFieldCreate`, `metaFieldUpdate`,
`metaFieldDelete` (server/domains/plan/meta_fields.py)."""

from __future__ import annotations

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import decode_id, to_global_id
from graph.plan.mutations import decode_input_id, maybe
from graph.plan.types import MetaField, MetaFieldType, Sensitivity
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import loaders, meta_fields
from server.domains.plan.models import Sensitivity as SensitivityValue

_DEFAULT_HELP = ("Valid for the type: STRING any text, URL an http(s) URL, BOOLEAN `true`/`false`, ENUM one of the "
                 "options, DATE `YYYY-MM-DD`. Blank means none.")
_LINK_HELP = ("An http(s) URL with `{value}` where the event's value goes, e.g. "
              "`https://jira.example.com/browse/{value}`. Blank means none.")


@strawberry.input(description="A new project-wide meta field (editors).")
class MetaFieldCreateInput:
    project_id: strawberry.ID
    name: str = strawberry.field(description="1 to 100 characters, unique in the project; fixed once created.")
    display_name: str = strawberry.field(description="1 to 255 characters.")
    field_type: MetaFieldType
    is_required: bool = False
    enum_options: list[str] | None = strawberry.field(
        default=None, description="The allowed values: required (non-empty, distinct) for ENUM, none for other types.")
    default_value: str | None = strawberry.field(default=None, description=_DEFAULT_HELP)
    link_template: str | None = strawberry.field(default=None, description=_LINK_HELP)
    order: int | None = strawberry.field(default=None, description="Position; absent: after the last meta field.")
    sensitivity: Sensitivity = SensitivityValue.NONE


@strawberry.input(description="Absent fields stay as they are; the name is fixed once created.")
class MetaFieldUpdateInput:
    id: strawberry.ID
    display_name: strawberry.Maybe[str | None] = strawberry.field(description="1 to 255 characters; cannot be null.")
    field_type: strawberry.Maybe[MetaFieldType | None] = strawberry.field(
        description="Cannot be null. Leaving ENUM drops the options.")
    is_required: strawberry.Maybe[bool | None] = strawberry.field(description="Cannot be null.")
    enum_options: strawberry.Maybe[list[str] | None]
    default_value: strawberry.Maybe[str | None] = strawberry.field(description=_DEFAULT_HELP + " Null clears it.")
    link_template: strawberry.Maybe[str | None] = strawberry.field(description=_LINK_HELP + " Null clears it.")
    order: strawberry.Maybe[int | None] = strawberry.field(description="Cannot be null.")
    sensitivity: strawberry.Maybe[Sensitivity | None] = strawberry.field(description="Cannot be null.")


@strawberry.input
class MetaFieldDeleteInput:
    id: strawberry.ID = strawberry.field(description="The meta field to delete; its values leave the project's events.")


@strawberry.type
class MetaFieldCreatePayload:
    meta_field: MetaField | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MetaFieldUpdatePayload:
    meta_field: MetaField | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MetaFieldDeletePayload:
    deleted_meta_field_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


_UPDATABLE = ("display_name", "field_type", "is_required", "enum_options", "default_value", "link_template", "order",
              "sensitivity")


@strawberry.type
class MetaFieldsQuery:
    @strawberry.field(description="Meta fields of a project, by `order` (ties by ID). Members of its organization.")
    async def meta_fields(self, info: strawberry.Info, project_id: strawberry.ID, first: int | None = None,
                          after: str | None = None, last: int | None = None,
                          before: str | None = None) -> Connection[MetaField]:
        ctx = info.context
        query = await meta_fields.meta_fields_query(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, query, meta_fields.ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        ctx.loader(loaders.load_meta_fields).prime_many({row.id: row for row in page.items})
        return connection_from_page(page, MetaField.from_row)


@strawberry.type
class MetaFieldsMutation:
    @strawberry.mutation(description="Create a project-wide meta field. Editors and owners.")
    async def meta_field_create(self, info: strawberry.Info, input: MetaFieldCreateInput) -> MetaFieldCreatePayload:
        ctx = info.context

        async def work() -> MetaFieldCreatePayload:
            row = await meta_fields.create_meta_field(
                ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project", "projectId"), name=input.name,
                display_name=input.display_name, field_type=input.field_type, is_required=input.is_required,
                enum_options=input.enum_options, default_value=input.default_value,
                link_template=input.link_template, order=input.order, sensitivity=input.sensitivity,
                request_id=ctx.request_id)
            return MetaFieldCreatePayload(meta_field=MetaField.from_row(row))

        return await mutate(MetaFieldCreatePayload, work)

    @strawberry.mutation(description="Change a meta field (absent inputs stay; the name is fixed). Editors and owners.")
    async def meta_field_update(self, info: strawberry.Info, input: MetaFieldUpdateInput) -> MetaFieldUpdatePayload:
        ctx = info.context

        async def work() -> MetaFieldUpdatePayload:
            changes = {key: maybe(getattr(input, key)) for key in _UPDATABLE}
            row = await meta_fields.update_meta_field(ctx.rt, ctx.principal, decode_input_id(input.id, "MetaField", "id"),
                                                      changes, request_id=ctx.request_id)
            return MetaFieldUpdatePayload(meta_field=MetaField.from_row(row))

        return await mutate(MetaFieldUpdatePayload, work)

    @strawberry.mutation(description="Delete a meta field. Editors and owners.")
    async def meta_field_delete(self, info: strawberry.Info, input: MetaFieldDeleteInput) -> MetaFieldDeletePayload:
        ctx = info.context

        async def work() -> MetaFieldDeletePayload:
            row = await meta_fields.delete_meta_field(ctx.rt, ctx.principal, decode_input_id(input.id, "MetaField", "id"),
                                                      request_id=ctx.request_id)
            return MetaFieldDeletePayload(deleted_meta_field_id=to_global_id("MetaField", row.id))

        return await mutate(MetaFieldDeletePayload, work)
