"""Bulk create, bulk update, bulk delete (all or nothing, failing items named by index, a constant
number of SQL statements), reorder (the full list) and move (within the visible list)."""

from __future__ import annotations

import uuid

from websockets.asyncio.client import connect

from server.domains.plan import models as m
from tests.graph.accounts.helpers import add_member
from tests.graph.plan.catalog import audit_actions, recv, subscribe_plan
from tests.graph.plan.event_ops import (
    BULK_DELETE,
    BULK_UPDATE,
    EVENTS,
    HISTORY,
    MOVE,
    REORDER,
    Plan,
    codes,
    set_columns,
)
from tests.graph.plan.helpers import Org
from tests.support.plan_rows import gid, raw
from tests.support.sql import count_statements

SUNSET = "2031-06-30T00:00:00+00:00"


def _items(plan: Plan, n: int, prefix: str = "Bulk") -> list[dict]:
    return [{"eventTypeId": plan.order if i % 2 else plan.page, "name": f"{prefix} {i}", "tags": ["bulk"],
             "status": "IN_REVIEW",
             "fieldValues": ([{"fieldId": plan.channel, "value": "app"}] if i % 2 else
                             [{"fieldId": plan.url, "value": f"https://x/{i}"}]),
             "metaValues": [{"metaFieldId": plan.tier, "value": "silver"}]} for i in range(n)]


async def _all(plan: Plan) -> list[dict]:
    return (await plan.org(EVENTS, {"project": plan.project, "first": 500}))["events"]["nodes"]


async def test_bulk_create_adds_every_event_in_order(org):
    plan = await Plan.create(org)
    await plan.event("Existing")
    data = await plan.bulk(_items(plan, 4))
    assert data["userErrors"] == []
    assert [(e["name"], e["order"]) for e in data["events"]] == [("Bulk 0", 1), ("Bulk 1", 2), ("Bulk 2", 3),
                                                                  ("Bulk 3", 4)]
    assert [e["eventType"]["id"] for e in data["events"]] == [plan.page, plan.order, plan.page, plan.order]
    assert [e["name"] for e in await _all(plan)] == ["Existing", "Bulk 0", "Bulk 1", "Bulk 2", "Bulk 3"]
    history = (await org(HISTORY, {"id": data["events"][1]["id"]}))["event"]["history"]["nodes"]
    assert [h["action"] for h in history] == ["CREATED"]
    assert history[0]["changes"]["status"] == {"old": None, "new": "IN_REVIEW"}


async def test_bulk_create_is_all_or_nothing_and_names_each_failing_index(gql, org):
    plan = await Plan.create(org)
    await plan.event("Taken")
    other = await Plan.create(await Org.create(gql, "Other Co"))
    items = _items(plan, 6)
    items[1]["name"] = "TAKEN"  # an existing event of the type
    items[2]["fieldValues"] = [{"fieldId": plan.channel, "value": "tv"}]  # page has no channel field
    items[3]["fieldValues"] = [{"fieldId": plan.channel, "value": "tv"}]  # not an option
    items[4]["eventTypeId"] = other.order  # another tenant's type
    items[5]["name"] = "bulk 3"  # the same name as items[3] in this list
    data = await plan.bulk(items)
    assert data["events"] is None
    assert codes(data) == [
        ("CONFLICT", ["input", "events", "1", "name"]),
        ("VALIDATION", ["input", "events", "2", "fieldValues", "0", "fieldId"]),
        ("VALIDATION", ["input", "events", "3", "fieldValues", "0", "value"]),
        ("NOT_FOUND", ["input", "events", "4", "eventTypeId"]),
        ("CONFLICT", ["input", "events", "5", "name"]),
    ]
    assert all(e["message"].startswith(f"events[{e['field'][2]}]: ") for e in data["userErrors"])
    assert [e["name"] for e in await _all(plan)] == ["Taken"]  # nothing was created

    bad_id = _items(plan, 2)
    bad_id[1]["ownerId"] = plan.project  # not a User ID
    assert codes(await plan.bulk(bad_id)) == [("VALIDATION", ["input", "events", "1", "ownerId"])]
    assert codes(await plan.bulk([])) == [("VALIDATION", ["input", "events"])]
    assert codes(await plan.bulk(_items(plan, 1001))) == [("VALIDATION", ["input", "events"])]
    assert len(await _all(plan)) == 1


