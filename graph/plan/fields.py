"""Fields of an event type: `fieldCreate`, `fieldsBulkCreate`, `fieldUpdate`, `fieldsReorder`,
`fieldDelete` (server/domains/plan/fields.py). `EventType.fields` is resolved in graph/plan/types.py
through `fields.load_fields_by_event_type`."""

from __future__ import annotations

import strawberry

from graph.core.errors import UserError, mutate
from graph.core.node import to_global_id
from graph.plan.mutations import decode_input_id, maybe
from graph.plan.types import EventType, Field, FieldType, Sensitivity
from server.domains.plan import fields, loaders
from server.domains.plan.models import Sensitivity as SensitivityValue
from server.errors import DomainError, DomainErrors

_CONTRACT_HELP = {
    "null_rate": "Largest share (0..1) of events that may lack this field; required fields only.",
    "regex": "A regular expression the values must match (it must compile).",
    "min": "Smallest allowed value (at most `contractMaxValue`).",
    "max": "Largest allowed value.",
    "bad_rate": "Largest share (0..1) of values that may break the contract; 0 by default.",
}


@strawberry.input(description="A new field of an event type.")
class FieldDefinitionInput:
    name: str = strawberry.field(description="1 to 100 characters, unique in the event type; fixed once created.")
    display_name: str = strawberry.field(description="1 to 255 characters.")
    field_type: FieldType
    is_required: bool = False
    enum_options: list[str] | None = strawberry.field(
        default=None, description="The allowed values: required (non-empty, distinct) for ENUM, none for other types.")
    description: str = ""
    order: int | None = strawberry.field(default=None, description="Position; absent: after the last field.")
    sensitivity: Sensitivity = SensitivityValue.NONE
    contract_required_max_null_rate: float | None = strawberry.field(default=None, description=_CONTRACT_HELP["null_rate"])
    contract_regex: str | None = strawberry.field(default=None, description=_CONTRACT_HELP["regex"])
    contract_min_value: float | None = strawberry.field(default=None, description=_CONTRACT_HELP["min"])
    contract_max_value: float | None = strawberry.field(default=None, description=_CONTRACT_HELP["max"])
    contract_max_bad_rate: float = strawberry.field(default=0.0, description=_CONTRACT_HELP["bad_rate"])

    def spec(self) -> fields.FieldSpec:
        return fields.FieldSpec(
            name=self.name, display_name=self.display_name, field_type=self.field_type, is_required=self.is_required,
            enum_options=self.enum_options, description=self.description, order=self.order,
            sensitivity=self.sensitivity, contract_required_max_null_rate=self.contract_required_max_null_rate,
            contract_regex=self.contract_regex, contract_min_value=self.contract_min_value,
            contract_max_value=self.contract_max_value, contract_max_bad_rate=self.contract_max_bad_rate)


@strawberry.input(description="A new field of an event type (editors).")
class FieldCreateInput(FieldDefinitionInput):
    event_type_id: strawberry.ID


@strawberry.input(description="Several new fields of one event type: all or nothing.")
class FieldsBulkCreateInput:
    event_type_id: strawberry.ID
    fields: list[FieldDefinitionInput] = strawberry.field(
        description="Non-empty, at most 1000. An error names the item's index: [\"input\", \"fields\", \"3\", \"name\"].")


@strawberry.input(description="Absent fields stay as they are; the name is fixed once created.")
class FieldUpdateInput:
    id: strawberry.ID
    display_name: strawberry.Maybe[str | None] = strawberry.field(description="1 to 255 characters; cannot be null.")
    field_type: strawberry.Maybe[FieldType | None] = strawberry.field(
        description="Cannot be null. Leaving ENUM drops the options.")
    is_required: strawberry.Maybe[bool | None] = strawberry.field(description="Cannot be null.")
    enum_options: strawberry.Maybe[list[str] | None]
    description: strawberry.Maybe[str | None] = strawberry.field(description="Null clears it.")
    order: strawberry.Maybe[int | None] = strawberry.field(description="Cannot be null.")
    sensitivity: strawberry.Maybe[Sensitivity | None] = strawberry.field(description="Cannot be null.")
    contract_required_max_null_rate: strawberry.Maybe[float | None] = strawberry.field(
        description=_CONTRACT_HELP["null_rate"] + " Null clears it.")
    contract_regex: strawberry.Maybe[str | None] = strawberry.field(description=_CONTRACT_HELP["regex"] + " Null clears it.")
    contract_min_value: strawberry.Maybe[float | None] = strawberry.field(description="Null clears it.")
    contract_max_value: strawberry.Maybe[float | None] = strawberry.field(description="Null clears it.")
    contract_max_bad_rate: strawberry.Maybe[float | None] = strawberry.field(description="0..1; null resets it to 0.")


@strawberry.input(description="The new order of an event type's fields.")
class FieldsReorderInput:
    event_type_id: strawberry.ID
    field_ids: list[strawberry.ID] = strawberry.field(
        description="Every field of the event type, each once, in the new order (field i gets order i).")


