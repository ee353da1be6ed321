"""Metric queries over KNOWN buckets written straight into the database (no scan engine):
exact sums, zero-filling, ranges and defaults, bad arguments, the scan config a series comes
from, project-wide aggregates, breakdowns, app versions, heatmap, tenant isolation."""

from __future__ import annotations

from datetime import timedelta

from server.db.base import utcnow
from server.domains.warehouse.models import MetricScope, ScanInterval
from tests.graph.plan.helpers import Org
from tests.graph.warehouse.metric_rows import T0, H, errors, iso, metric_world, query_raw
from tests.support.plan_rows import gid
from tests.support.sql import count_statements

SERIES = """query($p: ID!, $scope: MetricScopeInput!, $from: DateTime, $to: DateTime, $cfg: ID) {
  metricSeries(projectId: $p, scope: $scope, from: $from, to: $to, scanConfigId: $cfg) {
    scope scopeId interval from to total firstBucket counts signals forecast { bucket } points { bucket count }
    scanConfig { id name } event { id name } } }"""
MANY = """query($p: ID!, $filter: EventFilter, $from: DateTime, $to: DateTime, $first: Int) {
  eventSeries(projectId: $p, filter: $filter, from: $from, to: $to, first: $first) {
    totalCount series { scopeId total interval points { bucket count } event { name } } } }"""
WINDOW = """query($p: ID!, $ids: [ID!]!, $from: DateTime, $to: DateTime) {
  windowTotals(projectId: $p, eventIds: $ids, from: $from, to: $to) { from to items { count event { name } } } }"""
OVERVIEW = """query($p: ID!, $days: Int!) { overview(projectId: $p, days: $days) {
  days totalVolume points { day volume activeEvents eventVolume } } }"""
OVERVIEW_DEFAULT = """query($p: ID!) { overview(projectId: $p) { days points { day } } }"""
TOP = """query($p: ID!, $hours: Int!, $limit: Int!) { topEvents(projectId: $p, hours: $hours, limit: $limit) {
  hours items { count previousCount event { name } } } }"""
TOP_DEFAULT = """query($p: ID!) { topEvents(projectId: $p) { hours items { count event { name } } } }"""
HEATMAP = """query($p: ID!, $scope: MetricScopeInput!, $from: DateTime, $to: DateTime) {
  seasonalityHeatmap(projectId: $p, scope: $scope, from: $from, to: $to) {
    maxCount totalCount cells { weekday hour count } source { interval scanConfig { id } } } }"""
BREAKDOWN = """query($p: ID!, $scope: MetricScopeInput!, $column: String, $from: DateTime, $to: DateTime, $limit: Int) {
  eventBreakdown(projectId: $p, scope: $scope, column: $column, from: $from, to: $to, limit: $limit) {
    columns selectedColumn values { value isOther count } source { interval scanConfig { id } } } }"""
TIMELINE = """query($p: ID!, $scope: MetricScopeInput!, $column: String!, $value: String!, $other: Boolean!,
  $from: DateTime, $to: DateTime) {
  breakdownTimeline(projectId: $p, scope: $scope, column: $column, value: $value, isOther: $other, from: $from,
                    to: $to) { total points { bucket count } } }"""
VERSIONS = """query($p: ID!, $from: DateTime, $to: DateTime) { appVersions(projectId: $p, from: $from, to: $to) {
  latestVersion appVersionColumn versions { version count share firstSeen lastSeen }
  series { version points { bucket count } } adoption { bucket share } source { total } } }"""


def event_scope(world, name):  # noqa: ANN001, ANN201
    return {"kind": "EVENT", "id": world.events[name]}


async def series(org: Org, world, scope: dict, frm=None, to=None, cfg=None, token=None) -> dict:  # noqa: ANN001
    r = await query_raw(org, SERIES, {"p": world.project, "scope": scope, "from": frm and iso(frm),
                                      "to": to and iso(to), "cfg": cfg}, token)
    assert "errors" not in r, r
    return r["data"]["metricSeries"]


async def test_event_series_exact_zero_filled(org):
    world = await metric_world(org)
    await world.event_buckets("page.view", {T0: 5, T0 + H: 7, T0 + 3 * H: 11, T0 + 9 * H: 100})
    s = await series(org, world, event_scope(world, "page.view"), T0, T0 + 6 * H)
    assert s["scope"] == "EVENT" and s["scopeId"] == world.events["page.view"] and s["interval"] == "ONE_HOUR"
    assert s["scanConfig"] == {"id": world.config_gid(), "name": "main"} and s["event"]["name"] == "page.view"
    assert s["signals"] == [] and s["forecast"] is None
    assert [p["count"] for p in s["points"]] == [5, 7, 0, 11, 0, 0]  # the missing hours are zeros
    assert [p["bucket"] for p in s["points"]][:2] == ["2026-03-02T00:00:00+00:00", "2026-03-02T01:00:00+00:00"]
    assert s["total"] == 23
    assert s["counts"] == [5, 7, 0, 11, 0, 0] and s["firstBucket"] == "2026-03-02T00:00:00+00:00"
    # A `from` inside a bucket keeps that bucket; `to` is exclusive.
    s = await series(org, world, event_scope(world, "page.view"), T0 + timedelta(minutes=30), T0 + 3 * H)
    assert [p["count"] for p in s["points"]] == [5, 7, 0] and s["total"] == 12


