"""Query cost limit: every field costs 1, and a list field multiplies the cost of what it selects
by the number of items it may return: its `first`/`last`/`limit`, the length of a list argument
(`nodes(ids:)`), else the field's own size hint (`strawberry.field(metadata={COST_ITEMS: n})`, for
small bounded lists such as an event type's fields), else the default page size.

A connection's multiplier applies to its items (`edges`, `nodes`) only; `pageInfo` and
`totalCount` are paid once per connection. Computed after validation, when variable values are
known, so `first: $n` is priced by `$n` (or by the variable's default value).

The cost is linear in the multiplier, so each fragment is priced once and reused: a document that
spreads the same fragment many times (a "fragment bomb") costs linear time to price.
"""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)
from graphql.execution import ExecutionResult
from strawberry.extensions import SchemaExtension

LIST_ARGS = ("first", "last", "limit")
COST_ITEMS = "cost_items"  # strawberry.field metadata key: the items a list without size arguments is priced at
# Connection wrapper fields: their own children are per item, the multiplier sits on the parent.
CONNECTION_ITEM_FIELDS = ("edges", "nodes")


def _is_list(type_) -> bool:  # noqa: ANN001
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _is_connection(type_) -> bool:  # noqa: ANN001
    named = get_named_type(type_) if type_ is not None else None
    return isinstance(named, GraphQLObjectType) and "edges" in named.fields and "pageInfo" in named.fields


