"""`schemaDrifts` per event type (the seed lists drifts of one event type): the `eventTypeId`
filter, its NOT_FOUND for another project's or tenant's type, the `first` bounds, and the
values of a drift on a field the plan declares (declared type next to the observed one). Then
every `schemaDriftUpdate` action with its note, who decided and when, as each status filter sees
it, and refusals that leave the drift exactly as it was. (The first list and action checks:
test_reconciliation.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from server.db.base import utcnow
from server.domains.warehouse.models import DriftStatus, DriftType
from tests.graph.accounts.helpers import add_member
from tests.graph.plan.catalog import event_type, field
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.metric_rows import T0, H, MetricWorld, errors, iso, metric_world, query_raw
from tests.graph.warehouse.test_reconciliation import DRIFT_UPDATE, actions, user_errors
from tests.support.plan_rows import gid

DRIFTS = """query($p: ID!, $status: DriftStatus, $type: ID, $first: Int! = 100) {
  schemaDrifts(projectId: $p, status: $status, eventTypeId: $type, first: $first) {
    total items { id fieldName driftType observedType declaredType sampleValue status note snoozedUntil
                  resolvedAt resolvedBy { id } eventType { name } } } }"""


async def listed(world: MetricWorld, token: str | None = None, **variables) -> dict:  # noqa: ANN003
    return (await world.org(DRIFTS, {"p": world.project, **variables}, token))["schemaDrifts"]


async def drift_world(org: Org) -> tuple[MetricWorld, dict[str, str]]:
    """Drifts of a plan that declares page.price (NUMBER) and track.plan (STRING): price arrives
    as text, plan is missing, utm_source is new; newest detection last."""
    world = await metric_world(org)
    await field(org, world.event_types["page"], "price", "NUMBER")
    await field(org, world.event_types["track"], "plan", "STRING")
    ids = {
        "utm_source": await world.drift("page", "utm_source", observed_type="string", sample_value="newsletter",
                                        detected_at=T0),
        "price": await world.drift("page", "price", DriftType.TYPE_CHANGED, observed_type="string",
                                   declared_type="number", sample_value="12,50 EUR", detected_at=T0 + H),
        "plan": await world.drift("track", "plan", DriftType.MISSING_FIELD, declared_type="string",
                                  detected_at=T0 + 2 * H),
    }
    return world, {k: gid("SchemaDrift", v) for k, v in ids.items()}


async def test_drifts_per_event_type_first_and_declared_types(org, gql):
    world, ids = await drift_world(org)
    page = await listed(world, type=world.event_types["page"])
    assert page["total"] == 2
    assert [(i["fieldName"], i["driftType"], i["declaredType"], i["observedType"], i["sampleValue"],
             i["eventType"]["name"]) for i in page["items"]] == [
        ("price", "TYPE_CHANGED", "number", "string", "12,50 EUR", "page"),  # newest detection first
        ("utm_source", "NEW_FIELD", None, "string", "newsletter", "page")]
    track = await listed(world, type=world.event_types["track"])
    assert [(i["fieldName"], i["driftType"], i["declaredType"], i["observedType"], i["sampleValue"])
            for i in track["items"]] == [("plan", "MISSING_FIELD", "string", None, None)]
    # With a status: both filters apply.
    assert (await listed(world, type=world.event_types["track"], status="ACCEPTED"))["total"] == 0
    assert (await listed(world, type=world.event_types["page"], status="OPEN"))["total"] == 2

    # `first` bounds the items, not the total; 1..500.
    one = await listed(world, first=1)
    assert one["total"] == 3 and [i["fieldName"] for i in one["items"]] == ["plan"]
    for first in (0, 501):
        assert errors(await query_raw(org, DRIFTS, {"p": world.project, "first": first})) == [
            ("VALIDATION", ["first"])]

    # An event type of another project (same organization) or another tenant: NOT_FOUND, as for
    # `coverage`'s scan config; a global ID of another kind: VALIDATION.
    foreign_types = [(await event_type(org, (await org.project("Other"))["id"], "page"))["id"],
                     (await metric_world(await Org.create(gql, "Other Co"))).event_types["page"]]
    for type_id in foreign_types:
        assert errors(await query_raw(org, DRIFTS, {"p": world.project, "type": type_id})) == [
            ("NOT_FOUND", ["eventTypeId"])]
    assert errors(await query_raw(org, DRIFTS, {"p": world.project, "type": world.events["page.view"]})) == [
        ("VALIDATION", ["eventTypeId"])]


async def test_each_action_with_its_note_and_decider(org, gql):
    world, ids = await drift_world(org)
    editor, editor_user, _ = await add_member(org.gql, org.token, org.org_id, "editor")
    editor_id = editor_user["id"]
    price = ids["price"]

    async def update(token: str | None = None, **input_) -> dict:  # noqa: ANN003
        return (await org(DRIFT_UPDATE, {"input": {"id": price, **input_}}, token))["schemaDriftUpdate"]

    async def current() -> dict:
        return next(i for i in (await listed(world))["items"] if i["id"] == price)

    async def statuses() -> dict[str, list[str]]:
        """Field names each status filter lists."""
        return {s.name: [i["fieldName"] for i in (await listed(world, status=s.name))["items"]] for s in DriftStatus}

    before = await current()
    assert before["status"] == "OPEN" and before["resolvedBy"] is None and before["resolvedAt"] is None

    # Refused: a snooze ending in the past (or now), a viewer, another tenant. Nothing changes.
    past = utcnow() - timedelta(minutes=1)
    assert user_errors(await update(action="SNOOZE", snoozedUntil=iso(past), note="later")) == [
        ("VALIDATION", ["input", "snoozedUntil"])]
    viewer = await org.member("viewer")
    assert user_errors(await update(viewer, action="FALSE_POSITIVE", note="no")) == [("FORBIDDEN", None)]
    other = await Org.create(gql, "Other Co")
    r = (await other(DRIFT_UPDATE, {"input": {"id": price, "action": "ACCEPT"}}))["schemaDriftUpdate"]
    assert user_errors(r) == [("NOT_FOUND", ["input", "id"])]
    assert await current() == before

    # Each action by an editor, with a note.
    start = utcnow() - timedelta(seconds=5)
    until = utcnow() + timedelta(days=2)
    steps = [("ACCEPT", None, "price is text now"), ("SNOOZE", iso(until), "until the fix ships"),
             ("FALSE_POSITIVE", None, "a test row"), ("REOPEN", None, "it is back")]
    for action, snoozed, note in steps:
        r = await update(editor, action=action, note=note, **({"snoozedUntil": snoozed} if snoozed else {}))
        assert r["userErrors"] == [], r
        d = r["schemaDrift"]
        assert d["note"] == note and ((d["snoozedUntil"] is not None) == (action == "SNOOZE"))
        decided = action != "REOPEN"
        assert (d["resolvedBy"] or {}).get("id") == (editor_id if decided else None)
        assert (d["resolvedAt"] is not None) == decided
        if decided:
            assert start <= datetime.fromisoformat(d["resolvedAt"].replace("Z", "+00:00")) <= utcnow()
        assert await current() == {**before, **d}
        status = {"ACCEPT": "ACCEPTED", "SNOOZE": "SNOOZED", "FALSE_POSITIVE": "FALSE_POSITIVE",
                  "REOPEN": "OPEN"}[action]
        assert d["status"] == status
        expected = {s.name: [] for s in DriftStatus}
        expected["OPEN"] = ["plan", "utm_source"]
        expected[status] = (["plan", "price", "utm_source"] if status == "OPEN" else ["price"])
        assert await statuses() == expected, action
    assert d["snoozedUntil"] is None
    log = [a for a in await actions(org) if a.startswith("schema_drift.")]
    assert sorted(log) == sorted(f"schema_drift.{a.lower()}" for a, _, _ in steps)