async def test_project_and_event_type_scopes_and_empty_scopes(org):
    world = await metric_world(org)
    await world.buckets(MetricScope.PROJECT, world.project_id, {T0: 40, T0 + H: 2})
    await world.buckets(MetricScope.EVENT_TYPE, world.type_id("page"), {T0 + H: 9})
    s = await series(org, world, {"kind": "PROJECT"}, T0, T0 + 2 * H)
    assert s["scope"] == "PROJECT" and s["scopeId"] == world.project and s["total"] == 42 and s["event"] is None
    s = await series(org, world, {"kind": "EVENT_TYPE", "id": world.event_types["page"]}, T0, T0 + 2 * H)
    assert [p["count"] for p in s["points"]] == [0, 9]
    # Nothing counted the track type: no config, no interval, no points.
    s = await series(org, world, {"kind": "EVENT_TYPE", "id": world.event_types["track"]}, T0, T0 + 2 * H)
    assert s["points"] == [] and s["interval"] is None and s["scanConfig"] is None and s["total"] == 0


async def test_scanned_until_cuts_the_zero_fill_and_config_choice(org):
    world = await metric_world(org)
    await world.event_buckets("page.view", {T0: 1, T0 + H: 2})
    # A second config (daily) counted the same event more recently: it is the default source.
    daily = await world.add_config("daily", ScanInterval.ONE_DAY, scanned_until=T0 + 48 * H)
    await world.event_buckets("page.view", {T0: 30, T0 + 24 * H: 4}, config=daily, interval=ScanInterval.ONE_DAY)
    s = await series(org, world, event_scope(world, "page.view"), T0, T0 + 72 * H)
    assert s["scanConfig"]["name"] == "daily" and s["interval"] == "ONE_DAY"
    assert [p["count"] for p in s["points"]] == [30, 4]  # the third day is past scannedUntil: left out
    s = await series(org, world, event_scope(world, "page.view"), T0, T0 + 4 * H, cfg=world.config_gid(0))
    assert s["scanConfig"]["name"] == "main" and [p["count"] for p in s["points"]] == [1, 2, 0, 0]


async def test_default_range_is_the_last_seven_days(org):
    world = await metric_world(org)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await world.event_buckets("page.view", {hour - 24 * H: 3, hour - 8 * 24 * H: 50, hour: 1})
    s = await series(org, world, event_scope(world, "page.view"))
    assert s["total"] == 4 and len(s["points"]) in (168, 169)
    assert s["points"][-1]["count"] == 1


async def test_bad_arguments_are_validation_errors(org):
    world = await metric_world(org)
    cases = [
        ({"kind": "EVENT"}, T0, T0 + H, ["scope", "id"]),                                     # no id
        ({"kind": "PROJECT", "id": world.events["page.view"]}, T0, T0 + H, ["scope", "id"]),  # wrong type of id
        (event_scope(world, "page.view"), T0 + H, T0, ["from"]),                               # from after to
        (event_scope(world, "page.view"), T0, T0, ["from"]),                                   # empty range
    ]
    for scope, frm, to, field in cases:
        r = await query_raw(org, SERIES, {"p": world.project, "scope": scope, "from": iso(frm), "to": iso(to)})
        assert errors(r) == [("VALIDATION", field)], (scope, r)
    # Too many buckets: 12,000 hourly buckets (at most 10,000).
    await world.event_buckets("page.view", {T0: 1})
    r = await query_raw(org, SERIES, {"p": world.project, "scope": event_scope(world, "page.view"),
                                      "from": iso(T0 - timedelta(days=500)), "to": iso(T0 + H)})
    assert errors(r) == [("VALIDATION", ["from"])], r
    for days in (0, 366):
        assert errors(await query_raw(org, OVERVIEW, {"p": world.project, "days": days})) == [("VALIDATION", ["days"])]
    for hours, limit, field in ((0, 6, ["hours"]), (721, 6, ["hours"]), (48, 0, ["limit"]), (48, 101, ["limit"])):
        r = await query_raw(org, TOP, {"p": world.project, "hours": hours, "limit": limit})
        assert errors(r) == [("VALIDATION", field)], r
    r = await query_raw(org, MANY, {"p": world.project, "first": 501})
    assert errors(r) == [("VALIDATION", ["first"])]
    r = await query_raw(org, WINDOW, {"p": world.project, "ids": []})
    assert errors(r) == [("VALIDATION", ["eventIds"])]


