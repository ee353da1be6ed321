"""Reconciliation over KNOWN rows written straight into the database (no scan engine): shadow
events (list, accept into the plan, dismiss), dead events and their bulk archive, coverage,
schema drifts and their actions; ranges, defaults, viewers read-only, tenant isolation, audit."""

from __future__ import annotations

from datetime import timedelta

from server.db.base import utcnow
from server.domains.warehouse.models import DriftStatus, DriftType, MetricScope, ShadowEventStatus
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.metric_rows import T0, H, errors, iso, metric_world, query_raw
from tests.support.plan_rows import gid

ERRORS = "userErrors { code field message }"
SHADOWS = """query($p: ID!, $status: ShadowEventStatus, $first: Int! = 100) {
  shadowEvents(projectId: $p, status: $status, first: $first) {
    total newCount items { id name status eventTypeName totalCount acceptedEvent { id name status } } } }"""
ACCEPT = f"""mutation($input: ShadowEventAcceptInput!) {{ shadowEventAccept(input: $input) {{
  shadowEvent {{ id status resolvedBy {{ id }} acceptedEvent {{ id }} eventType {{ name }} }}
  event {{ id name status eventType {{ name }} }} {ERRORS} }} }}"""
DISMISS = f"""mutation($input: ShadowEventDismissInput!) {{ shadowEventDismiss(input: $input) {{
  shadowEvent {{ id status }} {ERRORS} }} }}"""
DEAD = """query($p: ID!, $days: Int! = 30) { deadEvents(projectId: $p, days: $days) { days total items { name } } }"""
ARCHIVE = f"""mutation($input: DeadEventsArchiveInput!) {{ deadEventsArchive(input: $input) {{
  archivedCount status events {{ name status }} {ERRORS} }} }}"""
COVERAGE = """query($p: ID!, $days: Int! = 14, $cfg: ID) { coverage(projectId: $p, days: $days, scanConfigId: $cfg) {
  days items { scanConfig { name } plannedVolume shadowVolume totalVolume plannedEvents shadowEvents coverage }
  summary { scanConfig { id } plannedVolume shadowVolume totalVolume coverage } } }"""
DRIFTS = """query($p: ID!, $status: DriftStatus) { schemaDrifts(projectId: $p, status: $status) {
  total items { id fieldName driftType observedType declaredType sampleValue status note snoozedUntil resolvedAt
                resolvedBy { id } eventType { name } } } }"""
DRIFT_UPDATE = f"""mutation($input: SchemaDriftUpdateInput!) {{ schemaDriftUpdate(input: $input) {{
  schemaDrift {{ id status note snoozedUntil resolvedAt resolvedBy {{ id }} }} {ERRORS} }} }}"""
AUDIT = """query($org: ID!) { auditLog(organizationId: $org, first: 50) { nodes { action targetType targetId } } }"""


def user_errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def actions(org: Org) -> list[str]:
    return [n["action"] for n in (await org(AUDIT, {"org": org.org_id}))["auditLog"]["nodes"]]


# --- shadow events -----------------------------------------------------------------------------

async def test_shadow_events_list_status_new_count_and_first(org):
    world = await metric_world(org)
    await world.shadow("page.a", last_seen_at=T0)
    await world.shadow("page.b", last_seen_at=T0 + H)
    await world.shadow("page.c", status=ShadowEventStatus.DISMISSED, last_seen_at=T0 - H)
    data = (await org(SHADOWS, {"p": world.project}))["shadowEvents"]
    assert data["total"] == 3 and data["newCount"] == 2
    assert [i["name"] for i in data["items"]] == ["page.b", "page.a", "page.c"]  # most recently seen first
    data = (await org(SHADOWS, {"p": world.project, "status": "NEW", "first": 1}))["shadowEvents"]
    assert data["total"] == 2 and data["newCount"] == 2 and [i["name"] for i in data["items"]] == ["page.b"]
    data = (await org(SHADOWS, {"p": world.project, "status": "DISMISSED"}))["shadowEvents"]
    assert data["total"] == 1 and data["newCount"] == 2
    for first in (0, 501):
        r = await query_raw(org, SHADOWS, {"p": world.project, "first": first})
        assert errors(r) == [("VALIDATION", ["first"])]