async def test_bulk_create_runs_the_same_statements_for_5_and_50_events(org):
    plan = await Plan.create(org)
    small_statements: list[str] = []
    small = await count_statements(lambda: plan.bulk(_items(plan, 5, "Small")), small_statements)
    large_statements: list[str] = []
    large = await count_statements(lambda: plan.bulk(_items(plan, 50, "Large")), large_statements)
    assert len(await _all(plan)) == 55
    assert small == large, (small_statements, large_statements)
    inserts = [s for s in large_statements if s.lstrip().startswith("INSERT INTO events ")]
    assert len(inserts) == 1  # one multi-row INSERT, no per-row round trips
    assert large <= 14, "\n".join(s[:80] for s in large_statements)


async def test_viewers_and_strangers_cannot_bulk_create(gql, org):
    plan = await Plan.create(org)
    viewer = await org.member("viewer")
    assert [c for c, _ in codes(await plan.bulk(_items(plan, 2), viewer))] == ["FORBIDDEN"]
    other = await Org.create(gql, "Other Co")
    assert codes(await plan.bulk(_items(plan, 2), other.token)) == [("NOT_FOUND", ["input", "projectId"])]
    assert await _all(plan) == []


async def test_bulk_update_sets_the_given_properties_on_all_or_none(gql, org):
    plan = await Plan.create(org)
    events = (await plan.bulk(_items(plan, 3)))["events"]
    ids = [e["id"] for e in events]
    _, editor, _ = await add_member(gql, org.token, org.org_id, "editor")

    async def bulk_update(**input_) -> dict:  # noqa: ANN003
        return (await org(BULK_UPDATE, {"input": {"projectId": plan.project, **input_}}))["eventsBulkUpdate"]

    data = await bulk_update(ids=ids, status="LIVE", reviewed=True, sunsetAt=SUNSET, ownerId=editor["id"])
    assert data["userErrors"] == []
    assert [(e["id"], e["status"], e["reviewed"], e["sunsetAt"], e["owner"]["id"]) for e in data["events"]] == [
        (i, "LIVE", True, SUNSET, editor["id"]) for i in ids]
    history = (await org(HISTORY, {"id": ids[0]}))["event"]["history"]["nodes"]
    assert history[0]["action"] == "UPDATED" and history[0]["changes"] == {
        "status": {"old": "IN_REVIEW", "new": "LIVE"}, "reviewed": {"old": False, "new": True},
        "sunsetAt": {"old": None, "new": SUNSET}, "ownerId": {"old": None, "new": editor["id"]}}

    data = await bulk_update(ids=ids[:2], ownerId=None, sunsetAt=None)  # null clears
    assert [(e["owner"], e["sunsetAt"], e["status"]) for e in data["events"]] == [(None, None, "LIVE")] * 2

    other = await Plan.create(org, "Other plan")
    foreign = await other.event("Elsewhere")
    stranger = (await Org.create(gql, "Stranger Co")).user["id"]
    for input_, expected in (
        ({"ids": [ids[0], foreign["id"], ids[1], gid("Event", uuid.uuid4())], "status": "ARCHIVED"},
         [("NOT_FOUND", ["input", "ids", "1"]), ("NOT_FOUND", ["input", "ids", "3"])]),
        ({"ids": [ids[0], plan.project], "status": "ARCHIVED"}, [("VALIDATION", ["input", "ids", "1"])]),
        ({"ids": [], "status": "ARCHIVED"}, [("VALIDATION", ["input", "ids"])]),
        ({"ids": ids}, [("VALIDATION", ["input"])]),
        ({"ids": ids, "status": None}, [("VALIDATION", ["input", "status"])]),
        ({"ids": ids, "reviewed": None}, [("VALIDATION", ["input", "reviewed"])]),
        ({"ids": ids, "ownerId": stranger}, [("NOT_FOUND", ["input", "ownerId"])]),
    ):
        assert codes(await bulk_update(**input_)) == expected, input_
    assert {e["status"] for e in (await org(BULK_UPDATE, {"input": {"projectId": plan.project, "ids": ids,
                                                                  "reviewed": True}}))["eventsBulkUpdate"]["events"]
            } == {"LIVE"}  # none of the refused calls changed anything
    viewer = await org.member("viewer")
    data = await org(BULK_UPDATE, {"input": {"projectId": plan.project, "ids": ids, "status": "DRAFT"}}, viewer)
    assert [c for c, _ in codes(data["eventsBulkUpdate"])] == ["FORBIDDEN"]