async def test_event_series_many_filtered_and_window_totals(org):
    world = await metric_world(org)
    await world.event_buckets("page.view", {T0: 5, T0 + H: 5})
    await world.event_buckets("page.leave", {T0 + H: 3})
    await world.event_buckets("track.click", {T0: 100})
    r = await query_raw(org, MANY, {"p": world.project, "filter": {"tag": "web"}, "from": iso(T0), "to": iso(T0 + 2 * H)})
    data = r["data"]["eventSeries"]
    assert data["totalCount"] == 2
    assert [(s["event"]["name"], s["total"], [p["count"] for p in s["points"]]) for s in data["series"]] == [
        ("page.view", 10, [5, 5]), ("page.leave", 3, [0, 3])]
    r = await query_raw(org, MANY, {"p": world.project, "filter": {"statuses": ["DRAFT"]}, "from": iso(T0),
                                    "to": iso(T0 + 2 * H), "first": 1})
    assert [s["event"]["name"] for s in r["data"]["eventSeries"]["series"]] == ["track.click"]
    ids = [world.events["track.click"], world.events["page.view"], world.events["page.leave"]]
    r = await query_raw(org, WINDOW, {"p": world.project, "ids": ids, "from": iso(T0 + H), "to": iso(T0 + 2 * H)})
    assert [(i["event"]["name"], i["count"]) for i in r["data"]["windowTotals"]["items"]] == [
        ("track.click", 0), ("page.view", 5), ("page.leave", 3)]


async def test_overview_and_top_events(org):
    world = await metric_world(org)
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    today = hour.replace(hour=0)
    await world.buckets(MetricScope.PROJECT, world.project_id, {hour: 20, today - 24 * H: 7, today - 30 * 24 * H: 99})
    await world.event_buckets("page.view", {hour: 12, hour - 60 * H: 4})
    await world.event_buckets("page.leave", {hour: 3})
    await world.event_buckets("track.click", {hour - 2 * H: 5, today - 24 * H: 1})
    o = (await query_raw(org, OVERVIEW, {"p": world.project, "days": 3}))["data"]["overview"]
    assert o["days"] == 3 and len(o["points"]) == 3
    last = o["points"][-1]
    assert last["volume"] == 20 and last["activeEvents"] == (3 if hour - 2 * H >= today else 2)
    assert o["points"][1]["volume"] == 7 and o["totalVolume"] == 27
    assert (await query_raw(org, OVERVIEW_DEFAULT, {"p": world.project}))["data"]["overview"]["days"] == 14
    top = (await query_raw(org, TOP, {"p": world.project, "hours": 48, "limit": 2}))["data"]["topEvents"]
    assert top["hours"] == 48
    assert [(i["event"]["name"], i["count"], i["previousCount"]) for i in top["items"]] == [
        ("page.view", 12, 4), ("track.click", 5 + (1 if today - 24 * H >= now - 48 * H else 0), 0)]
    default = (await query_raw(org, TOP_DEFAULT, {"p": world.project}))["data"]["topEvents"]
    assert default["hours"] == 48 and len(default["items"]) == 3


