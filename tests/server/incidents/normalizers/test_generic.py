"""Our own alert format: schema validation with JSON paths, defaults, severity and fingerprints."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from jsonschema import Draft202012Validator

from server.domains.incidents.normalizers import PayloadRejected, normalize
from server.domains.incidents.normalizers.generic import SCHEMA_PATH, format_path, schema


def test_schema_is_a_valid_draft_2020_12_schema():
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema())
    assert SCHEMA_PATH.name == "generic_alert.schema.json"


def test_single_alert_with_every_field():
    body = {
        "title": "Checkout synthetic check failing",
        "description": "3 of 3 locations fail",
        "severity": "CRITICAL",
        "status": "firing",
        "service": "checkout-web",
        "environment": "production",
        "fingerprint": "synthetic:checkout:eu",
        "id": "chk-991",
        "sourceProduct": "synthetics",
        "startedAt": "2026-11-24T09:00:00+01:00",
        "labels": {"location": "eu-west", "attempts": 3, "tier": "tier-0", "business_unit": "retail", "category": "availability"},
        "url": "https://synthetics.northwind.io/checks/991",
        "priority": "p1",
    }
    (alert,) = normalize("generic", body, {"Idempotency-Key": "d-1"}).alerts
    assert alert.provider == "generic"
    assert (alert.title, alert.severity, alert.status, alert.acknowledged) == (body["title"], "critical", "firing", False)
    assert (alert.service, alert.environment, alert.fingerprint) == ("checkout-web", "production", "synthetic:checkout:eu")
    assert alert.provider_alert_id == "chk-991"
    assert alert.started_at == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert alert.labels == {
        "location": "eu-west", "attempts": "3", "tier": "tier-0", "business_unit": "retail",
        "category": "availability", "source_product": "synthetics",
    }
    assert (alert.service_tier, alert.business_unit, alert.category) == ("tier-0", "retail", "availability")
    assert alert.priority == "P1"
    assert alert.source_url == "https://synthetics.northwind.io/checks/991"
    assert normalize("generic", body, {"idempotency-key": "d-1"}).delivery_id == "d-1"


def test_minimal_alert_defaults_and_derived_fingerprint():
    (alert,) = normalize("generic", {"title": "  Queue backlog  "}).alerts
    assert (alert.title, alert.severity, alert.status) == ("Queue backlog", "medium", "firing")
    assert alert.fingerprint == "Queue backlog||"
    assert alert.started_at is None and alert.labels == {}


def test_derived_fingerprint_matches_between_firing_and_resolved():
    firing = {"title": "Queue backlog", "service": "orders-worker", "environment": "staging", "severity": "warning"}
    resolved = {**firing, "status": "resolved", "endedAt": "2026-11-24T10:00:00Z"}
    (a,) = normalize("generic", firing).alerts
    (b,) = normalize("generic", resolved).alerts
    assert a.fingerprint == b.fingerprint == "Queue backlog|orders-worker|staging"
    assert (a.status, b.status) == ("firing", "resolved")
    assert b.ended_at == datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    assert a.severity == "medium"


def test_batch_and_acknowledged_and_unknown_severity():
    body = {"alerts": [
        {"title": "A", "severity": "sev-whatever"},
        {"title": "B", "status": "acknowledged", "severity": "error"},
        {"title": "C", "priority": "P4"},
    ]}
    a, b, c = normalize("generic", body).alerts
    assert a.severity == "medium"
    assert (b.status, b.acknowledged, b.severity) == ("firing", True, "high")
    assert (c.severity, c.priority) == ("low", "P4")
    assert normalize("generic", {"alerts": []}).alerts == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"description": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 42}, "title"),
        ({"alerts": [{"title": "ok"}, {"severity": "high"}]}, "alerts[1].title"),
        ({"alerts": [{"title": "ok", "status": "open"}]}, "alerts[0].status"),
        ({"alerts": "nope"}, "alerts"),
        ({"title": "x", "labels": {"a": {"nested": 1}}}, "labels.a"),
        ({"title": "x", "startedAt": "yesterday"}, "startedAt"),
        ({"title": "x", "sourceProduct": "billing"}, "sourceProduct"),
        ({"title": "x", "priority": "P9"}, "priority"),
        ([{"title": "x"}], "$"),
        ("title", "$"),
    ],
)
def test_rejections_name_the_failing_path(body, path):
    with pytest.raises(PayloadRejected) as info:
        normalize("generic", body)
    assert info.value.path == path
    assert info.value.message


def test_format_path():
    assert format_path(["alerts", 0, "labels", "x"]) == "alerts[0].labels.x"
    assert format_path([]) == "$"