async def test_bulk_delete_is_all_or_nothing(live, gql, org):
    plan = await Plan.create(org)
    ids = [e["id"] for e in (await plan.bulk(_items(plan, 4)))["events"]]
    other = await Plan.create(await Org.create(gql, "Other Co"))
    foreign = await other.event("Theirs")

    async def bulk_delete(ids_: list[str], token: str | None = None) -> dict:
        return (await org(BULK_DELETE, {"input": {"projectId": plan.project, "ids": ids_}}, token))["eventsBulkDelete"]

    assert codes(await bulk_delete([ids[0], foreign["id"]])) == [("NOT_FOUND", ["input", "ids", "1"])]
    assert codes(await bulk_delete([])) == [("VALIDATION", ["input", "ids"])]
    viewer = await org.member("viewer")
    assert [c for c, _ in codes(await bulk_delete(ids, viewer))] == ["FORBIDDEN"]
    assert len(await _all(plan)) == 4
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, plan.project)
        data = await bulk_delete([ids[1], ids[3], ids[1]])
        assert data == {"deletedEventIds": [ids[1], ids[3]], "userErrors": []}
        heard = {(await recv(ws))["payload"]["data"]["planChanged"]["entityId"] for _ in range(2)}
        assert heard == {ids[1], ids[3]}  # one planChanged per event (one null-ID message past 100)
    assert [e["id"] for e in await _all(plan)] == [ids[0], ids[2]]
    assert (await other.org(EVENTS, {"project": other.project}))["events"]["totalCount"] == 1  # theirs untouched
    entry = next(a for a in await audit_actions(org, plan.project) if a["action"] == "event.bulk_delete")
    assert entry["after"]["count"] == 2 and set(entry["after"]["ids"]) == {str(raw(i)) for i in (ids[1], ids[3])}


async def test_bulk_operations_are_audited_once(org):
    plan = await Plan.create(org)
    ids = [e["id"] for e in (await plan.bulk(_items(plan, 3)))["events"]]
    await org(BULK_UPDATE, {"input": {"projectId": plan.project, "ids": ids, "status": "LIVE"}})
    actions = [a for a in await audit_actions(org, plan.project) if a["targetType"] == "Event"]
    assert [a["action"] for a in actions] == ["event.bulk_update", "event.bulk_create"]
    assert actions[1]["after"]["count"] == 3 and len(actions[1]["after"]["ids"]) == 3
    assert actions[0]["after"]["count"] == 3 and actions[0]["after"]["set"] == {"status": "live"}


async def test_reorder_takes_the_full_list(gql, org):
    plan = await Plan.create(org)
    ids = [e["id"] for e in (await plan.bulk(_items(plan, 4)))["events"]]

    async def reorder(ids_: list[str], token: str | None = None) -> dict:
        return (await org(REORDER, {"input": {"projectId": plan.project, "ids": ids_}}, token))["eventsReorder"]

    data = await reorder([ids[2], ids[0], ids[1], ids[3]])
    assert data == {"project": {"id": plan.project}, "movedCount": 3, "userErrors": []}
    assert [(e["id"], e["order"]) for e in await _all(plan)] == [(ids[2], 0), (ids[0], 1), (ids[1], 2), (ids[3], 3)]
    history = (await org(HISTORY, {"id": ids[2]}))["event"]["history"]["nodes"]
    assert history[0]["action"] == "REORDERED" and history[0]["changes"] == {"order": {"old": 2, "new": 0}}
    assert [h["action"] for h in (await org(HISTORY, {"id": ids[3]}))["event"]["history"]["nodes"]] == ["CREATED"]

    foreign = await (await Plan.create(await Org.create(gql, "Other Co"))).event("Theirs")
    for ids_, expected in (
        ([ids[0], ids[1], ids[2]], [("VALIDATION", ["input", "ids"])]),  # one missing
        ([ids[0], ids[1], ids[2], ids[3], ids[1]], [("VALIDATION", ["input", "ids", "4"])]),  # twice
        ([ids[0], ids[1], ids[2], ids[3], foreign["id"]], [("NOT_FOUND", ["input", "ids", "4"])]),
        ([], [("VALIDATION", ["input", "ids"])]),
    ):
        assert codes(await reorder(ids_)) == expected, ids_
    viewer = await org.member("viewer")
    assert [c for c, _ in codes(await reorder(ids, viewer))] == ["FORBIDDEN"]
    assert [e["id"] for e in await _all(plan)] == [ids[2], ids[0], ids[1], ids[3]]  # unchanged by the refusals
    assert (await reorder([ids[2], ids[0], ids[1], ids[3]]))["movedCount"] == 0


