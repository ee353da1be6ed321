"""Learning which services alert together, and using it."""

from __future__ import annotations

from server.domains.incidents.correlation import CooccurrenceModel, CorrelationSettings
from tests.server.incidents.pipeline.support import alert, alerts_of, incidents_of, ingest, settings_of


async def _outage(rt, org, n: int) -> None:  # noqa: ANN001
    """One incident where db-primary and checkout alerted (similar titles join them), then resolved."""
    await ingest(rt, org, alert(f"db-{n}", title="Primary replication lag", service="db-primary"),
                 alert(f"co-{n}", title="primary replication lag", service="checkout"))
    await ingest(rt, org, alert(f"db-{n}", title="Primary replication lag", service="db-primary", status="resolved"),
                 alert(f"co-{n}", title="primary replication lag", service="checkout", status="resolved"))


async def test_resolved_incidents_are_counted_in_the_model(rt, owner):
    _, org = owner
    assert await settings_of(rt, org) is None  # created lazily
    await _outage(rt, org, 1)
    row = await settings_of(rt, org)
    model = CooccurrenceModel.from_dict(row.cooccurrence_model)
    assert model.incidents == 1 and model.support("checkout", "db-primary") == 1
    engine = CorrelationSettings()
    assert row.cooccurrence_threshold == engine.cooccurrence_threshold and row.auto_resolve is True  # defaults
    await _outage(rt, org, 2)
    model = CooccurrenceModel.from_dict((await settings_of(rt, org)).cooccurrence_model)
    assert model.incidents == 2 and model.support("checkout", "db-primary") == 2


async def test_services_that_alerted_together_before_are_correlated(rt, owner):
    _, org = owner
    for n in range(3):  # min support 3
        await _outage(rt, org, n)
    before = len(await incidents_of(rt, org))
    await ingest(rt, org, alert("db-now", title="Primary disk full", service="db-primary"))
    await ingest(rt, org, alert("co-now", title="Checkout 5xx rate", service="checkout"))
    incidents = await incidents_of(rt, org)
    assert len(incidents) == before + 1
    joined = (await alerts_of(rt, org))[-1]
    assert joined.correlation_reason == "cooccurrence"
    assert joined.correlation_score > CorrelationSettings().cooccurrence_threshold
    assert joined.incident_id == incidents[-1].id


async def test_without_history_such_alerts_stay_apart(rt, owner):
    _, org = owner
    await ingest(rt, org, alert("db-now", title="Primary disk full", service="db-primary"))
    await ingest(rt, org, alert("co-now", title="Checkout 5xx rate", service="checkout"))
    assert len(await incidents_of(rt, org)) == 2