async def test_accept_creates_the_plan_event_then_conflicts(org):
    world = await metric_world(org)
    matched = await world.shadow("page.signup", event_type_name="PAGE")  # matched by the type's name
    unmatched = await world.shadow("orphan.thing", event_type_name="unknown")
    r = (await org(ACCEPT, {"input": {"id": gid("ShadowEvent", matched)}}))["shadowEventAccept"]
    assert r["userErrors"] == []
    assert r["event"]["name"] == "page.signup" and r["event"]["status"] == "LIVE"
    assert r["event"]["eventType"]["name"] == "page"
    assert r["shadowEvent"]["status"] == "ACCEPTED" and r["shadowEvent"]["acceptedEvent"]["id"] == r["event"]["id"]
    assert r["shadowEvent"]["resolvedBy"]["id"] == org.user["id"]
    again = (await org(ACCEPT, {"input": {"id": gid("ShadowEvent", matched)}}))["shadowEventAccept"]
    assert user_errors(again) == [("CONFLICT", ["input", "id"])]
    # No event type to guess: VALIDATION, nothing created.
    r = (await org(ACCEPT, {"input": {"id": gid("ShadowEvent", unmatched)}}))["shadowEventAccept"]
    assert user_errors(r) == [("VALIDATION", ["input", "eventTypeId"])]
    # With a type and another name.
    r = (await org(ACCEPT, {"input": {"id": gid("ShadowEvent", unmatched), "eventTypeId": world.event_types["track"],
                                      "name": "track.orphan"}}))["shadowEventAccept"]
    assert r["userErrors"] == [] and r["event"]["name"] == "track.orphan"
    assert r["shadowEvent"]["eventType"]["name"] == "track"
    listed = (await org(SHADOWS, {"p": world.project}))["shadowEvents"]
    assert listed["newCount"] == 0 and {i["status"] for i in listed["items"]} == {"ACCEPTED"}
    log = await actions(org)
    assert log.count("shadow_event.accept") == 2 and "event.create" in log


