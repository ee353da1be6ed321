"""`document_cost`: list fields multiply by their size, connections only on their items, fragments
and variables (with their defaults) are priced, and pricing stays linear on fragment bombs."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import pytest
import strawberry
from graphql import parse

from graph.core.connections import Connection
from graph.core.cost import COST_ITEMS, document_cost

DEFAULT = 50


@strawberry.type
class Item:
    id: strawberry.ID
    tags: list[str]
    children: list["Item"]
    parts: list["Item"] = strawberry.field(metadata={COST_ITEMS: 4})

    @strawberry.field
    def related(self, first: int | None = None, after: str | None = None) -> Connection["Item"]:  # pragma: no cover
        raise NotImplementedError


@strawberry.type
class Query:
    @strawberry.field
    def items(self, first: int | None = None, last: int | None = None, after: str | None = None,
              before: str | None = None) -> Connection[Item]:  # pragma: no cover
        raise NotImplementedError

    @strawberry.field
    def item(self, id: strawberry.ID) -> Item | None:  # pragma: no cover
        raise NotImplementedError

    @strawberry.field
    def many(self, ids: list[strawberry.ID]) -> list[Item | None]:  # pragma: no cover
        raise NotImplementedError


SCHEMA = strawberry.Schema(query=Query)._schema


def cost(query: str, variables: dict | None = None, operation: str | None = None, schema=SCHEMA) -> int:  # noqa: ANN001
    return document_cost(parse(query), operation, variables, DEFAULT, schema)


def test_connection_multiplies_its_items_but_not_page_info_or_total_count():
    # items 1, totalCount 1, pageInfo 1+2, edges/cursor/node/id 4 x 10
    assert cost("{ items(first: 10) { totalCount pageInfo { hasNextPage endCursor } "
                "edges { cursor node { id } } } }") == 1 + 1 + 3 + 40


def test_connection_without_first_is_priced_at_the_default_page_size():
    assert cost("{ items { nodes { id } } }") == 1 + DEFAULT + DEFAULT


def test_nested_connections_multiply():
    # items 1; nodes 10; id 10; related (per item) 10, its nodes 10*5, their id 10*5
    assert cost("{ items(first: 10) { nodes { id related(first: 5) { nodes { id } } } } }") == 1 + 10 + 10 + 10 + 50 + 50


def test_plain_lists_multiply_by_the_default_page_size():
    # item 1; children 1; per child (50): id, children; per grandchild (2500): id
    assert cost('{ item(id: "x") { children { id children { id } } } }') == 1 + 1 + 50 + 50 + 2500


def test_list_argument_sizes_the_list():
    assert cost('{ many(ids: ["a", "b", "c"]) { ... on Item { id } } }') == 1 + 3
    assert cost("query($ids: [ID!]!) { many(ids: $ids) { id } }", {"ids": ["a"] * 7}) == 1 + 7


def test_variables_and_their_defaults_price_first():
    q = "query Q($n: Int) { items(first: $n) { nodes { id } } }"
    assert cost(q, {"n": 20}) == 1 + 20 + 20
    assert cost("query Q($n: Int = 7) { items(first: $n) { nodes { id } } }") == 1 + 7 + 7
    assert cost("query Q($n: Int = 7) { items(first: $n) { nodes { id } } }", {"n": 400}) == 1 + 400 + 400
    assert cost(q, {}) == 1 + DEFAULT + DEFAULT  # unset: the default page size
    assert cost("{ items(first: null) { nodes { id } } }") == 1 + DEFAULT + DEFAULT


def test_first_and_last_together_are_priced_by_the_larger():
    assert cost("{ items(first: 3, last: 30) { nodes { id } } }") == 1 + 30 + 30


def test_fragments_and_inline_fragments_are_priced_in_place():
    q = """{ items(first: 3) { ...Conn } }
           fragment Conn on ItemConnection { nodes { ...F } totalCount }
           fragment F on Item { id tags }"""
    # items 1; nodes 3; per item: id, tags (a list of scalars costs itself); totalCount 1
    assert cost(q) == 1 + 3 + 3 + 3 + 1


def test_one_fragment_reused_at_different_sizes():
    q = """{ a: items(first: 4) { ...C } b: items(first: 2) { ...C } }
           fragment C on ItemConnection { totalCount nodes { id } }"""
    assert cost(q) == (1 + 1 + 4 + 4) + (1 + 1 + 2 + 2)


def test_only_the_named_operation_counts():
    q = "query Small { item(id: \"x\") { id } } query Big { items(first: 100) { nodes { id } } }"
    assert cost(q, operation="Small") == 2
    assert cost(q, operation="Big") == 201
    assert cost(q) == 201  # unnamed: the most costly


def test_introspection_fields_are_free():
    assert cost("{ __typename item(id: \"x\") { __typename id } }") == 2


def test_without_a_schema_size_arguments_still_multiply():
    q = "{ items(first: 10) { edges { node { id } } pageInfo { hasNextPage } } }"
    assert cost(q, schema=None) == 1 + 10 + 10 + 10 + 1 + 1


def test_fragment_bomb_is_priced_in_linear_time():
    depth = 30
    frags = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(depth)]
    frags.append(f'fragment F{depth} on Query {{ item(id: "x") {{ id }} }}')
    q = "query { ...F0 } " + " ".join(frags)
    started = time.perf_counter()
    assert cost(q) == 2 ** depth * 2
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("first", [-1, "ten"])
def test_unusable_sizes_fall_back_to_the_default(first):
    assert cost("query($n: Int) { items(first: $n) { nodes { id } } }", {"n": first}) == 1 + DEFAULT + DEFAULT


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def batches(self, first: int = 10) -> "AsyncGenerator[list[Item], None]":
        yield []


async def test_limiter_refuses_costly_queries_and_subscriptions():
    from types import SimpleNamespace

    from graph.core.cost import QueryCostLimiter
    from graph.core.extensions import ErrorShaping

    schema = strawberry.Schema(query=Query, subscription=Subscription,
                               extensions=[ErrorShaping, lambda: QueryCostLimiter(max_cost=20, default_page_size=DEFAULT)])
    ctx = SimpleNamespace(request_id="c1")
    result = await schema.execute("{ __typename }", context_value=ctx)
    assert result.errors is None and result.data == {"__typename": "Query"}
    result = await schema.execute("{ items(first: 10) { nodes { id } } }", context_value=ctx)
    assert [e.extensions for e in result.errors] == [{"code": "QUERY_TOO_COSTLY", "cost": 21, "maxCost": 20}]
    assert result.data is None

    stream = await schema.subscribe("subscription { batches(first: 30) { id } }", context_value=ctx)
    sent = [[(e.extensions or {}).get("code") for e in r.errors or ()] async for r in stream]
    assert sent == [["QUERY_TOO_COSTLY"]]


def test_a_size_hint_prices_a_bounded_list_without_size_arguments():
    # item 1; parts 1; per part (4): id, parts; per sub-part (16): id
    assert cost('{ item(id: "x") { parts { id parts { id } } } }') == 1 + 1 + 4 + 4 + 16
