"""Issue 6 audit: the points the first tests left open. Series name their event type; a breakdown
gives each value's series per bucket (the seed's breakdown `series`); events deleted from the plan
leave the overview and the data source stats; the seed's defaults and ranges not asked before
(stats window 48, breakdown limit, eventSeries filters, preview limit, scan config limits) and
scan configs naming another tenant's rows."""

from __future__ import annotations

import uuid
from datetime import timedelta

from server.db.base import utcnow
from server.domains.warehouse.models import MetricScope
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.helpers import ERRORS, created, errors_of, wait_job
from tests.graph.warehouse.metric_rows import T0, H, errors, iso, metric_world, query_raw
from tests.support.plan_rows import gid, raw
from tests.support.sql import count_statements
from tests.support.warehouse import create_duckdb_warehouse

SERIES = """query($p: ID!, $scope: MetricScopeInput!) {
  metricSeries(projectId: $p, scope: $scope, from: "2026-03-02T00:00:00Z", to: "2026-03-02T02:00:00Z") {
    total eventType { id name } } }"""
BREAKDOWN = """query($p: ID!, $scope: MetricScopeInput!, $from: DateTime, $to: DateTime, $limit: Int) {
  eventBreakdown(projectId: $p, scope: $scope, column: "country", from: $from, to: $to, limit: $limit) {
    values { value isOther count points { bucket count } } } }"""
BREAKDOWN_TOTALS = BREAKDOWN.replace(" points { bucket count }", "")
TIMELINE = """query($p: ID!, $scope: MetricScopeInput!, $column: String!) {
  breakdownTimeline(projectId: $p, scope: $scope, column: $column, value: "DE") { total } }"""
OVERVIEW = """query($p: ID!) { overview(projectId: $p, days: 1) { points { volume activeEvents eventVolume } } }"""
STATS = """query($id: ID!) { dataSource(id: $id) { stats { windowHours volumeWindow eventsTracked
  throughput { count } } } }"""
EVENT_DELETE = """mutation($id: ID!) { eventDelete(input: {id: $id}) { userErrors { code field message } } }"""
MANY = """query($p: ID!, $filter: EventFilter, $first: Int) {
  eventSeries(projectId: $p, filter: $filter, from: "2026-03-02T00:00:00Z", to: "2026-03-02T01:00:00Z", first: $first) {
    totalCount series { event { name } } } }"""
WINDOW = """query($p: ID!, $ids: [ID!]!) { windowTotals(projectId: $p, eventIds: $ids) { items { count } } }"""
SC_CREATE = f"""mutation($input: ScanConfigCreateInput!) {{ scanConfigCreate(input: $input) {{
  scanConfig {{ id }} {ERRORS} }} }}"""
PREVIEW = f"""mutation($input: ScanPreviewInput!) {{ scanPreview(input: $input) {{ job {{ id }} {ERRORS} }} }}"""


def event_scope(world, name: str) -> dict:  # noqa: ANN001
    return {"kind": "EVENT", "id": world.events[name]}


async def delete_event(org: Org, event_gid: str) -> None:
    assert (await org(EVENT_DELETE, {"id": event_gid}))["eventDelete"]["userErrors"] == []


# --- series name their event type ------------------------------------------------------------------

async def test_series_names_its_event_type(org):
    world = await metric_world(org)
    await world.event_buckets("track.click", {T0: 4})
    await world.buckets(MetricScope.EVENT_TYPE, world.type_id("page"), {T0: 9})
    await world.buckets(MetricScope.PROJECT, world.project_id, {T0: 13})
    cases = [(event_scope(world, "track.click"), "track", 4),
             ({"kind": "EVENT_TYPE", "id": world.event_types["page"]}, "page", 9)]
    for scope, type_name, total in cases:
        s = (await query_raw(org, SERIES, {"p": world.project, "scope": scope}))["data"]["metricSeries"]
        assert s["total"] == total and s["eventType"] == {"id": world.event_types[type_name], "name": type_name}
    s = (await query_raw(org, SERIES, {"p": world.project, "scope": {"kind": "PROJECT"}}))["data"]["metricSeries"]
    assert s["total"] == 13 and s["eventType"] is None


# --- breakdown series per value -----------------------------------------------------------------

async def test_event_breakdown_series_per_value_and_limits(org):
    world = await metric_world(org)
    view = world.event_id("page.view")
    await world.event_buckets("page.view", {T0: 15, T0 + H: 6})
    await world.breakdown(MetricScope.EVENT, view, "country", [("DE", False, T0, 4), ("DE", False, T0 + H, 6),
                                                               ("FR", False, T0, 3), ("", True, T0, 2),
                                                               ("IT", False, T0 + 5 * H, 50)])  # outside the range
    await world.breakdown(MetricScope.EVENT, view, "browser", [("DE", False, T0 + 2 * H, 99)])  # another column
    variables = {"p": world.project, "scope": event_scope(world, "page.view"), "from": iso(T0), "to": iso(T0 + 3 * H)}
    b = (await query_raw(org, BREAKDOWN, variables))["data"]["eventBreakdown"]
    got = [(v["value"], v["isOther"], v["count"], [p["count"] for p in v["points"]]) for v in b["values"]]
    assert got == [("DE", False, 10, [4, 6, 0]), ("FR", False, 3, [3, 0, 0]), ("", True, 2, [2, 0, 0])]
    assert [p["bucket"] for p in b["values"][0]["points"]] == [iso(T0 + i * H).replace("Z", "+00:00")
                                                               for i in range(3)]
    # One more statement for all values' series, however many values.
    few = await count_statements(lambda: query_raw(org, BREAKDOWN, {**variables, "limit": 1}))
    many = await count_statements(lambda: query_raw(org, BREAKDOWN, {**variables, "limit": 3}))
    without = await count_statements(lambda: query_raw(org, BREAKDOWN_TOTALS, {**variables, "limit": 3}))
    assert few == many == without + 1
    # Series are bounded like metricSeries (10,000 buckets); totals alone are not.
    long = {**variables, "from": iso(T0 - timedelta(days=500))}
    assert errors(await query_raw(org, BREAKDOWN, long)) == [("VALIDATION", ["from"])]
    assert "errors" not in await query_raw(org, BREAKDOWN_TOTALS, long)
    for limit in (0, 101):
        assert errors(await query_raw(org, BREAKDOWN, {**variables, "limit": limit})) == [("VALIDATION", ["limit"])]
    r = await query_raw(org, TIMELINE, {"p": world.project, "scope": event_scope(world, "page.view"), "column": ""})
    assert errors(r) == [("VALIDATION", ["column"])]


