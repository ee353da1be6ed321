"""Correlation settings through the real server: `correlationSettings` (defaults until saved, any
member), `correlationSettingsUpdate` (owners and editors; ranges checked, nothing written on bad
input; an audit entry), tenant isolation, and deliveries correlated with the new values at once."""

from __future__ import annotations

from datetime import timedelta

from server.db.base import utcnow
from server.domains.incidents.correlation import CorrelationSettings as EngineSettings
from server.domains.incidents.correlation_settings import KNOBS
from server.domains.incidents.models import CorrelationSettings as SettingsRow
from tests.graph.incidents.helpers import ERRORS, INCIDENT, Tenant, errors_of

FIELDS = """windowMinutes titleSimilarityThreshold useFingerprintGroup useService useTitleSimilarity useCooccurrence
  cooccurrenceThreshold cooccurrenceMinSupport cooccurrenceWindowMinutes fingerprintHorizonMinutes autoResolve
  updatedAt organizationId organization { id }"""
GET = f"query($org: ID!) {{ correlationSettings(organizationId: $org) {{ {FIELDS} }} }}"
SET = f"""mutation($input: CorrelationSettingsUpdateInput!) {{ correlationSettingsUpdate(input: $input) {{
  correlationSettings {{ {FIELDS} }} {ERRORS} }} }}"""
AUDIT = """query($org: ID!) { auditLog(organizationId: $org, first: 50) {
  nodes { action targetType targetId summary before after } } }"""

DEFAULTS = {"windowMinutes": 30, "titleSimilarityThreshold": 0.6, "useFingerprintGroup": True, "useService": True,
            "useTitleSimilarity": True, "useCooccurrence": True, "cooccurrenceThreshold": 0.1,
            "cooccurrenceMinSupport": 3, "cooccurrenceWindowMinutes": 10, "fingerprintHorizonMinutes": 1440,
            "autoResolve": True}


def knobs(settings: dict) -> dict:
    return {k: settings[k] for k in DEFAULTS}


async def read(tenant: Tenant, token: str | None = None) -> dict:
    return (await tenant(GET, {"org": tenant.org_id}, token=token))["correlationSettings"]


async def update(tenant: Tenant, token: str | None = None, **values) -> dict:  # noqa: ANN003
    return (await tenant(SET, {"input": {"organizationId": tenant.org_id, **values}}, token=token))[
        "correlationSettingsUpdate"]


async def audit_entries(tenant: Tenant) -> list[dict]:
    nodes = (await tenant(AUDIT, {"org": tenant.org_id}))["auditLog"]["nodes"]
    return [n for n in nodes if n["action"] == "correlation_settings.update"]


def test_every_column_is_a_setting_and_the_defaults_are_the_engines():
    columns = {c.key for c in SettingsRow.__table__.columns} - {"organization_id", "cooccurrence_model",
                                                                "created_at", "updated_at"}
    assert {k.column for k in KNOBS} == columns
    engine = EngineSettings()
    assert DEFAULTS["windowMinutes"] == engine.window_minutes
    assert DEFAULTS["titleSimilarityThreshold"] == engine.title_similarity_threshold
    assert DEFAULTS["fingerprintHorizonMinutes"] == engine.fingerprint_horizon_minutes


async def test_a_new_organization_reads_the_defaults_any_member_can(tenant):
    settings = await read(tenant)
    assert knobs(settings) == DEFAULTS
    assert settings["updatedAt"] is None
    assert settings["organizationId"] == tenant.org_id and settings["organization"] == {"id": tenant.org_id}
    viewer, _ = await tenant.member("viewer")
    assert knobs(await read(tenant, viewer)) == DEFAULTS


