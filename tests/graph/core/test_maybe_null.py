"""An explicit null for a `strawberry.Maybe[T]` input field (absent or a value, never null) is the
client's mistake: a VALIDATION error with Strawberry's message, not a masked INTERNAL error. In the
document it is caught by validation; through variables only when the arguments are converted,
during execution, which used to look like a bug of ours."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import strawberry

from graph.core.extensions import ErrorShaping, InsightsSchema


@strawberry.input
class PatchInput:
    title: strawberry.Maybe[str]
    note: strawberry.Maybe[str | None]


@strawberry.type
class Query:
    @strawberry.field
    def fine(self) -> int:
        return 1


@strawberry.type
class Mutation:
    @strawberry.mutation
    def patch(self, input: PatchInput) -> str:
        return f"{input.title!r} {input.note!r}"


schema = InsightsSchema(query=Query, mutation=Mutation, extensions=[ErrorShaping])
CONTEXT = SimpleNamespace(request_id="req-null")


async def test_null_through_variables_is_a_validation_error(caplog):
    with caplog.at_level(logging.ERROR, logger="insights.graphql"):
        result = await schema.execute("mutation P($input: PatchInput!) { patch(input: $input) }",
                                      variable_values={"input": {"title": None}}, context_value=CONTEXT)
    [error] = result.errors
    assert error.extensions["code"] == "VALIDATION", error.extensions
    assert "cannot be explicitly set to null" in error.message and "internal error" not in error.message
    assert "requestId" not in error.extensions
    assert not [r for r in caplog.records if r.name == "insights.graphql"]  # not logged as our bug


async def test_null_through_a_nested_variable_is_a_validation_error():
    result = await schema.execute("mutation P($t: String) { patch(input: {title: $t}) }",
                                  variable_values={"t": None}, context_value=CONTEXT)
    [error] = result.errors
    assert error.extensions["code"] == "VALIDATION"


async def test_null_in_the_document_fails_validation():
    result = await schema.execute("mutation { patch(input: {title: null}) }", context_value=CONTEXT)
    [error] = result.errors
    assert error.extensions["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_maybe_of_optional_takes_null_and_absence():
    result = await schema.execute("mutation P($input: PatchInput!) { patch(input: $input) }",
                                  variable_values={"input": {"note": None}}, context_value=CONTEXT)
    assert result.errors is None and result.data == {"patch": "None Some(None)"}
