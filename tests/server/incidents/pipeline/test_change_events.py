"""Change events (deployments): one row per build, updated by its later phases."""

from __future__ import annotations

from tests.server.incidents.pipeline.support import change, changes_of, incidents_of, ingest, minutes, now


async def test_later_phases_update_the_same_row(rt, owner):
    _, org = owner
    t0 = now() - minutes(10)
    first = await ingest(rt, org, changes=(change("build-7", result="started", phase="STARTED", occurred_at=t0,
                                                  version=None),))
    second = await ingest(rt, org, changes=(change("build-7", result="success", phase="COMPLETED",
                                                   occurred_at=t0 + minutes(4), version="2.14.0", commit="abc123"),))
    [row] = await changes_of(rt, org)
    assert first.change_event_ids == second.change_event_ids == [row.id]
    assert (row.result, row.phase, row.occurred_at, row.version, row.commit) == (
        "success", "COMPLETED", t0 + minutes(4), "2.14.0", "abc123")
    assert await incidents_of(rt, org) == []  # a deployment alone opens nothing


async def test_an_older_phase_arriving_late_does_not_roll_back(rt, owner):
    _, org = owner
    t0 = now() - minutes(10)
    await ingest(rt, org, changes=(change("build-8", result="failure", phase="COMPLETED", occurred_at=t0 + minutes(3),
                                          version=None),))
    await ingest(rt, org, changes=(change("build-8", result="started", phase="STARTED", occurred_at=t0,
                                          version="3.0.0"),))
    [row] = await changes_of(rt, org)
    assert (row.result, row.phase, row.occurred_at) == ("failure", "COMPLETED", t0 + minutes(3))
    assert row.version == "3.0.0"  # a field it did not know yet is filled in


async def test_several_builds_in_one_delivery_and_repeats_within_it(rt, owner):
    _, org = owner
    result = await ingest(rt, org, changes=(change("b-1", result="started", phase="STARTED"), change("b-2"),
                                            change("b-1", result="success", phase="COMPLETED")))
    rows = {r.fingerprint: r for r in await changes_of(rt, org)}
    assert set(rows) == {"b-1", "b-2"} and rows["b-1"].result == "success"
    assert result.change_event_ids == [rows["b-1"].id, rows["b-2"].id]


async def test_builds_of_different_organizations_are_separate(rt, owner):
    account, org = owner
    from tests.server.jobs.support import make_org

    other = await make_org(rt, account, "Other")
    await ingest(rt, org, changes=(change("b-1"),))
    await ingest(rt, other, changes=(change("b-1", result="failure"),))
    assert [r.result for r in await changes_of(rt, org)] == ["success"]
    assert [r.result for r in await changes_of(rt, other)] == ["failure"]
