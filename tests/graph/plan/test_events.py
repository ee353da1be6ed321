"""Events through the real API: create, read, update (patch), delete, every validation rule, the
per-event history, roles, tenant isolation, audit entries and `planChanged`."""

from __future__ import annotations

from websockets.asyncio.client import connect

from tests.graph.accounts.helpers import add_member, api_key
from tests.graph.plan.catalog import audit_actions, recv, subscribe_plan
from tests.graph.plan.event_ops import (
    CREATE,
    DELETE,
    EVENT_QUERY,
    EVENTS,
    HISTORY,
    UPDATE,
    Plan,
    codes,
)
from tests.graph.plan.helpers import NODE, Org

SUNSET = "2030-01-31T12:00:00+00:00"


async def _count(plan: Plan) -> int:
    return (await plan.org(EVENTS, {"project": plan.project}))["events"]["totalCount"]


async def test_create_with_every_property_then_read_it_back(org):
    plan = await Plan.create(org)
    e = await plan.event(
        "  Order Completed  ", description="A paid order", status="IN_REVIEW", sunsetAt=SUNSET,
        ownerId=org.user["id"], reviewed=True, metricBreakdownColumns=["country", " platform ", "country"],
        tags=["checkout", " core ", "checkout"],
        fieldValues=[{"fieldId": plan.channel, "value": "web"}, {"fieldId": plan.order_id, "value": "${order_id}"}],
        metaValues=[{"metaFieldId": plan.tier, "value": "gold"}, {"metaFieldId": plan.team, "value": "Payments"}])
    assert e["name"] == "Order Completed"  # trimmed
    assert (e["description"], e["status"], e["sunsetAt"], e["reviewed"]) == ("A paid order", "IN_REVIEW", SUNSET, True)
    assert e["metricBreakdownColumns"] == ["country", "platform"] and e["tags"] == ["checkout", "core"]
    assert e["owner"]["id"] == org.user["id"]
    assert e["eventType"] == {"id": plan.order, "name": "order"} and e["project"] == {"id": plan.project}
    # field values come in the fields' order (order_id was defined before channel), with their definitions
    assert [(v["field"]["name"], v["value"]) for v in e["fields"]] == [("order_id", "${order_id}"), ("channel", "web")]
    assert [(v["metaField"]["name"], v["value"]) for v in e["metaValues"]] == [("team", "Payments"), ("tier", "gold")]
    assert (e["lastSeenAt"], e["driftCount"], e["order"], e["photos"]) == (None, 0, 0, [])

    assert (await org(EVENT_QUERY, {"id": e["id"]}))["event"] == e
    assert (await org(NODE, {"id": e["id"]}))["node"] == {"__typename": "Event", "id": e["id"]}


async def test_defaults_and_order_of_new_events(org):
    plan = await Plan.create(org)
    first = await plan.event("Signed Up")
    second = await plan.event("Page Viewed", plan.page)
    assert (first["status"], first["reviewed"], first["description"], first["owner"], first["sunsetAt"]) == (
        "DRAFT", False, "", None, None)
    assert (first["tags"], first["fields"], first["metaValues"], first["metricBreakdownColumns"]) == ([], [], [], [])
    assert (first["order"], second["order"]) == (0, 1)  # new events go after the project's last one