async def test_update_changes_the_given_settings_only_and_is_audited(tenant):
    data = await update(tenant, windowMinutes=45, useService=False, titleSimilarityThreshold=0.75,
                        fingerprintHorizonMinutes=None)
    assert data["userErrors"] == []
    expected = {**DEFAULTS, "windowMinutes": 45, "useService": False, "titleSimilarityThreshold": 0.75,
                "fingerprintHorizonMinutes": None}
    assert knobs(data["correlationSettings"]) == expected
    saved = await read(tenant)
    assert knobs(saved) == expected and saved["updatedAt"] is not None

    [entry] = await audit_entries(tenant)
    assert entry["targetType"] == "CorrelationSettings"
    assert entry["before"] == {"windowMinutes": 30, "useService": True, "titleSimilarityThreshold": 0.6,
                               "fingerprintHorizonMinutes": 1440}
    assert entry["after"] == {"windowMinutes": 45, "useService": False, "titleSimilarityThreshold": 0.75,
                              "fingerprintHorizonMinutes": None}

    # a second patch keeps the first; one that changes nothing writes nothing
    data = await update(tenant, autoResolve=False, fingerprintHorizonMinutes=600)
    assert knobs(data["correlationSettings"]) == {**expected, "autoResolve": False, "fingerprintHorizonMinutes": 600}
    again = await update(tenant, autoResolve=False, windowMinutes=45)
    assert again["userErrors"] == []
    assert again["correlationSettings"]["updatedAt"] == data["correlationSettings"]["updatedAt"]
    assert len(await audit_entries(tenant)) == 2

    editor, _ = await tenant.member("editor")
    data = await update(tenant, editor, useCooccurrence=False, cooccurrenceMinSupport=5)
    assert data["userErrors"] == [] and data["correlationSettings"]["useCooccurrence"] is False
    assert data["correlationSettings"]["cooccurrenceMinSupport"] == 5


async def test_bad_values_are_user_errors_and_change_nothing(tenant):
    data = await update(tenant, windowMinutes=0, titleSimilarityThreshold=1.0, cooccurrenceThreshold=-0.1,
                        cooccurrenceMinSupport=0, cooccurrenceWindowMinutes=10081, fingerprintHorizonMinutes=0,
                        useService=None, autoResolve=None, useCooccurrence=False)
    assert data["correlationSettings"] is None
    assert sorted(errors_of(data)) == sorted([
        ("VALIDATION", ["input", "windowMinutes"]), ("VALIDATION", ["input", "titleSimilarityThreshold"]),
        ("VALIDATION", ["input", "cooccurrenceThreshold"]), ("VALIDATION", ["input", "cooccurrenceMinSupport"]),
        ("VALIDATION", ["input", "cooccurrenceWindowMinutes"]), ("VALIDATION", ["input", "fingerprintHorizonMinutes"]),
        ("VALIDATION", ["input", "useService"]), ("VALIDATION", ["input", "autoResolve"]),
    ])
    messages = {tuple(e["field"]): e["message"] for e in data["userErrors"]}
    assert "1 to 10080" in messages[("input", "windowMinutes")]
    assert "below 1" in messages[("input", "titleSimilarityThreshold")]
    assert "cannot be null" in messages[("input", "useService")]
    for value in (10**6, 7 * 24 * 60 + 1):
        bad = await update(tenant, windowMinutes=value)
        assert errors_of(bad) == [("VALIDATION", ["input", "windowMinutes"])]
    settings = await read(tenant)
    assert knobs(settings) == DEFAULTS and settings["updatedAt"] is None  # not even useCooccurrence changed
    assert await audit_entries(tenant) == []


async def test_non_integer_ints_are_refused_by_graphql(tenant):
    r = await tenant.gql.raw(SET, {"input": {"organizationId": tenant.org_id, "windowMinutes": 30.5}},
                             token=tenant.token)
    body = r.json()
    assert body["errors"] and body["errors"][0]["extensions"]["code"] != "INTERNAL", body


