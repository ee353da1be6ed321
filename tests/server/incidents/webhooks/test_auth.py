"""Webhook keys: the three placements (and HTTP Basic), missing/unknown keys, the ingest URL,
disabled configs, a key on another provider's route, and key regeneration with its grace period."""

from __future__ import annotations

import base64
import uuid

import httpx

from tests.server.incidents.webhooks.conftest import DELETE, REGENERATE, UPDATE, Org, raw_uuid, shape
from tests.support.client import GQL, create_org, register_and_login

GRAFANA = "/api/grafana/alerts"
ALERT = {"receiver": "insights", "status": "firing", "alerts": [
    {"status": "firing", "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
     "annotations": {}, "startsAt": "2026-11-24T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1"}]}


def grafana_body(n: int) -> dict:
    """A distinct (not duplicate) Grafana delivery."""
    body = {**ALERT, "groupKey": f"g{n}-{uuid.uuid4().hex}"}
    return body


async def test_key_in_bearer_header_and_query_and_basic(org: Org):
    _, key = await org.create_config("GRAFANA")
    basic = base64.b64encode(f"grafana:{key}".encode()).decode()
    for i, (headers, params) in enumerate([
        ({"Authorization": f"Bearer {key}"}, {}),
        ({"X-Insights-Key": key}, {}),
        ({}, {"token": key}),
        ({"Authorization": f"Basic {basic}"}, {}),
    ]):
        r = await org.http.post(GRAFANA, json=grafana_body(i), headers=headers, params=params)
        assert r.status_code == 202, (i, r.text)
        assert r.json()["duplicate"] is False
    assert (await org.counts())["webhook_deliveries"] == 4


async def test_missing_and_unknown_keys_are_401_and_write_nothing(org: Org):
    config, key = await org.create_config("GRAFANA")
    before = await org.counts()
    for headers, params in [
        ({}, {}),
        ({"Authorization": "Bearer ins_" + "x" * 43}, {}),
        ({"X-Insights-Key": key[:-1] + ("A" if key[-1] != "A" else "B")}, {}),
        ({}, {"token": "not-a-key"}),
        ({"Authorization": "Bearer"}, {}),
        ({"Authorization": "Basic !!!"}, {}),
    ]:
        r = await org.http.post(GRAFANA, json=ALERT, headers=headers, params=params)
        assert r.status_code == 401, (headers, params, r.text)
        shape(r)
        assert r.json()["code"] == "UNAUTHENTICATED"
    assert await org.counts() == before
    stats = (await org.config(config["id"]))["stats"]
    assert stats["deliveriesRejected"] == 0  # nobody proved they hold this config's key


async def test_ingest_url_takes_the_key_in_the_path(org: Org):
    _, key = await org.create_config("GENERIC")
    r = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "Checkout down", "service": "checkout"})
    assert r.status_code == 202, r.text
    assert len(r.json()["alerts"]) == 1 and len(r.json()["incidents"]) == 1

    before = await org.counts()
    for bad in ("ins_" + "y" * 43, "nothing-like-a-key", "ins_"):
        r = await org.http.post(f"/api/v1/webhooks/ingest/{bad}", json={"title": "x"})
        assert r.status_code == 404, r.text
        shape(r)
        assert r.json()["code"] == "NOT_FOUND"
    assert await org.counts() == before


async def test_ingest_url_normalizes_with_the_configs_provider(org: Org):
    """A tool that can only set a URL (Splunk, Jenkins) may use the ingest URL of its config."""
    _, key = await org.create_config("GRAFANA")
    r = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json=grafana_body(0))
    assert r.status_code == 202, r.text
    (row,) = await org.fetch("SELECT provider, title FROM alerts WHERE id = $1", raw_uuid(r.json()["alerts"][0]))
    assert tuple(row) == ("grafana", "DiskFull")


async def test_disabled_config_is_403_and_counted(org: Org):
    config, key = await org.create_config("GRAFANA", enabled=False)
    r = await org.http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403, r.text
    shape(r)
    assert r.json()["code"] == "CONFIG_DISABLED"
    counts = await org.counts()
    assert counts["alerts"] == counts["incidents"] == 0 and counts["webhook_deliveries"] == 1
    (row,) = await org.fetch("SELECT status, http_status, octet_length(raw_body) AS n FROM webhook_deliveries "
                             "WHERE organization_id = $1", org.org_uuid)
    assert tuple(row) == ("rejected", 403, 0)
    stats = (await org.config(config["id"]))["stats"]
    assert stats["deliveriesRejected"] == 1 and "disabled" in stats["lastError"]

    data = await org.gql(UPDATE, {"input": {"id": config["id"], "enabled": True}}, token=org.token)
    assert data["webhookConfigUpdate"]["userErrors"] == []
    r = await org.http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text


