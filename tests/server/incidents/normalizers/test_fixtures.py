"""Every fixture file (shared recorded-shape deliveries and our own variants) against its `expect`.

For accepted deliveries every documented `expect.items` field is compared (status, severity,
title, service, environment, fingerprint value, link/acknowledged/priority/... where given; the
change-event fields for CI providers), plus the delivery-level extras our own fixtures carry
(`delivery_id`, `truncated_alerts`, `deploy_alerts`). Signed fixtures must verify (and fail once
tampered with); `rejected` fixtures must fail their signature (401) or raise PayloadRejected at
the expected path (422).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from server.domains.incidents.normalizers import PROVIDERS, PayloadRejected, normalize
from server.domains.incidents.normalizers.types import ALERT_STATUSES, CHANGE_RESULTS, SEVERITIES
from server.domains.incidents.signatures import GRAFANA_HEADERS, verify_delivery, verify_grafana

from ._fixtures import OWN_DIR, fixture_files, load, shared_fixture_dir

FIXTURES = fixture_files()
IDS = [name for name, _ in FIXTURES]
PATHS = [path for _, path in FIXTURES]

ALERT_FIELDS = {
    "status": "status",
    "severity": "severity",
    "title": "title",
    "service": "service",
    "environment": "environment",
    "fingerprint_value": "fingerprint",
    "link": "source_url",
    "priority": "priority",
    "category": "category",
    "business_unit": "business_unit",
    "service_tier": "service_tier",
}
CHANGE_FIELDS = {
    "result": "result",
    "phase": "phase",
    "title": "title",
    "service": "service",
    "environment": "environment",
    "version": "version",
    "commit": "commit",
    "branch": "branch",
    "fingerprint_value": "fingerprint",
    "link": "url",
}


def test_shared_fixtures_are_found():
    """The shared set must be present (beside the checkout in CI, or INSIGHTS_SHARED_DIR)."""
    directory = shared_fixture_dir()
    assert directory is not None, "shared/fixtures/webhooks not found: set INSIGHTS_SHARED_DIR"
    assert len(list(directory.glob("*/*.json"))) >= 25


def test_own_variants_cover_every_fixture_provider():
    """At least two variant cases per provider (generic's live in test_generic.py)."""
    counts = {p: len(list((OWN_DIR / p).glob("*.json"))) for p in PROVIDERS if p != "generic"}
    assert all(n >= 2 for n in counts.values()), counts


def _raw(fx: dict) -> bytes:
    return fx["raw_body"].encode("utf-8")


def _signature_ok(fx: dict, raw: bytes) -> bool:
    """Verify the fixture's provider signature the way the REST shim will."""
    if "secret" in fx:  # PagerDuty: the subscription's signing secret is the config secret
        return verify_delivery(fx["provider"], raw, fx["headers"], fx["secret"])
    sig = fx["signature"]
    headers = {k.lower(): v for k, v in fx["headers"].items()}
    name = (sig.get("header") or GRAFANA_HEADERS[0]).lower()
    ts_name = (sig.get("timestamp_header") or "").lower()
    direct = verify_grafana(raw, headers.get(name), sig["secret"], headers.get(ts_name) if ts_name else None)
    if name in {h.lower() for h in GRAFANA_HEADERS}:
        assert verify_delivery(fx["provider"], raw, fx["headers"], sig["secret"]) is direct
    return direct


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_fixture(path):
    fx = load(path)
    expect = fx["expect"]
    provider = fx["provider"]
    signed = "secret" in fx or "signature" in fx

    if signed:
        ok = _signature_ok(fx, _raw(fx))
        assert ok is (expect["kind"] != "rejected" or expect["http_status"] != 401)
        if ok:  # one changed byte must break it
            assert not _signature_ok(fx, _raw(fx) + b" ")

    if expect["kind"] == "rejected":
        if expect["http_status"] == 401:
            assert signed, "a 401 case must carry a signature that fails"
            return
        with pytest.raises(PayloadRejected) as info:
            normalize(provider, fx["body"], fx["headers"])
        assert info.value.path, "a rejection names the failing JSON path"
        if "path" in expect:
            assert info.value.path == expect["path"]
        return

    result = normalize(provider, fx["body"], fx["headers"])
    if expect["kind"] == "alerts":
        got, fields = result.alerts, ALERT_FIELDS
        assert result.change_events == []
    else:
        got, fields = result.change_events, CHANGE_FIELDS
    assert len(got) == len(expect["items"])
    for i, (item, value) in enumerate(zip(expect["items"], got, strict=True)):
        for key, attr in fields.items():
            if key in item:
                assert getattr(value, attr) == item[key], f"item {i} {key}"
        if expect["kind"] == "alerts":
            assert value.acknowledged is item.get("acknowledged", False), f"item {i} acknowledged"
            _check_alert_invariants(value, provider)
        else:
            _check_change_invariants(value, provider)

    assert result.truncated_alerts == expect.get("truncated_alerts", 0)
    if "delivery_id" in expect:
        assert result.delivery_id == expect["delivery_id"]
    if "deploy_alerts" in expect:
        assert [
            {"status": a.status, "severity": a.severity, "fingerprint": a.fingerprint} for a in result.alerts
        ] == expect["deploy_alerts"]


def _check_alert_invariants(alert, provider):
    assert alert.provider == provider
    assert alert.severity in SEVERITIES
    assert alert.status in ALERT_STATUSES
    assert alert.title and alert.fingerprint
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in alert.labels.items())
    for moment in (alert.started_at, alert.ended_at):
        assert moment is None or (isinstance(moment, datetime) and moment.utcoffset().total_seconds() == 0)
    if alert.status == "firing":
        assert alert.ended_at is None
    assert alert.priority in (None, "P1", "P2", "P3", "P4", "P5")


def _check_change_invariants(change, provider):
    assert change.provider == provider
    assert change.result in CHANGE_RESULTS
    assert change.title and change.fingerprint
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in change.labels.items())
    assert change.occurred_at is None or change.occurred_at.utcoffset().total_seconds() == 0


def test_same_alert_keeps_its_fingerprint_across_deliveries():
    """Firing and resolved deliveries of one alert normalize to the same fingerprint."""
    shared = shared_fixture_dir()
    assert shared is not None
    pairs = [
        ("grafana/firing-3-alerts-2-services", "grafana/resolved"),
        ("alertmanager/firing-group-2-alerts", "alertmanager/resolved"),
        ("datadog/triggered", "datadog/recovered"),
        ("netdata/critical", "netdata/clear"),
        ("dynatrace/problem-open", "dynatrace/problem-resolved"),
        ("bigpanda/incident-3-alerts", "bigpanda/incident-resolved"),
        ("pagerduty/incident-triggered", "pagerduty/incident-resolved"),
    ]
    for firing_name, resolved_name in pairs:
        firing, resolved = (load(shared / f"{name}.json") for name in (firing_name, resolved_name))
        a = normalize(firing["provider"], firing["body"], firing["headers"]).alerts
        b = normalize(resolved["provider"], resolved["body"], resolved["headers"]).alerts
        assert [x.fingerprint for x in a] == [x.fingerprint for x in b], firing_name
        assert {x.status for x in a} == {"firing"} and {x.status for x in b} == {"resolved"}
