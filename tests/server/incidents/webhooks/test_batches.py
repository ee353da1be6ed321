"""Deliveries arriving together are stored in shared transactions (server/domains/incidents/inbound.py);
each must still get exactly the answer, and leave exactly the rows, it would have alone."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid

import httpx

from tests.server.incidents.webhooks.conftest import Org, raw_uuid, shape

JSON = {"Content-Type": "application/json"}


def ingest(key: str) -> str:
    return f"/api/v1/webhooks/ingest/{key}"


async def batches_over_one(http: httpx.AsyncClient) -> float:
    """How many batches of more than one delivery the server has stored (from /metrics)."""
    text = (await http.get("/metrics")).text
    total = float(re.search(r"^insights_webhook_batch_size_count (\S+)$", text, re.M).group(1))
    alone = float(re.search(r'^insights_webhook_batch_size_bucket\{le="1.0"\} (\S+)$', text, re.M).group(1))
    return total - alone


async def burst(org: Org, requests: list[tuple[str, bytes, dict]]) -> list[httpx.Response]:
    return await asyncio.gather(*(org.http.post(path, content=body, headers=headers) for path, body, headers in requests))


async def test_a_burst_is_batched_and_every_delivery_gets_its_own_rows(org: Org):
    _, key = await org.create_config("GENERIC")
    before = await batches_over_one(org.http)
    bodies = [json.dumps({"title": f"Checkout pod {i} restarting", "service": "checkout", "severity": "high",
                          "fingerprint": f"pod-{i % 10}"}).encode() + b" " * i for i in range(40)]
    responses = await burst(org, [(ingest(key), b, JSON) for b in bodies])
    assert [r.status_code for r in responses] == [202] * 40, [r.text for r in responses if r.status_code != 202]
    assert await batches_over_one(org.http) > before  # the burst did not go one by one

    answers = [r.json() for r in responses]
    assert all(a["duplicate"] is False and len(a["alerts"]) == 1 and len(a["incidents"]) == 1 for a in answers)
    assert len({a["deliveryId"] for a in answers}) == 40
    # ten fingerprints: ten open alerts (repeats update theirs), all in the one checkout incident
    alerts = await org.fetch("SELECT id, fingerprint, occurrence_count, incident_id, delivery_id FROM alerts "
                             "WHERE organization_id = $1", org.org_uuid)
    assert sorted(a["fingerprint"] for a in alerts) == sorted(f"pod-{i}" for i in range(10))
    assert sum(a["occurrence_count"] for a in alerts) == 40
    assert len({a["incident_id"] for a in alerts}) == 1
    by_id = {a["id"]: a for a in alerts}
    for answer in answers:  # each answer names the alert of its own fingerprint
        [alert_gid] = answer["alerts"]
        assert raw_uuid(alert_gid) in by_id
    [incident] = await org.fetch("SELECT correlated_alert_count FROM incidents WHERE organization_id = $1",
                                 org.org_uuid)
    assert incident["correlated_alert_count"] == 10
    rows = await org.fetch("SELECT id, status, alert_ids, octet_length(raw_body) AS n FROM webhook_deliveries "
                           "WHERE organization_id = $1", org.org_uuid)
    assert len(rows) == 40 and {r["status"] for r in rows} == {"accepted"}
    stored = {r["id"]: r for r in rows}
    for answer, body in zip(answers, bodies, strict=True):
        row = stored[raw_uuid(answer["deliveryId"])]
        assert row["n"] == len(body)
        assert [str(raw_uuid(g)) for g in answer["alerts"]] == list(row["alert_ids"])
    [stats] = await org.fetch("SELECT sum(deliveries_accepted) AS a, sum(deliveries_rejected) AS r "
                              "FROM webhook_config_stats WHERE organization_id = $1", org.org_uuid)
    assert (stats["a"], stats["r"]) == (40, 0)


async def test_identical_deliveries_in_one_burst_store_one_and_answer_the_rest_as_duplicates(org: Org):
    _, key = await org.create_config("GENERIC")
    body = json.dumps({"title": "Payments down", "service": "payments", "severity": "critical"}).encode()
    others = [json.dumps({"title": f"Search slow {i}", "service": "search"}).encode() for i in range(10)]
    responses = await burst(org, [(ingest(key), body, JSON)] * 12 + [(ingest(key), b, JSON) for b in others])
    assert {r.status_code for r in responses} == {202}
    same = [r.json() for r in responses[:12]]
    originals = [a for a in same if not a["duplicate"]]
    assert len(originals) == 1
    assert all({**a, "duplicate": False} == originals[0] for a in same)  # the original's ids
    counts = await org.counts()
    assert counts["webhook_deliveries"] == 22 and counts["alerts"] == 11
    rows = await org.fetch("SELECT status, count(*) AS n FROM webhook_deliveries WHERE organization_id = $1 "
                           "GROUP BY status", org.org_uuid)
    assert {r["status"]: r["n"] for r in rows} == {"accepted": 11, "duplicate": 11}


async def test_refusals_in_a_burst_answer_only_their_own_delivery(org: Org):
    config, key = await org.create_config("GENERIC", secret="s3cret-for-batches")
    good = [json.dumps({"title": f"Disk full {i}", "service": "db"}).encode() for i in range(12)]

    def signed(body: bytes) -> dict:
        mac = hmac.new(b"s3cret-for-batches", body, hashlib.sha256).hexdigest()
        return {**JSON, "x-webhook-signature": f"sha256={mac}"}

    bad_sig = json.dumps({"title": "forged"}).encode()
    malformed = b'{"title": "half'
    no_title = json.dumps({"severity": "high"}).encode()
    requests = [(ingest(key), b, signed(b)) for b in good]
    requests += [(ingest(key), bad_sig, {**JSON, "x-webhook-signature": "sha256=" + "0" * 64}),
                 (ingest(key), malformed, signed(malformed)),
                 (ingest(key), no_title, signed(no_title)),
                 (ingest("ins_" + uuid.uuid4().hex), good[0], signed(good[0]))]
    responses = await burst(org, requests)
    assert [r.status_code for r in responses] == [202] * 12 + [401, 400, 422, 404]
    for r in responses[12:]:
        shape(r)
    assert [r.json()["code"] for r in responses[12:]] == ["INVALID_SIGNATURE", "MALFORMED_JSON", "INVALID_PAYLOAD",
                                                         "NOT_FOUND"]
    rows = await org.fetch("SELECT status, http_status FROM webhook_deliveries WHERE organization_id = $1",
                           org.org_uuid)
    assert sorted((r["status"], r["http_status"]) for r in rows) == sorted(
        [("accepted", 202)] * 12 + [("rejected", 401), ("rejected", 400), ("rejected", 422)])
    assert (await org.counts())["alerts"] == 12
    stats = (await org.config(config["id"]))["stats"]
    assert (stats["deliveriesAccepted"], stats["deliveriesRejected"]) == (12, 3)


async def test_a_burst_over_the_configs_rate_admits_exactly_the_rate(org: Org):
    config, key = await org.create_config("GENERIC", rateLimitPerMinute=5)
    if time.time() % 60 > 50:  # the burst must fall in one minute window
        await asyncio.sleep(61 - time.time() % 60)
    bodies = [json.dumps({"title": f"Cache miss storm {i}", "service": "cache"}).encode() for i in range(20)]
    responses = await burst(org, [(ingest(key), b, JSON) for b in bodies])
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [202] * 5 + [429] * 15, statuses
    for r in responses:
        if r.status_code == 429:
            shape(r)
            assert r.json()["code"] == "RATE_LIMITED" and 1 <= int(r.headers["retry-after"]) <= 60
    assert (await org.counts())["alerts"] == 5
    stats = (await org.config(config["id"]))["stats"]
    assert stats["deliveriesAccepted"] == 5 and stats["deliveriesRejected"] == 1  # a flood is counted once


async def test_a_delivery_that_breaks_its_batch_is_refused_alone_and_the_others_are_stored(org: Org):
    _, key = await org.create_config("GENERIC")
    good = [json.dumps({"title": f"Queue backlog {i}", "service": "queue"}).encode() for i in range(20)]
    # PostgreSQL's jsonb cannot hold a NUL character: the batch's statement fails on this label key
    bad = json.dumps({"title": "bad label", "service": "queue", "labels": {"a\u0000b": "x"}}).encode()
    requests = [(ingest(key), b, JSON) for b in good[:10]] + [(ingest(key), bad, JSON)]
    requests += [(ingest(key), b, JSON) for b in good[10:]]
    responses = await burst(org, requests)
    codes = [r.status_code for r in responses]
    assert codes[:10] == codes[11:] == [202] * 10
    assert codes[10] == 422, responses[10].text
    shape(responses[10])
    assert (await org.counts())["alerts"] == 20
    rows = await org.fetch("SELECT status, count(*) AS n FROM webhook_deliveries WHERE organization_id = $1 "
                           "GROUP BY status", org.org_uuid)
    assert {r["status"]: r["n"] for r in rows} == {"accepted": 20, "rejected": 1}
