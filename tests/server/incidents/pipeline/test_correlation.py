"""Correlation of new alerts into open incidents, through the real engine and database."""

from __future__ import annotations

from server.domains.incidents.models import IncidentStatus, Severity
from tests.server.incidents.pipeline.support import (
    alert,
    alerts_of,
    incidents_of,
    ingest,
    minutes,
    now,
    timeline_of,
)


async def test_an_alert_of_the_same_service_in_the_window_joins_the_incident(rt, owner):
    _, org = owner
    t0 = now() - minutes(20)
    await ingest(rt, org, alert("fp-1", title="Checkout latency high", started_at=t0, severity="medium"))
    result = await ingest(rt, org, alert("fp-2", title="Checkout pods restarting", started_at=t0 + minutes(10),
                                         severity="critical"))
    [incident] = await incidents_of(rt, org)
    first, second = await alerts_of(rt, org)
    assert result.incident_ids == [incident.id] and second.incident_id == incident.id
    assert (second.correlation_reason, second.correlation_score) == ("service_window", 1.0)
    assert "checkout" in second.correlation_detail
    assert incident.correlated_alert_count == 2 and incident.fingerprints == ["fp-1", "fp-2"]
    assert incident.severity == Severity.CRITICAL and incident.last_alert_at == t0 + minutes(10)
    entries = await timeline_of(rt, incident.id)
    assert [e.kind for e in entries] == ["created", "alert_correlated"]
    assert entries[1].data["alertId"] == str(second.id) and entries[1].data["reason"] == "service_window"
    assert entries[1].data["severity"] == {"from": "medium", "to": "critical"}


async def test_the_same_service_outside_the_window_opens_a_new_incident(rt, owner):
    _, org = owner
    t0 = now() - minutes(120)
    await ingest(rt, org, alert("fp-1", title="Checkout latency high", started_at=t0))
    await ingest(rt, org, alert("fp-2", title="Checkout pods restarting", started_at=t0 + minutes(45)))
    assert len(await incidents_of(rt, org)) == 2


async def test_unrelated_alerts_open_separate_incidents(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", title="Checkout latency high", service="checkout"),
                 alert("fp-2", title="Search index stale", service="search"))
    incidents = await incidents_of(rt, org)
    assert len(incidents) == 2
    assert {i.service for i in incidents} == {"checkout", "search"}
    assert all(a.correlation_reason is None for a in await alerts_of(rt, org))


async def test_a_contradicting_environment_keeps_alerts_apart(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", service="checkout", environment="prod"),
                 alert("fp-2", service="checkout", environment="staging", title="Checkout pods restarting"))
    assert len(await incidents_of(rt, org)) == 2


