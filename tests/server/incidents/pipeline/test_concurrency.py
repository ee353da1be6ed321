"""Concurrent deliveries of one organization are correlated one after the other (advisory lock):
they never open two incidents, or two open alerts, for the same thing."""

from __future__ import annotations

import asyncio

from server.domains.incidents.ingest import apply_normalized
from server.domains.incidents.normalizers.types import Normalized
from tests.server.incidents.pipeline.support import alert, alerts_of, incidents_of


async def _deliver(rt, org, alerts, hold: float):  # noqa: ANN001, ANN202
    """One delivery whose transaction stays open `hold` seconds after ingesting (as if the shim
    still had work to do), so the other delivery runs while it is uncommitted."""
    async with rt.db.unit_of_work() as uow:
        result = await apply_normalized(uow, rt, organization_id=org, config_id=None, delivery_id=None,
                                        normalized=Normalized(alerts=alerts))
        await asyncio.sleep(hold)
    return result


async def test_two_concurrent_deliveries_of_one_fingerprint_make_one_alert_and_one_incident(rt, owner):
    _, org = owner
    first, second = await asyncio.gather(_deliver(rt, org, [alert("fp-1")], 0.3),
                                         _deliver(rt, org, [alert("fp-1")], 0.0))
    [a] = await alerts_of(rt, org)
    [incident] = await incidents_of(rt, org)
    assert a.occurrence_count == 2 and a.incident_id == incident.id
    assert first.alert_ids == second.alert_ids == [a.id]


async def test_two_concurrent_deliveries_of_one_service_share_the_incident(rt, owner):
    _, org = owner
    await asyncio.gather(_deliver(rt, org, [alert("fp-a", title="Checkout latency high")], 0.3),
                         _deliver(rt, org, [alert("fp-b", title="Checkout pods restarting")], 0.0))
    [incident] = await incidents_of(rt, org)
    assert incident.correlated_alert_count == 2
    assert {a.incident_id for a in await alerts_of(rt, org)} == {incident.id}


async def test_many_concurrent_deliveries_stay_consistent(rt, owner):
    _, org = owner
    deliveries = [[alert(f"fp-{i % 4}", title=f"Checkout replica {i % 4} slow")] for i in range(24)]
    await asyncio.gather(*(_deliver(rt, org, d, 0.01) for d in deliveries))
    alerts = await alerts_of(rt, org)
    [incident] = await incidents_of(rt, org)
    assert sorted(a.fingerprint for a in alerts) == ["fp-0", "fp-1", "fp-2", "fp-3"]
    assert sum(a.occurrence_count for a in alerts) == 24
    assert incident.correlated_alert_count == 4
