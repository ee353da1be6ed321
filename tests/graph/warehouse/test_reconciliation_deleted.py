"""Reconciliation after events leave the plan. A shadow event accepted into a plan event that was
deleted since names a plan event no more (ON DELETE SET NULL): its name is missing from the plan
again, so it may be accepted anew or dismissed (while its plan event exists: CONFLICT). Dead
events list only events still in the plan, and archiving a deleted one is NOT_FOUND on its index
of `eventIds` (duplicates included), all or none. (Coverage: test_coverage.py.)"""

from __future__ import annotations

from tests.graph.warehouse.metric_rows import metric_world
from tests.graph.warehouse.test_audit_metrics import delete_event
from tests.graph.warehouse.test_reconciliation import ACCEPT, ARCHIVE, DEAD, DISMISS, SHADOWS, actions, user_errors
from tests.support.plan_rows import gid


async def test_a_shadow_event_whose_plan_event_was_deleted_can_be_accepted_or_dismissed_again(org):
    world = await metric_world(org)
    again = gid("ShadowEvent", await world.shadow("page.signup", event_type_name="page"))
    dropped = gid("ShadowEvent", await world.shadow("page.promo", event_type_name="page"))
    first = {}
    for sid in (again, dropped):
        r = (await org(ACCEPT, {"input": {"id": sid}}))["shadowEventAccept"]
        assert r["userErrors"] == [], r
        first[sid] = r["event"]["id"]
        # While its plan event exists: accepted, neither again nor dismissed.
        assert user_errors((await org(ACCEPT, {"input": {"id": sid}}))["shadowEventAccept"]) == [
            ("CONFLICT", ["input", "id"])]
        assert user_errors((await org(DISMISS, {"input": {"id": sid}}))["shadowEventDismiss"]) == [
            ("CONFLICT", ["input", "id"])]
        await delete_event(org, first[sid])
    items = {i["id"]: i for i in (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["items"]}
    assert [(items[s]["status"], items[s]["acceptedEvent"]) for s in (again, dropped)] == [("ACCEPTED", None)] * 2

    r = (await org(ACCEPT, {"input": {"id": again}}))["shadowEventAccept"]
    assert r["userErrors"] == [] and r["event"]["name"] == "page.signup" and r["event"]["id"] != first[again]
    assert r["shadowEvent"]["status"] == "ACCEPTED" and r["shadowEvent"]["acceptedEvent"]["id"] == r["event"]["id"]
    r = (await org(DISMISS, {"input": {"id": dropped}}))["shadowEventDismiss"]
    assert r["userErrors"] == [] and r["shadowEvent"]["status"] == "DISMISSED"
    log = await actions(org)
    assert log.count("shadow_event.accept") == 3 and log.count("shadow_event.dismiss") == 1


async def test_dead_events_and_their_archive_after_a_deletion(org):
    world = await metric_world(org, events={"a.never": ("page", "LIVE", []), "a.gone": ("page", "IMPLEMENTED", []),
                                            "a.other": ("track", "LIVE", [])})
    await delete_event(org, world.events["a.gone"])
    d = (await org(DEAD, {"p": world.project}))["deadEvents"]
    assert d["total"] == 2 and {i["name"] for i in d["items"]} == {"a.never", "a.other"}  # never seen: by id

    keep = world.events["a.never"]
    r = (await org(ARCHIVE, {"input": {"projectId": world.project,
                                       "eventIds": [keep, keep, world.events["a.gone"]]}}))["deadEventsArchive"]
    assert user_errors(r) == [("NOT_FOUND", ["input", "eventIds", "2"])] and r["archivedCount"] == 0
    assert (await org(DEAD, {"p": world.project}))["deadEvents"]["total"] == 2  # nothing archived
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": [keep, keep]}}))["deadEventsArchive"]
    assert r["userErrors"] == [] and r["archivedCount"] == 1 and [e["name"] for e in r["events"]] == ["a.never"]
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": [keep] * 501}}))["deadEventsArchive"]
    assert user_errors(r) == [("VALIDATION", ["input", "eventIds"])]