# --- events deleted from the plan ----------------------------------------------------------------

async def test_overview_leaves_out_deleted_events(org):
    world = await metric_world(org)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await world.buckets(MetricScope.PROJECT, world.project_id, {hour: 100})
    await world.event_buckets("page.view", {hour: 12})
    await world.event_buckets("page.leave", {hour: 30})
    day = (await query_raw(org, OVERVIEW, {"p": world.project}))["data"]["overview"]["points"][-1]
    assert day == {"volume": 100, "activeEvents": 2, "eventVolume": 42}
    await delete_event(org, world.events["page.leave"])
    day = (await query_raw(org, OVERVIEW, {"p": world.project}))["data"]["overview"]["points"][-1]
    assert day == {"volume": 100, "activeEvents": 1, "eventVolume": 12}


async def test_data_source_stats_default_window_and_deleted_events(org):
    world = await metric_world(org)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await world.buckets(MetricScope.PROJECT, world.project_id, {hour: 10, hour - 47 * H: 5, hour - 48 * H: 100})
    await world.event_buckets("page.view", {hour: 4})
    await world.event_buckets("page.leave", {hour - 47 * H: 3})
    stats = (await org(STATS, {"id": world.data_source}))["dataSource"]["stats"]
    assert stats["windowHours"] == 48 and len(stats["throughput"]) == 48
    assert stats["volumeWindow"] == 15 and stats["eventsTracked"] == 2
    await delete_event(org, world.events["page.leave"])
    assert (await org(STATS, {"id": world.data_source}))["dataSource"]["stats"]["eventsTracked"] == 1


# --- eventSeries filters and list bounds -----------------------------------------------------------

async def test_event_series_filters_by_type_and_text(org):
    world = await metric_world(org)

    async def names(filter_: dict) -> list[str]:
        r = await query_raw(org, MANY, {"p": world.project, "filter": filter_})
        assert "errors" not in r, r
        return [s["event"]["name"] for s in r["data"]["eventSeries"]["series"]]

    assert await names({"eventTypeId": world.event_types["page"]}) == ["page.view", "page.leave"]
    assert await names({"search": "LEAVE"}) == ["page.leave"]
    assert await names({"eventTypeId": world.event_types["track"], "search": "view"}) == []
    for first in (0, 501):
        assert errors(await query_raw(org, MANY, {"p": world.project, "first": first})) == [("VALIDATION", ["first"])]
    ids = [gid("Event", uuid.uuid4()) for _ in range(501)]
    assert errors(await query_raw(org, WINDOW, {"p": world.project, "ids": ids})) == [("VALIDATION", ["eventIds"])]


# --- scan configs: seed limits, another tenant's rows, preview limit -------------------------------

async def test_scan_config_seed_limits_and_foreign_ids(org, gql, live, warehouse_rows):  # noqa: ANN001
    world = await metric_world(org)
    other = await Org.create(gql, "Other Co")
    other_world = await metric_world(other)
    base = {"projectId": world.project, "dataSourceId": world.data_source, "name": "scan", "baseQuery": "SELECT 1",
            "timeColumn": "ts"}

    async def create_errors(**input_) -> list:  # noqa: ANN003
        return errors_of((await org(SC_CREATE, {"input": {**base, **input_}}))["scanConfigCreate"])

    assert await create_errors(name="n" * 256, baseQuery="   ") == [("VALIDATION", ["input", "name"]),
                                                                    ("VALIDATION", ["input", "baseQuery"])]
    assert await create_errors(dataSourceId=other_world.data_source) == [("NOT_FOUND", ["input", "dataSourceId"])]
    assert await create_errors(eventTypeId=other_world.event_types["page"]) == [("NOT_FOUND", ["input", "eventTypeId"])]

    # Preview: limit 1..50, default 10 (on the live worker, against a DuckDB file of the generated rows).
    create_duckdb_warehouse(live.app.state.runtime.settings.duckdb_dir / str(raw(org.org_id)) / "audit.duckdb",
                            warehouse_rows[:40])
    ds = (await created(org, dbType="DUCKDB", host=None, databaseName="audit.duckdb"))["id"]
    preview = {"projectId": world.project, "dataSourceId": ds, "baseQuery": "SELECT * FROM events"}
    bad = (await org(PREVIEW, {"input": {**preview, "limit": 0}}))["scanPreview"]
    assert errors_of(bad) == [("VALIDATION", ["input", "limit"])]
    ok = (await org(PREVIEW, {"input": preview}))["scanPreview"]
    assert ok["userErrors"] == [], ok
    job = await wait_job(org, ok["job"]["id"], timeout=60)
    assert job["status"] == "succeeded", job
    assert job["result"]["rowCount"] == 10 and len(job["result"]["rows"]) == 10
