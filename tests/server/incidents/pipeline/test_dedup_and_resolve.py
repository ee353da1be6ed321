"""Dedup of repeated alerts, resolving alerts, and incidents resolving themselves."""

from __future__ import annotations

import pytest

from server.domains.incidents.ingest import WARM_EVERY
from server.domains.incidents.models import AiStatus, AlertStatus, IncidentStatus, Severity
from tests.server.incidents.pipeline.support import (
    alert,
    alerts_of,
    incidents_of,
    ingest,
    minutes,
    now,
    set_settings,
    timeline_of,
)


async def test_a_new_firing_alert_opens_an_incident_with_the_alerts_fields(rt, owner):
    _, org = owner
    t0 = now() - minutes(3)
    result = await ingest(rt, org, alert("fp-1", title="Checkout p99 latency high", severity="critical",
                                         started_at=t0, provider_alert_id="grafana-rule-7", category="latency",
                                         business_unit="shop", service_tier="tier-1", description="p99 > 2s"))
    [incident] = await incidents_of(rt, org)
    [a] = await alerts_of(rt, org)
    assert result.incident_ids == [incident.id] and result.alert_ids == [a.id] and result.change_event_ids == []
    assert (incident.status, incident.severity, incident.priority, incident.ai_status) == (
        IncidentStatus.INVESTIGATING, Severity.CRITICAL, "P1", AiStatus.IDLE)
    assert (incident.title, incident.description, incident.service, incident.environment) == (
        "Checkout p99 latency high", "p99 > 2s", "checkout", "prod")
    assert (incident.source, incident.source_alert_id) == ("grafana", "grafana-rule-7")
    assert (incident.category, incident.business_unit, incident.service_tier) == ("latency", "shop", "tier-1")
    assert incident.started_at == t0 and incident.correlated_alert_count == 1
    assert incident.affected_services == ["checkout"] and incident.fingerprints == ["fp-1"]
    assert a.incident_id == incident.id and a.status == AlertStatus.FIRING and a.correlation_reason is None
    assert [e.kind for e in await timeline_of(rt, incident.id)] == ["created"]


@pytest.mark.parametrize(("severity", "given", "expected"), [
    ("critical", None, "P1"), ("high", None, "P2"), ("medium", None, "P3"), ("low", None, "P4"), ("info", None, "P5"),
    ("info", "P1", "P1"), ("critical", "p4", "P4"), ("high", "P9", "P2"),
])
async def test_priority_comes_from_the_alert_or_its_severity(rt, owner, severity, given, expected):
    _, org = owner
    await ingest(rt, org, alert(f"fp-{severity}-{given}", severity=severity, priority=given))
    [incident] = await incidents_of(rt, org)
    assert incident.priority == expected


async def test_a_repeat_of_an_open_alert_updates_it_instead_of_adding_one(rt, owner):
    _, org = owner
    first = await ingest(rt, org, alert("fp-1", title="Disk 80% full", severity="medium"))
    later = now() + minutes(1)
    second = await ingest(rt, org, alert("fp-1", title="Disk 95% full", severity="critical"), now=later)
    [a] = await alerts_of(rt, org)
    [incident] = await incidents_of(rt, org)
    assert second.alert_ids == first.alert_ids == [a.id] and second.incident_ids == [incident.id]
    assert (a.occurrence_count, a.last_seen_at, a.title, a.severity) == (2, later, "Disk 95% full", Severity.CRITICAL)
    assert incident.severity == Severity.CRITICAL  # escalated to the highest
    assert incident.correlated_alert_count == 1 and incident.last_alert_at == later
    assert [e.kind for e in await timeline_of(rt, incident.id)] == ["created"]  # a repeat is no new entry


async def test_repeats_keep_the_incident_warm_at_most_every_ten_seconds(rt, owner):
    """Each repeat updates its alert; the incident's last alert time is written only once it is
    10 s old (or when the repeat raises its severity), not in every delivery."""
    _, org = owner
    t0 = now()
    await ingest(rt, org, alert("fp-1", severity="low"), now=t0)
    [opened] = await incidents_of(rt, org)
    for seconds in (2, 5, 9):
        await ingest(rt, org, alert("fp-1", severity="low"), now=t0 + WARM_EVERY * seconds / 10)
    [incident] = await incidents_of(rt, org)
    [a] = await alerts_of(rt, org)
    assert a.occurrence_count == 4 and a.last_seen_at == t0 + WARM_EVERY * 9 / 10
    assert (incident.revision, incident.last_alert_at) == (opened.revision, t0)  # not rewritten
    await ingest(rt, org, alert("fp-1", severity="high"), now=t0 + WARM_EVERY * 95 / 100)  # raises severity
    [incident] = await incidents_of(rt, org)
    assert incident.severity == Severity.HIGH and incident.last_alert_at == t0 + WARM_EVERY * 95 / 100
    later = incident.last_alert_at + WARM_EVERY
    await ingest(rt, org, alert("fp-1", severity="low"), now=later)
    [incident] = await incidents_of(rt, org)
    assert incident.last_alert_at == later and incident.severity == Severity.HIGH