async def test_every_create_rule_is_a_user_error_and_creates_nothing(gql, org):
    plan = await Plan.create(org)
    await plan.event("Order Completed")
    other = await Plan.create(await Org.create(gql, "Other Co"))
    stranger = (await Org.create(gql, "Stranger Co")).user["id"]

    async def refused(expected: list, **input_) -> None:  # noqa: ANN003
        data = await org(CREATE, {"input": {"eventTypeId": plan.order, "name": "Fresh", **input_}})
        assert codes(data["eventCreate"]) == expected, (input_, data)
        assert data["eventCreate"]["event"] is None

    for name in ("", "   ", "x" * 501):
        await refused([("VALIDATION", ["input", "name"])], name=name)
    await refused([("CONFLICT", ["input", "name"])], name="order COMPLETED")  # unique in the type ignoring case
    await refused([("NOT_FOUND", ["input", "eventTypeId"])], eventTypeId=other.order)  # another tenant's type
    await refused([("VALIDATION", ["input", "eventTypeId"])], eventTypeId=plan.channel)  # not an EventType ID
    await refused([("VALIDATION", ["input", "fieldValues", "0", "fieldId"])],
                  fieldValues=[{"fieldId": plan.url, "value": "https://x"}])  # a field of another type
    await refused([("VALIDATION", ["input", "fieldValues", "0", "fieldId"])],
                  fieldValues=[{"fieldId": other.order_id, "value": "1"}])  # another tenant's field
    await refused([("VALIDATION", ["input", "fieldValues", "1", "fieldId"])],
                  fieldValues=[{"fieldId": plan.order_id, "value": "1"}, {"fieldId": plan.order_id, "value": "2"}])
    await refused([("VALIDATION", ["input", "fieldValues", "0", "value"])],
                  fieldValues=[{"fieldId": plan.channel, "value": "tv"}])  # not an enum option
    await refused([("VALIDATION", ["input", "metaValues", "0", "metaFieldId"])],
                  metaValues=[{"metaFieldId": other.team, "value": "x"}])
    await refused([("VALIDATION", ["input", "metaValues", "0", "value"])],
                  metaValues=[{"metaFieldId": plan.tier, "value": "bronze"}])
    await refused([("VALIDATION", ["input", "tags", "1"])], tags=["ok", "  "])
    await refused([("VALIDATION", ["input", "metricBreakdownColumns", "0"])], metricBreakdownColumns=[""])
    await refused([("NOT_FOUND", ["input", "ownerId"])], ownerId=stranger)  # not a member of the organization
    # several mistakes at once: each one named
    await refused([("VALIDATION", ["input", "name"]), ("VALIDATION", ["input", "tags", "0"]),
                   ("VALIDATION", ["input", "fieldValues", "0", "value"])],
                  name="", tags=[""], fieldValues=[{"fieldId": plan.channel, "value": "tv"}])
    # GraphQL itself refuses a status outside the enum
    r = await org.gql.raw(CREATE, {"input": {"eventTypeId": plan.order, "name": "x", "status": "done"}}, token=org.token)
    assert r.json()["errors"] and r.json().get("data") is None
    assert await _count(plan) == 1

    # the limits themselves are accepted; a name may repeat in another type; enum values may be references
    await plan.event("n" * 500)
    await plan.event("Order Completed", plan.page)
    await plan.event("Ref", fieldValues=[{"fieldId": plan.channel, "value": "${channel}"}],
                     metaValues=[{"metaFieldId": plan.tier, "value": "silver"}])
    assert await _count(plan) == 4


