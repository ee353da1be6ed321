"""What scans decide about reconciliation, through the API, with scanRun on the live server's
real worker over a DuckDB file of the generated events (moved to the last days): drifts keep an
observed sample value; a snooze ends at `snoozedUntil` (the next scan seeing the drift reopens
it, other decisions stand); events' `driftCount` follows their type's open drifts and contract
violations (scans and drift actions); a shadow event accepted into a plan event deleted since is
NEW again once a scan sees its name; and a scan's `scanJobs` stats show its limits at work
(`scanRowLimit`, `cardinalityThreshold`)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import update

from server.db.base import utcnow
from server.domains.warehouse import scan
from server.domains.warehouse.models import ScanConfig, ScanInterval, SchemaDrift
from tests.graph.plan.catalog import event_type, field
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import created, wait_job
from tests.graph.warehouse.metric_rows import EV_CREATE, db_execute, iso
from tests.graph.warehouse.test_audit_metrics import delete_event
from tests.graph.warehouse.test_reconciliation import ACCEPT, DISMISS, DRIFT_UPDATE, user_errors
from tests.graph.warehouse.test_scan_configs import CREATE, JOBS, RUN, config_input
from tests.support.plan_rows import raw
from tests.support.warehouse import START, create_duckdb_warehouse

DRIFTS = """query($p: ID!) { schemaDrifts(projectId: $p, first: 100) { items { id fieldName driftType observedType
  sampleValue status note snoozedUntil resolvedAt resolvedBy { id } eventType { name } } } }"""
EVENTS = """query($p: ID!) { events(projectId: $p, first: 100) { nodes { id name driftCount } } }"""
SHADOWS = """query($p: ID!, $status: ShadowEventStatus) { shadowEvents(projectId: $p, status: $status) {
  newCount items { id name status resolvedAt resolvedBy { id } acceptedEvent { id } } } }"""


@dataclasses.dataclass
class Scanned:
    org: Org
    project: str
    config: str
    rows: list[dict]


async def scanned_world(org: Org, live, warehouse_rows, **config) -> Scanned:  # noqa: ANN001, ANN003
    """A plan (page: amount NUMBER that page rows lack, country required with at most 10 % NULLs;
    checkout: country NUMBER, text in the warehouse; search: never in the warehouse), the events
    page.view, checkout.started and search.done, a DuckDB source of the recent events and a scan
    config with the JSON paths props.page.title and props.amount, scanned once."""
    now = utcnow()
    shift = (now.replace(minute=0, second=0, microsecond=0) - timedelta(days=8, hours=1)) - START
    rows = [{**r, "ts": r["ts"] + shift, "ts_naive": r["ts_naive"] + shift} for r in warehouse_rows]
    create_duckdb_warehouse(live.app.state.runtime.settings.duckdb_dir / str(raw(org.org_id)) / "recent.duckdb", rows)
    project = (await org.project())["id"]
    types = {name: (await event_type(org, project, name))["id"] for name in ("page", "checkout", "search")}
    await field(org, types["page"], "amount", "NUMBER")
    await field(org, types["page"], "country", "STRING", isRequired=True, contractRequiredMaxNullRate=0.1)
    await field(org, types["checkout"], "country", "NUMBER")
    for et, name in (("page", "page.view"), ("checkout", "checkout.started"), ("search", "search.done")):
        data = await org(EV_CREATE, {"input": {"eventTypeId": types[et], "name": name, "status": "LIVE"}})
        assert data["eventCreate"]["userErrors"] == [], data
    ds = (await created(org, dbType="DUCKDB", host=None, databaseName="recent.duckdb"))["id"]
    data = (await org(CREATE, {"input": config_input(project, ds, scanLookbackHours=24 * 10, enabled=False,
                                                     jsonValuePaths=["props.page.title", "props.amount"],
                                                     **config)}))["scanConfigCreate"]
    assert data["userErrors"] == [], data
    world = Scanned(org, project, data["scanConfig"]["id"], rows)
    await scan_again(world)
    return world


async def scan_again(world: Scanned) -> dict:
    """A scan of the whole lookback again (the watermark reset), on the worker: its job result."""
    await db_execute(world.org, update(ScanConfig.__table__).where(ScanConfig.id == raw(world.config))
                     .values(scanned_until=None))
    run = (await world.org(RUN, {"input": {"scanConfigId": world.config}}))["scanRun"]
    assert run["userErrors"] == [], run
    job = await wait_job(world.org, run["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    return job["result"]


async def drifts(world: Scanned) -> dict[tuple[str, str, str], dict]:
    items = (await world.org(DRIFTS, {"p": world.project}))["schemaDrifts"]["items"]
    return {(d["eventType"]["name"], d["fieldName"], d["driftType"]): d for d in items}


async def drift_counts(world: Scanned) -> dict[str, int]:
    return {e["name"]: e["driftCount"] for e in (await world.org(EVENTS, {"p": world.project}))["events"]["nodes"]}


async def decide(world: Scanned, drift: dict, action: str, **extra) -> dict:  # noqa: ANN003
    r = (await world.org(DRIFT_UPDATE, {"input": {"id": drift["id"], "action": action, **extra}}))["schemaDriftUpdate"]
    assert r["userErrors"] == [], r
    return r["schemaDrift"]


async def test_drifts_keep_a_sample_and_a_snooze_ends_when_a_scan_sees_them_again(org, live, warehouse_rows):  # noqa: ANN001
    world = await scanned_world(org, live, warehouse_rows)
    found = await drifts(world)
    checkout = [r for r in world.rows if r["event_type"] == "checkout"]
    assert set(found) == {("page", "amount", "MISSING_FIELD"), ("page", "title", "NEW_FIELD"),
                          ("checkout", "country", "TYPE_CHANGED"), ("checkout", "title", "NEW_FIELD"),
                          ("checkout", "amount", "NEW_FIELD")}
    assert all(d["status"] == "OPEN" for d in found.values())
    # One observed value each: text where a number is declared shows text; none for a missing field.
    assert found[("checkout", "country", "TYPE_CHANGED")]["sampleValue"] == min(
        r["country"] for r in checkout if r["country"] is not None)
    assert found[("checkout", "title", "NEW_FIELD")]["sampleValue"] == min(r["props"]["page"]["title"] for r in checkout)
    assert found[("checkout", "amount", "NEW_FIELD")]["sampleValue"] == min(str(r["props"]["amount"]) for r in checkout)
    assert found[("page", "amount", "MISSING_FIELD")]["sampleValue"] is None

    ended = await decide(world, found[("checkout", "country", "TYPE_CHANGED")], "SNOOZE", note="until the fix ships",
                         snoozedUntil=iso(utcnow() + timedelta(days=1)))
    await db_execute(org, update(SchemaDrift.__table__).where(SchemaDrift.id == raw(ended["id"]))
                     .values(snoozed_until=utcnow() - timedelta(minutes=1)))  # the snooze is over
    snoozed = await decide(world, found[("checkout", "title", "NEW_FIELD")], "SNOOZE",
                           snoozedUntil=iso(utcnow() + timedelta(days=1)))
    await decide(world, found[("page", "amount", "MISSING_FIELD")], "ACCEPT")
    await decide(world, found[("page", "title", "NEW_FIELD")], "FALSE_POSITIVE")

    await scan_again(world)
    after = await drifts(world)
    reopened = after[("checkout", "country", "TYPE_CHANGED")]
    assert (reopened["status"], reopened["snoozedUntil"], reopened["resolvedAt"], reopened["resolvedBy"]) == (
        "OPEN", None, None, None)
    assert reopened["note"] == "until the fix ships" and reopened["sampleValue"] == "DE"
    still = after[("checkout", "title", "NEW_FIELD")]
    assert (still["status"], still["snoozedUntil"]) == ("SNOOZED", snoozed["snoozedUntil"])
    assert after[("page", "amount", "MISSING_FIELD")]["status"] == "ACCEPTED"
    assert after[("page", "title", "NEW_FIELD")]["status"] == "FALSE_POSITIVE"
    assert after[("checkout", "amount", "NEW_FIELD")]["status"] == "OPEN"


async def test_drift_count_follows_open_drifts_and_violations_of_the_event_type(org, live, warehouse_rows):  # noqa: ANN001
    """page: 2 drifts (amount missing, title new) + 1 violation (country NULL in ~25 % of rows);
    checkout: 3 drifts, no contract; search: never seen. Drift actions and scans keep it current."""
    world = await scanned_world(org, live, warehouse_rows)
    assert await drift_counts(world) == {"page.view": 3, "checkout.started": 3, "search.done": 0}
    found = await drifts(world)
    await decide(world, found[("page", "amount", "MISSING_FIELD")], "ACCEPT")
    snoozed = await decide(world, found[("checkout", "title", "NEW_FIELD")], "SNOOZE",
                           snoozedUntil=iso(utcnow() + timedelta(days=1)))
    assert await drift_counts(world) == {"page.view": 2, "checkout.started": 2, "search.done": 0}
    await decide(world, found[("page", "amount", "MISSING_FIELD")], "REOPEN")
    assert (await drift_counts(world))["page.view"] == 3
    # The snooze ends; the next scan reopens it and counts it again.
    await db_execute(org, update(SchemaDrift.__table__).where(SchemaDrift.id == raw(snoozed["id"]))
                     .values(snoozed_until=utcnow() - timedelta(minutes=1)))
    assert (await drift_counts(world))["checkout.started"] == 2
    await scan_again(world)
    assert await drift_counts(world) == {"page.view": 3, "checkout.started": 3, "search.done": 0}


async def test_a_shadow_event_whose_plan_event_was_deleted_is_new_again_when_seen(org, live, warehouse_rows):  # noqa: ANN001
    """page.scroll is accepted, then its plan event deleted: NEW after the next scan. account.signup
    accepted under another name (its plan event exists) stays ACCEPTED; checkout.completed
    dismissed stays DISMISSED."""
    world = await scanned_world(org, live, warehouse_rows)
    shadows = {s["name"]: s for s in (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["items"]}
    assert {n: s["status"] for n, s in shadows.items()} == {
        "page.scroll": "NEW", "checkout.completed": "NEW", "account.signup": "NEW"}
    page_type = (await org("""query($p: ID!) { eventTypes(projectId: $p, first: 10) { nodes { id name } } }""",
                           {"p": world.project}))["eventTypes"]["nodes"]
    page_type = next(t["id"] for t in page_type if t["name"] == "page")
    scroll = (await org(ACCEPT, {"input": {"id": shadows["page.scroll"]["id"]}}))["shadowEventAccept"]
    signup = (await org(ACCEPT, {"input": {"id": shadows["account.signup"]["id"], "eventTypeId": page_type,
                                           "name": "signup"}}))["shadowEventAccept"]
    assert scroll["userErrors"] == [] and signup["userErrors"] == []
    assert (await org(DISMISS, {"input": {"id": shadows["checkout.completed"]["id"]}}))["shadowEventDismiss"][
        "userErrors"] == []
    await delete_event(org, scroll["event"]["id"])
    listed = (await org(SHADOWS, {"p": world.project, "status": "NEW"}))["shadowEvents"]
    assert listed["newCount"] == 0 and listed["items"] == []  # not until a scan sees the name

    await scan_again(world)
    listed = (await org(SHADOWS, {"p": world.project, "status": "NEW"}))["shadowEvents"]
    assert listed["newCount"] == 1 and [s["name"] for s in listed["items"]] == ["page.scroll"]
    again = listed["items"][0]
    assert (again["resolvedAt"], again["resolvedBy"], again["acceptedEvent"]) == (None, None, None)
    shadows = {s["name"]: s for s in (await org(SHADOWS, {"p": world.project}))["shadowEvents"]["items"]}
    assert shadows["account.signup"]["status"] == "ACCEPTED"
    assert shadows["account.signup"]["acceptedEvent"]["id"] == signup["event"]["id"]
    assert shadows["checkout.completed"]["status"] == "DISMISSED"
    # And it may be accepted anew.
    r = (await org(ACCEPT, {"input": {"id": again["id"]}}))["shadowEventAccept"]
    assert user_errors(r) == [] and r["shadowEvent"]["status"] == "ACCEPTED"


async def test_scan_jobs_stats_show_the_row_limit_and_high_cardinality_columns(org, live, warehouse_rows):  # noqa: ANN001
    """scanRowLimit 100: the field observation read the newest 100 rows; breakdown by `id` (every
    row its own value) with the default threshold 100: folded in every chunk with more than 100
    rows, `country` (4 values) never."""
    world = await scanned_world(org, live, warehouse_rows, scanRowLimit=100, metricBreakdownColumns=["id", "country"])
    history = (await org(JOBS, {"c": world.config, "first": 1}))["scanJobs"]["nodes"][0]
    stats = history["stats"]
    assert (stats["observedRows"], stats["scanRowLimit"], stats["observeRowLimitReached"]) == (100, 100, True)
    assert stats["rows"] == len(world.rows)
    start = datetime.fromisoformat(history["rangeFrom"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(history["rangeTo"].replace("Z", "+00:00"))
    per_chunk = Counter()
    for a, b in scan.chunks_of(start, end, ScanInterval.ONE_HOUR, None):
        per_chunk[a] = sum(1 for r in world.rows if a <= r["ts"] < b)
    assert stats["highCardinality"] == {"id": sum(1 for n in per_chunk.values() if n > 100)}
    assert stats["highCardinality"]["id"] >= 7
