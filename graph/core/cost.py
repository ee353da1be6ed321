"""Query cost limit: every field costs 1, and a list field multiplies the cost of what it selects
by the number of items it may return (`first`/`last`, else the default page size).

Computed after validation, when variable values are known, so `first: $n` is priced by `$n`.
"""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.execution import ExecutionResult
from strawberry.extensions import SchemaExtension

LIST_ARGS = ("first", "last", "limit")
# Connection wrapper fields: their own children are per item, the multiplier sits on the parent.
CONNECTION_ITEM_FIELDS = ("edges", "nodes")


def _size(field: FieldNode, variables: dict, default: int) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value in LIST_ARGS:
            value = value_from_ast_untyped(arg.value, variables)
            if isinstance(value, int) and value >= 0:
                return value
            return default
    return None


def selection_cost(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
                   variables: dict, default: int, multiplier: int = 1, seen: frozenset[str] = frozenset()) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            if sel.name.value.startswith("__"):
                continue
            size = _size(sel, variables, default)
            child_mult = multiplier * (size if size is not None else 1)
            total += multiplier + selection_cost(sel.selection_set, fragments, variables, default, child_mult, seen)
        elif isinstance(sel, InlineFragmentNode):
            total += selection_cost(sel.selection_set, fragments, variables, default, multiplier, seen)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            if name in seen or name not in fragments:
                continue
            total += selection_cost(fragments[name].selection_set, fragments, variables, default, multiplier, seen | {name})
    return total


def document_cost(document, operation_name: str | None, variables: dict | None, default: int) -> int:  # noqa: ANN001
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        ops = [o for o in ops if o.name and o.name.value == operation_name]
    return max((selection_cost(o.selection_set, fragments, variables or {}, default) for o in ops), default=0)


class QueryCostLimiter(SchemaExtension):
    def __init__(self, max_cost: int, default_page_size: int = 50):
        self.max_cost = max_cost
        self.default_page_size = default_page_size

    def on_execute(self):  # noqa: ANN201
        ec = self.execution_context
        if ec.graphql_document is not None:
            cost = document_cost(ec.graphql_document, ec.operation_name, ec.variables, self.default_page_size)
            if cost > self.max_cost:
                ec.result = ExecutionResult(data=None, errors=[GraphQLError(
                    f"query cost {cost} exceeds the limit of {self.max_cost}; ask for fewer items per page",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": self.max_cost})])
        yield
