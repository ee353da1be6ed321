"""The rest of the shim: global IDs in REST answers match GraphQL's, the generic format's JSON
Schema is served, keys are masked in access logs, and a database outage is a 503 (not a 500)."""

from __future__ import annotations

import json
import logging
import uuid

import httpx

from graph.core.node import from_global_id, to_global_id
from server.domains.incidents.ids import global_id, parse_global_id
from server.domains.incidents.normalizers.generic import SCHEMA_PATH
from server.rest.webhooks import _MaskKeys
from tests.server.incidents.webhooks.conftest import Org, shape
from tests.support.live import LiveServer


def test_server_global_ids_match_graphql():
    for type_name in ("Alert", "Incident", "ChangeEvent", "WebhookDelivery", "X"):
        for raw in (uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)):
            assert global_id(type_name, raw) == to_global_id(type_name, raw)
            assert from_global_id(global_id(type_name, raw)) == (type_name, raw)
            assert parse_global_id(to_global_id(type_name, raw), type_name) == raw
    raw = uuid.uuid4()
    assert parse_global_id(str(raw), "WebhookDelivery") == raw
    assert parse_global_id(to_global_id("Alert", raw), "WebhookDelivery") is None
    for junk in ("", "!!!", "bm9wZQ", "a" * 500):
        assert parse_global_id(junk, "WebhookDelivery") is None


async def test_rest_answer_ids_resolve_through_node(org: Org):
    _, key = await org.create_config("GENERIC")
    answer = (await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "Resolvable"})).json()
    data = await org.gql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": answer["deliveryId"]},
                         token=org.token)
    assert data["node"] == {"__typename": "WebhookDelivery", "id": answer["deliveryId"]}
    assert from_global_id(answer["alerts"][0])[0] == "Alert"
    assert from_global_id(answer["incidents"][0])[0] == "Incident"


async def test_generic_schema_is_public(live):
    async with httpx.AsyncClient(base_url=live.url) as http:
        r = await http.get("/api/v1/webhooks/schema/generic")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    assert r.json() == json.loads(SCHEMA_PATH.read_text())
    assert r.json()["$defs"]["alert"]["required"] == ["title"]


def test_keys_are_masked_in_access_logs():
    key = "ins_" + "Ab3-_" * 8 + "xyz"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", f"/api/v1/webhooks/ingest/{key}?token={key}", "1.1", 202),
                               None)
    assert _MaskKeys().filter(record) is True
    line = record.getMessage()
    assert key not in line and "ins_***" in line and line.count("ins_***") == 2
    assert any(isinstance(f, _MaskKeys) for f in logging.getLogger("uvicorn.access").filters)


async def test_database_outage_is_503_not_500(settings, redis_url):
    server = LiveServer(settings, "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere", redis_url,
                        worker_threads=0).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            r = await http.post("/api/grafana/alerts", json={"alerts": []},
                                headers={"X-Insights-Key": "ins_" + "k" * 43})
            assert r.status_code == 503, r.text
            shape(r)
            assert r.json()["code"] == "UNAVAILABLE" and r.headers["retry-after"] == "5"
            r = await http.post(f"/api/v1/webhooks/replay/{uuid.uuid4()}",
                                headers={"Authorization": "Bearer insk_" + "k" * 43})  # needs the database
            assert r.status_code == 503, r.text
            shape(r)
    finally:
        server.stop()