async def test_update_is_a_patch_with_the_create_rules(org):
    plan = await Plan.create(org)
    await plan.event("Taken")
    e = await plan.event("Checkout Started", description="d", tags=["a"], ownerId=org.user["id"], sunsetAt=SUNSET,
                         fieldValues=[{"fieldId": plan.channel, "value": "web"}])

    async def update(**input_) -> dict:  # noqa: ANN003
        return (await org(UPDATE, {"input": {"id": e["id"], **input_}}))["eventUpdate"]

    data = await update(status="LIVE", tags=["b", "c"])
    assert data["userErrors"] == []
    got = data["event"]
    assert (got["status"], got["tags"], got["description"], got["owner"]["id"]) == ("LIVE", ["b", "c"], "d", org.user["id"])
    assert got["updatedAt"] > e["updatedAt"]

    got = (await update(description=None, ownerId=None, sunsetAt=None, tags=None,
                        fieldValues=[{"fieldId": plan.order_id, "value": "42"}]))["event"]
    assert (got["description"], got["owner"], got["sunsetAt"], got["tags"]) == ("", None, None, [])
    assert [(v["field"]["name"], v["value"]) for v in got["fields"]] == [("order_id", "42")]

    for key in ("name", "status", "reviewed"):
        assert codes(await update(**{key: None})) == [("VALIDATION", ["input", key])], key
    assert codes(await update(name="taken")) == [("CONFLICT", ["input", "name"])]
    assert codes(await update(name="x" * 501)) == [("VALIDATION", ["input", "name"])]
    assert codes(await update(fieldValues=[{"fieldId": plan.url, "value": "u"}])) == [
        ("VALIDATION", ["input", "fieldValues", "0", "fieldId"])]
    assert codes(await update(metaValues=[{"metaFieldId": plan.tier, "value": "x"}])) == [
        ("VALIDATION", ["input", "metaValues", "0", "value"])]
    assert codes(await update(ownerId=e["eventType"]["id"])) == [("VALIDATION", ["input", "ownerId"])]
    assert codes(await update(id="nope")) == [("VALIDATION", ["input", "id"])]
    after = (await org(EVENT_QUERY, {"id": e["id"]}))["event"]
    assert (after["name"], after["status"]) == ("Checkout Started", "LIVE")  # refused patches changed nothing

    renamed = (await update(name="checkout STARTED"))["event"]  # its own name in another case
    assert renamed["name"] == "checkout STARTED"


async def test_history_records_who_changed_what_newest_first(org):
    plan = await Plan.create(org)
    e = await plan.event("Cart Viewed", tags=["cart"])
    await org(UPDATE, {"input": {"id": e["id"], "status": "LIVE", "ownerId": org.user["id"]}})
    await org(UPDATE, {"input": {"id": e["id"], "status": "LIVE"}})  # no change: no entry
    await org(UPDATE, {"input": {"id": e["id"], "fieldValues": [{"fieldId": plan.channel, "value": "app"}]}})
    history = (await org(HISTORY, {"id": e["id"]}))["event"]["history"]
    assert history["totalCount"] == 3
    latest, status_change, created = history["nodes"]
    assert [h["action"] for h in history["nodes"]] == ["UPDATED", "UPDATED", "CREATED"]
    assert latest["changes"] == {"fieldValues": {"old": [], "new": [{"fieldId": plan.channel, "value": "app"}]}}
    assert status_change["changes"] == {"status": {"old": "DRAFT", "new": "LIVE"},
                                        "ownerId": {"old": None, "new": org.user["id"]}}
    assert created["changes"]["name"] == {"old": None, "new": "Cart Viewed"}
    assert created["changes"]["tags"] == {"old": None, "new": ["cart"]}
    assert all(h["actor"]["id"] == org.user["id"] and h["actorEmail"] == org.user["email"] for h in history["nodes"])
    assert latest["changedAt"] >= status_change["changedAt"] >= created["changedAt"]

    page = (await org(HISTORY, {"id": e["id"], "first": 2}))["event"]["history"]
    rest = (await org(HISTORY, {"id": e["id"], "first": 2, "after": page["pageInfo"]["endCursor"]}))["event"]["history"]
    assert page["pageInfo"]["hasNextPage"] and not rest["pageInfo"]["hasNextPage"]
    assert page["nodes"] + rest["nodes"] == history["nodes"]


async def test_delete_takes_the_event_and_its_history(org):
    plan = await Plan.create(org)
    e = await plan.event("Gone Soon")
    data = await org(DELETE, {"input": {"id": e["id"]}})
    assert data["eventDelete"] == {"deletedEventId": e["id"], "userErrors": []}
    assert (await org(EVENT_QUERY, {"id": e["id"]}))["event"] is None
    again = await org(DELETE, {"input": {"id": e["id"]}})
    assert codes(again["eventDelete"]) == [("NOT_FOUND", ["input", "id"])]
    assert await _count(plan) == 0


