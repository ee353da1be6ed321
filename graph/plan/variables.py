"""Variables and their values in GraphQL: `variables(projectId:)`, `variableCreate`, `variableUpdate`,
`variableDelete`, `variableValueAdd`, `variableValueRemove`, and the `VariableValue` node. Thin:
IDs are decoded here, everything else is server/domains/plan/variables.py."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from graph.core.connections import Connection, connection_from_page
from graph.core.errors import UserError, mutate
from graph.core.node import Node, decode_id, load_one, register_node, to_global_id
from graph.plan.mutations import decode_input_id
from graph.plan.types import Variable, VariableType
from server.db.paging import PageRequest, keyset_page
from server.domains.plan import loaders
from server.domains.plan import variables as service
from server.domains.plan.models import VariableType as VariableTypeEnum
from server.domains.plan.models import VariableValue as VariableValueRow


@strawberry.type(description="A value a variable takes: observed by scans (with how often and when) or entered.")
class VariableValue(Node):
    value: str
    event_count: int = strawberry.field(description="In how many events a scan saw it.")
    occurrences: int = strawberry.field(description="How many times a scan saw it.")
    first_seen_at: datetime
    last_seen_at: datetime | None
    row_id: strawberry.Private[uuid.UUID]
    variable_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: VariableValueRow) -> "VariableValue":
        return cls(id=to_global_id("VariableValue", row.id), value=row.value, event_count=row.event_count,
                   occurrences=row.occurrences, first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at,
                   row_id=row.id, variable_row_id=row.variable_id)

    @strawberry.field
    async def variable(self, info: strawberry.Info) -> Variable | None:
        return await load_one(info, loaders.load_variables, Variable, self.variable_row_id)


register_node("VariableValue", VariableValue, service.load_variable_values)


# --- inputs ----------------------------------------------------------------------------------

@strawberry.input
class VariableCreateInput:
    project_id: strawberry.ID
    name: str = strawberry.field(description="1 to 100 characters matching `^[a-z][a-z0-9_]*$`, unique in the project.")
    variable_type: VariableType = strawberry.field(default=VariableTypeEnum.STRING, description="STRING by default.")
    description: str = ""


@strawberry.input(description="Absent fields stay as they are.")
class VariableUpdateInput:
    id: strawberry.ID
    name: strawberry.Maybe[str | None] = strawberry.field(
        description="A new name (same rules as on create); cannot be null. Events' `${old}` references are "
                    "rewritten to `${new}`.")
    variable_type: strawberry.Maybe[VariableType | None] = strawberry.field(description="Cannot be null.")
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")


@strawberry.input
class VariableDeleteInput:
    id: strawberry.ID = strawberry.field(description="The variable to delete, with its values.")


@strawberry.input
class VariableValueAddInput:
    variable_id: strawberry.ID
    value: str = strawberry.field(description="1 to 1000 characters, unique per variable, of the variable's type "
                                              "(an array type takes one element per value).")


@strawberry.input
class VariableValueRemoveInput:
    id: strawberry.ID = strawberry.field(description="The VariableValue to remove.")


# --- payloads --------------------------------------------------------------------------------

@strawberry.type
class VariableCreatePayload:
    variable: Variable | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class VariableUpdatePayload:
    variable: Variable | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class VariableDeletePayload:
    deleted_variable_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class VariableValueAddPayload:
    variable_value: VariableValue | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class VariableValueRemovePayload:
    removed_variable_value_id: strawberry.ID | None = None
    variable: Variable | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _maybe(value):  # noqa: ANN001, ANN202
    return service.UNSET if value is None else value.value


@strawberry.type
class VariablesQuery:
    @strawberry.field(description="The variables of a project, by name, with their usage and sample values. Members.")
    async def variables(self, info: strawberry.Info, project_id: strawberry.ID, first: int | None = None,
                        after: str | None = None, last: int | None = None,
                        before: str | None = None) -> Connection[Variable]:
        ctx = info.context
        stmt = await service.variables_query(ctx.rt, ctx.principal, decode_id(project_id, "Project", "projectId"))
        s = ctx.settings
        page = await keyset_page(ctx.rt.db, stmt, service.VARIABLE_ORDER, PageRequest(first, after, last, before),
                                 descending=False, default=s.page_size_default, maximum=s.page_size_max)
        return connection_from_page(page, Variable.from_row)


@strawberry.type
class VariablesMutation:
    @strawberry.mutation(description="Create a variable in a project. Editors and owners.")
    async def variable_create(self, info: strawberry.Info, input: VariableCreateInput) -> VariableCreatePayload:
        ctx = info.context

        async def work() -> VariableCreatePayload:
            row = await service.create_variable(
                ctx.rt, ctx.principal, decode_input_id(input.project_id, "Project", "projectId"), name=input.name,
                variable_type=input.variable_type, description=input.description, request_id=ctx.request_id)
            return VariableCreatePayload(variable=Variable.from_row(row))

        return await mutate(VariableCreatePayload, work)

    @strawberry.mutation(description="Change a variable's name, type or description (absent fields stay). "
                                     "Editors and owners.")
    async def variable_update(self, info: strawberry.Info, input: VariableUpdateInput) -> VariableUpdatePayload:
        ctx = info.context

        async def work() -> VariableUpdatePayload:
            row = await service.update_variable(
                ctx.rt, ctx.principal, decode_input_id(input.id, "Variable", "id"), name=_maybe(input.name),
                variable_type=_maybe(input.variable_type), description=_maybe(input.description),
                request_id=ctx.request_id)
            return VariableUpdatePayload(variable=Variable.from_row(row))

        return await mutate(VariableUpdatePayload, work)

    @strawberry.mutation(description="Delete a variable with its values (events keep their `${name}` text). "
                                     "Editors and owners.")
    async def variable_delete(self, info: strawberry.Info, input: VariableDeleteInput) -> VariableDeletePayload:
        ctx = info.context

        async def work() -> VariableDeletePayload:
            row = await service.delete_variable(ctx.rt, ctx.principal, decode_input_id(input.id, "Variable", "id"),
                                                request_id=ctx.request_id)
            return VariableDeletePayload(deleted_variable_id=to_global_id("Variable", row.id))

        return await mutate(VariableDeletePayload, work)

    @strawberry.mutation(description="Add a value to a variable. Editors and owners.")
    async def variable_value_add(self, info: strawberry.Info, input: VariableValueAddInput) -> VariableValueAddPayload:
        ctx = info.context

        async def work() -> VariableValueAddPayload:
            row = await service.add_value(ctx.rt, ctx.principal,
                                          decode_input_id(input.variable_id, "Variable", "variableId"), input.value,
                                          request_id=ctx.request_id)
            return VariableValueAddPayload(variable_value=VariableValue.from_row(row))

        return await mutate(VariableValueAddPayload, work)

    @strawberry.mutation(description="Remove a value of a variable. Editors and owners.")
    async def variable_value_remove(self, info: strawberry.Info,
                                    input: VariableValueRemoveInput) -> VariableValueRemovePayload:
        ctx = info.context

        async def work() -> VariableValueRemovePayload:
            row = await service.remove_value(ctx.rt, ctx.principal, decode_input_id(input.id, "VariableValue", "id"),
                                             request_id=ctx.request_id)
            variable = await ctx.loader(loaders.load_variables).load(row.variable_id)
            return VariableValueRemovePayload(removed_variable_value_id=to_global_id("VariableValue", row.id),
                                              variable=Variable.from_row(variable) if variable else None)

        return await mutate(VariableValueRemovePayload, work)
