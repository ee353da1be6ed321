"""`projectCreateDemo` through the API also returns its demo warehouse: the DUCKDB data source (the
organization's, listed by `dataSources`), the scan config `demo` and the first scan's job (null
here: the tests' settings queue no first scan, see tests/conftest.py); with the first scan on, the
live worker's scan fills the series with what a GROUP BY over the generated file counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from server.domains.warehouse import demo_warehouse
from tests.graph.plan.helpers import ERRORS
from tests.graph.warehouse.helpers import wait_job

DEMO = f"""mutation($input: ProjectCreateDemoInput!) {{ projectCreateDemo(input: $input) {{
  project {{ id slug }} dataSource {{ id name dbType databaseName host port }}
  scanConfig {{ id name baseQuery timeColumn eventTypeColumn eventNameFormat metricBreakdownColumns appVersionColumn
                interval enabled }}
  job {{ id kind status }} {ERRORS} }} }}"""


async def test_the_demo_payload_names_its_warehouse(org):
    payload = (await org(DEMO, {"input": {"organizationId": org.org_id}}))["projectCreateDemo"]
    assert payload["userErrors"] == [], payload
    ds, config = payload["dataSource"], payload["scanConfig"]
    assert (ds["name"], ds["dbType"], ds["host"], ds["port"]) == ("Demo warehouse (demo-tracking-plan)", "DUCKDB", "", None)
    assert ds["databaseName"].startswith("demo-") and ds["databaseName"].endswith(".duckdb")
    assert config == {"id": config["id"], "name": "demo", "baseQuery": "SELECT * FROM events", "timeColumn": "event_time",
                      "eventTypeColumn": "event_type", "eventNameFormat": "{event_name}",
                      "metricBreakdownColumns": ["platform"], "appVersionColumn": "app_version", "interval": "ONE_HOUR",
                      "enabled": True}
    assert payload["job"] is None
    listed = await org("query($org: ID!) { dataSources(organizationId: $org) { nodes { id } } }", {"org": org.org_id})
    assert [n["id"] for n in listed["dataSources"]["nodes"]] == [ds["id"]]
    configs = await org("query($p: ID!) { scanConfigs(projectId: $p) { nodes { id dataSource { id } } } }",
                        {"p": payload["project"]["id"]})
    assert configs["scanConfigs"]["nodes"] == [{"id": config["id"], "dataSource": {"id": ds["id"]}}]


FIRST_SCAN_DEMO = """mutation($input: ProjectCreateDemoInput!) { projectCreateDemo(input: $input) {
  project { id } dataSource { databaseName } job { id kind } userErrors { code message } } }"""
PROJECT_SERIES = """query($p: ID!, $from: DateTime!, $to: DateTime!) {
  metricSeries(projectId: $p, scope: {kind: PROJECT}, from: $from, to: $to) { interval total points { bucket count } } }"""
EVENT_SERIES = """query($p: ID!, $from: DateTime!, $to: DateTime!) {
  eventSeries(projectId: $p, from: $from, to: $to, first: 500) { series { event { name } points { bucket count } } } }"""


def hourly_counts_in_file(path: Path) -> tuple[dict[datetime, int], dict[str, dict[datetime, int]]]:
    """Straight from the DuckDB file: rows per hour, in total and per event name (GROUP BY)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute("SELECT event_name, date_trunc('hour', event_time) AS h, count(*) FROM events "
                           "GROUP BY ALL").fetchall()
    finally:
        con.close()
    total: dict[datetime, int] = defaultdict(int)
    per_event: dict[str, dict[datetime, int]] = defaultdict(dict)
    for name, hour, n in rows:
        total[hour] += n
        per_event[name][hour] = n
    return dict(total), dict(per_event)


def counted(points: list[dict]) -> dict[datetime, int]:
    return {datetime.fromisoformat(p["bucket"]): p["count"] for p in points if p["count"]}


async def test_the_first_scan_fills_the_series_with_the_files_group_by_counts(org, live, monkeypatch):  # noqa: ANN001
    """The whole path a newcomer takes: `projectCreateDemo` queues the first scan (setting on),
    the live worker runs it, and `metricSeries` / `eventSeries` then hold, hour by hour, exactly what
    a GROUP BY over the generated file counts (project total and every plan event)."""
    monkeypatch.setattr(live.runtime.settings, "warehouse_demo_first_scan", True)
    payload = (await org(FIRST_SCAN_DEMO, {"input": {"organizationId": org.org_id}}))["projectCreateDemo"]
    assert payload["userErrors"] == [] and payload["job"]["kind"] == "scan_run", payload
    job = await wait_job(org, payload["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    [path] = live.runtime.settings.duckdb_dir.glob(f"*/{payload['dataSource']['databaseName']}")
    total, per_event = hourly_counts_in_file(path)
    assert job["result"]["rows"] == sum(total.values()) > 100_000

    window = {"p": payload["project"]["id"], "from": (min(total) - timedelta(days=1)).isoformat(),
              "to": (max(total) + timedelta(hours=2)).isoformat()}
    series = (await org(PROJECT_SERIES, window))["metricSeries"]
    assert series["interval"] == "ONE_HOUR" and series["total"] == sum(total.values())
    assert counted(series["points"]) == total
    events = {s["event"]["name"]: counted(s["points"])
              for s in (await org(EVENT_SERIES, window))["eventSeries"]["series"]}
    plan_names = {stream[1] for stream in demo_warehouse.STREAMS if stream[1] not in demo_warehouse.SHADOW}
    assert {name: events[name] for name in plan_names} == {name: per_event[name] for name in plan_names}
    assert not any(events[name] for name in set(events) - plan_names)  # plan events without data stay empty
