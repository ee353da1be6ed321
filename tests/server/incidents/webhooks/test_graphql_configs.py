"""Webhook configs and deliveries over GraphQL: CRUD, validation, permissions (owners and editors
manage, viewers read, other organizations see nothing), the key shown once and stored hashed,
the secret stored encrypted, audit entries, stats, and the deliveries list with its filters."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.server.incidents.webhooks.conftest import (
    CONFIG_FIELDS,
    CREATE,
    DELETE,
    REGENERATE,
    UPDATE,
    Org,
    add_member,
    api_key,
    raw_uuid,
)
from tests.support.client import GQL, create_org, register_and_login

CONFIGS = f"""query($org: ID!, $first: Int, $after: String) {{ webhookConfigs(organizationId: $org, first: $first,
  after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CONFIG_FIELDS} }} }} }}"""
DELIVERY_FIELDS = """id provider status httpStatus error errorCode receivedAt replayedAt providerDeliveryId alertIds
  incidentIds changeEventIds duplicateOfId headers contentType size rawBody config { id name }"""
DELIVERIES = f"""query($org: ID!, $filter: WebhookDeliveryFilter, $first: Int, $after: String) {{
  webhookDeliveries(organizationId: $org, filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {DELIVERY_FIELDS} }} }} }}"""


async def create(org: Org, token: str | None = None, **fields) -> dict:  # noqa: ANN003
    variables = {"input": {"organizationId": org.org_id, "name": "Grafana prod", "provider": "GRAFANA", **fields}}
    return (await org.gql(CREATE, variables, token=token or org.token))["webhookConfigCreate"]


async def test_create_shows_the_key_once_and_stores_only_its_hash(org: Org, live):
    payload = await create(org, secret="grafana-hmac-secret")
    assert payload["userErrors"] == []
    key, config = payload["key"], payload["webhookConfig"]
    assert key.startswith("ins_") and len(key) == 4 + 43
    assert config["name"] == "Grafana prod" and config["provider"] == "GRAFANA" and config["enabled"] is True
    assert config["keyPrefix"] == key[:12] and config["secretSet"] is True
    assert config["rateLimitPerMinute"] == 1200
    assert config["routePath"] == "/api/grafana/alerts"
    assert config["ingestUrl"] == live.app.state.runtime.settings.base_url + "/api/grafana/alerts"
    assert config["stats"] == {"deliveriesAccepted": 0, "deliveriesRejected": 0, "lastDeliveryAt": None,
                               "lastError": None, "lastErrorAt": None}

    # no field of any later answer carries the key
    listed = await org.gql(CONFIGS, {"org": org.org_id}, token=org.token)
    node = await org.config(config["id"])
    audit = await org.gql("""query($org: ID!) { auditLog(organizationId: $org) { nodes { action before after summary } } }""",
                          {"org": org.org_id}, token=org.token)
    for answer in (listed, node, audit):
        assert key not in json.dumps(answer) and key[12:] not in json.dumps(answer)
    assert listed["webhookConfigs"]["totalCount"] == 1
    assert {"__typename": "WebhookConfig", **listed["webhookConfigs"]["nodes"][0]} == node

    # the row: the key's SHA-256, its prefix, and an encrypted secret; never the key or the secret
    (row,) = await org.fetch("SELECT * FROM webhook_configs WHERE id = $1", raw_uuid(config["id"]))
    text = json.dumps({k: str(v) for k, v in dict(row).items()})
    assert key not in text and key[12:] not in text and "grafana-hmac-secret" not in text
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["key_prefix"] == key[:12] and row["secret_encrypted"]


async def test_generic_config_route_is_a_template_without_the_key(org: Org):
    payload = await create(org, provider="GENERIC")
    assert payload["webhookConfig"]["routePath"] == "/api/v1/webhooks/ingest/{apiKey}"
    assert payload["key"] not in payload["webhookConfig"]["ingestUrl"]


@pytest.mark.parametrize("fields,field,code", [
    ({"name": ""}, ["input", "name"], "VALIDATION"),
    ({"name": "   "}, ["input", "name"], "VALIDATION"),
    ({"name": "x" * 256}, ["input", "name"], "VALIDATION"),
    ({"secret": "short"}, ["input", "secret"], "VALIDATION"),
    ({"secret": " " * 20}, ["input", "secret"], "VALIDATION"),
    ({"secret": "x" * 1025}, ["input", "secret"], "VALIDATION"),
    ({"rateLimitPerMinute": 0}, ["input", "rateLimitPerMinute"], "VALIDATION"),
    ({"rateLimitPerMinute": 1_000_001}, ["input", "rateLimitPerMinute"], "VALIDATION"),
    ({"organizationId": "bm90LWFuLWlk"}, ["input", "organizationId"], "VALIDATION"),
])
async def test_create_validation(org: Org, fields, field, code):
    payload = await create(org, **fields)
    assert payload["webhookConfig"] is None and payload["key"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert (await org.fetch("SELECT count(*) AS n FROM webhook_configs WHERE organization_id = $1",
                            org.org_uuid))[0]["n"] == 0


async def test_several_validation_errors_at_once(org: Org):
    payload = await create(org, name="", secret="x", rateLimitPerMinute=-5)
    assert sorted(e["field"][1] for e in payload["userErrors"]) == ["name", "rateLimitPerMinute", "secret"]


async def test_unknown_provider_is_refused_by_the_schema(org: Org):
    r = await org.gql.raw(CREATE, {"input": {"organizationId": org.org_id, "name": "x", "provider": "NAGIOS"}},
                          token=org.token)
    assert r.json()["errors"] and r.json()["data"] is None


async def test_update_is_a_patch_and_audited(org: Org):
    config = (await create(org, secret="first-secret", rateLimitPerMinute=60))["webhookConfig"]
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "name": "Renamed"}}, token=org.token)
    updated = data["webhookConfigUpdate"]["webhookConfig"]
    assert updated["name"] == "Renamed" and updated["secretSet"] is True and updated["rateLimitPerMinute"] == 60
    assert updated["enabled"] is True and updated["provider"] == "GRAFANA"
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "enabled": False, "provider": "ALERTMANAGER",
                                            "rateLimitPerMinute": 10, "secret": None}}, token=org.token)
    updated = data["webhookConfigUpdate"]["webhookConfig"]
    assert (updated["enabled"], updated["provider"], updated["rateLimitPerMinute"], updated["secretSet"]) == \
        (False, "ALERTMANAGER", 10, False)
    assert updated["routePath"] == "/api/alertmanager/alerts" and updated["keyPrefix"] == config["keyPrefix"]
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "name": ""}}, token=org.token)
    assert data["webhookConfigUpdate"]["userErrors"][0]["field"] == ["input", "name"]
    for field in ("name", "provider", "enabled", "rateLimitPerMinute"):  # only the secret may be null
        data = await org.gql(UPDATE, {"input": {"id": config["id"], field: None}}, token=org.token)
        errors = data["webhookConfigUpdate"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [("VALIDATION", ["input", field])], field
    assert (await org.config(config["id"]))["name"] == "Renamed"

    audit = await org.fetch("SELECT action, before, after FROM audit_log WHERE organization_id = $1 "
                            "AND target_id = $2 ORDER BY created_at", org.org_uuid, str(raw_uuid(config["id"])))
    actions = [a["action"] for a in audit]
    assert actions == ["webhook_config.create", "webhook_config.update", "webhook_config.update"]
    assert json.loads(audit[1]["before"]) == {"name": "Grafana prod"}
    assert json.loads(audit[1]["after"]) == {"name": "Renamed"}
    assert json.loads(audit[2]["after"]) == {"enabled": False, "provider": "alertmanager", "rateLimitPerMinute": 10,
                                             "secretSet": False}
    assert "first-secret" not in json.dumps([dict(a) for a in audit], default=str)


async def test_delete_and_regenerate_are_audited(org: Org):
    config = (await create(org))["webhookConfig"]
    data = await org.gql(REGENERATE, {"input": {"id": config["id"]}}, token=org.token)
    key = data["webhookConfigRegenerateKey"]["key"]
    expires = datetime.fromisoformat(data["webhookConfigRegenerateKey"]["webhookConfig"]["previousKeyExpiresAt"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=24)
    data = await org.gql(DELETE, {"input": {"id": config["id"]}}, token=org.token)
    assert data["webhookConfigDelete"]["deletedWebhookConfigId"] == config["id"]
    assert (await org.gql(CONFIGS, {"org": org.org_id}, token=org.token))["webhookConfigs"]["totalCount"] == 0
    assert (await org.config(config["id"])) is None
    data = await org.gql(DELETE, {"input": {"id": config["id"]}}, token=org.token)
    assert data["webhookConfigDelete"]["userErrors"][0]["code"] == "NOT_FOUND"
    audit = await org.fetch("SELECT action, after::text AS after FROM audit_log WHERE target_id = $1 "
                            "ORDER BY created_at", str(raw_uuid(config["id"])))
    assert [a["action"] for a in audit] == ["webhook_config.create", "webhook_config.regenerate_key",
                                            "webhook_config.delete"]
    assert key not in json.dumps([dict(a) for a in audit])


async def test_roles(org: Org, live):
    config = (await create(org))["webhookConfig"]
    viewer_token, viewer = await add_member(org, "viewer")
    editor_token, editor = await add_member(org, "editor")
    try:
        # viewers read ...
        listed = await viewer(CONFIGS, {"org": org.org_id}, token=viewer_token)
        assert listed["webhookConfigs"]["totalCount"] == 1
        assert (await viewer(DELIVERIES, {"org": org.org_id}, token=viewer_token))["webhookDeliveries"]["totalCount"] == 0
        # ... and change nothing
        payload = await create(org, token=viewer_token)
        assert payload["userErrors"][0]["code"] == "FORBIDDEN" and payload["key"] is None
        for mutation, name, variables in ((UPDATE, "webhookConfigUpdate", {"id": config["id"], "name": "v"}),
                                          (DELETE, "webhookConfigDelete", {"id": config["id"]}),
                                          (REGENERATE, "webhookConfigRegenerateKey", {"id": config["id"]})):
            data = await viewer(mutation, {"input": variables}, token=viewer_token)
            assert data[name]["userErrors"][0]["code"] == "FORBIDDEN", name
        # editors manage
        payload = await create(org, token=editor_token, name="editor's")
        assert payload["userErrors"] == [] and payload["key"]
        data = await editor(REGENERATE, {"input": {"id": config["id"]}}, token=editor_token)
        assert data["webhookConfigRegenerateKey"]["userErrors"] == []
        data = await editor(DELETE, {"input": {"id": payload["webhookConfig"]["id"]}}, token=editor_token)
        assert data["webhookConfigDelete"]["userErrors"] == []
        # a read-only API key of the owner cannot change anything
        read_key = await api_key(org.gql, org.token, org.org_id, "read")
        payload = await create(org, token=read_key)
        assert payload["userErrors"][0]["code"] == "FORBIDDEN"
    finally:
        await viewer.aclose()
        await editor.aclose()


async def test_other_organizations_see_nothing(org: Org, live):
    config = (await create(org))["webhookConfig"]
    outsider = GQL(live.url)
    try:
        token, _ = await register_and_login(outsider)
        await create_org(outsider, token, "Elsewhere")
        payload = await create(org, token=token)
        assert payload["userErrors"][0]["code"] == "NOT_FOUND"
        for mutation, name, variables in ((UPDATE, "webhookConfigUpdate", {"id": config["id"], "name": "x"}),
                                          (DELETE, "webhookConfigDelete", {"id": config["id"]}),
                                          (REGENERATE, "webhookConfigRegenerateKey", {"id": config["id"]})):
            data = await outsider(mutation, {"input": variables}, token=token)
            assert data[name]["userErrors"][0]["code"] == "NOT_FOUND", name
        for query in (CONFIGS, DELIVERIES):
            r = await outsider.raw(query, {"org": org.org_id}, token=token)
            assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        node = await outsider("query($id: ID!) { node(id: $id) { id } }", {"id": config["id"]}, token=token)
        assert node["node"] is None
    finally:
        await outsider.aclose()
    assert (await org.config(config["id"]))["name"] == "Grafana prod"


async def test_configs_are_paged(org: Org):
    for i in range(5):
        await create(org, name=f"hook {i}")
    seen, after = [], None
    while True:
        page = (await org.gql(CONFIGS, {"org": org.org_id, "first": 2, "after": after}, token=org.token))["webhookConfigs"]
        seen += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"hook {i}" for i in reversed(range(5))]  # newest first


async def test_stats_and_deliveries_list(org: Org):
    grafana = (await create(org, provider="GENERIC", name="scripts"))
    other = (await create(org, provider="GRAFANA", name="grafana"))
    key, config = grafana["key"], grafana["webhookConfig"]
    ok = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "Disk full", "service": "db"},
                             headers={"Authorization": "Bearer should-not-be-stored", "X-Trace": "abc",
                                      "Idempotency-Key": "job-42"})
    assert ok.status_code == 202
    dup = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"title": "Disk full again"},
                              headers={"Idempotency-Key": "job-42"})
    assert dup.json()["duplicate"] is True
    bad = await org.http.post(f"/api/v1/webhooks/ingest/{key}", json={"severity": "high"})
    assert bad.status_code == 422
    g = await org.http.post("/api/grafana/alerts", json={"receiver": "r", "alerts": []},
                            params={"token": other["key"]})
    assert g.status_code == 202

    stats = (await org.config(config["id"]))["stats"]
    assert (stats["deliveriesAccepted"], stats["deliveriesRejected"]) == (2, 1)
    assert stats["lastError"].startswith("422 ") and "title" in stats["lastError"]
    assert stats["lastErrorAt"] == stats["lastDeliveryAt"]

    everything = (await org.gql(DELIVERIES, {"org": org.org_id}, token=org.token))["webhookDeliveries"]
    assert everything["totalCount"] == 4
    newest_first = everything["nodes"]
    assert [n["status"] for n in newest_first] == ["ACCEPTED", "REJECTED", "DUPLICATE", "ACCEPTED"]
    accepted = newest_first[3]
    assert accepted["id"] == ok.json()["deliveryId"] and accepted["alertIds"] == ok.json()["alerts"]
    assert accepted["incidentIds"] == ok.json()["incidents"] and accepted["changeEventIds"] == []
    assert accepted["provider"] == "GENERIC" and accepted["httpStatus"] == 202 and accepted["error"] is None
    assert accepted["providerDeliveryId"] == "job-42" and accepted["contentType"] == "application/json"
    assert json.loads(accepted["rawBody"]) == {"title": "Disk full", "service": "db"}
    assert accepted["size"] == len(accepted["rawBody"].encode())
    assert accepted["headers"]["x-trace"] == "abc" and "authorization" not in accepted["headers"]
    assert accepted["config"] == {"id": config["id"], "name": "scripts"}
    duplicate = newest_first[2]
    assert duplicate["duplicateOfId"] == accepted["id"] and duplicate["rawBody"] is None
    assert duplicate["alertIds"] == accepted["alertIds"]
    rejected = newest_first[1]
    assert (rejected["httpStatus"], rejected["errorCode"]) == (422, "INVALID_PAYLOAD") and "title" in rejected["error"]

    async def ids(filter_: dict) -> list[str]:
        data = await org.gql(DELIVERIES, {"org": org.org_id, "filter": filter_}, token=org.token)
        return [n["id"] for n in data["webhookDeliveries"]["nodes"]]

    assert await ids({"configId": config["id"]}) == [n["id"] for n in newest_first[1:]]
    assert await ids({"status": "REJECTED"}) == [rejected["id"]]
    assert await ids({"status": "DUPLICATE"}) == [duplicate["id"]]
    assert await ids({"provider": "GRAFANA"}) == [newest_first[0]["id"]]
    assert await ids({"provider": "GENERIC", "status": "ACCEPTED"}) == [accepted["id"]]
    assert await ids({"since": rejected["receivedAt"]}) == [n["id"] for n in newest_first[:2]]
    assert await ids({"until": rejected["receivedAt"]}) == [n["id"] for n in newest_first[2:]]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert await ids({"since": future}) == []

    node = await org.gql(f"query($id: ID!) {{ node(id: $id) {{ __typename ... on WebhookDelivery {{ {DELIVERY_FIELDS} }} }} }}",
                         {"id": accepted["id"]}, token=org.token)
    assert node["node"] == {"__typename": "WebhookDelivery", **accepted}

    page = (await org.gql(DELIVERIES, {"org": org.org_id, "first": 3}, token=org.token))["webhookDeliveries"]
    rest = (await org.gql(DELIVERIES, {"org": org.org_id, "first": 3, "after": page["pageInfo"]["endCursor"]},
                          token=org.token))["webhookDeliveries"]
    assert [n["id"] for n in page["nodes"] + rest["nodes"]] == [n["id"] for n in newest_first]
    assert rest["pageInfo"]["hasNextPage"] is False