async def test_similar_titles_of_different_services_join(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1", title="Database connection pool exhausted", service="orders"))
    await ingest(rt, org, alert("fp-2", title="database connection pool exhausted", service="billing"))
    [incident] = await incidents_of(rt, org)
    _, second = await alerts_of(rt, org)
    assert second.correlation_reason == "title_similarity" and second.correlation_score > 0.6
    assert incident.affected_services == ["orders", "billing"]


async def test_a_shared_group_key_joins(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-host-1", title="Node down", service="edge-a", group_key="rule:node-down"))
    await ingest(rt, org, alert("fp-host-2", title="Host unreachable", service="edge-b", group_key="rule:node-down"))
    [incident] = await incidents_of(rt, org)
    _, second = await alerts_of(rt, org)
    assert second.correlation_reason == "fingerprint_group" and incident.group_keys == ["rule:node-down"]


async def test_a_group_key_joins_an_open_incident_long_outside_the_window(rt, owner):
    """Only the incident's key (no service, title or time in common) can find it: the lookup by the
    key's latest alerts must."""
    _, org = owner
    t0 = now() - minutes(180)
    await ingest(rt, org, alert("fp-host-1", title="Node down", service="edge-a", group_key="rule:node-down",
                                started_at=t0), now=t0)
    await ingest(rt, org, alert("fp-other", title="Search index stale", service="search", started_at=t0), now=t0)
    await ingest(rt, org, alert("fp-host-2", title="Kernel panic", service="edge-b", group_key="rule:node-down"))
    incidents = await incidents_of(rt, org)
    by_fp = {a.fingerprint: a for a in await alerts_of(rt, org)}
    first, third = by_fp["fp-host-1"], by_fp["fp-host-2"]
    assert len(incidents) == 2 and third.incident_id == first.incident_id
    assert third.correlation_reason == "fingerprint_group" and "rule:node-down" in third.correlation_detail


async def test_a_fingerprint_firing_again_long_after_rejoins_its_open_incident(rt, owner):
    _, org = owner
    t0 = now() - minutes(300)
    await ingest(rt, org, alert("fp-1", title="Disk almost full", service="db-a", started_at=t0),
                 alert("fp-2", title="Replication lag", service="db-a", started_at=t0), now=t0)
    await ingest(rt, org, alert("fp-1", status="resolved", title="Disk almost full", service="db-a"),
                 now=t0 + minutes(5))
    await ingest(rt, org, alert("fp-1", title="Disk almost full", service="db-a"))
    [incident] = await incidents_of(rt, org)
    alerts = await alerts_of(rt, org)
    assert [(a.fingerprint, a.status.value) for a in alerts] == [("fp-1", "resolved"), ("fp-2", "firing"),
                                                                  ("fp-1", "firing")]
    assert {a.incident_id for a in alerts} == {incident.id} and alerts[2].correlation_reason == "fingerprint_group"


async def test_a_key_past_the_fingerprint_horizon_opens_a_new_incident(rt, owner):
    _, org = owner
    t0 = now() - minutes(25 * 60)  # the default horizon is 24 h
    await ingest(rt, org, alert("fp-host-1", title="Node down", service="edge-a", group_key="rule:node-down",
                                started_at=t0), now=t0)
    await ingest(rt, org, alert("fp-host-2", title="Kernel panic", service="edge-b", group_key="rule:node-down"))
    first, second = await alerts_of(rt, org)
    assert len(await incidents_of(rt, org)) == 2 and second.incident_id != first.incident_id


async def test_alerts_of_one_delivery_correlate_with_each_other(rt, owner):
    _, org = owner
    result = await ingest(rt, org, *[alert(f"fp-{i}", title=f"Checkout replica {i} slow") for i in range(5)],
                          alert("fp-x", title="Search index stale", service="search"))
    incidents = await incidents_of(rt, org)
    assert len(incidents) == 2 and len(result.incident_ids) == 2
    checkout = next(i for i in incidents if i.service == "checkout")
    assert checkout.correlated_alert_count == 5
    assert [e.kind for e in await timeline_of(rt, checkout.id)] == ["created"] + ["alert_correlated"] * 4


async def test_resolved_incidents_take_no_new_alerts(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"))
    await ingest(rt, org, alert("fp-1", status="resolved"))
    await ingest(rt, org, alert("fp-2", title="Checkout pods restarting"))
    first, second = await incidents_of(rt, org)
    assert first.status == IncidentStatus.RESOLVED and second.status == IncidentStatus.INVESTIGATING
    assert second.correlated_alert_count == 1


async def test_an_acknowledged_incident_still_takes_alerts(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("fp-1"))
    [incident] = await incidents_of(rt, org)
    from server.domains.incidents.models import Incident

    async with rt.db.unit_of_work() as uow:
        (await uow.session.get(Incident, incident.id)).status = IncidentStatus.ACKNOWLEDGED
    await ingest(rt, org, alert("fp-2", title="Checkout pods restarting"))
    [incident] = await incidents_of(rt, org)
    assert incident.status == IncidentStatus.ACKNOWLEDGED and incident.correlated_alert_count == 2


async def test_organizations_never_share_incidents(rt, owner):
    account, org = owner
    from tests.server.jobs.support import make_org

    other = await make_org(rt, account, "Other org")
    await ingest(rt, org, alert("fp-1"))
    await ingest(rt, other, alert("fp-1"))
    mine, theirs = await incidents_of(rt, org), await incidents_of(rt, other)
    assert len(mine) == len(theirs) == 1 and mine[0].id != theirs[0].id
    assert (await alerts_of(rt, other))[0].occurrence_count == 1
