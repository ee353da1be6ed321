"""`shadowEventAccept` is one transaction: the plan event and the shadow event's ACCEPTED status
are written together with their audit entries, and planChanged goes out after commit. A failing
accept (a taken name, another project's or tenant's event type, a bad name, a concurrent accept
that won) leaves the plan, the shadow event and the audit log as they were and announces nothing.
Also: a dismissed shadow event may still be accepted, an accepted one cannot be dismissed, and
dismissing twice records one change. (Listing, accepting with and without type and name, roles
and tenant isolation of the list: test_reconciliation.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from websockets.asyncio.client import connect

from server.domains.warehouse.models import ShadowEvent
from tests.graph.plan.catalog import recv, subscribe_plan
from tests.graph.plan.event_ops import UPDATE as EVENT_UPDATE
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.metric_rows import MetricWorld, metric_world
from tests.graph.warehouse.test_reconciliation import ACCEPT, DISMISS, SHADOWS, actions, user_errors
from tests.support.plan_rows import gid

EVENTS = """query($p: ID!) { events(projectId: $p, first: 100, orderBy: [NAME_ASC]) {
  nodes { id name status updatedAt eventType { name } } } }"""


async def snapshot(world: MetricWorld) -> tuple[list[dict], dict]:
    """What an accept may change in a project: its plan events and its shadow events."""
    events = (await world.org(EVENTS, {"p": world.project}))["events"]["nodes"]
    return events, (await world.org(SHADOWS, {"p": world.project}))["shadowEvents"]


async def accept(org: Org, shadow: uuid.UUID | str, **input_: str) -> dict:
    sid = shadow if isinstance(shadow, str) else gid("ShadowEvent", shadow)
    return (await org(ACCEPT, {"input": {"id": sid, **input_}}))["shadowEventAccept"]


async def next_plan_changes(ws, org: Org, marker_event: str) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """The planChanged messages heard before a marker change made now (so "none" is provable)."""
    data = await org(EVENT_UPDATE, {"input": {"id": marker_event, "description": f"marker {uuid.uuid4().hex}"}})
    assert data["eventUpdate"]["userErrors"] == [], data
    seen = []
    while True:
        m = (await recv(ws))["payload"]["data"]["planChanged"]
        if (m["entityId"], m["action"]) == (marker_event, "UPDATED"):
            return seen
        seen.append((m["entityType"], m["entityId"], m["action"]))


async def test_a_failing_accept_changes_nothing_and_announces_nothing(org, gql, live):  # noqa: ANN001
    world = await metric_world(org)
    sibling = await metric_world(org)                      # another project of the same organization
    stranger = await metric_world(await Org.create(gql, "Other Co"))
    taken = await world.shadow("page.view", event_type_name="page")  # page.view is in the plan already
    fresh = await world.shadow("page.fresh", event_type_name="page")
    cases = [
        (taken, {}, ("CONFLICT", ["input", "name"])),
        (fresh, {"name": "  PAGE.Leave "}, ("CONFLICT", ["input", "name"])),  # trimmed, case ignored
        (fresh, {"eventTypeId": sibling.event_types["page"]}, ("NOT_FOUND", ["input", "eventTypeId"])),
        (fresh, {"eventTypeId": stranger.event_types["page"]}, ("NOT_FOUND", ["input", "eventTypeId"])),
        (fresh, {"name": "   "}, ("VALIDATION", ["input", "name"])),
        (fresh, {"name": "x" * 501}, ("VALIDATION", ["input", "name"])),
        (gid("ShadowEvent", uuid.uuid4()), {}, ("NOT_FOUND", ["input", "id"])),
    ]
    before, audit_before = await snapshot(world), await actions(org)
    others = (await snapshot(sibling), await snapshot(stranger))
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, world.project)
        for shadow, input_, error in cases:
            r = await accept(org, shadow, **input_)
            assert user_errors(r) == [error] and r["event"] is None and r["shadowEvent"] is None, (input_, r)
        (events, shadows), audit = await snapshot(world), await actions(org)
        assert await next_plan_changes(ws, org, world.events["track.click"]) == []
    assert events == before[0]
    assert shadows == before[1] and shadows["newCount"] == 2
    assert {i["status"] for i in shadows["items"]} == {"NEW"} and {i["acceptedEvent"] for i in shadows["items"]} == {None}
    assert audit == audit_before
    assert (await snapshot(sibling), await snapshot(stranger)) == others


async def _waiting(engine: AsyncEngine, count: int, timeout: float = 15.0) -> None:
    """Wait until `count` backends of the test database wait for a lock (the first accept waits
    for the test's lock on the shadow event, the second queues behind it)."""
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:  # a fresh transaction: pg_stat_activity is a per-transaction snapshot
            n = (await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND cardinality(pg_blocking_pids(pid)) > 0"))).scalar_one()
        if n >= count:
            return
        assert time.monotonic() < deadline, f"{n} of {count} accepts reached the shadow event's lock"
        await asyncio.sleep(0.05)


async def test_concurrent_accepts_one_wins_and_the_loser_leaves_nothing(org, live):  # noqa: ANN001
    """Both accepts pass validation while the shadow event is locked elsewhere, then race for it:
    the winner's plan event is the only one; the loser's event, history, audit entry and
    planChanged message never existed."""
    world = await metric_world(org)
    sid = await world.shadow("page.race", event_type_name="page")
    before = Counter(await actions(org))
    engine = create_async_engine(live.database_url, poolclass=NullPool)
    try:
        async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
            await subscribe_plan(live, ws, org.token, world.project)
            async with engine.connect() as holder:
                await holder.execute(select(ShadowEvent.id).where(ShadowEvent.id == sid).with_for_update())
                tasks = [asyncio.create_task(accept(org, sid, name=name)) for name in ("page.race_a", "page.race_b")]
                await _waiting(engine, 2)
                await holder.rollback()
            results = await asyncio.gather(*tasks)
            changes = await next_plan_changes(ws, org, world.events["track.click"])
    finally:
        await engine.dispose()
    won = [r for r in results if r["userErrors"] == []]
    lost = [r for r in results if r["userErrors"]]
    assert len(won) == 1 and [user_errors(r) for r in lost] == [[("CONFLICT", ["input", "id"])]], results
    assert lost[0]["event"] is None and lost[0]["shadowEvent"] is None
    event = won[0]["event"]
    names = [e["name"] for e in (await org(EVENTS, {"p": world.project}))["events"]["nodes"]]
    assert [n for n in names if n.startswith("page.race")] == [event["name"]]
    item = (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["items"][0]
    assert item["status"] == "ACCEPTED" and item["acceptedEvent"]["id"] == event["id"]
    assert Counter(await actions(org)) - before == Counter({"event.create": 1, "shadow_event.accept": 1,
                                                            "event.update": 1})  # + the marker
    assert changes == [("EVENT", event["id"], "CREATED")]


async def test_dismiss_twice_accept_a_dismissed_one_and_no_dismissing_an_accepted_one(org, live):  # noqa: ANN001
    world = await metric_world(org)
    sid = gid("ShadowEvent", await world.shadow("page.signup", event_type_name="page"))
    for _ in range(2):
        r = (await org(DISMISS, {"input": {"id": sid}}))["shadowEventDismiss"]
        assert r["userErrors"] == [] and r["shadowEvent"]["status"] == "DISMISSED"
    assert Counter(await actions(org))["shadow_event.dismiss"] == 1
    assert (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["newCount"] == 0
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, world.project)
        r = await accept(org, sid)
        assert r["userErrors"] == [] and r["shadowEvent"]["status"] == "ACCEPTED"
        event = r["event"]
        assert (event["name"], event["status"], event["eventType"]["name"]) == ("page.signup", "LIVE", "page")
        assert await next_plan_changes(ws, org, world.events["track.click"]) == [("EVENT", event["id"], "CREATED")]
    r = (await org(DISMISS, {"input": {"id": sid}}))["shadowEventDismiss"]
    assert user_errors(r) == [("CONFLICT", ["input", "id"])]
    listed = (await org(SHADOWS, {"p": world.project, "status": "ACCEPTED"}))["shadowEvents"]
    assert listed["total"] == 1 and listed["items"][0]["acceptedEvent"]["id"] == event["id"]
