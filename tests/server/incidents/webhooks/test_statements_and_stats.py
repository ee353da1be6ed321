"""SQL statements stay constant: per delivery whatever its number of alerts, and per GraphQL list
whatever its length; the counters, spread over shard rows, add up exactly under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from tests.server.incidents.webhooks.conftest import CONFIG_FIELDS, Org, raw_uuid
from tests.support.sql import count_statements


def grafana(n: int) -> dict:
    tag = uuid.uuid4().hex[:8]
    return {"receiver": "r", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": f"Alert{i}", "service": f"svc{i % 3}", "severity": "warning"},
         "annotations": {}, "startsAt": "2026-11-24T09:00:00Z", "fingerprint": f"{tag}-{i}"} for i in range(n)]}


async def test_statements_per_delivery_do_not_grow_with_its_alerts(org: Org):
    _, key = await org.create_config("GRAFANA")

    async def post(n: int) -> None:
        r = await org.http.post("/api/grafana/alerts", json=grafana(n), headers={"X-Insights-Key": key})
        assert r.status_code == 202 and len(r.json()["alerts"]) == n

    await post(2)  # warm caches (correlation settings, ...)
    one = min([await count_statements(lambda: post(1)) for _ in range(3)])
    many = min([await count_statements(lambda: post(25)) for _ in range(3)])
    assert one == many, (one, many)


async def test_graphql_lists_run_constant_statements(org: Org):
    query = f"""query($org: ID!) {{ webhookConfigs(organizationId: $org) {{ nodes {{ {CONFIG_FIELDS}
      organization {{ id }} }} }} webhookDeliveries(organizationId: $org) {{ nodes {{ id config {{ id stats {{
      deliveriesAccepted }} }} rawBody }} }} }}"""
    _, key = await org.create_config("GENERIC")
    await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "first"})

    async def run() -> None:
        await org.gql(query, {"org": org.org_id}, token=org.token)

    small = min([await count_statements(run) for _ in range(3)])
    for i in range(4):
        _, key = await org.create_config("GENERIC", name=f"more {i}")
        for j in range(2):
            r = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": f"alert {i}.{j}"})
            assert r.status_code == 202
    large = min([await count_statements(run) for _ in range(3)])
    assert small == large, (small, large)


async def test_counters_add_up_under_concurrent_deliveries(org: Org):
    config, key = await org.create_config("GENERIC")
    bad = [org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"no": "title", "n": i}) for i in range(5)]
    good = [org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": f"alert {i}", "fingerprint": f"fp{i}"})
            for i in range(40)]
    responses = await asyncio.gather(*good, *bad)
    assert sorted(r.status_code for r in responses) == [202] * 40 + [422] * 5
    stats = (await org.config(config["id"]))["stats"]
    assert (stats["deliveriesAccepted"], stats["deliveriesRejected"]) == (40, 5)
    rows = await org.fetch("SELECT shard, deliveries_accepted, deliveries_rejected FROM webhook_config_stats "
                           "WHERE config_id = $1", raw_uuid(config["id"]))
    assert len(rows) > 1  # spread over shard rows ...
    assert sum(r["deliveries_accepted"] for r in rows) == 40  # ... that add up
    (last,) = await org.fetch("SELECT max(created_at) AS at FROM webhook_deliveries WHERE config_id = $1",
                              raw_uuid(config["id"]))
    assert stats["lastDeliveryAt"] is not None
    assert abs(datetime.fromisoformat(stats["lastDeliveryAt"]) - last["at"]).total_seconds() < 1
    assert stats["lastError"].startswith("422 ") and "title" in stats["lastError"]
