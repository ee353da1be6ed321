"""Bad input on the REST shim: every refusal has its status code, a `{error, details, code}` body,
and changes nothing but the REJECTED delivery row and the config's counters. No client input
yields a 500 (a deterministic fuzz over every provider's fixtures)."""

from __future__ import annotations

import copy
import os
import json
import random

import httpx
import pytest

from server.domains.incidents.webhook_configs import PROVIDER_ROUTES
from tests.server.incidents.webhooks.conftest import Org, fixture_bytes, fixture_files, load_fixture, raw_uuid, shape
from tests.support.client import GQL, create_org, register_and_login

NOTHING_DERIVED = {"alerts": 0, "incidents": 0, "change_events": 0, "incident_timeline": 0}


def ingest(key: str) -> str:
    return f"/api/v1/webhooks/ingest/{key}"


async def refused(org: Org, response: httpx.Response, status: int, code: str, *, body_kept: bool) -> dict:
    assert response.status_code == status, response.text
    shape(response)
    assert response.json()["code"] == code
    assert response.headers["content-type"] == "application/json"
    counts = await org.counts()
    assert {k: v for k, v in counts.items() if k != "webhook_deliveries"} == NOTHING_DERIVED
    rows = await org.fetch("SELECT status, http_status, error_code, octet_length(raw_body) AS n, size "
                           "FROM webhook_deliveries WHERE organization_id = $1 ORDER BY created_at DESC", org.org_uuid)
    assert (rows[0]["status"], rows[0]["http_status"], rows[0]["error_code"]) == ("rejected", status, code)
    assert (rows[0]["n"] > 0) == body_kept
    return response.json()


@pytest.mark.parametrize("raw", [
    b"{", b"not json", b"", b"   ", b'{"title": NaN}', b'{"title": "x"} trailing', b"\xff\xfe{}",
    b'{"title": "\xc3"}', b"[" * 100_000 + b"]" * 100_000, b"{'title': 'single quotes'}",
], ids=["open-brace", "text", "empty", "blank", "nan", "trailing", "bad-utf8", "truncated-utf8", "deep", "quotes"])
async def test_malformed_json_is_400(org: Org, raw):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), content=raw, headers={"Content-Type": "application/json"})
    body = await refused(org, r, 400, "MALFORMED_JSON", body_kept=bool(raw))
    assert body["error"]


async def test_json_that_orjson_refuses_but_json_allows_is_accepted(org: Org):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), content=b'{"title": "big", "labels": {"n": 123456789012345678901234567890}}',
                            headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text


async def test_byte_order_mark_is_tolerated(org: Org):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), content=b'\xef\xbb\xbf{"title": "bom"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("content_type", [None, "text/html", "application/xml", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp", "json"])
async def test_wrong_content_type_is_415(org: Org, content_type):
    _, key = await org.create_config("GENERIC")
    headers = {"Content-Type": content_type} if content_type else {}
    r = await org.http.post(ingest(key), content=b'{"title": "x"}', headers=headers)
    body = await refused(org, r, 415, "UNSUPPORTED_MEDIA_TYPE", body_kept=False)
    assert body["details"]["contentType"] == content_type


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                                          "application/vnd.insights.alert+json", "text/plain",
                                          "text/plain; charset=utf-8"])
async def test_json_content_types_are_accepted(org: Org, content_type):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), content=json.dumps({"title": content_type}).encode(),
                            headers={"Content-Type": content_type})
    assert r.status_code == 202, r.text