async def test_viewers_read_but_cannot_change(gql, org):
    plan = await Plan.create(org)
    e = await plan.event("Read Only")
    viewer = await org.member("viewer")
    assert (await org(EVENT_QUERY, {"id": e["id"]}, viewer))["event"]["name"] == "Read Only"
    assert (await org(EVENTS, {"project": plan.project}, viewer))["events"]["totalCount"] == 1
    data = await org(CREATE, {"input": {"eventTypeId": plan.order, "name": "Nope"}}, viewer)
    assert [c for c, _ in codes(data["eventCreate"])] == ["FORBIDDEN"]
    data = await org(UPDATE, {"input": {"id": e["id"], "name": "Nope"}}, viewer)
    assert [c for c, _ in codes(data["eventUpdate"])] == ["FORBIDDEN"]
    data = await org(DELETE, {"input": {"id": e["id"]}}, viewer)
    assert [c for c, _ in codes(data["eventDelete"])] == ["FORBIDDEN"]
    read_key, _ = await api_key(gql, org.token)  # read scope by default
    data = await org(UPDATE, {"input": {"id": e["id"], "name": "Nope"}}, read_key)
    assert [c for c, _ in codes(data["eventUpdate"])] == ["FORBIDDEN"]

    editor_token, editor, _ = await add_member(gql, org.token, org.org_id, "editor")
    changed = await org(UPDATE, {"input": {"id": e["id"], "ownerId": editor["id"]}}, editor_token)
    assert changed["eventUpdate"]["event"]["owner"]["id"] == editor["id"]  # editors change; members may own
    assert (await org(EVENT_QUERY, {"id": e["id"]}))["event"]["name"] == "Read Only"


async def test_another_organizations_events_look_missing(gql, org):
    plan = await Plan.create(org)
    e = await plan.event("Private")
    other = await Org.create(gql, "Other Co")
    assert (await other(EVENT_QUERY, {"id": e["id"]}))["event"] is None
    assert (await other(NODE, {"id": e["id"]}))["node"] is None
    data = await other(UPDATE, {"input": {"id": e["id"], "name": "Mine"}})
    assert codes(data["eventUpdate"]) == [("NOT_FOUND", ["input", "id"])]
    data = await other(DELETE, {"input": {"id": e["id"]}})
    assert codes(data["eventDelete"]) == [("NOT_FOUND", ["input", "id"])]
    data = await other(CREATE, {"input": {"eventTypeId": plan.order, "name": "Planted"}})
    assert codes(data["eventCreate"]) == [("NOT_FOUND", ["input", "eventTypeId"])]
    r = await other.gql.raw(EVENTS, {"project": plan.project}, token=other.token)
    assert r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND" and r.json()["data"] is None
    # a key bound to another project of the same organization does not see it either
    second = await org.project("Second plan")
    bound, _ = await api_key(gql, org.token, organizationId=org.org_id, projectId=second["id"])
    assert (await org(EVENT_QUERY, {"id": e["id"]}, bound))["event"] is None
    assert (await org(EVENT_QUERY, {"id": e["id"]}))["event"]["name"] == "Private"


async def test_changes_are_audited_and_announced(live, org):
    plan = await Plan.create(org)
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:
        await subscribe_plan(live, ws, org.token, plan.project)
        e = await plan.event("Announced")
        msg = await recv(ws)
        assert msg["payload"]["data"]["planChanged"] == {"entityType": "EVENT", "entityId": e["id"],
                                                          "action": "CREATED", "projectId": plan.project}
        await org(UPDATE, {"input": {"id": e["id"], "status": "LIVE"}})
        assert (await recv(ws))["payload"]["data"]["planChanged"]["action"] == "UPDATED"
        await org(DELETE, {"input": {"id": e["id"]}})
        assert (await recv(ws))["payload"]["data"]["planChanged"] == {
            "entityType": "EVENT", "entityId": e["id"], "action": "DELETED", "projectId": plan.project}
    entries = [a for a in await audit_actions(org, plan.project) if a["targetType"] == "Event"]
    assert [a["action"] for a in entries] == ["event.delete", "event.update", "event.create"]
    assert entries[1]["before"] == {"status": "draft"} and entries[1]["after"] == {"status": "live"}
    assert entries[0]["before"]["name"] == "Announced"
