"""Every webhook fixture (the shared recorded-shape deliveries and our own variants) POSTed to its
provider route through the real server, with a config created through GraphQL: the status code,
the answer, and the rows it wrote (alerts / change events as the fixture expects, or nothing)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from server.domains.incidents.signatures import hmac_sha256_hex, verify_grafana
from server.domains.incidents.webhook_configs import PROVIDER_ROUTES
from tests.server.incidents.webhooks.conftest import fixture_bytes, fixture_files, load_fixture, raw_uuid, shape

FILES = fixture_files()
PLACEMENTS = ("bearer", "header", "query")
FAILED = ("failure", "aborted")


def test_both_fixture_sets_are_found():
    labels = Counter(label.split("/")[0] for label, _ in FILES)
    assert labels["shared"] >= 25 and labels["own"] >= 30, labels
    assert {label.split("/")[1] for label, _ in FILES} == set(PROVIDER_ROUTES)


def signed_now(fixture: dict) -> dict:
    """The fixture's headers; a valid Grafana signature over a timestamp is signed again with the
    current time (the server refuses timestamps older than INSIGHTS_WEBHOOK_SIGNATURE_MAX_AGE_SECONDS)."""
    headers, sig = dict(fixture["headers"]), fixture.get("signature") or {}
    name, ts_name = sig.get("header"), sig.get("timestamp_header")
    if not (name and ts_name and name in headers and ts_name in headers):
        return headers
    raw = fixture_bytes(fixture)
    if not verify_grafana(raw, headers[name], sig["secret"], headers[ts_name]):
        return headers  # a bad signature stays bad
    now = str(int(time.time()))
    return {**headers, ts_name: now, name: hmac_sha256_hex(sig["secret"], now.encode() + b":" + raw)}


def with_key(headers: dict, key: str, placement: str) -> tuple[dict, dict]:
    headers = dict(headers)
    if placement == "bearer":
        return {**headers, "Authorization": f"Bearer {key}"}, {}
    if placement == "header":
        return {**headers, "X-Insights-Key": key}, {}
    return headers, {"token": key}


@pytest.mark.parametrize("label,path", FILES, ids=[label for label, _ in FILES])
async def test_fixture_through_the_provider_route(org, label, path):
    fixture = load_fixture(path)
    provider, expect = fixture["provider"], fixture["expect"]
    secret = fixture.get("secret") or (fixture.get("signature") or {}).get("secret")
    config, key = await org.create_config(provider.upper(), **({"secret": secret} if secret else {}))
    placement = PLACEMENTS[FILES.index((label, path)) % len(PLACEMENTS)]
    headers, params = with_key(signed_now(fixture), key, placement)

    r = await org.http.post(PROVIDER_ROUTES[provider], content=fixture_bytes(fixture), headers=headers, params=params)

    assert r.status_code == expect["http_status"], r.text
    counts = await org.counts()
    if expect["kind"] == "rejected":
        shape(r)
        if "path" in expect:
            assert r.json()["details"]["path"] == expect["path"]
        assert counts == {"webhook_deliveries": 1, "alerts": 0, "incidents": 0, "change_events": 0,
                          "incident_timeline": 0}
        (row,) = await org.fetch("SELECT status, http_status, error_code FROM webhook_deliveries "
                                 "WHERE organization_id = $1", org.org_uuid)
        assert (row["status"], row["http_status"]) == ("rejected", expect["http_status"])
        stats = (await org.config(config["id"]))["stats"]
        assert stats["deliveriesRejected"] == 1 and stats["deliveriesAccepted"] == 0
        assert stats["lastError"].startswith(str(expect["http_status"]))
        return

    answer = r.json()
    assert set(answer) == {"deliveryId", "duplicate", "alerts", "incidents", "changeEvents"}
    assert answer["duplicate"] is False
    delivery = await org.fetch("SELECT status, config_id, provider FROM webhook_deliveries WHERE id = $1",
                               raw_uuid(answer["deliveryId"]))
    assert [tuple(d) for d in delivery] == [("accepted", raw_uuid(config["id"]), provider)]
    alert_ids = [raw_uuid(a) for a in answer["alerts"]]
    alerts = await org.fetch("SELECT status, severity, title, service, environment FROM alerts WHERE id = ANY($1)",
                             alert_ids)
    assert len(alerts) == len(alert_ids) == counts["alerts"]
    if expect["kind"] == "alerts":
        assert answer["changeEvents"] == [] and counts["change_events"] == 0
        assert len(answer["alerts"]) == len(expect["items"])
        got = Counter((a["status"], a["severity"], a["title"], a["service"], a["environment"]) for a in alerts)
        want = Counter((i["status"], i["severity"], i["title"], i["service"], i["environment"]) for i in expect["items"])
        assert got == want
        firing = sum(1 for i in expect["items"] if i["status"] == "firing")
        assert (len(answer["incidents"]) > 0) == (firing > 0)
    else:
        assert len(answer["changeEvents"]) == len(expect["items"]) == counts["change_events"]
        changes = await org.fetch("SELECT result, service, environment, version FROM change_events WHERE id = ANY($1)",
                                  [raw_uuid(c) for c in answer["changeEvents"]])
        got = Counter((c["result"], c["service"], c["environment"], c["version"]) for c in changes)
        want = Counter((i["result"], i["service"], i["environment"], i["version"]) for i in expect["items"])
        assert got == want
        deploy_alerts = expect.get("deploy_alerts")
        expected_firing = (len(deploy_alerts) if deploy_alerts is not None
                           else sum(1 for i in expect["items"] if i["result"] in FAILED))
        assert sum(1 for a in alerts if a["status"] == "firing") == expected_firing
        if expected_firing:
            assert {a["severity"] for a in alerts if a["status"] == "firing"} == {"high"}
    stats = (await org.config(config["id"]))["stats"]
    assert (stats["deliveriesAccepted"], stats["deliveriesRejected"]) == (1, 0)
    assert stats["lastDeliveryAt"] is not None and stats["lastError"] is None