async def test_severity_of_an_incident_never_drops_when_an_alert_repeats_lower(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", severity="critical"))
    await ingest(rt, org, alert("fp-1", severity="low"))
    [incident] = await incidents_of(rt, org)
    [a] = await alerts_of(rt, org)
    assert a.severity == Severity.LOW and incident.severity == Severity.CRITICAL


async def test_resolved_alert_closes_its_open_alert_and_the_incident_resolves_itself(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"), alert("fp-2", title="Checkout errors 5xx"))
    ended = now()
    await ingest(rt, org, alert("fp-1", status="resolved", ended_at=ended))
    [incident] = await incidents_of(rt, org)
    assert incident.status == IncidentStatus.INVESTIGATING  # fp-2 still fires
    first, second = await alerts_of(rt, org)
    assert (first.status, first.ended_at) == (AlertStatus.RESOLVED, ended) and second.status == AlertStatus.FIRING

    result = await ingest(rt, org, alert("fp-2", title="Checkout errors 5xx", status="resolved"))
    [incident] = await incidents_of(rt, org)
    assert result.incident_ids == [incident.id]
    assert incident.status == IncidentStatus.RESOLVED and incident.resolved_at is not None
    assert incident.resolved_by_id is None
    kinds = [e.kind for e in await timeline_of(rt, incident.id)]
    assert kinds == ["created", "alert_correlated", "alert_resolved", "alert_resolved", "resolved"]
    assert (await timeline_of(rt, incident.id))[-1].data == {"automatic": True}


async def test_an_incident_stays_open_when_auto_resolve_is_off(rt, owner):
    _, org = owner
    await set_settings(rt, org, auto_resolve=False)
    await ingest(rt, org, alert("fp-1"))
    await ingest(rt, org, alert("fp-1", status="resolved"))
    [incident] = await incidents_of(rt, org)
    [a] = await alerts_of(rt, org)
    assert a.status == AlertStatus.RESOLVED and incident.status == IncidentStatus.INVESTIGATING
    assert [e.kind for e in await timeline_of(rt, incident.id)] == ["created", "alert_resolved"]


async def test_firing_and_resolved_in_one_delivery_resolve_the_incident_it_opened(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"), alert("fp-1", status="resolved"))
    [incident] = await incidents_of(rt, org)
    [a] = await alerts_of(rt, org)
    assert a.status == AlertStatus.RESOLVED and incident.status == IncidentStatus.RESOLVED


async def test_a_resolved_alert_with_nothing_open_is_recorded_and_opens_nothing(rt, owner):
    _, org = owner
    ended = now()
    result = await ingest(rt, org, alert("fp-unknown", status="resolved", ended_at=ended))
    assert await incidents_of(rt, org) == [] and result.incident_ids == []
    [a] = await alerts_of(rt, org)
    assert result.alert_ids == [a.id]
    assert (a.status, a.incident_id, a.ended_at) == (AlertStatus.RESOLVED, None, ended)


async def test_the_same_fingerprint_fires_again_after_resolving_as_a_new_alert(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"), alert("fp-2", title="Checkout errors 5xx"))
    await ingest(rt, org, alert("fp-1", status="resolved"))
    await ingest(rt, org, alert("fp-1"))
    alerts = await alerts_of(rt, org)
    assert [(a.fingerprint, a.status) for a in alerts] == [
        ("fp-1", AlertStatus.RESOLVED), ("fp-2", AlertStatus.FIRING), ("fp-1", AlertStatus.FIRING)]
    incidents = await incidents_of(rt, org)
    # the re-fire goes back to the incident that holds the fingerprint (still open thanks to fp-2)
    assert alerts[2].incident_id == alerts[0].incident_id
    assert alerts[2].correlation_reason == "fingerprint_group"
    assert len(incidents) == 1 and incidents[0].correlated_alert_count == 3


async def test_a_repeat_after_a_person_resolved_the_incident_starts_a_new_alert_and_incident(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"))
    [first] = await incidents_of(rt, org)
    from server.domains.incidents.models import Incident

    async with rt.db.unit_of_work() as uow:
        row = await uow.session.get(Incident, first.id)
        row.status, row.resolved_at = IncidentStatus.RESOLVED, now()
    await ingest(rt, org, alert("fp-1"))
    old, new = await alerts_of(rt, org)
    assert old.status == AlertStatus.RESOLVED and old.ended_at is not None
    assert new.status == AlertStatus.FIRING and new.incident_id not in (None, first.id)
    assert len(await incidents_of(rt, org)) == 2


async def test_alerts_of_one_delivery_keep_their_order(rt, owner):
    _, org = owner
    fps = [f"fp-{i}" for i in range(12)]
    result = await ingest(rt, org, *[alert(fp, service="checkout") for fp in fps])
    stored = await alerts_of(rt, org)
    assert [a.fingerprint for a in stored] == fps and result.alert_ids == [a.id for a in stored]


async def test_unknown_severity_is_stored_as_medium(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", severity="disaster"))
    [a] = await alerts_of(rt, org)
    assert a.severity == Severity.MEDIUM


async def test_an_open_alert_resolved_and_firing_again_in_one_delivery(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"), alert("fp-2", title="Checkout errors 5xx"))
    result = await ingest(rt, org, alert("fp-1", status="resolved"), alert("fp-1", severity="critical"))
    old, other, new = await alerts_of(rt, org)
    assert (old.fingerprint, old.status) == ("fp-1", AlertStatus.RESOLVED)
    assert (new.fingerprint, new.status, new.severity) == ("fp-1", AlertStatus.FIRING, Severity.CRITICAL)
    assert result.alert_ids == [old.id, new.id] and new.incident_id == old.incident_id == other.incident_id


async def test_text_the_database_cannot_hold_is_cleaned(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", title="Disk\x00 full", description="nul\x00here", labels={"k": "v\x00"}))
    [a] = await alerts_of(rt, org)
    assert (a.title, a.description, a.labels) == ("Disk full", "nulhere", {"k": "v"})
