"""Signed deliveries: ours (`x-webhook-signature: sha256=<hex>`) and PagerDuty's (`X-PagerDuty-Signature:
v1=<hex>`, several comma-separated): valid, wrong, missing; a refused one writes nothing derived."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.server.incidents.webhooks.conftest import Org, fixture_bytes, load_fixture, shape, shared_dir

SECRET = "s3cr3t-for-tests-only"


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


async def _post_generic(org: Org, key: str, raw: bytes, headers: dict):
    return await org.http.post(f"/api/v1/webhooks/ingest/{key}", content=raw,
                               headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("header,status,code", [
    (lambda raw: f"sha256={sign(SECRET, raw)}", 202, None),
    (lambda raw: f"SHA256={sign(SECRET, raw).upper()}", 202, None),
    (lambda raw: f"sha256={sign('another secret', raw)}", 401, "INVALID_SIGNATURE"),
    (lambda raw: f"sha256={sign(SECRET, raw + b' ')}", 401, "INVALID_SIGNATURE"),
    (lambda raw: "sha256=", 401, "INVALID_SIGNATURE"),
    (lambda raw: "sha256=zz-not-hex", 401, "INVALID_SIGNATURE"),
    (None, 401, "MISSING_SIGNATURE"),
], ids=["valid", "valid-upper-case", "other-secret", "other-body", "empty", "not-hex", "missing"])
async def test_our_signature(org: Org, header, status, code):
    config, key = await org.create_config("GENERIC", secret=SECRET)
    assert config["secretSet"] is True
    raw = json.dumps({"title": "Signed alert", "service": "billing"}).encode()
    headers = {"x-webhook-signature": header(raw)} if header else {}
    r = await _post_generic(org, key, raw, headers)
    assert r.status_code == status, r.text
    counts = await org.counts()
    if status == 202:
        assert counts["alerts"] == 1 and counts["incidents"] == 1
        return
    shape(r)
    assert r.json()["code"] == code
    assert counts == {"webhook_deliveries": 1, "alerts": 0, "incidents": 0, "change_events": 0, "incident_timeline": 0}
    (row,) = await org.fetch("SELECT status, http_status, error_code, octet_length(raw_body) AS n "
                             "FROM webhook_deliveries WHERE organization_id = $1", org.org_uuid)
    assert tuple(row) == ("rejected", 401, code, 0)  # an unauthenticated body is not kept
    assert (await org.config(config["id"]))["stats"]["deliveriesRejected"] == 1


async def test_unsigned_config_ignores_signature_headers(org: Org):
    _, key = await org.create_config("GENERIC")
    r = await _post_generic(org, key, b'{"title": "x"}', {"x-webhook-signature": "sha256=garbage"})
    assert r.status_code == 202


async def test_secret_can_be_removed_and_set_again(org: Org):
    from tests.server.incidents.webhooks.conftest import UPDATE

    config, key = await org.create_config("GENERIC", secret=SECRET)
    raw = b'{"title": "rotating"}'
    assert (await _post_generic(org, key, raw, {})).status_code == 401
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "secret": None}}, token=org.token)
    assert data["webhookConfigUpdate"]["webhookConfig"]["secretSet"] is False
    assert (await _post_generic(org, key, raw, {})).status_code == 202
    data = await org.gql(UPDATE, {"input": {"id": config["id"], "secret": "a-new-secret"}}, token=org.token)
    assert data["webhookConfigUpdate"]["webhookConfig"]["secretSet"] is True
    raw = b'{"title": "rotated"}'
    r = await _post_generic(org, key, raw, {"x-webhook-signature": f"sha256={sign(SECRET, raw)}"})
    assert r.status_code == 401
    r = await _post_generic(org, key, raw, {"x-webhook-signature": f"sha256={sign('a-new-secret', raw)}"})
    assert r.status_code == 202, r.text


def pagerduty_fixture() -> dict:
    return load_fixture(shared_dir() / "pagerduty" / "incident-triggered.json")


@pytest.mark.parametrize("make,status,code", [
    (lambda raw, s: f"v1={sign(s, raw)}", 202, None),
    (lambda raw, s: f"v1={sign('old secret', raw)},v1={sign(s, raw)}", 202, None),
    (lambda raw, s: f"v1={sign(s, raw)}, v1={sign('newer secret', raw)}", 202, None),
    (lambda raw, s: f"v0={sign(s, raw)},v1={sign(s, raw)}", 202, None),
    (lambda raw, s: f"v1={sign('old secret', raw)},v1={sign('newer secret', raw)}", 401, "INVALID_SIGNATURE"),
    (lambda raw, s: f"v0={sign(s, raw)}", 401, "INVALID_SIGNATURE"),
    (lambda raw, s: f"sha256={sign(s, raw)}", 401, "INVALID_SIGNATURE"),
    (lambda raw, s: f"v1={sign(s, raw[:-1])}", 401, "INVALID_SIGNATURE"),
    (None, 401, "MISSING_SIGNATURE"),
], ids=["valid", "second-of-two", "first-of-two", "other-scheme-then-valid", "none-of-two", "only-v0",
        "our-scheme-on-pagerduty", "truncated-body", "missing"])
async def test_pagerduty_signature(org: Org, make, status, code):
    fixture = pagerduty_fixture()
    secret = fixture["secret"]
    config, key = await org.create_config("PAGERDUTY", secret=secret)
    raw = fixture_bytes(fixture)
    headers = {k: v for k, v in fixture["headers"].items() if k != "X-PagerDuty-Signature"}
    if make:
        headers["X-PagerDuty-Signature"] = make(raw, secret)
    r = await org.http.post("/api/pagerduty/webhook", content=raw, headers={**headers, "X-Insights-Key": key})
    assert r.status_code == status, r.text
    counts = await org.counts()
    if status == 202:
        assert len(r.json()["alerts"]) == 1 and counts["alerts"] == 1
    else:
        shape(r)
        assert r.json()["code"] == code
        assert counts["alerts"] == counts["incidents"] == 0 and counts["webhook_deliveries"] == 1


async def test_pagerduty_fixture_signature_verifies_as_recorded(org: Org):
    """The fixture's own header (computed by the fixture author) is accepted verbatim."""
    fixture = pagerduty_fixture()
    _, key = await org.create_config("PAGERDUTY", secret=fixture["secret"])
    r = await org.http.post("/api/pagerduty/webhook", content=fixture_bytes(fixture),
                            headers={**fixture["headers"], "Authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    # and a body re-serialized (spacing changed) no longer matches the recorded signature
    _, key2 = await org.create_config("PAGERDUTY", secret=fixture["secret"])
    r = await org.http.post("/api/pagerduty/webhook", content=json.dumps(fixture["body"], indent=1).encode(),
                            headers={**fixture["headers"], "Authorization": f"Bearer {key2}"})
    assert r.status_code == 401