async def test_viewers_cannot_change_them(tenant):
    viewer, _ = await tenant.member("viewer")
    data = await update(tenant, viewer, windowMinutes=5)
    assert [code for code, _ in errors_of(data)] == ["FORBIDDEN"] and data["correlationSettings"] is None
    assert knobs(await read(tenant)) == DEFAULTS


async def test_another_organizations_settings_are_not_found(tenant, gql):
    other = await Tenant.create(gql, "Globex")
    assert (await update(other, windowMinutes=90))["userErrors"] == []
    # Acme's owner asks about Globex: exactly like an organization that does not exist
    r = await gql.raw(GET, {"org": other.org_id}, token=tenant.token)
    [error] = r.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND" and r.json()["data"] is None
    data = await update(tenant, organizationId=other.org_id, windowMinutes=1)
    assert errors_of(data) == [("NOT_FOUND", ["input", "organizationId"])]
    data = await update(tenant, organizationId="not-an-id", windowMinutes=1)
    assert errors_of(data) == [("VALIDATION", ["input", "organizationId"])]
    assert (await read(other))["windowMinutes"] == 90
    assert (await read(tenant))["windowMinutes"] == 30


# --- deliveries use the new values at once ----------------------------------------------------

async def incident_of(tenant: Tenant, answer: dict) -> str:
    assert len(answer["incidents"]) == 1, answer
    return answer["incidents"][0]


async def test_turning_off_same_service_correlation_splits_the_next_alert_off(tenant):
    first = await incident_of(tenant, await tenant.post(
        {"title": "CPU saturated on checkout-7f9c", "service": "checkout", "severity": "high", "fingerprint": "cpu"}))
    joined = await incident_of(tenant, await tenant.post(
        {"title": "Disk almost full", "service": "checkout", "severity": "medium", "fingerprint": "disk"}))
    assert joined == first  # same service within the window (the default)

    assert (await update(tenant, useService=False))["userErrors"] == []
    # at once: no waiting for the per-process settings cache to expire
    apart = await incident_of(tenant, await tenant.post(
        {"title": "Payment latency p99 over 2s", "service": "checkout", "severity": "high", "fingerprint": "lat"}))
    assert apart != first

    assert (await update(tenant, useService=True))["userErrors"] == []
    back = await incident_of(tenant, await tenant.post(
        {"title": "Queue backlog growing", "service": "checkout", "severity": "low", "fingerprint": "queue"}))
    assert back in (first, apart)  # joins again


async def test_a_shorter_window_opens_a_new_incident(tenant):
    now = utcnow()
    started = lambda minutes_ago: (now - timedelta(minutes=minutes_ago)).isoformat()  # noqa: E731
    first = await incident_of(tenant, await tenant.post(
        {"title": "Error rate above 5%", "service": "search", "severity": "high", "fingerprint": "err",
         "startedAt": started(20)}))
    joined = await incident_of(tenant, await tenant.post(
        {"title": "Pod evicted", "service": "search", "severity": "medium", "fingerprint": "evict",
         "startedAt": started(8)}))
    assert joined == first  # 12 minutes apart: within the default 30

    assert (await update(tenant, windowMinutes=5))["userErrors"] == []
    apart = await incident_of(tenant, await tenant.post(
        {"title": "Index rebuild failed", "service": "search", "severity": "high", "fingerprint": "index",
         "startedAt": started(0)}))
    assert apart != first  # 8 minutes after the service's last alert: outside 5


async def test_auto_resolve_off_keeps_the_incident_open(tenant):
    assert (await update(tenant, autoResolve=False))["userErrors"] == []
    alert = {"title": "Replica lag", "service": "db", "severity": "high", "fingerprint": "lag"}
    incident = await incident_of(tenant, await tenant.post(alert))
    await tenant.post({**alert, "status": "resolved"})
    data = (await tenant(INCIDENT, {"id": incident}))["incident"]
    assert data["status"] == "INVESTIGATING"
    assert [a["status"] for a in data["alerts"]["nodes"]] == ["RESOLVED"]
