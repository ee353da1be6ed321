"""Protection at `/graphql`: depth, alias, token and cost limits, the rate limit (429 with
`Retry-After`), parser and validation caches, and the settings that turn off introspection and
GraphiQL."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from graph.core.node import to_global_id
from server.security.rate_limit import Window, hit, hit_many
from tests.server.http.conftest import client

ORG = to_global_id("Organization", "00000000-0000-4000-8000-000000000002")


def codes(r) -> list[str]:  # noqa: ANN001
    return [e["extensions"]["code"] for e in r.json().get("errors") or []]


@pytest.fixture(scope="module")
def limited(start_server):  # noqa: ANN001, ANN201
    return start_server(max_query_depth=2, max_aliases=2, max_tokens=60)


async def test_depth_limit(limited):
    async with client(limited.url) as http:
        ok = await http.post("/graphql", json={"query": '{ node(id: "%s") { ... on Job { id } } }' % ORG})
        assert ok.json() == {"data": {"node": None}}
        deep = await http.post("/graphql", json={
            "query": 'query Deep { jobs(organizationId: "%s") { edges { node { id } } } }' % ORG})
    assert deep.status_code == 200
    assert codes(deep) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "exceeds maximum operation depth of 2" in deep.json()["errors"][0]["message"]


async def test_alias_limit(limited):
    async with client(limited.url) as http:
        ok = await http.post("/graphql", json={"query": "{ a: __typename b: __typename }"})
        assert ok.json() == {"data": {"a": "Query", "b": "Query"}}
        many = await http.post("/graphql", json={"query": "{ a: __typename b: __typename c: __typename }"})
    assert codes(many) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "aliases" in many.json()["errors"][0]["message"]


async def test_token_limit(limited):
    async with client(limited.url) as http:
        long = await http.post("/graphql", json={"query": "{ " + " ".join(["__typename"] * 70) + " }"})
    assert long.status_code == 200
    assert codes(long) == ["GRAPHQL_PARSE_FAILED"]
    assert "more than 60 tokens" in long.json()["errors"][0]["message"]


@pytest.fixture(scope="module")
def locked_down(start_server):  # noqa: ANN001, ANN201
    return start_server(max_query_cost=200, introspection=False, graphiql=False)


async def test_cost_limit_prices_lists_by_first_including_variable_defaults(locked_down):
    query = "query Jobs($org: ID!, $n: Int = 100) { jobs(organizationId: $org, first: $n) { nodes { id kind } } }"
    async with client(locked_down.url) as http:
        costly = await http.post("/graphql", json={"query": query, "variables": {"org": ORG}})
        cheap = await http.post("/graphql", json={"query": query, "variables": {"org": ORG, "n": 10}})
        unset = await http.post("/graphql", json={"query": query.replace(" = 100", ""), "variables": {"org": ORG}})
    assert costly.status_code == 200
    [error] = costly.json()["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 301, "maxCost": 200}
    assert costly.json()["data"] is None
    # Cheap enough: it runs, and fails on what it asked for (an anonymous caller), not on cost.
    assert codes(cheap) == ["UNAUTHENTICATED"]
    assert codes(unset) == ["UNAUTHENTICATED"]  # default page size 50: 151


async def test_introspection_can_be_turned_off(live, locked_down):
    q = {"query": "{ __schema { queryType { name } } }"}
    async with client(live.url) as http:
        assert (await http.post("/graphql", json=q)).json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    async with client(locked_down.url) as http:
        r = await http.post("/graphql", json=q)
        assert r.json()["data"] is None
        assert set(codes(r)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in r.json()["errors"][0]["message"].lower()
        assert (await http.post("/graphql", json={"query": "{ __typename }"})).json() == {"data": {"__typename": "Query"}}


async def test_graphiql_can_be_turned_off(live, locked_down):
    async with client(live.url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    async with client(locked_down.url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404
        # Queries over GET still work without the IDE.
        r = await http.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "application/json"})
        assert r.json() == {"data": {"__typename": "Query"}}


async def test_parser_and_validation_caches_hit(http):
    query = f"query Cached{uuid.uuid4().hex[:8]} {{ __typename }}"
    parse_before = _get_parse_cache(1000).cache_info().hits
    validate_before = _get_validate_cache(1000).cache_info().hits
    for _ in range(3):
        assert (await http.post("/graphql", json={"query": query})).status_code == 200
    assert _get_parse_cache(1000).cache_info().hits >= parse_before + 2
    assert _get_validate_cache(1000).cache_info().hits >= validate_before + 2


async def _away_from_minute_edge() -> None:
    """Fixed windows restart every minute; start a burst well inside one."""
    if time.time() % 60 > 55:
        await asyncio.sleep(61 - time.time() % 60)


@pytest.fixture(scope="module")
def strict(start_server):  # noqa: ANN001, ANN201
    return start_server(rate_limit_per_minute=3)


async def test_rate_limit_per_minute_answers_429_with_retry_after(strict):
    await _away_from_minute_edge()
    async with client(strict.url) as http:
        for _ in range(3):
            assert (await http.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
        r = await http.post("/graphql", json={"query": "{ __typename }"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        [error] = r.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == int(r.headers["retry-after"])
        assert "rate limit of 3 requests" in error["message"]
        metrics = await http.get("/metrics")
        assert "insights_rate_limited_total" in metrics.text

    async with client(strict.url) as other:  # another address is another anonymous bucket
        assert (await other.post("/graphql", json={"query": "{ __typename }"})).status_code == 200


async def test_a_get_with_a_query_is_rate_limited_even_when_it_accepts_html(strict):
    """Only the GraphiQL page itself (a GET without `query`) skips the gate."""
    await _away_from_minute_edge()
    statuses = []
    async with client(strict.url) as http:
        for _ in range(5):
            r = await http.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "text/html"})
            statuses.append(r.status_code)
        assert (await http.get("/graphql", headers={"accept": "text/html"})).status_code == 200  # the IDE page
    assert statuses == [200, 200, 200, 429, 429]


async def test_rate_limit_per_hour(start_server):
    server = start_server(rate_limit_per_minute=1000, rate_limit_per_hour=2)
    async with client(server.url) as http:
        for _ in range(2):
            assert (await http.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
        r = await http.post("/graphql", json={"query": "{ __typename }"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    assert "rate limit of 2 requests" in r.json()["errors"][0]["message"]


async def test_hit_counts_every_window_in_redis(redis_url):
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url)
    bucket = f"test:{uuid.uuid4().hex}"
    try:
        verdicts = [await hit(redis, bucket, [Window(60, 100), Window(3600, 2)]) for _ in range(3)]
        ttl = await redis.ttl(f"rl:{bucket}:3600:{int(time.time()) // 3600}")
    finally:
        await redis.aclose()
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[0].remaining == 99
    assert verdicts[2].limit == 2 and 1 <= verdicts[2].retry_after <= 3600
    assert 0 < ttl <= 3601  # windows expire on their own


async def test_hit_fails_open_without_redis():
    import redis.asyncio as aioredis

    from tests.support.live import free_port

    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        verdict = await hit(dead, "test:dead", [Window(60, 0)])
    finally:
        await dead.aclose()
    assert verdict.allowed


async def test_hit_many_admits_the_first_ones_within_the_window(redis_url):
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url)
    bucket = f"test:{uuid.uuid4().hex}"
    if time.time() % 60 > 55:  # the three calls must share one minute window
        await asyncio.sleep(61 - time.time() % 60)
    try:
        first = await hit_many(redis, bucket, Window(60, 5), 3)
        second = await hit_many(redis, bucket, Window(60, 5), 4)
        third = await hit_many(redis, bucket, Window(60, 5), 2)
        single = await hit(redis, bucket, [Window(60, 5)])  # the same bucket as one-by-one hits
    finally:
        await redis.aclose()
    assert (first[0], second[0], third[0]) == (3, 2, 0)
    assert 1 <= second[1] <= 60
    assert not single.allowed


async def test_hit_many_fails_open_without_redis():
    import redis.asyncio as aioredis

    from tests.support.live import free_port

    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        assert await hit_many(dead, "test:dead", Window(60, 0), 4) == (4, 0)
    finally:
        await dead.aclose()
