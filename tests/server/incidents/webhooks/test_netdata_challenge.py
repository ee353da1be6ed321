"""Netdata Cloud's endpoint check on the real server: `GET /api/netdata/alerts?crc_token=...`
answered 200 with `{"response_token": "sha256=" + base64(HMAC-SHA256(challenge secret, crc_token))}`,
the challenge secret being the config's HMAC secret, or its `ins_` key when it has none; the key
still authenticates the request; refusals are clear 4xx answers that store nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac

from tests.server.incidents.webhooks.conftest import REGENERATE, UPDATE, Org, load_fixture, shape, shared_dir

ROUTE = "/api/netdata/alerts"
TOKEN = "Xq3v9-LmP2_kT8wRzB1c"  # a random string, as Netdata sends


def expected(secret: str, crc_token: str = TOKEN) -> dict:
    digest = hmac.new(secret.encode(), crc_token.encode(), hashlib.sha256).digest()
    return {"response_token": "sha256=" + base64.b64encode(digest).decode()}


async def nothing_stored(org: Org) -> None:
    assert await org.counts() == {"webhook_deliveries": 0, "alerts": 0, "incidents": 0, "change_events": 0,
                                  "incident_timeline": 0}


async def test_without_a_secret_the_key_is_the_challenge_secret(org: Org):
    _, key = await org.create_config("NETDATA")
    r = await org.http.get(ROUTE, params={"crc_token": TOKEN}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == expected(key)
    assert r.headers["cache-control"] == "no-store"
    # the key in the URL, as a tool that can only set a URL sends it
    r = await org.http.get(ROUTE, params={"crc_token": "other", "token": key})
    assert r.status_code == 200 and r.json() == expected(key, "other")
    await nothing_stored(org)


async def test_with_a_secret_the_secret_is_the_challenge_secret(org: Org):
    _, key = await org.create_config("NETDATA", secret="netdata-challenge-7Hq")
    r = await org.http.get(ROUTE, params={"crc_token": TOKEN}, headers={"X-Insights-Key": key})
    assert r.status_code == 200, r.text
    assert r.json() == expected("netdata-challenge-7Hq")
    assert r.json() != expected(key)


async def test_the_previous_key_answers_with_itself_during_its_grace_period(org: Org):
    config, old_key = await org.create_config("NETDATA")
    data = await org.gql(REGENERATE, {"input": {"id": config["id"]}}, token=org.token)
    new_key = data["webhookConfigRegenerateKey"]["key"]
    for key in (old_key, new_key):
        r = await org.http.get(ROUTE, params={"crc_token": TOKEN, "token": key})
        assert r.status_code == 200 and r.json() == expected(key)


async def test_a_missing_or_empty_crc_token_is_400(org: Org):
    _, key = await org.create_config("NETDATA")
    for params in ({"token": key}, {"token": key, "crc_token": ""}, {}):
        r = await org.http.get(ROUTE, params=params)
        assert r.status_code == 400, r.text
        shape(r)
        assert r.json()["code"] == "MISSING_CRC_TOKEN" and "crc_token" in r.json()["error"]
    r = await org.http.get(ROUTE, params={"token": key, "crc_token": "x" * 5000})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_CRC_TOKEN"
    await nothing_stored(org)


async def test_the_key_is_still_required(org: Org):
    r = await org.http.get(ROUTE, params={"crc_token": TOKEN})
    assert r.status_code == 401
    shape(r)
    assert r.json()["code"] == "UNAUTHENTICATED" and "key" in r.json()["error"]
    for key in ("ins_" + "A" * 43, "not-a-key"):
        r = await org.http.get(ROUTE, params={"crc_token": TOKEN}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED", r.text
        assert "response_token" not in r.text


async def test_disabled_configs_and_other_providers_keys_are_403(org: Org):
    config, key = await org.create_config("NETDATA")
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "enabled": False}}, token=org.token)
    assert data["webhookConfigUpdate"]["userErrors"] == []
    r = await org.http.get(ROUTE, params={"crc_token": TOKEN, "token": key})
    assert r.status_code == 403 and r.json()["code"] == "CONFIG_DISABLED", r.text
    _, grafana_key = await org.create_config("GRAFANA")
    r = await org.http.get(ROUTE, params={"crc_token": TOKEN, "token": grafana_key})
    assert r.status_code == 403 and r.json()["code"] == "WRONG_ROUTE", r.text
    shape(r)
    await nothing_stored(org)


async def test_only_netdata_answers_challenges_and_other_methods_stay_405(org: Org):
    _, key = await org.create_config("NETDATA")
    r = await org.http.delete(ROUTE, params={"token": key})
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}
    shape(r)
    _, grafana_key = await org.create_config("GRAFANA")
    r = await org.http.get("/api/grafana/alerts", params={"crc_token": TOKEN, "token": grafana_key})
    assert r.status_code == 405 and "GET" not in r.headers["allow"]


async def test_alerts_are_still_posted(org: Org):
    _, key = await org.create_config("NETDATA")
    body = load_fixture(shared_dir() / "netdata" / "critical.json")["body"]
    r = await org.http.post(ROUTE, json=body, params={"token": key, "crc_token": TOKEN})
    assert r.status_code == 202, r.text
    assert len(r.json()["alerts"]) == 1