async def test_move_swaps_with_the_neighbour_in_the_visible_list(org):
    plan = await Plan.create(org)
    a, b, c, d, e = [x["id"] for x in (await plan.bulk(
        [{"eventTypeId": plan.order if i in (0, 2, 4) else plan.page, "name": n} for i, n in enumerate("abcde")]))["events"]]

    async def move(event: str, direction: str, visible: list[str] | None = None) -> dict:
        input_ = {"id": event, "direction": direction}
        if visible is not None:
            input_["visibleEventIds"] = visible
        return (await org(MOVE, {"input": input_}))["eventMove"]

    async def order() -> list[str]:
        return [x["name"] for x in await _all(plan)]

    assert (await move(c, "UP"))["event"]["order"] == 1
    assert await order() == ["a", "c", "b", "d", "e"]
    assert (await move(c, "DOWN"))["userErrors"] == []
    assert await order() == ["a", "b", "c", "d", "e"]
    assert (await move(a, "UP"))["event"]["order"] == 0  # already at the top: nothing changes
    assert (await move(e, "DOWN"))["event"]["order"] == 4
    assert await order() == ["a", "b", "c", "d", "e"]
    # a filtered view shows a, c, e (the `order` type): e moves up past the hidden d, swapping with c
    assert (await move(e, "UP", [a, c, e]))["userErrors"] == []
    assert await order() == ["a", "b", "e", "d", "c"]
    history = (await org(HISTORY, {"id": e}))["event"]["history"]["nodes"]
    assert history[0]["action"] == "MOVED" and history[0]["changes"] == {"order": {"old": 4, "new": 2}}
    assert codes(await move(b, "UP", [a, c])) == [("VALIDATION", ["input", "visibleEventIds"])]
    assert codes(await move(b, "UP", ["garbage"])) == [("VALIDATION", ["input", "visibleEventIds", "0"])]

    # ties in `order` (e.g. written by an import) do not block a move
    for x in (a, b, e, d, c):
        await set_columns(org, m.Event, x, sort_order=7)
    ordered = await order()  # ties broken by ID
    second = [x["id"] for x in await _all(plan)][1]
    await move(second, "UP")
    after = await order()
    assert after == [ordered[1], ordered[0], *ordered[2:]]
    assert [x["order"] for x in await _all(plan)] == [0, 1, 2, 3, 4]


async def test_bulk_update_and_delete_run_the_same_statements_for_5_and_50_events(org):
    plan = await Plan.create(org)
    ids = [e["id"] for e in (await plan.bulk(_items(plan, 55)))["events"]]

    async def update(ids_: list[str]) -> None:
        data = await org(BULK_UPDATE, {"input": {"projectId": plan.project, "ids": ids_, "status": "LIVE",
                                                 "ownerId": org.user["id"]}})
        assert data["eventsBulkUpdate"]["userErrors"] == []

    async def delete(ids_: list[str]) -> None:
        data = await org(BULK_DELETE, {"input": {"projectId": plan.project, "ids": ids_}})
        assert data["eventsBulkDelete"]["userErrors"] == []

    small: list[str] = []
    large: list[str] = []
    assert await count_statements(lambda: update(ids[:5]), small) == await count_statements(
        lambda: update(ids[5:]), large), (small, large)
    assert len([s for s in large if s.lstrip().startswith("UPDATE events")]) == 1
    small, large = [], []
    assert await count_statements(lambda: delete(ids[:5]), small) == await count_statements(
        lambda: delete(ids[5:]), large), (small, large)
    assert len([s for s in large if s.lstrip().startswith("DELETE FROM events")]) == 1
    assert await _all(plan) == []