async def test_accept_name_taken_is_a_plan_conflict_and_changes_nothing(org):
    world = await metric_world(org)
    sid = await world.shadow("page.view", event_type_name="page")  # page.view exists in the plan
    r = (await org(ACCEPT, {"input": {"id": gid("ShadowEvent", sid)}}))["shadowEventAccept"]
    assert user_errors(r) and user_errors(r)[0][0] == "CONFLICT"
    assert (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["items"][0]["status"] == "NEW"


async def test_dismiss_viewer_forbidden_and_other_tenant_not_found(org, gql):
    world = await metric_world(org)
    sid = gid("ShadowEvent", await world.shadow("page.noise"))
    viewer = await org.member("viewer")
    for q, name in ((DISMISS, "shadowEventDismiss"), (ACCEPT, "shadowEventAccept")):
        r = (await org(q, {"input": {"id": sid}}, viewer))[name]
        assert user_errors(r) == [("FORBIDDEN", None)], r
    other = await Org.create(gql, "Other Co")
    r = (await other(DISMISS, {"input": {"id": sid}}))["shadowEventDismiss"]
    assert user_errors(r) == [("NOT_FOUND", ["input", "id"])]
    r = await query_raw(other, SHADOWS, {"p": world.project})
    assert errors(r) == [("NOT_FOUND", ["projectId"])]
    r = (await org(DISMISS, {"input": {"id": sid}}))["shadowEventDismiss"]
    assert r["userErrors"] == [] and r["shadowEvent"]["status"] == "DISMISSED"
    assert "shadow_event.dismiss" in await actions(org)
    assert (await org(SHADOWS, {"p": world.project}, viewer))["shadowEvents"]["newCount"] == 0


# --- dead events -------------------------------------------------------------------------------

async def test_dead_events_days_default_bounds_and_archive(org):
    world = await metric_world(org, events={
        "a.never": ("page", "LIVE", []), "a.old": ("page", "IMPLEMENTED", []), "a.recent": ("page", "LIVE", []),
        "a.draft": ("page", "DRAFT", []), "a.mid": ("track", "LIVE", [])})
    now = utcnow()
    await world.seen("a.old", now - timedelta(days=40))
    await world.seen("a.recent", now - timedelta(days=1))
    await world.seen("a.mid", now - timedelta(days=10))
    await world.seen("a.draft", None)
    d = (await org(DEAD, {"p": world.project}))["deadEvents"]
    assert d["days"] == 30 and d["total"] == 2 and [i["name"] for i in d["items"]] == ["a.never", "a.old"]
    d = (await org(DEAD, {"p": world.project, "days": 7}))["deadEvents"]
    assert [i["name"] for i in d["items"]] == ["a.never", "a.old", "a.mid"]
    for days in (0, 366):
        assert errors(await query_raw(org, DEAD, {"p": world.project, "days": days})) == [("VALIDATION", ["days"])]

    ids = [world.events["a.never"], world.events["a.old"]]
    viewer = await org.member("viewer")
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": ids}}, viewer))["deadEventsArchive"]
    assert user_errors(r) == [("FORBIDDEN", None)]
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": []}}))["deadEventsArchive"]
    assert user_errors(r) == [("VALIDATION", ["input", "eventIds"])]
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": ids}}))["deadEventsArchive"]
    assert r["userErrors"] == [] and r["archivedCount"] == 2 and r["status"] == "ARCHIVED"
    assert {e["status"] for e in r["events"]} == {"ARCHIVED"}
    assert (await org(DEAD, {"p": world.project}))["deadEvents"]["total"] == 0
    r = (await org(ARCHIVE, {"input": {"projectId": world.project, "eventIds": [world.events["a.mid"]],
                                       "status": "DEPRECATED"}}))["deadEventsArchive"]
    assert r["archivedCount"] == 1 and r["events"][0]["status"] == "DEPRECATED"


async def test_archive_other_tenant_events_not_found(org, gql):
    world = await metric_world(org)
    other = await Org.create(gql, "Other Co")
    other_world = await metric_world(other)
    r = (await other(ARCHIVE, {"input": {"projectId": other_world.project,
                                         "eventIds": [world.events["page.view"]]}}))["deadEventsArchive"]
    assert user_errors(r)[0][0] == "NOT_FOUND"
    r = (await other(ARCHIVE, {"input": {"projectId": world.project,
                                         "eventIds": [world.events["page.view"]]}}))["deadEventsArchive"]
    assert user_errors(r)[0][0] == "NOT_FOUND"


# --- coverage ----------------------------------------------------------------------------------

async def test_coverage_per_config_and_summary(org):
    world = await metric_world(org)
    second = await world.add_config("second")
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    shadow = await world.shadow("page.unplanned")
    await world.event_buckets("page.view", {hour: 60, hour - H: 20, hour - 20 * 24 * H: 1000})  # the last: too old
    await world.event_buckets("page.leave", {hour: 10})
    await world.buckets(MetricScope.SHADOW_EVENT, shadow, {hour: 10})
    await world.buckets(MetricScope.SHADOW_EVENT, shadow, {hour: 5}, config=second)
    c = (await org(COVERAGE, {"p": world.project}))["coverage"]
    assert c["days"] == 14
    assert [(i["scanConfig"]["name"], i["plannedVolume"], i["shadowVolume"], i["plannedEvents"], i["shadowEvents"],
             i["coverage"]) for i in c["items"]] == [("main", 90, 10, 2, 1, 0.9), ("second", 0, 5, 0, 1, 0.0)]
    s = c["summary"]
    assert s["scanConfig"] is None and (s["plannedVolume"], s["shadowVolume"], s["totalVolume"]) == (90, 15, 105)
    assert abs(s["coverage"] - 90 / 105) < 1e-9
    c = (await org(COVERAGE, {"p": world.project, "days": 30, "cfg": world.config_gid(0)}))["coverage"]
    assert [i["plannedVolume"] for i in c["items"]] == [1090]
    for days in (0, 181):
        assert errors(await query_raw(org, COVERAGE, {"p": world.project, "days": days})) == [("VALIDATION", ["days"])]
    empty = await metric_world(org)
    c = (await org(COVERAGE, {"p": empty.project}))["coverage"]
    assert c["summary"]["coverage"] is None and c["items"][0]["totalVolume"] == 0


# --- schema drifts -----------------------------------------------------------------------------

async def test_schema_drifts_list_and_actions(org, gql):
    world = await metric_world(org)
    d1 = gid("SchemaDrift", await world.drift("page", "utm_source", observed_type="string", sample_value="google"))
    await world.drift("track", "price", observed_type="string", declared_type="number", sample_value="12",
                      drift_type=DriftType.TYPE_CHANGED,
                      status=DriftStatus.ACCEPTED)
    listed = (await org(DRIFTS, {"p": world.project}))["schemaDrifts"]
    assert listed["total"] == 2
    listed = (await org(DRIFTS, {"p": world.project, "status": "OPEN"}))["schemaDrifts"]
    assert listed["total"] == 1
    item = listed["items"][0]
    assert (item["fieldName"], item["driftType"], item["observedType"], item["sampleValue"], item["status"],
            item["eventType"]["name"]) == ("utm_source", "NEW_FIELD", "string", "google", "OPEN", "page")

    async def update(token: str | None = None, **input_) -> dict:  # noqa: ANN003
        return (await org(DRIFT_UPDATE, {"input": {"id": d1, **input_}}, token))["schemaDriftUpdate"]

    # Bad input changes nothing.
    assert user_errors(await update(action="SNOOZE")) == [("VALIDATION", ["input", "snoozedUntil"])]
    past = iso(utcnow() - timedelta(hours=1))
    assert user_errors(await update(action="SNOOZE", snoozedUntil=past)) == [("VALIDATION", ["input", "snoozedUntil"])]
    future = utcnow() + timedelta(days=3)
    assert user_errors(await update(action="ACCEPT", snoozedUntil=iso(future))) == [
        ("VALIDATION", ["input", "snoozedUntil"])]
    assert user_errors(await update(action="ACCEPT", note="x" * 2001)) == [("VALIDATION", ["input", "note"])]
    viewer = await org.member("viewer")
    assert user_errors(await update(viewer, action="ACCEPT")) == [("FORBIDDEN", None)]
    other = await Org.create(gql, "Other Co")
    r = (await other(DRIFT_UPDATE, {"input": {"id": d1, "action": "ACCEPT"}}))["schemaDriftUpdate"]
    assert user_errors(r) == [("NOT_FOUND", ["input", "id"])]
    assert errors(await query_raw(other, DRIFTS, {"p": world.project})) == [("NOT_FOUND", ["projectId"])]
    assert (await org(DRIFTS, {"p": world.project, "status": "OPEN"}))["schemaDrifts"]["total"] == 1

    r = await update(action="SNOOZE", snoozedUntil=iso(future), note=" wait for the release ")
    assert r["userErrors"] == [] and r["schemaDrift"]["status"] == "SNOOZED"
    assert r["schemaDrift"]["note"] == "wait for the release" and r["schemaDrift"]["snoozedUntil"].startswith(
        future.isoformat()[:16])
    assert r["schemaDrift"]["resolvedBy"]["id"] == org.user["id"]
    r = await update(action="FALSE_POSITIVE", note="bot traffic")
    assert r["schemaDrift"]["status"] == "FALSE_POSITIVE" and r["schemaDrift"]["snoozedUntil"] is None
    r = await update(action="REOPEN")
    assert r["schemaDrift"]["status"] == "OPEN" and r["schemaDrift"]["resolvedBy"] is None
    assert r["schemaDrift"]["resolvedAt"] is None and r["schemaDrift"]["note"] is None
    r = await update(action="ACCEPT", note="new field is fine")
    assert r["schemaDrift"]["status"] == "ACCEPTED" and r["schemaDrift"]["resolvedAt"] is not None
    log = await actions(org)
    for action in ("schema_drift.snooze", "schema_drift.false_positive", "schema_drift.reopen", "schema_drift.accept"):
        assert action in log
    assert (await org(DRIFTS, {"p": world.project, "status": "ACCEPTED"}, viewer))["schemaDrifts"]["total"] == 2
