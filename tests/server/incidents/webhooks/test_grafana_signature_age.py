"""Grafana's HMAC with a timestamp (`hmacConfig.timestampHeader`: the signature covers
`<unix seconds>:<body>`), through the real server: a timestamp older or further ahead than
INSIGHTS_WEBHOOK_SIGNATURE_MAX_AGE_SECONDS (300) is refused with 401 INVALID_SIGNATURE and a
message saying why, so a captured delivery cannot be replayed later; a signature without a
timestamp keeps working; 0 turns the check off."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from server.domains.incidents.signatures import hmac_sha256_hex
from tests.server.incidents.webhooks.conftest import Org, load_fixture, shape, shared_dir

ROUTE = "/api/grafana/alerts"
SECRET = "gr-hmac-secret-4Kq9"
SIGNATURE, TIMESTAMP = "X-Grafana-Alerting-Signature", "X-Grafana-Alerting-Timestamp"


def body() -> bytes:
    """A Grafana delivery of its own (a unique groupKey, so never a duplicate of another)."""
    payload = load_fixture(shared_dir() / "grafana" / "firing-3-alerts-2-services.json")["body"]
    return json.dumps({**payload, "groupKey": f"{{}}:{{alertname=\"{uuid.uuid4().hex}\"}}"}).encode()


def signed(raw: bytes, key: str, *, age: float | None = None, timestamp: str | None = None,
           header: str = TIMESTAMP) -> dict:
    """Headers as Grafana sends them: with a timestamp `age` seconds old (negative: ahead), or
    the given `timestamp`, or none at all."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if age is not None:
        timestamp = str(int(time.time() - age))
    if timestamp is None:
        return {**headers, SIGNATURE: hmac_sha256_hex(SECRET, raw)}
    return {**headers, header: timestamp, SIGNATURE: hmac_sha256_hex(SECRET, timestamp.encode() + b":" + raw)}


async def post(http: httpx.AsyncClient, raw: bytes, headers: dict) -> httpx.Response:
    return await http.post(ROUTE, content=raw, headers=headers)


@pytest.fixture
async def key(org: Org) -> str:
    _, key = await org.create_config("GRAFANA", secret=SECRET)
    return key


async def test_a_fresh_timestamp_is_accepted(org: Org, key: str):
    for age in (0, 250, -250):  # within the 300 s either way (clocks drift)
        r = await post(org.http, raw := body(), signed(raw, key, age=age))
        assert r.status_code == 202, (age, r.text)
    # the timestamp header name is the contact point's choice; the usual names are read
    for header in ("X-Grafana-Alerting-Signature-Timestamp", "X-Grafana-Alert-Timestamp"):
        r = await post(org.http, raw := body(), signed(raw, key, age=10, header=header))
        assert r.status_code == 202, (header, r.text)


async def test_an_old_timestamp_is_refused(org: Org, key: str):
    raw = body()
    r = await post(org.http, raw, signed(raw, key, age=301))
    assert r.status_code == 401, r.text
    shape(r)
    answer = r.json()
    assert answer["code"] == "INVALID_SIGNATURE"
    assert "s old" in answer["error"] and "300 s" in answer["error"], answer
    counts = await org.counts()
    assert counts["alerts"] == 0 and counts["incidents"] == 0
    (row,) = await org.fetch("SELECT status, http_status, error_code, error, length(raw_body) AS kept "
                             "FROM webhook_deliveries WHERE organization_id = $1", org.org_uuid)
    assert (row["status"], row["http_status"], row["error_code"]) == ("rejected", 401, "INVALID_SIGNATURE")
    assert "s old" in row["error"] and row["kept"] == 0


async def test_a_replayed_capture_is_refused_once_it_is_old(org: Org, key: str):
    """The same signed bytes: accepted when fresh; a copy whose timestamp is rewritten is a bad
    signature, and the original headers sent later are too old."""
    raw = body()
    captured = signed(raw, key, age=400)
    r = await post(org.http, raw, captured)
    assert r.status_code == 401 and "s old" in r.json()["error"]
    rewritten = {**captured, TIMESTAMP: str(int(time.time()))}
    r = await post(org.http, raw, rewritten)
    assert r.status_code == 401 and r.json()["error"] == "the signature does not match the body"


async def test_a_timestamp_ahead_of_the_clock_is_refused(org: Org, key: str):
    raw = body()
    r = await post(org.http, raw, signed(raw, key, age=-400))
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "INVALID_SIGNATURE" and "ahead" in r.json()["error"]


async def test_a_timestamp_that_is_not_unix_seconds_is_refused(org: Org, key: str):
    raw = body()
    for timestamp in ("2026-11-28T08:00:00Z", "1e9", "1795853668.5"):
        r = await post(org.http, raw, signed(raw, key, timestamp=timestamp))
        assert r.status_code == 401, (timestamp, r.text)
        assert r.json()["code"] == "INVALID_SIGNATURE" and "Unix time" in r.json()["error"], r.json()


async def test_a_signature_without_a_timestamp_keeps_working(org: Org, key: str):
    raw = body()
    r = await post(org.http, raw, signed(raw, key))
    assert r.status_code == 202, r.text


async def test_a_wrong_signature_is_still_a_mismatch(org: Org, key: str):
    raw = body()
    headers = signed(raw, key, age=1)
    r = await post(org.http, raw + b" ", headers)
    assert r.status_code == 401 and r.json()["error"] == "the signature does not match the body"


async def test_the_setting_is_read_and_zero_turns_the_check_off(org: Org, key: str, start_server):
    server = start_server(webhook_signature_max_age_seconds=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        raw = body()
        r = await post(http, raw, signed(raw, key, age=10 * 24 * 3600))
        assert r.status_code == 202, r.text
    raw = body()
    r = await post(org.http, raw, signed(raw, key, age=10 * 24 * 3600))  # the default server: 300 s
    assert r.status_code == 401


def test_signature_error_boundaries():
    from server.domains.incidents.signatures import MISMATCH, signature_error

    raw, ts = b'{"alerts": []}', "1795518240"
    headers = {SIGNATURE: hmac_sha256_hex(SECRET, ts.encode() + b":" + raw), TIMESTAMP: ts}
    check = lambda now, **kw: signature_error("grafana", raw, headers, SECRET, now=now, **kw)  # noqa: E731
    assert check(1795518240 + 300, max_age_seconds=300) is None
    assert "301 s old" in check(1795518240 + 301, max_age_seconds=300)
    assert check(1795518240 - 300, max_age_seconds=300) is None
    assert "301 s ahead" in check(1795518240 - 301, max_age_seconds=300)
    assert check(1795518240 + 10**6) is None  # no max age: no check
    assert signature_error("grafana", raw + b" ", headers, SECRET, max_age_seconds=300) == MISMATCH
    untimed = {SIGNATURE: hmac_sha256_hex(SECRET, raw)}
    assert signature_error("grafana", raw, untimed, SECRET, max_age_seconds=300, now=0) is None