class _Pricer:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode], variables: dict, default: int,
                 schema: GraphQLSchema | None):
        self.fragments = fragments
        self.variables = variables
        self.default = default
        self.schema = schema
        self._fragment_memo: dict[tuple, int] = {}
        self._active: set[str] = set()

    # -- sizes -------------------------------------------------------------------------------
    def _value(self, node):  # noqa: ANN001, ANN202
        return value_from_ast_untyped(node, self.variables)

    def _size_arg(self, field: FieldNode) -> int | None:
        """The largest `first`/`last`/`limit` given (the default page size when unusable), or None."""
        sizes = []
        for arg in field.arguments or ():
            if arg.name.value in LIST_ARGS:
                value = self._value(arg.value)
                if value is None:
                    continue  # `first: null` is the same as leaving it out
                sizes.append(value if isinstance(value, int) and not isinstance(value, bool) and value >= 0
                             else self.default)
        return max(sizes) if sizes else None

    def _list_arg_length(self, field: FieldNode) -> int | None:
        lengths = [len(v) for v in (self._value(a.value) for a in field.arguments or ()) if isinstance(v, list)]
        return max(lengths) if lengths else None

    # -- types -------------------------------------------------------------------------------
    def _field_type(self, parent, name: str):  # noqa: ANN001, ANN202
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            field = parent.fields.get(name)
            return field.type if field else None
        return None

    @staticmethod
    def _size_hint(parent, name: str) -> int | None:  # noqa: ANN001
        """The field's COST_ITEMS metadata, when its Strawberry definition has one."""
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)) or name not in parent.fields:
            return None
        definition = (parent.fields[name].extensions or {}).get("strawberry-definition")
        hint = (getattr(definition, "metadata", None) or {}).get(COST_ITEMS)
        return hint if isinstance(hint, int) and hint >= 0 else None

    def _condition_type(self, type_condition, parent):  # noqa: ANN001, ANN202
        if self.schema is None or type_condition is None:
            return parent
        return self.schema.get_type(type_condition.name.value) or parent

    def _direct_field_names(self, selection_set: SelectionSetNode | None, seen: frozenset = frozenset()) -> set[str]:
        names: set[str] = set()
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FieldNode):
                names.add(sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                names |= self._direct_field_names(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in self.fragments and sel.name.value not in seen:
                names |= self._direct_field_names(self.fragments[sel.name.value].selection_set, seen | {sel.name.value})
        return names

    # -- cost --------------------------------------------------------------------------------
    def field(self, sel: FieldNode, parent, mult: int, item_mult: int | None) -> int:  # noqa: ANN001
        name = sel.name.value
        if name.startswith("__"):
            return 0
        field_type = self._field_type(parent, name)
        if item_mult is not None and name in CONNECTION_ITEM_FIELDS:
            # The items of a connection: priced by the connection's size, not again by their own list.
            return item_mult + self.selection(sel.selection_set, get_named_type(field_type) if field_type else None,
                                              item_mult, None)
        own = mult
        size = self._size_arg(sel)
        if self.schema is not None and field_type is not None:
            connection = _is_connection(field_type)
            if size is None and (connection or _is_list(field_type)):
                size = self._list_arg_length(sel) if not connection else None
                size = self._size_hint(parent, name) if size is None else size
                size = self.default if size is None else size
            child_type = get_named_type(field_type)
        else:
            connection = size is not None and bool(
                self._direct_field_names(sel.selection_set) & set(CONNECTION_ITEM_FIELDS))
            child_type = None
        if size is None:
            return own + self.selection(sel.selection_set, child_type, mult, None)
        if connection:
            return own + self.selection(sel.selection_set, child_type, mult, mult * size)
        return own + self.selection(sel.selection_set, child_type, mult * size, None)

    def fragment(self, name: str, mult: int, item_mult: int | None) -> int:
        """cost(mult, item) = mult * A + item * B, each of A and B computed once per fragment."""
        if name not in self.fragments or name in self._active or (mult == 0 and not item_mult):
            return 0
        frag = self.fragments[name]
        parent = self._condition_type(frag.type_condition, None)
        total = 0
        for part, (m, i) in (("a", (1, None if item_mult is None else 0)), ("b", (0, 1))):
            if part == "b" and item_mult is None:
                continue
            key = (name, part, item_mult is None)
            if key not in self._fragment_memo:
                self._active.add(name)
                try:
                    self._fragment_memo[key] = self.selection(frag.selection_set, parent, m, i)
                finally:
                    self._active.discard(name)
            total += self._fragment_memo[key] * (mult if part == "a" else item_mult)
        return total

    def selection(self, selection_set: SelectionSetNode | None, parent, mult: int, item_mult: int | None) -> int:  # noqa: ANN001
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += self.field(sel, parent, mult, item_mult)
            elif isinstance(sel, InlineFragmentNode):
                total += self.selection(sel.selection_set, self._condition_type(sel.type_condition, parent), mult, item_mult)
            elif isinstance(sel, FragmentSpreadNode):
                total += self.fragment(sel.name.value, mult, item_mult)
        return total


def _root_type(schema: GraphQLSchema | None, op: OperationDefinitionNode):  # noqa: ANN202
    if schema is None:
        return None
    return {OperationType.QUERY: schema.query_type, OperationType.MUTATION: schema.mutation_type,
            OperationType.SUBSCRIPTION: schema.subscription_type}.get(op.operation)


def _with_defaults(op: OperationDefinitionNode, variables: dict | None) -> dict:
    values = dict(variables or {})
    for d in op.variable_definitions or ():
        name = d.variable.name.value
        if name not in values and d.default_value is not None:
            values[name] = value_from_ast_untyped(d.default_value)
    return values


def selection_cost(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
                   variables: dict, default: int, multiplier: int = 1, schema: GraphQLSchema | None = None,
                   parent=None) -> int:  # noqa: ANN001
    return _Pricer(fragments, variables, default, schema).selection(selection_set, parent, multiplier, None)


def document_cost(document, operation_name: str | None, variables: dict | None, default: int,  # noqa: ANN001
                  schema: GraphQLSchema | None = None) -> int:
    """The cost of the operation that runs (the most costly one when the name is not given).

    With `schema`, list and connection fields are recognized by their type; without it, only by
    their `first`/`last`/`limit` arguments."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        ops = [o for o in ops if o.name and o.name.value == operation_name]
    return max((_Pricer(fragments, _with_defaults(o, variables), default, schema)
                .selection(o.selection_set, _root_type(schema, o), 1, None) for o in ops), default=0)


class QueryCostLimiter(SchemaExtension):
    def __init__(self, max_cost: int, default_page_size: int = 50):
        self.max_cost = max_cost
        self.default_page_size = default_page_size

    def on_execute(self):  # noqa: ANN201
        ec = self.execution_context
        if ec.graphql_document is not None:
            cost = document_cost(ec.graphql_document, ec.operation_name, ec.variables, self.default_page_size,
                                 ec.schema._schema)
            if cost > self.max_cost:
                error = GraphQLError(
                    f"query cost {cost} exceeds the limit of {self.max_cost}; ask for fewer items per page",
                    extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": self.max_cost})
                if ec.operation_type is not None and ec.operation_type.value == "subscription":
                    raise error  # subscriptions start without looking at a preset result
                ec.result = ExecutionResult(data=None, errors=[error])
        yield
