"""Signature helpers: each scheme accepts its own valid signature and refuses everything else."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from server.domains.incidents.signatures import (
    netdata_crc_response,
    sign_insights,
    verify_delivery,
    verify_grafana,
    verify_insights,
    verify_pagerduty,
)

RAW = b'{"title":"Disk full","severity":"critical"}'
SECRET = "s3cret-\u00e9"  # non-ASCII: the key is the secret's UTF-8 bytes


def hexmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- PagerDuty


def test_pagerduty_single_signature():
    header = "v1=" + hexmac(SECRET, RAW)
    assert verify_pagerduty(RAW, header, SECRET)
    assert not verify_pagerduty(RAW + b"\n", header, SECRET)
    assert not verify_pagerduty(RAW, header, "other")


def test_pagerduty_any_of_several_signatures_wins():
    good = "v1=" + hexmac(SECRET, RAW)
    old = "v1=" + hexmac("old", RAW)
    assert verify_pagerduty(RAW, f"{old},{good}", SECRET)
    assert verify_pagerduty(RAW, f"{good}, {old}", SECRET)
    assert not verify_pagerduty(RAW, f"{old},v1=deadbeef", SECRET)


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=", "v0=" + hexmac(SECRET, RAW), hexmac(SECRET, RAW), "v1=" + hexmac(SECRET, RAW)[:-2], "v1=zz\u00e9"],
)
def test_pagerduty_refuses_missing_or_malformed(header):
    assert not verify_pagerduty(RAW, header, SECRET)


def test_pagerduty_without_secret_refuses():
    assert not verify_pagerduty(RAW, "v1=" + hexmac("", RAW), "")


# ---------------------------------------------------------------- ours


def test_insights_signature_round_trip():
    header = sign_insights(RAW, SECRET)
    assert header.startswith("sha256=")
    assert verify_insights(RAW, header, SECRET)
    assert verify_insights(RAW, header.upper().replace("SHA256=", "sha256="), SECRET)  # hex case
    assert verify_insights(RAW, hexmac(SECRET, RAW), SECRET)  # bare digest
    assert not verify_insights(RAW, header, "other")
    assert not verify_insights(RAW + b" ", header, SECRET)
    assert not verify_insights(RAW, None, SECRET)
    assert not verify_insights(RAW, "sha1=" + hexmac(SECRET, RAW), SECRET)


# ---------------------------------------------------------------- Grafana


def test_grafana_without_timestamp():
    assert verify_grafana(RAW, hexmac(SECRET, RAW), SECRET)
    assert not verify_grafana(RAW, "sha256=" + hexmac(SECRET, RAW), SECRET)  # Grafana sends no prefix


def test_grafana_with_timestamp_and_max_age():
    ts = "1795518240"
    sig = hexmac(SECRET, ts.encode() + b":" + RAW)
    assert verify_grafana(RAW, sig, SECRET, ts)
    assert not verify_grafana(RAW, sig, SECRET, "1795518241")  # the timestamp is signed
    assert not verify_grafana(RAW, sig, SECRET)  # and required once used
    assert verify_grafana(RAW, sig, SECRET, ts, max_age_seconds=300, now=1795518240 + 299)
    assert not verify_grafana(RAW, sig, SECRET, ts, max_age_seconds=300, now=1795518240 + 301)
    assert not verify_grafana(RAW, hexmac(SECRET, RAW), SECRET, None, max_age_seconds=300)


# ---------------------------------------------------------------- dispatch


def test_verify_delivery_uses_the_provider_scheme():
    pd = {"X-PagerDuty-Signature": "v1=" + hexmac(SECRET, RAW)}
    assert verify_delivery("pagerduty", RAW, pd, SECRET)
    # PagerDuty deliveries are only checked with PagerDuty's header, not ours
    assert not verify_delivery("pagerduty", RAW, {"x-webhook-signature": sign_insights(RAW, SECRET)}, SECRET)

    ts = "1795518240"
    grafana = {"x-grafana-alerting-signature": hexmac(SECRET, ts.encode() + b":" + RAW), "X-Grafana-Alerting-Timestamp": ts}
    assert verify_delivery("grafana", RAW, grafana, SECRET)
    assert not verify_delivery("grafana", RAW, {**grafana, "X-Grafana-Alerting-Timestamp": "1"}, SECRET)
    # grafana/alerting's built-in default header name
    assert verify_delivery("grafana", RAW, {"X-Grafana-Alert-Signature": hexmac(SECRET, RAW)}, SECRET)
    # a Grafana contact point may send our header instead
    assert verify_delivery("grafana", RAW, {"X-Webhook-Signature": sign_insights(RAW, SECRET)}, SECRET)


@pytest.mark.parametrize("provider", ["generic", "datadog", "alertmanager", "netdata", "splunk", "jenkins"])
def test_verify_delivery_falls_back_to_ours(provider):
    assert verify_delivery(provider, RAW, {"X-Webhook-Signature": sign_insights(RAW, SECRET)}, SECRET)
    assert not verify_delivery(provider, RAW, {"X-Webhook-Signature": sign_insights(RAW, "x")}, SECRET)
    assert not verify_delivery(provider, RAW, {}, SECRET)
    assert not verify_delivery(provider, RAW, None, SECRET)


def test_netdata_crc_response():
    digest = hmac.new(b"challenge-secret", b"abc123", hashlib.sha256).digest()
    assert netdata_crc_response("abc123", "challenge-secret") == {
        "response_token": "sha256=" + base64.b64encode(digest).decode()
    }