async def test_body_over_the_limit_is_413_by_content_length_and_by_counting(org: Org, live):
    limit = live.app.state.runtime.settings.webhook_max_body_bytes
    assert limit == 1_048_576
    _, key = await org.create_config("GENERIC")
    big = json.dumps({"title": "big", "description": "x" * limit}).encode()
    r = await org.http.post(ingest(key), content=big, headers={"Content-Type": "application/json"})
    body = await refused(org, r, 413, "PAYLOAD_TOO_LARGE", body_kept=False)
    assert body["details"]["limit"] == limit and body["details"]["size"] == len(big)

    async def chunks():  # no Content-Length: chunked transfer, counted while reading
        yield b'{"title": "big", "description": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    r = await org.http.post(ingest(key), content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    await refused(org, r, 413, "PAYLOAD_TOO_LARGE", body_kept=False)

    exactly = json.dumps({"title": "at limit", "labels": {"blob": ""}}).encode()
    exactly = exactly.replace(b'""', b'"' + b"z" * (limit - len(exactly)) + b'"')
    assert len(exactly) == limit
    r = await org.http.post(ingest(key), content=exactly, headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text


async def test_body_limit_is_a_setting(start_server, database_url):
    server = start_server(webhook_max_body_bytes=100)
    gql = GQL(server.url)
    try:
        token, _ = await register_and_login(gql)
        org = await create_org(gql, token, "Small bodies")
        data = await gql("""mutation($i: WebhookConfigCreateInput!) { webhookConfigCreate(input: $i) { key } }""",
                         {"i": {"organizationId": org["id"], "name": "g", "provider": "GENERIC"}}, token=token)
        key = data["webhookConfigCreate"]["key"]
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(ingest(key), json={"title": "x" * 60})
            assert r.status_code == 202, r.text
            r = await http.post(ingest(key), json={"title": "x" * 120})
            assert r.status_code == 413 and r.json()["details"]["limit"] == 100
    finally:
        await gql.aclose()


@pytest.mark.parametrize("body,path", [
    ({"description": "no title"}, "title"),
    ({"title": ""}, "title"),
    ({"title": 42}, "title"),
    ({"title": "x", "severity": 5}, "severity"),
    ({"title": "x", "status": "exploded"}, "status"),
    ({"title": "x", "startedAt": "yesterday"}, "startedAt"),
    ({"title": "x", "labels": {"a": {"nested": 1}}}, "labels.a"),
    ({"alerts": [{"title": "ok"}, {"title": None}]}, "alerts[1].title"),
    ({"alerts": "not a list"}, "alerts"),
    ([{"title": "array at the top"}], "$"),
    ("just a string", "$"),
    (None, "$"),
])
async def test_generic_payload_outside_the_schema_is_422_with_the_path(org: Org, body, path):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    got = await refused(org, r, 422, "INVALID_PAYLOAD", body_kept=True)
    assert got["details"]["path"] == path, got


async def test_provider_payload_the_format_does_not_allow_is_422(org: Org):
    config, key = await org.create_config("GRAFANA")
    r = await org.http.post("/api/grafana/alerts", json={"receiver": "x", "alerts": {"not": "a list"}},
                            headers={"X-Insights-Key": key})
    got = await refused(org, r, 422, "INVALID_PAYLOAD", body_kept=True)
    assert got["details"] == {"path": "alerts", "provider": "grafana"}
    stats = (await org.config(config["id"]))["stats"]
    assert stats["deliveriesRejected"] == 1 and stats["lastError"].startswith("422 ") and "alerts" in stats["lastError"]


async def test_over_the_configs_rate_is_429_with_retry_after(org: Org):
    config, key = await org.create_config("GENERIC", rateLimitPerMinute=2)
    statuses, limited = [], None
    for i in range(6):
        r = await org.http.post(ingest(key), json={"title": f"alert {i}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            limited = r
    assert statuses.count(202) >= 2 and limited is not None, statuses
    shape(limited)
    assert limited.json()["code"] == "RATE_LIMITED"
    retry = int(limited.headers["retry-after"])
    assert 1 <= retry <= 60 and limited.json()["details"] == {"limit": 2, "retryAfter": retry}
    accepted = statuses.count(202)
    counts = await org.counts()
    assert counts["alerts"] == accepted  # refused deliveries wrote nothing derived
    stats = (await org.config(config["id"]))["stats"]
    assert stats["deliveriesAccepted"] == accepted
    # a flood is counted once per minute window, not per refused request
    assert 1 <= stats["deliveriesRejected"] <= 2 and "429" in stats["lastError"]
    assert counts["webhook_deliveries"] == accepted + stats["deliveriesRejected"]


async def test_other_methods_are_405_json(org: Org):
    _, key = await org.create_config("GRAFANA")
    r = await org.http.get("/api/grafana/alerts", headers={"X-Insights-Key": key})
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    shape(r)
    r = await org.http.put("/api/grafana/alerts", json={"receiver": "r", "alerts": []}, headers={"X-Insights-Key": key})
    assert r.status_code == 202, r.text  # Grafana's contact point may be set to PUT
    r = await org.http.delete(ingest(key))
    assert r.status_code == 405
    shape(r)


async def test_values_longer_than_the_columns_are_stored_not_500(org: Org):
    _, key = await org.create_config("GRAFANA")
    long = "x" * 5000
    body = {"receiver": "r", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": long, "service": long, "env": long, "severity": long, long: long},
        "annotations": {"summary": long}, "startsAt": "2026-11-24T09:00:00Z", "generatorURL": "https://x/" + long,
        "fingerprint": long}]}
    r = await org.http.post("/api/grafana/alerts", json=body, headers={"X-Insights-Key": key})
    assert r.status_code in (202, 422), r.text
    if r.status_code == 202:
        assert (await org.counts())["alerts"] == 1


# --- never a 500 -----------------------------------------------------------------------------

WEIRD = [None, True, 0, -1, 2**70, 1e308, -1e308, 0.5, "", " ", "x" * 3000, "\u0000", "\ud7ff\ue000",
         "2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1e400", [], {}, [None],
         {"": None}, [[[[[]]]]], {"a": {"b": {"c": []}}}, "critical", "resolved", "P1"]


def _paths(value, prefix=()):  # noqa: ANN001, ANN202
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _replace(value, path, new):  # noqa: ANN001, ANN202
    if not path:
        return None if new is _DELETE else new
    value = copy.deepcopy(value)
    target = value
    for p in path[:-1]:
        target = target[p]
    if new is _DELETE and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = None if new is _DELETE else new
    return value


_DELETE = object()


def mutants(body, rng: random.Random, n: int) -> list:  # noqa: ANN001
    paths = list(_paths(body))
    out = []
    for _ in range(n):
        mutated = body
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(list(_paths(mutated)) or paths)
            mutated = _replace(mutated, path, rng.choice([*WEIRD, _DELETE]))
        out.append(mutated)
    return out


FUZZ_FILES = [(label, path) for label, path in fixture_files() if load_fixture(path)["expect"]["kind"] != "rejected"
              or load_fixture(path)["expect"]["http_status"] == 422]


@pytest.mark.parametrize("label,path", FUZZ_FILES, ids=[label for label, _ in FUZZ_FILES])
async def test_no_client_input_causes_a_500(org: Org, label, path):
    """Mutated real payloads (wrong types, missing keys, odd values) on every route: 202 or 422,
    never 5xx; a 422 writes nothing derived."""
    fixture = load_fixture(path)
    provider = fixture["provider"]
    _, key = await org.create_config(provider.upper())
    rng = random.Random(label)
    headers = {k: v for k, v in fixture["headers"].items() if "signature" not in k.lower()}
    bodies = mutants(fixture["body"], rng, int(os.environ.get("WEBHOOK_FUZZ_N", "8")))
    for body in bodies:
        raw = json.dumps(body, allow_nan=False).encode()
        before = await org.counts()
        r = await org.http.post(PROVIDER_ROUTES[provider], content=raw, headers={**headers, "X-Insights-Key": key})
        assert r.status_code in (202, 422), f"{r.status_code} for {raw[:500]!r}: {r.text}"
        if r.status_code == 422:
            shape(r)
            after = await org.counts()
            assert {k: after[k] - before[k] for k in after} == {
                "webhook_deliveries": 1, "alerts": 0, "incidents": 0, "change_events": 0, "incident_timeline": 0}
    # and the same route with raw garbage
    for raw in (fixture_bytes(fixture)[: len(fixture_bytes(fixture)) // 2], b"\x00" * 10, b"[]", b"1", b"null"):
        r = await org.http.post(PROVIDER_ROUTES[provider], content=raw,
                                headers={**headers, "X-Insights-Key": key})
        assert r.status_code in (202, 400, 422), f"{r.status_code} for {raw[:200]!r}: {r.text}"


async def test_rejected_delivery_keeps_the_body_for_replay_when_authenticated(org: Org):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(ingest(key), json={"nope": 1})
    assert r.status_code == 422
    (row,) = await org.fetch("SELECT raw_body, headers FROM webhook_deliveries WHERE organization_id = $1",
                             org.org_uuid)
    assert json.loads(row["raw_body"]) == {"nope": 1}
    assert raw_uuid  # (imported for other tests)