async def test_heatmap_breakdowns_and_app_versions(org):
    world = await metric_world(org)
    view = world.event_id("page.view")
    # Monday 00h: 5, Monday 01h: 7, Tuesday 13h: 20
    await world.event_buckets("page.view", {T0: 5, T0 + H: 7, T0 + 37 * H: 20})
    r = await query_raw(org, HEATMAP, {"p": world.project, "scope": event_scope(world, "page.view"),
                                       "from": iso(T0), "to": iso(T0 + 7 * 24 * H)})
    h = r["data"]["seasonalityHeatmap"]
    assert len(h["cells"]) == 168 and h["maxCount"] == 20 and h["totalCount"] == 32
    cells = {(c["weekday"], c["hour"]): c["count"] for c in h["cells"] if c["count"]}
    assert cells == {(0, 0): 5, (0, 1): 7, (1, 13): 20} and h["source"]["interval"] == "ONE_HOUR"

    await world.breakdown(MetricScope.EVENT, view, "country", [("DE", False, T0, 4), ("DE", False, T0 + H, 6),
                                                               ("FR", False, T0, 3), ("", True, T0, 2)])
    await world.breakdown(MetricScope.EVENT, view, "browser", [("firefox", False, T0, 1)])
    b = (await query_raw(org, BREAKDOWN, {"p": world.project, "scope": event_scope(world, "page.view"),
                                          "column": "country", "from": iso(T0), "to": iso(T0 + 2 * H)}))
    b = b["data"]["eventBreakdown"]
    assert b["columns"] == ["browser", "country"] and b["selectedColumn"] == "country"
    assert [(v["value"], v["isOther"], v["count"]) for v in b["values"]] == [("DE", False, 10), ("FR", False, 3),
                                                                             ("", True, 2)]
    b = (await query_raw(org, BREAKDOWN, {"p": world.project, "scope": event_scope(world, "page.view"),
                                          "from": iso(T0), "to": iso(T0 + 2 * H), "limit": 1}))["data"]["eventBreakdown"]
    assert b["selectedColumn"] == "browser" and [v["value"] for v in b["values"]] == ["firefox"]
    t = (await query_raw(org, TIMELINE, {"p": world.project, "scope": event_scope(world, "page.view"), "column": "country",
                                         "value": "DE", "other": False, "from": iso(T0), "to": iso(T0 + 3 * H)}))
    assert [p["count"] for p in t["data"]["breakdownTimeline"]["points"]] == [4, 6, 0]
    t = (await query_raw(org, TIMELINE, {"p": world.project, "scope": event_scope(world, "page.view"), "column": "country",
                                         "value": "ignored", "other": True, "from": iso(T0), "to": iso(T0 + 2 * H)}))
    assert t["data"]["breakdownTimeline"]["total"] == 2

    await world.versions([("1.0", T0, 8), ("1.0", T0 + H, 2), ("1.1", T0 + H, 6)])
    v = (await query_raw(org, VERSIONS, {"p": world.project, "from": iso(T0), "to": iso(T0 + 2 * H)}))
    v = v["data"]["appVersions"]
    assert v["latestVersion"] == "1.1" and v["source"]["total"] == 16
    assert [(x["version"], x["count"], x["share"]) for x in v["versions"]] == [("1.0", 10, 10 / 16), ("1.1", 6, 6 / 16)]
    assert [a["share"] for a in v["adoption"]] == [0.0, 0.75]
    assert [(s["version"], [p["count"] for p in s["points"]]) for s in v["series"]] == [("1.0", [8, 2]),
                                                                                       ("1.1", [6])]


async def test_tenant_isolation_and_viewers_read(org, gql):
    world = await metric_world(org)
    await world.event_buckets("page.view", {T0: 5})
    other = await Org.create(gql, "Other Co")
    other_world = await metric_world(other)
    # Another organization's project: NOT_FOUND, exactly like a missing one.
    r = await query_raw(other, SERIES, {"p": world.project, "scope": {"kind": "PROJECT"}})
    assert errors(r) == [("NOT_FOUND", ["projectId"])]
    for q, extra in ((OVERVIEW, {"days": 3}), (TOP, {"hours": 5, "limit": 5})):
        assert errors(await query_raw(other, q, {"p": world.project, **extra}))[0][0] == "NOT_FOUND"
    # Another organization's event used as the scope of one's own project: NOT_FOUND.
    r = await query_raw(other, SERIES, {"p": other_world.project, "scope": event_scope(world, "page.view")})
    assert errors(r) == [("NOT_FOUND", ["scope", "id"])]
    r = await query_raw(other, WINDOW, {"p": other_world.project, "ids": [world.events["page.view"]]})
    assert errors(r)[0][0] == "NOT_FOUND"
    # Another project's scan config.
    r = await query_raw(org, SERIES, {"p": world.project, "scope": {"kind": "PROJECT"},
                                      "cfg": gid("ScanConfig", other_world.config)})
    assert errors(r) == [("NOT_FOUND", ["scanConfigId"])]
    viewer = await org.member("viewer")
    s = await series(org, world, event_scope(world, "page.view"), T0, T0 + H, token=viewer)
    assert s["total"] == 5


async def test_series_statements_do_not_grow_with_events(org):
    """eventSeries (with each series' event and scan config) and topEvents of 1 and of 3 events:
    the same number of SQL statements."""
    world = await metric_world(org)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await world.event_buckets("page.view", {T0: 1, hour: 2})
    q = {"p": world.project, "from": iso(T0), "to": iso(T0 + H)}
    many_q = MANY.replace("event { name }", "event { name } scanConfig { name }")

    async def run(filter_: dict) -> None:
        r = await query_raw(org, many_q, {**q, "filter": filter_})
        assert "errors" not in r, r

    small = await count_statements(lambda: run({"search": "page.view"}))
    for name in ("page.leave", "track.click"):
        await world.event_buckets(name, {T0: 1, hour: 2})
    statements: list[str] = []
    large = await count_statements(lambda: run({}), statements)
    assert small == large, statements
    top_small = await count_statements(lambda: query_raw(org, TOP, {"p": world.project, "hours": 2, "limit": 1}))
    top_large = await count_statements(lambda: query_raw(org, TOP, {"p": world.project, "hours": 2, "limit": 3}))
    assert top_small == top_large