@strawberry.input
class FieldDeleteInput:
    id: strawberry.ID = strawberry.field(description="The field to delete; its values leave the events of its type "
                                                     "and relations joining on it are deleted.")


@strawberry.type
class FieldCreatePayload:
    field: Field | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FieldsBulkCreatePayload:
    fields: list[Field] | None = strawberry.field(default=None, description="The new fields, in the order given.")
    event_type: EventType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FieldUpdatePayload:
    field: Field | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FieldsReorderPayload:
    event_type: EventType | None = strawberry.field(default=None, description="With its fields in the new order.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FieldDeletePayload:
    deleted_field_id: strawberry.ID | None = None
    event_type: EventType | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _decode_ids(gids: list[str], type_name: str, at: str) -> list:
    """Every ID of a list input, the errors naming each bad item's index."""
    out, errors = [], []
    for i, gid in enumerate(gids):
        try:
            out.append(decode_input_id(gid, type_name, at))
        except DomainError as e:
            errors.append(DomainError(e.code, e.message, ["input", at, str(i)]))
    if errors:
        raise DomainErrors(errors)
    return out


_UPDATABLE = ("display_name", "field_type", "is_required", "enum_options", "description", "order", "sensitivity",
              "contract_required_max_null_rate", "contract_regex", "contract_min_value", "contract_max_value",
              "contract_max_bad_rate")


@strawberry.type
class FieldsMutation:
    @strawberry.mutation(description="Add a field to an event type. Editors and owners.")
    async def field_create(self, info: strawberry.Info, input: FieldCreateInput) -> FieldCreatePayload:
        ctx = info.context

        async def work() -> FieldCreatePayload:
            _, rows = await fields.create_fields(
                ctx.rt, ctx.principal, decode_input_id(input.event_type_id, "EventType", "eventTypeId"),
                [input.spec()], single=True, request_id=ctx.request_id)
            return FieldCreatePayload(field=Field.from_row(rows[0]))

        return await mutate(FieldCreatePayload, work)

    @strawberry.mutation(description="Add several fields to an event type at once: all or nothing (an error names the "
                                     "failing item's index). Editors and owners.")
    async def fields_bulk_create(self, info: strawberry.Info, input: FieldsBulkCreateInput) -> FieldsBulkCreatePayload:
        ctx = info.context

        async def work() -> FieldsBulkCreatePayload:
            event_type, rows = await fields.create_fields(
                ctx.rt, ctx.principal, decode_input_id(input.event_type_id, "EventType", "eventTypeId"),
                [f.spec() for f in input.fields], request_id=ctx.request_id)
            return FieldsBulkCreatePayload(fields=[Field.from_row(r) for r in rows],
                                           event_type=EventType.from_row(event_type))

        return await mutate(FieldsBulkCreatePayload, work)

    @strawberry.mutation(description="Change a field (absent inputs stay; the name is fixed). Editors and owners.")
    async def field_update(self, info: strawberry.Info, input: FieldUpdateInput) -> FieldUpdatePayload:
        ctx = info.context

        async def work() -> FieldUpdatePayload:
            changes = {key: maybe(getattr(input, key)) for key in _UPDATABLE}
            row = await fields.update_field(ctx.rt, ctx.principal, decode_input_id(input.id, "Field", "id"), changes,
                                            request_id=ctx.request_id)
            return FieldUpdatePayload(field=Field.from_row(row))

        return await mutate(FieldUpdatePayload, work)

    @strawberry.mutation(description="Put an event type's fields in a new order (the full list of its field IDs). "
                                     "Editors and owners.")
    async def fields_reorder(self, info: strawberry.Info, input: FieldsReorderInput) -> FieldsReorderPayload:
        ctx = info.context

        async def work() -> FieldsReorderPayload:
            event_type_id = decode_input_id(input.event_type_id, "EventType", "eventTypeId")
            row = await fields.reorder_fields(ctx.rt, ctx.principal, event_type_id,
                                              _decode_ids(input.field_ids, "Field", "fieldIds"),
                                              request_id=ctx.request_id)
            return FieldsReorderPayload(event_type=EventType.from_row(row))

        return await mutate(FieldsReorderPayload, work)

    @strawberry.mutation(description="Delete a field. Editors and owners.")
    async def field_delete(self, info: strawberry.Info, input: FieldDeleteInput) -> FieldDeletePayload:
        ctx = info.context

        async def work() -> FieldDeletePayload:
            row = await fields.delete_field(ctx.rt, ctx.principal, decode_input_id(input.id, "Field", "id"),
                                            request_id=ctx.request_id)
            event_type = await ctx.loader(loaders.load_event_types).load(row.event_type_id)
            return FieldDeletePayload(deleted_field_id=to_global_id("Field", row.id),
                                      event_type=EventType.from_row(event_type) if event_type else None)

        return await mutate(FieldDeletePayload, work)

