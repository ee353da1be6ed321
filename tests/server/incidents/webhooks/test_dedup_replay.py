"""Repeated deliveries (identical body, or the same provider delivery id, within the window) change
nothing; replay re-runs a stored delivery through the current normalizer (owners only)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import httpx

from tests.server.incidents.webhooks.conftest import Org, add_member, api_key, load_fixture, raw_uuid, shape, shared_dir
from tests.support.client import GQL, create_org, register_and_login

ALERT = {"title": "Payments latency high", "service": "payments", "severity": "high", "fingerprint": "pay-lat"}


def ingest(key: str) -> str:
    return f"/api/v1/webhooks/ingest/{key}"


async def alert_state(org: Org) -> list[tuple]:
    rows = await org.fetch("SELECT id, occurrence_count, updated_at, status FROM alerts WHERE organization_id = $1 "
                           "ORDER BY id", org.org_uuid)
    return [tuple(r) for r in rows]


async def test_identical_body_twice_is_a_duplicate_that_changes_nothing(org: Org):
    config, key = await org.create_config("GENERIC")
    raw = json.dumps(ALERT).encode()
    first = await org.http.post(ingest(key), content=raw, headers={"Content-Type": "application/json"})
    assert first.status_code == 202 and first.json()["duplicate"] is False
    before, alerts_before = await org.counts(), await alert_state(org)

    second = await org.http.post(ingest(key), content=raw, headers={"Content-Type": "application/json"})
    assert second.status_code == 202, second.text
    assert second.json() == {**first.json(), "duplicate": True}  # the original's id and ids
    after = await org.counts()
    assert {k: after[k] - before[k] for k in after} == {"webhook_deliveries": 1, "alerts": 0, "incidents": 0,
                                                        "change_events": 0, "incident_timeline": 0}
    assert await alert_state(org) == alerts_before  # not even a "seen again"
    rows = await org.fetch("SELECT status, duplicate_of_id, octet_length(raw_body) AS n FROM webhook_deliveries "
                           "WHERE organization_id = $1 ORDER BY created_at", org.org_uuid)
    assert [tuple(r) for r in rows] == [("accepted", None, len(raw)),
                                        ("duplicate", raw_uuid(first.json()["deliveryId"]), 0)]
    stats = (await org.config(config["id"]))["stats"]
    assert (stats["deliveriesAccepted"], stats["deliveriesRejected"]) == (2, 0)

    # a real repeat (new body, same alert) is not a duplicate delivery: the alert is seen again
    third = await org.http.post(ingest(key), json={**ALERT, "description": "still high"})
    assert third.json()["duplicate"] is False and third.json()["alerts"] == first.json()["alerts"]
    (row,) = await org.fetch("SELECT occurrence_count FROM alerts WHERE organization_id = $1", org.org_uuid)
    assert row["occurrence_count"] == 2


async def test_same_provider_delivery_id_is_a_duplicate(org: Org):
    fixture = load_fixture(shared_dir() / "pagerduty" / "incident-triggered.json")
    _, key = await org.create_config("PAGERDUTY")  # no secret: the body may be re-serialized
    headers = {"Content-Type": "application/json", "X-Insights-Key": key}
    first = await org.http.post("/api/pagerduty/webhook", content=fixture["raw_body"].encode(), headers=headers)
    assert first.status_code == 202 and first.json()["duplicate"] is False
    before = await org.counts()
    other_bytes = json.dumps(fixture["body"], indent=2).encode()  # same event id, different bytes
    second = await org.http.post("/api/pagerduty/webhook", content=other_bytes, headers=headers)
    assert second.json()["duplicate"] is True and second.json()["deliveryId"] == first.json()["deliveryId"]
    after = await org.counts()
    assert after["alerts"] == before["alerts"] and after["incident_timeline"] == before["incident_timeline"]


async def test_dedup_is_per_config(org: Org):
    _, key1 = await org.create_config("GENERIC")
    _, key2 = await org.create_config("GENERIC")
    a = await org.http.post(ingest(key1), json=ALERT)
    b = await org.http.post(ingest(key2), json=ALERT)
    assert a.json()["duplicate"] is False and b.json()["duplicate"] is False
    assert a.json()["deliveryId"] != b.json()["deliveryId"]


async def test_outside_the_window_it_is_not_a_duplicate(org: Org):
    _, key = await org.create_config("GENERIC")
    first = await org.http.post(ingest(key), json=ALERT)
    await org.execute("UPDATE webhook_deliveries SET created_at = now() - interval '25 hours' WHERE id = $1",
                      raw_uuid(first.json()["deliveryId"]))
    second = await org.http.post(ingest(key), json=ALERT)
    assert second.json()["duplicate"] is False
    assert second.json()["alerts"] == first.json()["alerts"]  # the open alert is seen again


async def test_concurrent_identical_deliveries_are_accepted_once(org: Org):
    _, key = await org.create_config("GENERIC")
    raw = json.dumps({"title": "Storm", "service": "edge", "fingerprint": uuid.uuid4().hex}).encode()
    responses = await asyncio.gather(*[
        org.http.post(ingest(key), content=raw, headers={"Content-Type": "application/json"}) for _ in range(6)])
    assert [r.status_code for r in responses] == [202] * 6
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 5
    assert len({r.json()["deliveryId"] for r in responses}) == 1
    counts = await org.counts()
    assert counts["alerts"] == 1 and counts["incidents"] == 1 and counts["webhook_deliveries"] == 6


async def test_dedup_window_is_a_setting(start_server):
    server = start_server(webhook_dedup_window_hours=0)
    gql = GQL(server.url)
    try:
        token, _ = await register_and_login(gql)
        org = await create_org(gql, token, "No dedup window")
        data = await gql("""mutation($i: WebhookConfigCreateInput!) { webhookConfigCreate(input: $i) { key } }""",
                         {"i": {"organizationId": org["id"], "name": "g", "provider": "GENERIC"}}, token=token)
        key = data["webhookConfigCreate"]["key"]
        async with httpx.AsyncClient(base_url=server.url) as http:
            a = await http.post(ingest(key), json=ALERT)
            b = await http.post(ingest(key), json=ALERT)
        assert a.json()["duplicate"] is False and b.json()["duplicate"] is False
    finally:
        await gql.aclose()


# --- replay ----------------------------------------------------------------------------------

def replay_path(delivery_id: str) -> str:
    return f"/api/v1/webhooks/replay/{delivery_id}"


async def test_owner_replays_an_accepted_delivery(org: Org):
    _, key = await org.create_config("GENERIC")
    first = (await org.http.post(ingest(key), json=ALERT)).json()
    before = await org.counts()
    r = await org.http.post(replay_path(first["deliveryId"]), headers={"Authorization": f"Bearer {org.token}"})
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["deliveryId"] == first["deliveryId"] and answer["duplicate"] is False
    assert answer["alerts"] == first["alerts"] and answer["incidents"] == first["incidents"]
    after = await org.counts()
    assert after["alerts"] == before["alerts"] and after["incidents"] == before["incidents"]
    assert after["webhook_deliveries"] == before["webhook_deliveries"]
    (row,) = await org.fetch("SELECT replayed_at, status FROM webhook_deliveries WHERE id = $1",
                             raw_uuid(first["deliveryId"]))
    assert row["replayed_at"] is not None and row["status"] == "accepted"
    (alert,) = await org.fetch("SELECT occurrence_count FROM alerts WHERE organization_id = $1", org.org_uuid)
    assert alert["occurrence_count"] == 2  # dedup by fingerprint: the open alert is seen again
    audit = await org.fetch("SELECT action, target_id FROM audit_log WHERE organization_id = $1 "
                            "AND action = 'webhook_delivery.replay'", org.org_uuid)
    assert [tuple(a) for a in audit] == [("webhook_delivery.replay", str(raw_uuid(first["deliveryId"])))]


async def test_replay_repairs_a_delivery_an_older_normalizer_refused(org: Org):
    """A REJECTED delivery stored with its body (as an older, buggy normalizer left it) is accepted
    by the current one on replay: its alerts appear and the delivery becomes ACCEPTED."""
    config, _ = await org.create_config("GRAFANA")
    fixture = load_fixture(shared_dir() / "grafana" / "firing-3-alerts-2-services.json")
    raw = json.dumps(fixture["body"]).encode()
    delivery_id = uuid.uuid4()
    await org.execute(
        "INSERT INTO webhook_deliveries (id, organization_id, config_id, provider, status, http_status, body_sha256, "
        "raw_body, content_type, headers, size, error, error_code, alert_ids, incident_ids, change_event_ids, "
        "created_at, updated_at) VALUES ($1, $2, $3, 'grafana', 'rejected', 422, $4, $5, 'application/json', "
        "'{}'::jsonb, $6, 'old normalizer bug', 'INVALID_PAYLOAD', '{}', '{}', '{}', now(), now())",
        delivery_id, org.org_uuid, raw_uuid(config["id"]), hashlib.sha256(raw).hexdigest(), raw, len(raw))
    from graph.core.node import to_global_id

    gid = to_global_id("WebhookDelivery", delivery_id)
    r = await org.http.post(replay_path(gid), headers={"Authorization": f"Bearer {org.token}"})
    assert r.status_code == 202, r.text
    assert len(r.json()["alerts"]) == 3 and r.json()["deliveryId"] == gid
    (row,) = await org.fetch("SELECT status, http_status, error, replayed_at, cardinality(alert_ids) AS n "
                             "FROM webhook_deliveries WHERE id = $1", delivery_id)
    assert (row["status"], row["http_status"], row["error"], row["n"]) == ("accepted", 202, None, 3)
    assert row["replayed_at"] is not None
    # replaying by the bare UUID works too, and changes no counts (alerts dedup by fingerprint)
    before = await org.counts()
    r = await org.http.post(replay_path(str(delivery_id)), headers={"Authorization": f"Bearer {org.token}"})
    assert r.status_code == 202
    assert (await org.counts())["alerts"] == before["alerts"]


async def test_replay_of_a_duplicate_replays_its_original(org: Org):
    _, key = await org.create_config("GENERIC")
    first = (await org.http.post(ingest(key), json=ALERT)).json()
    await org.http.post(ingest(key), json=ALERT)
    (dup,) = await org.fetch("SELECT id FROM webhook_deliveries WHERE status = 'duplicate' AND organization_id = $1",
                             org.org_uuid)
    r = await org.http.post(replay_path(str(dup["id"])), headers={"Authorization": f"Bearer {org.token}"})
    assert r.status_code == 202 and r.json()["deliveryId"] == first["deliveryId"]


async def test_replay_refusals(org: Org, live):
    _, key = await org.create_config("GENERIC")
    accepted = (await org.http.post(ingest(key), json=ALERT)).json()["deliveryId"]
    bearer = {"Authorization": f"Bearer {org.token}"}

    # nothing stored to replay: refused before the body was read
    disabled, disabled_key = await org.create_config("GENERIC", enabled=False)
    await org.http.post(ingest(disabled_key), json=ALERT)
    (row,) = await org.fetch("SELECT id FROM webhook_deliveries WHERE config_id = $1", raw_uuid(disabled["id"]))
    r = await org.http.post(replay_path(str(row["id"])), headers=bearer)
    assert r.status_code == 409 and r.json()["code"] == "NOTHING_TO_REPLAY"
    shape(r)

    # still not in the format: 422 with the path, nothing changes
    bad = await org.http.post(ingest(key), json={"alerts": [{"title": 1}]})
    assert bad.status_code == 422
    (row,) = await org.fetch("SELECT id FROM webhook_deliveries WHERE organization_id = $1 AND http_status = 422",
                             org.org_uuid)
    before = await org.counts()
    r = await org.http.post(replay_path(str(row["id"])), headers=bearer)
    assert r.status_code == 422 and r.json()["details"]["path"] == "alerts[0].title"
    assert await org.counts() == before

    # unknown, malformed, and wrong-type ids
    from graph.core.node import to_global_id

    for bad_id in (str(uuid.uuid4()), "not-an-id", to_global_id("WebhookConfig", uuid.uuid4())):
        r = await org.http.post(replay_path(bad_id), headers=bearer)
        assert r.status_code == 404, (bad_id, r.text)
        shape(r)

    # who may replay
    r = await org.http.post(replay_path(accepted))
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = await org.http.post(replay_path(accepted), headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    editor_token, editor = await add_member(org, "editor")
    r = await org.http.post(replay_path(accepted), headers={"Authorization": f"Bearer {editor_token}"})
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    outsider = GQL(live.url)
    try:
        other_token, _ = await register_and_login(outsider)
        await create_org(outsider, other_token, "Elsewhere")
        r = await org.http.post(replay_path(accepted), headers={"Authorization": f"Bearer {other_token}"})
        assert r.status_code == 404
    finally:
        await outsider.aclose()
        await editor.aclose()
    read_key = await api_key(org.gql, org.token, org.org_id, "read")
    r = await org.http.post(replay_path(accepted), headers={"Authorization": f"Bearer {read_key}"})
    assert r.status_code == 403
    write_key = await api_key(org.gql, org.token, org.org_id, "write")
    r = await org.http.post(replay_path(accepted), headers={"Authorization": f"Token {write_key}"})
    assert r.status_code == 202, r.text


async def test_replay_with_the_session_cookie_needs_the_csrf_header(org: Org, live):
    _, key = await org.create_config("GENERIC")
    accepted = (await org.http.post(ingest(key), json=ALERT)).json()["deliveryId"]
    browser = GQL(live.url)
    try:
        user = await org.gql("{ viewer { email } }", token=org.token)
        await browser("""mutation($i: UserLoginInput!) { userLogin(input: $i) { token } }""",
                      {"i": {"email": user["viewer"]["email"], "password": "correct horse battery"}})
        assert browser.http.cookies.get("insights_session")
        r = await browser.http.post(replay_path(accepted))
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        r = await browser.http.post(replay_path(accepted), headers={"X-Insights-CSRF": "1"})
        assert r.status_code == 202, r.text
    finally:
        await browser.aclose()
