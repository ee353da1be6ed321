"""`GET /api/v1/health` (also with the database or Redis unreachable) and `GET /metrics`."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sqlalchemy import delete, insert

from server.db.engine import Database
from server.jobs.models import Job, JobStatus
from tests.server.http.conftest import client, recv_json, ws_session
from tests.support.live import LiveServer, free_port


@pytest.fixture
def other_settings(settings, tmp_path):  # noqa: ANN001, ANN201
    return settings.model_copy(update={"home": tmp_path})


async def test_health_ok(http):
    r = await http.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok"} and body["redis"] == {"status": "ok"}
    assert isinstance(body["version"], str)


async def test_database_down_health_is_503_and_graphql_still_answers(other_settings, redis_url):
    dead_db = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    server = LiveServer(other_settings, dead_db, redis_url, worker_threads=0).start()  # lifespan starts anyway
    try:
        async with client(server.url) as http:
            r = await http.get("/api/v1/health")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "down"
            assert body["database"]["status"] == "down" and body["database"]["error"]
            assert body["redis"] == {"status": "ok"}

            # Anonymous operations that need no rows still run; credentials cannot be checked: 503, not 500.
            r = await http.post("/graphql", json={"query": "{ __typename }"})
            assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
            r = await http.post("/graphql", json={"query": "{ __typename }"},
                                headers={"authorization": "Bearer insk_looked_up_in_the_database"})
            assert r.status_code == 503
            assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
            assert r.headers["retry-after"]

            r = await http.get("/metrics")  # process metrics survive a database outage
            assert r.status_code == 200 and "insights_graphql_requests_total" in r.text
    finally:
        server.stop()


async def test_redis_down_health_is_degraded_and_graphql_still_answers(other_settings, database_url, redis_url):
    from workers.broker import setup_broker

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    try:
        server = LiveServer(other_settings, database_url, dead_redis, worker_threads=0).start()
        try:
            async with client(server.url) as http:
                r = await http.get("/api/v1/health")
                assert r.status_code == 200
                body = r.json()
                assert body["status"] == "degraded"
                assert body["database"] == {"status": "ok"} and body["redis"]["status"] == "down"
                r = await http.post("/graphql", json={"query": "{ __typename }"})  # rate limit fails open
                assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
            assert not server.runtime.hub.connected.is_set()  # the pub/sub hub keeps retrying, quietly
        finally:
            server.stop()
    finally:
        setup_broker(redis_url)  # the broker is per process: give it back to the other servers


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of Prometheus text, or None."""
    for line in text.splitlines():
        m = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return None


async def test_metrics_families_and_counters(live, http, database_url):
    kind = f"test.metrics.{uuid.uuid4().hex[:6]}"
    db = Database(database_url, 1)
    ids = [uuid.uuid4() for _ in range(3)]
    async with db.session() as s:  # finished jobs: nothing picks them up
        await s.execute(insert(Job), [{"id": i, "kind": kind, "status": st, "organization_id": None}
                                      for i, st in zip(ids, [JobStatus.succeeded, JobStatus.succeeded, JobStatus.failed])])
        await s.commit()
    try:
        text = (await http.get("/metrics")).text
        before = sample(text, "insights_graphql_requests_total", operation="MetricsProbe", type="query") or 0
        errors_before = sample(text, "insights_graphql_errors_total", operation="MetricsBroken",
                               code="GRAPHQL_VALIDATION_FAILED") or 0
        for _ in range(3):
            assert (await http.post("/graphql", json={"query": "query MetricsProbe { __typename }"})).status_code == 200
        await http.post("/graphql", json={"query": "query MetricsBroken { nope }"})

        async with ws_session(live.ws_url, "graphql-transport-ws") as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            await recv_json(ws)
            r = await http.get("/metrics")
            open_sockets = sample(r.text, "insights_websocket_connections")
        assert open_sockets is not None and open_sockets >= 1

        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
        for family in ("insights_graphql_requests_total", "insights_graphql_errors_total",
                       "insights_graphql_duration_seconds", "insights_jobs", "insights_websocket_connections",
                       "insights_rate_limited_total", "insights_http_requests_total"):
            assert f"# TYPE {family} " in text, family
        assert sample(text, "insights_graphql_requests_total", operation="MetricsProbe", type="query") == before + 3
        assert sample(text, "insights_graphql_duration_seconds_count", operation="MetricsProbe") >= 3
        assert sample(text, "insights_graphql_errors_total", operation="MetricsBroken",
                      code="GRAPHQL_VALIDATION_FAILED") == errors_before + 1
        assert sample(text, "insights_jobs", kind=kind, status="succeeded") == 2
        assert sample(text, "insights_jobs", kind=kind, status="failed") == 1
        assert sample(text, "insights_http_requests_total", route="/graphql", status="200") >= 3
    finally:
        async with db.session() as s:
            await s.execute(delete(Job).where(Job.id.in_(ids)))
            await s.commit()
        await db.dispose()
    text = (await http.get("/metrics")).text
    assert sample(text, "insights_jobs", kind=kind, status="succeeded") is None  # counts are current, not sticky