async def test_a_key_works_only_on_its_providers_route(org: Org):
    _, key = await org.create_config("DATADOG")
    r = await org.http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403, r.text
    shape(r)
    assert r.json()["code"] == "WRONG_ROUTE"
    assert r.json()["details"]["routePath"] == "/api/datadog/webhook"
    _, generic_key = await org.create_config("GENERIC")
    r = await org.http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {generic_key}"})
    assert r.status_code == 403 and r.json()["details"]["routePath"] == "/api/v1/webhooks/ingest/{apiKey}"
    counts = await org.counts()
    assert counts["alerts"] == 0 and counts["webhook_deliveries"] == 2


async def test_regenerated_key_grace_period(org: Org):
    config, old = await org.create_config("GRAFANA")
    data = await org.gql(REGENERATE, {"input": {"id": config["id"]}}, token=org.token)
    payload = data["webhookConfigRegenerateKey"]
    assert payload["userErrors"] == []
    new = payload["key"]
    assert new != old and new.startswith("ins_")
    assert payload["webhookConfig"]["keyPrefix"] == new[:12] != config["keyPrefix"]
    assert payload["webhookConfig"]["previousKeyExpiresAt"] is not None

    for i, key in enumerate((old, new)):  # both work within the grace period
        r = await org.http.post(GRAFANA, json=grafana_body(i), headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 202, r.text

    # the grace period ends (as 24 h later)
    await org.execute("UPDATE webhook_configs SET previous_key_expires_at = now() - interval '1 second' WHERE id = $1",
                      raw_uuid(config["id"]))
    r = await org.http.post(GRAFANA, json=grafana_body(3), headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401, r.text
    r = await org.http.post(GRAFANA, json=grafana_body(4), headers={"Authorization": f"Bearer {new}"})
    assert r.status_code == 202, r.text

    # regenerating again ends the older key at once: only one previous key is kept
    data = await org.gql(REGENERATE, {"input": {"id": config["id"]}}, token=org.token)
    newest = data["webhookConfigRegenerateKey"]["key"]
    for key, status in ((old, 401), (new, 202), (newest, 202)):
        r = await org.http.post(GRAFANA, json=grafana_body(5), headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == status, (key[:12], r.text)


async def test_zero_grace_setting_ends_the_old_key_at_once(start_server):
    server = start_server(webhook_key_grace_hours=0)
    gql = GQL(server.url)
    try:
        token, _ = await register_and_login(gql)
        org = await create_org(gql, token, "Grace zero")
        data = await gql("""mutation($i: WebhookConfigCreateInput!) { webhookConfigCreate(input: $i) {
          key webhookConfig { id } } }""", {"i": {"organizationId": org["id"], "name": "g", "provider": "GRAFANA"}},
                         token=token)
        old, gid = data["webhookConfigCreate"]["key"], data["webhookConfigCreate"]["webhookConfig"]["id"]
        data = await gql(REGENERATE, {"input": {"id": gid}}, token=token)
        new = data["webhookConfigRegenerateKey"]["key"]
        assert data["webhookConfigRegenerateKey"]["webhookConfig"]["previousKeyExpiresAt"] is None
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {old}"})
            assert r.status_code == 401
            r = await http.post(GRAFANA, json=ALERT, headers={"Authorization": f"Bearer {new}"})
            assert r.status_code == 202, r.text
    finally:
        await gql.aclose()


async def test_deleted_config_key_stops_working(org: Org):
    config, key = await org.create_config("GENERIC")
    r = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "before delete"})
    assert r.status_code == 202
    data = await org.gql(DELETE, {"input": {"id": config["id"]}}, token=org.token)
    assert data["webhookConfigDelete"] == {"deletedWebhookConfigId": config["id"], "userErrors": []}
    r = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "after delete"})
    assert r.status_code == 404
    # what it brought in stays, without its config
    rows = await org.fetch("SELECT config_id FROM webhook_deliveries WHERE organization_id = $1", org.org_uuid)
    assert [r["config_id"] for r in rows] == [None]
    assert (await org.counts())["alerts"] == 1
